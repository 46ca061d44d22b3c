// Package proxy is migrate's data plane: an http.Handler that matches each
// request to a strangler route and dispatches it by the route's mode to the
// legacy service, the candidate, or both.
package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// WasmFactory builds an in-process candidate from a service's candidate
// block (the wasm options, as written) with relative paths resolved
// against dir. close releases it.
type WasmFactory func(ctx context.Context, block json.RawMessage, dir string) (b Backend, close func(context.Context) error, err error)

// Options configure a Proxy.
type Options struct {
	// Controller owns route state; required.
	Controller *strangler.Controller
	// Logger receives access logs (sampled) and reload results.
	Logger *slog.Logger
	// Mirror compares shadow copies (a *shadow.Mirror, which the
	// controller's ShadowEngine should also be). Default: a mirror of the
	// proxy's own, without a recorder; Close closes it.
	Mirror Mirror
	// Wasm builds in-process candidates. Without it a config with a wasm
	// candidate is rejected.
	Wasm WasmFactory
}

// Proxy serves requests through the current route table. Reloading swaps
// the table atomically; requests in flight finish on the table they began
// with.
type Proxy struct {
	ctrl    *strangler.Controller
	logger  *slog.Logger
	mirror  Mirror
	own     *shadow.Mirror // the default mirror, closed with the proxy
	wasm    WasmFactory
	traffic *shadow.Traffic // the mirror's count of client requests; nil if it keeps none
	shed    shedder         // nil when the mirror cannot say in advance that a copy would be dropped

	table atomic.Pointer[table]

	egress egress // legacy's outbound calls, recorded while it answers a shadowed request

	mu        sync.Mutex // serialises Load
	upstreams map[string]*upstream

	usageMu sync.Mutex
	retired map[string]strangler.CandidateUsage // in-process candidates replaced by a reload, by service
}

// table is an immutable compiled config.
type table struct {
	cfg       *strangler.Config
	matcher   *strangler.Matcher
	routes    []*entry
	def       *upstream
	maxBody   int64
	logSample float64
}

// entry is one route's data-plane wiring.
type entry struct {
	live          *strangler.Route
	service       string
	legacy        *upstream
	candidate     *upstream // nil without a candidate block
	shadow        *shadow.Options
	stickyKind    string
	stickyName    string
	reverseShadow bool
}

// New builds a proxy; call Load before serving.
func New(opts Options) *Proxy {
	p := &Proxy{ctrl: opts.Controller, logger: opts.Logger, mirror: opts.Mirror, wasm: opts.Wasm,
		upstreams: map[string]*upstream{}}
	if p.logger == nil {
		p.logger = slog.Default()
	}
	if p.mirror == nil {
		p.own = shadow.NewMirror(shadow.MirrorConfig{Logger: p.logger}, nil)
		p.mirror = p.own
	}
	// A mirror that sends its copies in the gaps between client requests
	// needs them counted.
	if m, ok := p.mirror.(interface{ Traffic() *shadow.Traffic }); ok {
		p.traffic = m.Traffic()
	}
	if m, ok := p.mirror.(shedder); ok {
		p.shed = m
	}
	return p
}

