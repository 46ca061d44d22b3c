package proxy

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// The legacy side's own outbound calls are its side effects. A legacy
// service whose clients point at the proxy (INVENTORY_URL=http://proxy)
// sends them through here, with the X-Request-Id of the request it is
// answering (the proxy sets one on every shadowed request that lacks it);
// while legacy answers a shadowed request, the calls that carry its id are
// recorded as legacy's, to be compared with the candidate's
// (shadow.DiffSideEffect).

// headerRequestID correlates a request with the calls made to answer it.
const headerRequestID = "X-Request-Id"

// egress is the set of shadowed requests legacy is answering, by request id.
type egress struct {
	n     atomic.Int64 // entries, so the common case skips the map
	calls sync.Map     // request id → *shadow.Calls
}

// watch starts recording the calls carrying id in c. It says false when
// another request in flight has the same id: whose call would be whose is
// then unknown, so neither records.
func (g *egress) watch(id string, c *shadow.Calls) bool {
	if _, loaded := g.calls.LoadOrStore(id, c); loaded {
		return false
	}
	g.n.Add(1)
	return true
}

// unwatch stops what watch(id, c) started; only the first call counts.
func (g *egress) unwatch(id string, c *shadow.Calls) {
	if g.calls.CompareAndDelete(id, c) {
		g.n.Add(-1)
	}
}

// watchLegacyCalls is the request-id bookkeeping of one shadowed request:
// legacy's calls through the proxy while it answers are its side effects,
// told apart from other traffic by the request id, which is set when the
// client sent none. It returns the recorder (nil when another request in
// flight has the same id) and the stop to call once legacy has answered;
// stop may be called more than once.
func (p *Proxy) watchLegacyCalls(r *http.Request) (*shadow.Calls, func()) {
	id := r.Header.Get(headerRequestID)
	if id == "" {
		id = newRequestID()
		r.Header.Set(headerRequestID, id)
	}
	calls := &shadow.Calls{}
	if !p.egress.watch(id, calls) {
		return nil, func() {}
	}
	return calls, func() { p.egress.unwatch(id, calls) }
}

// of returns the recorder of the request r was made to answer, or nil.
func (g *egress) of(r *http.Request) *shadow.Calls {
	if g.n.Load() == 0 {
		return nil
	}
	id := r.Header.Get(headerRequestID)
	if id == "" {
		return nil
	}
	if c, ok := g.calls.Load(id); ok {
		return c.(*shadow.Calls)
	}
	return nil
}

// newRequestID is 16 random hex digits.
func newRequestID() string {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// statusWriter notes the status an egress call was answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() { _ = http.NewResponseController(s.ResponseWriter).Flush() }

// Unwrap lets http.ResponseController reach the connection.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// serveEgress serves a call legacy makes while answering a shadowed
// request and records it as legacy's.
func (p *Proxy) serveEgress(w http.ResponseWriter, r *http.Request, t *table, calls *shadow.Calls) {
	to, route := r.Host, ""
	path := matchPath(r.URL)
	i := t.matcher.Match(r.Method, path)
	if i >= 0 {
		to, route = t.routes[i].service, t.routes[i].live.Name
	}
	sw := &statusWriter{ResponseWriter: w}
	p.dispatchMatched(sw, r, t, path, i)
	c := shadow.NewCall(to, r.URL, r.Method, sw.status)
	c.Route = route
	calls.Add(c)
}

var _ wasm.Services = (*Proxy)(nil)

// HasService reports whether the config served has the service; an
// in-process candidate's outbound entry naming it is resolved here.
func (p *Proxy) HasService(name string) bool {
	t := p.table.Load()
	return t != nil && t.cfg.Services[name] != nil
}

// ServiceRoute names the route of service that matches method and path
// ("POST /api/inventory/reserve/{sku}"), or "": a candidate's calls to a
// named service are grouped by it, as legacy's through the egress are.
func (p *Proxy) ServiceRoute(service, method, path string) string {
	t := p.table.Load()
	if t == nil {
		return ""
	}
	if i := t.matcher.Match(method, path); i >= 0 && t.routes[i].service == service {
		return t.routes[i].live.Name
	}
	return ""
}

// maxServiceResponse bounds a named-service answer held for a guest; the
// guest's own maxOutboundBody is usually far smaller.
const maxServiceResponse = 16 << 20

// ServiceRoundTrip serves an in-process candidate's call to a named
// service through the route table: the route of that service matching
// the request answers from the side its mode says — legacy in legacy and
// shadow mode, the candidate in cutover and retired, either by weight in
// canary. The call is counted in the route's live figures and not
// mirrored: it is the candidate's dependency, not client traffic to
// compare.
func (p *Proxy) ServiceRoundTrip(service string, r *http.Request) (*http.Response, error) {
	t := p.table.Load()
	if r.URL.Path == "" {
		r.URL.Path = "/"
	}
	path := matchPath(r.URL)
	w := &bufferWriter{header: http.Header{}}
	i := -1
	if t != nil {
		i = t.matcher.Match(r.Method, path)
	}
	if i < 0 || t.routes[i].service != service {
		writeJSONError(w, http.StatusNotFound, map[string]any{
			"error":  "no route of service " + service + " matches " + r.Method + " " + path,
			"status": 404})
		return w.response(r), nil
	}
	e := t.routes[i]
	up := e.legacy
	st := e.live.State()
	if e.candidate != nil {
		switch st.Mode {
		case strangler.ModeCutover, strangler.ModeRetired:
			up = e.candidate
		case strangler.ModeCanary:
			if canaryPick(r, e, st.Weight) {
				up = e.candidate
			}
		}
	}
	p.serve(w, r, t, e, up, nil)
	if w.over {
		return nil, errServiceResponseTooLarge
	}
	return w.response(r), nil
}

var errServiceResponseTooLarge = errors.New("the named service's answer is over " + strconv.Itoa(maxServiceResponse>>20) + "MiB")

// bufferWriter collects an answer served in process into a response.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
	over   bool
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 && code >= 200 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	if b.body.Len()+len(p) > maxServiceResponse {
		b.over = true
		return 0, errServiceResponseTooLarge
	}
	return b.body.Write(p)
}

func (b *bufferWriter) response(r *http.Request) *http.Response {
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	return &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status),
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: b.header,
		Body: io.NopCloser(bytes.NewReader(b.body.Bytes())), ContentLength: int64(b.body.Len()), Request: r}
}
