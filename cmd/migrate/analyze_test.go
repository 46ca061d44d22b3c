package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/fixtures"
)

// openAPITestdata is the analyze package's copy of the public documents.
func openAPITestdata(name string) string {
	return filepath.Join("..", "..", "analyze", "testdata", "openapi", name)
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC) }

func testStreams(terminal bool) (*streams, *bytes.Buffer, *bytes.Buffer) {
	var out, errOut bytes.Buffer
	return &streams{in: strings.NewReader(""), out: &out, err: &errOut, terminal: terminal}, &out, &errOut
}

func decodeInventory(t *testing.T, data []byte) *analyze.Inventory {
	t.Helper()
	inv, err := analyze.DecodeInventory(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("output is not an inventory: %v\n%s", err, data)
	}
	return inv
}

func TestAnalyzeOpenAPITable(t *testing.T) {
	s, out, _ := testStreams(false)
	o := &analyzeOpenAPIOptions{analyzeCommon: analyzeCommon{output: "table", now: fixedNow},
		sources: []string{openAPITestdata("spring-petclinic-rest.openapi.yml"), "petstore=" + openAPITestdata("swagger2-petstore-separate/spec/swagger.json")}}
	if err := runAnalyzeOpenAPI(context.Background(), o, s); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"SERVICE", "OPERATION ID",
		"spring-petclinic-rest  GET     /petclinic/api/owners",
		"petstore               DELETE  /api/pets/{id}",
		"(swagger-2.0), 4 operations\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "problem") {
		t.Errorf("valid documents reported with problems:\n%s", text)
	}
}

func TestAnalyzeOpenAPIJSONAndInventoryOut(t *testing.T) {
	s, out, errOut := testStreams(false)
	invPath := filepath.Join(t.TempDir(), "inventory.json")
	o := &analyzeOpenAPIOptions{analyzeCommon: analyzeCommon{output: "json", inventoryOut: invPath, now: fixedNow},
		sources: []string{openAPITestdata("oas30-uspto.yaml"), openAPITestdata("oas31-webhook-example.yaml"), "missing.yaml"}}
	// One failed input of three: the other two are still written, and the
	// run fails with a summary naming the input that failed.
	err := runAnalyzeOpenAPI(context.Background(), o, s)
	if exitCode(err) != exitError || !strings.HasPrefix(err.Error(), "2 of 3 sources analyzed; 1 failed: missing.yaml: ") ||
		!strings.Contains(err.Error(), "no such file") {
		t.Fatalf("err = %v, want exit 1 with a summary", err)
	}
	inv := decodeInventory(t, out.Bytes())
	if len(inv.Services) != 2 || inv.Services[0].Name != "oas30-uspto" || inv.Services[1].API.Format != analyze.FormatOpenAPI31 {
		t.Fatalf("services = %+v", inv.Services)
	}
	if len(inv.Errors) != 1 || inv.Errors[0].Input != "missing.yaml" || !strings.Contains(inv.Errors[0].Error, "no such file") {
		t.Errorf("errors = %+v", inv.Errors)
	}
	if !strings.Contains(errOut.String(), "wrote "+invPath) {
		t.Errorf("stderr = %q", errOut.String())
	}
	fromFile, err := analyze.ReadInventory(invPath)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromFile, inv) {
		t.Error("--inventory-out differs from -o json")
	}
}

// TestAnalyzeExitCodes runs the real command tree: a single bad input is
// exit 1 with one line naming it; a bad flag is exit 2.
func TestAnalyzeExitCodes(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte("openapi: 3.0.0\ninfo: [\n"), 0o644)
	tests := []struct {
		args    []string
		code    int
		stderr  string
		oneLine bool
	}{
		{[]string{"analyze", "openapi", openAPITestdata("swagger2-uber.json")}, exitOK, "", false},
		{[]string{"analyze", "openapi", broken}, exitError, "error: " + broken + ": not valid YAML or JSON", true},
		{[]string{"analyze", "openapi", filepath.Join(dir, "nope.json")}, exitError, "nope.json: no such file", true},
		{[]string{"analyze", "openapi"}, exitUsage, "requires at least 1 arg", false},
		{[]string{"analyze", "image", "docker-archive:" + filepath.Join(dir, "none.tar")}, exitError, "none.tar", true},
		{[]string{"analyze", "image", "x", "--concurrency", "0"}, exitUsage, "--concurrency", false},
		{[]string{"analyze", "cluster"}, exitUsage, "-f is required", false},
		{[]string{"analyze", "cluster", "-f", filepath.Join(dir, "none.yaml")}, exitError, "none.yaml", true},
		{[]string{"analyze", "cluster", "-f", broken, "--image-override", "nonsense"}, exitUsage, "SERVICE=REF", false},
		// A bad file among good ones: the good ones are analyzed, the run fails with a summary.
		{[]string{"analyze", "openapi", openAPITestdata("swagger2-uber.json"), broken, openAPITestdata("oas30-uspto.yaml")},
			exitError, "error: 2 of 3 sources analyzed; 1 failed: " + broken + ": not valid YAML or JSON", true},
		{[]string{"analyze", "openapi", broken, filepath.Join(dir, "nope.json")}, exitError, "0 of 2 sources analyzed; 2 failed:\n  " + broken, false},
		{[]string{"analyze", "image", "docker-archive:" + filepath.Join(dir, "a.tar"), "docker-archive:" + filepath.Join(dir, "b.tar")},
			exitError, "0 of 2 images analyzed; 2 failed:", false},
		// Unknown subcommands of a parent command are usage errors, with a suggestion.
		{[]string{"analyze", "bogus"}, exitUsage, `unknown command "bogus" for "migrate analyze"; choose one of cluster, image, openapi`, false},
		{[]string{"analyze", "opnapi"}, exitUsage, `did you mean "openapi"?`, false},
		{[]string{"completion", "fsh"}, exitUsage, `did you mean "fish"?`, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args[1:], " "), func(t *testing.T) {
			_, stderr, code := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.stderr)
			}
			if tt.oneLine && strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Errorf("error is not one line: %q", stderr)
			}
		})
	}
}

