package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/strangler-fig/migrate/shadow"
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
	// shadow is the mirror's recorder when the request is a shadow copy
	// (or a replay): its writes are stubbed, every call is recorded.
	shadow *shadow.Calls
	mu     sync.Mutex
	calls  int
	next   uint32
	open   map[uint32]*outboundResponse // made by the first call: most requests make none
}

type outboundResponse struct {
	header http.Header
	body   *bytes.Reader
}

func (b *Backend) withOutbound(ctx context.Context, r *http.Request) context.Context {
	s := &outboundSession{b: b, requestID: r.Header.Get("X-Request-Id"), shadow: shadow.CallsFrom(ctx)}
	if s.shadow != nil {
		s.shadow.Watch()
	}
	return context.WithValue(ctx, outboundKey{}, s)
}

// Services is the strangler's route table as the outbound host functions
// see it: an outbound entry naming one of its services ("inventory-service")
// lets the guest call http://inventory-service/…, and the call is served
// as that route's mode says (legacy, canary, or the cut-over candidate).
// The proxy implements it; this package only consumes it.
type Services interface {
	// HasService reports whether the current config has the service.
	HasService(name string) bool
	// ServiceRoundTrip sends r to the named service's route that matches
	// it. A request that matches none of the service's routes is answered
	// 404 by the implementation.
	ServiceRoundTrip(service string, r *http.Request) (*http.Response, error)
}

// ServiceRoutes is what a Services may also offer: the route of a named
// service that matches a call ("POST /api/inventory/reserve/{sku}"), or
// "". A shadow copy's calls to a named service are recorded with it,
// stubbed writes too, so they are compared by route template as legacy's
// calls through the proxy are.
type ServiceRoutes interface {
	ServiceRoute(service, method, path string) string
}

// UseServices lets the guest's outbound entries name services of s.
func (b *Backend) UseServices(s Services) { b.services.Store(&s) }

func (b *Backend) servicesOf() Services {
	if p := b.services.Load(); p != nil {
		return *p
	}
	return nil
}

// allowed reports whether the guest may call u: its origin (scheme://host)
// or its host is on Options.Outbound. service is set when the entry names
// a service of the route table, which then serves the call.
func (b *Backend) allowed(u *url.URL) (service string, ok bool) {
	origin := u.Scheme + "://" + u.Host
	for _, a := range b.opts.Outbound {
		a = strings.TrimSuffix(a, "/")
		if a == origin || a == u.Host {
			if !strings.Contains(a, "://") && u.Scheme == "http" && u.Port() == "" {
				if svc := b.servicesOf(); svc != nil && svc.HasService(a) {
					return a, true
				}
			}
			return "", true
		}
	}
	return "", false
}

// Stub is what a shadow copy's unsent write is answered with.
type Stub struct {
	// Status defaults to 200.
	Status int `json:"status,omitempty"`
	// Body is sent as written (JSON); default {}.
	Body json.RawMessage `json:"body,omitempty"`
	// ContentType defaults to application/json.
	ContentType string `json:"contentType,omitempty"`
}

// defaultStub answers a write no stub names.
var defaultStub = Stub{Status: http.StatusOK, Body: json.RawMessage(`{}`), ContentType: "application/json"}

// stubFor finds the stub of "METHOD /path": the exact key first, then the
// key ending in "*" with the longest prefix of the path ("POST /api/*",
// "POST *"); a key's method may be "*" (any), and on equal prefixes the
// named method wins.
func (o Options) stubFor(method, path string) Stub {
	st, ok := o.Stubs[method+" "+path]
	if !ok {
		best, bestExact := -1, false
		for k, v := range o.Stubs {
			m, p, _ := strings.Cut(k, " ")
			if m != method && m != "*" || !strings.HasSuffix(p, "*") {
				continue
			}
			pre := strings.TrimSuffix(p, "*")
			if !strings.HasPrefix(path, pre) {
				continue
			}
			if exact := m == method; len(pre) > best || len(pre) == best && exact && !bestExact {
				st, best, bestExact, ok = v, len(pre), exact, true
			}
		}
	}
	if !ok {
		return defaultStub
	}
	if st.Status == 0 {
		st.Status = defaultStub.Status
	}
	if len(st.Body) == 0 {
		st.Body = defaultStub.Body
	}
	if st.ContentType == "" {
		st.ContentType = defaultStub.ContentType
	}
	return st
}

// sendsReads reports whether a shadow copy's reads are sent (shadowReads,
// default true).
func (o Options) sendsReads() bool { return o.ShadowReads == nil || *o.ShadowReads }

