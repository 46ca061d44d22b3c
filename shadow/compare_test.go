package shadow

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
)

func jsonResp(status int, body string) Response {
	return Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

func textResp(status int, body string) Response {
	return Response{Status: status, Header: http.Header{"Content-Type": {"text/plain;charset=UTF-8"}}, Body: []byte(body)}
}

// diffsOf renders unexplained differences as "path type" for assertions.
func diffsOf(r Result) []string {
	var out []string
	for _, d := range r.Differences {
		if d.Noise == "" {
			out = append(out, d.Path+" "+d.Type)
		}
	}
	return out
}

func TestCompareJSON(t *testing.T) {
	tests := []struct {
		name      string
		legacy    string
		candidate string
		opts      *Options
		want      []string
	}{
		{"equal, keys reordered", `{"a":1,"b":[1,2],"c":{"x":null}}`, `{"c":{"x":null},"b":[1,2],"a":1}`, nil, nil},
		{"value", `{"a":1}`, `{"a":2}`, nil, []string{"/a value"}},
		{"type", `{"a":1}`, `{"a":"1"}`, nil, []string{"/a type"}},
		{"missing and extra", `{"sku":"A","skuCode":"A"}`, `{"sku":"A","is_in_stock":true}`, nil,
			[]string{"/skuCode missing", "/is_in_stock extra"}},
		{"subset allows extra", `{"a":1}`, `{"a":1,"b":2}`, &Options{Subset: true}, nil},
		{"subset still reports missing", `{"a":1,"c":3}`, `{"a":1,"b":2}`, &Options{Subset: true}, []string{"/c missing"}},
		{"numeric literal differs", `{"price":200.00}`, `{"price":200}`, nil, []string{"/price value"}},
		{"numeric tolerance", `{"price":200.00}`, `{"price":200}`, &Options{Numeric: true}, nil},
		{"array order", `[1,2,3]`, `[3,1,2]`, nil, []string{" order"}},
		{"array unordered", `[1,2,3]`, `[3,1,2]`, &Options{Unordered: []string{"$"}}, nil},
		{"array size", `[{"a":1},{"a":2}]`, `[{"a":1}]`, nil, []string{" size", "/1 missing"}},
		{"array changed element", `[{"a":1},{"a":2}]`, `[{"a":1},{"a":3}]`, nil, []string{"/1/a value"}},
		{"unordered truncated listing", `[{"o":"x"},{"o":"y"},{"o":"z"}]`, `[{"o":"z"},{"o":"x"}]`,
			&Options{Unordered: []string{""}}, []string{" size", "/1 missing"}},
		{"match by key", `[{"sku":"A","n":1},{"sku":"B","n":2}]`, `[{"sku":"B","n":3},{"sku":"A","n":1}]`,
			&Options{Unordered: []string{"/"}, MatchBy: map[string]string{"": "sku"}}, []string{"/1/n value"}},
		{"ignore wildcard", `[{"id":"1","t":5},{"id":"2","t":6}]`, `[{"id":"1","t":7},{"id":"2","t":8}]`,
			&Options{Ignore: []string{"/*/t"}}, nil},
		{"ignore jsonpath form", `{"meta":{"ts":1},"a":1}`, `{"meta":{"ts":2},"a":1}`, &Options{Ignore: []string{"$.meta.ts"}}, nil},
		{"spring error body", `{"timestamp":"2024-09-10T10:15:30.123+00:00","status":400,"error":"Bad Request","path":"/api/order"}`,
			`{"timestamp":"2026-01-01T00:00:00.000+00:00","status":400,"error":"Bad Request","path":"/api/order","trace":"x"}`, nil, nil},
		{"spring error path still compared", `{"status":404,"error":"Not Found","path":"/api/order"}`,
			`{"status":404,"error":"Not Found","path":"/orders"}`, nil, []string{"/path value"}},
		{"spring handling off", `{"timestamp":"a","status":400,"error":"x"}`, `{"timestamp":"b","status":400,"error":"x"}`,
			&Options{SpringErrors: new(bool)}, []string{"/timestamp value"}},
		{"ignore values regex", `{"id":"ord-123"}`, `{"id":"ord-999"}`, &Options{IgnoreValues: []string{`^ord-\d+$`}}, nil},
		{"escaped strings equal", `{"a":"\u00e9\n"}`, `{"a":"é\n"}`, nil, nil},
		{"root type", `{}`, `[]`, nil, []string{" type"}},
		{"nested pointer escaping", `{"a/b":{"c~d":1}}`, `{"a/b":{"c~d":2}}`, nil, []string{"/a~1b/c~0d value"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := Compare(jsonResp(200, tt.legacy), jsonResp(200, tt.candidate), tt.opts, nil)
			got := diffsOf(res)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Fatalf("differences = %q, want %q (all: %+v)", got, tt.want, res.Differences)
			}
			wantOutcome := OutcomeMatch
			if len(tt.want) > 0 {
				wantOutcome = OutcomeMismatch
			}
			if res.Outcome != wantOutcome || res.Kind != "json" {
				t.Fatalf("outcome %q kind %q, want %q json", res.Outcome, res.Kind, wantOutcome)
			}
		})
	}
}

