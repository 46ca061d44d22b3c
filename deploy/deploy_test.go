// Package deploy holds the manifests that run migrate's proxy on
// Kubernetes; this test checks them against the Kubernetes API types.
package deploy

import (
	"bytes"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/strangler-fig/migrate/strangler"
)

// manifests decodes every document under kubernetes/ into its API type,
// refusing unknown fields and wrong types as the API server would.
func manifests(t *testing.T) (deps []appsv1.Deployment, svcs []corev1.Service, cms []corev1.ConfigMap, secrets []corev1.Secret, pdbs []policyv1.PodDisruptionBudget) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range bytes.Split(data, []byte("\n---\n")) {
			var head struct{ APIVersion, Kind string }
			if err := yaml.Unmarshal(doc, &head); err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			var into any
			switch head.APIVersion + " " + head.Kind {
			case "apps/v1 Deployment":
				deps = append(deps, appsv1.Deployment{})
				into = &deps[len(deps)-1]
			case "v1 Service":
				svcs = append(svcs, corev1.Service{})
				into = &svcs[len(svcs)-1]
			case "v1 ConfigMap":
				cms = append(cms, corev1.ConfigMap{})
				into = &cms[len(cms)-1]
			case "v1 Secret":
				secrets = append(secrets, corev1.Secret{})
				into = &secrets[len(secrets)-1]
			case "policy/v1 PodDisruptionBudget":
				pdbs = append(pdbs, policyv1.PodDisruptionBudget{})
				into = &pdbs[len(pdbs)-1]
			default:
				t.Fatalf("%s document %d: %s %s is not a kind this test knows", f, i+1, head.APIVersion, head.Kind)
			}
			if err := yaml.UnmarshalStrict(doc, into); err != nil {
				t.Errorf("%s document %d (%s): %v", f, i+1, head.Kind, err)
			}
		}
	}
	return
}

func TestKubernetesManifests(t *testing.T) {
	deps, svcs, cms, secrets, pdbs := manifests(t)
	if len(deps) != 1 || len(cms) != 1 || len(secrets) != 1 || len(svcs) != 2 || len(pdbs) != 1 {
		t.Fatalf("%d deployments, %d config maps, %d secrets, %d services, %d budgets", len(deps), len(cms), len(secrets), len(svcs), len(pdbs))
	}
	d := deps[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Error("the proxy must run at least 2 replicas")
	}
	pod := d.Spec.Template
	for k, v := range d.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod's labels %v", k, v, pod.Labels)
		}
	}
	for _, s := range append(svcs, corev1.Service{Spec: corev1.ServiceSpec{Selector: pdbs[0].Spec.Selector.MatchLabels}}) {
		for k, v := range s.Spec.Selector {
			if pod.Labels[k] != v {
				t.Errorf("%s selects %s=%s, which the pods do not carry", s.Name, k, v)
			}
		}
	}
	if pod.Annotations["prometheus.io/scrape"] != "true" || pod.Annotations["prometheus.io/path"] != "/metrics" {
		t.Errorf("prometheus annotations: %v", pod.Annotations)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want the proxy alone", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("probes must be /readyz (readiness) and /healthz (liveness)")
	}
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	if e := env[strangler.ReplicaEnv]; e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("%s must come from the pod name", strangler.ReplicaEnv)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].SecretRef == nil || c.EnvFrom[0].SecretRef.Name != secrets[0].Name {
		t.Errorf("the container must take its environment from secret %s", secrets[0].Name)
	}
	for _, key := range []string{strangler.AdminTokenEnv, "PGPASSWORD"} {
		if _, ok := secrets[0].StringData[key]; !ok {
			t.Errorf("secret %s lacks %s", secrets[0].Name, key)
		}
	}

	// The config in the ConfigMap is one migrate accepts as it is.
	raw, ok := cms[0].Data["strangler.yaml"]
	if !ok {
		t.Fatal("the config map has no strangler.yaml")
	}
	cfg, err := strangler.ParseConfig([]byte(raw), "/etc/migrate")
	if err != nil {
		t.Fatalf("strangler.yaml in the config map: %v", err)
	}
	if !strangler.IsPostgresURL(cfg.StorePath()) {
		t.Errorf("store %q: replicas must share a PostgreSQL store", cfg.Store)
	}
	if u, err := url.Parse(cfg.Store); err != nil || u.User == nil {
		t.Errorf("store %q: want a user in the URL (%v)", cfg.Store, err)
	} else if _, has := u.User.Password(); has {
		t.Errorf("store %q carries a password; it belongs in PGPASSWORD", cfg.Store)
	}
	if err := strangler.CheckAdminAddress(cfg.Admin, "token"); err != nil {
		t.Error(err)
	}
	if strangler.CheckAdminAddress(cfg.Admin, "") == nil {
		t.Error("the admin API listens beyond loopback, so it must refuse to start without a token")
	}
}

// kubectl renders the kustomization when it is installed; it needs no
// cluster for that.
func TestKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed; TestKubernetesManifests checks the manifests against the API types")
	}
	out, err := exec.Command(kubectl, "kustomize", "kubernetes").CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("kind: Deployment")) {
		t.Fatalf("kustomize output has no Deployment:\n%s", out)
	}
}
