package shadow

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler-fig/migrate/internal/logs"
)

// Backend answers a request; it has the shape of http.RoundTripper so an
// http.Transport, a reverse-proxy upstream or an in-process Wasm backend all
// fit. Errors that implement Kinded report their own kind.
type Backend interface {
	RoundTrip(*http.Request) (*http.Response, error)
}

// Exchange is one client request the proxy answered, handed to the Mirror
// for comparison: answered from legacy in shadow mode, or, with Reverse,
// answered by the candidate (canary, cutover) and checked against legacy.
type Exchange struct {
	Route, Service string
	// Options is the route's shadow block; nil means defaults.
	Options *Options
	// Request is the client's request; Body is its body, already buffered.
	// Submit copies what it needs, so the proxy may return right away.
	Request *http.Request
	Body    []byte
	// Legacy is what the client got.
	Legacy Response
	// Candidate receives the copy.
	Candidate Backend
	// Baseline is legacy again, for A/A noise learning; nil disables it.
	// Safe methods are baselined; writes only under `writes: allow`, which
	// means legacy receives the write twice — pass nil for routes where
	// that is unacceptable.
	Baseline Backend
	// Reverse swaps the roles after shadow mode: Legacy then holds the
	// candidate's response (what the client got) and Candidate is the
	// legacy backend the copy goes to. The comparison still puts legacy on
	// the legacy side, so difference types and learned noise keep their
	// meaning. There is no A/A baseline, and writes go to legacy only under
	// `writes: allow`: the candidate has already applied them, so under
	// deny and marked (legacy has no dry-run) they are counted as skipped.
	Reverse bool
	// Sampled says the caller has drawn the route's sample (Sampled)
	// before serving the request, and the request is in it: Submit does
	// not draw again.
	Sampled bool
}

// MirrorConfig sizes a Mirror. Zero values take the defaults shown.
type MirrorConfig struct {
	// Workers caps concurrent candidate calls per route (default 4).
	Workers int
	// QueueSize bounds the copies waiting per route (default 64); when full,
	// copies are dropped and counted, never waited for.
	QueueSize int
	// Budget caps the candidate calls in flight across every route at once
	// (default GOMAXPROCS/2, at least 1): an in-process candidate runs on
	// the proxy's own cores, and one that loops must not take them all
	// from the client path.
	Budget int
	// MaxLag is how old a queued copy may get while it waits for a worker
	// and a slot of the budget (default 1s). An older one is dropped and
	// counted: a copy sent late would compare against a legacy answer of
	// another moment and pile work on a proxy already behind.
	MaxLag time.Duration
	// Logger receives breaker transitions and drops (default slog.Default()).
	Logger *slog.Logger
	// BreakerThreshold opens a route's breaker after that many consecutive
	// candidate errors (default 5).
	BreakerThreshold int
	// BreakerCooldown is how long an open breaker waits before letting one
	// probe through (default 30s).
	BreakerCooldown time.Duration
	// StableAfter is how many consecutive A/A samples must add no new noise
	// before baselining backs off (default 20).
	StableAfter int
	// OnSample, if set, is called with every compared sample (after
	// redaction) — a push-style hook for metrics; Stats is the pull-style one.
	OnSample func(Sample)
	// Now is the clock (default time.Now); tests fix it.
	Now func() time.Time
}

