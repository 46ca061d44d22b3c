package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

const gateCLIConfig = `
services:
  orders:
    legacy: http://127.0.0.1:1
    candidate: {url: "http://127.0.0.1:2"}
    mode: shadow
    routes: ["GET /api/order", "POST /api/order"]
    gate: {minSamples: 1000, minMatch: 99%, maxErrorRate: 1%, canaryMinRequests: 3}
`

// startGateAdmin runs a real controller behind a real admin API, with the
// canary walker; GET /api/order has matches samples, POST /api/order 2000
// matching ones.
func startGateAdmin(t *testing.T, matches int) (string, *strangler.Controller) {
	t.Helper()
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	evidence := map[string]*shadow.Evidence{}
	for route, n := range map[string]int{"GET /api/order": matches, "POST /api/order": 2000} {
		ev := shadow.NewEvidence(route, "orders")
		for i := 0; i < n; i++ {
			ev.Add(shadow.Sample{At: t0.Add(time.Duration(i) * time.Second), Route: route, Service: "orders",
				Legacy: shadow.Response{Latency: 10 * time.Millisecond}, Candidate: shadow.Response{Latency: 10 * time.Millisecond},
				Result: shadow.Result{Outcome: shadow.OutcomeMatch}})
		}
		evidence[route] = ev
	}
	admin, ctrl, _ := startTestAdmin(t, gateCLIConfig, evidence, true)
	return admin, ctrl
}

// startTestAdmin runs a real controller (real SQLite file, real shadow
// engine) on config behind a real admin API on loopback, with evidence
// restored into its mirror for service orders; with walk, the canary
// walker runs too.
func startTestAdmin(t *testing.T, config string, evidence map[string]*shadow.Evidence, walk bool) (string, *strangler.Controller, *shadow.Mirror) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := strangler.ParseConfig([]byte(config), dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := strangler.OpenStore(filepath.Join(dir, "migrate.db"))
	if err != nil {
		t.Fatal(err)
	}
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	ctrl := strangler.NewController(store, nil, nil)
	ctrl.Shadow = mirror
	if _, err := ctrl.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for route, ev := range evidence {
		mirror.Restore(route, "orders", ev, nil)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	if walk {
		go func() { ctrl.RunCanaryWalker(wctx); close(done) }()
	} else {
		close(done)
	}
	srv := httptest.NewServer(strangler.NewAdmin(ctrl, strangler.AdminOptions{}))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		_ = mirror.Close(ctx)
		_ = store.Close()
	})
	return srv.URL, ctrl, mirror
}

func gateCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &streams{in: strings.NewReader(""), out: &out, err: &errb})
	return code, out.String(), errb.String()
}

