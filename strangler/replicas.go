package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// Several proxy replicas share one PostgreSQL store. Each serves from its
// own in-memory route table and never waits on the database; a transition
// committed by any of them is announced, and the others apply it from the
// store (SyncRoutes). When the database is away each goes on serving its
// last table and says so in /healthz and once in the log.

// SyncRoutes applies the route states stored by other processes (another
// replica, or a command against another replica) to the live routes. It
// returns how many routes it moved.
func (c *Controller) SyncRoutes(ctx context.Context) (int, error) {
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		before := c.changes
		c.mu.Unlock()
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		stored, err := c.store.LoadRoutes(lctx)
		cancel()
		c.health.observe(c.Logger, c.store, err)
		if err != nil {
			return 0, err
		}
		c.mu.Lock()
		if c.changes != before {
			// This process moved a route while the read was under way;
			// the read may predate it. The next announcement or poll
			// catches up if this keeps happening.
			c.mu.Unlock()
			if attempt == 3 {
				return 0, nil
			}
			continue
		}
		moved := 0
		for _, name := range c.order {
			r := c.routes[name]
			st, ok := stored[name]
			from := r.State()
			if !ok || st == from {
				continue
			}
			r.state.Store(&st)
			c.metrics.setMode(name, r.Service(), st.Mode)
			c.Logger.Info("route transition from the shared store", "route", name, "service", r.Service(),
				"from", from.Mode, "to", st.Mode, "fromWeight", from.Weight, "toWeight", st.Weight)
			moved++
		}
		if moved > 0 {
			c.changes++
		}
		c.mu.Unlock()
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = c.refreshPeers(pctx)
		cancel()
		c.health.observe(c.Logger, c.store, err)
		return moved, err
	}
}

// WatchStore keeps the live routes in step with a shared store until ctx
// ends: on every announced transition, and every poll in case one was
// missed. On a SQLite store it returns at once.
func (c *Controller) WatchStore(ctx context.Context, poll time.Duration) {
	c.store.WatchRoutes(ctx, poll, c.Logger, func() {
		if _, err := c.SyncRoutes(ctx); err != nil && ctx.Err() == nil {
			c.Logger.Debug("sync route states", "err", err)
		}
	})
}

// StoreHealth is the store part of /healthz.
type StoreHealth struct {
	// Status is "ok" or "unreachable".
	Status string `json:"status"`
	// Since is when the store last became unreachable.
	Since *time.Time `json:"since,omitempty"`
	Error string     `json:"error,omitempty"`
}

// StoreHealth says whether the last store operation succeeded.
func (c *Controller) StoreHealth() StoreHealth { return c.health.get() }

// storeHealth remembers whether the store answered the last time it was
// asked, and logs only the changes, so an outage is one line, not one a
// flush.
type storeHealth struct {
	mu    sync.Mutex
	down  bool
	since time.Time
	err   string
}

func (h *storeHealth) observe(logger *slog.Logger, store *Store, err error) {
	var conflict *ConflictError
	if errors.As(err, &conflict) || errors.Is(err, context.Canceled) {
		return // the store answered
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil && !h.down:
		h.down, h.since, h.err = true, time.Now(), err.Error()
		logger.Error("state store unreachable; serving from the last route table, counters are kept in memory until it is back",
			"store", store.Path(), "err", err)
	case err != nil:
		h.err = err.Error()
	case h.down:
		logger.Info("state store reachable again", "store", store.Path(), "down", time.Since(h.since).Round(time.Millisecond).String())
		h.down, h.err = false, ""
	}
}

func (h *storeHealth) get() StoreHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.down {
		return StoreHealth{Status: "ok"}
	}
	since := h.since
	return StoreHealth{Status: "unreachable", Since: &since, Error: h.err}
}

// peerTotals are what the other replicas sharing the store recorded for a
// route, as of their last flush: gates and status count them with this
// process's own.
type peerTotals struct {
	Legacy, Candidate SideSnapshot
	Mirror            MirrorStatus
	Evidence          *shadow.Evidence
}

// refreshPeers reads the other replicas' counters and evidence.
func (c *Controller) refreshPeers(ctx context.Context) error {
	if !c.store.Shared() {
		return nil
	}
	counters, err := c.store.peerCounters(ctx)
	if err != nil {
		return err
	}
	evidence, err := c.store.peerEvidence(ctx)
	if err != nil {
		return err
	}
	peers := map[string]*peerTotals{}
	peer := func(route string) *peerTotals {
		if peers[route] == nil {
			peers[route] = &peerTotals{}
		}
		return peers[route]
	}
	for route, kinds := range counters {
		for kind, data := range kinds {
			switch kind {
			case string(SideLegacy):
				_ = json.Unmarshal(data, &peer(route).Legacy)
			case string(SideCandidate):
				_ = json.Unmarshal(data, &peer(route).Candidate)
			case "mirror":
				_ = json.Unmarshal(data, &peer(route).Mirror)
			}
		}
	}
	for route, data := range evidence {
		ev := new(shadow.Evidence)
		if err := json.Unmarshal(data, ev); err != nil {
			c.Logger.Warn("another replica's shadow evidence is unreadable; counting without it", "route", route, "err", err)
			continue
		}
		peer(route).Evidence = ev
	}
	c.peersMu.Lock()
	c.peers = peers
	c.peersMu.Unlock()
	return nil
}

func (c *Controller) peer(route string) *peerTotals {
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	return c.peers[route]
}

// status is a route's status over every replica.
func (c *Controller) status(r *Route) RouteStatus {
	return r.status(c.shadowView(), c.peer(r.Name))
}

// shadowView is the comparison engine with the other replicas' evidence
// added, for status and gates. Flushing and restoring use c.Shadow, this
// process's own.
func (c *Controller) shadowView() ShadowEngine {
	if c.Shadow == nil {
		return nil
	}
	c.peersMu.Lock()
	defer c.peersMu.Unlock()
	if len(c.peers) == 0 {
		return c.Shadow
	}
	return fleetShadow{local: c.Shadow, peers: c.peers}
}

// fleetShadow adds other replicas' evidence to the local engine's.
type fleetShadow struct {
	local ShadowEngine
	peers map[string]*peerTotals
}

func (f fleetShadow) Evidence(route string) *shadow.Evidence {
	ev := f.local.Evidence(route)
	p := f.peers[route]
	if p == nil || p.Evidence == nil {
		return ev
	}
	if ev == nil {
		return p.Evidence.Clone()
	}
	ev.Merge(p.Evidence)
	return ev
}

func (f fleetShadow) Summary(route string) (shadow.Summary, bool) {
	ev := f.Evidence(route)
	if ev == nil {
		return shadow.Summary{}, false
	}
	return ev.Summary(f.local.Noise(route)), true
}

func (f fleetShadow) Noise(route string) *shadow.Noise { return f.local.Noise(route) }

func (f fleetShadow) Restore(route, service string, ev *shadow.Evidence, noise *shadow.Noise) {
	f.local.Restore(route, service, ev, noise)
}
