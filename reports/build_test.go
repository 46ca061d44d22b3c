package reports

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/strangler-fig/migrate/analyze"
)

func TestRouteStatus(t *testing.T) {
	ms := time.Millisecond
	good := func() *Evidence {
		return &Evidence{Samples: 2000, Matches: 2000,
			Legacy: Latency{P99: 10 * ms}, Candidate: Latency{P99: 12 * ms}}
	}
	cases := []struct {
		name string
		rt   Route
		want string
	}{
		{"legacy without evidence", Route{Mode: "legacy"}, StatusNotStarted},
		{"empty mode is legacy", Route{}, StatusNotStarted},
		{"shadow without evidence", Route{Mode: "shadow"}, StatusCollecting},
		{"cutover", Route{Mode: "cutover", Evidence: &Evidence{}}, StatusCutover},
		{"retired", Route{Mode: "retired"}, StatusRetired},
		{"all criteria pass", Route{Mode: "shadow", Evidence: good()}, StatusReady},
		{"only samples short", Route{Mode: "shadow", Evidence: func() *Evidence { e := good(); e.Samples, e.Matches = 10, 10; return e }()}, StatusCollecting},
		{"match fails", Route{Mode: "shadow", Evidence: func() *Evidence { e := good(); e.Matches = 1990; e.Mismatches = 10; return e }()}, StatusBlocked},
		{"p99 ratio fails", Route{Mode: "canary", Evidence: func() *Evidence { e := good(); e.Candidate.P99 = 16 * ms; return e }()}, StatusBlocked},
		{"p99 unknown blocks", Route{Mode: "shadow", Evidence: func() *Evidence { e := good(); e.Legacy.P99 = 0; return e }()}, StatusBlocked},
		{"errors fail", Route{Mode: "shadow", Evidence: func() *Evidence {
			e := good()
			e.Matches = 1997
			e.CandidateErrors = map[string]int64{"trap": 3}
			return e
		}()}, StatusBlocked},
		{"route gate relaxes", Route{Mode: "shadow", Gate: &Gate{MinSamples: 5}, Evidence: func() *Evidence { e := good(); e.Samples, e.Matches = 10, 7; return e }()}, StatusReady},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rr := buildRoute(tc.rt, Options{}.withDefaults())
			if rr.Status != tc.want {
				t.Fatalf("status = %s, want %s (checks %+v)", rr.Status, tc.want, rr.Checks)
			}
		})
	}
}

func TestCheckDetailSaysByHowMuch(t *testing.T) {
	r := sampleReport()
	var blocked *Blocked
	for i := range r.Summary.Blocked {
		if r.Summary.Blocked[i].Route == "POST /api/order" {
			blocked = &r.Summary.Blocked[i]
		}
	}
	if blocked == nil {
		t.Fatalf("POST /api/order is not blocked: %+v", r.Summary.Blocked)
	}
	want := map[string]string{
		"match":     "match 97.5% < 99.9%, 2.4 pp short",
		"p99Ratio":  "p99 ratio 1.61× > 1.50×, 0.11× over; p99 71.0 ms Wasm vs 44.0 ms legacy",
		"errorRate": "errors 0.3% > 0.1%, 0.2 pp over",
	}
	if len(blocked.Failed) != len(want) {
		t.Fatalf("failed checks = %+v, want %d", blocked.Failed, len(want))
	}
	for _, c := range blocked.Failed {
		if c.Detail != want[c.Name] {
			t.Errorf("%s detail = %q, want %q", c.Name, c.Detail, want[c.Name])
		}
	}
}

