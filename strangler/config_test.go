package strangler

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const validConfig = `
listen: 127.0.0.1:8080
admin: 127.0.0.1:9090
default: http://legacy-gateway:8080
services:
  order-service:
    legacy: http://order-service:8080
    candidate: {wasm: components/orders.wasm, maxMemory: 32MiB}
    routes: ["POST /api/order", "GET /api/order", "GET /api/order/{id}"]
    shadow: {sample: 100%, writes: deny, ignore: ["/timestamp"]}
    gate: {minSamples: 1000, minMatch: 99.9%, maxP99Ratio: 1.5, maxErrorRate: 0.1%}
    stickyBy: "header:X-User"
  product-service:
    legacy: http://product-service:8080
    candidate: {url: http://products.spin.local:3000, timeout: 2s}
    routes: ["GET /api/product"]
    mode: canary
    weight: 25
`

func TestParseConfigDefaultsAndFields(t *testing.T) {
	cfg, err := ParseConfig([]byte(validConfig), "/etc/migrate")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.StorePath(); got != "/etc/migrate/migrate.db" {
		t.Errorf("store path = %s", got)
	}
	orders := cfg.Services["order-service"]
	if orders.Candidate.Wasm != "components/orders.wasm" || !strings.Contains(string(orders.Candidate.Raw), "32MiB") {
		t.Errorf("wasm candidate = %+v raw %s", orders.Candidate, orders.Candidate.Raw)
	}
	if orders.Mode != ModeLegacy || time.Duration(orders.Timeout) != DefaultTimeout || orders.MaxIdleConns != DefaultMaxIdlePerHost {
		t.Errorf("defaults not applied: %+v", orders)
	}
	if g := orders.Gate; g.MinSamples != 1000 || *g.MinMatch != 0.999 || g.MaxP99Ratio != 1.5 || *g.MaxErrorRate != 0.001 {
		t.Errorf("gate = %+v", g)
	}
	if orders.Shadow == nil || orders.Shadow.Writes != "deny" || orders.Shadow.Ignore[0] != "/timestamp" {
		t.Errorf("shadow = %+v", orders.Shadow)
	}
	products := cfg.Services["product-service"]
	if products.Mode != ModeCanary || products.Weight != 25 || time.Duration(products.Candidate.Timeout) != 2*time.Second {
		t.Errorf("product-service = %+v", products)
	}
	if got := cfg.ServiceOf("GET /api/order/{id}"); got != "order-service" {
		t.Errorf("ServiceOf = %q", got)
	}
	if n := len(cfg.RouteNames()); n != 4 {
		t.Errorf("routes = %d", n)
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := "services:\n  orders:\n    legacy: http://orders:8080\n    routes: [\"GET /api/order\"]\n"
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "config is empty"},
		{"no services", "listen: 127.0.0.1:1\n", "at least one service"},
		{"unknown key", base + "    retries: 3\n", `unknown field "retries"`},
		{"typo top level", "lisen: x\n" + base, `unknown field "lisen"`},
		{"bad legacy", "services:\n  orders:\n    legacy: orders:8080\n    routes: [\"GET /a\"]\n", "services.orders.legacy"},
		{"missing legacy", "services:\n  orders:\n    routes: [\"GET /a\"]\n", "legacy base URL is required"},
		{"no routes", "services:\n  orders:\n    legacy: http://o\n", "services.orders.routes"},
		{"bad method", "services:\n  orders:\n    legacy: http://o\n    routes: [\"get /a\"]\n", "not an HTTP method"},
		{"bad path", "services:\n  orders:\n    legacy: http://o\n    routes: [\"GET a\"]\n", "must start with /"},
		{"unclosed param", "services:\n  orders:\n    legacy: http://o\n    routes: [\"GET /a/{id\"]\n", "unclosed {"},
		{"same shape", "services:\n  orders:\n    legacy: http://o\n    routes: [\"GET /a/{id}\", \"GET /a/{name}\"]\n", "matches the same requests"},
		{"duplicate across services", base + "  other:\n    legacy: http://x\n    routes: [\"GET /api/order\"]\n", "already listed by service orders"},
		{"bad mode", base + "    mode: live\n", `"live" is not a mode`},
		{"mode without candidate", base + "    mode: shadow\n", "needs a candidate block"},
		{"both candidates", base + "    candidate: {url: http://c, wasm: a.wasm}\n", "not both"},
		{"empty candidate", base + "    candidate: {timeout: 1s}\n", "set url"},
		{"bad weight", base + "    weight: 120\n", "weight: 120"},
		{"bad sticky", base + "    stickyBy: user\n", "header:NAME or cookie:NAME"},
		{"bad shadow", base + "    shadow: {writes: sometimes}\n", "shadow.writes"},
		{"bad percent", base + "    gate: {minMatch: lots}\n", "percentage"},
		{"bad duration", base + "    timeout: soon\n", "duration"},
		{"bad size", "maxBufferedBody: huge\n" + base, "size"},
		{"tiny wasm memory", "wasmMemory: 64KiB\n" + base, "wasmMemory 65536 bytes is below 1MiB"},
		{"bad listen", "listen: nowhere\n" + base, "listen:"},
		{"bad default", "default: ftp://x\n" + base, "default:"},
		{"api version", "apiVersion: migrate/v2\n" + base, "apiVersion"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig([]byte(tt.yaml), "")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestLoadConfigNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strangler.yaml")
	if err := os.WriteFile(path, []byte("services: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("error = %v, want the file named", err)
	}
}

func TestUnits(t *testing.T) {
	for in, want := range map[string]ByteSize{`"1MiB"`: 1 << 20, `"512KiB"`: 512 << 10, `"64MB"`: 64e6, `"100"`: 100, `100`: 100, `"1.5KiB"`: 1536} {
		var got ByteSize
		if err := json.Unmarshal([]byte(in), &got); err != nil || got != want {
			t.Errorf("size %s = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, want := range map[string]Percent{"99.9%": 0.999, "50": 0.5, "0%": 0, "100%": 1} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"101%", "-1%", "x", "NaN"} {
		if _, err := ParsePercent(bad); err == nil {
			t.Errorf("ParsePercent(%q) accepted", bad)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(validConfig))
	f.Add([]byte("services:\n  a:\n    legacy: http://a\n    routes: [\"GET /{x}.json\"]\n"))
	f.Add([]byte("services: {a: {legacy: 'http://a', routes: ['GET /'], gate: {minMatch: 1}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "/tmp")
		if err != nil {
			return
		}
		// A config that parses must compile and re-validate.
		if _, err := NewMatcher(cfg.RouteNames()); err != nil {
			t.Fatalf("valid config whose routes do not compile: %v", err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("valid config fails Validate again: %v", err)
		}
	})
}
