package main

import (
	"fmt"
	"image/color"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

var barColors = map[string]color.Color{
	"gateway": color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"nginx":   color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"haproxy": color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
}

// barPlot draws one bar per proxy with its value written above it.
func barPlot(title, ylabel string, sums []summary, value func(summary) float64, format string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	names := make([]string, len(sums))
	var labels plotter.XYLabels
	top := 0.0
	for i, s := range sums {
		names[i] = s.name
		v := value(s)
		top = max(top, v)
		b, err := plotter.NewBarChart(plotter.Values{v}, vg.Points(48))
		if err != nil {
			return nil, err
		}
		b.XMin = float64(i)
		if c, ok := barColors[s.name]; ok {
			b.Color = c
		}
		b.LineStyle.Width = 0
		p.Add(b)
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(i), Y: v})
		labels.Labels = append(labels.Labels, fmt.Sprintf(format, v))
	}
	l, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i].XAlign = draw.XCenter
		l.Offset = vg.Point{Y: vg.Points(3)}
	}
	p.Add(l)
	p.Y.Max = top * 1.15
	p.NominalX(names...)
	return p, nil
}

// writeChart writes a PNG with two panels: requests/s (median over
// rounds) and CPU time per request.
func writeChart(path string, sums []summary) error {
	rps, err := barPlot("requests/s on one core (higher is better)", "requests/s", sums,
		func(s summary) float64 { return s.rps }, "%.0f")
	if err != nil {
		return err
	}
	cpu, err := barPlot("CPU time per request (lower is better)", "µs of CPU per request", sums,
		func(s summary) float64 { return s.cpuPerReq }, "%.2f µs")
	if err != nil {
		return err
	}
	img := vgimg.New(vg.Points(820), vg.Points(340))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Points(24), PadY: vg.Points(12),
		PadTop: vg.Points(8), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(8)}
	cs := plot.Align([][]*plot.Plot{{rps, cpu}}, tiles, dc)
	rps.Draw(cs[0][0])
	cpu.Draw(cs[0][1])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
