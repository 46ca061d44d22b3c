package wasm

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// served asks the reusable guest how many requests its instance answered.
func served(t *testing.T, b *Backend) int {
	t.Helper()
	resp, err := b.RoundTrip(httptest.NewRequest("GET", "/served", nil))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	n, err := strconv.Atoi(string(body))
	if err != nil {
		t.Fatalf("/served answered %q", body)
	}
	return n
}

func TestReuseKeepsInstanceUpToItsBudget(t *testing.T) {
	b := newReusableBackend(t, Options{Reuse: 3})
	var got []int
	for range 7 {
		got = append(got, served(t, b))
	}
	if want := []int{1, 2, 3, 1, 2, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("requests counted by the instance: %v, want %v (three per instance)", got, want)
	}
	if st := b.Stats(); st.IdleInstances != 1 || st.Requests != 7 {
		t.Errorf("stats %+v, want 7 requests and 1 idle instance", st)
	}
}

func TestReusableGuestWithoutReuseGetsAFreshInstance(t *testing.T) {
	b := newReusableBackend(t, Options{})
	for i := range 3 {
		if n := served(t, b); n != 1 {
			t.Fatalf("request %d was the instance's request %d, want a fresh instance each time", i+1, n)
		}
	}
	if st := b.Stats(); st.IdleInstances != 0 {
		t.Errorf("%d idle instances without reuse", st.IdleInstances)
	}
}

func TestReusableGuestGetsRequestBlock(t *testing.T) {
	b := newReusableBackend(t, Options{Reuse: 100})
	resp, body := do(t, b, "POST", "/echo?a=1", "hello\nworld", http.Header{"Content-Type": {"text/plain"}})
	if resp.StatusCode != 200 || body != "hello\nworld" || resp.Header.Get("X-Method") != "POST" || resp.Header.Get("X-Query") != "a=1" {
		t.Fatalf("echo: %d %v %q", resp.StatusCode, resp.Header, body)
	}
	// The next request on the same instance sees only its own variables.
	_, names := do(t, b, "GET", "/names", "", nil)
	if strings.Contains(names, "CONTENT_TYPE\nCONTENT_TYPE") || !strings.Contains(names, "REQUEST_METHOD") {
		t.Errorf("variables of the second request: %q", names)
	}
	// A header value cannot smuggle a line into the block.
	req := httptest.NewRequest("GET", "/header", nil)
	req.Header["X-Test"] = []string{"a\nPATH_INFO=/panic"}
	resp2, err := b.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp2.Body)
	if string(got) != "a PATH_INFO=/panic" {
		t.Errorf("X-Test arrived as %q", got)
	}
}

func TestReusedInstanceIsDiscardedAfterAFailure(t *testing.T) {
	tests := []struct {
		target string
		opts   Options
		kind   string
	}{
		{"/panic", Options{}, KindTrap}, // a Go reactor aborts on panic
		{"/hang", Options{Timeout: Duration(300 * time.Millisecond)}, KindDeadline},
		{"/sleep", Options{Timeout: Duration(300 * time.Millisecond)}, KindDeadline},
		{"/grow", Options{MaxMemory: 32 << 20}, KindMemory},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			tt.opts.Reuse = 100
			b := newReusableBackend(t, tt.opts)
			served(t, b)
			served(t, b)
			start := time.Now()
			_, err := b.RoundTrip(httptest.NewRequest("GET", tt.target, nil))
			if ErrorKind(err) != tt.kind {
				t.Fatalf("error %v, want kind %s", err, tt.kind)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("took %s to stop the guest", d)
			}
			if n := served(t, b); n != 1 {
				t.Errorf("after a %s the next request was the instance's request %d, want a fresh instance", tt.kind, n)
			}
		})
	}
}

