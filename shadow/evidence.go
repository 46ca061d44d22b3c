package shadow

import (
	"encoding/json"
	"math"
	"sort"
	"strings"
	"time"
)

// Outcomes of requests that were not compared; Evidence counts them so a
// report never hides unverified traffic.
const (
	OutcomeSkippedWrite = "skipped-write" // a write not mirrored under `writes: deny`
	OutcomeDropped      = "dropped"       // the route's queue was full
	OutcomeRateLimited  = "rate-limited"  // over the route's rateLimit
	OutcomeBreakerOpen  = "breaker-open"  // the candidate's circuit breaker was open
)

// What else Submit can answer: the copy will be compared, or sampling left
// it out (which the evidence does not count).
const (
	OutcomeQueued    = "queued"
	OutcomeUnsampled = "unsampled"
)

// Evidence sizes.
const (
	// DefaultWindow is how many recent results Evidence remembers for
	// "no unexplained difference class in the last K samples".
	DefaultWindow = 1000
	maxClasses    = 256
	maxSignatures = 1024
	maxMinutes    = 24 * 60
	maxSeconds    = 120
	overflowKey   = "(other)"
)

// Evidence aggregates one route's samples incrementally: every Add is O(1)
// in the number of samples seen (no rescans), so gates evaluate a route with
// millions of samples in microseconds. It is JSON-serialisable so the store
// can persist and restore it. Evidence is not safe for concurrent use; Mirror
// guards its own copies.
type Evidence struct {
	Route   string `json:"route"`
	Service string `json:"service,omitempty"`

	// Samples counts compared exchanges: Matches + Mismatches + candidate
	// errors.
	Samples    uint64 `json:"samples"`
	Matches    uint64 `json:"matches"`
	Mismatches uint64 `json:"mismatches"`
	// NoiseOnly counts matches that had only explained differences.
	NoiseOnly uint64 `json:"noiseOnly,omitempty"`
	// CandidateErrors counts candidate failures by kind.
	CandidateErrors map[string]uint64 `json:"candidateErrors,omitempty"`
	// LegacyErrors counts exchanges whose legacy side could not be compared.
	LegacyErrors uint64 `json:"legacyErrors,omitempty"`

	// Requests not compared, by reason.
	SkippedWrites uint64 `json:"skippedWrites"`
	Drops         uint64 `json:"drops"`
	RateLimited   uint64 `json:"rateLimited,omitempty"`
	BreakerOpen   uint64 `json:"breakerOpen,omitempty"`
	// Baselines counts A/A (legacy-vs-legacy) samples used for noise learning.
	Baselines uint64 `json:"baselines,omitempty"`
	// CallsCompared counts samples whose outbound calls were watched on
	// both sides; SideEffects those of them with an unexplained
	// side-effect difference (a write one side made and the other did not).
	CallsCompared uint64 `json:"callsCompared,omitempty"`
	SideEffects   uint64 `json:"sideEffects,omitempty"`
	// CallsWrote counts the samples of CallsCompared in which either side
	// made an outbound write: where the gate's side-effect criterion has
	// something to vouch for.
	CallsWrote uint64 `json:"callsWrote,omitempty"`

	// Signatures counts mismatching samples per unexplained difference
	// signature ("/0/price value"); Noise counts explained ones.
	Signatures map[string]uint64 `json:"signatures,omitempty"`
	Noise      map[string]uint64 `json:"noise,omitempty"`
	// Classes are the distinct sets of signatures mismatching samples had.
	Classes []*Class `json:"classes,omitempty"`

	// Legacy and Candidate are latency histograms of the compared exchanges.
	Legacy    Histogram `json:"legacyLatency"`
	Candidate Histogram `json:"candidateLatency"`

	// Recent is the outcome of the last DefaultWindow samples.
	Recent Window `json:"recent"`
	// Timeline is the match ratio per minute, the last 24 hours of it.
	Timeline []Minute `json:"timeline,omitempty"`
	// Seconds is the match ratio per second, the last two minutes of it:
	// enough points to chart a route's first minutes of evidence, when
	// Timeline has one or two.
	Seconds []Minute `json:"seconds,omitempty"`

	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`

	classIndex map[string]int
}

// Class is one kind of mismatch: a distinct set of unexplained signatures.
type Class struct {
	ID         int       `json:"id"`
	Signatures []string  `json:"signatures"`
	Count      uint64    `json:"count"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
}

