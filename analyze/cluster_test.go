package analyze_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/fixtures"
)

// clusterFixtureDir copies the embedded cluster fixtures to a temp dir.
func clusterFixtureDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	err := fs.WalkDir(fixtures.Cluster, "cluster", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		target := filepath.Join(dir, p)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := fs.ReadFile(fixtures.Cluster, p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "cluster")
}

func byName(services []analyze.Service) map[string]analyze.Service {
	m := map[string]analyze.Service{}
	for _, s := range services {
		m[s.Name] = s
	}
	return m
}

func TestReadClusterKubernetes(t *testing.T) {
	dir := clusterFixtureDir(t)
	for _, input := range []string{filepath.Join(dir, "k8s"), filepath.Join(dir, "kubectl-list.yaml")} {
		t.Run(filepath.Base(input), func(t *testing.T) {
			services, errs := analyze.ReadCluster([]string{input}, nil)
			if len(errs) != 0 {
				t.Fatalf("errors: %+v", errs)
			}
			got := byName(services)
			if len(services) != 8 {
				t.Errorf("%d services, want 4 + postgres, redis, nats, kafka", len(services))
			}
			order := got[fixtures.OrderService].Deployment
			if order == nil {
				t.Fatalf("no order-service in %v", services)
			}
			want := analyze.Deployment{
				Kind: "Deployment", Replicas: 3, Image: fixtures.ImageRef(fixtures.OrderService),
				Ports: []analyze.Port{{Name: "http", Port: 8080, Protocol: "TCP"}},
				Resources: analyze.Resources{
					Requests: map[string]string{"cpu": "500m", "memory": "768Mi"},
					Limits:   map[string]string{"cpu": "1", "memory": "1Gi"},
				},
				Probes: []analyze.Probe{
					{Type: "readiness", Path: "/actuator/health", Port: "http"},
					{Type: "liveness", Path: "/actuator/health", Port: "http"},
					{Type: "startup", Path: "/actuator/health", Port: "http"},
				},
				Env: []string{"SPRING_PROFILES_ACTIVE", "SPRING_DATASOURCE_URL", "SPRING_DATASOURCE_USERNAME",
					"SPRING_DATASOURCE_PASSWORD", "INVENTORY_URL", "NATS_URL", "RESILIENCE4J_CIRCUITBREAKER_INSTANCES_INVENTORY_SLIDINGWINDOWSIZE"},
				DependsOn: []string{"inventory-service", "nats", "postgres"},
				Routes:    []string{"/api/order"},
				Upstream:  "http://order-service.shop:80",
			}
			if !reflect.DeepEqual(*order, want) {
				t.Errorf("order-service deployment:\n got %+v\nwant %+v", *order, want)
			}
			if s := got[fixtures.OrderService]; s.Namespace != "shop" || len(s.Sources) == 0 {
				t.Errorf("namespace %q sources %v", s.Namespace, s.Sources)
			}
			for svc, deps := range map[string][]string{
				fixtures.ProductService: {"redis"}, fixtures.InventoryService: {"postgres"},
				fixtures.NotificationService: {"kafka"}, "postgres": nil,
			} {
				if d := got[svc].Deployment; d == nil || !reflect.DeepEqual(d.DependsOn, deps) {
					t.Errorf("%s depends on %v, want %v", svc, d, deps)
				}
			}
			if r := got[fixtures.ProductService].Deployment.Routes; !reflect.DeepEqual(r, []string{"/api/product"}) {
				t.Errorf("product routes %v", r)
			}
			if k := got["postgres"].Deployment.Kind; k != "StatefulSet" {
				t.Errorf("postgres kind %q", k)
			}
			assertNoSecrets(t, services)
		})
	}
}

// assertNoSecrets fails if any value from the fixtures' env or Secret leaked.
func assertNoSecrets(t *testing.T, services []analyze.Service) {
	t.Helper()
	b, _ := json.Marshal(services)
	for _, leak := range []string{fixtures.ClusterSecretSentinel, "jdbc:", "secretKeyRef", "postgres-credentials", "kubectl.kubernetes.io"} {
		if strings.Contains(string(b), leak) {
			t.Errorf("inventory contains %q", leak)
		}
	}
}

