package wasm

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// outboundModule is the host module name of WAGI's and Spin's outbound HTTP
// (the wasi-experimental-http crate): guests written for those hosts call
// the rest of the fleet here unchanged. docs/outbound.md is the ABI.
const outboundModule = "wasi_experimental_http"

// The wasi-experimental-http error codes a host function returns.
const (
	httpSuccess               = 0
	httpInvalidHandle         = 1
	httpMemoryNotFound        = 2
	httpMemoryAccessError     = 3
	httpBufferTooSmall        = 4
	httpHeaderNotFound        = 5
	httpUTF8Error             = 6
	httpDestinationNotAllowed = 7
	httpInvalidMethod         = 8
	httpInvalidEncoding       = 9
	httpInvalidURL            = 10
	httpRequestError          = 11
	httpRuntimeError          = 12
	httpTooManySessions       = 13
)

// Defaults of the per-request outbound limits.
const (
	DefaultMaxOutboundCalls          = 16
	DefaultMaxOutboundBody  ByteSize = 1 << 20
)

// outboundKey carries a request's *outboundSession to the host functions.
type outboundKey struct{}

// outboundSession is one guest request's outbound state: what it may call
// and the responses it has not closed yet.
type outboundSession struct {
	b         *Backend
	requestID string
	mu        sync.Mutex
	calls     int
	next      uint32
	open      map[uint32]*outboundResponse
}

type outboundResponse struct {
	header http.Header
	body   *bytes.Reader
}

func (b *Backend) withOutbound(ctx context.Context, r *http.Request) context.Context {
	return context.WithValue(ctx, outboundKey{}, &outboundSession{b: b, requestID: r.Header.Get("X-Request-Id"), open: map[uint32]*outboundResponse{}})
}

// allowed reports whether the guest may call u: its origin (scheme://host)
// or its host is on Options.Outbound.
func (o Options) allowed(u *url.URL) bool {
	origin := u.Scheme + "://" + u.Host
	for _, a := range o.Outbound {
		a = strings.TrimSuffix(a, "/")
		if a == origin || a == u.Host {
			return true
		}
	}
	return false
}

// instantiateOutbound adds the host module to rt.
func instantiateOutbound(ctx context.Context, rt wazero.Runtime) error {
	h := rt.NewHostModuleBuilder(outboundModule)
	for _, f := range []struct {
		name   string
		fn     api.GoModuleFunc
		params int
	}{
		{"req", hostReq, 10},
		{"close", hostClose, 1},
		{"header_get", hostHeaderGet, 6},
		{"headers_get_all", hostHeadersGetAll, 4},
		{"body_read", hostBodyRead, 4},
	} {
		params := make([]api.ValueType, f.params)
		for k := range params {
			params[k] = api.ValueTypeI32
		}
		h = h.NewFunctionBuilder().WithGoModuleFunction(f.fn, params, []api.ValueType{api.ValueTypeI32}).Export(f.name)
	}
	_, err := h.Instantiate(ctx)
	return err
}

func session(ctx context.Context) *outboundSession {
	s, _ := ctx.Value(outboundKey{}).(*outboundSession)
	return s
}

