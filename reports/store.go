package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// minChartPoints is how many points a match chart needs to show a trend;
// with fewer minutes of evidence the chart uses the per-second series.
const minChartPoints = 10

// FromStore reads what the proxy recorded — each configured route's mode,
// its audited transitions, shadow evidence, learned noise and a
// representative mismatching sample — into report input. Routes the store
// has never seen are reported in their configured state with no evidence.
func FromStore(ctx context.Context, st *strangler.Store, cfg *strangler.Config) ([]Route, error) {
	states, err := st.LoadRoutes(ctx)
	if err != nil {
		return nil, err
	}
	evidence, err := st.LoadEvidence(ctx)
	if err != nil {
		return nil, err
	}
	counters, err := st.LoadCounters(ctx)
	if err != nil {
		return nil, err
	}
	var routes []Route
	for _, name := range cfg.RouteNames() {
		svc := cfg.ServiceOf(name)
		r := Route{Route: name, Service: svc, Mode: string(strangler.ModeLegacy)}
		if s, ok := states[name]; ok {
			r.Mode, r.Weight = string(s.Mode), s.Weight
		}
		if g := cfg.Services[svc].Gate.For(name); g != nil {
			r.Gate = reportGate(g)
		}
		audit, err := st.Audit(ctx, strangler.AuditQuery{Route: name, Limit: 200})
		if err != nil {
			return nil, err
		}
		for _, t := range audit {
			checks, verdict := gateChecks(t.Evidence)
			r.Timeline = append(r.Timeline, Transition{At: t.At, Actor: t.Actor, From: string(t.From),
				To: string(t.To), Weight: t.ToWeight, Reason: t.Reason, Forced: t.Forced,
				Checks: checks, Verdict: verdict})
		}
		if raw, ok := evidence[name]; ok {
			ev := new(shadow.Evidence)
			if err := json.Unmarshal(raw, ev); err != nil {
				return nil, fmt.Errorf("read shadow evidence of %q: %w", name, err)
			}
			noise := shadow.NewNoise()
			if raw := counters[name]["noise"]; len(raw) > 0 {
				if err := json.Unmarshal(raw, noise); err != nil {
					return nil, fmt.Errorf("read learned noise of %q: %w", name, err)
				}
			}
			r.Evidence = reportEvidence(ev, noise)
			r.Checks = gateVerdict(cfg.Services[svc].Gate.For(name), name, ev, noise,
				strangler.WritesDenied(name, cfg.Services[svc].Shadow))
			if err := addRepresentativeSample(ctx, st, name, r.Evidence); err != nil {
				return nil, err
			}
		}
		routes = append(routes, r)
	}
	return routes, nil
}

// WasmUsageFromStore reads what the proxy measured of each service's
// in-process Wasm candidate, by service, as WasmModule values carrying
// Service, MemoryBytes — the most linear memory the candidate's instances
// held at one moment (the sum over the instances running at once; compiled
// code and the runtime itself are not included) — and InstanceMemoryBytes,
// the most one instance held. The
// caller merges them with what it knows of the module files. Services
// whose module never ran are absent.
func WasmUsageFromStore(ctx context.Context, st *strangler.Store) (map[string]WasmModule, error) {
	usage, err := st.LoadCandidateUsage(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]WasmModule, len(usage))
	for svc, u := range usage {
		if u.Requests == 0 {
			continue
		}
		out[svc] = WasmModule{Service: svc, MemoryBytes: int64(u.PeakMemoryBytes), InstanceMemoryBytes: int64(u.PeakInstanceBytes)}
	}
	return out, nil
}

// reportGate converts a configured gate into the report's terms (ratios 0-1).
func reportGate(g *strangler.GateConfig) *Gate {
	out := &Gate{MinSamples: int64(g.MinSamples), MaxP99Ratio: g.MaxP99Ratio}
	if g.MinMatch != nil {
		out.MinMatch = float64(*g.MinMatch)
	}
	if g.MaxErrorRate != nil {
		out.MaxErrorRate = float64(*g.MaxErrorRate)
	}
	return out
}

