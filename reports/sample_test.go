package reports

import (
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

// fixedNow is the clock every rendered test report is stamped with.
var fixedNow = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

// sampleInventory models the fixture fleet: four Spring Boot 3.4 services
// built with Jib, order-service calling inventory-service and publishing
// to notification-service.
func sampleInventory() *analyze.Inventory {
	deployment := func(replicas int, mem, cpu string, deps ...string) *analyze.Deployment {
		return &analyze.Deployment{Kind: "Deployment", Replicas: replicas, DependsOn: deps,
			Resources: analyze.Resources{Requests: map[string]string{"memory": mem, "cpu": cpu}, Limits: map[string]string{"memory": "1Gi"}}}
	}
	image := func(svc string, size int64) *analyze.Image {
		return &analyze.Image{Ref: "registry.local/shop/" + svc + ":1.0.0", SizeBytes: size, Layers: 11, BuildTool: "jib",
			Base: "eclipse-temurin:17-jre", Java: &analyze.Java{Version: "17.0.13", Evidence: "JAVA_VERSION env"},
			SpringBoot: &analyze.SpringBoot{Version: "3.4.2", Evidence: "/app/libs/spring-boot-3.4.2.jar"}}
	}
	return &analyze.Inventory{
		APIVersion: analyze.APIVersion, Kind: "Inventory",
		Generated: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC),
		Order:     []string{"product-service", "inventory-service", "notification-service", "order-service"},
		Services: []analyze.Service{
			{Name: "product-service", Namespace: "shop", Sources: []string{"openapi:product.json", "k8s:product.yaml"},
				Image: image("product-service", 287_309_824), Deployment: deployment(2, "512Mi", "250m"),
				Findings: []analyze.Finding{
					{ID: "REDIS-CLIENT", Title: "Redis repository needs a wasi key-value store", Category: "optional", Effort: 3, Evidence: "/app/libs/lettuce-core-6.4.2.RELEASE.jar"},
				},
				Readiness: analyze.Readiness{Score: 82, Level: "ready-with-conditions", Targets: map[string]string{"spin": "ready-with-conditions", "wasmcloud": "ready"}}},
			{Name: "inventory-service", Namespace: "shop", Sources: []string{"openapi:inventory.json"},
				Image: image("inventory-service", 301_989_888), Deployment: deployment(2, "512Mi", "500m"),
				Findings: []analyze.Finding{
					{ID: "JPA-HIBERNATE", Title: "JPA/Hibernate has no Wasm equivalent; port queries to a SQL client", Category: "optional", Effort: 5, Evidence: "/app/libs/hibernate-core-6.6.5.Final.jar"},
					{ID: "ACTUATOR", Title: "Actuator endpoints need a replacement health check", Category: "potential", Effort: 1, Evidence: "readiness probe /actuator/health"},
				},
				Readiness: analyze.Readiness{Score: 74, Level: "ready-with-conditions"}},
			{Name: "order-service", Namespace: "shop", Sources: []string{"openapi:order.json", "actuator:http://order"},
				Image: image("order-service", 318_767_104), Deployment: deployment(3, "1Gi", "1", "inventory-service", "notification-service"),
				Findings: []analyze.Finding{
					{ID: "RESILIENCE4J", Title: "Circuit breaker must move to the proxy or the component", Category: "optional", Effort: 3, Evidence: "/app/libs/resilience4j-circuitbreaker-2.2.0.jar"},
					{ID: "JPA-HIBERNATE", Title: "JPA/Hibernate has no Wasm equivalent; port queries to a SQL client", Category: "optional", Effort: 5, Evidence: "/app/libs/hibernate-core-6.6.5.Final.jar"},
				},
				Readiness: analyze.Readiness{Score: 61, Level: "ready-with-conditions"}},
			{Name: "notification-service", Namespace: "shop", Sources: []string{"k8s:notification.yaml"},
				Image: image("notification-service", 276_824_064),
				Deployment: &analyze.Deployment{Kind: "Deployment", Replicas: 1,
					Resources: analyze.Resources{Limits: map[string]string{"memory": "768Mi", "cpu": "500m"}}},
				Findings: []analyze.Finding{
					{ID: "KAFKA-CONSUMER", Title: "Long-running Kafka consumer cannot run as a request-scoped component", Category: "mandatory", Effort: 8, Evidence: "/app/libs/spring-kafka-3.3.2.jar; topic notificationTopic"},
				},
				Readiness: analyze.Readiness{Score: 35, Level: "not-ready"}},
		},
		Errors: []analyze.InputError{{Input: "k8s/legacy-cron.yaml", Error: "yaml: line 4: mapping values are not allowed here"}},
	}
}

