package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// seen is what a test backend received.
type seen struct {
	Method, Path, Query string
	Header              http.Header
	BodyLen             int
	BodySum             string
}

// backend is a loopback upstream that answers with its name and records
// every request it gets.
type backend struct {
	*httptest.Server
	name string
	mu   sync.Mutex
	got  []seen
	hit  chan seen
}

func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name, hit: make(chan seen, 1000)}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		s := seen{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone(),
			BodyLen: len(body), BodySum: fmt.Sprintf("%x", sum[:8])}
		b.mu.Lock()
		b.got = append(b.got, s)
		b.mu.Unlock()
		b.hit <- s
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"side":%q,"path":%q}`, name, r.URL.Path)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *backend) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.got)
}

// waitServed returns the next request that is not a shadow copy (the
// comparison engine also sends A/A baseline copies to legacy).
func (b *backend) waitServed(t *testing.T) seen {
	t.Helper()
	for {
		if s := b.wait(t); s.Header.Get(shadow.HeaderShadow) == "" {
			return s
		}
	}
}

// wait returns the next request the backend receives, or fails.
func (b *backend) wait(t *testing.T) seen {
	t.Helper()
	select {
	case s := <-b.hit:
		return s
	case <-time.After(5 * time.Second):
		t.Fatalf("%s received nothing", b.name)
		return seen{}
	}
}

type harness struct {
	px     *Proxy
	ctrl   *strangler.Controller
	front  *testFront
	dir    string
	config string
}

// newHarness runs the real proxy handler behind a loopback server with a
// real SQLite store, from a config template whose {{legacy}}-style names
// are replaced by URLs.
func newHarness(t testing.TB, config string, urls map[string]string, mirror Mirror) *harness {
	t.Helper()
	for k, v := range urls {
		config = strings.ReplaceAll(config, "{{"+k+"}}", v)
	}
	return startHarness(t, config, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Mirror: mirror})
}

// startHarness is newHarness for a config ready to load, with opts's
// Logger, Mirror and Wasm; the harness adds the Controller.
func startHarness(t testing.TB, config string, opts Options) *harness {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := strangler.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := strangler.OpenStore(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	ctrl := strangler.NewController(store, nil, opts.Logger)
	if m, ok := opts.Mirror.(*shadow.Mirror); ok {
		ctrl.Shadow = m
	}
	opts.Controller = ctrl
	px := New(opts)
	if err := px.Load(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	front := newTestFront(t, px, nil)
	t.Cleanup(func() {
		front.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		px.Close(ctx)
		store.Close()
	})
	return &harness{px: px, ctrl: ctrl, front: front, dir: dir, config: path}
}

func (h *harness) set(t testing.TB, target string, mode strangler.Mode, weight int) {
	t.Helper()
	// Walk the state machine to the wanted mode.
	for _, m := range strangler.Modes[1 : mode.Index()+1] {
		req := strangler.TransitionRequest{Target: target, To: m, Actor: "test"}
		if m == strangler.ModeCanary {
			req.Weight = weight
			if mode != strangler.ModeCanary {
				req.Weight = 100
			}
		}
		if _, err := h.ctrl.Transition(context.Background(), req); err != nil {
			t.Fatalf("to %s: %v", m, err)
		}
	}
}

func get(t *testing.T, url string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

const twoSided = `
maxBufferedBody: 1KiB
services:
  orders:
    legacy: {{legacy}}
    candidate: {url: "{{candidate}}"}
    routes: ["GET /api/order", "POST /api/order", "GET /api/order/{id}", "GET /api/stream"]
    stickyBy: "header:X-User"
    shadow: {writes: allow}
