package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// instantiateMemory instantiates bin without running _start and returns its
// initial linear memory, or the instantiation error.
func instantiateMemory(t *testing.T, rt wazero.Runtime, bin []byte) ([]byte, error) {
	return instantiateMemoryWith(context.Background(), t, rt, bin)
}

// instantiateMemoryWith is instantiateMemory under ctx, which may carry a
// memory allocator.
func instantiateMemoryWith(ctx context.Context, t *testing.T, rt wazero.Runtime, bin []byte) ([]byte, error) {
	t.Helper()
	cm, err := rt.CompileModule(ctx, bin)
	if err != nil {
		return nil, err
	}
	defer cm.Close(ctx)
	mod, err := rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, err
	}
	defer mod.Close(ctx)
	mem, _ := mod.Memory().Read(0, mod.Memory().Size())
	return bytes.Clone(mem), nil
}

// TestCoalesceDataIsExact is a differential test: the original and the
// rewritten module must start with byte-identical memory, or fail alike.
func TestCoalesceDataIsExact(t *testing.T) {
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(context.Background())
	seg := func(off uint32, s string) dataSegment { return dataSegment{off, []byte(s)} }
	tests := []struct {
		name        string
		segs        []dataSegment
		wantChanged bool
		wantAfter   int
	}{
		{"adjacent", []dataSegment{seg(0, "ab"), seg(2, "cd"), seg(4, "ef")}, true, 1},
		{"small gaps", []dataSegment{seg(10, "a"), seg(20, "b"), seg(4000, "c")}, true, 1},
		{"gap too big", []dataSegment{seg(0, "a"), seg(10000, "b"), seg(10010, "c")}, true, 2},
		{"out of order", []dataSegment{seg(300, "z"), seg(100, "y"), seg(200, "x")}, true, 1},
		{"empty segments", []dataSegment{seg(5, ""), seg(5, "q"), seg(9, "")}, true, 1},
		{"overlap kept as is", []dataSegment{seg(0, "aaaa"), seg(2, "bb")}, false, 2},
		{"single segment", []dataSegment{seg(7, "x")}, false, 1},
		{"out of bounds still fails", []dataSegment{seg(63000, "a"), seg(65535, "bc")}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := wasmModule{memPages: 1, data: tt.segs}.bytes()
			out, _, after := coalesceData(orig)
			if changed := !bytes.Equal(out, orig); changed != tt.wantChanged || after != tt.wantAfter {
				t.Errorf("changed=%v after=%d, want changed=%v after=%d", changed, after, tt.wantChanged, tt.wantAfter)
			}
			want, wantErr := instantiateMemory(t, rt, orig)
			got, gotErr := instantiateMemory(t, rt, out)
			if (wantErr != nil) != (gotErr != nil) {
				t.Fatalf("original error %v, coalesced error %v", wantErr, gotErr)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("initial memory differs after coalescing")
			}
		})
	}
}

