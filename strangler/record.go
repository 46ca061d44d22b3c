package strangler

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// SamplesPerSignature is how many samples the store keeps per route and
// difference signature: enough to show a reviewer every kind of
// difference with a few examples, bounded however long shadowing runs.
const SamplesPerSignature = 20

// sampleWriter batches shadow samples into the store off the request path.
type sampleWriter struct {
	mu      sync.Mutex
	closed  bool
	queue   chan shadow.Sample
	done    chan struct{}
	dropped atomic.Int64
}

var _ shadow.Recorder = (*Store)(nil)

// Record implements shadow.Recorder: it queues the (already redacted)
// sample and returns at once; a background writer stores samples in
// batches, at most SamplesPerSignature per route and signature. When the
// queue is full the sample is dropped and counted (SamplesDropped).
func (s *Store) Record(sample shadow.Sample) {
	w := s.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- sample:
	default:
		w.dropped.Add(1)
	}
}

// SamplesDropped counts samples not stored because the writer fell behind.
func (s *Store) SamplesDropped() int64 { return s.writer.dropped.Load() }

func (s *Store) startWriter() {
	s.writer = &sampleWriter{queue: make(chan shadow.Sample, 1024), done: make(chan struct{})}
	go s.writeSamples()
}

func (s *Store) writeSamples() {
	w := s.writer
	defer close(w.done)
	batch := make([]SampleRow, 0, 64)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = s.AddSamples(ctx, batch, SamplesPerSignature)
		cancel()
		batch = batch[:0]
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case smp, ok := <-w.queue:
			if !ok {
				flush()
				return
			}
			data, err := json.Marshal(smp)
			if err != nil {
				w.dropped.Add(1)
				continue
			}
			batch = append(batch, SampleRow{At: smp.At, Route: smp.Route, Signature: SampleSignature(smp), Data: data})
			if len(batch) == cap(batch) {
				flush()
			}
		case <-tick.C:
			flush()
		}
	}
}

func (s *Store) stopWriter() {
	w := s.writer
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	<-w.done
}

// SampleSignature groups samples for retention: "match", the candidate
// error kind, or the sorted unexplained difference signatures; A/A
// baseline samples are kept apart.
func SampleSignature(s shadow.Sample) string {
	var sig string
	switch {
	case s.Result.Error != "":
		sig = s.Result.Outcome + ":" + s.Result.Error
	default:
		if sigs := s.Result.Signatures(); len(sigs) > 0 {
			sig = strings.Join(sigs, ", ")
		} else {
			sig = s.Result.Outcome
		}
	}
	if s.Baseline {
		sig = "baseline " + sig
	}
	return sig
}