// Load builds a route table from cfg and swaps it in. On any error the
// table in service stays, untouched.
func (p *Proxy) Load(ctx context.Context, cfg *strangler.Config) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, name := range cfg.ServiceNames() {
		svc := cfg.Services[name]
		if svc.Candidate != nil {
			continue
		}
		for _, rn := range svc.Routes {
			if r := p.ctrl.Route(rn); r != nil && r.State().Mode != strangler.ModeLegacy {
				return fmt.Errorf("services.%s: route %q is in %s mode, so the service needs its candidate block; roll the route back first (migrate rollback %s)",
					name, rn, r.State().Mode, name)
			}
		}
	}
	matcher, err := strangler.NewMatcher(cfg.RouteNames())
	if err != nil {
		return err
	}
	used := map[string]*upstream{}
	get := func(key string, build func() (*upstream, error)) (*upstream, error) {
		if u := used[key]; u != nil {
			return u, nil
		}
		u := p.upstreams[key]
		if u == nil {
			var err error
			if u, err = build(); err != nil {
				return nil, err
			}
		}
		used[key] = u
		return u, nil
	}
	getHTTP := func(service string, side strangler.Side, raw string, timeout time.Duration, idle int) (*upstream, error) {
		return get(httpKey(service, side, raw, timeout, idle), func() (*upstream, error) {
			return p.httpUpstream(service, side, raw, timeout, idle)
		})
	}
	fail := func(err error) error {
		for k, u := range used {
			if p.upstreams[k] == nil && u.close != nil {
				_ = u.close(context.Background())
			}
		}
		return err
	}
	t := &table{cfg: cfg, matcher: matcher, maxBody: int64(cfg.MaxBufferedBody),
		logSample: float64(*cfg.AccessLogSample)}
	if cfg.Default != "" {
		if t.def, err = getHTTP("default", strangler.SideLegacy, cfg.Default, strangler.DefaultTimeout, strangler.DefaultMaxIdlePerHost); err != nil {
			return fail(err)
		}
	}
	type wiring struct {
		legacy, candidate *upstream
	}
	bySvc := map[string]wiring{}
	for _, name := range cfg.ServiceNames() {
		svc := cfg.Services[name]
		timeout := time.Duration(svc.Timeout)
		var w wiring
		w.legacy, err = getHTTP(name, strangler.SideLegacy, svc.Legacy, timeout, svc.MaxIdleConns)
		if err != nil {
			return fail(fmt.Errorf("services.%s.legacy: %w", name, err))
		}
		if c := svc.Candidate; c != nil {
			if c.URL != "" {
				w.candidate, err = getHTTP(name, strangler.SideCandidate, c.URL, time.Duration(c.Timeout), svc.MaxIdleConns)
			} else {
				w.candidate, err = get("wasm|"+name+"|"+cfg.Dir+"|"+string(c.Raw), func() (*upstream, error) {
					return p.wasmUpstream(ctx, name, c.Raw, cfg.Dir)
				})
			}
			if err != nil {
				return fail(fmt.Errorf("services.%s.candidate: %w", name, err))
			}
		}
		bySvc[name] = w
	}
	live, err := p.ctrl.Apply(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	t.routes = make([]*entry, matcher.Len())
	for i := range t.routes {
		name := matcher.Name(i)
		svcName := cfg.ServiceOf(name)
		svc := cfg.Services[svcName]
		e := &entry{live: live[name], service: svcName, legacy: bySvc[svcName].legacy,
			candidate: bySvc[svcName].candidate, shadow: svc.Shadow, reverseShadow: svc.ReverseShadow}
		if svc.StickyBy != "" {
			e.stickyKind, e.stickyName, _ = strangler.ParseStickyBy(svc.StickyBy)
		}
		t.routes[i] = e
	}
	old := p.upstreams
	p.upstreams = used
	p.table.Store(t)
	// Retired upstreams may still serve requests that started on the old
	// table; give them time before releasing in-process modules.
	var retired []*upstream
	for k, u := range old {
		if used[k] == nil {
			retired = append(retired, u)
			p.retireUsage(u)
		}
	}
	if len(retired) > 0 {
		time.AfterFunc(time.Minute, func() {
			for _, u := range retired {
				if u.close != nil {
					_ = u.close(context.Background())
				}
				if ic, ok := u.rt.(idleCloser); ok {
					ic.CloseIdleConnections()
				}
			}
		})
	}
	return nil
}

// httpKey identifies an HTTP upstream across reloads: one that keeps all
// of these keeps its connection pool.
func httpKey(service string, side strangler.Side, raw string, timeout time.Duration, idle int) string {
	return fmt.Sprintf("http|%s|%s|%s|%s|%d", service, side, raw, timeout, idle)
}

