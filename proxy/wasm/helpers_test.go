package wasm

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// orderBody places one in-stock order, the published load test's body in
// the legacy contract's shape.
const orderBody = `{"orderLineItemsDtoList":[{"skuCode":"ENG-V8-500","price":1000,"quantity":1}]}`

// The test guest (testdata/guest) is compiled once per test binary with
// the Go toolchain running the tests, and one Runtime is shared so the
// module is compiled by wazero once.
var (
	builtMu sync.Mutex
	built   = map[string]struct {
		path string
		err  error
	}{}

	sharedOnce sync.Once
	sharedRT   *Runtime
	sharedErr  error
	sharedDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "migrate-wasm-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sharedDir = dir
	code := m.Run()
	if sharedRT != nil {
		_ = sharedRT.Close(context.Background())
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// buildGuest compiles testdata/guest for GOOS=wasip1 into the shared
// temporary directory.
func buildGuest(tb testing.TB) string { return buildTestModule(tb, "guest") }

// buildReusableGuest compiles testdata/reusable as a WASI reactor.
func buildReusableGuest(tb testing.TB) string {
	return buildTestModule(tb, "reusable", "-buildmode=c-shared")
}

// buildTestModule compiles testdata/NAME once per test binary.
func buildTestModule(tb testing.TB, name string, flags ...string) string {
	// "NAME-reusable" is testdata/NAME built with other flags.
	pkg, _, _ := strings.Cut(name, "-")
	return buildModule(tb, name, "./testdata/"+pkg, flags...)
}

// buildModule compiles the package pkg as NAME.wasm once per test binary.
func buildModule(tb testing.TB, name, pkg string, flags ...string) string {
	tb.Helper()
	builtMu.Lock()
	defer builtMu.Unlock()
	b, ok := built[name]
	if !ok {
		b.path = filepath.Join(sharedDir, name+".wasm")
		args := append(append([]string{"build"}, flags...), "-o", b.path, pkg)
		cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), args...)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("build test module %s: %v\n%s", name, err, out)
		}
		built[name] = b
	}
	if b.err != nil {
		tb.Fatal(b.err)
	}
	return b.path
}

// testRuntime returns the Runtime shared by the package's tests; its
// compilation cache lives in the shared temporary directory.
func testRuntime(tb testing.TB) *Runtime {
	tb.Helper()
	sharedOnce.Do(func() {
		sharedRT, sharedErr = NewRuntime(context.Background(), filepath.Join(sharedDir, "cache"), slog.New(slog.DiscardHandler))
	})
	if sharedErr != nil {
		tb.Fatal(sharedErr)
	}
	return sharedRT
}

// newGuestBackend serves the test guest with opts (Path is filled in).
func newGuestBackend(tb testing.TB, opts Options) *Backend {
	tb.Helper()
	opts.Path = buildGuest(tb)
	return newTestBackend(tb, opts)
}

// newReusableBackend serves the reusable test guest with opts.
func newReusableBackend(tb testing.TB, opts Options) *Backend {
	tb.Helper()
	opts.Path = buildReusableGuest(tb)
	return newTestBackend(tb, opts)
}

// newTestBackend serves opts.Path on the shared runtime until the test ends.
func newTestBackend(tb testing.TB, opts Options) *Backend {
	tb.Helper()
	b, err := New(context.Background(), opts, testRuntime(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = b.Close(context.Background()) })
	return b
}

// wasmModule assembles small hand-written modules for the cases a Go
// guest cannot express (a trap, a foreign import, no _start) or where a
// tiny module keeps a test fast.
type wasmModule struct {
	imports  [][2]string // wasi function imports of type ()->() unless fdWrite
	fdWrite  bool        // import wasi_snapshot_preview1.fd_write first
	yield    bool        // import wasi_snapshot_preview1.sched_yield next
	start    []byte      // body of _start (without locals and end); nil = no _start
	memPages uint32
	data     []dataSegment
}

func (w wasmModule) bytes() []byte {
	section := func(out []byte, id byte, body []byte) []byte {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		return append(out, body...)
	}
	name := func(b []byte, s string) []byte {
		b = binary.AppendUvarint(b, uint64(len(s)))
		return append(b, s...)
	}
	out := []byte("\x00asm\x01\x00\x00\x00")
	// Types: 0 = () -> (), 1 = (i32 i32 i32 i32) -> i32, 2 = () -> i32.
	out = section(out, 1, []byte{3, 0x60, 0, 0, 0x60, 4, 0x7f, 0x7f, 0x7f, 0x7f, 1, 0x7f, 0x60, 0, 1, 0x7f})
	nImports := 0
	var imp []byte
	if w.fdWrite {
		imp = name(name(imp, "wasi_snapshot_preview1"), "fd_write")
		imp = append(imp, 0x00, 1)
		nImports++
	}
	if w.yield {
		imp = name(name(imp, "wasi_snapshot_preview1"), "sched_yield")
		imp = append(imp, 0x00, 2)
		nImports++
	}
	for _, i := range w.imports {
		imp = name(name(imp, i[0]), i[1])
		imp = append(imp, 0x00, 0)
		nImports++
	}
	if nImports > 0 {
		out = section(out, 2, append(binary.AppendUvarint(nil, uint64(nImports)), imp...))
	}
	if w.start != nil {
		out = section(out, 3, []byte{1, 0})
	}
	out = section(out, 5, append([]byte{1, 0}, binary.AppendUvarint(nil, uint64(w.memPages))...))
	exp := []byte{1}
	exp = name(exp, "memory")
	exp = append(exp, 0x02, 0)
	if w.start != nil {
		exp[0] = 2
		exp = name(exp, "_start")
		exp = append(exp, 0x00)
		exp = binary.AppendUvarint(exp, uint64(nImports))
	}
	out = section(out, 7, exp)
	if w.start != nil {
		body := append([]byte{0}, w.start...) // no locals
		body = append(body, 0x0b)
		code := binary.AppendUvarint([]byte{1}, uint64(len(body)))
		out = section(out, 10, append(code, body...))
	}
	if len(w.data) > 0 {
		d := binary.AppendUvarint(nil, uint64(len(w.data)))
		for _, s := range w.data {
			d = append(d, 0, 0x41)
			d = appendSLEB32(d, int32(s.offset))
			d = append(d, 0x0b)
			d = binary.AppendUvarint(d, uint64(len(s.init)))
			d = append(d, s.init...)
		}
		out = section(out, 11, d)
	}
	return out
}

// printingModule is a WAGI module that writes text to stdout with one
// fd_write call and exits 0.
func printingModule(text string) []byte {
	iov := make([]byte, 8)
	binary.LittleEndian.PutUint32(iov[0:], 64)
	binary.LittleEndian.PutUint32(iov[4:], uint32(len(text)))
	call := []byte{0x41, 1, 0x41, 0, 0x41, 1, 0x41, 32, 0x10, 0, 0x1a} // fd_write(1, iov=0, 1, nwritten=32); drop
	return wasmModule{
		fdWrite:  true,
		yield:    true,
		start:    call,
		memPages: 1,
		data:     []dataSegment{{0, iov}, {64, []byte(text)}},
	}.bytes()
}

// writeModule writes bin to a new file in dir and returns its path.
//
// It replaces the file by renaming, as a deployment should: a reload that
// stats a half-written file would count a reload error of its own.
func writeModule(tb testing.TB, dir, name string, bin []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, bin, 0o644); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		tb.Fatal(err)
	}
	return p
}
