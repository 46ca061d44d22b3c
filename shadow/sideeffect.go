package shadow

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// DiffSideEffect is a difference in the outbound writes the two sides made
// while answering: "candidate called POST /api/inventory/reserve, legacy
// did not". Its path is "@call/METHOD /path". A side-effect difference
// fails a route's gate whatever the match ratio (strangler's gate).
const DiffSideEffect = "side-effect"

// Call is one outbound call a side made while answering a request: the
// legacy service's through the proxy's egress, an in-process candidate's
// through its outbound host functions.
type Call struct {
	Method string `json:"method"`
	// To is the named service or the origin (scheme://host) called.
	To string `json:"to,omitempty"`
	// URL is the path and query.
	URL string `json:"url"`
	// Route is the called service's route that served (or, for a stubbed
	// write, would serve) the call, "POST /api/inventory/reserve/{sku}",
	// when the call went to a named service of the route table.
	Route  string `json:"route,omitempty"`
	Status int    `json:"status,omitempty"`
	// Stubbed says the call was not sent: a shadow copy's write, answered
	// by the candidate's stub.
	Stubbed bool `json:"stubbed,omitempty"`
	// Error is why the call got no answer (refused, failed).
	Error string `json:"error,omitempty"`
}

// Path is the call's path without its query.
func (c Call) Path() string {
	p, _, _ := strings.Cut(c.URL, "?")
	return p
}

// String is "METHOD /path?query".
func (c Call) String() string { return c.Method + " " + c.URL }

// Template is the call's difference class, "METHOD /path/template": the
// called service's route when it has one (Route), else the method and the
// path with its numeric and UUID segments as {id}. Reserving stock 42 and
// stock 43 is one kind of write, not two.
func (c Call) Template() string {
	if c.Route != "" {
		return c.Route
	}
	return c.Method + " " + CollapseIDs(c.Path())
}

// CollapseIDs replaces the path segments that are ids (all digits, or a
// UUID) with {id}: "/api/inventory/reserve/42" is
// "/api/inventory/reserve/{id}".
func CollapseIDs(path string) string {
	segs := strings.Split(path, "/")
	changed := false
	for i, seg := range segs {
		if isIDSegment(seg) {
			segs[i], changed = "{id}", true
		}
	}
	if !changed {
		return path
	}
	return strings.Join(segs, "/")
}

// isIDSegment reports whether a path segment is a number or a UUID
// (8-4-4-4-12 hex digits).
func isIDSegment(seg string) bool {
	if seg == "" {
		return false
	}
	if strings.Trim(seg, "0123456789") == "" {
		return true
	}
	if len(seg) != 36 {
		return false
	}
	for i, r := range seg {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f' || 'A' <= r && r <= 'F') {
				return false
			}
		}
	}
	return true
}

// IsWrite reports whether method may change state on the server it is
// sent to: anything but GET, HEAD, OPTIONS and TRACE.
func IsWrite(method string) bool { return isWrite(method) }

// hasWrite reports whether any of calls is a write.
func hasWrite(calls []Call) bool {
	for _, c := range calls {
		if isWrite(c.Method) {
			return true
		}
	}
	return false
}

// Calls collects one request's outbound calls; it is safe for concurrent
// use.
type Calls struct {
	mu      sync.Mutex
	list    []Call
	watched bool
}

// Watch says the backend answering under this recorder records its calls:
// an in-process candidate does, a remote one cannot, and only a watched
// side's calls are compared.
func (c *Calls) Watch() {
	c.mu.Lock()
	c.watched = true
	c.mu.Unlock()
}

// Watched reports whether Watch was called.
func (c *Calls) Watched() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.watched
}

// maxCalls bounds what one request records; a guest's own limit
// (maxOutboundCalls) is far below it.
const maxCalls = 256

// Add records a call.
func (c *Calls) Add(call Call) {
	c.mu.Lock()
	if len(c.list) < maxCalls {
		c.list = append(c.list, call)
	}
	c.mu.Unlock()
}

// List returns the calls recorded so far, in the order they were made.
func (c *Calls) List() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call{}, c.list...)
}

type callsKey struct{}

// WithCalls marks ctx as a shadow copy's (or a replay's): an in-process
// candidate answering under it records its outbound calls in c and does
// not send its writes, which its stubs answer instead.
func WithCalls(ctx context.Context, c *Calls) context.Context {
	return context.WithValue(ctx, callsKey{}, c)
}

// CallsFrom returns the recorder WithCalls put on ctx, or nil when the
// request is not a shadow copy.
func CallsFrom(ctx context.Context) *Calls {
	c, _ := ctx.Value(callsKey{}).(*Calls)
	return c
}

// compareCalls adds a side-effect difference for every write (its
// Template: the called route, or the path with ids collapsed) one side
// made more often than the other. Reads are recorded and
// shown, never compared: they change nothing, and a legacy service may
// read from places that do not pass the proxy.
func (w *walker) compareCalls(legacy, candidate []Call) {
	count := func(calls []Call) map[string]int {
		m := map[string]int{}
		for _, c := range calls {
			if isWrite(c.Method) {
				m[c.Template()]++
			}
		}
		return m
	}
	lc, cc := count(legacy), count(candidate)
	times := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n) + "×"
	}
	for _, k := range sortedUnion(lc, cc) {
		if lc[k] == cc[k] {
			continue
		}
		w.add(Difference{Path: "@call/" + k, Type: DiffSideEffect, Legacy: times(lc[k]), Candidate: times(cc[k]),
			Signature: "@call/" + k + " " + DiffSideEffect})
	}
}

// SideEffectText says a side-effect difference in words: "candidate called
// POST /api/inventory/reserve, legacy did not".
func SideEffectText(d Difference) string {
	call := strings.TrimPrefix(d.Path, "@call/")
	switch {
	case d.Legacy == "":
		return "candidate called " + call + ", legacy did not"
	case d.Candidate == "":
		return "legacy called " + call + ", candidate did not"
	}
	return "legacy called " + call + " " + d.Legacy + ", candidate " + d.Candidate
}

// HasSideEffect reports whether a result has an unexplained side-effect
// difference.
func (r *Result) HasSideEffect() bool {
	for i := range r.Differences {
		if d := &r.Differences[i]; d.Type == DiffSideEffect && d.Noise == "" {
			return true
		}
	}
	return false
}

// redactCalls applies the query redaction rules to recorded calls.
func redactCalls(calls []Call, c *compiled, secrets *[]string) []Call {
	if len(calls) == 0 || len(c.redactQuery) == 0 {
		return calls
	}
	out := make([]Call, len(calls))
	for i, call := range calls {
		call.URL = redactQuery(call.URL, c, secrets)
		out[i] = call
	}
	return out
}

// NewCall describes an outbound request and the status it got (0 when it
// got none).
func NewCall(to string, u *url.URL, method string, status int) Call {
	p := u.EscapedPath()
	if p == "" {
		p = "/"
	}
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	return Call{Method: method, To: to, URL: p, Status: status}
}
