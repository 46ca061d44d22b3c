package reports

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

// largeFleet builds a 50-service, 500-route fleet whose evidence summarises
// 1,000,000 samples (2,500 per route on the 400 routes past legacy), each route with a day of per-minute
// match series, 12-bucket histograms, a timeline and a 24-line diff.
func largeFleet() (*analyze.Inventory, []Route, Options) {
	const services, routesPer, samplesPer = 50, 10, 2500
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	inv := &analyze.Inventory{APIVersion: analyze.APIVersion, Kind: "Inventory", Generated: t0}
	var routes []Route
	var modules []WasmModule
	bounds := []time.Duration{}
	for i := 0; i < 12; i++ {
		bounds = append(bounds, time.Duration(1<<i)*250*time.Microsecond)
	}
	var diff strings.Builder
	diff.WriteString("--- legacy 200 application/json\n+++ wasm 200 application/json\n")
	for i := 0; i < 11; i++ {
		fmt.Fprintf(&diff, "-  \"field%d\": \"legacy value %d\",\n+  \"field%d\": \"wasm value %d\",\n", i, i, i, i)
	}
	modes := []string{"legacy", "shadow", "shadow", "canary", "cutover"}
	for s := 0; s < services; s++ {
		name := fmt.Sprintf("svc-%02d-service", s)
		svc := analyze.Service{Name: name, Namespace: "shop",
			Image: &analyze.Image{Ref: "registry.local/" + name + ":1", SizeBytes: int64(250+s) << 20, BuildTool: "jib"},
			Deployment: &analyze.Deployment{Kind: "Deployment", Replicas: 1 + s%3,
				Resources: analyze.Resources{Requests: map[string]string{"memory": "512Mi", "cpu": "250m"}}},
			Findings: []analyze.Finding{
				{ID: "JPA-HIBERNATE", Title: "JPA/Hibernate has no Wasm equivalent", Category: "optional", Effort: 5, Evidence: "/app/libs/hibernate-core-6.6.5.Final.jar"},
				{ID: "ACTUATOR", Title: "Actuator endpoints need a replacement", Category: "potential", Effort: 1, Evidence: "/actuator/health"},
			},
			Readiness: analyze.Readiness{Score: 40 + s, Level: []string{"ready", "ready-with-conditions", "not-ready"}[s%3]},
		}
		if s%7 == 0 {
			svc.Findings = append(svc.Findings, analyze.Finding{ID: "KAFKA-CONSUMER", Title: "Long-running consumer", Category: "mandatory", Effort: 8, Evidence: "spring-kafka"})
		}
		if s > 0 {
			svc.Deployment.DependsOn = []string{fmt.Sprintf("svc-%02d-service", (s-1)/3)}
		}
		inv.Services = append(inv.Services, svc)
		modules = append(modules, WasmModule{Service: name, SizeBytes: 3 << 20, MemoryBytes: 8 << 20})
		for r := 0; r < routesPer; r++ {
			route := Route{Route: fmt.Sprintf("GET /api/%s/resource-%d/{id}", name, r), Service: name, Mode: modes[r%len(modes)]}
			if route.Mode != "legacy" {
				route.Timeline = []Transition{
					{At: t0, Actor: "alice", From: "legacy", To: "shadow", Reason: "start shadowing"},
					{At: t0.Add(20 * time.Hour), Actor: "gate", From: "shadow", To: "canary", Weight: 10, Reason: "gate passed",
						Checks: []GateCheck{check("samples", 1500, 1000, true), check("match", 0.9995, 0.999, true)}},
					{At: t0.Add(22 * time.Hour), Actor: "canary-guard", From: "canary", To: "legacy", Reason: "p99 regressed",
						Checks: []GateCheck{check("p99Ratio", 1.8, 1.5, false)}},
				}
				mism := int64((r * 7) % 40)
				ev := &Evidence{Samples: samplesPer, Matches: samplesPer - mism - 1, Mismatches: mism,
					CandidateErrors: map[string]int64{"deadline": 1},
					NoiseFields:     []string{"/*/timestamp", "header:X-Trace-Id"},
					SampleRequest:   route.Route, SampleDiff: diff.String()}
				for d := 0; d < 8; d++ {
					ev.Differences = append(ev.Differences, Difference{Path: fmt.Sprintf("/%d/field%d", d, d), Type: "value", Count: int64(40 - d)})
				}
				for i, b := range bounds {
					ev.Legacy.Buckets = append(ev.Legacy.Buckets, Bucket{UpperBound: b, Count: int64(samplesPer / 12)})
					ev.Candidate.Buckets = append(ev.Candidate.Buckets, Bucket{UpperBound: b, Count: int64((i + 1) * samplesPer / 78)})
				}
				ev.Legacy.P50, ev.Legacy.P95, ev.Legacy.P99 = 4*time.Millisecond, 12*time.Millisecond, 30*time.Millisecond
				ev.Candidate.P50, ev.Candidate.P95, ev.Candidate.P99 = 3*time.Millisecond, 10*time.Millisecond, time.Duration(20+r*4)*time.Millisecond
				for m := 0; m < 1440; m++ {
					n := int64(samplesPer / 1440)
					ev.MatchSeries = append(ev.MatchSeries, MatchPoint{At: t0.Add(time.Duration(m) * time.Minute), Samples: n + 1, Matches: n})
				}
				route.Evidence = ev
			}
			routes = append(routes, route)
		}
	}
	return inv, routes, Options{Now: fixedNow, Modules: modules}
}