func (p *Proxy) httpUpstream(service string, side strangler.Side, raw string, timeout time.Duration, idle int) (*upstream, error) {
	target, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	return newUpstream(service, side, target, newHTTPTransport(target, idle, timeout), p.logger), nil
}

func (p *Proxy) wasmUpstream(ctx context.Context, service string, block json.RawMessage, dir string) (*upstream, error) {
	if p.wasm == nil {
		return nil, errors.New("in-process wasm candidates are not available in this build; use candidate.url")
	}
	b, closeFn, err := p.wasm(ctx, block, dir)
	if err != nil {
		return nil, err
	}
	if wb, ok := b.(*wasm.Backend); ok {
		// Outbound entries that name services resolve through this
		// proxy's route table.
		wb.UseServices(p)
	}
	u := newUpstream(service, strangler.SideCandidate, wasmTarget, b, p.logger)
	u.close = closeFn
	return u, nil
}

// Close stops the default mirror and releases candidates and idle
// connections. Call it after the HTTP server has shut down.
func (p *Proxy) Close(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	if p.own != nil {
		errs = append(errs, p.own.Close(ctx))
	}
	for _, u := range p.upstreams {
		if u.close != nil {
			errs = append(errs, u.close(ctx))
		}
		if ic, ok := u.rt.(idleCloser); ok {
			ic.CloseIdleConnections()
		}
	}
	return errors.Join(errs...)
}

// Config is the config currently served.
func (p *Proxy) Config() *strangler.Config {
	if t := p.table.Load(); t != nil {
		return t.cfg
	}
	return nil
}

// ServeHTTP matches the route and dispatches by its mode.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.traffic != nil {
		p.traffic.Begin()
		defer p.traffic.End()
	}
	t := p.table.Load()
	if t == nil {
		writeJSONError(w, http.StatusServiceUnavailable, map[string]any{"error": "the proxy has no config loaded yet", "status": 503})
		return
	}
	if calls := p.egress.of(r); calls != nil {
		p.serveEgress(w, r, t, calls)
		return
	}
	p.dispatch(w, r, t)
}

// dispatch matches the route of r in t and serves it by the route's mode.
func (p *Proxy) dispatch(w http.ResponseWriter, r *http.Request, t *table) {
	path := matchPath(r.URL)
	p.dispatchMatched(w, r, t, path, t.matcher.Match(r.Method, path))
}

// matchPath is the path routes are matched against: as the client sent
// it, escapes and all.
func matchPath(u *url.URL) string {
	if u.RawPath != "" {
		return u.RawPath
	}
	return u.Path
}

// dispatchMatched serves r, whose path matched route i of t (-1: none), by
// the route's mode.
func (p *Proxy) dispatchMatched(w http.ResponseWriter, r *http.Request, t *table, path string, i int) {
	if i < 0 {
		if t.def != nil {
			p.serve(w, r, t, nil, t.def, nil)
			return
		}
		writeJSONError(w, http.StatusNotFound, map[string]any{
			"error":  fmt.Sprintf("no route matches %s %s and the config has no default upstream", r.Method, path),
			"status": 404})
		return
	}
	e := t.routes[i]
	st := e.live.State()
	switch st.Mode {
	case strangler.ModeShadow:
		if e.candidate != nil {
			p.serveCompared(w, r, t, e, shadowCopy)
			return
		}
	case strangler.ModeCanary:
		if e.candidate != nil && canaryPick(r, e, st.Weight) {
			if e.reverseShadow {
				p.serveCompared(w, r, t, e, reverseCopy)
				return
			}
			p.serve(w, r, t, e, e.candidate, nil)
			return
		}
	case strangler.ModeCutover:
		if e.candidate != nil {
			if e.reverseShadow {
				p.serveCompared(w, r, t, e, reverseObserved)
				return
			}
			p.serve(w, r, t, e, e.candidate, nil)
			return
		}
	case strangler.ModeRetired:
		if e.candidate != nil {
			p.serve(w, r, t, e, e.candidate, nil)
			return
		}
	}
	p.serve(w, r, t, e, e.legacy, nil)
}

