package strangler

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/internal/pgtest"
	"github.com/strangler-fig/migrate/shadow"
)

const storeConfig = `
services:
  orders:
    legacy: http://127.0.0.1:1
    candidate: {url: "http://127.0.0.1:2"}
    routes: ["GET /api/order", "POST /api/order"]
  products:
    legacy: http://127.0.0.1:3
    routes: ["GET /api/product"]
`

func newTestController(t *testing.T, path string) *Controller {
	t.Helper()
	store, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	cfg, err := ParseConfig([]byte(storeConfig), filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	c := NewController(store, nil, nil)
	if _, err := c.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return c
}

// eachBackend runs a store test on a SQLite file and on a PostgreSQL
// database.
func eachBackend(t *testing.T, test func(t *testing.T, location string)) {
	t.Run("sqlite", func(t *testing.T) { test(t, filepath.Join(t.TempDir(), "migrate.db")) })
	t.Run("postgres", func(t *testing.T) { test(t, pgtest.Shared(t).NewDatabase(t)) })
}

func TestStoreSurvivesReopen(t *testing.T) { eachBackend(t, testStoreSurvivesReopen) }

func testStoreSurvivesReopen(t *testing.T, path string) {
	ctx := context.Background()
	c := newTestController(t, path)
	if _, err := c.Transition(ctx, TransitionRequest{Target: "orders", To: ModeShadow, Actor: "alice", Reason: "v1 deployed",
		Evidence: json.RawMessage(`{"note":"manual"}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeCanary, Weight: 30, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	r := c.Route("GET /api/order")
	r.Observe(SideLegacy, 3*time.Millisecond, false)
	r.Observe(SideCandidate, 5*time.Millisecond, true)
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c.Store().Close()

	again := newTestController(t, path)
	if got := again.Route("GET /api/order").State(); got != (RouteState{ModeCanary, 30}) {
		t.Errorf("GET /api/order state after reopen = %+v", got)
	}
	if got := again.Route("POST /api/order").State(); got.Mode != ModeShadow {
		t.Errorf("POST /api/order state after reopen = %+v", got)
	}
	st := statusOf(again, "GET /api/order")
	if st.Requests[SideLegacy] != 1 || st.Errors[SideCandidate] != 1 || st.Latency[SideCandidate].P50 < 4 {
		t.Errorf("counters after reopen = %+v", st)
	}
	audit, err := again.Audit(ctx, AuditQuery{Route: "GET /api/order"})
	if err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 || audit[0].To != ModeShadow || audit[1].To != ModeCanary || audit[1].ToWeight != 30 ||
		audit[0].Actor != "alice" || audit[0].Reason != "v1 deployed" || string(audit[0].Evidence) != `{"note":"manual"}` {
		t.Errorf("audit = %+v", audit)
	}
}

// TestTransitionSurvivesKill acknowledges a transition in a child process,
// kills it with SIGKILL, and checks the transition is in the file.
func TestTransitionSurvivesKill(t *testing.T) {
	if os.Getenv("MIGRATE_STORE_CHILD") != "" {
		storeChild()
		return
	}
	eachBackend(t, testTransitionSurvivesKill)
}

func testTransitionSurvivesKill(t *testing.T, location string) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestTransitionSurvivesKill$")
	cmd.Env = append(os.Environ(), "MIGRATE_STORE_CHILD="+location)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	n, _ := out.Read(buf) // the child prints "acknowledged" after Transition returns
	if !strings.Contains(string(buf[:n]), "acknowledged") {
		cmd.Process.Kill()
		t.Fatalf("child said %q", buf[:n])
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred close, no flush
		t.Fatal(err)
	}
	_ = cmd.Wait()
	c := newTestController(t, location)
	if got := c.Route("GET /api/order").State(); got.Mode != ModeShadow {
		t.Fatalf("state after kill -9 = %+v, want shadow", got)
	}
	audit, _ := c.Audit(context.Background(), AuditQuery{})
	if len(audit) != 2 {
		t.Fatalf("audit after kill -9 has %d records, want 2", len(audit))
	}
}

func storeChild() {
	path := os.Getenv("MIGRATE_STORE_CHILD")
	store, err := OpenStore(path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	cfg, _ := ParseConfig([]byte(storeConfig), filepath.Dir(path))
	c := NewController(store, nil, nil)
	if _, err := c.Apply(context.Background(), cfg); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	if _, err := c.Transition(context.Background(), TransitionRequest{Target: "orders", To: ModeShadow, Actor: "child"}); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("acknowledged")
	time.Sleep(time.Minute) // killed here
}

func TestSamplesCappedPerSignature(t *testing.T) { eachBackend(t, testSamplesCappedPerSignature) }

func testSamplesCappedPerSignature(t *testing.T, location string) {
	ctx := context.Background()
	store := storeAt(t, location)
	sigs := make([]string, 30)
	for i := range sigs {
		sigs[i] = "match"
		if i%3 == 0 {
			sigs[i] = "/price value"
		}
	}
	addSamples(t, store, sigs)
	got, err := store.Samples(ctx, "GET /a", 100, false)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, r := range got {
		counts[r.Signature]++
	}
	if counts["match"] != 5 || counts["/price value"] != 5 {
		t.Fatalf("kept %v, want 5 per signature", counts)
	}
	if string(got[0].Data) != `{"i":29}` {
		t.Fatalf("newest first: got %s", got[0].Data)
	}
}

// TestSamplesOfDifferencesOnly stores differences first and then many
// matches and A/A baselines, as a busy route does, and still reads the
// differences.
func TestSamplesOfDifferencesOnly(t *testing.T) { eachBackend(t, testSamplesOfDifferencesOnly) }

func testSamplesOfDifferencesOnly(t *testing.T, location string) {
	ctx := context.Background()
	store := storeAt(t, location)
	addSamples(t, store, []string{"/price value", "candidate-error:timeout", "match", "baseline match", "baseline /id value", "match"})
	got, err := store.Samples(ctx, "GET /a", 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Signature != "candidate-error:timeout" || got[1].Signature != "/price value" {
		t.Fatalf("differences only, newest first: %+v", got)
	}
	if all, _ := store.Samples(ctx, "GET /a", 2, false); len(all) != 2 || all[0].Signature != "match" {
		t.Fatalf("every sample, newest first: %+v", all)
	}
}

func TestStoreRecordsShadowSamples(t *testing.T) { eachBackend(t, testStoreRecordsShadowSamples) }

func testStoreRecordsShadowSamples(t *testing.T, path string) {
	store, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < SamplesPerSignature+5; i++ {
		store.Record(shadow.Sample{At: time.Now(), Route: "GET /a", Result: shadow.Result{Outcome: shadow.OutcomeMatch}})
	}
	store.Record(shadow.Sample{At: time.Now(), Route: "GET /a", Result: shadow.Result{Outcome: shadow.OutcomeCandidateError, Error: "timeout"}})
	if err := store.Close(); err != nil { // Close writes what is queued
		t.Fatal(err)
	}
	store, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	got, err := store.Samples(context.Background(), "GET /a", 100, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != SamplesPerSignature+1 || got[0].Signature != "candidate-error:timeout" {
		t.Fatalf("stored %d samples, newest %q", len(got), got[0].Signature)
	}
}

func statusOf(c *Controller, route string) RouteStatus {
	for _, s := range c.Status() {
		if s.Route == route {
			return s
		}
	}
	return RouteStatus{}
}

// A long shadow run offers the store every sample; once a signature has its
// examples, only an occasional fresh one is written, so the writer keeps up.
func TestStoreThinsRepeatedSamples(t *testing.T) {
	store := tempStore(t)
	wanted := 0
	for i := 0; i < 20000; i++ {
		s := shadow.Sample{At: time.Now(), Route: "GET /a", Result: shadow.Result{Outcome: shadow.OutcomeMatch}}
		if store.Wants(s) {
			wanted++
			store.Record(s)
		}
	}
	// The first SamplesPerSignature, then one in sampleRefreshEvery.
	if want := SamplesPerSignature + (20000-1)/sampleRefreshEvery - (SamplesPerSignature-1)/sampleRefreshEvery; wanted != want {
		t.Fatalf("store wanted %d of 20000 identical samples, want %d", wanted, want)
	}
	if n := store.SamplesDropped(); n != 0 {
		t.Fatalf("%d samples dropped: repeated samples should be thinned before the queue", n)
	}
}

// Large bodies cannot pile up in the sample queue: it is bounded in bytes.
func TestStoreSampleQueueIsBoundedInBytes(t *testing.T) {
	store := tempStore(t)
	big := make([]byte, 1<<20)
	for i := 0; i < 64; i++ { // 64 distinct signatures of 2 MiB each: 128 MiB offered
		store.Record(shadow.Sample{At: time.Now(), Route: "GET /a",
			Legacy: shadow.Response{Body: big}, Candidate: shadow.Response{Body: big},
			Result: shadow.Result{Outcome: shadow.OutcomeCandidateError, Error: fmt.Sprint("kind", i)}})
	}
	if q := store.writer.queued.Load(); q > sampleQueueBytes {
		t.Fatalf("%d bytes queued, more than the %d-byte bound", q, sampleQueueBytes)
	}
}

// tempStore opens a store in a fresh directory, closed when the test ends.
func tempStore(t *testing.T) *Store {
	t.Helper()
	return storeAt(t, filepath.Join(t.TempDir(), "migrate.db"))
}

func storeAt(t *testing.T, location string) *Store {
	t.Helper()
	store, err := OpenStore(location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// addSamples stores one sample of GET /a per signature, oldest first, each
// with data {"i":N}, keeping 5 per signature.
func addSamples(t *testing.T, store *Store, sigs []string) {
	t.Helper()
	rows := make([]SampleRow, len(sigs))
	for i, sig := range sigs {
		rows[i] = SampleRow{At: time.Now(), Route: "GET /a", Signature: sig, Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}
	}
	if err := store.AddSamples(context.Background(), rows, 5); err != nil {
		t.Fatal(err)
	}
}
