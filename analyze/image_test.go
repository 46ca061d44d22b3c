package analyze_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/fixtures"
)

// startRegistry serves go-containerregistry's in-memory registry on loopback.
func startRegistry(t testing.TB, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	var h http.Handler = registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func depStrings(ds []analyze.Dependency) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Group+":"+d.Artifact+":"+d.Version)
	}
	sort.Strings(out)
	return out
}

func hasEvidence(img *analyze.Image, factPrefix, sourcePart string) bool {
	for _, e := range img.Evidence {
		if strings.HasPrefix(e.Fact, factPrefix) && strings.Contains(e.Source, sourcePart) {
			return true
		}
	}
	return false
}

// checkFixtureImage asserts what analyze must find in a fixture image,
// whichever way the image was delivered.
func checkFixtureImage(t *testing.T, service string, img *analyze.Image) {
	t.Helper()
	if img.BuildTool != fixtures.ImageStyle(service) {
		t.Errorf("build tool = %q, want %q (evidence %+v)", img.BuildTool, fixtures.ImageStyle(service), img.Evidence)
	}
	if img.Java == nil || img.Java.Version != "17.0.13" {
		t.Errorf("java = %+v, want 17.0.13", img.Java)
	} else if !strings.Contains(img.Java.Evidence, "/release") {
		t.Errorf("java evidence = %q, want the release file", img.Java.Evidence)
	}
	wantVendor := "Eclipse Adoptium"
	if service == fixtures.InventoryService {
		wantVendor = "BellSoft"
	}
	if img.Java != nil && img.Java.Vendor != wantVendor {
		t.Errorf("java vendor = %q, want %q", img.Java.Vendor, wantVendor)
	}
	if img.SpringBoot == nil || img.SpringBoot.Version != "3.4.2" || img.SpringBoot.Evidence == "" {
		t.Errorf("spring boot = %+v", img.SpringBoot)
	}
	if img.MainClass != fixtures.ImageMainClass(service) {
		t.Errorf("main class = %q, want %q", img.MainClass, fixtures.ImageMainClass(service))
	}
	got, want := depStrings(img.Dependencies), fixtures.ImageDependencies(service)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("dependencies:\n got %v\nwant %v", got, want)
	}
	if img.Layers < 5 || img.SizeBytes <= 0 || img.Digest == "" {
		t.Errorf("layers %d, size %d, digest %q", img.Layers, img.SizeBytes, img.Digest)
	}
	if img.Base == "" {
		t.Errorf("no base image hint")
	}
	if service != fixtures.InventoryService && (len(img.ExposedPorts) != 1 || img.ExposedPorts[0] != "8080/tcp") {
		t.Errorf("exposed ports = %v", img.ExposedPorts)
	}
}

