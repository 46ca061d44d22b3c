package reports

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// Build assembles the report from the inventory (nil is allowed) and the
// routes' state and evidence (nil or partial is allowed). It never fails:
// what the inputs lack is reported as unknown, never invented.
func Build(inv *analyze.Inventory, routes []Route, opts Options) *Report {
	opts = opts.withDefaults()
	if inv == nil {
		inv = &analyze.Inventory{}
	}
	inv, backing := withoutBacking(inv)
	r := &Report{
		APIVersion:  APIVersion,
		Kind:        Kind,
		Title:       opts.Title,
		Generated:   opts.Now.UTC(),
		Gate:        opts.DefaultGate,
		InputErrors: slices.Clone(inv.Errors),
	}
	if !inv.Generated.IsZero() {
		t := inv.Generated.UTC()
		r.InventoryGenerated = &t
	}

	byName := map[string]*analyze.Service{}
	for i := range inv.Services {
		s := &inv.Services[i]
		if _, dup := byName[s.Name]; !dup {
			byName[s.Name] = s
		}
	}
	routeReports := make([]RouteReport, 0, len(routes))
	for _, rt := range routes {
		routeReports = append(routeReports, buildRoute(rt, opts))
	}
	r.Fleet = buildFleet(inv, byName, routeReports)
	r.Fleet.Backing = backing

	// Services appear in migration order; routes within a service by name.
	pos := map[string]int{}
	for i, n := range r.Fleet.Order {
		pos[n] = i
	}
	grouped := map[string][]RouteReport{}
	for _, rr := range routeReports {
		grouped[rr.Service] = append(grouped[rr.Service], rr)
	}
	for _, fs := range r.Fleet.Services {
		rs := grouped[fs.Name]
		slices.SortStableFunc(rs, func(a, b RouteReport) int { return cmp.Compare(a.Route, b.Route) })
		r.Services = append(r.Services, Service{Name: fs.Name, Level: fs.Level, Score: fs.Score, Routes: rs})
	}
	r.Summary = buildSummary(r, byName)
	r.Footprint = buildFootprint(inv, r.Services, opts)
	// Dashboards read empty lists as [], never null.
	r.Services = nonNil(r.Services)
	r.Fleet.Services = nonNil(r.Fleet.Services)
	r.Fleet.Findings = nonNil(r.Fleet.Findings)
	r.Footprint.Services = nonNil(r.Footprint.Services)
	for i := range r.Services {
		r.Services[i].Routes = nonNil(r.Services[i].Routes)
	}
	return r
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// buildRoute evaluates one route's gate and shapes its evidence.
func buildRoute(rt Route, opts Options) RouteReport {
	rr := RouteReport{
		Route:    rt.Route,
		Service:  rt.Service,
		Mode:     rt.Mode,
		Weight:   rt.Weight,
		Gate:     opts.DefaultGate,
		Timeline: nonNil(slices.Clone(rt.Timeline)),
	}
	if rr.Service == "" {
		rr.Service = "(unassigned)"
	}
	if rr.Mode == "" {
		rr.Mode = "legacy"
	}
	if rt.Gate != nil {
		rr.Gate = *rt.Gate
	}
	slices.SortStableFunc(rr.Timeline, func(a, b Transition) int { return a.At.Compare(b.At) })
	for i := range rr.Timeline {
		rr.Timeline[i].At = rr.Timeline[i].At.UTC()
		rr.Timeline[i].Checks = slices.Clone(rr.Timeline[i].Checks)
		for j := range rr.Timeline[i].Checks {
			c := &rr.Timeline[i].Checks[j]
			if c.Detail == "" {
				c.Detail = checkDetail(*c, nil)
			}
		}
	}
	if rt.Evidence != nil {
		rr.Evidence = buildEvidence(rt.Evidence, opts)
		if rt.Checks != nil {
			rr.Checks = slices.Clone(rt.Checks)
			for i := range rr.Checks {
				if rr.Checks[i].Detail == "" {
					rr.Checks[i].Detail = checkDetail(rr.Checks[i], rr.Evidence)
				}
			}
		} else {
			rr.Checks = evaluateGate(rr.Gate, rr.Evidence)
			if c, ok := unshadowedWrites(rr.Route, rr.Evidence); ok {
				rr.Checks = append(rr.Checks, c)
			}
		}
	}
	rr.Status = routeStatus(rr)
	return rr
}

func routeStatus(rr RouteReport) string {
	switch rr.Mode {
	case "cutover":
		return StatusCutover
	case "retired":
		return StatusRetired
	}
	if rr.Evidence == nil {
		if rr.Mode == "legacy" {
			return StatusNotStarted
		}
		return StatusCollecting
	}
	samplesShort, other := false, false
	for _, c := range rr.Checks {
		if c.Passed {
			continue
		}
		// A match ratio not yet confidently on either side of its
		// threshold waits for evidence like a sample shortfall.
		if c.Name == "samples" || (c.Name == "match" && c.Unknown) {
			samplesShort = true
		} else {
			other = true
		}
	}
	switch {
	case other:
		return StatusBlocked
	case samplesShort:
		return StatusCollecting
	}
	return StatusReady
}

func buildEvidence(ev *Evidence, opts Options) *EvidenceReport {
	e := &EvidenceReport{
		Samples:       ev.Samples,
		Matches:       ev.Matches,
		Mismatches:    ev.Mismatches,
		SkippedWrites: ev.SkippedWrites,
		SideEffects:   ev.SideEffects,
		SampleRequest: ev.SampleRequest,
		NoiseFields:   slices.Clone(ev.NoiseFields),
		Legacy:        latencyReport(ev.Legacy),
		Candidate:     latencyReport(ev.Candidate),
	}
	slices.Sort(e.NoiseFields)
	for k, n := range ev.CandidateErrors {
		e.CandidateErrors += n
		e.ErrorsByKind = append(e.ErrorsByKind, KindCount{Kind: k, Count: n})
	}
	slices.SortFunc(e.ErrorsByKind, func(a, b KindCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Kind, b.Kind))
	})
	if ev.Samples > 0 {
		m := float64(ev.Matches) / float64(ev.Samples)
		er := float64(e.CandidateErrors) / float64(ev.Samples)
		e.MatchRatio, e.ErrorRate = &m, &er
	}
	diffs := slices.Clone(ev.Differences)
	slices.SortFunc(diffs, func(a, b Difference) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Type, b.Type))
	})
	e.DifferenceClasses = len(diffs)
	if len(diffs) > opts.TopDifferences {
		diffs = diffs[:opts.TopDifferences]
	}
	for i := range diffs {
		diffs[i].Text = shadow.DescribeSignature(diffs[i].Path + " " + diffs[i].Type)
	}
	e.Differences = diffs
	e.SampleDiff, e.SampleDiffOmitted = clipDiff(ev.SampleDiff, opts.MaxDiffLines, opts.MaxDiffBytes)
	if ev.Legacy.P99 > 0 && ev.Candidate.P99 > 0 {
		ratio := float64(ev.Candidate.P99) / float64(ev.Legacy.P99)
		e.P99Ratio = &ratio
	}
	e.MatchSeries = downsample(ev.MatchSeries, opts.MaxSeriesPoints)
	return e
}

