package analyze

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// testLayer builds an uncompressed layer tar from path → content.
func testLayer(t *testing.T, files [][2]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f[0], Mode: 0o644, Size: int64(len(f[1])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f[1]))
	}
	tw.Close()
	return buf.Bytes()
}

func TestScanLayerLargeJarAndWhiteout(t *testing.T) {
	jar := testJar(t, map[string][]byte{
		"META-INF/MANIFEST.MF":               []byte("Manifest-Version: 1.0\r\nSpring-Boot-Version: 3.3.7\r\nStart-Class: x.Y\r\nBuild-Jdk-Spec: 21\r\n\r\n"),
		"BOOT-INF/lib/spring-boot-3.3.7.jar": []byte("not really a jar"),
	}, map[string]bool{"BOOT-INF/lib/spring-boot-3.3.7.jar": true}, []string{"META-INF/MANIFEST.MF", "BOOT-INF/lib/spring-boot-3.3.7.jar"})

	defer func(old int64) { imageMaxAppJar = old }(imageMaxAppJar)
	imageMaxAppJar = 16 // force the streaming path

	cfg := &v1.ConfigFile{}
	scan := func(layers ...[]byte) *Image {
		sc := &imageScan{facts: map[string]imageFact{}}
		for i, l := range layers {
			if err := sc.scanLayer(i+1, bytes.NewReader(l)); err != nil {
				t.Fatal(err)
			}
		}
		img := &Image{Layers: len(layers)}
		sc.finish(img, cfg)
		return img
	}
	base := testLayer(t, [][2]string{{"app/app.jar", string(jar)}})
	img := scan(base)
	if img.BuildTool != "dockerfile-fatjar" || img.SpringBoot == nil || img.SpringBoot.Version != "3.3.7" ||
		img.MainClass != "x.Y" || img.Java == nil || img.Java.Version != "21" || len(img.Dependencies) != 1 {
		t.Errorf("streamed jar: %+v", img)
	}
	streamed := false
	for _, e := range img.Evidence {
		streamed = streamed || strings.Contains(e.Fact, "streamed, not loaded")
	}
	if !streamed {
		t.Errorf("no evidence of streaming: %+v", img.Evidence)
	}

	// A later layer deleting the jar leaves nothing Java behind.
	img = scan(base, testLayer(t, [][2]string{{"app/.wh.app.jar", ""}}))
	if img.BuildTool != "unknown" || img.SpringBoot != nil {
		t.Errorf("after whiteout: %+v", img)
	}
	img = scan(base, testLayer(t, [][2]string{{"app/.wh..wh..opq", ""}}))
	if img.BuildTool != "unknown" {
		t.Errorf("after opaque whiteout: %+v", img)
	}
}

// FuzzOpenDockerArchive: arbitrary bytes as a docker-archive give an
// error or an image, never a panic.
func FuzzOpenDockerArchive(f *testing.F) {
	f.Add([]byte("not a tar"))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range [][2]string{{"manifest.json", `[{"Config":"c.json","Layers":["l.tar"]}]`}, {"c.json", `{"config":{}}`}, {"l.tar", ""}} {
		tw.WriteHeader(&tar.Header{Name: m[0], Mode: 0o644, Size: int64(len(m[1])), Typeflag: tar.TypeReg})
		tw.Write([]byte(m[1]))
	}
	tw.Close()
	f.Add(buf.Bytes())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "a.tar")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := openDockerArchive(p)
		if err != nil {
			return
		}
		src.analyze(t.Context())
	})
}

// A Jib image on a scratch base has no runtime, no JAVA_VERSION and no
// manifest: the application's bytecode level is what says which Java it
// needs (class file 61 = Java 17).
func TestScanJibScratchJavaFromClassFile(t *testing.T) {
	class := func(major byte) string { return string([]byte{0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, major, 1, 2, 3}) }
	layers := [][]byte{
		testLayer(t, [][2]string{{"app/libs/spring-boot-3.5.7.jar", "x"}}),
		testLayer(t, [][2]string{{"app/resources/application.properties", "server.port=8080\n"}}),
		testLayer(t, [][2]string{{"app/classes/com/example/A.class", class(61)}, {"app/classes/com/example/B.class", class(65)},
			{"app/jib-main-class-file", "com.example.A\n"}, {"app/jib-classpath-file", "/app/resources:/app/classes:/app/libs/*\n"}}),
	}
	sc := &imageScan{facts: map[string]imageFact{}}
	for i, l := range layers {
		if err := sc.scanLayer(i+1, bytes.NewReader(l)); err != nil {
			t.Fatal(err)
		}
	}
	img := &Image{Layers: len(layers)}
	sc.finish(img, &v1.ConfigFile{})
	if img.BuildTool != "jib" || img.Java == nil || img.Java.Version != "17" ||
		!strings.Contains(img.Java.Evidence, "/app/classes/com/example/A.class (layer 3): class file version 61") {
		t.Fatalf("java = %+v, build tool %q", img.Java, img.BuildTool)
	}
	found := false
	for _, e := range img.Evidence {
		found = found || (e.Fact == "compiled for Java 17" && strings.Contains(e.Source, "class file version 61"))
	}
	if !found {
		t.Errorf("evidence = %+v", img.Evidence)
	}
}

func TestClassFileRelease(t *testing.T) {
	for _, c := range []struct {
		b    []byte
		want string
		ok   bool
	}{
		{[]byte{0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 61}, "17", true},
		{[]byte{0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 52}, "8", true},
		{[]byte{0xCA, 0xFE, 0xBA, 0xBE, 0, 3, 0, 45}, "1.1", true},
		{[]byte{0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0}, "", false},
		{[]byte{0xCA, 0xFE, 0xD0, 0x0D, 0, 0, 0, 61}, "", false},
	} {
		if got, ok := classFileRelease(c.b); got != c.want || ok != c.ok {
			t.Errorf("classFileRelease(% x) = %q, %v", c.b, got, ok)
		}
	}
}
