package reports

import "time"

// This file holds the report's input model: plain structs that the caller
// fills from the strangler state store and shadow evidence. They are kept
// free of strangler and shadow types on purpose, so a report can be built
// from a store, from a JSON export, or by hand in a test, and so the report
// never changes when the store's schema does.

// Route is one strangler route as the state store knows it.
type Route struct {
	// Route is the route name exactly as in strangler.yaml: "METHOD /path/template".
	Route string `json:"route"`
	// Service is the owning service's name, as in the inventory.
	Service string `json:"service"`
	// Mode is the route's current mode: legacy | shadow | canary | cutover | retired.
	Mode string `json:"mode"`
	// Weight is the canary weight in percent (0-100); meaningful in canary mode only.
	Weight int `json:"weight,omitempty"`
	// Gate holds the route's configured gate criteria. Nil means the gate in
	// Options.DefaultGate applies.
	Gate *Gate `json:"gate,omitempty"`
	// Timeline is the audit log of mode transitions, in any order; Build sorts it by time.
	Timeline []Transition `json:"timeline,omitempty"`
	// Evidence summarises the shadow samples collected for the route. Nil
	// means no shadow data yet; the report says so and invents nothing.
	Evidence *Evidence `json:"evidence,omitempty"`
	// Checks, when set, are the gate's own verdict on the evidence, as
	// `migrate gate` reports it (FromStore fills them); Build then uses them
	// as they are. Without them Build measures Evidence against Gate.
	Checks []GateCheck `json:"checks,omitempty"`
}

// Gate is the evidence a route must show before it is promoted. A zero
// field is not checked.
type Gate struct {
	// MinSamples is the least number of compared samples.
	MinSamples int64 `json:"minSamples,omitempty"`
	// MinMatch is the least match ratio, 0-1 (99.9% is 0.999).
	MinMatch float64 `json:"minMatch,omitempty"`
	// MaxP99Ratio is the largest allowed candidate p99 / legacy p99 latency.
	MaxP99Ratio float64 `json:"maxP99Ratio,omitempty"`
	// MaxErrorRate is the largest allowed candidate error ratio, 0-1 (0.1% is 0.001).
	MaxErrorRate float64 `json:"maxErrorRate,omitempty"`
}

// Transition is one audited change of a route's mode.
type Transition struct {
	// At is when the transition happened.
	At time.Time `json:"at"`
	// Actor is who or what made it: a user name, "gate" for automatic
	// promotion, "canary-guard" for an automatic rollback.
	Actor string `json:"actor"`
	// From and To are modes: legacy | shadow | canary | cutover | retired.
	From string `json:"from"`
	To   string `json:"to"`
	// Weight is the canary weight set by the transition, if any.
	Weight int `json:"weight,omitempty"`
	// Reason is the operator's or the gate's explanation.
	Reason string `json:"reason,omitempty"`
	// Forced is true when a gate was overridden (cutover --force).
	Forced bool `json:"forced,omitempty"`
	// Verdict is the gate's verdict when the transition was made: pass,
	// fail or inconclusive (a forced one is never pass). Empty when no
	// gate was consulted (shadow, rollback, or no gate configured).
	Verdict string `json:"verdict,omitempty"`
	// Checks are the gate numbers as they stood when the transition was made
	// (the evidence snapshot in the audit log). Empty when none were recorded.
	Checks []GateCheck `json:"checks,omitempty"`
}

// GateCheck is one gate criterion measured against its threshold.
type GateCheck struct {
	// Name is the criterion: samples | match | p99Ratio | errorRate, or
	// another criterion of the gate (e.g. "recent differences"), which is
	// then described by Detail alone.
	Name string `json:"name"`
	// Actual is the measured value (a count for samples, a ratio otherwise).
	Actual float64 `json:"actual"`
	// Threshold is the configured limit.
	Threshold float64 `json:"threshold"`
	// Passed tells whether Actual cleared Threshold.
	Passed bool `json:"passed"`
	// Unknown is true when the evidence lacks the data to measure the criterion.
	Unknown bool `json:"unknown,omitempty"`
	// Detail says it in words ("400 of 1,000 samples (600 short)"); Build
	// fills it when empty.
	Detail string `json:"detail,omitempty"`
}

