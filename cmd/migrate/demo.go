package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/fixtures"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// demoOptions are the flags of `migrate demo`.
type demoOptions struct {
	dir         string
	requests    int
	concurrency int
	rate        float64
	keep        bool
	fleet       string // --fleet: go (default) or spring
}

func newDemoCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &demoOptions{}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the whole journey on the built-in fixture fleet",
		Long: `Run the whole migration journey, end to end, on the built-in shop fleet — four
Spring-style legacy services and Wasm ports of three of them, built from source
with the Go toolchain. Nothing outside this machine is touched.

  1. start the legacy fleet on loopback
  2. analyze its Kubernetes manifests, its container images (pushed to an
     in-memory registry) and its live OpenAPI and actuator endpoints
  3. plan a strangler config with the Wasm components as candidates
  4. start the proxy, shadow the candidates and drive shop traffic through it
  5. show what the diff found and the noise it learned
  6. cut over the routes whose evidence clears the gate, refuse the others
  7. write the cutover report

Every step runs the same code as the command it names. With --keep the proxy
and the fleet stay up so you can try migrate status, diffs and rollback by hand.`,
		Example: `  migrate demo
  migrate demo --keep            # leave everything running; Ctrl-C stops it
  migrate demo --requests 6000 --rate 500 --dir /tmp/migrate-demo
  migrate demo --fleet spring    # the same journey on real Spring Boot services (java, mvn)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") {
				// The narrative is the output; the proxy's info logs would bury it.
				logger, _ := newLogger(s.err, "warn", g.logFormat)
				slog.SetDefault(logger)
			}
			return runDemoFleet(cmd.Context(), o, g, s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dir, "dir", "migrate-demo", "where the inventory, config, state store, components and report are written")
	f.IntVar(&o.requests, "requests", 3000, "how many shop requests to drive through the proxy")
	f.Float64Var(&o.rate, "rate", 300, "requests per second (0: as fast as the clients go)")
	f.IntVar(&o.concurrency, "concurrency", 4, "how many clients send at once")
	f.BoolVar(&o.keep, "keep", false, "leave the proxy and the fleet running after the journey")
	f.StringVar(&o.fleet, "fleet", demoFleetGo, "the legacy fleet: go (built in, starts at once) or spring (real Spring Boot 3.5.7 services built with Maven; needs java 17+ and mvn)")
	setFormats(cmd, "table") // the journey is a narrative, not data
	return cmd
}

// demoStep prints a numbered step heading.
func demoStep(s *streams, n int, title string) {
	fmt.Fprintf(s.out, "\n%s %s\n", s.paint(colorBold+";"+colorBlue, fmt.Sprintf("%d/7", n)), s.paint(colorBold, title))
}

// demoCommand shows the command a user would type for the step that follows.
func demoCommand(s *streams, args ...string) {
	for i, a := range args {
		if strings.ContainsAny(a, " {}") {
			args[i] = "'" + a + "'"
		}
	}
	fmt.Fprintf(s.out, "  %s\n", s.paint(colorDim, "$ migrate "+strings.Join(args, " ")))
}

// demoDir makes the demo's directory and empties its store: every run's
// journey starts with every route on legacy.
func demoDir(path string) (string, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return "", fmt.Errorf("demo directory: %w", err)
	}
	dir, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	for _, f := range []string{"migrate.db", "migrate.db-wal", "migrate.db-shm"} {
		_ = os.Remove(filepath.Join(dir, f))
	}
	return dir, nil
}

func runDemo(ctx context.Context, o *demoOptions, g *globalOptions, s *streams) error {
	start := time.Now()
	dir, err := demoDir(o.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "%s — the whole journey on the built-in shop fleet (files in %s)\n",
		s.paint(colorBold, "migrate demo"), dir)

	// 1. The legacy fleet.
	demoStep(s, 1, "Start the legacy fleet")
	// The services wait as long as their Redis and PostgreSQL round trips
	// would, so the latency comparison is fair to both sides.
	fleet, err := fixtures.StartFleetWith(ctx, fixtures.FleetOptions{StoreLatency: true})
	if err != nil {
		return err
	}
	defer fleet.Close()
	for _, name := range fixtures.ServiceNames {
		fmt.Fprintf(s.out, "  %-22s %s\n", name, fleet.URL(name))
	}

	// 2. Analyze manifests, images and live endpoints.
	demoStep(s, 2, "Analyze the fleet: manifests, images, live OpenAPI and actuator")
	reg := httptest.NewServer(registry.New(registry.Logger(discardLog())))
	defer reg.Close()
	refs, err := fixtures.PushFleet(ctx, strings.TrimPrefix(reg.URL, "http://"))
	if err != nil {
		return fmt.Errorf("push the fleet's images: %w", err)
	}
	urls := demoURLs(fleet.URL)
	inventory, err := demoAnalyze(ctx, s, dir, refs, urls)
	if err != nil {
		return err
	}

	// 3..7: plan, shadow with traffic, findings, gated cutover, report. The
	// config names the addresses the proxy will serve on, so that `migrate
	// status --config` and friends reach it while --keep holds it up.
	listenAddr, adminAddr, err := proxyAddrs()
	if err != nil {
		return err
	}
	return demoJourneyFrom(ctx, o, s, start, dir, inventory, demoJourney{listen: listenAddr, admin: adminAddr, urls: urls,
		proxyUp: func(proxyURL string) {
			// Legacy order-service asks inventory through the proxy (its
			// egress), so its own outbound calls are recorded beside the
			// candidate's.
			fleet.SendInventoryCallsThrough(proxyURL)
			fmt.Fprintf(s.out, "  %s calls inventory-service through the proxy; its Wasm port calls it by name\n", fixtures.OrderService)
		}})
}

