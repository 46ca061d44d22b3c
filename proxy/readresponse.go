package proxy

import (
	"bufio"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// readResponse reads the common upstream answer itself — HTTP/1.1, a
// status with a body, a Content-Length, no transfer coding or trailers, a
// head that fits the connection's buffer — into the Response
// http.ReadResponse would make of it, without textproto's copies. Anything
// else, nothing of it consumed, is http.ReadResponse's.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	head, err := peekHead(br, nil)
	if err != nil {
		return http.ReadResponse(br, req) // the same error, worded as net/http words it
	}
	if resp := head.response(br, req); resp != nil {
		return resp, nil
	}
	return http.ReadResponse(br, req)
}

// response parses the head as an answer to req, consuming it, or returns
// nil, consuming nothing, for an answer readResponse leaves to net/http.
func (h messageHead) response(br *bufio.Reader, req *http.Request) *http.Response {
	if h.bad || req.Method == http.MethodHead {
		return nil
	}
	s := string(h.raw[:h.n])
	eol := strings.Index(s, "\r\n")
	proto, status, ok := strings.Cut(s[:eol], " ")
	if !ok || proto != "HTTP/1.1" || len(status) < 3 || (len(status) > 3 && status[3] != ' ') {
		return nil
	}
	code := 0
	for i := 0; i < 3; i++ {
		if status[i] < '0' || status[i] > '9' {
			return nil
		}
		code = code*10 + int(status[i]-'0')
	}
	if code < 200 || code == http.StatusNoContent || code == http.StatusNotModified {
		return nil
	}
	header, ok := parseFields(s[eol+2 : len(s)-2])
	if !ok {
		return nil
	}
	for _, k := range [...]string{"Transfer-Encoding", "Trailer"} {
		if _, ok := header[k]; ok {
			return nil
		}
	}
	n, ok := contentLength(header["Content-Length"])
	if !ok {
		return nil // none (the body ends with the connection), or not one plain value
	}
	fixPragma(header)
	closing := httpguts.HeaderValuesContainsToken(header["Connection"], "close")
	if closing {
		delete(header, "Connection") // as net/http does with a response's
	}
	br.Discard(h.n)
	resp := &http.Response{Status: status, StatusCode: code, Proto: proto, ProtoMajor: 1, ProtoMinor: 1,
		Header: header, ContentLength: n, Close: closing, Request: req, Body: http.NoBody}
	if n > 0 {
		resp.Body = &bodyReader{br: br, remaining: n}
	}
	return resp
}
