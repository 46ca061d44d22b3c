package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// startAdminWithPairs serves a real admin API over a real SQLite store
// holding one stored sample per legacy/candidate pair of GET /api/product.
func startAdminWithPairs(t *testing.T, pairs ...[2]shadow.Response) string {
	t.Helper()
	var samples []shadow.Sample
	for i, p := range pairs {
		s := shadow.Sample{At: time.Date(2026, 11, 26, 9, 0, i, 0, time.UTC), Route: "GET /api/product", Service: "product-service",
			Request: shadow.RecordedRequest{Method: "GET", URL: "/api/product"}, Legacy: p[0], Candidate: p[1]}
		s.Result = shadow.Compare(p[0], p[1], nil, nil)
		samples = append(samples, s)
	}
	return serveStoredSamples(t, productConfig(t), samples...)
}

// TestDiffsBoundsLongBodies stores a sample whose JSON bodies differ in
// every one of 3,000 items and one whose text body is a single 20 kB
// line: the rendered diff stays short and says how much it left out.
func TestDiffsBoundsLongBodies(t *testing.T) {
	var legacy, cand []map[string]any
	for i := range 3000 {
		legacy = append(legacy, map[string]any{"id": i, "price": 10})
		cand = append(cand, map[string]any{"id": i, "price": 11})
	}
	lj, _ := json.Marshal(legacy)
	cj, _ := json.Marshal(cand)
	jsonHdr := http.Header{"Content-Type": {"application/json"}}
	textHdr := http.Header{"Content-Type": {"text/plain"}}
	long := strings.Repeat("ä", 10_000) // 20,000 bytes on one line
	admin := startAdminWithPairs(t,
		[2]shadow.Response{{Status: 200, Header: jsonHdr, Body: lj}, {Status: 200, Header: jsonHdr, Body: cj}},
		[2]shadow.Response{{Status: 200, Header: textHdr, Body: []byte("ok\n" + long + "\n")}, {Status: 200, Header: textHdr, Body: []byte("ok\nshort\n")}},
	)
	var full bytes.Buffer
	if code := run([]string{"diffs", "--admin", admin, "--limit", "2", "--max-bytes", "0"}, &streams{out: &full, err: &bytes.Buffer{}}); code != exitGateOrDiff {
		t.Fatalf("--max-bytes 0: exit %d", code)
	}
	for _, tt := range []struct {
		args    []string
		maxSize int
	}{
		{[]string{"--limit", "1"}, 4096 + 2*maxDiffLineBytes},
		{[]string{"--limit", "2", "--max-bytes", "1000"}, 2 * (1000 + 3*maxDiffLineBytes)},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"diffs", "--admin", admin}, tt.args...), &streams{out: &out, err: &errb, color: true})
		if code != exitGateOrDiff {
			t.Fatalf("%v: exit %d %s", tt.args, code, errb.String())
		}
		text := out.String()
		if visibleLen(text) > tt.maxSize {
			t.Errorf("%v: %d bytes of output, want at most %d", tt.args, visibleLen(text), tt.maxSize)
		}
		m := regexp.MustCompile(`… (\d+) more bytes`).FindAllStringSubmatch(text, -1)
		if len(m) == 0 {
			t.Fatalf("%v: nothing says what was cut:\n%s", tt.args, text)
		}
		for _, line := range strings.Split(text, "\n") {
			if n := visibleLen(line); n > maxDiffLineBytes+60 {
				t.Errorf("%v: a line of %d bytes was not cut: %.80q", tt.args, n, line)
			}
			if strings.Contains(line, "\ufffd") {
				t.Errorf("%v: a cut split a character: %q", tt.args, line)
			}
		}
		if strings.Count(text, "\x1b[") == 0 {
			t.Error("no colour on a colour terminal")
		}
		if n, _ := strconv.Atoi(m[0][1]); n <= 0 {
			t.Errorf("%v: cut says %d more bytes", tt.args, n)
		}
	}
	if full.Len() < 100_000 {
		t.Fatalf("--max-bytes 0 cut the diff: %d bytes", full.Len())
	}
	if strings.Contains(full.String(), "more bytes") {
		t.Error("--max-bytes 0 still cut something")
	}
}
