package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/analyze"
)

// analyzeCommon are the settings every analyze subcommand shares.
type analyzeCommon struct {
	output       string // -o: table, json or yaml
	inventoryOut string // --inventory-out: also write the inventory here
	// now stamps the inventory; tests fix it.
	now func() time.Time
}

// analyzeOpenAPIOptions configure `migrate analyze openapi`.
type analyzeOpenAPIOptions struct {
	analyzeCommon
	sources []string // FILE | URL | NAME=FILE | NAME=URL
}

// analyzeImageOptions configure `migrate analyze image`.
type analyzeImageOptions struct {
	analyzeCommon
	refs        []string // REF | NAME=REF
	platform    string
	insecure    bool
	concurrency int
}

// analyzeClusterOptions configure `migrate analyze cluster`.
type analyzeClusterOptions struct {
	analyzeCommon
	files       []string // -f FILE|DIR|-
	images      bool     // --images: analyze each workload's image
	overrides   []string // --image-override SERVICE=REF
	probes      []string // --probe URL | NAME=URL
	openapi     []string // --openapi FILE|URL | NAME=FILE|URL
	platform    string
	insecure    bool
	concurrency int
}

func newAnalyzeCmd(s *streams, g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "analyze",
		Short: "Inventory the fleet and score each service's readiness for Wasm",
		Long: `Build the fleet inventory (migrate/v1) from what already exists: OpenAPI documents,
container images, Kubernetes manifests or compose files, and live Spring Boot
actuator endpoints. Each service gets findings from the readiness rules and a
score and level for Spin and wasmCloud. Write the inventory with --inventory-out;
'migrate plan' reads it.`,
		Example: `  migrate analyze openapi product-service=openapi/product.yaml
  migrate analyze image ghcr.io/acme/order-service:1.4.2
  migrate analyze cluster -f k8s/ --images --inventory-out inventory.json`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newAnalyzeOpenAPICmd(s, g), newAnalyzeImageCmd(s, g), newAnalyzeClusterCmd(s, g))
	return cmd
}

func newAnalyzeOpenAPICmd(s *streams, g *globalOptions) *cobra.Command {
	o := &analyzeOpenAPIOptions{}
	cmd := &cobra.Command{
		Use:   "openapi FILE|URL...",
		Short: "List the operations of OpenAPI 3.0/3.1 and Swagger 2.0 documents",
		Long: `Read OpenAPI 3.0, 3.1 or Swagger 2.0 documents (JSON or YAML) from files or
http(s) URLs, such as springdoc's /v3/api-docs or springfox's /v2/api-docs.
Relative external $refs are followed. Every operation is listed with its full
path (the server URL's path or basePath included); validation problems are
reported with their location instead of failing.

Each document becomes one service, named after the file (or NAME=SOURCE). When a
document cannot be read the others are still analyzed and written, and the command
exits 1 with a summary of what failed.`,
		Example: `  migrate analyze openapi openapi.yml
  migrate analyze openapi orders=http://127.0.0.1:8080/v3/api-docs -o json
  migrate analyze openapi svc-a.yaml svc-b.json --inventory-out inventory.json`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.output, o.sources = g.output, args
			return runAnalyzeOpenAPI(cmd.Context(), o, s)
		},
	}
	cmd.Flags().StringVar(&o.inventoryOut, "inventory-out", "", "also write the migrate/v1 inventory to this file")
	return cmd
}

func newAnalyzeImageCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &analyzeImageOptions{}
	cmd := &cobra.Command{
		Use:   "image REF...",
		Short: "Analyze container images: build tool, Java, Spring Boot, dependencies",
		Long: `Read container images without running them and report how each was built
(jib, buildpacks, Dockerfile fat jar or layered jar), its Java runtime, Spring Boot
version, main class and libraries, then score readiness from the libraries.

REF is a registry reference (registry/repo:tag or @digest), docker-archive:PATH
(a 'docker save' tarball) or oci:DIR[:TAG] (an OCI image layout). Prefix NAME= to
name the service; otherwise it is named after the repository. When an image cannot
be read the others are still analyzed and written, and the command exits 1 with a
summary of what failed.`,
		Example: `  migrate analyze image ghcr.io/acme/order-service:1.4.2
  migrate analyze image docker-archive:order.tar oci:./product-layout:1.0 -o json
  migrate analyze image localhost:5000/shop/order-service:latest --insecure`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.output, o.refs = g.output, args
			if o.concurrency < 1 {
				return usageErrorf("--concurrency must be at least 1")
			}
			return runAnalyzeImage(cmd.Context(), o, s)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.inventoryOut, "inventory-out", "", "also write the migrate/v1 inventory to this file")
	f.StringVar(&o.platform, "platform", "", "platform to pick from a multi-platform image, os/arch[/variant] (default linux/amd64)")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS for the registry")
	f.IntVar(&o.concurrency, "concurrency", 4, "images analyzed at the same time")
	return cmd
}

func newAnalyzeClusterCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &analyzeClusterOptions{}
	cmd := &cobra.Command{
		Use:   "cluster -f FILE|DIR|- ...",
		Short: "Inventory the fleet from Kubernetes manifests or compose files",
		Long: `Read how the fleet is deployed from Kubernetes YAML/JSON (including 'kubectl get
-o yaml' Lists) or docker-compose files: workloads, replicas, ports, resources,
probes, environment variable names (never values) and dependencies.

--images also analyzes each workload's image (concurrently, with a progress bar on
a terminal; stock database, cache and broker images are skipped);
--image-override SERVICE=REF points a service at another image, e.g. one pushed
to a reachable registry. --probe reads live springdoc and actuator endpoints;
--openapi adds OpenAPI documents. Records are merged by service name.
An input that fails is recorded in the inventory's errors and the rest are still
analyzed and written; the command then exits 1 with a summary of what failed.`,
		Example: `  migrate analyze cluster -f k8s/
  kubectl get deploy,sts,svc,ingress -o yaml | migrate analyze cluster -f - --inventory-out inventory.json
  migrate analyze cluster -f docker-compose.yml --images --image-override order-service=localhost:5000/order:1 --insecure
  migrate analyze cluster -f k8s/ --probe order-service=http://127.0.0.1:8081 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.output = g.output
			if len(o.files) == 0 {
				return usageErrorf("-f is required: a manifest file, a directory of manifests, a compose file, or - for stdin")
			}
			if o.concurrency < 1 {
				return usageErrorf("--concurrency must be at least 1")
			}
			for _, ov := range o.overrides {
				if name, ref, ok := strings.Cut(ov, "="); !ok || name == "" || ref == "" {
					return usageErrorf("--image-override %q: want SERVICE=REF", ov)
				}
			}
			return runAnalyzeCluster(cmd.Context(), o, s)
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "file", "f", nil, "manifest or compose file, directory, or - for stdin (repeatable)")
	f.BoolVar(&o.images, "images", false, "also analyze each workload's container image")
	f.StringArrayVar(&o.overrides, "image-override", nil, "SERVICE=REF: analyze REF as SERVICE's image (repeatable; implies --images for it)")
	f.StringSliceVar(&o.probes, "probe", nil, "base URL of a live service to read springdoc and actuator from, optionally NAME=URL (repeatable, or comma-separated)")
	f.StringArrayVar(&o.openapi, "openapi", nil, "OpenAPI document (file or URL), optionally NAME=SOURCE (repeatable)")
	f.StringVar(&o.inventoryOut, "inventory-out", "", "also write the migrate/v1 inventory to this file")
	f.StringVar(&o.platform, "platform", "", "platform to pick from multi-platform images, os/arch[/variant]")
	f.BoolVar(&o.insecure, "insecure", false, "allow plain HTTP and unverified TLS for registries")
	f.IntVar(&o.concurrency, "concurrency", 4, "images analyzed at the same time")
	return cmd
}

// runAnalyzeOpenAPI analyzes each document as one service. With one input a
// failure is the command's error; with several it is recorded and reported.
func runAnalyzeOpenAPI(ctx context.Context, o *analyzeOpenAPIOptions, s *streams) error {
	var services []analyze.Service
	var failed []analyze.InputError
	for _, arg := range o.sources {
		name, src := splitNamed(arg)
		if name == "" {
			name = openAPIServiceName(src)
		}
		api, err := analyze.AnalyzeOpenAPI(ctx, src)
		if err != nil {
			if len(o.sources) == 1 {
				return err
			}
			failed = append(failed, analyze.InputError{Input: src, Service: name, Error: err.Error()})
			continue
		}
		services = append(services, analyze.Service{Name: name, Sources: []string{"openapi:" + src}, API: api})
	}
	inv, err := o.finish(s, services, failed, len(o.sources), "sources")
	if err != nil {
		return err
	}
	return renderPartial(s, o.output, inv, fmt.Sprintf("%d of %d sources analyzed", len(services), len(o.sources)), failed,
		func(tw *tableWriter) { operationsTable(tw, inv, s) })
}

// runAnalyzeImage analyzes the images concurrently, each as one service.
func runAnalyzeImage(ctx context.Context, o *analyzeImageOptions, s *streams) error {
	names := make([]string, len(o.refs))
	refs := make([]string, len(o.refs))
	for i, arg := range o.refs {
		names[i], refs[i] = splitNamed(arg)
		if names[i] == "" {
			names[i] = imageServiceName(refs[i])
		}
	}
	bar := newProgressBar(s, "analyzing images")
	images, errs := analyze.AnalyzeImages(ctx, refs, analyze.ImageOptions{Platform: o.platform, Insecure: o.insecure}, o.concurrency, bar.Update)
	bar.Finish()
	var services []analyze.Service
	var failed []analyze.InputError
	for i := range refs {
		if i < len(errs) && errs[i] != nil {
			if len(refs) == 1 {
				return errs[i]
			}
			failed = append(failed, analyze.InputError{Input: refs[i], Service: names[i], Error: errs[i].Error()})
			continue
		}
		if i < len(images) && images[i] != nil {
			services = append(services, analyze.Service{Name: names[i], Sources: []string{"image:" + refs[i]}, Image: images[i]})
		}
	}
	inv, err := o.finish(s, services, failed, len(refs), "images")
	if err != nil {
		return err
	}
	return renderPartial(s, o.output, inv, fmt.Sprintf("%d of %d images analyzed", len(services), len(refs)), failed,
		func(tw *tableWriter) { summaryTable(tw, inv, s) })
}

// runAnalyzeCluster reads the manifests, then adds images, probes and
// documents, and merges everything by service name.
func runAnalyzeCluster(ctx context.Context, o *analyzeClusterOptions, s *streams) error {
	services, failed := analyze.ReadCluster(o.files, s.in)
	if len(services) == 0 && len(failed) > 0 && len(o.files) == 1 && len(o.probes) == 0 && len(o.openapi) == 0 {
		return errors.New(oneLineError(failed[0]))
	}
	inputs := len(o.files)

	overrides := map[string]string{}
	for _, ov := range o.overrides {
		name, ref, _ := strings.Cut(ov, "=")
		overrides[name] = ref
	}
	known := map[string]bool{}
	for _, svc := range services {
		known[svc.Name] = true
	}
	for name := range overrides {
		if !known[name] {
			return usageErrorf("--image-override %s: no service of that name in the manifests", name)
		}
	}

	// Images: every workload's image with --images, and every override.
	var imgNames, imgRefs []string
	for _, svc := range services {
		ref := overrides[svc.Name]
		if ref == "" && o.images && svc.Deployment != nil && !analyze.IsBackingImage(svc.Deployment.Image) {
			// Stock database and broker images are not pulled: there is
			// no application in them to analyze.
			ref = svc.Deployment.Image
		}
		if ref != "" {
			imgNames, imgRefs = append(imgNames, svc.Name), append(imgRefs, ref)
		}
	}
	if len(imgRefs) > 0 {
		inputs += len(imgRefs)
		bar := newProgressBar(s, "analyzing images")
		images, errs := analyze.AnalyzeImages(ctx, imgRefs, analyze.ImageOptions{Platform: o.platform, Insecure: o.insecure}, o.concurrency, bar.Update)
		bar.Finish()
		for i, ref := range imgRefs {
			if i < len(errs) && errs[i] != nil {
				failed = append(failed, analyze.InputError{Input: ref, Service: imgNames[i], Error: errs[i].Error()})
				continue
			}
			if i < len(images) && images[i] != nil {
				services = append(services, analyze.Service{Name: imgNames[i], Sources: []string{"image:" + ref}, Image: images[i]})
			}
		}
	}

	// Probes run side by side: each is bounded by its own timeouts.
	inputs += len(o.probes)
	probed := make([]*analyze.Service, len(o.probes))
	probeErrs := make([]error, len(o.probes))
	var wg sync.WaitGroup
	for i, arg := range o.probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name, u := splitNamed(arg)
			svc, err := analyze.ProbeService(ctx, u)
			if err == nil && name != "" {
				svc.Name = name
			}
			probed[i], probeErrs[i] = svc, err
		}()
	}
	wg.Wait()
	for i, arg := range o.probes {
		name, u := splitNamed(arg)
		if probeErrs[i] != nil {
			failed = append(failed, analyze.InputError{Input: u, Service: name, Error: probeErrs[i].Error()})
			continue
		}
		services = append(services, *probed[i])
	}

	inputs += len(o.openapi)
	for _, arg := range o.openapi {
		name, src := splitNamed(arg)
		if name == "" {
			name = openAPIServiceName(src)
		}
		api, err := analyze.AnalyzeOpenAPI(ctx, src)
		if err != nil {
			failed = append(failed, analyze.InputError{Input: src, Service: name, Error: err.Error()})
			continue
		}
		services = append(services, analyze.Service{Name: name, Sources: []string{"openapi:" + src}, API: api})
	}

	inv, err := o.finish(s, services, failed, inputs, "inputs")
	if err != nil {
		return err
	}
	// A directory of manifests is one input but many files, so the summary
	// counts services, not inputs.
	return renderPartial(s, o.output, inv, fmt.Sprintf("%s analyzed", plural(len(inv.Services), "service")), failed,
		func(tw *tableWriter) { summaryTable(tw, inv, s) })
}

// finish builds the inventory and writes --inventory-out with what could
// be analyzed. It fails when no input could be analyzed; when only some
// failed, the caller renders the inventory and then returns partial's error,
// so the command still exits non-zero (a pipeline must not take a partial
// inventory for a whole one).
func (o *analyzeCommon) finish(s *streams, services []analyze.Service, failed []analyze.InputError, inputs int, noun string) (*analyze.Inventory, error) {
	now := time.Now
	if o.now != nil {
		now = o.now
	}
	inv := analyze.NewInventory(now(), services, failed)
	if len(services) == 0 && len(failed) > 0 {
		return nil, failureSummary(fmt.Sprintf("0 of %d %s analyzed", inputs, noun), failed)
	}
	if o.inventoryOut != "" {
		if err := analyze.WriteInventory(o.inventoryOut, inv); err != nil {
			return nil, err
		}
		fmt.Fprintf(s.err, "wrote %s (%d services)\n", o.inventoryOut, len(inv.Services))
	}
	return inv, nil
}

// failureSummary is the error of a run where some inputs failed: the counts,
// then each failed input with its reason.
func failureSummary(lead string, failed []analyze.InputError) error {
	if len(failed) == 0 {
		return nil
	}
	if len(failed) == 1 {
		return fmt.Errorf("%s; 1 failed: %s", lead, summaryLine(failed[0]))
	}
	lines := make([]string, len(failed))
	for i, e := range failed {
		lines[i] = "  " + summaryLine(e)
	}
	return fmt.Errorf("%s; %d failed:\n%s", lead, len(failed), strings.Join(lines, "\n"))
}

// summaryLine names the service a failed input was for, unless it says so.
func summaryLine(e analyze.InputError) string {
	line := oneLineError(e)
	if e.Service != "" && !strings.Contains(line, e.Service) {
		return e.Service + ": " + line
	}
	return line
}

// renderPartial renders the inventory, then reports the failed inputs as
// the command's error (exit 1).
func renderPartial(s *streams, output string, inv *analyze.Inventory, lead string, failed []analyze.InputError, table func(*tableWriter)) error {
	if err := render(s.out, output, inv, table); err != nil {
		return err
	}
	return failureSummary(lead, failed)
}

func oneLineError(e analyze.InputError) string {
	msg := strings.Join(strings.Fields(e.Error), " ")
	if strings.Contains(msg, e.Input) {
		return msg
	}
	return e.Input + ": " + msg
}

// summaryTable is the people's view of an inventory: one row per service.
func summaryTable(tw *tableWriter, inv *analyze.Inventory, s *streams) {
	row(tw, "SERVICE", "READINESS", "SCORE", "SPIN", "WASMCLOUD", "BUILD", "JAVA", "SPRING BOOT", "OPS", "FINDINGS")
	for _, svc := range inv.Services {
		build, java, boot := "-", "-", "-"
		if img := svc.Image; img != nil {
			build = orDash(img.BuildTool)
			if img.Java != nil {
				java = orDash(img.Java.Version)
			}
			if img.SpringBoot != nil {
				boot = orDash(img.SpringBoot.Version)
			}
		}
		if java == "-" && svc.Runtime != nil && svc.Runtime.Info["java.version"] != "" {
			java = svc.Runtime.Info["java.version"]
		}
		ops := "-"
		if svc.API != nil {
			ops = strconv.Itoa(len(svc.API.Operations))
		} else if svc.Runtime != nil && len(svc.Runtime.Routes) > 0 {
			ops = strconv.Itoa(len(svc.Runtime.Routes))
		}
		r := svc.Readiness
		if slices.ContainsFunc(svc.Findings, func(f analyze.Finding) bool { return f.ID == analyze.BackingServiceRule }) {
			// A stock database or broker: not a migration candidate.
			row(tw, svc.Name, s.paint(colorDim, "backing service"), "-", "-", "-", build, java, boot, ops, "-")
			continue
		}
		row(tw, svc.Name, paintLevel(s, r.Level), r.Score, paintLevel(s, r.Targets["spin"]), paintLevel(s, r.Targets["wasmcloud"]),
			build, java, boot, ops, findingsSummary(svc.Findings))
	}
	if len(inv.Order) > 0 {
		tw.Flush()
		fmt.Fprintf(tw, "\nmigration order: %s\n", strings.Join(inv.Order, " → "))
	}
	inputErrorsTable(tw, inv)
}

// findingsSummary counts findings by category: "3 (1 mandatory)".
func findingsSummary(fs []analyze.Finding) string {
	if len(fs) == 0 {
		return "0"
	}
	mandatory := 0
	for _, f := range fs {
		if f.Category == analyze.CategoryMandatory {
			mandatory++
		}
	}
	if mandatory == 0 {
		return strconv.Itoa(len(fs))
	}
	return fmt.Sprintf("%d (%d mandatory)", len(fs), mandatory)
}

// operationsTable lists every operation of every document, then problems.
func operationsTable(tw *tableWriter, inv *analyze.Inventory, s *streams) {
	row(tw, "SERVICE", "METHOD", "PATH", "OPERATION ID", "TAGS")
	for _, svc := range inv.Services {
		if svc.API == nil {
			continue
		}
		if len(svc.API.Operations) == 0 {
			row(tw, svc.Name, "-", s.paint(colorDim, "(no operations)"), "-", "-")
		}
		for _, op := range svc.API.Operations {
			row(tw, svc.Name, op.Method, op.Path, orDash(op.OperationID), orDash(strings.Join(op.Tags, ",")))
		}
	}
	tw.Flush()
	fmt.Fprintln(tw)
	for _, svc := range inv.Services {
		if svc.API == nil {
			continue
		}
		fmt.Fprintf(tw, "%s: %s (%s), %d operations", svc.Name, svc.API.Source, svc.API.Format, len(svc.API.Operations))
		if n := len(svc.API.Problems); n > 0 {
			fmt.Fprintf(tw, ", %s\n", s.paint(colorYellow, plural(n, "problem")))
			for _, p := range svc.API.Problems {
				fmt.Fprintf(tw, "  %s\t%s\n", p.Location, p.Message)
			}
			tw.Flush()
		} else {
			fmt.Fprintln(tw)
		}
	}
	inputErrorsTable(tw, inv)
}

func inputErrorsTable(tw *tableWriter, inv *analyze.Inventory) {
	if len(inv.Errors) == 0 {
		return
	}
	tw.Flush()
	fmt.Fprintf(tw, "\n%s could not be analyzed:\n", plural(len(inv.Errors), "input"))
	for _, e := range inv.Errors {
		fmt.Fprintf(tw, "  %s\t%s\n", orDash(e.Service), oneLineError(e))
	}
}

func paintLevel(s *streams, level string) string {
	switch level {
	case analyze.LevelReady:
		return s.paint(colorGreen, level)
	case analyze.LevelReadyWithConditions:
		return s.paint(colorYellow, level)
	case analyze.LevelNotReady:
		return s.paint(colorRed, level)
	case "":
		return "-"
	}
	return s.paint(colorDim, level)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func orDash(v string) string {
	if v == "" {
		return "-"
	}
	return v
}

// namedPrefix is a service name in front of "=" in NAME=SOURCE arguments.
var namedPrefix = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// splitNamed splits "NAME=SOURCE"; a plain SOURCE (including URLs whose
// query strings hold "=") gives an empty name.
func splitNamed(arg string) (name, source string) {
	if n, src, ok := strings.Cut(arg, "="); ok && namedPrefix.MatchString(n) && src != "" {
		return n, src
	}
	return "", arg
}

// genericDocNames are file names that say nothing about the service.
var genericDocNames = map[string]bool{"openapi": true, "swagger": true, "api-docs": true, "api": true, "spec": true, "index": true, "v3": true, "v2": true}

// openAPIServiceName names a service after its document: the file name
// without extension, or the directory when the file name is generic
// (spec/swagger.json → spec's parent). For a URL, the host: a DNS name's
// first label (order-service.shop.svc → order-service), an IP with its port.
func openAPIServiceName(src string) string {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		if u, err := url.Parse(src); err == nil {
			host := u.Hostname()
			if host == "localhost" || net.ParseIP(host) != nil {
				return u.Host
			}
			first, _, _ := strings.Cut(host, ".")
			return first
		}
		return src
	}
	p := filepath.ToSlash(filepath.Clean(src))
	for {
		base := path.Base(p)
		stem := strings.TrimSuffix(base, path.Ext(base))
		stem = strings.TrimSuffix(stem, ".openapi")
		if !genericDocNames[strings.ToLower(stem)] || path.Dir(p) == p || path.Dir(p) == "." || path.Dir(p) == "/" {
			return stem
		}
		p = path.Dir(p)
	}
}

// imageServiceName names a service after its image repository:
// registry/shop/order-service:1.0 → order-service, docker-archive:x/order.tar
// → order, oci:dir/order-layout:tag → order-layout.
func imageServiceName(ref string) string {
	switch {
	case strings.HasPrefix(ref, "docker-archive:"):
		base := path.Base(filepath.ToSlash(strings.TrimPrefix(ref, "docker-archive:")))
		return strings.TrimSuffix(base, path.Ext(base))
	case strings.HasPrefix(ref, "oci:"):
		dir := strings.TrimPrefix(ref, "oci:")
		if i := strings.LastIndexByte(dir, ':'); i > 0 && !strings.Contains(dir[i:], "/") {
			dir = dir[:i]
		}
		return path.Base(filepath.ToSlash(filepath.Clean(dir)))
	}
	repo, _, _ := strings.Cut(ref, "@")
	last := path.Base(repo)
	if i := strings.IndexByte(last, ':'); i > 0 {
		last = last[:i]
	}
	return last
}
