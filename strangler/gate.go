package strangler

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// Gate verdicts. Inconclusive (too little evidence yet: too few samples, too
// short a span) is distinct from fail (the evidence says no), so a pipeline
// can wait on one and stop on the other.
const (
	VerdictPass         = "pass"
	VerdictFail         = "fail"
	VerdictInconclusive = "inconclusive"
)

// GateFacts are the figures one route's gate decides on. They are read
// from aggregates only (evidence counters, histograms and the recent
// window), never from stored samples, so evaluation costs the same for a
// thousand samples as for a million.
type GateFacts struct {
	// Route is "METHOD /path"; the method tells whether it writes.
	Route string
	// To is the mode the route would go to: cutover checks the shadow
	// evidence, retired checks the record since cutover.
	To Mode
	// Now is the evaluation time.
	Now time.Time
	// Evidence is the route's shadow evidence (nil: never compared) and
	// Noise the noise learned for it (may be nil).
	Evidence *shadow.Evidence
	Noise    *shadow.Noise
	// Legacy and Candidate are the live counters of each side.
	Legacy, Candidate SideSnapshot
	// CutoverAt is when the route was cut over (zero: unknown), and
	// CandidateAtCutover the candidate's counters then (nil: unknown, the
	// whole record counts).
	CutoverAt          time.Time
	CandidateAtCutover *SideTotals
	// From is the mode the route is in ("" is read as shadow), and
	// FromWeight and ToWeight the canary weights of a canary move.
	From                 Mode
	FromWeight, ToWeight int
	// Step is what the route served since it entered its current mode
	// and weight (nil: unknown); promotions out of a canary step are
	// judged on it.
	Step *StepWindow
	// WritesDenied is true for a write route whose service does not
	// shadow writes (shadow.writes: deny, the default): no amount of
	// shadowing will ever compare it.
	WritesDenied bool
}

// SideTotals are one side's request and error counts.
type SideTotals struct {
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// P99 is the side's p99 latency in milliseconds.
	P99 float64 `json:"p99Millis"`
}

func totals(s SideSnapshot) SideTotals {
	return SideTotals{Requests: s.Requests, Errors: s.Errors, P99: s.Latency().P99}
}

// GateSnapshot is what a gate stores with a transition in the audit log:
// the verdict and the numbers that justified it.
type GateSnapshot struct {
	// Verdict is empty for transitions no gate evaluated (rollbacks).
	Verdict  string          `json:"verdict,omitempty"`
	To       Mode            `json:"to"`
	Criteria []Criterion     `json:"criteria,omitempty"`
	Shadow   *shadow.Summary `json:"shadow,omitempty"`
	// First and Last bound the compared samples.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Legacy and Candidate are the live counters at the decision.
	Legacy    SideTotals `json:"legacy"`
	Candidate SideTotals `json:"candidate"`
	// Canary, on a transition made by a canary walk, is the step's analysis.
	Canary *CanaryStepResult `json:"canary,omitempty"`
}

// EvaluateGate checks one route's facts against its gate (nil: no gate,
// every promotion passes). It returns one Criterion per configured check,
// each with what was wanted, what was found and how far off it is, and
// the snapshot to audit as Evidence.
func EvaluateGate(g *GateConfig, f GateFacts) GateResult {
	snap := GateSnapshot{To: f.To, Legacy: totals(f.Legacy), Candidate: totals(f.Candidate)}
	var sum *shadow.Summary
	if f.Evidence != nil {
		s := f.Evidence.Summary(f.Noise)
		sum = &s
		snap.Shadow, snap.First, snap.Last = sum, f.Evidence.First, f.Evidence.Last
	}
	crit, gated := promotionCriteria(g, f, sum)
	snap.Criteria = crit
	if gated {
		snap.Verdict = verdictOf(crit)
	}
	ev, _ := json.Marshal(snap)
	// An ungated move passes with an empty verdict, so the audit log never
	// records a "pass" no evidence was weighed for.
	return GateResult{Pass: !gated || snap.Verdict == VerdictPass, Verdict: snap.Verdict, Criteria: crit, Evidence: ev}
}

