package wasm

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestStatsPeakUsage checks the figures the report's footprint is built
// from: guests one after another peak at one instance's memory; guests
// running together add up, and give their memory back when they end.
func TestStatsPeakUsage(t *testing.T) {
	t.Run("sequential", func(t *testing.T) {
		b := newGuestBackend(t, Options{})
		for range 3 {
			if _, err := b.RoundTrip(httptest.NewRequest("GET", "/counter", nil)); err != nil {
				t.Fatal(err)
			}
		}
		st := b.Stats()
		if st.Requests != 3 || st.PeakInFlight != 1 {
			t.Errorf("requests %d, peak in flight %d; want 3 and 1", st.Requests, st.PeakInFlight)
		}
		if st.PeakMemory == 0 || st.PeakLiveMemory != st.PeakMemory {
			t.Errorf("peak live memory %d, peak per instance %d; want equal and positive for one guest at a time", st.PeakLiveMemory, st.PeakMemory)
		}
		if live := b.stats.liveMemory.Load(); live != 0 {
			t.Errorf("%d bytes still counted live with no guest running", live)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		// Hanging guests run until their deadline, so all of them are live
		// at once.
		const n = 3
		b := newGuestBackend(t, Options{Timeout: Duration(400 * time.Millisecond)})
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := b.RoundTrip(httptest.NewRequest("GET", "/hang", nil))
				if ErrorKind(err) != KindDeadline {
					t.Errorf("/hang: %v, want a %s error", err, KindDeadline)
				}
			}()
		}
		wg.Wait()
		st := b.Stats()
		if st.PeakInFlight != n || st.InFlight != 0 {
			t.Errorf("peak in flight %d, in flight %d; want %d and 0", st.PeakInFlight, st.InFlight, n)
		}
		if st.PeakLiveMemory <= st.PeakMemory || st.PeakLiveMemory > st.PeakMemory*n {
			t.Errorf("peak live memory %d with %d guests of at most %d each; want above one guest's and at most all of theirs",
				st.PeakLiveMemory, n, st.PeakMemory)
		}
		if live := b.stats.liveMemory.Load(); live != 0 {
			t.Errorf("%d bytes still counted live with no guest running", live)
		}
	})
}
