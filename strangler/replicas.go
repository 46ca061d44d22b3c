package strangler

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"
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
		return moved, nil
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
