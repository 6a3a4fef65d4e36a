package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/bench"
	"github.com/chips-proxy-wasm/chips-proxy-wasm/internal/testwasm"
)

// Inputs is everything the report is made of.
type Inputs struct {
	Results   *Results
	Machine   Machine
	Commands  []string
	Soak      *bench.SoakResult
	V8        *bench.V8Result
	Benchstat string
	Profile   string
	Notes     string
	Chart     string // path relative to the report
	Generated time.Time
}

// Pair is one side-by-side comparison: Ratio = median(Num)/median(Den) in Unit.
type Pair struct {
	ID, Title string
	Num, Den  string // benchmark names
	NumLabel  string
	DenLabel  string
	Unit      string
	Ratio     string // how the ratio reads, e.g. "SDK runner ÷ wasmhost"
	Target    float64
	AtLeast   bool // the ratio must be ≥ Target (else ≤)
	Info      bool // no target: the ratio is shown as information
}

// Pairs are the targets of DESIGN.md §7 that are ratios of two benchmarks of the same run.
var Pairs = []Pair{
	{ID: "1", Title: "Per stream: this host vs the SDK's wazero runner (filter.wasm, chat response)",
		Num: "BenchmarkPerStream/impl=proxytest", Den: "BenchmarkPerStream/impl=wasmhost",
		NumLabel: "proxytest runner", DenLabel: "wasmhost", Unit: "ns/op",
		Ratio: "runner ÷ wasmhost", Info: true},
	{ID: "2", Title: "The filter vs a no-op guest that only reads the response headers (same host)",
		Num: "BenchmarkFilterCost/guest=filter", Den: "BenchmarkFilterCost/guest=readheaders",
		NumLabel: "filter", DenLabel: "readheaders", Unit: "ns/op",
		Ratio: "filter ÷ no-op", Target: 2},
	{ID: "2a", Title: "The filter with affinity (open a token, read upstream.address, seal its refresh) vs the no-op guest",
		Num: "BenchmarkFilterCost/guest=filter-affinity", Den: "BenchmarkFilterCost/guest=readheaders",
		NumLabel: "filter, affinity", DenLabel: "readheaders", Unit: "ns/op",
		Ratio: "filter ÷ no-op", Info: true},
	{ID: "4", Title: "wasmhost serve throughput with the filter vs without (same load)",
		Num: "BenchmarkServe/filter=on", Den: "BenchmarkServe/filter=off",
		NumLabel: "with filter", DenLabel: "without", Unit: "req/s",
		Ratio: "with ÷ without", Target: 0.9, AtLeast: true},
	{ID: "9", Title: "wasmhost serve process CPU per request, filter (default configuration) vs none",
		Num: "BenchmarkServeProcess/config=default", Den: "BenchmarkServeProcess/config=none",
		NumLabel: "with filter", DenLabel: "without", Unit: "cpu-ns/op",
		Ratio: "with ÷ without", Target: 1.2},
	{ID: "9a", Title: "wasmhost serve process CPU per request, filter (affinity configuration) vs none",
		Num: "BenchmarkServeProcess/config=affinity", Den: "BenchmarkServeProcess/config=none",
		NumLabel: "with filter", DenLabel: "without", Unit: "cpu-ns/op",
		Ratio: "with ÷ without", Info: true},
	{ID: "10", Title: "wasmhost serve process throughput, filter (default configuration) vs none",
		Num: "BenchmarkServeProcess/config=default", Den: "BenchmarkServeProcess/config=none",
		NumLabel: "with filter", DenLabel: "without", Unit: "req/s",
		Ratio: "with ÷ without", Target: 0.9, AtLeast: true},
	{ID: "5", Title: "Start-up (host.New + Close): no compilation cache vs a warm one",
		Num: "BenchmarkStartup/cache=none", Den: "BenchmarkStartup/cache=warm",
		NumLabel: "cold", DenLabel: "cached", Unit: "ns/op",
		Ratio: "cold ÷ cached", Target: 5, AtLeast: true},
}

// Evaluated is a pair with its numbers.
type Evaluated struct {
	Pair
	NumValue, DenValue float64
	Value              float64 // the ratio in Unit
	CPU                float64 // the ratio of cpu-ns/op, 0 when not measured
	Runs               int
	Met, Known         bool
}

