package wasm

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strangler-fig/migrate/shadow"
)

// buildProbe compiles the outbound probe guest, which uses the fixtures'
// client package (fixtures/wasm/internal/outbound) exactly as the ports do.
func buildProbe(tb testing.TB) string {
	tb.Helper()
	return buildModule(tb, "probe", "../../fixtures/wasm/internal/outbound/probe")
}

// TestOutboundCalls: a listed destination is called for real and its
// answer reaches the guest; an unlisted one is refused with
// destination_not_allowed in the guest and a warning in the log; the
// per-request count and body limits hold.
func TestOutboundCalls(t *testing.T) {
	var writes atomic.Int64
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			writes.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"method":%q,"path":%q}`, r.Method, r.URL.Path)
	}))
	defer inventory.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("a refused destination was called: %s %s", r.Method, r.URL)
	}))
	defer other.Close()

	var logs syncBuffer
	b := newTestBackend(t, Options{Path: buildProbe(t), Outbound: []string{inventory.URL}, MaxOutboundCalls: 3, MaxOutboundBody: 64})
	b.logger = slog.New(slog.NewTextHandler(&logs, nil))

	call := func(method, target string, calls int, body string) (int, string) {
		q := url.Values{"method": {method}, "url": {target}, "calls": {fmt.Sprint(calls)}}
		resp, got := do(t, b, "POST", "/?"+q.Encode(), body, nil)
		return resp.StatusCode, got
	}
	if status, got := call("POST", inventory.URL+"/api/inventory/reserve", 1, `{}`); status != 200 || !strings.Contains(got, `200 application/json {"method":"POST","path":"/api/inventory/reserve"}`) {
		t.Errorf("allowed call: %d %q", status, got)
	}
	if status, got := call("GET", other.URL+"/api/x", 1, ""); status != 502 || !strings.Contains(got, "destination not allowed") {
		t.Errorf("refused call: %d %q", status, got)
	}
	if log := logs.String(); !strings.Contains(log, "outbound call refused") || !strings.Contains(log, other.URL+"/api/x") {
		t.Errorf("log has no refusal naming the destination: %s", log)
	}
	if status, got := call("POST", inventory.URL+"/api/inventory/reserve", 4, `{}`); status != 502 || !strings.Contains(got, "too many sessions") {
		t.Errorf("fourth call of a request: %d %q", status, got)
	}
	if status, got := call("POST", inventory.URL+"/api/inventory/reserve", 1, strings.Repeat("x", 65)); status != 502 || !strings.Contains(got, "request error") {
		t.Errorf("oversized body: %d %q", status, got)
	}
	// 1 + 3 (the fourth refused) writes; the oversized one never left.
	if n := writes.Load(); n != 4 {
		t.Errorf("inventory received %d writes, want 4", n)
	}
}

func TestOutboundListValidated(t *testing.T) {
	if _, err := (Options{Path: "a.wasm", Outbound: []string{"ftp://x"}}).withDefaults(); err == nil || !strings.Contains(err.Error(), `"ftp://x"`) {
		t.Errorf("err = %v, want one naming the bad entry", err)
	}
}

// BenchmarkOutboundCall measures what one outbound call adds to a guest
// request: guest/no-call and guest/one-call differ by the call through the
// host module; direct is the same call made by Go's http.Client.
func BenchmarkOutboundCall(b *testing.B) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"inStock":true}`)
	}))
	defer target.Close()
	be := newTestBackend(b, Options{Path: buildProbe(b), Outbound: []string{target.URL}})
	for _, bc := range []struct {
		name  string
		calls int
	}{{"guest/no-call", 0}, {"guest/one-call", 1}} {
		b.Run(bc.name, func(b *testing.B) {
			q := url.Values{"method": {"GET"}, "url": {target.URL + "/api/inventory"}, "calls": {fmt.Sprint(bc.calls)}}
			for b.Loop() {
				req := httptest.NewRequest("GET", "/?"+q.Encode(), nil)
				resp, err := be.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(resp, err)
				}
			}
		})
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			resp, err := outboundTransport.RoundTrip(httptest.NewRequest("GET", target.URL+"/api/inventory", nil).WithContext(b.Context()))
			if err != nil {
				b.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	})
}

