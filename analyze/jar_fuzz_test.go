package analyze

import (
	"bytes"
	"hash/crc32"
	"maps"
	"sort"
	"strings"
	"testing"
)

func crc(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

// renderManifest writes attrs back in MANIFEST.MF form, wrapping at 72 bytes.
func renderManifest(attrs map[string]string) []byte {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	for _, k := range keys {
		line := k + ": " + attrs[k]
		if attrs[k] == "" {
			line = k + ":"
		}
		for first := true; len(line) > 0; first = false {
			n := 72
			if !first {
				b.WriteByte(' ')
				n = 71
			}
			n = min(n, len(line))
			b.WriteString(line[:n] + "\r\n")
			line = line[n:]
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// FuzzParseJarManifest: no panics, and whatever parses survives a
// render/parse round trip unchanged.
func FuzzParseJarManifest(f *testing.F) {
	f.Add([]byte("Manifest-Version: 1.0\r\nStart-Class: com.example.orderservice.OrderServiceApplicat\r\n ion\r\n\r\n"))
	f.Add([]byte("Main-Class: a.B\nBuild-Jdk-Spec: 17"))
	f.Add([]byte(" x\r\n"))
	f.Add([]byte("A:\rB: 2\r\n\r\nName: x\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		attrs, err := parseJarManifest(data)
		if err != nil {
			return
		}
		for k, v := range attrs {
			// Names and values that cannot be written back are outside the
			// round-trip property (the parser accepts them leniently).
			if k == "" || strings.ContainsAny(k, ": \r\n") || strings.ContainsAny(v, "\r\n") || strings.HasPrefix(v, " ") {
				return
			}
		}
		again, err := parseJarManifest(renderManifest(attrs))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again) != len(attrs) {
			t.Fatalf("round trip changed attributes: %v → %v", attrs, again)
		}
		for k, v := range attrs {
			if jarAttr(again, k) != v {
				t.Fatalf("round trip changed %q: %q → %q", k, v, jarAttr(again, k))
			}
		}
		_ = maps.Clone(again)
	})
}

// FuzzStreamJar: arbitrary bytes as a jar never panic nor loop.
func FuzzStreamJar(f *testing.F) {
	f.Add([]byte("PK\x03\x04"))
	f.Add(append([]byte("PK\x03\x04\x14\x00\x08\x00\x08\x00"), make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		streamJar(bytes.NewReader(data))
		inspectJar(data, "", false)
	})
}
