package analyze

import (
	"archive/tar"
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Memory bounds of the layer scan. A layer is never held in memory: the
// tar stream is decompressed and walked entry by entry, and only small,
// known files are read (os-release, the JDK release file, jib's arg files,
// MANIFEST.MF, Spring Boot's index files — each capped at imageSmallFile).
// Jars are the exception that needs random access (a zip's directory is at
// its end):
//   - a dependency jar up to imageMaxLibJar is read into memory to find its
//     pom.properties (the Maven group); a larger one is named from its file
//     name only;
//   - an application jar up to imageMaxAppJar is read into memory (its
//     nested BOOT-INF/lib jars are STORED, so their pom.properties are read
//     in place); a larger one is streamed once through its local file
//     headers (streamJar), which yields the manifest, the index files and
//     the nested jar names, but not nested pom.properties.
//
// So peak memory is about one application jar, whatever the image size.
var (
	imageSmallFile int64 = 1 << 20
	imageMaxLibJar int64 = 8 << 20
	imageMaxAppJar int64 = 64 << 20
)

// imageFact is something a file in the image says, keyed by its path so a
// later layer can replace it and a whiteout can delete it.
type imageFact struct {
	layer int
	kind  string
	text  string
	attrs map[string]string
	list  []string
	jar   *jarContents
	dep   Dependency
}

// Kinds of imageFact.
const (
	factOSRelease    = "os-release"
	factJavaRelease  = "java-release"
	factJavac        = "javac"
	factClassFile    = "class-file" // text: the Java release its class file version means
	factJibMain      = "jib-main-class"
	factJibClasspath = "jib-classpath"
	factManifest     = "manifest"
	factClasspathIdx = "classpath-idx"
	factLayersIdx    = "layers-idx"
	factLoader       = "boot-loader"
	factLibJar       = "lib-jar"
	factAppJar       = "app-jar"
)

// imageScan accumulates facts over an image's layers.
type imageScan struct {
	facts map[string]imageFact
	buf   bytes.Buffer // reused for files read into memory
	notes []Evidence   // things worth saying that are not facts (skipped jars, ...)
	// classSeen is set once one application class file has been read: one
	// tells the bytecode level, reading them all would cost for nothing.
	classSeen bool
}

func (src *imageSource) analyze(ctx context.Context) (*Image, error) {
	cfg, err := v1.ParseConfigFile(bytes.NewReader(src.rawConfig))
	if err != nil {
		return nil, fmt.Errorf("image config is not valid JSON: %w", err)
	}
	img := &Image{Ref: src.ref, Digest: src.digest, Layers: len(src.layers), SizeBytes: int64(len(src.rawConfig))}
	if src.digest != "" {
		img.Evidence = append(img.Evidence, Evidence{Fact: "digest " + src.digest, Source: src.digestNote})
	}
	sc := &imageScan{facts: map[string]imageFact{}}
	for i, l := range src.layers {
		img.SizeBytes += l.size
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := sc.scanBlob(i+1, l); err != nil {
			return nil, fmt.Errorf("layer %d of %d (%s): %w", i+1, len(src.layers), l.digest, err)
		}
	}
	sc.finish(img, cfg)
	return img, nil
}

func (sc *imageScan) scanBlob(layer int, l layerBlob) error {
	rc, err := l.open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return sc.scanLayer(layer, rc)
}

// scanLayer walks one layer blob (gzip, zstd or plain tar) exactly once.
func (sc *imageScan) scanLayer(layer int, blob io.Reader) error {
	br := bufio.NewReaderSize(blob, 256<<10)
	magic, _ := br.Peek(4)
	var r io.Reader = br
	switch {
	case len(magic) >= 2 && magic[0] == 0x1f && magic[1] == 0x8b:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("gzip: %w", err)
		}
		defer zr.Close()
		r = zr
	case len(magic) == 4 && bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return fmt.Errorf("zstd: %w", err)
		}
		defer zr.Close()
		r = zr
	}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		name := path.Clean("/" + strings.TrimPrefix(h.Name, "./"))
		if base := path.Base(name); strings.HasPrefix(base, ".wh.") {
			sc.whiteout(path.Dir(name), strings.TrimPrefix(base, ".wh."))
			continue
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		if err := sc.file(layer, name, h.Size, tr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	// Reading to the end lets gzip check its CRC: a corrupt blob is an
	// error, not a silently partial inventory.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("reading layer: %w", err)
	}
	return nil
}

