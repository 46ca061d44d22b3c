//go:build linux

package wasm

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// benchCacheDir holds compiled code across benchmark runs, so -count does
// not recompile; delete it to measure a cold compile. The benchmarks place
// orders with the fixture order component (fixtures/wasm/order), built
// with the go tool like any user module; BENCHMARKS.md has the commands.
var benchCacheDir = filepath.Join(os.TempDir(), "migrate-wasm-bench-cache")

// load runs b.N calls of fn on c goroutines and reports throughput and
// latency percentiles.
func load(b *testing.B, c int, fn func() error) {
	b.Helper()
	var next atomic.Int64
	lat := make([][]time.Duration, c)
	var failed atomic.Int64
	var firstErr atomic.Value
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				t := time.Now()
				if err := fn(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d requests failed, first: %v", n, b.N, firstErr.Load())
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	// CPU time per request is what the shared 2-core machine's load cannot
	// inflate much; 2000/cpu-ms is the throughput two idle cores allow.
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// processCPU is the user+system CPU time the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// variant is one way to run a WAGI request with wazero directly, to
// attribute the cost of each idea against the naive approach.
type variant struct {
	name          string
	coalesce      bool // merge data segments before compiling
	recycle       bool // recycled, zeroed linear memory
	interruptible bool // WithCloseOnContextDone(true)
	instrumented  bool // instrumentLoops' own interruption check
}

var variants = []variant{
	{name: "naive"},
	{name: "coalesce", coalesce: true},
	{name: "recycle", recycle: true},
	{name: "coalesce+recycle", coalesce: true, recycle: true},
	{name: "coalesce+recycle+closeOnContextDone", coalesce: true, recycle: true, interruptible: true},
	{name: "coalesce+recycle+instrumented", coalesce: true, recycle: true, instrumented: true},
}

// BenchmarkInstantiate measures one request as InstantiateModule of the
// compiled guest with the CGI environment, stdin and stdout, per variant,
// at concurrency 1 and 2. "naive" is wazero's defaults: a fresh ModuleConfig
// and a freshly allocated memory per request, Go's 40k data segments.
func BenchmarkInstantiate(b *testing.B) {
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(benchCacheDir)
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close(ctx)
	orderPath, orderRoute := orderModule(b)
	guests := []struct{ name, module, path string }{
		{"order", orderPath, orderRoute},
		{"testguest", buildGuest(b), "/order"},
	}
	for _, g := range guests {
		bin, err := os.ReadFile(g.module)
		if err != nil {
			b.Fatal(err)
		}
		req := httptest.NewRequest("POST", "http://127.0.0.1:8080"+g.path, strings.NewReader(orderBody))
		req.Header.Set("Content-Type", "application/json")
		env := cgiEnv(req, int64(len(orderBody)))
		for _, v := range variants {
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache).WithCloseOnContextDone(v.interruptible))
			wasi_snapshot_preview1.MustInstantiate(ctx, rt)
			mbin := bin
			if v.coalesce {
				mbin, _, _ = coalesceData(bin)
			}
			if v.instrumented {
				var ok bool
				if mbin, ok = instrumentLoops(mbin); !ok {
					b.Fatal("guest not instrumented")
				}
			}
			compiled, err := rt.CompileModule(ctx, mbin)
			if err != nil {
				b.Fatal(err)
			}
			pool := newMemoryPool(0, nil)
			run := func() error {
				var out bytes.Buffer
				cfg := wazero.NewModuleConfig().WithName("").WithSysWalltime().WithSysNanotime().
					WithRandSource(crand.Reader).WithStdin(strings.NewReader(orderBody)).WithStdout(&out)
				for _, kv := range env {
					k, val, _ := strings.Cut(kv, "=")
					cfg = cfg.WithEnv(k, val)
				}
				ictx := ctx
				var mem *linearMemory
				if v.recycle {
					mem = &linearMemory{pool: pool, limit: 64 << 20}
					ictx = experimental.WithMemoryAllocator(ctx, mem)
				}
				if v.instrumented {
					// As Backend.config does: the deadline check runs in sched_yield.
					rctx, cancel := context.WithTimeout(ictx, 5*time.Second)
					defer cancel()
					ictx = rctx
					cfg = cfg.WithOsyield(func() {
						if rctx.Err() != nil {
							panic(sys.NewExitError(sys.ExitCodeDeadlineExceeded))
						}
					})
				}
				mod, err := rt.InstantiateModule(ictx, compiled, cfg)
				if mod != nil {
					mod.Close(ctx)
				}
				if mem != nil {
					mem.release()
				}
				if err != nil {
					return err
				}
				if !bytes.HasPrefix(out.Bytes(), []byte("Status: 201")) {
					return fmt.Errorf("unexpected output %q", out.Bytes())
				}
				return nil
			}
			for _, c := range []int{1, 2} {
				b.Run(fmt.Sprintf("guest=%s/%s/c=%d", g.name, v.name, c), func(b *testing.B) { load(b, c, run) })
			}
			pool.close()
			rt.Close(ctx)
		}
	}
}

