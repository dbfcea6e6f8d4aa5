package main

import (
	"fmt"
	"image/color"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// maxChartOps bounds the operations drawn per chart (the most frequent).
const maxChartOps = 8

var (
	colors = [2]color.Color{
		color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // first server
		color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // second server
	}
	// Percentile shades of each server's colour, lightest first.
	shade = []float64{0.45, 0.75, 1}
)

// writeCharts draws the scenario's throughput and latency-percentile
// charts into dir and returns their markdown image links.
func writeCharts(dir, link string, names []string, c comparison) ([]string, error) {
	ops := c.ops()
	if len(ops) > maxChartOps {
		ops = ops[:maxChartOps]
	}
	if len(ops) == 0 {
		return nil, nil
	}
	labels := make([]string, len(ops))
	for i, o := range ops {
		labels[i] = o.String()
	}
	width := vg.Length(60+40*len(ops)) * vg.Millimeter

	// Throughput: operations per second, one bar per server.
	tp := plot.New()
	tp.Title.Text = fmt.Sprintf("%s: throughput (operations/s, higher is better)", c.Scenario)
	tp.Y.Label.Text = "operations/s"
	bw := vg.Points(14)
	for i, r := range c.Runs {
		vals := make(plotter.Values, len(ops))
		for j, o := range ops {
			vals[j] = r.rate(o)
		}
		bars, err := plotter.NewBarChart(vals, bw)
		if err != nil {
			return nil, err
		}
		bars.Color, bars.LineStyle.Width = colors[i], 0
		bars.Offset = vg.Length(2*i-1) * bw / 2
		tp.Add(bars)
		tp.Legend.Add(names[i], bars)
	}
	tp.Legend.Top = true
	headroom(tp)
	tp.NominalX(labels...)
	tp.X.Tick.Label.Rotation = 0.5
	tp.X.Tick.Label.XAlign, tp.X.Tick.Label.YAlign = -1, -0.5
	tpName := fmt.Sprintf("loadtest-%s-throughput.png", c.Scenario)
	if err := tp.Save(width, 9*vg.Centimeter, filepath.Join(dir, tpName)); err != nil {
		return nil, err
	}

	// Latency: p50, p95 and p99 of each server, in milliseconds.
	lp := plot.New()
	lp.Title.Text = fmt.Sprintf("%s: latency p50 / p95 / p99 (ms, lower is better)", c.Scenario)
	lp.Y.Label.Text = "milliseconds"
	bw = vg.Points(9)
	ps := []float64{50, 95, 99}
	n := 0
	for i, r := range c.Runs {
		for k, p := range ps {
			vals := make(plotter.Values, len(ops))
			for j, o := range ops {
				vals[j] = percentile(r.Durations[o], p)
			}
			bars, err := plotter.NewBarChart(vals, bw)
			if err != nil {
				return nil, err
			}
			bars.Color, bars.LineStyle.Width = tint(colors[i], shade[k]), 0
			bars.Offset = (vg.Length(n) - 2.5) * bw
			n++
			lp.Add(bars)
			lp.Legend.Add(fmt.Sprintf("%s p%.0f", names[i], p), bars)
		}
	}
	lp.Legend.Top = true
	headroom(lp)
	lp.NominalX(labels...)
	lp.X.Tick.Label.Rotation = 0.5
	lp.X.Tick.Label.XAlign, lp.X.Tick.Label.YAlign = -1, -0.5
	lpName := fmt.Sprintf("loadtest-%s-latency.png", c.Scenario)
	if err := lp.Save(width, 9*vg.Centimeter, filepath.Join(dir, lpName)); err != nil {
		return nil, err
	}
	return []string{
		fmt.Sprintf("![%s throughput](%s/%s)", c.Scenario, link, tpName),
		fmt.Sprintf("![%s latency percentiles](%s/%s)", c.Scenario, link, lpName),
	}, nil
}

// headroom raises the top of p's Y axis so the legend, drawn in the top
// right corner, clears the bars.
func headroom(p *plot.Plot) {
	p.Y.Min = 0
	p.Y.Max *= 1.45
}

// tint mixes c with white: f=1 is c itself.
func tint(c color.Color, f float64) color.Color {
	r, g, b, _ := c.RGBA()
	mix := func(v uint32) uint8 { return uint8(float64(v>>8)*f + 255*(1-f)) }
	return color.RGBA{R: mix(r), G: mix(g), B: mix(b), A: 0xff}
}
