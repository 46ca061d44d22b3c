package wasm

import (
	"errors"
	"sync/atomic"
)

// Kinds of guest failure, the values of GuestError.Kind. Each is a distinct
// metric label; Kinds lists them for pre-registering counters.
const (
	// KindTrap: the guest trapped (unreachable, out-of-bounds access, stack
	// overflow, division by zero...) or could not be instantiated. A Rust
	// panic is a trap.
	KindTrap = "trap"
	// KindExit: the guest exited with a non-zero code. A Go panic or fatal
	// error is exit code 2.
	KindExit = "exit"
	// KindDeadline: the request's time budget ran out (Options.Timeout or
	// the request context) and the guest was interrupted.
	KindDeadline = "deadline"
	// KindMemory: the guest tried to grow its linear memory past
	// Options.MaxMemory. Whatever the guest did next (Go exits with "out of
	// memory"), the failure is reported as this kind.
	KindMemory = "memory"
	// KindHeaders: the guest exited cleanly but its stdout did not start
	// with a valid CGI header block.
	KindHeaders = "headers"
	// KindTooLarge: the guest wrote more than Options.MaxResponse to stdout
	// and was interrupted.
	KindTooLarge = "too-large"
	// KindBudget: the guest did not start because the proxy's memory budget
	// for all guests (wasmMemory) stayed full for the whole wait; the proxy
	// answers 503.
	KindBudget = "budget"
)

// Kinds lists every GuestError kind.
var Kinds = []string{KindTrap, KindExit, KindDeadline, KindMemory, KindHeaders, KindTooLarge, KindBudget}

// GuestError is the error RoundTrip returns when the guest, not the
// transport, failed. The proxy turns it into a 5xx for clients and records
// Kind as the candidate error in shadow mode.
type GuestError struct {
	// Kind is one of the Kind* constants.
	Kind string
	// Err says what happened, including the first line of the guest's
	// stderr where it explains the failure.
	Err error
}

// Error implements error.
func (e *GuestError) Error() string {
	if e.Err == nil {
		return "wasm guest " + e.Kind
	}
	return "wasm guest " + e.Kind + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *GuestError) Unwrap() error { return e.Err }

// ErrorKind returns Kind; shadow records it as the candidate error kind
// (shadow.Kinded) without importing this package.
func (e *GuestError) ErrorKind() string { return e.Kind }

// ErrorKind returns the Kind of a *GuestError in err's chain, or "" when
// err is nil or not a guest failure.
func ErrorKind(err error) string {
	var ge *GuestError
	if errors.As(err, &ge) {
		return ge.Kind
	}
	return ""
}

// Stats are a Backend's counters since New. The proxy exports them as
// metrics, one label value per Kind.
type Stats struct {
	// Module is the module file the backend serves.
	Module string `json:"module"`
	// Requests counts RoundTrip calls that ran the guest.
	Requests uint64 `json:"requests"`
	// Errors counts failed requests by Kind; every Kind is present.
	Errors map[string]uint64 `json:"errors"`
	// InFlight is the number of guests running now; PeakInFlight is the
	// most that ever ran at once.
	InFlight     int64 `json:"inFlight"`
	PeakInFlight int64 `json:"peakInFlight"`
	// PeakMemory is the most linear memory one instance has used, in
	// bytes: what a request really needs, for sizing MaxMemory and for
	// estimating memory per concurrent request.
	PeakMemory uint64 `json:"peakMemory"`
	// PeakLiveMemory is the most linear memory the backend's instances held
	// at one moment, in bytes: the high-water mark of the sum over the
	// guests running at once (and, with Options.Reuse, those kept idle). It
	// is what the candidate really cost in memory (compiled code and
	// buffers pooled between requests aside), at most PeakMemory ×
	// PeakInFlight.
	PeakLiveMemory uint64 `json:"peakLiveMemory"`
	// IdleInstances is the number of reusable instances waiting for a
	// request now (Options.Reuse); 0 for a fresh instance per request.
	IdleInstances int `json:"idleInstances"`
	// Reloads counts module files swapped in after a change; ReloadErrors
	// counts changed files that did not compile (the old module kept serving).
	Reloads      uint64 `json:"reloads"`
	ReloadErrors uint64 `json:"reloadErrors"`
}

// counters is the lock-free store behind Stats.
type counters struct {
	requests       atomic.Uint64
	inFlight       atomic.Int64
	peakInFlight   atomic.Int64
	peakMemory     atomic.Uint64
	liveMemory     atomic.Int64 // linear memory of the running guests
	peakLiveMemory atomic.Int64
	reloads        atomic.Uint64
	reloadErrors   atomic.Uint64
	errors         [7]atomic.Uint64 // indexed like Kinds
}

func (c *counters) fail(kind string) {
	for i, k := range Kinds {
		if k == kind {
			c.errors[i].Add(1)
			return
		}
	}
}

// enter counts a guest starting; the caller adds -1 to inFlight when it ends.
func (c *counters) enter() {
	raiseTo(&c.peakInFlight, c.inFlight.Add(1))
}

// liveGrew records that a running guest's linear memory grew by n bytes
// (n < 0: a guest ended and its memory was given back).
func (c *counters) liveGrew(n int64) {
	if live := c.liveMemory.Add(n); n > 0 {
		raiseTo(&c.peakLiveMemory, live)
	}
}

// raiseTo stores v in peak unless peak is already at least v.
func raiseTo(peak *atomic.Int64, v int64) {
	for {
		old := peak.Load()
		if v <= old || peak.CompareAndSwap(old, v) {
			return
		}
	}
}

// observeMemory records one instance's linear-memory high-water mark.
func (c *counters) observeMemory(n uint64) {
	for {
		old := c.peakMemory.Load()
		if n <= old || c.peakMemory.CompareAndSwap(old, n) {
			return
		}
	}
}

func (c *counters) snapshot(module string) Stats {
	s := Stats{
		Module:         module,
		Requests:       c.requests.Load(),
		Errors:         make(map[string]uint64, len(Kinds)),
		InFlight:       c.inFlight.Load(),
		PeakInFlight:   c.peakInFlight.Load(),
		PeakMemory:     c.peakMemory.Load(),
		PeakLiveMemory: uint64(c.peakLiveMemory.Load()),
		Reloads:        c.reloads.Load(),
		ReloadErrors:   c.reloadErrors.Load(),
	}
	for i, k := range Kinds {
		s.Errors[k] = c.errors[i].Load()
	}
	return s
}
