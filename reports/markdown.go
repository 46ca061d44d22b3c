package reports

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/strangler-fig/migrate/shadow"
)

// WriteMarkdown writes the report as GitHub/GitLab-flavoured Markdown:
// tables, a mermaid graph for the migration order, fenced diffs, and no raw
// HTML. User data is escaped so it cannot break a table or inject markup.
func (r *Report) WriteMarkdown(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	m := mdWriter{bw}
	m.report(r)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("render markdown report: %w", err)
	}
	return nil
}

type mdWriter struct{ w *bufio.Writer }

func (m mdWriter) p(format string, a ...any) { fmt.Fprintf(m.w, format, a...) }

func (m mdWriter) row(cells ...string) {
	m.w.WriteString("|")
	for _, c := range cells {
		m.w.WriteString(" " + c + " |")
	}
	m.w.WriteString("\n")
}

// header writes a table head; a leading ">" on a column name right-aligns it.
func (m mdWriter) header(cols ...string) {
	names := make([]string, len(cols))
	aligns := make([]string, len(cols))
	for i, c := range cols {
		if strings.HasPrefix(c, ">") {
			names[i], aligns[i] = c[1:], "---:"
		} else {
			names[i], aligns[i] = c, "---"
		}
	}
	m.row(names...)
	m.row(aligns...)
}

var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "&", "&amp;", "<", "&lt;", ">", "&gt;", "*", `\*`, "_", `\_`,
	"`", "\\`", "[", `\[`, "]", `\]`, "#", `\#`, "\r\n", " ", "\n", " ", "\r", " ")

// md escapes user text for Markdown prose and table cells.
func md(s string) string { return mdEscaper.Replace(s) }

// mdCode writes s as an inline code span that is safe in a table cell,
// where GitHub needs | escaped even inside code.
func mdCode(s string) string { return mdSpan(strings.ReplaceAll(s, "|", `\|`)) }

// mdSpan writes s as an inline code span for prose.
func mdSpan(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") || s == "" {
		pad = " "
	}
	return fence + pad + s + pad + fence
}

// mdFence picks a code fence longer than any backtick run in s.
func mdFence(s string) string {
	fence := "```"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	return fence
}

func (m mdWriter) report(r *Report) {
	m.p("# %s\n\n", md(r.Title))
	m.p("Generated %s", fmtTime(r.Generated))
	if r.InventoryGenerated != nil {
		m.p(" · inventory taken %s", fmtTime(*r.InventoryGenerated))
	}
	m.p(" · %d services · %d routes\n\n", len(r.Fleet.Services), r.Summary.Routes)
	m.p("**Contents:** [Decision summary](#decision-summary) · [Fleet overview](#fleet-overview) · [Services and routes](#services-and-routes) · [Footprint and carbon estimate](#footprint-and-carbon-estimate) · [Method and sources](#method-and-sources)\n\n")
	m.summary(r)
	m.fleet(r)
	m.services(r)
	m.footprint(r)
	m.method(r)
}

