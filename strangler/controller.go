package strangler

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// GateInput is what a gate decides on: the route, where it would go, its
// gate block and a snapshot of its live counters.
type GateInput struct {
	Route   *Route
	Status  RouteStatus
	Service string
	From    RouteState
	To      RouteState
	Config  *GateConfig // nil when the service has no gate block
	// Shadow is the service's shadow block (nil: the defaults), which
	// says whether its writes are ever compared.
	Shadow *shadow.Options
}

// Criterion is one line of a gate's verdict table.
type Criterion struct {
	Name string `json:"name"`
	Want string `json:"want"`
	Got  string `json:"got"`
	Pass bool   `json:"pass"`
	// Delta says how far off a missed criterion is ("−588", "−0.4 pp").
	Delta string `json:"delta,omitempty"`
	// Inconclusive marks a miss that more evidence may settle (too few
	// samples, too short a span), as opposed to a failure.
	Inconclusive bool `json:"inconclusive,omitempty"`
	// Hint, on a criterion not met, says what would meet it.
	Hint string `json:"hint,omitempty"`
}

// GateResult is a gate's verdict. Evidence, when set, is stored with the
// transition in the audit log.
type GateResult struct {
	Pass bool `json:"pass"`
	// Verdict is pass, fail or inconclusive ("" from gates that only say
	// Pass).
	Verdict  string          `json:"verdict,omitempty"`
	Criteria []Criterion     `json:"criteria,omitempty"`
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// GateFunc evaluates a promotion (every forward transition; never a
// rollback). It returns an error only when it cannot decide.
type GateFunc func(ctx context.Context, in GateInput) (GateResult, error)

// PermissiveGate lets every promotion through. It is the default until a
// gate implementation is installed in Controller.Gate.
func PermissiveGate(context.Context, GateInput) (GateResult, error) {
	return GateResult{Pass: true}, nil
}

// ShadowEngine is what the controller needs from the comparison engine;
// *shadow.Mirror implements it.
type ShadowEngine interface {
	Summary(route string) (shadow.Summary, bool)
	Evidence(route string) *shadow.Evidence
	Noise(route string) *shadow.Noise
	Restore(route, service string, ev *shadow.Evidence, noise *shadow.Noise)
}

var _ ShadowEngine = (*shadow.Mirror)(nil)

// Controller owns the routes' live state: it applies configs, performs
// audited transitions (durable before acknowledged) and flushes counters.
type Controller struct {
	// Gate is consulted before every promotion. Default PermissiveGate.
	Gate GateFunc
	// Logger receives one line per transition and per reload.
	Logger *slog.Logger
	// Now is the clock (tests fix it).
	Now func() time.Time
	// Shadow is the comparison engine (*shadow.Mirror): status reads its
	// evidence, Flush persists it, the first Apply restores it. Set it
	// before the first Apply; nil means no comparisons.
	Shadow ShadowEngine
	// Usage reports what each service's in-process candidate has used in
	// this process (the proxy's WasmUsage); Flush persists it, added to
	// what earlier processes stored. nil means none to record.
	Usage func() map[string]CandidateUsage

	store   *Store
	canary  canaryRunner // progressive canary walks (canary.go)
	metrics *Metrics

	mu       sync.Mutex // serialises Apply and Transition
	cfg      *Config
	routes   map[string]*Route
	order    []string
	services map[string][]string
	// usageBase is the candidate usage stored by earlier processes, read
	// by the first Apply and never changed after it.
	usageBase map[string]CandidateUsage
	// changes counts the route state changes this process made, so that
	// SyncRoutes can tell a stale read of the store from a newer one.
	changes uint64

	health storeHealth // replicas.go

	peersMu sync.Mutex
	peers   map[string]*peerTotals // other replicas' totals, by route (replicas.go)
}

// NewController builds a controller over an open store. metrics may be nil.
func NewController(store *Store, metrics *Metrics, logger *slog.Logger) *Controller {
	if logger == nil {
		logger = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics()
	}
	c := &Controller{Gate: PermissiveGate, Logger: logger, Now: time.Now, store: store,
		metrics: metrics, routes: map[string]*Route{}, services: map[string][]string{}}
	// The evidence gate (gate.go) checks each route against its gate block;
	// without a block every promotion passes, as PermissiveGate would.
	c.Gate = c.EvaluateGate
	metrics.registerGateGauges(c)
	metrics.registerShadowErrors(c)
	return c
}

// Store is the controller's state store.
func (c *Controller) Store() *Store { return c.store }

// Metrics is the controller's Prometheus registry wrapper.
func (c *Controller) Metrics() *Metrics { return c.metrics }

// Config is the config last applied.
func (c *Controller) Config() *Config {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg
}

// Apply makes cfg's routes live. Routes the store knows resume their stored
// mode and weight; new routes start in their service's configured mode and
// are recorded. Routes no longer listed stop being served (their stored
// state and audit log are kept). The first Apply also restores counters.
// It returns the live routes by name for the data plane.
func (c *Controller) Apply(ctx context.Context, cfg *Config) (map[string]*Route, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stored, err := c.store.LoadRoutes(ctx)
	if err != nil {
		return nil, err
	}
	counters, err := c.store.ownCounters(ctx)
	if err != nil {
		return nil, err
	}
	var evidence map[string]json.RawMessage
	if c.Shadow != nil {
		if evidence, err = c.store.ownEvidence(ctx); err != nil {
			return nil, err
		}
	}
	if c.usageBase == nil {
		base, err := usageDocs(counters)
		if err != nil {
			c.Logger.Warn("stored wasm usage is unreadable; counting afresh", "err", err)
		}
		c.usageBase = base
	}
	now := c.Now()
	next := map[string]*Route{}
	var order []string
	services := map[string][]string{}
	for _, svcName := range cfg.ServiceNames() {
		svc := cfg.Services[svcName]
		for _, name := range svc.Routes {
			order = append(order, name)
			services[svcName] = append(services[svcName], name)
			if r := c.routes[name]; r != nil {
				r.service.Store(&svcName)
				next[name] = r
				continue
			}
			st, known := stored[name]
			if !known {
				st = RouteState{Mode: svc.Mode, Weight: initialWeight(svc)}
			}
			if err := c.store.SeedRoute(ctx, name, svcName, st, now); err != nil {
				return nil, err
			}
			r := newRoute(name, svcName, st)
			restoreCounters(r, counters[name])
			markStep(r, now)
			c.restoreShadow(name, svcName, evidence[name], counters[name]["noise"])
			c.metrics.bind(r)
			c.metrics.setMode(name, svcName, st.Mode)
			next[name] = r
		}
	}
	for name := range c.routes {
		if next[name] == nil {
			c.metrics.forget(name)
		}
	}
	c.cfg, c.routes, c.order, c.services = cfg, next, order, services
	c.changes++
	if err := c.refreshPeers(ctx); err != nil {
		return nil, err
	}
	return next, nil
}

func initialWeight(svc *Service) int {
	if svc.Mode == ModeCanary {
		return svc.Weight
	}
	return 0
}

func restoreCounters(r *Route, docs map[string]json.RawMessage) {
	for kind, data := range docs {
		switch Side(kind) {
		case SideLegacy, SideCandidate:
			var snap SideSnapshot
			if json.Unmarshal(data, &snap) == nil {
				r.Side(Side(kind)).restore(snap)
			}
		}
		if kind == "mirror" {
			var m MirrorStatus
			if json.Unmarshal(data, &m) == nil {
				r.Mirror.Submitted.Add(m.Submitted)
				r.Mirror.Skipped.Add(m.Skipped)
				r.Mirror.Dropped.Add(m.Dropped)
				r.Mirror.TooLarge.Add(m.TooLarge)
			}
		}
	}
}

// restoreShadow hands persisted evidence and noise back to the engine.
func (c *Controller) restoreShadow(route, service string, ev, noise json.RawMessage) {
	if c.Shadow == nil || (len(ev) == 0 && len(noise) == 0) {
		return
	}
	var e *shadow.Evidence
	if len(ev) > 0 {
		e = new(shadow.Evidence)
		if err := json.Unmarshal(ev, e); err != nil {
			c.Logger.Warn("stored shadow evidence is unreadable; starting afresh", "route", route, "err", err)
			e = nil
		}
	}
	var n *shadow.Noise
	if len(noise) > 0 {
		n = shadow.NewNoise()
		if err := json.Unmarshal(noise, n); err != nil {
			c.Logger.Warn("stored noise is unreadable; learning afresh", "route", route, "err", err)
			n = nil
		}
	}
	if e != nil || n != nil {
		c.Shadow.Restore(route, service, e, n)
	}
}

// Route returns a live route by name, or nil.
func (c *Controller) Route(name string) *Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.routes[name]
}