func TestAnalyzeImageFromRegistry(t *testing.T) {
	ctx := context.Background()
	refs, err := fixtures.PushFleet(ctx, startRegistry(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, service := range fixtures.ServiceNames {
		t.Run(service, func(t *testing.T) {
			img, err := analyze.AnalyzeImage(ctx, refs[service], analyze.ImageOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkFixtureImage(t, service, img)
			built, _ := fixtures.BuildImage(service)
			d, _ := built.Digest()
			if img.Digest != d.String() {
				t.Errorf("digest %s, want %s", img.Digest, d)
			}
		})
	}
	t.Run("details", func(t *testing.T) {
		order, err := analyze.AnalyzeImage(ctx, refs[fixtures.OrderService], analyze.ImageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if order.User != "1000:1000" || order.Base != "eclipse-temurin:17-jre" || order.Created == nil || order.Created.Unix() != 0 {
			t.Errorf("user %q base %q created %v", order.User, order.Base, order.Created)
		}
		if !hasEvidence(order, "built by jib", "jib-maven-plugin:3.4.4") || !hasEvidence(order, "java 17.0.13", "env JAVA_VERSION=jdk-17.0.13+11") {
			t.Errorf("evidence %+v", order.Evidence)
		}
		inv, _ := analyze.AnalyzeImage(ctx, refs[fixtures.InventoryService], analyze.ImageOptions{})
		if !hasEvidence(inv, "spring boot 3.4.2", "label org.springframework.boot.version") || inv.Base != "paketobuildpacks/run-jammy-base:latest" {
			t.Errorf("buildpacks base %q evidence %+v", inv.Base, inv.Evidence)
		}
		note, _ := analyze.AnalyzeImage(ctx, refs[fixtures.NotificationService], analyze.ImageOptions{})
		if note.User != "root" || note.Base != "docker.io/library/eclipse-temurin:17-jre" {
			t.Errorf("notification user %q base %q", note.User, note.Base)
		}
	})
}

// TestAnalyzeImageSourcesAgree is differential: the same image read from a
// registry, a docker-archive and an OCI layout must give the same facts.
func TestAnalyzeImageSourcesAgree(t *testing.T) {
	ctx := context.Background()
	host := startRegistry(t, nil)
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "layout")
	for _, service := range fixtures.ServiceNames {
		archive := filepath.Join(dir, service+".tar")
		if err := fixtures.WriteDockerArchive(archive, service); err != nil {
			t.Fatal(err)
		}
		if err := fixtures.WriteOCILayout(layoutDir, service); err != nil {
			t.Fatal(err)
		}
		img, _ := fixtures.BuildImage(service)
		ref := host + "/shop/" + service + ":" + fixtures.ImageTag(service)
		if err := fixtures.PushImage(ctx, ref, img); err != nil {
			t.Fatal(err)
		}
		var results []*analyze.Image
		for _, r := range []string{ref, "docker-archive:" + archive, "oci:" + layoutDir + ":" + fixtures.ImageTag(service)} {
			got, err := analyze.AnalyzeImage(ctx, r, analyze.ImageOptions{})
			if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			checkFixtureImage(t, service, got)
			results = append(results, got)
		}
		a, b, c := results[0], results[1], results[2]
		if a.SizeBytes != c.SizeBytes || a.Layers != b.Layers || a.Digest != c.Digest {
			t.Errorf("%s: registry %d/%d/%s, archive %d/%d/%s, layout %d/%d/%s", service,
				a.SizeBytes, a.Layers, a.Digest, b.SizeBytes, b.Layers, b.Digest, c.SizeBytes, c.Layers, c.Digest)
		}
	}
}

// nonJavaImage is a tiny Alpine-like image with no JVM.
func nonJavaImage(t *testing.T) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{"etc/os-release": "PRETTY_NAME=\"Alpine Linux v3.20\"\n", "bin/busybox": "\x7fELF"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	layer, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestAnalyzeImageNonJava(t *testing.T) {
	ctx := context.Background()
	ref := startRegistry(t, nil) + "/library/alpine:3.20"
	if err := fixtures.PushImage(ctx, ref, nonJavaImage(t)); err != nil {
		t.Fatal(err)
	}
	img, err := analyze.AnalyzeImage(ctx, ref, analyze.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.BuildTool != "unknown" || img.Java != nil || img.SpringBoot != nil || !hasEvidence(img, "not a Java application", "no JVM") {
		t.Errorf("got %+v", img)
	}
	if img.Base != "Alpine Linux v3.20" {
		t.Errorf("base = %q", img.Base)
	}
}

func TestAnalyzeImagePlatform(t *testing.T) {
	ctx := context.Background()
	host := startRegistry(t, nil)
	amd, _ := fixtures.BuildImage(fixtures.OrderService)
	arm, _ := fixtures.BuildImage(fixtures.ProductService)
	cf, _ := arm.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.Variant = "arm64", "v8"
	arm, _ = mutate.ConfigFile(arm, cf)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref := host + "/shop/multi:1"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	for platform, want := range map[string]string{"": "jib", "linux/amd64": "jib", "linux/arm64": "dockerfile-fatjar"} {
		img, err := analyze.AnalyzeImage(ctx, ref, analyze.ImageOptions{Platform: platform})
		if err != nil {
			t.Fatalf("%q: %v", platform, err)
		}
		if img.BuildTool != want {
			t.Errorf("platform %q: build tool %q, want %q", platform, img.BuildTool, want)
		}
	}
	if _, err := analyze.AnalyzeImage(ctx, ref, analyze.ImageOptions{Platform: "linux/s390x"}); err == nil {
		t.Error("missing platform: no error")
	}
}

func TestAnalyzeImageErrors(t *testing.T) {
	ctx := context.Background()
	status := func(code int) func(http.Handler) http.Handler {
		return func(http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/v2/" {
					w.WriteHeader(http.StatusOK)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(code)
				w.Write([]byte(`{"errors":[{"code":"DENIED","message":"no"}]}`))
			})
		}
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "order.tar")
	if err := fixtures.WriteDockerArchive(archive, fixtures.OrderService); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(archive)
	truncated := filepath.Join(dir, "truncated.tar")
	os.WriteFile(truncated, data[:len(data)*2/3], 0o644)
	garbage := filepath.Join(dir, "garbage.tar")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a tar "), 200), 0o644)

	tests := []struct {
		ref  string
		want []string
	}{
		{startRegistry(t, nil) + "/shop/missing:1", []string{"not found", "404"}},
		{startRegistry(t, status(401)) + "/shop/order:1", []string{"401", "docker login"}},
		{startRegistry(t, status(500)) + "/shop/order:1", []string{"500", "registry failed"}},
		{"docker-archive:" + truncated, []string{"truncated"}},
		{"docker-archive:" + garbage, []string{"docker-archive"}},
		{"docker-archive:" + filepath.Join(dir, "nope.tar"), []string{"no such file"}},
		{"oci:" + dir, []string{"not an OCI image layout"}},
		{"Not A Ref!", []string{"not an image reference"}},
	}
	for _, tt := range tests {
		_, err := analyze.AnalyzeImage(ctx, tt.ref, analyze.ImageOptions{})
		if err == nil {
			t.Errorf("%s: no error", tt.ref)
			continue
		}
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, tt.ref) {
			t.Errorf("%s: error must be one line naming the input: %q", tt.ref, msg)
		}
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: error %q lacks %q", tt.ref, msg, w)
			}
		}
	}
}

