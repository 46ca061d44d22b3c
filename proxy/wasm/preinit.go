package wasm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Pre-initialization (Options.Preinit).
//
// A reusable guest's new instance normally runs _initialize before its
// first request: for a Go guest that is the whole runtime start-up and
// every package's init, about a millisecond, paid per request when the
// route does not reuse instances. With Preinit, Backend.load runs _initialize
// once, in an instance of its own, and keeps what it left behind: linear
// memory and the mutable globals. Every later instance starts from that
// state — memory copied from the snapshot, globals set to the snapshot
// values — and has migrate_serve called straight away. Each request still
// gets a brand-new instance, so nothing one request does reaches the next;
// what all instances share is what _initialize did once (Wizer's model).
//
// That is sound only when memory, globals and tables are the whole state
// of an instance and _initialize changed no tables, so prepareSnapshot
// accepts only modules whose state it can see (see its checks), and
// preinitialize refuses an _initialize that had effects outside the
// instance which its successors would miss (stdout, outbound calls).
// Refused modules run _initialize in every instance, as before.
//
// Go does not export its globals (the stack pointer among them), and
// wazero reads and writes only exported ones, so the module compiled is
// rewritten: every mutable global is exported under snapshotGlobalPrefix.
// The data section is dropped too and written by the memory allocator
// instead (linearMemory's image), so that the same compiled module serves
// both the one initializing instance (image: the data segments) and every
// later one (image: the snapshot), without wazero copying the original
// data first.

// snapshotGlobalPrefix names the exports added for a module's mutable
// globals: "migrate.global.3" is global 3.
const snapshotGlobalPrefix = "migrate.global."

// memImage is the initial content of linear memory at offset off; all
// other bytes are zero.
type memImage struct {
	off  uint64
	data []byte
}

func (i memImage) end() uint64 { return i.off + uint64(len(i.data)) }

// writeTo writes the image into buf[:cap(buf)], which must hold end bytes.
func (i memImage) writeTo(buf []byte) {
	copy(buf[:i.end()][i.off:], i.data)
}

// stripData returns the module without its data section and the memory
// image the section wrote, for linearMemory to write in wazero's place:
// one copy of the initial bytes instead of wazero's per-segment work after
// the buffer was zeroed whole (see BENCHMARKS.md). It refuses what the
// allocator cannot stand in for: a module without exactly one memory of
// its own (32-bit, unshared), data segments that are not active at a
// constant offset, or that reach past the initial memory (instantiation
// must fail there, and wazero says so), and a data count section
// (memory.init and data.drop name segments that would be gone). Segments
// apply in order, so a later one wins where they overlap, as in wazero.
func stripData(bin []byte) ([]byte, memImage, error) {
	sections, ok := splitSections(bin)
	if !ok {
		return nil, memImage{}, errDataStays
	}
	var (
		minPages  uint64
		memories  int
		dataIndex = -1
		segs      []dataSegment
	)
	for i, s := range sections {
		switch s.id {
		case sectionImport:
			imports, err := readImports(s.body)
			if err != nil || imports.memories > 0 {
				return nil, memImage{}, fmt.Errorf("%w: it imports its memory", errDataStays)
			}
		case sectionMemory:
			r := &reader{b: s.body}
			memories = int(r.count())
			if memories != 1 {
				return nil, memImage{}, fmt.Errorf("%w: %d memories", errDataStays, memories)
			}
			if flags := r.byte(); flags > 1 {
				return nil, memImage{}, fmt.Errorf("%w: shared or 64-bit memory", errDataStays)
			}
			minPages = uint64(r.u32())
			if r.err != nil {
				return nil, memImage{}, errDataStays
			}
		case sectionDataCount:
			return nil, memImage{}, fmt.Errorf("%w: it uses memory.init or data.drop (data count section)", errDataStays)
		case sectionData:
			var err error
			if segs, err = parseDataSection(s.body); err != nil {
				return nil, memImage{}, fmt.Errorf("%w: %v", errDataStays, err)
			}
			dataIndex = i
		}
	}
	if memories != 1 {
		return nil, memImage{}, fmt.Errorf("%w: it defines no memory", errDataStays)
	}
	var img memImage
	if len(segs) > 0 {
		lo, hi := uint64(segs[0].offset), uint64(0)
		for _, s := range segs {
			lo = min(lo, uint64(s.offset))
			hi = max(hi, uint64(s.offset)+uint64(len(s.init)))
		}
		if hi > minPages*wasmPageSize {
			return nil, memImage{}, fmt.Errorf("%w: a data segment lies outside the initial memory", errDataStays)
		}
		img = memImage{off: lo, data: make([]byte, hi-lo)}
		for _, s := range segs {
			copy(img.data[uint64(s.offset)-lo:], s.init)
		}
	}
	if dataIndex < 0 {
		return bin, img, nil
	}
	d := sections[dataIndex]
	out := make([]byte, 0, len(bin)-(d.end-d.start))
	out = append(out, bin[:d.start]...)
	return append(out, bin[d.end:]...), img, nil
}

