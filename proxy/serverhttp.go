package proxy

import (
	"bufio"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http/httpguts"
)

// messageHead is a request or response head found in a connection's
// buffer: its length, or bad when the bytes are not one this package reads
// itself.
type messageHead struct {
	raw []byte
	n   int
	bad bool
}

// scanHead looks for the end of a head in buf. It is done when
// the head is whole, or as soon as a line does not end in CRLF or the head
// starts with an empty line: net/http accepts some of those, and answers
// the rest, so the message is its.
func scanHead(buf []byte) (messageHead, bool) {
	start := 0
	for i := 0; i < len(buf); i++ {
		if buf[i] != '\n' {
			continue
		}
		if i == 0 || buf[i-1] != '\r' {
			return messageHead{bad: true}, true
		}
		if i == start+1 { // an empty line
			if start == 0 {
				return messageHead{bad: true}, true
			}
			return messageHead{raw: buf, n: i + 1}, true
		}
		start = i + 1
	}
	return messageHead{}, false
}

// request parses the head into the request net/http's server would make
// of it, or returns nil for a head this server leaves to net/http: not
// HTTP/1.1, not origin-form, CONNECT, a transfer coding, Expect, an
// upgrade, a Content-Length other than one run of digits, a missing or
// repeated Host, obsolete line folding, or any byte net/http would refuse.
func (h messageHead) request(c *serverConn) *http.Request {
	if h.bad || h.n == 0 {
		return nil
	}
	s := string(h.raw[:h.n]) // every string of the request points into this one
	eol := strings.Index(s, "\r\n")
	method, rest, ok := strings.Cut(s[:eol], " ")
	if !ok || !httpguts.ValidHeaderFieldName(method) || method == http.MethodConnect { // a method is a token, as a field name is
		return nil
	}
	target, version, ok := strings.Cut(rest, " ")
	if !ok || version != "HTTP/1.1" || len(target) == 0 || target[0] != '/' {
		return nil
	}
	for i := 0; i < len(target); i++ {
		if b := target[i]; b <= ' ' || b >= 0x7f {
			return nil
		}
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return nil
	}

	header, ok := parseFields(s[eol+2 : len(s)-2])
	if !ok {
		return nil
	}
	hosts := header["Host"]
	if len(hosts) != 1 || !httpguts.ValidHostHeader(hosts[0]) {
		return nil
	}
	delete(header, "Host")
	for _, k := range [...]string{"Transfer-Encoding", "Expect", "Upgrade"} {
		if _, ok := header[k]; ok {
			return nil
		}
	}
	if httpguts.HeaderValuesContainsToken(header["Connection"], "upgrade") {
		return nil
	}
	closing := httpguts.HeaderValuesContainsToken(header["Connection"], "close")
	fixPragma(header)
	req := new(http.Request)
	*req = *c.tmpl
	req.Method, req.URL, req.Proto, req.ProtoMajor, req.ProtoMinor = method, u, "HTTP/1.1", 1, 1
	req.Header, req.Host, req.RequestURI, req.Close, req.Body = header, hosts[0], target, closing, http.NoBody
	if cl, ok := header["Content-Length"]; ok {
		n, ok := contentLength(cl)
		if !ok {
			return nil
		}
		if n > 0 {
			req.ContentLength = n
			req.Body = &bodyReader{br: c.br, remaining: n}
		}
	}
	return req
}

// parseFields parses the field lines of a head (each ending in CRLF, the
// last one's CRLF left off), as textproto does, or reports false where
// textproto would refuse them or fold a line.
func parseFields(lines string) (http.Header, bool) {
	n := strings.Count(lines, "\n") + 1
	header := make(http.Header, n)
	values := make([]string, 0, n) // one backing array for the values
	for len(lines) > 0 {
		line, next, _ := strings.Cut(lines, "\r\n")
		lines = next
		name, value, ok := strings.Cut(line, ":")
		key, ok2 := canonicalName(name)
		if !ok || !ok2 {
			return nil, false // also a folded line, which starts with a space
		}
		value = strings.Trim(value, " \t")
		if !httpguts.ValidHeaderFieldValue(value) {
			return nil, false
		}
		values = append(values, value)
		if vv, ok := header[key]; ok {
			header[key] = append(vv, value)
		} else {
			header[key] = values[len(values)-1 : len(values) : len(values)]
		}
	}
	return header, true
}

// fixPragma gives "Pragma: no-cache" its HTTP/1.1 meaning, as net/http
// does to requests and responses it reads.
func fixPragma(h http.Header) {
	if pragma := h["Pragma"]; len(pragma) > 0 && pragma[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}

// contentLength reads a Content-Length this server accepts: one value,
// digits only.
func contentLength(vv []string) (int64, bool) {
	if len(vv) != 1 || len(vv[0]) == 0 || len(vv[0]) > 18 {
		return 0, false
	}
	var n int64
	for i := 0; i < len(vv[0]); i++ {
		b := vv[0][i]
		if b < '0' || b > '9' {
			return 0, false
		}
		n = n*10 + int64(b-'0')
	}
	return n, true
}

// canonicalName is textproto.CanonicalMIMEHeaderKey of a field name that
// is a token, in one pass over a name already canonical (most are); false
// when it is not a token.
func canonicalName(name string) (string, bool) {
	if name == "" {
		return "", false
	}
	upper := true
	canonical := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !httpguts.IsTokenRune(rune(c)) {
			return "", false
		}
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			canonical = false
		}
		upper = c == '-'
	}
	if canonical {
		return name, true
	}
	return textproto.CanonicalMIMEHeaderKey(name), true
}