func TestGateCommand(t *testing.T) {
	admin, _ := startGateAdmin(t, 412)
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
	}{
		{"service inconclusive", []string{"gate", "orders", "--admin", admin}, 3,
			[]string{"GET /api/order", "samples", "≥ 1000 samples", "412", "−588", "inconclusive", "gate for orders: inconclusive"}},
		{"route passes", []string{"gate", "POST /api/order", "--admin", admin}, 0,
			[]string{"match ratio", "100% (2000 of 2000 after noise; 99.9%–100% at 95% confidence)", "gate for POST /api/order: pass"}},
		{"bad --to", []string{"gate", "orders", "--to", "canary", "--admin", admin}, 2, nil},
		{"unknown target", []string{"gate", "nope", "--admin", admin}, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := gateCLI(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			for _, want := range tt.stdout {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
		})
	}
	// -o json is the pipeline form: the report, and still exit 3.
	code, out, _ := gateCLI("gate", "orders", "-o", "json", "--admin", admin)
	var rep strangler.GateReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 3 {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if rep.APIVersion != "migrate/v1" || rep.Verdict != "inconclusive" || rep.Pass || len(rep.Routes) != 2 || rep.Routes[0].Criteria[0].Delta != "−588" {
		t.Fatalf("report = %+v", rep)
	}
}

func TestCutoverRefusedThenForced(t *testing.T) {
	admin, ctrl := startGateAdmin(t, 412)
	// Entering canary needs the same shadow evidence: 412 of 1000 samples
	// is not enough, and the refusal asks for more, not for a fix.
	code, out, errOut := gateCLI("canary", "orders", "--weight", "10", "--admin", admin)
	if code != 3 || !strings.Contains(out, "orders refused, gate verdict inconclusive") ||
		!strings.Contains(errOut, "collect more evidence") || strings.Contains(errOut, "fix what failed") {
		t.Fatalf("canary on thin evidence: exit %d\n%s\n%s", code, out, errOut)
	}
	// Cutover straight from shadow is decided by the same gate.
	code, out, errOut = gateCLI("cutover", "orders", "--admin", admin)
	t.Logf("refused cutover:\n%s%s", out, errOut)
	if code != 3 || !strings.Contains(out, "orders refused") || !strings.Contains(out, "−588") ||
		strings.Contains(out, "POST /api/order") || !strings.Contains(errOut, "--force --reason") {
		t.Fatalf("refused cutover: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, errOut := gateCLI("cutover", "orders", "--force", "--admin", admin); code != 2 || !strings.Contains(errOut, "--reason") {
		t.Fatalf("force without reason: %d %s", code, errOut)
	}
	if code, out, errOut := gateCLI("cutover", "orders", "--force", "--reason", "CAB-1234", "--actor", "ann", "--admin", admin); code != 0 || !strings.Contains(out, "forced") {
		t.Fatalf("forced cutover: %d %s %s", code, out, errOut)
	}
	if st := ctrl.Route("GET /api/order").State(); st.Mode != strangler.ModeCutover {
		t.Fatalf("route = %+v", st)
	}
	// The timeline shows who, why and on which numbers.
	code, out, _ = gateCLI("status", "orders", "--timeline", "--admin", admin)
	t.Logf("timeline:\n%s", out)
	if code != 0 || !strings.Contains(out, "shadow → cutover") || !strings.Contains(out, "CAB-1234") ||
		!strings.Contains(out, "forced over inconclusive (412 samples, 100% match)") {
		t.Fatalf("timeline:\n%s", out)
	}
	code, out, _ = gateCLI("status", "GET /api/order", "--timeline", "-o", "json", "--admin", admin)
	var doc TimelineDocument
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || len(doc.Transitions) != 1 || !doc.Transitions[0].Forced {
		t.Fatalf("timeline json: %d %v %s", code, err, out)
	}
	// Rollback is instant from cutover.
	if code, _, errOut := gateCLI("rollback", "orders", "--reason", "drill", "--admin", admin); code != 0 {
		t.Fatalf("rollback: %d %s", code, errOut)
	}
}

func TestTransitionRaceLoserExitsOne(t *testing.T) {
	admin, _ := startGateAdmin(t, 2000)
	// Both operators saw shadow; they race.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	errs := make([]string, 2)
	args := [][]string{
		{"canary", "GET /api/order", "--weight", "5", "--expect-mode", "shadow", "--admin", admin},
		{"rollback", "GET /api/order", "--expect-mode", "shadow", "--admin", admin},
	}
	for i := range args {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			codes[i], _, errs[i] = gateCLI(args[i]...)
		}(i)
	}
	wg.Wait()
	if codes[0]+codes[1] != 1 {
		t.Fatalf("exit codes %v (want one 0 and one 1): %q", codes, errs)
	}
	loser := errs[0] + errs[1]
	if !strings.Contains(loser, "changed meanwhile") || !strings.Contains(loser, "expected shadow") {
		t.Fatalf("loser's message: %q", loser)
	}
}

func TestCanaryStepsCommand(t *testing.T) {
	admin, ctrl := startGateAdmin(t, 2000)
	for _, bad := range [][]string{
		{"canary", "orders", "--steps", "5,1", "--admin", admin},
		{"canary", "orders", "--steps", "1,5", "--weight", "5", "--admin", admin},
		{"canary", "orders", "--steps", "1,5", "--interval", "0s", "--admin", admin},
		{"canary", "orders", "--admin", admin},
	} {
		if code, _, _ := gateCLI(bad...); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	code, out, errOut := gateCLI("canary", "orders", "--steps", "10,100", "--interval", "20ms", "--reason", "v2", "--admin", admin)
	if code != 0 || !strings.Contains(out, "10,100") || !strings.Contains(out, "running") {
		t.Fatalf("canary walk: %d\n%s\n%s", code, out, errOut)
	}
	if st := ctrl.Route("POST /api/order").State(); st != (strangler.RouteState{Mode: strangler.ModeCanary, Weight: 10}) {
		t.Fatalf("first step: %+v", st)
	}
	// Traffic at the live weight, as the proxy would count it.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		for _, r := range ctrl.Routes() {
			st := r.State()
			if st.Mode == strangler.ModeCutover {
				continue
			}
			r.Observe(strangler.SideLegacy, 10*time.Millisecond, false)
			r.Observe(strangler.SideCandidate, 10*time.Millisecond, false)
		}
		if ctrl.Route("GET /api/order").State().Mode == strangler.ModeCutover {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if st := ctrl.Route("GET /api/order").State(); st.Mode != strangler.ModeCutover {
		t.Fatalf("walk did not cut over: %+v", st)
	}
	// The walk records its end just after the cutover it made.
	for time.Now().Before(deadline) {
		walks, err := ctrl.CanaryWalks(context.Background(), "orders")
		if err != nil {
			t.Fatal(err)
		}
		if len(walks) == 1 && walks[0].State != strangler.WalkRunning {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	code, out, _ = gateCLI("status", "orders", "--timeline", "--admin", admin)
	if code != 0 || !strings.Contains(out, "canary-walk") || !strings.Contains(out, "completed") {
		t.Fatalf("timeline after walk:\n%s", out)
	}
}