func TestAnalyzeImagesConcurrent(t *testing.T) {
	ctx := context.Background()
	refs, err := fixtures.PushFleet(ctx, startRegistry(t, nil))
	if err != nil {
		t.Fatal(err)
	}
	list := []string{refs[fixtures.OrderService], "127.0.0.1:1/nothing:1", refs[fixtures.ProductService]}
	var calls []int
	images, errs := analyze.AnalyzeImages(ctx, list, analyze.ImageOptions{}, 2, func(done, total int) {
		if total != 3 {
			t.Errorf("total %d", total)
		}
		calls = append(calls, done)
	})
	if images[0] == nil || images[2] == nil || errs[0] != nil || errs[2] != nil {
		t.Errorf("images %v errs %v", images, errs)
	}
	if images[1] != nil || errs[1] == nil || !strings.Contains(errs[1].Error(), "cannot reach the registry: nothing listens on 127.0.0.1:1") {
		t.Errorf("unreachable registry: %v", errs[1])
	}
	// Said in words, not Go's "dial tcp 127.0.0.1:1: connect: connection refused".
	if errs[1] != nil && strings.Contains(errs[1].Error(), "dial tcp") {
		t.Errorf("unreachable registry, in Go words: %v", errs[1])
	}
	if len(calls) != 3 || calls[2] != 3 {
		t.Errorf("progress calls %v", calls)
	}
}

