package proxy

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// Mirror takes copies of shadowed requests for comparison; *shadow.Mirror
// implements it. Submit never blocks and returns what became of the copy:
// shadow.OutcomeQueued, shadow.OutcomeDropped, or the policy that skipped it.
type Mirror interface {
	Submit(shadow.Exchange) string
}

var _ Mirror = (*shadow.Mirror)(nil)

// shedder is a Mirror that can say, before a read on a route is served,
// that its copy would be dropped (*shadow.Mirror.Shed): the relay then
// serves that read as a legacy one.
type shedder interface {
	Shed(route string, opts *shadow.Options) bool
}

var _ shedder = (*shadow.Mirror)(nil)

// observedBackend counts reverse-shadow copies to legacy in the route's
// live legacy figures (requests, errors, latency through the end of the
// body), so a cut-over route keeps legacy's side comparable until it is
// retired.
type observedBackend struct {
	to   Backend
	live *strangler.Route
}

// RoundTrip sends the copy and counts it when its body is closed.
func (o observedBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := o.to.RoundTrip(r)
	if err != nil {
		o.live.Observe(strangler.SideLegacy, time.Since(start), true)
		return nil, err
	}
	resp.Body = &observedBody{ReadCloser: resp.Body, start: start, failed: resp.StatusCode >= 500, o: o}
	return resp, nil
}

// observedBody records the exchange once, when the reader is done with it.
type observedBody struct {
	io.ReadCloser
	start  time.Time
	failed bool
	o      observedBackend
	once   sync.Once
}

func (b *observedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		b.failed = true
	}
	return n, err
}

func (b *observedBody) Close() error {
	b.once.Do(func() { b.o.live.Observe(strangler.SideLegacy, time.Since(b.start), b.failed) })
	return b.ReadCloser.Close()
}
