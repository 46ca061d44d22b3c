package shadow

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstream is the smallest Backend the proxy would build: it points a
// request at one base URL and sends it with a real transport.
type upstream struct {
	base *url.URL
	rt   http.RoundTripper
}

func newUpstream(t testing.TB, rawURL string) *upstream {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &upstream{base: u, rt: tr}
}

func (u *upstream) RoundTrip(r *http.Request) (*http.Response, error) {
	r.URL.Scheme, r.URL.Host, r.Host = u.base.Scheme, u.base.Host, u.base.Host
	return u.rt.RoundTrip(r)
}

// collect is a Recorder that keeps samples.
type collect struct {
	mu      sync.Mutex
	samples []Sample
}

func (c *collect) Record(s Sample) {
	c.mu.Lock()
	c.samples = append(c.samples, s)
	c.mu.Unlock()
}

func (c *collect) all() []Sample {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Sample(nil), c.samples...)
}

// fetch performs a request against legacy and returns it as a Response.
func fetch(t testing.TB, method, rawURL, body string) (*http.Request, Response) {
	t.Helper()
	req := httptest.NewRequest(method, rawURL, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	out, err := http.DefaultClient.Do(mustReq(t, method, rawURL, body))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return req, Response{Status: out.StatusCode, Header: out.Header, Body: b, Latency: time.Millisecond}
}

func mustReq(t testing.TB, method, rawURL, body string) *http.Request {
	r, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	return r
}

func closeMirror(t testing.TB, m *Mirror) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// kindedError stands in for proxy/wasm's GuestError, which shadow may not
// import: an in-process backend's error that names its own kind.
type kindedError struct{ kind string }

func (e *kindedError) Error() string     { return "wasm guest: " + e.kind }
func (e *kindedError) ErrorKind() string { return e.kind }

type trapBackend struct{}

func (trapBackend) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("run module: %w", &kindedError{kind: "trap"})
}

