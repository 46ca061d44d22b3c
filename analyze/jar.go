package analyze

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"path"
	"strings"
)

// parseJarManifest reads the main section of a META-INF/MANIFEST.MF: the
// attributes before the first blank line. It follows the JAR specification:
// lines end in CRLF, LF or CR; a line starting with one space continues the
// previous value (writers wrap at 72 bytes, often mid-word, so the space is
// dropped and nothing else); names are case-insensitive, so keys are
// returned in the spelling first seen and looked up with jarAttr. A line
// with no ": " separator is an error naming its line number.
func parseJarManifest(data []byte) (map[string]string, error) {
	attrs := map[string]string{}
	spelling := map[string]string{} // lower-case name → first spelling seen
	var last string                 // key of the attribute a continuation line extends
	lineNo := 0
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexAny(data, "\r\n"); i < 0 {
			line, data = data, nil
		} else {
			line = data[:i]
			if data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n' {
				data = data[i+2:]
			} else {
				data = data[i+1:]
			}
		}
		lineNo++
		if len(line) == 0 {
			break // end of the main section
		}
		if line[0] == ' ' {
			if last == "" {
				return nil, fmt.Errorf("manifest line %d: continuation line with nothing to continue", lineNo)
			}
			attrs[last] += string(line[1:])
			continue
		}
		k, v, ok := bytes.Cut(line, []byte(": "))
		if !ok {
			// "Name:" with an empty value is legal and written without the space.
			if bytes.HasSuffix(line, []byte(":")) {
				k, v, ok = line[:len(line)-1], nil, true
			}
		}
		if !ok || len(k) == 0 {
			return nil, fmt.Errorf("manifest line %d: want \"Name: value\", got %q", lineNo, jarTruncate(string(line), 60))
		}
		key := string(k)
		if prev, ok := spelling[strings.ToLower(key)]; ok {
			key = prev
		} else {
			spelling[strings.ToLower(key)] = key
		}
		attrs[key] = string(v)
		last = key
	}
	return attrs, nil
}

// jarAttrKey finds the stored spelling of name (manifest names are
// case-insensitive), or "".
func jarAttrKey(attrs map[string]string, name string) string {
	if _, ok := attrs[name]; ok {
		return name
	}
	for k := range attrs {
		if strings.EqualFold(k, name) {
			return k
		}
	}
	return ""
}

// jarAttr looks an attribute up case-insensitively.
func jarAttr(attrs map[string]string, name string) string {
	if k := jarAttrKey(attrs, name); k != "" {
		return attrs[k]
	}
	return ""
}

// jarTruncate shortens s for an error message.
func jarTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseJarFileName splits a Maven-style jar file name into artifact and
// version: the version starts at the first "-" followed by a digit
// (lettuce-core-6.4.2.RELEASE.jar → lettuce-core, 6.4.2.RELEASE). A name
// without one is all artifact.
func parseJarFileName(file string) (artifact, version string) {
	base := strings.TrimSuffix(path.Base(file), ".jar")
	for i := 0; i+1 < len(base); i++ {
		if base[i] == '-' && base[i+1] >= '0' && base[i+1] <= '9' {
			return base[:i], base[i+1:]
		}
	}
	return base, ""
}

// knownGroups maps artifact-name prefixes to Maven groups for libraries
// whose jars carry no pom.properties (Gradle-built, like Spring's own), so
// the inventory can still name the group. Longest prefix wins.
var knownGroups = []struct{ prefix, group string }{
	{"spring-boot", "org.springframework.boot"},
	{"spring-data-", "org.springframework.data"},
	{"spring-kafka", "org.springframework.kafka"},
	{"spring-cloud-", "org.springframework.cloud"},
	{"spring-security-", "org.springframework.security"},
	{"spring-", "org.springframework"},
	{"hibernate-", "org.hibernate.orm"},
	{"jnats", "io.nats"},
	{"kafka-clients", "org.apache.kafka"},
	{"resilience4j-", "io.github.resilience4j"},
	{"micrometer-", "io.micrometer"},
	{"reactor-netty", "io.projectreactor.netty"},
	{"reactor-core", "io.projectreactor"},
	{"netty-", "io.netty"},
	{"lettuce-core", "io.lettuce"},
	{"jedis", "redis.clients"},
	{"postgresql", "org.postgresql"},
	{"mysql-connector-j", "com.mysql"},
	{"jackson-", "com.fasterxml.jackson.core"},
	{"tomcat-embed-", "org.apache.tomcat.embed"},
	{"HikariCP", "com.zaxxer"},
}

