package strangler_test

import (
	"fmt"

	"github.com/strangler-fig/migrate/strangler"
)

// Literal segments win over {params}, so a dedicated route for
// /api/order/latest can be cut over on its own.
func ExampleMatcher() {
	m, err := strangler.NewMatcher([]string{
		"GET /api/order/{id}",
		"GET /api/order/latest",
		"POST /api/order",
	})
	if err != nil {
		panic(err)
	}
	for _, req := range [][2]string{{"GET", "/api/order/42"}, {"GET", "/api/order/latest"}, {"DELETE", "/api/order/42"}} {
		if i := m.Match(req[0], req[1]); i >= 0 {
			fmt.Printf("%s %s → %s\n", req[0], req[1], m.Name(i))
		} else {
			fmt.Printf("%s %s → default route\n", req[0], req[1])
		}
	}
	// Output:
	// GET /api/order/42 → GET /api/order/{id}
	// GET /api/order/latest → GET /api/order/latest
	// DELETE /api/order/42 → default route
}

// A route moves forward one step at a time (from shadow it may go straight
// to cutover) and can always go back to legacy.
func ExampleCheckTransition() {
	fmt.Println(strangler.CheckTransition(strangler.ModeShadow, strangler.ModeCanary))
	fmt.Println(strangler.CheckTransition(strangler.ModeLegacy, strangler.ModeCutover))
	fmt.Println(strangler.CheckTransition(strangler.ModeRetired, strangler.ModeLegacy))
	// Output:
	// <nil>
	// cannot go from legacy to cutover; from legacy the next step is shadow
	// <nil>
}