func TestMirrorCandidateFailures(t *testing.T) {
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"skuCode":"ENG-V8-500","inStock":true}]`)
	}))
	defer legacy.Close()

	release := make(chan struct{})
	defer close(release)
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderShadow) != "1" {
			http.Error(w, "copy without shadow marker", http.StatusTeapot)
			return
		}
		switch r.URL.Query().Get("case") {
		case "hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "reset":
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.(*net.TCPConn).SetLinger(0)
			conn.Close()
		case "huge":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", "5000000000")
			buf := make([]byte, 64<<10)
			for i := 0; i < 5000000000/len(buf); i++ {
				if _, err := w.Write(buf); err != nil {
					return
				}
			}
		case "invalid":
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `[{"skuCode":"ENG-V8-500","inStock":tru`)
		case "plain":
			io.WriteString(w, `skuCode=ENG-V8-500 inStock=true`)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `[{"skuCode":"ENG-V8-500","inStock":true}]`)
		}
	}))
	defer candidate.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	cases := []struct {
		name      string
		query     string
		backend   Backend
		outcome   string
		errorKind string
		diff      string
	}{
		{"match", "ok", nil, OutcomeMatch, "", ""},
		{"hang", "hang", nil, OutcomeCandidateError, ErrTimeout, ""},
		{"reset", "reset", nil, OutcomeCandidateError, ErrReset, ""},
		{"connect", "ok", newUpstream(t, deadURL), OutcomeCandidateError, ErrConnect, ""},
		{"5GB body", "huge", nil, OutcomeCandidateError, ErrTooLarge, ""},
		{"invalid JSON", "invalid", nil, OutcomeCandidateError, "invalid-json", ""},
		{"wrong content type", "plain", nil, OutcomeMismatch, "", "@header/content-type content-type"},
		{"trap", "ok", trapBackend{}, OutcomeCandidateError, "trap", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &collect{}
			m := NewMirror(MirrorConfig{}, rec)
			u := legacy.URL + "/api/inventory?skuCode=ENG-V8-500&case=" + tc.query
			req, lresp := fetch(t, "GET", u, "")
			be := tc.backend
			if be == nil {
				be = newUpstream(t, candidate.URL)
			}
			opts := &Options{Timeout: Duration(300 * time.Millisecond)}
			start := time.Now()
			if m.Submit(Exchange{Route: "GET /api/inventory", Service: "inventory-service", Options: opts,
				Request: req, Legacy: lresp, Candidate: be}) != OutcomeQueued {
				t.Fatal("submit dropped")
			}
			if el := time.Since(start); el > 50*time.Millisecond {
				t.Fatalf("Submit took %v: it must not wait for the candidate", el)
			}
			closeMirror(t, m)
			if el := time.Since(start); el > 3*time.Second {
				t.Fatalf("candidate exchange took %v", el)
			}
			got := rec.all()
			if len(got) != 1 {
				t.Fatalf("%d samples recorded, want 1", len(got))
			}
			res := got[0].Result
			if res.Outcome != tc.outcome || res.Error != tc.errorKind {
				t.Fatalf("outcome %q/%q, want %q/%q (%+v)", res.Outcome, res.Error, tc.outcome, tc.errorKind, res.Differences)
			}
			if tc.diff != "" && !strings.Contains(strings.Join(diffsOf(res), "|"), tc.diff) {
				t.Fatalf("differences %q lack %q", diffsOf(res), tc.diff)
			}
			ev := m.Evidence("GET /api/inventory")
			if ev.Samples != 1 || (tc.errorKind != "" && ev.CandidateErrors[tc.errorKind] != 1) {
				t.Fatalf("evidence %+v", ev)
			}
		})
	}
}

func TestMirrorWrites(t *testing.T) {
	var mu sync.Mutex
	var seen []http.Header
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer candidate.Close()
	be := newUpstream(t, candidate.URL)
	for _, policy := range []string{"", WritesDeny, WritesAllow, WritesMarked} {
		t.Run("writes="+policy, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			m := NewMirror(MirrorConfig{}, nil)
			req := httptest.NewRequest("POST", "/api/product", strings.NewReader(`{"name":"x"}`))
			m.Submit(Exchange{Route: "POST /api/product", Options: &Options{Writes: policy}, Request: req,
				Body: []byte(`{"name":"x"}`), Legacy: Response{Status: 201}, Candidate: be})
			closeMirror(t, m)
			ev := m.Evidence("POST /api/product")
			mu.Lock()
			defer mu.Unlock()
			switch policy {
			case "", WritesDeny:
				if len(seen) != 0 || ev.SkippedWrites != 1 || ev.Samples != 0 {
					t.Fatalf("deny: candidate saw %d, evidence %+v", len(seen), ev)
				}
			default:
				if len(seen) != 1 || ev.SkippedWrites != 0 || ev.Matches != 1 {
					t.Fatalf("%s: candidate saw %d, evidence %+v", policy, len(seen), ev)
				}
				if seen[0].Get(HeaderShadow) != "1" {
					t.Fatal("copy lacks the shadow marker")
				}
				if got := seen[0].Get(HeaderShadowWrite); (got == "1") != (policy == WritesMarked) {
					t.Fatalf("write marker %q under %s", got, policy)
				}
			}
		})
	}
}

func TestMirrorQueueFullDrops(t *testing.T) {
	block := make(chan struct{})
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-block
	}))
	defer candidate.Close()
	m := NewMirror(MirrorConfig{Workers: 1, QueueSize: 2}, nil)
	be := newUpstream(t, candidate.URL)
	accepted, dropped := 0, 0
	var slowest time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		ok := m.Submit(Exchange{Route: "GET /x", Request: httptest.NewRequest("GET", "/x", nil),
			Legacy: Response{Status: 200}, Candidate: be, Options: &Options{Timeout: Duration(5 * time.Second)}}) == OutcomeQueued
		slowest = max(slowest, time.Since(start))
		if ok {
			accepted++
		} else {
			dropped++
		}
		if i == 0 {
			time.Sleep(50 * time.Millisecond) // let the worker take the first job
		}
	}
	close(block)
	closeMirror(t, m)
	ev := m.Evidence("GET /x")
	if accepted != 3 || dropped != 17 || ev.Drops != 17 || ev.Samples != 3 {
		t.Fatalf("accepted %d dropped %d, evidence drops %d samples %d", accepted, dropped, ev.Drops, ev.Samples)
	}
	if slowest > 20*time.Millisecond {
		t.Fatalf("a Submit took %v with a full queue", slowest)
	}
}

// TestShedOnlyWhatSubmitWouldDrop: Shed says yes only where Submit would
// drop the copy for a full queue, and counts it as Submit would.
func TestShedOnlyWhatSubmitWouldDrop(t *testing.T) {
	taken, release := make(chan struct{}, 4), make(chan struct{})
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		taken <- struct{}{}
		<-release
	}))
	defer candidate.Close()
	m := NewMirror(MirrorConfig{Workers: 1, QueueSize: 1}, nil)
	be := newUpstream(t, candidate.URL)
	submit := func() string {
		return m.Submit(Exchange{Route: "GET /x", Request: httptest.NewRequest("GET", "/x", nil),
			Legacy: Response{Status: 200}, Candidate: be})
	}
	if m.Shed("GET /x", nil) {
		t.Fatal("shed a copy on a route that has none yet")
	}
	if got := submit(); got != OutcomeQueued {
		t.Fatalf("first copy: %s", got)
	}
	<-taken // the worker holds it
	if got := submit(); got != OutcomeQueued {
		t.Fatalf("second copy: %s", got)
	}
	for _, opts := range []*Options{{Sample: new(Percent(50))}, {RateLimit: 100}} {
		if m.Shed("GET /x", opts) {
			t.Errorf("shed under %+v, where Submit decides first", opts)
		}
	}
	if !m.Shed("GET /x", nil) || !m.Shed("GET /x", &Options{Sample: new(Percent(100))}) {
		t.Fatal("a full queue did not shed")
	}
	close(release)
	closeMirror(t, m)
	if ev := m.Evidence("GET /x"); ev.Drops != 2 || ev.Samples != 2 {
		t.Fatalf("evidence: %d drops, %d samples; want 2 and 2", ev.Drops, ev.Samples)
	}
	if m.Shed("GET /x", nil) {
		t.Error("a closed mirror shed a copy")
	}
}

func TestMirrorBreaker(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	m := NewMirror(MirrorConfig{Workers: 1, BreakerThreshold: 3, BreakerCooldown: time.Minute, Now: clock,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	submit := func() {
		m.Submit(Exchange{Route: "GET /x", Request: httptest.NewRequest("GET", "/x", nil),
			Legacy: Response{Status: 200}, Candidate: trapBackend{}})
	}
	submitted := 0
	waitIdle := func() {
		deadline := time.Now().Add(2 * time.Second)
		for time.Now().Before(deadline) {
			if st := m.Stats(); len(st) == 1 && st[0].QueueDepth == 0 {
				ev := m.Evidence("GET /x")
				if ev.Samples+ev.BreakerOpen == uint64(submitted) {
					return
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	for i := 0; i < 3; i++ {
		submit()
		submitted++
		waitIdle()
	}
	if st := m.Stats()[0]; st.Breaker != "open" {
		t.Fatalf("breaker %q after 3 failures, want open", st.Breaker)
	}
	for i := 0; i < 5; i++ {
		submit()
		submitted++
	}
	waitIdle()
	ev := m.Evidence("GET /x")
	if ev.BreakerOpen != 5 || ev.Samples != 3 {
		t.Fatalf("open breaker: %d refused, %d samples", ev.BreakerOpen, ev.Samples)
	}
	clockMu.Lock()
	now = now.Add(2 * time.Minute)
	clockMu.Unlock()
	submit() // the half-open probe
	submitted++
	submit() // refused while the probe is out
	submitted++
	closeMirror(t, m)
	ev = m.Evidence("GET /x")
	if ev.Samples != 4 || ev.BreakerOpen < 6 || m.Stats()[0].Breaker != "open" {
		t.Fatalf("half-open: samples %d refused %d breaker %s", ev.Samples, ev.BreakerOpen, m.Stats()[0].Breaker)
	}
}

func TestSampling(t *testing.T) {
	opts := &Options{Sample: new(Percent(30)), StickyBy: "header:X-User"}
	in := 0
	for i := 0; i < 2000; i++ {
		req := httptest.NewRequest("GET", "/x", nil)
		req.Header.Set("X-User", fmt.Sprint("user-", i))
		first := Sampled("GET /x", opts, req)
		for j := 0; j < 3; j++ {
			if Sampled("GET /x", opts, req) != first {
				t.Fatal("sticky sampling changed its mind for one user")
			}
		}
		if first {
			in++
		}
	}
	if in < 500 || in > 700 {
		t.Fatalf("sticky 30%% sampled %d of 2000", in)
	}
	cookie := &Options{Sample: new(Percent(50)), StickyBy: "cookie:SESSION"}
	req := httptest.NewRequest("GET", "/x", nil)
	req.AddCookie(&http.Cookie{Name: "SESSION", Value: "abc"})
	first := Sampled("GET /x", cookie, req)
	for j := 0; j < 5; j++ {
		if Sampled("GET /x", cookie, req) != first {
			t.Fatal("cookie sampling changed its mind")
		}
	}
	if Sampled("GET /x", &Options{Sample: new(Percent(0.0001))}, req) && Sampled("GET /x", &Options{Sample: new(Percent(0.0001))}, req) {
		t.Fatal("0.0001% sampled twice in a row")
	}
}

func TestRateLimit(t *testing.T) {
	var tb tokenBucket
	now := time.Unix(0, 0)
	ok := 0
	for i := 0; i < 100; i++ {
		if tb.take(now, 5) {
			ok++
		}
	}
	if ok != 5 {
		t.Fatalf("burst allowed %d, want 5", ok)
	}
	if !tb.take(now.Add(250*time.Millisecond), 5) {
		t.Fatal("refill after 250ms at 5/s should allow one")
	}
}

func randomUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// TestMirrorLearnsNoise runs the A/A loop end to end on loopback: legacy
// issues fresh order numbers on every call; a faithful candidate should end
// up matching, and an unfaithful one (prices as 200 instead of 200.00) not.
func TestMirrorLearnsNoise(t *testing.T) {
	order := func(price string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
				w.WriteHeader(http.StatusCreated)
				fmt.Fprintf(w, "Order Number %s Placed Successfully", randomUUID())
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Trace", randomUUID())
			fmt.Fprintf(w, `[{"orderNumber":%q,"items":[{"skuCode":"BRK-PD-HP","price":%s,"quantity":1}]}]`, randomUUID(), price)
		}
	}
	legacy := httptest.NewServer(order("150.00"))
	defer legacy.Close()
	faithful := httptest.NewServer(order("150.00"))
	defer faithful.Close()
	slipped := httptest.NewServer(order("150"))
	defer slipped.Close()

	run := func(cand *httptest.Server, method string, n int) (*Mirror, *collect) {
		rec := &collect{}
		m := NewMirror(MirrorConfig{Workers: 1, StableAfter: 5}, rec)
		for i := 0; i < n; i++ {
			body := ""
			if method == "POST" {
				body = `{"orderLineItemsDtoList":[{"skuCode":"BRK-PD-HP","price":150,"quantity":1}]}`
			}
			req, lresp := fetch(t, method, legacy.URL+"/api/order", body)
			m.Submit(Exchange{Route: method + " /api/order", Options: &Options{Writes: WritesAllow, BaselineWrites: true}, Request: req,
				Body: []byte(body), Legacy: lresp, Candidate: newUpstream(t, cand.URL), Baseline: newUpstream(t, legacy.URL)})
			time.Sleep(2 * time.Millisecond)
		}
		closeMirror(t, m)
		return m, rec
	}

	m, rec := run(faithful, "GET", 30)
	sum, _ := m.Summary("GET /api/order")
	if sum.MatchRatio != 1 || sum.Samples != 30 || len(sum.RecentUnexplained) != 0 {
		t.Fatalf("faithful GET: %+v", sum)
	}
	var keys []string
	for _, s := range m.Noise("GET /api/order").Suggestions() {
		keys = append(keys, s.Key+"="+s.Value)
	}
	if strings.Join(keys, ",") != "ignore=/*/orderNumber,ignoreHeaders=x-trace" &&
		strings.Join(keys, ",") != "ignoreHeaders=x-trace,ignore=/*/orderNumber" {
		t.Fatalf("suggestions %v", keys)
	}
	ev := m.Evidence("GET /api/order")
	if ev.Baselines < 5 || ev.Baselines >= 30 {
		t.Fatalf("baselines = %d: learning should run until stable and then back off", ev.Baselines)
	}
	baselines := 0
	for _, s := range rec.all() {
		if s.Baseline {
			baselines++
		}
	}
	if uint64(baselines) != ev.Baselines {
		t.Fatalf("recorded %d baseline samples, evidence says %d", baselines, ev.Baselines)
	}

	m, _ = run(slipped, "GET", 15)
	sum, _ = m.Summary("GET /api/order")
	if sum.Mismatches != 15 || len(sum.RecentUnexplained) != 1 || sum.RecentUnexplained[0] != "/*/items/*/price value" {
		t.Fatalf("slipped GET: %+v", sum)
	}

	m, _ = run(faithful, "POST", 12)
	sum, _ = m.Summary("POST /api/order")
	if sum.MatchRatio != 1 || sum.Samples != 12 {
		t.Fatalf("faithful POST (text noise): %+v", sum)
	}
	if sg := m.Noise("POST /api/order").Suggestions(); len(sg) != 1 || sg[0].Key != "ignoreLines" {
		t.Fatalf("text suggestions %+v", sg)
	}
}

func TestErrorKind(t *testing.T) {
	cases := map[string]error{
		ErrTimeout:  context.DeadlineExceeded,
		ErrTooLarge: fmt.Errorf("read: %w", errTooLarge),
		ErrReset:    io.ErrUnexpectedEOF,
		"trap":      fmt.Errorf("x: %w", &kindedError{"trap"}),
		ErrOther:    errors.New("something else"),
		"":          nil,
	}
	for want, err := range cases {
		if got := ErrorKind(err); got != want {
			t.Errorf("ErrorKind(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestRestoreAndClosedMirror(t *testing.T) {
	m := NewMirror(MirrorConfig{}, nil)
	ev := NewEvidence("GET /x", "svc")
	ev.Add(Sample{At: time.Now(), Result: Result{Outcome: OutcomeMatch}})
	m.Restore("GET /x", "svc", ev, nil)
	closeMirror(t, m)
	if got := m.Evidence("GET /x"); got.Samples != 1 {
		t.Fatalf("restored evidence lost: %+v", got)
	}
	if got := m.Submit(Exchange{Route: "GET /x", Request: httptest.NewRequest("GET", "/x", nil), Candidate: trapBackend{}}); got != OutcomeDropped {
		t.Fatalf("closed mirror answered %q, want %q", got, OutcomeDropped)
	}
}

func TestStatsAndOnSample(t *testing.T) {
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"price":2,"name":"x"}`)
	}))
	defer candidate.Close()
	var mu sync.Mutex
	var seen []Sample
	m := NewMirror(MirrorConfig{OnSample: func(s Sample) { mu.Lock(); seen = append(seen, s); mu.Unlock() }}, nil)
	for _, body := range []string{`{"price":1,"name":"x"}`, `{"price":2,"name":"x"}`} {
		req := httptest.NewRequest("GET", "/p", nil)
		req.Header.Set("Authorization", "Bearer secret")
		m.Submit(Exchange{Route: "GET /p", Service: "product-service", Request: req, Legacy: jsonResp(200, body),
			Candidate: newUpstream(t, candidate.URL)})
	}
	m.Submit(Exchange{Route: "DELETE /p", Request: httptest.NewRequest("DELETE", "/p", nil), Candidate: newUpstream(t, candidate.URL)})
	closeMirror(t, m)
	st := m.Stats()
	if len(st) != 2 || st[1].Route != "GET /p" || st[0].SkippedWrites != 1 {
		t.Fatalf("stats %+v", st)
	}
	p := st[1]
	if p.Samples != 2 || p.Matches != 1 || p.MatchRatio != 0.5 || p.MismatchesByType[DiffValue] != 1 || p.Breaker != "closed" {
		t.Fatalf("route stats %+v", p)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Request.Header.Get("Authorization") != "[redacted]" {
		t.Fatalf("OnSample got %d samples, first request header %v", len(seen), seen[0].Request.Header)
	}
}

