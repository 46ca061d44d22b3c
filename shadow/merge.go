package shadow

import "sort"

// Merge adds other's evidence into e, as if e had seen other's samples too:
// the same route compared by another proxy replica. Counters and histograms
// add; classes with the same signatures become one; the timelines add
// minute by minute. The recent window takes other's outcomes after e's
// own, since the two replicas' samples interleave in an order neither
// knows.
func (e *Evidence) Merge(other *Evidence) {
	if other == nil {
		return
	}
	e.Samples += other.Samples
	e.Matches += other.Matches
	e.Mismatches += other.Mismatches
	e.NoiseOnly += other.NoiseOnly
	e.LegacyErrors += other.LegacyErrors
	e.SkippedWrites += other.SkippedWrites
	e.Drops += other.Drops
	e.RateLimited += other.RateLimited
	e.BreakerOpen += other.BreakerOpen
	e.Baselines += other.Baselines
	e.CallsCompared += other.CallsCompared
	e.SideEffects += other.SideEffects
	e.CallsWrote += other.CallsWrote
	e.CandidateErrors = addCounts(e.CandidateErrors, other.CandidateErrors)
	e.Signatures = addCounts(e.Signatures, other.Signatures)
	e.Noise = addCounts(e.Noise, other.Noise)
	e.Legacy.merge(&other.Legacy)
	e.Candidate.merge(&other.Candidate)

	// Class ids are per replica; other's window codes name other's ids.
	ids := map[int32]int32{}
	for _, oc := range other.Classes {
		c := e.class(oc.Signatures, oc.First)
		c.Count += oc.Count - 1 // class() counted one
		if oc.First.Before(c.First) {
			c.First = oc.First
		}
		if oc.Last.After(c.Last) {
			c.Last = oc.Last
		}
		ids[int32(oc.ID)] = int32(c.ID)
	}
	if e.Recent.Size == 0 {
		e.Recent = NewWindow(max(other.Recent.Size, DefaultWindow))
	}
	other.Recent.Each(func(code int32) {
		if code > 0 {
			code = ids[code]
		}
		e.Recent.Push(code)
	})

	e.Timeline = mergeSeries(e.Timeline, other.Timeline, maxMinutes)
	e.Seconds = mergeSeries(e.Seconds, other.Seconds, maxSeconds)
	if !other.First.IsZero() && (e.First.IsZero() || other.First.Before(e.First)) {
		e.First = other.First
	}
	if other.Last.After(e.Last) {
		e.Last = other.Last
	}
}

func addCounts(into, from map[string]uint64) map[string]uint64 {
	if len(from) == 0 {
		return into
	}
	if into == nil {
		into = make(map[string]uint64, len(from))
	}
	for k, n := range from {
		if _, ok := into[k]; !ok && len(into) >= maxSignatures {
			k = overflowKey
		}
		into[k] += n
	}
	return into
}

func (h *Histogram) merge(o *Histogram) {
	h.Count += o.Count
	h.SumUS += o.SumUS
	h.MaxUS = max(h.MaxUS, o.MaxUS)
	for i := range h.Counts {
		h.Counts[i] += o.Counts[i]
	}
}

// mergeSeries adds two timelines interval by interval, keeping the newest limit.
func mergeSeries(a, b []Minute, limit int) []Minute {
	if len(b) == 0 {
		return a
	}
	out := make([]Minute, 0, len(a)+len(b)) // never grows: the pointers below stay valid
	byStart := make(map[int64]*Minute, len(a)+len(b))
	for _, ms := range [][]Minute{a, b} {
		for _, m := range ms {
			if have, ok := byStart[m.Start.UnixNano()]; ok {
				have.Samples += m.Samples
				have.Matches += m.Matches
				have.Errors += m.Errors
				continue
			}
			out = append(out, m)
			byStart[m.Start.UnixNano()] = &out[len(out)-1]
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}