func TestNextSteps(t *testing.T) {
	r := sampleReport()
	var texts []string
	for _, s := range r.Summary.NextSteps {
		texts = append(texts, s.Action+": "+s.Text)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		"fix-differences: Fix the 2 difference classes on POST /api/order",
		"collect-samples: Collect 600 more samples on GET /api/inventory",
		"resolve-finding: Resolve mandatory finding KAFKA-CONSUMER in notification-service",
		"fix-errors: Fix the candidate errors on POST /api/order: 6 deadline, 2 trap",
		"reduce-latency: Reduce the Wasm candidate's p99 latency on POST /api/order",
		"cutover: Cut over POST /api/product: the canary at 25% clears its gate",
		"start-shadow: Start shadowing GET /api/order in order-service",
		"add-ignore-rules: Add the learned ignore rules to the shadow config of GET /api/inventory: /*/lastChecked",
		"add-routes: Add the routes of notification-service",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("next steps lack %q; got:\n%s", want, all)
		}
	}
	// Fixes for blocked routes come before everything else.
	if r.Summary.NextSteps[0].Action != "fix-differences" {
		t.Errorf("first step = %s, want fix-differences", r.Summary.NextSteps[0].Action)
	}
	// A cut-over route gets no step even though it has learned noise.
	if strings.Contains(all, "GET /api/product:") || strings.Contains(all, "of GET /api/product") {
		t.Errorf("a cut-over route got a next step:\n%s", all)
	}
}

func TestTimelineSortedWithGateNumbers(t *testing.T) {
	r := sampleReport()
	var order RouteReport
	for _, s := range r.Services {
		for _, rr := range s.Routes {
			if rr.Route == "POST /api/order" {
				order = rr
			}
		}
	}
	if !slices.IsSortedFunc(order.Timeline, func(a, b Transition) int { return a.At.Compare(b.At) }) {
		t.Fatalf("timeline not sorted: %+v", order.Timeline)
	}
	if got := order.Timeline[1]; got.To != "canary" || !got.Forced || got.Checks[1].Detail != "match 98.1% < 99.9%, 1.8 pp short" {
		t.Fatalf("forced transition = %+v", got)
	}
}

func TestFleetOrderAndDepth(t *testing.T) {
	inv := &analyze.Inventory{Services: []analyze.Service{
		{Name: "web", Deployment: &analyze.Deployment{DependsOn: []string{"api", "postgres"}}},
		{Name: "api", Deployment: &analyze.Deployment{DependsOn: []string{"db-proxy"}}},
		{Name: "db-proxy"},
		{Name: "loop-a", Deployment: &analyze.Deployment{DependsOn: []string{"loop-b"}}},
		{Name: "loop-b", Deployment: &analyze.Deployment{DependsOn: []string{"loop-a"}}},
	}}
	f := Build(inv, nil, Options{Now: fixedNow}).Fleet
	want := []string{"db-proxy", "loop-b", "api", "loop-a", "web"}
	if !slices.Equal(f.Order, want) {
		t.Fatalf("order = %v, want %v", f.Order, want)
	}
	depth := map[string]int{}
	for _, s := range f.Services {
		depth[s.Name] = s.Depth
	}
	if depth["web"] != 2 || depth["api"] != 1 || depth["db-proxy"] != 0 {
		t.Fatalf("depths = %v", depth)
	}
	// postgres is not a fleet service, so it draws no edge.
	for _, s := range f.Services {
		if s.Name == "web" && !slices.Equal(s.DependsOn, []string{"api"}) {
			t.Fatalf("web dependsOn = %v, want [api]", s.DependsOn)
		}
	}
	if g := string(dependencyGraph(f)); strings.Count(g, "<rect") != 5 || strings.Count(g, `class="g-e"`) != 4 {
		t.Fatalf("graph has %d nodes and %d edges, want 5 and 4", strings.Count(g, "<rect"), strings.Count(g, `class="g-e"`))
	}
}

func TestDownsampleKeepsTotals(t *testing.T) {
	start := fixedNow
	var pts []MatchPoint
	var samples, matches int64
	for i := 0; i < 1000; i++ {
		p := MatchPoint{At: start.Add(time.Duration(999-i) * time.Minute), Samples: int64(i % 7), Matches: int64(i % 5)}
		samples += p.Samples
		matches += p.Matches
		pts = append(pts, p)
	}
	out := downsample(pts, 60)
	if len(out) > 60 {
		t.Fatalf("len = %d, want ≤ 60", len(out))
	}
	var s, m int64
	for _, p := range out {
		s += p.Samples
		m += p.Matches
	}
	if s != samples || m != matches {
		t.Fatalf("totals %d/%d, want %d/%d", s, m, samples, matches)
	}
	if !out[0].At.Equal(start) {
		t.Fatalf("first point at %v, want %v (series must be sorted)", out[0].At, start)
	}
}

