package strangler

import (
	"fmt"
	"strings"
)

// Mode is where a route's traffic goes.
type Mode string

// The route modes, in promotion order.
const (
	// ModeLegacy: legacy answers; the candidate is not called.
	ModeLegacy Mode = "legacy"
	// ModeShadow: legacy answers; a detached copy goes to the candidate and
	// the two responses are compared.
	ModeShadow Mode = "shadow"
	// ModeCanary: a weighted, sticky share of users is answered by the candidate.
	ModeCanary Mode = "canary"
	// ModeCutover: the candidate answers; legacy may get a reverse shadow copy.
	ModeCutover Mode = "cutover"
	// ModeRetired: the candidate answers and legacy is never called again.
	ModeRetired Mode = "retired"
)

// Modes lists every mode in promotion order.
var Modes = []Mode{ModeLegacy, ModeShadow, ModeCanary, ModeCutover, ModeRetired}

// Valid reports whether m is one of Modes.
func (m Mode) Valid() bool {
	for _, v := range Modes {
		if v == m {
			return true
		}
	}
	return false
}

// Index is m's position in the promotion order (-1 when invalid); it is the
// value of the migrate_route_mode gauge.
func (m Mode) Index() int {
	for i, v := range Modes {
		if v == m {
			return i
		}
	}
	return -1
}

func modeList() string {
	s := make([]string, len(Modes))
	for i, m := range Modes {
		s[i] = string(m)
	}
	return strings.Join(s, ", ")
}

// CheckTransition says whether a route may go from one mode to another:
// forward one step at a time (legacy → shadow → canary → cutover → retired),
// canary → canary to change the weight, and back to legacy from anywhere
// (rollback). Retire is only possible from cutover.
func CheckTransition(from, to Mode) error {
	if !to.Valid() {
		return fmt.Errorf("%q is not a mode; use one of %s", to, modeList())
	}
	if to == ModeLegacy {
		return nil
	}
	if from == ModeCanary && to == ModeCanary {
		return nil
	}
	if from.Index()+1 == to.Index() {
		return nil
	}
	if from == to {
		return fmt.Errorf("already in %s mode", to)
	}
	next := "rollback to legacy"
	if i := from.Index(); i >= 0 && i+1 < len(Modes) {
		next = string(Modes[i+1]) + " or " + next
	}
	return fmt.Errorf("cannot go from %s to %s; from %s the next step is %s", from, to, from, next)
}