func TestCompareShapes(t *testing.T) {
	res := Compare(jsonResp(200, `{"id":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","at":"2024-09-10T10:15:30Z","p":200.00}`),
		jsonResp(200, `{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","at":"2024-09-10T10:15:31.5+01:00","p":200}`), nil, nil)
	shapes := map[string]string{}
	for _, d := range res.Differences {
		shapes[d.Path] = d.Shape
	}
	want := map[string]string{"/id": "uuid", "/at": "timestamp", "/p": "numeric-equal"}
	for k, v := range want {
		if shapes[k] != v {
			t.Errorf("shape of %s = %q, want %q", k, shapes[k], v)
		}
	}
	// A shape is a hint: an unlearned UUID difference is still a mismatch.
	if res.Outcome != OutcomeMismatch {
		t.Fatalf("outcome = %q, want mismatch", res.Outcome)
	}
}

func TestCompareStatusAndHeaders(t *testing.T) {
	l := jsonResp(200, `[]`)
	l.Header.Set("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
	l.Header.Set("Server", "Apache-Coyote")
	l.Header.Set("Content-Type", "application/json")
	l.Header.Set("X-Total", "3")
	l.Header.Set("Vary", "Origin")
	c := jsonResp(500, `[]`)
	c.Header.Set("Date", "Tue, 02 Jan 2024 00:00:00 GMT")
	c.Header["content-type"] = []string{"Application/JSON; charset=utf-8"} // non-canonical key
	delete(c.Header, "Content-Type")
	c.Header.Set("X-Total", "2")
	c.Header.Set("Transfer-Encoding", "chunked")
	res := Compare(l, c, &Options{IgnoreHeaders: []string{"vary"}}, nil)
	got := strings.Join(diffsOf(res), "|")
	if got != "@status status|@header/x-total header" {
		t.Fatalf("differences = %q", got)
	}
}

func TestCompareContentType(t *testing.T) {
	l := Response{Status: 400, Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"status":400,"error":"Bad Request","path":"/api/order"}`)}
	// The real port's error: plain text, no content type.
	c := Response{Status: 400, Header: http.Header{}, Body: []byte("400 Bad Request")}
	res := Compare(l, c, nil, nil)
	if got := strings.Join(diffsOf(res), "|"); got != "@header/content-type content-type|@body body" || res.Outcome != OutcomeMismatch {
		t.Fatalf("differences = %q, outcome %q", got, res.Outcome)
	}
	// A candidate that claims JSON and sends garbage is broken.
	c = Response{Status: 400, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"status":4`)}
	res = Compare(l, c, nil, nil)
	if res.Outcome != OutcomeCandidateError || res.Error != "invalid-json" {
		t.Fatalf("outcome %q/%q, want candidate-error/invalid-json", res.Outcome, res.Error)
	}
}