func (m mdWriter) summary(r *Report) {
	s := r.Summary
	m.p("## Decision summary\n\n")
	m.header(">Cut over or retired", ">Ready", ">Collecting", ">Blocked", ">Not started", ">Routes")
	m.row(strconv.Itoa(s.Counts[StatusCutover]+s.Counts[StatusRetired]), strconv.Itoa(s.Counts[StatusReady]),
		strconv.Itoa(s.Counts[StatusCollecting]), strconv.Itoa(s.Counts[StatusBlocked]),
		strconv.Itoa(s.Counts[StatusNotStarted]), strconv.Itoa(s.Routes))
	m.p("\n> %s\n\n", md(verdict(r)))

	m.p("### Cut over\n\n")
	if len(s.CutOver) == 0 {
		m.p("_No route is cut over yet._\n\n")
	} else {
		m.header("Route", "Service", "Mode")
		for _, c := range s.CutOver {
			m.row(mdCode(c.Route), md(c.Service), md(c.Mode))
		}
		m.p("\n")
	}
	m.p("### Blocked, and why\n\n")
	if len(s.Blocked) == 0 {
		m.p("_No route is blocked by its gate._\n\n")
	} else {
		m.header("Route", "Service", "Mode", "Failed gate criteria (by how much)")
		for _, b := range s.Blocked {
			var fails []string
			for _, c := range b.Failed {
				fails = append(fails, "**"+md(checkName(c.Name))+"**: "+md(failedDetail(c)))
			}
			m.row(mdCode(b.Route), md(b.Service), md(modeLabel(b.Mode, b.Weight)), strings.Join(fails, "; "))
		}
		m.p("\n")
	}
	if len(s.Ready) > 0 {
		m.p("### Ready to promote\n\n")
		m.header("Route", "Service", "Mode")
		for _, c := range s.Ready {
			m.row(mdCode(c.Route), md(c.Service), md(modeLabel(c.Mode, c.Weight)))
		}
		m.p("\n")
	}
	m.p("### Next steps\n\n")
	if len(s.NextSteps) == 0 {
		m.p("_Nothing to do: no input calls for an action._\n\n")
	}
	for i, st := range s.NextSteps {
		m.p("%d. **%s** — %s\n", i+1, md(st.Action), md(st.Text))
	}
	if len(s.NextSteps) > 0 {
		m.p("\n")
	}
}

func (m mdWriter) fleet(r *Report) {
	f := r.Fleet
	m.p("## Fleet overview\n\n")
	if len(f.Services) == 0 {
		m.p("_No inventory and no routes: nothing to overview yet._\n\n")
		return
	}
	m.header(">#", "Service", "Readiness", ">Score", ">Mandatory", ">Optional", ">Potential", ">Effort", ">Cut over")
	for _, s := range f.Services {
		name := md(s.Name)
		if !s.InInventory {
			name += " (not in inventory)"
		}
		level := statusIcon(statusTone(s.Level)) + " " + md(s.Level)
		if len(s.Targets) > 0 {
			var ts []string
			for _, k := range slices.Sorted(maps.Keys(s.Targets)) {
				ts = append(ts, md(k)+": "+md(s.Targets[k]))
			}
			level += " (" + strings.Join(ts, ", ") + ")"
		}
		cells := []string{strconv.Itoa(s.Order), name, level, scoreText(s.Score)}
		for _, c := range s.Findings {
			if categoryRank(c.Category) >= len(categories) {
				continue
			}
			if c.Count == 0 {
				cells = append(cells, "–")
			} else {
				cells = append(cells, fmt.Sprintf("%d (%d pts)", c.Count, c.Effort))
			}
		}
		cells = append(cells, strconv.Itoa(s.Effort), fmt.Sprintf("%d/%d", s.CutOver, s.Routes))
		m.row(cells...)
	}
	var totals []string
	for _, e := range f.Effort {
		totals = append(totals, fmt.Sprintf("%s %d (%d pts)", md(e.Category), e.Count, e.Effort))
	}
	if len(r.Fleet.Backing) > 0 {
		m.p("\nBacking services in the cluster (used by the applications, not migrated): %s.\n", strings.Join(r.Fleet.Backing, ", "))
	}
	m.p("\nFindings follow the Konveyor/MTA convention (mandatory / optional / potential; effort in story points). Totals: %s.\n\n", strings.Join(totals, ", "))

	m.p("### Suggested migration order\n\n")
	m.p("Services that depend on no other fleet service come first; arrows point from a service to what it depends on.\n\n")
	m.p("```mermaid\ngraph RL\n")
	ids := map[string]string{}
	for i, s := range f.Services {
		ids[s.Name] = "s" + strconv.Itoa(i)
		label := fmt.Sprintf("%d. %s<br/>%s", s.Order, s.Name, s.Level)
		if s.Score != nil {
			label += " · " + strconv.Itoa(*s.Score)
		}
		m.p("  %s[\"%s\"]\n", ids[s.Name], mermaidText(label))
	}
	for _, s := range f.Services {
		for _, d := range s.DependsOn {
			if id, ok := ids[d]; ok {
				m.p("  %s --> %s\n", ids[s.Name], id)
			}
		}
	}
	m.p("```\n\n")
	var order []string
	for _, n := range f.Order {
		order = append(order, md(n))
	}
	m.p("Order: %s\n\n", strings.Join(order, " → "))

	m.p("### Findings\n\n")
	if len(f.Findings) == 0 {
		m.p("_No findings recorded._\n\n")
		return
	}
	m.header("Service", "ID", "Finding", "Category", ">Effort", "Evidence")
	for _, fd := range f.Findings {
		m.row(md(fd.Service), mdCode(fd.ID), md(fd.Title), md(fd.Category), strconv.Itoa(fd.Effort), md(fd.Evidence))
	}
	m.p("\n")
}

