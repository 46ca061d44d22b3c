package strangler

import (
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strangler-fig/migrate/shadow"
)

// Side is one of the two implementations behind a route.
type Side string

// The two sides of a route.
const (
	SideLegacy    Side = "legacy"
	SideCandidate Side = "candidate"
)

// latencyBounds are the upper bounds of the in-memory latency histogram:
// 25µs to ~2 minutes in steps of 2^(1/4) (≈19%), so a percentile read from
// it is within one step of the truth.
var latencyBounds = func() []time.Duration {
	var b []time.Duration
	for f := float64(25 * time.Microsecond); f < float64(2*time.Minute); f *= math.Pow(2, 0.25) {
		b = append(b, time.Duration(f))
	}
	return b
}()

// Buckets is the number of latency histogram buckets (the last is overflow).
var Buckets = len(latencyBounds) + 1

// SideStats counts one side of one route. All methods are safe for
// concurrent use and lock-free; the proxy calls Observe on every request.
type SideStats struct {
	requests atomic.Int64
	errors   atomic.Int64
	sumNanos atomic.Int64
	buckets  []atomic.Int64

	promRequests prometheus.Counter
	promErrors   prometheus.Counter
	promLatency  prometheus.Observer
}

func newSideStats() *SideStats { return &SideStats{buckets: make([]atomic.Int64, Buckets)} }

// Observe records one request: how long it took and whether it failed (a
// transport error, timeout or 5xx).
func (s *SideStats) Observe(d time.Duration, failed bool) {
	s.requests.Add(1)
	s.sumNanos.Add(int64(d))
	i := sort.Search(len(latencyBounds), func(i int) bool { return latencyBounds[i] >= d })
	s.buckets[i].Add(1)
	if failed {
		s.errors.Add(1)
	}
	if s.promRequests != nil {
		s.promRequests.Inc()
		s.promLatency.Observe(d.Seconds())
		if failed {
			s.promErrors.Inc()
		}
	}
}

// Snapshot copies the counters.
func (s *SideStats) Snapshot() SideSnapshot {
	snap := SideSnapshot{Requests: s.requests.Load(), Errors: s.errors.Load(),
		SumNanos: s.sumNanos.Load(), Buckets: make([]int64, len(s.buckets))}
	for i := range s.buckets {
		snap.Buckets[i] = s.buckets[i].Load()
	}
	return snap
}

// restore adds persisted counts (on start, before traffic).
func (s *SideStats) restore(snap SideSnapshot) {
	s.requests.Add(snap.Requests)
	s.errors.Add(snap.Errors)
	s.sumNanos.Add(snap.SumNanos)
	for i := 0; i < len(snap.Buckets) && i < len(s.buckets); i++ {
		s.buckets[i].Add(snap.Buckets[i])
	}
}

// SideSnapshot is a point-in-time copy of one side's counters; it is what
// the store persists and what gates and reports read.
type SideSnapshot struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	SumNanos int64   `json:"sumNanos"`
	Buckets  []int64 `json:"buckets"`
}

// Quantile estimates the q-quantile (0..1) latency as the upper bound of
// the bucket that holds it; zero without requests.
func (s SideSnapshot) Quantile(q float64) time.Duration {
	var total int64
	for _, c := range s.Buckets {
		total += c
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range s.Buckets {
		seen += c
		if seen >= rank {
			if i < len(latencyBounds) {
				return latencyBounds[i]
			}
			return latencyBounds[len(latencyBounds)-1]
		}
	}
	return latencyBounds[len(latencyBounds)-1]
}

// ErrorRate is errors / requests (0 without requests).
func (s SideSnapshot) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Latency summarises a side as percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50Millis"`
	P95 float64 `json:"p95Millis"`
	P99 float64 `json:"p99Millis"`
}

// Latency reads the p50, p95 and p99 in milliseconds.
func (s SideSnapshot) Latency() Latency {
	return Latency{P50: shadow.Millis(s.Quantile(0.50)), P95: shadow.Millis(s.Quantile(0.95)), P99: shadow.Millis(s.Quantile(0.99))}
}

// MirrorStats counts copies handed to the other side.
type MirrorStats struct {
	// Submitted copies queued for comparison.
	Submitted atomic.Int64
	// Skipped copies the route's shadow policy left out: writes under
	// `writes: deny`, sampled out, over the rate limit, breaker open (the
	// evidence counts each reason but sampling).
	Skipped atomic.Int64
	// Dropped copies: the route's queue was full.
	Dropped atomic.Int64
	// TooLarge requests or responses over maxBufferedBody, never mirrored.
	TooLarge atomic.Int64

	promDropped  prometheus.Counter
	promTooLarge prometheus.Counter
}

// Drop counts a copy that was not mirrored.
func (m *MirrorStats) Drop(tooLarge bool) {
	if tooLarge {
		m.TooLarge.Add(1)
		if m.promTooLarge != nil {
			m.promTooLarge.Inc()
		}
		return
	}
	m.Dropped.Add(1)
	if m.promDropped != nil {
		m.promDropped.Inc()
	}
}

// add sums two snapshots of the same route's counters: two replicas', or
// this process's and the others'.
func (s SideSnapshot) add(o SideSnapshot) SideSnapshot {
	out := SideSnapshot{Requests: s.Requests + o.Requests, Errors: s.Errors + o.Errors, SumNanos: s.SumNanos + o.SumNanos}
	out.Buckets = make([]int64, max(len(s.Buckets), len(o.Buckets)))
	for i := range out.Buckets {
		if i < len(s.Buckets) {
			out.Buckets[i] += s.Buckets[i]
		}
		if i < len(o.Buckets) {
			out.Buckets[i] += o.Buckets[i]
		}
	}
	return out
}