// A write is never sent to legacy a second time unless the route asks.
func TestBaselineSkipsWritesUnlessAsked(t *testing.T) {
	for _, baselineWrites := range []bool{false, true} {
		var legacyCalls atomic.Int64
		legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			legacyCalls.Add(1)
			w.WriteHeader(http.StatusCreated)
		}))
		cand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusCreated)
		}))
		m := NewMirror(MirrorConfig{}, nil)
		req := httptest.NewRequest(http.MethodPost, "/api/order", nil)
		opts := &Options{Writes: WritesAllow, BaselineWrites: baselineWrites}
		m.Submit(Exchange{Route: "POST /api/order", Options: opts, Request: req,
			Legacy:    Response{Status: http.StatusCreated},
			Candidate: newUpstream(t, cand.URL), Baseline: newUpstream(t, legacy.URL)})
		if err := m.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		legacy.Close()
		cand.Close()
		if got, want := legacyCalls.Load() > 0, baselineWrites; got != want {
			t.Errorf("baselineWrites=%v: legacy called again = %v", baselineWrites, got)
		}
	}
}

func TestMirrorReverse(t *testing.T) {
	var legacyCalls atomic.Int64
	var mu sync.Mutex
	var seen []http.Header
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		legacyCalls.Add(1)
		mu.Lock()
		seen = append(seen, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"id":1,"legacyOnly":true}`)
	}))
	defer legacy.Close()
	be := newUpstream(t, legacy.URL)
	// What the candidate answered the client.
	answered := Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"id":1,"candidateOnly":true}`), Latency: time.Millisecond}

	t.Run("legacy stays on the legacy side", func(t *testing.T) {
		legacyCalls.Store(0)
		rec := &collect{}
		m := NewMirror(MirrorConfig{}, rec)
		req := httptest.NewRequest(http.MethodGet, "/api/order/1", nil)
		// A baseline backend is ignored in reverse: no A/A copy.
		if m.Submit(Exchange{Route: "GET /api/order/{id}", Request: req, Legacy: answered,
			Candidate: be, Baseline: be, Reverse: true}) != OutcomeQueued {
			t.Fatal("copy dropped")
		}
		closeMirror(t, m)
		if n := legacyCalls.Load(); n != 1 {
			t.Fatalf("legacy called %d times, want one copy and no baseline", n)
		}
		samples := rec.all()
		if len(samples) != 1 {
			t.Fatalf("%d samples", len(samples))
		}
		s := samples[0]
		if !strings.Contains(string(s.Legacy.Body), "legacyOnly") || !strings.Contains(string(s.Candidate.Body), "candidateOnly") {
			t.Fatalf("sides swapped: legacy %s candidate %s", s.Legacy.Body, s.Candidate.Body)
		}
		sigs := strings.Join(s.Result.Signatures(), ", ")
		if !strings.Contains(sigs, "/legacyOnly "+DiffMissing) || !strings.Contains(sigs, "/candidateOnly "+DiffExtra) {
			t.Fatalf("signatures %q: the candidate lacks legacyOnly (missing) and adds candidateOnly (extra)", sigs)
		}
		if ev := m.Evidence("GET /api/order/{id}"); ev.Mismatches != 1 || ev.Baselines != 0 {
			t.Fatalf("evidence %+v", ev)
		}
	})

	for _, policy := range []string{"", WritesDeny, WritesMarked, WritesAllow} {
		t.Run("write under writes="+policy, func(t *testing.T) {
			legacyCalls.Store(0)
			mu.Lock()
			seen = nil
			mu.Unlock()
			m := NewMirror(MirrorConfig{}, nil)
			req := httptest.NewRequest(http.MethodPost, "/api/order", strings.NewReader(`{"sku":"x"}`))
			m.Submit(Exchange{Route: "POST /api/order", Options: &Options{Writes: policy}, Request: req,
				Body: []byte(`{"sku":"x"}`), Legacy: answered, Candidate: be, Reverse: true})
			closeMirror(t, m)
			ev := m.Evidence("POST /api/order")
			if policy != WritesAllow {
				// The candidate applied the write; legacy must not apply it again.
				if legacyCalls.Load() != 0 || ev.SkippedWrites != 1 || ev.Samples != 0 {
					t.Fatalf("legacy called %d times, evidence %+v", legacyCalls.Load(), ev)
				}
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != 1 || ev.SkippedWrites != 0 || ev.Samples != 1 {
				t.Fatalf("allow: legacy saw %d, evidence %+v", len(seen), ev)
			}
			if seen[0].Get(HeaderShadowWrite) != "" {
				t.Fatal("a reverse copy carried the dry-run write marker")
			}
		})
	}
}