// BenchmarkInstantiateOnly is the host's share of a fresh instance of the
// order command, without running it: instantiate (table fill, memory,
// initial data), touch the ~3.4 MiB a request grows to, close. "coalesced"
// is wazero writing the coalesced data segments into a zeroed buffer;
// "stripped" the allocator writing stripData's image, zeroing only the
// rest.
func BenchmarkInstantiateOnly(b *testing.B) {
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(benchCacheDir)
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close(ctx)
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCompilationCache(cache))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	if err := instantiateOutbound(ctx, rt); err != nil {
		b.Fatal(err)
	}
	path, _ := orderModule(b)
	bin, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	coalesced, _, _ := coalesceData(bin)
	stripped, img, err := stripData(bin)
	if err != nil {
		b.Fatal(err)
	}
	const requestPages = 54 // Stats.PeakMemory of an order request
	for _, v := range []struct {
		name string
		bin  []byte
		img  memImage
	}{{"coalesced", coalesced, memImage{}}, {"stripped", stripped, img}} {
		compiled, err := rt.CompileModule(ctx, v.bin)
		if err != nil {
			b.Fatal(err)
		}
		pool := newMemoryPool(0, nil)
		b.Run(v.name, func(b *testing.B) {
			load(b, 1, func() error {
				mem := &linearMemory{pool: pool, limit: 64 << 20, image: v.img}
				defer mem.release()
				mod, err := rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, mem), compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions())
				if err != nil {
					return err
				}
				defer mod.Close(ctx)
				if pages := mod.Memory().Size() / wasmPageSize; pages < requestPages {
					mod.Memory().Grow(requestPages - pages)
				}
				buf, _ := mod.Memory().Read(0, mod.Memory().Size())
				for i := 0; i < len(buf); i += 4096 {
					buf[i] = 1
				}
				return nil
			})
		})
		pool.close()
		compiled.Close(ctx)
	}
}

var (
	orderMu    sync.Mutex
	orderBuilt = map[bool]string{}
	orderErr   error
)

// orderModule is the fixture order component (fixtures/wasm/order), built
// with the go tool like any user module — as a WAGI command, or with
// reusable as a reusable guest (-buildmode=c-shared) — or the test guest's
// /order behaviour when the fixture does not build. It returns the module
// and the request path that places an order.
func orderModule(b testing.TB, reusable ...bool) (module, path string) {
	b.Helper()
	r := len(reusable) > 0 && reusable[0]
	orderMu.Lock()
	defer orderMu.Unlock()
	if _, ok := orderBuilt[r]; !ok && orderErr == nil {
		out := filepath.Join(sharedDir, "order.wasm")
		args := []string{"build", "-o", out}
		if r {
			out = filepath.Join(sharedDir, "order.reusable.wasm")
			args = []string{"build", "-buildmode=c-shared", "-o", out}
		}
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, "github.com/strangler-fig/migrate/fixtures/wasm/order")...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			orderErr = fmt.Errorf("%v: %s", err, msg)
		} else {
			orderBuilt[r] = out
		}
	}
	if orderErr != nil {
		if r {
			b.Fatalf("fixture order component does not build: %v", orderErr)
		}
		b.Logf("fixture order component does not build (%v); using the test guest", orderErr)
		return buildGuest(b), "/order"
	}
	return orderBuilt[r], "/api/order"
}

// benchBackend serves the order module — the reusable build when reusable
// — from a runtime on the persistent bench cache and returns it with the
// order path.
func benchBackend(b *testing.B, opts Options, reusable bool) (*Backend, string) {
	b.Helper()
	rt, err := NewRuntime(context.Background(), benchCacheDir, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { rt.Close(context.Background()) })
	var path string
	opts.Path, path = orderModule(b, reusable)
	be, err := New(context.Background(), opts, rt)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { be.Close(context.Background()) })
	return be, path
}

