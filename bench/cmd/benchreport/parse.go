package main

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Results are the samples of a `go test -bench` output: for each benchmark (name without the -GOMAXPROCS
// suffix) and unit, one value per run (-count).
type Results struct {
	Config  map[string]string // goos, goarch, pkg, cpu lines
	Samples map[string]map[string][]float64
	Order   []string // benchmark names in order of first appearance
}

// ParseBench reads the standard benchmark format: "BenchmarkName-N  iterations  value unit  value unit ...".
// Other lines are ignored, except the "key: value" configuration lines that precede the results.
func ParseBench(r io.Reader) (*Results, error) {
	res := &Results{Config: map[string]string{}, Samples: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && !strings.ContainsAny(k, " \t") && !strings.HasPrefix(k, "Benchmark") {
			res.Config[k] = strings.TrimSpace(v)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := trimProcs(f[0])
		units := res.Samples[name]
		if units == nil {
			units = map[string][]float64{}
			res.Samples[name] = units
			res.Order = append(res.Order, name)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("benchreport: %q: bad value %q", line, f[i])
			}
			units[f[i+1]] = append(units[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("benchreport: %w", err)
	}
	return res, nil
}

// trimProcs removes the "-N" GOMAXPROCS suffix go test adds to a benchmark name.
func trimProcs(name string) string {
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// Median returns the median sample of a benchmark in a unit, and whether there was any.
func (r *Results) Median(name, unit string) (float64, bool) {
	s := r.Samples[name][unit]
	if len(s) == 0 {
		return 0, false
	}
	return median(s), true
}

// Runs returns the number of samples of a benchmark in a unit.
func (r *Results) Runs(name, unit string) int { return len(r.Samples[name][unit]) }

func median(s []float64) float64 {
	c := slices.Clone(s)
	slices.Sort(c)
	n := len(c)
	if n%2 == 1 {
		return c[n/2]
	}
	return (c[n/2-1] + c[n/2]) / 2
}