// Evaluate computes a pair from the results.
func Evaluate(r *Results, p Pair) Evaluated {
	e := Evaluated{Pair: p}
	n, ok1 := r.Median(p.Num, p.Unit)
	d, ok2 := r.Median(p.Den, p.Unit)
	if !ok1 || !ok2 || d == 0 {
		return e
	}
	e.NumValue, e.DenValue, e.Value, e.Known = n, d, n/d, true
	e.Runs = min(r.Runs(p.Num, p.Unit), r.Runs(p.Den, p.Unit))
	if cn, ok := r.Median(p.Num, "cpu-ns/op"); ok && p.Unit == "ns/op" {
		if cd, ok := r.Median(p.Den, "cpu-ns/op"); ok && cd > 0 {
			e.CPU = cn / cd
		}
	}
	e.Met = e.meets(e.Deciding())
	return e
}

// Deciding is the ratio the verdict uses: the thread-CPU ratio when both sides measured it (the work per operation,
// which other processes on a shared machine do not inflate), else the wall-time ratio.
func (e Evaluated) Deciding() float64 {
	if e.CPU > 0 {
		return e.CPU
	}
	return e.Value
}

func (e Evaluated) meets(v float64) bool {
	if e.AtLeast {
		return v >= e.Target
	}
	return v <= e.Target
}

func (e Evaluated) targetText() string {
	if e.Info {
		return "none"
	}
	if e.AtLeast {
		return fmt.Sprintf("≥ %s", trimFloat(e.Target))
	}
	return fmt.Sprintf("≤ %s", trimFloat(e.Target))
}

func (e Evaluated) verdict() string {
	if e.Info {
		return "information"
	}
	return verdict(true, e.Met)
}

func verdict(known, met bool) string {
	switch {
	case !known:
		return "not measured"
	case met:
		return "**met**"
	}
	return "**missed**"
}