func (c *MirrorConfig) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 64
	}
	if c.Budget <= 0 {
		c.Budget = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if c.MaxLag <= 0 {
		c.MaxLag = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = 5
	}
	if c.BreakerCooldown <= 0 {
		c.BreakerCooldown = 30 * time.Second
	}
	if c.StableAfter <= 0 {
		c.StableAfter = DefaultStableAfter
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Mirror sends detached copies of requests to candidates, compares the
// answers, learns noise and keeps per-route evidence. Submit never blocks.
type Mirror struct {
	cfg     MirrorConfig
	rec     Recorder
	traffic Traffic // counted by the proxy in front (see Traffic)

	mu     sync.RWMutex // guards routes and closed; Submit holds it shared
	routes map[string]*route
	closed bool
	wg     sync.WaitGroup
	slots  chan struct{} // the budget: one token per candidate call in flight
}

// route is one route's queue, workers, limits and aggregates.
type route struct {
	name, service string
	queue         chan job

	mu      sync.Mutex // guards ev, breaker, bucket
	ev      *Evidence
	breaker breaker
	bucket  tokenBucket
	noise   *Noise
}

type job struct {
	ex  Exchange
	req *http.Request
	at  time.Time
}

// NewMirror starts a mirror; rec (may be nil) receives redacted samples.
func NewMirror(cfg MirrorConfig, rec Recorder) *Mirror {
	cfg.defaults()
	return &Mirror{cfg: cfg, rec: rec, routes: map[string]*route{}, slots: make(chan struct{}, cfg.Budget)}
}

// Traffic is the count of client requests the proxy in front of this
// mirror keeps (Begin and End around each request), so that copies go out
// in the gaps between them. Nobody counting means no waiting.
func (m *Mirror) Traffic() *Traffic { return &m.traffic }

// routeLocked returns the state of a route, creating it (and its workers) on first
// use. The caller holds m.mu shared; creation upgrades briefly.
func (m *Mirror) routeLocked(name, service string) *route {
	if r, ok := m.routes[name]; ok {
		return r
	}
	m.mu.RUnlock()
	m.mu.Lock()
	r, ok := m.routes[name]
	if !ok && !m.closed {
		r = m.newRoute(name, service, nil, nil)
	}
	m.mu.Unlock()
	m.mu.RLock()
	return r
}

// newRoute creates a route and starts its workers; m.mu is held exclusively.
func (m *Mirror) newRoute(name, service string, ev *Evidence, noise *Noise) *route {
	if ev == nil {
		ev = NewEvidence(name, service)
	}
	if noise == nil {
		noise = NewNoise()
	}
	r := &route{name: name, service: service, queue: make(chan job, m.cfg.QueueSize), ev: ev, noise: noise}
	m.routes[name] = r
	for i := 0; i < m.cfg.Workers; i++ {
		m.wg.Add(1)
		go m.worker(r)
	}
	return r
}

// Restore seeds a route with persisted evidence and noise (for a restart),
// before traffic arrives. Either may be nil.
func (m *Mirror) Restore(route, service string, ev *Evidence, noise *Noise) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if r, ok := m.routes[route]; ok {
		r.mu.Lock()
		if ev != nil {
			r.ev = ev
		}
		if noise != nil {
			r.noise = noise
		}
		r.mu.Unlock()
		return
	}
	m.newRoute(route, service, ev, noise)
}

// isWrite reports whether a method may change state on the server.
func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, "":
		return false
	}
	return true
}

// Submit queues a copy of the exchange for the candidate and says what
// became of it. It never blocks. OutcomeQueued: a worker will send and
// compare it. OutcomeDropped: the route's queue was full or the mirror is
// closed. Otherwise the route's policy skipped it: OutcomeSkippedWrite
// (a write under `writes: deny`; in reverse, any policy but allow),
// OutcomeUnsampled, OutcomeRateLimited or OutcomeBreakerOpen. Every
// outcome but unsampled is counted in the route's evidence.
func (m *Mirror) Submit(ex Exchange) string {
	if ex.Request == nil || ex.Candidate == nil {
		return OutcomeDropped
	}
	opts := ex.Options
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.closed {
		return OutcomeDropped
	}
	r := m.routeLocked(ex.Route, ex.Service)
	if r == nil || m.closed { // routeLocked may have let Close run
		return OutcomeDropped
	}
	if isWrite(ex.Request.Method) && (opts.writes() == WritesDeny || ex.Reverse && opts.writes() != WritesAllow) {
		r.count(OutcomeSkippedWrite)
		return OutcomeSkippedWrite
	}
	if !ex.Sampled && !Sampled(ex.Route, opts, ex.Request) {
		return OutcomeUnsampled
	}
	// Read the clock only for copies that go on: skipped and unsampled
	// requests never need it.
	now := m.cfg.Now()
	r.mu.Lock()
	if opts != nil && opts.RateLimit > 0 && !r.bucket.take(now, opts.RateLimit) {
		r.ev.AddSkipped(OutcomeRateLimited)
		r.mu.Unlock()
		return OutcomeRateLimited
	}
	if !r.breaker.allow(now, m.cfg.BreakerCooldown) {
		r.ev.AddSkipped(OutcomeBreakerOpen)
		r.mu.Unlock()
		return OutcomeBreakerOpen
	}
	r.mu.Unlock()

	drop := func() string {
		r.mu.Lock()
		r.breaker.cancelProbe()
		r.ev.AddSkipped(OutcomeDropped)
		r.mu.Unlock()
		m.cfg.Logger.Debug("shadow queue full, copy dropped", "route", ex.Route)
		return OutcomeDropped
	}
	// Under overload most copies are dropped: do it before paying for the
	// request clone. (The select below still decides; this is a shortcut.)
	if len(r.queue) == cap(r.queue) {
		return drop()
	}
	// Copy the request now: the proxy's handler may return (and its request
	// be reused or cancelled) before a worker picks the job up.
	req := ex.Request.Clone(context.Background())
	req.RequestURI = ""
	req.Body = nil
	select {
	case r.queue <- job{ex: ex, req: req, at: now}:
		return OutcomeQueued
	default:
		return drop()
	}
}