// Routes lists live routes in config order.
func (c *Controller) Routes() []*Route {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Route, 0, len(c.order))
	for _, n := range c.order {
		out = append(out, c.routes[n])
	}
	return out
}

// Status snapshots every route, in config order.
func (c *Controller) Status() []RouteStatus {
	routes := c.Routes()
	out := make([]RouteStatus, len(routes))
	for i, r := range routes {
		out[i] = c.status(r)
	}
	return out
}

// TransitionRequest asks for a route or a whole service to change mode.
type TransitionRequest struct {
	// Target is a route name ("GET /api/order") or a service name.
	Target string `json:"target"`
	// To is the mode to go to.
	To Mode `json:"mode"`
	// Weight is the canary percentage (1-100); 0 keeps the current weight,
	// or uses the service's configured weight when entering canary.
	Weight int `json:"weight,omitempty"`
	// Actor says who asked (user name, "auto-rollback", ...).
	Actor string `json:"actor,omitempty"`
	// Reason says why; required with Force.
	Reason string `json:"reason,omitempty"`
	// Force overrides a failed gate (recorded in the audit log).
	Force bool `json:"force,omitempty"`
	// ExpectMode and ExpectWeight, when set, make the request optimistic:
	// it fails with a ConflictError (HTTP 409) unless every targeted route
	// is still in that mode (and canary weight), so of two operators racing
	// on a route the loser is told instead of silently overriding.
	ExpectMode   Mode `json:"expectMode,omitempty"`
	ExpectWeight int  `json:"expectWeight,omitempty"`
	// Evidence is an optional snapshot to store with the transition; when
	// empty, the gate's evidence (if any) is stored.
	Evidence json.RawMessage `json:"evidence,omitempty"`
}

