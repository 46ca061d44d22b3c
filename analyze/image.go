package analyze

import (
	"archive/tar"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ImageOptions select what AnalyzeImage reads.
type ImageOptions struct {
	// Platform picks the image from a multi-platform index, as
	// "os/arch[/variant]". Default "linux/amd64".
	Platform string
	// Insecure lets registry references use plain HTTP (and ignore TLS
	// errors). Loopback and private-range hosts such as 127.0.0.1 use HTTP
	// without it. Default false.
	Insecure bool
}

// Prefixes of the non-registry reference forms.
const (
	refDockerArchive = "docker-archive:"
	refOCILayout     = "oci:"
)

// AnalyzeImage reads a container image without a Docker daemon and without
// extracting it: ref is a registry reference ("registry.example.com/shop/
// order-service:1.4.2", credentials from the Docker config / credential
// helpers), "docker-archive:PATH" (a `docker save` tarball) or
// "oci:DIR[:TAG]" (an OCI image layout). Each layer is streamed once
// through a tar reader; see scanLayer for what is looked at and how much
// memory that takes. A non-Java image is not an error: it comes back with
// BuildTool "unknown" and evidence saying why. Errors are one line naming
// ref and what to do.
func AnalyzeImage(ctx context.Context, ref string, opts ImageOptions) (*Image, error) {
	src, err := openImage(ctx, ref, opts)
	if err != nil {
		return nil, fmt.Errorf("analyze image %s: %s", ref, imageOneLine(describeImageError(err)))
	}
	img, err := src.analyze(ctx)
	if err != nil {
		return nil, fmt.Errorf("analyze image %s: %s", ref, imageOneLine(describeImageError(err)))
	}
	return img, nil
}

// AnalyzeImages analyzes refs with up to concurrency images in flight
// (default 4 when ≤ 0). Results are in refs order: images[i] is nil exactly
// when errs[i] is not. progress, if set, is called after each image with
// the number done so far; calls are serialised.
func AnalyzeImages(ctx context.Context, refs []string, opts ImageOptions, concurrency int, progress func(done, total int)) ([]*Image, []error) {
	if concurrency <= 0 {
		concurrency = 4
	}
	images := make([]*Image, len(refs))
	errs := make([]error, len(refs))
	var (
		mu   sync.Mutex
		done int
		wg   sync.WaitGroup
	)
	next := make(chan int)
	for range min(concurrency, len(refs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				images[i], errs[i] = AnalyzeImage(ctx, refs[i], opts)
				mu.Lock()
				done++
				if progress != nil {
					progress(done, len(refs))
				}
				mu.Unlock()
			}
		}()
	}
	for i := range refs {
		next <- i
	}
	close(next)
	wg.Wait()
	return images, errs
}

// imageSource is an image reduced to what analysis reads: its config and
// its layer blobs in order, each opened once.
type imageSource struct {
	ref        string
	digest     string
	digestNote string // where the digest comes from, for evidence
	rawConfig  []byte
	layers     []layerBlob
}

type layerBlob struct {
	digest string
	size   int64
	open   func() (io.ReadCloser, error)
}

func openImage(ctx context.Context, ref string, opts ImageOptions) (*imageSource, error) {
	platform, err := v1.ParsePlatform(cmp.Or(opts.Platform, "linux/amd64"))
	if err != nil {
		return nil, fmt.Errorf("platform %q: %w (want os/arch, e.g. linux/arm64)", opts.Platform, err)
	}
	switch {
	case strings.HasPrefix(ref, refDockerArchive):
		return openDockerArchive(strings.TrimPrefix(ref, refDockerArchive))
	case strings.HasPrefix(ref, refOCILayout):
		return openOCILayout(strings.TrimPrefix(ref, refOCILayout), *platform)
	default:
		return openRegistryImage(ctx, strings.TrimPrefix(ref, "docker://"), *platform, opts.Insecure)
	}
}

// openRegistryImage resolves ref (and a multi-platform index to platform).
func openRegistryImage(ctx context.Context, ref string, platform v1.Platform, insecure bool) (*imageSource, error) {
	var nameOpts []name.Option
	if insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("not an image reference (%v); use registry/repo:tag, docker-archive:PATH or oci:DIR[:TAG]", err)
	}
	ropts := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithPlatform(platform),
		remote.WithUserAgent("migrate"),
	}
	if insecure {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the user asked for --insecure
		ropts = append(ropts, remote.WithTransport(tr))
	}
	img, err := remote.Image(r, ropts...)
	if err != nil {
		return nil, err
	}
	return sourceFromImage(ref, img)
}