func TestCompareText(t *testing.T) {
	a := "Order Number 3f2504e0-4f89-11d3-9a0c-0305e82c3301 Placed Successfully"
	b := "Order Number 6ba7b810-9dad-11d1-80b4-00c04fd430c8 Placed Successfully"
	res := Compare(textResp(201, a), textResp(201, b), nil, nil)
	if len(res.Differences) != 1 || res.Differences[0].Shape != "masked" ||
		res.Differences[0].Template != "Order Number <uuid> Placed Successfully" || res.Outcome != OutcomeMismatch {
		t.Fatalf("unlearned text noise: %+v", res)
	}
	n := NewNoise()
	n.Learn(res, time.Now()) // as if it had come from an A/A pair
	res = Compare(textResp(201, a), textResp(201, b), nil, n)
	if res.Outcome != OutcomeMatch || res.Differences[0].Noise != NoiseLearned {
		t.Fatalf("learned text noise not applied: %+v", res)
	}
	// A different sentence is still a mismatch.
	res = Compare(textResp(201, a), textResp(500, "Product is not in stock, please try again later"), nil, n)
	if got := strings.Join(diffsOf(res), "|"); got != "@status status|@line/1 line" {
		t.Fatalf("differences = %q", got)
	}
	// Declared line rules work without learning.
	res = Compare(textResp(201, a), textResp(201, b), &Options{IgnoreLines: []string{templateRegexp(maskLine(a))}}, nil)
	if res.Outcome != OutcomeMatch {
		t.Fatalf("ignoreLines not applied: %+v", res)
	}
	// CRLF vs LF and a trailing newline are not differences.
	res = Compare(textResp(200, "a\r\nb\r\n"), textResp(200, "a\nb"), nil, nil)
	if res.Outcome != OutcomeMatch {
		t.Fatalf("line endings: %+v", res)
	}
	res = Compare(textResp(200, "a\nb\nc\n"), textResp(200, "a\nc\nd\n"), nil, nil)
	if got := strings.Join(diffsOf(res), "|"); got != "@line/2 missing|@line/4 extra" {
		t.Fatalf("differences = %q", got)
	}
}

func TestCompareEncodings(t *testing.T) {
	body := `{"a":[1,2,3],"b":"x"}`
	enc := func(name string) []byte {
		var buf bytes.Buffer
		switch name {
		case "gzip":
			zw := gzip.NewWriter(&buf)
			zw.ModTime = time.Now() // mtime differs from any other gzip stream
			zw.Write([]byte(body))
			zw.Close()
		case "br":
			bw := brotli.NewWriter(&buf)
			bw.Write([]byte(body))
			bw.Close()
		case "deflate":
			zw := zlib.NewWriter(&buf)
			zw.Write([]byte(body))
			zw.Close()
		case "raw-deflate":
			fw, _ := flate.NewWriter(&buf, 5)
			fw.Write([]byte(body))
			fw.Close()
		}
		return buf.Bytes()
	}
	plain := jsonResp(200, body)
	for _, e := range []string{"gzip", "br", "deflate", "raw-deflate"} {
		t.Run(e, func(t *testing.T) {
			c := jsonResp(200, "")
			c.Body = enc(e)
			c.Header.Set("Content-Encoding", strings.TrimPrefix(e, "raw-"))
			if res := Compare(plain, c, nil, nil); res.Outcome != OutcomeMatch {
				t.Fatalf("decoded %s body should match: %+v", e, res.Differences)
			}
		})
	}
	bad := jsonResp(200, "not gzip")
	bad.Header.Set("Content-Encoding", "gzip")
	if res := Compare(plain, bad, nil, nil); strings.Join(diffsOf(res), "|") != "@body encoding" {
		t.Fatalf("bad gzip: %+v", res.Differences)
	}
	// A decompression bomb is cut at MaxBody, not expanded.
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(make([]byte, 10<<20))
	zw.Close()
	bomb := jsonResp(200, "")
	bomb.Body = buf.Bytes()
	bomb.Header.Set("Content-Encoding", "gzip")
	if res := Compare(plain, bomb, &Options{MaxBody: 1 << 16}, nil); res.Outcome != OutcomeCandidateError || res.Error != ErrTooLarge {
		t.Fatalf("bomb: %+v", res)
	}
	if res := Compare(bomb, plain, &Options{MaxBody: 1 << 16}, nil); res.Outcome != OutcomeLegacyError {
		t.Fatalf("legacy bomb: %+v", res)
	}
}

func TestCompareBinary(t *testing.T) {
	l := Response{Status: 200, Header: http.Header{"Content-Type": {"application/octet-stream"}}, Body: []byte{0xff, 0, 1}}
	c := Response{Status: 200, Header: http.Header{"Content-Type": {"application/octet-stream"}}, Body: []byte{0xff, 0, 2}}
	res := Compare(l, c, nil, nil)
	if res.Kind != "binary" || strings.Join(diffsOf(res), "|") != "@body body" {
		t.Fatalf("binary: %+v", res)
	}
	if res := Compare(l, l, nil, nil); res.Outcome != OutcomeMatch {
		t.Fatalf("equal binary: %+v", res)
	}
}