// Shed reports whether a copy of a read on route would be dropped now, its
// queue being full, and if so counts it as dropped, as Submit would have.
// The proxy asks before serving the read, so that under overload, when
// most copies are shed, it need not serve them in a way that can be copied
// (a buffered body, a teed answer, a cloned request) only to drop them.
// Shed says false whenever Submit could decide otherwise: a route with no
// copies yet, a sample under 100%, a rate limit, a breaker not closed.
func (m *Mirror) Shed(routeName string, opts *Options) bool {
	if opts.sample() < 100 || opts != nil && opts.RateLimit > 0 {
		return false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.routes[routeName]
	if m.closed || r == nil || len(r.queue) < cap(r.queue) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.breaker.state != breakerClosed {
		return false
	}
	r.ev.AddSkipped(OutcomeDropped)
	return true
}

func (r *route) count(outcome string) {
	r.mu.Lock()
	r.ev.AddSkipped(outcome)
	r.mu.Unlock()
}

// Sampled draws whether req is in the share of a route's requests opts
// mirrors, as Submit does. With stickyBy, the decision is a hash of route
// and key, so one user is always in or out. A proxy that draws before
// serving a read serves one outside the share without what a copy needs,
// and submits one in it with Exchange.Sampled set.
func Sampled(routeName string, opts *Options, req *http.Request) bool {
	pct := opts.sample()
	if pct >= 100 {
		return true
	}
	if pct <= 0 {
		return false
	}
	if opts.StickyBy != "" {
		if kind, name, err := parseSticky(opts.StickyBy); err == nil {
			var key string
			if kind == "header" {
				key = req.Header.Get(name)
			} else if c, err := req.Cookie(name); err == nil {
				key = c.Value
			}
			if key != "" {
				// FNV-1a of route, NUL, key: the same hash the comparison
				// uses, without allocating on the request path.
				h := hashString(hashString(hashString(fnvOffset, routeName), "\x00"), key)
				return float64(h%10000) < pct*100
			}
		}
	}
	return rand.Float64()*100 < pct
}

func (m *Mirror) worker(r *route) {
	defer m.wg.Done()
	for j := range r.queue {
		m.process(r, j)
	}
}

// acquire takes a slot of the budget for job j, waiting no later than the
// job's MaxLag. It says false, having counted the copy as dropped, when no
// slot came in time; with true the caller must call m.releaseSlot.
func (m *Mirror) acquire(r *route, j job) bool {
	select {
	case m.slots <- struct{}{}:
		return true
	default:
	}
	wait := m.cfg.MaxLag - m.cfg.Now().Sub(j.at)
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case m.slots <- struct{}{}:
			return true
		case <-t.C:
		}
	}
	r.mu.Lock()
	r.ev.AddSkipped(OutcomeDropped)
	r.mu.Unlock()
	m.cfg.Logger.Debug("shadow copy dropped: no slot of the candidate budget in time", "route", r.name)
	return false
}

func (m *Mirror) releaseSlot() { <-m.slots }