// serve proxies r to up, streaming the answer, and counts it. With tee the
// response body is also copied (capped) for the mirror.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, t *table, e *entry, up *upstream, tee *bytes.Buffer) (status int, d time.Duration, teeOver bool) {
	if up.target == wasmTarget && e != nil {
		// The module learns which route template matched (X_MATCHED_ROUTE).
		r = r.WithContext(wasm.WithMatchedRoute(r.Context(), e.live.Name))
	}
	rec := getRecorder(w)
	if tee != nil {
		rec.tee, rec.teeCap = tee, t.maxBody
	}
	start := time.Now()
	if !up.forward(rec, r) {
		up.rp.ServeHTTP(rec, r)
	}
	d = time.Since(start)
	teeOver = rec.over
	status = p.served(r, t, e, up, rec, d)
	return status, d, teeOver
}

// served counts and logs an answer written through rec, which it puts
// back, and returns its status.
func (p *Proxy) served(r *http.Request, t *table, e *entry, up *upstream, rec *recorder, d time.Duration) int {
	status := rec.statusCode()
	upErr, errID := rec.upstreamErr, rec.errorID
	putRecorder(rec)
	if errID != "" {
		p.logUpstreamError(r, e, up, status, errID, upErr)
	}
	p.account(t, e, up, r.Method, r.URL.Path, r.RemoteAddr, status, d, upErr)
	return status
}

// account feeds an answer to its route's live counters and, for the
// sampled share, to the access log; upErr is why the upstream gave none.
func (p *Proxy) account(t *table, e *entry, up *upstream, method, path, remote string, status int, d time.Duration, upErr error) {
	if e != nil && status != statusClientClosed {
		e.live.Observe(up.side, d, status >= 500)
		if up.side == strangler.SideCandidate && status >= 500 {
			e.live.CandidateFailed(candidateErrorKind(upErr))
		}
	}
	if t.logSample > 0 && rand.Float64() < t.logSample {
		route := "default"
		if e != nil {
			route = e.live.Name
		}
		p.logger.Info("access", "method", method, "path", path, "route", route,
			"side", up.side, "status", status, "duration", d, "remote", remote)
	}
}

// compareMode says which side answers the client when a copy is compared.
type compareMode int

const (
	// shadowCopy: legacy answers; a copy goes to the candidate.
	shadowCopy compareMode = iota
	// reverseCopy: the candidate answers (canary); a copy goes to legacy.
	reverseCopy
	// reverseObserved: as reverseCopy, in cutover, where the copies also
	// feed legacy's live counters, which have no traffic of their own left.
	// In canary those counters stay the real legacy traffic a step is
	// judged against.
	reverseObserved
)

