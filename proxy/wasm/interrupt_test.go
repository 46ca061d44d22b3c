package wasm

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
)

func TestInterruptsEveryKindOfModule(t *testing.T) {
	dir := t.TempDir()
	v128 := append([]byte{0xfd, 0x0c}, make([]byte, 16)...)                         // v128.const 0
	loop := []byte{0x03, 0x40, 0x0c, 0x00, 0x0b}                                    // loop br 0 end
	simdLoop := append(append([]byte{0x03, 0x40}, v128...), 0x1a, 0x0c, 0x00, 0x0b) // loop v128.const drop br 0 end
	tests := []struct {
		name         string
		path         string
		target       string
		instrumented bool
	}{
		{"Go guest", buildGuest(t), "/hang", true},
		{"bare loop", writeModule(t, dir, "loop.wasm", wasmModule{yield: true, memPages: 1, start: loop}.bytes()), "/", true},
		{"loop the instrumentation does not understand", writeModule(t, dir, "simd.wasm", wasmModule{yield: true, memPages: 1, start: simdLoop}.bytes()), "/", false},
		{"module without sched_yield", writeModule(t, dir, "noyield.wasm", wasmModule{memPages: 1, start: loop}.bytes()), "/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(context.Background(), Options{Path: tt.path, Timeout: Duration(200 * time.Millisecond)}, testRuntime(t))
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close(context.Background())
			if b.cur.instrumented != tt.instrumented {
				t.Errorf("instrumented = %v, want %v", b.cur.instrumented, tt.instrumented)
			}
			start := time.Now()
			_, err = b.RoundTrip(httptest.NewRequest("GET", tt.target, nil))
			if ErrorKind(err) != KindDeadline {
				t.Fatalf("error %v, want deadline", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("200ms deadline took %s to stop the guest", d)
			}
		})
	}
}

func TestInstrumentLoopsKeepsBehaviour(t *testing.T) {
	// Instrumented modules must still validate and behave the same; the
	// whole suite runs the Go guest instrumented, this pins down the
	// rewrite itself.
	bin, err := os.ReadFile(buildGuest(t))
	if err != nil {
		t.Fatal(err)
	}
	out, ok := instrumentLoops(bin)
	if !ok {
		t.Fatal("the Go guest was not instrumented")
	}
	if bytes.Equal(out, bin) {
		t.Fatal("instrumentation changed nothing")
	}
	if again, ok := instrumentLoops(printingModule("Content-Type: text/plain\n\nx")); !ok || len(again) == 0 {
		t.Error("a module without loops or globals was not instrumented")
	}
	for name, bin := range map[string][]byte{
		"not wasm":  []byte("nope"),
		"truncated": bin[:len(bin)/2],
		"no code":   wasmModule{memPages: 1}.bytes(),
	} {
		if out, ok := instrumentLoops(bin); ok || !bytes.Equal(out, bin) {
			t.Errorf("%s: instrumented", name)
		}
	}
}

func FuzzInstrumentLoops(f *testing.F) {
	f.Add([]byte{0x03, 0x40, 0x0c, 0x00, 0x0b})
	f.Add([]byte("\x0e\x89\xb0\xd4\xb3")) // br_table with a huge count: once made the walker spin
	f.Add([]byte{0x41, 0x01, 0x04, 0x40, 0x03, 0x40, 0x0b, 0x0b})
	f.Add([]byte{0x02, 0x7f, 0x41, 0x05, 0x0b, 0x1a})
	rt := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	f.Cleanup(func() { rt.Close(context.Background()) })
	f.Fuzz(func(t *testing.T, start []byte) {
		bin := wasmModule{yield: true, memPages: 1, start: start}.bytes()
		out, ok := instrumentLoops(bin)
		if !ok {
			return
		}
		// A valid module stays valid.
		if _, err := rt.CompileModule(context.Background(), bin); err != nil {
			return
		}
		if _, err := rt.CompileModule(context.Background(), out); err != nil {
			t.Fatalf("instrumented module no longer compiles: %v", err)
		}
	})
}

// TestSpinningGuestDoesNotStallGC: compiled Wasm cannot be preempted, so a
// guest that never left its loop would block every stop-the-world phase
// of the Go runtime — and the whole proxy with it — until its deadline.
// The inserted sched_yield calls give the runtime its chance.
func TestSpinningGuestDoesNotStallGC(t *testing.T) {
	b := newGuestBackend(t, Options{Timeout: Duration(1500 * time.Millisecond)})
	done := make(chan error, 1)
	go func() {
		_, err := b.RoundTrip(httptest.NewRequest("GET", "/hang", nil))
		done <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the guest start spinning
	for range 3 {
		start := time.Now()
		runtime.GC()
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("a garbage collection took %s while a guest was spinning", d)
		}
	}
	if err := <-done; ErrorKind(err) != KindDeadline {
		t.Errorf("spinning guest ended with %v, want a deadline", err)
	}
}
