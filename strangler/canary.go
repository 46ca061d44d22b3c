package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// Canary walk states.
const (
	// WalkRunning: the walk holds a step and will analyse it when its
	// interval ends.
	WalkRunning = "running"
	// WalkPaused: a step stayed inconclusive (too little traffic) through
	// every extension, or the final cutover gate was not met; the routes
	// stay at the step's weight until an operator acts.
	WalkPaused = "paused"
	// WalkCompleted: every step passed (and, ending at 100%, the route was
	// cut over through its gate).
	WalkCompleted = "completed"
	// WalkRolledBack: a step failed and the routes went back to legacy.
	WalkRolledBack = "rolled-back"
	// WalkAborted: an operator moved the routes, or a newer walk took over.
	WalkAborted = "aborted"
)

// CanaryActor is the audit log's actor for transitions a walk makes.
const CanaryActor = "canary-walk"

// CanaryWatchActor is the audit log's actor of a rollback by the canary
// watch: a route in canary that no running walk holds (a manual `migrate
// canary`, a paused walk, a walk that completed below 100%) is judged as a
// walk step is, and rolled back when it fails.
const CanaryWatchActor = "canary-watch"

// DefaultCanaryWatchWindow is the canary watch's observation window: a
// route is judged on what it served since the window began, and a window
// that passed starts a new one, so an old healthy stretch cannot hide a new
// regression.
const DefaultCanaryWatchWindow = 30 * time.Second

// canaryP99MinRequests is how many candidate requests a step needs before
// its p99 (rather than its median) is compared with legacy's.
const canaryP99MinRequests = 100

// DefaultCanaryMaxP99Ratio bounds a canary step's candidate p99 / legacy
// p99 when the gate has no maxP99Ratio.
const DefaultCanaryMaxP99Ratio = 1.5

// CanaryRequest starts a progressive canary walk over a route or service.
type CanaryRequest struct {
	Target string `json:"target"`
	// Steps are the weights to walk, ascending percentages, e.g. 1,5,25,50,100.
	Steps []int `json:"steps"`
	// Interval is how long each step is observed before it is analysed.
	Interval Duration `json:"interval"`
	Actor    string   `json:"actor,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// CanaryWalk is a durable progressive canary: stored in the state file on
// every change, so a restarted proxy resumes it (or records why not).
type CanaryWalk struct {
	ID       int64    `json:"id"`
	Target   string   `json:"target"`
	Routes   []string `json:"routes"`
	Steps    []int    `json:"steps"`
	Interval Duration `json:"interval"`
	// Step indexes Steps; Weight is Steps[Step].
	Step   int    `json:"step"`
	Weight int    `json:"weight"`
	State  string `json:"state"`
	// Applied is false until the first step's transition is committed.
	Applied bool `json:"applied"`
	// StepStarted is when the current observation window began;
	// Extensions counts how often an inconclusive step was extended.
	StepStarted time.Time `json:"stepStarted"`
	Extensions  int       `json:"extensions"`
	Actor       string    `json:"actor"`
	Reason      string    `json:"reason,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// Detail says why the walk paused or ended.
	Detail  string             `json:"detail,omitempty"`
	History []CanaryStepResult `json:"history"`
	// Baseline holds each route's counters when the step's window began.
	Baseline map[string]walkBaseline `json:"baseline,omitempty"`
	// StartModes are the routes' modes before the walk, to tell "never
	// applied" from "moved by someone else" after a crash.
	StartModes map[string]RouteState `json:"startModes,omitempty"`
}

// walkBaseline is one route's counters at the start of a step.
type walkBaseline struct {
	Legacy    SideSnapshot `json:"legacy"`
	Candidate SideSnapshot `json:"candidate"`
	// Answered and Matched are the evidence's compared (Matches +
	// Mismatches) and Matches counters, for the step's match ratio when
	// the route is being compared (reverse shadow).
	Answered uint64 `json:"answered"`
	Matched  uint64 `json:"matched"`
}

// CanaryStepResult is one analysis of a step (or an event such as a resume
// after restart), kept in the walk's history and in the audit evidence of
// the transition it caused.
type CanaryStepResult struct {
	At       time.Time   `json:"at"`
	Step     int         `json:"step"`
	Weight   int         `json:"weight"`
	Verdict  string      `json:"verdict"`
	Criteria []Criterion `json:"criteria,omitempty"`
	Note     string      `json:"note,omitempty"`
	// Live figures of the step's window, summed over the walk's routes.
	CandidateRequests int64   `json:"candidateRequests"`
	CandidateErrors   int64   `json:"candidateErrors"`
	LegacyRequests    int64   `json:"legacyRequests"`
	LegacyErrors      int64   `json:"legacyErrors"`
	CandidateP99      float64 `json:"candidateP99Millis"`
	LegacyP99         float64 `json:"legacyP99Millis"`
	Compared          uint64  `json:"compared,omitempty"`
	Matched           uint64  `json:"matched,omitempty"`
}

