package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Server serves the proxy's listener. It reads the common request itself —
// HTTP/1.1, origin-form, no transfer coding, no Expect, no upgrade, a head
// that fits its buffer — and writes the answer as net/http's server would
// (status line, Date, Content-Length or chunking, Content-Type sniffing,
// trailers). The first request on a connection that is anything else hands
// the connection, with the bytes already read, to a net/http Server with
// the same handler and timeouts, which serves it from then on: the rare
// and the malformed get net/http's handling and its error answers.
//
// net/http's server spends, for every request without a body, a
// goroutine reading ahead to notice the client leaving, a non-blocking
// read that finds nothing, and two deadline changes to stop it again;
// with its response bookkeeping that was a third of the proxy's CPU per
// request on loopback (bench/proxy-vs-nginx.sh). What this server gives up
// for it: a client that leaves in the middle of a request is noticed when
// its answer is written, not at once, so an upstream call runs to its end
// (or its timeout) for nobody, as it does behind nginx with
// proxy_ignore_client_abort.
type Server struct {
	Handler           http.Handler
	ReadHeaderTimeout time.Duration // 0: none
	IdleTimeout       time.Duration // between requests on a keep-alive connection; 0: none
	ErrorLog          *log.Logger   // nil: the log package's standard logger

	mu       sync.Mutex
	ln       net.Listener
	conns    map[*serverConn]struct{}
	fallback *http.Server
	handoff  *handoffListener
	closing  atomic.Bool
}

// Serve accepts connections on ln until Shutdown, and returns
// http.ErrServerClosed then.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.ln = ln
	s.conns = map[*serverConn]struct{}{}
	s.handoff = newHandoffListener(ln.Addr())
	s.fallback = &http.Server{Handler: s.Handler, ReadHeaderTimeout: s.ReadHeaderTimeout,
		IdleTimeout: s.IdleTimeout, ErrorLog: s.ErrorLog}
	go s.fallback.Serve(s.handoff)
	s.mu.Unlock()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return http.ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				// Out of file descriptors, or a transient accept error:
				// wait, as net/http does, instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.logf("accept: %v; retrying in %v", err, backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		c := newServerConn(s, nc)
		s.mu.Lock()
		if s.closing.Load() {
			s.mu.Unlock()
			nc.Close()
			return http.ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		go c.serve()
	}
}

// Shutdown stops accepting, closes idle connections, and waits for the
// requests in flight — on both this server's connections and those handed
// to net/http — until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.mu.Lock()
	ln, fallback, handoff := s.ln, s.fallback, s.handoff
	s.mu.Unlock()
	if ln == nil {
		return nil
	}
	ln.Close()
	fallbackDone := make(chan error, 1)
	go func() { fallbackDone <- fallback.Shutdown(ctx) }()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.closeIdle() == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	err := <-fallbackDone
	handoff.Close()
	return err
}

// closeIdle closes the connections waiting for a request and reports how
// many are left (busy with one).
func (s *Server) closeIdle() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.state.CompareAndSwap(connIdle, connClosed) {
			c.nc.Close()
			delete(s.conns, c)
		}
	}
	return len(s.conns)
}

func (s *Server) forget(c *serverConn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) logf(format string, args ...any) {
	if s.ErrorLog != nil {
		s.ErrorLog.Printf(format, args...)
	} else {
		log.Printf(format, args...)
	}
}

const (
	connIdle int32 = iota
	connActive
	connClosed
)

// serverConn is one client connection this server reads itself.
type serverConn struct {
	s     *Server
	nc    net.Conn
	br    *bufio.Reader
	bw    *bufio.Writer
	state atomic.Int32
	// tmpl is every request's start: the context, with the values net/http
	// puts in it, and the client's address. The context is never
	// cancelled: a request's work ends with its upstream's answer or
	// timeout (see Server), and a context that cannot end costs nothing
	// to watch, where a per-request cancellation was 4% of the CPU.
	tmpl *http.Request
	// pending holds the start of a response body until its head is
	// written, as net/http does, so a short answer gets a Content-Length
	// and one without a Content-Type gets one sniffed from its first bytes.
	pending []byte
	fields  []byte // a response head's fields, reused

	// relay is the handler's, when it serves some requests from their
	// head; the rest is what it keeps per connection (relay.go).
	relay                                      headRelay
	relayIP, relayNode, relayHost, relayQuoted string
}