func TestCompareErrors(t *testing.T) {
	if r := Compare(jsonResp(200, "{}"), Response{Error: ErrTimeout}, nil, nil); r.Outcome != OutcomeCandidateError || r.Error != ErrTimeout {
		t.Fatalf("candidate error: %+v", r)
	}
	if r := Compare(Response{Error: ErrTooLarge}, jsonResp(200, "{}"), nil, nil); r.Outcome != OutcomeLegacyError {
		t.Fatalf("legacy error: %+v", r)
	}
}

func TestLearnedNoiseJSON(t *testing.T) {
	// A/A: legacy twice, order numbers differ.
	a1 := `[{"orderNumber":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","items":[{"skuCode":"A","price":200.00}]}]`
	a2 := `[{"orderNumber":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","items":[{"skuCode":"A","price":200.00}]}]`
	n := NewNoise()
	if added := n.Learn(Compare(jsonResp(200, a1), jsonResp(200, a2), nil, nil), time.Now()); added != 1 {
		t.Fatalf("added %d, want 1", added)
	}
	cand := `[{"orderNumber":"0a0a0a0a-4f89-11d3-9a0c-0305e82c3301","items":[{"skuCode":"A","price":200}]}]`
	res := Compare(jsonResp(200, a1), jsonResp(200, cand), nil, n)
	if got := strings.Join(diffsOf(res), "|"); got != "/0/items/0/price value" {
		t.Fatalf("differences = %q (%+v)", got, res.Differences)
	}
	sugg := n.Suggestions()
	if len(sugg) != 1 || sugg[0].Key != "ignore" || sugg[0].Value != "/*/orderNumber" || sugg[0].Shape != "uuid" {
		t.Fatalf("suggestions = %+v", sugg)
	}
	// An unordered listing with noisy fields still pairs up elements.
	l := `[{"orderNumber":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","n":1},{"orderNumber":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","n":2}]`
	c := `[{"orderNumber":"11111111-4f89-11d3-9a0c-0305e82c3301","n":2},{"orderNumber":"22222222-9dad-11d1-80b4-00c04fd430c8","n":1}]`
	res = Compare(jsonResp(200, l), jsonResp(200, c), &Options{Unordered: []string{""}}, n)
	if res.Outcome != OutcomeMatch {
		t.Fatalf("unordered with noise: %+v", res.Differences)
	}
}

func TestNoiseNeverLearnsShape(t *testing.T) {
	n := NewNoise()
	res := Compare(jsonResp(200, `[1,2]`), jsonResp(200, `[1,2,3]`), nil, nil)
	if added := n.Learn(res, time.Now()); added != 0 || n.Unstable == 0 {
		t.Fatalf("size difference learned as noise: added=%d unstable=%d", added, n.Unstable)
	}
}

func TestNoiseScheduling(t *testing.T) {
	n := NewNoise()
	now := time.Now()
	same := Compare(jsonResp(200, `{}`), jsonResp(200, `{}`), nil, nil)
	for i := 0; i < 20; i++ {
		if !n.WantBaseline(now, 20) {
			t.Fatalf("baseline %d refused before the mask is stable", i)
		}
		n.Learn(same, now)
	}
	if !n.Stable(20) {
		t.Fatal("mask should be stable after 20 quiet baselines")
	}
	wanted := 0
	for i := 0; i < 1000; i++ {
		if n.WantBaseline(now, 20) {
			wanted++
		}
	}
	if wanted == 0 || wanted > 10 {
		t.Fatalf("stable mask still baselined %d of 1000 requests", wanted)
	}
	if !n.WantBaseline(now.Add(time.Hour), 20) {
		t.Fatal("baselining should resume after a quiet hour")
	}
}

