package shadow

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// maxYield is the longest a copy waits for a gap in client traffic
	// before it is sent anyway, so that a proxy that is never idle still
	// compares.
	maxYield = 10 * time.Millisecond
	// settle is how long the proxy must have been idle before a copy goes.
	// A copy sent the moment the last response is flushed competes with
	// that client for the CPU while it reads its answer, which costs a
	// lightly loaded proxy a fifth of its client latency; settling wins
	// part of that back. A millisecond wins more, but then copies pile up
	// behind a moderately busy proxy and are dropped (BENCHMARKS.md).
	settle = 150 * time.Microsecond
	// computeSlice is how long an in-process candidate computing a copy
	// runs before it waits for a gap again (Yielder): with maxYield, a
	// candidate that never stops takes at most about a tenth of a core
	// from a proxy whose clients keep it busy.
	computeSlice = time.Millisecond
)

// epoch anchors the monotonic timestamps Traffic keeps in an int64.
var epoch = time.Now()

// Traffic counts the client requests a proxy is serving. The Mirror whose
// Traffic it is (Mirror.Traffic) sends each copy in a gap between client
// requests, once the gap has lasted settle, or after maxYield: a copy's
// round trip to the candidate is what costs the clients of a busy host (it
// overlaps their own round trips to legacy), while the comparison
// afterwards costs them next to nothing. The proxy calls Begin and End
// around every client request.
type Traffic struct {
	inFlight atomic.Int64
	waiters  atomic.Int64
	lastEnd  atomic.Int64 // when a client request last ended, in nanoseconds since epoch

	mu   sync.Mutex
	idle chan struct{} // closed when inFlight next drops to zero; nil when nobody waits
}

// Begin counts a client request that has started.
func (t *Traffic) Begin() { t.inFlight.Add(1) }

// End counts a client request that has been answered, waking copies that
// wait for a gap when it was the last one.
func (t *Traffic) End() {
	// Stamp before the count drops, so a copy that sees no request in
	// flight also sees when the last one ended.
	t.lastEnd.Store(int64(time.Since(epoch)))
	if t.inFlight.Add(-1) != 0 || t.waiters.Load() == 0 {
		return
	}
	t.mu.Lock()
	if t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
	t.mu.Unlock()
}

// waitGap returns once no client request has been in flight for settle,
// or after max.
func (t *Traffic) waitGap(max time.Duration) {
	if t == nil || t.settled() {
		return
	}
	deadline := time.Now().Add(max)
	for !t.settled() {
		left := time.Until(deadline)
		switch {
		case left <= 0:
			return
		case t.inFlight.Load() > 0:
			if !t.waitIdle(left) {
				return
			}
		default:
			sleepBriefly(min(settle-t.quiet(), left))
		}
	}
}

// trafficKey carries the Mirror's Traffic in the context of a copy's call.
type trafficKey struct{}

// Yielder returns, for the context of a shadow copy's call, the function
// an in-process candidate (one that computes on the proxy's own cores, as
// proxy/wasm does) calls often while it runs: after each computeSlice of
// work it waits for a gap in client traffic, as the copy did before it was
// sent, so a candidate that loops cannot take the cores from the clients.
// It returns nil for any other context: client requests never wait.
func Yielder(ctx context.Context) func() {
	t, _ := ctx.Value(trafficKey{}).(*Traffic)
	if t == nil {
		return nil
	}
	yielded, _ := ctx.Value(yieldedKey{}).(*atomic.Int64)
	last := time.Now()
	return func() {
		if time.Since(last) < computeSlice {
			return
		}
		wait := time.Now()
		t.waitGap(maxYield)
		last = time.Now()
		if yielded != nil {
			yielded.Add(int64(last.Sub(wait)))
		}
	}
}

// yieldedKey carries, in a copy's context, the time its candidate spent
// giving way to clients. The wait is the proxy's doing, not the
// candidate's: a client request never waits so, so the copy's latency
// leaves it out, or a busy proxy would fail a faithful candidate on its
// p99 ratio.
type yieldedKey struct{}

// settled reports whether no client request has been in flight for settle.
func (t *Traffic) settled() bool { return t.inFlight.Load() <= 0 && t.quiet() >= settle }

// quiet is the time since a client request last ended.
func (t *Traffic) quiet() time.Duration { return time.Since(epoch) - time.Duration(t.lastEnd.Load()) }

// waitIdle waits until no client request is in flight and reports whether
// that happened within d.
func (t *Traffic) waitIdle(d time.Duration) bool {
	t.waiters.Add(1)
	defer t.waiters.Add(-1)
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	// End may have run between the caller's check and registering as a
	// waiter, without closing anything.
	if t.inFlight.Load() <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-idle:
		return true
	case <-timer.C:
		return false
	}
}