// demoURLs are the legacy fleet's base URLs by service.
func demoURLs(url func(service string) string) map[string]string {
	urls := map[string]string{}
	for _, name := range fixtures.ServiceNames {
		urls[name] = url(name)
	}
	return urls
}

// demoAnalyze is step 2 of either fleet: the cluster's manifests written
// into dir and analyzed with each service's image (images) and live
// endpoints (urls). overrideArg is how the shown command names the
// images, if it does. It returns the inventory's path.
func demoAnalyze(ctx context.Context, s *streams, dir string, images, urls map[string]string, overrideArg ...string) (string, error) {
	clusterDir := filepath.Join(dir, "cluster")
	if err := writeEmbedded(fixtures.Cluster, "cluster/k8s", clusterDir); err != nil {
		return "", err
	}
	inventory := filepath.Join(dir, "inventory.json")
	ac := &analyzeClusterOptions{files: []string{clusterDir}, images: true, concurrency: 4}
	ac.output, ac.inventoryOut = "table", inventory
	for _, name := range fixtures.ServiceNames {
		ac.overrides = append(ac.overrides, name+"="+images[name])
		ac.probes = append(ac.probes, name+"="+urls[name])
	}
	args := append([]string{"analyze", "cluster", "-f", rel(clusterDir), "--images"}, overrideArg...)
	demoCommand(s, append(args, "--probe", "…", "--inventory-out", rel(inventory))...)
	if err := runAnalyzeCluster(ctx, ac, indent(s)); err != nil {
		return "", err
	}
	return inventory, nil
}

// demoJourney is what steps 3 to 7 need of the legacy fleet.
type demoJourney struct {
	listen, admin string            // the proxy's addresses
	urls          map[string]string // legacy base URL by service
	// proxyUp, when set, is told the proxy's URL once it serves.
	proxyUp func(proxyURL string)
	// measure, when set, measures the legacy processes once the traffic is
	// over and returns the report's --legacy-rss values, and rssMethod says
	// how.
	measure   func(ctx context.Context, s *streams) ([]string, error)
	rssMethod string
}

