package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// forward proxies the common request, one without a body or an upgrade to
// an http:// upstream, as httputil.ReverseProxy would, without what
// ReverseProxy spends on cases this one is not: a client trace for 1xx
// answers (keepAliveTransport drops them), a second copy of the request
// for it, copying the response header values one by one, and parsing the
// Content-Type with mime to spot an event stream. The request is rewritten
// by ReverseProxy's own Rewrite. It reports false, having done nothing, for
// a request it does not cover (or an upstream not behind a
// keepAliveTransport); ReverseProxy serves those.
func (u *upstream) forward(w http.ResponseWriter, req *http.Request) bool {
	if _, ok := u.rt.(*keepAliveTransport); !ok || req.ContentLength != 0 || upgradeType(req.Header) != "" {
		return false
	}
	ctx := req.Context()
	if ctx.Done() == nil {
		if _, ok := w.(http.CloseNotifier); ok { // ReverseProxy watches those for the client leaving
			return false
		}
	}
	outreq := u.outRequest(req)
	res, err := u.rt.RoundTrip(outreq)
	if err != nil {
		u.rp.ErrorHandler(w, outreq, err)
		return true
	}
	u.answer(w, outreq, res)
	return true
}

// outRequest is the request forward sends upstream for req, which has no
// body: req rewritten as ReverseProxy rewrites it.
func (u *upstream) outRequest(req *http.Request) *http.Request {
	outreq := req.Clone(req.Context())
	outreq.Body = nil // no body: ContentLength is 0
	if outreq.Header == nil {
		outreq.Header = make(http.Header)
	}
	outreq.Close = false
	removeHopByHop(outreq.Header)
	if httpguts.HeaderValuesContainsToken(req.Header["Te"], "trailers") {
		outreq.Header["Te"] = []string{"trailers"}
	}
	h := outreq.Header
	delete(h, "Forwarded")
	delete(h, "X-Forwarded-For")
	delete(h, "X-Forwarded-Host")
	delete(h, "X-Forwarded-Proto")
	outreq.URL.RawQuery = cleanQueryParams(outreq.URL.RawQuery)
	pr := &httputil.ProxyRequest{In: req, Out: outreq}
	u.rp.Rewrite(pr)
	outreq = pr.Out
	if _, ok := outreq.Header["User-Agent"]; !ok {
		outreq.Header["User-Agent"] = []string{""} // no Go default
	}
	return outreq
}

// answer writes res, the upstream's answer to outreq, to w as ReverseProxy
// would.
func (u *upstream) answer(w http.ResponseWriter, outreq *http.Request, res *http.Response) {
	ctx := outreq.Context()
	if res.StatusCode == http.StatusSwitchingProtocols {
		// Nothing asked to switch: ReverseProxy refuses it the same way.
		res.Body.Close()
		u.rp.ErrorHandler(w, outreq, fmt.Errorf("backend tried to switch protocol %q when %q was requested", upgradeType(res.Header), ""))
		return
	}
	removeHopByHop(res.Header)
	dst := w.Header()
	for k, vv := range res.Header {
		// The response's values are ours once it is read; no copy needed
		// where the client's header has none of its own.
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vv...)
		} else {
			dst[k] = vv
		}
	}
	announced := len(res.Trailer)
	if announced > 0 {
		keys := make([]string, 0, announced)
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		dst.Add("Trailer", strings.Join(keys, ", "))
	}
	w.WriteHeader(res.StatusCode)

	// Event streams and bodies of unknown length are flushed as they come,
	// the headers at once, as ReverseProxy does with its FlushInterval of -1.
	flush := res.ContentLength == -1 || isEventStream(res.Header.Get("Content-Type"))
	rc := http.NewResponseController(w)
	if flush {
		_ = rc.Flush()
	}
	// The pool under ReverseProxy's, taken directly: its BufferPool
	// interface deals in slices, so Put allocates a pointer every time.
	bp := bufferPool.pool.Get().(*[]byte)
	err := copyBody(w, res.Body, *bp, flush, rc)
	bufferPool.pool.Put(bp)
	if err != nil {
		defer res.Body.Close()
		// The client must not take a cut-off body for a whole one: abort
		// the connection, as ReverseProxy does under a server.
		if ctx.Value(http.ServerContextKey) != nil {
			panic(http.ErrAbortHandler)
		}
		return
	}
	res.Body.Close() // now, to read the trailers
	if len(res.Trailer) > 0 {
		_ = rc.Flush()
	}
	if len(res.Trailer) == announced {
		for k, vv := range res.Trailer {
			dst[k] = append(dst[k], vv...)
		}
		return
	}
	for k, vv := range res.Trailer {
		k = http.TrailerPrefix + k
		for _, v := range vv {
			dst.Add(k, v)
		}
	}
}

// copyBody is ReverseProxy's copyBuffer, flushing after each write when
// flush is set.
func copyBody(dst io.Writer, src io.Reader, buf []byte, flush bool, rc *http.ResponseController) error {
	for {
		nr, rerr := src.Read(buf)
		if nr > 0 {
			nw, werr := dst.Write(buf[:nr])
			if werr != nil {
				return werr
			}
			if nr != nw {
				return io.ErrShortWrite
			}
			if flush {
				_ = rc.Flush()
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// isEventStream reports whether a Content-Type's media type is
// text/event-stream.
func isEventStream(ct string) bool {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "text/event-stream")
}

// upgradeType is httputil's: the protocol asked for when Connection lists
// Upgrade.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// removeHopByHop is httputil's removeHopByHopHeaders: the fields the
// Connection header names, then the fixed hop-by-hop set.
func removeHopByHop(h http.Header) {
	for _, f := range h["Connection"] {
		for sf := range strings.SplitSeq(f, ",") {
			if sf = textproto.TrimString(sf); sf != "" {
				h.Del(sf)
			}
		}
	}
	for _, f := range hopHeaders {
		delete(h, f) // canonical already
	}
}

// cleanQueryParams is httputil's: a query with a semicolon or a bad
// escape is re-encoded, as Go's server parses it.
func cleanQueryParams(s string) string {
	reencode := func(s string) string {
		v, _ := url.ParseQuery(s)
		return v.Encode()
	}
	for i := 0; i < len(s); {
		switch s[i] {
		case ';':
			return reencode(s)
		case '%':
			if i+2 >= len(s) || !ishex(s[i+1]) || !ishex(s[i+2]) {
				return reencode(s)
			}
			i += 3
		default:
			i++
		}
	}
	return s
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