// Minute is one interval of a timeline: a minute of Timeline, a second of Seconds.
type Minute struct {
	Start   time.Time `json:"start"`
	Samples uint64    `json:"samples"`
	Matches uint64    `json:"matches"`
	Errors  uint64    `json:"errors,omitempty"`
}

// NewEvidence returns empty evidence for a route.
func NewEvidence(route, service string) *Evidence {
	return &Evidence{Route: route, Service: service, Recent: NewWindow(DefaultWindow)}
}

// Add folds one sample into the evidence.
func (e *Evidence) Add(s Sample) {
	if e.Route == "" {
		e.Route, e.Service = s.Route, s.Service
	}
	if s.Baseline {
		e.Baselines++
		return
	}
	switch s.Result.Outcome {
	case OutcomeSkippedWrite:
		e.SkippedWrites++
		return
	case OutcomeDropped:
		e.Drops++
		return
	case OutcomeRateLimited:
		e.RateLimited++
		return
	case OutcomeBreakerOpen:
		e.BreakerOpen++
		return
	case OutcomeLegacyError:
		e.LegacyErrors++
		return
	}
	at := s.At
	if e.First.IsZero() || at.Before(e.First) {
		e.First = at
	}
	if at.After(e.Last) {
		e.Last = at
	}
	e.Samples++
	if s.Legacy.CallsRecorded && s.Candidate.CallsRecorded && s.Result.Outcome != OutcomeCandidateError {
		e.CallsCompared++
		if s.Result.HasSideEffect() {
			e.SideEffects++
		}
		if hasWrite(s.Legacy.Calls) || hasWrite(s.Candidate.Calls) {
			e.CallsWrote++
		}
	}
	code := int32(0)
	errored := false
	switch s.Result.Outcome {
	case OutcomeMatch:
		e.Matches++
		for i := range s.Result.Differences {
			if s.Result.Differences[i].Noise != "" {
				e.NoiseOnly++
				break
			}
		}
	case OutcomeCandidateError:
		if e.CandidateErrors == nil {
			e.CandidateErrors = map[string]uint64{}
		}
		kind := s.Result.Error
		if kind == "" {
			kind = s.Candidate.Error
		}
		if kind == "" {
			kind = ErrOther
		}
		e.CandidateErrors[kind]++
		code = -1
		errored = true
	default:
		e.Mismatches++
		sigs := s.Result.Signatures()
		if e.Signatures == nil {
			e.Signatures = map[string]uint64{}
		}
		for _, sig := range sigs {
			bumpCapped(e.Signatures, sig)
		}
		code = int32(e.class(sigs, at).ID)
	}
	for i := range s.Result.Differences {
		if d := &s.Result.Differences[i]; d.Noise != "" {
			if e.Noise == nil {
				e.Noise = map[string]uint64{}
			}
			bumpCapped(e.Noise, d.Signature)
		}
	}
	if !errored {
		e.Legacy.Observe(s.Legacy.Latency)
		e.Candidate.Observe(s.Candidate.Latency)
	}
	if e.Recent.Size == 0 {
		e.Recent = NewWindow(DefaultWindow)
	}
	e.Recent.Push(code)
	e.tick(at, s.Result.Outcome == OutcomeMatch, errored)
}

func bumpCapped(m map[string]uint64, k string) {
	if _, ok := m[k]; !ok && len(m) >= maxSignatures {
		k = overflowKey
	}
	m[k]++
}

// class finds or creates the class for a signature set.
func (e *Evidence) class(sigs []string, at time.Time) *Class {
	if e.classIndex == nil {
		e.classIndex = make(map[string]int, len(e.Classes))
		for i, c := range e.Classes {
			e.classIndex[strings.Join(c.Signatures, "\n")] = i
		}
	}
	key := strings.Join(sigs, "\n")
	i, ok := e.classIndex[key]
	if !ok {
		if len(e.Classes) >= maxClasses {
			key, sigs = overflowKey, []string{overflowKey}
			i, ok = e.classIndex[key]
		}
		if !ok {
			i = len(e.Classes)
			e.Classes = append(e.Classes, &Class{ID: i + 1, Signatures: sigs, First: at})
			e.classIndex[key] = i
		}
	}
	c := e.Classes[i]
	c.Count++
	if at.After(c.Last) {
		c.Last = at
	}
	return c
}