// promotionCriteria picks the checks a move needs, and says whether it is
// gated at all. Without a gate block nothing is checked. With one, every
// move that lets the candidate answer more clients needs evidence:
// entering canary or cutover from shadow is judged on the shadow evidence
// (the cutover criteria), a higher canary weight on what the current step
// served, cutover from canary on both, and retire on the record since
// cutover. Shadow needs none (legacy still answers every client), nor does
// a lower canary weight.
func promotionCriteria(g *GateConfig, f GateFacts, sum *shadow.Summary) ([]Criterion, bool) {
	if g == nil {
		return nil, false
	}
	from := f.From
	if from == "" {
		from = ModeShadow
	}
	switch f.To {
	case ModeCanary:
		if from != ModeCanary {
			return cutoverCriteria(g, f, sum), true
		}
		if f.ToWeight <= f.FromWeight {
			return nil, false
		}
		return stepCriteria(g, f.Step), true
	case ModeCutover:
		crit := cutoverCriteria(g, f, sum)
		if from == ModeCanary {
			crit = append(crit, stepCriteria(g, f.Step)...)
		}
		return crit, true
	case ModeRetired:
		return retireCriteria(g, f), true
	}
	return nil, false
}

// verdictOf combines criteria: any failure fails; otherwise any
// inconclusive criterion makes the whole inconclusive.
func verdictOf(crit []Criterion) string {
	v := VerdictPass
	for _, c := range crit {
		switch {
		case c.Pass:
		case c.Inconclusive:
			if v == VerdictPass {
				v = VerdictInconclusive
			}
		default:
			return VerdictFail
		}
	}
	return v
}

func pass(name, want, got string) Criterion {
	return Criterion{Name: name, Want: want, Got: got, Pass: true}
}

func miss(name, want, got, delta string, inconclusive bool) Criterion {
	return Criterion{Name: name, Want: want, Got: got, Delta: delta, Inconclusive: inconclusive}
}

func cutoverCriteria(g *GateConfig, f GateFacts, sum *shadow.Summary) []Criterion {
	var out []Criterion
	var samples uint64
	if sum != nil {
		samples = sum.Samples
	}
	// Below minSamples every ratio is too noisy to fail a route on: a miss
	// there is inconclusive, more traffic will settle it.
	thin := samples == 0 || samples < uint64(g.MinSamples)
	if g.MinSamples > 0 {
		want := fmt.Sprintf("≥ %d samples", g.MinSamples)
		got := fmt.Sprintf("%d", samples)
		if samples >= uint64(g.MinSamples) {
			out = append(out, pass("samples", want, got))
		} else {
			c := miss("samples", want, got, signed(int64(samples)-int64(g.MinSamples)), true)
			if !f.WritesDenied {
				c.Hint = "more compared traffic settles it; check again later"
			}
			out = append(out, c)
		}
	}
	if g.MinMatch != nil {
		want := "≥ " + FormatPercent(float64(*g.MinMatch))
		switch {
		case sum == nil || sum.Matches+sum.Mismatches == 0:
			out = append(out, miss("match ratio", want, "no compared answers", "", true))
		default:
			// The ratio is judged by its confidence interval, not its
			// point value: it passes only when the whole interval lies at
			// or above the minimum and fails as soon as it lies below,
			// however few samples there are; in between, more samples
			// settle it.
			answered, matched := sum.Matches+sum.Mismatches, sum.Matches+sum.Explained
			lo, hi := wilson(matched, answered)
			min := float64(*g.MinMatch)
			got := fmt.Sprintf("%s (%d of %d after noise; %s–%s at %s confidence)", FormatPercent(sum.MatchRatio),
				matched, answered, FormatPercent(lo), FormatPercent(hi), confidenceText)
			switch {
			case lo >= min:
				out = append(out, pass("match ratio", want, got))
			case hi < min:
				c := miss("match ratio", want, got, points(sum.MatchRatio-min), false)
				c.Hint = fmt.Sprintf("fix the differences (migrate diffs '%s'), or accept those that are noise in the shadow block", f.Route)
				out = append(out, c)
			default:
				c := miss("match ratio", want, got, points(sum.MatchRatio-min), true)
				c.Hint = "too few compared answers to tell whether the ratio is above the minimum; more compared traffic settles it"
				out = append(out, c)
			}
		}
	}
	if g.CleanWindow > 0 {
		want := fmt.Sprintf("no unexplained difference class in the last %d samples", g.CleanWindow)
		classes, seen := recentUnexplained(f.Evidence, sum, g.CleanWindow)
		switch {
		case seen == 0:
			out = append(out, miss("recent differences", want, "no compared samples", "", true))
		case len(classes) == 0:
			out = append(out, pass("recent differences", want, fmt.Sprintf("none in %d samples", seen)))
		default:
			got := fmt.Sprintf("%d class(es) in %d samples: %s", len(classes), seen, strings.Join(classes, "; "))
			out = append(out, miss("recent differences", want, got, fmt.Sprintf("+%d class(es)", len(classes)), false))
		}
	}
	if g.MaxErrorRate != nil {
		want := "≤ " + FormatPercent(float64(*g.MaxErrorRate))
		if sum == nil || sum.Samples == 0 {
			out = append(out, miss("candidate errors", want, "no compared samples", "", true))
		} else {
			got := fmt.Sprintf("%s (%d of %d)", FormatPercent(sum.ErrorRate), sum.CandidateErrors, sum.Samples)
			if sum.ErrorRate <= float64(*g.MaxErrorRate) {
				out = append(out, pass("candidate errors", want, got))
			} else {
				c := miss("candidate errors", want, got, points(sum.ErrorRate-float64(*g.MaxErrorRate)), thin)
				if !thin {
					c.Hint = fmt.Sprintf("fix what makes the candidate fail: the failed requests and their kind (trap, exit, deadline…) are in migrate diffs '%s'", f.Route)
				}
				out = append(out, c)
			}
		}
	}
	if g.MaxP99Ratio > 0 {
		want := fmt.Sprintf("≤ %.2f× legacy p99", g.MaxP99Ratio)
		if sum == nil || sum.P99Ratio == 0 {
			out = append(out, miss("p99 ratio", want, "no latency data on both sides", "", true))
		} else {
			got := fmt.Sprintf("%.2f× (candidate %s, legacy %s)", sum.P99Ratio, fmtLatency(sum.Candidate.P99), fmtLatency(sum.Legacy.P99))
			if sum.P99Ratio <= g.MaxP99Ratio {
				out = append(out, pass("p99 ratio", want, got))
			} else {
				c := miss("p99 ratio", want, got, fmt.Sprintf("+%.2f×", sum.P99Ratio-g.MaxP99Ratio), thin)
				if !thin {
					c.Hint = "make the candidate faster on this route, or raise the gate's maxP99Ratio if its latency is acceptable"
				}
				out = append(out, c)
			}
		}
	}
	if g.MinDuration > 0 {
		min := time.Duration(g.MinDuration)
		want := "≥ " + fmtDuration(min) + " of shadow evidence"
		if f.Evidence == nil || f.Evidence.First.IsZero() {
			out = append(out, miss("shadow duration", want, "no compared samples", "", true))
		} else {
			span := f.Evidence.Last.Sub(f.Evidence.First)
			got := fmt.Sprintf("%s (%s to %s)", fmtDuration(span), f.Evidence.First.UTC().Format(time.RFC3339), f.Evidence.Last.UTC().Format(time.RFC3339))
			if span >= min {
				out = append(out, pass("shadow duration", want, got))
			} else {
				c := miss("shadow duration", want, got, "−"+fmtDuration(min-span), true)
				c.Hint = "keep shadowing: the gate wants " + fmtDuration(min) + " of evidence (its minDuration); check again in " + fmtDuration(min-span)
				out = append(out, c)
			}
		}
	}
	if f.WritesDenied && samples == 0 {
		// Waiting cannot settle a write route whose writes are never
		// mirrored; it fails, saying how to compare them.
		var skipped uint64
		if sum != nil {
			skipped = sum.SkippedWrites
		}
		delta := ""
		if skipped > 0 {
			delta = fmt.Sprintf("−%d writes", skipped)
		}
		c := miss("write coverage", "writes compared, not only skipped",
			fmt.Sprintf("writes are not shadowed (shadow.writes: deny); %d skipped, 0 compared", skipped), delta, false)
		c.Hint = compareWritesHint
		out = append(out, c)
	} else if g.RequireWrites {
		want := "writes compared, not only skipped"
		var skipped uint64
		if sum != nil {
			skipped = sum.SkippedWrites
		}
		switch {
		case !isWriteRoute(f.Route) && skipped == 0:
			out = append(out, pass("write coverage", want, "read route: nothing to write"))
		case samples > 0 && isWriteRoute(f.Route):
			out = append(out, pass("write coverage", want, fmt.Sprintf("%d writes compared, %d skipped", samples, skipped)))
		case skipped > 0:
			c := miss("write coverage", want,
				fmt.Sprintf("0 writes compared, %d skipped (shadow writes: deny); allow or mark writes to compare them", skipped),
				fmt.Sprintf("−%d writes", skipped), false)
			c.Hint = compareWritesHint
			out = append(out, c)
		default:
			out = append(out, miss("write coverage", want, "no writes seen yet", "", true))
		}
	}
	out = append(out, sideEffectCriteria(f.Route, f.Evidence, sum)...)
	return out
}

