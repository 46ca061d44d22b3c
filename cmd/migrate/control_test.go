package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

const controlConfig = `
services:
  orders:
    legacy: http://127.0.0.1:1
    candidate: {url: "http://127.0.0.1:2"}
    routes: ["GET /api/order", "POST /api/order"]
  products:
    legacy: http://127.0.0.1:3
    candidate: {url: "http://127.0.0.1:4"}
    routes: ["GET /api/product"]
`

// newAdmin runs a real admin API over a real store.
func newAdmin(t *testing.T, token string) (*strangler.Controller, string) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := strangler.ParseConfig([]byte(controlConfig), dir)
	if err != nil {
		t.Fatal(err)
	}
	store, err := strangler.OpenStore(cfg.StorePath())
	if err != nil {
		t.Fatal(err)
	}
	ctrl := strangler.NewController(store, nil, nil)
	if _, err := ctrl.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(strangler.NewAdmin(ctrl, strangler.AdminOptions{Token: token}))
	t.Cleanup(func() { srv.Close(); store.Close() })
	return ctrl, srv.URL
}

func TestControlCommands(t *testing.T) {
	ctrl, admin := newAdmin(t, "")
	tests := []struct {
		args []string
		code int
		out  string // substring of stdout (or stderr when code != 0)
	}{
		{[]string{"shadow", "orders"}, exitOK, "GET /api/order"},
		{[]string{"shadow", "orders"}, exitOK, "already in shadow mode"},
		{[]string{"canary", "GET /api/order"}, exitUsage, "--weight"},
		{[]string{"canary", "GET /api/order", "--weight", "0"}, exitUsage, "between 1 and 100"},
		{[]string{"canary", "GET /api/order", "--weight", "20", "-o", "json"}, exitOK, `"toWeight": 20`},
		{[]string{"retire", "GET /api/order"}, exitError, "cannot go from canary to retired"},
		{[]string{"cutover", "GET /api/nope"}, exitUsage, "POST /api/order"},
		{[]string{"shadow", "billing"}, exitUsage, "services: orders, products"},
		{[]string{"cutover", "GET /api/order", "--force"}, exitUsage, "--reason"},
		{[]string{"cutover", "GET /api/order", "--reason", "soak done"}, exitOK, "cutover"},
		{[]string{"retire", "GET /api/order"}, exitOK, "retired"},
		{[]string{"rollback", "orders", "--reason", "incident 42"}, exitOK, "legacy"},
		{[]string{"status", "nope"}, exitUsage, "neither a route nor a service"},
		{[]string{"shadow"}, exitUsage, "accepts 1 arg"},
	}
	for _, tt := range tests {
		stdout, stderr, code := runCLI(t, append(tt.args, "--admin", admin)...)
		got := stdout
		if code != exitOK {
			got = stderr
		}
		if code != tt.code || !strings.Contains(got, tt.out) {
			t.Fatalf("migrate %s: exit %d, want %d; output lacks %q:\n%s%s", strings.Join(tt.args, " "), code, tt.code, tt.out, stdout, stderr)
		}
	}
	audit, err := ctrl.Audit(context.Background(), strangler.AuditQuery{Route: "GET /api/order"})
	if err != nil {
		t.Fatal(err)
	}
	var path []string
	for _, a := range audit {
		path = append(path, string(a.To))
	}
	if strings.Join(path, ">") != "shadow>canary>cutover>retired>legacy" || audit[4].Reason != "incident 42" || audit[0].Actor == "" {
		t.Fatalf("audit = %+v", audit)
	}
}