func TestFootprintEstimate(t *testing.T) {
	fp := sampleReport().Footprint
	by := map[string]ServiceFootprint{}
	for _, s := range fp.Services {
		by[s.Service] = s
	}
	near := func(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

	p := by["product-service"]
	if p.ReservedMemoryBytes == nil || *p.ReservedMemoryBytes != 1<<30 || p.ReservedVCPU == nil || !near(*p.ReservedVCPU, 0.5) {
		t.Fatalf("product reservation = %v bytes, %v vCPU; want 1Gi, 0.5", p.ReservedMemoryBytes, p.ReservedVCPU)
	}
	// (0.5 vCPU × (0.74 + 0.5 × (3.5 − 0.74)) W / 1000 + 1 GB × 0.000392) × 1.135 PUE
	wantE := (0.5*(0.74+0.5*(3.5-0.74))/1000 + 0.000392) * 1.135
	if p.Legacy == nil || !near(p.Legacy.EnergyKWh, wantE) || !near(p.Legacy.SCI, wantE*475) {
		t.Fatalf("product legacy estimate = %+v, want E=%g SCI=%g", p.Legacy, wantE, wantE*475)
	}
	o := by["order-service"]
	wantW := (5.4/3600*3.5/1000 + 12.0/1024*0.000392) * 1.135
	if o.Wasm == nil || !near(o.Wasm.EnergyKWh, wantW) {
		t.Fatalf("order wasm estimate = %+v, want E=%g", o.Wasm, wantW)
	}
	if o.SizeRatio == nil || !near(*o.SizeRatio, 318_767_104.0/3_407_872) {
		t.Fatalf("order size ratio = %v", o.SizeRatio)
	}
	n := by["notification-service"]
	if n.ReservedMemoryBytes == nil || *n.ReservedMemoryBytes != 768<<20 || !strings.Contains(strings.Join(n.Notes, ";"), "no memory request: the limit 768Mi counts") {
		t.Fatalf("notification footprint = %+v", n)
	}
	if n.Wasm != nil || n.WasmBytes != nil {
		t.Fatalf("notification has no Wasm module yet, got %+v", n)
	}
	if fp.Totals.Compared != 3 {
		t.Fatalf("compared = %d, want 3", fp.Totals.Compared)
	}
}

func TestCoefficientsOverridable(t *testing.T) {
	r := Build(sampleInventory(), nil, Options{Now: fixedNow, Carbon: Coefficients{
		GridIntensity: Coefficient{Value: 30, Source: "Norway 2025 grid mix"},
		PUE:           Coefficient{Value: 1.5},
	}})
	got := map[string]NamedCoefficient{}
	for _, c := range r.Footprint.Coefficients {
		got[c.Name] = c
	}
	if c := got["Grid carbon intensity (I)"]; c.Value != 30 || c.Source != "Norway 2025 grid mix" || c.Unit != "gCO2e per kWh" {
		t.Fatalf("grid = %+v", c)
	}
	if c := got["Power usage effectiveness (PUE)"]; c.Value != 1.5 || c.Source != sourceUser {
		t.Fatalf("pue = %+v", c)
	}
	if c := got["Memory energy"]; c.Value != 0.000392 || !strings.Contains(c.Source, "Cloud Carbon Footprint") {
		t.Fatalf("memory = %+v", c)
	}
	p := r.Footprint.Services[0]
	wantE := (0.5*(0.74+0.5*(3.5-0.74))/1000 + 0.000392) * 1.5
	if math.Abs(p.Legacy.SCI-wantE*30) > 1e-12 {
		t.Fatalf("SCI = %g, want %g", p.Legacy.SCI, wantE*30)
	}
}

func TestAnchorsAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, rt := range []struct{ svc, route string }{
		{"a", "GET /a-b"}, {"a", "GET /a/b"}, {"a", "GET /a_b"}, {"b", "GET /a-b"}, {"a", "POST /a-b"},
	} {
		id := routeAnchor(rt.svc, rt.route)
		if prev, dup := seen[id]; dup {
			t.Fatalf("routes %q and %q share anchor %q", prev, rt.svc+" "+rt.route, id)
		}
		seen[id] = rt.svc + " " + rt.route
	}
	if serviceAnchor("order-service") != "svc-order-service" {
		t.Fatalf("serviceAnchor(order-service) = %q", serviceAnchor("order-service"))
	}
	if serviceAnchor("Order Service") == serviceAnchor("order-service") {
		t.Fatal("distinct service names share an anchor")
	}
}