// BenchmarkRoundTrip is the Backend itself, called directly, at
// concurrency 1, 2 and 20: a fresh instance of the command per request; a
// fresh instance of the reusable build per request, started from its
// pre-initialized snapshot ("fresh-snapshot") or running _initialize
// ("fresh-init"); and the reusable build with Reuse.
func BenchmarkRoundTrip(b *testing.B) {
	for _, v := range []struct {
		name     string
		opts     Options
		reusable bool
	}{
		{"fresh", Options{}, false},
		{"fresh-snapshot", Options{Preinit: true}, true},
		{"fresh-init", Options{}, true},
		{"reuse", Options{Reuse: 10000}, true},
	} {
		if !strings.HasPrefix(v.name+"/", benchVariant(b)) {
			continue
		}
		be, path := benchBackend(b, v.opts, v.reusable)
		for _, c := range []int{1, 2, 20} {
			b.Run(fmt.Sprintf("%s/c=%d", v.name, c), func(b *testing.B) {
				load(b, c, func() error {
					req := httptest.NewRequest("POST", path, strings.NewReader(orderBody))
					req.Header.Set("Content-Type", "application/json")
					resp, err := be.RoundTrip(req)
					if err != nil {
						return err
					}
					if resp.StatusCode != 201 {
						return fmt.Errorf("status %d", resp.StatusCode)
					}
					return nil
				})
			})
		}
	}
}

// BenchmarkHTTP is the published load test's shape — POST orders at
// concurrency 20 (and 2) — over loopback HTTP through
// httputil.ReverseProxy to the Backend, with the process's peak RSS
// during the run and its RSS after an idle period.
func BenchmarkHTTP(b *testing.B) {
	be, path := benchBackend(b, Options{}, false)
	srv := serve(b, be)
	for _, c := range []int{2, 20} {
		b.Run(fmt.Sprintf("c=%d", c), func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}}
			defer client.CloseIdleConnections()
			runtime.GC()
			debug.FreeOSMemory()
			baseline := procStatusKiB("VmRSS")
			resetPeakRSS()
			load(b, c, func() error {
				resp, err := client.Post(srv.URL+path, "application/json", strings.NewReader(orderBody))
				if err != nil {
					return err
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 201 {
					return fmt.Errorf("status %d", resp.StatusCode)
				}
				return nil
			})
			peak := procStatusKiB("VmHWM")
			b.ReportMetric(float64(baseline)/1024, "baseline-RSS-MiB")
			b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")
			// Scale to zero: after idleRelease the pool drops its buffers.
			client.CloseIdleConnections()
			time.Sleep(idleRelease + 500*time.Millisecond)
			runtime.GC()
			b.ReportMetric(float64(procStatusKiB("VmRSS"))/1024, "idle-RSS-MiB")
			debug.FreeOSMemory()
			b.ReportMetric(float64(procStatusKiB("VmRSS"))/1024, "idle-freed-RSS-MiB")
		})
	}
}

// BenchmarkReady is a restart with the module already in the on-disk
// compilation cache: NewRuntime, New and the first response, of the
// command and of the reusable build with Preinit (whose New runs
// _initialize once).
func BenchmarkReady(b *testing.B) {
	for _, v := range []struct {
		name     string
		opts     Options
		reusable bool
	}{{"command", Options{}, false}, {"preinit", Options{Preinit: true}, true}} {
		be, path := benchBackend(b, v.opts, v.reusable) // populates the cache
		opts := v.opts
		opts.Path = be.Options().Path
		b.Run(v.name, func(b *testing.B) {
			ctx := context.Background()
			for range b.N {
				rt, err := NewRuntime(ctx, benchCacheDir, nil)
				if err != nil {
					b.Fatal(err)
				}
				be, err := New(ctx, opts, rt)
				if err != nil {
					b.Fatal(err)
				}
				req := httptest.NewRequest("POST", path, strings.NewReader(orderBody))
				req.Header.Set("Content-Type", "application/json")
				if _, err := be.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				be.Close(ctx)
				rt.Close(ctx)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms-to-first-response")
		})
	}
}

// benchVariant is the first element of the -test.bench pattern below the
// benchmark's name ("fresh/" for -bench RoundTrip/fresh/c=1), so that
// variants not asked for are not set up (compiled, pre-initialized); ""
// runs them all.
func benchVariant(b *testing.B) string {
	f := flag.Lookup("test.bench")
	if f == nil {
		return ""
	}
	parts := strings.Split(f.Value.String(), "/")
	if len(parts) < 2 || strings.ContainsAny(parts[1], `.*+?[]()|\^$`) {
		return ""
	}
	return strings.TrimSuffix(parts[1], "$") + "/"
}

// procStatusKiB reads a "Name: N kB" line of /proc/self/status; 0 where
// there is no procfs.
func procStatusKiB(name string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), name+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// resetPeakRSS restarts VmHWM from the current RSS (Linux clear_refs).
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }
