package benchcompare

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// The two systems' colours in every panel.
var colours = map[System]color.Color{
	ZooKeeper: color.RGBA{R: 0xd6, G: 0x60, B: 0x1a, A: 0xff},
	Zabkeeper: color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff},
}

// WriteSVG draws the workload rows as an SVG of four panels: ops/s and
// p99, p99.9 and p50 latency per workload, both systems side by side.
func (rep *Report) WriteSVG(w io.Writer) error {
	return rep.drawChart(w, func(w, h vg.Length) vg.CanvasWriterTo { return vgsvg.New(w, h) })
}

// drawChart draws the panels on a canvas that newCanvas makes.
func (rep *Report) drawChart(w io.Writer, newCanvas func(w, h vg.Length) vg.CanvasWriterTo) error {
	if len(rep.Rows) == 0 {
		return fmt.Errorf("benchcompare: chart: no workload results")
	}
	labels := make([]string, len(rep.Rows))
	for i, row := range rep.Rows {
		srv := "standalone"
		if row.Servers > 1 {
			srv = fmt.Sprintf("%d servers", row.Servers)
		}
		labels[i] = fmt.Sprintf("%s\n%s", row.Workload, srv)
	}
	panels := []struct {
		title, unit string
		value       func(System, Row) float64
	}{
		{"Throughput (higher is better)", "ops/s", func(s System, r Row) float64 { return r.Results[s].OpsPerSec }},
		{"p99 latency (lower is better)", "ms", func(s System, r Row) float64 { return r.Results[s].Latency.P99 }},
		{"p99.9 latency (lower is better)", "ms", func(s System, r Row) float64 { return r.Results[s].Latency.P999 }},
		{"p50 latency (lower is better)", "ms", func(s System, r Row) float64 { return r.Results[s].Latency.P50 }},
	}
	width := vg.Length(len(rep.Rows))*0.9*vg.Inch + 1.5*vg.Inch
	barWidth := vg.Points(14)
	var plots [][]*plot.Plot
	for _, panel := range panels {
		p := plot.New()
		p.Title.Text = panel.title
		p.Y.Label.Text = panel.unit
		p.Legend.Top = true
		p.Legend.Left = true
		p.Legend.XOffs = vg.Points(8)
		top := 0.0
		for i, sys := range systems {
			vals := make(plotter.Values, len(rep.Rows))
			for j, row := range rep.Rows {
				vals[j] = panel.value(sys, row)
				top = max(top, vals[j])
			}
			bars, err := plotter.NewBarChart(vals, barWidth)
			if err != nil {
				return fmt.Errorf("benchcompare: chart: %w", err)
			}
			bars.Color = colours[sys]
			bars.LineStyle.Width = 0
			bars.Offset = barWidth * vg.Length(2*i-1) / 2
			p.Add(bars)
			p.Legend.Add(string(sys), bars)
		}
		p.NominalX(labels...)
		// Room for the legend above the bars, and for the outer bars.
		p.Y.Min, p.Y.Max = 0, top*1.25
		p.X.Min, p.X.Max = -1.3, float64(len(rep.Rows))-0.3
		p.Add(plotter.NewGrid())
		plots = append(plots, []*plot.Plot{p})
	}
	height := vg.Length(len(panels)) * 2.8 * vg.Inch
	canvas := newCanvas(width, height)
	dc := draw.New(canvas)
	tiles := draw.Tiles{Rows: len(panels), Cols: 1, PadTop: vg.Points(6), PadBottom: vg.Points(6), PadY: vg.Points(12)}
	for i, row := range plot.Align(plots, tiles, dc) {
		plots[i][0].Draw(row[0])
	}
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("benchcompare: chart: %w", err)
	}
	return nil
}
