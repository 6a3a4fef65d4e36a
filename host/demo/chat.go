package demo

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Cookie names the chat imitation sets. BrowserCookie mirrors CometD's browser cookie as Genesys GMS sends it;
// SessionCookie mirrors the servlet container's session cookie.
const (
	BrowserCookie = "BAYEUX_BROWSER"
	SessionCookie = "JSESSIONID"
)

// NodeHeader names the response header that carries the name of the chat node that answered, so a client (or a
// test) can tell which upstream the proxy picked without trusting the body.
const NodeHeader = "X-Chat-Node"

// maxClients bounds the handshaken clients a node remembers; the oldest are forgotten first, as if they had timed out.
const maxClients = 10000

// maxBody bounds the Bayeux message a node reads; the demo's messages are a few dozen bytes.
const maxBody = 4096

// ChatOptions configures one chat node.
type ChatOptions struct {
	// Node names the node in responses (header X-Chat-Node and the JSON field "node"), e.g. "gms-1".
	Node string
	// Hold is how long /cometd/connect waits before answering, imitating a long poll. Zero answers at once.
	Hold time.Duration
	// Logger receives one line per handshake and disconnect; nil means slog.Default().
	Logger *slog.Logger
}

// Chat imitates one node of a CometD chat server (Genesys GMS) closely enough for the browser to treat its cookies
// the way it treats the real ones:
//
//	POST /cometd/handshake   Set-Cookie: BAYEUX_BROWSER=<random>; HttpOnly; Path=/ (only when the browser sent none)
//	                         Set-Cookie: JSESSIONID=<random>; Path=/; HttpOnly
//	POST /cometd/connect     reports whether BAYEUX_BROWSER came back and whether this node knows the client
//	POST /cometd/disconnect  Set-Cookie: BAYEUX_BROWSER=; Max-Age=0; HttpOnly; Path=/
//	GET  /chat               a first-party chat page running handshake and connects
//	GET  /widget             the same page, meant to be embedded in another site's iframe
//
// Like GMS, the node sets no SameSite, Secure or Partitioned attribute: adding them is the proxy's job. Like CometD,
// a clientId is known only to the node that issued it, so a connect that lands on another node fails with
// "402::Unknown client" — which is why the chat needs session affinity. A Chat is safe for concurrent use.
type Chat struct {
	node   string
	hold   time.Duration
	log    *slog.Logger
	mux    *http.ServeMux
	static http.Handler

	mu      sync.Mutex
	clients map[string]struct{}
	order   []string // clientIds oldest first, to forget the oldest when full
}