// mermaidText keeps a label inside its quotes: mermaid reads #quot; etc. as entities.
func mermaidText(s string) string {
	s = strings.NewReplacer(`"`, "#quot;", "<br/>", "\x00", "<", "#lt;", ">", "#gt;", "`", "#96;", "\n", " ").Replace(s)
	return strings.ReplaceAll(s, "\x00", "<br/>")
}

func statusIcon(tone string) string {
	switch tone {
	case "ok":
		return "🟢"
	case "warn":
		return "🟠"
	case "bad":
		return "🔴"
	}
	return "⚪"
}

func scoreText(s *int) string {
	if s == nil {
		return "unknown"
	}
	return strconv.Itoa(*s)
}

func (m mdWriter) services(r *Report) {
	m.p("## Services and routes\n\n")
	if len(r.Services) == 0 {
		m.p("_No services yet._\n\n")
	}
	for _, s := range r.Services {
		m.p("### %s — %s %s", md(s.Name), statusIcon(statusTone(s.Level)), md(s.Level))
		if s.Score != nil {
			m.p(" · %d", *s.Score)
		}
		m.p("\n\n")
		if len(s.Routes) == 0 {
			m.p("_No routes of this service are in the strangler config._\n\n")
		}
		for _, rr := range s.Routes {
			m.route(rr)
		}
	}
}

