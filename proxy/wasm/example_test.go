package wasm_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/strangler-fig/migrate/proxy/wasm"
)

// Example serves the guest in testdata/inventory — a complete WAGI module
// written in Go — in process, the way `candidate: {wasm: inventory.wasm}`
// does in strangler.yaml.
func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "wagi-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// Build the guest as a WASI preview1 command.
	module := filepath.Join(dir, "inventory.wasm")
	build := exec.Command("go", "build", "-o", module, "./testdata/inventory")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		log.Fatalf("%v\n%s", err, out)
	}

	// One runtime per process; its on-disk cache makes restarts fast.
	rt, err := wasm.NewRuntime(ctx, filepath.Join(os.TempDir(), "migrate-wasm-cache"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer rt.Close(ctx)

	backend, err := wasm.New(ctx, wasm.Options{Path: module, Timeout: wasm.Duration(2 * time.Second)}, rt)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close(ctx)

	req := httptest.NewRequest("GET", "/api/inventory?skuCode=ENG-V8-500&skuCode=FL-PMP-ELEC&skuCode=NOPE", nil)
	req = req.WithContext(wasm.WithMatchedRoute(req.Context(), "GET /api/inventory"))
	resp, err := backend.RoundTrip(req)
	if err != nil {
		log.Fatal(err) // a *wasm.GuestError: wasm.ErrorKind(err) is its metric label
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	fmt.Print(string(body))
	// Output:
	// 200 application/json
	// [{"skuCode":"ENG-V8-500","inStock":true},{"skuCode":"FL-PMP-ELEC","inStock":false}]
}