// bufferBeforeChunking is how much of a body is held before the head is
// written: a handler that writes no more than this and returns gets a
// Content-Length, as under net/http (whose figure this is).
const bufferBeforeChunking = 2048

// response is the http.ResponseWriter of a request this server reads
// itself. It writes what net/http's server writes for the same handler
// calls; the header's field order is the map's.
type response struct {
	c             *serverConn
	req           *http.Request
	header        http.Header
	status        int
	wroteHeader   bool
	committed     bool // the head is in the connection's buffer
	chunked       bool
	contentLength int64 // declared by the handler (or set once the body is known), or -1
	written       int64
	pending       []byte
	closeAfter    bool
	err           error

	// What the header held at WriteHeader: later changes to it do not
	// reach the head, only the trailers, as under net/http.
	fields                              []byte // the fields, written out
	haveType, hasTE, teChunked, hasDate bool
	trailers                            bool     // declared, or set with http.TrailerPrefix
	declared                            []string // the names the Trailer field declares
	closeToken                          bool     // Connection: close
}

func (w *response) Header() http.Header { return w.header }

func (w *response) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wroteHeader {
		return
	}
	if code < 200 && code != http.StatusSwitchingProtocols {
		// An interim answer (103 Early Hints): written at once, with the
		// header as it stands, as net/http does.
		writeStatusLine(w.c.bw, code)
		for k, vv := range w.header {
			if k != "Content-Length" && k != "Transfer-Encoding" && httpguts.ValidHeaderFieldName(k) {
				for _, v := range vv {
					w.c.bw.Write(appendField(w.c.bw.AvailableBuffer(), k, v))
				}
			}
		}
		w.c.bw.WriteString("\r\n")
		if err := w.c.bw.Flush(); err != nil {
			w.err = err
		}
		return
	}
	w.wroteHeader = true
	w.status = code
	if cl := w.header["Content-Length"]; len(cl) > 0 {
		if n, err := strconv.ParseInt(textproto.TrimString(cl[0]), 10, 64); err == nil && n >= 0 {
			w.contentLength = n
		} else {
			w.c.s.logf("proxy: invalid Content-Length %q", cl[0])
			delete(w.header, "Content-Length")
		}
	}
	w.snapshot()
}

// snapshot writes the header's fields out, leaving out invalid names, the
// transfer coding (the writer sets its own) and prefixed trailers, and
// notes the fields the writer looks at.
func (w *response) snapshot() {
	buf := w.c.fields[:0]
	for k, vv := range w.header {
		switch {
		case !httpguts.ValidHeaderFieldName(k):
			continue // net/http drops them too: a handler has no way to hear of the error
		case k == "Transfer-Encoding":
			w.hasTE = true
			w.teChunked = len(vv) == 1 && strings.EqualFold(vv[0], "chunked")
			if w.teChunked {
				continue
			}
		case strings.HasPrefix(k, http.TrailerPrefix):
			w.trailers = true
			continue
		case k == "Trailer":
			w.trailers = w.trailers || len(vv) > 0
			for _, v := range vv {
				for name := range strings.SplitSeq(v, ",") {
					if name = http.CanonicalHeaderKey(textproto.TrimString(name)); httpguts.ValidTrailerHeader(name) {
						w.declared = append(w.declared, name)
					}
				}
			}
		case k == "Content-Type":
			w.haveType = true
		case k == "Date":
			w.hasDate = true
		case k == "Connection":
			w.closeToken = httpguts.HeaderValuesContainsToken(vv, "close")
		}
		for _, v := range vv {
			buf = appendField(buf, k, v)
		}
	}
	w.c.fields = buf
	w.fields = buf
}