func TestCoalesceDataOnGoGuest(t *testing.T) {
	bin, err := os.ReadFile(buildGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	out, before, after := coalesceData(bin)
	t.Logf("Go guest: %d data segments -> %d, %d -> %d bytes", before, after, len(bin), len(out))
	if before < 1000 || after > 10 {
		t.Errorf("coalesced %d segments into %d; expected a Go module's thousands into a handful", before, after)
	}
}

func TestCoalesceDataLeavesUnsupportedModules(t *testing.T) {
	plain := wasmModule{memPages: 1, data: []dataSegment{{0, []byte("a")}, {1, []byte("b")}}}.bytes()
	i := sectionOffset(plain, sectionData)
	// A data count section (id 12, one byte: 2 segments) goes right before the data section.
	withDataCount := append(append(bytes.Clone(plain[:i]), sectionDataCount, 1, 2), plain[i:]...)
	for name, bin := range map[string][]byte{
		"data count section": withDataCount,
		"passive segment":    append([]byte("\x00asm\x01\x00\x00\x00"), 11, 5, 1, 1, 2, 'a', 'b'),
		"truncated":          []byte("\x00asm\x01\x00\x00\x00\x0b\x10\x01"),
		"not wasm":           []byte("hello"),
	} {
		if out, _, _ := coalesceData(bin); !bytes.Equal(out, bin) {
			t.Errorf("%s: module was rewritten", name)
		}
	}
}

// sectionOffset returns where the section with id starts in bin.
func sectionOffset(bin []byte, id byte) int {
	for p := 8; p < len(bin); {
		if bin[p] == id {
			return p
		}
		size, n := binary.Uvarint(bin[p+1:])
		p += 1 + n + int(size)
	}
	return -1
}

func FuzzCoalesceData(f *testing.F) {
	f.Add([]byte{0, 0, 3, 'a', 'b', 'c', 9, 0, 1, 'd'}, uint8(1))
	f.Add([]byte{10, 0, 1, 'x', 0, 0, 1, 'y'}, uint8(2))
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { rt.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, spec []byte, pages uint8) {
		// spec is a list of (offset u16, length u8, bytes...) segments.
		var segs []dataSegment
		for len(spec) >= 3 && len(segs) < 64 {
			off := uint32(binary.LittleEndian.Uint16(spec)) * 2
			n := min(int(spec[2]), len(spec)-3)
			segs = append(segs, dataSegment{off, spec[3 : 3+n]})
			spec = spec[3+n:]
		}
		orig := wasmModule{memPages: uint32(pages % 4), data: segs}.bytes()
		out, _, _ := coalesceData(orig)
		want, wantErr := instantiateMemory(t, rt, orig)
		got, gotErr := instantiateMemory(t, rt, out)
		if (wantErr != nil) != (gotErr != nil) || !bytes.Equal(got, want) {
			t.Fatalf("coalescing changed the module's meaning: %v / %v", wantErr, gotErr)
		}
	})
}

// FuzzModuleReaders runs what this package does to a module before wazero
// sees it against wazero itself: a module checkCounts passes never makes
// the decoder exhaust memory nor the compiler panic past compile; reading
// exports, coalescing or stripping data, instrumenting loops and the
// pre-initialization rewrite never panic; and for any module wazero
// compiles, the export reader names the same functions and every rewrite
// still compiles.
func FuzzModuleReaders(f *testing.F) {
	serve := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type: () -> ()
		"\x03\x02\x01\x00" + // one function of type 0
		"\x07\x11\x01\x0dmigrate_serve\x00\x00" + // export it
		"\x0a\x04\x01\x02\x00\x0b") // an empty body
	f.Add(serve)
	f.Add(serve[:len(serve)-3])
	// Modules instrumentLoops rewrites: they import sched_yield and loop.
	f.Add(wasmModule{yield: true, memPages: 1, start: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}}.bytes())
	f.Add(wasmModule{yield: true, memPages: 1, start: []byte{0x41, 0x01, 0x04, 0x40, 0x03, 0x40, 0x0b, 0x0b}}.bytes())
	// Real modules from TinyGo, Rust, Zig, C++ and the spec tests, the
	// small ones, for the fuzzer to mutate.
	_, paths := wazeroModules(f)
	for _, path := range paths {
		if bin, err := os.ReadFile(path); err == nil && len(bin) <= 2048 {
			f.Add(bin)
		}
	}
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { rt.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, bin []byte) {
		if checkCounts(bin) != nil {
			return
		}
		// What load does to a module before compiling it must not panic,
		// whatever the module.
		got := exportedFunctions(bin)
		coalesced, _, _ := coalesceData(bin)
		instrumented, instrumentedOK := instrumentLoops(coalesced)
		stripped, _, strippedErr := stripData(bin)
		preinit, preinitErr := prepareSnapshot(bin)
		c, err := compile(context.Background(), rt, bin)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		want := slices.Sorted(maps.Keys(c.ExportedFunctions()))
		slices.Sort(got)
		if !slices.Equal(got, want) && len(got)+len(want) > 0 {
			t.Fatalf("exports %q, wazero says %q", got, want)
		}
		// And a module that compiles still compiles after each rewrite.
		if c, err := compile(context.Background(), rt, coalesced); err != nil {
			t.Fatalf("coalesced module no longer compiles: %v", err)
		} else {
			c.Close(context.Background())
		}
		if instrumentedOK {
			if c, err := compile(context.Background(), rt, instrumented); err != nil {
				t.Fatalf("instrumented module no longer compiles: %v", err)
			} else {
				c.Close(context.Background())
			}
		}
		if strippedErr == nil {
			if c, err := compile(context.Background(), rt, stripped); err != nil {
				t.Fatalf("module without its data section no longer compiles: %v", err)
			} else {
				c.Close(context.Background())
			}
		}
		if preinitErr == nil {
			if c, err := compile(context.Background(), rt, preinit.bin); err != nil {
				t.Fatalf("module rewritten for pre-initialization no longer compiles: %v", err)
			} else {
				c.Close(context.Background())
			}
		}
	})
}

