package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/strangler"
)

// TestControlCommandsSurviveABrokenConfig runs a real proxy, breaks
// ./strangler.yaml with a typo the way an incident edit would, and checks
// rollback and status still reach the proxy through the admin-address file
// it wrote next to its store, with the broken config only a warning.
func TestControlCommandsSurviveABrokenConfig(t *testing.T) {
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"id":1}`)) }))
	defer legacy.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "strangler.yaml")
	// The config's admin address is not where the proxy listens (the test
	// binds port 0): only the admin file can lead the commands there.
	good := "admin: 127.0.0.1:1\nservices:\n  orders:\n    legacy: " + legacy.URL + "\n    candidate: {url: \"" + legacy.URL + "\"}\n    routes: [\"GET /api/order\"]\n"
	if err := os.WriteFile(cfgPath, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(adminEnv, "")
	t.Setenv(tokenEnv, "")
	t.Setenv(strangler.AdminTokenEnv, "")
	_, admin, stop := startProxy(t, cfgPath)
	adminFile := filepath.Join(dir, "migrate.db.admin")
	doc, err := strangler.ReadAdminFile(adminFile)
	if err != nil || "http://"+doc.Admin != admin || doc.PID != os.Getpid() {
		t.Fatalf("admin file: %+v, %v; want %s", doc, err, admin)
	}
	t.Chdir(dir)
	if _, stderr, code := runCLI(t, "shadow", "orders"); code != exitOK || strings.Contains(stderr, "warning:") {
		t.Fatalf("shadow: exit %d %s", code, stderr)
	}

	broken := strings.Replace(good, "routes:", "rutes:", 1)
	if err := os.WriteFile(cfgPath, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runCLI(t, "rollback", "orders", "--reason", "incident 7")
	if code != exitOK || !strings.Contains(stdout, "legacy") || !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, "rutes") {
		t.Fatalf("rollback with a broken config: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	stdout, stderr, code = runCLI(t, "status", "-o", "json")
	var routes strangler.RoutesDocument
	if code != exitOK || json.Unmarshal([]byte(stdout), &routes) != nil || len(routes.Routes) != 1 || routes.Routes[0].Mode != strangler.ModeLegacy {
		t.Fatalf("status with a broken config: exit %d\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	// Not even YAML: the store is taken to be the default one next to it.
	if err := os.WriteFile(cfgPath, []byte("services: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, "status"); code != exitOK || !strings.Contains(stderr, "strangler.yaml:2:1: not valid YAML") {
		t.Fatalf("status with a config that is not YAML: exit %d %s", code, stderr)
	}

	// $MIGRATE_ADMIN comes before the file, and --admin before both.
	t.Setenv(adminEnv, "127.0.0.1:1")
	if _, stderr, code := runCLI(t, "status"); code != exitError || !strings.Contains(stderr, "http://127.0.0.1:1") {
		t.Fatalf("$MIGRATE_ADMIN is not used: exit %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "status", "--admin", admin); code != exitOK {
		t.Fatalf("--admin is not used over $MIGRATE_ADMIN: exit %d %s", code, stderr)
	}
	t.Setenv(adminEnv, "")

	stop()
	if _, err := os.Stat(adminFile); !os.IsNotExist(err) {
		t.Fatalf("a clean shutdown left the admin file: %v", err)
	}
	// A file left by a proxy that died names itself in the error.
	stale := strangler.AdminFileDocument{Admin: strings.TrimPrefix(admin, "http://"), PID: 4242, Started: time.Now()}
	if err := strangler.WriteAdminFile(adminFile, stale); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := runCLI(t, "rollback", "orders"); code != exitError || !strings.Contains(stderr, "Remove "+adminFile) || !strings.Contains(stderr, "pid 4242") {
		t.Fatalf("stale admin file: exit %d %s", code, stderr)
	}
}

// TestControlTokenFlagAndEnv: --token, then $MIGRATE_TOKEN, then
// $MIGRATE_ADMIN_TOKEN.
func TestControlTokenFlagAndEnv(t *testing.T) {
	_, admin := newAdmin(t, "s3cret")
	t.Setenv(strangler.AdminTokenEnv, "")
	t.Setenv(tokenEnv, "")
	if _, stderr, code := runCLI(t, "status", "--admin", admin); code != exitError || !strings.Contains(stderr, "bearer token") {
		t.Fatalf("without a token: exit %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "status", "--admin", admin, "--token", "s3cret"); code != exitOK {
		t.Fatalf("--token: exit %d %s", code, stderr)
	}
	t.Setenv(tokenEnv, "s3cret")
	if _, stderr, code := runCLI(t, "status", "--admin", admin); code != exitOK {
		t.Fatalf("$MIGRATE_TOKEN: exit %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, "status", "--admin", admin, "--token", "wrong"); code != exitError {
		t.Fatalf("--token must win over $MIGRATE_TOKEN: exit %d %s", code, stderr)
	}
}
