package shadow

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Noise is what a route's legacy service does differently from itself: the
// differences seen when the same request is answered twice by legacy (A/A).
// Differences at the same signature in a legacy-vs-candidate comparison are
// classified as noise instead of mismatches. Noise is safe for concurrent
// use and JSON-serialisable so the store can persist it.
type Noise struct {
	mu sync.RWMutex
	// Fields maps a signature ("/*/orderNumber value", "@header/etag header",
	// "/ order") to how often A/A samples showed it.
	Fields map[string]*NoiseCount `json:"fields,omitempty"`
	// Lines maps masked text lines ("Order Number <uuid> Placed
	// Successfully") that differed A/A.
	Lines map[string]*NoiseCount `json:"lines,omitempty"`
	// Baselines is the number of A/A samples learned from.
	Baselines uint64 `json:"baselines"`
	// Quiet counts consecutive A/A samples that taught nothing new; the mask
	// is stable once Quiet reaches the learner's threshold.
	Quiet int `json:"quiet"`
	// Unstable counts A/A differences that are never learned as noise
	// (status, size, missing, extra): legacy answering the same request
	// differently in shape means its data moved, and hiding that would hide
	// real candidate bugs.
	Unstable uint64 `json:"unstable,omitempty"`
	// LastBaseline is when the last A/A sample was learned.
	LastBaseline time.Time `json:"lastBaseline,omitzero"`

	calls atomic.Uint64
	gen   atomic.Uint64 // bumped by Learn; invalidates cache
	cache atomic.Pointer[noiseView]
}

// NoiseCount is how often one noisy difference was seen, with its shape.
type NoiseCount struct {
	Count uint64    `json:"count"`
	Shape string    `json:"shape,omitempty"`
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
}

// Baseline scheduling: learn until StableAfter consecutive A/A samples add
// nothing, then re-check one request in ResumeEvery or after ResumeAfter.
const (
	DefaultStableAfter = 20
	minBaselines       = 5
	resumeEvery        = 200
	resumeAfter        = 10 * time.Minute
)

// NewNoise returns an empty noise mask.
func NewNoise() *Noise {
	return &Noise{Fields: map[string]*NoiseCount{}, Lines: map[string]*NoiseCount{}}
}

// Stable reports whether the mask has stopped changing: at least
// stableAfter consecutive A/A samples added no new noisy difference.
func (n *Noise) Stable(stableAfter int) bool {
	if n == nil {
		return false
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.Baselines >= minBaselines && n.Quiet >= stableAfter
}

// WantBaseline decides whether this request should also be sent to legacy a
// second time: always while the mask is still changing, then only now and
// then (1 in 200 requests, or after 10 quiet minutes) to notice new noise.
func (n *Noise) WantBaseline(now time.Time, stableAfter int) bool {
	if n == nil {
		return false
	}
	if stableAfter <= 0 {
		stableAfter = DefaultStableAfter
	}
	c := n.calls.Add(1)
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.Baselines < minBaselines || n.Quiet < stableAfter {
		return true
	}
	return c%resumeEvery == 0 || now.Sub(n.LastBaseline) > resumeAfter
}

// learnable says which A/A differences become noise.
func learnable(d *Difference) bool {
	switch d.Type {
	case DiffValue, DiffType, DiffHeader, DiffOrder, DiffContentType:
		return true
	case DiffLine:
		return d.Shape == "masked"
	}
	return false
}

// Learn folds one A/A result (legacy compared with itself) into the mask and
// returns how many new noisy differences it added.
func (n *Noise) Learn(res Result, at time.Time) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.Fields == nil {
		n.Fields = map[string]*NoiseCount{}
	}
	if n.Lines == nil {
		n.Lines = map[string]*NoiseCount{}
	}
	added := 0
	bump := func(m map[string]*NoiseCount, key, shape string) {
		c, ok := m[key]
		if !ok {
			c = &NoiseCount{First: at, Shape: shape}
			m[key] = c
			added++
		}
		c.Count++
		c.Last = at
	}
	for i := range res.Differences {
		d := &res.Differences[i]
		if !learnable(d) {
			n.Unstable++
			continue
		}
		if d.Type == DiffLine {
			bump(n.Lines, d.Template, d.Shape)
			continue
		}
		bump(n.Fields, d.Signature, d.Shape)
	}
	n.Baselines++
	n.LastBaseline = at
	if added > 0 {
		n.Quiet = 0
		n.gen.Add(1)
	} else {
		n.Quiet++
	}
	return added
}

