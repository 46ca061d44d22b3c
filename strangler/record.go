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

// sampleRefreshEvery: once a (route, signature) has its SamplesPerSignature
// samples, only one in this many later ones is stored, so the kept examples
// stay fresh without serialising and writing every shadowed request only
// to delete it again.
const sampleRefreshEvery = 100

// sampleQueueBytes bounds the bodies waiting to be written, so large
// responses cannot turn the sample queue into a memory problem.
const sampleQueueBytes = 16 << 20

// sampleWriter batches shadow samples into the store off the request path.
type sampleWriter struct {
	mu      sync.Mutex
	closed  bool
	seen    map[string]uint64 // samples offered per route and signature
	queue   chan signedSample
	queued  atomic.Int64 // body bytes in the queue
	done    chan struct{}
	dropped atomic.Int64
}

// signedSample is a queued sample with its retention signature and size.
type signedSample struct {
	sample shadow.Sample
	sig    string
	size   int64
}

// sampleSize is what a sample's bodies hold in memory.
func sampleSize(s shadow.Sample) int64 {
	return int64(len(s.Request.Body) + len(s.Legacy.Body) + len(s.Candidate.Body))
}

var _ shadow.Recorder = (*Store)(nil)

var _ shadow.SampleFilter = (*Store)(nil)

// Wants implements shadow.SampleFilter: the first SamplesPerSignature
// samples of each route and signature are kept, then one in
// sampleRefreshEvery so the kept examples stay fresh. The mirror asks before
// it redacts, so the samples thinned out here cost nothing more.
func (s *Store) Wants(sample shadow.Sample) bool {
	key := sample.Route + "\x00" + SampleSignature(sample)
	w := s.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.seen[key]
	w.seen[key] = n + 1
	return n < SamplesPerSignature || n%sampleRefreshEvery == 0
}

// Record implements shadow.Recorder: it queues the (already redacted)
// sample and returns at once; a background writer stores samples in
// batches, at most SamplesPerSignature per route and signature. When the
// queue is full (in count or in body bytes) the sample is dropped and
// counted (SamplesDropped).
func (s *Store) Record(sample shadow.Sample) {
	sig := SampleSignature(sample)
	w := s.writer
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.dropped.Add(1)
		return
	}
	size := sampleSize(sample)
	if w.queued.Load()+size > sampleQueueBytes {
		w.dropped.Add(1)
		return
	}
	select {
	case w.queue <- signedSample{sample, sig, size}:
		w.queued.Add(size)
	default:
		w.dropped.Add(1)
	}
}

// SamplesDropped counts samples not stored because the writer fell behind.
func (s *Store) SamplesDropped() int64 { return s.writer.dropped.Load() }

func (s *Store) startWriter() {
	s.writer = &sampleWriter{seen: map[string]uint64{}, queue: make(chan signedSample, 1024), done: make(chan struct{})}
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
		case q, ok := <-w.queue:
			if !ok {
				flush()
				return
			}
			data, err := json.Marshal(q.sample)
			w.queued.Add(-q.size)
			if err != nil {
				w.dropped.Add(1)
				continue
			}
			batch = append(batch, SampleRow{At: q.sample.At, Route: q.sample.Route, Signature: q.sig, Data: data})
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

// baselineSignature prefixes the signature of an A/A baseline sample.
const baselineSignature = "baseline "

// SampleSignature groups samples for retention: "match", the candidate
// error kind, or the sorted unexplained difference signatures; A/A
// baseline samples are kept apart (baselineSignature). Store.Samples picks
// differences by these signatures.
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
		sig = baselineSignature + sig
	}
	return sig
}