func (w *response) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if w.err != nil {
		return 0, w.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.contentLength != -1 && w.written > w.contentLength {
		return 0, http.ErrContentLength
	}
	if !w.committed {
		if len(w.pending)+len(p) <= cap(w.pending) {
			w.pending = append(w.pending, p...)
			return len(p), nil
		}
		w.commit(false, p)
	}
	if err := w.writeBody(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush sends what is written so far: the head (with no Content-Length,
// the body is chunked from then on) and the body's start.
func (w *response) Flush() {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(false, nil)
	}
	if w.err == nil {
		w.err = w.c.bw.Flush()
	}
}

// finish completes the answer once the handler has returned.
func (w *response) finish() error {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.committed {
		w.commit(true, nil)
	}
	if w.chunked {
		bw := w.c.bw
		bw.WriteString("0\r\n")
		w.writeTrailers()
		bw.WriteString("\r\n")
	}
	if w.contentLength != -1 && w.written != w.contentLength && bodyAllowed(w.status) && w.req.Method != http.MethodHead {
		w.closeAfter = true // out of step with what the client was told
	}
	if w.err != nil {
		return w.err
	}
	return w.c.bw.Flush()
}

// commit writes the head, and the body held so far. done says the handler
// has returned, so the body held is all of it; next is the write that did
// not fit beside it.
func (w *response) commit(done bool, next []byte) {
	w.committed = true
	head := w.req.Method == http.MethodHead
	allowed := bodyAllowed(w.status)
	bw := w.c.bw
	writeStatusLine(bw, w.status)
	bw.Write(w.fields)

	if w.contentLength == -1 && done && !w.trailers && !w.hasTE && allowed && (!head || len(w.pending) > 0) {
		w.contentLength = int64(len(w.pending))
		bw.WriteString("Content-Length: ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), w.contentLength, 10))
		bw.WriteString("\r\n")
	}
	if !w.haveType && !w.hasTE && allowed && w.written > 0 {
		sample := w.pending
		if len(sample) < sniffLen && len(next) > 0 {
			sample = append(sample, next[:min(len(next), sniffLen-len(sample))]...)
		}
		bw.WriteString("Content-Type: ")
		bw.WriteString(http.DetectContentType(sample))
		bw.WriteString("\r\n")
	}
	if !w.hasDate {
		bw.WriteString("Date: ")
		bw.WriteString(httpDate())
		bw.WriteString("\r\n")
	}
	switch {
	case !allowed || head:
	case w.teChunked:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	case w.hasTE:
		w.closeAfter = true // a coding this writer does not apply: the body ends with the connection
	case w.contentLength == -1:
		w.chunked = true
		bw.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if b, ok := w.req.Body.(*bodyReader); ok && b.left() > maxDrain {
		w.closeAfter = true // too much left unread to keep the connection for
	}
	if w.c.s.closing.Load() {
		w.closeAfter = true
	}
	if w.closeToken {
		w.closeAfter = true
	} else if w.closeAfter {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
	if len(w.pending) > 0 {
		w.writeBody(w.pending)
	}
}

// writeStatusLine writes the status line net/http's server writes for code.
func writeStatusLine(bw *bufio.Writer, code int) {
	if text := http.StatusText(code); text != "" {
		bw.WriteString("HTTP/1.1 ")
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(code), 10))
		bw.WriteByte(' ')
		bw.WriteString(text)
		bw.WriteString("\r\n")
		return
	}
	fmt.Fprintf(bw, "HTTP/1.1 %03d status code %d\r\n", code, code)
}

// writeTrailers writes the declared trailers and the prefixed ones, with
// the values the handler left in the header.
func (w *response) writeTrailers() {
	bw := w.c.bw
	for _, k := range w.declared {
		for _, v := range w.header[k] {
			bw.Write(appendField(bw.AvailableBuffer(), k, v))
		}
	}
	for k, vv := range w.header {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok && httpguts.ValidTrailerHeader(name) {
			for _, v := range vv {
				bw.Write(appendField(bw.AvailableBuffer(), name, v))
			}
		}
	}
}

// appendField appends "k: v" and CRLF, each CR or LF in v turned into a
// space, as net/http does, so no value can start a field of its own.
func appendField(b []byte, k, v string) []byte {
	b = append(b, k...)
	b = append(b, ": "...)
	start := len(b)
	b = append(b, v...)
	for i := start; i < len(b); i++ {
		if b[i] == '\r' || b[i] == '\n' {
			b[i] = ' '
		}
	}
	trimmed := textproto.TrimBytes(b[start:])
	b = append(b[:start], trimmed...)
	return append(b, "\r\n"...)
}

func (w *response) writeBody(p []byte) error {
	if w.err != nil {
		return w.err
	}
	if w.req.Method == http.MethodHead || !bodyAllowed(w.status) {
		return nil
	}
	bw := w.c.bw
	if w.chunked {
		bw.Write(strconv.AppendInt(bw.AvailableBuffer(), int64(len(p)), 16))
		bw.WriteString("\r\n")
	}
	if _, err := bw.Write(p); err != nil {
		w.err = err
		return err
	}
	if w.chunked {
		bw.WriteString("\r\n")
	}
	return nil
}

// sniffLen is how much of a body http.DetectContentType looks at.
const sniffLen = 512

func bodyAllowed(status int) bool {
	return !(status >= 100 && status <= 199 || status == http.StatusNoContent || status == http.StatusNotModified)
}

// httpDate is the Date field's value, formatted once a second.
func httpDate() string {
	now := time.Now()
	if d := cachedDate.Load(); d != nil && d.unix == now.Unix() {
		return d.text
	}
	d := &dateText{unix: now.Unix(), text: now.UTC().Format(http.TimeFormat)}
	cachedDate.Store(d)
	return d.text
}

type dateText struct {
	unix int64
	text string
}

var cachedDate atomic.Pointer[dateText]