// Clone returns an independent copy (for persisting while learning goes on).
func (n *Noise) Clone() *Noise {
	if n == nil {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	c := &Noise{Fields: make(map[string]*NoiseCount, len(n.Fields)), Lines: make(map[string]*NoiseCount, len(n.Lines)),
		Baselines: n.Baselines, Quiet: n.Quiet, Unstable: n.Unstable, LastBaseline: n.LastBaseline}
	for k, v := range n.Fields {
		vv := *v
		c.Fields[k] = &vv
	}
	for k, v := range n.Lines {
		vv := *v
		c.Lines[k] = &vv
	}
	return c
}

// Suggestion is an ignore rule for a route's shadow block, derived from
// learned noise, with the evidence behind it.
type Suggestion struct {
	// Key is the shadow option to add the value to: ignore, ignoreHeaders,
	// unordered or ignoreLines.
	Key   string `json:"key"`
	Value string `json:"value"`
	// Count is how many A/A samples showed the difference; Shape its shape.
	Count uint64 `json:"count"`
	Shape string `json:"shape,omitempty"`
}

// String renders the suggestion as a YAML line a user can paste.
func (s Suggestion) String() string {
	line := fmt.Sprintf("%s: [%q]  # differed in %s", s.Key, s.Value, plural(int(s.Count), "legacy-vs-legacy sample"))
	if s.Shape != "" {
		line += " (" + s.Shape + ")"
	}
	return line
}

// Suggestions turns the learned mask into ignore rules, most frequent first.
func (n *Noise) Suggestions() []Suggestion {
	if n == nil {
		return nil
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []Suggestion
	seen := map[string]bool{}
	for sig, c := range n.Fields {
		path, typ := SplitSignature(sig)
		s := Suggestion{Count: c.Count, Shape: c.Shape}
		switch {
		case strings.HasPrefix(path, "@header/"):
			s.Key, s.Value = "ignoreHeaders", strings.TrimPrefix(path, "@header/")
		case typ == DiffOrder:
			s.Key, s.Value = "unordered", path
		case strings.HasPrefix(path, "@"):
			continue
		default:
			s.Key, s.Value = "ignore", path
		}
		if seen[s.Key+s.Value] {
			continue
		}
		seen[s.Key+s.Value] = true
		out = append(out, s)
	}
	for t, c := range n.Lines {
		out = append(out, Suggestion{Key: "ignoreLines", Value: templateRegexp(t), Count: c.Count, Shape: c.Shape})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Key+out[i].Value < out[j].Key+out[j].Value
	})
	return out
}

// SplitSignature splits a difference signature ("/*/price value") into its
// path and its difference type, at the last space.
func SplitSignature(sig string) (path, typ string) {
	i := strings.LastIndexByte(sig, ' ')
	if i < 0 {
		return sig, ""
	}
	return sig[:i], sig[i+1:]
}

// Has reports whether a difference signature is learned noise.
func (n *Noise) Has(signature string) bool { return n.view().has(signature) }

// noiseView is an immutable snapshot of the mask, rebuilt only when Learn
// adds something, so Compare reads it without locks.
type noiseView struct {
	gen    uint64
	fields map[string]bool
	lines  map[string]bool
	values []pattern // paths of learned value/type noise, for structural hashing
}

func (n *Noise) view() *noiseView {
	if n == nil {
		return nil
	}
	if v := n.cache.Load(); v != nil && v.gen == n.gen.Load() {
		return v
	}
	n.mu.RLock()
	v := &noiseView{gen: n.gen.Load(), fields: make(map[string]bool, len(n.Fields)), lines: make(map[string]bool, len(n.Lines))}
	for sig := range n.Fields {
		v.fields[sig] = true
		path, typ := SplitSignature(sig)
		if (typ == DiffValue || typ == DiffType) && !strings.HasPrefix(path, "@") {
			if p, err := parsePattern(path); err == nil {
				v.values = append(v.values, p)
			}
		}
	}
	for t := range n.Lines {
		v.lines[t] = true
	}
	n.mu.RUnlock()
	n.cache.Store(v)
	return v
}

func (v *noiseView) has(sig string) bool {
	return v != nil && v.fields[sig]
}

func (v *noiseView) hasLine(t string) bool {
	return v != nil && v.lines[t]
}

// valueNoise reports whether the path holds learned value noise, which
// structural hashing leaves out so noisy elements of unordered arrays still
// pair up.
func (v *noiseView) valueNoise(segs []string) bool {
	if v == nil {
		return false
	}
	for _, p := range v.values {
		if p.matches(segs) {
			return true
		}
	}
	return false
}
