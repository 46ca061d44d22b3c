package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// BenchmarkServeLegacy measures the data plane's own cost per request in
// legacy mode: match, dispatch, ReverseProxy, keep-alive round trip to a
// loopback backend, counters.
func BenchmarkServeLegacy(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"id":"1","name":"Car Engine","price":8500}]`)
	}))
	defer backend.Close()
	h := newHarness(b, twoSided, map[string]string{"legacy": backend.URL, "candidate": backend.URL}, nil)
	defer h.front.Close()
	serveEach(b, h, nil)
	if st := h.ctrl.Route("GET /api/order/{id}").State(); st.Mode != strangler.ModeLegacy {
		b.Fatal(st)
	}
}

// BenchmarkServeShadow measures what one request costs in shadow mode, the
// copy included: the client's round trip to legacy, the copy's to the
// candidate, the comparison and the evidence. Each iteration waits until
// its copy has been compared, so the time per op includes the copy's wait
// for the proxy to settle; the allocations are the figure to watch.
func BenchmarkServeShadow(b *testing.B) {
	answer := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"id":"1","name":"Car Engine","description":"V8","price":8500,"skuCode":"ENG-V8-500"},{"id":"2","name":"Brake Pads","description":"High performance","price":150,"skuCode":"BRK-PD-HP"}]`)
	}
	legacy := httptest.NewServer(http.HandlerFunc(answer))
	defer legacy.Close()
	candidate := httptest.NewServer(http.HandlerFunc(answer))
	defer candidate.Close()
	done := make(chan struct{}, 1)
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, comparedSignal{done})
	h := newHarness(b, twoSided, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
	const route = "GET /api/order/{id}"
	h.set(b, route, strangler.ModeShadow, 0)
	serveEach(b, h, func() { <-done })
}

// serveEach sends GET /api/order/42 through the proxy b.N times, calling
// after (when set) once each answer is in.
func serveEach(b *testing.B, h *harness, after func()) {
	req := httptest.NewRequest(http.MethodGet, "/api/order/42", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.px.ServeHTTP(w, req)
		if after != nil {
			after()
		}
	}
	b.StopTimer()
}

// comparedSignal is a recorder that keeps nothing and says when a copy has
// been compared (A/A baseline samples aside).
type comparedSignal struct{ done chan struct{} }

func (c comparedSignal) Record(shadow.Sample) {}

func (c comparedSignal) Wants(s shadow.Sample) bool {
	if !s.Baseline {
		c.done <- struct{}{}
	}
	return false
}