// CanaryWalksDocument is the body of POST and GET /v1/canary.
type CanaryWalksDocument struct {
	APIVersion string       `json:"apiVersion"`
	Walks      []CanaryWalk `json:"walks"`
}

// ConflictError is returned when a request raced with another change: the
// route is not in the state the request expected, or another walk holds it.
type ConflictError struct{ Msg string }

// Error says which route moved and what to do.
func (e *ConflictError) Error() string { return e.Msg }

// canaryRunner is the controller's walk machinery: mu serialises starting
// and advancing walks, wake nudges the walker when a walk starts, and
// started remembers the walks this process began, which the walker's
// restart reconciliation must leave alone.
type canaryRunner struct {
	once    sync.Once
	mu      sync.Mutex
	wake    chan struct{}
	started map[int64]bool
	// watch holds the canary watch's window per route; window is its
	// length (DefaultCanaryWatchWindow when 0). Both are guarded by mu.
	watch  map[string]*canaryWatch
	window time.Duration
}

// canaryWatch is one route's current observation window.
type canaryWatch struct {
	weight  int
	started time.Time
	base    walkBaseline
}

func (r *canaryRunner) init() { r.once.Do(func() { r.wake = make(chan struct{}, 1) }) }

func (r *canaryRunner) nudge() {
	r.init()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// ParseSteps reads "1,5,25,50,100".
func ParseSteps(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(part), "%"))
		var n int
		if _, err := fmt.Sscanf(part, "%d", &n); err != nil || fmt.Sprint(n) != part {
			return nil, fmt.Errorf("step %q is not a whole percentage; write steps such as 1,5,25,50,100", part)
		}
		out = append(out, n)
	}
	return out, checkSteps(out)
}

func checkSteps(steps []int) error {
	if len(steps) == 0 {
		return errors.New("a canary walk needs at least one step, e.g. 1,5,25,50,100")
	}
	for i, w := range steps {
		if w < 1 || w > 100 {
			return fmt.Errorf("step %d%% is not a percentage between 1 and 100", w)
		}
		if i > 0 && w <= steps[i-1] {
			return fmt.Errorf("steps must increase: %d%% follows %d%%", w, steps[i-1])
		}
	}
	return nil
}

// StartCanary begins a walk: the routes go to the first step's weight at
// once (an audited transition) and the walker takes it from there. A
// running walk over any of the same routes is a conflict; a paused one is
// superseded.
func (c *Controller) StartCanary(ctx context.Context, req CanaryRequest) (*CanaryWalk, error) {
	if err := checkSteps(req.Steps); err != nil {
		return nil, requestErrorf("%v", err)
	}
	if req.Interval <= 0 {
		return nil, requestErrorf("interval %s: each step needs a positive observation time, e.g. 1m", time.Duration(req.Interval))
	}
	c.canary.mu.Lock()
	defer c.canary.mu.Unlock()
	c.mu.Lock()
	routes, err := c.resolve(req.Target)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	active, err := c.store.CanaryWalks(ctx, "", true)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(routes))
	starts := map[string]RouteState{}
	for i, r := range routes {
		names[i] = r.Name
		starts[r.Name] = r.State()
	}
	now := c.Now()
	for i := range active {
		old := &active[i]
		if !overlaps(old.Routes, names) {
			continue
		}
		if old.State == WalkRunning {
			return nil, &ConflictError{Msg: fmt.Sprintf("canary walk #%d over %s is running (step %d%%); wait for it, or roll back to stop it",
				old.ID, old.Target, old.Weight)}
		}
		old.State, old.Detail, old.Updated = WalkAborted, fmt.Sprintf("superseded by a new walk over %s", req.Target), now
		if err := c.store.SaveCanaryWalk(ctx, old); err != nil {
			return nil, err
		}
	}
	actor := req.Actor
	if actor == "" {
		actor = "unknown"
	}
	w := &CanaryWalk{Target: req.Target, Routes: names, Steps: req.Steps, Interval: req.Interval,
		Weight: req.Steps[0], State: WalkRunning, Actor: actor, Reason: req.Reason, Created: now, Updated: now,
		StartModes: starts, History: []CanaryStepResult{}}
	// The walk is recorded before its first weight is applied, so a crash
	// in between leaves a walk that the restart finishes applying.
	if err := c.store.InsertCanaryWalk(ctx, w); err != nil {
		return nil, err
	}
	if c.canary.started == nil {
		c.canary.started = map[int64]bool{}
	}
	c.canary.started[w.ID] = true
	if err := c.applyFirstStep(ctx, w); err != nil {
		w.State, w.Detail, w.Updated = WalkAborted, "first step not applied: "+err.Error(), c.Now()
		if serr := c.store.SaveCanaryWalk(ctx, w); serr != nil {
			return nil, errors.Join(err, serr)
		}
		return nil, err
	}
	c.canary.nudge()
	return w, nil
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// applyFirstStep moves the routes to the first weight and marks the walk
// applied with a fresh baseline.
func (c *Controller) applyFirstStep(ctx context.Context, w *CanaryWalk) error {
	reason := fmt.Sprintf("canary walk #%d started: steps %s every %s", w.ID, stepsText(w.Steps), time.Duration(w.Interval))
	if w.Reason != "" {
		reason += ": " + w.Reason
	}
	if _, err := c.Transition(ctx, TransitionRequest{Target: w.Target, To: ModeCanary, Weight: w.Steps[0],
		Actor: w.Actor, Reason: reason}); err != nil {
		return err
	}
	now := c.Now()
	w.Applied, w.Step, w.Weight, w.StepStarted, w.Updated = true, 0, w.Steps[0], now, now
	w.Baseline = c.baselines(w.Routes)
	return c.store.SaveCanaryWalk(ctx, w)
}