// whiteout applies an overlay deletion: ".wh.NAME" removes dir/NAME, the
// opaque marker ".wh..wh..opq" empties dir of what lower layers put there.
func (sc *imageScan) whiteout(dir, target string) {
	prefix := path.Join(dir, target)
	if target == ".wh..opq" {
		prefix = dir
	}
	for p := range sc.facts {
		if p == prefix || strings.HasPrefix(p, strings.TrimSuffix(prefix, "/")+"/") {
			delete(sc.facts, p)
		}
	}
}

// readSmall reads a file of at most limit bytes into the scan's reused
// buffer (ok is false for a bigger one, which is left unread). The bytes
// are valid until the next call: callers keep only what they copy out.
func (sc *imageScan) readSmall(r io.Reader, size, limit int64) (data []byte, ok bool, err error) {
	if size > limit {
		return nil, false, nil
	}
	sc.buf.Reset()
	sc.buf.Grow(int(size))
	if _, err := io.CopyN(&sc.buf, r, size); err != nil {
		return nil, false, err
	}
	return sc.buf.Bytes(), true, nil
}

// isJDKPath says whether p is inside a Java runtime, whose own jars
// (jrt-fs.jar, ...) are not the application's.
func isJDKPath(p string) bool {
	for _, s := range []string{"/opt/java/", "/usr/lib/jvm/", "/jre/", "/jdk/", "/cnb/"} {
		if strings.Contains(p, s) {
			return true
		}
	}
	return false
}

// isLibDir says whether a jar at p is a dependency (BOOT-INF/lib, /app/libs,
// lib/ next to an extracted application jar) rather than the application.
func isLibDir(p string) bool {
	dir := path.Base(path.Dir(p))
	return dir == "lib" || dir == "libs"
}

