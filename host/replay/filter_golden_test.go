package replay

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/host"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// TestGoldenFilter replays every case through the real filter (build/filter.wasm) in the wazero host: NAME.in with
// NAME.request (optional) and the configuration NAME.config.json (optional; none means the filter's defaults),
// compared with NAME.golden.
func TestGoldenFilter(t *testing.T) {
	module := readFilter(t)
	for _, name := range goldenCases(t) {
		t.Run(name, func(t *testing.T) {
			h, _ := caseHost(t, module, name)
			in, err := os.Open(filepath.Join(goldenDir, name+".in"))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			var out bytes.Buffer
			o := Options{Filter: h, Request: caseRequest(t, name), Logger: quiet}
			if err := Replay(context.Background(), o, in, &out); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, filepath.Join(goldenDir, name+".golden"), out.Bytes())
			if st := h.Stats(); st.Traps != 0 || st.Active != 0 {
				t.Errorf("host stats after replay: %+v", st)
			}
		})
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func readFilter(t *testing.T) []byte {
	t.Helper()
	module, err := os.ReadFile(testwasm.Filter(t))
	if err != nil {
		t.Fatal(err)
	}
	return module
}

// caseHost starts the filter in our host with the case's NAME.config.json (none: the filter's defaults) and returns
// it with that configuration; the host is closed when the test ends.
func caseHost(t *testing.T, module []byte, name string) (*host.Host, []byte) {
	t.Helper()
	cfg, err := os.ReadFile(filepath.Join(goldenDir, name+".config.json"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	h, err := host.New(context.Background(), host.Options{Module: module, PluginConfig: cfg, PoolSize: 1,
		CacheDir: testwasm.CacheDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close(context.Background()) })
	return h, cfg
}