// readBufferSize bounds a request head this server reads itself; a longer
// head goes to net/http, whose limit is 1 MiB.
const readBufferSize = 8 << 10

var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufferSize) }}
	writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

func newServerConn(s *Server, nc net.Conn) *serverConn {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(nc)
	bw := writerPool.Get().(*bufio.Writer)
	bw.Reset(nc)
	ctx := context.WithValue(context.Background(), http.ServerContextKey, s.fallback)
	ctx = context.WithValue(ctx, http.LocalAddrContextKey, nc.LocalAddr())
	tmpl := (&http.Request{RemoteAddr: nc.RemoteAddr().String()}).WithContext(ctx)
	c := &serverConn{s: s, nc: nc, br: br, bw: bw, tmpl: tmpl, pending: make([]byte, 0, bufferBeforeChunking)}
	c.relay, _ = s.Handler.(headRelay)
	return c
}

func (c *serverConn) serve() {
	handedOff := false
	defer func() {
		c.s.forget(c)
		if handedOff {
			return // net/http owns the connection and its reader now
		}
		c.nc.Close()
		c.br.Reset(nil)
		readerPool.Put(c.br)
		c.bw.Reset(nil)
		writerPool.Put(c.bw)
	}()
	// The read deadline is the idle timeout while a request is awaited
	// and none while the handler runs. Moving a deadline costs as much as
	// a tenth of a small request, so the idle one is moved only when less
	// than half of it is left (a connection idles out after between half
	// and all of IdleTimeout), and the header timeout is set only when a
	// head does not arrive whole in one read.
	var idleUntil time.Time
	for {
		if c.s.IdleTimeout > 0 && c.br.Buffered() == 0 {
			if now := time.Now(); idleUntil.Sub(now) < c.s.IdleTimeout/2 {
				idleUntil = now.Add(c.s.IdleTimeout)
				c.nc.SetReadDeadline(idleUntil)
			}
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(connIdle, connActive) {
			return // Shutdown closed it
		}
		head, err := c.readHead(&idleUntil)
		if err != nil {
			return
		}
		var tail http.HandlerFunc
		if c.relay != nil {
			var outcome relayOutcome
			switch outcome, tail = c.relay.relay(c, head); outcome {
			case relayKeep:
				c.br.Discard(head.n)
				if c.s.closing.Load() || !c.state.CompareAndSwap(connActive, connIdle) {
					return
				}
				continue
			case relayClose:
				return
			}
		}
		req := head.request(c)
		if req == nil && tail != nil {
			// The relay covers less than request does (FuzzRelayRequest):
			// a request it sent is one this server reads.
			c.s.logf("proxy: the relay sent a request the server does not read itself")
			return
		}
		if req == nil {
			// Not a request this server reads itself: net/http serves the
			// connection from this request on, with the bytes read so far.
			c.nc.SetReadDeadline(time.Time{})
			handedOff = c.s.handoff.give(&handedConn{Conn: c.nc, r: c.br})
			c.state.Store(connClosed)
			return
		}
		if req.Body != http.NoBody && !idleUntil.IsZero() {
			// The handler reads the body with no deadline, as under
			// net/http with no ReadTimeout.
			c.nc.SetReadDeadline(time.Time{})
			idleUntil = time.Time{}
		}
		c.br.Discard(head.n)
		if !c.serveRequest(req, tail) {
			return
		}
		if c.s.closing.Load() || !c.state.CompareAndSwap(connActive, connIdle) {
			return
		}
	}
}

// readHead peeks until the buffer holds a whole request head, or holds
// what this server does not read itself (then request gives nil). While it
// waits for the rest of a head, the read deadline is at most
// ReadHeaderTimeout away; *deadline is the one set.
func (c *serverConn) readHead(deadline *time.Time) (messageHead, error) {
	return peekHead(c.br, func() {
		if t := c.s.ReadHeaderTimeout; t > 0 {
			if d := time.Now().Add(t); deadline.IsZero() || d.Before(*deadline) {
				*deadline = d
				c.nc.SetReadDeadline(d)
			}
		}
	})
}

// peekHead peeks at br until its buffer holds a whole head, or what
// scanHead gives up on, or is full (a zero head: too long to read here).
// beforeWait, when set, runs before each read that waits for more bytes.
func peekHead(br *bufio.Reader, beforeWait func()) (messageHead, error) {
	for {
		buf, _ := br.Peek(br.Buffered())
		if h, done := scanHead(buf); done {
			return h, nil
		}
		if len(buf) == br.Size() {
			return messageHead{}, nil
		}
		if beforeWait != nil {
			beforeWait()
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			return messageHead{}, err
		}
	}
}

// serveRequest runs the handler for req and finishes its answer. It
// reports whether the connection can carry another request.
func (c *serverConn) serveRequest(req *http.Request, tail http.HandlerFunc) (keep bool) {
	w := &response{c: c, req: req, header: make(http.Header, 8), contentLength: -1,
		closeAfter: req.Close, pending: c.pending[:0]}
	body, _ := req.Body.(*bodyReader)
	defer func() {
		if v := recover(); v != nil {
			keep = false
			if v != http.ErrAbortHandler {
				stack := make([]byte, 64<<10)
				stack = stack[:runtime.Stack(stack, false)]
				c.s.logf("proxy: panic serving %v: %v\n%s", req.RemoteAddr, v, stack)
			}
		}
	}()
	if tail != nil {
		tail(w, req) // the answer to a request the relay sent
	} else {
		c.s.Handler.ServeHTTP(w, req)
	}
	if err := w.finish(); err != nil {
		return false
	}
	if body != nil && !body.drain() {
		c.lingerClose()
		return false
	}
	return !w.closeAfter
}

// rstAvoidance is how long a connection whose client is still sending a
// body nobody will read stays half-open after the answer, as under
// net/http: closing it at once would reset it, and the client's kernel
// may drop the answer before the client reads it.
const rstAvoidance = 500 * time.Millisecond

// lingerClose ends the sending side and reads what the client still sends
// until it closes too, or rstAvoidance passes; serve closes the rest.
func (c *serverConn) lingerClose() {
	c.bw.Flush()
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	c.nc.SetReadDeadline(time.Now().Add(rstAvoidance))
	io.Copy(io.Discard, c.nc)
}

// handedConn is a connection given to net/http: its reads start with the
// bytes this server had buffered.
type handedConn struct {
	net.Conn
	r *bufio.Reader
}

func (h *handedConn) Read(p []byte) (int, error) { return h.r.Read(p) }

// handoffListener is the net.Listener the fallback http.Server accepts
// handed-off connections from.
type handoffListener struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

// give passes c to the fallback server; false when it has stopped.
func (l *handoffListener) give(c net.Conn) bool {
	select {
	case l.conns <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closed.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return l.addr }

// bodyReader is a body of known length, read from a connection. A
// request's may be read by a goroutine of the handler's (a large body is
// written upstream beside the read of the answer) while the server drains
// it, hence the lock; once drained it reads no more.
type bodyReader struct {
	mu        sync.Mutex
	br        *bufio.Reader
	remaining int64
	err       error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return 0, b.err
	}
	if b.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > b.remaining {
		p = p[:b.remaining]
	}
	n, err := b.br.Read(p)
	b.remaining -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		b.err = err
		return n, err
	}
	return n, nil
}

func (b *bodyReader) Close() error { return nil }

// left is how much of the body is still unread.
func (b *bodyReader) left() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.remaining
}

// maxDrain is how much of a body the handler left unread is read past to
// keep the connection, as net/http's server does (256 KiB).
const maxDrain = 256 << 10

// drain reads what the handler left of the body, when that is little
// enough to be worth keeping the connection for.
func (b *bodyReader) drain() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err != nil {
		return false
	}
	b.err = http.ErrBodyReadAfterClose
	if b.remaining == 0 {
		return true
	}
	if b.remaining > maxDrain {
		return false
	}
	n, err := b.br.Discard(int(b.remaining))
	b.remaining -= int64(n)
	return err == nil
}
