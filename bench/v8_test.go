package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/filter/config"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

var v8Out = flag.String("v8.out", "", "write TestV8's measurements to this JSON file (relative to the repository root)")

// The cpp-host WASI profiles bench/v8/host.mjs implements: the strict one of Envoy 1.33–1.37, and the later one
// that answers poll_oneoff with success.
const (
	profileStrict = "c4d7bb0"
	profileLater  = "94091cd"
)

// v8Guest is one guest of a run of bench/v8/host.mjs; the JSON names are the host's.
type v8Guest struct {
	Name     string      `json:"name"`
	Wasm     string      `json:"wasm"`
	Config   string      `json:"config"`
	Upstream string      `json:"upstream"`
	Request  [][2]string `json:"request"`
	Response [][2]string `json:"response"`
}

type v8Spec struct {
	Profile string    `json:"profile"`
	Warmup  int       `json:"warmup"`
	Rounds  int       `json:"rounds"`
	Streams int       `json:"streams"`
	Guests  []v8Guest `json:"guests"`
}

type v8Output struct {
	Profile string   `json:"profile"`
	Node    string   `json:"node"`
	V8      string   `json:"v8"`
	Flags   []string `json:"flags"`
	Guests  []struct {
		V8GuestTimes
		Request  [][2]string `json:"request"`
		Response [][2]string `json:"response"`
	} `json:"guests"`
}

// v8Guests are the three configurations measured in V8: the filter on the chat stream, the no-op guest that only
// reads the response headers, and the filter with affinity on a stream whose token it opens and refreshes.
func v8Guests(t *testing.T) ([]v8Guest, *config.Config) {
	cfg, affinityJSON := AffinityConfig(t)
	affReq, err := AffinityRequest(cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	filter, readheaders := testwasm.Filter(t), testwasm.Build(t, ReadHeadersGuest)
	return []v8Guest{
		{Name: "filter", Wasm: filter, Request: ChatRequest(), Response: ChatResponse(), Upstream: ChatUpstreamAddress},
		{Name: "readheaders", Wasm: readheaders, Request: ChatRequest(), Response: ChatResponse(), Upstream: ChatUpstreamAddress},
		{Name: "affinity", Wasm: filter, Config: string(affinityJSON), Request: affReq, Response: ChatResponse(), Upstream: ChatUpstreamAddress},
	}, cfg
}

// runV8 runs bench/v8/host.mjs under Node as Envoy runs V8 (TurboFan only, --no-liftoff). A trap or any other
// failure of the host comes back as an error holding its output.
func runV8(t *testing.T, spec v8Spec) (*v8Output, error) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("bench: node is required in CI: %v", err)
		}
		t.Skipf("bench: node not found (%v); the V8 comparison needs Node", err)
	}
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	specPath := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(specPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "--no-liftoff", filepath.Join(testwasm.RepoRoot(), "bench", "v8", "host.mjs"), specPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		return nil, errors.New(strings.TrimSpace(stderr.String()))
	}
	var out v8Output
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("bench: v8 host output: %v\n%s", err, stdout)
	}
	return &out, nil
}

// TestV8MatchesWazero runs a few streams of each guest in V8, under the strict WASI profile of Envoy 1.33–1.37, and
// checks that the headers they leave are those this
// repository's host leaves on the same streams. The affinity cookie is sealed with a fresh nonce each time, so its
// value is compared by opening it instead.
func TestV8MatchesWazero(t *testing.T) {
	guests, cfg := v8Guests(t)
	out, err := runV8(t, v8Spec{Profile: profileStrict, Warmup: 3, Rounds: 1, Streams: 3, Guests: guests})
	if err != nil {
		t.Fatalf("v8 host: %v", err)
	}
	if len(out.Guests) != len(guests) {
		t.Fatalf("v8 host returned %d guests, want %d", len(out.Guests), len(guests))
	}
	a := &cfg.Affinity
	for i, g := range guests {
		module, err := os.ReadFile(g.Wasm)
		if err != nil {
			t.Fatal(err)
		}
		h := newHostCtx(t, t.Context(), module, 1, []byte(g.Config))
		s, err := h.NewStream(t.Context(), hostStreamInfo)
		if err != nil {
			t.Fatal(err)
		}
		s.OnRequestHeaders(g.Request, true)
		s.SetUpstreamAddress(g.Upstream)
		s.OnResponseHeaders(g.Response, false)
		wantReq, wantResp := s.RequestHeaders(), s.ResponseHeaders()
		s.Close()
		got := out.Guests[i]
		if !slices.Equal(got.Request, wantReq) {
			t.Errorf("%s: request headers in V8\n%q\nwazero\n%q", g.Name, got.Request, wantReq)
		}
		gotResp := got.Response
		if g.Config != "" {
			gotResp = openAffinityCookies(t, a, gotResp)
			wantResp = openAffinityCookies(t, a, wantResp)
		}
		if !slices.Equal(gotResp, wantResp) {
			t.Errorf("%s: response headers in V8\n%q\nwazero\n%q", g.Name, gotResp, wantResp)
		}
	}
}

// openAffinityCookies replaces the value of every affinity cookie by the upstream its token names, checking that
// the token opens and was seen within the last minute.
func openAffinityCookies(t *testing.T, a *config.Affinity, headers [][2]string) [][2]string {
	out := slices.Clone(headers)
	for i, kv := range out {
		rest, ok := strings.CutPrefix(kv[1], a.CookieName+"=")
		if kv[0] != "set-cookie" || !ok {
			continue
		}
		value, attrs, _ := strings.Cut(rest, ";")
		tok, err := a.Sealer.Open(value, a.CookieName)
		if err != nil || time.Since(tok.LastSeen) > time.Minute {
			t.Errorf("affinity cookie %q: token %+v, %v", kv[1], tok, err)
		}
		out[i][1] = a.CookieName + "=<token for " + tok.Upstream + ">;" + attrs
	}
	return out
}

// TestV8 is the V8 measurement of `make bench` (CHIPS_V8=1): every guest in rounds, interleaved, under the strict
// WASI profile of Envoy 1.33–1.37. A guest that traps there is measured under the later profile, and the trap is
// recorded for the report.
func TestV8(t *testing.T) {
	if os.Getenv("CHIPS_V8") != "1" || testing.Short() {
		t.Skip("bench: set CHIPS_V8=1 for the V8 measurement (make bench does)")
	}
	guests, _ := v8Guests(t)
	spec := v8Spec{Profile: profileStrict, Warmup: 50000, Rounds: envInt("CHIPS_V8_ROUNDS", 6), Streams: 20000, Guests: guests}
	res := V8Result{Profile: profileStrict, Streams: spec.Streams, Rounds: spec.Rounds}
	out, err := runV8(t, spec)
	if err != nil {
		res.StrictTrap = lastLines(err.Error(), 1)
		t.Logf("under %s: %v", profileStrict, res.StrictTrap)
		spec.Profile, res.Profile = profileLater, profileLater
		if out, err = runV8(t, spec); err != nil {
			t.Fatalf("v8 host under %s: %v", profileLater, err)
		}
	}
	res.Node, res.V8, res.Flags = out.Node, out.V8, out.Flags
	for _, g := range out.Guests {
		res.Guests = append(res.Guests, g.V8GuestTimes)
		t.Logf("%s: µs per stream %.2f", g.Name, g.USPerStream)
	}
	if *v8Out != "" {
		b, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(repoPath(*v8Out), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// lastLines keeps the last n lines of s: bench/v8/host.mjs ends a failure with a one-line summary.
func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
