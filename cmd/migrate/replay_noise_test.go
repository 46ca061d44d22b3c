package main

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// A replay judges the new answer with the noise the proxy learned: an order
// number that differs on every request is not what still differs after the
// candidate's real difference (its Content-Type) is fixed.
func TestDiffsReplayAppliesLearnedNoise(t *testing.T) {
	cfg, err := strangler.ParseConfig([]byte("services:\n  order-service:\n    legacy: http://127.0.0.1:1\n    candidate: {url: http://127.0.0.1:2}\n    routes: [\"GET /api/order\"]\n    mode: shadow\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	text := func(contentType, id string) shadow.Response {
		return shadow.Response{Status: 200, Header: http.Header{"Content-Type": {contentType}},
			Body: []byte("Order Number " + id + " Placed Successfully\n")}
	}
	legacy := text("text/plain", "04e2a21f-5d9d-4dcc-9ce5-88f60cbd8701")
	// The A/A baseline teaches the proxy that the order number is noise.
	noise := shadow.NewNoise()
	at := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	baseline := shadow.Sample{At: at, Route: "GET /api/order", Service: "order-service", Baseline: true,
		Request: shadow.RecordedRequest{Method: "GET", URL: "/api/order"},
		Legacy:  legacy, Candidate: text("text/plain", "9b1f0c2e-1111-4a2b-8c3d-0123456789ab")}
	baseline.Result = shadow.Compare(baseline.Legacy, baseline.Candidate, nil, nil)
	if noise.Learn(baseline.Result, at) == 0 {
		t.Fatalf("the baseline taught no noise: %+v", baseline.Result)
	}
	smp := shadow.Sample{At: at.Add(time.Second), Route: "GET /api/order", Service: "order-service",
		Request: shadow.RecordedRequest{Method: "GET", URL: "/api/order"},
		Legacy:  legacy, Candidate: text("application/json", "5e8e32a1-48af-46d3-bfb2-c9e9cfaf0b01")}
	smp.Result = shadow.Compare(smp.Legacy, smp.Candidate, nil, noise)
	if smp.Result.Outcome != shadow.OutcomeMismatch {
		t.Fatalf("stored sample: %+v", smp.Result)
	}
	admin := serveStoredSamples(t, cfg, baseline, smp)

	// The fixed candidate answers text/plain, with an order number of its own.
	fixed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "Order Number 77777777-2222-4333-8444-555555555555 Placed Successfully\n")
	}))
	defer fixed.Close()
	var out, errb bytes.Buffer
	code := run([]string{"diffs", "GET /api/order", "--admin", admin, "--replay", "--candidate", fixed.URL},
		&streams{in: strings.NewReader(""), out: &out, err: &errb})
	if code != exitOK {
		t.Fatalf("replay of the fixed candidate: exit %d, want 0 (the order number is learned noise)\n%s%s", code, out.String(), errb.String())
	}
}