func stepsText(steps []int) string {
	s := make([]string, len(steps))
	for i, w := range steps {
		s[i] = fmt.Sprintf("%d%%", w)
	}
	return strings.Join(s, ",")
}

// baselines snapshots the routes' counters.
func (c *Controller) baselines(routes []string) map[string]walkBaseline {
	out := make(map[string]walkBaseline, len(routes))
	for _, name := range routes {
		r := c.Route(name)
		if r == nil {
			continue
		}
		b := walkBaseline{Legacy: r.Legacy.Snapshot(), Candidate: r.Candidate.Snapshot()}
		b.Answered, b.Matched = c.comparedCounts(name)
		out[name] = b
	}
	return out
}

// CanaryWalks lists walks over target ("" = all), newest first.
func (c *Controller) CanaryWalks(ctx context.Context, target string) ([]CanaryWalk, error) {
	walks, err := c.store.CanaryWalks(ctx, target, false)
	if err != nil {
		return nil, err
	}
	if target != "" {
		// A route's walks include those over its service.
		c.mu.Lock()
		routes, rerr := c.resolve(target)
		c.mu.Unlock()
		if rerr == nil {
			all, err := c.store.CanaryWalks(ctx, "", false)
			if err != nil {
				return nil, err
			}
			names := make([]string, len(routes))
			for i, r := range routes {
				names[i] = r.Name
			}
			walks = walks[:0]
			for _, w := range all {
				if w.Target == target || overlaps(w.Routes, names) {
					walks = append(walks, w)
				}
			}
		}
	}
	return walks, nil
}

// RunCanaryWalker drives stored walks until ctx ends: first it reconciles
// every running walk with the routes' stored state (a proxy killed
// mid-walk resumes deterministically), then it analyses each step when its
// interval is over. RunFlusher starts it; tests may run it directly.
func (c *Controller) RunCanaryWalker(ctx context.Context) {
	c.canary.init()
	// Replicas sharing a store take turns: one walks, the others wait to
	// take over.
	for ctx.Err() == nil {
		lead, release := c.store.Lead(ctx, c.Logger)
		if lead == nil {
			return
		}
		c.walkCanaries(lead)
		release()
	}
}