// demoJourneyFrom runs steps 3 to 7 of the journey (plan, shadow with
// traffic, findings, gated cutover, report) against legacy services at urls.
// With --keep it then leaves the proxy up until ctx ends.
func demoJourneyFrom(ctx context.Context, o *demoOptions, s *streams, start time.Time, dir, inventory string, j demoJourney) error {
	urls := j.urls
	demoStep(s, 3, "Plan the strangler config, with the Wasm ports as candidates")
	components, err := fixtures.BuildReusableWasm(ctx, filepath.Join(dir, "components"))
	if err != nil {
		return err
	}
	config := filepath.Join(dir, "strangler.yaml")
	po := &planOptions{inventory: inventory, out: config, force: true, gate: demoGate, shadow: demoShadow,
		listen: j.listen, admin: j.admin}
	for _, name := range fixtures.ServiceNames {
		po.upstreams = append(po.upstreams, name+"="+urls[name])
	}
	for _, c := range demoCandidates {
		po.candidates = append(po.candidates, c.service+"="+components[c.component])
	}
	demoCommand(s, "plan", "--inventory", rel(inventory), "--candidate", "SERVICE=components/….wasm", "--out", rel(config))
	if err := runPlan(ctx, po, &globalOptions{output: "table"}, indent(s)); err != nil {
		return err
	}

	demoStep(s, 4, "Start the proxy, shadow the candidates, drive shop traffic")
	proxyCtx, stopProxy := context.WithCancel(ctx)
	defer stopProxy()
	type addrs struct{ listen, admin string }
	ready := make(chan addrs, 1)
	proxyDone := make(chan error, 1)
	go func() {
		proxyDone <- runProxy(proxyCtx, &proxyOptions{config: config,
			flush: demoFlush, shutdownGrace: 5 * time.Second,
			onReady: func(l, a string) { ready <- addrs{l, a} }}, s)
	}()
	var px addrs
	select {
	case px = <-ready:
	case err := <-proxyDone:
		return fmt.Errorf("start the proxy: %w", err)
	}
	proxyURL, adminURL := "http://"+px.listen, "http://"+px.admin
	fmt.Fprintf(s.out, "  proxy %s   admin %s\n", proxyURL, adminURL)
	if j.proxyUp != nil {
		j.proxyUp(proxyURL)
	}
	client := &strangler.AdminClient{BaseURL: adminURL}
	for _, route := range demoRoutes {
		demoCommand(s, "shadow", route)
		if _, err := client.Transition(ctx, strangler.TransitionRequest{Target: route, To: strangler.ModeShadow,
			Actor: "migrate demo", Reason: "start collecting evidence"}); err != nil {
			return apiError(err)
		}
	}
	if err := demoEvidenceAndCutover(ctx, s, o, client, adminURL, proxyURL); err != nil {
		return err
	}

	demoStep(s, 7, "Write the cutover report")
	var legacyRSS []string
	if j.measure != nil {
		if legacyRSS, err = j.measure(ctx, s); err != nil {
			return err
		}
	}
	report := filepath.Join(dir, "migrate-report.html")
	args := []string{"report", "--config", rel(config), "--inventory", rel(inventory), "--out", rel(report)}
	for _, v := range legacyRSS {
		args = append(args, "--legacy-rss", v)
	}
	demoCommand(s, args...)
	if o.keep {
		time.Sleep(demoFlush + demoFlush/2)
	} else {
		stopProxy()
		if err := <-proxyDone; err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
	}
	ro := &reportOptions{config: config, inventory: inventory, out: report, legacyRSS: legacyRSS, legacyRSSMethod: j.rssMethod}
	if err := runReport(ctx, ro, indent(s)); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "\n%s in %s. Open %s\n", s.paint(colorGreen, "Journey complete"),
		time.Since(start).Round(time.Second), s.paint(colorBold, "file://"+report))
	if !o.keep {
		return nil
	}
	cfgArg := rel(config)
	if strings.ContainsAny(cfgArg, " '\"") {
		cfgArg = "'" + strings.ReplaceAll(cfgArg, "'", `'\''`) + "'"
	}
	fmt.Fprintf(s.out, "\nStill running (Ctrl-C stops everything):\n")
	fmt.Fprintf(s.out, "  proxy   %s   e.g. curl %s/api/product\n", proxyURL, proxyURL)
	fmt.Fprintf(s.out, "  admin   %s   the address %s names, so these work as printed:\n", adminURL, cfgArg)
	fmt.Fprintf(s.out, "    migrate status --config %s\n", cfgArg)
	fmt.Fprintf(s.out, "    migrate diffs 'GET /api/inventory' --config %s\n", cfgArg)
	fmt.Fprintf(s.out, "    migrate rollback product-service --config %s\n", cfgArg)
	for _, name := range fixtures.ServiceNames {
		fmt.Fprintf(s.out, "  %-22s %s\n", name, urls[name])
	}
	<-ctx.Done()
	stopProxy()
	if err := <-proxyDone; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// proxyAddrs finds two loopback ports nothing listens on, for the demo
// proxy's listener and its admin API; both are held until both are found,
// so they differ.
func proxyAddrs() (listen, admin string, err error) {
	var addrs [2]string
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", "", fmt.Errorf("find a free loopback port: %w", err)
		}
		defer ln.Close()
		addrs[i] = ln.Addr().String()
	}
	return addrs[0], addrs[1], nil
}

// demoFlush is how often the demo's proxy writes counters and evidence.
const demoFlush = time.Second

// demoCandidates are the Wasm ports of the fixture fleet.
var demoCandidates = []struct{ service, component string }{
	{fixtures.ProductService, "product"},
	{fixtures.InventoryService, "inventory"},
	{fixtures.OrderService, "order"},
}

// demoRoutes are the routes the Wasm ports implement; the others (product
// creation, order history) need state the ports do not keep, so they stay
// on legacy — migration is route by route.
var demoRoutes = []string{"GET /api/product", "GET /api/inventory", "POST /api/order"}

