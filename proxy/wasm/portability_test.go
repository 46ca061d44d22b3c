package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/fixtures"
)

// nodeWASIRunner runs a WASI preview1 command under Node's own WASI
// implementation (uvwasi): argv[2] the module, argv[3] the environment as
// a JSON object, argv[4] the file that becomes stdin; the module's stdout
// is the process's.
const nodeWASIRunner = `
const fs = require('node:fs');
const { WASI } = require('node:wasi');
const [, , wasmPath, envJSON, stdinPath] = process.argv;
const wasi = new WASI({
  version: 'preview1', args: [wasmPath], env: JSON.parse(envJSON),
  stdin: fs.openSync(stdinPath, 'r'), stdout: 1, stderr: 2, returnOnExit: true,
});
// Outbound HTTP as a WAGI host without allowed_hosts offers it: every
// destination is refused (destination_not_allowed, 7), as migrate refuses
// a candidate without an outbound list.
const refuse = () => 7;
const outbound = { req: refuse, close: refuse, header_get: refuse, headers_get_all: refuse, body_read: refuse };
const imports = { ...wasi.getImportObject(), wasi_experimental_http: outbound };
const instance = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(wasmPath)), imports);
process.exitCode = wasi.start(instance);
`

// TestCommandsRunUnderAnotherWASIHost runs the fixture components and the
// README's example guest under a second, independent WASI implementation
// — Node's — with exactly the environment and stdin migrate gives them, and
// checks the CGI response is the one migrate's Backend returns. It is the
// evidence this machine can give that a WAGI module built for migrate is
// not tied to wazero (wasmtime and Spin cannot be installed here).
func TestCommandsRunUnderAnotherWASIHost(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed (CI installs it): no second WASI host to compare with")
	}
	ctx := context.Background()
	dir := t.TempDir()
	runner := filepath.Join(dir, "run.js")
	if err := os.WriteFile(runner, []byte(nodeWASIRunner), 0o644); err != nil {
		t.Fatal(err)
	}
	modules, err := fixtures.BuildWasm(ctx, dir)
	if err != nil {
		t.Skipf("fixture components do not build here: %v", err)
	}
	modules["example"] = buildTestModule(t, "inventory")
	modules["hello"] = buildTestModule(t, "hello")

	tests := []struct{ module, method, target, body string }{
		{"product", "GET", "/api/product", ""},
		{"product", "POST", "/api/product", `{"name":"Pump","description":"d","price":12.50,"skuCode":"FL-PMP-ELEC"}`},
		{"product", "DELETE", "/api/product", ""},
		{"inventory", "GET", "/api/inventory?skuCode=ENG-V8-500&skuCode=NOPE", ""},
		{"order", "POST", "/api/order", orderBody},
		{"order", "POST", "/api/order", "not json"},
		{"example", "GET", "/api/inventory?skuCode=ENG-V8-500&skuCode=BRK-PD-HP", ""},
		{"hello", "POST", "/greet", "12345"},
	}
	for _, tt := range tests {
		t.Run(tt.module+" "+tt.method+" "+tt.target, func(t *testing.T) {
			newReq := func() *http.Request {
				req := httptest.NewRequest(tt.method, "http://127.0.0.1:8080"+tt.target, strings.NewReader(tt.body))
				if tt.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				return req.WithContext(WithMatchedRoute(req.Context(), tt.method+" "+req.URL.Path))
			}
			b, err := New(ctx, Options{Path: modules[tt.module]}, testRuntime(t))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(ctx)
			resp, err := b.RoundTrip(newReq())
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			want.ReadFrom(resp.Body)

			env := map[string]string{}
			for _, kv := range cgiEnv(newReq(), int64(len(tt.body))) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
			envJSON, _ := json.Marshal(env)
			stdin := filepath.Join(t.TempDir(), "stdin")
			if err := os.WriteFile(stdin, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(node, "--no-warnings", runner, modules[tt.module], string(envJSON), stdin)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("under node: %v\n%s", err, stderr.String())
			}
			status, header, body, err := parseCGIResponse(out)
			if err != nil {
				t.Fatalf("under node the module wrote %q: %v", out, err)
			}
			if status != resp.StatusCode || header.Get("Content-Type") != resp.Header.Get("Content-Type") || unstable(string(body)) != unstable(want.String()) {
				t.Errorf("under node: %d %q %q\nunder migrate: %d %q %q", status, header.Get("Content-Type"), body,
					resp.StatusCode, resp.Header.Get("Content-Type"), want.String())
			}
		})
	}
}