// Write renders the report.
func Write(w io.Writer, in Inputs) {
	r := in.Results
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("# Benchmarks\n\n")
	p("Generated by `make bench` (bench/cmd/benchreport) on %s. Every pair below is two sub-benchmarks of one\n", in.Generated.Format("2006-01-02 15:04 MST"))
	p("benchmark, and `make bench` runs the benchmark binary several times in a row, so the two sides alternate\n")
	p("(A, B, A, B…) and noise on this shared machine hits both; each value is the median of the runs. Targets are those\n")
	p("of DESIGN.md §7. `cpu-ns/op` is the CPU time of the benchmark's own thread per operation (the guest runs on it),\n")
	p("which other processes on the machine do not inflate.\n\n")

	p("## Targets\n\n")
	p("The verdict uses the thread-CPU ratio where both sides report `cpu-ns/op` (the per-stream pairs), else the\n")
	p("wall-time ratio.\n\n")
	p("| # | comparison | A | B | A ÷ B (wall) | A ÷ B (thread CPU) | target | |\n|---|---|---|---|---|---|---|---|\n")
	for _, pair := range Pairs {
		e := Evaluate(r, pair)
		if !e.Known {
			p("| %s | %s | – | – | – | – | %s | not measured |\n", e.ID, e.Title, e.targetText())
			continue
		}
		wall, cpu := fmt.Sprintf("**%.2f** (%s)", e.Value, e.Ratio), "–"
		if e.CPU > 0 {
			wall, cpu = fmt.Sprintf("%.2f", e.Value), fmt.Sprintf("**%.2f** (%s)", e.CPU, e.Ratio)
		}
		if e.Unit == "cpu-ns/op" {
			// process CPU, not the benchmark thread's
			wall, cpu = "–", fmt.Sprintf("**%.2f** (%s, process CPU)", e.Value, e.Ratio)
		}
		p("| %s | %s | %s: %s | %s: %s | %s | %s | %s | %s |\n", e.ID, e.Title,
			e.NumLabel, formatValue(e.NumValue, e.Unit), e.DenLabel, formatValue(e.DenValue, e.Unit),
			wall, cpu, e.targetText(), e.verdict())
	}
	floorKnown := false
	if a, ok := r.Median("BenchmarkRewrite/cookies=compliant", "allocs/op"); ok {
		floorKnown = true
		p("| 3 | Native cookie.Rewrite, 3 cookies that need no change: allocations | %s allocs/op | | | | 0 | %s |\n",
			trimFloat(a), verdict(true, a == 0))
	}
	if s := in.Soak; s != nil {
		p("| 6 | Soak, %s streams through one instance: guest linear memory after warm-up vs end | %s | %s | | | no more growth than a leak of %d B per stream | %s |\n",
			thousands(s.Streams), bytesText(s.GuestMemWarm), bytesText(s.GuestMemMax), testwasm.LeakBytesPerStream,
			verdict(true, testwasm.CheckGuestMemoryFlat(int64(s.GuestMemWarm), int64(s.GuestMemMax), s.Streams-s.WarmUp) == nil))
	}
	if v := in.V8; v != nil {
		filter, ok1 := v8Median(v, "filter")
		noop, ok2 := v8Median(v, "readheaders")
		if ok1 {
			p("| 7 | In V8 (Node %s, --no-liftoff): the filter per stream (process CPU) | %s | | | | ≤ 4 µs | %s |\n",
				v.Node, microseconds(filter), verdict(true, filter <= 4))
		}
		if ok1 && ok2 {
			p("| 8 | In V8: the filter vs the no-op guest that only reads the response headers | filter: %s | readheaders: %s | | **%.2f** (filter ÷ no-op) | ≤ 2 | %s |\n",
				microseconds(filter), microseconds(noop), filter/noop, verdict(true, filter/noop <= 2))
		}
	}
	p("\n")

	p("## 1, 2. Per-stream cost\n\n")
	p("One stream = NewStream, request headers (:method, :path, :authority, :scheme, user-agent, cookie…), upstream\n")
	p("address, response headers (11 headers, 3 Set-Cookie that all need rewriting), Close. The SDK's runner is\n")
	p("`proxytest.NewWasmVMContext` behind `proxytest.NewHostEmulator` on the same filter.wasm. `guest=wat-noop` is a\n")
	p("hand-written module whose callbacks return at once: the host's own floor.\n\n")
	benchTable(w, r, []string{
		"BenchmarkPerStream/impl=proxytest", "BenchmarkPerStream/impl=wasmhost",
		"BenchmarkFilterCost/guest=wat-noop", "BenchmarkFilterCost/guest=readheaders", "BenchmarkFilterCost/guest=filter",
		"BenchmarkFilterCost/guest=filter-affinity",
	}, []string{"ns/op", "cpu-ns/op", "B/op", "allocs/op"})
	p("`guest=filter-affinity` runs the filter with %s on the chat stream plus an affinity cookie\n", "`testdata/config/affinity.json`")
	p("pinned an hour ago and last seen ten minutes ago: each stream opens the token, sets the routing header, reads\n")
	p("upstream.address and seals the refreshed token into a fourth Set-Cookie.\n\n")

	if v := in.V8; v != nil {
		writeV8(w, v)
	}

	p("## 3. The floor: the native rewriter\n\n")
	p("`cookie.Rewrite` compiled natively on the same three cookies (all rewritten), and on their rewritten forms\n")
	p("(compliant: returned as is). The allocations are the three new header values; compliant cookies cost none.\n\n")
	if floorKnown {
		benchTable(w, r, []string{"BenchmarkRewrite/cookies=rewritten", "BenchmarkRewrite/cookies=compliant"},
			[]string{"ns/op", "B/op", "allocs/op"})
	}

	p("## 4. wasmhost serve with and without the filter\n\n")
	p("host/serve in front of a loopback upstream that answers every request with the chat response's headers (three\n")
	p("Set-Cookie) and a 512-byte body; %s keep-alive HTTP/1.1 clients on loopback share each run's requests; the proxy\n", clientsText(in))
	p("with the filter uses the default pool (one instance per CPU). Latency is from sending the request to reading the\n")
	p("last byte. ns/op is wall time per request (the inverse of throughput).\n\n")
	benchTable(w, r, []string{"BenchmarkServe/filter=off", "BenchmarkServe/filter=on"},
		[]string{"req/s", "ns/op", "p50-us", "p99-us"})
	if in.Chart != "" {
		p("![serve latency distribution with and without the filter](%s)\n\n", in.Chart)
	}

	p("## 9, 10. wasmhost serve as a process\n\n")
	p("The `wasmhost` binary itself, started three times (no filter; the filter with an empty configuration; the filter\n")
	p("with testdata/config/affinity.json, which issues an affinity cookie on every request since the clients keep no\n")
	p("cookies), each in front of the same loopback upstream (the chat response, three Set-Cookie), driven by 16\n")
	p("keep-alive clients with a fixed number of requests per configuration; the configurations alternate from run to\n")
	p("run. cpu-ns/op is the serve process's own CPU time (user and system, every thread, /proc/PID/stat) per request:\n")
	p("neither the clients nor the upstream count. To profile it: `wasmhost serve --admin 127.0.0.1:9901 --pprof …`\n")
	p("under load, then `go tool pprof http://127.0.0.1:9901/debug/pprof/profile?seconds=10`.\n\n")
	benchTable(w, r, []string{"BenchmarkServeProcess/config=none", "BenchmarkServeProcess/config=default",
		"BenchmarkServeProcess/config=affinity"}, []string{"cpu-ns/op", "req/s", "ns/op"})

	p("## 5. Start-up\n\n")
	p("`host.New` (decode, Envoy checks, compile, first instance with _initialize, vm_start and configure) then `Close`,\n")
	p("without a compilation cache and with a warm on-disk one (as a restarted process finds it).\n\n")
	benchTable(w, r, []string{"BenchmarkStartup/cache=none", "BenchmarkStartup/cache=warm"}, []string{"ns/op", "B/op", "allocs/op"})

	if s := in.Soak; s != nil {
		p("## 6. Soak\n\n")
		p("TestSoak (CHIPS_SOAK=1): %s chat streams through one host with PoolSize 1 and the filter; guest memory read\n", thousands(s.Streams))
		p("through a wazero memory allocator handed to host.New, host heap after runtime.GC.\n\n")
		p("| measure | value |\n|---|---|\n")
		if s.Envoy != "" {
			p("| host's Envoy profile (WASI answers, restricted callbacks) | %s |\n", s.Envoy)
		}
		p("| streams (warm-up included) | %s (%s) |\n", thousands(s.Streams), thousands(s.WarmUp))
		p("| guest failures (traps) | %d |\n", s.GuestFailures)
		p("| cookies rewritten (metric chips.cookies_rewritten) | %s |\n", thousands(int(s.Rewritten)))
		p("| guest linear memory after warm-up | %s |\n", bytesText(s.GuestMemWarm))
		p("| guest linear memory at end (max seen) | %s (%s) |\n", bytesText(s.GuestMemEnd), bytesText(s.GuestMemMax))
		p("| host Go heap after warm-up → at end | %s → %s |\n", bytesText(s.HostHeapWarm), bytesText(s.HostHeapEnd))
		p("| time per stream after warm-up | %s |\n\n", formatValue(s.NsPerStream, "ns/op"))
	}

	if in.Notes != "" {
		p("%s\n\n", in.Notes)
	}
	if in.Profile != "" {
		p("## CPU profile of the filter's stream\n\n")
		p("`go tool pprof -top` of BenchmarkFilterCost/guest=filter. `runtime._ExternalCode` is machine code wazero\n")
		p("compiled from the guest: the guest's own work, which Go's profiler cannot see into.\n\n")
		p("```\n%s\n```\n\n", in.Profile)
	}
	if in.Benchstat != "" {
		p("## benchstat\n\n```\n%s\n```\n\n", in.Benchstat)
	}

	m := in.Machine
	p("## Machine and commands\n\n")
	p("| | |\n|---|---|\n")
	p("| CPUs (nproc) | %d |\n", m.CPUs)
	p("| CPU model (/proc/cpuinfo) | %s |\n", orDash(m.CPUModel))
	if m.GoTestCPU != "" && m.GoTestCPU != m.CPUModel {
		p("| CPU (go test) | %s |\n", m.GoTestCPU)
	}
	p("| kernel | %s |\n| Go | %s |\n| wazero | %s |\n", orDash(m.Kernel), m.Go, orDash(m.Wazero))
	if m.LoadAvg != "" {
		p("| load average when the report was written (1, 5, 15 min) | %s |\n", m.LoadAvg)
	}
	p("\n")
	if len(in.Commands) > 0 {
		p("`make bench` ran:\n\n```\n%s\n```\n", strings.Join(in.Commands, "\n"))
	}
}

