package reports

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

//go:embed templates/report.html.tmpl
var htmlSource string

//go:embed templates/report.css
var cssSource string

// htmlTemplate is parsed once: html/template escapes every value by its
// context, which matters because diffs and finding evidence are user data.
var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"css":            func() template.CSS { return template.CSS(cssSource) },
	"when":           fmtTime,
	"count":          func(n int64) string { return fmtCount(n) },
	"pointer":        shadow.PointerText,
	"pct":            fmtPctPtr,
	"ms":             fmtMsPtr,
	"bytes":          fmtBytesPtr,
	"bytesv":         fmtBytes,
	"figure":         fmtFigure,
	"ratio":          fmtRatio,
	"sig":            fmtSig,
	"wh":             fmtWh,
	"grams":          fmtGrams,
	"coef":           func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) },
	"vcpu":           fmtVCPU,
	"tone":           statusTone,
	"categoryTone":   categoryTone,
	"label":          statusLabel,
	"mode":           modeLabel,
	"add":            func(a, b int) int { return a + b },
	"isCore":         func(c string) bool { return categoryRank(c) < len(categories) },
	"serviceAnchor":  serviceAnchor,
	"routeAnchor":    routeAnchor,
	"checkValue":     checkValue,
	"checkThreshold": checkThreshold,
	"gateText":       gateText,
	"verdict":        verdict,
	"graph":          dependencyGraph,
	"diffHTML":       diffHTML,
	"targets":        targetsText,
	"matchChart":     matchChart,
	"latencyChart":   latencyChart,
	"statesChart":    routeStatesChart,
	"readinessChart": readinessChart,
	"diffChart":      differenceChart,
	"checkName":      checkName,
	"failedDetail":   failedDetail,
}).Parse(htmlSource))

// Formats accepted by Render.
const (
	FormatHTML     = "html"
	FormatMarkdown = "md"
	FormatJSON     = "json"
)

// Render writes the report in format: html, md (or markdown), or json.
func (r *Report) Render(w io.Writer, format string) error {
	switch strings.ToLower(format) {
	case FormatHTML:
		return r.WriteHTML(w)
	case FormatMarkdown, "markdown":
		return r.WriteMarkdown(w)
	case FormatJSON:
		return r.WriteJSON(w)
	}
	return fmt.Errorf("render report: unknown format %q; use html, md or json", format)
}

// WriteHTML writes the report as one self-contained HTML file: inline CSS
// and SVG, no scripts, no network fetches, readable when printed to PDF.
func (r *Report) WriteHTML(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := htmlTemplate.Execute(bw, r); err != nil {
		return fmt.Errorf("render html report: %w", err)
	}
	return bw.Flush()
}

// WriteJSON writes the versioned model ("apiVersion": "migrate/v1", "kind": "Report").
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("render json report: %w", err)
	}
	return nil
}

// fmtWh writes kWh as Wh: per-hour service figures are small.
func fmtWh(kwh float64) string { return fmtSig(kwh * 1000) }

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func fmtPctPtr(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return strangler.FormatPercent(*v)
}

func fmtVCPU(v *float64) string {
	if v == nil {
		return "unknown"
	}
	return fmtSig(*v)
}

func categoryTone(c string) string {
	switch c {
	case "mandatory":
		return "bad"
	case "optional":
		return "warn"
	}
	return "none"
}

// diffHTML marks up a unified diff for a <pre>: removed lines in <del>,
// added lines in <ins>. Text content only needs &, < and > escaped, which
// keeps large reports small (html/template would also encode quotes and +).
func diffHTML(diff string) template.HTML {
	var b strings.Builder
	b.Grow(len(diff) + len(diff)/4)
	for i, line := range strings.Split(diff, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		tag := ""
		switch {
		case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
		case strings.HasPrefix(line, "+"):
			tag = "ins"
		case strings.HasPrefix(line, "-"):
			tag = "del"
		case strings.HasPrefix(line, "@@"):
			tag = "b"
		}
		if tag != "" {
			b.WriteString("<" + tag + ">")
		}
		textEscaper.WriteString(&b, line)
		if tag != "" {
			b.WriteString("</" + tag + ">")
		}
	}
	return template.HTML(b.String()) // escaped above: the content is user data
}

