package analyze

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInventoryRoundTrip(t *testing.T) {
	created := time.Unix(0, 0).UTC()
	records := []Service{
		{Name: "order-service", Namespace: "shop", Sources: []string{"cluster:k8s/order.yaml"},
			Deployment: &Deployment{Kind: "Deployment", Replicas: 2, Image: "ghcr.io/x/order-service:1", Env: []string{"INVENTORY_URL"},
				DependsOn: []string{"inventory-service"}, Resources: Resources{Limits: map[string]string{"memory": "512Mi"}},
				Probes: []Probe{{Type: "readiness", Path: "/actuator/health", Port: "8080"}}}},
		{Name: "order-service", Sources: []string{"image:ghcr.io/x/order-service:1"},
			Image: &Image{Ref: "ghcr.io/x/order-service:1", BuildTool: "jib", Created: &created, Layers: 5, SizeBytes: 1 << 20,
				Java: &Java{Version: "17.0.13", Evidence: "env JAVA_VERSION"}, Dependencies: deps("hibernate-core")}},
		{Name: "inventory-service", Sources: []string{"openapi:inventory.json"},
			API: &API{Source: "inventory.json", Format: FormatOpenAPI30, Operations: []Operation{{Method: "GET", Path: "/api/inventory"}}}},
		{Name: "order-service", Sources: []string{"probe:http://127.0.0.1:1", "cluster:k8s/order.yaml"},
			Runtime: &Runtime{Source: "http://127.0.0.1:1", Health: []string{"db"}, Env: []string{"spring.datasource.url"}}},
	}
	inv := NewInventory(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), records,
		[]InputError{{Input: "oci:/nope", Service: "x", Error: "no such directory"}})
	if len(inv.Services) != 2 || inv.Services[0].Name != "inventory-service" {
		t.Fatalf("services = %+v", inv.Services)
	}
	order := inv.Services[1]
	if want := []string{"cluster:k8s/order.yaml", "image:ghcr.io/x/order-service:1", "probe:http://127.0.0.1:1"}; !slices.Equal(order.Sources, want) {
		t.Errorf("sources = %v, want %v", order.Sources, want)
	}
	if order.Namespace != "shop" || order.Image == nil || order.Deployment == nil || order.Runtime == nil {
		t.Errorf("merge lost a part: %+v", order)
	}
	if !slices.Equal(inv.Order, []string{"inventory-service", "order-service"}) {
		t.Errorf("order = %v", inv.Order)
	}
	if order.Readiness.Level == "" || len(order.Findings) == 0 {
		t.Errorf("not assessed: %+v", order.Readiness)
	}

	p := filepath.Join(t.TempDir(), "inventory.json")
	if err := WriteInventory(p, inv); err != nil {
		t.Fatal(err)
	}
	back, err := ReadInventory(p)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inv, back) {
		t.Errorf("round trip changed the inventory:\n%s\n%s", dumpJSON(t, inv), dumpJSON(t, back))
	}
	data, _ := os.ReadFile(p)
	if !bytes.Contains(data, []byte(`"apiVersion": "migrate/v1"`)) || !bytes.Contains(data, []byte(`"kind": "Inventory"`)) {
		t.Errorf("document not stamped:\n%s", data[:200])
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".inventory.json.*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestReadInventoryRejects(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"wrong apiVersion", `{"apiVersion":"migrate/v0","kind":"Inventory","services":[]}`, `apiVersion is "migrate/v0", this migrate reads "migrate/v1"`},
		{"no apiVersion", `{"kind":"Inventory","services":[]}`, "no apiVersion"},
		{"wrong kind", `{"apiVersion":"migrate/v1","kind":"Plan"}`, `kind is "Plan"`},
		{"syntax error", "{\n  \"apiVersion\": \"migrate/v1\",\n  \"services\": [,]\n}", "line 3"},
		{"wrong type", "{\"apiVersion\":\"migrate/v1\",\n\"services\":[{\"name\":\"a\",\"image\":{\"layers\":\"five\"}}]}",
			`wrong-type.json:2:43: services[0].image.layers: "five" is not a whole number`},
		{"unnamed service", `{"apiVersion":"migrate/v1","services":[{"sources":[]}]}`, "services[0] has no name"},
		{"yaml", "apiVersion: migrate/v1\n", "not a JSON inventory"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".json")
			if err := os.WriteFile(p, []byte(tt.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadInventory(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("err = %v, want one naming %s and containing %q", err, p, tt.want)
			}
		})
	}
	if _, err := ReadInventory(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file read without error")
	}
}

func TestWriteInventoryFailures(t *testing.T) {
	dir := t.TempDir()
	if err := WriteInventory(filepath.Join(dir, "no", "such", "dir.json"), &Inventory{}); err == nil || !strings.Contains(err.Error(), "dir.json") {
		t.Errorf("err = %v, want one naming the file", err)
	}
	if err := WriteInventory(filepath.Join(dir, "x.json"), nil); err == nil {
		t.Error("nil inventory written")
	}
	// An empty inventory is still a valid document with an empty list.
	p := filepath.Join(dir, "empty.json")
	if err := WriteInventory(p, &Inventory{}); err != nil {
		t.Fatal(err)
	}
	inv, err := ReadInventory(p)
	if err != nil || inv.Services == nil || len(inv.Services) != 0 {
		t.Errorf("empty inventory read back as %+v, %v", inv, err)
	}
}

func TestOneLine(t *testing.T) {
	for in, want := range map[string]string{
		"plain":                   "plain",
		"  first\n\n  second\r\n": "first; second",
		"a\nb\nc":                 "a; b; c",
	} {
		if got := oneLine(in); got != want {
			t.Errorf("oneLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMergeServicesPrefersAPIWithOperations(t *testing.T) {
	empty := &API{Source: "a", Operations: []Operation{}}
	full := &API{Source: "b", Operations: []Operation{{Method: "GET", Path: "/x"}}}
	got := MergeServices([]Service{{Name: "s", API: empty}, {Name: "s", API: full}, {Name: "s", API: empty}})
	if len(got) != 1 || got[0].API != full {
		t.Errorf("merged api = %+v", got[0].API)
	}
	got = MergeServices([]Service{
		{Name: "s", Deployment: &Deployment{Env: []string{"A"}, DependsOn: []string{"x"}}},
		{Name: "s", Deployment: &Deployment{Image: "img", Env: []string{"B", "A"}, DependsOn: []string{"y"}}},
	})
	d := got[0].Deployment
	if d.Image != "img" || !slices.Equal(d.Env, []string{"A", "B"}) || !slices.Equal(d.DependsOn, []string{"x", "y"}) {
		t.Errorf("merged deployment = %+v", d)
	}
}

// FuzzDecodeInventory: any bytes either decode or fail with an error; never a panic.
func FuzzDecodeInventory(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"migrate/v1","kind":"Inventory","services":[{"name":"a","sources":[],"readiness":{"score":1,"level":"ready"}}]}`))
	f.Add([]byte(`{"apiVersion":"migrate/v1","services":[{"name":"a","image":{"layers":"x"}}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := DecodeInventory(bytes.NewReader(data))
		if err == nil && inv.APIVersion != APIVersion {
			t.Fatalf("accepted apiVersion %q", inv.APIVersion)
		}
	})
}