func TestAnalyzeImageDockerArchive(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "order-service.tar")
	if err := fixtures.WriteDockerArchive(archive, fixtures.OrderService); err != nil {
		t.Fatal(err)
	}
	s, out, errOut := testStreams(true) // a terminal: the progress bar draws
	o := &analyzeImageOptions{analyzeCommon: analyzeCommon{output: "table", now: fixedNow},
		refs: []string{"docker-archive:" + archive, "broken=docker-archive:" + filepath.Join(dir, "none.tar")}, concurrency: 2}
	if err := runAnalyzeImage(context.Background(), o, s); exitCode(err) != exitError || !strings.HasPrefix(err.Error(), "1 of 2 images analyzed; 1 failed: ") {
		t.Fatalf("err = %v, want exit 1 with a summary", err)
	}
	text := out.String()
	for _, want := range []string{"READINESS", "order-service", "jib", "17.0.13", "3.4", "1 input could not be analyzed", "broken"} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(errOut.String(), "analyzing images [") || !strings.Contains(errOut.String(), "2/2") {
		t.Errorf("no progress bar on stderr: %q", errOut.String())
	}
}

// TestAnalyzeClusterEndToEnd is the fleet journey: the fixture manifests,
// each service's image from a loopback registry (via --image-override), and
// live probes of the running fixture fleet, merged into one inventory that
// reads back unchanged.
func TestAnalyzeClusterEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	if err := os.CopyFS(dir, fixtures.Cluster); err != nil {
		t.Fatal(err)
	}
	fleet, err := fixtures.StartFleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	refs, err := fixtures.PushFleet(ctx, strings.TrimPrefix(reg.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}

	o := &analyzeClusterOptions{analyzeCommon: analyzeCommon{output: "json", inventoryOut: filepath.Join(dir, "inventory.json"), now: fixedNow},
		files: []string{filepath.Join(dir, "cluster", "k8s")}, images: true, insecure: true, concurrency: 4}
	for _, svc := range fixtures.ServiceNames {
		ref := refs[svc]
		if svc == fixtures.NotificationService {
			ref = strings.TrimPrefix(reg.URL, "http://") + "/shop/missing:1" // a failing image
		}
		o.overrides = append(o.overrides, svc+"="+ref)
		o.probes = append(o.probes, svc+"="+fleet.URL(svc))
	}
	s, out, errOut := testStreams(false)
	// The failing image fails the run, after everything else is written.
	if err := runAnalyzeCluster(ctx, o, s); exitCode(err) != exitError ||
		!strings.Contains(err.Error(), "services analyzed; 1 failed: ") || !strings.Contains(err.Error(), "shop/missing:1") {
		t.Fatalf("runAnalyzeCluster: %v, want exit 1 naming the failed image\n%s", err, errOut)
	}
	inv := decodeInventory(t, out.Bytes())
	back, err := analyze.ReadInventory(o.inventoryOut)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inv, back) {
		t.Fatal("inventory file differs from the JSON output")
	}

	byName := map[string]analyze.Service{}
	for _, svc := range inv.Services {
		byName[svc.Name] = svc
	}
	for _, name := range fixtures.ServiceNames {
		svc, ok := byName[name]
		if !ok {
			t.Fatalf("no %s in %v", name, inv.Order)
		}
		if svc.Deployment == nil || svc.Runtime == nil || svc.API == nil {
			t.Errorf("%s: merge lost a part (deployment %v, runtime %v, api %v)", name, svc.Deployment != nil, svc.Runtime != nil, svc.API != nil)
		}
		if name != fixtures.NotificationService && (svc.Image == nil || svc.Image.BuildTool == "") {
			t.Errorf("%s: no image analysis", name)
		}
		if svc.Readiness.Level == analyze.LevelUnknown || len(svc.Findings) == 0 {
			t.Errorf("%s: not assessed: %+v", name, svc.Readiness)
		}
		var kinds []string
		for _, src := range svc.Sources {
			kind, _, _ := strings.Cut(src, ":")
			kinds = append(kinds, kind)
		}
		for _, want := range []string{"probe", "actuator", "openapi"} {
			if !slices.Contains(kinds, want) {
				t.Errorf("%s: sources %v lack %s", name, svc.Sources, want)
			}
		}
	}
	if ops := byName[fixtures.OrderService].API.Operations; len(ops) != 2 {
		t.Errorf("order-service operations = %+v", ops)
	}
	failedImage := false
	for _, e := range inv.Errors {
		failedImage = failedImage || (e.Service == fixtures.NotificationService && strings.Contains(e.Input, "missing"))
	}
	if !failedImage {
		t.Errorf("the failing image is not recorded: %+v", inv.Errors)
	}
	// --images skips stock images: only the override failed, and the
	// backing services are shown as such, outside the migration order.
	if len(inv.Errors) != 1 {
		t.Errorf("errors = %+v, want only the failing override", inv.Errors)
	}
	for _, backing := range []string{"postgres", "redis", "kafka", "nats"} {
		svc, ok := byName[backing]
		if !ok || len(svc.Findings) != 1 || svc.Findings[0].ID != analyze.BackingServiceRule || slices.Contains(inv.Order, backing) {
			t.Errorf("%s: %+v, order %v", backing, svc.Findings, inv.Order)
		}
	}
	if i, j := slices.Index(inv.Order, fixtures.InventoryService), slices.Index(inv.Order, fixtures.OrderService); i < 0 || j < 0 || i > j {
		t.Errorf("order %v: inventory-service must come before order-service, which calls it", inv.Order)
	}
	raw, _ := os.ReadFile(o.inventoryOut)
	if bytes.Contains(raw, []byte(fixtures.ClusterSecretSentinel)) || bytes.Contains(raw, []byte("******")) {
		t.Error("a secret value reached the inventory")
	}

	// The same run as a table, for people.
	o.output, o.inventoryOut = "table", ""
	s, out, _ = testStreams(false)
	if err := runAnalyzeCluster(ctx, o, s); exitCode(err) != exitError {
		t.Fatal(err)
	}
	for _, want := range []string{"SPRING BOOT", "order-service", "jib", "migration order:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestProgressBar(t *testing.T) {
	s, _, errOut := testStreams(true)
	bar := newProgressBar(s, "images")
	bar.Update(0, 4)
	bar.Update(1, 4) // throttled: within progressInterval of the last draw
	bar.Update(4, 4) // the last update always draws
	bar.Finish()
	got := errOut.String()
	if !strings.Contains(got, "images [..............................] 0/4") || !strings.Contains(got, "images [##############################] 4/4") {
		t.Errorf("bar = %q", got)
	}
	if strings.Contains(got, "1/4") {
		t.Errorf("update within the interval was drawn: %q", got)
	}
	if !strings.HasSuffix(got, "\r\x1b[K") {
		t.Errorf("Finish did not clear the line: %q", got)
	}

	s, _, errOut = testStreams(false)
	bar = newProgressBar(s, "images")
	bar.Update(1, 2)
	bar.Finish()
	if errOut.Len() != 0 {
		t.Errorf("drew on a non-terminal: %q", errOut.String())
	}
}

