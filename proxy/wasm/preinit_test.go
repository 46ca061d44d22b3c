package wasm

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// state asks the reusable guest what state its instance carries.
func state(t *testing.T, b *Backend, key string) (served, seen, keys int, since int64) {
	t.Helper()
	_, body := do(t, b, "GET", "/state?"+key, "", nil)
	if _, err := fmt.Sscanf(body, "served=%d seen=%d keys=%d since=%d", &served, &seen, &keys, &since); err != nil {
		t.Fatalf("/state answered %q: %v", body, err)
	}
	return served, seen, keys, since
}

// TestPreinitializedInstancesStartFresh serves a reusable guest without
// reuse, pre-initialized: every request still finds its
// instance exactly as _initialize left it — no counter, slice or map
// entry of an earlier request — with a clock that never goes back.
func TestPreinitializedInstancesStartFresh(t *testing.T) {
	for name, opts := range map[string]Options{
		"preinit":             {Preinit: true},
		"preinit+frozenClock": {Preinit: true, FrozenClock: true},
		"preinit+pool":        {Preinit: true, Pool: 2},
		"default":             {},
	} {
		t.Run(name, func(t *testing.T) {
			b := newReusableBackend(t, opts)
			if got, want := b.cur.snap != nil, opts.Preinit; got != want {
				t.Fatalf("pre-initialized %v, want %v", got, want)
			}
			var last int64
			for i := range 6 {
				served, seen, keys, since := state(t, b, strconv.Itoa(i))
				if served != 1 || seen != 1 || keys != 1 {
					t.Fatalf("request %d: served=%d seen=%d keys=%d, want 1 each (a fresh instance)", i, served, seen, keys)
				}
				// Each instance started from the one snapshot: its clock
				// reads on from there. (Initialized per instance, the
				// guest measures from its own start instead.)
				if since <= 0 || (opts.Preinit && since < last) {
					t.Fatalf("request %d: %dns since _initialize, after %dns: the clock went back", i, since, last)
				}
				last = since
			}
		})
	}
}

// TestPooledBufferHoldsOnlyTheImage dirties a recycled buffer around
// where an image goes: the next instance must find the image and zeros
// everywhere else, as it would in new memory.
func TestPooledBufferHoldsOnlyTheImage(t *testing.T) {
	p := newMemoryPool(0, nil)
	defer p.close()
	img := memImage{off: 100, data: []byte("snapshot")}
	for _, dirty := range []int{0, 50, 104, 4096, 1 << 20} {
		m := &linearMemory{pool: p, limit: 2 << 20}
		m.Allocate(0, 0)
		buf := m.Reallocate(uint64(dirty))
		for i := range buf {
			buf[i] = 0xff
		}
		m.release()

		m = &linearMemory{pool: p, limit: 2 << 20, image: img}
		m.Allocate(0, 0)
		got := m.Reallocate(1 << 20)
		want := make([]byte, 1<<20)
		copy(want[100:], "snapshot")
		if !bytes.Equal(got, want) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			t.Errorf("after %d dirty bytes: byte %d is %#x, want %#x", dirty, i, got[i], want[i])
		}
		m.release()
	}
}

// TestPreinitializedInstanceFailsAlone checks that a request that fails
// (a trap, a deadline) leaves the next one a working fresh instance.
func TestPreinitializedInstanceFailsAlone(t *testing.T) {
	b := newReusableBackend(t, Options{Preinit: true, Timeout: Duration(300e6)})
	for _, target := range []string{"/panic", "/hang"} {
		if _, err := b.RoundTrip(httptest.NewRequest("GET", target, nil)); err == nil {
			t.Fatalf("%s succeeded", target)
		}
		if served, _, _, _ := state(t, b, target); served != 1 {
			t.Fatalf("after %s: served=%d", target, served)
		}
	}
}

// TestInitWritingStdoutIsNotSnapshotted: what _initialize writes to
// stdout is part of every fresh instance's response, so such a guest keeps
// running _initialize per instance, from the data image.
func TestInitWritingStdoutIsNotSnapshotted(t *testing.T) {
	b := newTestBackend(t, Options{Preinit: true, Path: buildTestModule(t, "reusable-noisy", "-buildmode=c-shared", "-ldflags=-X=main.initHeader=yes")})
	if b.cur.snap != nil || !b.cur.preinit {
		t.Fatalf("snapshot %v, rewritten %v: want rewritten, not snapshotted", b.cur.snap != nil, b.cur.preinit)
	}
	for range 2 {
		resp, body := do(t, b, "GET", "/served", "", nil)
		if resp.Header.Get("X-Init") != "yes" || body != "1" {
			t.Fatalf("X-Init %q, body %q: want _initialize's header and a fresh instance", resp.Header.Get("X-Init"), body)
		}
	}
}