// stale drops a queued job that can no longer run as the proxy meant it:
// its route's breaker opened while it waited (a failing candidate gets no
// more work than the breaker's probes), or it is older than MaxLag.
func (m *Mirror) stale(r *route, j job) bool {
	outcome := ""
	r.mu.Lock()
	switch {
	case r.breaker.state == breakerOpen:
		outcome = OutcomeBreakerOpen
	case m.cfg.Now().Sub(j.at) > m.cfg.MaxLag:
		outcome = OutcomeDropped
	}
	if outcome != "" {
		r.ev.AddSkipped(outcome)
	}
	r.mu.Unlock()
	return outcome != ""
}

// process runs one job: optional A/A baseline, the call to the other side,
// the comparison, and recording. Each call to a backend holds a slot of
// the budget.
func (m *Mirror) process(r *route, j job) {
	if m.stale(r, j) || !m.acquire(r, j) {
		return
	}
	defer m.releaseSlot()
	opts := j.ex.Options
	method := j.req.Method
	if j.ex.Baseline != nil && !j.ex.Reverse && (!isWrite(method) || opts != nil && opts.BaselineWrites) &&
		r.noise.WantBaseline(m.cfg.Now(), m.cfg.StableAfter) {
		m.traffic.waitGap(maxYield)
		again := m.call(r.name, j.ex.Baseline, j.req, j.ex.Body, opts, "baseline", false, nil)
		if again.Error == "" {
			res := Compare(j.ex.Legacy, again, opts, nil)
			r.noise.Learn(res, m.cfg.Now())
			s := Sample{At: j.at, Route: r.name, Service: r.service, Request: recorded(j.req, j.ex.Body),
				Legacy: j.ex.Legacy, Candidate: again, Result: res, Baseline: true}
			r.mu.Lock()
			r.ev.Add(s)
			r.mu.Unlock()
			m.record(s, opts)
		}
	}

	m.traffic.waitGap(maxYield)
	var calls *Calls
	if !j.ex.Reverse {
		// The copy's writes to the rest of the fleet must not happen a
		// second time: an in-process candidate records them and its stubs
		// answer (proxy/wasm).
		calls = &Calls{}
	}
	resp := m.call(r.name, j.ex.Candidate, j.req, j.ex.Body, opts, "1", !j.ex.Reverse && isWrite(method) && opts.writes() == WritesMarked, calls)
	legacy, candidate := j.ex.Legacy, resp
	if j.ex.Reverse {
		legacy, candidate = resp, j.ex.Legacy
	}
	res := Compare(legacy, candidate, opts, r.noise)
	s := Sample{At: j.at, Route: r.name, Service: r.service, Request: recorded(j.req, j.ex.Body),
		Legacy: legacy, Candidate: candidate, Result: res}

	r.mu.Lock()
	before := r.breaker.state
	r.breaker.result(resp.Error == "", m.cfg.Now(), m.cfg.BreakerThreshold)
	after := r.breaker.state
	r.ev.Add(s)
	r.mu.Unlock()
	if before != after {
		side := "candidate"
		if j.ex.Reverse {
			side = "legacy"
		}
		m.cfg.Logger.Warn("shadow copy circuit breaker "+after.String(), "route", r.name, "calls", side, "lastError", resp.Error)
	}
	if m.cfg.OnSample != nil {
		m.cfg.OnSample(Redact(s, opts))
	}
	m.record(s, opts)
}

// record hands a redacted sample to the recorder, unless the recorder says
// it would not keep it.
func (m *Mirror) record(s Sample, opts *Options) {
	if m.rec == nil {
		return
	}
	if f, ok := m.rec.(SampleFilter); ok && !f.Wants(s) {
		return
	}
	m.rec.Record(Redact(s, opts))
}

func recorded(req *http.Request, body []byte) RecordedRequest {
	return RecordedRequest{Method: req.Method, URL: req.URL.String(), Header: req.Header, Body: body}
}

// call sends one copy, counted in the mirror's client traffic so that an
// in-process candidate gives way to clients (Yielder).
func (m *Mirror) call(route string, b Backend, base *http.Request, body []byte, opts *Options, marker string, markWrite bool, calls *Calls) Response {
	return Send(context.WithValue(context.Background(), trafficKey{}, &m.traffic), route, b, base, body, opts, marker, markWrite, calls)
}