func TestServiceNames(t *testing.T) {
	openapi := map[string]string{
		"openapi/product-service.yaml":                   "product-service",
		"spring-petclinic-rest.openapi.yml":              "spring-petclinic-rest",
		"orders/openapi.json":                            "orders",
		"petstore/spec/swagger.json":                     "petstore",
		"http://order-service.shop.svc:8080/v3/api-docs": "order-service",
		"http://127.0.0.1:8081/v3/api-docs":              "127.0.0.1:8081",
		"openapi.yaml":                                   "openapi",
	}
	for in, want := range openapi {
		if got := openAPIServiceName(in); got != want {
			t.Errorf("openAPIServiceName(%q) = %q, want %q", in, got, want)
		}
	}
	images := map[string]string{
		"ghcr.io/acme/order-service:1.4.2":     "order-service",
		"localhost:5000/shop/product-service":  "product-service",
		"registry/x/inventory@sha256:abc":      "inventory",
		"docker-archive:/tmp/notification.tar": "notification",
		"oci:./layouts/order-layout:1.0":       "order-layout",
		"oci:/var/lib/oci/product":             "product",
	}
	for in, want := range images {
		if got := imageServiceName(in); got != want {
			t.Errorf("imageServiceName(%q) = %q, want %q", in, got, want)
		}
	}
	named := map[string][2]string{
		"orders=openapi.yaml":              {"orders", "openapi.yaml"},
		"http://x/api-docs?group=a":        {"", "http://x/api-docs?group=a"},
		"orders=http://x/api-docs?group=a": {"orders", "http://x/api-docs?group=a"},
		"docker-archive:a=b.tar":           {"", "docker-archive:a=b.tar"},
		"=x":                               {"", "=x"},
	}
	for in, want := range named {
		if n, src := splitNamed(in); n != want[0] || src != want[1] {
			t.Errorf("splitNamed(%q) = %q, %q; want %q, %q", in, n, src, want[0], want[1])
		}
	}
}

