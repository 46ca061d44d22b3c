package wasm

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

func TestParseCGIResponse(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		status  int
		header  http.Header
		body    string
		wantErr string
	}{
		{name: "minimal", out: "Content-Type: text/plain\n\nhello", status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: "hello"},
		{name: "crlf", out: "Content-Type: text/plain\r\n\r\nhello\r\n", status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: "hello\r\n"},
		{name: "status with reason", out: "Status: 404 Not Found\nContent-Type: text/plain\n\nnope", status: 404, header: http.Header{"Content-Type": {"text/plain"}}, body: "nope"},
		{name: "status only", out: "Status: 201\n\n", status: 201, header: http.Header{}},
		{name: "location is a redirect", out: "Location: https://example.com/\n\n", status: 302, header: http.Header{"Location": {"https://example.com/"}}},
		{name: "location with status", out: "Status: 301\nLocation: /x\n\n", status: 301, header: http.Header{"Location": {"/x"}}},
		{name: "header names canonicalised, repeats kept", out: "content-type: a/b\nx-k: 1\nX-K: 2\n\n.", status: 200, header: http.Header{"Content-Type": {"a/b"}, "X-K": {"1", "2"}}, body: "."},
		{name: "hop-by-hop and length dropped", out: "Content-Type: a/b\nContent-Length: 99\nConnection: close\nTransfer-Encoding: chunked\n\nab", status: 200, header: http.Header{"Content-Type": {"a/b"}}, body: "ab"},
		{name: "body may contain blank lines", out: "Content-Type: text/plain\n\na\n\nb", status: 200, header: http.Header{"Content-Type": {"text/plain"}}, body: "a\n\nb"},
		{name: "empty", out: "", wantErr: "wrote nothing"},
		{name: "no blank line", out: "Content-Type: text/plain\nhello", wantErr: "no blank line"},
		{name: "body only", out: "hello world", wantErr: "no blank line"},
		{name: "leading blank line", out: "\nhello", wantErr: "header block is empty"},
		{name: "line without colon", out: "Content-Type text/plain\n\n", wantErr: "Name: value"},
		{name: "bad name", out: "Bad Name: x\n\n", wantErr: "not a valid HTTP field name"},
		{name: "bad status", out: "Status: OK\n\n", wantErr: "three-digit"},
		{name: "status out of range", out: "Status: 700\n\n", wantErr: "three-digit"},
		{name: "body without content type", out: "Status: 200\n\nhello", wantErr: "without a Content-Type"},
		{name: "oversized header block", out: "X-A: " + strings.Repeat("a", maxHeaderBlock) + "\n\n", wantErr: "header block longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, header, body, err := parseCGIResponse([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || string(body) != tt.body {
				t.Errorf("got %d %q, want %d %q", status, body, tt.status, tt.body)
			}
			if len(header) != len(tt.header) {
				t.Errorf("header %v, want %v", header, tt.header)
			}
			for k, v := range tt.header {
				if strings.Join(header[k], "|") != strings.Join(v, "|") {
					t.Errorf("header %s = %q, want %q", k, header[k], v)
				}
			}
		})
	}
}

func FuzzParseCGIResponse(f *testing.F) {
	for _, s := range []string{
		"Content-Type: text/plain\n\nhi", "Status: 404 Not Found\r\n\r\n", "Location: /x\n\n",
		"", "\n", "a\n\n", "Status: 99999999999999999999\n\n", "X:\n\n\x00",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		status, header, body, err := parseCGIResponse(out)
		if err != nil {
			return
		}
		if status < 100 || status > 599 {
			t.Fatalf("status %d accepted", status)
		}
		if len(body) > len(out) {
			t.Fatalf("body longer than output")
		}
		for k, vs := range header {
			if !validHeaderName(k) {
				t.Fatalf("invalid header name %q accepted", k)
			}
			for _, v := range vs {
				if strings.ContainsAny(v, "\r\n\x00") {
					t.Fatalf("header %s value %q has control characters", k, v)
				}
			}
		}
		if len(body) > 0 && header.Get("Content-Type") == "" && header.Get("Location") == "" {
			t.Fatalf("body without Content-Type accepted")
		}
	})
}

func TestRouteTemplate(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/...",
		"POST /api/order":         "/api/order",
		"GET /api/order/{id}":     "/api/order/{id}",
		"/api/product":            "/api/product",
		"/api/with space/literal": "/api/with space/literal",
	} {
		if got := routeTemplate(in); got != want {
			t.Errorf("routeTemplate(%q) = %q, want %q", in, got, want)
		}
	}
	ctx := WithMatchedRoute(context.Background(), "GET /x")
	if got := matchedRoute(ctx); got != "GET /x" {
		t.Errorf("matchedRoute = %q", got)
	}
}

func TestCGIHeaderName(t *testing.T) {
	for in, want := range map[string]string{"X-Request-Id": "X_REQUEST_ID", "accept": "ACCEPT", "A1-b_c": "A1_B_C"} {
		if got := cgiHeaderName(in); got != want {
			t.Errorf("cgiHeaderName(%q) = %q, want %q", in, got, want)
		}
	}
}
