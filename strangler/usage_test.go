package strangler

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// TestCandidateUsageSurvivesRestart flushes a candidate's usage, reopens the
// store as a restarted proxy would, and checks the next process's flush
// adds its counts to the stored ones and keeps the higher peaks.
func TestCandidateUsageSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "migrate.db")
	runs := []struct {
		now  CandidateUsage
		want CandidateUsage
	}{
		{
			now:  CandidateUsage{Module: "order.wasm", Requests: 40, PeakInstanceBytes: 4 << 20, PeakInstances: 3, PeakMemoryBytes: 10 << 20},
			want: CandidateUsage{Module: "order.wasm", Requests: 40, PeakInstanceBytes: 4 << 20, PeakInstances: 3, PeakMemoryBytes: 10 << 20},
		},
		{
			now:  CandidateUsage{Module: "order-v2.wasm", Requests: 2, PeakInstanceBytes: 5 << 20, PeakInstances: 1, PeakMemoryBytes: 5 << 20},
			want: CandidateUsage{Module: "order-v2.wasm", Requests: 42, PeakInstanceBytes: 5 << 20, PeakInstances: 3, PeakMemoryBytes: 10 << 20},
		},
	}
	for i, run := range runs {
		c := newTestController(t, path)
		c.Usage = func() map[string]CandidateUsage { return map[string]CandidateUsage{"orders": run.now} }
		// Flushing twice in one process must not add the process's counts twice.
		for range 2 {
			if err := c.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		got, err := c.Store().LoadCandidateUsage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got["orders"] != run.want {
			t.Errorf("run %d: stored usage %+v, want orders: %+v", i+1, got, run.want)
		}
		// The route counters beside it still restore.
		counters, err := c.Store().LoadCounters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := counters["GET /api/order"][string(SideCandidate)]; !ok {
			t.Errorf("run %d: route counters missing beside the usage document: %v", i+1, counters)
		}
		c.Store().Close()
	}
}

func TestUnreadableCandidateUsage(t *testing.T) {
	ctx := context.Background()
	c := newTestController(t, filepath.Join(t.TempDir(), "migrate.db"))
	rows := []CounterRow{
		{Route: "orders", Kind: CounterKindUsage, Data: []byte(`{"requests":"many"}`)},
		{Route: "products", Kind: CounterKindUsage, Data: []byte(`{"requests":3,"peakMemoryBytes":1024}`)},
	}
	if err := c.Store().SaveCounters(ctx, rows, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, err := c.Store().LoadCandidateUsage(ctx)
	if err == nil || !strings.Contains(err.Error(), "wasm usage of orders") {
		t.Errorf("error %v, want one naming the unreadable document", err)
	}
	if got["products"].PeakMemoryBytes != 1024 {
		t.Errorf("readable usage lost: %+v", got)
	}
}

// TestShadowCandidateErrorMetric scrapes the admin API's /metrics after
// the shadow engine recorded candidate failures: one series per route and
// kind, read from the evidence, with served failures counted apart.
func TestShadowCandidateErrorMetric(t *testing.T) {
	c := newTestController(t, filepath.Join(t.TempDir(), "migrate.db"))
	engine := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	t.Cleanup(func() { engine.Close(context.Background()) })
	c.Shadow = engine
	ev := &shadow.Evidence{}
	for _, kind := range []string{"trap", "trap", "deadline"} {
		ev.Add(shadow.Sample{At: time.Now(), Result: shadow.Result{Outcome: shadow.OutcomeCandidateError, Error: kind}})
	}
	// Two mismatching samples: one with a size and an extra difference, one with a value difference.
	ev.Add(shadow.Sample{At: time.Now(), Result: shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{
		{Path: "", Type: "size", Signature: " size"}, {Path: "/1", Type: "extra", Signature: "/* extra"}}}})
	ev.Add(shadow.Sample{At: time.Now(), Result: shadow.Result{Outcome: shadow.OutcomeMismatch, Differences: []shadow.Difference{
		{Path: "/0/price", Type: "value", Signature: "/*/price value"}}}})
	engine.Restore("GET /api/order", "orders", ev, nil)
	c.Route("POST /api/order").CandidateFailed(CandidateErrorStatus)

	admin := httptest.NewServer(NewAdmin(c, AdminOptions{}))
	defer admin.Close()
	resp, err := http.Get(admin.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`migrate_shadow_candidate_errors_total{kind="trap",route="GET /api/order"} 2`,
		`migrate_shadow_candidate_errors_total{kind="deadline",route="GET /api/order"} 1`,
		`migrate_candidate_errors_total{kind="status-5xx",route="POST /api/order"} 1`,
		`migrate_shadow_mismatches_total{route="GET /api/order",type="size"} 1`,
		`migrate_shadow_mismatches_total{route="GET /api/order",type="extra"} 1`,
		`migrate_shadow_mismatches_total{route="GET /api/order",type="value"} 1`,
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(body), `migrate_candidate_errors_total{kind="trap"`) {
		t.Error("shadow failures counted as served ones")
	}
}