func TestReadClusterCompose(t *testing.T) {
	dir := clusterFixtureDir(t)
	services, errs := analyze.ReadCluster([]string{filepath.Join(dir, "docker-compose.yml")}, nil)
	if len(errs) != 0 {
		t.Fatalf("errors: %+v", errs)
	}
	got := byName(services)
	order := got[fixtures.OrderService].Deployment
	want := analyze.Deployment{
		Kind: "compose", Replicas: 2, Image: fixtures.ImageRef(fixtures.OrderService),
		Ports: []analyze.Port{{Port: 8080, Protocol: "TCP"}},
		Resources: analyze.Resources{
			Requests: map[string]string{"cpu": "0.5", "memory": "768M"},
			Limits:   map[string]string{"cpu": "1", "memory": "1G"},
		},
		Env:       []string{"SPRING_DATASOURCE_URL", "SPRING_DATASOURCE_USERNAME", "SPRING_DATASOURCE_PASSWORD", "INVENTORY_URL", "NATS_URL"},
		DependsOn: []string{"inventory-service", "nats", "postgres"},
		Upstream:  "http://order-service:8080",
	}
	if order == nil || !reflect.DeepEqual(*order, want) {
		t.Errorf("order-service:\n got %+v\nwant %+v", order, want)
	}
	product := got[fixtures.ProductService].Deployment
	if product.Upstream != "http://product-service:8080" || !reflect.DeepEqual(product.DependsOn, []string{"redis"}) ||
		!reflect.DeepEqual(product.Probes, []analyze.Probe{{Type: "readiness", Path: "/actuator/health", Port: "8080"}}) {
		t.Errorf("product-service: %+v", product)
	}
	if d := got[fixtures.NotificationService].Deployment; !reflect.DeepEqual(d.DependsOn, []string{"kafka"}) {
		t.Errorf("notification depends on %v", d.DependsOn)
	}
	assertNoSecrets(t, services)
}

// TestReadClusterStdinAndMerge reads the list from stdin plus the compose
// file: one Service per name, sources from both.
func TestReadClusterStdinAndMerge(t *testing.T) {
	dir := clusterFixtureDir(t)
	f, err := os.Open(filepath.Join(dir, "kubectl-list.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	services, errs := analyze.ReadCluster([]string{"-", filepath.Join(dir, "docker-compose.yml")}, f)
	if len(errs) != 0 {
		t.Fatalf("errors: %+v", errs)
	}
	if len(services) != 8 {
		t.Errorf("%d services", len(services))
	}
	order := byName(services)[fixtures.OrderService]
	if order.Deployment.Kind != "Deployment" || len(order.Sources) != 4 || !strings.HasPrefix(order.Sources[0], "stdin#1 items[") || !strings.HasSuffix(order.Sources[3], "docker-compose.yml#services.order-service") {
		t.Errorf("order-service: kind %q sources %v", order.Deployment.Kind, order.Sources)
	}
}

func TestReadClusterProblems(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mixed := write("mixed.yaml", `apiVersion: apps/v1
kind: Deployment
metadata: {name: good}
spec:
  template:
    spec:
      containers: [{name: good, image: "good:1", env: [{name: API_URL, value: "http://billing.other.svc.cluster.local:8080/x"}]}]
---
kind: Deployment
metadata: {name: broken
  spec: [
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: typed}
spec: {replicas: "three"}
---
just: a map
`)
	compose := write("compose.yaml", "services:\n  web:\n    ports: [\"eighty\"]\n  api:\n    image: api:1\n")
	services, errs := analyze.ReadCluster([]string{mixed, compose, filepath.Join(dir, "missing.yaml"), t.TempDir()}, nil)
	if len(services) != 2 || services[0].Name != "good" || services[1].Name != "api" {
		t.Errorf("services %+v", services)
	}
	if deps := services[0].Deployment.DependsOn; !reflect.DeepEqual(deps, []string{"billing"}) {
		t.Errorf("depends on %v", deps)
	}
	want := []string{
		mixed + ": document 2: ",
		mixed + `: document 3: kind CronJob "nightly" skipped`,
		mixed + `: document 5 (Deployment "typed"): spec:`,
		mixed + ": document 6: no kind",
		compose + ": services.web: ports: eighty is not a port",
		filepath.Join(dir, "missing.yaml") + ": no such file or directory",
		": directory has no *.yaml",
	}
	if len(errs) != len(want) {
		t.Errorf("errors %+v", errs)
	}
	for i := range min(len(errs), len(want)) {
		if got := errs[i].Input + ": " + errs[i].Error; !strings.Contains(got, want[i]) {
			t.Errorf("error %d = %q, want it to contain %q", i, got, want[i])
		}
	}
}
