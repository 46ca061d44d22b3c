package reports

import (
	"cmp"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
)

// hbar is one bar of hbarChart: its label, value v and the text shown
// for it, and its tone (a CSS class).
type hbar struct {
	label, value, tone string
	v                  float64
}

// hbarChart draws labelled horizontal bars: one row per item, the label
// left, the bar scaled to max, the value text right of the bar. Rows are
// 22 units high, so the chart grows with the items instead of squeezing
// them, and the viewBox lets CSS fit it to any width.
func hbarChart(label string, rows []hbar, max float64, labelW float64) template.HTML {
	if len(rows) == 0 || max <= 0 {
		return ""
	}
	const rowH, top, valueW = 22.0, 6.0, 130.0
	w := chartW
	h := top*2 + rowH*float64(len(rows))
	barL, barR := labelW+8, w-valueW
	var b svgBuf
	b.WriteString(`<svg viewBox="0 0 ` + num(w) + " " + num(h) + `" class="chart hbar" role="img" aria-label="` + esc(label) + `">`)
	for i, r := range rows {
		y := top + float64(i)*rowH
		b.text(labelW, y+15, "hb-l", "end", clip(r.label, int(labelW/6.2)))
		bw := math.Max(r.v/max*(barR-barL), 0)
		if r.v > 0 {
			bw = math.Max(bw, 2)
		}
		b.WriteString(`<rect class="hb t-` + r.tone + `" x="` + num(barL) + `" y="` + num(y+4) + `" width="` + num(bw) + `" height="14" rx="2"/>`)
		b.text(barL+bw+6, y+15, "hb-v", "", r.value)
	}
	return b.html()
}

// routeStatesChart shows how many routes are in each state, in the order
// a migration moves through them.
func routeStatesChart(s Summary) template.HTML {
	var rows []hbar
	peak := 0
	for _, st := range []string{StatusCutover, StatusRetired, StatusReady, StatusCollecting, StatusBlocked, StatusNotStarted} {
		n := s.Counts[st]
		peak = max(peak, n)
		rows = append(rows, hbar{label: statusLabel(st), v: float64(n), value: strconv.Itoa(n) + " " + plural(n, "route", "routes"), tone: statusTone(st)})
	}
	if s.Routes == 0 {
		return ""
	}
	return hbarChart("Route states", rows, float64(peak), 110)
}

// readinessChart shows each service's readiness score (0-100), coloured by
// its readiness level; services without a score say so.
func readinessChart(f Fleet) template.HTML {
	var rows []hbar
	for _, s := range f.Services {
		r := hbar{label: s.Name, tone: statusTone(s.Level), value: "unknown · " + s.Level}
		if s.Score != nil {
			r.v = float64(*s.Score)
			r.value = strconv.Itoa(*s.Score) + " · " + s.Level
		}
		rows = append(rows, r)
	}
	return hbarChart("Readiness per service", rows, 100, 170)
}

// differenceChart shows the difference classes that held the most
// samples across every route, in plain words with their route: where the
// candidates' work is.
func differenceChart(services []Service) template.HTML {
	type class struct {
		route string
		d     Difference
	}
	var all []class
	for _, s := range services {
		for _, r := range s.Routes {
			if r.Evidence == nil {
				continue
			}
			for _, d := range r.Evidence.Differences {
				all = append(all, class{r.Route, d})
			}
		}
	}
	if len(all) == 0 {
		return ""
	}
	slices.SortStableFunc(all, func(a, b class) int { return cmp.Compare(b.d.Count, a.d.Count) })
	all = all[:min(len(all), 10)]
	var rows []hbar
	for _, c := range all {
		rows = append(rows, hbar{label: c.route + ": " + c.d.Text, v: float64(c.d.Count),
			value: fmtCount(c.d.Count) + " " + plural(int(min(c.d.Count, 2)), "sample", "samples"), tone: "bad"})
	}
	return hbarChart("Difference classes", rows, float64(all[0].d.Count), 300)
}

// bucketLabel writes a latency bucket's upper bound for an axis: few
// digits, the unit that reads best.
func bucketLabel(ms float64) string {
	switch {
	case ms >= 1000:
		return "≤" + strconv.FormatFloat(math.Round(ms/100)/10, 'f', -1, 64) + " s"
	case ms >= 10:
		return "≤" + strconv.FormatFloat(math.Round(ms), 'f', 0, 64)
	case ms >= 1:
		return "≤" + strconv.FormatFloat(math.Round(ms*10)/10, 'f', -1, 64)
	}
	return "≤" + strconv.FormatFloat(math.Round(ms*100)/100, 'f', -1, 64)
}

// failedDetail is a check's detail after its name: the details of the
// gate's own criteria start with it ("side effects: got …"), which a
// table that already names the check would say twice.
func failedDetail(c GateCheck) string {
	return strings.TrimPrefix(c.Detail, c.Name+": ")
}

// checkName says a gate criterion's key (kept as is in JSON) in words.
func checkName(name string) string {
	switch name {
	case "match":
		return "match ratio"
	case "p99Ratio":
		return "p99 latency ratio"
	case "errorRate":
		return "candidate errors"
	}
	return name
}
