package proxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

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
	req := httptest.NewRequest(http.MethodGet, "/api/order/42", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		clear(w.h)
		h.px.ServeHTTP(w, req)
	}
	b.StopTimer()
	if st := h.ctrl.Route("GET /api/order/{id}").State(); st.Mode != strangler.ModeLegacy {
		b.Fatal(st)
	}
}