// Evidence is the summary of a route's shadow samples.
type Evidence struct {
	// Samples is the number of compared samples (legacy vs candidate).
	Samples int64 `json:"samples"`
	// Matches and Mismatches split Samples by comparison result; samples
	// whose candidate failed are counted in CandidateErrors instead.
	Matches    int64 `json:"matches"`
	Mismatches int64 `json:"mismatches"`
	// CandidateErrors counts candidate failures by kind (trap, exit,
	// deadline, memory, headers, too-large, connect, ...).
	CandidateErrors map[string]int64 `json:"candidateErrors,omitempty"`
	// SkippedWrites counts requests not mirrored because they write (writes: deny).
	SkippedWrites int64 `json:"skippedWrites,omitempty"`
	// SideEffects counts samples whose candidate wrote to other services
	// differently from legacy (shadow.DiffSideEffect).
	SideEffects int64 `json:"sideEffects,omitempty"`
	// Differences are the difference classes seen, one per (path, type)
	// signature, in any order; Build sorts them by count.
	Differences []Difference `json:"differences,omitempty"`
	// SampleRequest names the representative mismatching sample, e.g.
	// "POST /api/order" plus a sample id; shown above SampleDiff.
	SampleRequest string `json:"sampleRequest,omitempty"`
	// SampleDiff is the rendered diff (unified text) of a representative
	// mismatching sample, already redacted. It is user data and is always
	// escaped on output.
	SampleDiff string `json:"sampleDiff,omitempty"`
	// NoiseFields are the ignore rules learned from legacy-vs-legacy samples
	// (JSON pointers or header names).
	NoiseFields []string `json:"noiseFields,omitempty"`
	// Legacy and Candidate are the latency distributions of each side.
	Legacy    Latency `json:"legacy"`
	Candidate Latency `json:"candidate"`
	// MatchSeries is the match ratio over time, one point per minute (or any
	// fixed interval), in any order; Build sorts it by time.
	MatchSeries []MatchPoint `json:"matchSeries,omitempty"`
}

// Difference is one class of differences: all mismatches with the same
// JSON pointer (or header/status) and difference type.
type Difference struct {
	// Path is a JSON pointer ("/0/price"), "status", or "header:Name".
	Path string `json:"path"`
	// Type is the difference type: value | type | missing | extra | ordering | size | status | header | body.
	Type string `json:"type"`
	// Count is the number of samples showing this difference.
	Count int64 `json:"count"`
	// Text says the difference in plain words ("body differs", "array has
	// extra items at (root)"); Build fills it in.
	Text string `json:"text,omitempty"`
}

// Latency is one side's latency distribution. Zero percentiles mean unknown.
type Latency struct {
	P50 time.Duration `json:"p50,omitempty"`
	P95 time.Duration `json:"p95,omitempty"`
	P99 time.Duration `json:"p99,omitempty"`
	// Buckets is a histogram: each bucket counts samples with latency at most
	// UpperBound and above the previous bucket's bound (not cumulative).
	Buckets []Bucket `json:"buckets,omitempty"`
}

// Bucket is one histogram bucket.
type Bucket struct {
	UpperBound time.Duration `json:"upperBound"`
	Count      int64         `json:"count"`
}

// MatchPoint is the comparison tally of one time interval.
type MatchPoint struct {
	// At is the start of the interval.
	At time.Time `json:"at"`
	// Samples and Matches are the counts within the interval.
	Samples int64 `json:"samples"`
	Matches int64 `json:"matches"`
}

// WasmModule is what was measured about a service's Wasm component.
type WasmModule struct {
	// Service is the service the component replaces.
	Service string `json:"service"`
	// Component is the component's name (e.g. "order"); optional.
	Component string `json:"component,omitempty"`
	// SizeBytes is the .wasm file size in bytes; 0 means unknown.
	SizeBytes int64 `json:"sizeBytes,omitempty"`
	// MemoryBytes is the peak memory the service's Wasm routes actually used
	// (sum of the linear memory of concurrently live instances), measured by
	// the proxy; 0 means unknown.
	MemoryBytes int64 `json:"memoryBytes,omitempty"`
	// InstanceMemoryBytes is the most linear memory one instance used,
	// measured by the proxy; 0 means unknown.
	InstanceMemoryBytes int64 `json:"instanceMemoryBytes,omitempty"`
	// CPUSeconds is CPU time the Wasm routes used over Window, if measured;
	// 0 means unknown, and the estimate falls back to the candidate's
	// latency (wall time, an upper bound) over the evidence's time span.
	CPUSeconds float64 `json:"cpuSeconds,omitempty"`
	// Window is the period CPUSeconds was measured over.
	Window time.Duration `json:"window,omitempty"`
}

// LegacyMemory is the resident memory measured of one running legacy
// process (a JVM's RSS), which the footprint shows beside one Wasm
// instance's memory as measured, not declared.
type LegacyMemory struct {
	Service string `json:"service"`
	// ResidentBytes is the process's resident set size in bytes.
	ResidentBytes int64 `json:"residentBytes"`
	// Method says how it was measured, e.g. "VmRSS of the JVM, idle after
	// warm-up".
	Method string `json:"method,omitempty"`
}
