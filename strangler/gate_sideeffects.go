package strangler

import (
	"fmt"
	"sort"
	"strings"

	"github.com/strangler-fig/migrate/shadow"
)

// sideEffectCriteria fails a cutover whose candidate, in shadow, wrote to
// the rest of the fleet differently from legacy (a write legacy did not
// make, or one it left out): whatever the match ratio, such a candidate
// would corrupt another service's data once it answers for real. It
// appears only for routes whose outbound calls were compared on both
// sides (an in-process candidate, legacy calling through the proxy) and
// where either side made an outbound write: a route that only reads, or
// calls nothing, has no side effect to vouch for, and a passing line on
// every in-process route would bury the ones that matter. The report
// shows the same criteria (it evaluates the same gate).
func sideEffectCriteria(route string, ev *shadow.Evidence, sum *shadow.Summary) []Criterion {
	if sum == nil || sum.CallsCompared == 0 || sum.CallsWrote == 0 && sum.SideEffects == 0 {
		return nil
	}
	const name, want = "side effects", "outbound writes as legacy's, in every sample"
	if sum.SideEffects == 0 {
		return []Criterion{pass(name, want, fmt.Sprintf("as legacy's in %d samples, %d of them with writes", sum.CallsCompared, sum.CallsWrote))}
	}
	var calls []string
	if ev != nil {
		for sig := range ev.Signatures {
			if path, typ := shadow.SplitSignature(sig); typ == shadow.DiffSideEffect {
				calls = append(calls, strings.TrimPrefix(path, "@call/"))
			}
		}
	}
	sort.Strings(calls)
	got := fmt.Sprintf("%d of %d samples wrote differently", sum.SideEffects, sum.CallsCompared)
	if len(calls) > 0 {
		if len(calls) > 3 {
			calls = append(calls[:3], "…")
		}
		got += ": " + strings.Join(calls, ", ")
	}
	c := miss(name, want, got, fmt.Sprintf("+%d sample(s)", sum.SideEffects), false)
	c.Hint = fmt.Sprintf("make the candidate call the rest of the fleet as legacy does: each side's calls are in migrate diffs '%s'", route)
	return []Criterion{c}
}
