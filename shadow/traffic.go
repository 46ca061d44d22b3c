package shadow

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxYield is the longest a copy waits for a gap in client traffic before
// it is sent anyway, so that a proxy that is never idle still compares.
const maxYield = 10 * time.Millisecond

// Traffic counts the client requests a proxy is serving. The Mirror whose
// Traffic it is (Mirror.Traffic) sends each copy in a gap between client
// requests, or after maxYield: a copy's round trip to the candidate is what
// costs the clients of a busy host (it overlaps their own round trips to
// legacy), while the comparison afterwards costs them next to nothing. The
// proxy calls Begin and End around every client request.
type Traffic struct {
	inFlight atomic.Int64
	waiters  atomic.Int64

	mu   sync.Mutex
	idle chan struct{} // closed when inFlight next drops to zero; nil when nobody waits
}

// Begin counts a client request that has started.
func (t *Traffic) Begin() { t.inFlight.Add(1) }

// End counts a client request that has been answered, waking copies that
// wait for a gap when it was the last one.
func (t *Traffic) End() {
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

// waitGap returns when no client request is in flight, or after max.
func (t *Traffic) waitGap(max time.Duration) {
	if t == nil || t.inFlight.Load() <= 0 {
		return
	}
	t.waiters.Add(1)
	defer t.waiters.Add(-1)
	t.mu.Lock()
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	// End may have run between the first check and registering as a
	// waiter, without closing anything.
	if t.inFlight.Load() <= 0 {
		return
	}
	timer := time.NewTimer(max)
	defer timer.Stop()
	select {
	case <-idle:
	case <-timer.C:
	}
}