// demoGate is the gate the demo plans with: the default gate, with minimums
// a few thousand requests of demo traffic can reach. The match ratio must
// clear its minimum with 95% confidence: at 99.9% that takes some 2,700
// matching samples on one route, at 99% a few hundred.
var demoGate = func() *strangler.GateConfig {
	match, errRate := strangler.Percent(0.99), strangler.Percent(0.001)
	return &strangler.GateConfig{MinSamples: 300, MinMatch: &match, MaxP99Ratio: 1.5, MaxErrorRate: &errRate}
}()

// demoShadow mirrors order placements too: the order component keeps no
// state, so it is safe to send writes to, and the fixture legacy service
// may take each sampled order twice while noise is learned.
var demoShadow = map[string]*shadow.Options{
	fixtures.OrderService: {Writes: shadow.WritesAllow, BaselineWrites: true},
}

// indentWriter prefixes every line written through it.
type indentWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (iw *indentWriter) Write(p []byte) (int, error) {
	var b []byte
	for _, c := range p {
		if !iw.midLine && c != '\n' { // an empty line stays empty, without trailing blanks
			b = append(b, iw.prefix...)
		}
		b = append(b, c)
		iw.midLine = c != '\n'
	}
	if _, err := iw.w.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

// indent nests a command's output under the demo's step heading.
func indent(s *streams) *streams {
	c := *s
	c.out = &indentWriter{w: s.out, prefix: "  "}
	// What a step's command says on stderr ("wrote inventory.json") is
	// part of the step too; unindented it reads as the demo's own line.
	c.err = &indentWriter{w: s.err, prefix: "  "}
	return &c
}

// rel shortens a path for display when it lies below the working directory.
func rel(path string) string {
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
	}
	return path
}

// writeEmbedded copies the embedded directory root to dst.
func writeEmbedded(fsys fs.FS, root, dst string) error {
	return fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dst, strings.TrimPrefix(p, root))
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// discardLog silences the in-memory registry's request log.
func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// statusSummary says what the clients got back, e.g. "200×2803, 201×1021".
func statusSummary(byStatus map[int]int, transportErrors int) string {
	codes := make([]int, 0, len(byStatus))
	for c := range byStatus {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		parts = append(parts, fmt.Sprintf("%d×%d", c, byStatus[c]))
	}
	if transportErrors > 0 {
		parts = append(parts, fmt.Sprintf("%d transport errors", transportErrors))
	}
	return "responses " + strings.Join(parts, ", ")
}

// waitForMirror waits until the detached candidate copies have all been
// compared, so the evidence shown next is complete.
func waitForMirror(ctx context.Context, c *strangler.AdminClient) error {
	var last int64 = -1
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		doc, err := c.Routes(ctx)
		if err != nil {
			return apiError(err)
		}
		var n int64
		for _, r := range doc.Routes {
			n += r.Samples + r.CandidateErrors
		}
		if n == last {
			return nil
		}
		last = n
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	return nil
}

// demoEvidenceAndCutover is steps 4 to 6 once the routes are in shadow:
// drive shop traffic, show what the diff found, and cut over what clears its
// gate. Both fleets share it, so the journey is the same on either.
func demoEvidenceAndCutover(ctx context.Context, s *streams, o *demoOptions, client *strangler.AdminClient, adminURL, proxyURL string) error {
	bar := newProgressBar(s, "  shop traffic")
	res, err := fixtures.DriveTraffic(ctx, proxyURL, fixtures.TrafficOptions{Requests: o.requests,
		Concurrency: o.concurrency, Rate: o.rate, Seed: 42, Progress: bar.Update})
	bar.Finish()
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "  %d requests in %s, %s\n", res.Requests, res.Duration.Round(100*time.Millisecond), statusSummary(res.ByStatus, res.Errors))
	if err := waitForMirror(ctx, client); err != nil {
		return err
	}
	// A busy machine drops copies rather than slow clients down, so the
	// traffic may leave a route short of the gate's minimum: drive more,
	// as an operator would, rather than judge on too little evidence.
	for round := 0; round < 4; round++ {
		short, err := shortOfSamples(ctx, client)
		if err != nil || short == "" {
			break
		}
		fmt.Fprintf(s.out, "  more traffic: %s\n", short)
		if _, err := fixtures.DriveTraffic(ctx, proxyURL, fixtures.TrafficOptions{Requests: o.requests / 2,
			Concurrency: o.concurrency, Rate: o.rate, Seed: uint64(43 + round)}); err != nil {
			return err
		}
		if err := waitForMirror(ctx, client); err != nil {
			return err
		}
	}

	// 5. What the diff found.
	demoStep(s, 5, "What the shadow diff found")
	demoCommand(s, "status")
	if err := runStatus(ctx, &statusOptions{controlOptions: controlOptions{admin: adminURL}}, "", &globalOptions{output: "table"}, indent(s)); err != nil {
		return err
	}
	if err := demoFindings(ctx, client, s); err != nil {
		return err
	}

	// 6. Cutover on evidence.
	demoStep(s, 6, "Cut over what clears its gate; refuse the rest")
	for _, route := range demoRoutes {
		demoCommand(s, "cutover", route)
		if err := demoCutover(ctx, adminURL, route, s); err != nil {
			return err
		}
	}
	return nil
}