func TestOptionsJSON(t *testing.T) {
	var o Options
	err := jsonUnmarshal(`{"sample":"25%","timeout":"250ms","maxBody":"64KiB","writes":"marked","ignore":["$.timestamp"],"unordered":["$"]}`, &o)
	if err != nil {
		t.Fatal(err)
	}
	if o.Sample == nil || *o.Sample != 25 || time.Duration(o.Timeout) != 250*time.Millisecond || o.MaxBody != 64<<10 || o.Validate() != nil {
		t.Fatalf("parsed %+v", o)
	}
	for _, bad := range []Options{{Writes: "sometimes"}, {Sample: new(Percent(150))}, {Ignore: []string{"timestamp"}},
		{StickyBy: "ip"}, {IgnoreValues: []string{"("}}} {
		if bad.Validate() == nil {
			t.Errorf("%+v should not validate", bad)
		}
	}
}

func TestOptionsRoundTripAndSuggestionText(t *testing.T) {
	in := Options{Sample: new(Percent(12.5)), Timeout: Duration(1500 * time.Millisecond), MaxBody: 2 << 20}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"sample":"12.5%"`) || !strings.Contains(string(b), `"timeout":"1.5s"`) || !strings.Contains(string(b), `"maxBody":"2MiB"`) {
		t.Fatalf("marshalled %s", b)
	}
	var out Options
	if err := json.Unmarshal(b, &out); err != nil || *out.Sample != *in.Sample || out.Timeout != in.Timeout || out.MaxBody != in.MaxBody {
		t.Fatalf("round trip %+v (%v)", out, err)
	}
	s := Suggestion{Key: "ignore", Value: "/*/orderNumber", Count: 7, Shape: "uuid"}
	if got := s.String(); got != `ignore: ["/*/orderNumber"]  # differed in 7 legacy-vs-legacy samples (uuid)` {
		t.Fatalf("suggestion text %q", got)
	}
}

// Spring answers with list headers in its own order and spacing, one Vary
// line per field, and CORS Vary fields on error answers; none of that is a
// difference, but a missing method or Vary field on a success still is.
func TestCompareListHeaders(t *testing.T) {
	withHeaders := func(status int, kv ...string) Response {
		r := jsonResp(status, `{}`)
		for i := 0; i+1 < len(kv); i += 2 {
			r.Header.Add(kv[i], kv[i+1])
		}
		return r
	}
	for _, c := range []struct {
		name   string
		legacy Response
		cand   Response
		want   string
	}{
		{"allow spacing", withHeaders(405, "Allow", "GET, POST"), withHeaders(405, "Allow", "GET,POST"), ""},
		{"allow order", withHeaders(200, "Allow", "GET,HEAD,POST,OPTIONS"), withHeaders(200, "Allow", "OPTIONS, POST, HEAD, GET"), ""},
		{"allow lacks a method", withHeaders(200, "Allow", "GET,HEAD,POST,OPTIONS"), withHeaders(200, "Allow", "GET,POST"), "@header/allow header"},
		{"allow method case", withHeaders(405, "Allow", "GET"), withHeaders(405, "Allow", "get"), "@header/allow header"},
		{"vary lines", withHeaders(200, "Vary", "Origin", "Vary", "Accept-Encoding"), withHeaders(200, "Vary", "accept-encoding, origin"), ""},
		{"cors vary on a 404", withHeaders(404, "Vary", "Origin", "Vary", "Access-Control-Request-Method", "Vary", "Access-Control-Request-Headers"),
			withHeaders(404), ""},
		{"other vary on a 404", withHeaders(404, "Vary", "Origin", "Vary", "Accept-Language"), withHeaders(404), "@header/vary missing"},
		{"cors vary on a 200", withHeaders(200, "Vary", "Origin"), withHeaders(200), "@header/vary missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := Compare(c.legacy, c.cand, nil, nil)
			if got := strings.Join(diffsOf(res), "|"); got != c.want {
				t.Errorf("differences = %q, want %q", got, c.want)
			}
		})
	}
}

func TestCompareEmptyListHeader(t *testing.T) {
	l, c := jsonResp(200, `{}`), jsonResp(200, `{}`)
	l.Header.Set("Allow", "GET,HEAD,OPTIONS")
	l.Header["Accept-Patch"] = []string{""}
	c.Header.Set("Allow", "GET, HEAD, OPTIONS")
	if res := Compare(l, c, nil, nil); !res.Matched() {
		t.Errorf("an empty Accept-Patch differs from none: %v", res.Signatures())
	}
	c.Header.Set("Accept-Patch", "application/json-patch+json")
	if res := Compare(l, c, nil, nil); res.Matched() {
		t.Error("a candidate that takes PATCH bodies the legacy does not compares equal")
	}
}