// guessGroup returns the group of a well-known artifact, or "".
func guessGroup(artifact string) string {
	best, group := 0, ""
	for _, k := range knownGroups {
		if strings.HasPrefix(artifact, k.prefix) && len(k.prefix) > best {
			best, group = len(k.prefix), k.group
		}
	}
	return group
}

// jarProperties reads a Java .properties file's simple "k=v" lines
// (pom.properties, the JDK release file without quotes handled by caller).
func jarProperties(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			k, v, ok = strings.Cut(line, ":")
		}
		if ok {
			out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return out
}

// jarContents is what analyze learns from opening a jar.
type jarContents struct {
	manifest     map[string]string
	pom          map[string]string // pom.properties matching the jar's own artifact, if any
	bootLibs     []string          // BOOT-INF/lib/*.jar entry names (fat jars)
	bootLibPoms  map[string]map[string]string
	classpathIdx []string // BOOT-INF/classpath.idx entries
	layersIdx    bool
}

// maxNestedZipEntry bounds how much of one zip member analyze decompresses
// (manifests, indexes, pom.properties are a few KB; anything larger is not
// what they claim to be).
const maxNestedZipEntry = 1 << 20

// readZipMember returns a member's bytes, bounded.
func readZipMember(f *zip.File) ([]byte, error) {
	if f.UncompressedSize64 > maxNestedZipEntry {
		return nil, fmt.Errorf("%s: %d bytes is larger than the %d analyze reads", f.Name, f.UncompressedSize64, maxNestedZipEntry)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxNestedZipEntry))
}

// inspectJar opens a jar held in memory. artifact (from the file name)
// picks the right pom.properties when a shaded jar carries several. Nested
// jars of a Spring Boot fat jar are STORED, so their pom.properties are
// read in place from the outer bytes without decompressing anything big.
func inspectJar(data []byte, artifact string, nested bool) (*jarContents, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	jc := &jarContents{}
	var poms []map[string]string
	for _, f := range zr.File {
		switch {
		case f.Name == "META-INF/MANIFEST.MF":
			b, err := readZipMember(f)
			if err != nil {
				return nil, err
			}
			if jc.manifest, err = parseJarManifest(b); err != nil {
				return nil, fmt.Errorf("META-INF/MANIFEST.MF: %w", err)
			}
		case strings.HasPrefix(f.Name, "META-INF/maven/") && strings.HasSuffix(f.Name, "/pom.properties"):
			b, err := readZipMember(f)
			if err != nil {
				continue
			}
			poms = append(poms, jarProperties(b))
		case !nested && strings.HasPrefix(f.Name, "BOOT-INF/lib/") && strings.HasSuffix(f.Name, ".jar"):
			jc.bootLibs = append(jc.bootLibs, f.Name)
			if f.Method == zip.Store && f.UncompressedSize64 < uint64(len(data)) {
				off, err := f.DataOffset()
				if err == nil && off >= 0 && off+int64(f.UncompressedSize64) <= int64(len(data)) {
					libArtifact, _ := parseJarFileName(f.Name)
					inner, err := inspectJar(data[off:off+int64(f.UncompressedSize64)], libArtifact, true)
					if err == nil && inner.pom != nil {
						if jc.bootLibPoms == nil {
							jc.bootLibPoms = map[string]map[string]string{}
						}
						jc.bootLibPoms[f.Name] = inner.pom
					}
				}
			}
		case !nested && f.Name == "BOOT-INF/classpath.idx":
			b, err := readZipMember(f)
			if err == nil {
				jc.classpathIdx = parseClasspathIndex(b)
			}
		case !nested && f.Name == "BOOT-INF/layers.idx":
			jc.layersIdx = true
		}
	}
	jc.pom = pickPom(poms, artifact)
	return jc, nil
}

// pickPom chooses the pom.properties describing the jar itself.
func pickPom(poms []map[string]string, artifact string) map[string]string {
	for _, p := range poms {
		if p["artifactId"] == artifact {
			return p
		}
	}
	if len(poms) == 1 && artifact == "" {
		return poms[0]
	}
	return nil
}

