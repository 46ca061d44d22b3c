package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// base64Run finds the strings a JSON encoder writes for []byte: stored and
// served sample bodies are base64, which a plain byte search would miss.
var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{8,}={0,2}`)

// searchable is data plus every base64 run in it decoded, so a secret in a
// sample body is found whether it was written out or encoded.
func searchable(data []byte) []byte {
	out := bytes.Clone(data)
	for _, run := range base64Run.FindAll(data, -1) {
		if dec, err := base64.StdEncoding.DecodeString(string(run)); err == nil {
			out = append(append(out, '\n'), dec...)
		}
	}
	return out
}

func uniqueSecret(t *testing.T, what string) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return what + hex.EncodeToString(b)
}

// TestSecretsNeverLeave drives shadow traffic through a real proxy whose
// legacy service and candidate both answer with redacted fields holding
// different secrets, and whose requests carry secrets in a redacted header,
// query parameter and form field. Then every byte the proxy and the CLI
// hand out is searched: the SQLite file and its WAL, every admin endpoint,
// the proxy's log, status, diffs, gate, replay and the three report
// formats. A field that is not redacted is searched for too, and must be
// found: it proves the search sees what is there.
func TestSecretsNeverLeave(t *testing.T) {
	secrets := map[string]string{
		"legacy /password":           uniqueSecret(t, "legacypw"),
		"candidate /password":        uniqueSecret(t, "candpw"),
		"legacy /card/number":        uniqueSecret(t, "legacycard"),
		"candidate /card/num":        uniqueSecret(t, "candcard"),
		"header X-Session-Key":       uniqueSecret(t, "hdr"),
		"query pin":                  uniqueSecret(t, "qry"),
		"form passphrase":            uniqueSecret(t, "form"),
		"default header X-Api-Key":   uniqueSecret(t, "apikey"),
		"default query access_token": uniqueSecret(t, "acctok"),
	}
	controls := map[string]string{
		"legacy /note":    uniqueSecret(t, "legacynote"),
		"candidate /note": uniqueSecret(t, "candnote"),
	}
	account := func(pw, card, note string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			_ = r.ParseForm()
			if r.URL.Path == "/api/greeting" {
				// Services echo what they were sent: a text answer holding
				// the redacted header and query parameter of the request.
				w.Header().Set("Content-Type", "text/plain")
				fmt.Fprintf(w, "hello ada\nyour session is %s\nyour pin is %s\n%s\n", r.Header.Get("X-Session-Key"), r.Form.Get("pin"), note)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"user":"ada","password":%q,"card":{"number":%q,"expiry":"12/29"},"note":%q}`, pw, card, note)
		}
	}
	legacy := httptest.NewServer(account(secrets["legacy /password"], secrets["legacy /card/number"], controls["legacy /note"]))
	defer legacy.Close()
	candidate := httptest.NewServer(account(secrets["candidate /password"], secrets["candidate /card/num"], controls["candidate /note"]))
	defer candidate.Close()

	dir := t.TempDir()
	config := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`services:
  accounts:
    legacy: %s
    candidate: {url: %q}
    mode: shadow
    shadow:
      sample: 100%%
      writes: allow
      redact: ["/password", "/card/number", "@header/X-Session-Key", "@query/pin", "@form/passphrase"]
    routes: ["GET /api/account", "POST /api/login", "GET /api/greeting"]
`, legacy.URL, candidate.URL)
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}

	logs := &lockedBuffer{}
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	defer slog.SetDefault(prev)

	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan [2]string, 1)
	done := make(chan error, 1)
	o := &proxyOptions{config: config, listen: "127.0.0.1:0", admin: "127.0.0.1:0", poll: time.Hour,
		flush: 50 * time.Millisecond, shutdownGrace: 5 * time.Second,
		onReady: func(l, a string) { ready <- [2]string{l, a} }}
	go func() {
		done <- runProxy(ctx, o, &streams{in: strings.NewReader(""), out: io.Discard, err: io.Discard})
	}()
	var front, admin string
	select {
	case addrs := <-ready:
		front, admin = "http://"+addrs[0], "http://"+addrs[1]
	case err := <-done:
		cancel()
		t.Fatalf("proxy did not start: %v", err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("proxy exited with %v", err)
			}
		}
	}
	defer stop()

	// Shadow traffic: reads with the secret header and query parameters,
	// writes with the secret form field.
	const rounds = 8
	for i := range rounds {
		q := url.Values{"pin": {secrets["query pin"]}, "access_token": {secrets["default query access_token"]}, "page": {fmt.Sprint(i)}}
		req, _ := http.NewRequest("GET", front+"/api/account?"+q.Encode(), nil)
		req.Header.Set("X-Session-Key", secrets["header X-Session-Key"])
		req.Header.Set("X-Api-Key", secrets["default header X-Api-Key"])
		mustOK(t, req)
		req, _ = http.NewRequest("GET", front+"/api/greeting?"+q.Encode(), nil)
		req.Header.Set("X-Session-Key", secrets["header X-Session-Key"])
		mustOK(t, req)
		form := url.Values{"user": {"ada"}, "passphrase": {secrets["form passphrase"]}}
		req, _ = http.NewRequest("POST", front+"/api/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		mustOK(t, req)
	}
	// Wait until both routes have compared and stored mismatching samples.
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := fetch(t, admin+"/v1/samples?differences=true")
		if strings.Contains(body, `"route": "GET /api/account"`) && strings.Contains(body, `"route": "POST /api/login"`) &&
			strings.Contains(body, `"route": "GET /api/greeting"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mismatching samples of both routes stored: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	outputs := map[string][]byte{}
	// Every admin endpoint (strangler/admin.go and integrations.go), reads
	// and the webhook.
	for _, path := range []string{"/v1/routes", "/v1/audit", "/v1/samples", "/v1/samples?differences=true",
		"/v1/samples?route=GET+/api/account", "/v1/samples?route=POST+/api/login", "/v1/samples?route=GET+/api/greeting", "/v1/gate?target=accounts",
		"/v1/gate?target=GET+/api/account&to=cutover", "/v1/canary", "/v1/integrations/argo?target=accounts",
		"/metrics", "/healthz", "/readyz"} {
		outputs["GET "+path] = []byte(fetch(t, admin+path))
	}
	resp, err := http.Post(admin+"/v1/integrations/flagger", "application/json",
		strings.NewReader(`{"name":"accounts","namespace":"shop","phase":"Progressing","metadata":{"service":"accounts"}}`))
	if err != nil {
		t.Fatal(err)
	}
	flagger, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	outputs["POST /v1/integrations/flagger"] = flagger

	// Every CLI output that shows routes, evidence or samples.
	cli := func(args ...string) {
		stdout, stderr, _ := runCLI(t, args...)
		outputs["migrate "+strings.Join(args, " ")] = []byte(stdout + stderr)
	}
	for _, format := range []string{"table", "json", "yaml"} {
		cli("status", "--admin", admin, "-o", format)
		cli("status", "GET /api/account", "--admin", admin, "-o", format)
		cli("status", "accounts", "--admin", admin, "-o", format, "--timeline")
		cli("diffs", "--admin", admin, "-o", format)
		cli("diffs", "--admin", admin, "-o", format, "--all", "--limit", "1000")
		cli("gate", "accounts", "--admin", admin, "-o", format)
		cli("diffs", "--admin", admin, "-o", format, "--replay", "--candidate", candidate.URL)
	}
	cli("diffs", "--admin", admin, "--replay", "--config", config)
	for _, format := range []string{"json", "md", "html"} {
		out := filepath.Join(dir, "report."+format)
		cli("report", "--config", config, "--format", format, "--out", out)
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatalf("report --format %s: %v; %s", format, err, outputs["migrate report"])
		}
		outputs["report."+format] = data
	}
	// The store while the proxy runs (its write-ahead log holds the newest
	// pages), then after shutdown, checkpointed into the main file.
	for _, name := range []string{"migrate.db", "migrate.db-wal"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			outputs["running "+name] = data
		}
	}
	stop()
	outputs["proxy log"] = logs.Bytes()
	for _, name := range []string{"migrate.db", "migrate.db-wal", "migrate.db-shm"} {
		if data, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			outputs["stopped "+name] = data
		}
	}
	if len(outputs["running migrate.db-wal"]) == 0 && len(outputs["stopped migrate.db"]) == 0 {
		t.Fatal("no store file to search")
	}

	names := make([]string, 0, len(outputs))
	for name := range outputs {
		names = append(names, name)
	}
	sort.Strings(names)
	hits := 0
	controlFound := map[string]bool{}
	for _, name := range names {
		data := searchable(outputs[name])
		for what, secret := range secrets {
			if n := bytes.Count(data, []byte(secret)); n > 0 {
				hits += n
				i := bytes.Index(data, []byte(secret))
				t.Errorf("secret of %s found %d× in %s: …%s…", what, n, name, data[max(0, i-80):min(len(data), i+len(secret)+40)])
			}
		}
		for what, control := range controls {
			if bytes.Contains(data, []byte(control)) {
				controlFound[name+" "+what] = true
			}
		}
	}
	t.Logf("searched %d outputs (%d bytes): %d secret hits", len(outputs), totalLen(outputs), hits)

	// The negative control: the unredacted field differs between the sides
	// and so is stored and shown wherever differences or bodies are. In the
	// store file and the sample endpoint it sits in base64 bodies, so this
	// also proves the decoding.
	for _, name := range []string{"stopped migrate.db", "GET /v1/samples", "GET /v1/samples?differences=true",
		"migrate diffs --admin " + admin + " -o table", "migrate diffs --admin " + admin + " -o json",
		"report.json", "report.md", "report.html"} {
		for what := range controls {
			if !controlFound[name+" "+what] {
				t.Errorf("the unredacted %s is not found in %s: the search cannot see what it should", what, name)
			}
		}
	}
}

func totalLen(m map[string][]byte) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}

func mustOK(t *testing.T, req *http.Request) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", req.Method, req.URL, resp.StatusCode, body)
	}
}