func clientsText(in Inputs) string {
	if c := in.Results.Config["clients"]; c != "" {
		return c
	}
	return "several"
}

// benchTable writes the medians of the given benchmarks in the given units.
func benchTable(w io.Writer, r *Results, names, units []string) {
	fmt.Fprintf(w, "| benchmark | runs |")
	for _, u := range units {
		fmt.Fprintf(w, " %s |", u)
	}
	fmt.Fprintf(w, "\n|---|---|%s\n", strings.Repeat("---|", len(units)))
	for _, n := range names {
		if _, ok := r.Samples[n]; !ok {
			continue
		}
		fmt.Fprintf(w, "| %s | %d |", strings.TrimPrefix(n, "Benchmark"), r.Runs(n, units[0]))
		for _, u := range units {
			if v, ok := r.Median(n, u); ok {
				fmt.Fprintf(w, " %s |", formatValue(v, u))
			} else {
				fmt.Fprintf(w, " – |")
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

// formatValue prints a value in its unit, durations in a readable scale.
func formatValue(v float64, unit string) string {
	switch unit {
	case "ns/op", "cpu-ns/op":
		switch {
		case v >= 1e9:
			return fmt.Sprintf("%.2f s", v/1e9)
		case v >= 1e6:
			return fmt.Sprintf("%.1f ms", v/1e6)
		case v >= 1e3:
			return fmt.Sprintf("%.2f µs", v/1e3)
		}
		return fmt.Sprintf("%.0f ns", v)
	case "p50-us", "p99-us":
		return fmt.Sprintf("%.0f µs", v)
	case "req/s":
		return fmt.Sprintf("%s req/s", thousands(int(v+0.5)))
	case "B/op":
		return bytesText(uint64(v))
	}
	return trimFloat(v)
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// writeV8 renders the section on Node's V8, the engine Envoy embeds.
func writeV8(w io.Writer, v *bench.V8Result) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("## What it costs in Envoy's engine\n\n")
	p("The same module in V8 (Node %s, V8 %s, flags `%s`: TurboFan only, as Envoy runs V8), through\n", v.Node, v.V8, strings.Join(v.Flags, " "))
	p("bench/v8/host.mjs, a small proxy-wasm host that implements the host functions the modules import as\n")
	p("proxy-wasm-cpp-host does, WASI profile included; TestV8MatchesWazero checks that its output equals this\n")
	p("repository's host's on the same streams. Each round runs %s streams of every guest in turn; values are the\n", thousands(v.Streams))
	p("medians of %d rounds. The targets use the process's CPU time per stream (Node 20 has no per-thread clock;\n", v.Rounds)
	p("the guest runs on the main thread), which other processes on the machine do not inflate; wall time is shown\n")
	p("beside it. The streams are those of section 1, 2.\n\n")
	if v.StrictTrap != "" {
		p("Under the strict WASI profile of Envoy 1.33–1.37 (proxy-wasm-cpp-host c4d7bb0: poll_oneoff answers ENOSYS)\n")
		p("a guest failed, so these numbers were taken under %s (poll_oneoff answers success):\n\n", v.Profile)
		p("```\n%s\n```\n\n", v.StrictTrap)
	} else {
		p("Every guest ran under the WASI profile %s (proxy-wasm-cpp-host as Envoy 1.33–1.37 ship it).\n\n", v.Profile)
	}
	noop, haveNoop := v8Median(v, "readheaders")
	p("| guest | process CPU µs per stream | ÷ readheaders | µs per stream (wall) |\n|---|---|---|---|\n")
	for _, g := range v.Guests {
		cpu, _ := v8Median(v, g.Name)
		ratio := "–"
		if haveNoop && noop > 0 {
			ratio = fmt.Sprintf("%.2f", cpu/noop)
		}
		p("| %s | %s | %s | %s |\n", g.Name, microseconds(cpu), ratio, microseconds(median(g.USPerStream)))
	}
	p("\n")
}

func microseconds(us float64) string { return fmt.Sprintf("%.2f µs", us) }

// v8Median returns the median process CPU time per stream of the named guest, in microseconds.
func v8Median(r *bench.V8Result, guest string) (float64, bool) {
	for _, g := range r.Guests {
		if g.Name == guest && len(g.CPUPerStream) > 0 {
			return median(g.CPUPerStream), true
		}
	}
	return 0, false
}