// pickyRecorder keeps nothing, and says so before the mirror redacts.
type pickyRecorder struct{ asked, recorded atomic.Int64 }

func (p *pickyRecorder) Wants(Sample) bool { p.asked.Add(1); return false }
func (p *pickyRecorder) Record(Sample)     { p.recorded.Add(1) }

func TestMirrorAsksTheRecorderFirst(t *testing.T) {
	cand := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer cand.Close()
	rec := &pickyRecorder{}
	m := NewMirror(MirrorConfig{}, rec)
	for range 5 {
		m.Submit(Exchange{Route: "GET /a", Request: httptest.NewRequest(http.MethodGet, "/a", nil),
			Legacy: Response{Status: http.StatusOK}, Candidate: newUpstream(t, cand.URL)})
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rec.asked.Load() == 0 || rec.recorded.Load() != 0 {
		t.Fatalf("asked %d, recorded %d: a sample the recorder does not want must not reach Record",
			rec.asked.Load(), rec.recorded.Load())
	}
}

func TestSubmitSaysWhatBecameOfTheCopy(t *testing.T) {
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(candidate.Close)
	be := newUpstream(t, candidate.URL)
	m := NewMirror(MirrorConfig{}, nil)
	defer closeMirror(t, m)
	submit := func(method string, opts *Options) string {
		return m.Submit(Exchange{Route: method + " /s", Options: opts, Request: httptest.NewRequest(method, "/s", nil),
			Legacy: Response{Status: 200}, Candidate: be})
	}
	if got := submit("GET", nil); got != OutcomeQueued {
		t.Errorf("plain GET: %q", got)
	}
	if got := submit("DELETE", nil); got != OutcomeSkippedWrite {
		t.Errorf("a write under the default policy: %q", got)
	}
	if got := submit("GET", &Options{Sample: new(Percent(0.000001))}); got != OutcomeUnsampled {
		t.Errorf("sampled out: %q", got)
	}
	var paused Options // `sample: 0%` pauses mirroring; it is not the default 100%
	if err := json.Unmarshal([]byte(`{"sample":"0%"}`), &paused); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if got := submit("GET", &paused); got != OutcomeUnsampled {
			t.Fatalf("sample 0%%: %q", got)
		}
	}
	limited := &Options{RateLimit: 1}
	outcomes := map[string]int{}
	for range 5 {
		outcomes[submit("HEAD", limited)]++
	}
	if outcomes[OutcomeQueued] != 1 || outcomes[OutcomeRateLimited] != 4 {
		t.Errorf("five copies at rateLimit 1/s: %v", outcomes)
	}
}

