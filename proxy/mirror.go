package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// Mirror takes copies of shadowed requests for comparison; *shadow.Mirror
// implements it. Submit never blocks; false means the copy was dropped.
type Mirror interface {
	Submit(shadow.Exchange) bool
}

var _ Mirror = (*shadow.Mirror)(nil)

// reversePool sends reverse-shadow copies (cutover mode) to legacy on a
// bounded worker pool and records legacy's status and latency. Legacy's
// answer is not what the client got, so there is nothing to compare; the
// copy keeps the old side warm and its latency comparable until retirement.
type reversePool struct {
	queue  chan reverseCopy
	wg     sync.WaitGroup
	logger *slog.Logger
	mu     sync.RWMutex
	closed bool
}

type reverseCopy struct {
	req  *http.Request
	body []byte
	to   Backend
	live *strangler.Route
}

func newReversePool(workers, queue int, logger *slog.Logger) *reversePool {
	p := &reversePool{queue: make(chan reverseCopy, queue), logger: logger}
	for range workers {
		p.wg.Add(1)
		go p.work()
	}
	return p
}

// submit queues a copy unless the pool is full or closed.
func (p *reversePool) submit(c reverseCopy) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return false
	}
	select {
	case p.queue <- c:
		return true
	default:
		return false
	}
}

func (p *reversePool) work() {
	defer p.wg.Done()
	for c := range p.queue {
		p.send(c)
	}
}

func (p *reversePool) send(c reverseCopy) {
	ctx, cancel := context.WithTimeout(c.req.Context(), 30*time.Second)
	defer cancel()
	req := c.req.WithContext(ctx)
	req.Body = io.NopCloser(bytes.NewReader(c.body))
	start := time.Now()
	resp, err := c.to.RoundTrip(req)
	if err == nil {
		_, err = drain(resp.Body, 64<<20)
	}
	failed := err != nil || resp.StatusCode >= 500
	c.live.Observe(strangler.SideLegacy, time.Since(start), failed)
	if err != nil {
		p.logger.Debug("reverse shadow copy failed", "route", c.live.Name, "err", err)
	}
}

// close stops taking copies and waits for those queued, until ctx ends.
func (p *reversePool) close(ctx context.Context) error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
