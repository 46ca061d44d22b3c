package wasm

import (
	"sync"
	"time"

	"github.com/tetratelabs/wazero/experimental"
)

// idleRelease is how long an unused linear-memory buffer is kept for the
// next request before it is dropped (Pool 0). Long enough to bridge the gaps
// of a steady request stream, short enough that an idle route holds nothing
// but compiled code.
const idleRelease = time.Second

// maxPooledBuffers bounds the buffers a pool holds beyond Options.Pool:
// enough for the concurrency one proxy sees on a route, so that a busy
// route does not map and fault in fresh memory per request.
const maxPooledBuffers = 64

// memoryPool recycles linear-memory buffers between requests.
//
// A fresh wazero instance otherwise allocates its memory with make and
// grows it by copying: for a Go guest that is megabytes of fresh pages per
// request whose page faults and GC work cost more than the guest itself.
// Buffers are memory mappings where the platform has them (reserveLinear),
// so those dropped by the pool return their RAM to the system at once.
// A recycled buffer is zeroed before reuse, so every instance still starts
// from exactly the memory a new one would have: isolation is unchanged.
type memoryPool struct {
	budget *MemoryBudget // nil: unlimited; otherwise pooled buffers hold a reservation
	mu     sync.Mutex
	free   []pooledBuffer
	keep   int // buffers kept regardless of idleness (Options.Pool)
	max    int // most buffers held at all
	timer  *time.Timer
	closed bool
}

type pooledBuffer struct {
	buf    []byte // len = bytes the last guest used (dirty), cap = allocation
	mapped bool   // from reserveLinear, to be released with releaseLinear
	charge int64  // bytes of the budget it holds while pooled
	since  time.Time
}

func newMemoryPool(keep int, budget *MemoryBudget) *memoryPool {
	return &memoryPool{keep: keep, max: max(keep, maxPooledBuffers), budget: budget}
}

// bufferCharge is what a pooled buffer occupies: the pages a guest touched
// of a mapping (the rest costs no RAM), the whole allocation of a heap one.
func bufferCharge(b []byte, mapped bool) int64 {
	if mapped {
		return int64(len(b))
	}
	return int64(cap(b))
}

// get returns a buffer of length 0 holding img and zeros elsewhere, or nil
// when none is free. The buffer's reservation goes back to the budget: the
// instance taking it has reserved its whole cap already.
func (p *memoryPool) get(img memImage) (b []byte, mapped bool) {
	p.mu.Lock()
	n := len(p.free)
	if n == 0 {
		p.mu.Unlock()
		return nil, false
	}
	f := p.free[n-1]
	p.free[n-1] = pooledBuffer{}
	p.free = p.free[:n-1]
	p.mu.Unlock()
	p.budget.release(f.charge)
	end := img.end()
	if uint64(cap(f.buf)) < end {
		// A heap buffer too small for the image (mappings span the limit).
		releaseLinear(f.buf, f.mapped)
		return nil, false
	}
	// The image overwrites its own range: zero only the dirty rest.
	dirty := uint64(len(f.buf))
	clear(f.buf[:min(dirty, img.off)])
	if dirty > end {
		clear(f.buf[end:dirty])
	}
	img.writeTo(f.buf)
	return f.buf[:0], f.mapped
}

// put returns a buffer whose first len(b) bytes the guest may have written,
// together with the instance's reservation of reserved bytes: the pool keeps
// what the buffer occupies of it and gives the rest back (all of it when the
// buffer is dropped).
func (p *memoryPool) put(b []byte, mapped bool, reserved int64) {
	charge := min(bufferCharge(b, mapped), reserved)
	if p.budget == nil {
		charge = 0
	}
	p.mu.Lock()
	if cap(b) == 0 || p.closed || len(p.free) >= p.max {
		p.mu.Unlock()
		releaseLinear(b, mapped)
		p.budget.release(reserved)
		return
	}
	p.free = append(p.free, pooledBuffer{buf: b, mapped: mapped, charge: charge, since: time.Now()})
	if len(p.free) > p.keep && p.timer == nil {
		p.timer = time.AfterFunc(idleRelease, p.trim)
	}
	p.mu.Unlock()
	p.budget.release(reserved - charge)
}

// dropIdle releases the buffers beyond the kept ones at once, for an
// instance waiting on the budget (through its backend's dropIdle, after the
// idle instances have left their buffers here), and reports whether it
// freed any.
func (p *memoryPool) dropIdle() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropBefore(time.Now()) > 0
}

