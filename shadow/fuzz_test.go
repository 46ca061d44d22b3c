package shadow

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

var jsonSeeds = []string{
	`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
	`[{"orderNumber":"3f2504e0-4f89-11d3-9a0c-0305e82c3301","items":[{"skuCode":"A","price":200.00,"quantity":1}]}]`,
	`{"timestamp":"2024-09-10T10:15:30.123+00:00","status":400,"error":"Bad Request","path":"/api/order"}`,
	`"\ud83d\ude00 \u00e9 \\ \" \/"`, `-0.5e-10`, `0`, `[]`, `{}`, `[1,[2,[3]]]`, `{"a":1,"a":2}`,
	"{\"\xff\":1}", `[1,]`, `{"a" 1}`, `01`, `1.`, `"\ud800"`, "  \n null \t",
}

// FuzzParseJSON checks the parser against encoding/json: same verdict on
// validity, same value, and a canonical form that is stable.
func FuzzParseJSON(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		v, err := parseJSON(src)
		deep := strings.Count(src, "[")+strings.Count(src, "{") > maxDepth-10
		if utf8.ValidString(src) && !deep {
			if (err == nil) != json.Valid([]byte(src)) {
				t.Fatalf("parseJSON err=%v but json.Valid=%v for %q", err, json.Valid([]byte(src)), src)
			}
		}
		if err != nil {
			return
		}
		canon := appendJSON(nil, &v, true, 0, 0)
		if !json.Valid(canon) {
			t.Fatalf("canonical form is not JSON: %q", canon)
		}
		v2, err := parseJSON(string(canon))
		if err != nil {
			t.Fatal(err)
		}
		if again := appendJSON(nil, &v2, true, 0, 0); !bytes.Equal(again, canon) {
			t.Fatalf("canonical form not stable: %q vs %q", canon, again)
		}
		if utf8.ValidString(src) {
			var a, b any
			da := json.NewDecoder(strings.NewReader(src))
			da.UseNumber()
			db := json.NewDecoder(bytes.NewReader(canon))
			db.UseNumber()
			if da.Decode(&a) == nil && db.Decode(&b) == nil && !reflect.DeepEqual(a, b) {
				t.Fatalf("value changed: %q → %q", src, canon)
			}
		}
		// A document never differs from itself.
		if r := Compare(jsonResp(200, src), jsonResp(200, string(canon)), nil, nil); r.Outcome != OutcomeMatch {
			t.Fatalf("%q vs its canonical form: %+v", src, r.Differences)
		}
	})
}

var contentTypes = []string{"application/json", "text/plain", "", "application/octet-stream", "application/problem+json; charset=UTF-8"}
var encodings = []string{"", "gzip", "br", "deflate", "identity", "compress"}

// FuzzCompare feeds arbitrary bodies, content types and encodings: Compare
// must not panic, must find nothing when both sides are identical, and must
// be symmetric in whether it finds anything.
func FuzzCompare(f *testing.F) {
	for i, s := range jsonSeeds {
		f.Add(s, jsonSeeds[(i+1)%len(jsonSeeds)], uint8(i), uint8(i*7))
	}
	f.Add("Order Number 1 Placed", "Order Number 2 Placed", uint8(1), uint8(0))
	f.Add("\x1f\x8b\x08", "\x1f\x8b", uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, a, b string, ct, enc uint8) {
		mk := func(body string, sel uint8) Response {
			h := http.Header{}
			if c := contentTypes[int(sel)%len(contentTypes)]; c != "" {
				h.Set("Content-Type", c)
			}
			if e := encodings[int(sel>>4)%len(encodings)]; e != "" {
				h.Set("Content-Encoding", e)
			}
			return Response{Status: 200, Header: h, Body: []byte(body)}
		}
		opts := &Options{Unordered: []string{"", "/*/items"}, Numeric: enc&1 == 1, Subset: false}
		ra, rb := mk(a, ct), mk(b, enc)
		// (legacy-error: a body that decodes past maxBody is not compared.)
		if r := Compare(ra, ra, opts, nil); r.Outcome != OutcomeMatch && r.Outcome != OutcomeLegacyError {
			t.Fatalf("identical responses differ: %+v", r.Differences)
		}
		x, y := Compare(ra, rb, opts, nil), Compare(rb, ra, opts, nil)
		if (x.Outcome == OutcomeMatch) != (y.Outcome == OutcomeMatch) && x.Outcome != OutcomeCandidateError && y.Outcome != OutcomeCandidateError {
			t.Fatalf("asymmetric: %s vs %s (%+v / %+v)", x.Outcome, y.Outcome, x.Differences, y.Differences)
		}
		var buf bytes.Buffer
		Render(Sample{Legacy: ra, Candidate: rb, Result: x}, &buf, true)
	})
}

// FuzzNormalise covers the small parsers: pointers, content types, masks.
func FuzzNormalise(f *testing.F) {
	for _, s := range []string{"/a/*/b", "$.a[*].b", "$", "/a~1b/c~0d", "application/json;charset=UTF-8", "Order 6ba7b810-9dad-11d1-80b4-00c04fd430c8 at 2024-01-01T00:00:00Z for 12.50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := parsePattern(s); err == nil && strings.HasPrefix(s, "/") && s != "/" {
			q, err := parsePattern(p.String())
			if err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("pointer %q → %q → %q (%v)", s, p.String(), q, err)
			}
		}
		normaliseContentType(s)
		m := maskLine(s)
		if maskLine(m) != m {
			t.Fatalf("mask not idempotent: %q → %q → %q", s, m, maskLine(m))
		}
		if utf8.ValidString(s) {
			re := templateRegexp(m)
			if _, err := compileRE(re); err != nil {
				t.Fatalf("template regexp %q: %v", re, err)
			}
		}
	})
}

// randomValue builds a random JSON value for property tests.
func randomValue(r *rand.Rand, depth int) any {
	switch k := r.IntN(7); {
	case depth > 3 || k == 0:
		return []any{nil, true, false}[r.IntN(3)]
	case k == 1:
		return json.Number(strconv.FormatFloat(r.NormFloat64()*1000, 'f', r.IntN(4), 64))
	case k == 2:
		return []string{"", "a", "é\"\n", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "2024-09-10T10:15:30Z"}[r.IntN(5)]
	case k <= 4:
		n := r.IntN(5)
		arr := make([]any, n)
		for i := range arr {
			arr[i] = randomValue(r, depth+1)
		}
		return arr
	default:
		obj := map[string]any{}
		for i := r.IntN(6); i > 0; i-- {
			obj[string(rune('a'+r.IntN(8)))+strconv.Itoa(r.IntN(3))] = randomValue(r, depth+1)
		}
		return obj
	}
}

// shuffled serialises v with object keys in random order and random
// whitespace: the same document, written differently.
func shuffled(r *rand.Rand, v any, sb *strings.Builder) {
	ws := func() {
		sb.WriteString([]string{"", " ", "\n  ", "\t"}[r.IntN(4)])
	}
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		sb.WriteString("{")
		for i, k := range keys {
			if i > 0 {
				sb.WriteString(",")
			}
			ws()
			b, _ := json.Marshal(k)
			sb.Write(b)
			sb.WriteString(":")
			ws()
			shuffled(r, x[k], sb)
		}
		ws()
		sb.WriteString("}")
	case []any:
		sb.WriteString("[")
		for i, e := range x {
			if i > 0 {
				sb.WriteString(",")
			}
			ws()
			shuffled(r, e, sb)
		}
		sb.WriteString("]")
	default:
		b, _ := json.Marshal(x)
		sb.Write(b)
	}
}

// TestPropertyEqualDocuments: two equal documents — one re-serialised with
// shuffled key order and whitespace — never produce a difference, under
// default options and under every comparison option.
func TestPropertyEqualDocuments(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	optsList := []*Options{nil, {Numeric: true}, {Subset: true}, {Unordered: []string{"", "/*", "/*/*"}}, {Ignore: []string{"/a0"}}}
	for i := 0; i < 2000; i++ {
		v := randomValue(r, 0)
		canon, _ := json.Marshal(v)
		var sb strings.Builder
		shuffled(r, v, &sb)
		for _, o := range optsList {
			if res := Compare(jsonResp(200, string(canon)), jsonResp(200, sb.String()), o, nil); res.Outcome != OutcomeMatch {
				t.Fatalf("equal documents differ under %+v:\n%s\n%s\n%+v", o, canon, sb.String(), res.Differences)
			}
		}
	}
}

// FuzzRedact feeds Redact arbitrary JSON bodies and pointer lists. The
// chosen leaves of the body (mask bit i: the i-th leaf) get a secret, a
// different one on each side so they show up as differences, and their
// pointer joins the fuzzed list. Whatever the body and the other pointers,
// Redact must not panic, and no secret may survive anywhere in the stored
// sample or its rendering. A secret also travels in a redacted header,
// query parameter and form field.
func FuzzRedact(f *testing.F) {
	for i, s := range jsonSeeds {
		f.Add(s, "/a\n$.c.d\n/*/items/*/price", uint64(1)<<uint(i%8)|1)
	}
	f.Add(`{"password":"x","card":{"number":"4111"},"note":"n"}`, "/password\n/card/number", uint64(0))
	f.Add(`{"a~b":{"c/d":[1,2,{"":"e"}]}}`, "/\n/a~0b/c~1d/*", uint64(0b10101))
	f.Add(`[[["deep"]],{"x":[{"y":null}]}]`, "$[0][0]\n/1/x/0/y\n@header/X-Trace\n@query/\n@form/q", uint64(^uint64(0)))
	f.Fuzz(func(t *testing.T, body, pointers string, mask uint64) {
		var redact []string
		for _, p := range strings.Split(pointers, "\n") {
			if (&Options{Redact: []string{p}}).Validate() == nil {
				redact = append(redact, p)
			}
		}
		// Arbitrary bytes, valid JSON or not, must not make Redact panic.
		raw := Sample{Route: "POST /r", Request: RecordedRequest{Method: "POST", URL: "/r?" + body, Body: []byte(body),
			Header: http.Header{"Content-Type": {"application/json"}}},
			Legacy: jsonResp(200, body), Candidate: textResp(200, body)}
		raw.Result = Compare(raw.Legacy, raw.Candidate, &Options{Redact: redact}, nil)
		_ = Redact(raw, &Options{Redact: redact})

		dec := json.NewDecoder(strings.NewReader(body))
		dec.UseNumber()
		var doc any
		if dec.Decode(&doc) != nil || dec.More() {
			return
		}
		var secrets []string
		legacyDoc, candDoc := doc, cloneJSON(doc)
		leaf := 0
		var plant func(l, c any, ptr string) (any, any)
		plant = func(l, c any, ptr string) (any, any) {
			switch lv := l.(type) {
			case map[string]any:
				cv := c.(map[string]any)
				for k := range lv {
					lv[k], cv[k] = plant(lv[k], cv[k], ptr+"/"+strings.ReplaceAll(strings.ReplaceAll(k, "~", "~0"), "/", "~1"))
				}
				return lv, cv
			case []any:
				cv := c.([]any)
				for i := range lv {
					lv[i], cv[i] = plant(lv[i], cv[i], ptr+"/"+strconv.Itoa(i))
				}
				return lv, cv
			}
			i := leaf
			leaf++
			if i >= 64 || mask&(1<<uint(i)) == 0 {
				return l, c
			}
			ls, cs := "Zq9legacySecret"+strconv.Itoa(i), "Zq9candSecret"+strconv.Itoa(i)
			secrets = append(secrets, ls, cs)
			redact = append(redact, ptr)
			return ls, cs
		}
		legacyDoc, candDoc = plant(legacyDoc, candDoc, "")
		if strings.Contains(body, "Zq9") {
			return // the body would already hold a secret's spelling
		}
		lb, _ := json.Marshal(legacyDoc)
		cb, _ := json.Marshal(candDoc)
		secrets = append(secrets, "Zq9headerSecret", "Zq9querySecret", "Zq9formSecret")
		opts := &Options{Redact: append(redact, "@header/X-Session-Key", "@query/pin", "@form/passphrase")}
		if err := opts.Validate(); err != nil {
			t.Fatalf("pointers built from the body do not validate: %v (%q)", err, opts.Redact)
		}
		s := Sample{Route: "POST /r", Request: RecordedRequest{Method: "POST", URL: "/r?pin=Zq9querySecret&page=1",
			Header: http.Header{"X-Session-Key": {"Zq9headerSecret"}, "Content-Type": {"application/x-www-form-urlencoded"}},
			Body:   []byte("passphrase=Zq9formSecret&user=ada")},
			Legacy: jsonResp(200, string(lb)), Candidate: jsonResp(200, string(cb))}
		s.Result = Compare(s.Legacy, s.Candidate, opts, nil)
		r := Redact(s, opts)
		stored, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var rendered bytes.Buffer
		if err := Render(r, &rendered, false); err != nil {
			t.Fatal(err)
		}
		all := string(stored) + rendered.String() + string(r.Legacy.Body) + string(r.Candidate.Body) + string(r.Request.Body) + r.Request.URL
		for _, sec := range secrets {
			if strings.Contains(all, sec) {
				t.Fatalf("%s survived redaction with %q of %s:\n%s", sec, opts.Redact, body, all)
			}
		}
	})
}

// cloneJSON deep-copies a value decoded by encoding/json.
func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = cloneJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = cloneJSON(e)
		}
		return out
	}
	return v
}