// clipDiff keeps at most maxLines lines and maxBytes bytes of a diff (a
// one-line JSON body can be megabytes) and says how many lines it dropped,
// counting a line cut short as dropped.
func clipDiff(s string, maxLines, maxBytes int) (string, int) {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "", 0
	}
	lines := strings.Split(s, "\n")
	kept, size := 0, 0
	for kept < len(lines) && kept < maxLines {
		n := len(lines[kept]) + 1
		if size+n > maxBytes {
			room := maxBytes - size
			if room > 0 {
				// Cut on a rune boundary so the shown text stays valid UTF-8.
				cut := lines[kept][:room]
				for len(cut) > 0 && !utf8.ValidString(cut) {
					cut = cut[:len(cut)-1]
				}
				out := append(slices.Clone(lines[:kept]), cut+" …")
				return strings.Join(out, "\n"), len(lines) - kept
			}
			break
		}
		size += n
		kept++
	}
	return strings.Join(lines[:kept], "\n"), len(lines) - kept
}

// downsample sorts the series by time and merges consecutive points so at
// most max remain; merging sums counts, so ratios stay exact.
func downsample(in []MatchPoint, max int) []MatchPoint {
	if len(in) == 0 {
		return nil
	}
	pts := slices.Clone(in)
	slices.SortStableFunc(pts, func(a, b MatchPoint) int { return a.At.Compare(b.At) })
	for i := range pts {
		pts[i].At = pts[i].At.UTC()
	}
	if len(pts) <= max {
		return pts
	}
	per := (len(pts) + max - 1) / max
	out := make([]MatchPoint, 0, max)
	for i := 0; i < len(pts); i += per {
		m := MatchPoint{At: pts[i].At}
		for _, p := range pts[i:min(i+per, len(pts))] {
			m.Samples += p.Samples
			m.Matches += p.Matches
		}
		out = append(out, m)
	}
	return out
}