// file looks at one regular file of a layer; r is positioned at its data.
func (sc *imageScan) file(layer int, name string, size int64, r io.Reader) error {
	base := path.Base(name)
	set := func(f imageFact) { f.layer = layer; sc.facts[name] = f }
	switch {
	case name == "/etc/os-release" || name == "/usr/lib/os-release":
		b, ok, err := sc.readSmall(r, size, imageSmallFile)
		if err != nil || !ok {
			return err
		}
		props := jarProperties(b)
		set(imageFact{kind: factOSRelease, text: cmp.Or(props["PRETTY_NAME"], props["NAME"]+" "+props["VERSION_ID"])})
	case base == "release" && !strings.HasPrefix(name, "/etc/"):
		b, ok, err := sc.readSmall(r, size, imageSmallFile)
		if err != nil || !ok {
			return err
		}
		if props := jarProperties(b); props["JAVA_VERSION"] != "" {
			set(imageFact{kind: factJavaRelease, attrs: props})
		}
	case base == "javac" && path.Base(path.Dir(name)) == "bin":
		set(imageFact{kind: factJavac})
	case base == "jib-main-class-file":
		b, ok, err := sc.readSmall(r, size, imageSmallFile)
		if err != nil || !ok {
			return err
		}
		set(imageFact{kind: factJibMain, text: strings.TrimSpace(string(b))})
	case base == "jib-classpath-file":
		b, ok, err := sc.readSmall(r, size, imageSmallFile)
		if err != nil || !ok {
			return err
		}
		set(imageFact{kind: factJibClasspath, list: strings.Split(strings.TrimSpace(string(b)), ":")})
	case base == "MANIFEST.MF" && path.Base(path.Dir(name)) == "META-INF":
		b, ok, err := sc.readSmall(r, size, imageSmallFile)
		if err != nil || !ok {
			return err
		}
		attrs, err := parseJarManifest(b)
		if err != nil {
			sc.notes = append(sc.notes, Evidence{Fact: "unreadable manifest skipped: " + err.Error(), Source: name})
			return nil
		}
		set(imageFact{kind: factManifest, attrs: attrs})
	case base == "classpath.idx" && path.Base(path.Dir(name)) == "BOOT-INF":
		b, ok, err := sc.readSmall(r, size, imageSmallFile)
		if err != nil || !ok {
			return err
		}
		set(imageFact{kind: factClasspathIdx, list: parseClasspathIndex(b)})
	case base == "layers.idx" && path.Base(path.Dir(name)) == "BOOT-INF":
		set(imageFact{kind: factLayersIdx})
	case strings.Contains(name, "/org/springframework/boot/loader/") && strings.HasSuffix(name, "Launcher.class"):
		set(imageFact{kind: factLoader})
	case !sc.classSeen && strings.HasSuffix(name, ".class") && strings.Contains(name, "/classes/") && !isJDKPath(name):
		// An exploded application (Jib's /app/classes, an extracted
		// BOOT-INF/classes): its bytecode level is the oldest Java that
		// runs it, the one fact left when the image has no runtime.
		b, ok, err := sc.readSmall(r, min(size, 8), 8)
		if err != nil || !ok {
			return err
		}
		if release, ok := classFileRelease(b); ok {
			sc.classSeen = true
			set(imageFact{kind: factClassFile, text: release})
		}
	case strings.HasSuffix(name, ".jar") && !isJDKPath(name):
		if isLibDir(name) {
			return sc.libJar(layer, name, size, r)
		}
		return sc.appJar(layer, name, size, r)
	}
	return nil
}

// libJar records a dependency jar, reading its pom.properties when small.
func (sc *imageScan) libJar(layer int, name string, size int64, r io.Reader) error {
	artifact, version := parseJarFileName(name)
	dep := Dependency{Artifact: artifact, Version: version}
	if b, ok, err := sc.readSmall(r, size, imageMaxLibJar); err != nil {
		return err
	} else if ok {
		if jc, err := inspectJar(b, artifact, true); err == nil && jc.pom != nil {
			dep.Group = jc.pom["groupId"]
			dep.Version = cmp.Or(jc.pom["version"], dep.Version)
		}
	}
	sc.facts[name] = imageFact{layer: layer, kind: factLibJar, dep: dep}
	return nil
}

// appJar records an application jar: in memory when it fits the bound,
// streamed through its local headers otherwise.
func (sc *imageScan) appJar(layer int, name string, size int64, r io.Reader) error {
	artifact, _ := parseJarFileName(name)
	var jc *jarContents
	if size <= imageMaxAppJar {
		b, _, err := sc.readSmall(r, size, imageMaxAppJar)
		if err != nil {
			return err
		}
		jc, err = inspectJar(b, artifact, false)
		if err != nil {
			sc.notes = append(sc.notes, Evidence{Fact: "not a readable jar, skipped: " + err.Error(), Source: name})
			return nil
		}
	} else {
		var err error
		jc, err = streamJar(io.LimitReader(r, size))
		if err != nil {
			sc.notes = append(sc.notes, Evidence{Fact: "jar streamed partly: " + err.Error(), Source: name})
		}
		sc.notes = append(sc.notes, Evidence{
			Fact:   fmt.Sprintf("jar of %d bytes streamed, not loaded: nested jars named but their pom.properties not read", size),
			Source: name,
		})
	}
	sc.facts[name] = imageFact{layer: layer, kind: factAppJar, jar: jc}
	return nil
}

// where names a fact's file and layer for evidence.
func (f imageFact) where(p string) string { return fmt.Sprintf("%s (layer %d)", p, f.layer) }