// TestInitCallingOutIsNotSnapshotted: an answer _initialize got from an
// outbound call would be in every instance although no request asked for
// it, so such a guest runs _initialize per instance too.
func TestInitCallingOutIsNotSnapshotted(t *testing.T) {
	b := newTestBackend(t, Options{Preinit: true, Path: buildTestModule(t, "reusable-initcall", "-buildmode=c-shared", "-tags=initcall")})
	if b.cur.snap != nil || !b.cur.preinit {
		t.Fatalf("snapshot %v, rewritten %v: want rewritten, not snapshotted", b.cur.snap != nil, b.cur.preinit)
	}
	for range 2 {
		if _, body := do(t, b, "GET", "/served", "", nil); body != "1" {
			t.Fatalf("body %q: want a fresh instance", body)
		}
	}
}

// TestPrepareSnapshot rewrites a small module: the data section leaves
// the module for the image, mutable globals are exported, and modules
// whose state it cannot capture are refused.
func TestPrepareSnapshot(t *testing.T) {
	bin := printingModule("hello")
	p, err := prepareSnapshot(bin)
	if err != nil {
		t.Fatal(err)
	}
	sections, ok := splitSections(p.bin)
	if !ok {
		t.Fatal("rewritten module does not parse")
	}
	for _, s := range sections {
		if s.id == sectionData {
			t.Error("the data section is still there")
		}
	}
	if p.data.off != 0 || len(p.data.data) != 64+5 || !bytes.Equal(p.data.data[64:], []byte("hello")) {
		t.Errorf("image at %d of %d bytes, tail %q", p.data.off, len(p.data.data), p.data.data[min(64, len(p.data.data)):])
	}
	if _, err := compile(context.Background(), testRuntime(t).fast, p.bin); err != nil {
		t.Fatalf("rewritten module does not compile: %v", err)
	}

	// A mutable global (and an immutable one, left alone) gets exported;
	// the module had an export section.
	withGlobals := insertSection(bin, sectionGlobal, []byte{2, 0x7f, 0x01, 0x41, 0x07, 0x0b, 0x7e, 0x00, 0x42, 0x01, 0x0b})
	p, err = prepareSnapshot(withGlobals)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.globals) != 1 || p.globals[0] != snapshotGlobalPrefix+"0" {
		t.Fatalf("globals %q", p.globals)
	}
	c, err := compile(context.Background(), testRuntime(t).fast, p.bin)
	if err != nil {
		t.Fatalf("rewritten module does not compile: %v", err)
	}
	if _, ok := c.ExportedFunctions()["_start"]; !ok {
		t.Error("the original exports are lost")
	}
	_ = c.Close(context.Background())

	for name, bad := range map[string][]byte{
		"start section":   insertSection(bin, sectionStart, []byte{0}),
		"data count":      insertSection(bin, sectionDataCount, []byte{2}),
		"vector global":   insertSection(bin, sectionGlobal, append([]byte{1, 0x7b, 0x01, 0xfd, 0x0c}, append(make([]byte, 16), 0x0b)...)),
		"imported global": wasmModule{imports: nil, start: []byte{}, memPages: 1}.withImport("env", "g", []byte{0x03, 0x7f, 0x00}),
		"segment outside": wasmModule{start: []byte{}, memPages: 1, data: []dataSegment{{wasmPageSize - 2, []byte("abc")}}}.bytes(),
		"own prefix":      wasmModule{start: []byte{}, memPages: 1}.withExport(snapshotGlobalPrefix + "0"),
	} {
		if _, err := prepareSnapshot(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestInstrumentSeesTableWrites: code that changes a table is state a
// snapshot would miss.
func TestInstrumentSeesTableWrites(t *testing.T) {
	for _, tt := range []struct {
		code   []byte
		writes bool
	}{
		{[]byte{0x01}, false},                                     // nop
		{[]byte{0xfc, 16, 0, 0x1a}, false},                        // table.size; drop
		{[]byte{0x41, 0, 0xd0, 0x70, 0x26, 0}, true},              // table.set
		{[]byte{0xd0, 0x70, 0x41, 1, 0xfc, 15, 0, 0x1a}, true},    // table.grow; drop
		{[]byte{0x41, 0, 0xd0, 0x70, 0x41, 1, 0xfc, 17, 0}, true}, // table.fill
		{[]byte{0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 14, 0, 0}, true}, // table.copy
		{[]byte{0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 12, 0, 0}, true}, // table.init
		{[]byte{0xfc, 13, 0}, true},                               // elem.drop
		{[]byte{0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 11, 0}, false},   // memory.fill
	} {
		var facts codeFacts
		body := append([]byte{0}, tt.code...)
		body = append(body, 0x0b)
		if _, err := instrumentBody(body, nil, &facts); err != nil {
			t.Fatalf("% x: %v", tt.code, err)
		}
		if facts.writesTables != tt.writes {
			t.Errorf("% x: writesTables %v, want %v", tt.code, facts.writesTables, tt.writes)
		}
	}
}

func TestPreinitNeedsAReusableGuest(t *testing.T) {
	_, err := New(context.Background(), Options{Path: buildGuest(t), Preinit: true}, testRuntime(t))
	if err == nil || !strings.Contains(err.Error(), "preinit needs a reusable guest") {
		t.Fatalf("New with preinit on a command: %v", err)
	}
}

// insertSection adds a section to bin at its place in the section order.
func insertSection(bin []byte, id byte, body []byte) []byte {
	order := func(id byte) int {
		if id == sectionDataCount {
			return int(sectionCode) - 1 // after element, before code
		}
		if id >= sectionCode {
			return int(id)
		}
		return int(id) - 1
	}
	sections, _ := splitSections(bin)
	out := append([]byte(nil), bin[:8]...)
	done := false
	for _, s := range sections {
		if !done && s.id != 0 && order(s.id) > order(id) {
			out = appendSection(out, id, body)
			done = true
		}
		out = appendSection(out, s.id, s.body)
	}
	if !done {
		out = appendSection(out, id, body)
	}
	return out
}

func appendSection(out []byte, id byte, body []byte) []byte {
	out = append(out, id)
	out = appendULEB(out, uint64(len(body)))
	return append(out, body...)
}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// withImport is the module with one more import entry of the given kind
// encoding (kind byte and description), placed first.
func (w wasmModule) withImport(module, name string, desc []byte) []byte {
	bin := w.bytes()
	sections, _ := splitSections(bin)
	entry := appendULEB(nil, uint64(len(module)))
	entry = append(entry, module...)
	entry = appendULEB(entry, uint64(len(name)))
	entry = append(append(entry, name...), desc...)
	out := append([]byte(nil), bin[:8]...)
	found := false
	for _, s := range sections {
		if s.id == sectionImport {
			r := &reader{b: s.body}
			n := r.count()
			s.body = append(append(appendULEB(nil, uint64(n)+1), entry...), s.body[r.off:]...)
			found = true
		}
		if !found && s.id > sectionImport {
			out = appendSection(out, sectionImport, append([]byte{1}, entry...))
			found = true
		}
		out = appendSection(out, s.id, s.body)
	}
	return out
}

// withExport is the module with one more export: of function 0 by name.
func (w wasmModule) withExport(name string) []byte {
	bin := w.bytes()
	sections, _ := splitSections(bin)
	out := append([]byte(nil), bin[:8]...)
	for _, s := range sections {
		if s.id == sectionExport {
			r := &reader{b: s.body}
			n := r.count()
			entry := appendULEB(nil, uint64(len(name)))
			entry = append(append(entry, name...), 0x00, 0x00)
			s.body = append(append(appendULEB(nil, uint64(n)+1), s.body[r.off:]...), entry...)
		}
		out = appendSection(out, s.id, s.body)
	}
	if !strings.Contains(string(out), name) {
		panic("no export section")
	}
	return out
}

// TestPreinitializedRouteReloads swaps the module file of a pre-initialized
// route: the new version is pre-initialized in turn (or, here, falls back
// to per-instance initialization), and the route keeps answering.
func TestPreinitializedRouteReloads(t *testing.T) {
	dir := t.TempDir()
	read := func(path string) []byte {
		bin, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return bin
	}
	quiet := read(buildReusableGuest(t))
	noisy := read(buildTestModule(t, "reusable-noisy", "-buildmode=c-shared", "-ldflags=-X=main.initHeader=yes"))
	path := writeModule(t, dir, "app.wasm", quiet)
	b := newTestBackend(t, Options{Path: path, Preinit: true})
	b.checkEvery = 0
	waitFor := func(init string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			resp, body := do(t, b, "GET", "/served", "", nil)
			if body != "1" {
				t.Fatalf("served %q: not a fresh instance", body)
			}
			if resp.Header.Get("X-Init") == init {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("the route never answered with X-Init %q", init)
	}
	waitFor("")
	if b.cur.snap == nil {
		t.Fatal("first version not pre-initialized")
	}
	writeModule(t, dir, "app.wasm", noisy)
	waitFor("yes")
	b.mu.Lock()
	snap := b.cur.snap
	b.mu.Unlock()
	if snap != nil {
		t.Error("a version whose _initialize writes stdout was pre-initialized")
	}
	writeModule(t, dir, "app.wasm", quiet)
	waitFor("")
	b.mu.Lock()
	snap = b.cur.snap
	b.mu.Unlock()
	if snap == nil {
		t.Error("the third version was not pre-initialized")
	}
	if st := b.Stats(); st.Reloads != 2 || st.ReloadErrors != 0 {
		t.Errorf("stats %+v, want 2 reloads", st)
	}
}