func latencyReport(l Latency) LatencyReport {
	lr := LatencyReport{P50Ms: msPtr(l.P50), P95Ms: msPtr(l.P95), P99Ms: msPtr(l.P99)}
	b := slices.Clone(l.Buckets)
	slices.SortStableFunc(b, func(x, y Bucket) int { return cmp.Compare(x.UpperBound, y.UpperBound) })
	for _, x := range b {
		lr.Buckets = append(lr.Buckets, BucketReport{LeMs: ms(x.UpperBound), Count: x.Count})
	}
	return lr
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func msPtr(d time.Duration) *float64 {
	if d <= 0 {
		return nil
	}
	v := ms(d)
	return &v
}

// evaluateGate measures the evidence against each non-zero gate criterion.
func evaluateGate(g Gate, e *EvidenceReport) []GateCheck {
	var cs []GateCheck
	if g.MinSamples > 0 {
		cs = append(cs, GateCheck{Name: "samples", Actual: float64(e.Samples), Threshold: float64(g.MinSamples),
			Passed: e.Samples >= g.MinSamples})
	}
	if g.MinMatch > 0 {
		c := GateCheck{Name: "match", Threshold: g.MinMatch}
		if e.MatchRatio == nil {
			c.Unknown = true
		} else {
			c.Actual, c.Passed = *e.MatchRatio, *e.MatchRatio >= g.MinMatch
		}
		cs = append(cs, c)
	}
	if g.MaxP99Ratio > 0 {
		c := GateCheck{Name: "p99Ratio", Threshold: g.MaxP99Ratio}
		if e.P99Ratio == nil {
			c.Unknown = true
		} else {
			c.Actual, c.Passed = *e.P99Ratio, *e.P99Ratio <= g.MaxP99Ratio
		}
		cs = append(cs, c)
	}
	if g.MaxErrorRate > 0 {
		c := GateCheck{Name: "errorRate", Threshold: g.MaxErrorRate}
		if e.ErrorRate == nil {
			c.Unknown = true
		} else {
			c.Actual, c.Passed = *e.ErrorRate, *e.ErrorRate <= g.MaxErrorRate
		}
		cs = append(cs, c)
	}
	for i := range cs {
		cs[i].Detail = checkDetail(cs[i], e)
	}
	return cs
}

// unshadowedWrites is the failed write-coverage check of a write route
// whose writes were all skipped, none compared: input without the gate's
// own checks says so by its counts alone.
func unshadowedWrites(route string, e *EvidenceReport) (GateCheck, bool) {
	method, _, _ := strings.Cut(route, " ")
	switch strings.ToUpper(method) {
	case "POST", "PUT", "PATCH", "DELETE":
	default:
		return GateCheck{}, false
	}
	if e.Samples > 0 || e.SkippedWrites == 0 {
		return GateCheck{}, false
	}
	return GateCheck{Name: "write coverage", Detail: fmt.Sprintf("write coverage: %s writes skipped, none compared (not shadowed)", fmtCount(e.SkippedWrites))}, true
}

// checkDetail says a check in words, with the shortfall when it failed.
func checkDetail(c GateCheck, e *EvidenceReport) string {
	if c.Unknown {
		switch c.Name {
		case "p99Ratio":
			return "p99 ratio unknown: no latency recorded for both sides"
		default:
			return c.Name + " unknown: no samples yet"
		}
	}
	switch c.Name {
	case "samples":
		if c.Passed {
			// "4,200 of 1,000 samples" would read as a share.
			return fmt.Sprintf("%s samples ≥ %s", fmtCount(int64(c.Actual)), fmtCount(int64(c.Threshold)))
		}
		return fmt.Sprintf("%s of %s samples, %s short", fmtCount(int64(c.Actual)), fmtCount(int64(c.Threshold)),
			fmtCount(int64(math.Ceil(c.Threshold-c.Actual))))
	case "match":
		if c.Passed {
			return fmt.Sprintf("match %s ≥ %s", strangler.FormatPercent(c.Actual), strangler.FormatPercent(c.Threshold))
		}
		return fmt.Sprintf("match %s < %s, %s pp short", strangler.FormatPercent(c.Actual), strangler.FormatPercent(c.Threshold), fmtPts(c.Threshold-c.Actual))
	case "p99Ratio":
		abs := ""
		if e != nil && e.Candidate.P99Ms != nil && e.Legacy.P99Ms != nil {
			abs = fmt.Sprintf("; p99 %s Wasm vs %s legacy", fmtMs(*e.Candidate.P99Ms), fmtMs(*e.Legacy.P99Ms))
		}
		if c.Passed {
			return fmt.Sprintf("p99 ratio %s× ≤ %s×%s", fmtRatio(c.Actual), fmtRatio(c.Threshold), abs)
		}
		return fmt.Sprintf("p99 ratio %s× > %s×, %s× over%s", fmtRatio(c.Actual), fmtRatio(c.Threshold), fmtRatio(c.Actual-c.Threshold), abs)
	case "errorRate":
		if c.Passed {
			return fmt.Sprintf("errors %s ≤ %s", strangler.FormatPercent(c.Actual), strangler.FormatPercent(c.Threshold))
		}
		return fmt.Sprintf("errors %s > %s, %s pp over", strangler.FormatPercent(c.Actual), strangler.FormatPercent(c.Threshold), fmtPts(c.Actual-c.Threshold))
	}
	return fmt.Sprintf("%s %g (threshold %g)", c.Name, c.Actual, c.Threshold)
}

// buildFleet ranks services by dependency depth and sums their findings.
func buildFleet(inv *analyze.Inventory, byName map[string]*analyze.Service, routes []RouteReport) Fleet {
	names := []string{}
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	for _, s := range inv.Services {
		add(s.Name)
	}
	for _, rr := range routes {
		add(rr.Service)
	}
	deps := map[string][]string{}
	for _, n := range names {
		if s := byName[n]; s != nil && s.Deployment != nil {
			for _, d := range s.Deployment.DependsOn {
				if seen[d] && d != n && !slices.Contains(deps[n], d) {
					deps[n] = append(deps[n], d)
				}
			}
			slices.Sort(deps[n])
		}
	}
	depth := dependencyDepths(names, deps)

	// The inventory's own order wins; services it does not name follow by depth, then name.
	order := []string{}
	placed := map[string]bool{}
	for _, n := range inv.Order {
		if seen[n] && !placed[n] {
			placed[n] = true
			order = append(order, n)
		}
	}
	rest := []string{}
	for _, n := range names {
		if !placed[n] {
			rest = append(rest, n)
		}
	}
	slices.SortFunc(rest, func(a, b string) int { return cmp.Or(cmp.Compare(depth[a], depth[b]), cmp.Compare(a, b)) })
	order = append(order, rest...)

	routeCount, cutCount := map[string]int{}, map[string]int{}
	for _, rr := range routes {
		routeCount[rr.Service]++
		if rr.Status == StatusCutover || rr.Status == StatusRetired {
			cutCount[rr.Service]++
		}
	}
	f := Fleet{Order: order}
	total := map[string]*CategoryEffort{}
	for _, c := range categories {
		total[c] = &CategoryEffort{Category: c}
	}
	for i, n := range order {
		fs := FleetService{Name: n, Order: i + 1, Depth: depth[n], DependsOn: deps[n], Level: "unknown",
			Routes: routeCount[n], CutOver: cutCount[n]}
		per := map[string]*CategoryEffort{}
		for _, c := range categories {
			per[c] = &CategoryEffort{Category: c}
		}
		if s := byName[n]; s != nil {
			fs.InInventory = true
			fs.Namespace = s.Namespace
			if s.Readiness.Level != "" {
				fs.Level = s.Readiness.Level
			}
			if s.Readiness.Level != "" && s.Readiness.Level != "unknown" {
				score := s.Readiness.Score
				fs.Score = &score
			}
			fs.Targets = s.Readiness.Targets
			findings := slices.Clone(s.Findings)
			slices.SortStableFunc(findings, func(a, b analyze.Finding) int {
				return cmp.Or(cmp.Compare(categoryRank(a.Category), categoryRank(b.Category)), cmp.Compare(b.Effort, a.Effort), cmp.Compare(a.ID, b.ID))
			})
			for _, fd := range findings {
				c := fd.Category
				if per[c] == nil {
					per[c] = &CategoryEffort{Category: c}
					if total[c] == nil {
						total[c] = &CategoryEffort{Category: c}
					}
				}
				per[c].Count++
				per[c].Effort += fd.Effort
				total[c].Count++
				total[c].Effort += fd.Effort
				fs.Effort += fd.Effort
				f.Findings = append(f.Findings, FindingRow{Service: n, Finding: fd})
			}
		}
		fs.Findings = sortedEfforts(per)
		f.Services = append(f.Services, fs)
	}
	f.Effort = sortedEfforts(total)
	return f
}

// categories are Konveyor/MTA's finding categories, most pressing first.
var categories = []string{"mandatory", "optional", "potential"}

func categoryRank(c string) int {
	if i := slices.Index(categories, c); i >= 0 {
		return i
	}
	return len(categories)
}

func sortedEfforts(m map[string]*CategoryEffort) []CategoryEffort {
	out := make([]CategoryEffort, 0, len(m))
	for _, v := range m {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b CategoryEffort) int {
		return cmp.Or(cmp.Compare(categoryRank(a.Category), categoryRank(b.Category)), cmp.Compare(a.Category, b.Category))
	})
	return out
}