func TestAnalyzeImageInsecure(t *testing.T) {
	ctx := context.Background()
	img, _ := fixtures.BuildImage(fixtures.OrderService)
	// A TLS registry with a self-signed certificate: refused by default,
	// readable with Insecure.
	srv := httptest.NewTLSServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "https://") + "/shop/order-service:1"
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img, remote.WithTransport(srv.Client().Transport)); err != nil {
		t.Fatal(err)
	}
	if _, err := analyze.AnalyzeImage(ctx, "docker://"+ref, analyze.ImageOptions{}); err == nil {
		t.Error("self-signed registry accepted without Insecure")
	}
	got, err := analyze.AnalyzeImage(ctx, "docker://"+ref, analyze.ImageOptions{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.BuildTool != "jib" {
		t.Errorf("build tool %q", got.BuildTool)
	}
}

// TestAnalyzeClassicDockerSave reads the pre-Docker-25 `docker save`
// layout: uncompressed <id>/layer.tar members, found through manifest.json.
func TestAnalyzeClassicDockerSave(t *testing.T) {
	img, _ := fixtures.BuildImage(fixtures.NotificationService)
	raw, _ := img.RawConfigFile()
	layers, _ := img.Layers()
	path := filepath.Join(t.TempDir(), "classic.tar")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(f)
	add := func(name string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
		tw.Write(data)
	}
	var names []string
	for i, l := range layers {
		rc, _ := l.Uncompressed()
		data, _ := io.ReadAll(rc)
		rc.Close()
		name := fmt.Sprintf("%064d/layer.tar", i)
		add(name, data)
		names = append(names, name)
	}
	add("config.json", raw)
	m, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{"notification-service:1.0.7"}, "Layers": names}})
	add("manifest.json", m)
	tw.Close()
	f.Close()
	got, err := analyze.AnalyzeImage(context.Background(), "docker-archive:"+path, analyze.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkFixtureImage(t, fixtures.NotificationService, got)
}

// TestAnalyzeZstdLayers re-packs a fixture's layers as zstd (OCI
// media type) and reads them from an OCI layout.
func TestAnalyzeZstdLayers(t *testing.T) {
	src, _ := fixtures.BuildImage(fixtures.ProductService)
	cf, _ := src.ConfigFile()
	layers, _ := src.Layers()
	var zl []v1.Layer
	for _, l := range layers {
		z, err := tarball.LayerFromOpener(l.Uncompressed, tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
		if err != nil {
			t.Fatal(err)
		}
		zl = append(zl, z)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), zl...)
	if err != nil {
		t.Fatal(err)
	}
	cf2, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS = cf2.RootFS
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	got, err := analyze.AnalyzeImage(context.Background(), "oci:"+dir, analyze.ImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	checkFixtureImage(t, fixtures.ProductService, got)
}

// TestAnalyzeOCILayoutIndex reads a layout whose index.json entry is a
// multi-platform index (as `docker buildx --output type=oci` writes).
func TestAnalyzeOCILayoutIndex(t *testing.T) {
	amd, _ := fixtures.BuildImage(fixtures.OrderService)
	arm, _ := fixtures.BuildImage(fixtures.NotificationService)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "2.0"})); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ ref, platform, want string }{
		{"oci:" + dir, "", "jib"},
		{"oci:" + dir + ":2.0", "linux/arm64", "dockerfile-layered"},
	} {
		got, err := analyze.AnalyzeImage(context.Background(), tt.ref, analyze.ImageOptions{Platform: tt.platform})
		if err != nil {
			t.Fatal(err)
		}
		if got.BuildTool != tt.want {
			t.Errorf("%s %s: build tool %q, want %q", tt.ref, tt.platform, got.BuildTool, tt.want)
		}
	}
	if _, err := analyze.AnalyzeImage(context.Background(), "oci:"+dir+":9.9", analyze.ImageOptions{}); err == nil || !strings.Contains(err.Error(), `no image tagged "9.9"`) {
		t.Errorf("unknown tag: %v", err)
	}
}
