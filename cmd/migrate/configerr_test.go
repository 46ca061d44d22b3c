package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestProxyConfigErrorsSayWhere: `migrate proxy` names the file, line,
// column and key path of a mistake, in the strangler keys and in a Wasm
// candidate's options alike.
func TestProxyConfigErrorsSayWhere(t *testing.T) {
	dir := t.TempDir()
	base := "services:\n  orders:\n    legacy: http://127.0.0.1:1\n    routes: [\"GET /a\"]\n"
	for _, tt := range []struct{ yaml, want string }{
		{base + "    shadow: {wirtes: allow}\n", `strangler.yaml:5:14: services.orders.shadow.wirtes: unknown key; did you mean "writes"?`},
		{base + "    candidate:\n      wasm: order.wasm\n      reus: 100\n", `strangler.yaml:7:7: services.orders.candidate.reus: unknown key; did you mean "reuse"?`},
	} {
		path := filepath.Join(dir, "strangler.yaml")
		if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		_, stderr, code := runCLI(t, "proxy", "--config", path, "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0")
		if code != exitError || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "unmarshal") {
			t.Errorf("exit %d, stderr %q; want exit 1 and %s", code, stderr, tt.want)
		}
	}
}