// walkCanaries resumes the stored walks and advances them until ctx ends.
func (c *Controller) walkCanaries(ctx context.Context) {
	c.canary.mu.Lock()
	if err := c.reconcileWalks(ctx); err != nil && ctx.Err() == nil {
		c.Logger.Error("resume canary walks", "err", err)
	}
	c.canary.mu.Unlock()
	for {
		wait := c.walkPass(ctx)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.canary.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// reconcileWalks compares every running walk with where its routes are.
func (c *Controller) reconcileWalks(ctx context.Context) error {
	walks, err := c.store.CanaryWalks(ctx, "", true)
	if err != nil {
		return err
	}
	for i := range walks {
		w := &walks[i]
		if w.State != WalkRunning || c.canary.started[w.ID] {
			continue
		}
		if err := c.reconcileWalk(ctx, w); err != nil {
			c.Logger.Error("resume canary walk", "walk", w.ID, "target", w.Target, "err", err)
		}
	}
	return nil
}

// reconcileWalk decides, from stored facts only, what a running walk found
// after a restart is: at its step (resume, with a fresh window because
// counters since the last flush are gone), one step further (the
// transition committed but the walk was not saved: adopt it), never
// applied (apply it now), cut over at its end (completed), back on legacy
// (rolled back) or elsewhere (aborted).
func (c *Controller) reconcileWalk(ctx context.Context, w *CanaryWalk) error {
	now := c.Now()
	at := func(m Mode, weight int) bool {
		for _, name := range w.Routes {
			r := c.Route(name)
			if r == nil {
				return false
			}
			st := r.State()
			if st.Mode != m || (m == ModeCanary && st.Weight != weight) {
				return false
			}
		}
		return true
	}
	note := CanaryStepResult{At: now, Step: w.Step, Weight: w.Weight, Verdict: "resumed"}
	switch {
	case !w.Applied && c.atStart(w):
		note.Note = "proxy restarted before the first step was applied; applying it now"
		w.History = append(w.History, note)
		return c.applyFirstStep(ctx, w)
	case at(ModeCanary, w.Weight):
		w.Applied = true
		note.Note = "proxy restarted; step resumed with a fresh observation window"
	case w.Step+1 < len(w.Steps) && at(ModeCanary, w.Steps[w.Step+1]):
		w.Step++
		w.Weight = w.Steps[w.Step]
		note.Step, note.Weight = w.Step, w.Weight
		note.Note = "proxy restarted after the step's transition was committed; step adopted with a fresh observation window"
	case w.Steps[len(w.Steps)-1] == 100 && at(ModeCutover, 0):
		w.State, w.Detail = WalkCompleted, "found cut over on restart"
		note.Verdict, note.Note = WalkCompleted, w.Detail
	case at(ModeLegacy, 0):
		w.State, w.Detail = WalkRolledBack, "found on legacy on restart (rolled back before the walk could record it)"
		note.Verdict, note.Note = WalkRolledBack, w.Detail
	default:
		w.State, w.Detail = WalkAborted, "on restart the routes were not at the walk's step ("+c.describe(w.Routes)+"); an operator moved them"
		note.Verdict, note.Note = WalkAborted, w.Detail
	}
	w.History = append(w.History, note)
	w.StepStarted, w.Updated, w.Extensions = now, now, 0
	w.Baseline = c.baselines(w.Routes)
	c.Logger.Info("canary walk reconciled", "walk", w.ID, "target", w.Target, "state", w.State, "weight", w.Weight, "note", note.Note)
	return c.store.SaveCanaryWalk(ctx, w)
}

func (c *Controller) atStart(w *CanaryWalk) bool {
	for _, name := range w.Routes {
		r := c.Route(name)
		if r == nil || r.State() != w.StartModes[name] {
			return false
		}
	}
	return true
}

func (c *Controller) describe(routes []string) string {
	var parts []string
	for _, name := range routes {
		r := c.Route(name)
		if r == nil {
			parts = append(parts, fmt.Sprintf("%s: not in the config", name))
			continue
		}
		st := r.State()
		if st.Mode == ModeCanary {
			parts = append(parts, fmt.Sprintf("%s: canary %d%%", name, st.Weight))
		} else {
			parts = append(parts, fmt.Sprintf("%s: %s", name, st.Mode))
		}
	}
	return strings.Join(parts, "; ")
}

// walkPass is one pass of the walker over the stored walks: it advances
// the running walks whose step is due, then watches the routes in canary
// that no running walk holds, and returns how long to sleep before the
// next step is due.
func (c *Controller) walkPass(ctx context.Context) time.Duration {
	const idle = time.Second
	c.canary.mu.Lock()
	defer c.canary.mu.Unlock()
	walks, err := c.store.CanaryWalks(ctx, "", true)
	if err != nil {
		if ctx.Err() == nil {
			c.Logger.Warn("read canary walks", "err", err)
		}
		return idle
	}
	wait := c.advanceWalks(ctx, walks, idle)
	c.watchCanaries(ctx, walks)
	return wait
}

// advanceWalks analyses every running walk whose step is due and returns
// how long to sleep (at most idle) before the next one is. Walks are
// updated in place.
func (c *Controller) advanceWalks(ctx context.Context, walks []CanaryWalk, idle time.Duration) time.Duration {
	wait := idle
	for i := range walks {
		w := &walks[i]
		if w.State != WalkRunning || !w.Applied {
			continue
		}
		due := w.StepStarted.Add(time.Duration(w.Interval))
		if now := c.Now(); now.Before(due) {
			wait = min(wait, due.Sub(now))
			continue
		}
		if err := c.advanceWalk(ctx, w); err != nil && ctx.Err() == nil {
			c.Logger.Error("canary walk step", "walk", w.ID, "target", w.Target, "err", err)
		}
		if w.State == WalkRunning {
			wait = min(wait, time.Duration(w.Interval))
		}
	}
	return max(wait, time.Millisecond)
}

// advanceWalk analyses a due step and acts on the verdict: roll back on
// failure, extend (then pause) when inconclusive, else go to the next
// step, and after the last one cut over through the gate.
func (c *Controller) advanceWalk(ctx context.Context, w *CanaryWalk) error {
	now := c.Now()
	for _, name := range w.Routes {
		r := c.Route(name)
		if r == nil || r.State() != (RouteState{Mode: ModeCanary, Weight: w.Weight}) {
			w.State, w.Updated = WalkAborted, now
			w.Detail = fmt.Sprintf("routes left step %d%% (%s); an operator moved them", w.Weight, c.describe(w.Routes))
			w.History = append(w.History, CanaryStepResult{At: now, Step: w.Step, Weight: w.Weight, Verdict: WalkAborted, Note: w.Detail})
			return c.store.SaveCanaryWalk(ctx, w)
		}
	}
	res := c.analyseStep(w)
	res.At = now
	switch res.Verdict {
	case VerdictFail:
		reason := fmt.Sprintf("canary walk #%d: step %d%% failed: %s", w.ID, w.Weight, failedText(res.Criteria))
		_, err := c.Transition(ctx, TransitionRequest{Target: w.Target, To: ModeLegacy, Actor: CanaryActor,
			Reason: reason, Evidence: res.evidence()})
		if err != nil {
			return fmt.Errorf("roll back %s: %w", w.Target, err)
		}
		w.State, w.Detail = WalkRolledBack, reason
		c.Logger.Warn("canary step failed; rolled back to legacy", "walk", w.ID, "target", w.Target, "weight", w.Weight, "why", failedText(res.Criteria))
	case VerdictInconclusive:
		w.Extensions++
		g := c.walkGate(w)
		if w.Extensions > g.canaryMaxExtensions() {
			w.State = WalkPaused
			w.Detail = fmt.Sprintf("step %d%% stayed inconclusive after %d extensions (%s); holding the weight — start a new walk, cut over or roll back",
				w.Weight, w.Extensions-1, inconclusiveText(res.Criteria))
			res.Note = w.Detail
		} else {
			// The window keeps its baseline, so the extension adds traffic
			// to what the step already saw.
			res.Note = fmt.Sprintf("too little evidence; step extended (%d of %d)", w.Extensions, g.canaryMaxExtensions())
			w.StepStarted = now
		}
	default:
		if w.Step+1 < len(w.Steps) {
			next := w.Steps[w.Step+1]
			reason := fmt.Sprintf("canary walk #%d: step %d%% passed (%s); next %d%%", w.ID, w.Weight, passText(res), next)
			_, err := c.Transition(ctx, TransitionRequest{Target: w.Target, To: ModeCanary, Weight: next,
				ExpectMode: ModeCanary, ExpectWeight: w.Weight, Actor: CanaryActor, Reason: reason, Evidence: res.evidence()})
			var conflict *ConflictError
			if errors.As(err, &conflict) {
				w.State, w.Detail = WalkAborted, conflict.Msg
				break
			}
			if err != nil {
				return fmt.Errorf("advance %s to %d%%: %w", w.Target, next, err)
			}
			w.Step++
			w.Weight = next
			w.Extensions = 0
			w.StepStarted = c.Now()
			w.Baseline = c.baselines(w.Routes)
			break
		}
		if w.Weight < 100 {
			w.State, w.Detail = WalkCompleted, fmt.Sprintf("last step %d%% passed; holding it (steps did not reach 100%%)", w.Weight)
			break
		}
		reason := fmt.Sprintf("canary walk #%d reached 100%% (%s); cutover through the gate", w.ID, passText(res))
		_, err := c.Transition(ctx, TransitionRequest{Target: w.Target, To: ModeCutover, ExpectMode: ModeCanary,
			ExpectWeight: 100, Actor: CanaryActor, Reason: reason})
		var gateErr *GateError
		var conflict *ConflictError
		switch {
		case errors.As(err, &gateErr):
			w.State, w.Detail = WalkPaused, "reached 100% but the cutover gate is not met: "+gateErr.Error()
		case errors.As(err, &conflict):
			w.State, w.Detail = WalkAborted, conflict.Msg
		case err != nil:
			return fmt.Errorf("cut over %s: %w", w.Target, err)
		default:
			w.State, w.Detail = WalkCompleted, "cut over after the last step"
		}
	}
	w.History = append(w.History, res)
	w.Updated = c.Now()
	return c.store.SaveCanaryWalk(ctx, w)
}

// watchCanaries applies the walker's regression watch to every route in
// canary that no running walk holds, however it got there: the route's
// traffic since its window began is analysed as a walk step is
// (analyseStep, with the route's gate) on each pass of the walker, about
// once a second. A failed verdict rolls the route back to legacy — at the
// end of the window, or at once when the candidate's errors alone already
// fail the step with at least the step's minimum of failed requests (a
// candidate failing every request is back on legacy after that many, not
// after a window). A window that passed starts a new one; an inconclusive
// one keeps growing.
//
// walks are the stored walks as advanceWalks left them; c.canary.mu is held.
func (c *Controller) watchCanaries(ctx context.Context, walks []CanaryWalk) {
	held := map[string]bool{}
	for _, w := range walks {
		if w.State == WalkRunning {
			for _, name := range w.Routes {
				held[name] = true
			}
		}
	}
	if c.canary.watch == nil {
		c.canary.watch = map[string]*canaryWatch{}
	}
	window := c.canary.window
	if window <= 0 {
		window = DefaultCanaryWatchWindow
	}
	now := c.Now()
	watched := map[string]bool{}
	for _, r := range c.Routes() {
		st := r.State()
		if st.Mode != ModeCanary || held[r.Name] {
			continue
		}
		watched[r.Name] = true
		wt := c.canary.watch[r.Name]
		if wt == nil || wt.weight != st.Weight {
			c.canary.watch[r.Name] = &canaryWatch{weight: st.Weight, started: now, base: c.baselines([]string{r.Name})[r.Name]}
			continue
		}
		step := &CanaryWalk{Target: r.Name, Routes: []string{r.Name}, Weight: st.Weight,
			Baseline: map[string]walkBaseline{r.Name: wt.base}}
		res := c.analyseStep(step)
		res.At = now
		due := now.Sub(wt.started) >= window
		switch {
		case res.Verdict == VerdictFail && (due || errorsFail(res, c.walkGate(step).canaryMinRequests())):
			reason := fmt.Sprintf("canary watch: %s at %d%% failed: %s", r.Name, st.Weight, failedText(res.Criteria))
			_, err := c.Transition(ctx, TransitionRequest{Target: r.Name, To: ModeLegacy, ExpectMode: ModeCanary, ExpectWeight: st.Weight,
				Actor: CanaryWatchActor, Reason: reason, Evidence: res.evidence()})
			var conflict *ConflictError
			switch {
			case errors.As(err, &conflict):
				// Someone moved the route meanwhile; the next pass sees where.
			case err != nil:
				if ctx.Err() == nil {
					c.Logger.Error("canary watch: roll back", "route", r.Name, "err", err)
				}
				continue
			default:
				c.Logger.Warn("canary regression; rolled back to legacy", "route", r.Name, "weight", st.Weight, "why", failedText(res.Criteria))
			}
			delete(c.canary.watch, r.Name)
		case due && res.Verdict == VerdictPass:
			wt.started, wt.base = now, c.baselines([]string{r.Name})[r.Name]
		}
	}
	for name := range c.canary.watch {
		if !watched[name] {
			delete(c.canary.watch, name)
		}
	}
}

// errorsFail reports whether a step fails on its candidate errors alone,
// with at least minReq failed requests: not a blip of a few errors early
// in the window, which the rest of it would dilute.
func errorsFail(res CanaryStepResult, minReq int64) bool {
	if res.CandidateErrors < minReq {
		return false
	}
	for _, cr := range res.Criteria {
		if cr.Name == "candidate errors" {
			return !cr.Pass && !cr.Inconclusive
		}
	}
	return false
}

// evidence is a step's verdict as a transition's audit evidence.
func (res *CanaryStepResult) evidence() json.RawMessage {
	b, _ := json.Marshal(GateSnapshot{Verdict: res.Verdict, To: ModeCanary, Criteria: res.Criteria, Canary: res})
	return b
}

// walkGate is the gate that sets a walk's thresholds: the target's.
func (c *Controller) walkGate(w *CanaryWalk) *GateConfig {
	cfg := c.Config()
	if cfg == nil || len(w.Routes) == 0 {
		return nil
	}
	svc := cfg.Services[cfg.ServiceOf(w.Routes[0])]
	if svc == nil {
		return nil
	}
	if len(w.Routes) == 1 {
		return svc.Gate.For(w.Routes[0])
	}
	return svc.Gate.For("")
}

// analyseStep compares the candidate's live figures over the step's
// window with legacy's: error rate against the ceiling, p99 against
// legacy's, and, with reverse shadow, the match ratio of the step's
// comparisons against the gate's minMatch.
func (c *Controller) analyseStep(w *CanaryWalk) CanaryStepResult {
	g := c.walkGate(w)
	res := CanaryStepResult{Step: w.Step, Weight: w.Weight}
	var candD, legD, legAll SideSnapshot
	var compared, matched uint64
	for _, name := range w.Routes {
		r := c.Route(name)
		if r == nil {
			continue
		}
		base := w.Baseline[name]
		leg, cand := r.Legacy.Snapshot(), r.Candidate.Snapshot()
		candD = addSnap(candD, subSnap(cand, base.Candidate))
		legD = addSnap(legD, subSnap(leg, base.Legacy))
		legAll = addSnap(legAll, leg)
		// Counters restored after a restart may be lower than a stale
		// baseline; such a route adds nothing to the window.
		if answered, m := c.comparedCounts(name); answered >= base.Answered && m >= base.Matched {
			compared += answered - base.Answered
			matched += m - base.Matched
		}
	}
	res.CandidateRequests, res.CandidateErrors = candD.Requests, candD.Errors
	res.LegacyRequests, res.LegacyErrors = legD.Requests, legD.Errors
	res.Compared, res.Matched = compared, matched
	minReq := g.canaryMinRequests()
	thin := candD.Requests < minReq
	// traffic
	want := fmt.Sprintf("≥ %d candidate requests", minReq)
	got := fmt.Sprintf("%d", candD.Requests)
	if thin {
		res.Criteria = append(res.Criteria, miss("step traffic", want, got, signed(candD.Requests-minReq), true))
	} else {
		res.Criteria = append(res.Criteria, pass("step traffic", want, got))
	}
	legRef, legWhat := legacyReference(legD, legAll, minReq)
	res.Criteria = append(res.Criteria, errorCriterion("candidate errors", candD, legRef, legWhat, g.canaryMaxErrorRate(), minReq))
	maxRatio := DefaultCanaryMaxP99Ratio
	if g != nil && g.MaxP99Ratio > 0 {
		maxRatio = g.MaxP99Ratio
	}
	res.CandidateP99, res.LegacyP99 = shadow.Millis(candD.Quantile(0.99)), shadow.Millis(legRef.Quantile(0.99))
	qName := "p99"
	if candD.Requests < canaryP99MinRequests {
		qName = "p50"
	}
	res.Criteria = append(res.Criteria, latencyCriterion(qName+" ratio", "latency ratio", candD, legRef, legWhat, maxRatio, thin))
	// match ratio over the step's new comparisons: with reverse shadow the
	// candidate's answers are compared with legacy's, and the step needs
	// as many comparisons as it needs requests before it is judged on them.
	// (Without it, the only comparisons are shadow copies still queued
	// when the walk began; they say nothing about the step.)
	if g != nil && g.MinMatch != nil && c.walkReverseShadow(w) {
		minMatch := float64(*g.MinMatch)
		want = fmt.Sprintf("≥ %s over ≥ %d compared", FormatPercent(minMatch), minReq)
		if compared == 0 {
			res.Criteria = append(res.Criteria, miss("match ratio", want, "nothing compared this step", signed(-minReq), true))
		} else {
			ratio := float64(matched) / float64(compared)
			got = fmt.Sprintf("%s (%d of %d compared this step)", FormatPercent(ratio), matched, compared)
			switch {
			case int64(compared) < minReq:
				res.Criteria = append(res.Criteria, miss("match ratio", want, got, signed(int64(compared)-minReq), true))
			case ratio >= minMatch:
				res.Criteria = append(res.Criteria, pass("match ratio", want, got))
			default:
				res.Criteria = append(res.Criteria, miss("match ratio", want, got, points(ratio-minMatch), false))
			}
		}
	}
	res.Verdict = verdictOf(res.Criteria)
	return res
}

// comparedCounts reads a route's comparison counters from the evidence:
// compared (Matches + Mismatches) and Matches. Noise learned later does
// not move them, so a step's delta is exactly the step's comparisons.
func (c *Controller) comparedCounts(route string) (compared, matched uint64) {
	if c.Shadow == nil {
		return 0, 0
	}
	s, ok := c.shadowView().Summary(route)
	if !ok {
		return 0, 0
	}
	return s.Matches + s.Mismatches, s.Matches
}

// walkReverseShadow reports whether any of the walk's routes belongs to a
// service with reverse shadow on, so its candidate answers are compared.
func (c *Controller) walkReverseShadow(w *CanaryWalk) bool {
	cfg := c.Config()
	if cfg == nil {
		return false
	}
	for _, name := range w.Routes {
		if svc := cfg.Services[cfg.ServiceOf(name)]; svc != nil && svc.ReverseShadow {
			return true
		}
	}
	return false
}

func subSnap(a, b SideSnapshot) SideSnapshot {
	out := SideSnapshot{Requests: a.Requests - b.Requests, Errors: a.Errors - b.Errors, SumNanos: a.SumNanos - b.SumNanos,
		Buckets: make([]int64, len(a.Buckets))}
	for i := range a.Buckets {
		out.Buckets[i] = a.Buckets[i]
		if i < len(b.Buckets) {
			out.Buckets[i] -= b.Buckets[i]
		}
	}
	// Counters restored after a restart may be lower than a stale
	// baseline; a negative window means "unknown", treated as empty.
	if out.Requests < 0 || out.Errors < 0 {
		return SideSnapshot{Buckets: make([]int64, len(a.Buckets))}
	}
	for i := range out.Buckets {
		if out.Buckets[i] < 0 {
			out.Buckets[i] = 0
		}
	}
	return out
}

func addSnap(a, b SideSnapshot) SideSnapshot {
	n := max(len(a.Buckets), len(b.Buckets))
	out := SideSnapshot{Requests: a.Requests + b.Requests, Errors: a.Errors + b.Errors, SumNanos: a.SumNanos + b.SumNanos,
		Buckets: make([]int64, n)}
	for i := 0; i < n; i++ {
		if i < len(a.Buckets) {
			out.Buckets[i] += a.Buckets[i]
		}
		if i < len(b.Buckets) {
			out.Buckets[i] += b.Buckets[i]
		}
	}
	return out
}

func failedText(crit []Criterion) string {
	var parts []string
	for _, c := range crit {
		if !c.Pass && !c.Inconclusive {
			parts = append(parts, fmt.Sprintf("%s %s, want %s", c.Name, c.Got, c.Want))
		}
	}
	return strings.Join(parts, "; ")
}

func inconclusiveText(crit []Criterion) string {
	var parts []string
	for _, c := range crit {
		if !c.Pass && c.Inconclusive {
			parts = append(parts, fmt.Sprintf("%s %s, want %s", c.Name, c.Got, c.Want))
		}
	}
	return strings.Join(parts, "; ")
}

func passText(res CanaryStepResult) string {
	return fmt.Sprintf("%d candidate requests, %d errors, p99 %.2fms vs legacy %.2fms",
		res.CandidateRequests, res.CandidateErrors, res.CandidateP99, res.LegacyP99)
}

// canarySchema is the walks table; OpenStore creates it with the rest.
const canarySchema = `
CREATE TABLE IF NOT EXISTS canary_walks (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	target  TEXT NOT NULL,
	state   TEXT NOT NULL,
	data    TEXT NOT NULL,
	updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS canary_walks_state ON canary_walks(state, id);
`

// InsertCanaryWalk records a new walk and fills in its ID.
func (s *Store) InsertCanaryWalk(ctx context.Context, w *CanaryWalk) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record canary walk: %w", err)
	}
	defer tx.Rollback()
	if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO canary_walks(target, state, data, updated) VALUES(?,?,?,?) RETURNING id`),
		w.Target, w.State, "{}", stamp(w.Updated)).Scan(&w.ID); err != nil {
		return fmt.Errorf("record canary walk: %w", err)
	}
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("record canary walk: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE canary_walks SET data = ? WHERE id = ?`), string(data), w.ID); err != nil {
		return fmt.Errorf("record canary walk: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record canary walk: %w", err)
	}
	return nil
}