// sourceFromImage adapts a go-containerregistry image (registry or layout).
func sourceFromImage(ref string, img v1.Image) (*imageSource, error) {
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	src := &imageSource{ref: ref, digest: digest.String(), digestNote: "manifest digest", rawConfig: raw}
	for _, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			return nil, err
		}
		src.layers = append(src.layers, layerBlob{digest: d.Digest.String(), size: d.Size, open: l.Compressed})
	}
	return src, nil
}

// openOCILayout reads oci:DIR[:TAG]. TAG matches the
// org.opencontainers.image.ref.name annotation; without it the layout must
// hold exactly one image (or one index, resolved to the platform).
func openOCILayout(spec string, platform v1.Platform) (*imageSource, error) {
	dir, tag := spec, ""
	if st, err := os.Stat(spec); err != nil || !st.IsDir() {
		if i := strings.LastIndex(spec, ":"); i > 0 && !strings.Contains(spec[i+1:], "/") {
			dir, tag = spec[:i], spec[i+1:]
		}
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout (no readable index.json): %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var chosen *v1.Descriptor
	var tags []string
	for i, d := range im.Manifests {
		t := d.Annotations["org.opencontainers.image.ref.name"]
		tags = append(tags, t)
		if tag != "" && (t == tag || strings.HasSuffix(t, ":"+tag)) {
			chosen = &im.Manifests[i]
			break
		}
	}
	if chosen == nil {
		switch {
		case tag == "" && len(im.Manifests) == 1:
			chosen = &im.Manifests[0]
		case tag == "" && platformMatch(im.Manifests, platform) >= 0:
			// index.json itself lists one image per platform.
			chosen = &im.Manifests[platformMatch(im.Manifests, platform)]
		case tag == "":
			return nil, fmt.Errorf("layout %s holds %d images; name one as oci:%s:TAG (tags: %s)", dir, len(im.Manifests), dir, strings.Join(tags, ", "))
		default:
			return nil, fmt.Errorf("layout %s has no image tagged %q (tags: %s)", dir, tag, strings.Join(tags, ", "))
		}
	}
	ref := refOCILayout + spec
	if chosen.MediaType.IsIndex() {
		child, err := idx.ImageIndex(chosen.Digest)
		if err != nil {
			return nil, err
		}
		cm, err := child.IndexManifest()
		if err != nil {
			return nil, err
		}
		if i := platformMatch(cm.Manifests, platform); i >= 0 {
			img, err := child.Image(cm.Manifests[i].Digest)
			if err != nil {
				return nil, err
			}
			return sourceFromImage(ref, img)
		}
		return nil, fmt.Errorf("index %s has no image for platform %s; pick another with --platform", chosen.Digest, platform)
	}
	img, err := idx.Image(chosen.Digest)
	if err != nil {
		return nil, err
	}
	return sourceFromImage(ref, img)
}

// platformMatch returns the index of the first descriptor for platform, or -1.
func platformMatch(ds []v1.Descriptor, platform v1.Platform) int {
	for i, d := range ds {
		if d.Platform != nil && d.Platform.Satisfies(platform) {
			return i
		}
	}
	return -1
}

// dockerArchiveManifest is one entry of a `docker save` manifest.json.
type dockerArchiveManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// archiveEntry locates a member of an uncompressed tar file.
type archiveEntry struct {
	offset, size int64
	link         string
}

// openDockerArchive indexes a `docker save` tarball (both the classic
// layout and the OCI-style one of Docker 25+) by reading only its tar
// headers, seeking over the data. Layers are then read in place through
// section readers. go-containerregistry's tarball.Image would hash every
// layer blob to build a manifest before the first byte is analyzed, which
// reads the archive twice; this reads it once. The digest reported is the
// image ID (config digest) since an archive has no registry manifest.
func openDockerArchive(archivePath string) (*imageSource, error) {
	f, err := os.Open(archivePath)
	if err != nil {
		return nil, fmt.Errorf("open archive: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	entries := map[string]archiveEntry{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s is not a readable docker-archive (tar): %w; is it truncated? re-create it with docker save", archivePath, err)
		}
		off, err := f.Seek(0, io.SeekCurrent)
		if err != nil {
			f.Close()
			return nil, err
		}
		if off+h.Size > st.Size() {
			f.Close()
			return nil, fmt.Errorf("%s is truncated: member %s needs %d bytes past the end of the file; re-create it with docker save", archivePath, h.Name, off+h.Size-st.Size())
		}
		e := archiveEntry{offset: off, size: h.Size}
		if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
			e.link = h.Linkname
			if h.Typeflag == tar.TypeSymlink {
				e.link = path.Join(path.Dir(h.Name), h.Linkname)
			}
		}
		entries[path.Clean(h.Name)] = e
	}
	f.Close()
	read := func(member string) (archiveEntry, error) {
		member = path.Clean(member)
		for range 8 {
			e, ok := entries[member]
			if !ok {
				return archiveEntry{}, fmt.Errorf("%s has no member %s; is it a docker save archive?", archivePath, member)
			}
			if e.link == "" {
				return e, nil
			}
			member = path.Clean(e.link)
		}
		return archiveEntry{}, fmt.Errorf("%s: too many links resolving %s", archivePath, member)
	}
	readAll := func(member string) ([]byte, error) {
		e, err := read(member)
		if err != nil {
			return nil, err
		}
		if e.size > 16<<20 {
			return nil, fmt.Errorf("%s: %s is %d bytes, too big for a manifest or config", archivePath, member, e.size)
		}
		f, err := os.Open(archivePath)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b := make([]byte, e.size)
		_, err = f.ReadAt(b, e.offset)
		return b, err
	}
	mb, err := readAll("manifest.json")
	if err != nil {
		return nil, err
	}
	var manifests []dockerArchiveManifest
	if err := json.Unmarshal(mb, &manifests); err != nil || len(manifests) == 0 {
		return nil, fmt.Errorf("%s: manifest.json is not a docker save manifest (%v)", archivePath, err)
	}
	m := manifests[0]
	raw, err := readAll(m.Config)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	src := &imageSource{
		ref:        refDockerArchive + archivePath,
		digest:     "sha256:" + hex.EncodeToString(sum[:]),
		digestNote: "image ID (config digest) from " + m.Config,
		rawConfig:  raw,
	}
	for _, l := range m.Layers {
		e, err := read(l)
		if err != nil {
			return nil, err
		}
		src.layers = append(src.layers, layerBlob{
			digest: layerNameDigest(l),
			size:   e.size,
			open: func() (io.ReadCloser, error) {
				f, err := os.Open(archivePath)
				if err != nil {
					return nil, err
				}
				return struct {
					io.Reader
					io.Closer
				}{io.NewSectionReader(f, e.offset, e.size), f}, nil
			},
		})
	}
	return src, nil
}