// dependencyDepths gives each service 0 when it depends on no fleet service,
// else one more than its deepest dependency. Cycles are cut where they close.
func dependencyDepths(names []string, deps map[string][]string) map[string]int {
	depth := map[string]int{}
	state := map[string]int{} // 0 new, 1 visiting, 2 done
	var visit func(n string) int
	visit = func(n string) int {
		switch state[n] {
		case 1:
			return -1 // a cycle: this edge does not add depth
		case 2:
			return depth[n]
		}
		state[n] = 1
		d := 0
		for _, x := range deps[n] {
			if v := visit(x); v+1 > d {
				d = v + 1
			}
		}
		state[n] = 2
		depth[n] = d
		return d
	}
	for _, n := range names {
		visit(n)
	}
	return depth
}

// buildSummary derives the decision summary and next steps from the report.
func buildSummary(r *Report, byName map[string]*analyze.Service) Summary {
	s := Summary{Counts: map[string]int{}, CutOver: []RouteRef{}, Ready: []RouteRef{}, Blocked: []Blocked{}, NextSteps: []Step{}}
	for _, st := range []string{StatusCutover, StatusRetired, StatusReady, StatusCollecting, StatusBlocked, StatusNotStarted} {
		s.Counts[st] = 0
	}
	var fixes, collect, noise, promote []Step
	for _, svc := range r.Services {
		for _, rr := range svc.Routes {
			s.Routes++
			s.Counts[rr.Status]++
			ref := RouteRef{Route: rr.Route, Service: rr.Service, Mode: rr.Mode, Weight: rr.Weight}
			switch rr.Status {
			case StatusCutover, StatusRetired:
				s.CutOver = append(s.CutOver, ref)
				continue
			case StatusReady:
				s.Ready = append(s.Ready, ref)
				// Each step names a move the route's mode allows.
				switch rr.Mode {
				case "canary":
					promote = append(promote, Step{Action: "cutover", Service: rr.Service, Route: rr.Route,
						Text: fmt.Sprintf("Cut over %s: the canary at %d%% clears its gate (%s).", rr.Route, rr.Weight, passedSummary(rr.Checks))})
				case "legacy":
					promote = append(promote, Step{Action: "start-shadow", Service: rr.Service, Route: rr.Route,
						Text: fmt.Sprintf("Shadow %s again: it is back on legacy, and its earlier shadow evidence cleared its gate (%s); from shadow it can be cut over.", rr.Route, passedSummary(rr.Checks))})
				default:
					promote = append(promote, Step{Action: "promote", Service: rr.Service, Route: rr.Route,
						Text: fmt.Sprintf("Promote %s to canary, or cut it over: shadow evidence clears its gate (%s).", rr.Route, passedSummary(rr.Checks))})
				}
			case StatusBlocked:
				b := Blocked{RouteRef: ref}
				for _, c := range rr.Checks {
					if !c.Passed {
						b.Failed = append(b.Failed, c)
					}
				}
				s.Blocked = append(s.Blocked, b)
			}
			if rr.Evidence == nil {
				continue
			}
			// A write route whose writes are never shadowed has no evidence
			// to collect or judge: the one step is to shadow its writes.
			unshadowed := false
			for _, c := range rr.Checks {
				unshadowed = unshadowed || (c.Name == "write coverage" && !c.Passed && !c.Unknown && rr.Evidence.Samples == 0)
			}
			for _, c := range rr.Checks {
				if c.Passed || (unshadowed && c.Name != "write coverage") {
					continue
				}
				if st, ok := stepFor(rr, c); ok {
					if st.Action == "collect-samples" {
						collect = append(collect, st)
					} else {
						fixes = append(fixes, st)
					}
				}
			}
			if len(rr.Evidence.NoiseFields) > 0 {
				noise = append(noise, Step{Action: "add-ignore-rules", Service: rr.Service, Route: rr.Route,
					Text: fmt.Sprintf("Add the learned ignore rules to the shadow config of %s: %s.", rr.Route, strings.Join(rr.Evidence.NoiseFields, ", "))})
			}
		}
	}
	var findings, start []Step
	for _, fs := range r.Fleet.Services {
		if svc := byName[fs.Name]; svc != nil {
			for _, fd := range svc.Findings {
				if fd.Category == "mandatory" {
					findings = append(findings, Step{Action: "resolve-finding", Service: fs.Name,
						Text: fmt.Sprintf("Resolve mandatory finding %s in %s: %s (effort %d).", fd.ID, fs.Name, fd.Title, fd.Effort)})
				}
			}
		}
	}
	for _, svc := range r.Services {
		var idle []string
		for _, rr := range svc.Routes {
			if rr.Status == StatusNotStarted {
				idle = append(idle, rr.Route)
			}
		}
		switch {
		case len(svc.Routes) == 0 && s.Routes > 0:
			start = append(start, Step{Action: "add-routes", Service: svc.Name,
				Text: fmt.Sprintf("Add the routes of %s to the strangler config (none are there yet).", svc.Name)})
		case len(idle) == 1:
			start = append(start, Step{Action: "start-shadow", Service: svc.Name, Route: idle[0],
				Text: fmt.Sprintf("Start shadowing %s in %s (still on legacy, no evidence).", idle[0], svc.Name)})
		case len(idle) > 1:
			start = append(start, Step{Action: "start-shadow", Service: svc.Name,
				Text: fmt.Sprintf("Start shadowing %s: %d routes are still on legacy with no evidence.", svc.Name, len(idle))})
		}
	}
	for _, group := range [][]Step{fixes, collect, promote, findings, noise, start} {
		s.NextSteps = append(s.NextSteps, group...)
	}
	return s
}