// parseClasspathIndex reads BOOT-INF/classpath.idx: one `- "BOOT-INF/lib/x.jar"` per line.
func parseClasspathIndex(data []byte) []string {
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "-"))
		line = strings.Trim(line, `"`)
		if strings.HasSuffix(line, ".jar") {
			out = append(out, line)
		}
	}
	return out
}

// streamJar reads a jar front to back through its local file headers,
// for jars too big to hold in memory. It collects the manifest, Spring
// Boot's index files and the names of nested jars; member data is skipped
// (or inflated and discarded when its size is only in a trailing data
// descriptor). It stops at the central directory, or early — returning
// what it has with an error — at a STORED member of unknown size, which a
// stream cannot delimit.
func streamJar(r io.Reader) (*jarContents, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	jc := &jarContents{}
	var hdr [30]byte
	for {
		if _, err := io.ReadFull(br, hdr[:4]); err != nil {
			return jc, fmt.Errorf("zip ends without a central directory: %w", err)
		}
		sig := binary.LittleEndian.Uint32(hdr[:4])
		if sig != 0x04034b50 { // anything else: central directory or end record
			return jc, nil
		}
		if _, err := io.ReadFull(br, hdr[4:]); err != nil {
			return jc, err
		}
		flags := binary.LittleEndian.Uint16(hdr[6:])
		method := binary.LittleEndian.Uint16(hdr[8:])
		csize := int64(binary.LittleEndian.Uint32(hdr[18:]))
		nameLen := int(binary.LittleEndian.Uint16(hdr[26:]))
		extraLen := int(binary.LittleEndian.Uint16(hdr[28:]))
		nameBuf := make([]byte, nameLen)
		if _, err := io.ReadFull(br, nameBuf); err != nil {
			return jc, err
		}
		if _, err := br.Discard(extraLen); err != nil {
			return jc, err
		}
		name := string(nameBuf)
		wanted := name == "META-INF/MANIFEST.MF" || name == "BOOT-INF/classpath.idx" || name == "BOOT-INF/layers.idx"
		if strings.HasPrefix(name, "BOOT-INF/lib/") && strings.HasSuffix(name, ".jar") {
			jc.bootLibs = append(jc.bootLibs, name)
		}
		descriptor := flags&0x8 != 0
		var data io.Reader
		member := io.LimitReader(br, csize) // the member's bytes when its size is known
		switch {
		case !descriptor && method == zip.Store:
			data = member
		case !descriptor && method == zip.Deflate:
			data = flate.NewReader(member)
		case descriptor && method == zip.Deflate:
			// flate reads exactly its stream from a ByteReader, so the
			// descriptor that follows is left in br.
			data = flate.NewReader(br)
		default:
			return jc, fmt.Errorf("%s: member stored with unknown size (method %d); stopped here", name, method)
		}
		if wanted {
			b, err := io.ReadAll(io.LimitReader(data, maxNestedZipEntry))
			if err != nil {
				return jc, fmt.Errorf("%s: %w", name, err)
			}
			switch name {
			case "META-INF/MANIFEST.MF":
				if jc.manifest, err = parseJarManifest(b); err != nil {
					return jc, fmt.Errorf("%s: %w", name, err)
				}
			case "BOOT-INF/classpath.idx":
				jc.classpathIdx = parseClasspathIndex(b)
			case "BOOT-INF/layers.idx":
				jc.layersIdx = true
			}
		}
		if _, err := io.Copy(io.Discard, data); err != nil {
			return jc, fmt.Errorf("%s: %w", name, err)
		}
		if descriptor {
			var d [4]byte
			if _, err := io.ReadFull(br, d[:]); err != nil {
				return jc, err
			}
			rest := 8 // crc32 was d; sizes follow
			if binary.LittleEndian.Uint32(d[:]) == 0x08074b50 {
				rest = 12 // signature, then crc32 and sizes
			}
			if _, err := br.Discard(rest); err != nil {
				return jc, err
			}
		} else if _, err := io.Copy(io.Discard, member); err != nil {
			// The inflater may stop short of csize; skip what it left.
			return jc, fmt.Errorf("%s: %w", name, err)
		}
	}
}