// Send sends one copy of base with body to b, as the mirror does and as a
// replay does again: its own deadline (opts.Timeout) under ctx, the shadow
// marker header, the body cap, a panicking backend caught. It never
// returns a Go error: failures become Response.Error.
//
// With calls, the copy runs as a shadow copy (WithCalls): the calls an
// in-process candidate makes are recorded on the Response.
func Send(ctx context.Context, route string, b Backend, base *http.Request, body []byte, opts *Options, marker string, markWrite bool, calls *Calls) (out Response) {
	// The copy names its route, as the client's request does: an in-process
	// candidate tells its guest (X_MATCHED_ROUTE) and logs it.
	base0 := logs.WithRoute(ctx, route)
	var yielded atomic.Int64
	base0 = context.WithValue(base0, yieldedKey{}, &yielded)
	if calls != nil {
		base0 = WithCalls(base0, calls)
		defer func() {
			if calls.Watched() {
				out.Calls, out.CallsRecorded = calls.List(), true
			}
		}()
	}
	ctx, cancel := context.WithTimeout(base0, opts.timeout())
	defer cancel()
	req := base.Clone(ctx)
	req.Header.Set(HeaderShadow, marker)
	if markWrite {
		req.Header.Set(HeaderShadowWrite, "1")
	}
	req.ContentLength = int64(len(body))
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	} else {
		req.Body = http.NoBody
	}
	start := time.Now()
	latency := func() time.Duration { return time.Since(start) - time.Duration(yielded.Load()) }
	resp, err := safeRoundTrip(b, req)
	if err != nil {
		return Response{Error: ErrorKind(err), Latency: latency()}
	}
	defer resp.Body.Close()
	data, err := readCapped(resp.Body, opts.maxBody())
	out = Response{Status: resp.StatusCode, Header: resp.Header, Body: data, Latency: latency()}
	if err != nil {
		out.Error = ErrorKind(err)
		if ctx.Err() != nil && out.Error != ErrTooLarge {
			out.Error = ErrTimeout
		}
	}
	return out
}

// panicError reports a backend that panicked instead of returning an error.
type panicError struct{ v any }

func (p panicError) Error() string     { return "candidate backend panicked" }
func (p panicError) ErrorKind() string { return "panic" }

// safeRoundTrip keeps a misbehaving in-process backend from taking the
// proxy down with it.
func safeRoundTrip(b Backend, req *http.Request) (resp *http.Response, err error) {
	defer func() {
		if v := recover(); v != nil {
			resp, err = nil, panicError{v}
		}
	}()
	resp, err = b.RoundTrip(req)
	if err == nil && resp == nil {
		err = panicError{"nil response"}
	}
	return resp, err
}

// Close stops accepting copies and waits (until ctx ends) for queued ones.
func (m *Mirror) Close(ctx context.Context) error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		for _, r := range m.routes {
			close(r.queue)
		}
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Routes lists the routes seen so far, sorted.
func (m *Mirror) Routes() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.routes))
	for k := range m.routes {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m *Mirror) get(name string) *route {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.routes[name]
}

// Evidence returns a copy of a route's evidence (nil for an unknown route):
// the authoritative aggregate, including drops and skipped writes, that the
// store should persist.
func (m *Mirror) Evidence(name string) *Evidence {
	r := m.get(name)
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ev.Clone()
}

// Noise returns a copy of a route's learned noise (nil for an unknown route).
func (m *Mirror) Noise(name string) *Noise {
	r := m.get(name)
	if r == nil {
		return nil
	}
	return r.noise.Clone()
}

