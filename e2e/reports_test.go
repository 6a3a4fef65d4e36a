package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
)

// The pages under test tell the test what they did by posting messages to the top-level page: the demo's chat
// (`chips-demo-chat`, host/demo/static/chat.js) and the CometD chat (`chips-e2e-cometd`, e2e/cometd/page/chat.js).
// observeReports runs in the top-level document before the page's own scripts (Chromium's
// Page.addScriptToEvaluateOnNewDocument, WebDriver BiDi's script.addPreloadScript) and hands every such message to
// report, a function the browser driver provides (a Runtime binding in Chromium, a script.message channel in
// Firefox). The test then waits for the report it needs: an event, never a timer.
const observeReports = `(report) => {
	if (window !== window.top) return;
	window.addEventListener('message', (ev) => {
		const d = ev.data;
		if (d && typeof d.type === 'string' && d.type.startsWith('chips-') && d.state) {
			report(JSON.stringify({type: d.type, state: d.state}));
		}
	});
}`

// pageReport is one message observed by observeReports.
type pageReport struct {
	Type  string          `json:"type"`
	State json.RawMessage `json:"state"`
}

// pageReports queues the reports of one tab in arrival order. The browser driver's event loop pushes; the test
// waits in next.
type pageReports struct {
	mu     sync.Mutex
	queue  []pageReport
	signal chan struct{} // holds one token while the queue may be non-empty
}

func newPageReports() *pageReports { return &pageReports{signal: make(chan struct{}, 1)} }

// push queues the JSON text of a report; it never blocks, so it may be called from a driver's event loop.
func (r *pageReports) push(text string) {
	var rep pageReport
	if err := json.Unmarshal([]byte(text), &rep); err != nil {
		rep = pageReport{Type: "undecodable", State: json.RawMessage(fmt.Sprintf("%q", text))}
	}
	r.mu.Lock()
	r.queue = append(r.queue, rep)
	r.mu.Unlock()
	select {
	case r.signal <- struct{}{}:
	default:
	}
}

// clear drops the reports of a page the tab has left.
func (r *pageReports) clear() {
	r.mu.Lock()
	r.queue = nil
	r.mu.Unlock()
}

// next returns the oldest report, waiting for one to arrive.
func (r *pageReports) next(ctx context.Context) (pageReport, error) {
	for {
		r.mu.Lock()
		if len(r.queue) > 0 {
			rep := r.queue[0]
			r.queue = r.queue[1:]
			r.mu.Unlock()
			return rep, nil
		}
		r.mu.Unlock()
		select {
		case <-r.signal:
		case <-ctx.Done():
			return pageReport{}, ctx.Err()
		}
	}
}

// browserPage is a tab of either browser, as the scenarios use it.
type browserPage interface {
	// open loads pageURL in the tab, forgetting the reports of the page before; it fails the test on error.
	open(pageURL string)
	// reports are the reports of the page open in the tab.
	reports() *pageReports
	// context ends when the tab is closed.
	context() context.Context
}

// waitReportOf reads reports of one type until decode says the state is the one wanted (done true) and returns it.
// The last state seen is in the failure message when the tab ends first.
func waitReportOf[S any](t *testing.T, ctx context.Context, r *pageReports, typ string, done func(S) bool) S {
	t.Helper()
	var last json.RawMessage
	for {
		rep, err := r.next(ctx)
		if err != nil {
			t.Fatalf("e2e: waiting for a %s report: %v (last state: %s)", typ, err, last)
		}
		if rep.Type != typ {
			continue
		}
		last = rep.State
		var st S
		if err := json.Unmarshal(rep.State, &st); err != nil {
			t.Fatalf("e2e: decoding %s report %s: %v", typ, rep.State, err)
		}
		if done(st) {
			return st
		}
	}
}
