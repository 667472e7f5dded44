package main

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// series is one line of the chart: throughput (Y) against concurrency (X).
type series struct {
	Name   string
	Color  color.RGBA
	Dashed bool // a peer's line, so it reads apart from gatehouse's
	Points []xy
}

// xy is one point of a series.
type xy struct{ X, Y float64 }

// Chart geometry. The Y axis is logarithmic: the scenarios span three
// orders of magnitude (argon2id logins at tens per second, a cached bearer
// check at tens of thousands), and on a linear axis every slow scenario
// would be a flat line on the floor.
const (
	chartW, chartH = 1200, 720
	plotLeft       = 80
	plotTop        = 56
	plotRight      = 860 // the legend sits right of the plot
	plotBottom     = 660
)

// palette gives each scenario a colour that stays apart from its
// neighbours on a white background.
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xd6, 0x27, 0x28, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xff, 0x7f, 0x0e, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff}, {0x00, 0x00, 0x00, 0xff}, {0x39, 0x3b, 0x79, 0xff},
}

// renderChart draws a line chart of ss (X: concurrency on a log2 axis; Y:
// requests per second on a log10 axis) as a PNG.
func renderChart(w io.Writer, title string, ss []series) error {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.Points {
			if p.X <= 0 || p.Y <= 0 || math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
				continue
			}
			xmin, xmax = math.Min(xmin, p.X), math.Max(xmax, p.X)
			ymin, ymax = math.Min(ymin, p.Y), math.Max(ymax, p.Y)
		}
	}
	if math.IsInf(xmin, 1) {
		return errors.New("chart: no positive points to draw")
	}
	if xmax == xmin {
		xmin, xmax = xmin/2, xmax*2
	}
	// Whole decades on Y, so every gridline is a round number.
	ylo := math.Pow(10, math.Floor(math.Log10(ymin)))
	yhi := math.Pow(10, math.Ceil(math.Log10(ymax)))
	if yhi <= ylo {
		yhi = ylo * 10
	}
	px := func(x float64) int {
		return plotLeft + int(math.Round((math.Log2(x)-math.Log2(xmin))/(math.Log2(xmax)-math.Log2(xmin))*float64(plotRight-plotLeft)))
	}
	py := func(y float64) int {
		return plotBottom - int(math.Round((math.Log10(y)-math.Log10(ylo))/(math.Log10(yhi)-math.Log10(ylo))*float64(plotBottom-plotTop)))
	}

	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	draw.Draw(img, img.Bounds(), image.NewUniform(color.White), image.Point{}, draw.Src)
	grid := color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
	axis := color.RGBA{0x30, 0x30, 0x30, 0xff}

	// Y gridlines at 1, 2, 5 × 10^k; labels on the decades and their 2 and 5.
	for dec := ylo; dec < yhi*1.001; dec *= 10 {
		for _, m := range []float64{1, 2, 5} {
			v := dec * m
			if v > yhi*1.001 {
				break
			}
			y := py(v)
			hline(img, plotLeft, plotRight, y, grid)
			label(img, plotLeft-8-textWidth(siNumber(v)), y+4, siNumber(v), axis)
		}
	}
	// X gridlines at each power of two in range.
	for x := math.Pow(2, math.Ceil(math.Log2(xmin))); x <= xmax*1.001; x *= 2 {
		xx := px(x)
		vline(img, xx, plotTop, plotBottom, grid)
		s := fmt.Sprintf("%g", x)
		label(img, xx-textWidth(s)/2, plotBottom+18, s, axis)
	}
	hline(img, plotLeft, plotRight, plotBottom, axis)
	vline(img, plotLeft, plotTop, plotBottom, axis)
	label(img, plotLeft, 20, title, axis)
	xt := "concurrent connections (-c), log scale"
	label(img, (plotLeft+plotRight)/2-textWidth(xt)/2, plotBottom+40, xt, axis)
	label(img, 8, plotTop-12, "req/s, log scale", axis)

	for i, s := range ss {
		var prev *image.Point
		for _, p := range s.Points {
			if p.X <= 0 || p.Y <= 0 || math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
				prev = nil
				continue
			}
			pt := image.Pt(px(p.X), py(p.Y))
			if prev != nil {
				line(img, *prev, pt, s.Color, s.Dashed)
			}
			square(img, pt, 3, s.Color)
			prev = &pt
		}
		// Legend entry.
		ly := plotTop + 10 + i*20
		line(img, image.Pt(plotRight+20, ly), image.Pt(plotRight+50, ly), s.Color, s.Dashed)
		square(img, image.Pt(plotRight+35, ly), 3, s.Color)
		label(img, plotRight+58, ly+4, s.Name, axis)
	}
	return png.Encode(w, img)
}

// siNumber prints a tick value briefly: 500, 2k, 10k.
func siNumber(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func textWidth(s string) int {
	return font.MeasureString(basicfont.Face7x13, s).Round()
}

func label(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(s)
}

func hline(img *image.RGBA, x0, x1, y int, c color.RGBA) {
	for x := x0; x <= x1; x++ {
		img.SetRGBA(x, y, c)
	}
}

func vline(img *image.RGBA, x, y0, y1 int, c color.RGBA) {
	for y := y0; y <= y1; y++ {
		img.SetRGBA(x, y, c)
	}
}

func square(img *image.RGBA, p image.Point, r int, c color.RGBA) {
	for y := p.Y - r; y <= p.Y+r; y++ {
		for x := p.X - r; x <= p.X+r; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// line draws a two-pixel-wide segment (Bresenham); dashed lines draw 8
// pixels and skip 6.
func line(img *image.RGBA, a, b image.Point, c color.RGBA, dashed bool) {
	dx, dy := abs(b.X-a.X), -abs(b.Y-a.Y)
	sx, sy := 1, 1
	if a.X > b.X {
		sx = -1
	}
	if a.Y > b.Y {
		sy = -1
	}
	e := dx + dy
	x, y := a.X, a.Y
	for step := 0; ; step++ {
		if !dashed || step%14 < 8 {
			img.SetRGBA(x, y, c)
			img.SetRGBA(x, y+1, c)
			img.SetRGBA(x+1, y, c)
		}
		if x == b.X && y == b.Y {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x += sx
		}
		if e2 <= dx {
			e += dx
			y += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
