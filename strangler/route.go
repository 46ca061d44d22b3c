package strangler

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangler-fig/migrate/shadow"
)

// RouteState is a route's mode and canary weight. It is immutable: the
// controller swaps in a new one on every transition.
type RouteState struct {
	Mode   Mode `json:"mode"`
	Weight int  `json:"weight"`
}

// Route is one route's live control-plane state: its mode, which the proxy
// reads on every request without locking, and its counters. A Route
// survives config reloads as long as the config still lists it.
type Route struct {
	// Name is "METHOD /path/template", exactly as in the config.
	Name string
	// Legacy and Candidate count each side's requests, errors and latency.
	Legacy, Candidate *SideStats
	// Mirror counts copies handed (or not) to the other side.
	Mirror MirrorStats

	service atomic.Pointer[string]
	state   atomic.Pointer[RouteState]
	// step is the counters when the current state began (gate_step.go).
	step atomic.Pointer[stepBaseline]

	promCandErrors *prometheus.CounterVec // curried with the route; nil until bound
}

func newRoute(name, service string, st RouteState) *Route {
	r := &Route{Name: name, Legacy: newSideStats(), Candidate: newSideStats()}
	r.service.Store(&service)
	r.state.Store(&st)
	return r
}

// State is the route's current mode and weight.
func (r *Route) State() RouteState { return *r.state.Load() }

// Service names the service the route belongs to.
func (r *Route) Service() string { return *r.service.Load() }

// Side returns the stats of one side.
func (r *Route) Side(s Side) *SideStats {
	if s == SideCandidate {
		return r.Candidate
	}
	return r.Legacy
}

// Observe records one request on one side.
func (r *Route) Observe(side Side, d time.Duration, failed bool) { r.Side(side).Observe(d, failed) }

// CandidateErrorStatus is the kind of a candidate failure that is an
// answer with a 5xx status rather than a transport or guest error.
const CandidateErrorStatus = "status-5xx"

// CandidateFailed counts, by kind, a request the candidate answered and
// failed (migrate_candidate_errors_total); Observe has already counted it
// as an error. kind is shadow.ErrorKind of the failure, or
// CandidateErrorStatus.
func (r *Route) CandidateFailed(kind string) {
	if r.promCandErrors != nil {
		r.promCandErrors.WithLabelValues(kind).Inc()
	}
}

// RouteStatus is one route in `migrate status`: the DESIGN.md fields.
type RouteStatus struct {
	Route           string           `json:"route"`
	Service         string           `json:"service"`
	Mode            Mode             `json:"mode"`
	Weight          int              `json:"weight"`
	Samples         int64            `json:"samples"`
	Matches         int64            `json:"matches"`
	Mismatches      int64            `json:"mismatches"`
	CandidateErrors int64            `json:"candidateErrors"`
	Latency         map[Side]Latency `json:"latency"`
	Requests        map[Side]int64   `json:"requests"`
	Errors          map[Side]int64   `json:"errors"`
	Mirror          MirrorStatus     `json:"mirror"`
	// Shadow is the comparison evidence summary (noise applied), when the
	// route has been shadowed.
	Shadow *shadow.Summary `json:"shadow,omitempty"`
	// Differences are the unexplained difference signatures seen, most
	// frequent first (at most 20).
	Differences []DifferenceCount `json:"differences,omitempty"`
	// Noise lists differences learned as noise from A/A samples (at most 20).
	Noise []string `json:"noise,omitempty"`
	// Suggestions are the ignore rules that would accept the learned noise
	// into the route's shadow block, most frequent first (at most 20).
	Suggestions []shadow.Suggestion `json:"suggestions,omitempty"`
	// WritesSkipped counts writes not mirrored under `writes: deny`.
	WritesSkipped uint64 `json:"writesSkipped,omitempty"`
	// Stats are the raw counters behind Latency, Requests and Errors.
	Stats map[Side]SideSnapshot `json:"-"`
}

// MirrorStatus is the mirror counters of a route.
type MirrorStatus struct {
	Submitted int64 `json:"submitted"`
	Skipped   int64 `json:"skipped"`
	Dropped   int64 `json:"dropped"`
	TooLarge  int64 `json:"tooLarge"`
}

