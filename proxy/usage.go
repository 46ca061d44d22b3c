package proxy

import (
	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// wasmStats is implemented by in-process candidates that measure
// themselves (*wasm.Backend).
type wasmStats interface{ Stats() wasm.Stats }

// candidateErrorKind names why a candidate answer was a failure: the kind
// of the upstream error (trap, deadline, connect, ...) or, when the
// candidate did answer, strangler.CandidateErrorStatus.
func candidateErrorKind(err error) string {
	if err == nil {
		return strangler.CandidateErrorStatus
	}
	return shadow.ErrorKind(err)
}

// usageOf is the part of a module's stats the state store keeps.
func usageOf(s wasm.Stats) strangler.CandidateUsage {
	return strangler.CandidateUsage{Module: s.Module, Requests: s.Requests, PeakInstanceBytes: s.PeakMemory,
		PeakInstances: s.PeakInFlight, PeakMemoryBytes: s.PeakLiveMemory}
}

// retireUsage keeps what an in-process candidate leaving the route table
// used, so a module swapped by a config reload still counts.
func (p *Proxy) retireUsage(u *upstream) {
	st, ok := u.rt.(wasmStats)
	if !ok || u.side != strangler.SideCandidate {
		return
	}
	p.usageMu.Lock()
	defer p.usageMu.Unlock()
	if p.retired == nil {
		p.retired = map[string]strangler.CandidateUsage{}
	}
	p.retired[u.service] = p.retired[u.service].Add(usageOf(st.Stats()))
}

// WasmUsage reports, by service, what the in-process candidates have used
// since the proxy started: requests run, the peak linear memory of one
// instance, the most instances at once and the most memory they held
// together. It is the controller's Usage source, persisted on every flush.
func (p *Proxy) WasmUsage() map[string]strangler.CandidateUsage {
	out := map[string]strangler.CandidateUsage{}
	// Retired modules first: Load folds one in only after the table
	// without it is live, so a module is never counted twice.
	p.usageMu.Lock()
	for svc, u := range p.retired {
		out[svc] = u
	}
	p.usageMu.Unlock()
	t := p.table.Load()
	if t == nil {
		return out
	}
	seen := map[*upstream]bool{}
	for _, e := range t.routes {
		c := e.candidate
		if c == nil || seen[c] {
			continue
		}
		seen[c] = true
		if st, ok := c.rt.(wasmStats); ok {
			out[c.service] = out[c.service].Add(usageOf(st.Stats()))
		}
	}
	return out
}
