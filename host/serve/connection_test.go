package serve

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// TestConnectionIDPerConnection runs the properties guest, which copies what it reads into request headers, and
// checks the property connection.id under the proxy: shared by the streams of one connection, different between
// connections, as in Envoy.
func TestConnectionIDPerConnection(t *testing.T) {
	module, err := os.ReadFile(testwasm.Build(t, "./host/testdata/guests/properties"))
	if err != nil {
		t.Fatal(err)
	}
	h, err := host.New(context.Background(), host.Options{Module: module, CacheDir: testwasm.CacheDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	_, u := echoUpstream(t, "a")
	p := startProxy(t, Options{Upstreams: []*url.URL{u}, Filter: h})

	// connectionID is what the guest read as connection/id on a request sent through client.
	connectionID := func(client *http.Client) string {
		t.Helper()
		_, body := get(t, client, p.URL()+"/")
		for _, v := range decodeEcho(t, body).Header.Values("X-Prop") {
			if id, ok := strings.CutPrefix(v, "connection/id="); ok {
				return id
			}
		}
		t.Fatalf("no connection/id among the guest's x-prop headers")
		return ""
	}
	newClient := func() *http.Client {
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	first, second := newClient(), newClient()
	a1, a2 := connectionID(first), connectionID(first)
	b := connectionID(second)
	if strings.HasPrefix(a1, "err:") || a1 == "" {
		t.Fatalf("connection/id unreadable: %q", a1)
	}
	if a1 != a2 {
		t.Errorf("two streams of one keep-alive connection: connection.id %s then %s, want the same", a1, a2)
	}
	if a1 == b {
		t.Errorf("two connections share connection.id %s", a1)
	}
}
