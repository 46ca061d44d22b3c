package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// CounterKindUsage is the kind of the counter documents holding in-process
// candidates' resource use (a CandidateUsage). Unlike the other kinds they
// are keyed by service, not route: one module serves all of a service's
// routes. Service names never contain the space every route name has, so
// the two cannot collide in the counters table.
const CounterKindUsage = "wasm"

// CandidateUsage is what a service's in-process Wasm candidate used, as the
// proxy measured it (proxy/wasm's Stats) and the controller persists it on
// every flush. Counts add up across proxy restarts and module reloads;
// peaks are the highest seen in any of them.
type CandidateUsage struct {
	// Module is the module file last measured.
	Module string `json:"module,omitempty"`
	// Requests counts the requests the module ran for (served and shadow
	// copies alike).
	Requests uint64 `json:"requests"`
	// PeakInstanceBytes is the most linear memory one instance used.
	PeakInstanceBytes uint64 `json:"peakInstanceBytes"`
	// PeakInstances is the most instances that ran at once.
	PeakInstances int64 `json:"peakInstances"`
	// PeakMemoryBytes is the most linear memory the running instances held
	// together at one moment: what the candidate actually used, at most
	// PeakInstanceBytes × PeakInstances.
	PeakMemoryBytes uint64 `json:"peakMemoryBytes"`
}

// Add combines usage measured over two periods: counts add, peaks take
// the higher.
func (u CandidateUsage) Add(o CandidateUsage) CandidateUsage {
	if o.Module != "" {
		u.Module = o.Module
	}
	u.Requests += o.Requests
	u.PeakInstanceBytes = max(u.PeakInstanceBytes, o.PeakInstanceBytes)
	u.PeakInstances = max(u.PeakInstances, o.PeakInstances)
	u.PeakMemoryBytes = max(u.PeakMemoryBytes, o.PeakMemoryBytes)
	return u
}

// usageRows turns the usage of this process (on top of what earlier ones
// stored, base) into counter documents.
func usageRows(base, now map[string]CandidateUsage) ([]CounterRow, error) {
	var rows []CounterRow
	for svc, u := range now {
		data, err := json.Marshal(base[svc].Add(u))
		if err != nil {
			return nil, fmt.Errorf("save wasm usage of %s: %w", svc, err)
		}
		rows = append(rows, CounterRow{Route: svc, Kind: CounterKindUsage, Data: data})
	}
	return rows, nil
}

// usageDocs reads the usage documents out of LoadCounters' result. An
// unreadable document is left out and reported; the others are returned.
func usageDocs(counters map[string]map[string]json.RawMessage) (map[string]CandidateUsage, error) {
	out := map[string]CandidateUsage{}
	var errs []error
	for key, kinds := range counters {
		raw, ok := kinds[CounterKindUsage]
		if !ok {
			continue
		}
		var u CandidateUsage
		if err := json.Unmarshal(raw, &u); err != nil {
			errs = append(errs, fmt.Errorf("read wasm usage of %s from the state store: %w", key, err))
			continue
		}
		out[key] = u
	}
	return out, errors.Join(errs...)
}

// LoadCandidateUsage reads the stored usage of every in-process candidate,
// by service. A store the proxy never flushed usage to gives an empty map;
// with an unreadable document it returns the others and an error.
func (s *Store) LoadCandidateUsage(ctx context.Context) (map[string]CandidateUsage, error) {
	counters, err := s.LoadCounters(ctx)
	if err != nil {
		return nil, err
	}
	return usageDocs(counters)
}