// compareWritesHint is how to get a write route's writes compared.
const compareWritesHint = "set shadow.writes: allow (or marked, for a candidate that honours " + shadow.HeaderShadowWrite +
	") in the service's shadow block to compare writes, or promote with --force --reason"

func retireCriteria(g *GateConfig, f GateFacts) []Criterion {
	var out []Criterion
	// Time in cutover is always checked (minCutoverTime has a default): a
	// cutover retired in the second it was made has shown nothing.
	min := g.minCutoverTime()
	want := "≥ " + fmtDuration(min) + " in cutover"
	if f.CutoverAt.IsZero() {
		out = append(out, miss("time in cutover", want, "cutover time unknown", "", true))
	} else {
		in := f.Now.Sub(f.CutoverAt)
		got := fmt.Sprintf("%s (since %s)", fmtDuration(in), f.CutoverAt.UTC().Format(time.RFC3339))
		if in >= min {
			out = append(out, pass("time in cutover", want, got))
		} else {
			c := miss("time in cutover", want, got, "−"+fmtDuration(min-in), true)
			c.Hint = "retire once the route has run in cutover for " + fmtDuration(min) + " (the gate's minCutoverTime)"
			out = append(out, c)
		}
	}
	ceiling := g.canaryMaxErrorRate()
	minReq := g.canaryMinRequests()
	want = fmt.Sprintf("≥ %d candidate requests since cutover, ≤ %s of them errors", minReq, FormatPercent(ceiling))
	req, errs := f.Candidate.Requests, f.Candidate.Errors
	if at := f.CandidateAtCutover; at != nil && at.Requests <= req && at.Errors <= errs {
		req, errs = req-at.Requests, errs-at.Errors
	}
	// A cutover that served nothing has not shown that it runs cleanly.
	if req < minReq {
		c := miss("record since cutover", want, fmt.Sprintf("%d candidate requests, %d errors", req, errs), signed(req-minReq), true)
		c.Hint = "let the cut-over route serve traffic, then check again"
		out = append(out, c)
		return out
	}
	rate := float64(errs) / float64(req)
	got := fmt.Sprintf("%s (%d of %d)", FormatPercent(rate), errs, req)
	if rate <= ceiling {
		out = append(out, pass("record since cutover", want, got))
	} else {
		out = append(out, miss("record since cutover", want, got, points(rate-ceiling), false))
	}
	return out
}

// recentUnexplained lists the unexplained difference classes among the
// last k compared samples, and how many samples that window held.
func recentUnexplained(ev *shadow.Evidence, sum *shadow.Summary, k int) ([]string, int) {
	if ev == nil || sum == nil {
		return nil, 0
	}
	unexplained := make(map[string]bool, len(sum.RecentUnexplained))
	for _, c := range sum.RecentUnexplained {
		unexplained[c] = true
	}
	n := len(ev.Recent.Codes)
	skip := n - k
	i := 0
	seen := 0
	found := map[int32]bool{}
	var out []string
	ev.Recent.Each(func(code int32) {
		i++
		if i <= skip {
			return
		}
		seen++
		if code <= 0 || found[code] || int(code) > len(ev.Classes) {
			return
		}
		found[code] = true
		sigs := ev.Classes[code-1].Signatures
		if unexplained[strings.Join(sigs, ", ")] {
			out = append(out, describeClass(sigs))
		}
	})
	return out, seen
}