`

func TestForwardingHeaders(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	candidate := newBackend(t, "candidate", nil)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL + "/base", "candidate": candidate.URL}, nil)
	req, _ := http.NewRequest(http.MethodGet, h.front.URL+"/api/order/42?x=1&y=%20", nil)
	req.Header.Set("Connection", "X-Drop-Me, Keep-Alive")
	req.Header.Set("X-Drop-Me", "1")
	req.Header.Set("Keep-Alive", "timeout=5")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Proxy-Authorization", "Basic x")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Keep", "yes")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s := legacy.wait(t)
	if s.Path != "/base/api/order/42" || s.Query != "x=1&y=%20" {
		t.Errorf("path %q query %q", s.Path, s.Query)
	}
	for _, hop := range []string{"X-Drop-Me", "Keep-Alive", "Proxy-Authorization"} {
		if v := s.Header.Get(hop); v != "" {
			t.Errorf("hop-by-hop %s reached legacy: %q", hop, v)
		}
	}
	if v := s.Header.Get("Te"); v != "" && v != "trailers" {
		t.Errorf("Te = %q", v)
	}
	if s.Header.Get("X-Keep") != "yes" {
		t.Error("end-to-end header X-Keep was dropped")
	}
	if got := s.Header.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	host := strings.TrimPrefix(h.front.URL, "http://")
	if s.Header.Get("X-Forwarded-Host") != host || s.Header.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("X-Forwarded-Host/Proto = %q %q", s.Header.Get("X-Forwarded-Host"), s.Header.Get("X-Forwarded-Proto"))
	}
	if want := `for=127.0.0.1;host="` + host + `";proto=http`; s.Header.Get("Forwarded") != want {
		t.Errorf("Forwarded = %q, want %q", s.Header.Get("Forwarded"), want)
	}
	if s.Header.Get(shadow.HeaderShadow) != "" {
		t.Error("a served request was marked as a shadow copy")
	}
	if candidate.count() != 0 {
		t.Error("legacy mode called the candidate")
	}
}

func TestModeDispatch(t *testing.T) {
	tests := []struct {
		mode            strangler.Mode
		answeredBy      string
		copyTo          string // who gets a detached, marked copy
		reverseShadow   bool
		legacyNeverHits bool
	}{
		{mode: strangler.ModeLegacy, answeredBy: "legacy"},
		{mode: strangler.ModeShadow, answeredBy: "legacy", copyTo: "candidate"},
		{mode: strangler.ModeCutover, answeredBy: "candidate", legacyNeverHits: true},
		{mode: strangler.ModeCutover, answeredBy: "candidate", copyTo: "legacy", reverseShadow: true},
		{mode: strangler.ModeRetired, answeredBy: "candidate", legacyNeverHits: true, reverseShadow: true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s reverse=%v", tt.mode, tt.reverseShadow), func(t *testing.T) {
			legacy := newBackend(t, "legacy", nil)
			candidate := newBackend(t, "candidate", nil)
			cfg := twoSided
			if tt.reverseShadow {
				cfg += "    reverseShadow: true\n"
			}
			h := newHarness(t, cfg, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, nil)
			h.set(t, "GET /api/order", tt.mode, 0)
			status, _, body := get(t, h.front.URL+"/api/order", nil)
			if status != 200 || !strings.Contains(body, `"side":"`+tt.answeredBy+`"`) {
				t.Fatalf("answer %d %s, want %s", status, body, tt.answeredBy)
			}
			switch tt.copyTo {
			case "candidate":
				if s := candidate.wait(t); s.Header.Get(shadow.HeaderShadow) != "1" {
					t.Errorf("shadow copy lacks %s: %v", shadow.HeaderShadow, s.Header)
				}
			case "legacy":
				if s := legacy.wait(t); s.Header.Get(shadow.HeaderShadow) != "1" {
					t.Errorf("reverse shadow copy lacks %s", shadow.HeaderShadow)
				}
			}
			// Another route of the same service stays on legacy.
			if _, _, body := get(t, h.front.URL+"/api/order/7", nil); !strings.Contains(body, `"side":"legacy"`) {
				t.Errorf("GET /api/order/7 answered by %s", body)
			}
			if tt.legacyNeverHits && legacy.count() != 1 {
				t.Errorf("legacy got %d requests, want only the other route's", legacy.count())
			}
		})
	}
}

func TestStickyCanary(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	candidate := newBackend(t, "candidate", nil)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, nil)
	h.set(t, "GET /api/order", strangler.ModeCanary, 30)
	onCandidate := 0
	users := 120
	for u := 0; u < users; u++ {
		user := map[string]string{"X-User": fmt.Sprintf("user-%d", u)}
		_, _, first := get(t, h.front.URL+"/api/order", user)
		for i := 0; i < 3; i++ {
			if _, _, again := get(t, h.front.URL+"/api/order", user); again != first {
				t.Fatalf("user-%d switched sides: %s then %s", u, first, again)
			}
		}
		if strings.Contains(first, "candidate") {
			onCandidate++
		}
	}
	if share := float64(onCandidate) / float64(users); share < 0.15 || share > 0.45 {
		t.Fatalf("%.0f%% of users on the candidate at weight 30%%", share*100)
	}
	// Raising the weight keeps the users already on the candidate there.
	if _, err := h.ctrl.Transition(context.Background(), strangler.TransitionRequest{Target: "GET /api/order", To: strangler.ModeCanary, Weight: 60}); err != nil {
		t.Fatal(err)
	}
	for u := 0; u < users; u++ {
		user := map[string]string{"X-User": fmt.Sprintf("user-%d", u)}
		if stickyBucket(user["X-User"]) < 30 {
			if _, _, body := get(t, h.front.URL+"/api/order", user); !strings.Contains(body, "candidate") {
				t.Fatalf("user-%d left the candidate when the weight grew", u)
			}
		}
	}
}

func TestShadowBodyCap(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	candidate := newBackend(t, "candidate", nil)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, nil)
	h.set(t, "POST /api/order", strangler.ModeShadow, 0)
	post := func(body []byte, chunked bool) {
		var rd io.Reader = bytes.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // hides the length: sent chunked
		}
		resp, err := http.Post(h.front.URL+"/api/order", "application/json", rd)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	small := bytes.Repeat([]byte("s"), 900)
	post(small, false)
	if l, c := legacy.waitServed(t), candidate.wait(t); l.BodySum != c.BodySum || c.BodyLen != 900 {
		t.Fatalf("small body: legacy %+v candidate %+v", l, c)
	}
	for _, chunked := range []bool{false, true} {
		big := bytes.Repeat([]byte("b"), 5000)
		post(big, chunked)
		if l := legacy.waitServed(t); l.BodyLen != 5000 {
			t.Fatalf("legacy got %d bytes of a 5000-byte body (chunked=%v)", l.BodyLen, chunked)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if candidate.count() != 1 {
		t.Fatalf("candidate got %d copies; bodies over the cap must not be mirrored", candidate.count())
	}
	if n := h.ctrl.Route("POST /api/order").Mirror.TooLarge.Load(); n != 2 {
		t.Fatalf("too-large count = %d, want 2", n)
	}
}

func TestShadowResponseCapAndCompare(t *testing.T) {
	// Legacy answers big for /api/order/big: the response is streamed to the
	// client in full but not handed to the comparison.
	legacy := newBackend(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if strings.HasSuffix(r.URL.Path, "/big") {
			fmt.Fprintf(w, `{"pad":%q}`, strings.Repeat("x", 4000))
			return
		}
		fmt.Fprint(w, `{"id":1,"price":200}`)
	})
	candidate := newBackend(t, "candidate", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":1,"price":300}`)
	})
	store, err := strangler.OpenStore(filepath.Join(t.TempDir(), "samples.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, store)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
	h.set(t, "GET /api/order/{id}", strangler.ModeShadow, 0)
	status, _, body := get(t, h.front.URL+"/api/order/big", nil)
	if status != 200 || len(body) < 4000 {
		t.Fatalf("client got %d, %d bytes", status, len(body))
	}
	for i := 0; i < 3; i++ {
		if _, _, body := get(t, h.front.URL+"/api/order/1", nil); !strings.Contains(body, `"price":200`) {
			t.Fatalf("client got %s, want legacy's answer", body)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var st strangler.RouteStatus
		for _, s := range h.ctrl.Status() {
			if s.Route == "GET /api/order/{id}" {
				st = s
			}
		}
		if st.Samples >= 3 {
			if st.Mismatches != 3 || st.Mirror.TooLarge != 1 || len(st.Differences) == 0 ||
				!strings.Contains(st.Differences[0].Signature, "/price") || st.Differences[0].Count != 3 {
				t.Fatalf("status = %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no comparisons recorded: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestUpstreamFailures(t *testing.T) {
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	reset := newBackend(t, "reset", func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	})
	garbage := newBackend(t, "garbage", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, _ := http.NewResponseController(w).Hijack()
		buf.WriteString("HTTP/1.1 2oo WAT\r\n\r\n\x00\x01garbage")
		buf.Flush()
		conn.Close()
	})
	legacy := newBackend(t, "legacy", nil)
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	tests := []struct {
		name, legacy, candidate string
		mode                    strangler.Mode
		want                    int
		wantBody                string
	}{
		{"legacy down", downURL, legacy.URL, strangler.ModeLegacy, 502, `"error":"the upstream failed to answer"`},
		{"legacy slow", slow.URL, legacy.URL, strangler.ModeLegacy, 504, `"error":"the upstream did not answer in time"`},
		{"legacy resets", reset.URL, legacy.URL, strangler.ModeLegacy, 502, `"side":"legacy"`},
		{"shadow candidate down", legacy.URL, downURL, strangler.ModeShadow, 200, `"side":"legacy"`},
		{"shadow candidate garbage", legacy.URL, garbage.URL, strangler.ModeShadow, 200, `"side":"legacy"`},
		{"shadow candidate slow", legacy.URL, slow.URL, strangler.ModeShadow, 200, `"side":"legacy"`},
		{"cutover candidate garbage", legacy.URL, garbage.URL, strangler.ModeCutover, 502, `"side":"candidate"`},
		{"cutover candidate slow", legacy.URL, slow.URL, strangler.ModeCutover, 504, `"service":"orders"`},
		{"cutover candidate down", legacy.URL, downURL, strangler.ModeCutover, 502, `"status":502`},
	}
	cfg := `
services:
  orders:
    legacy: {{legacy}}
    timeout: 300ms
    candidate: {url: "{{candidate}}", timeout: 300ms}
    routes: ["GET /api/order"]
`
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, cfg, map[string]string{"legacy": tt.legacy, "candidate": tt.candidate}, nil)
			h.set(t, "orders", tt.mode, 0)
			status, hdr, body := get(t, h.front.URL+"/api/order", nil)
			if status != tt.want || !strings.Contains(body, tt.wantBody) {
				t.Fatalf("got %d %s, want %d with %s", status, body, tt.want, tt.wantBody)
			}
			if status >= 500 && hdr.Get("Content-Type") != "application/json" {
				t.Fatalf("error Content-Type = %q", hdr.Get("Content-Type"))
			}
		})
	}
}

