//go:build spring

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/reports"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// TestSpringDemoJourney runs `migrate demo --fleet spring`: the real Spring
// Boot services built with Maven and started as JVMs, analyzed live,
// shadowed against the Go Wasm ports, gated and reported. The faithful port
// must clear its gate; the ports with documented slips must be refused with
// the slip named. It is part of the spring tier (go test -tags spring) and
// fails, never skips, without java and mvn.
func TestSpringDemoJourney(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 7*time.Minute)
	defer cancel()
	dir := t.TempDir()
	var out, errOut lockedBuffer
	s := &streams{in: strings.NewReader(""), out: &out, err: &errOut}
	// --keep: after the journey the JVMs and the proxy stay up, so the
	// order service's breaker is tried through the proxy below.
	o := &demoOptions{dir: dir, requests: 4000, concurrency: 4, rate: 400, fleet: demoFleetSpring, keep: true}
	done := make(chan error, 1)
	go func() { done <- runDemoFleet(ctx, o, &globalOptions{output: "table", logFormat: "text"}, s) }()
	for !strings.Contains(out.String(), "Still running") {
		select {
		case err := <-done:
			t.Fatalf("demo --fleet spring ended before it said what still runs: %v\nstdout:\n%s\nstderr:\n%s", err, out.String(), errOut.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	got := out.String()
	t.Log(got)
	springLegacyCallsRecorded(ctx, t, got)
	springOrderBreakerThroughProxy(ctx, t, got)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("demo --fleet spring: %v\nstderr:\n%s", err, errOut.String())
	}
	for _, want := range []string{
		"Spring Boot 3.5.7 fleet",
		"jib    17    3.5.7",                 // the Jib image: build tool, bytecode level, Boot version
		"no unexplained difference in",       // GET /api/product is faithful
		"GET /api/product cut over",          // ... and clears its gate
		"array has extra items at (root)",    // duplicate SKUs not collapsed
		"noise learned: Order Number <uuid>", // learned from the A/A baseline
		"GET /api/inventory stays in shadow",
		"POST /api/order stays in shadow",
		"match ratio",
		"order-service calls inventory-service through the proxy", // legacy's egress
		"POST /api/inventory/reserve",                             // the port's side-effect slip ...
		"side effects",                                            // ... which fails the gate
		"JVM resident memory",
		"--legacy-rss order-service=",
		"Journey complete",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	inv, err := analyze.ReadInventory(filepath.Join(dir, "inventory.json"))
	if err != nil {
		t.Fatal(err)
	}
	var order *analyze.API
	for _, svc := range inv.Services {
		if svc.Name != "order-service" {
			continue
		}
		order = svc.API
		deps := map[string]bool{}
		if svc.Image != nil {
			for _, d := range svc.Image.Dependencies {
				deps[d.Artifact] = true
			}
		}
		for _, want := range []string{"spring-webmvc", "hibernate-core", "h2", "spring-boot-actuator",
			"springdoc-openapi-starter-webmvc-api", "resilience4j-circuitbreaker"} {
			if !deps[want] {
				t.Errorf("order-service image dependencies lack %s", want)
			}
		}
	}
	if order == nil || order.Format != "openapi-3.1" || len(order.Operations) != 2 || len(order.Problems) != 0 {
		t.Errorf("order-service API from its live /v3/api-docs = %+v, want springdoc's OpenAPI 3.1 with GET and POST /api/order, no problems", order)
	}
	report, err := os.ReadFile(filepath.Join(dir, "migrate-report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"GET /api/product", "Decision summary", "Memory per process (measured)"} {
		if !bytes.Contains(report, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The report's JSON carries each JVM's RSS and each Wasm port's
	// instance memory as measured figures.
	var rep bytes.Buffer
	if err := runReport(context.Background(), &reportOptions{config: filepath.Join(dir, "strangler.yaml"), inventory: filepath.Join(dir, "inventory.json"),
		format: "json", out: "-", legacyRSS: springRSSArgs(t, got)}, &streams{in: strings.NewReader(""), out: &rep, err: &bytes.Buffer{}}); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Footprint struct {
			Headline []string `json:"headline"`
			Services []struct {
				Service            string          `json:"service"`
				LegacyRSS          *reports.Figure `json:"legacyRSS"`
				WasmInstanceMemory *reports.Figure `json:"wasmInstanceMemory"`
			} `json:"services"`
		} `json:"footprint"`
	}
	if err := json.Unmarshal(rep.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	measured := map[string]bool{}
	for _, sf := range doc.Footprint.Services {
		// A JVM of this fleet holds tens of MiB at the least; a Wasm port
		// instance a few MiB.
		if sf.LegacyRSS != nil && sf.LegacyRSS.Basis == reports.BasisMeasured && sf.LegacyRSS.Bytes > 32<<20 {
			measured[sf.Service+" jvm"] = true
		}
		if sf.WasmInstanceMemory != nil && sf.WasmInstanceMemory.Basis == reports.BasisMeasured && sf.WasmInstanceMemory.Bytes > 0 {
			measured[sf.Service+" wasm"] = true
		}
	}
	for _, want := range []string{"product-service jvm", "inventory-service jvm", "order-service jvm", "notification-service jvm",
		"product-service wasm", "inventory-service wasm", "order-service wasm"} {
		if !measured[want] {
			t.Errorf("the report's JSON has no measured %s memory: %s", want, rep.String())
		}
	}
	if !strings.Contains(strings.Join(doc.Footprint.Headline, " "), "Memory per process (measured on the running services)") {
		t.Errorf("footprint headline does not compare the measured per-process memory: %q", doc.Footprint.Headline)
	}
}

// springRSSArgs reads the --legacy-rss values off the report command the
// demo printed.
func springRSSArgs(t *testing.T, out string) []string {
	t.Helper()
	var vals []string
	for _, m := range regexp.MustCompile(`--legacy-rss (\S+)`).FindAllStringSubmatch(out, -1) {
		vals = append(vals, m[1])
	}
	if len(vals) != 4 {
		t.Errorf("the demo's report command passes %d --legacy-rss values, want one per JVM: %v", len(vals), vals)
	}
	return vals
}

// springService reads a service's URL and JVM pid off step 1 of the demo.
func springService(t *testing.T, out, name string) (string, int) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s+` + name + `\s+(http://\S+)\s+\(pid (\d+),`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the demo shows no URL and pid for %s", name)
	}
	pid, _ := strconv.Atoi(m[2])
	return m[1], pid
}

// processState is the state letter of /proc/PID/stat ('T': stopped), or 0.
func processState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// pid (comm) STATE ...: comm may hold spaces, so look past its ')'.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2]
	}
	return 0
}

// jvmLogTail is the last n bytes of what a fleet JVM wrote to its log (its
// stdout, so the file is found through /proc), or why it cannot be read.
func jvmLogTail(pid, n int) string {
	path, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", pid))
	if err != nil {
		return err.Error()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b[max(0, len(b)-n):])
}

// springLegacyCallsRecorded: the order JVM's own call to inventory passed
// the proxy with the order's X-Request-Id, so the samples hold legacy's
// call next to the port's (the read legacy made, the reserve the port
// made on top).
func springLegacyCallsRecorded(ctx context.Context, t *testing.T, out string) {
	m := regexp.MustCompile(`(?m)^  admin   (http://\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("the demo shows no admin address")
	}
	doc, err := (&strangler.AdminClient{BaseURL: m[1]}).Samples(ctx, "POST /api/order", 50, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range doc.Samples {
		var s shadow.Sample
		if err := json.Unmarshal(row.Data, &s); err != nil {
			t.Fatal(err)
		}
		var legacyRead, candidateReserve bool
		for _, c := range s.Legacy.Calls {
			legacyRead = legacyRead || (c.Method == "GET" && c.Path() == "/api/inventory" && c.To == "inventory-service" && c.Status == 200)
		}
		for _, c := range s.Candidate.Calls {
			candidateReserve = candidateReserve || (c.Method == "POST" && c.Path() == "/api/inventory/reserve" && c.Stubbed)
		}
		if s.Legacy.CallsRecorded && legacyRead && candidateReserve && s.Result.HasSideEffect() {
			return
		}
	}
	t.Errorf("no stored POST /api/order sample has legacy's GET /api/inventory recorded through the proxy beside the port's stubbed reserve (%d samples)", len(doc.Samples))
}

// springOrderBreakerThroughProxy: with inventory-service frozen behind the
// proxy, order-service's calls through the proxy time out, its breaker
// opens and it answers with its fallback; once inventory answers again the
// breaker closes and orders are placed.
func springOrderBreakerThroughProxy(ctx context.Context, t *testing.T, out string) {
	order, orderPID := springService(t, out, "order-service")
	_, inventoryPID := springService(t, out, "inventory-service")
	client := &http.Client{Timeout: 20 * time.Second}
	place := func() string {
		body := `{"orderLineItemsDtoList":[{"skuCode":"ENG-V8-500","price":1000,"quantity":1}]}`
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, order+"/api/order", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	breaker := func() string {
		resp, err := client.Get(order + "/actuator/health")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		var h struct {
			Components struct {
				CircuitBreakers struct {
					Details map[string]struct {
						Details struct{ State string } `json:"details"`
					} `json:"details"`
				} `json:"circuitBreakers"`
			} `json:"components"`
		}
		json.NewDecoder(resp.Body).Decode(&h)
		return h.Components.CircuitBreakers.Details["inventory"].Details.State
	}
	if got := place(); !strings.Contains(got, "Placed Successfully") {
		t.Fatalf("an order through the proxy's inventory route: %q", got)
	}
	if err := syscall.Kill(inventoryPID, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(inventoryPID, syscall.SIGCONT)
	// kill returns before the signal has stopped every thread: an order
	// sent at once could still be answered, or answered halfway.
	for stopped := time.Now().Add(5 * time.Second); processState(inventoryPID) != 'T'; {
		if time.Now().After(stopped) {
			t.Fatalf("inventory-service (pid %d) is not stopped 5 s after SIGSTOP", inventoryPID)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Five failed calls open the breaker (minimumNumberOfCalls=5, 3 s read
	// timeout each); sent at once they fail together.
	answers := make(chan string, 6)
	for range 6 {
		go func() { answers <- place() }()
	}
	for range 6 {
		if got := <-answers; !strings.Contains(got, "Oops! Something went wrong") {
			t.Errorf("an order while inventory is frozen: %q, want the breaker's fallback; order-service's log ends:\n%s", got, jvmLogTail(orderPID, 6000))
		}
	}
	if st := breaker(); st != "OPEN" {
		t.Errorf("order-service's inventory breaker after 6 timed-out calls through the proxy: %q, want OPEN", st)
	}
	syscall.Kill(inventoryPID, syscall.SIGCONT)
	// After waitDurationInOpenState (5 s) the breaker lets calls through
	// half open; ten that succeed close it.
	deadline := time.Now().Add(40 * time.Second)
	for breaker() != "CLOSED" && time.Now().Before(deadline) {
		place()
		time.Sleep(300 * time.Millisecond)
	}
	if st := breaker(); st != "CLOSED" {
		t.Errorf("order-service's inventory breaker once inventory answers again: %q, want CLOSED", st)
	}
	if got := place(); !strings.Contains(got, "Placed Successfully") {
		t.Errorf("an order after the breaker closed: %q", got)
	}
}