// Summary returns a route's gate-facing summary, noise applied.
func (m *Mirror) Summary(name string) (Summary, bool) {
	r := m.get(name)
	if r == nil {
		return Summary{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ev.Summary(r.noise), true
}

// RouteStats are a route's counters for metrics (e.g. Prometheus gauges and
// counters built at scrape time from Mirror.Stats).
type RouteStats struct {
	Route      string  `json:"route"`
	Service    string  `json:"service,omitempty"`
	Samples    uint64  `json:"samples"`
	Matches    uint64  `json:"matches"`
	Mismatches uint64  `json:"mismatches"`
	MatchRatio float64 `json:"matchRatio"`
	// MismatchesByType counts unexplained differences by type (value,
	// missing, status, ...) over mismatching samples.
	MismatchesByType map[string]uint64 `json:"mismatchesByType,omitempty"`
	CandidateErrors  map[string]uint64 `json:"candidateErrors,omitempty"`
	SkippedWrites    uint64            `json:"skippedWrites"`
	Drops            uint64            `json:"drops"`
	RateLimited      uint64            `json:"rateLimited"`
	BreakerOpen      uint64            `json:"breakerOpen"`
	Baselines        uint64            `json:"baselines"`
	QueueDepth       int               `json:"queueDepth"`
	Breaker          string            `json:"breaker"`
	NoiseStable      bool              `json:"noiseStable"`
}

// Stats snapshots every route's counters. It is cheap (O(routes ×
// signatures)) and meant to be called at each metrics scrape.
func (m *Mirror) Stats() []RouteStats {
	m.mu.RLock()
	routes := make([]*route, 0, len(m.routes))
	for _, r := range m.routes {
		routes = append(routes, r)
	}
	m.mu.RUnlock()
	sort.Slice(routes, func(i, j int) bool { return routes[i].name < routes[j].name })
	out := make([]RouteStats, 0, len(routes))
	for _, r := range routes {
		r.mu.Lock()
		e := r.ev
		s := e.Summary(r.noise)
		st := RouteStats{Route: r.name, Service: r.service, Samples: e.Samples, Matches: e.Matches,
			Mismatches: e.Mismatches, MatchRatio: s.MatchRatio, SkippedWrites: e.SkippedWrites, Drops: e.Drops,
			RateLimited: e.RateLimited, BreakerOpen: e.BreakerOpen, Baselines: e.Baselines,
			QueueDepth: len(r.queue), Breaker: r.breaker.state.String(),
			CandidateErrors: make(map[string]uint64, len(e.CandidateErrors)), MismatchesByType: map[string]uint64{}}
		for k, v := range e.CandidateErrors {
			st.CandidateErrors[k] = v
		}
		for sig, n := range e.Signatures {
			_, typ := SplitSignature(sig)
			if typ == "" {
				typ = strings.Trim(sig, "()")
			}
			st.MismatchesByType[typ] += n
		}
		r.mu.Unlock()
		st.NoiseStable = r.noise.Stable(m.cfg.StableAfter)
		out = append(out, st)
	}
	return out
}

// breakerState is a circuit breaker's state.
type breakerState uint8

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

func (s breakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[s]
}

// breaker stops sending copies to a candidate that keeps failing, so a dead
// candidate costs nothing, and lets one probe through after the cool-down.
type breaker struct {
	state    breakerState
	fails    int
	openedAt time.Time
	probing  bool
}

func (b *breaker) allow(now time.Time, cooldown time.Duration) bool {
	switch b.state {
	case breakerOpen:
		if now.Sub(b.openedAt) < cooldown {
			return false
		}
		b.state, b.probing = breakerHalfOpen, true
		return true
	case breakerHalfOpen:
		if b.probing {
			return false
		}
		b.probing = true
		return true
	}
	return true
}

func (b *breaker) cancelProbe() {
	if b.state == breakerHalfOpen {
		b.probing = false
	}
}

func (b *breaker) result(ok bool, now time.Time, threshold int) {
	switch {
	case ok:
		b.state, b.fails, b.probing = breakerClosed, 0, false
	case b.state == breakerHalfOpen:
		b.state, b.openedAt, b.probing = breakerOpen, now, false
	default:
		b.fails++
		if b.fails >= threshold && b.state == breakerClosed {
			b.state, b.openedAt = breakerOpen, now
		}
	}
}

// tokenBucket caps copies per second with a burst of one second's worth.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (t *tokenBucket) take(now time.Time, rate float64) bool {
	burst := rate
	if burst < 1 {
		burst = 1
	}
	if t.last.IsZero() {
		t.tokens = burst
	} else if el := now.Sub(t.last).Seconds(); el > 0 {
		t.tokens += el * rate
		if t.tokens > burst {
			t.tokens = burst
		}
	}
	t.last = now
	if t.tokens >= 1 {
		t.tokens--
		return true
	}
	return false
}