func TestStatusJSON(t *testing.T) {
	ctrl, admin := newAdmin(t, "")
	ctrl.Route("GET /api/product").Observe(strangler.SideLegacy, 4_000_000, false)
	stdout, stderr, code := runCLI(t, "status", "products", "-o", "json", "--admin", admin)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		APIVersion string           `json:"apiVersion"`
		Routes     []map[string]any `json:"routes"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	if doc.APIVersion != APIVersion || len(doc.Routes) != 1 {
		t.Fatalf("doc = %+v", doc)
	}
	r := doc.Routes[0]
	for _, k := range []string{"route", "service", "mode", "weight", "samples", "matches", "mismatches", "candidateErrors", "latency"} {
		if _, ok := r[k]; !ok {
			t.Errorf("status route lacks %q: %v", k, r)
		}
	}
	lat := r["latency"].(map[string]any)["legacy"].(map[string]any)
	if lat["p50Millis"].(float64) < 4 || lat["p99Millis"] == nil || lat["p95Millis"] == nil {
		t.Errorf("latency = %v", lat)
	}
	table, _, _ := runCLI(t, "status", "--admin", admin)
	if !strings.Contains(table, "ROUTE") || !strings.Contains(table, "GET /api/product") {
		t.Errorf("table:\n%s", table)
	}
}

// TestStatusShowsRulesThatAcceptLearnedNoise learns an order number as
// noise from one legacy-vs-legacy comparison and expects status of the
// route to say which line to add to the config, and the JSON to carry it.
func TestStatusShowsRulesThatAcceptLearnedNoise(t *testing.T) {
	ctrl, admin := newAdmin(t, "")
	engine := shadow.NewMirror(shadow.MirrorConfig{}, nil)
	t.Cleanup(func() { engine.Close(context.Background()) })
	ctrl.Shadow = engine
	order := func(number int) shadow.Response {
		return shadow.Response{Status: 201, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(fmt.Sprintf(`{"orderNumber":%d,"status":"PLACED"}`, number))}
	}
	noise := shadow.NewNoise()
	noise.Learn(shadow.Compare(order(1001), order(1002), nil, nil), time.Now())
	engine.Restore("POST /api/order", "orders", &shadow.Evidence{}, noise)

	want := `ignore: ["/orderNumber"]  # differed in 1 legacy-vs-legacy sample`
	stdout, stderr, code := runCLI(t, "status", "POST /api/order", "--admin", admin)
	if code != exitOK || !strings.Contains(stdout, want) || !strings.Contains(stdout, "shadow block of orders") {
		t.Fatalf("status ROUTE: exit %d, output lacks %q:\n%s%s", code, want, stdout, stderr)
	}
	if all, _, _ := runCLI(t, "status", "--admin", admin); strings.Contains(all, want) {
		t.Errorf("status of every route lists rules; it should stay one table:\n%s", all)
	}
	js, _, _ := runCLI(t, "status", "orders", "-o", "json", "--admin", admin)
	if !strings.Contains(js, `"key": "ignore"`) || !strings.Contains(js, `"value": "/orderNumber"`) {
		t.Errorf("status -o json lacks the suggestion:\n%s", js)
	}
}

// TestTargetsComplete offers service and route names on a tab: from the
// running proxy with --admin, from the config file otherwise.
func TestTargetsComplete(t *testing.T) {
	_, admin := newAdmin(t, "")
	cfgPath := filepath.Join(t.TempDir(), "strangler.yaml")
	if err := os.WriteFile(cfgPath, []byte(controlConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, where := range [][]string{{"--admin", admin}, {"--config", cfgPath}} {
		args := append(append([]string{"__complete", "cutover"}, where...), "")
		stdout, _, _ := runCLI(t, args...)
		for _, want := range []string{"orders\n", "products\n", "GET /api/order\n", "POST /api/order\n", ":4\n"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%s: completions lack %q:\n%s", where[0], want, stdout)
			}
		}
		args[len(args)-1] = "POST"
		if stdout, _, _ := runCLI(t, args...); stdout != "POST /api/order\n:4\n" {
			t.Errorf("%s: completing POST: %q", where[0], stdout)
		}
		args[1], args[len(args)-1] = "diffs", ""
		if stdout, _, _ := runCLI(t, args...); strings.Contains(stdout, "orders\n") || !strings.Contains(stdout, "GET /api/product\n") {
			t.Errorf("%s: diffs takes a route, not a service: %q", where[0], stdout)
		}
	}
}

func TestControlUsesTokenAndConfig(t *testing.T) {
	_, admin := newAdmin(t, "s3cret")
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "strangler.yaml")
	cfg := "admin: " + strings.TrimPrefix(admin, "http://") + "\n" + controlConfig
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(strangler.AdminTokenEnv, "")
	if _, stderr, code := runCLI(t, "status", "--config", cfgPath); code != exitError || !strings.Contains(stderr, "bearer token") {
		t.Fatalf("without token: exit %d %s", code, stderr)
	}
	t.Setenv(strangler.AdminTokenEnv, "s3cret")
	if stdout, stderr, code := runCLI(t, "status", "--config", cfgPath, "-o", "json"); code != exitOK || !strings.Contains(stdout, `"GET /api/order"`) {
		t.Fatalf("with token: exit %d %s %s", code, stdout, stderr)
	}
}

func TestCutoverGateNotMetExits3(t *testing.T) {
	ctrl, admin := newAdmin(t, "")
	ctrl.Gate = func(_ context.Context, in strangler.GateInput) (strangler.GateResult, error) {
		return strangler.GateResult{Pass: in.To.Mode != strangler.ModeCutover,
			Criteria: []strangler.Criterion{{Name: "minSamples", Want: ">= 1000", Got: "3"}}}, nil
	}
	for _, args := range [][]string{{"shadow", "products"}, {"canary", "products", "--weight", "50"}} {
		if _, stderr, code := runCLI(t, append(args, "--admin", admin)...); code != exitOK {
			t.Fatalf("%v: %s", args, stderr)
		}
	}
	_, stderr, code := runCLI(t, "cutover", "products", "--admin", admin)
	if code != exitGateOrDiff || !strings.Contains(stderr, "gate not met") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, "cutover", "products", "--force", "--reason", "CAB-7", "--admin", admin)
	if code != exitOK || !strings.Contains(stdout, "forced") {
		t.Fatalf("forced: exit %d %s %s", code, stdout, stderr)
	}
}