// tick adds the sample to its minute of the timeline and its second.
func (e *Evidence) tick(at time.Time, match, errored bool) {
	tickInto(&e.Timeline, at.Truncate(time.Minute), maxMinutes, match, errored)
	tickInto(&e.Seconds, at.Truncate(time.Second), maxSeconds, match, errored)
}

// tickInto counts a sample in the interval starting at start, keeping the
// newest limit intervals.
func tickInto(tl *[]Minute, start time.Time, limit int, match, errored bool) {
	var m *Minute
	// Samples arrive nearly in order; look back a few intervals at most.
	for i := len(*tl) - 1; i >= 0 && i >= len(*tl)-3; i-- {
		if (*tl)[i].Start.Equal(start) {
			m = &(*tl)[i]
			break
		}
	}
	if m == nil {
		if n := len(*tl); n > 0 && start.Before((*tl)[n-1].Start) {
			m = &(*tl)[n-1] // too late to have its own interval; count it in the latest
		} else {
			if len(*tl) >= limit {
				*tl = append((*tl)[:0], (*tl)[1:]...)
			}
			*tl = append(*tl, Minute{Start: start})
			m = &(*tl)[len(*tl)-1]
		}
	}
	m.Samples++
	if match {
		m.Matches++
	}
	if errored {
		m.Errors++
	}
}

// AddSkipped counts a request that was not compared (one of the
// skipped-write, dropped, rate-limited or breaker-open outcomes).
func (e *Evidence) AddSkipped(outcome string) {
	e.Add(Sample{Result: Result{Outcome: outcome}})
}

// Clone returns an independent deep copy; its cost depends on the bounded
// aggregates (classes, signatures, window, timeline), never on the number of
// samples.
func (e *Evidence) Clone() *Evidence {
	if e == nil {
		return nil
	}
	c := *e
	c.classIndex = nil
	c.CandidateErrors = cloneCounts(e.CandidateErrors)
	c.Signatures = cloneCounts(e.Signatures)
	c.Noise = cloneCounts(e.Noise)
	c.Classes = make([]*Class, len(e.Classes))
	for i, cl := range e.Classes {
		cc := *cl
		cc.Signatures = append([]string(nil), cl.Signatures...)
		c.Classes[i] = &cc
	}
	c.Recent.Codes = append([]int32(nil), e.Recent.Codes...)
	c.Timeline = append([]Minute(nil), e.Timeline...)
	c.Seconds = append([]Minute(nil), e.Seconds...)
	return &c
}

func cloneCounts(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return nil
	}
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Percentiles are latency quantiles of one side. In JSON they are
// milliseconds (numbers, to the microsecond) named p50Millis, p95Millis and
// p99Millis, as every duration the admin API reports.
type Percentiles struct {
	P50 time.Duration `json:"-"`
	P95 time.Duration `json:"-"`
	P99 time.Duration `json:"-"`
}

type percentilesJSON struct {
	P50 float64 `json:"p50Millis"`
	P95 float64 `json:"p95Millis"`
	P99 float64 `json:"p99Millis"`
	// Nanosecond integers under the bare names: how gate evidence stored
	// in the audit log before the unit was fixed spells them.
	OldP50 *int64 `json:"p50,omitempty"`
	OldP95 *int64 `json:"p95,omitempty"`
	OldP99 *int64 `json:"p99,omitempty"`
}

// MarshalJSON writes the quantiles in milliseconds.
func (p Percentiles) MarshalJSON() ([]byte, error) {
	return json.Marshal(percentilesJSON{P50: Millis(p.P50), P95: Millis(p.P95), P99: Millis(p.P99)})
}

// UnmarshalJSON reads milliseconds, or the nanoseconds of older evidence.
func (p *Percentiles) UnmarshalJSON(data []byte) error {
	var v percentilesJSON
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	fromMillis := func(ms float64, old *int64) time.Duration {
		if old != nil {
			return time.Duration(*old)
		}
		return time.Duration(math.Round(ms * 1e6))
	}
	p.P50, p.P95, p.P99 = fromMillis(v.P50, v.OldP50), fromMillis(v.P95, v.OldP95), fromMillis(v.P99, v.OldP99)
	return nil
}

