package shadow

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestTrafficGap(t *testing.T) {
	var nilTraffic *Traffic
	nilTraffic.waitGap(time.Hour) // no Traffic: copies never wait

	tr := &Traffic{}
	start := time.Now()
	tr.waitGap(time.Hour)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("waited %s with no client request in flight", d)
	}

	// A copy waits while clients are served and goes when the last ends.
	tr.Begin()
	tr.Begin()
	done := make(chan time.Duration)
	go func() {
		s := time.Now()
		tr.waitGap(time.Hour)
		done <- time.Since(s)
	}()
	time.Sleep(50 * time.Millisecond)
	tr.End()
	select {
	case <-done:
		t.Fatal("the copy went while a client request was still in flight")
	case <-time.After(50 * time.Millisecond):
	}
	tr.End()
	select {
	case d := <-done:
		if d < 90*time.Millisecond {
			t.Errorf("waited only %s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the copy did not go when the proxy became idle")
	}

	// A proxy that is never idle still gets its copies sent, after max.
	tr.Begin()
	defer tr.End()
	start = time.Now()
	tr.waitGap(30 * time.Millisecond)
	if d := time.Since(start); d < 30*time.Millisecond || d > 2*time.Second {
		t.Errorf("waited %s on a busy proxy, want about 30ms", d)
	}
}

// TestCopyWaitsForTheGapToSettle: a copy does not go the moment the last
// client request ends (that client is still reading its answer), but once
// the proxy has been idle for settle.
func TestCopyWaitsForTheGapToSettle(t *testing.T) {
	tr := &Traffic{}
	tr.Begin()
	tr.End()
	start := time.Now()
	tr.waitGap(time.Hour)
	if d := time.Since(start); d < settle {
		t.Errorf("the copy went %s after the last request ended, before the gap had lasted %s", d, settle)
	}

	// A copy that waited for a request to end settles after it too.
	tr.Begin()
	ended := make(chan time.Time, 1)
	go func() {
		time.Sleep(5 * time.Millisecond)
		ended <- time.Now()
		tr.End()
	}()
	tr.waitGap(time.Hour)
	if d := time.Since(<-ended); d < settle {
		t.Errorf("the copy went %s after the request it waited for ended", d)
	}

	// With no time left to wait, it goes at once, settled or not.
	tr.Begin()
	tr.End()
	start = time.Now()
	tr.waitGap(0)
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("waited %s with no time to wait", d)
	}
}

// TestYielderGivesWayToClients: an in-process candidate computing a copy
// waits for a gap in client traffic after each slice of work, while a
// client request (no copy's context) never waits.
func TestYielderGivesWayToClients(t *testing.T) {
	if Yielder(context.Background()) != nil {
		t.Fatal("a client request's context has a yielder")
	}
	var tr Traffic
	tr.Begin() // a client request in flight for the whole test
	yield := Yielder(context.WithValue(context.Background(), trafficKey{}, &tr))
	start := time.Now()
	yield() // within the first slice: no wait
	if d := time.Since(start); d > computeSlice {
		t.Fatalf("the first yield waited %v", d)
	}
	time.Sleep(2 * computeSlice)
	start = time.Now()
	yield()
	if d := time.Since(start); d < maxYield/2 {
		t.Fatalf("after a slice of work the copy waited %v for a busy proxy, want about %v", d, maxYield)
	}
	tr.End()
}

// BenchmarkTrafficBeginEnd is what every client request pays the mirror's
// traffic count (Begin and End around it), from concurrent goroutines:
// with -cpu 1,2 it shows what the shared counters cost when two cores
// write them at once.
func BenchmarkTrafficBeginEnd(b *testing.B) {
	var tr Traffic
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			tr.Begin()
			tr.End()
		}
	})
}

// yieldingBackend computes for a few slices, giving way to clients after
// each, as an in-process guest does.
type yieldingBackend struct{ slices int }

func (b yieldingBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	yield := Yielder(r.Context())
	for range b.slices {
		time.Sleep(2 * computeSlice)
		yield()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
}

// TestCopyLatencyLeavesOutYielding: the time a copy's candidate waits for
// a gap in client traffic is not the candidate's latency, or a busy proxy
// would fail a faithful candidate on its p99 ratio.
func TestCopyLatencyLeavesOutYielding(t *testing.T) {
	m := NewMirror(MirrorConfig{}, &collect{})
	defer m.Close(context.Background())
	m.traffic.Begin() // a client request in flight throughout: every yield waits
	defer m.traffic.End()
	req := httptest.NewRequest(http.MethodGet, "/api/product", nil)
	start := time.Now()
	resp := m.call("GET /api/product", yieldingBackend{slices: 4}, req, nil, nil, "1", false, nil)
	wall := time.Since(start)
	if wall < 4*maxYield/2 {
		t.Fatalf("the copy took %v: its yields did not wait for the busy proxy", wall)
	}
	if resp.Latency < 4*2*computeSlice || resp.Latency > wall-4*maxYield/2 {
		t.Errorf("latency %v of a copy that computed %v and took %v: want the computing, not the waiting", resp.Latency, 4*2*computeSlice, wall)
	}
}
