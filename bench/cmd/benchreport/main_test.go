package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/bench"
)

const sample = `goos: linux
cpu: Test CPU
clients: 8
BenchmarkPerStream/impl=proxytest-2   	 100	 70000 ns/op	 69000 cpu-ns/op	 55000 B/op	 124 allocs/op
BenchmarkPerStream/impl=wasmhost-2    	 100	  6000 ns/op	  5900 cpu-ns/op	   800 B/op	   9 allocs/op
BenchmarkPerStream/impl=proxytest-2   	 100	 80000 ns/op	 69000 cpu-ns/op	 55000 B/op	 124 allocs/op
BenchmarkPerStream/impl=wasmhost-2    	 100	  8000 ns/op	  5900 cpu-ns/op	   800 B/op	   9 allocs/op
BenchmarkPerStream/impl=proxytest-2   	 100	 90000 ns/op	 69000 cpu-ns/op	 55000 B/op	 124 allocs/op
BenchmarkPerStream/impl=wasmhost-2    	 100	  7000 ns/op	  5900 cpu-ns/op	   800 B/op	   9 allocs/op
BenchmarkServe/filter=off-2 	 1000	 80000 ns/op	 500 p50-us	 4000 p99-us	 12000 req/s
BenchmarkServe/filter=on-2  	 1000	 90000 ns/op	 600 p50-us	 4100 p99-us	 10000 req/s
BenchmarkRewrite/cookies=compliant-2 	 1000	 700 ns/op	 0 B/op	 0 allocs/op
PASS
`

func TestParseAndEvaluate(t *testing.T) {
	r, err := ParseBench(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if r.Config["cpu"] != "Test CPU" || r.Config["clients"] != "8" {
		t.Errorf("config = %v", r.Config)
	}
	if got := r.Runs("BenchmarkPerStream/impl=wasmhost", "ns/op"); got != 3 {
		t.Fatalf("runs = %d, want 3", got)
	}
	e := Evaluate(r, Pairs[0])
	if !e.Known || e.NumValue != 80000 || e.DenValue != 7000 || !e.Info {
		t.Errorf("pair 1 = %+v, want medians 80000/7000, shown as information", e)
	}
	e = Evaluate(r, Pairs[3])
	if !e.Known || e.Value < 0.83 || e.Value > 0.84 || e.Met {
		t.Errorf("serve pair = %+v, want 10000/12000 and the 0.9 target missed", e)
	}
	if e := Evaluate(r, Pairs[4]); e.Known {
		t.Errorf("start-up pair has no data but was evaluated: %+v", e)
	}
	var buf bytes.Buffer
	v8 := &bench.V8Result{Node: "v20", Profile: "c4d7bb0", Rounds: 3, Streams: 10, Guests: []bench.V8GuestTimes{
		{Name: "filter", USPerStream: []float64{9, 9, 9}, CPUPerStream: []float64{5, 3, 4}},
		{Name: "readheaders", USPerStream: []float64{7, 7, 7}, CPUPerStream: []float64{2, 1, 3}},
	}}
	Write(&buf, Inputs{Results: r, V8: v8})
	out := buf.String()
	for _, want := range []string{"| 1 | Per stream", "**11.69** (runner ÷ wasmhost)", "| none | information |",
		"| 3 | Native cookie.Rewrite", "**met**", "| 5 |", "not measured",
		"| 7 | In V8 (Node v20, --no-liftoff): the filter per stream (process CPU) | 4.00 µs | | | | ≤ 4 µs | **met** |",
		"| **2.00** (filter ÷ no-op) | ≤ 2 | **met** |", "## What it costs in Envoy's engine", "| filter | 4.00 µs | 2.00 | 9.00 µs |"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestTrimProcs(t *testing.T) {
	for in, want := range map[string]string{"BenchmarkA-2": "BenchmarkA", "BenchmarkA/x=y-16": "BenchmarkA/x=y", "BenchmarkA": "BenchmarkA", "BenchmarkA/x=a-b": "BenchmarkA/x=a-b"} {
		if got := trimProcs(in); got != want {
			t.Errorf("trimProcs(%q) = %q, want %q", in, got, want)
		}
	}
}