// Millis is d in milliseconds, rounded to the microsecond: the one unit of
// every latency the admin API, gate evidence and canary analysis report.
func Millis(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Summary is what gates and reports read from Evidence.
type Summary struct {
	Route           string `json:"route"`
	Service         string `json:"service,omitempty"`
	Samples         uint64 `json:"samples"`
	Matches         uint64 `json:"matches"`
	Mismatches      uint64 `json:"mismatches"`
	CandidateErrors uint64 `json:"candidateErrors"`
	// Explained counts mismatching samples whose every difference is now
	// known noise (learned after they were recorded); they count as matches
	// in MatchRatio.
	Explained uint64 `json:"explained,omitempty"`
	// MatchRatio is (Matches+Explained) / (Matches+Mismatches): the share of
	// answered requests that matched. Errors are in ErrorRate instead.
	MatchRatio float64 `json:"matchRatio"`
	// ErrorRate is candidate errors / Samples.
	ErrorRate     float64 `json:"errorRate"`
	SkippedWrites uint64  `json:"skippedWrites"`
	Drops         uint64  `json:"drops"`
	// CallsCompared and SideEffects are Evidence's: samples whose outbound
	// writes were compared, and those that differed.
	CallsCompared uint64      `json:"callsCompared,omitempty"`
	SideEffects   uint64      `json:"sideEffects,omitempty"`
	CallsWrote    uint64      `json:"callsWrote,omitempty"`
	Legacy        Percentiles `json:"legacyLatency"`
	Candidate     Percentiles `json:"candidateLatency"`
	// P50Ratio, P95Ratio, P99Ratio are candidate/legacy latency ratios (0
	// when either side has no data).
	P50Ratio float64 `json:"p50Ratio"`
	P95Ratio float64 `json:"p95Ratio"`
	P99Ratio float64 `json:"p99Ratio"`
	// Recent is the number of samples in the recent window, and
	// RecentUnexplained the mismatch classes seen in it that noise does not
	// explain (each class as its signatures joined by ", ").
	Recent            int      `json:"recent"`
	RecentErrors      int      `json:"recentErrors"`
	RecentUnexplained []string `json:"recentUnexplained,omitempty"`
}

// Summary computes the gate-facing figures. noise (may be nil) re-explains
// mismatch classes whose signatures were learned as noise after the fact.
// It costs O(classes + histogram buckets + window), never O(samples).
func (e *Evidence) Summary(noise *Noise) Summary {
	s := Summary{Route: e.Route, Service: e.Service, Samples: e.Samples, Matches: e.Matches,
		Mismatches: e.Mismatches, SkippedWrites: e.SkippedWrites, Drops: e.Drops,
		CallsCompared: e.CallsCompared, SideEffects: e.SideEffects, CallsWrote: e.CallsWrote}
	for _, n := range e.CandidateErrors {
		s.CandidateErrors += n
	}
	nv := noise.view()
	explained := make([]bool, len(e.Classes)+1)
	for i, c := range e.Classes {
		ok := len(c.Signatures) > 0 && c.Signatures[0] != overflowKey
		for _, sig := range c.Signatures {
			if !nv.has(sig) {
				ok = false
				break
			}
		}
		if ok {
			explained[i+1] = true
			s.Explained += c.Count
		}
	}
	if answered := e.Matches + e.Mismatches; answered > 0 {
		s.MatchRatio = float64(e.Matches+s.Explained) / float64(answered)
	}
	if e.Samples > 0 {
		s.ErrorRate = float64(s.CandidateErrors) / float64(e.Samples)
	}
	s.Legacy = e.Legacy.Percentiles()
	s.Candidate = e.Candidate.Percentiles()
	ratio := func(c, l time.Duration) float64 {
		if c <= 0 || l <= 0 {
			return 0
		}
		return float64(c) / float64(l)
	}
	s.P50Ratio = ratio(s.Candidate.P50, s.Legacy.P50)
	s.P95Ratio = ratio(s.Candidate.P95, s.Legacy.P95)
	s.P99Ratio = ratio(s.Candidate.P99, s.Legacy.P99)

	seen := map[int32]bool{}
	e.Recent.Each(func(code int32) {
		s.Recent++
		switch {
		case code < 0:
			s.RecentErrors++
		case code > 0 && !seen[code]:
			seen[code] = true
			if int(code) < len(explained) && !explained[code] {
				s.RecentUnexplained = append(s.RecentUnexplained, strings.Join(e.Classes[code-1].Signatures, ", "))
			}
		}
	})
	sort.Strings(s.RecentUnexplained)
	return s
}

// Window remembers the outcome codes of the last Size samples: 0 a match,
// -1 a candidate error, n > 0 a mismatch of class n.
type Window struct {
	Size  int     `json:"size"`
	Next  int     `json:"next"`
	Codes []int32 `json:"codes,omitempty"`
}

// NewWindow returns an empty window of the given size.
func NewWindow(size int) Window { return Window{Size: size} }

// Push adds one outcome code, forgetting the oldest when full.
func (w *Window) Push(code int32) {
	if len(w.Codes) < w.Size {
		w.Codes = append(w.Codes, code)
		w.Next = len(w.Codes) % w.Size
		return
	}
	w.Codes[w.Next] = code
	w.Next = (w.Next + 1) % w.Size
}

// Each visits the codes from oldest to newest.
func (w *Window) Each(f func(int32)) {
	n := len(w.Codes)
	if n < w.Size {
		for _, c := range w.Codes {
			f(c)
		}
		return
	}
	for i := 0; i < n; i++ {
		f(w.Codes[(w.Next+i)%n])
	}
}

// Histogram buckets are log-scale: 8 per power of two from 1µs, so any
// quantile is within ±4.5% of the true value, up to about 2^27µs (134 s).
const (
	histPerOctave = 8
	histBuckets   = 28*histPerOctave + 2
)

// Histogram is a fixed-size log-scale latency histogram.
type Histogram struct {
	Count  uint64
	SumUS  uint64
	MaxUS  uint64
	Counts [histBuckets]uint64
}

func bucketOf(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us < 1 {
		return 0
	}
	i := int(math.Log2(us)*histPerOctave) + 1
	if i >= histBuckets {
		i = histBuckets - 1
	}
	return i
}

// Observe records one latency.
func (h *Histogram) Observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.Counts[bucketOf(d)]++
	h.Count++
	us := uint64(d / time.Microsecond)
	h.SumUS += us
	if us > h.MaxUS {
		h.MaxUS = us
	}
}