// RequestError is a transition request that is malformed (bad weight,
// unknown mode, --force without --reason).
type RequestError struct{ Msg string }

func (e *RequestError) Error() string { return e.Msg }

func requestErrorf(format string, args ...any) error {
	return &RequestError{Msg: fmt.Sprintf(format, args...)}
}

// UnknownTargetError is returned when a target names no route or service.
type UnknownTargetError struct {
	Target   string   `json:"target"`
	Routes   []string `json:"routes"`
	Services []string `json:"services"`
}

func (e *UnknownTargetError) Error() string {
	return fmt.Sprintf("%q is neither a route nor a service; services: %s; routes: %s",
		e.Target, strings.Join(e.Services, ", "), strings.Join(e.Routes, ", "))
}

// InvalidTransitionError is returned when the state machine forbids a move.
type InvalidTransitionError struct {
	Route string `json:"route"`
	From  Mode   `json:"from"`
	To    Mode   `json:"to"`
	Err   string `json:"error"`
}

func (e *InvalidTransitionError) Error() string { return fmt.Sprintf("route %q: %s", e.Route, e.Err) }

// GateError is returned when a gate refused a promotion and Force was not set.
type GateError struct {
	Results map[string]GateResult `json:"results"`
}

func (e *GateError) Error() string {
	var failed []string
	anyFailed := false
	for route, r := range e.Results {
		if r.Pass {
			continue
		}
		var crit []string
		for _, c := range r.Criteria {
			if !c.Pass {
				crit = append(crit, fmt.Sprintf("%s: want %s, got %s", c.Name, c.Want, c.Got))
			}
		}
		verdict := r.Verdict
		if verdict == "" {
			verdict = verdictOf(r.Criteria)
			if verdict == VerdictPass {
				verdict = VerdictFail // a gate said no without saying why
			}
		}
		anyFailed = anyFailed || verdict == VerdictFail
		failed = append(failed, fmt.Sprintf("%q %s (%s)", route, verdict, strings.Join(crit, "; ")))
	}
	sort.Strings(failed)
	return "gate not met for " + strings.Join(failed, ", ") + "; " + gateAdvice(anyFailed)
}

