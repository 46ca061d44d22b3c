package proxy

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// headLines writes r with write and returns its head's lines, sorted (the
// fast path writes header fields in map order), and whatever follows.
func headLines(t *testing.T, r *http.Request, write func(*bufio.Writer, *http.Request) error) ([]string, string) {
	t.Helper()
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := write(bw, r); err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	head, rest, ok := strings.Cut(buf.String(), "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of head in %q", buf.String())
	}
	lines := strings.Split(head, "\r\n")
	slices.Sort(lines[1:]) // the request line stays first
	return lines, rest
}

// TestWriteRequestMatchesRequestWrite: what the transport writes for a
// request is, field for field, what Request.Write writes.
func TestWriteRequestMatchesRequestWrite(t *testing.T) {
	mk := func(method, raw string, h http.Header, edit func(*http.Request)) *http.Request {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		r := &http.Request{Method: method, URL: u, Header: h, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		if edit != nil {
			edit(r)
		}
		return r
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Add(kv[i], kv[i+1])
		}
		return h
	}
	cases := map[string]*http.Request{
		"get, many fields": mk("GET", "http://127.0.0.1:8080/api/order/42?x=1&y=%20", hdr("Accept", "application/json",
			"X-Forwarded-For", "10.0.0.1", "X-Forwarded-For", "127.0.0.1", "Forwarded", "for=127.0.0.1;host=a;proto=http",
			"User-Agent", "wrk", "Cookie", "a=1; b=2"), nil),
		"empty user agent":  mk("GET", "http://legacy:80/", hdr("User-Agent", ""), nil),
		"no user agent":     mk("HEAD", "http://legacy/a/b", hdr("Accept", "*/*"), nil),
		"delete, no body":   mk("DELETE", "http://legacy:9000/api/items/9", hdr("X-Request-Id", "abc"), nil),
		"options":           mk("OPTIONS", "http://legacy:9000/api", hdr(), nil),
		"put, no body":      mk("PUT", "http://legacy:9000/api/items/9", hdr(), nil),
		"patch, no body":    mk("PATCH", "http://legacy:9000/api/items/9", hdr(), nil),
		"no method":         mk("", "http://legacy:9000/api", hdr(), nil),
		"escaped path":      mk("GET", "http://legacy:9000/a%2Fb/c%20d", hdr(), nil),
		"line breaks":       mk("GET", "http://legacy/", http.Header{"X-Odd": {"a\r\nb", "  padded\t"}}, nil),
		"invalid field":     mk("GET", "http://legacy/", http.Header{"Bad Key": {"v"}, "Ok": {"v"}}, nil),
		"excluded fields":   mk("GET", "http://legacy/", http.Header{"Content-Length": {"5"}, "Transfer-Encoding": {"chunked"}, "Trailer": {"X"}, "Host": {"evil"}}, nil),
		"host field":        mk("GET", "http://legacy/", hdr(), func(r *http.Request) { r.Host = "front.example:8443" }),
		"close":             mk("GET", "http://legacy/", hdr(), func(r *http.Request) { r.Close = true }),
		"ipv6 zone":         mk("GET", "http://[fe80::1%25eth0]:8080/", hdr(), nil),
		"non-ascii host":    mk("GET", "http://legacy/", hdr(), func(r *http.Request) { r.Host = "bücher.example" }),
		"post with a body":  mk("POST", "http://legacy/api", hdr("Content-Type", "application/json"), func(r *http.Request) { r.Body, r.ContentLength = http.NoBody, 0 }),
		"post, no body set": mk("POST", "http://legacy/api", hdr(), nil),
		"opaque":            mk("GET", "http://legacy/", hdr(), func(r *http.Request) { r.URL.Opaque = "//legacy/x" }),
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			want, wantRest := headLines(t, r, func(bw *bufio.Writer, r *http.Request) error { return r.Write(bw) })
			got, gotRest := headLines(t, r, writeRequest)
			if !slices.Equal(got, want) || gotRest != wantRest {
				t.Fatalf("wrote\n%q\nRequest.Write writes\n%q", got, want)
			}
		})
	}
	// A control byte in the URI is Request.Write's error, not a request.
	bad := mk("GET", "http://legacy/", hdr(), func(r *http.Request) { r.URL.RawQuery = "a=\x01" })
	if err := writeRequest(bufio.NewWriter(&bytes.Buffer{}), bad); err == nil {
		t.Fatal("a URI with a control byte was written")
	}
	// A client trace that watches the write still sees it.
	var fields []string
	traced := mk("GET", "http://legacy/", hdr("Accept", "*/*"), nil)
	traced = traced.WithContext(httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		WroteHeaderField: func(k string, _ []string) { fields = append(fields, k) }}))
	headLines(t, traced, writeRequest)
	if !slices.Contains(fields, "Accept") {
		t.Fatalf("the trace saw %v", fields)
	}
}

// TestWriteRequestDoesNotAllocate: a bodiless request's head costs no
// allocation (Request.Write's sorter, transfer writer and formatting cost
// several on every proxied request).
func TestWriteRequestDoesNotAllocate(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:8080/api/s03/items/42")
	r := &http.Request{Method: "GET", URL: u, Header: http.Header{"Accept": {"*/*"}, "User-Agent": {""},
		"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Host": {"front"}, "X-Forwarded-Proto": {"http"},
		"Forwarded": {"for=127.0.0.1;host=front;proto=http"}}}
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 64<<10)
	if n := testing.AllocsPerRun(200, func() {
		if err := writeRequest(bw, r); err != nil {
			t.Fatal(err)
		}
		bw.Reset(&out)
		out.Reset()
	}); n > 0 {
		t.Fatalf("writing a bodiless request allocates %v times", n)
	}
}