// TestOutboundShadowStubsWrites: under a shadow copy's recorder the guest's
// writes never leave the host — the stub named by method and path (or the
// default 200 {}) answers — its reads are sent unless shadowReads is
// false, and every call is recorded, stubbed or not.
func TestOutboundShadowStubsWrites(t *testing.T) {
	var writes, reads atomic.Int64
	inventory := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			reads.Add(1)
		} else {
			writes.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"real":true,"id":%q}`, r.Header.Get("X-Request-Id"))
	}))
	defer inventory.Close()
	stubs := map[string]Stub{
		"POST /api/inventory/reserve": {Status: 202, Body: []byte(`{"reserved":true}`)},
		"DELETE /api/inventory/*":     {Status: 204, Body: []byte(`null`)},
	}
	b := newTestBackend(t, Options{Path: buildProbe(t), Outbound: []string{inventory.URL}, Stubs: stubs})
	call := func(b *Backend, calls *shadow.Calls, method, path string) string {
		q := url.Values{"method": {method}, "url": {inventory.URL + path}}
		req := httptest.NewRequest("POST", "/?"+q.Encode(), strings.NewReader(`{"sku":"a"}`))
		req.Header.Set("X-Request-Id", "req-1")
		if calls != nil {
			req = req.WithContext(shadow.WithCalls(req.Context(), calls))
		}
		resp, err := b.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		got, _ := io.ReadAll(resp.Body)
		return string(got)
	}
	calls := &shadow.Calls{}
	for _, c := range []struct{ method, path, want string }{
		{"POST", "/api/inventory/reserve", `202 application/json {"reserved":true}`},
		{"PUT", "/api/inventory/sku-1", `200 application/json {}`},
		{"DELETE", "/api/inventory/sku-1", `204 application/json null`},
		{"GET", "/api/inventory?skuCode=a", `200 application/json {"real":true,"id":"req-1"}`},
	} {
		if got := call(b, calls, c.method, c.path); got != c.want {
			t.Errorf("shadow %s %s answered %q, want %q", c.method, c.path, got, c.want)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("inventory received %d writes from a shadow copy, want 0", n)
	}
	if n := reads.Load(); n != 1 {
		t.Errorf("inventory received %d reads, want 1 (shadowReads defaults to true)", n)
	}
	if !calls.Watched() {
		t.Error("the backend did not mark the recorder as watched")
	}
	var got []string
	for _, c := range calls.List() {
		got = append(got, fmt.Sprintf("%s %s %d stubbed=%v", c.Method, c.URL, c.Status, c.Stubbed))
	}
	want := []string{"POST /api/inventory/reserve 202 stubbed=true", "PUT /api/inventory/sku-1 200 stubbed=true",
		"DELETE /api/inventory/sku-1 204 stubbed=true", "GET /api/inventory?skuCode=a 200 stubbed=false"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("recorded calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Outside shadow the same write is sent.
	if got := call(b, nil, "POST", "/api/inventory/reserve"); !strings.Contains(got, `"real":true`) || writes.Load() != 1 {
		t.Errorf("client-path write: %q, inventory writes %d, want it sent once", got, writes.Load())
	}

	// shadowReads: false stubs the reads of a shadow copy too.
	off := false
	quiet := newTestBackend(t, Options{Path: buildProbe(t), Outbound: []string{inventory.URL}, ShadowReads: &off})
	if got := call(quiet, &shadow.Calls{}, "GET", "/api/inventory?skuCode=a"); got != `200 application/json {}` || reads.Load() != 1 {
		t.Errorf("shadowReads false: %q, inventory reads %d, want the stub and still 1", got, reads.Load())
	}
}

func TestOutboundStubsValidated(t *testing.T) {
	for key, st := range map[string]Stub{
		"/api/x":      {},
		"POST api/x":  {},
		"POST /api/x": {Status: 42},
		"PUT /api/y":  {Body: []byte(`{not json`)},
	} {
		_, err := (Options{Path: "a.wasm", Stubs: map[string]Stub{key: st}}).withDefaults()
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("stub %q %+v: err = %v, want one naming the stub", key, st, err)
		}
	}
}

func TestStubFor(t *testing.T) {
	o := Options{Stubs: map[string]Stub{
		"POST /api/inventory/reserve": {Status: 201},
		"POST /api/inventory/*":       {Status: 202},
		"* /api/inventory/*":          {Status: 203},
		"* *":                         {Status: 204},
		"PUT /api/*":                  {Status: 205},
	}}
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"POST", "/api/inventory/reserve", 201},
		{"POST", "/api/inventory/release", 202}, // the named method beats * on the same prefix
		{"DELETE", "/api/inventory/x", 203},
		{"PUT", "/api/inventory/x", 203}, // the longer prefix wins
		{"PUT", "/api/order", 205},
		{"PATCH", "/elsewhere", 204},
	} {
		for range 20 { // map order must not decide
			if got := o.stubFor(c.method, c.path); got.Status != c.want || string(got.Body) != "{}" || got.ContentType != "application/json" {
				t.Fatalf("%s %s: %+v, want status %d with the default body", c.method, c.path, got, c.want)
			}
		}
	}
	if got := (Options{}).stubFor("POST", "/x"); got.Status != 200 || string(got.Body) != "{}" {
		t.Errorf("no stubs: %+v, want 200 {}", got)
	}
}
