package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
)

// recorder sees what the client is sent: the status (to count errors) and,
// when tee is set, a capped copy of the body for the shadow comparison. It
// never delays the client: the copy is a memcpy into a bounded buffer.
type recorder struct {
	http.ResponseWriter
	status int
	tee    *bytes.Buffer // nil: no copy wanted
	teeCap int64
	over   bool // the body was larger than teeCap; the copy is incomplete
	// upstreamErr is why the upstream gave no answer (set by the
	// ReverseProxy's error handler), for counting failures by kind.
	upstreamErr error
	// errorID names the 502 or 504 written for upstreamErr.
	errorID string
}

var recorderPool = sync.Pool{New: func() any { return new(recorder) }}

func getRecorder(w http.ResponseWriter) *recorder {
	rec := recorderPool.Get().(*recorder)
	*rec = recorder{ResponseWriter: w}
	return rec
}

func putRecorder(rec *recorder) {
	*rec = recorder{}
	recorderPool.Put(rec)
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	if r.tee != nil && !r.over {
		if int64(r.tee.Len()+n) > r.teeCap {
			r.over = true
		} else {
			r.tee.Write(b[:n])
		}
	}
	return n, err
}

// Flush keeps streaming responses streaming through the wrapper.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// hijacking for protocol upgrades).
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack supports protocol upgrades (WebSocket) through ReverseProxy.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer does not support hijacking")
	}
	r.status = http.StatusSwitchingProtocols
	return hj.Hijack()
}

func (r *recorder) statusCode() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// bufferBody reads up to limit bytes of the request body so it can be sent
// to two sides. When the body is larger, the request is left able to send
// its whole body once (the buffered part, then the rest) and ok is false:
// the copy is not mirrored.
func bufferBody(r *http.Request, limit int64) (body []byte, ok bool, err error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true, nil
	}
	if r.ContentLength > limit {
		return nil, false, nil
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, err
	}
	if n > limit {
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(buf.Bytes()), r.Body), r.Body}
		return nil, false, nil
	}
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	r.ContentLength = n
	return buf.Bytes(), true, nil
}