// SaveCanaryWalk stores a walk's new state (durably, before it acts on it
// further).
func (s *Store) SaveCanaryWalk(ctx context.Context, w *CanaryWalk) error {
	data, err := json.Marshal(w)
	if err != nil {
		return fmt.Errorf("save canary walk #%d: %w", w.ID, err)
	}
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE canary_walks SET state = ?, data = ?, updated = ? WHERE id = ?`),
		w.State, string(data), stamp(w.Updated), w.ID); err != nil {
		return fmt.Errorf("save canary walk #%d: %w", w.ID, err)
	}
	return nil
}

// CanaryWalks reads walks over target ("" = all), newest first; active
// keeps only running and paused ones.
func (s *Store) CanaryWalks(ctx context.Context, target string, active bool) ([]CanaryWalk, error) {
	q := `SELECT data FROM canary_walks`
	var where []string
	var args []any
	if target != "" {
		where, args = append(where, "target = ?"), append(args, target)
	}
	if active {
		where = append(where, "state IN ('"+WalkRunning+"', '"+WalkPaused+"')")
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT 200"
	rows, err := s.db.QueryContext(ctx, s.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("read canary walks: %w", err)
	}
	defer rows.Close()
	var out []CanaryWalk
	for rows.Next() {
		var data string
		if err := rows.Scan(&data); err != nil {
			return nil, fmt.Errorf("read canary walks: %w", err)
		}
		var w CanaryWalk
		if err := json.Unmarshal([]byte(data), &w); err != nil {
			return nil, fmt.Errorf("read canary walks: %w", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read canary walks: %w", err)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].ID > out[j].ID })
	return out, nil
}
