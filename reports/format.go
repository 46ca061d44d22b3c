package reports

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Number formatting shared by the HTML and Markdown renderers, so both say
// the same thing the same way.

// fmtCount writes an integer with thousands separators: 1,000,000.
func fmtCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// fmtPts writes a difference of ratios in percentage points, to 0.1.
func fmtPts(d float64) string {
	p := math.Round(math.Abs(d*100)*10) / 10
	if p == 0 && d != 0 {
		return "<0.1"
	}
	return strconv.FormatFloat(p, 'f', 1, 64)
}

func fmtRatio(r float64) string { return strconv.FormatFloat(r, 'f', 2, 64) }

// fmtMs writes milliseconds with sensible precision.
func fmtMs(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64) + " ms"
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64) + " ms"
	}
	return strconv.FormatFloat(v, 'f', 2, 64) + " ms"
}

func fmtMsPtr(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return fmtMs(*v)
}

// fmtBytes writes bytes in IEC units, as Kubernetes and image tools do.
func fmtBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + string("KMGTPE"[exp]) + "iB"
}

// fmtFigure writes a figure's bytes, "unknown" for none.
func fmtFigure(f *Figure) string {
	if f == nil {
		return "unknown"
	}
	return fmtBytes(f.Bytes)
}

func fmtBytesPtr(n *int64) string {
	if n == nil {
		return "unknown"
	}
	return fmtBytes(*n)
}

// fmtSig writes a float with three significant digits, for estimates that
// must not look more precise than they are.
func fmtSig(v float64) string {
	if v == 0 {
		return "0"
	}
	a := math.Abs(v)
	if a >= 1000 {
		return fmtCount(int64(math.Round(v)))
	}
	// Three significant digits written out in full: 0.00164, 12.3, 456.
	prec := max(0, 2-int(math.Floor(math.Log10(a))))
	return strconv.FormatFloat(v, 'f', prec, 64)
}

// fmtGrams writes gCO2e with three significant digits, switching to kg.
func fmtGrams(g float64) string {
	if g >= 1000 {
		return fmtSig(g/1000) + " kgCO2e"
	}
	return fmtSig(g) + " gCO2e"
}

// modeLabel is how a mode reads in prose.
func modeLabel(mode string, weight int) string {
	if mode == "canary" {
		return fmt.Sprintf("canary %d%%", weight)
	}
	return mode
}

// statusLabel is a status as a pill says it.
func statusLabel(s string) string {
	switch s {
	case StatusCutover:
		return "cut over"
	case StatusNotStarted:
		return "not started"
	}
	return s
}

// statusTone maps a status to the pill colour: ok, warn, bad, or none.
func statusTone(s string) string {
	switch s {
	case StatusCutover, StatusRetired, StatusReady, "passed", "pass":
		return "ok"
	case StatusCollecting, "ready-with-conditions", "inconclusive":
		return "warn"
	case StatusBlocked, "not-ready", "failed", "fail":
		return "bad"
	}
	return "none"
}

// sparkline draws ratios in [lo,1] as block characters for Markdown.
func sparkline(pts []MatchPoint) string {
	const blocks = "▁▂▃▄▅▆▇█"
	rs := []rune(blocks)
	lo := 1.0
	for _, p := range pts {
		if p.Samples > 0 {
			lo = math.Min(lo, float64(p.Matches)/float64(p.Samples))
		}
	}
	lo = niceFloor(lo)
	var b strings.Builder
	for _, p := range pts {
		if p.Samples == 0 {
			b.WriteRune(' ')
			continue
		}
		r := float64(p.Matches) / float64(p.Samples)
		i := 0
		if lo < 1 {
			i = int(math.Round((r - lo) / (1 - lo) * float64(len(rs)-1)))
		} else {
			i = len(rs) - 1
		}
		b.WriteRune(rs[max(0, min(len(rs)-1, i))])
	}
	return b.String()
}

// niceFloor picks the axis floor for a ratio chart so small drops stay visible.
func niceFloor(lo float64) float64 {
	for _, f := range []float64{0.999, 0.99, 0.95, 0.9, 0.8, 0.5} {
		if lo >= f {
			return f
		}
	}
	return 0
}