// describeClass says a difference class in plain words, its signatures
// one by one ("value differs at /id, header Content-Type differs"): the
// gate's detail is read by people, in `migrate gate`, the timeline and
// the report.
func describeClass(sigs []string) string {
	words := make([]string, len(sigs))
	for i, sig := range sigs {
		words[i] = shadow.DescribeSignature(sig)
	}
	return strings.Join(words, ", ")
}

// confidenceZ and confidenceText are the one-sided level of the match
// ratio's bounds: a route passes when its ratio is at least the minimum
// with this confidence, and fails when it is below it with the same.
const (
	confidenceZ    = 1.6449 // standard normal quantile at 0.95
	confidenceText = "95%"
)

// wilson is the Wilson score interval of k successes in n trials: unlike
// the normal approximation it stays inside [0, 1] and is honest for ratios
// near 100% and for few samples.
func wilson(k, n uint64) (lo, hi float64) {
	if n == 0 {
		return 0, 1
	}
	nf, p, z2 := float64(n), float64(k)/float64(n), confidenceZ*confidenceZ
	den := 1 + z2/nf
	center := (p + z2/(2*nf)) / den
	half := confidenceZ / den * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return max(0, center-half), min(1, center+half)
}

func isWriteRoute(route string) bool {
	method, _, _ := strings.Cut(route, " ")
	switch strings.ToUpper(method) {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return false
	}
	return true
}

// FormatPercent shows a fraction as a percentage people can read: a value
// with at most two decimals as a percentage (thresholds as configured,
// 99.95%), a measured one to 0.1 pp, never rounded to 100% or 0% when it
// is not.
func FormatPercent(f float64) string {
	v := f * 100
	if math.Abs(v*100-math.Round(v*100)) < 1e-6 {
		return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + "%"
	}
	r := math.Round(v*10) / 10
	switch {
	case r >= 100 && f < 1:
		r = 99.9
	case r <= 0 && f > 0:
		r = 0.1
	}
	return strconv.FormatFloat(r, 'f', 1, 64) + "%"
}

// points is a difference of two fractions in percentage points, to 0.1 pp.
func points(d float64) string {
	s := strconv.FormatFloat(math.Abs(math.Round(d*1000)/10), 'f', -1, 64) + " pp"
	if s == "0 pp" && d != 0 {
		s = "<0.1 pp"
	}
	if d < 0 {
		return "−" + s
	}
	return "+" + s
}

func signed(n int64) string {
	if n < 0 {
		return fmt.Sprintf("−%d", -n)
	}
	return fmt.Sprintf("+%d", n)
}

func fmtLatency(d time.Duration) string {
	return strconv.FormatFloat(math.Round(float64(d)/1e4)/1e2, 'f', -1, 64) + "ms"
}