var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// targetsText lists per-platform readiness: "spin: ready · wasmcloud: ready".
func targetsText(t map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(t)) {
		parts = append(parts, k+": "+t[k])
	}
	return strings.Join(parts, " · ")
}

// slug makes a readable fragment identifier from free text.
func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// serviceAnchor is the service name itself when it is already a DNS label,
// as Kubernetes names are; otherwise a hash keeps distinct names apart.
func serviceAnchor(name string) string {
	if s := slug(name); s == name {
		return "svc-" + s
	}
	return "svc-" + slug(name) + "-" + shortHash(name)
}

// routeAnchor stays readable and unique: "GET /a-b" and "GET /a/b" share a
// slug, so a hash of the exact service and route follows it.
func routeAnchor(service, route string) string {
	return "rt-" + slug(route) + "-" + shortHash(service+"\x00"+route)
}

func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return strconv.FormatUint(uint64(h.Sum32()), 36)
}

func checkValue(c GateCheck) string {
	if c.Unknown {
		return "unknown"
	}
	if !numericCheck(c.Name) {
		return "–" // its detail says what was measured
	}
	return checkNumber(c.Name, c.Actual)
}

// numericCheck says whether the report measures the check in a number of
// its own; the gate's other criteria (side effects, write coverage, shadow
// duration…) carry words only, and a 0 beside "≤ 0" would be made up.
func numericCheck(name string) bool {
	switch name {
	case "samples", "match", "errorRate", "p99Ratio":
		return true
	}
	return false
}

func checkThreshold(c GateCheck) string {
	if !numericCheck(c.Name) {
		return "–"
	}
	switch c.Name {
	case "samples", "match":
		return "≥ " + checkNumber(c.Name, c.Threshold)
	}
	return "≤ " + checkNumber(c.Name, c.Threshold)
}

func checkNumber(name string, v float64) string {
	switch name {
	case "samples":
		return fmtCount(int64(v))
	case "match", "errorRate":
		return strangler.FormatPercent(v)
	case "p99Ratio":
		return fmtRatio(v) + "×"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

func gateText(g Gate) string {
	var parts []string
	if g.MinSamples > 0 {
		parts = append(parts, "at least "+fmtCount(g.MinSamples)+" samples")
	}
	if g.MinMatch > 0 {
		parts = append(parts, "match ≥ "+strangler.FormatPercent(g.MinMatch))
	}
	if g.MaxP99Ratio > 0 {
		parts = append(parts, "Wasm p99 ≤ "+fmtRatio(g.MaxP99Ratio)+"× legacy")
	}
	if g.MaxErrorRate > 0 {
		parts = append(parts, "candidate errors ≤ "+strangler.FormatPercent(g.MaxErrorRate))
	}
	if len(parts) == 0 {
		return "no criteria"
	}
	return strings.Join(parts, ", ")
}

// verdict is the one-paragraph answer a review board reads first.
func verdict(r *Report) string {
	s := r.Summary
	if s.Routes == 0 {
		return "No routes are in the strangler config yet: there is no cutover decision to make. Plan routes from the inventory (migrate plan) and start shadowing."
	}
	cut := s.Counts[StatusCutover] + s.Counts[StatusRetired]
	parts := []string{fmt.Sprintf("%d of %d routes are cut over", cut, s.Routes)}
	if n := s.Counts[StatusReady]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s ready to promote", n, plural(n, "is", "are")))
	}
	if n := s.Counts[StatusBlocked]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s blocked by %s gate", n, plural(n, "is", "are"), plural(n, "its", "their")))
	}
	if n := s.Counts[StatusCollecting]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s collecting evidence", n, plural(n, "is", "are")))
	}
	if n := s.Counts[StatusNotStarted]; n > 0 {
		parts = append(parts, fmt.Sprintf("%d %s not started", n, plural(n, "has", "have")))
	}
	out := strings.Join(parts[:len(parts)-1], "; ")
	if len(parts) > 1 {
		out += "; and " + parts[len(parts)-1]
	} else {
		out = parts[0]
	}
	out += "."
	if n := len(s.NextSteps); n > 0 {
		out += fmt.Sprintf(" %d next %s follow.", n, plural(n, "step", "steps"))
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