// layerNameDigest turns "blobs/sha256/<hex>" or "<hex>.tar.gz" into a
// digest-looking name for messages.
func layerNameDigest(member string) string {
	base := path.Base(member)
	if strings.Contains(member, "sha256/") {
		return "sha256:" + base
	}
	return strings.TrimSuffix(strings.TrimSuffix(base, ".gz"), ".tar")
}

// describeImageError turns transport failures into what a user can act on.
func describeImageError(err error) string {
	var terr *transport.Error
	if errors.As(err, &terr) {
		code := ""
		if len(terr.Errors) > 0 {
			code = " (" + string(terr.Errors[0].Code) + ")"
		}
		status := fmt.Sprintf("%d %s", terr.StatusCode, http.StatusText(terr.StatusCode))
		switch {
		case terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden:
			return "registry refused access: " + status + code + "; log in with `docker login` or check the credentials for this registry"
		case terr.StatusCode == http.StatusNotFound:
			return "not found in the registry: " + status + code + "; check the repository name and tag"
		case terr.StatusCode >= 500:
			return "registry failed: " + status + code + "; try again later or ask the registry's operators"
		default:
			return "registry answered " + status + code
		}
	}
	var nerr *net.OpError
	if errors.As(err, &nerr) {
		return "cannot reach the registry: " + netReason(nerr) + "; check the host and port (use --insecure for plain-HTTP registries)"
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return err.Error() + " (the image data ends early: truncated or corrupt)"
	}
	return err.Error()
}

// netReason says why a connection failed without Go's wording
// ("dial tcp: lookup HOST on RESOLVER: no such host").
func netReason(nerr *net.OpError) string {
	addr := "the registry's address"
	if nerr.Addr != nil {
		addr = nerr.Addr.String()
	}
	var dnsErr *net.DNSError
	switch {
	case errors.As(nerr, &dnsErr) && dnsErr.IsTimeout:
		return "looking up " + dnsErr.Name + " timed out"
	case errors.As(nerr, &dnsErr):
		return "no host named " + dnsErr.Name
	case errors.Is(nerr, syscall.ECONNREFUSED):
		return "nothing listens on " + addr
	case nerr.Timeout():
		return addr + " did not answer in time"
	case nerr.Err != nil:
		return addr + ": " + nerr.Err.Error()
	}
	return addr + " failed"
}

// imageOneLine folds a multi-line message into one line.
func imageOneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