func TestUnmatchedRequests(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	gateway := newBackend(t, "gateway", nil)
	cfg := "default: {{gateway}}\n" + twoSided
	h := newHarness(t, cfg, map[string]string{"legacy": legacy.URL, "candidate": legacy.URL, "gateway": gateway.URL}, nil)
	if _, _, body := get(t, h.front.URL+"/actuator/health", nil); !strings.Contains(body, `"side":"gateway"`) {
		t.Fatalf("unmatched request answered by %s", body)
	}
	h2 := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": legacy.URL}, nil)
	status, _, body := get(t, h2.front.URL+"/nowhere", nil)
	if status != 404 || !strings.Contains(body, "no route matches GET /nowhere") {
		t.Fatalf("got %d %s", status, body)
	}
}

func TestStreamingIsFlushed(t *testing.T) {
	release := make(chan struct{})
	legacy := newBackend(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		<-release
		fmt.Fprint(w, "data: second\n\n")
	})
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": legacy.URL}, nil)
	h.set(t, "GET /api/stream", strangler.ModeShadow, 0) // the tee must not hold the stream back
	resp, err := http.Get(h.front.URL + "/api/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if line := firstLine(t, resp.Body); line != "data: first\n" {
		t.Fatalf("first line %q", line)
	}
	close(release)
}

