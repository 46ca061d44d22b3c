package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// keepAliveTransport is the HTTP/1.1 client behind every upstream. It does
// what a reverse proxy needs from net/http's Transport — a keep-alive pool
// per upstream, dial and response-header timeouts, cancellation, a retry
// of idempotent requests on a connection the upstream closed while idle —
// but runs each exchange in the calling goroutine. net/http's Transport
// gives every connection a reader and a writer goroutine and hands each
// request between them over channels; dropping that hand-off raised the
// proxy's throughput per core by about two thirds on loopback
// (bench/proxy-vs-nginx.sh).
//
// It speaks HTTP/1.1 only (legacy services and Wasm platforms behind the
// proxy do), forwards 101 Switching Protocols for upgrades, and drops
// other 1xx interim responses.
type keepAliveTransport struct {
	addr          string // host:port
	dialer        net.Dialer
	maxIdle       int
	idleTimeout   time.Duration
	headerTimeout time.Duration

	mu   sync.Mutex
	idle []*keepAliveConn // a stack: the most recently used is reused first
}

var _ Backend = (*keepAliveTransport)(nil)

type keepAliveConn struct {
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	idleFrom time.Time
	// raw and peek are the liveness probe, made once per connection: a
	// fresh SyscallConn and closure on every reuse were two of the
	// request path's allocations.
	raw  syscall.RawConn // nil when conn has no file descriptor
	peek func(fd uintptr) bool
	live bool // peek's result
}

func newKeepAliveTransport(addr string, maxIdle int, headerTimeout time.Duration) *keepAliveTransport {
	return &keepAliveTransport{addr: addr, maxIdle: maxIdle, idleTimeout: 90 * time.Second,
		headerTimeout: headerTimeout, dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
}

// errStaleConn marks a pooled connection the upstream had already closed.
var errStaleConn = errors.New("keep-alive connection closed by the upstream")

// RoundTrip sends r on a pooled (or new) connection and returns the
// response once its headers are read; the body streams from the connection.
func (t *keepAliveTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx := r.Context()
	replayable := (r.Body == nil || r.Body == http.NoBody) && idempotent(r)
	for attempt := 0; ; attempt++ {
		kc, reused, err := t.conn(ctx, replayable)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, kc, r)
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// A pooled connection may have been closed by the upstream an
		// instant before we wrote to it; a fresh one settles that. Timeouts
		// are never retried: the upstream is slow, not gone.
		if !reused || !replayable || attempt > 0 || !connGone(err) {
			return nil, err
		}
	}
}

// connGone reports errors that mean the upstream closed the connection.
func connGone(err error) bool {
	return errors.Is(err, errStaleConn) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func idempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, a := r.Header["Idempotency-Key"]
	_, b := r.Header["X-Idempotency-Key"]
	return a || b
}

// probeAfter is how long a connection may have been idle and still be
// given a request that can be replayed without asking the kernel first
// whether the upstream closed it. A close that raced the request is
// retried on a fresh connection (RoundTrip), as net/http's Transport
// does; the probe costs a system call, one in six of a proxied request's.
const probeAfter = time.Second

// conn takes the most recently used live idle connection, or dials. A
// request that can be replayed skips the liveness probe on a connection
// idle for less than probeAfter.
func (t *keepAliveTransport) conn(ctx context.Context, replayable bool) (*keepAliveConn, bool, error) {
	now := time.Now()
	for {
		t.mu.Lock()
		n := len(t.idle)
		if n == 0 {
			t.mu.Unlock()
			break
		}
		kc := t.idle[n-1]
		t.idle[n-1] = nil
		t.idle = t.idle[:n-1]
		t.mu.Unlock()
		idle := now.Sub(kc.idleFrom)
		if idle < t.idleTimeout && (replayable && idle < probeAfter && kc.br.Buffered() == 0 || alive(kc)) {
			return kc, true, nil
		}
		kc.conn.Close()
	}
	c, err := t.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	kc := &keepAliveConn{conn: c, br: bufio.NewReaderSize(c, 4096), bw: bufio.NewWriterSize(c, 4096)}
	if sc, ok := c.(syscall.Conn); ok {
		if kc.raw, err = sc.SyscallConn(); err != nil {
			c.Close()
			return nil, false, err
		}
		kc.peek = func(fd uintptr) bool {
			// EAGAIN: nothing to read, still open. 0 bytes: closed. Data:
			// something the upstream should not have sent; do not trust it.
			var buf [1]byte
			_, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
			kc.live = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
			return true // never wait: this is a probe
		}
	}
	return kc, false, nil
}