// checkOutbound validates the outbound entries and the stubs.
func (o Options) checkOutbound() error {
	for _, a := range o.Outbound {
		if u, err := url.Parse(a); strings.Contains(a, "://") && (err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https")) {
			return fmt.Errorf("wasm candidate %s: outbound entry %q is not an http(s)://host:port origin, a host or a service name", o.Path, a)
		}
		if strings.TrimSpace(a) == "" {
			return fmt.Errorf("wasm candidate %s: an outbound entry is empty", o.Path)
		}
	}
	for k, st := range o.Stubs {
		m, p, ok := strings.Cut(k, " ")
		if !ok || m == "" || !strings.HasPrefix(p, "/") && p != "*" {
			return fmt.Errorf("wasm candidate %s: stub %q: write the key as \"METHOD /path\" (a trailing * matches a prefix), e.g. \"POST /api/inventory/reserve\"", o.Path, k)
		}
		if st.Status != 0 && (st.Status < 100 || st.Status > 599) {
			return fmt.Errorf("wasm candidate %s: stub %q: status %d is not an HTTP status", o.Path, k, st.Status)
		}
		if len(st.Body) > 0 && !json.Valid(st.Body) {
			return fmt.Errorf("wasm candidate %s: stub %q: body is not JSON", o.Path, k)
		}
	}
	return nil
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
		noteInitCall(ctx)
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
	service, ok := s.b.allowed(u)
	to := service
	if to == "" {
		to = u.Scheme + "://" + u.Host
	}
	route := ""
	if sr, isRouter := s.b.servicesOf().(ServiceRoutes); isRouter && service != "" && s.shadow != nil {
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		route = sr.ServiceRoute(service, string(method), p)
	}
	if !ok {
		// A guest that tries on every request (and copes, as the order port
		// does alone) cannot flood the log: the proxy's log handler
		// summarises repeats per route and message (internal/logs).
		s.b.logger.WarnContext(ctx, "outbound call refused: destination not on the candidate's outbound list",
			"url", u.Scheme+"://"+u.Host+u.Path, "method", string(method), "allowed", opts.Outbound, "request", s.requestID)
		s.record(to, route, u, string(method), 0, false, "destination not allowed")
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
	// The call is not itself a shadow copy: whatever serves it (another
	// in-process candidate, through the route table) records nothing into
	// this request's calls.
	req, err := http.NewRequestWithContext(shadow.WithCalls(ctx, nil), string(method), u.String(), bytes.NewReader(body))
	if err != nil {
		ret(httpInvalidMethod)
		return
	}
	for _, line := range strings.Split(string(headers), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			req.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	// The request id goes with the call, as a traced service's client
	// sends it on: logs of both services and the proxy's egress line up.
	if s.requestID != "" && req.Header.Get("X-Request-Id") == "" {
		req.Header.Set("X-Request-Id", s.requestID)
	}
	var resp *http.Response
	stubbed := false
	switch {
	case s.shadow != nil && (shadow.IsWrite(req.Method) || !opts.sendsReads()):
		// A shadow copy never performs a write: legacy already has, for
		// this very request. The stub answers and the write is recorded,
		// to be compared with legacy's own.
		st := opts.stubFor(req.Method, u.EscapedPath())
		resp = &http.Response{StatusCode: st.Status, Header: http.Header{"Content-Type": {st.ContentType}},
			Body: io.NopCloser(bytes.NewReader(st.Body))}
		s.record(to, route, u, req.Method, st.Status, true, "")
		stubbed = true
	case service != "":
		resp, err = s.b.servicesOf().ServiceRoundTrip(service, req)
	default:
		resp, err = outboundTransport.RoundTrip(req)
	}
	if err != nil {
		s.b.logger.Warn("outbound call failed", "url", u.Scheme+"://"+u.Host+u.Path, "method", req.Method, "err", err, "request", s.requestID)
		s.record(to, route, u, req.Method, 0, false, "request failed")
		ret(httpRequestError)
		return
	}
	if !stubbed {
		s.record(to, route, u, req.Method, resp.StatusCode, false, "")
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
	if s.open == nil {
		s.open = map[uint32]*outboundResponse{}
	}
	s.open[h] = &outboundResponse{header: resp.Header, body: bytes.NewReader(respBody)}
	s.mu.Unlock()
	if !mem.WriteUint16Le(uint32(stack[8]), uint16(resp.StatusCode)) || !mem.WriteUint32Le(uint32(stack[9]), h) {
		ret(httpMemoryAccessError)
		return
	}
	ret(httpSuccess)
}

// record notes a shadow copy's call; outside shadow it does nothing.
func (s *outboundSession) record(to, route string, u *url.URL, method string, status int, stubbed bool, errText string) {
	if s.shadow == nil {
		return
	}
	c := shadow.NewCall(to, u, method, status)
	c.Route, c.Stubbed, c.Error = route, stubbed, errText
	s.shadow.Add(c)
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