func (m MirrorStatus) add(o MirrorStatus) MirrorStatus {
	return MirrorStatus{Submitted: m.Submitted + o.Submitted, Skipped: m.Skipped + o.Skipped,
		Dropped: m.Dropped + o.Dropped, TooLarge: m.TooLarge + o.TooLarge}
}

// status snapshots the route for the admin API, gates and reports; the
// comparison counts come from the shadow engine's evidence, if any.
func (r *Route) status(engine ShadowEngine, peer *peerTotals) RouteStatus {
	st := r.State()
	leg, cand := r.Legacy.Snapshot(), r.Candidate.Snapshot()
	mirror := MirrorStatus{Submitted: r.Mirror.Submitted.Load(), Skipped: r.Mirror.Skipped.Load(),
		Dropped: r.Mirror.Dropped.Load(), TooLarge: r.Mirror.TooLarge.Load()}
	if peer != nil {
		leg, cand = leg.add(peer.Legacy), cand.add(peer.Candidate)
		mirror = mirror.add(peer.Mirror)
	}
	var sum *shadow.Summary
	if engine != nil {
		if s, ok := engine.Summary(r.Name); ok {
			sum = &s
		}
	}
	rs := RouteStatus{
		Route: r.Name, Service: r.Service(), Mode: st.Mode, Weight: st.Weight, Shadow: sum,
		Latency:  map[Side]Latency{SideLegacy: leg.Latency(), SideCandidate: cand.Latency()},
		Requests: map[Side]int64{SideLegacy: leg.Requests, SideCandidate: cand.Requests},
		Errors:   map[Side]int64{SideLegacy: leg.Errors, SideCandidate: cand.Errors},
		Mirror:   mirror,
		Stats:    map[Side]SideSnapshot{SideLegacy: leg, SideCandidate: cand},
	}
	if sum != nil && cand.Requests == 0 {
		// Shadowed, not yet serving: the candidate's latency is that of
		// the mirrored copies.
		rs.Latency[SideCandidate] = Latency{P50: shadow.Millis(sum.Candidate.P50), P95: shadow.Millis(sum.Candidate.P95), P99: shadow.Millis(sum.Candidate.P99)}
	}
	if sum != nil {
		rs.WritesSkipped = sum.SkippedWrites
		rs.Differences, rs.Noise, rs.Suggestions = evidenceDetail(engine, r.Name)
		rs.Samples, rs.Matches = int64(sum.Samples), int64(sum.Matches+sum.Explained)
		rs.Mismatches, rs.CandidateErrors = int64(sum.Mismatches-sum.Explained), int64(sum.CandidateErrors)
	}
	return rs
}

// DifferenceCount is one unexplained difference signature and how many
// mismatching samples showed it.
type DifferenceCount struct {
	Signature string `json:"signature"`
	// Text says the signature in plain words ("value differs at /id"),
	// for people reading `migrate status ROUTE -o yaml` or the admin API.
	Text  string `json:"text"`
	Count uint64 `json:"count"`
}

// maxDetail bounds the differences and noise listed per route in status.
const maxDetail = 20

func evidenceDetail(engine ShadowEngine, route string) ([]DifferenceCount, []string, []shadow.Suggestion) {
	var diffs []DifferenceCount
	if ev := engine.Evidence(route); ev != nil {
		for sig, n := range ev.Signatures {
			diffs = append(diffs, DifferenceCount{Signature: sig, Text: shadow.DescribeSignature(sig), Count: n})
		}
		sort.Slice(diffs, func(i, j int) bool {
			if diffs[i].Count != diffs[j].Count {
				return diffs[i].Count > diffs[j].Count
			}
			return diffs[i].Signature < diffs[j].Signature
		})
		if len(diffs) > maxDetail {
			diffs = diffs[:maxDetail]
		}
	}
	var noise []string
	var suggestions []shadow.Suggestion
	if n := engine.Noise(route); n != nil {
		suggestions = n.Suggestions()
		if len(suggestions) > maxDetail {
			suggestions = suggestions[:maxDetail]
		}
		for sig := range n.Fields {
			noise = append(noise, sig)
		}
		for line := range n.Lines {
			noise = append(noise, line)
		}
		sort.Strings(noise)
		if len(noise) > maxDetail {
			noise = noise[:maxDetail]
		}
	}
	return diffs, noise, suggestions
}