func TestReloadKeepsServing(t *testing.T) {
	inFlight := make(chan struct{})
	finish := make(chan struct{})
	legacy := newBackend(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/order/slow" {
			close(inFlight)
			<-finish
		}
		fmt.Fprintf(w, "legacy %s", r.URL.Path)
	})
	other := newBackend(t, "other", nil)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": legacy.URL}, nil)
	h.set(t, "GET /api/order", strangler.ModeShadow, 0)
	var once sync.Once
	release := func() { once.Do(func() { close(finish) }) }
	defer release() // the server cannot close with the slow request parked
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.px.Watch(ctx, h.config, 20*time.Millisecond, nil)
	time.Sleep(50 * time.Millisecond) // let the watcher take the file's first stamp

	slowDone := make(chan string, 1)
	go func() {
		resp, err := http.Get(h.front.URL + "/api/order/slow")
		if err != nil {
			slowDone <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowDone <- string(b)
	}()
	<-inFlight

	// An invalid edit is rejected with the reason; the old table serves on.
	if err := os.WriteFile(h.config, []byte("services:\n  orders:\n    legacy: not a url\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := h.px.Reload(context.Background(), h.config)
	if err == nil || !strings.Contains(err.Error(), "services.orders.legacy") {
		t.Fatalf("invalid reload: %v", err)
	}
	if _, _, body := get(t, h.front.URL+"/api/order/1", nil); body != "legacy /api/order/1" {
		t.Fatalf("after rejected reload: %s", body)
	}

	// A valid edit moves /api/product to another service; state is kept.
	edited := strings.ReplaceAll(twoSided, "{{legacy}}", legacy.URL)
	edited = strings.ReplaceAll(edited, "{{candidate}}", legacy.URL)
	edited += "  products:\n    legacy: " + other.URL + "\n    routes: [\"GET /api/product\"]\n"
	if err := os.WriteFile(h.config, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Second) // mtime granularity: make the change visible
	os.Chtimes(h.config, future, future)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, body := get(t, h.front.URL+"/api/product", nil); strings.Contains(body, `"side":"other"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the file change was not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if h.ctrl.Route("GET /api/order").State().Mode != strangler.ModeShadow {
		t.Fatal("reload reset a route's mode")
	}
	release()
	if got := <-slowDone; got != "legacy /api/order/slow" {
		t.Fatalf("in-flight request during reloads got %q", got)
	}
}

func TestReloadRefusesToDropCandidateInUse(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": legacy.URL}, nil)
	h.set(t, "GET /api/order", strangler.ModeCutover, 0)
	cfg, err := strangler.ParseConfig([]byte("services:\n  orders:\n    legacy: "+legacy.URL+"\n    routes: [\"GET /api/order\"]\n"), h.dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.px.Load(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "roll the route back first") {
		t.Fatalf("Load = %v", err)
	}
}

func TestStatsCountBothSides(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	candidate := newBackend(t, "candidate", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
	})
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, nil)
	h.set(t, "GET /api/order", strangler.ModeCanary, 100)
	for i := 0; i < 4; i++ {
		get(t, h.front.URL+"/api/order", nil)
	}
	var st strangler.RouteStatus
	for _, s := range h.ctrl.Status() {
		if s.Route == "GET /api/order" {
			st = s
		}
	}
	if st.Requests[strangler.SideCandidate] != 4 || st.Errors[strangler.SideCandidate] != 4 || st.Requests[strangler.SideLegacy] != 0 {
		t.Fatalf("status = %+v", st)
	}
	data, _ := json.Marshal(st)
	if !strings.Contains(string(data), `"latency":{"candidate":{"p50Millis":`) {
		t.Fatalf("status JSON = %s", data)
	}
}

func TestWatchReloadsOnHUP(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	other := newBackend(t, "other", nil)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": legacy.URL}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	go h.px.Watch(ctx, h.config, time.Hour, hup) // polling effectively off
	edited := strings.ReplaceAll(strings.ReplaceAll(twoSided, "{{legacy}}", other.URL), "{{candidate}}", other.URL)
	if err := os.WriteFile(h.config, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	hup <- syscall.SIGHUP
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, _, body := get(t, h.front.URL+"/api/order", nil); strings.Contains(body, `"side":"other"`) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the config")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMirrorBackendKeepsMark checks that a copy reaches the upstream with
// the mark the mirror gave it (an A/A baseline copy stays "baseline"), and
// that stripping hop-by-hop headers cannot remove the mark.
func TestMirrorBackendKeepsMark(t *testing.T) {
	got := make(chan http.Header, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Clone()
	}))
	t.Cleanup(srv.Close)
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tr := newHTTPTransport(target, 2, 5*time.Second)
	t.Cleanup(tr.(idleCloser).CloseIdleConnections)
	m := mirrorBackend{up: newUpstream("svc", strangler.SideLegacy, target, tr, slog.Default())}
	tests := []struct {
		name   string
		header map[string]string
		want   string
	}{
		{name: "unmarked copy", want: "1"},
		{name: "shadow copy", header: map[string]string{shadow.HeaderShadow: "1"}, want: "1"},
		{name: "baseline copy", header: map[string]string{shadow.HeaderShadow: "baseline"}, want: "baseline"},
		{name: "mark named in Connection", header: map[string]string{shadow.HeaderShadow: "baseline",
			"Connection": "keep-alive, " + shadow.HeaderShadow}, want: "baseline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/order", nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			resp, err := m.RoundTrip(r)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			h := <-got
			if v := h.Get(shadow.HeaderShadow); v != tt.want {
				t.Errorf("%s = %q, want %q", shadow.HeaderShadow, v, tt.want)
			}
			if h.Get("Connection") != "" && strings.Contains(h.Get("Connection"), shadow.HeaderShadow) {
				t.Errorf("Connection header forwarded: %q", h.Get("Connection"))
			}
		})
	}
}

func TestProxyCountsClientRequestsForItsMirror(t *testing.T) {
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	defer mirror.Close(context.Background())
	if p := New(Options{Mirror: mirror}); p.traffic != mirror.Traffic() {
		t.Error("the proxy does not count client requests for the mirror it was given")
	}
	if p := New(Options{}); p.traffic == nil || p.traffic != p.own.Traffic() {
		t.Error("the proxy does not count client requests for its own mirror")
	}
}

// TestShadowCopyWaitsForAGapInClientTraffic: while another client request
// is in flight, a copy is held back, and it goes as soon as that request
// ends.
func TestShadowCopyWaitsForAGapInClientTraffic(t *testing.T) {
	release := make(chan struct{})
	var releaseOnce sync.Once
	free := func() { releaseOnce.Do(func() { close(release) }) }
	legacy := newBackend(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/slow" {
			<-release
		}
		fmt.Fprint(w, `{"side":"legacy"}`)
	})
	defer free() // before the servers close: they wait for handlers
	candidate := newBackend(t, "candidate", nil)
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	h := newHarness(t, `
services:
  orders:
    legacy: {{legacy}}
    candidate: {url: "{{candidate}}"}
    routes: ["GET /api/order", "GET /api/slow"]
`, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
	h.set(t, "GET /api/order", strangler.ModeShadow, 0)

	slowDone := make(chan struct{})
	go func() {
		defer close(slowDone)
		get(t, h.front.URL+"/api/slow", nil) // legacy mode: in flight until released
	}()
	legacy.wait(t) // the slow request has reached legacy
	if status, _, _ := get(t, h.front.URL+"/api/order", nil); status != 200 {
		t.Fatalf("status %d", status)
	}
	legacy.wait(t)
	select {
	case s := <-candidate.hit:
		t.Fatalf("the copy of %s went out while a client request was in flight", s.Path)
	case <-time.After(5 * time.Millisecond): // half of maxYield
	}
	free()
	<-slowDone
	if s := candidate.wait(t); s.Path != "/api/order" {
		t.Fatalf("candidate got %+v", s)
	}
}

// TestReloadPlacesWasmOptionErrors: a reload finds a misspelt Wasm option
// where the proxy's start does, with its line, column and a suggestion, and
// the table in service keeps serving.
func TestReloadPlacesWasmOptionErrors(t *testing.T) {
	legacy := newBackend(t, "legacy", nil)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": legacy.URL}, nil)
	edited := "services:\n  orders:\n    legacy: " + legacy.URL + "\n    routes: [\"GET /api/order\"]\n" +
		"    candidate:\n      wasm: order.wasm\n      maxMemroy: 64MiB\n"
	if err := os.WriteFile(h.config, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	err := h.px.Reload(context.Background(), h.config)
	if err == nil || !strings.Contains(err.Error(), h.config+":7:7:") || !strings.Contains(err.Error(), `did you mean "maxMemory"`) {
		t.Fatalf("reload with a misspelt Wasm option: %v", err)
	}
	if _, _, body := get(t, h.front.URL+"/api/order/1", nil); !strings.Contains(body, "legacy") {
		t.Fatalf("after the rejected reload: %s", body)
	}
}

// testFront serves a handler as the proxy command does, on this package's
// Server, so every test through a harness goes through it.
type testFront struct {
	URL   string
	close func()
}

// newTestFront starts a front for h, with the proxy command's timeouts
// changed by configure (when set); it is shut down at the end of the test,
// if not before, and Serve must then return http.ErrServerClosed.
func newTestFront(t testing.TB, h http.Handler, configure func(*Server)) *testFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: log.New(io.Discard, "", 0)}
	if configure != nil {
		configure(srv)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	var once sync.Once
	f := &testFront{URL: "http://" + ln.Addr().String(), close: func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
			if err := <-served; !errors.Is(err, http.ErrServerClosed) {
				t.Errorf("Serve returned %v after Shutdown, want ErrServerClosed", err)
			}
		})
	}}
	t.Cleanup(f.close)
	return f
}

// Close stops the front, waiting for requests in flight.
func (f *testFront) Close() { f.close() }