// preinitModule is a module rewritten by prepareSnapshot.
type preinitModule struct {
	bin     []byte   // no data section; mutable globals exported
	data    memImage // what the data section wrote
	globals []string // export names of the mutable globals, in index order
}

var (
	errNoSnapshot = errors.New("module state is not only memory and globals")
	errDataStays  = errors.New("the data section stays with wazero")
)

// prepareSnapshot rewrites a reusable guest for pre-initialization, or
// reports why its state after _initialize cannot be captured. It accepts
// only modules whose every piece of instance state is linear memory 0 or a
// global of a numeric type: no imported memory, table or global, no start
// section (it would run again in every instance), and data that stripData
// can move to the allocator. Code that writes tables is refused later, by
// instrument's codeFacts.
func prepareSnapshot(bin []byte) (*preinitModule, error) {
	stripped, data, err := stripData(bin)
	if err != nil {
		return nil, err
	}
	sections, _ := splitSections(stripped)
	var (
		globals     []uint32
		exportIndex = -1
		globalIndex = -1
		exportNames []string
	)
	for i, s := range sections {
		switch s.id {
		case sectionImport:
			imports, err := readImports(s.body)
			if err != nil || imports.globals+imports.tables+imports.memories > 0 {
				return nil, fmt.Errorf("%w: it imports a memory, table or global", errNoSnapshot)
			}
		case sectionGlobal:
			var err error
			if globals, err = mutableGlobals(s.body); err != nil {
				return nil, err
			}
			globalIndex = i
		case sectionExport:
			r := &byteReader{b: s.body}
			r.each(func(r *byteReader) {
				name, _ := r.export()
				exportNames = append(exportNames, name)
			})
			if r.err != nil {
				return nil, errNoSnapshot
			}
			exportIndex = i
		case sectionStart:
			return nil, fmt.Errorf("%w: it has a start function", errNoSnapshot)
		}
	}
	for _, name := range exportNames {
		if strings.HasPrefix(name, snapshotGlobalPrefix) {
			return nil, fmt.Errorf("%w: it exports %q itself", errNoSnapshot, name)
		}
	}

	p := &preinitModule{data: data}
	// The export section with one more entry per mutable global: the
	// module's own entries, then ours, after the new count.
	var entries []byte
	if exportIndex >= 0 {
		body := sections[exportIndex].body
		_, n := binary.Uvarint(body)
		entries = slices.Clone(body[n:])
	}
	for _, idx := range globals {
		name := snapshotGlobalPrefix + strconv.FormatUint(uint64(idx), 10)
		entries = binary.AppendUvarint(entries, uint64(len(name)))
		entries = append(entries, name...)
		entries = append(entries, 0x03) // global
		entries = binary.AppendUvarint(entries, uint64(idx))
		p.globals = append(p.globals, name)
	}
	exports := binary.AppendUvarint(nil, uint64(len(exportNames)+len(globals)))
	exports = append(exports, entries...)

	out := append([]byte(nil), bin[:8]...)
	emit := func(id byte, body []byte) {
		out = append(out, id)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	for i, s := range sections {
		if i == exportIndex {
			emit(sectionExport, exports)
			continue
		}
		emit(s.id, s.body)
		// Without an export section, a new one goes right after the
		// global section (or the memory section, which precedes it).
		if exportIndex < 0 && (i == globalIndex || (globalIndex < 0 && s.id == sectionMemory)) {
			emit(sectionExport, exports)
		}
	}
	p.bin = out
	return p, nil
}

// mutableGlobals returns the indices of a global section's mutable
// globals (the module imports none, so they are the section's own), refusing globals whose value the host cannot read and
// write as one number (vectors, references) and initializers it does not
// know.
func mutableGlobals(body []byte) ([]uint32, error) {
	r := &reader{b: body}
	count := r.count()
	var out []uint32
	for i := range count {
		typ, mut := r.byte(), r.byte()
		numeric := typ == 0x7f || typ == 0x7e || typ == 0x7d || typ == 0x7c
		if mut == 1 {
			if !numeric {
				return nil, fmt.Errorf("%w: mutable global %d is not a number", errNoSnapshot, i)
			}
			out = append(out, i)
		}
		switch op := r.byte(); op {
		case 0x41, 0x42: // i32.const i64.const
			r.s64()
		case 0x43:
			r.skip(4)
		case 0x44:
			r.skip(8)
		case 0x23, 0xd2: // global.get ref.func
			r.u32()
		case 0xd0: // ref.null
			r.byte()
		default:
			return nil, fmt.Errorf("%w: global %d has an initializer of opcode 0x%02x", errNoSnapshot, i, op)
		}
		if r.byte() != 0x0b {
			return nil, fmt.Errorf("%w: global %d has an extended initializer", errNoSnapshot, i)
		}
	}
	if r.err != nil || r.off != len(body) {
		return nil, errNoSnapshot
	}
	return out, nil
}

// snapshot is a reusable guest's state right after its _initialize.
type snapshot struct {
	mem     memImage // linear memory, trailing zeros left out
	pages   uint32   // its size in pages
	globals []uint64 // the mutable globals, as preinitModule.globals
	// mono is where a FrozenClock guest's monotonic clock stood: later
	// instances continue from there, so that it never goes back. The real
	// clock is the host's monotonic clock, shared by every instance.
	mono int64
}

// initProbe records, during pre-initialization, an outbound call: made
// from _initialize, its answer would be part of the snapshot although no
// request asked for it, so such a guest is refused.
type initProbe struct{ outbound atomic.Bool }

type initProbeKey struct{}

// noteInitCall marks ctx's probe, if any.
func noteInitCall(ctx context.Context) {
	if p, ok := ctx.Value(initProbeKey{}).(*initProbe); ok {
		p.outbound.Store(true)
	}
}

// preinitialize runs m's _initialize in an instance of its own, under the
// route's timeout and memory cap, and returns the state it left. It fails
// when _initialize fails, writes to stdout (every fresh instance would
// have written it into its response), or makes an outbound call; stderr
// is logged once.
func (b *Backend) preinitialize(ctx context.Context, m *module) (*snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(b.opts.Timeout))
	defer cancel()
	probe := &initProbe{}
	ctx = context.WithValue(ctx, initProbeKey{}, probe)
	stdout, stderr := &headBuffer{limit: maxStderr}, &headBuffer{limit: maxStderr}
	rio := &requestIO{ctx: ctx, stdout: stdout, stderr: stderr}
	if err := b.rt.budget.reserve(ctx, b.linearLimit()); err != nil {
		return nil, err
	}
	mem := &linearMemory{pool: b.mem, limit: uint64(b.linearLimit()), image: m.data, reserved: b.linearLimit()}
	defer mem.release()
	clock := &frozenClock{}
	cfg := b.instanceConfig(rio, clock).WithStartFunctions("_initialize")
	mod, err := b.runtimeFor(m).InstantiateModule(experimental.WithMemoryAllocator(ctx, mem), m.compiled, cfg)
	if mod != nil {
		defer mod.Close(context.Background())
	}
	if stderr.total > 0 {
		b.logger.Info("wasm guest stderr during pre-initialization", "stderr", string(stderr.buf), "stderrBytes", stderr.total)
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("_initialize failed: %w", err)
	case mem.refused:
		return nil, fmt.Errorf("_initialize grew memory past maxMemory %s", b.opts.MaxMemory)
	case stdout.total > 0:
		return nil, fmt.Errorf("_initialize wrote %d bytes to stdout", stdout.total)
	case probe.outbound.Load():
		return nil, errors.New("_initialize made an outbound HTTP call")
	}
	memory := mod.Memory()
	size := memory.Size()
	all, ok := memory.Read(0, size)
	if !ok {
		return nil, errors.New("linear memory unreadable")
	}
	used := len(all)
	for used > 0 && all[used-1] == 0 {
		used--
	}
	s := &snapshot{mem: memImage{data: bytes.Clone(all[:used])}, pages: size / wasmPageSize, mono: clock.mono}
	for _, name := range m.globals {
		g := mod.ExportedGlobal(name)
		if _, ok := g.(api.MutableGlobal); !ok {
			return nil, fmt.Errorf("global %s is not exported as mutable", name)
		}
		s.globals = append(s.globals, g.Get())
	}
	return s, nil
}

// restore sets the globals of mod, an instance started from s's memory,
// to s's values, and grows its memory to s's size.
func (s *snapshot) restore(mod api.Module, globals []string) error {
	memory := mod.Memory()
	if pages := memory.Size() / wasmPageSize; pages < s.pages {
		if _, ok := memory.Grow(s.pages - pages); !ok {
			return errors.New("pre-initialized memory exceeds maxMemory")
		}
	}
	for i, name := range globals {
		g, ok := mod.ExportedGlobal(name).(api.MutableGlobal)
		if !ok {
			return fmt.Errorf("global %s is not exported as mutable", name)
		}
		g.Set(s.globals[i])
	}
	return nil
}

// preinitModuleFor rewrites bin for pre-initialization when Preinit is
// set and it is a reusable guest whose state can be captured; nil
// otherwise.
func (b *Backend) preinitModuleFor(bin []byte) *preinitModule {
	if !b.opts.Preinit {
		return nil
	}
	if !exportsServe(exportedFunctions(bin)) {
		return nil
	}
	p, err := prepareSnapshot(bin)
	if err != nil {
		b.logger.Warn("preinit: the wasm guest runs _initialize in every instance", "reason", err)
		return nil
	}
	return p
}
