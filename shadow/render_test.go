package shadow

import (
	"bytes"
	"compress/gzip"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden file:\n%s", name, got)
	}
}

func renderSample() Sample {
	legacy := jsonResp(200, `[{"orderNumber":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","items":[{"skuCode":"BRK-PD-HP","price":150.00,"quantity":1}]},{"orderNumber":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","items":[{"skuCode":"AIR-FLT-PREM","price":30.00,"quantity":2}]}]`)
	legacy.Latency = 12 * time.Millisecond
	cand := jsonResp(200, `[{"order_number":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","items":[{"skuCode":"BRK-PD-HP","price":150,"quantity":1}]}]`)
	cand.Header.Set("Content-Type", "application/json")
	cand.Latency = 3 * time.Millisecond
	s := Sample{At: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Route: "GET /api/order", Service: "order-service",
		Request: RecordedRequest{Method: "GET", URL: "/api/order", Header: http.Header{"Authorization": {"Bearer secret"}}},
		Legacy:  legacy, Candidate: cand}
	s.Result = Compare(s.Legacy, s.Candidate, nil, nil)
	return s
}

func TestRenderJSON(t *testing.T) {
	var plain, color bytes.Buffer
	s := renderSample()
	if err := Render(s, &plain, false); err != nil {
		t.Fatal(err)
	}
	golden(t, "render-json.txt", plain.Bytes())
	if strings.Contains(plain.String(), "\x1b[") {
		t.Fatal("colour codes without color=true")
	}
	Render(s, &color, true)
	if !strings.Contains(color.String(), ansiRed+"-") || !strings.Contains(color.String(), ansiGreen+"+") {
		t.Fatal("color=true should colour removed and added lines")
	}
}

func TestRenderText(t *testing.T) {
	l := textResp(201, "Order Number 3f2504e0-4f89-11d3-9a0c-0305e82c3301 Placed Successfully")
	c := textResp(500, "Product is not in stock, please try again later")
	s := Sample{At: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC), Route: "POST /api/order",
		Request: RecordedRequest{Method: "POST", URL: "/api/order",
			Body: []byte("{\n  \"orderLineItemsDtoList\": [{\"skuCode\": \"BRK-PD-HP\", \"price\": 150, \"quantity\": 1}]\n}")},
		Legacy: l, Candidate: c}
	s.Result = Compare(l, c, nil, nil)
	var buf bytes.Buffer
	Render(s, &buf, false)
	golden(t, "render-text.txt", buf.Bytes())
}

// TestRenderEscapesControlCharacters shows a hostile body's escape
// sequences instead of sending them to the terminal, wherever they are.
func TestRenderEscapesControlCharacters(t *testing.T) {
	const clear = "\x1b[2J\u009b31m"
	l := textResp(200, "ok")
	c := textResp(200, "ok"+clear)
	c.Header.Set("X-Trace", "a"+clear)
	s := Sample{Route: "POST /x", Request: RecordedRequest{Method: "POST", URL: "/x", Body: []byte("id=1" + clear)},
		Legacy: l, Candidate: c}
	s.Result = Compare(l, c, nil, nil)
	var buf bytes.Buffer
	if err := Render(s, &buf, false); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.ContainsAny(out, "\x1b\u009b") {
		t.Fatalf("control characters reached the output:\n%q", out)
	}
	if n := strings.Count(out, `\x1b[2J\x9b31m`); n < 3 {
		t.Errorf("escaped sequence shown %d times, want the request body, the difference and the body line:\n%s", n, out)
	}

	// JSON keeps C1 characters raw in its strings; they are escaped too.
	lj, cj := jsonResp(200, `{"a":"ok"}`), jsonResp(200, `{"a":"ok\u009b31m"}`)
	s = Sample{Route: "POST /x", Request: RecordedRequest{Method: "POST", URL: "/x", Body: []byte(`{"q":"\u009b2J"}`)},
		Legacy: lj, Candidate: cj}
	s.Result = Compare(lj, cj, nil, nil)
	buf.Reset()
	if err := Render(s, &buf, false); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Contains(out, "\u009b") || strings.Count(out, `\x9b`) < 3 {
		t.Fatalf("a C1 character in JSON reached the output, or was not shown escaped:\n%q", out)
	}
}

func TestRenderCandidateError(t *testing.T) {
	s := Sample{Route: "GET /x", Legacy: jsonResp(200, "{}"), Candidate: Response{Error: ErrTimeout}}
	s.Result = Compare(s.Legacy, s.Candidate, nil, nil)
	var buf bytes.Buffer
	Render(s, &buf, false)
	if !strings.Contains(buf.String(), "candidate failed: timeout") {
		t.Fatalf("render: %s", buf.String())
	}
}

func TestRedact(t *testing.T) {
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(`{"user":{"email":"a@b.c","name":"A"},"cards":[{"pan":"4111"}]}`))
	zw.Close()
	legacy := jsonResp(200, "")
	legacy.Body = gz.Bytes()
	legacy.Header.Set("Content-Encoding", "gzip")
	legacy.Header.Set("Set-Cookie", "SESSION=abc")
	cand := jsonResp(200, `{"user":{"email":"x@y.z","name":"A"},"cards":[{"pan":"4111"}]}`)
	opts := &Options{Redact: []string{"/user/email", "/cards/*/pan"}, MaxBody: 1 << 10}
	s := Sample{Route: "GET /me", Request: RecordedRequest{Method: "GET", URL: "/me?access_token=tok123&page=2",
		Header: http.Header{"Authorization": {"Bearer t"}, "Cookie": {"SESSION=abc"}}, Body: bytes.Repeat([]byte("x"), 2000)},
		Legacy: legacy, Candidate: cand}
	s.Result = Compare(legacy, cand, opts, nil)
	r := Redact(s, opts)
	if !strings.Contains(r.Request.URL, "page=2") {
		t.Errorf("harmless query parameters should stay: %s", r.Request.URL)
	}
	all := r.Request.URL + r.Request.Header.Get("Authorization") + r.Request.Header.Get("Cookie") + r.Legacy.Header.Get("Set-Cookie") +
		string(r.Legacy.Body) + string(r.Candidate.Body)
	for _, d := range r.Result.Differences {
		all += d.Legacy + d.Candidate
	}
	for _, secret := range []string{"Bearer", "SESSION", "a@b.c", "x@y.z", "4111", "tok123"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q survived redaction", secret)
		}
	}
	if r.Legacy.Header.Get("Content-Encoding") != "" || !strings.Contains(string(r.Legacy.Body), `"name":"A"`) {
		t.Errorf("stored legacy body should be decoded: %q", r.Legacy.Body)
	}
	if len(r.Request.Body) != 1<<10 || !r.Request.Truncated {
		t.Errorf("request body %d bytes, truncated=%v", len(r.Request.Body), r.Request.Truncated)
	}
	if s.Request.Header.Get("Authorization") != "Bearer t" {
		t.Error("Redact modified its input")
	}
}
