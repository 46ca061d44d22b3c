package strangler

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const outboundConfig = `services:
  order-service:
    legacy: http://order-service:8080
    candidate: {wasm: order.wasm, outbound: [%s]}
    routes: ["POST /api/order"]
  inventory-service:
    legacy: http://inventory-service:8080
    routes: ["GET /api/inventory"]
`

// TestOutboundServiceNameMustExist: an outbound entry shaped like a
// service name that the config lacks is refused at load, placed in the
// file and with the nearest service; hosts, origins and real services
// load.
func TestOutboundServiceNameMustExist(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	load := func(entries string) error {
		if err := os.WriteFile(path, []byte(strings.Replace(outboundConfig, "%s", entries, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadConfig(path)
		return err
	}
	err := load(`"http://127.0.0.1:8082", inventory-servce`)
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("typo in a service name: err = %v, want a ConfigError", err)
	}
	for _, want := range []string{
		"strangler.yaml:4:",
		`services.order-service.candidate.outbound[1]: "inventory-servce" is not a service of this config`,
		`did you mean "inventory-service"?`,
		`"http://inventory-servce"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if err := load(`payments`); err == nil || !strings.Contains(err.Error(), "(services: inventory-service, order-service)") {
		t.Errorf("a name near no service: err = %v, want the list of services", err)
	}
	for _, ok := range []string{
		"inventory-service",
		`"http://payments"`,
		"payments.internal",
		`"payments:8080"`,
		"localhost",
		`"127.0.0.1:9000"`,
	} {
		if err := load(ok); err != nil {
			t.Errorf("outbound [%s]: %v", ok, err)
		}
	}
}
