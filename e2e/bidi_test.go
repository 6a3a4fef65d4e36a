package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/coder/websocket"
)

// bidiConn is a WebDriver BiDi connection (https://w3c.github.io/webdriver-bidi/): JSON commands with ids over one
// WebSocket, answered by results or errors with the same id, and events. It carries only what the browser tests
// use; the commands and their parameters are the specification's, spelled out at each call site.
type bidiConn struct {
	ws      *websocket.Conn
	onEvent func(method string, params json.RawMessage) // runs on the reading goroutine; must not block

	mu      sync.Mutex
	nextID  int
	pending map[int]chan bidiMessage
	closed  error // why reading stopped; nil while it runs
}

// bidiMessage is any message the browser sends: a command's result ("success"), its error ("error"), or an
// event ("event").
type bidiMessage struct {
	Type    string          `json:"type"`
	ID      *int            `json:"id"`
	Result  json.RawMessage `json:"result"`
	Error   string          `json:"error"`
	Message string          `json:"message"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

// dialBiDi connects to a browser's WebDriver BiDi endpoint (ws://host:port/session).
func dialBiDi(ctx context.Context, url string, onEvent func(method string, params json.RawMessage)) (*bidiConn, error) {
	ws, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("e2e: bidi: connecting to %s: %w", url, err)
	}
	ws.SetReadLimit(-1) // cookie lists and page states can be large; the peer is our own browser
	c := &bidiConn{ws: ws, onEvent: onEvent, pending: make(map[int]chan bidiMessage)}
	go c.read()
	return c, nil
}

// read dispatches the browser's messages until the connection ends.
func (c *bidiConn) read() {
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.closed = fmt.Errorf("e2e: bidi: connection ended: %w", err)
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		var m bidiMessage
		if err := json.Unmarshal(data, &m); err != nil {
			continue // not a protocol message; nothing waits for it
		}
		if m.Type == "event" {
			c.onEvent(m.Method, m.Params)
			continue
		}
		if m.ID == nil {
			continue
		}
		c.mu.Lock()
		ch := c.pending[*m.ID]
		delete(c.pending, *m.ID)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends a command and decodes its result into result (nil: ignore it).
func (c *bidiConn) call(ctx context.Context, method string, params any, result any) error {
	c.mu.Lock()
	if c.closed != nil {
		c.mu.Unlock()
		return c.closed
	}
	c.nextID++
	id := c.nextID
	ch := make(chan bidiMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()

	cmd, err := json.Marshal(struct {
		ID     int    `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params"`
	}{id, method, params})
	if err != nil {
		return err
	}
	if err := c.ws.Write(ctx, websocket.MessageText, cmd); err != nil {
		return fmt.Errorf("e2e: bidi: %s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.mu.Lock()
			defer c.mu.Unlock()
			return fmt.Errorf("e2e: bidi: %s: %w", method, c.closed)
		}
		if m.Type == "error" {
			return fmt.Errorf("e2e: bidi: %s: %s: %s", method, m.Error, m.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(m.Result, result)
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return errors.Join(fmt.Errorf("e2e: bidi: %s", method), ctx.Err())
	}
}

// close ends the connection.
func (c *bidiConn) close() { c.ws.Close(websocket.StatusNormalClosure, "") }
