package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// Backend answers a request: legacy, a remote Wasm platform URL, or an
// in-process module. It is http.RoundTripper-shaped.
type Backend interface {
	RoundTrip(*http.Request) (*http.Response, error)
}

var _ Backend = (*http.Transport)(nil)

// idleCloser is implemented by transports with a keep-alive pool.
type idleCloser interface{ CloseIdleConnections() }

// upstream is one side of one service: where requests go, how, and the
// ReverseProxy that streams them back.
type upstream struct {
	service string
	side    strangler.Side
	target  *url.URL
	rt      Backend
	rp      *httputil.ReverseProxy
	close   func(context.Context) error // nil for HTTP upstreams
	// relayHost is the Host an http:// upstream is sent, when the relay
	// can send it requests (the target has no path, query or user); "" when
	// it cannot.
	relayHost string
}

// wasmTarget is the URL in-process modules see: they only read the path
// and query, but ReverseProxy needs a well-formed outbound URL.
var wasmTarget = &url.URL{Scheme: "http", Host: "wasm.candidate.invalid"}

var bufferPool = &byteBufferPool{pool: sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}

// byteBufferPool lets ReverseProxy reuse its 32KiB copy buffers instead of
// allocating one per request.
type byteBufferPool struct{ pool sync.Pool }

func (p *byteBufferPool) Get() []byte  { return *(p.pool.Get().(*[]byte)) }
func (p *byteBufferPool) Put(b []byte) { p.pool.Put(&b) }

// newHTTPTransport builds the keep-alive pool for one upstream: the
// in-goroutine keepAliveTransport for http:// upstreams, net/http's
// Transport for https:// ones (TLS).
func newHTTPTransport(target *url.URL, maxIdlePerHost int, headerTimeout time.Duration) Backend {
	if target.Scheme == "http" {
		host := target.Host
		if target.Port() == "" {
			host = net.JoinHostPort(target.Hostname(), "80")
		}
		return newKeepAliveTransport(host, maxIdlePerHost, headerTimeout)
	}
	return &http.Transport{
		Proxy: nil, // never route loopback fleet traffic through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: headerTimeout,
		ExpectContinueTimeout: time.Second,
		// Accept-Encoding passes through untouched: the client decides.
		DisableCompression: true,
	}
}

// newUpstream wires a ReverseProxy to target through rt.
func newUpstream(service string, side strangler.Side, target *url.URL, rt Backend, logger *slog.Logger) *upstream {
	u := &upstream{service: service, side: side, target: target, rt: rt}
	if _, ok := rt.(*keepAliveTransport); ok && (target.Path == "" || target.Path == "/") &&
		target.RawPath == "" && target.RawQuery == "" && target.User == nil && plainHost(target.Host) {
		u.relayHost = target.Host
	}
	u.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			// Keep the chain of proxies in front of us; SetXForwarded appends.
			if prior, ok := pr.In.Header["X-Forwarded-For"]; ok {
				pr.Out.Header["X-Forwarded-For"] = prior
			}
			pr.SetXForwarded()
			pr.Out.Header.Set("Forwarded", forwarded(pr.In))
		},
		Transport:  rt,
		BufferPool: bufferPool,
		// Event streams and unknown-length bodies are flushed at once by
		// ReverseProxy itself (it uses -1 for them); others are flushed
		// when its buffer fills, which is what throughput wants.
		FlushInterval: 0,
		ErrorLog:      slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
		// w is the recorder serve wraps every answer in; serve logs the
		// error with its route once the answer is done.
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			id := writeUpstreamError(w, r, service, side, err)
			if rec, ok := w.(*recorder); ok {
				rec.upstreamErr, rec.errorID = err, id
			}
		},
	}
	return u
}

// forwarded builds the RFC 7239 Forwarded header, appending to any the
// client sent.
func forwarded(in *http.Request) string {
	host, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		host = in.RemoteAddr
	}
	node := forwardedNode(host)
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	v := "for=" + node + ";host=" + quoteForwarded(in.Host) + ";proto=" + proto
	if prior := in.Header.Get("Forwarded"); prior != "" {
		return prior + ", " + v
	}
	return v
}