func (m mdWriter) route(rr RouteReport) {
	m.p("#### %s — %s %s · mode %s\n\n", mdCode(rr.Route), statusIcon(statusTone(rr.Status)), md(statusLabel(rr.Status)), md(modeLabel(rr.Mode, rr.Weight)))
	if len(rr.Checks) > 0 {
		m.header("Gate criterion", ">Measured", ">Required", "Result")
		for _, c := range rr.Checks {
			res := "✅ passed"
			if c.Unknown {
				res = "❔ unknown"
			} else if !c.Passed {
				res = "❌ failed"
			}
			m.row(md(checkName(c.Name)), md(checkValue(c)), md(checkThreshold(c)), res+" — "+md(c.Detail))
		}
		m.p("\n")
	}
	if len(rr.Timeline) == 0 {
		m.p("Timeline: _no transitions recorded._\n\n")
	} else {
		m.header("When", "Who", "Change", "Why", "Gate numbers")
		for _, t := range rr.Timeline {
			change := md(t.From) + " → " + md(modeLabel(t.To, t.Weight))
			if t.Verdict != "" {
				change += " (gate " + md(t.Verdict) + ")"
			}
			if t.Forced {
				change += " (forced)"
			}
			var nums []string
			for _, c := range t.Checks {
				nums = append(nums, md(c.Detail))
			}
			g := "none recorded"
			if len(nums) > 0 {
				g = strings.Join(nums, "; ")
			}
			m.p("| %s | %s | %s | %s | %s |\n", fmtTime(t.At), md(t.Actor), change, md(t.Reason), g)
		}
		m.p("\n")
	}
	e := rr.Evidence
	if e == nil {
		m.p("_No shadow data yet._\n\n")
		return
	}
	m.p("**Evidence:** %s · %s · %s · %s · match ratio %s · %s\n\n",
		counted(e.Samples, "sample", "samples"), counted(e.Matches, "match", "matches"), counted(e.Mismatches, "mismatch", "mismatches"),
		counted(e.CandidateErrors, "candidate error", "candidate errors"), fmtPctPtr(e.MatchRatio), counted(e.SkippedWrites, "skipped write", "skipped writes"))
	if e.SideEffects > 0 {
		m.p("**Side effects:** %s wrote to other services differently from legacy (a side-effect difference fails the gate)\n\n",
			counted(e.SideEffects, "sample", "samples"))
	}
	if len(e.MatchSeries) > 0 {
		first, last := e.MatchSeries[0], e.MatchSeries[len(e.MatchSeries)-1]
		m.p("Match ratio over time: `%s` (%s → %s)\n\n", sparkline(e.MatchSeries), fmtTime(first.At), fmtTime(last.At))
	}
	m.header("Latency", ">p50", ">p95", ">p99")
	m.row("legacy", fmtMsPtr(e.Legacy.P50Ms), fmtMsPtr(e.Legacy.P95Ms), fmtMsPtr(e.Legacy.P99Ms))
	m.row("Wasm", fmtMsPtr(e.Candidate.P50Ms), fmtMsPtr(e.Candidate.P95Ms), fmtMsPtr(e.Candidate.P99Ms))
	m.p("\n")
	if len(e.Differences) > 0 {
		m.p("Top differences (%d %s):\n\n", e.DifferenceClasses, plural(e.DifferenceClasses, "class", "classes"))
		m.header("Difference", "Where", ">Samples")
		for _, d := range e.Differences {
			m.row(md(d.Text), mdCode(shadow.PointerText(d.Path)), fmtCount(d.Count))
		}
		m.p("\n")
	}
	if e.SampleDiff != "" {
		req := ""
		if e.SampleRequest != "" {
			req = ": " + mdSpan(e.SampleRequest)
		}
		body := e.SampleDiff
		if e.SampleDiffOmitted > 0 {
			body += fmt.Sprintf("\n… %d more lines", e.SampleDiffOmitted)
		}
		fence := mdFence(body)
		m.p("Representative mismatch%s (redacted):\n\n%sdiff\n%s\n%s\n\n", req, fence, body, fence)
	}
	if len(e.ErrorsByKind) > 0 {
		m.header("Candidate error kind", ">Count")
		for _, k := range e.ErrorsByKind {
			m.row(md(k.Kind), fmtCount(k.Count))
		}
		m.p("\n")
	}
	noise := "none"
	if len(e.NoiseFields) > 0 {
		var fs []string
		for _, f := range e.NoiseFields {
			fs = append(fs, mdSpan(f))
		}
		noise = strings.Join(fs, ", ")
	}
	m.p("Noise fields learned (suggested ignore rules): %s\n\n", noise)
}