// series makes a per-minute match series with the given ratios.
func series(start time.Time, perMinute int64, ratios ...float64) []MatchPoint {
	out := make([]MatchPoint, len(ratios))
	for i, r := range ratios {
		out[i] = MatchPoint{At: start.Add(time.Duration(i) * time.Minute), Samples: perMinute, Matches: int64(float64(perMinute)*r + 0.5)}
	}
	return out
}

func buckets(counts ...int64) []Bucket {
	bounds := []time.Duration{time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond,
		20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond}
	var out []Bucket
	for i, c := range counts {
		out = append(out, Bucket{UpperBound: bounds[i], Count: c})
	}
	return out
}

func check(name string, actual, threshold float64, passed bool) GateCheck {
	return GateCheck{Name: name, Actual: actual, Threshold: threshold, Passed: passed}
}

// sampleRoutes covers every status: cut over, canary ready, collecting,
// blocked, not started.
func sampleRoutes() []Route {
	t0 := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	return []Route{
		{Route: "GET /api/product", Service: "product-service", Mode: "cutover",
			Timeline: []Transition{
				{At: t0, Actor: "alice", From: "legacy", To: "shadow", Reason: "start shadowing the catalogue"},
				{At: t0.Add(26 * time.Hour), Actor: "gate", From: "shadow", To: "canary", Weight: 10, Reason: "gate passed",
					Checks: []GateCheck{check("samples", 4200, 1000, true), check("match", 0.9998, 0.999, true), check("p99Ratio", 0.8, 1.5, true), check("errorRate", 0, 0.001, true)}},
				{At: t0.Add(44 * time.Hour), Actor: "alice", From: "canary", To: "cutover", Reason: "canary clean for 18h",
					Checks: []GateCheck{check("samples", 9600, 1000, true), check("match", 0.9999, 0.999, true)}},
			},
			Evidence: &Evidence{Samples: 9600, Matches: 9599, Mismatches: 1,
				Differences: []Difference{{Path: "/0/price", Type: "value", Count: 1}},
				NoiseFields: []string{"header:X-Request-Id"},
				Legacy:      Latency{P50: 4 * ms, P95: 9 * ms, P99: 14 * ms, Buckets: buckets(200, 1800, 4700, 2300, 500, 90, 10)},
				Candidate:   Latency{P50: 2 * ms, P95: 5 * ms, P99: 8 * ms, Buckets: buckets(1900, 4100, 2900, 600, 90, 10, 0)},
				MatchSeries: series(t0, 160, 1, 1, 1, 1, 0.99375, 1, 1, 1, 1, 1, 1, 1)}},
		{Route: "POST /api/product", Service: "product-service", Mode: "canary", Weight: 25,
			Gate: &Gate{MinSamples: 500, MinMatch: 0.999, MaxP99Ratio: 1.5, MaxErrorRate: 0.001},
			Timeline: []Transition{
				{At: t0.Add(2 * time.Hour), Actor: "alice", From: "legacy", To: "shadow", Reason: "writes: marked"},
				{At: t0.Add(30 * time.Hour), Actor: "bob", From: "shadow", To: "canary", Weight: 25, Reason: "review board 2026-11-25",
					Checks: []GateCheck{check("samples", 812, 500, true), check("match", 1, 0.999, true)}},
			},
			Evidence: &Evidence{Samples: 1250, Matches: 1250, SkippedWrites: 40,
				Legacy:      Latency{P50: 6 * ms, P95: 12 * ms, P99: 19 * ms, Buckets: buckets(0, 100, 500, 500, 140, 10, 0)},
				Candidate:   Latency{P50: 3 * ms, P95: 7 * ms, P99: 11 * ms, Buckets: buckets(150, 500, 450, 130, 20, 0, 0)},
				MatchSeries: series(t0.Add(2*time.Hour), 125, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)}},
		{Route: "GET /api/inventory", Service: "inventory-service", Mode: "shadow",
			Timeline: []Transition{{At: t0.Add(40 * time.Hour), Actor: "alice", From: "legacy", To: "shadow", Reason: "start shadowing"}},
			Evidence: &Evidence{Samples: 400, Matches: 400,
				NoiseFields: []string{"/*/lastChecked"},
				Legacy:      Latency{P50: 5 * ms, P95: 11 * ms, P99: 16 * ms, Buckets: buckets(0, 60, 200, 110, 25, 5, 0)},
				Candidate:   Latency{P50: 3 * ms, P95: 6 * ms, P99: 9 * ms, Buckets: buckets(40, 190, 140, 25, 5, 0, 0)},
				MatchSeries: series(t0.Add(40*time.Hour), 50, 1, 1, 1, 1, 1, 1, 1, 1)}},
		{Route: "POST /api/order", Service: "order-service", Mode: "shadow",
			Timeline: []Transition{
				{At: t0.Add(20 * time.Hour), Actor: "alice", From: "legacy", To: "shadow", Reason: "start shadowing"},
				{At: t0.Add(30 * time.Hour), Actor: "canary-guard", From: "canary", To: "legacy", Reason: "match fell to 97.1% during canary",
					Checks: []GateCheck{check("match", 0.971, 0.999, false)}},
				{At: t0.Add(29 * time.Hour), Actor: "bob", From: "shadow", To: "canary", Weight: 5, Forced: true, Reason: "force to test under load",
					Checks: []GateCheck{check("samples", 1800, 1000, true), check("match", 0.981, 0.999, false)}},
				{At: t0.Add(31 * time.Hour), Actor: "alice", From: "legacy", To: "shadow", Reason: "collect evidence on the fix"},
			},
			Evidence: &Evidence{Samples: 2400, Matches: 2340, Mismatches: 52,
				CandidateErrors: map[string]int64{"deadline": 6, "trap": 2},
				Differences: []Difference{
					{Path: "body", Type: "body", Count: 41},
					{Path: "status", Type: "status", Count: 11},
				},
				SampleRequest: "POST /api/order (sample 7f3c…)",
				SampleDiff: "--- legacy 201 text/plain\n+++ wasm 500 text/plain\n@@ status @@\n-201\n+500\n@@ body @@\n" +
					"-Product is not in stock, please try again later\n+internal error: stock check failed\n",
				Legacy:      Latency{P50: 18 * ms, P95: 31 * ms, P99: 44 * ms, Buckets: buckets(0, 0, 0, 200, 1600, 580, 20)},
				Candidate:   Latency{P50: 14 * ms, P95: 29 * ms, P99: 71 * ms, Buckets: buckets(0, 0, 30, 600, 1300, 380, 90)},
				MatchSeries: series(t0.Add(31*time.Hour), 200, 0.96, 0.97, 0.975, 0.98, 0.975, 0.985, 0.975, 0.98, 0.975, 0.98, 0.97, 0.985)}},
		{Route: "GET /api/order", Service: "order-service", Mode: "legacy"},
	}
}

// sampleModules are measured Wasm components (sizes of real fixture builds' order of magnitude).
func sampleModules() []WasmModule {
	return []WasmModule{
		{Service: "product-service", Component: "product", SizeBytes: 3_145_728, MemoryBytes: 6 << 20},
		{Service: "inventory-service", Component: "inventory", SizeBytes: 2_883_584, MemoryBytes: 4 << 20},
		{Service: "order-service", Component: "order", SizeBytes: 3_407_872, MemoryBytes: 12 << 20, CPUSeconds: 5.4, Window: time.Hour},
	}
}

func sampleReport() *Report {
	return Build(sampleInventory(), sampleRoutes(), Options{Now: fixedNow, Title: "Shop fleet cutover report", Modules: sampleModules()})
}