// hostReq is req(url, url_len, method, method_len, headers, headers_len,
// body, body_len, status_code_ptr, handle_ptr) -> error.
func hostReq(ctx context.Context, m api.Module, stack []uint64) {
	mem := m.Memory()
	read := func(ptr, n uint64) ([]byte, bool) { return mem.Read(uint32(ptr), uint32(n)) }
	ret := func(code uint64) { stack[0] = code }
	s := session(ctx)
	if s == nil {
		ret(httpRuntimeError)
		return
	}
	rawURL, ok1 := read(stack[0], stack[1])
	method, ok2 := read(stack[2], stack[3])
	headers, ok3 := read(stack[4], stack[5])
	body, ok4 := read(stack[6], stack[7])
	if !ok1 || !ok2 || !ok3 || !ok4 {
		ret(httpMemoryAccessError)
		return
	}
	opts := s.b.opts
	u, err := url.Parse(string(rawURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ret(httpInvalidURL)
		return
	}
	if !opts.allowed(u) {
		s.b.logger.Warn("outbound call refused: destination not on the candidate's outbound list",
			"url", u.Scheme+"://"+u.Host+u.Path, "method", string(method), "allowed", opts.Outbound, "request", s.requestID)
		ret(httpDestinationNotAllowed)
		return
	}
	s.mu.Lock()
	s.calls++
	calls := s.calls
	s.mu.Unlock()
	if calls > opts.MaxOutboundCalls {
		s.b.logger.Warn("outbound call refused: too many calls in one request", "limit", opts.MaxOutboundCalls, "url", u.Scheme+"://"+u.Host+u.Path, "request", s.requestID)
		ret(httpTooManySessions)
		return
	}
	if int64(len(body)) > int64(opts.MaxOutboundBody) {
		ret(httpRequestError)
		return
	}
	req, err := http.NewRequestWithContext(ctx, string(method), u.String(), bytes.NewReader(body))
	if err != nil {
		ret(httpInvalidMethod)
		return
	}
	for _, line := range strings.Split(string(headers), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	resp, err := outboundTransport.RoundTrip(req)
	if err != nil {
		s.b.logger.Warn("outbound call failed", "url", u.Scheme+"://"+u.Host+u.Path, "method", req.Method, "err", err, "request", s.requestID)
		ret(httpRequestError)
		return
	}
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, int64(opts.MaxOutboundBody)+1))
	_ = resp.Body.Close()
	if err != nil || int64(len(respBody)) > int64(opts.MaxOutboundBody) {
		s.b.logger.Warn("outbound response refused", "url", u.Scheme+"://"+u.Host+u.Path, "limit", opts.MaxOutboundBody.String(), "err", err, "request", s.requestID)
		ret(httpRequestError)
		return
	}
	s.mu.Lock()
	s.next++
	h := s.next
	s.open[h] = &outboundResponse{header: resp.Header, body: bytes.NewReader(respBody)}
	s.mu.Unlock()
	if !mem.WriteUint16Le(uint32(stack[8]), uint16(resp.StatusCode)) || !mem.WriteUint32Le(uint32(stack[9]), h) {
		ret(httpMemoryAccessError)
		return
	}
	ret(httpSuccess)
}

// outboundTransport sends the guests' calls; its connections are shared.
var outboundTransport http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()

func (s *outboundSession) response(h uint64) *outboundResponse {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.open[uint32(h)]
}

// hostClose is close(handle) -> error.
func hostClose(ctx context.Context, _ api.Module, stack []uint64) {
	s := session(ctx)
	if s.response(stack[0]) == nil {
		stack[0] = httpInvalidHandle
		return
	}
	s.mu.Lock()
	delete(s.open, uint32(stack[0]))
	s.mu.Unlock()
	stack[0] = httpSuccess
}

// writeOut copies data to the guest buffer (ptr, size) and its length to
// written_ptr.
func writeOut(m api.Module, data []byte, ptr, size, writtenPtr uint64) uint64 {
	if uint64(len(data)) > size {
		return httpBufferTooSmall
	}
	if !m.Memory().Write(uint32(ptr), data) || !m.Memory().WriteUint32Le(uint32(writtenPtr), uint32(len(data))) {
		return httpMemoryAccessError
	}
	return httpSuccess
}

// hostHeaderGet is header_get(handle, name, name_len, value, value_len,
// written_ptr) -> error.
func hostHeaderGet(ctx context.Context, m api.Module, stack []uint64) {
	r := session(ctx).response(stack[0])
	if r == nil {
		stack[0] = httpInvalidHandle
		return
	}
	name, ok := m.Memory().Read(uint32(stack[1]), uint32(stack[2]))
	if !ok {
		stack[0] = httpMemoryAccessError
		return
	}
	v, found := r.header[http.CanonicalHeaderKey(string(name))]
	if !found {
		stack[0] = httpHeaderNotFound
		return
	}
	stack[0] = writeOut(m, []byte(strings.Join(v, ", ")), stack[3], stack[4], stack[5])
}

// hostHeadersGetAll is headers_get_all(handle, buf, buf_len, written_ptr)
// -> error; the headers are "name:value\n" lines.
func hostHeadersGetAll(ctx context.Context, m api.Module, stack []uint64) {
	r := session(ctx).response(stack[0])
	if r == nil {
		stack[0] = httpInvalidHandle
		return
	}
	var buf bytes.Buffer
	for k, vs := range r.header {
		for _, v := range vs {
			fmt.Fprintf(&buf, "%s:%s\n", strings.ToLower(k), v)
		}
	}
	stack[0] = writeOut(m, buf.Bytes(), stack[1], stack[2], stack[3])
}

// hostBodyRead is body_read(handle, buf, buf_len, written_ptr) -> error;
// written 0 is the end of the body.
func hostBodyRead(ctx context.Context, m api.Module, stack []uint64) {
	r := session(ctx).response(stack[0])
	if r == nil {
		stack[0] = httpInvalidHandle
		return
	}
	chunk := make([]byte, min(stack[2], uint64(r.body.Len())))
	n, _ := r.body.Read(chunk)
	stack[0] = writeOut(m, chunk[:n], stack[1], stack[2], stack[3])
}