// fmtDuration says a duration as people write it: 24h, 23h54m, 10m,
// 6m4s, without the zero units Go's String adds ("24h0m0s").
func fmtDuration(d time.Duration) string {
	var s string
	switch {
	case d >= time.Hour:
		s = d.Round(time.Minute).String()
	case d >= time.Second:
		s = d.Round(time.Second).String()
	default:
		return d.Round(time.Millisecond).String()
	}
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// EvaluateGate is the controller's GateFunc (installed by NewController):
// it gathers the route's shadow evidence, live counters and, for retire,
// its cutover record, and checks them against the route's gate.
func (c *Controller) EvaluateGate(ctx context.Context, in GateInput) (GateResult, error) {
	now := c.Now()
	f := GateFacts{Route: in.Route.Name, To: in.To.Mode, Now: now,
		Legacy: in.Status.Stats[SideLegacy], Candidate: in.Status.Stats[SideCandidate],
		From: in.From.Mode, FromWeight: in.From.Weight, ToWeight: in.To.Weight,
		Step: stepWindow(in.Route, now), WritesDenied: WritesDenied(in.Route.Name, in.Shadow)}
	if f.Legacy.Buckets == nil {
		f.Legacy = in.Route.Legacy.Snapshot()
	}
	if f.Candidate.Buckets == nil {
		f.Candidate = in.Route.Candidate.Snapshot()
	}
	if c.Shadow != nil {
		f.Evidence = c.shadowView().Evidence(in.Route.Name)
		f.Noise = c.Shadow.Noise(in.Route.Name)
	}
	if in.To.Mode == ModeRetired {
		var err error
		if f.CutoverAt, f.CandidateAtCutover, err = c.store.cutoverRecord(ctx, in.Route.Name); err != nil {
			return GateResult{}, err
		}
	}
	return EvaluateGate(in.Config.For(in.Route.Name), f), nil
}

// WritesDenied reports whether route writes (POST, PUT, PATCH, DELETE)
// and opts, its service's shadow block (nil: the defaults), never mirrors
// writes (writes: deny, the default).
func WritesDenied(route string, opts *shadow.Options) bool {
	return isWriteRoute(route) && (opts == nil || opts.Writes == "" || opts.Writes == shadow.WritesDeny)
}

// GateReport is a gate evaluation without a transition: the body of
// GET /v1/gate and of `migrate gate -o json`.
type GateReport struct {
	APIVersion string `json:"apiVersion"`
	Target     string `json:"target"`
	// Verdict is pass, fail or inconclusive: the worst of the routes'.
	Verdict string      `json:"verdict"`
	Pass    bool        `json:"pass"`
	Routes  []RouteGate `json:"routes"`
}

// RouteGate is one route's verdict in a GateReport.
type RouteGate struct {
	Route    string          `json:"route"`
	Service  string          `json:"service"`
	Mode     Mode            `json:"mode"`
	Weight   int             `json:"weight"`
	To       Mode            `json:"to"`
	Verdict  string          `json:"verdict"`
	Pass     bool            `json:"pass"`
	Criteria []Criterion     `json:"criteria"`
	Shadow   *shadow.Summary `json:"shadow,omitempty"`
}

// CheckGate evaluates the gate of a route or of every route of a service
// without changing anything. to is the promotion to check ("" = the next
// gated one: cutover, or retired for a route already cut over).
func (c *Controller) CheckGate(ctx context.Context, target string, to Mode) (*GateReport, error) {
	if to != "" && to != ModeCutover && to != ModeRetired {
		return nil, requestErrorf("gates guard cutover and retired, not %q", to)
	}
	c.mu.Lock()
	routes, err := c.resolve(target)
	cfg := c.cfg
	gate := c.Gate
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if gate == nil {
		gate = PermissiveGate
	}
	rep := &GateReport{APIVersion: APIVersion, Target: target, Verdict: VerdictPass, Routes: []RouteGate{}}
	for _, r := range routes {
		st := r.State()
		next := to
		if next == "" {
			next = ModeCutover
			if st.Mode == ModeCutover || st.Mode == ModeRetired {
				next = ModeRetired
			}
		}
		status := c.status(r)
		var gc *GateConfig
		var sh *shadow.Options
		if svc := cfg.Services[r.Service()]; svc != nil {
			gc, sh = svc.Gate, svc.Shadow
		}
		res, err := gate(ctx, GateInput{Route: r, Status: status, Service: r.Service(), From: st,
			To: RouteState{Mode: next}, Config: gc, Shadow: sh})
		if err != nil {
			return nil, fmt.Errorf("evaluate gate for %q: %w", r.Name, err)
		}
		verdict := res.Verdict
		if verdict == "" {
			verdict = VerdictFail
			if res.Pass {
				verdict = VerdictPass
			}
		}
		if res.Criteria == nil {
			res.Criteria = []Criterion{}
		}
		rep.Routes = append(rep.Routes, RouteGate{Route: r.Name, Service: r.Service(), Mode: st.Mode,
			Weight: st.Weight, To: next, Verdict: verdict, Pass: res.Pass, Criteria: res.Criteria, Shadow: status.Shadow})
		rep.Verdict = worse(rep.Verdict, verdict)
	}
	rep.Pass = rep.Verdict == VerdictPass
	return rep, nil
}

func worse(a, b string) string {
	rank := map[string]int{VerdictPass: 0, VerdictInconclusive: 1, VerdictFail: 2}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// transitionSnapshot is the audit evidence of a transition no gate spoke
// for (a rollback): the shadow summary and live counters, no verdict.
func (c *Controller) transitionSnapshot(r *Route, to Mode) json.RawMessage {
	snap := GateSnapshot{To: to, Legacy: totals(r.Legacy.Snapshot()), Candidate: totals(r.Candidate.Snapshot())}
	if c.Shadow != nil {
		if s, ok := c.shadowView().Summary(r.Name); ok {
			snap.Shadow = &s
		}
	}
	b, _ := json.Marshal(snap)
	return b
}