// alive checks, without blocking, that an idle connection has neither been
// closed by the upstream nor received unsolicited bytes: one non-blocking
// MSG_PEEK, which is what lets a pooled connection be trusted with a
// request that cannot be retried.
func alive(kc *keepAliveConn) bool {
	if kc.br.Buffered() > 0 {
		return false
	}
	if kc.raw == nil {
		return true
	}
	kc.live = false
	return kc.raw.Read(kc.peek) == nil && kc.live
}

// exchange writes the request and reads the response headers on kc.
func (t *keepAliveTransport) exchange(ctx context.Context, kc *keepAliveConn, r *http.Request) (*http.Response, error) {
	// Cancellation (the client left, or a deadline) interrupts blocking
	// reads and writes on the connection; such a connection is not reused.
	stop := neverStopped
	if ctx.Done() != nil { // the proxy's own server gives contexts that never end
		stop = context.AfterFunc(ctx, func() { kc.conn.SetDeadline(time.Unix(1, 0)) })
	}
	fail := func(err error) (*http.Response, error) {
		stop()
		kc.conn.Close()
		return nil, err
	}
	var beside *bodyWriter // a large body is written while the answer is read
	if writesBeside(r) {
		beside = writeBeside(kc, r, t.headerTimeout)
	} else {
		if err := writeRequest(kc.bw, r); err != nil {
			return fail(err)
		}
		if err := kc.bw.Flush(); err != nil {
			return fail(err)
		}
		if t.headerTimeout > 0 {
			kc.conn.SetReadDeadline(time.Now().Add(t.headerTimeout))
		}
	}
	return t.answer(kc, r, beside, stop)
}

// answer reads the response to r on kc, once r is sent or (beside) being
// sent; stop undoes the cancellation watch on kc.
func (t *keepAliveTransport) answer(kc *keepAliveConn, r *http.Request, beside *bodyWriter, stop func() bool) (*http.Response, error) {
	var resp *http.Response
	for {
		var err error
		resp, err = readResponse(kc.br, r)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = errStaleConn
			}
			if beside != nil {
				err = beside.failed(err)
			}
			stop()
			kc.conn.Close()
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		resp.Body.Close() // 1xx interim response: wait for the final one
	}
	written := true
	if beside != nil {
		written = beside.answer()
	} else if t.headerTimeout > 0 {
		kc.conn.SetReadDeadline(time.Time{})
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		stop()
		resp.Body = &upgradedConn{Reader: kc.br, conn: kc.conn}
		return resp, nil
	}
	resp.Body = &pooledBody{body: resp.Body, t: t, kc: kc, stop: stop,
		reusable: written && !resp.Close && !r.Close}
	return resp, nil
}

