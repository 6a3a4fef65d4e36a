// Command benchreport turns the output of the bench package's benchmarks into BENCHMARKS.md: one table row per
// side-by-side pair with its ratio and whether the target of DESIGN.md §7 is met, the machine, the commands, the soak
// result, benchstat's summary, a CPU profile and a chart of the serve latencies.
//
//	benchreport -bench build/bench/bench.txt -soak build/bench/soak.json -latencies build/bench/latencies.json \
//	    -benchstat build/bench/benchstat.txt -profile build/bench/profile.txt -notes bench/analysis.md \
//	    -cmd 'go test ...' -out BENCHMARKS.md -chart bench/serve-latency.png
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/chips-proxy-wasm/chips-proxy-wasm/bench"
)

type options struct {
	bench, soak, v8, latencies, benchstat, profile, notes string
	out, chart                                            string
	commands                                              []string
}

func main() {
	var o options
	flag.StringVar(&o.bench, "bench", "", "raw `go test -bench` output (required)")
	flag.StringVar(&o.soak, "soak", "", "JSON written by TestSoak -soak.out")
	flag.StringVar(&o.v8, "v8", "", "JSON written by TestV8 -v8.out")
	flag.StringVar(&o.latencies, "latencies", "", "JSON written by BenchmarkServe -latencies")
	flag.StringVar(&o.benchstat, "benchstat", "", "benchstat's output, included as is")
	flag.StringVar(&o.profile, "profile", "", "`go tool pprof -top` output, included as is")
	flag.StringVar(&o.notes, "notes", "", "markdown included as the report's analysis section")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "report to write")
	flag.StringVar(&o.chart, "chart", "", "PNG chart of the serve latencies to write (linked from the report)")
	flag.Func("cmd", "a command that produced the inputs, listed in the report (repeatable)", func(s string) error {
		o.commands = append(o.commands, s)
		return nil
	})
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.bench == "" {
		return errors.New("benchreport: -bench is required")
	}
	f, err := os.Open(o.bench)
	if err != nil {
		return fmt.Errorf("benchreport: %w", err)
	}
	res, err := ParseBench(f)
	f.Close()
	if err != nil {
		return err
	}
	// Commands are shown relative to the repository, whatever directory make ran in.
	if wd, err := os.Getwd(); err == nil {
		for i, c := range o.commands {
			o.commands[i] = strings.ReplaceAll(c, wd+string(filepath.Separator), "")
		}
	}
	in := Inputs{Results: res, Machine: readMachine(res), Commands: o.commands, Generated: time.Now().UTC()}
	if o.soak != "" {
		in.Soak = new(bench.SoakResult)
		if err := readJSON(o.soak, in.Soak); err != nil {
			return err
		}
	}
	if o.v8 != "" {
		in.V8 = new(bench.V8Result)
		if err := readJSON(o.v8, in.V8); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		path string
		dst  *string
	}{{o.benchstat, &in.Benchstat}, {o.profile, &in.Profile}, {o.notes, &in.Notes}} {
		if t.path == "" {
			continue
		}
		b, err := os.ReadFile(t.path)
		if err != nil {
			return fmt.Errorf("benchreport: %w", err)
		}
		*t.dst = strings.TrimRight(string(b), "\n")
	}
	if o.latencies != "" && o.chart != "" {
		var lat map[string][]int64
		if err := readJSON(o.latencies, &lat); err != nil {
			return err
		}
		if err := drawLatencyChart(lat, o.chart); err != nil {
			return err
		}
		rel, err := filepath.Rel(filepath.Dir(o.out), o.chart)
		if err != nil {
			rel = o.chart
		}
		in.Chart = filepath.ToSlash(rel)
	}
	var buf bytes.Buffer
	Write(&buf, in)
	if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("benchreport: %w", err)
	}
	return nil
}

// readJSON decodes the JSON file at path into v.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("benchreport: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("benchreport: %s: %w", path, err)
	}
	return nil
}

// Machine describes where the benchmarks ran.
type Machine struct {
	CPUs      int
	CPUModel  string
	GoTestCPU string // go test's "cpu:" line
	Kernel    string
	Go        string
	Wazero    string
	LoadAvg   string
}

func readMachine(res *Results) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoTestCPU: res.Config["cpu"], Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	// The report runs from the module root; go.mod names the wazero the benchmarks were built with.
	if b, err := os.ReadFile("go.mod"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "github.com/tetratelabs/wazero" {
				m.Wazero = f[1]
			}
		}
	}
	return m
}