func (m mdWriter) footprint(r *Report) {
	f := r.Footprint
	m.p("## Footprint and carbon estimate\n\n")
	for _, h := range f.Headline {
		m.p("- %s\n", md(h))
	}
	if len(f.Headline) > 0 {
		m.p("\n")
	}
	if len(f.Services) > 0 {
		m.p("### Artifact size\n\n")
		m.header("Service", ">Container image", ">Wasm module", ">Image ÷ Wasm")
		for _, s := range f.Services {
			ratio := "unknown"
			if s.SizeRatio != nil {
				ratio = fmtRatio(*s.SizeRatio) + "×"
			}
			img := fmtBytesPtr(s.ImageBytes)
			if s.ImageImplausible != "" {
				img += " (not compared)"
			}
			m.row(md(s.Service), img, fmtBytesPtr(s.WasmBytes), ratio)
		}
		m.row("**Total (known values)**", "**"+fmtBytes(f.Totals.ImageBytes)+"**", "**"+fmtBytes(f.Totals.WasmBytes)+"**", "")
		m.p("\n### Memory\n\n")
		m.header("Service", ">Replicas", ">Request / replica", ">Legacy reserved", ">Wasm used (peak)", ">vCPU legacy / Wasm")
		for _, s := range f.Services {
			rep := "unknown"
			if s.Replicas != nil {
				rep = strconv.Itoa(*s.Replicas)
			}
			m.row(md(s.Service), rep, md(orUnknown(s.MemoryRequest))+" · "+md(orUnknown(s.CPURequest))+" CPU",
				fmtBytesPtr(s.ReservedMemoryBytes), fmtBytesPtr(s.WasmMemoryBytes), fmtVCPU(s.ReservedVCPU)+" / "+fmtVCPU(s.WasmVCPU))
		}
		m.row("**Total (known values)**", "", "", "**"+fmtBytes(f.Totals.ReservedMemoryBytes)+"**", "**"+fmtBytes(f.Totals.WasmMemoryBytes)+"**", "")
		if f.PerProcessMeasured() {
			m.p("\n### Memory per process (measured)\n\n")
			m.header("Service", ">Legacy process (RSS)", ">Wasm instance", "How")
			for _, s := range f.Services {
				if s.LegacyRSS == nil && s.WasmInstanceMemory == nil {
					continue
				}
				var how []string
				for _, fig := range []*Figure{s.LegacyRSS, s.WasmInstanceMemory} {
					if fig != nil {
						how = append(how, fig.Basis+": "+md(fig.Method))
					}
				}
				m.row(md(s.Service), fmtFigure(s.LegacyRSS), fmtFigure(s.WasmInstanceMemory), strings.Join(how, "; "))
			}
		}
		m.p("\n### Energy and carbon (estimate)\n\n")
		m.p("> **Estimate.** %s, %s. %s\n\n", md(f.Formula), md(f.FunctionalUnit), md(f.Method))
		m.header("Service", ">Legacy Wh/h", ">Legacy SCI", ">Wasm Wh/h", ">Wasm SCI", "Notes")
		for _, s := range f.Services {
			le, ls, we, ws := "unknown", "unknown", "unknown", "unknown"
			if s.Legacy != nil {
				le, ls = fmtWh(s.Legacy.EnergyKWh), fmtGrams(s.Legacy.SCI)+"/h"
			}
			if s.Wasm != nil {
				we, ws = fmtWh(s.Wasm.EnergyKWh), fmtGrams(s.Wasm.SCI)+"/h"
			}
			var notes []string
			for _, n := range s.Notes {
				notes = append(notes, md(n))
			}
			m.row(md(s.Service), le, ls, we, ws, strings.Join(notes, "; "))
		}
		m.row(fmt.Sprintf("**Compared services (%d)**", f.Totals.Compared), "", "**"+fmtGrams(f.Totals.LegacySCI)+"/h**", "", "**"+fmtGrams(f.Totals.WasmSCI)+"/h**", "")
		m.p("\n")
	} else {
		m.p("_No services: nothing to estimate._\n\n")
	}
	m.p("#### Coefficients\n\n")
	m.header("Coefficient", ">Value", "Unit", "Source")
	for _, c := range f.Coefficients {
		m.row(md(c.Name), strconv.FormatFloat(c.Value, 'g', -1, 64), md(c.Unit), md(c.Source))
	}
	m.p("\n#### Assumptions\n\n")
	for _, a := range f.Assumptions {
		m.p("- %s\n", md(a))
	}
	m.p("\n")
}

// counted writes "1 match" or "2,400 matches".
func counted(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmtCount(n) + " " + many
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func (m mdWriter) method(r *Report) {
	m.p("## Method and sources\n\n")
	m.p("Route verdicts come from each route's gate (or the default gate: %s) measured against its shadow evidence: in shadow mode the client always receives the legacy response while a copy of the request goes to the Wasm candidate, and the two responses are normalised and compared. Samples are redacted before they are stored.\n\n", md(gateText(r.Gate)))
	m.p("Readiness scores and findings come from the inventory (`migrate analyze`); the migration order places services that depend on no other fleet service first.\n\n")
	if len(r.InputErrors) > 0 {
		m.p("### Inputs that could not be analyzed\n\n")
		m.header("Input", "Service", "Error")
		for _, e := range r.InputErrors {
			m.row(mdCode(e.Input), md(e.Service), md(e.Error))
		}
		m.p("\n")
	}
	m.p("---\n%s · %s %s · generated %s by migrate\n", md(r.Title), r.APIVersion, r.Kind, fmtTime(r.Generated))
}