// writeRequest writes r to bw as Request.Write does. A request without a
// body, most of what a proxy forwards, has its head written here directly:
// Request.Write sorts the header keys and builds a transfer writer for
// every request, about a tenth of the proxy's own CPU per request. The
// header order is the map's; HTTP gives no meaning to the order of
// different field names, and the values of one name keep theirs. Anything
// this does not cover (a body, a transfer coding, trailers, Close, CONNECT,
// a host that needs cleaning, a URI with control bytes, a client trace that
// watches the write) goes through Request.Write, which also reports what
// is wrong with such a request.
func writeRequest(bw *bufio.Writer, r *http.Request) error {
	if (r.Body != nil && r.Body != http.NoBody) || r.ContentLength != 0 || len(r.TransferEncoding) > 0 ||
		len(r.Trailer) > 0 || r.Close || r.Method == http.MethodConnect || r.URL == nil {
		return r.Write(bw)
	}
	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	if !plainHost(host) {
		return r.Write(bw)
	}
	if tr := httptrace.ContextClientTrace(r.Context()); tr != nil &&
		(tr.WroteHeaderField != nil || tr.WroteHeaders != nil || tr.WroteRequest != nil) {
		return r.Write(bw)
	}
	ruri := r.URL.RequestURI()
	for i := 0; i < len(ruri); i++ {
		if b := ruri[i]; b < ' ' || b == 0x7f {
			return r.Write(bw)
		}
	}
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	bw.WriteString(method)
	bw.WriteByte(' ')
	bw.WriteString(ruri)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(host)
	bw.WriteString("\r\n")
	// Request.Write's User-Agent rule: its default when the header is
	// absent, none when it is present and empty (ReverseProxy sets it so).
	ua := "Go-http-client/1.1"
	if v, ok := r.Header["User-Agent"]; ok {
		ua = ""
		if len(v) > 0 {
			ua = v[0]
		}
	}
	if ua != "" {
		writeHeaderField(bw, "User-Agent", ua)
	}
	// Request.Write sends a zero length for the methods that usually carry
	// a body.
	if method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch {
		bw.WriteString("Content-Length: 0\r\n")
	}
	for k, vv := range r.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue
		}
		if !httpguts.ValidHeaderFieldName(k) {
			continue // dropped, as Request.Write drops it
		}
		for _, v := range vv {
			writeHeaderField(bw, k, v)
		}
	}
	// bufio.Writer's errors stick: the last write reports any before it.
	_, err := bw.WriteString("\r\n")
	return err
}

// writeHeaderField writes one field as Request.Write does: line breaks in
// the value become spaces, and surrounding white space is trimmed.
func writeHeaderField(bw *bufio.Writer, k, v string) {
	if strings.ContainsAny(v, "\r\n") {
		v = strings.NewReplacer("\n", " ", "\r", " ").Replace(v)
	}
	v = textproto.TrimString(v)
	bw.WriteString(k)
	bw.WriteString(": ")
	bw.WriteString(v)
	bw.WriteString("\r\n")
}

// plainHost reports whether Request.Write would send host unchanged: ASCII
// (nothing to Punycode), valid in a Host header, and no IPv6 zone.
func plainHost(host string) bool {
	if host == "" {
		return false
	}
	for i := 0; i < len(host); i++ {
		switch b := host[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.' || b == '-' || b == ':' || b == '[' || b == ']' || b == '_':
		default:
			return false
		}
	}
	return true
}

// put returns a connection to the pool, or closes it when the pool is full.
func (t *keepAliveTransport) put(kc *keepAliveConn) {
	kc.idleFrom = time.Now()
	t.mu.Lock()
	if len(t.idle) < t.maxIdle {
		t.idle = append(t.idle, kc)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	kc.conn.Close()
}

// CloseIdleConnections closes every pooled connection.
func (t *keepAliveTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, kc := range idle {
		kc.conn.Close()
	}
}

// pooledBody hands the connection back to the pool once the body has been
// read to its end; a body closed early takes the connection with it.
type pooledBody struct {
	body     io.ReadCloser
	t        *keepAliveTransport
	kc       *keepAliveConn
	stop     func() bool
	reusable bool
	mu       sync.Mutex
	done     bool
}

func (b *pooledBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(true)
	}
	return n, err
}

// Close ends the exchange. A body without content (HEAD, 204, 304) still
// leaves the connection reusable.
func (b *pooledBody) Close() error {
	if b.body == http.NoBody {
		b.finish(true)
		return nil
	}
	b.finish(false)
	return nil
}

func (b *pooledBody) finish(complete bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	notCancelled := b.stop()
	if complete && b.reusable && notCancelled {
		b.t.put(b.kc)
		return
	}
	b.kc.conn.Close()
}

// neverStopped is the stop of a context that cannot end: the cancellation
// it would undo can never have happened.
func neverStopped() bool { return true }

// upgradedConn is the body of a 101 response: the raw connection, readable
// and writable, as ReverseProxy expects for protocol upgrades.
type upgradedConn struct {
	io.Reader
	conn net.Conn
}

func (u *upgradedConn) Write(p []byte) (int, error) { return u.conn.Write(p) }
func (u *upgradedConn) Close() error                { return u.conn.Close() }
