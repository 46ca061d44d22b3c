package wasm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBudgetWait is how long an instance waits for the memory budget
// before its request is refused: long enough to ride out a burst of
// requests each finishing in milliseconds, short enough that a client is
// told "busy" instead of timing out behind a queue.
const DefaultBudgetWait = time.Second

// MemoryBudget is the proxy-wide cap on what Wasm guests may make the
// proxy hold: every instance reserves its worst case (the route's maxMemory
// in whole pages, plus its maxResponse of captured stdout) before it is
// instantiated and gives it back when it is closed. Buffers kept between
// requests (the memory pool) hold a reservation of what they occupy, and
// are dropped when an instance needs the room. So whatever the guests do,
// their memory stays under the limit: a route whose instances cannot get a
// reservation within the wait is refused (KindBudget, a 503), counted, and
// the rest of the proxy is unaffected.
//
// One budget is shared by all backends of a Runtime (Runtime.LimitMemory).
// It is safe for concurrent use.
type MemoryBudget struct {
	limit int64
	wait  time.Duration

	mu        sync.Mutex
	reserved  int64
	peak      int64
	changed   chan struct{} // made by a reservation that waits, closed when bytes are given back
	reclaimer map[reclaimer]struct{}

	refused atomic.Uint64
}

// NewMemoryBudget returns a budget of limit bytes whose reservations wait
// up to wait (DefaultBudgetWait when 0) for room.
func NewMemoryBudget(limit int64, wait time.Duration) (*MemoryBudget, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("wasmMemory %s: the guests' memory budget must be positive", ByteSize(limit))
	}
	if wait <= 0 {
		wait = DefaultBudgetWait
	}
	return &MemoryBudget{limit: limit, wait: wait, reclaimer: map[reclaimer]struct{}{}}, nil
}

// BudgetStats are a budget's figures, for metrics and tests.
type BudgetStats struct {
	// Limit is the budget in bytes (wasmMemory).
	Limit int64 `json:"limit"`
	// Reserved is what live instances and pooled buffers hold now; Peak is
	// the most it ever was.
	Reserved int64 `json:"reserved"`
	Peak     int64 `json:"peak"`
	// Refused counts instances refused because the budget stayed full for
	// the whole wait.
	Refused uint64 `json:"refused"`
}

// Stats returns the budget's figures.
func (b *MemoryBudget) Stats() BudgetStats {
	b.mu.Lock()
	defer b.mu.Unlock()
	return BudgetStats{Limit: b.limit, Reserved: b.reserved, Peak: b.peak, Refused: b.refused.Load()}
}

// reclaimer is what holds reservations for later use — a backend's idle
// reusable instances and its memory pool's buffers — and can give them up
// at once for an instance that would otherwise wait.
type reclaimer interface {
	// dropIdle releases what is idle and reports whether it freed any.
	dropIdle() bool
}

// errBudget is wrapped by the error of a refused reservation.
var errBudget = errors.New("the proxy's Wasm memory budget is full")

// reserve takes n bytes, waiting up to the budget's wait (or until ctx is
// done) for other instances to give some back. Before waiting it asks the
// backends to drop the idle instances and pooled buffers they keep. A nil budget is unlimited.
func (b *MemoryBudget) reserve(ctx context.Context, n int64) error {
	if b == nil {
		return nil
	}
	if n > b.limit {
		b.refused.Add(1)
		return fmt.Errorf("%w: one instance needs %s (maxMemory + maxResponse), more than wasmMemory %s; lower the route's maxMemory or raise wasmMemory",
			errBudget, ByteSize(n), ByteSize(b.limit))
	}
	var timer *time.Timer
	reclaimed := false
	for {
		b.mu.Lock()
		if b.reserved+n <= b.limit {
			b.reserved += n
			b.peak = max(b.peak, b.reserved)
			b.mu.Unlock()
			return nil
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		pools := make([]reclaimer, 0, len(b.reclaimer))
		if !reclaimed {
			for p := range b.reclaimer {
				pools = append(pools, p)
			}
		}
		b.mu.Unlock()
		if !reclaimed {
			reclaimed = true
			dropped := false
			for _, p := range pools {
				dropped = p.dropIdle() || dropped
			}
			if dropped {
				continue
			}
		}
		if timer == nil {
			timer = time.NewTimer(b.wait)
			defer timer.Stop()
		}
		select {
		case <-changed:
		case <-timer.C:
			b.refused.Add(1)
			return fmt.Errorf("%w: %s reserved of wasmMemory %s, and no instance gave back %s within %s; raise wasmMemory or lower concurrency",
				errBudget, ByteSize(b.Stats().Reserved), ByteSize(b.limit), ByteSize(n), b.wait)
		case <-ctx.Done():
			b.refused.Add(1)
			return fmt.Errorf("%w: the request ended while waiting for %s: %w", errBudget, ByteSize(n), context.Cause(ctx))
		}
	}
}

// release gives n bytes back and wakes the waiters, if any: with none,
// a request's release allocates nothing.
func (b *MemoryBudget) release(n int64) {
	if b == nil || n == 0 {
		return
	}
	b.mu.Lock()
	b.reserved -= n
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	b.mu.Unlock()
}

// register lets reserve drop p's idle instances and buffers when the
// budget is short.
func (b *MemoryBudget) register(p reclaimer) {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.reclaimer[p] = struct{}{}
	b.mu.Unlock()
}

func (b *MemoryBudget) unregister(p reclaimer) {
	if b == nil {
		return
	}
	b.mu.Lock()
	delete(b.reclaimer, p)
	b.mu.Unlock()
}

// DefaultMemoryLimit is the budget when wasmMemory is not set: a quarter of
// the machine's RAM, at most 1GiB (1GiB where the RAM is unknown), so that
// guests alone can never take the proxy's host down.
func DefaultMemoryLimit() int64 {
	limit := int64(1 << 30)
	if ram := totalRAM(); ram > 0 {
		limit = min(limit, ram/4)
	}
	return limit
}