// busyBackend stands in for a candidate that spins: each call holds its
// goroutine for hold, and the most calls seen in flight at once is kept.
type busyBackend struct {
	hold          time.Duration
	calls         atomic.Int64
	inFlight, max atomic.Int64
	fail          bool
}

func (b *busyBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	b.calls.Add(1)
	n := b.inFlight.Add(1)
	defer b.inFlight.Add(-1)
	for {
		m := b.max.Load()
		if n <= m || b.max.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(b.hold)
	if b.fail {
		return nil, &kindedError{kind: "deadline"}
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
}

func TestMirrorBudgetCapsCallsAcrossRoutes(t *testing.T) {
	be := &busyBackend{hold: 150 * time.Millisecond}
	m := NewMirror(MirrorConfig{Workers: 4, Budget: 1, MaxLag: 100 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	submitted := 0
	for i := 0; i < 8; i++ {
		for _, route := range []string{"GET /a", "GET /b"} {
			if m.Submit(Exchange{Route: route, Request: httptest.NewRequest("GET", "/x", nil),
				Legacy: Response{Status: 200}, Candidate: be}) == OutcomeQueued {
				submitted++
			}
		}
	}
	closeMirror(t, m)
	if got := be.max.Load(); got != 1 {
		t.Fatalf("%d candidate calls ran at once across the routes, budget 1", got)
	}
	var samples, drops uint64
	for _, route := range []string{"GET /a", "GET /b"} {
		ev := m.Evidence(route)
		samples += ev.Samples
		drops += ev.Drops
	}
	// 150 ms per call and 100 ms of allowed lag: the first call runs, the
	// rest of the burst cannot get a slot in time and is dropped, not run late.
	if samples != uint64(be.calls.Load()) || samples+drops != uint64(submitted) || samples > 2 || drops == 0 {
		t.Fatalf("submitted %d: %d samples, %d drops, %d calls", submitted, samples, drops, be.calls.Load())
	}
}

func TestMirrorOpenBreakerStopsQueuedCopies(t *testing.T) {
	be := &busyBackend{hold: 50 * time.Millisecond, fail: true}
	m := NewMirror(MirrorConfig{Workers: 1, BreakerThreshold: 1, MaxLag: time.Minute,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, nil)
	for i := 0; i < 6; i++ {
		if got := m.Submit(Exchange{Route: "GET /x", Request: httptest.NewRequest("GET", "/x", nil),
			Legacy: Response{Status: 200}, Candidate: be}); got != OutcomeQueued {
			t.Fatalf("copy %d: %s", i, got)
		}
	}
	closeMirror(t, m)
	ev := m.Evidence("GET /x")
	if be.calls.Load() != 1 || ev.Samples != 1 || ev.BreakerOpen != 5 {
		t.Fatalf("%d calls, %d samples, %d refused by the open breaker; want 1, 1, 5", be.calls.Load(), ev.Samples, ev.BreakerOpen)
	}
}