func passedSummary(cs []GateCheck) string {
	var parts []string
	for _, c := range cs {
		parts = append(parts, c.Detail)
	}
	if len(parts) == 0 {
		return "no criteria configured"
	}
	return strings.Join(parts, "; ")
}

// stepFor turns a failed gate check into the action that would clear it.
func stepFor(rr RouteReport, c GateCheck) (Step, bool) {
	e := rr.Evidence
	st := Step{Service: rr.Service, Route: rr.Route}
	switch c.Name {
	case "samples":
		st.Action = "collect-samples"
		st.Text = fmt.Sprintf("Collect %s more samples on %s (it has %s of the %s its gate requires).",
			fmtCount(int64(math.Ceil(c.Threshold-c.Actual))), rr.Route, fmtCount(int64(c.Actual)), fmtCount(int64(c.Threshold)))
	case "match":
		if c.Unknown {
			if e.Matches+e.Mismatches == 0 {
				return st, false
			}
			st.Action = "collect-samples"
			st.Text = fmt.Sprintf("Collect more samples on %s: its match ratio is not yet confidently above or below %s (%s).",
				rr.Route, strangler.FormatPercent(c.Threshold), c.Detail)
			return st, true
		}
		st.Action = "fix-differences"
		if e.DifferenceClasses > 0 {
			top := e.Differences[0]
			noun := "difference classes"
			if e.DifferenceClasses == 1 {
				noun = "difference class"
			}
			st.Text = fmt.Sprintf("Fix the %d %s on %s (%s); the largest, %s, shows in %s samples.",
				e.DifferenceClasses, noun, rr.Route, c.Detail, top.Text, fmtCount(top.Count))
		} else {
			st.Text = fmt.Sprintf("Investigate the %s mismatching samples on %s (%s).", fmtCount(e.Mismatches), rr.Route, c.Detail)
		}
	case "errorRate":
		if c.Unknown {
			return st, false
		}
		st.Action = "fix-errors"
		var kinds []string
		for _, k := range e.ErrorsByKind {
			kinds = append(kinds, fmt.Sprintf("%s %s", fmtCount(k.Count), k.Kind))
		}
		st.Text = fmt.Sprintf("Fix the candidate errors on %s: %s (%s).", rr.Route, strings.Join(kinds, ", "), c.Detail)
	case "p99Ratio":
		st.Action = "reduce-latency"
		if c.Unknown {
			st.Text = fmt.Sprintf("Record latency for both sides of %s: the p99 criterion cannot be judged.", rr.Route)
		} else {
			st.Text = fmt.Sprintf("Reduce the Wasm candidate's p99 latency on %s to at most %s× legacy (%s).", rr.Route, fmtRatio(c.Threshold), c.Detail)
		}
	case "write coverage":
		if c.Unknown || e.Samples > 0 {
			return st, false
		}
		st.Action = "shadow-writes"
		st.Text = fmt.Sprintf("Shadow the writes of %s: they are not mirrored under shadow.writes: deny (%s skipped), so more traffic will not bring evidence. Set shadow.writes: allow (or marked) in the shadow block of %s to compare them.",
			rr.Route, fmtCount(e.SkippedWrites), rr.Service)
	default:
		return st, false
	}
	return st, true
}

// withoutBacking sets the backing services (databases, caches, brokers)
// aside: they are context for the applications, not work to plan.
func withoutBacking(inv *analyze.Inventory) (*analyze.Inventory, []string) {
	var backing []string
	apps := *inv
	apps.Services = nil
	for _, s := range inv.Services {
		if s.IsBacking() {
			backing = append(backing, s.Name)
			continue
		}
		apps.Services = append(apps.Services, s)
	}
	return &apps, backing
}