// factsOf returns the paths holding facts of kind, sorted.
func (sc *imageScan) factsOf(kind string) []string {
	var out []string
	for p, f := range sc.facts {
		if f.kind == kind {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// imageBootManifest is a Spring Boot manifest found in the image, in an
// application jar or an exploded one.
type imageBootManifest struct {
	attrs  map[string]string
	source string
}

// finish turns the facts and the config into the Image.
func (sc *imageScan) finish(img *Image, cfg *v1.ConfigFile) {
	ev := func(fact, source string) { img.Evidence = append(img.Evidence, Evidence{Fact: fact, Source: source}) }
	env := map[string]string{}
	for _, kv := range cfg.Config.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	labels := cfg.Config.Labels

	if !cfg.Created.IsZero() {
		t := cfg.Created.UTC()
		img.Created = &t
		if t.Equal(time.Unix(0, 0)) || t.Equal(time.Date(1980, 1, 1, 0, 0, 1, 0, time.UTC)) {
			ev("created "+t.Format(time.RFC3339)+": a reproducible-build timestamp, not the build time", "config.created")
		}
	}
	img.User = cfg.Config.User
	if img.User == "" {
		img.User = "root"
		ev("user root", "config.User is empty, so the process runs as uid 0")
	} else {
		ev("user "+img.User, "config.User")
	}
	img.ExposedPorts = slices.Sorted(maps.Keys(cfg.Config.ExposedPorts))
	if len(img.ExposedPorts) > 0 {
		ev("exposes "+strings.Join(img.ExposedPorts, ", "), "config.ExposedPorts")
	}

	// Spring Boot manifests: application jars first, then exploded ones.
	var boots []imageBootManifest
	var appJars []string
	for _, p := range sc.factsOf(factAppJar) {
		f := sc.facts[p]
		if f.jar != nil && f.jar.manifest != nil {
			boots = append(boots, imageBootManifest{f.jar.manifest, f.where(p) + " META-INF/MANIFEST.MF"})
			if jarAttr(f.jar.manifest, "Spring-Boot-Version") != "" || len(f.jar.bootLibs) > 0 {
				appJars = append(appJars, p)
			}
		}
	}
	for _, p := range sc.factsOf(factManifest) {
		f := sc.facts[p]
		boots = append(boots, imageBootManifest{f.attrs, f.where(p)})
	}

	sc.detectBuildTool(img, cfg, labels, appJars, ev)
	sc.detectJava(img, env, boots, ev)
	sc.detectSpringBoot(img, labels, boots, ev)
	sc.detectMainClass(img, cfg, boots, ev)
	sc.collectDependencies(img, appJars, ev)
	sc.detectBase(img, env, labels, ev)

	if img.Java == nil && len(img.Dependencies) == 0 && len(boots) == 0 && env["JAVA_VERSION"] == "" {
		img.BuildTool = "unknown"
		ev("not a Java application", fmt.Sprintf("no JVM release file, jar, MANIFEST.MF or JAVA_VERSION env in %d layers", img.Layers))
	}
	img.Evidence = append(img.Evidence, sc.notes...)
}

func (sc *imageScan) detectBuildTool(img *Image, cfg *v1.ConfigFile, labels map[string]string, appJars []string, ev func(string, string)) {
	for _, h := range cfg.History {
		if h.Author == "Jib" || strings.HasPrefix(h.CreatedBy, "jib-") {
			img.BuildTool = "jib"
			ev("built by jib", fmt.Sprintf("history: author %q, created_by %q", h.Author, h.CreatedBy))
			return
		}
	}
	if p := sc.factsOf(factJibMain); len(p) > 0 {
		img.BuildTool = "jib"
		ev("built by jib", sc.facts[p[0]].where(p[0]))
		return
	}
	for _, l := range []string{"io.buildpacks.lifecycle.metadata", "io.buildpacks.build.metadata"} {
		if labels[l] != "" {
			img.BuildTool = "buildpacks"
			ev("built by Cloud Native Buildpacks", "label "+l)
			return
		}
	}
	loaders := sc.factsOf(factLoader)
	if len(loaders) > 0 {
		var libs int
		for _, p := range sc.factsOf(factLibJar) {
			if strings.Contains(p, "/BOOT-INF/lib/") {
				libs++
			}
		}
		if libs > 0 {
			img.BuildTool = "dockerfile-layered"
			ev("extracted Spring Boot layers (dependencies, spring-boot-loader, application)",
				fmt.Sprintf("%s and %d jars in BOOT-INF/lib as plain files", sc.facts[loaders[0]].where(loaders[0]), libs))
			return
		}
	}
	if len(appJars) > 0 {
		img.BuildTool = "dockerfile-fatjar"
		ev("executable Spring Boot jar copied in", sc.facts[appJars[0]].where(appJars[0]))
		return
	}
	img.BuildTool = "unknown"
}

// classFileRelease reads a class file's header (0xCAFEBABE, minor, major)
// and returns the Java release of its major version: 61 is Java 17.
func classFileRelease(b []byte) (string, bool) {
	if len(b) < 8 || b[0] != 0xCA || b[1] != 0xFE || b[2] != 0xBA || b[3] != 0xBE {
		return "", false
	}
	major := int(b[6])<<8 | int(b[7])
	if major < 45 || major > 200 {
		return "", false
	}
	if major < 49 {
		return "1." + strconv.Itoa(major-44), true
	}
	return strconv.Itoa(major - 44), true
}

// javaVersionFromEnv turns "jdk-17.0.13+11" (Temurin's JAVA_VERSION) into 17.0.13.
func javaVersionFromEnv(v string) string {
	v = strings.TrimPrefix(strings.TrimPrefix(v, "jdk-"), "jdk")
	v, _, _ = strings.Cut(v, "+")
	return strings.TrimPrefix(v, "-")
}

func (sc *imageScan) detectJava(img *Image, env map[string]string, boots []imageBootManifest, ev func(string, string)) {
	releases := sc.factsOf(factJavaRelease)
	if home := env["JAVA_HOME"]; home != "" {
		sort.SliceStable(releases, func(i, k int) bool { return path.Dir(releases[i]) == home && path.Dir(releases[k]) != home })
	}
	if len(releases) > 0 {
		p := releases[0]
		f := sc.facts[p]
		src := fmt.Sprintf("%s: JAVA_VERSION=%q", f.where(p), f.attrs["JAVA_VERSION"])
		if f.attrs["IMPLEMENTOR"] != "" {
			src += fmt.Sprintf(", IMPLEMENTOR=%q", f.attrs["IMPLEMENTOR"])
		}
		img.Java = &Java{Version: f.attrs["JAVA_VERSION"], Vendor: f.attrs["IMPLEMENTOR"], Evidence: src}
		ev("java "+img.Java.Version, src)
	}
	if v := env["JAVA_VERSION"]; v != "" {
		src := "env JAVA_VERSION=" + v
		if img.Java == nil {
			img.Java = &Java{Version: javaVersionFromEnv(v), Evidence: src}
		}
		ev("java "+javaVersionFromEnv(v), src)
	}
	for _, b := range boots {
		if spec := jarAttr(b.attrs, "Build-Jdk-Spec"); spec != "" {
			src := b.source + ": Build-Jdk-Spec: " + spec
			if img.Java == nil {
				img.Java = &Java{Version: spec, Evidence: src + " (the JDK it was built with; no runtime found in the image)"}
			}
			ev("built with JDK "+spec, src)
			break
		}
	}
	for _, p := range sc.factsOf(factClassFile) {
		f := sc.facts[p]
		src := f.where(p) + ": class file version " + strconv.Itoa(classFileMajor(f.text))
		if img.Java == nil {
			img.Java = &Java{Version: f.text, Evidence: src + " (the bytecode level; no runtime found in the image)"}
		}
		ev("compiled for Java "+f.text, src)
	}
}

// classFileMajor is classFileRelease backwards, for the evidence line.
func classFileMajor(release string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(release, "1."))
	return n + 44
}

func (sc *imageScan) detectSpringBoot(img *Image, labels map[string]string, boots []imageBootManifest, ev func(string, string)) {
	set := func(v, src string) {
		if img.SpringBoot == nil {
			img.SpringBoot = &SpringBoot{Version: v, Evidence: src}
		}
		ev("spring boot "+v, src)
	}
	for _, b := range boots {
		if v := jarAttr(b.attrs, "Spring-Boot-Version"); v != "" {
			set(v, b.source+": Spring-Boot-Version: "+v)
			break
		}
	}
	if v := labels["org.springframework.boot.version"]; v != "" {
		set(v, "label org.springframework.boot.version="+v)
	}
	for _, p := range sc.factsOf(factLibJar) {
		if f := sc.facts[p]; f.dep.Artifact == "spring-boot" && f.dep.Version != "" {
			set(f.dep.Version, f.where(p))
			break
		}
	}
	if img.SpringBoot == nil {
		for _, p := range sc.factsOf(factAppJar) {
			for _, lib := range sc.facts[p].jar.bootLibs {
				if a, v := parseJarFileName(lib); a == "spring-boot" && v != "" {
					set(v, sc.facts[p].where(p)+" "+lib)
				}
			}
		}
	}
}

// isLauncher says whether class is Spring Boot's loader, not the application.
func isLauncher(class string) bool {
	return strings.HasPrefix(class, "org.springframework.boot.loader.")
}

func (sc *imageScan) detectMainClass(img *Image, cfg *v1.ConfigFile, boots []imageBootManifest, ev func(string, string)) {
	set := func(c, src string) {
		img.MainClass = c
		ev("main class "+c, src)
	}
	for _, b := range boots {
		if c := jarAttr(b.attrs, "Start-Class"); c != "" {
			set(c, b.source+": Start-Class")
			return
		}
	}
	if p := sc.factsOf(factJibMain); len(p) > 0 && sc.facts[p[0]].text != "" {
		set(sc.facts[p[0]].text, sc.facts[p[0]].where(p[0]))
		return
	}
	for _, b := range boots {
		if c := jarAttr(b.attrs, "Main-Class"); c != "" && !isLauncher(c) {
			set(c, b.source+": Main-Class")
			return
		}
	}
	args := append(append([]string{}, cfg.Config.Entrypoint...), cfg.Config.Cmd...)
	for i, a := range args {
		if path.Base(a) == "java" {
			for _, c := range args[i+1:] {
				if !strings.HasPrefix(c, "-") && !strings.HasPrefix(c, "@") && strings.Contains(c, ".") &&
					!strings.HasSuffix(c, ".jar") && !isLauncher(c) {
					set(c, "config entrypoint/cmd")
					return
				}
			}
		}
	}
}

// collectDependencies merges every list of libraries the image carries.
func (sc *imageScan) collectDependencies(img *Image, appJars []string, ev func(string, string)) {
	deps := map[string]Dependency{} // artifact → best-known coordinates
	add := func(d Dependency) {
		if d.Artifact == "" {
			return
		}
		old, ok := deps[d.Artifact]
		if ok && (old.Group != "" || d.Group == "") && (old.Version != "" || d.Version == "") {
			return
		}
		if ok {
			d.Group = cmp.Or(d.Group, old.Group)
			d.Version = cmp.Or(d.Version, old.Version)
		}
		deps[d.Artifact] = d
	}
	fromName := func(p string) Dependency {
		a, v := parseJarFileName(p)
		return Dependency{Artifact: a, Version: v}
	}
	byDir := map[string]int{}
	dirLayer := map[string]int{}
	for _, p := range sc.factsOf(factLibJar) {
		f := sc.facts[p]
		add(f.dep)
		byDir[path.Dir(p)]++
		dirLayer[path.Dir(p)] = f.layer
	}
	for _, d := range slices.Sorted(maps.Keys(byDir)) {
		ev(fmt.Sprintf("%d dependency jars", byDir[d]), fmt.Sprintf("%s/*.jar (layer %d)", d, dirLayer[d]))
	}
	for _, p := range appJars {
		f := sc.facts[p]
		for _, lib := range f.jar.bootLibs {
			d := fromName(lib)
			if pom := f.jar.bootLibPoms[lib]; pom != nil {
				d.Group, d.Version = pom["groupId"], cmp.Or(pom["version"], d.Version)
			}
			add(d)
		}
		if len(f.jar.bootLibs) > 0 {
			ev(fmt.Sprintf("%d dependency jars", len(f.jar.bootLibs)), f.where(p)+" BOOT-INF/lib/")
		}
		for _, lib := range f.jar.classpathIdx {
			add(fromName(lib))
		}
	}
	for _, kind := range []string{factClasspathIdx, factJibClasspath} {
		for _, p := range sc.factsOf(kind) {
			n := 0
			for _, lib := range sc.facts[p].list {
				if strings.HasSuffix(lib, ".jar") {
					add(fromName(lib))
					n++
				}
			}
			ev(fmt.Sprintf("classpath of %d jars", n), sc.facts[p].where(p))
		}
	}
	for _, a := range slices.Sorted(maps.Keys(deps)) {
		d := deps[a]
		if d.Group == "" {
			d.Group = guessGroup(d.Artifact)
		}
		img.Dependencies = append(img.Dependencies, d)
	}
	sort.Slice(img.Dependencies, func(i, k int) bool {
		a, b := img.Dependencies[i], img.Dependencies[k]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		return a.Artifact < b.Artifact
	})
}

// buildpacksLifecycle is the part of io.buildpacks.lifecycle.metadata that names the run image.
type buildpacksLifecycle struct {
	RunImage struct {
		Image string `json:"image"`
	} `json:"runImage"`
	Stack struct {
		RunImage struct {
			Image string `json:"image"`
		} `json:"runImage"`
	} `json:"stack"`
}

func (sc *imageScan) detectBase(img *Image, env, labels map[string]string, ev func(string, string)) {
	var osName string
	if p := sc.factsOf(factOSRelease); len(p) > 0 {
		f := sc.facts[p[0]]
		osName = f.text
		ev("os "+osName, f.where(p[0])+" PRETTY_NAME")
	}
	if b := labels["org.opencontainers.image.base.name"]; b != "" {
		img.Base = b
		ev("base image "+b, "label org.opencontainers.image.base.name")
		return
	}
	if raw := labels["io.buildpacks.lifecycle.metadata"]; raw != "" {
		var md buildpacksLifecycle
		if err := json.Unmarshal([]byte(raw), &md); err == nil {
			if b := cmp.Or(md.RunImage.Image, md.Stack.RunImage.Image); b != "" {
				img.Base = b
				ev("run image "+b, "label io.buildpacks.lifecycle.metadata runImage.image")
				return
			}
		}
	}
	if img.Java != nil && img.Java.Vendor == "Eclipse Adoptium" && env["JAVA_HOME"] == "/opt/java/openjdk" {
		major, _, _ := strings.Cut(img.Java.Version, ".")
		kind := "jre"
		if len(sc.factsOf(factJavac)) > 0 {
			kind = "jdk"
		}
		img.Base = "eclipse-temurin:" + major + "-" + kind
		src := "JAVA_HOME=/opt/java/openjdk with an Eclipse Adoptium runtime (the eclipse-temurin image layout)"
		if kind == "jre" {
			src += ", no bin/javac"
		}
		ev("base image "+img.Base+" (inferred)", src)
		return
	}
	img.Base = osName
}