func TestReuseRunsOneRequestPerInstanceAtATime(t *testing.T) {
	b := newReusableBackend(t, Options{Reuse: 1000, Pool: 4})
	var wg sync.WaitGroup
	errs := make(chan error, 8*40)
	for range 8 {
		wg.Go(func() {
			for range 40 {
				req := httptest.NewRequest("POST", "/echo", strings.NewReader(orderBody))
				req.Header.Set("Content-Type", "application/json")
				resp, err := b.RoundTrip(req)
				if err != nil {
					errs <- err
					return
				}
				if body, _ := io.ReadAll(resp.Body); string(body) != orderBody {
					errs <- io.ErrUnexpectedEOF
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.PeakInFlight > 4 || st.IdleInstances > 4 || st.IdleInstances == 0 {
		t.Errorf("stats %+v: want at most 4 guests at once and at most 4 idle instances", st)
	}
}

func TestIdleReusedInstancesAreClosed(t *testing.T) {
	b := newReusableBackend(t, Options{Reuse: 100})
	served(t, b)
	if st := b.Stats(); st.IdleInstances != 1 {
		t.Fatalf("%d idle instances after a request, want 1", st.IdleInstances)
	}
	time.Sleep(idleRelease*2 + 200*time.Millisecond)
	if st := b.Stats(); st.IdleInstances != 0 {
		t.Errorf("an idle route still keeps %d instances", st.IdleInstances)
	}
	if n, _ := b.mem.held(); n != 0 {
		t.Errorf("an idle route still holds %d linear-memory buffers", n)
	}
	if n := served(t, b); n != 1 {
		t.Errorf("after the idle period the request was the instance's request %d, want a new instance", n)
	}
}

func TestReuseNeedsAReusableGuest(t *testing.T) {
	_, err := New(context.Background(), Options{Path: buildGuest(t), Reuse: 10}, testRuntime(t))
	if err == nil || !strings.Contains(err.Error(), "reuse: 10 needs a reusable guest") || !strings.Contains(err.Error(), "-buildmode=c-shared") {
		t.Fatalf("New with reuse on a command: %v", err)
	}
	if _, err := New(context.Background(), Options{Path: buildGuest(t), Reuse: -1}, testRuntime(t)); err == nil {
		t.Error("negative reuse accepted")
	}
}

// TestIsReusableReadsTheExports tells the two builds of the README guest
// apart without compiling them, and refuses what is not a module.
func TestIsReusableReadsTheExports(t *testing.T) {
	for path, want := range map[string]bool{
		buildTestModule(t, "hello"):                                 false,
		buildTestModule(t, "hello-reusable", "-buildmode=c-shared"): true,
	} {
		if got, err := IsReusable(path); err != nil || got != want {
			t.Errorf("IsReusable(%s) = %v, %v; want %v", filepath.Base(path), got, err, want)
		}
	}
	notWasm := filepath.Join(t.TempDir(), "x.wasm")
	if err := os.WriteFile(notWasm, []byte("\x00asm\x01\x00\x00\x00\x07\xff"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{notWasm, filepath.Join(t.TempDir(), "missing.wasm")} {
		if _, err := IsReusable(path); err == nil {
			t.Errorf("IsReusable(%s) gave no error", path)
		}
	}
}

// TestReadmeGuestBuildsBothWays serves the README's two-way guest as a
// command (fresh instances) and as a reusable guest (one instance), and
// expects the same answers.
func TestReadmeGuestBuildsBothWays(t *testing.T) {
	command := newTestBackend(t, Options{Path: buildTestModule(t, "hello")})
	reused := newTestBackend(t, Options{Path: buildTestModule(t, "hello-reusable", "-buildmode=c-shared"), Reuse: 100})
	if command.cur.reusable || !reused.cur.reusable {
		t.Fatal("the plain build must be a command and the c-shared build a reusable guest")
	}
	for _, b := range []*Backend{command, reused, reused} {
		resp, body := do(t, b, "POST", "/greet", "12345", http.Header{"Content-Type": {"text/plain"}})
		if resp.StatusCode != 200 || body != "hello from POST /greet (5 bytes)\n" {
			t.Errorf("%s: %d %q", b.opts.Path, resp.StatusCode, body)
		}
	}
	if st := reused.Stats(); st.IdleInstances != 1 {
		t.Errorf("the reusable build kept %d instances, want 1", st.IdleInstances)
	}
}

func TestReusedInstanceIsDiscardedAfterAnOversizedResponse(t *testing.T) {
	b := newReusableBackend(t, Options{Reuse: 100, MaxResponse: 64 << 10})
	served(t, b)
	big := strings.Repeat("x", 100<<10)
	req := httptest.NewRequest("POST", "/echo", strings.NewReader(big))
	req.Header.Set("Content-Type", "text/plain")
	if _, err := b.RoundTrip(req); ErrorKind(err) != KindTooLarge {
		t.Fatalf("error %v, want too-large", err)
	}
	if n := served(t, b); n != 1 {
		t.Errorf("after an oversized response the next request was the instance's request %d, want a fresh instance", n)
	}
}
