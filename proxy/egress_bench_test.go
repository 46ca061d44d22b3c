package proxy

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkShadowRequestID is the request-id bookkeeping a shadowed
// request pays so legacy's calls through the proxy can be told apart: an
// id when the client sent none, a recorder, the egress map entry and its
// removal once legacy has answered. "lookup" is what every request that
// reaches the proxy pays while shadowed requests are in flight: finding
// whether it is one of their calls.
func BenchmarkShadowRequestID(b *testing.B) {
	p := New(Options{})
	b.Run("new-id", func(b *testing.B) {
		r := httptest.NewRequest(http.MethodGet, "/api/order/42", nil)
		b.ReportAllocs()
		for b.Loop() {
			r.Header.Del(headerRequestID)
			calls, stop := p.watchLegacyCalls(r)
			stop()
			if calls == nil || len(calls.List()) != 0 {
				b.Fatal("no recorder")
			}
		}
	})
	b.Run("client-id", func(b *testing.B) {
		r := httptest.NewRequest(http.MethodGet, "/api/order/42", nil)
		r.Header.Set(headerRequestID, "3f1c2a9e5b7d4e60")
		b.ReportAllocs()
		for b.Loop() {
			calls, stop := p.watchLegacyCalls(r)
			stop()
			if calls == nil {
				b.Fatal("no recorder")
			}
		}
	})
	b.Run("lookup", func(b *testing.B) {
		inflight := httptest.NewRequest(http.MethodGet, "/api/order/42", nil)
		_, stop := p.watchLegacyCalls(inflight)
		defer stop()
		other := httptest.NewRequest(http.MethodGet, "/api/product", nil)
		other.Header.Set(headerRequestID, "0000000000000001")
		b.ReportAllocs()
		for b.Loop() {
			if p.egress.of(other) != nil {
				b.Fatal("another request's call recorded")
			}
		}
	})
}
