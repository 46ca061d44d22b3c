package reports

import (
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/strangler"
)

// The charts are inline SVG built as text: a report holds hundreds of them,
// so each is a handful of elements (bars of a series are one path) styled
// by the page's CSS classes. Every piece of user text goes through esc.

func esc(s string) string { return template.HTMLEscapeString(s) }

// num writes a coordinate with at most one decimal.
func num(v float64) string {
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64)
}

type svgBuf struct{ strings.Builder }

func (b *svgBuf) open(w, h float64, label string) {
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ` + num(w) + " " + num(h) +
		`" width="` + num(w) + `" height="` + num(h) + `" role="img" aria-label="` + esc(label) + `"><title>` + esc(label) + `</title>`)
}

func (b *svgBuf) text(x, y float64, class, anchor, s string) {
	b.WriteString(`<text x="` + num(x) + `" y="` + num(y) + `"`)
	if class != "" {
		b.WriteString(` class="` + class + `"`)
	}
	if anchor != "" {
		b.WriteString(` text-anchor="` + anchor + `"`)
	}
	b.WriteString(">" + esc(s) + "</text>")
}

func (b *svgBuf) line(x1, y1, x2, y2 float64, class string) {
	b.WriteString(`<path class="` + class + `" d="M` + num(x1) + " " + num(y1) + "L" + num(x2) + " " + num(y2) + `"/>`)
}

func (b *svgBuf) html() template.HTML {
	b.WriteString("</svg>")
	return template.HTML(b.String()) // every text node above went through esc
}

