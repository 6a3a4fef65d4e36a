// Package demo is the embedded demo upstream of `wasmhost serve --demo`: chat nodes that imitate a CometD chat server
// (Genesys GMS) and a shop page on another site that embeds the chat in an iframe. Together with the proxy in front
// of the nodes they reproduce, on one machine, the situation the filter exists for: a chat whose cookies are
// third-party cookies in the page that shows it.
//
// A command starts everything with [Start], then points the proxy at [Demo.NodeURLs] and tells the user to open
// [Demo.ShopURL]:
//
//	d, err := demo.Start(ctx, demo.Options{Nodes: 3, ShopAddr: "127.0.0.1:8443"})
//	...
//	defer d.Close()
//	// start the proxy with d.NodeURLs() as its upstreams, listening on e.g. 127.0.0.1:9443, then:
//	err = d.SetChatURL("https://chat.localhost:9443")
//	fmt.Println("open", d.ShopURL())
//
// (When the proxy's port is fixed, Options.ChatURL can carry the chat URL from the start.)
//
// The nodes speak plain HTTP on loopback (TLS ends at the proxy, as the chat vendor's deployment notes ask); the
// shop speaks HTTPS with an in-memory self-signed certificate, because Secure cookies and CHIPS need a secure
// top-level site too. Tests use the handlers ([NewChat], [NewShop]) or [StartChat] directly.
package demo

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultHold is the long-poll hold of the nodes [Start] runs when Options.Hold is zero: long enough for a person
// to watch the connects go by, short enough to feel alive.
const DefaultHold = time.Second

// DefaultShopHost is the host name the shop URL uses when Options.ShopHosts is empty. Chromium and Firefox resolve
// every *.localhost name to the loopback address without /etc/hosts, and treat shop.localhost and chat.localhost as
// two different sites, so the demo needs no setup in those browsers.
const DefaultShopHost = "shop.localhost"

// Options configures [Start]. The zero value of every field has a documented default.
type Options struct {
	// Nodes is how many chat nodes to run; 0 means 3 (enough to see affinity at work).
	Nodes int
	// NodeAddrs optionally fixes the listen address of each node ("127.0.0.1:9001"); missing entries get a free
	// loopback port.
	NodeAddrs []string
	// Hold is the long-poll hold of each connect; 0 means DefaultHold, a negative value answers at once.
	Hold time.Duration
	// ShopAddr is the shop's TLS listen address; "" means a free loopback port ("127.0.0.1:0").
	ShopAddr string
	// ShopHosts are the names the shop is reached by; the first one is used in ShopURL. The generated self-signed
	// certificate covers them plus localhost and the loopback addresses. Empty means
	// []string{DefaultShopHost}.
	ShopHosts []string
	// ShopCertificate replaces the generated self-signed certificate when set.
	ShopCertificate *tls.Certificate
	// ChatURL is the public URL of the chat as the browser sees it: the proxy in front of the nodes, e.g.
	// "https://chat.localhost:9443". When the proxy's address is known only after it starts (it needs NodeURLs
	// first), leave it empty and call Demo.SetChatURL; the shop page answers 503 until then.
	ChatURL string
	// Logger receives the demo's log lines; nil means slog.Default().
	Logger *slog.Logger
}

// Demo is a running demo: chat nodes and a shop. Close stops it.
type Demo struct {
	nodes   []*Server
	shop    *Server
	handler *Shop
	shopURL string
}

