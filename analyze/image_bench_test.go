package analyze_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/fixtures"
)

// The large-image benchmark works on a docker-archive outside the repo.
// Create it once (about 300 MB; takes a minute), then benchmark:
//
//	MIGRATE_BENCH_ARCHIVE=/tmp/migrate-bench/order-300mb.tar go test -run TestWriteBenchArchive ./analyze/
//	MIGRATE_BENCH_ARCHIVE=/tmp/migrate-bench/order-300mb.tar go test -run '^$' -bench BenchmarkAnalyzeDockerArchive -benchtime 3x ./analyze/
//
// MIGRATE_BENCH_PADDING sets the JRE padding in bytes (default 355 MiB,
// which gzips to about 300 MB with the fixtures' mixed padding).
func benchArchivePath(tb testing.TB) string {
	p := os.Getenv("MIGRATE_BENCH_ARCHIVE")
	if p == "" {
		tb.Skip("set MIGRATE_BENCH_ARCHIVE to a path outside the repo, e.g. /tmp/migrate-bench/order-300mb.tar")
	}
	return p
}

func TestWriteBenchArchive(t *testing.T) {
	path := benchArchivePath(t)
	padding := int64(355 << 20)
	if s := os.Getenv("MIGRATE_BENCH_PADDING"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		padding = n
	}
	if err := fixtures.WriteDockerArchiveWithOptions(path, fixtures.OrderService, fixtures.ImageBuildOptions{PaddingBytes: padding}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	t.Logf("wrote %s: %d bytes", path, st.Size())
}

func BenchmarkAnalyzeDockerArchive(b *testing.B) {
	path := benchArchivePath(b)
	st, err := os.Stat(path)
	if err != nil {
		b.Skipf("%v: create it with TestWriteBenchArchive first", err)
	}
	b.SetBytes(st.Size())
	b.ReportAllocs()
	for b.Loop() {
		img, err := analyze.AnalyzeImage(context.Background(), "docker-archive:"+path, analyze.ImageOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if img.BuildTool != "jib" || img.Java == nil {
			b.Fatalf("unexpected result %+v", img)
		}
	}
}

// BenchmarkAnalyzeFleet50 is `analyze cluster --images` over a 50-service
// fleet: 50 repositories in a loopback registry (the four fixture images,
// round-robin), analyzed 8 at a time. Target: ≤ 10 s per op.
func BenchmarkAnalyzeFleet50(b *testing.B) {
	ctx := context.Background()
	host := startRegistry(b, nil)
	var refs []string
	for i := range 50 {
		service := fixtures.ServiceNames[i%len(fixtures.ServiceNames)]
		img, err := fixtures.BuildImage(service)
		if err != nil {
			b.Fatal(err)
		}
		ref := fmt.Sprintf("%s/fleet/%s-%02d:%s", host, service, i, fixtures.ImageTag(service))
		if err := fixtures.PushImage(ctx, ref, img); err != nil {
			b.Fatal(err)
		}
		refs = append(refs, ref)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		images, errs := analyze.AnalyzeImages(ctx, refs, analyze.ImageOptions{}, 8, nil)
		for i, err := range errs {
			if err != nil || images[i].Java == nil {
				b.Fatalf("%s: %v", refs[i], err)
			}
		}
	}
}