// gateAdvice is what to do about a gate not met: a failed criterion needs
// a fix (more of the same evidence will not change it); an inconclusive
// one needs more evidence.
func gateAdvice(failed bool) string {
	if failed {
		return "fix what failed, or override with --force --reason TEXT"
	}
	return "collect more evidence and check again, or override with --force --reason TEXT"
}

// Transition moves a route, or every route of a service, to req.To. The
// whole request is checked first (state machine, then gate) and committed
// in one durable transaction before any route changes, so it applies to
// all targeted routes or to none. Routes already in the target state are
// left alone. It returns the transitions made.
func (c *Controller) Transition(ctx context.Context, req TransitionRequest) ([]Transition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Force && strings.TrimSpace(req.Reason) == "" {
		return nil, requestErrorf("--force needs --reason: the audit log must say why a gate was overridden")
	}
	if req.Weight < 0 || req.Weight > 100 {
		return nil, requestErrorf("weight %d is not a percentage between 0 and 100", req.Weight)
	}
	if req.Weight != 0 && req.To != ModeCanary {
		return nil, requestErrorf("weight applies only to canary, not %s", req.To)
	}
	if !req.To.Valid() {
		return nil, requestErrorf("%q is not a mode; use one of %s", req.To, modeList())
	}
	targets, err := c.resolve(req.Target)
	if err != nil {
		return nil, err
	}
	actor := req.Actor
	if actor == "" {
		actor = "unknown"
	}
	now := c.Now()
	var ts []Transition
	var routes []*Route
	gateResults := map[string]GateResult{}
	gateFailed := false
	for _, r := range targets {
		from := r.State()
		to := RouteState{Mode: req.To}
		if req.To == ModeCanary {
			to.Weight = req.Weight
			if to.Weight == 0 && from.Mode == ModeCanary {
				to.Weight = from.Weight
			}
			if to.Weight == 0 {
				to.Weight = c.serviceWeight(r.Service())
			}
		}
		if (req.ExpectMode != "" && from.Mode != req.ExpectMode) || (req.ExpectWeight != 0 && from.Weight != req.ExpectWeight) {
			return nil, &ConflictError{Msg: fmt.Sprintf("route %q changed meanwhile: it is in %s, the request expected %s; check `migrate status` and retry",
				r.Name, stateText(from), stateText(RouteState{Mode: req.ExpectMode, Weight: req.ExpectWeight}))}
		}
		if from == to {
			continue
		}
		if err := CheckTransition(from.Mode, to.Mode); err != nil {
			return nil, &InvalidTransitionError{Route: r.Name, From: from.Mode, To: to.Mode, Err: err.Error()}
		}
		if to.Mode != ModeLegacy && c.cfg.Services[r.Service()].Candidate == nil {
			return nil, &InvalidTransitionError{Route: r.Name, From: from.Mode, To: to.Mode,
				Err: fmt.Sprintf("service %s has no candidate block; add one to the config first", r.Service())}
		}
		t := Transition{At: now, Route: r.Name, Service: r.Service(), From: from.Mode, To: to.Mode,
			FromWeight: from.Weight, ToWeight: to.Weight, Actor: actor, Reason: req.Reason,
			Evidence: req.Evidence}
		if to.Mode != ModeLegacy {
			gate := c.Gate
			if gate == nil {
				gate = PermissiveGate
			}
			svc := c.cfg.Services[r.Service()]
			res, err := gate(ctx, GateInput{Route: r, Status: c.status(r), Service: r.Service(),
				From: from, To: to, Config: svc.Gate, Shadow: svc.Shadow})
			if err != nil {
				return nil, fmt.Errorf("evaluate gate for %q: %w", r.Name, err)
			}
			gateResults[r.Name] = res
			if !res.Pass {
				if !req.Force {
					gateFailed = true
				}
				t.Forced = true
			}
			if len(t.Evidence) == 0 && len(res.Evidence) > 0 {
				t.Evidence = res.Evidence
			}
		}
		if len(t.Evidence) == 0 {
			// Ungated moves (rollbacks) are audited with the numbers too.
			t.Evidence = c.transitionSnapshot(r, to.Mode)
		}
		ts = append(ts, t)
		routes = append(routes, r)
	}
	if gateFailed {
		return nil, &GateError{Results: gateResults}
	}
	if len(ts) == 0 {
		return nil, nil
	}
	if err := c.store.CommitTransitions(ctx, ts); err != nil {
		c.health.observe(c.Logger, c.store, err)
		return nil, err
	}
	c.changes++
	for i, r := range routes {
		t := ts[i]
		r.state.Store(&RouteState{Mode: t.To, Weight: t.ToWeight})
		markStep(r, now)
		c.metrics.setMode(r.Name, t.Service, t.To)
		c.Logger.Info("route transition", "route", t.Route, "service", t.Service,
			"from", t.From, "to", t.To, "fromWeight", t.FromWeight, "toWeight", t.ToWeight,
			"actor", t.Actor, "reason", t.Reason, "forced", t.Forced, "id", t.ID)
	}
	return ts, nil
}

