package main

import (
	"fmt"
	"image/color"
	"math"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// Serve modes as BenchmarkServe names them.
const (
	modeOff = "filter=off"
	modeOn  = "filter=on"
)

// drawLatencyChart draws the latency distribution of each serve mode as a percentile curve: latency (log scale)
// against the fraction of requests at or below it, so that the median and the tail are both readable.
func drawLatencyChart(lat map[string][]int64, path string) error {
	p := plot.New()
	p.Title.Text = "wasmhost serve: request latency, with and without the filter"
	p.X.Label.Text = "latency (µs, log scale)"
	p.Y.Label.Text = "requests at or below (%)"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 100
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -4
	p.Legend.YOffs = 4
	p.Add(plotter.NewGrid())
	styles := []struct {
		mode  string
		label string
		color color.Color
		dash  []vg.Length
	}{
		{modeOff, "without filter", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, nil},
		{modeOn, "with filter", color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, []vg.Length{vg.Points(4), vg.Points(2)}},
	}
	drawn := 0
	for _, s := range styles {
		samples := lat[s.mode]
		if len(samples) == 0 {
			continue
		}
		pts := percentileCurve(samples, 400)
		line, err := plotter.NewLine(pts)
		if err != nil {
			return fmt.Errorf("benchreport: chart: %w", err)
		}
		line.Color = s.color
		line.Width = vg.Points(1.5)
		line.Dashes = s.dash
		p50, p99 := quantile(samples, 0.5), quantile(samples, 0.99)
		p.Legend.Add(fmt.Sprintf("%s: p50 %.0f µs, p99 %.0f µs (%d requests)", s.label, p50/1e3, p99/1e3, len(samples)), line)
		p.Add(line)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("benchreport: chart: no serve latencies in the input")
	}
	p.Legend.Padding = vg.Points(2)
	p.Legend.ThumbnailWidth = vg.Points(24)
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	if err := p.Save(7*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("benchreport: chart: %w", err)
	}
	return nil
}

// percentileCurve samples the empirical distribution at n points, denser towards the tail, as (latency µs,
// percent at or below).
func percentileCurve(samples []int64, n int) plotter.XYs {
	s := slices.Clone(samples)
	slices.Sort(s)
	pts := make(plotter.XYs, 0, n+1)
	for i := 0; i <= n; i++ {
		// q runs from 0 to 1 with more points near 1: 1 - (1-t)^3.
		t := float64(i) / float64(n)
		q := 1 - math.Pow(1-t, 3)
		idx := min(int(q*float64(len(s)-1)+0.5), len(s)-1)
		x := math.Max(float64(s[idx])/1e3, 1)
		pts = append(pts, plotter.XY{X: x, Y: 100 * float64(idx+1) / float64(len(s))})
	}
	return pts
}

func quantile(samples []int64, q float64) float64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	i := min(max(int(q*float64(len(s))+0.5)-1, 0), len(s)-1)
	return float64(s[i])
}
