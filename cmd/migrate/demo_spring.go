package main

import (
	"context"
	"fmt"
	"time"

	"github.com/strangler-fig/migrate/fixtures"
	"github.com/strangler-fig/migrate/fixtures/spring"
)

// Fleets `migrate demo --fleet` runs the journey on.
const (
	demoFleetGo     = "go"     // the built-in Go imitation: starts in milliseconds
	demoFleetSpring = "spring" // the real Spring Boot services, built with Maven
)

// runDemoFleet runs the journey on the fleet --fleet names.
func runDemoFleet(ctx context.Context, o *demoOptions, g *globalOptions, s *streams) error {
	switch o.fleet {
	case demoFleetGo, "":
		return runDemo(ctx, o, g, s)
	case demoFleetSpring:
		return runSpringDemo(ctx, o, s)
	}
	return fmt.Errorf("--fleet %q: want %q (the built-in Go fleet) or %q (real Spring Boot services, needs java and mvn)",
		o.fleet, demoFleetGo, demoFleetSpring)
}

// runSpringDemo is the demo's journey on the real Spring Boot 3.5.7 fleet
// (fixtures/spring): built with Maven once and cached, started as four JVMs
// on loopback, analyzed live, shadowed against the same Go Wasm ports.
func runSpringDemo(ctx context.Context, o *demoOptions, s *streams) error {
	start := time.Now()
	tc, err := spring.FindToolchain()
	if err != nil {
		return err
	}
	dir, err := demoDir(o.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "%s — the whole journey on the Spring Boot %s fleet (files in %s)\n",
		s.paint(colorBold, "migrate demo --fleet spring"), spring.BootVersion, dir)

	// 1. Build (or reuse) and start the JVMs.
	demoStep(s, 1, "Build and start the Spring Boot fleet")
	fmt.Fprintf(s.out, "  java %s (%s), mvn %s\n", tc.JavaVersion, tc.Java, tc.Maven)
	buildStart := time.Now()
	build, err := spring.BuildFleet(ctx)
	if err != nil {
		return err
	}
	if build.Reused {
		fmt.Fprintf(s.out, "  reusing the build of these sources in %s\n", build.Dir)
	} else {
		fmt.Fprintf(s.out, "  built with Maven in %s into %s\n", time.Since(buildStart).Round(time.Second), build.Dir)
	}
	// The proxy's addresses are settled now: order-service's inventory
	// client points at the proxy (its egress), so its own calls to
	// inventory-service are recorded beside the Wasm port's.
	listenAddr, adminAddr, err := proxyAddrs()
	if err != nil {
		return err
	}
	fleetCtx, stopFleet := context.WithCancel(ctx)
	defer stopFleet()
	fleet, err := build.StartWith(fleetCtx, spring.StartOptions{InventoryURL: "http://" + listenAddr + "/api/inventory"})
	if err != nil {
		return err
	}
	defer fleet.Close()
	for _, name := range fixtures.ServiceNames {
		fmt.Fprintf(s.out, "  %-22s %s   (pid %d, healthy after %s)\n", name, fleet.URL(name), fleet.PID(name),
			fleet.Started[name].Round(100*time.Millisecond))
	}
	fmt.Fprintf(s.out, "  %s calls inventory-service through the proxy (INVENTORY_URL=http://%s/api/inventory), passing on X-Request-Id\n",
		fixtures.OrderService, listenAddr)

	// 2. Analyze the manifests, the Jib images and the live services.
	demoStep(s, 2, "Analyze the fleet: manifests, Jib images, live OpenAPI and actuator")
	images := map[string]string{}
	for _, name := range fixtures.ServiceNames {
		images[name] = "docker-archive:" + build.Images[name]
	}
	urls := demoURLs(fleet.URL)
	inventory, err := demoAnalyze(ctx, s, dir, images, urls, "--image-override", "SERVICE=docker-archive:…/jib/SERVICE.tar")
	if err != nil {
		return err
	}

	// 3..7 are the default journey's, on the JVMs.
	j := demoJourney{listen: listenAddr, admin: adminAddr, urls: urls,
		measure:   func(ctx context.Context, s *streams) ([]string, error) { return measureJVMs(ctx, fleet, s) },
		rssMethod: "VmRSS of the JVM after the demo's traffic, idle " + jvmSettle.String()}
	return demoJourneyFrom(ctx, o, s, start, dir, inventory, j)
}

// jvmSettle is how long the JVMs are left idle after the traffic before
// their resident memory is read: long enough for the request threads to
// finish and the heap to stop growing.
const jvmSettle = 3 * time.Second

// measureJVMs reads each JVM's resident memory (VmRSS) once it has served
// the demo's traffic and settled: the memory legacy really holds, which
// the report shows beside the Wasm instances' as measured.
func measureJVMs(ctx context.Context, fleet *spring.Fleet, s *streams) ([]string, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(jvmSettle):
	}
	var values []string
	for _, name := range fixtures.ServiceNames {
		rss, err := fleet.ResidentMemory(name)
		if err != nil {
			// No /proc (not Linux): the report keeps the declared figures.
			fmt.Fprintf(s.out, "  %s JVM memory not measured: %v\n", s.paint(colorYellow, "!"), err)
			return nil, nil
		}
		fmt.Fprintf(s.out, "  %-22s JVM resident memory %s (VmRSS, idle after the traffic)\n", name, fmt.Sprintf("%.0f MiB", float64(rss)/(1<<20)))
		values = append(values, fmt.Sprintf("%s=%dKi", name, rss>>10))
	}
	return values, nil
}