func (c *Controller) serviceWeight(service string) int {
	if s := c.cfg.Services[service]; s != nil && s.Weight > 0 {
		return s.Weight
	}
	return DefaultCanaryWeight
}

// resolve turns a route or service name into its live routes.
func (c *Controller) resolve(target string) ([]*Route, error) {
	if r := c.routes[target]; r != nil {
		return []*Route{r}, nil
	}
	if names, ok := c.services[target]; ok {
		out := make([]*Route, len(names))
		for i, n := range names {
			out[i] = c.routes[n]
		}
		return out, nil
	}
	e := &UnknownTargetError{Target: target, Routes: append([]string(nil), c.order...)}
	for s := range c.services {
		e.Services = append(e.Services, s)
	}
	sort.Strings(e.Services)
	return nil, e
}

// Targets lists the valid route and service names.
func (c *Controller) Targets() (routes, services []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.services {
		services = append(services, s)
	}
	sort.Strings(services)
	return append([]string(nil), c.order...), services
}

// Audit reads the transition log.
func (c *Controller) Audit(ctx context.Context, q AuditQuery) ([]Transition, error) {
	return c.store.Audit(ctx, q)
}

// Flush persists every live route's counters, and the shadow engine's
// evidence and learned noise.
func (c *Controller) Flush(ctx context.Context) error {
	var rows []CounterRow
	now := c.Now()
	for _, r := range c.Routes() {
		st := r.status(nil, nil) // this replica's own
		for _, side := range []Side{SideLegacy, SideCandidate} {
			data, _ := json.Marshal(st.Stats[side])
			rows = append(rows, CounterRow{Route: r.Name, Kind: string(side), Data: data})
		}
		m, _ := json.Marshal(st.Mirror)
		rows = append(rows, CounterRow{Route: r.Name, Kind: "mirror", Data: m})
		if c.Shadow == nil {
			continue
		}
		if n := c.Shadow.Noise(r.Name); n != nil {
			if data, err := json.Marshal(n); err == nil {
				rows = append(rows, CounterRow{Route: r.Name, Kind: "noise", Data: data})
			}
		}
		if ev := c.Shadow.Evidence(r.Name); ev != nil {
			data, err := json.Marshal(ev)
			if err != nil {
				return fmt.Errorf("save evidence of %q: %w", r.Name, err)
			}
			if err := c.store.SaveEvidence(ctx, r.Name, r.Service(), data, now); err != nil {
				return err
			}
		}
	}
	if c.Usage != nil {
		c.mu.Lock()
		base := c.usageBase
		c.mu.Unlock()
		usage, err := usageRows(base, c.Usage())
		if err != nil {
			return err
		}
		rows = append(rows, usage...)
	}
	return c.store.SaveCounters(ctx, rows, now)
}

// RunFlusher flushes counters every interval until ctx ends, then once more.
// It also runs the canary walker (RunCanaryWalker) for the same lifetime.
func (c *Controller) RunFlusher(ctx context.Context, interval time.Duration) {
	// Canary walks live as long as the flusher: they stop before the final
	// flush returns, so the store is not closed under them.
	walker := make(chan struct{})
	go func() { c.RunCanaryWalker(ctx); close(walker) }()
	defer func() { <-walker }()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Flush(fctx); err != nil {
				c.Logger.Error("flush counters on shutdown", "err", err)
			}
			return
		case <-t.C:
			err := c.Flush(ctx)
			if ctx.Err() == nil {
				c.health.observe(c.Logger, c.store, err)
			}
		}
	}
}
