package analyze

import (
	"archive/zip"
	"bytes"
	"maps"
	"strings"
	"testing"
)

func TestParseJarManifest(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
		err  string
	}{
		{"crlf and continuation", "Manifest-Version: 1.0\r\nStart-Class: com.example.orderservice.OrderServiceApplicat\r\n ion\r\nSpring-Boot-Version: 3.4.2\r\n\r\n",
			map[string]string{"Manifest-Version": "1.0", "Start-Class": "com.example.orderservice.OrderServiceApplication", "Spring-Boot-Version": "3.4.2"}, ""},
		{"lf, no trailing blank line", "Main-Class: a.B\nBuild-Jdk-Spec: 17",
			map[string]string{"Main-Class": "a.B", "Build-Jdk-Spec": "17"}, ""},
		{"bare cr", "A: 1\rB: 2\r", map[string]string{"A": "1", "B": "2"}, ""},
		{"per-entry sections ignored", "Main-Class: a.B\r\n\r\nName: x/Y.class\r\nSHA-256-Digest: abc\r\n",
			map[string]string{"Main-Class": "a.B"}, ""},
		{"empty value", "Class-Path:\r\nX: y\r\n", map[string]string{"Class-Path": "", "X": "y"}, ""},
		{"case-insensitive names", "main-class: a.B\r\nMain-Class: c.D\r\n", map[string]string{"main-class": "c.D"}, ""},
		{"continuation first", " oops\r\n", nil, "line 1: continuation"},
		{"no separator", "Manifest-Version 1.0\r\n", nil, "line 1: want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseJarManifest([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if got := jarAttr(map[string]string{"start-class": "x"}, "Start-Class"); got != "x" {
		t.Errorf("jarAttr = %q", got)
	}
}

func TestParseJarFileName(t *testing.T) {
	for in, want := range map[string][2]string{
		"BOOT-INF/lib/lettuce-core-6.4.2.RELEASE.jar": {"lettuce-core", "6.4.2.RELEASE"},
		"/app/libs/spring-boot-starter-web-3.4.2.jar": {"spring-boot-starter-web", "3.4.2"},
		"jakarta.persistence-api-3.1.0.jar":           {"jakarta.persistence-api", "3.1.0"},
		"HikariCP-5.1.0.jar":                          {"HikariCP", "5.1.0"},
		"app.jar":                                     {"app", ""},
		"order-service-1.4.2-SNAPSHOT.jar":            {"order-service", "1.4.2-SNAPSHOT"},
	} {
		a, v := parseJarFileName(in)
		if a != want[0] || v != want[1] {
			t.Errorf("%s → %s %s, want %v", in, a, v, want)
		}
	}
	if g := guessGroup("spring-data-jpa"); g != "org.springframework.data" {
		t.Errorf("guessGroup = %q", g)
	}
}

// testJar writes a jar; stored entries get their sizes up front like
// Spring Boot's writer, other entries a trailing data descriptor like
// most zip writers.
func testJar(t *testing.T, entries map[string][]byte, stored map[string]bool, order []string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range order {
		data := entries[name]
		if stored[name] {
			h := &zip.FileHeader{Name: name, Method: zip.Store}
			h.CompressedSize64, h.UncompressedSize64 = uint64(len(data)), uint64(len(data))
			h.CRC32 = crc(data)
			w, err := zw.CreateRaw(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			continue
		}
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
	}
	zw.Close()
	return buf.Bytes()
}

func TestStreamJarMatchesInMemory(t *testing.T) {
	lib := testJar(t, map[string][]byte{"META-INF/maven/io.nats/jnats/pom.properties": []byte("groupId=io.nats\nartifactId=jnats\nversion=2.20.5\n")},
		nil, []string{"META-INF/maven/io.nats/jnats/pom.properties"})
	entries := map[string][]byte{
		"META-INF/MANIFEST.MF":               []byte("Manifest-Version: 1.0\r\nSpring-Boot-Version: 3.4.2\r\nStart-Class: a.B\r\n\r\n"),
		"BOOT-INF/classes/a/B.class":         bytes.Repeat([]byte{0xca, 0xfe}, 5000),
		"BOOT-INF/lib/jnats-2.20.5.jar":      lib,
		"BOOT-INF/lib/postgresql-42.7.4.jar": lib,
		"BOOT-INF/classpath.idx":             []byte("- \"BOOT-INF/lib/jnats-2.20.5.jar\"\n- \"BOOT-INF/lib/postgresql-42.7.4.jar\"\n"),
		"BOOT-INF/layers.idx":                []byte("- \"dependencies\":\n"),
	}
	order := []string{"META-INF/MANIFEST.MF", "BOOT-INF/classes/a/B.class", "BOOT-INF/lib/jnats-2.20.5.jar",
		"BOOT-INF/lib/postgresql-42.7.4.jar", "BOOT-INF/classpath.idx", "BOOT-INF/layers.idx"}
	jar := testJar(t, entries, map[string]bool{"BOOT-INF/lib/jnats-2.20.5.jar": true, "BOOT-INF/lib/postgresql-42.7.4.jar": true}, order)

	mem, err := inspectJar(jar, "app", false)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := streamJar(bytes.NewReader(jar))
	if err != nil {
		t.Fatal(err)
	}
	for name, jc := range map[string]*jarContents{"in memory": mem, "streamed": streamed} {
		if jarAttr(jc.manifest, "Spring-Boot-Version") != "3.4.2" || len(jc.bootLibs) != 2 || len(jc.classpathIdx) != 2 || !jc.layersIdx {
			t.Errorf("%s: %+v", name, jc)
		}
	}
	if mem.bootLibPoms["BOOT-INF/lib/jnats-2.20.5.jar"]["groupId"] != "io.nats" {
		t.Errorf("nested pom not read in place: %v", mem.bootLibPoms)
	}
	// A stored member of unknown size cannot be delimited in a stream.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "BOOT-INF/lib/x-1.jar", Method: zip.Store})
	w.Write(lib)
	zw.Close()
	if _, err := streamJar(bytes.NewReader(buf.Bytes())); err == nil || !strings.Contains(err.Error(), "unknown size") {
		t.Errorf("err = %v", err)
	}
}
