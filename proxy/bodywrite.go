package proxy

import (
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A request body larger than this, or of unknown length, is written to the
// upstream beside the read of its answer. A smaller one fits in the socket
// buffers, so writing it first cannot block on an upstream that has stopped
// reading, and costs no goroutine.
const inlineBodyMax = 64 << 10

// earlyAnswerGrace is how long, after writing a request body failed, the
// answer is still waited for: an upstream that refuses a body (413) often
// answers and closes while the body is on its way, and its answer is in
// the socket buffer by the time the write fails.
const earlyAnswerGrace = time.Second

// writesBeside reports whether r's body is written beside the response
// read. Upgrades keep the plain order: after a 101 the connection is the
// client's.
func writesBeside(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || r.Header.Get("Upgrade") != "" {
		return false
	}
	return r.ContentLength < 0 || r.ContentLength > inlineBodyMax
}

// bodyWriter writes one request (headers and body) on kc in its own
// goroutine while the caller reads the response, so an upstream that
// answers before it has read the whole body (413, 401, a redirect) has its
// answer forwarded instead of a broken pipe.
type bodyWriter struct {
	kc       *keepAliveConn
	mu       sync.Mutex
	answered bool
	done     chan error  // 1-buffered: the write's outcome
	taken    atomic.Bool // the whole body has been read from the client
}

// takenBody marks its bodyWriter once the body reaches its end: EOF, or
// its last declared byte, which is read before it is written, so before
// the upstream can have it (a length that is a multiple of the write
// buffer leaves nothing for the flush after the EOF read).
type takenBody struct {
	io.ReadCloser
	left  int64 // bytes still declared; -1: unknown length
	taken *atomic.Bool
}

func (b *takenBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.left >= 0 {
		b.left -= int64(n)
	}
	if err == io.EOF || b.left == 0 {
		b.taken.Store(true)
	}
	return n, err
}

// writeBeside starts writing r on kc. The response-header timeout starts
// when the body is written, as it does for an inline write.
func writeBeside(kc *keepAliveConn, r *http.Request, headerTimeout time.Duration) *bodyWriter {
	w := &bodyWriter{kc: kc, done: make(chan error, 1)}
	out := *r // RoundTrip must not change its caller's request
	out.Body = &takenBody{ReadCloser: r.Body, left: r.ContentLength, taken: &w.taken}
	go func() {
		err := out.Write(kc.bw)
		if err == nil {
			err = kc.bw.Flush()
		}
		w.mu.Lock()
		if !w.answered {
			switch {
			case err != nil:
				grace := earlyAnswerGrace
				if headerTimeout > 0 && headerTimeout < grace {
					grace = headerTimeout
				}
				kc.conn.SetReadDeadline(time.Now().Add(grace))
			case headerTimeout > 0:
				kc.conn.SetReadDeadline(time.Now().Add(headerTimeout))
			}
		}
		w.mu.Unlock()
		w.done <- err
	}()
	return w
}

// answer is called once the final response headers are read. It reports
// whether the whole request had been written by then: if not, the upstream
// answered early, may never read the rest, and the connection must not
// carry another request. The rest of the body keeps flowing until the
// response body is done and the connection closed, for upstreams that
// stream an answer while they read.
func (w *bodyWriter) answer() (written bool) {
	w.mu.Lock()
	w.answered = true
	w.kc.conn.SetReadDeadline(time.Time{})
	w.mu.Unlock()
	select {
	case err := <-w.done:
		return err == nil
	default:
	}
	if !w.taken.Load() {
		return false
	}
	// The whole body was taken from the client, so the write is at its
	// last flush: an upstream that read it all before answering has the
	// outcome a moment away, and its connection is worth keeping.
	t := time.NewTimer(lastFlushWait)
	defer t.Stop()
	select {
	case err := <-w.done:
		return err == nil
	case <-t.C:
		return false
	}
}

// lastFlushWait bounds how long answer waits for a write that has only
// its last bytes to send.
const lastFlushWait = 100 * time.Millisecond

// failed picks the error of an exchange whose response could not be read:
// the write's, when it failed first (the upstream went away, or reading
// the client's body failed), else the read's.
func (w *bodyWriter) failed(readErr error) error {
	select {
	case err := <-w.done:
		if err != nil {
			return err
		}
	default:
	}
	return readErr
}