// Quantile returns the latency at quantile q (0..1): the geometric middle of
// the bucket holding it.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.Count)))
	if rank == 0 {
		rank = 1
	}
	var cum uint64
	for i, c := range h.Counts {
		cum += c
		if cum >= rank {
			if i == 0 {
				return time.Microsecond / 2
			}
			us := math.Exp2((float64(i-1) + 0.5) / histPerOctave)
			if max := float64(h.MaxUS); us > max && max > 0 {
				us = max
			}
			return time.Duration(us * float64(time.Microsecond))
		}
	}
	return time.Duration(h.MaxUS) * time.Microsecond
}

// Percentiles returns p50, p95 and p99.
func (h *Histogram) Percentiles() Percentiles {
	return Percentiles{P50: h.Quantile(0.50), P95: h.Quantile(0.95), P99: h.Quantile(0.99)}
}

type histogramJSON struct {
	Count  uint64   `json:"count"`
	SumUS  uint64   `json:"sumMicros"`
	MaxUS  uint64   `json:"maxMicros"`
	Counts []uint64 `json:"buckets,omitempty"`
}

// MarshalJSON writes the buckets without trailing zeros.
func (h Histogram) MarshalJSON() ([]byte, error) {
	n := len(h.Counts)
	for n > 0 && h.Counts[n-1] == 0 {
		n--
	}
	return json.Marshal(histogramJSON{Count: h.Count, SumUS: h.SumUS, MaxUS: h.MaxUS, Counts: h.Counts[:n]})
}

// UnmarshalJSON restores a histogram written by MarshalJSON.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	var j histogramJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*h = Histogram{Count: j.Count, SumUS: j.SumUS, MaxUS: j.MaxUS}
	copy(h.Counts[:], j.Counts)
	return nil
}

// BucketUpperBound is the largest latency that falls in histogram bucket i,
// so renderers can draw the distribution without knowing the bucket scheme.
func BucketUpperBound(i int) time.Duration {
	if i <= 0 {
		return time.Microsecond
	}
	return time.Duration(math.Exp2(float64(i)/histPerOctave) * float64(time.Microsecond))
}
