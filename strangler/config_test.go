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
		{"only comments", "# services: to come\n", "at least one service"},
		{"unknown key", base + "    retries: 3\n", `5:5: services.orders.retries: unknown key; known keys: candidate, gate, legacy,`},
		{"typo top level", "lisen: x\n" + base, `1:1: lisen: unknown key; did you mean "listen"?`},
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

// TestConfigErrorsSayWhere: every mistake names the line, the column and
// the key path, and an unknown key the key it most likely meant; none is
// "error unmarshaling JSON".
func TestConfigErrorsSayWhere(t *testing.T) {
	const cfg = `services:
  orders:
    legacy: http://orders:8080
    routes: ["GET /api/order"]
  products:
    legacy: http://products:8080
    candidate: {url: "http://c:3000"}
    routes:
      - GET /api/product
      - "GET /api/product/{id}"
    shadow:
      wirtes: allow
`
	fixed := strings.Replace(cfg, "wirtes", "writes", 1)
	tests := []struct{ name, yaml, want string }{
		{"typo in a nested block", cfg, `strangler.yaml:12:7: services.products.shadow.wirtes: unknown key; did you mean "writes"?`},
		{"typo in a service", strings.Replace(cfg, "    legacy: http://products", "    legasy: http://products", 1),
			`strangler.yaml:6:5: services.products.legasy: unknown key; did you mean "legacy"?`},
		{"typo in a gate", strings.Replace(cfg, "      wirtes: allow", "      writes: allow\n    gate: {minSampels: 10}", 1),
			`strangler.yaml:13:12: services.products.gate.minSampels: unknown key; did you mean "minSamples"?`},
		{"wrong type", strings.Replace(cfg, "      wirtes: allow", "      writes: allow\n    weight: ten", 1),
			`strangler.yaml:13:13: services.products.weight: "ten" is not a whole number`},
		{"list for a string", strings.Replace(cfg, "legacy: http://orders:8080", "legacy: [a, b]", 1),
			`strangler.yaml:3:13: services.orders.legacy: want a string (quote it), found a list`},
		{"bad duration", strings.Replace(cfg, `{url: "http://c:3000"}`, `{url: "http://c:3000", timeout: soon}`, 1),
			`strangler.yaml:7:16: services.products.candidate: `},
		{"validation", strings.Replace(fixed, "      - GET /api/product\n", "      - get /api/product\n", 1),
			`strangler.yaml:9:9: services.products.routes[0]: `},
		{"syntax", strings.Replace(cfg, "routes: [\"GET /api/order\"]", "routes: [\"GET /api/order\"", 1),
			`strangler.yaml:5:`},
		{"set twice", fixed + "    weight: 5\n    weight: 6\n", `strangler.yaml:14:5: services.products.weight: set twice (first on line 13)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "strangler.yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Chdir(dir)
			_, err := LoadConfig("strangler.yaml")
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) || strings.Contains(err.Error(), "unmarshal") {
				t.Fatalf("error = %v\nwant it to start with %s", err, tt.want)
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

// FuzzConfig: no input makes the config parser panic, and every rejection
// is a readable error, never the decoder's "error unmarshaling JSON".
func FuzzConfig(f *testing.F) {
	seeds := []string{
		"services:\n  orders:\n    legacy: http://o:1\n    routes: [\"GET /a\"]\n",
		"services:\n  orders:\n    legacy: http://o:1\n    candidate: {wasm: a.wasm, memory: 32MiB}\n    routes: [\"GET /a/{id}\"]\n    gate: {minMatch: 99.9%, routes: {\"GET /a/{id}\": {minSamples: 5}}}\n    shadow: {writes: allow, ignore: [/ts]}\n",
		"a: &x [1, *x]\n",
		"a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c]\nservices: {o: {routes: [*d, *d, *d, *d, *d, *d, *d, *d]}}\n",
		"services: {a: *b}\n",
		"<<: {listen: x}\nservices: {}\n",
		"{\"services\": {\"o\": {\"legacy\": \"http://o\", \"routes\": [\"GET /\"]}}}",
		"services:\n  o:\n    weight: 1e400\n",
		"- - - - -\n",
		"\xff\xfe",
	}
	if data, err := os.ReadFile(filepath.Join("testdata", "strangler.yaml")); err == nil {
		seeds = append(seeds, string(data))
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data, "/nonexistent")
		if err != nil {
			if strings.Contains(err.Error(), "error unmarshaling JSON") {
				t.Fatalf("decoder wording leaked: %v", err)
			}
			return
		}
		if len(cfg.Services) == 0 {
			t.Fatal("accepted a config without services")
		}
	})
}
