package analyze

import (
	"strings"
	"testing"
)

// FuzzReadClusterManifest: any manifest bytes give services and errors,
// never a panic (see assertNoValueLeak for the invariants).
func FuzzReadClusterManifest(f *testing.F) {
	f.Add([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers: [{name: a, image: a:1, env: [{name: B_URL, value: \"http://b/x?SECRETVALUE\"}]}]\n"))
	f.Add([]byte("kind: List\nitems:\n- kind: Service\n  metadata: {name: b}\n  spec: {selector: {app: b}, ports: [{port: 80}]}\n---\nkind: Ingress\nspec: {rules: [{http: {paths: [{path: /x, backend: {serviceName: b}}]}}]}\n"))
	f.Add([]byte("---\n---\n# only comments\n"))
	f.Add([]byte("{\"kind\":\"Deployment\",\"metadata\":{\"name\":\"j\"},\"spec\":{\"template\":{\"spec\":{\"containers\":[{}]}}}}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c clusterSet
		c.readData("fuzz.yaml", data)
		assertNoValueLeak(t, c.services())
	})
}

// FuzzReadCompose: any compose bytes give services and errors, never a panic.
func FuzzReadCompose(f *testing.F) {
	f.Add([]byte("services:\n  a:\n    image: a:1\n    ports: [\"8080:80\", {target: 81}]\n    environment: [X_URL=http://b:1/SECRETVALUE]\n    depends_on: {b: {condition: service_healthy}}\n  b:\n    expose: [\"90\"]\n    deploy: {replicas: 2, resources: {limits: {cpus: 0.5}}}\n    healthcheck: {test: curl -f http://localhost:90/health}\n"))
	f.Add([]byte("services: [1, 2]"))
	f.Add([]byte("services:\n  a: null\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var c clusterSet
		c.readCompose("compose.yaml", data)
		assertNoValueLeak(t, c.services())
	})
}

// assertNoValueLeak checks what must hold for any input: every service
// has a name, a deployment and a source, and env entries are bare names
// (a "K=V" list entry must never carry its value through). Value leaks of
// real manifests are checked on the fixtures in cluster_test.go.
func assertNoValueLeak(t *testing.T, services []Service) {
	for _, s := range services {
		if s.Name == "" || s.Deployment == nil || len(s.Sources) == 0 {
			t.Fatalf("incomplete service %+v", s)
		}
		for _, e := range s.Deployment.Env {
			if strings.Contains(e, "=") {
				t.Fatalf("env entry %q carries a value", e)
			}
		}
	}
}
