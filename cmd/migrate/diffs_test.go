package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/fixtures"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// productConfig is a config with one shadowed route, GET /api/product.
func productConfig(t *testing.T) *strangler.Config {
	t.Helper()
	cfg, err := strangler.ParseConfig([]byte("services:\n  product-service:\n    legacy: http://127.0.0.1:1\n    candidate: {url: http://127.0.0.1:2}\n    routes: [\"GET /api/product\"]\n    mode: shadow\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// serveStoredSamples runs a real admin API for cfg over a real SQLite
// store holding samples.
func serveStoredSamples(t *testing.T, cfg *strangler.Config, samples ...shadow.Sample) string {
	t.Helper()
	ctx := context.Background()
	store, err := strangler.OpenStore(filepath.Join(t.TempDir(), "migrate.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ctrl := strangler.NewController(store, nil, nil)
	if _, err := ctrl.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var rows []strangler.SampleRow
	for _, s := range samples {
		data, _ := json.Marshal(s)
		rows = append(rows, strangler.SampleRow{At: s.At, Route: s.Route, Signature: strangler.SampleSignature(s), Data: data})
	}
	if err := store.AddSamples(ctx, rows, strangler.SamplesPerSignature); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(strangler.NewAdmin(ctrl, strangler.AdminOptions{}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// startAdminWithSamples runs a real admin API over a real SQLite store that
// holds one mismatching sample of GET /api/product and, newer, as many
// matching ones as the store keeps: what a busy route looks like.
func startAdminWithSamples(t *testing.T) string {
	t.Helper()
	legacy := shadow.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`[{"id":"1","name":"Brake Pads","price":150.00,"skuCode":"BRK-PD-HP"}]`)}
	cand := shadow.Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`[{"id":"1","name":"Brake Pads","price":150.00,"sku":"BRK-PD-HP"}]`)}
	var samples []shadow.Sample
	for i := range strangler.SamplesPerSignature + 1 {
		c := legacy
		if i == 0 {
			c = cand
		}
		s := shadow.Sample{At: time.Date(2026, 11, 26, 9, 0, i, 0, time.UTC), Route: "GET /api/product", Service: "product-service",
			Request: shadow.RecordedRequest{Method: "GET", URL: "/api/product"}, Legacy: legacy, Candidate: c}
		s.Result = shadow.Compare(legacy, c, nil, nil)
		samples = append(samples, s)
	}
	return serveStoredSamples(t, productConfig(t), samples...)
}

func TestDiffsRendersStoredSamples(t *testing.T) {
	admin := startAdminWithSamples(t)
	var out, errb bytes.Buffer
	// --limit counts differences: the newer matches do not crowd the one out.
	code := run([]string{"diffs", "GET /api/product", "--admin", admin, "--limit", "1"}, &streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code != exitGateOrDiff {
		t.Fatalf("exit %d, want %d (differences found); stderr %s", code, exitGateOrDiff, errb.String())
	}
	text := out.String()
	for _, want := range []string{"field missing at /0/skuCode", "extra field at /0/sku", `-    "skuCode": "BRK-PD-HP"`, `+    "sku": "BRK-PD-HP"`} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "\x1b[") {
		t.Error("colour codes written to a non-terminal")
	}

	out.Reset()
	code = run([]string{"diffs", "--admin", admin, "-o", "json", "--all", "--limit", "100"}, &streams{in: strings.NewReader(""), out: &out, err: &errb})
	var doc struct {
		APIVersion string `json:"apiVersion"`
		Routes     []struct {
			Route   string `json:"route"`
			Service string `json:"service"`
			Mode    string `json:"mode"`
			Diffs   []struct {
				ID     int64         `json:"id"`
				Result shadow.Result `json:"result"`
			} `json:"diffs"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if code != exitGateOrDiff || doc.APIVersion != APIVersion || len(doc.Routes) != 1 || len(doc.Routes[0].Diffs) != strangler.SamplesPerSignature+1 ||
		doc.Routes[0].Service != "product-service" || doc.Routes[0].Mode != "shadow" {
		t.Fatalf("exit %d, document %+v", code, doc)
	}
}

func TestDiffsReplay(t *testing.T) {
	admin := startAdminWithSamples(t)
	fixed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(shadow.HeaderShadow) != "replay" || r.URL.Path != "/api/product" {
			http.Error(w, "unexpected request", http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"skuCode":"BRK-PD-HP","price":150.00,"name":"Brake Pads","id":"1"}]`)
	}))
	defer fixed.Close()
	var out, errb bytes.Buffer
	code := run([]string{"diffs", "--admin", admin, "--replay", "--candidate", fixed.URL, "-o", "json"},
		&streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code != exitOK {
		t.Fatalf("exit %d after the fix, want 0; stderr %s; out %s", code, errb.String(), out.String())
	}
	if !strings.Contains(out.String(), `"after": "match"`) || !strings.Contains(out.String(), `"before": "mismatch"`) {
		t.Fatalf("replay output: %s", out.String())
	}

	// A candidate that still answers "sku": the table says what still
	// differs in words, not as signatures.
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `[{"sku":"BRK-PD-HP","price":150.00,"name":"Brake Pads","id":"1"}]`)
	}))
	defer broken.Close()
	out.Reset()
	code = run([]string{"diffs", "--admin", admin, "--replay", "--candidate", broken.URL}, &streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code != exitGateOrDiff || !strings.Contains(out.String(), "extra field at /*/sku, field missing at /*/skuCode") {
		t.Fatalf("replay table: exit %d\n%s", code, out.String())
	}

	out.Reset()
	code = run([]string{"diffs", "--admin", admin, "--replay"}, &streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code != exitUsage {
		t.Fatalf("--replay without a candidate: exit %d, want %d", code, exitUsage)
	}
}

func TestDiffsReplayInProcessCandidate(t *testing.T) {
	admin := startAdminWithSamples(t)
	dir := t.TempDir()
	mods, err := fixtures.BuildWasm(context.Background(), filepath.Join(dir, "components"))
	if err != nil {
		t.Skipf("fixture components do not build here: %v", err)
	}
	config := func(candidate string) string {
		path := filepath.Join(dir, "strangler.yaml")
		yaml := "store: migrate.db\nservices:\n  product-service:\n    legacy: http://127.0.0.1:1\n    candidate: " + candidate +
			"\n    routes: [\"GET /api/product\"]\n"
		if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if filepath.Dir(mods["product"]) != filepath.Join(dir, "components") {
		t.Fatalf("product module at %s", mods["product"])
	}
	// The guest answers the whole seed catalogue, which the stored legacy
	// answer (one product) does not match: replay ran it and compared.
	var out, errb bytes.Buffer
	code := run([]string{"diffs", "--admin", admin, "--replay", "--config", config("{wasm: components/product.wasm}"), "-o", "json"},
		&streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code != exitGateOrDiff || !strings.Contains(out.String(), `"after": "mismatch"`) {
		t.Fatalf("exit %d; stderr %s; out %s", code, errb.String(), out.String())
	}
	// The candidate block is read as strictly as the proxy reads it.
	out.Reset()
	errb.Reset()
	code = run([]string{"diffs", "--admin", admin, "--replay", "--config", config("{wasm: components/product.wasm, maxMemroy: 1MiB}")},
		&streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code == exitOK || !strings.Contains(out.String()+errb.String(), "maxMemroy") {
		t.Fatalf("a misspelt option was accepted: exit %d; stderr %s; out %s", code, errb.String(), out.String())
	}
}
