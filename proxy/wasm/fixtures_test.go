package wasm

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestFixtureComponents serves the fixture fleet's WAGI ports
// (fixtures/wasm/*), built with the go tool exactly as a user builds a
// candidate, through a loopback HTTP server and ReverseProxy.
func TestFixtureComponents(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", dir+string(filepath.Separator),
		"github.com/strangler-fig/migrate/fixtures/wasm/product",
		"github.com/strangler-fig/migrate/fixtures/wasm/inventory",
		"github.com/strangler-fig/migrate/fixtures/wasm/order")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("fixture components do not build here: %v\n%s", err, out)
	}
	// A cache shared across runs keeps this test fast after the first.
	rt, err := NewRuntime(context.Background(), filepath.Join(os.TempDir(), "migrate-wasm-cache"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close(context.Background())

	tests := []struct {
		component, method, target, body string
		status                          int
		contentType, bodyHas            string
	}{
		{"product", "GET", "/api/product", "", 200, "application/json", `"skuCode"`},
		{"product", "POST", "/api/product", `{"name":"Pump","description":"d","price":12.50,"skuCode":"FL-PMP-ELEC"}`, 201, "", ""},
		{"inventory", "GET", "/api/inventory?skuCode=ENG-V8-500&skuCode=FL-PMP-ELEC&skuCode=NOPE", "", 200, "application/json", `"inStock"`},
		{"order", "POST", "/api/order", orderBody, 201, "text/plain", "Placed Successfully"},
	}
	backends := map[string]*Backend{}
	for _, name := range []string{"product", "inventory", "order"} {
		b, err := New(context.Background(), Options{Path: filepath.Join(dir, name)}, rt)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close(context.Background())
		if !b.cur.instrumented {
			t.Errorf("%s was not instrumented: it runs with the slow interruption check", name)
		}
		backends[name] = b
	}
	for _, tt := range tests {
		t.Run(tt.component+" "+tt.method, func(t *testing.T) {
			b := backends[tt.component]
			var header http.Header
			if tt.body != "" {
				header = http.Header{"Content-Type": {"application/json"}}
			}
			resp, body := do(t, b, tt.method, tt.target, tt.body, header)
			if resp.StatusCode != tt.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), tt.contentType) || !strings.Contains(body, tt.bodyHas) {
				t.Errorf("%d %q %q, want %d %s containing %q", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.contentType, tt.bodyHas)
			}
		})
	}
}