// The JSON output is a migrate/v1 document, as every machine-readable output is.
func TestAnalyzeOpenAPIYAMLIsVersioned(t *testing.T) {
	stdout, _, code := runCLI(t, "analyze", "openapi", openAPITestdata("swagger2-petstore.json"), "-o", "yaml")
	if code != exitOK || !strings.Contains(stdout, "apiVersion: migrate/v1") || !strings.Contains(stdout, "path: /v1/pets") {
		t.Fatalf("exit %d:\n%s", code, stdout)
	}
}

// TestAnalyzeClusterStdinAndExtras reads a `kubectl get -o yaml` List from
// stdin, adds an OpenAPI document by name, and records a probe that fails.
func TestAnalyzeClusterStdinAndExtras(t *testing.T) {
	list, err := fixtures.Cluster.ReadFile("cluster/kubectl-list.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dead := httptest.NewServer(nil)
	deadURL := dead.URL
	dead.Close()

	s, out, _ := testStreams(false)
	s.in = bytes.NewReader(list)
	o := &analyzeClusterOptions{analyzeCommon: analyzeCommon{output: "json", now: fixedNow}, files: []string{"-"}, concurrency: 1,
		openapi: []string{fixtures.ProductService + "=" + openAPITestdata("oas30-petstore-expanded.yaml")},
		probes:  []string{fixtures.OrderService + "=" + deadURL}}
	// A dead probe fails the run (exit 1), after the rest is rendered.
	if err := runAnalyzeCluster(context.Background(), o, s); exitCode(err) != exitError || !strings.Contains(err.Error(), "services analyzed; 1 failed: "+fixtures.OrderService+": probe "+deadURL) {
		t.Fatalf("err = %v, want exit 1 naming the dead probe", err)
	}
	inv := decodeInventory(t, out.Bytes())
	var product *analyze.Service
	for i := range inv.Services {
		if inv.Services[i].Name == fixtures.ProductService {
			product = &inv.Services[i]
		}
	}
	if product == nil || product.Deployment == nil || product.API == nil || len(product.API.Operations) != 4 {
		t.Fatalf("product-service = %+v", product)
	}
	if len(inv.Errors) == 0 || inv.Errors[len(inv.Errors)-1].Input != deadURL {
		t.Errorf("the dead probe is not recorded: %+v", inv.Errors)
	}

	// Every image analysis failing fails the run too, though the manifests
	// were read: the inventory lacks what was asked for.
	s, out, _ = testStreams(false)
	s.in = bytes.NewReader(list)
	missing := "docker-archive:" + filepath.Join(t.TempDir(), "none.tar")
	o = &analyzeClusterOptions{analyzeCommon: analyzeCommon{output: "json", now: fixedNow}, files: []string{"-"}, concurrency: 2,
		overrides: []string{fixtures.OrderService + "=" + missing, fixtures.ProductService + "=" + missing}}
	err = runAnalyzeCluster(context.Background(), o, s)
	if exitCode(err) != exitError || !strings.Contains(err.Error(), "services analyzed; 2 failed:\n  ") ||
		!strings.Contains(err.Error(), "  "+fixtures.OrderService+": ") || !strings.Contains(err.Error(), "  "+fixtures.ProductService+": ") {
		t.Errorf("every image failing: err = %v, want exit 1 naming both", err)
	}
	if inv := decodeInventory(t, out.Bytes()); len(inv.Errors) != 2 || len(inv.Services) == 0 {
		t.Errorf("every image failing: the manifests' services were not written: %+v", inv.Errors)
	}

	s, _, _ = testStreams(false)
	s.in = bytes.NewReader(list)
	o = &analyzeClusterOptions{analyzeCommon: analyzeCommon{output: "json"}, files: []string{"-"}, concurrency: 1,
		overrides: []string{"no-such-service=x:1"}}
	if err := runAnalyzeCluster(context.Background(), o, s); exitCode(err) != exitUsage {
		t.Errorf("override of an unknown service: err = %v, want a usage error", err)
	}
}