// TestCheckCountsRejectsHugeVectors feeds modules of a few bytes that
// declare billions of elements, each of which made wazero's decoder ask for
// more memory than the machine has, and a real module, which passes.
func TestCheckCountsRejectsHugeVectors(t *testing.T) {
	const header = "\x00asm\x01\x00\x00\x00"
	for name, bin := range map[string]string{
		"imports":          header + "\x02\x05\xff\xff\xff\xff\x0f",
		"element segment":  header + "\x09\x0a\x01\x00\x41\x00\x0b\xff\xff\xff\xff\x0f",
		"function names":   header + "\x00\x0c\x04name\x01\x05\xff\xff\xff\xff\x0f",
		"locals":           header + "\x0a\x0a\x01\x08\x01\xff\xff\xff\xff\x0f\x7f\x0b",
		"section overruns": header + "\x02\x7f\x00",
		"parameter types":  header + "\x01\x08\x01\x60\xff\xff\xff\xff\x0f\x00",
		"import name":      header + "\x02\x06\x01\xff\xff\xff\xff\x0f",
		"data bytes":       header + "\x0b\x07\x01\x01\xff\xff\xff\xff\x0f",
	} {
		err := checkCounts([]byte(bin))
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if !strings.Contains(err.Error(), "not a") {
			t.Errorf("%s: %v", name, err)
		}
	}
	guest, err := os.ReadFile(buildGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkCounts(guest); err != nil {
		t.Errorf("the test guest: %v", err)
	}
	hostile := filepath.Join(t.TempDir(), "hostile.wasm")
	if err := os.WriteFile(hostile, []byte(header+"\x02\x05\xff\xff\xff\xff\x0f"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Options{Path: hostile}, testRuntime(t)); err == nil || !strings.Contains(err.Error(), "4294967295 elements") {
		t.Errorf("New on a module declaring 2³² imports: %v", err)
	}
}

// TestCheckCountsRefusesNothingWazeroCompiles runs the module checks over
// every .wasm file in wazero's own module (spec tests and TinyGo, Rust,
// Zig and C++ builds: about 8,000 modules) and expects each one they
// refuse to be refused by wazero too, with every feature it has enabled.
func TestCheckCountsRefusesNothingWazeroCompiles(t *testing.T) {
	root, paths := wazeroModules(t)
	if len(paths) < 100 {
		t.Skipf("only %d modules under %q", len(paths), root)
	}
	rt := wazero.NewRuntimeWithConfig(context.Background(),
		wazero.NewRuntimeConfigInterpreter().WithCoreFeatures(api.CoreFeaturesV2|experimental.CoreFeaturesThreads|experimental.CoreFeaturesTailCall|experimental.CoreFeaturesExceptionHandling))
	t.Cleanup(func() { rt.Close(context.Background()) })
	refused := 0
	for _, path := range paths {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if checkErr := checkCounts(bin); checkErr != nil {
			refused++
			// Only refused modules are compiled: what the checks pass could
			// be one that exhausts memory.
			if c, err := compile(context.Background(), rt, bin); err == nil {
				c.Close(context.Background())
				t.Errorf("%s: wazero compiles it, checkCounts refuses it: %v", strings.TrimPrefix(path, root), checkErr)
			}
		}
	}
	t.Logf("%d modules, %d refused by both", len(paths), refused)
}

// wazeroModules lists the .wasm files in wazero's module directory, if the
// go command can find it.
func wazeroModules(tb testing.TB) (root string, paths []string) {
	tb.Helper()
	out, err := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	root = strings.TrimSpace(string(out))
	if err != nil || root == "" {
		return "", nil
	}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(path) == ".wasm" {
			paths = append(paths, path)
		}
		return nil
	})
	return root, paths
}

