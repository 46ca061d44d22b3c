package strangler

import (
	"fmt"
	"strings"
	"testing"
)

func TestMatcher(t *testing.T) {
	routes := []string{
		"GET /api/order",
		"POST /api/order",
		"GET /api/order/{id}",
		"GET /api/order/latest",
		"GET /api/order/{id}/items/{item}",
		"GET /api/{kind}/summary",
		"GET /api/{kind}/latest/feed",
		"GET /files/{name}.json",
		"GET /files/{name}",
		"GET /",
		"DELETE /api/order/{id}",
	}
	m, err := NewMatcher(routes)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/api/order", "GET /api/order"},
		{"POST", "/api/order", "POST /api/order"},
		{"PUT", "/api/order", ""},
		{"GET", "/api/order/42", "GET /api/order/{id}"},
		{"GET", "/api/order/latest", "GET /api/order/latest"}, // literal beats param
		{"GET", "/api/order/42/items/7", "GET /api/order/{id}/items/{item}"},
		{"GET", "/api/order/summary", "GET /api/order/{id}"}, // the earlier literal wins
		{"GET", "/api/product/summary", "GET /api/{kind}/summary"},
		{"GET", "/api/order/latest/feed", "GET /api/{kind}/latest/feed"}, // backtracks from the literal branch
		{"GET", "/api/order/", ""},                                       // a param never matches ""
		{"GET", "/api/order/42/", ""},
		{"GET", "/files/report.json", "GET /files/{name}.json"}, // partial beats whole-segment param
		{"GET", "/files/report.csv", "GET /files/{name}"},
		{"GET", "/files/.json", "GET /files/{name}"}, // {name} must not be empty
		{"GET", "/", "GET /"},
		{"HEAD", "/api/order/42", "GET /api/order/{id}"}, // HEAD falls back to GET
		{"DELETE", "/api/order/42", "DELETE /api/order/{id}"},
		{"GET", "", ""},
		{"GET", "api/order", ""},
		{"GET", "/api/order%2F42", ""},
		{"GET", "/API/ORDER", ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			got := ""
			if i := m.Match(tt.method, tt.path); i >= 0 {
				got = m.Name(i)
			}
			if got != tt.want {
				t.Fatalf("Match(%s %s) = %q, want %q", tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestMatcherRejects(t *testing.T) {
	for _, routes := range [][]string{
		{"GET /a/{x}", "GET /a/{y}"},
		{"GET /a", "GET /a"},
		{"GET /a/{x}{y}"},
		{"GET /a/{}"},
		{"GET /a/x}"},
		{"GET"},
	} {
		if _, err := NewMatcher(routes); err == nil {
			t.Errorf("NewMatcher(%q) accepted", routes)
		}
	}
}

func TestMatcherDoesNotAllocate(t *testing.T) {
	m, _ := NewMatcher(syntheticRoutes(500))
	allocs := testing.AllocsPerRun(100, func() { m.Match("GET", "/api/svc17/things/123/parts/9") })
	if allocs != 0 {
		t.Fatalf("Match allocates %v times", allocs)
	}
}

// syntheticRoutes builds n realistic routes: 50 services, each with the
// usual collection, item and sub-resource operations.
func syntheticRoutes(n int) []string {
	var out []string
	shapes := []string{
		"GET /api/svc%d/things", "POST /api/svc%d/things", "GET /api/svc%d/things/{id}",
		"PUT /api/svc%d/things/{id}", "DELETE /api/svc%d/things/{id}", "GET /api/svc%d/things/{id}/parts",
		"GET /api/svc%d/things/{id}/parts/{part}", "GET /api/svc%d/things/search",
		"GET /api/svc%d/reports/{year}/{month}.json", "GET /api/svc%d/health",
	}
	for i := 0; len(out) < n; i++ {
		out = append(out, fmt.Sprintf(shapes[i%len(shapes)], i/len(shapes)))
	}
	return out
}

func BenchmarkMatch500(b *testing.B) {
	m, err := NewMatcher(syntheticRoutes(500))
	if err != nil {
		b.Fatal(err)
	}
	paths := []struct{ method, path string }{
		{"GET", "/api/svc17/things/123/parts/9"},
		{"GET", "/api/svc42/things/search"},
		{"POST", "/api/svc3/things"},
		{"GET", "/api/svc49/reports/2024/07.json"},
		{"GET", "/api/svc99/unknown"},
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p := paths[i%len(paths)]
		m.Match(p.method, p.path)
	}
}

func FuzzMatcher(f *testing.F) {
	f.Add("GET /api/order/{id}", "GET", "/api/order/42")
	f.Add("GET /files/{name}.json", "GET", "/files/a.json")
	f.Add("POST /", "POST", "/")
	f.Fuzz(func(t *testing.T, route, method, path string) {
		m, err := NewMatcher([]string{route, "GET /api/order/latest"})
		if err != nil {
			return
		}
		i := m.Match(method, path)
		if i < -1 || i >= m.Len() {
			t.Fatalf("index %d out of range", i)
		}
		// A route's own template, with params filled in, must match it (or
		// the more specific literal route).
		rm, rp, _ := SplitRouteName(route)
		concrete := fillParams(rp)
		if j := m.Match(rm, concrete); j < 0 {
			t.Fatalf("route %q does not match its own instance %q", route, concrete)
		}
	})
}

func fillParams(template string) string {
	var b strings.Builder
	depth := 0
	for i := 0; i < len(template); i++ {
		switch c := template[i]; {
		case c == '{':
			depth++
			b.WriteString("x")
		case c == '}':
			depth--
		case depth == 0:
			b.WriteByte(c)
		}
	}
	return b.String()
}
