package wasm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// budgetRuntime is a runtime of its own (the budget is per runtime) on the
// shared compilation cache, limited to budget.
func budgetRuntime(t *testing.T, budget *MemoryBudget) *Runtime {
	t.Helper()
	rt, err := NewRuntime(context.Background(), filepath.Join(sharedDir, "cache"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	rt.LimitMemory(budget)
	t.Cleanup(func() { _ = rt.Close(context.Background()) })
	return rt
}

// TestMemoryBudgetHostileGuests fills the budget with looping guests and
// sends allocate-until-trap guests at a concurrency it cannot hold: the
// reservations never pass the limit, the requests beyond it are refused as
// KindBudget (and counted) after the wait, the ones that fit run into
// maxMemory, and once the guests are gone every reserved byte is back.
func TestMemoryBudgetHostileGuests(t *testing.T) {
	const perInstance = 16<<20 + 1<<20 // maxMemory + maxResponse
	budget, err := NewMemoryBudget(3*perInstance, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rt := budgetRuntime(t, budget)
	b, err := New(context.Background(), Options{Path: buildGuest(t), MaxMemory: 16 << 20, MaxResponse: 1 << 20, Timeout: Duration(1500 * time.Millisecond)}, rt)
	if err != nil {
		t.Fatal(err)
	}

	kinds := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	hit := func(path string) {
		defer wg.Done()
		_, err := b.RoundTrip(httptest.NewRequest("GET", "http://guest"+path, nil))
		mu.Lock()
		kinds[ErrorKind(err)]++
		mu.Unlock()
	}
	for range 3 {
		wg.Add(1)
		go hit("/hang")
	}
	for deadline := time.Now().Add(time.Second); budget.Stats().Reserved < budget.Stats().Limit; {
		if time.Now().After(deadline) {
			t.Fatalf("three looping guests reserved %+v, want the whole budget", budget.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	const clients = 12
	for range clients {
		wg.Add(1)
		go hit("/oom")
	}
	wg.Wait()
	for range clients {
		wg.Add(1)
		go hit("/oom")
	}
	wg.Wait()
	st := budget.Stats()
	t.Logf("kinds %v, budget %+v", kinds, st)
	if kinds[KindDeadline] != 3 || kinds[KindBudget] < clients || kinds[KindMemory] == 0 || kinds[KindMemory]+kinds[KindBudget] != 2*clients {
		t.Errorf("want the 3 loops to time out, the first %d allocators to be refused and the rest to fail as memory or budget; got %v", clients, kinds)
	}
	if st.Peak > st.Limit {
		t.Errorf("reservations peaked at %d bytes, above the %d-byte budget", st.Peak, st.Limit)
	}
	if st.Refused != uint64(kinds[KindBudget]) || b.Stats().Errors[KindBudget] != uint64(kinds[KindBudget]) {
		t.Errorf("refusals counted %d (budget) and %d (backend), want %d", st.Refused, b.Stats().Errors[KindBudget], kinds[KindBudget])
	}
	// What is still reserved is the pooled buffers the guests dirtied.
	if _, pooled := b.mem.held(); st.Reserved > pooled || st.Reserved > st.Limit {
		t.Errorf("with no guest running, %d bytes reserved; the pool holds %d", st.Reserved, pooled)
	}
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := budget.Stats(); st.Reserved != 0 {
		t.Errorf("after Close %d bytes are still reserved, want 0", st.Reserved)
	}
}

// TestMemoryBudgetReclaimsPooledBuffers: buffers another route keeps in
// its pool do not starve an instance; they are dropped for it.
func TestMemoryBudgetReclaimsPooledBuffers(t *testing.T) {
	const perInstance = 16<<20 + 1<<20
	budget, err := NewMemoryBudget(perInstance, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rt := budgetRuntime(t, budget)
	opts := Options{Path: buildGuest(t), MaxMemory: 16 << 20, MaxResponse: 1 << 20}
	first, err := New(context.Background(), opts, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close(context.Background())
	second, err := New(context.Background(), opts, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close(context.Background())
	if _, err := first.RoundTrip(httptest.NewRequest("GET", "http://guest/oom", nil)); ErrorKind(err) != KindMemory {
		t.Fatalf("first /oom: %v, want a memory failure", err)
	}
	if n, _ := first.mem.held(); n != 1 || budget.Stats().Reserved == 0 {
		t.Fatalf("first route pools %d buffers holding %d bytes of budget, want 1 with a reservation", n, budget.Stats().Reserved)
	}
	resp, err := second.RoundTrip(httptest.NewRequest("GET", "http://guest/counter", nil))
	if err != nil {
		t.Fatalf("the second route was refused while the first only pooled a buffer: %v", err)
	}
	resp.Body.Close()
	if n, _ := first.mem.held(); n != 0 {
		t.Errorf("the first route still pools %d buffers", n)
	}
}

// TestMemoryBudgetRefusesOversizedRoute: a route whose one instance needs
// more than the whole budget is refused at once, with a message that says
// what to change.
func TestMemoryBudgetRefusesOversizedRoute(t *testing.T) {
	budget, err := NewMemoryBudget(8<<20, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	rt := budgetRuntime(t, budget)
	b, err := New(context.Background(), Options{Path: buildGuest(t), MaxMemory: 16 << 20}, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(context.Background())
	start := time.Now()
	_, err = b.RoundTrip(httptest.NewRequest("GET", "http://guest/counter", nil))
	var ge *GuestError
	if !errors.As(err, &ge) || ge.Kind != KindBudget || !strings.Contains(err.Error(), "more than wasmMemory 8MiB") {
		t.Fatalf("got %v, want a budget refusal naming wasmMemory", err)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Errorf("a refusal that can never succeed waited %s", time.Since(start))
	}
	if _, err := NewMemoryBudget(0, 0); err == nil {
		t.Error("a zero budget was accepted")
	}
}

// TestStdoutCapture: a large answer is served whole from its mapping, and
// a guest printing past maxResponse is stopped without its output being
// kept.
func TestStdoutCapture(t *testing.T) {
	b := newGuestBackend(t, Options{MaxResponse: 1 << 20})
	resp, err := b.RoundTrip(httptest.NewRequest("GET", "http://guest/big?300", nil))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if body := string(raw); len(body) != 300<<10 || strings.Trim(body, "y") != "" {
		t.Errorf("a 300KiB answer came back as %d bytes", len(body))
	}
	_, err = b.RoundTrip(httptest.NewRequest("GET", "http://guest/big?51200", nil))
	if ErrorKind(err) != KindTooLarge || !strings.Contains(err.Error(), "maxResponse 1MiB") {
		t.Errorf("50MB of stdout: %v, want too-large naming maxResponse", err)
	}
	w := &limitedBuffer{limit: 1 << 20, overflow: func() {}}
	chunk := make([]byte, 100<<10)
	for range 20 {
		_, _ = w.Write(chunk)
	}
	if !w.overflowed || len(w.Bytes()) > 1<<20 || cap(w.Bytes()) > 1<<20 {
		t.Errorf("2MB written to a 1MiB capture: overflowed %v, kept %d bytes of a %d-byte buffer", w.overflowed, len(w.Bytes()), cap(w.Bytes()))
	}
	w.free()
}

// TestMemoryBudgetReclaimsIdleInstances: an idle reusable instance holds
// its reservation, and is closed for another route's instance that needs
// the room.
func TestMemoryBudgetReclaimsIdleInstances(t *testing.T) {
	const perInstance = 16<<20 + 1<<20
	budget, err := NewMemoryBudget(perInstance+(1<<20), 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	rt := budgetRuntime(t, budget)
	reused, err := New(context.Background(), Options{Path: buildReusableGuest(t), MaxMemory: 16 << 20, MaxResponse: 1 << 20, Reuse: 100}, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer reused.Close(context.Background())
	fresh, err := New(context.Background(), Options{Path: buildGuest(t), MaxMemory: 16 << 20, MaxResponse: 1 << 20}, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close(context.Background())
	resp, err := reused.RoundTrip(httptest.NewRequest("GET", "http://guest/counter", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if reused.Stats().IdleInstances != 1 || budget.Stats().Reserved < 16<<20 {
		t.Fatalf("after one reused request: %d idle, budget %+v; want one idle instance holding its reservation", reused.Stats().IdleInstances, budget.Stats())
	}
	resp, err = fresh.RoundTrip(httptest.NewRequest("GET", "http://guest/counter", nil))
	if err != nil {
		t.Fatalf("the other route was refused while the first only kept an idle instance: %v", err)
	}
	resp.Body.Close()
	if n := reused.Stats().IdleInstances; n != 0 {
		t.Errorf("%d idle instances survived the reclaim", n)
	}
}