// imageMemory instantiates bin, whose data section stripData took out,
// with img written by the allocator as the backends do, and returns its
// initial linear memory. The pool is dirtied first, so that what is not
// image must have been zeroed.
func imageMemory(t *testing.T, rt wazero.Runtime, bin []byte, img memImage) ([]byte, error) {
	t.Helper()
	pool := newMemoryPool(0, nil)
	defer pool.close()
	const limit = 64 << 20
	dirty := &linearMemory{pool: pool, limit: limit}
	dirty.Allocate(0, 0)
	buf := dirty.Reallocate(8 << 20)
	for i := range buf {
		buf[i] = 0xa5
	}
	dirty.release()
	mem := &linearMemory{pool: pool, limit: limit, image: img}
	defer mem.release()
	return instantiateMemoryWith(experimental.WithMemoryAllocator(context.Background(), mem), t, rt, bin)
}

// TestStripDataIsExact is a differential test: a module instantiated by
// wazero from its data section, and the same module without it from the
// allocator's image, start with byte-identical memory; what stripData
// cannot stand in for (instantiation would fail) it refuses.
func TestStripDataIsExact(t *testing.T) {
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(context.Background())
	wasi_snapshot_preview1.MustInstantiate(context.Background(), rt)
	seg := func(off uint32, s string) dataSegment { return dataSegment{off, []byte(s)} }
	goGuest, err := os.ReadFile(buildGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, orig := range map[string][]byte{
		"adjacent":        wasmModule{memPages: 1, data: []dataSegment{seg(0, "ab"), seg(2, "cd")}}.bytes(),
		"gaps":            wasmModule{memPages: 2, data: []dataSegment{seg(10, "a"), seg(70000, "b")}}.bytes(),
		"overlap":         wasmModule{memPages: 1, data: []dataSegment{seg(0, "aaaa"), seg(2, "bb"), seg(1, "c")}}.bytes(),
		"no data":         wasmModule{memPages: 1}.bytes(),
		"out of bounds":   wasmModule{memPages: 1, data: []dataSegment{seg(65535, "bc")}}.bytes(),
		"no memory pages": wasmModule{memPages: 0, data: []dataSegment{seg(0, "x")}}.bytes(),
		"Go guest":        goGuest,
	} {
		t.Run(name, func(t *testing.T) {
			want, wantErr := instantiateMemory(t, rt, orig)
			out, img, err := stripData(orig)
			if err != nil {
				if wantErr == nil {
					t.Fatalf("refused a module wazero instantiates: %v", err)
				}
				return
			}
			if wantErr != nil {
				t.Fatalf("accepted a module whose instantiation fails: %v", wantErr)
			}
			if sectionOffset(out, sectionData) >= 0 {
				t.Error("the data section is still there")
			}
			got, err := imageMemory(t, rt, out, img)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("initial memory differs: %d bytes from the image, %d from wazero", len(got), len(want))
			}
		})
	}
}
