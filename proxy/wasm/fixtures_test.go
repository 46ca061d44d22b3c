package wasm

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/fixtures"
)

// TestFixtureComponents serves the fixture fleet's WAGI ports
// (fixtures/wasm/*), built with the go tool exactly as a user builds a
// candidate, through a loopback HTTP server and ReverseProxy — and checks
// that their reusable builds, with one instance answering a whole mixed
// sequence of requests or pre-initialized with a fresh instance for each,
// answer exactly as fresh instances of the commands.
func TestFixtureComponents(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	commands, err := fixtures.BuildWasm(ctx, dir)
	if err != nil {
		t.Skipf("fixture components do not build here: %v", err)
	}
	reusables, err := fixtures.BuildReusableWasm(ctx, dir)
	if err != nil {
		t.Fatalf("the commands build but the reusable guests do not: %v", err)
	}
	// A cache shared across runs keeps this test fast after the first.
	rt, err := NewRuntime(ctx, filepath.Join(os.TempDir(), "migrate-wasm-cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(ctx)

	tests := []struct {
		component, method, target, body string
		status                          int
		contentType, bodyHas            string
	}{
		{"product", "GET", "/api/product", "", 200, "application/json", `"skuCode"`},
		{"product", "POST", "/api/product", `{"name":"Pump","description":"d","price":12.50,"skuCode":"FL-PMP-ELEC"}`, 201, "", ""},
		{"product", "POST", "/api/product", `{"name":`, 400, "application/json", `"Bad Request"`},
		{"product", "DELETE", "/api/product", "", 405, "application/json", `"Method Not Allowed"`},
		{"inventory", "GET", "/api/inventory?skuCode=ENG-V8-500&skuCode=FL-PMP-ELEC&skuCode=NOPE", "", 200, "application/json", `"inStock"`},
		{"inventory", "GET", "/api/nowhere", "", 404, "application/json", `"Not Found"`},
		{"order", "POST", "/api/order", orderBody, 201, "text/plain", "Placed Successfully"},
		{"order", "POST", "/api/order", "not json", 400, "text/plain", "400 Bad Request"},
		{"order", "POST", "/api/order", `{"orderLineItemsDtoList":[{"skuCode":"NOPE","price":1,"quantity":1}]}`, 201, "text/plain", "not in stock"},
		{"order", "GET", "/api/order", "", 200, "application/json", "[]"},
	}
	fresh, reused, preinit := map[string]*Backend{}, map[string]*Backend{}, map[string]*Backend{}
	for _, name := range fixtures.WasmGuests {
		for _, side := range []struct {
			set  map[string]*Backend
			opts Options
		}{
			{fresh, Options{Path: commands[name]}},
			{reused, Options{Path: reusables[name], Reuse: 1000}},
			{preinit, Options{Path: reusables[name], Preinit: true}},
		} {
			b, err := New(ctx, side.opts, rt)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(ctx)
			if !b.cur.instrumented {
				t.Errorf("%s was not instrumented: it runs with the slow interruption check", side.opts.Path)
			}
			side.set[name] = b
		}
		if !reused[name].cur.reusable || fresh[name].cur.reusable {
			t.Fatalf("%s: the c-shared build must be reusable and the command not", name)
		}
		if preinit[name].cur.snap == nil {
			t.Fatalf("%s: the c-shared build was not pre-initialized", name)
		}
	}
	// Twice through the list, so every reused instance serves each request
	// after others of every kind.
	for round := range 2 {
		for _, tt := range tests {
			var header http.Header
			if tt.body != "" {
				header = http.Header{"Content-Type": {"application/json"}}
			}
			resp, body := do(t, fresh[tt.component], tt.method, tt.target, tt.body, header)
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType) || !strings.Contains(body, tt.bodyHas) {
				t.Errorf("%s %s %s: %d %q %q, want %d %s containing %q", tt.component, tt.method, tt.target, resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.contentType, tt.bodyHas)
			}
			for how, set := range map[string]map[string]*Backend{"reused": reused, "pre-initialized": preinit} {
				resp2, body2 := do(t, set[tt.component], tt.method, tt.target, tt.body, header)
				if resp2.StatusCode != resp.StatusCode || resp2.Header.Get("Content-Type") != resp.Header.Get("Content-Type") || unstable(body2) != unstable(body) {
					t.Errorf("round %d, %s %s %s: %s instance answered %d %q %q; a fresh one %d %q %q", round, tt.component, tt.method, tt.target, how,
						resp2.StatusCode, resp2.Header.Get("Content-Type"), body2, resp.StatusCode, resp.Header.Get("Content-Type"), body)
				}
			}
		}
	}
	// Order numbers come from crypto/rand, which asks the host each time,
	// so pre-initialized instances still place different orders (from
	// math/rand's top-level functions, whose state is in the snapshot,
	// every instance would draw the same number).
	header := http.Header{"Content-Type": {"application/json"}}
	_, a := do(t, preinit["order"], "POST", "/api/order", orderBody, header)
	_, b := do(t, preinit["order"], "POST", "/api/order", orderBody, header)
	if a == b {
		t.Errorf("two pre-initialized instances placed the same order: %q", a)
	}
	for _, name := range fixtures.WasmGuests {
		if st := reused[name].Stats(); st.IdleInstances != 1 {
			t.Errorf("%s: %d idle instances after sequential requests, want the one that served them all", name, st.IdleInstances)
		}
	}
}

// unstable blanks what differs between two correct answers: order numbers
// and Spring's error timestamps.
func unstable(body string) string {
	return unstableRE.ReplaceAllString(body, "#")
}

var unstableRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|"timestamp":"[^"]*"`)