// serveCompared answers from one side, tees the answer (capped) and hands
// the exchange to the mirror, which sends a detached copy to the other
// side and compares. In reverse the mirror keeps legacy on the legacy side
// of the comparison, so a route's evidence keeps growing after shadow mode,
// and applies the write policy (writes reach legacy only under `writes:
// allow`).
func (p *Proxy) serveCompared(w http.ResponseWriter, r *http.Request, t *table, e *entry, mode compareMode) {
	answer := e.legacy
	if mode != shadowCopy {
		answer = e.candidate
	}
	// A read outside the route's sample, or whose copy the mirror sheds, is
	// served as any request, with no buffered body, tee or flush. (A write
	// goes on to Submit, which counts a write it skips as such, sampled or
	// not.)
	read := !shadow.IsWrite(r.Method)
	if read && !shadow.Sampled(e.live.Name, e.shadow, r) {
		e.live.Mirror.Skipped.Add(1)
		p.serve(w, r, t, e, answer, nil)
		return
	}
	if read && p.shedsCopy(e) {
		p.serve(w, r, t, e, answer, nil)
		return
	}
	body, fits, err := bufferBody(r, t.maxBody)
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, map[string]any{"error": "reading the request body failed: " + err.Error(), "status": 400})
		return
	}
	if !fits {
		e.live.Mirror.Drop(true)
		p.serve(w, r, t, e, answer, nil)
		return
	}
	tee := &bytes.Buffer{}
	var calls *shadow.Calls
	stop := func() {}
	if mode == shadowCopy {
		calls, stop = p.watchLegacyCalls(r)
		// Watching ends with legacy's answer, before the copy is queued:
		// the candidate's calls carry the same id. (The defer is for a
		// handler aborted mid-answer.)
		defer stop()
	}
	// Header is captured after the response is written: ReverseProxy has
	// copied the upstream headers into w by then.
	status, d, over := p.serve(w, r, t, e, answer, tee)
	stop()
	if over {
		e.live.Mirror.Drop(true)
		return
	}
	// Nothing to compare when the client went away, or when legacy, the
	// reference, failed. A candidate's 502 or 504 is compared: the client
	// did get that answer.
	legacyFailed := mode == shadowCopy && (status == http.StatusBadGateway || status == http.StatusGatewayTimeout)
	if status == statusClientClosed || legacyFailed {
		e.live.Mirror.Drop(false)
		return
	}
	ex := shadow.Exchange{Route: e.live.Name, Service: e.service, Options: e.shadow, Request: r, Body: body, Sampled: read,
		Legacy: shadow.Response{Status: status, Header: w.Header().Clone(), Body: tee.Bytes(), Latency: d}}
	if calls != nil {
		ex.Legacy.Calls, ex.Legacy.CallsRecorded = calls.List(), true
	}
	// net/http sends a buffered response only when the handler returns.
	// Send it now, so the client has its answer before the mirror's worker
	// is woken and the copy starts competing for the CPU.
	_ = http.NewResponseController(w).Flush()
	switch mode {
	case shadowCopy:
		ex.Candidate, ex.Baseline = mirrorBackend{e.candidate}, mirrorBackend{e.legacy}
	case reverseCopy:
		ex.Candidate, ex.Reverse = mirrorBackend{e.legacy}, true
	case reverseObserved:
		ex.Candidate, ex.Reverse = observedBackend{to: mirrorBackend{e.legacy}, live: e.live}, true
	}
	switch p.mirror.Submit(ex) {
	case shadow.OutcomeQueued:
		e.live.Mirror.Submitted.Add(1)
	case shadow.OutcomeDropped:
		e.live.Mirror.Drop(false)
	default:
		e.live.Mirror.Skipped.Add(1)
	}
}

// shedsCopy says whether the mirror drops the copy of a read on e before
// the read is served, its queue being full; the drop is counted then, as
// Submit counts one. The relay asks it of a shadowed read, serveCompared
// of any other read it is given.
func (p *Proxy) shedsCopy(e *entry) bool {
	if p.shed == nil || !p.shed.Shed(e.live.Name, e.shadow) {
		return false
	}
	e.live.Mirror.Drop(false)
	return true
}

// canaryPick decides whether this request goes to the candidate. With a
// sticky key, the same user always lands on the same side for a given
// weight (and stays on the candidate as the weight grows).
func canaryPick(r *http.Request, e *entry, weight int) bool {
	if weight <= 0 {
		return false
	}
	if weight >= 100 {
		return true
	}
	key := ""
	switch e.stickyKind {
	case "header":
		key = r.Header.Get(e.stickyName)
	case "cookie":
		if c, err := r.Cookie(e.stickyName); err == nil {
			key = c.Value
		}
	}
	if key == "" {
		return rand.IntN(100) < weight
	}
	return stickyBucket(key) < weight
}

// stickyBucket maps a user key to 0..99.
func stickyBucket(key string) int {
	// FNV-1a, inline so the hot path does not allocate a hash.Hash.
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h ^= uint32(key[i])
		h *= 16777619
	}
	return int(h % 100)
}