// forwardedNode is a client address as Forwarded's for= gives it: an IPv6
// one bracketed and quoted.
func forwardedNode(host string) string {
	if strings.Contains(host, ":") {
		return `"[` + host + `]"`
	}
	return host
}

func quoteForwarded(s string) string {
	if strings.ContainsAny(s, ":;,\" []") {
		return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
	}
	return s
}

// statusClientClosed records a request whose client went away first; it
// is not the upstream's fault and is not counted as an error.
const statusClientClosed = 499

// upstreamError is the JSON body of a 502 or 504 the proxy writes itself.
// It names no address and carries no dial or read error: those say where
// the fleet's services live. The ID is also in the X-Migrate-Error-Id
// header and in the proxy's Warn log line, which has the cause.
type upstreamError struct {
	Error   string `json:"error"`
	Service string `json:"service"`
	Side    string `json:"side"`
	Status  int    `json:"status"`
	ID      string `json:"id"`
}

// HeaderErrorID carries the id of an error the proxy answered itself.
const HeaderErrorID = "X-Migrate-Error-Id"

// writeUpstreamError answers 502 or 504 and returns the error's id, or ""
// when the client had gone and was sent nothing.
func writeUpstreamError(w http.ResponseWriter, r *http.Request, service string, side strangler.Side, err error) string {
	if r.Context().Err() != nil && errors.Is(err, context.Canceled) {
		w.WriteHeader(statusClientClosed)
		return ""
	}
	status, msg := http.StatusBadGateway, "the upstream failed to answer"
	if isTimeout(err) {
		status, msg = http.StatusGatewayTimeout, "the upstream did not answer in time"
	} else if wasm.ErrorKind(err) == wasm.KindBudget {
		// The guest never ran: the proxy is out of room for guest memory
		// (wasmMemory), which is load, not a broken upstream.
		status, msg = http.StatusServiceUnavailable, "the in-process candidate is at the proxy's memory budget (wasmMemory); retry later"
	}
	id := fmt.Sprintf("%016x", rand.Uint64())
	writeJSONError(w, status, upstreamError{Error: msg, Service: service, Side: string(side), Status: status, ID: id},
		HeaderErrorID, id)
	return id
}

// timeouter is implemented by errors that know they are timeouts
// (net.Error, and in-process module deadline errors).
type timeouter interface{ Timeout() bool }

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var t timeouter
	if errors.As(err, &t) && t.Timeout() {
		return true
	}
	return wasm.ErrorKind(err) == wasm.KindDeadline
}

// writeJSONError answers status with body, replacing the headers with
// its own and the extra name, value pairs.
func writeJSONError(w http.ResponseWriter, status int, body any, extra ...string) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		h.Set(extra[i], extra[i+1])
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// mirrorBackend sends detached copies to an upstream: it points the copy at
// the upstream and strips hop-by-hop headers. The mirror has already
// marked the copy (shadow.HeaderShadow: "1", or "baseline" for an A/A
// copy to legacy); that mark survives the stripping.
type mirrorBackend struct{ up *upstream }

// RoundTrip sends one copy.
func (m mirrorBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	mark := r.Header.Get(shadow.HeaderShadow)
	if mark == "" {
		mark = "1"
	}
	out := r.Clone(r.Context())
	out.RequestURI = ""
	// Pointed at the upstream as a client's request is (rp's Rewrite).
	(&httputil.ProxyRequest{In: r, Out: out}).SetURL(m.up.target)
	removeHopByHop(out.Header)
	out.Header.Set(shadow.HeaderShadow, mark)
	return m.up.rt.RoundTrip(out)
}

var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// logUpstreamError writes the Warn line that an error id in a 502 or 504
// body points to: the route, the request's path and the cause the client
// is not shown.
func (p *Proxy) logUpstreamError(r *http.Request, e *entry, up *upstream, status int, id string, cause error) {
	route := "default"
	if e != nil {
		route = e.live.Name
	}
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	p.logger.Warn("upstream error", "id", id, "route", route, "service", up.service, "side", up.side,
		"status", status, "method", r.Method, "path", r.URL.Path, "cause", msg)
}
