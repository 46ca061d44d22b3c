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

// NextModes lists the modes a route in from may go to: one step forward,
// from shadow also straight to cutover (gated on the shadow evidence, as
// Argo Rollouts' promote --full skips the remaining canary steps), another
// canary weight, and back to legacy (rollback) from anywhere but legacy.
func NextModes(from Mode) []Mode {
	switch from {
	case ModeLegacy:
		return []Mode{ModeShadow}
	case ModeShadow:
		return []Mode{ModeCanary, ModeCutover, ModeLegacy}
	case ModeCanary:
		return []Mode{ModeCanary, ModeCutover, ModeLegacy}
	case ModeCutover:
		return []Mode{ModeRetired, ModeLegacy}
	case ModeRetired:
		return []Mode{ModeLegacy}
	}
	return nil
}

// CheckTransition says whether a route may go from one mode to another
// (NextModes). Every promotion it allows is still subject to the route's
// gate; rollback to legacy never is.
func CheckTransition(from, to Mode) error {
	if !to.Valid() {
		return fmt.Errorf("%q is not a mode; use one of %s", to, modeList())
	}
	if from == to && to != ModeCanary {
		return fmt.Errorf("already in %s mode", to)
	}
	next := NextModes(from)
	for _, m := range next {
		if m == to {
			return nil
		}
	}
	if !from.Valid() {
		return fmt.Errorf("cannot go from %q to %s: %q is not a mode", from, to, from)
	}
	return fmt.Errorf("cannot go from %s to %s; from %s the next step is %s", from, to, from, stepsHint(from, next))
}

// stepsHint names the allowed moves in words: "canary or cutover, or
// rollback to legacy".
func stepsHint(from Mode, next []Mode) string {
	var fwd []string
	back := false
	for _, m := range next {
		switch {
		case m == ModeLegacy:
			back = true
		case m == from:
			fwd = append(fwd, "another canary weight")
		default:
			fwd = append(fwd, string(m))
		}
	}
	s := strings.Join(fwd, " or ")
	if back {
		if s != "" {
			s += ", or "
		}
		s += "rollback to legacy"
	}
	return s
}
