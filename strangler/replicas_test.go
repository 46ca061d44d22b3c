package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/internal/pgtest"
	"github.com/strangler-fig/migrate/shadow"
)

// replica is one proxy process's control plane over a shared store.
func replica(t *testing.T, location string) *Controller {
	t.Helper()
	c := newTestController(t, location)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.WatchStore(ctx, 200*time.Millisecond); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// A mode change made on one replica is served by the other in under a
// second.
func TestReplicasShareTransitions(t *testing.T) {
	db := pgtest.Shared(t).NewDatabase(t)
	a, b := replica(t, db), replica(t, db)
	ctx := context.Background()
	for _, to := range []Mode{ModeShadow, ModeCanary, ModeLegacy} {
		if _, err := a.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: to, Actor: "alice", Force: true, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, time.Second, "replica b sees "+string(to), func() bool { return b.Route("GET /api/order").State().Mode == to })
		t.Logf("%s reached the other replica in %v", to, took)
	}
	// And the other way round.
	if _, err := b.Transition(ctx, TransitionRequest{Target: "orders", To: ModeShadow, Actor: "bob"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "replica a sees bob's change", func() bool { return a.Route("POST /api/order").State().Mode == ModeShadow })
}

// Two replicas racing on the same transition decide it once: one commits,
// the other is told the route moved.
func TestReplicasDecideOnce(t *testing.T) {
	db := pgtest.Shared(t).NewDatabase(t)
	a, b := newTestController(t, db), newTestController(t, db) // not watching: both still think legacy
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, c := range []*Controller{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeShadow, Actor: "auto"})
		}()
	}
	wg.Wait()
	var conflict *ConflictError
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.As(err, &conflict):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d replicas committed the transition, want exactly 1 (errors %v)", ok, errs)
	}
	audit, err := a.Audit(ctx, AuditQuery{Route: "GET /api/order"})
	if err != nil || len(audit) != 1 {
		t.Fatalf("audit has %d records (%v), want 1", len(audit), err)
	}
}

// When the database goes away every replica keeps serving its last route
// table and says so; when it is back they catch up.
func TestReplicasSurviveDatabaseRestart(t *testing.T) {
	srv := pgtest.Start(t)
	db := srv.NewDatabase(t)
	a, b := replica(t, db), replica(t, db)
	ctx := context.Background()
	if _, err := a.Transition(ctx, TransitionRequest{Target: "orders", To: ModeShadow, Actor: "alice"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Second, "replica b sees shadow", func() bool { return b.Route("GET /api/order").State().Mode == ModeShadow })

	srv.Kill()
	waitFor(t, 10*time.Second, "replica b reports the store unreachable", func() bool { return b.StoreHealth().Status == "unreachable" })
	if got := b.Route("GET /api/order").State().Mode; got != ModeShadow {
		t.Fatalf("during the outage replica b serves %s, want its last table's shadow", got)
	}
	if code, body := healthz(b); code != http.StatusOK || !strings.Contains(body, `"status": "degraded"`) || !strings.Contains(body, `"unreachable"`) {
		t.Fatalf("/healthz during the outage: %d %s", code, body)
	}
	if _, err := a.Transition(ctx, TransitionRequest{Target: "orders", To: ModeLegacy, Actor: "alice"}); err == nil {
		t.Fatal("a transition was acknowledged while the database was down")
	}
	if got := a.Route("GET /api/order").State().Mode; got != ModeShadow {
		t.Fatalf("a failed transition changed the live route to %s", got)
	}

	srv.Restart(t)
	waitFor(t, 10*time.Second, "replica b reports the store back", func() bool { return b.StoreHealth().Status == "ok" })
	if _, body := healthz(b); !strings.Contains(body, `"status": "ok"`) {
		t.Fatalf("/healthz after the outage: %s", body)
	}
	if _, err := a.Transition(ctx, TransitionRequest{Target: "orders", To: ModeLegacy, Actor: "alice", Reason: "rollback after the outage"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "replica b sees the rollback", func() bool { return b.Route("GET /api/order").State().Mode == ModeLegacy })
}

// Gates and status count the evidence every replica gathered: two replicas
// with 600 matching samples each clear a 1,000-sample gate that neither
// clears alone.
func TestReplicasSumEvidence(t *testing.T) {
	db := pgtest.Shared(t).NewDatabase(t)
	half := func() map[string]*shadow.Evidence {
		return map[string]*shadow.Evidence{"GET /api/order": buildEvidence("GET /api/order",
			sampleSpec{matches: 600, legacy: 10 * time.Millisecond, candidate: 11 * time.Millisecond, span: 2 * time.Hour})}
	}
	a := newGateRig(t, gateConfigYAML, db, half())
	ctx := context.Background()
	rep, err := a.ctrl.CheckGate(ctx, "GET /api/order", ModeCutover)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict == VerdictPass {
		t.Fatalf("one replica's 600 samples passed a 1,000-sample gate: %+v", rep)
	}
	b := newGateRig(t, gateConfigYAML, db, half())
	b.ctrl.Route("GET /api/order").Observe(SideLegacy, time.Millisecond, false)
	if err := b.ctrl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.ctrl.SyncRoutes(ctx); err != nil {
		t.Fatal(err)
	}
	st := statusOf(a.ctrl, "GET /api/order")
	if st.Samples != 1200 || st.Requests[SideLegacy] != 1 {
		t.Fatalf("status on replica a: %d samples, %d legacy requests; want 1200 and 1 (both replicas)", st.Samples, st.Requests[SideLegacy])
	}
	if rep, err = a.ctrl.CheckGate(ctx, "GET /api/order", ModeCutover); err != nil || rep.Verdict != VerdictPass {
		t.Fatalf("the two replicas' 1,200 samples: verdict %+v, %v", rep, err)
	}
	// The report, read from the store, sees the fleet's evidence too.
	all, err := a.store.LoadEvidence(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ev shadow.Evidence
	if err := json.Unmarshal(all["GET /api/order"], &ev); err != nil || ev.Samples != 1200 {
		t.Fatalf("stored evidence for reports: %d samples (%v), want 1200", ev.Samples, err)
	}
}

func healthz(c *Controller) (int, string) {
	req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
	req.Host = "127.0.0.1:9090"
	rec := httptest.NewRecorder()
	NewAdmin(c, AdminOptions{}).ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// One replica at a time runs the canary walker; when it stops, another
// takes over.
func TestReplicasTakeTurnsWalking(t *testing.T) {
	db := pgtest.Shared(t).NewDatabase(t)
	a, b := storeAt(t, db), storeAt(t, db)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	leadA, releaseA := a.Lead(ctx, discardLogger())
	if leadA == nil {
		t.Fatal("the first replica did not get to lead")
	}
	got := make(chan context.Context, 1)
	go func() {
		lead, release := b.Lead(ctx, discardLogger())
		defer release()
		got <- lead
		<-ctx.Done()
	}()
	select {
	case <-got:
		t.Fatal("both replicas lead at once")
	case <-time.After(500 * time.Millisecond):
	}
	releaseA()
	select {
	case lead := <-got:
		if lead == nil || lead.Err() != nil {
			t.Fatal("the second replica's lead ended at once")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second replica did not take over within 5 s of the first stopping")
	}
}