// Start runs the chat nodes and the shop of the demo and returns once all of them listen. When ctx ends, the demo
// shuts down as if Close were called.
func Start(ctx context.Context, o Options) (*Demo, error) {
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	if o.Nodes < 0 || o.Nodes > 64 {
		return nil, fmt.Errorf("demo: Options.Nodes: want 1..64, got %d", o.Nodes)
	}
	if len(o.NodeAddrs) > o.Nodes {
		return nil, fmt.Errorf("demo: Options.NodeAddrs: %d addresses for %d nodes", len(o.NodeAddrs), o.Nodes)
	}
	switch {
	case o.Hold == 0:
		o.Hold = DefaultHold
	case o.Hold < 0:
		o.Hold = 0
	}
	if o.ShopAddr == "" {
		o.ShopAddr = "127.0.0.1:0"
	}
	if len(o.ShopHosts) == 0 {
		o.ShopHosts = []string{DefaultShopHost}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	shop, err := NewShop(o.ChatURL, o.Logger)
	if err != nil {
		return nil, err
	}
	cert := o.ShopCertificate
	if cert == nil {
		c, err := selfSignedCertificate(o.ShopHosts...)
		if err != nil {
			return nil, fmt.Errorf("demo: shop: %w", err)
		}
		cert = &c
	}

	d := &Demo{handler: shop}
	for i := range o.Nodes {
		addr := "127.0.0.1:0"
		if i < len(o.NodeAddrs) && o.NodeAddrs[i] != "" {
			addr = o.NodeAddrs[i]
		}
		s, err := StartChat(ctx, addr, ChatOptions{Node: "gms-" + strconv.Itoa(i+1), Hold: o.Hold, Logger: o.Logger})
		if err != nil {
			d.Close()
			return nil, err
		}
		d.nodes = append(d.nodes, s)
	}
	d.shop, err = StartServer(ctx, o.ShopAddr, shop, &tls.Config{Certificates: []tls.Certificate{*cert}})
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("demo: shop: %w", err)
	}
	_, port, _ := net.SplitHostPort(d.shop.Addr())
	d.shopURL = "https://" + net.JoinHostPort(o.ShopHosts[0], port) + "/"
	return d, nil
}

// NodeURLs returns the base URLs of the chat nodes ("http://127.0.0.1:PORT"), in node order (gms-1 first): the
// proxy's upstreams.
func (d *Demo) NodeURLs() []string {
	out := make([]string, len(d.nodes))
	for i, n := range d.nodes {
		out[i] = n.URL()
	}
	return out
}

// SetChatURL sets the chat URL the shop page embeds (see Options.ChatURL).
func (d *Demo) SetChatURL(chatURL string) error { return d.handler.SetChatURL(chatURL) }

// ShopURL returns the URL to open in the browser: https://<first shop host>:<port>/.
func (d *Demo) ShopURL() string { return d.shopURL }

// ShopAddr returns the address the shop listens on.
func (d *Demo) ShopAddr() string { return d.shop.Addr() }

// Close stops the shop and the nodes, cutting open long polls. It returns the first error met.
func (d *Demo) Close() error {
	var first error
	if d.shop != nil {
		first = d.shop.Close()
	}
	for _, n := range d.nodes {
		if err := n.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Server is one running HTTP(S) server of the demo.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	url      string
	done     chan struct{} // closed when Serve returned
	stop     func() bool   // detaches the context watcher
	closeErr error
	once     sync.Once
}

// StartChat runs one chat node (see [Chat]) over plain HTTP on addr (e.g. "127.0.0.1:0") until Close or until ctx
// ends.
func StartChat(ctx context.Context, addr string, o ChatOptions) (*Server, error) {
	s, err := StartServer(ctx, addr, NewChat(o), nil)
	if err != nil {
		return nil, fmt.Errorf("demo: chat node %s: %w", o.Node, err)
	}
	return s, nil
}

// StartServer serves h on addr, over TLS when tlsConfig is non-nil (HTTP/2 is offered then, as browsers expect),
// until Close or until ctx ends.
func StartServer(ctx context.Context, addr string, h http.Handler, tlsConfig *tls.Config) (*Server, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	if tlsConfig != nil {
		cfg := tlsConfig.Clone()
		if len(cfg.NextProtos) == 0 {
			cfg.NextProtos = []string{"h2", "http/1.1"}
		}
		srv.TLSConfig = cfg
		ln = tls.NewListener(ln, cfg)
		scheme = "https"
	}
	s := &Server{srv: srv, ln: ln, url: scheme + "://" + ln.Addr().String(), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		srv.Serve(ln)
	}()
	s.stop = context.AfterFunc(ctx, func() { s.Close() })
	return s, nil
}

// URL returns the server's base URL with its loopback address, e.g. "http://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Done returns a channel closed once the server has stopped serving (after Close, or after its context ended).
func (s *Server) Done() <-chan struct{} { return s.done }

// Close stops the server at once, cutting open connections (a long poll has nothing worth waiting for), and waits
// until it stopped serving. Calling it again returns the first result.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.stop()
		s.closeErr = s.srv.Close()
		<-s.done
	})
	return s.closeErr
}