// shortOfSamples names a demo route with fewer compared samples than the
// demo's gate needs, or says "" when none is short.
func shortOfSamples(ctx context.Context, c *strangler.AdminClient) (string, error) {
	doc, err := c.Routes(ctx)
	if err != nil {
		return "", apiError(err)
	}
	for _, r := range doc.Routes {
		if slices.Contains(demoRoutes, r.Route) && r.Samples < int64(demoGate.MinSamples) {
			return fmt.Sprintf("%s has %d compared samples, its gate wants %d", r.Route, r.Samples, demoGate.MinSamples), nil
		}
	}
	return "", nil
}

// demoFindings prints, per shadowed route, the difference classes the diff
// found and the noise it learned from legacy-vs-legacy samples.
func demoFindings(ctx context.Context, c *strangler.AdminClient, s *streams) error {
	doc, err := c.Routes(ctx)
	if err != nil {
		return apiError(err)
	}
	// One column of counts for every route, as wide as the longest
	// difference class needs: a side-effect class names a method and path.
	width := 0
	for _, r := range doc.Routes {
		for _, d := range r.Differences {
			width = max(width, displayWidth(shadow.DescribeSignature(d.Signature)))
		}
	}
	for _, r := range doc.Routes {
		if !slices.Contains(demoRoutes, r.Route) || r.Shadow == nil {
			continue
		}
		fmt.Fprintf(s.out, "\n  %s\n", s.paint(colorBold, r.Route))
		if len(r.Differences) == 0 {
			fmt.Fprintf(s.out, "    %s no unexplained difference in %d samples\n", s.paint(colorGreen, "✓"), r.Samples)
		}
		for _, d := range r.Differences {
			label := shadow.DescribeSignature(d.Signature)
			fmt.Fprintf(s.out, "    %s %s%s  %d samples\n", s.paint(colorRed, "✗"), label,
				strings.Repeat(" ", width-displayWidth(label)), d.Count)
		}
		for _, n := range r.Noise {
			fmt.Fprintf(s.out, "    %s noise learned: %s\n", s.paint(colorDim, "~"), n)
		}
		if r.WritesSkipped > 0 {
			fmt.Fprintf(s.out, "    %s %d writes not mirrored (writes: deny)\n", s.paint(colorYellow, "!"), r.WritesSkipped)
		}
	}
	fmt.Fprintf(s.out, "\n  %s\n", s.paint(colorDim, "The samples behind each difference: migrate diffs ROUTE; the config lines that accept\n  learned noise: migrate status ROUTE"))
	return nil
}

// demoCutover runs `migrate cutover ROUTE` from shadow, as a user would:
// the proxy evaluates the gate on the shadow evidence and cuts the route
// over when it clears it, or refuses with the unmet criteria and exit
// code 3, which the demo reports and goes on from.
func demoCutover(ctx context.Context, adminURL, route string, s *streams) error {
	o := &transitionOptions{controlOptions: controlOptions{admin: adminURL}, mode: strangler.ModeCutover,
		actor: "migrate demo"}
	err := runTransition(ctx, o, route, &globalOptions{output: "table"}, indent(s))
	var refused *gateRefusal
	switch {
	case err == nil:
		fmt.Fprintf(s.out, "  %s %s cut over: its evidence clears the gate\n", s.paint(colorGreen, "✓"), route)
		return nil
	case errors.As(err, &refused):
		fmt.Fprintf(s.out, "  %s %s stays in shadow: %s\n", s.paint(colorRed, "✗"), route, verdictPhrase(refused.verdict))
		return nil
	}
	return err
}

// verdictPhrase says a gate verdict in a sentence.
func verdictPhrase(verdict string) string {
	if verdict == strangler.VerdictFail {
		return "the gate failed"
	}
	return "the gate is " + verdict
}