// dependencyGraph draws the migration order: one column per dependency
// depth (leaves left, migrated first), services in migration order within a
// column, arrows from a service to what it depends on.
func dependencyGraph(f Fleet) template.HTML {
	if len(f.Services) == 0 {
		return ""
	}
	const (
		nodeW, nodeH   = 260.0, 46.0
		colGap, rowGap = 64.0, 14.0
		pad, top       = 12.0, 30.0
		maxRows        = 12
	)
	maxDepth := 0
	for _, s := range f.Services {
		maxDepth = max(maxDepth, s.Depth)
	}
	// Deep columns wrap into sub-columns so a flat fleet of 50 stays readable.
	type pos struct{ x, y float64 }
	at := map[string]pos{}
	col, rows := 0, 0
	var headers []struct {
		x     float64
		label string
	}
	for d := 0; d <= maxDepth; d++ {
		var in []FleetService
		for _, s := range f.Services {
			if s.Depth == d {
				in = append(in, s)
			}
		}
		if len(in) == 0 {
			continue
		}
		label := "depth " + strconv.Itoa(d)
		if d == 0 {
			label = "depth 0 · no fleet dependencies"
		}
		headers = append(headers, struct {
			x     float64
			label string
		}{pad + float64(col)*(nodeW+colGap), label})
		for i, s := range in {
			c := col + i/maxRows
			r := i % maxRows
			rows = max(rows, r+1)
			at[s.Name] = pos{pad + float64(c)*(nodeW+colGap), top + float64(r)*(nodeH+rowGap)}
		}
		col += (len(in) + maxRows - 1) / maxRows
	}
	w := pad*2 + float64(col)*nodeW + float64(col-1)*colGap
	h := top + float64(rows)*(nodeH+rowGap) - rowGap + pad
	var b svgBuf
	b.open(w, h, "Migration order by dependency depth")
	b.WriteString(`<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L8 4L0 8z" class="g-ah"/></marker></defs>`)
	for _, hd := range headers {
		b.text(hd.x, 16, "g-hd", "", hd.label)
	}
	for _, s := range f.Services {
		from := at[s.Name]
		for _, d := range s.DependsOn {
			to, ok := at[d]
			if !ok {
				continue
			}
			x1, y1 := from.x, from.y+nodeH/2
			x2, y2 := to.x+nodeW, to.y+nodeH/2
			if x2 >= x1 { // same column (a cycle or a wrapped column): bend around the right side
				x1 = from.x + nodeW
				mx := math.Max(x1, x2) + colGap/2
				b.WriteString(`<path class="g-e" marker-end="url(#arrow)" d="M` + num(x1) + " " + num(y1) + "C" + num(mx) + " " + num(y1) + " " + num(mx) + " " + num(y2) + " " + num(x2) + " " + num(y2) + `"/>`)
				continue
			}
			mx := (x1 + x2) / 2
			b.WriteString(`<path class="g-e" marker-end="url(#arrow)" d="M` + num(x1) + " " + num(y1) + "C" + num(mx) + " " + num(y1) + " " + num(mx) + " " + num(y2) + " " + num(x2) + " " + num(y2) + `"/>`)
		}
	}
	for _, s := range f.Services {
		p := at[s.Name]
		b.WriteString(`<rect class="g-n t-` + statusTone(s.Level) + `" x="` + num(p.x) + `" y="` + num(p.y) + `" width="` + num(nodeW) + `" height="` + num(nodeH) + `" rx="6"/>`)
		b.text(p.x+10, p.y+19, "g-t", "", strconv.Itoa(s.Order)+". "+clip(s.Name, 24))
		sub := s.Level
		if s.Score != nil {
			sub += " · " + strconv.Itoa(*s.Score)
		}
		b.text(p.x+10, p.y+36, "g-s", "", sub)
		if s.Routes > 0 {
			b.text(p.x+nodeW-10, p.y+19, "g-s", "end", strconv.Itoa(s.CutOver)+"/"+strconv.Itoa(s.Routes)+" cut over")
		}
	}
	return b.html()
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

const chartW, chartH = 520.0, 168.0

// chartOpen starts a chart: no fixed size (CSS fits it to its column) and
// no title element, since a report carries hundreds of charts and the
// aria-label already names each one.
func (b *svgBuf) chartOpen(label string) {
	b.WriteString(`<svg viewBox="0 0 ` + num(chartW) + " " + num(chartH) + `" class="chart" role="img" aria-label="` + esc(label) + `">`)
}

// yAxis draws horizontal grid lines as one path and their labels in one group.
func (b *svgBuf) yAxis(l, r float64, ys []float64, labels []string) {
	b.WriteString(`<path class="ax-g" d="`)
	for _, y := range ys {
		b.WriteString("M" + num(l) + " " + num(y) + "H" + num(r))
	}
	b.WriteString(`"/><g class="ax" text-anchor="end">`)
	for i, y := range ys {
		b.WriteString(`<text x="` + num(l-6) + `" y="` + num(y+4) + `">` + esc(labels[i]) + "</text>")
	}
	b.WriteString("</g>")
}

// bars draws a bar series as one stroked path of relative vertical lines.
func (b *svgBuf) bars(class string, width, base float64, xs, hs []float64) {
	// Whole units are half a pixel at most on a 520-wide chart; relative
	// steps are taken between rounded points so no error accumulates.
	var d strings.Builder
	px, py := 0, 0
	for i, h := range hs {
		if h < 0.5 {
			continue
		}
		x, hh, bb := int(math.Round(xs[i])), int(math.Round(h)), int(math.Round(base))
		if d.Len() == 0 {
			d.WriteString("M" + strconv.Itoa(x) + " " + strconv.Itoa(bb))
		} else {
			d.WriteString("m" + strconv.Itoa(x-px) + " " + strconv.Itoa(bb-py))
		}
		d.WriteString("v-" + strconv.Itoa(hh))
		px, py = x, bb-hh
	}
	if d.Len() == 0 {
		return
	}
	b.WriteString(`<path class="` + class + `" stroke-width="` + num(width) + `" d="` + d.String() + `"/>`)
}

// matchChart draws the match ratio over time as a line over faint bars of
// sample volume, with the gate's threshold dashed.
func matchChart(e *EvidenceReport, gate float64) template.HTML {
	pts := e.MatchSeries
	if len(pts) == 0 {
		return ""
	}
	const l, r, t, bm = 48.0, 12.0, 12.0, 28.0
	pw, ph := chartW-l-r, chartH-t-bm
	lo := 1.0
	var maxS int64
	for _, p := range pts {
		maxS = max(maxS, p.Samples)
		if p.Samples > 0 {
			lo = math.Min(lo, float64(p.Matches)/float64(p.Samples))
		}
	}
	if gate > 0 {
		lo = math.Min(lo, gate)
	}
	lo = niceFloor(lo)
	if lo >= 1 {
		lo = 0.99
	}
	y := func(ratio float64) float64 { return t + ph - (ratio-lo)/(1-lo)*ph }
	step := pw / float64(len(pts))
	var b svgBuf
	b.chartOpen("Match ratio over time")
	b.yAxis(l, l+pw, []float64{y(lo), y((lo + 1) / 2), y(1)}, []string{strangler.FormatPercent(lo), strangler.FormatPercent((lo + 1) / 2), strangler.FormatPercent(1)})
	if maxS > 0 {
		// Sample volume as a faint step area: one vertical move only where the volume changes.
		base := int(math.Round(t + ph))
		var d strings.Builder
		d.WriteString("M" + num(l) + " " + strconv.Itoa(base))
		prev, run := base, 0.0
		for _, p := range pts {
			yy := base - int(math.Round(float64(p.Samples)/float64(maxS)*ph*0.35))
			if yy != prev {
				if run > 0 {
					d.WriteString("h" + num(run))
				}
				d.WriteString("V" + strconv.Itoa(yy))
				prev, run = yy, 0
			}
			run += step
		}
		d.WriteString("h" + num(run) + "V" + strconv.Itoa(base) + "z")
		b.WriteString(`<path class="c-v" d="` + d.String() + `"/>`)
	}
	if gate > 0 && gate < 1 {
		b.line(l, y(gate), l+pw, y(gate), "c-g")
		b.text(l+pw-2, y(gate)-4, "ax c-gt", "end", "gate "+strangler.FormatPercent(gate))
	}
	var line strings.Builder
	n := 0
	px, py := 0, 0
	for i, p := range pts {
		if p.Samples == 0 {
			continue
		}
		x := int(math.Round(l + float64(i)*step + step/2))
		yy := int(math.Round(y(math.Max(lo, float64(p.Matches)/float64(p.Samples)))))
		if n == 0 {
			line.WriteString("M" + strconv.Itoa(x) + " " + strconv.Itoa(yy))
		} else if yy == py {
			line.WriteString("h" + strconv.Itoa(x-px))
		} else {
			line.WriteString("l" + strconv.Itoa(x-px) + " " + strconv.Itoa(yy-py))
		}
		px, py = x, yy
		n++
	}
	if n == 1 {
		line.WriteString("h0.1") // a lone point still shows as a round cap
	}
	if n > 0 {
		b.WriteString(`<path class="c-m" d="` + line.String() + `"/>`)
	}
	layout := "2006-01-02 15:04"
	if pts[len(pts)-1].At.Sub(pts[0].At) < time.Hour {
		layout = "2006-01-02 15:04:05" // a per-second series
	}
	b.text(l, chartH-8, "ax", "start", pts[0].At.Format(layout))
	b.text(l+pw, chartH-8, "ax", "end", pts[len(pts)-1].At.Format(layout)+" UTC")
	b.text(l+pw/2, chartH-8, "ax", "middle", strconv.Itoa(len(pts))+" intervals")
	return b.html()
}

// latencyChart draws both sides' latency histograms as grouped bars, each
// side as a share of its own samples so unequal counts compare fairly.
func latencyChart(e *EvidenceReport) template.HTML {
	var bounds []float64
	for _, side := range [][]BucketReport{e.Legacy.Buckets, e.Candidate.Buckets} {
		for _, bk := range side {
			if !slices.Contains(bounds, bk.LeMs) {
				bounds = append(bounds, bk.LeMs)
			}
		}
	}
	if len(bounds) == 0 {
		return ""
	}
	slices.Sort(bounds)
	share := func(side []BucketReport) []float64 {
		var total int64
		for _, bk := range side {
			total += bk.Count
		}
		out := make([]float64, len(bounds))
		if total == 0 {
			return out
		}
		for _, bk := range side {
			out[slices.Index(bounds, bk.LeMs)] += float64(bk.Count) / float64(total)
		}
		return out
	}
	ls, cs := share(e.Legacy.Buckets), share(e.Candidate.Buckets)
	peak := 0.0
	for i := range bounds {
		peak = math.Max(peak, math.Max(ls[i], cs[i]))
	}
	if peak == 0 {
		return ""
	}
	peak = math.Min(1, math.Ceil(peak*10)/10)
	const l, r, t, bm = 48.0, 12.0, 22.0, 28.0
	pw, ph := chartW-l-r, chartH-t-bm
	gw := pw / float64(len(bounds))
	var b svgBuf
	b.chartOpen("Latency distribution, legacy and Wasm")
	b.yAxis(l, l+pw, []float64{t + ph, t + ph/2, t}, []string{"0%", strconv.FormatFloat(peak*50, 'f', 0, 64) + "%", strconv.FormatFloat(peak*100, 'f', 0, 64) + "%"})
	for side, vals := range [][]float64{ls, cs} {
		xs, hs := make([]float64, len(vals)), make([]float64, len(vals))
		for i, v := range vals {
			xs[i] = l + float64(i)*gw + gw*(0.3+0.4*float64(side))
			hs[i] = v / peak * ph
		}
		b.bars([]string{"c-l", "c-w"}[side], gw*0.36, t+ph, xs, hs)
	}
	// At most six bucket labels, each a short number, so they never
	// overlap at the chart's narrowest (a phone's width).
	every := int(math.Ceil(float64(len(bounds)) / 6))
	b.WriteString(`<g class="ax" text-anchor="middle">`)
	for i, v := range bounds {
		if i%every == 0 {
			b.WriteString(`<text x="` + num(l+float64(i)*gw+gw/2) + `" y="` + num(chartH-12) + `">` + esc(bucketLabel(v)) + "</text>")
		}
	}
	b.WriteString("</g>")
	b.text(l+pw/2, chartH-1, "ax", "middle", "latency in ms (bucket upper bound)")
	b.WriteString(`<path class="c-l" stroke-width="10" d="M` + num(l+pw-145) + ` 14v-10"/>`)
	b.text(l+pw-136, 13, "ax", "", "legacy")
	b.WriteString(`<path class="c-w" stroke-width="10" d="M` + num(l+pw-75) + ` 14v-10"/>`)
	b.text(l+pw-66, 13, "ax", "", "Wasm")
	return b.html()
}
