package e2e

import "testing"

// chatState mirrors the state the demo's chat reports (host/demo/static/chat.js): to the shop page that embeds it,
// or to itself when it is the top-level page.
type chatState struct {
	Done          bool   `json:"done"`
	Error         string `json:"error"`
	ClientID      string `json:"clientId"`
	Node          string `json:"node"`
	Handshakes    int    `json:"handshakes"`
	NewBrowser    bool   `json:"newBrowser"` // the last handshake set BAYEUX_BROWSER (the browser sent none)
	Total         int    `json:"total"`
	CookieBack    int    `json:"cookieBack"`
	UnknownClient int    `json:"unknownClient"`
	Connects      []struct {
		Node             string   `json:"node"`
		ServedBy         string   `json:"servedBy"`
		Successful       bool     `json:"successful"`
		Error            string   `json:"error"`
		SawBayeuxBrowser bool     `json:"sawBayeuxBrowser"`
		CookieNames      []string `json:"cookieNames"`
	} `json:"connects"`
	Disconnect *struct {
		Node       string `json:"node"`
		Successful bool   `json:"successful"`
	} `json:"disconnect"`
}

// runChat opens pageURL (a shop page or the chat page) in p and waits for the report that the chat session it runs
// is done, then returns the state the page saw.
func runChat(t *testing.T, p browserPage, pageURL string) chatState {
	t.Helper()
	p.open(pageURL)
	st := waitReportOf(t, p.context(), p.reports(), "chips-demo-chat", func(s chatState) bool { return s.Done })
	if st.Error != "" {
		t.Fatalf("e2e: chat session on %s failed in the page: %s", pageURL, st.Error)
	}
	return st
}