func TestClipDiff(t *testing.T) {
	long := strings.Repeat("é", 3000) // 6,000 bytes on one line
	cases := []struct {
		name              string
		in                string
		lines, bytes      int
		wantLines         int
		wantOmitted       int
		wantSuffixEllipse bool
	}{
		{"short", "-a\n+b\n", 40, 4096, 2, 0, false},
		{"too many lines", strings.Repeat("-x\n", 50), 40, 4096, 40, 10, false},
		{"one huge line", "--- legacy\n+" + long, 40, 4096, 2, 1, true},
		{"empty", "", 40, 4096, 0, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, omitted := clipDiff(tc.in, tc.lines, tc.bytes)
			n := 0
			if got != "" {
				n = len(strings.Split(got, "\n"))
			}
			if n != tc.wantLines || omitted != tc.wantOmitted {
				t.Fatalf("kept %d lines, omitted %d; want %d, %d", n, omitted, tc.wantLines, tc.wantOmitted)
			}
			if len(got) > tc.bytes+len(" …") || !utf8.ValidString(got) {
				t.Fatalf("clipped diff is %d bytes (valid UTF-8: %v)", len(got), utf8.ValidString(got))
			}
			if strings.HasSuffix(got, " …") != tc.wantSuffixEllipse {
				t.Fatalf("ellipsis = %v, want %v", strings.HasSuffix(got, " …"), tc.wantSuffixEllipse)
			}
		})
	}
}

func TestBackingServicesAreContextNotWork(t *testing.T) {
	inv := &analyze.Inventory{Services: []analyze.Service{
		{Name: "orders", Readiness: analyze.Readiness{Score: 70, Level: "ready"}},
		{Name: "postgres", Findings: []analyze.Finding{{ID: analyze.BackingServiceRule, Category: "optional", Effort: 1}}},
	}}
	r := Build(inv, nil, Options{Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
	if len(r.Fleet.Backing) != 1 || r.Fleet.Backing[0] != "postgres" {
		t.Fatalf("backing = %v, want [postgres]", r.Fleet.Backing)
	}
	for _, s := range r.Fleet.Services {
		if s.Name == "postgres" {
			t.Fatal("a backing service is listed as a service to migrate")
		}
	}
	for _, st := range r.Summary.NextSteps {
		if strings.Contains(st.Text, "postgres") {
			t.Fatalf("a next step names the backing service: %q", st.Text)
		}
	}
}

// The artifact comparison says which way round it is: a module larger than
// the image it replaces is reported as larger, never as "0.05× smaller".
func TestFootprintArtifactsSayWhichIsLarger(t *testing.T) {
	img, wasm := int64(50<<10), int64(3<<20)
	got := strings.Join(footprintHeadline(Footprint{Services: []ServiceFootprint{
		{Service: "a", ImageBytes: &img, WasmBytes: &wasm}}}), " ")
	if !strings.Contains(got, "the modules are 61.44× larger") {
		t.Fatalf("headline %q", got)
	}
}
