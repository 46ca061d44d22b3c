// Package logs keeps the proxy's log readable under faults: every line on
// a request's path names its route, and a message repeated for the same
// route and reason — a candidate failing every request — is written a few
// times per window, then summarised as one line with the count of the
// others, instead of flooding the log at the request rate.
package logs

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

type routeKey struct{}

// WithRoute returns a context carrying the route a request matched; lines
// logged with it (the *Context methods of slog.Logger) get a route
// attribute when they have none.
func WithRoute(ctx context.Context, route string) context.Context {
	return context.WithValue(ctx, routeKey{}, route)
}

// Route returns the route stored by WithRoute, or "".
func Route(ctx context.Context) string {
	s, _ := ctx.Value(routeKey{}).(string)
	return s
}

// Defaults of LimitOptions.
const (
	DefaultWindow = 10 * time.Second
	DefaultBurst  = 5
	// maxKeys bounds the distinct (route, message, reason) triples tracked
	// in one window; lines beyond it pass unlimited rather than grow the
	// table without bound.
	maxKeys = 4096
)

// SuppressedMessage is the message of the summary line.
const SuppressedMessage = "suppressed similar log lines"

// LimitOptions tune NewLimiter.
type LimitOptions struct {
	// Window is the period over which Burst lines of one kind are written.
	// Default DefaultWindow.
	Window time.Duration
	// Burst is how many lines of one kind a window lets through. Default
	// DefaultBurst.
	Burst int
	// Exempt are messages never limited (the sampled access log, whose
	// rate the operator sets).
	Exempt []string
}

// NewLimiter wraps next: lines are grouped by route (the record's route
// attribute, the logger's, or the context's), message and reason (the kind
// or reason attribute); the first Burst of a group in each window are
// written, the rest counted, and when the window ends one line
// (SuppressedMessage, at the highest level suppressed) says how many of
// which message were left out for that route. Lines without a route
// attribute get the context's route.
func NewLimiter(next slog.Handler, opts LimitOptions) slog.Handler {
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	return &limiter{next: next, st: &limitState{opts: opts, groups: map[groupKey]*group{}}}
}

type limiter struct {
	next  slog.Handler
	st    *limitState
	route string // a route attribute added by With
	group bool   // With/WithGroup opened a group: the record's attrs are nested
}

type limitState struct {
	opts   LimitOptions
	mu     sync.Mutex
	groups map[groupKey]*group
	timer  *time.Timer
}

type groupKey struct{ route, msg, reason string }

type group struct {
	start      time.Time
	written    int
	suppressed int
	level      slog.Level
	next       slog.Handler // the handler of the first suppressed line, for the summary
}

func (h *limiter) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *limiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(attrs)
	if !h.group {
		for _, a := range attrs {
			if a.Key == "route" {
				c.route = a.Value.String()
			}
		}
	}
	return &c
}

func (h *limiter) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	c.group = c.group || name != ""
	return &c
}

func (h *limiter) Handle(ctx context.Context, r slog.Record) error {
	route, reason, hasRoute := h.route, "", h.route != ""
	if !h.group {
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "route":
				route, hasRoute = a.Value.String(), true
			case "kind", "reason":
				if reason == "" {
					reason = a.Value.String()
				}
			}
			return true
		})
	}
	if !hasRoute {
		if cr := Route(ctx); cr != "" {
			route = cr
			r = r.Clone()
			r.AddAttrs(slog.String("route", cr))
		}
	}
	if !slices.Contains(h.st.opts.Exempt, r.Message) && !h.st.allow(groupKey{route, r.Message, reason}, r.Level, r.Time, h.next) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// allow counts one line of group k and says whether it is written.
func (s *limitState) allow(k groupKey, level slog.Level, at time.Time, next slog.Handler) bool {
	if at.IsZero() {
		at = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[k]
	if g == nil || at.Sub(g.start) >= s.opts.Window {
		if g != nil && g.suppressed > 0 {
			s.summarise(k, g) // the timer has not fired yet
		}
		if g == nil && len(s.groups) >= maxKeys {
			return true
		}
		g = &group{start: at}
		s.groups[k] = g
		if s.timer == nil {
			s.timer = time.AfterFunc(s.opts.Window, s.flush)
		}
	}
	if g.written < s.opts.Burst {
		g.written++
		return true
	}
	if g.suppressed == 0 {
		g.level, g.next = level, next
	}
	g.suppressed++
	g.level = max(g.level, level)
	return false
}

// flush writes the summaries of the windows that ended and forgets their
// groups, re-arming itself while any group is left.
func (s *limitState) flush() {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.timer = nil
	for k, g := range s.groups {
		if now.Sub(g.start) < s.opts.Window {
			continue
		}
		if g.suppressed > 0 {
			s.summarise(k, g)
		}
		delete(s.groups, k)
	}
	if len(s.groups) > 0 {
		s.timer = time.AfterFunc(s.opts.Window, s.flush)
	}
}

// summarise writes group k's summary line; s.mu is held, so summaries come
// out in order with the lines they count.
func (s *limitState) summarise(k groupKey, g *group) {
	r := slog.NewRecord(time.Now(), g.level, SuppressedMessage, 0)
	r.AddAttrs(slog.String("route", k.route), slog.String("message", k.msg), slog.Int("suppressed", g.suppressed),
		slog.Duration("window", s.opts.Window))
	if k.reason != "" {
		r.AddAttrs(slog.String("reason", k.reason))
	}
	_ = g.next.Handle(context.Background(), r)
	g.suppressed = 0
}

// Flush writes the summaries still pending, e.g. before the process exits.
func Flush(h slog.Handler) {
	if l, ok := h.(*limiter); ok {
		l.st.mu.Lock()
		for k, g := range l.st.groups {
			if g.suppressed > 0 {
				l.st.summarise(k, g)
			}
		}
		l.st.mu.Unlock()
	}
}
