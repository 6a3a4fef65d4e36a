package e2e

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/url"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/demo"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/host/serve"
)

// quiet keeps the servers' request logs out of the test output; failures are reported by the assertions.
var quiet = slog.New(slog.DiscardHandler)

// siteNames are the host names the servers' certificates cover. Every scenario picks its own names under .test
// (cookies ignore ports, so two scenarios on one name would share cookies).
var siteNames = []string{"*.test", "*.localhost", "localhost", "127.0.0.1"}

// siteOptions describes a chat site: the chat as a browser reaches it, wasmhost's proxy over TLS in front of demo
// chat nodes.
type siteOptions struct {
	Nodes int // chat nodes behind the proxy; 0 means 1
	// Filter is the filter's JSON configuration; required unless NoFilter.
	Filter string
	// NoFilter runs the same proxy without the filter (the control scenario), explicitly at the call site.
	NoFilter bool
	// Envoy is the Envoy profile the filter runs under; "" is the host's default, the strictest.
	Envoy string
}

// startChatSite runs the chat nodes and the proxy in front of them, and returns the chat's URL:
// https://host:<proxy port>.
func startChatSite(t *testing.T, host string, o siteOptions) string {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 1
	}
	var upstreams []*url.URL
	for i := range o.Nodes {
		n, err := demo.StartChat(context.Background(), "127.0.0.1:0",
			demo.ChatOptions{Node: "gms-" + string(rune('1'+i)), Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		u, _ := url.Parse(n.URL())
		upstreams = append(upstreams, u)
	}
	return startChatProxy(t, host, upstreams, o)
}

// startChatProxy runs wasmhost's proxy over TLS in front of upstreams, with the filter o asks for, and returns the
// chat's URL: https://host:<proxy port>.
func startChatProxy(t *testing.T, host string, upstreams []*url.URL, o siteOptions) string {
	t.Helper()
	if !o.NoFilter && o.Filter == "" {
		t.Fatal("e2e: a chat site needs a filter configuration or NoFilter")
	}
	opts := serve.Options{
		Listen:    "127.0.0.1:0",
		Upstreams: upstreams,
		TLS:       &serve.TLSOptions{SelfSigned: true, Hosts: siteNames},
		Logger:    quiet,
	}
	if !o.NoFilter {
		opts.Filter = startFilter(t, o.Filter, o.Envoy)
	}
	return "https://" + net.JoinHostPort(host, startProxy(t, opts))
}

// startProxy runs wasmhost's reverse proxy until the test ends and returns its port.
func startProxy(t *testing.T, opts serve.Options) string {
	t.Helper()
	p, err := serve.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("e2e: proxy shutdown: %v", err)
		}
	})
	return port(t, p.Addr())
}

// startShop runs the demo shop over TLS, embedding the chat at chatURL; it answers to any .test name, so one shop
// serves several top-level sites. It returns the port.
func startShop(t *testing.T, chatURL string) string {
	t.Helper()
	shop, err := demo.NewShop(chatURL, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := serve.SelfSignedCertificate(siteNames...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := demo.StartServer(context.Background(), "127.0.0.1:0", shop, &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return port(t, s.Addr())
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