// NewChat returns the handler of one chat node.
func NewChat(o ChatOptions) *Chat {
	if o.Node == "" {
		o.Node = "gms-1"
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Chat{
		node:    o.Node,
		hold:    max(o.Hold, 0),
		log:     o.Logger.With("component", "demo-chat", "node", o.Node),
		mux:     http.NewServeMux(),
		static:  staticHandler(),
		clients: make(map[string]struct{}),
	}
	c.mux.HandleFunc("POST /cometd/handshake", c.handshake)
	c.mux.HandleFunc("POST /cometd/connect", c.connect)
	c.mux.HandleFunc("POST /cometd/disconnect", c.disconnect)
	c.mux.HandleFunc("GET /chat", c.servePage(false))
	c.mux.HandleFunc("GET /widget", c.servePage(true))
	c.mux.HandleFunc("GET /{$}", c.index)
	c.mux.Handle("GET /static/", c.static)
	return c
}

// Node returns the node's name.
func (c *Chat) Node() string { return c.node }

// ServeHTTP implements http.Handler. Every response, errors included, names the node.
func (c *Chat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(NodeHeader, c.node)
	c.mux.ServeHTTP(w, r)
}

// HandshakeReply is the JSON body of /cometd/handshake.
type HandshakeReply struct {
	Channel    string `json:"channel"`
	Successful bool   `json:"successful"`
	ClientID   string `json:"clientId"`
	Node       string `json:"node"`
	// NewBrowser is true when this handshake set BAYEUX_BROWSER (the request carried none).
	NewBrowser bool `json:"newBrowser"`
}

// ConnectReply is the JSON body of /cometd/connect and /cometd/disconnect.
type ConnectReply struct {
	Channel    string `json:"channel"`
	Successful bool   `json:"successful"`
	Error      string `json:"error,omitempty"`
	ClientID   string `json:"clientId"`
	Node       string `json:"node"`
	// SawBrowserCookie tells whether the request carried BAYEUX_BROWSER: the whole point of the demo.
	SawBrowserCookie bool `json:"sawBayeuxBrowser"`
	// CookieNames lists the names of the cookies the request carried, in order (values stay private: the real
	// cookies are HttpOnly, and the page must not learn them through this echo).
	CookieNames []string `json:"cookieNames"`
}

// bayeuxMessage is the part of a Bayeux request body the node reads.
type bayeuxMessage struct {
	ClientID string `json:"clientId"`
}

func (c *Chat) handshake(w http.ResponseWriter, r *http.Request) {
	id := randomToken()
	c.remember(id)
	reply := HandshakeReply{Channel: "/meta/handshake", Successful: true, ClientID: id, Node: c.node}
	// CometD keeps the browser id the browser already has: it identifies the browser across tabs, not the session.
	if _, err := r.Cookie(BrowserCookie); err != nil {
		w.Header().Add("Set-Cookie", BrowserCookie+"="+randomToken()+"; HttpOnly; Path=/")
		reply.NewBrowser = true
	}
	w.Header().Add("Set-Cookie", SessionCookie+"="+randomToken()+"; Path=/; HttpOnly")
	c.log.Info("demo: handshake", "client", id, "new_browser", reply.NewBrowser)
	writeJSON(w, reply)
}

func (c *Chat) connect(w http.ResponseWriter, r *http.Request) {
	msg, ok := readMessage(w, r)
	if !ok {
		return
	}
	if c.hold > 0 {
		t := time.NewTimer(c.hold)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	writeJSON(w, c.reply(r, "/meta/connect", msg.ClientID, c.known(msg.ClientID)))
}

func (c *Chat) disconnect(w http.ResponseWriter, r *http.Request) {
	msg, ok := readMessage(w, r)
	if !ok {
		return
	}
	known := c.forget(msg.ClientID)
	// The deletion names the same path as the setting: a browser matches name, domain, path (and partition).
	w.Header().Add("Set-Cookie", BrowserCookie+"=; Max-Age=0; HttpOnly; Path=/")
	c.log.Info("demo: disconnect", "client", msg.ClientID, "known", known)
	writeJSON(w, c.reply(r, "/meta/disconnect", msg.ClientID, known))
}

// reply builds the answer to a connect or disconnect, reporting what came back from the browser.
func (c *Chat) reply(r *http.Request, channel, clientID string, known bool) ConnectReply {
	rep := ConnectReply{Channel: channel, Successful: known, ClientID: clientID, Node: c.node, CookieNames: []string{}}
	if !known {
		rep.Error = "402::Unknown client"
	}
	for _, ck := range r.Cookies() {
		rep.CookieNames = append(rep.CookieNames, ck.Name)
		if ck.Name == BrowserCookie {
			rep.SawBrowserCookie = true
		}
	}
	return rep
}

// pageData feeds static/chat.html.
type pageData struct {
	Node     string
	Embedded bool
}

func (c *Chat) servePage(embedded bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := pages.ExecuteTemplate(w, "chat.html", pageData{Node: c.node, Embedded: embedded}); err != nil {
			c.log.Warn("demo: rendering chat page", "err", err)
		}
	}
}

func (c *Chat) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pages.ExecuteTemplate(w, "node.html", pageData{Node: c.node}); err != nil {
		c.log.Warn("demo: rendering node page", "err", err)
	}
}

func (c *Chat) remember(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.order) >= maxClients {
		delete(c.clients, c.order[0])
		c.order = slices.Delete(c.order, 0, 1)
	}
	c.clients[id] = struct{}{}
	c.order = append(c.order, id)
}

func (c *Chat) known(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.clients[id]
	return ok
}

func (c *Chat) forget(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.clients[id]; !ok {
		return false
	}
	delete(c.clients, id)
	if i := slices.Index(c.order, id); i >= 0 {
		c.order = slices.Delete(c.order, i, i+1)
	}
	return true
}

// readMessage decodes a Bayeux message: a JSON object or, as CometD clients send, an array holding one.
func readMessage(w http.ResponseWriter, r *http.Request) (bayeuxMessage, bool) {
	var raw json.RawMessage
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(&raw); err != nil {
		http.Error(w, "demo: want a JSON Bayeux message", http.StatusBadRequest)
		return bayeuxMessage{}, false
	}
	var one bayeuxMessage
	if err := json.Unmarshal(raw, &one); err == nil {
		return one, true
	}
	var batch []bayeuxMessage
	if err := json.Unmarshal(raw, &batch); err != nil || len(batch) == 0 {
		http.Error(w, "demo: want a JSON Bayeux message", http.StatusBadRequest)
		return bayeuxMessage{}, false
	}
	return batch[0], true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	// Bayeux answers are never cacheable: a cached connect would replay another moment's cookies.
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

// randomToken returns 128 random bits in hex, the shape of CometD's ids.
func randomToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// staticHandler serves static/ (scripts and styles shared by the chat and the shop pages).
func staticHandler() http.Handler {
	sub, _ := fs.Sub(assets, "static")
	return http.StripPrefix("/static/", http.FileServerFS(sub))
}