// reportEvidence flattens shadow evidence into the report's evidence.
func reportEvidence(ev *shadow.Evidence, noise *shadow.Noise) *Evidence {
	sum := ev.Summary(noise)
	out := &Evidence{
		Samples:       int64(sum.Samples),
		Matches:       int64(sum.Matches + sum.Explained),
		Mismatches:    int64(sum.Mismatches - sum.Explained),
		SkippedWrites: int64(sum.SkippedWrites),
		SideEffects:   int64(sum.SideEffects),
		Legacy:        reportLatency(sum.Legacy, &ev.Legacy),
		Candidate:     reportLatency(sum.Candidate, &ev.Candidate),
	}
	if len(ev.CandidateErrors) > 0 {
		out.CandidateErrors = map[string]int64{}
		for kind, n := range ev.CandidateErrors {
			out.CandidateErrors[kind] = int64(n)
		}
	}
	for sig, n := range ev.Signatures {
		if noise.Has(sig) {
			continue
		}
		path, typ := shadow.SplitSignature(sig)
		out.Differences = append(out.Differences, Difference{Path: path, Type: typ, Count: int64(n)})
	}
	sort.Slice(out.Differences, func(i, j int) bool {
		a, b := out.Differences[i], out.Differences[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		return a.Path+a.Type < b.Path+b.Type
	})
	for _, s := range noise.Suggestions() {
		out.NoiseFields = append(out.NoiseFields, s.String())
	}
	series := ev.Timeline
	if len(series) < minChartPoints && len(ev.Seconds) > len(series) {
		// A route's first minutes: chart them second by second.
		series = ev.Seconds
	}
	for _, m := range series {
		out.MatchSeries = append(out.MatchSeries, MatchPoint{At: m.Start, Samples: int64(m.Samples), Matches: int64(m.Matches)})
	}
	return out
}

// reportLatency carries percentiles and the non-empty histogram buckets.
func reportLatency(p shadow.Percentiles, h *shadow.Histogram) Latency {
	out := Latency{P50: p.P50, P95: p.P95, P99: p.P99}
	for i, n := range h.Counts {
		if n > 0 {
			out.Buckets = append(out.Buckets, Bucket{UpperBound: shadow.BucketUpperBound(i), Count: int64(n)})
		}
	}
	return out
}

// addRepresentativeSample renders the newest stored mismatch of a route
// (samples are redacted before they are stored).
func addRepresentativeSample(ctx context.Context, st *strangler.Store, route string, ev *Evidence) error {
	rows, err := st.Samples(ctx, route, 50, true)
	if err != nil {
		return err
	}
	for _, row := range rows {
		var s shadow.Sample
		if json.Unmarshal(row.Data, &s) != nil || s.Baseline || s.Result.Outcome != shadow.OutcomeMismatch {
			continue
		}
		var b strings.Builder
		if err := shadow.Render(s, &b, false); err != nil {
			continue
		}
		ev.SampleRequest = s.Request.Method + " " + s.Request.URL
		ev.SampleDiff = b.String()
		return nil
	}
	return nil
}

// gateChecks reads the gate criteria stored with a transition, if any: the
// numbers the decision was made on, in the gate's own words, and the
// verdict they added up to.
func gateChecks(raw json.RawMessage) ([]GateCheck, string) {
	var snap strangler.GateSnapshot
	if len(raw) == 0 || json.Unmarshal(raw, &snap) != nil {
		return nil, ""
	}
	var out []GateCheck
	for _, c := range snap.Criteria {
		detail := fmt.Sprintf("%s: got %s, want %s", c.Name, c.Got, c.Want)
		if c.Delta != "" {
			detail += " (" + c.Delta + ")"
		}
		out = append(out, GateCheck{Name: c.Name, Passed: c.Pass, Unknown: c.Inconclusive, Detail: detail})
	}
	return out, snap.Verdict
}

// reportCheckNames are the gate criteria the report measures in numbers of
// its own (and words next steps are built from); other criteria keep the
// gate's name and are described in the gate's words.
var reportCheckNames = map[string]string{
	"samples": "samples", "match ratio": "match", "p99 ratio": "p99Ratio", "candidate errors": "errorRate",
}

// gateVerdict evaluates the route's cutover gate with the same function the
// proxy, `migrate gate` and the integrations use, so the report can never
// call a route ready that the gate would refuse.
func gateVerdict(g *strangler.GateConfig, route string, ev *shadow.Evidence, noise *shadow.Noise, writesDenied bool) []GateCheck {
	if g == nil {
		return nil
	}
	res := strangler.EvaluateGate(g, strangler.GateFacts{Route: route, To: strangler.ModeCutover,
		Now: ev.Last, Evidence: ev, Noise: noise, WritesDenied: writesDenied})
	sum := ev.Summary(noise)
	checks := []GateCheck{}
	for _, c := range res.Criteria {
		gc := GateCheck{Name: c.Name, Passed: c.Pass, Unknown: !c.Pass && c.Inconclusive && c.Name != "samples"}
		name, numeric := reportCheckNames[c.Name]
		if numeric {
			gc.Name = name
		}
		switch gc.Name {
		case "samples":
			gc.Actual, gc.Threshold = float64(sum.Samples), float64(g.MinSamples)
		case "match":
			// Unknown also while the ratio's confidence interval straddles
			// the minimum: more samples settle it, nothing needs fixing.
			gc.Actual, gc.Threshold = sum.MatchRatio, float64(*g.MinMatch)
			gc.Unknown = sum.Matches+sum.Mismatches == 0 || (!c.Pass && c.Inconclusive)
			if gc.Unknown && sum.Matches+sum.Mismatches > 0 {
				gc.Detail = fmt.Sprintf("match ratio inconclusive: %s, want %s", c.Got, c.Want)
			}
		case "errorRate":
			gc.Actual, gc.Threshold = sum.ErrorRate, float64(*g.MaxErrorRate)
			gc.Unknown = sum.Samples == 0
		case "p99Ratio":
			gc.Actual, gc.Threshold = sum.P99Ratio, g.MaxP99Ratio
			gc.Unknown = sum.P99Ratio == 0
		default:
			gc.Detail = fmt.Sprintf("%s: got %s, want %s", c.Name, c.Got, c.Want)
			if c.Delta != "" {
				gc.Detail += " (" + c.Delta + ")"
			}
		}
		checks = append(checks, gc)
	}
	return checks
}