// maxHTMLBytes is the size budget for the 500-route report.
const maxHTMLBytes = 3_000_000

// TestLargeReportFitsBudget keeps the size budget checked on every test run,
// not only when benchmarks run.
func TestLargeReportFitsBudget(t *testing.T) {
	inv, routes, opts := largeFleet()
	r := Build(inv, routes, opts)
	var total int64
	for _, svc := range r.Services {
		for _, rr := range svc.Routes {
			if rr.Evidence != nil {
				total += rr.Evidence.Samples
			}
		}
	}
	if total != 1_000_000 {
		t.Fatalf("evidence summarises %d samples", total)
	}
	var buf bytes.Buffer
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	if buf.Len() > maxHTMLBytes {
		t.Fatalf("HTML for 500 routes is %d bytes, over the %d budget", buf.Len(), maxHTMLBytes)
	}
	if r.Summary.Routes != 500 || len(r.Fleet.Services) != 50 {
		t.Fatalf("report has %d routes and %d services", r.Summary.Routes, len(r.Fleet.Services))
	}
}

// BenchmarkReport50Services builds and renders the HTML report for 50
// services and 500 routes. Target: ≤ 2 s per report and ≤ 3 MB of HTML.
func BenchmarkReport50Services(b *testing.B) {
	inv, routes, opts := largeFleet()
	var size int
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r := Build(inv, routes, opts)
		cw := &countingWriter{}
		if err := r.WriteHTML(cw); err != nil {
			b.Fatal(err)
		}
		size = cw.n
	}
	b.ReportMetric(float64(size), "html-bytes")
	if size > maxHTMLBytes {
		b.Fatalf("HTML is %d bytes, over the %d budget", size, maxHTMLBytes)
	}
}

// BenchmarkReport50ServicesMarkdown is the same fleet rendered as Markdown.
func BenchmarkReport50ServicesMarkdown(b *testing.B) {
	inv, routes, opts := largeFleet()
	var size int
	b.ReportAllocs()
	for b.Loop() {
		cw := &countingWriter{}
		if err := Build(inv, routes, opts).WriteMarkdown(cw); err != nil {
			b.Fatal(err)
		}
		size = cw.n
	}
	b.ReportMetric(float64(size), "md-bytes")
}

type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

var _ io.Writer = (*countingWriter)(nil)

// BenchmarkReport50ServicesJSON is the same fleet as the versioned JSON model.
func BenchmarkReport50ServicesJSON(b *testing.B) {
	inv, routes, opts := largeFleet()
	var size int
	b.ReportAllocs()
	for b.Loop() {
		cw := &countingWriter{}
		if err := Build(inv, routes, opts).WriteJSON(cw); err != nil {
			b.Fatal(err)
		}
		size = cw.n
	}
	b.ReportMetric(float64(size), "json-bytes")
}