// trim drops buffers idle for idleRelease beyond the kept ones, and re-arms
// itself while any droppable buffer remains.
func (p *memoryPool) trim() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	p.dropBefore(time.Now().Add(-idleRelease))
	if len(p.free) > p.keep && !p.closed {
		p.timer = time.AfterFunc(idleRelease, p.trim)
	}
}

// dropBefore releases the buffers pooled at or before cutoff, beyond the
// newest p.keep, gives their reservation back and returns it; p.mu is held.
func (p *memoryPool) dropBefore(cutoff time.Time) (freed int64) {
	kept := p.free[:0]
	for i, f := range p.free {
		// The oldest entries are first; keep the newest p.keep always.
		if !f.since.After(cutoff) && len(p.free)-i > p.keep {
			releaseLinear(f.buf, f.mapped)
			freed += f.charge
			continue
		}
		kept = append(kept, f)
	}
	clear(p.free[len(kept):]) // let the GC have the dropped heap buffers
	p.free = kept
	p.budget.release(freed)
	return freed
}

// held reports the bytes currently parked in the pool.
func (p *memoryPool) held() (buffers int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.free {
		bytes += int64(cap(f.buf))
	}
	return len(p.free), bytes
}

func (p *memoryPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	var freed int64
	for _, f := range p.free {
		releaseLinear(f.buf, f.mapped)
		freed += f.charge
	}
	clear(p.free)
	p.free = nil
	p.budget.release(freed)
}

// linearMemory is one request's guest memory: it enforces the route's cap
// and remembers whether the guest hit it, so the failure is reported as
// KindMemory whatever the guest did next.
//
// Free is deliberately a no-op. wazero calls it when the module closes,
// which for a deadline happens on another goroutine while the guest may
// still be running until its next interruption check; the buffer goes back
// to the pool only after InstantiateModule has returned (see release).
type linearMemory struct {
	pool     *memoryPool
	buf      []byte
	mapped   bool
	limit    uint64
	refused  bool
	peakSize uint64
	live     *counters // nil: growth is not added to the backend's live memory
	// reserved is the instance's reservation of the proxy's memory budget,
	// handed back (to the pool with the buffer, or to the budget) by release.
	reserved int64
	// image is written into the buffer before wazero sees it: the data
	// segments or the snapshot of a pre-initialized module (preinit.go).
	image memImage
}

var _ experimental.LinearMemory = (*linearMemory)(nil)

// Allocate implements experimental.MemoryAllocator for one instance.
//
// The bytes of the image past the length wazero asks for (a snapshot is
// usually larger than the module's initial memory) stay in the buffer for
// the memory.grow that restore makes.
func (m *linearMemory) Allocate(capacity, _ uint64) experimental.LinearMemory {
	if b, mapped := m.pool.get(m.image); b != nil {
		m.buf, m.mapped = b, mapped
		return m
	}
	if b := reserveLinear(m.limit); b != nil {
		m.buf, m.mapped = b, true
	} else {
		m.buf = make([]byte, 0, max(min(capacity, m.limit), m.image.end()))
	}
	m.image.writeTo(m.buf)
	return m
}

// Reallocate implements experimental.LinearMemory. Growth within the
// buffer's capacity is free: the bytes past the old length are zero
// because the buffer was zeroed when taken from the pool.
func (m *linearMemory) Reallocate(size uint64) []byte {
	if size > m.limit {
		m.refused = true
		return nil
	}
	if size > m.peakSize {
		// Linear memory only grows, so the live total moves by the growth.
		if m.live != nil {
			m.live.liveGrew(int64(size - m.peakSize))
		}
		m.peakSize = size
	}
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	// Only a heap buffer gets here (a mapping spans the whole limit): grow
	// geometrically, as append would, but never past the cap.
	newCap := min(max(size, 2*uint64(cap(m.buf))), m.limit)
	nb := make([]byte, size, newCap)
	copy(nb, m.buf)
	releaseLinear(m.buf, m.mapped)
	m.buf, m.mapped = nb, false
	return nb
}

// Free implements experimental.LinearMemory; see the type comment.
func (m *linearMemory) Free() {}

// release hands the buffer back once the guest can no longer run.
func (m *linearMemory) release() {
	if m.live != nil && m.peakSize > 0 {
		m.live.liveGrew(-int64(m.peakSize))
		m.live = nil // counted once, however often release is called
	}
	if m.buf != nil {
		if end := m.image.end(); uint64(len(m.buf)) < end {
			// The image was written past what the instance grew to.
			m.buf = m.buf[:end]
		}
		m.pool.put(m.buf, m.mapped, m.reserved)
		m.buf = nil
	} else {
		m.pool.budget.release(m.reserved)
	}
	m.reserved = 0
}
