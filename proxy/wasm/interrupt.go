package wasm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// yieldEvery is how many loop iterations a guest runs between two calls to
// sched_yield inserted by instrumentLoops. Each call leaves the compiled
// code for Go (about 100ns), so the overhead is a fraction of a nanosecond
// per iteration, while deadlines and the Go scheduler are never kept
// waiting for more than a few microseconds.
const yieldEvery = 1024

// errCannotInstrument marks code instrumentLoops does not understand; the
// module then runs with wazero's own interruption check instead.
var errCannotInstrument = errors.New("cannot instrument")

// instrumentLoops makes a module interruptible cheaply. It adds a mutable
// i32 global, a loop budget, and at the top of every loop body
//
//	budget = budget - 1
//	if budget == 0 {
//	    budget = yieldEvery
//	    drop(sched_yield())
//	}
//
// calling the module's own wasi_snapshot_preview1.sched_yield import. Go
// code runs in that call: the per-request Osyield hook (Backend.config)
// ends the guest with a deadline exit once the request's context is done,
// and the Go runtime gets the chance to preempt the goroutine.
//
// Why not wazero's WithCloseOnContextDone: its check leaves the compiled
// code for Go on every loop iteration, which for a Go guest costs more than
// everything else in a request (BENCHMARKS.md). And why not a flag the host
// sets: compiled Wasm cannot be preempted, so a guest spinning without ever
// calling out would stall the Go runtime's stop-the-world phases (garbage
// collection) and with them the whole proxy; regular calls out are needed
// anyway.
//
// Any run that does not end by itself repeats a loop or recurses (and
// recursion ends in a stack-overflow trap), so loops are the only place
// that needs the check — provided the module has no tail calls. Modules
// using them, like any code this walker does not fully understand (SIMD,
// threads, exceptions, GC types), and modules that do not import
// sched_yield (Go's wasip1 port always does) are returned with ok false and
// run with wazero's check instead.
//
// Inserting instructions is safe in Wasm because branches name enclosing
// blocks by depth, never by byte offset; the check is a complete if/end
// inside the loop, so no depth changes, and it leaves the operand stack as
// it found it. Only debugging information that maps code offsets (DWARF
// custom sections) would be off; it is dropped.
func instrumentLoops(bin []byte) (out []byte, ok bool) {
	out, err := instrument(bin, nil)
	if err != nil {
		return bin, false
	}
	return out, true
}

// codeFacts is what instrument learns about a module's code on the way.
type codeFacts struct {
	// writesTables says some function changes a table or drops an element
	// segment (table.set, table.grow, table.fill, table.copy, table.init,
	// elem.drop): state that a snapshot of memory and globals would miss.
	writesTables bool
}

// instrument is instrumentLoops, reporting what it saw in facts when not nil.
func instrument(bin []byte, facts *codeFacts) ([]byte, error) {
	sections, ok := splitSections(bin)
	if !ok {
		return nil, errCannotInstrument
	}
	// Code offsets in DWARF would no longer match.
	sections = slices.DeleteFunc(sections, func(s section) bool { return s.id == 0 && isDebugSection(s.body) })

	var types [][]byte
	var imports importInfo
	definedGlobals := 0
	codeIndex, globalIndex := -1, -1
	for i, s := range sections {
		var err error
		switch s.id {
		case sectionType:
			types, err = funcTypes(s.body)
		case sectionImport:
			imports, err = readImports(s.body)
		case sectionGlobal:
			count, n := binary.Uvarint(s.body)
			if n <= 0 {
				return nil, errCannotInstrument
			}
			definedGlobals, globalIndex = int(count), i
		case sectionCode:
			codeIndex = i
		}
		if err != nil {
			return nil, err
		}
	}
	// sched_yield must be the WASI one: () -> (i32 errno).
	if codeIndex < 0 || imports.yieldFunc < 0 || imports.yieldType >= len(types) ||
		string(types[imports.yieldType]) != "\x60\x00\x01\x7f" {
		return nil, errCannotInstrument
	}
	budget := uint32(imports.globals + definedGlobals)

	if facts == nil {
		facts = new(codeFacts)
	}
	code, err := instrumentCode(sections[codeIndex].body, loopCheck(budget, uint32(imports.yieldFunc)), facts)
	if err != nil {
		return nil, err
	}
	sections[codeIndex].body = code

	// (global (mut i32) (i32.const yieldEvery))
	newGlobal := append([]byte{0x7f, 0x01, 0x41}, appendSLEB32(nil, yieldEvery)...)
	newGlobal = append(newGlobal, 0x0b)
	if globalIndex >= 0 {
		body := sections[globalIndex].body
		_, n := binary.Uvarint(body)
		g := binary.AppendUvarint(nil, uint64(definedGlobals+1))
		g = append(g, body[n:]...)
		sections[globalIndex].body = append(g, newGlobal...)
	} else {
		// The global section goes before export, start, element, data
		// count, code and data.
		at := len(sections)
		for i, s := range sections {
			if s.id == sectionExport || s.id == sectionStart || s.id == sectionElement || s.id == sectionDataCount || s.id == sectionCode || s.id == sectionData {
				at = i
				break
			}
		}
		g := section{id: sectionGlobal, body: append([]byte{1}, newGlobal...)}
		sections = slices.Insert(sections, at, g)
	}

	out := append([]byte(nil), bin[:8]...) // magic + version
	for _, s := range sections {
		out = append(out, s.id)
		out = binary.AppendUvarint(out, uint64(len(s.body)))
		out = append(out, s.body...)
	}
	return out, nil
}

// loopCheck is the code instrumentLoops puts at the top of each loop.
func loopCheck(budget, yield uint32) []byte {
	g := binary.AppendUvarint(nil, uint64(budget))
	c := []byte{0x23}
	c = append(c, g...)       // global.get $budget
	c = append(c, 0x41, 0x01) // i32.const 1
	c = append(c, 0x6b, 0x24) // i32.sub; global.set
	c = append(c, g...)       //   $budget
	c = append(c, 0x23)       // global.get
	c = append(c, g...)       //   $budget
	c = append(c, 0x45)       // i32.eqz
	c = append(c, 0x04, 0x40) // if
	c = append(c, 0x41)       //   i32.const
	c = appendSLEB32(c, yieldEvery)
	c = append(c, 0x24) //   global.set
	c = append(c, g...) //     $budget
	c = append(c, 0x10) //   call
	c = binary.AppendUvarint(c, uint64(yield))
	c = append(c, 0x1a, 0x0b) //   drop; end
	return c
}

// isDebugSection reports whether a custom section is DWARF (".debug_*").
func isDebugSection(body []byte) bool {
	n, k := binary.Uvarint(body)
	if k <= 0 || n > uint64(len(body)-k) {
		return false
	}
	name := string(body[k : k+int(n)])
	return len(name) > 7 && name[:7] == ".debug_"
}

// importInfo is what instrumentLoops needs from the import section.
type importInfo struct {
	globals   int // imported globals (they come first in the global index space)
	tables    int // imported tables
	memories  int // imported memories
	yieldFunc int // function index of wasi_snapshot_preview1.sched_yield, or -1
	yieldType int // its type index
}

func readImports(b []byte) (importInfo, error) {
	info := importInfo{yieldFunc: -1}
	r := &reader{b: b}
	count := r.count()
	funcs := 0
	for range count {
		module, name := r.name(), r.name()
		switch kind := r.byte(); kind {
		case 0x00: // func
			typ := r.u32()
			if module == wasiModule && name == "sched_yield" {
				info.yieldFunc, info.yieldType = funcs, int(typ)
			}
			funcs++
		case 0x01: // table
			r.byte()
			r.limits()
			info.tables++
		case 0x02: // memory
			r.limits()
			info.memories++
		case 0x03: // global
			r.byte()
			r.byte()
			info.globals++
		default:
			return info, errCannotInstrument
		}
	}
	if r.err != nil || r.off != len(b) {
		return info, errCannotInstrument
	}
	return info, nil
}

// funcTypes returns the raw encoding of each entry of a type section.
func funcTypes(b []byte) ([][]byte, error) {
	r := &reader{b: b}
	count := r.count()
	types := make([][]byte, 0, count)
	for range count {
		start := r.off
		if r.byte() != 0x60 { // only plain function types
			return nil, errCannotInstrument
		}
		for range 2 { // params, results
			for range r.count() {
				if t := r.byte(); !isValType(t) && t != 0x7b { // v128 is fine here
					return nil, errCannotInstrument
				}
			}
		}
		types = append(types, b[start:r.off])
	}
	if r.err != nil || r.off != len(b) {
		return nil, errCannotInstrument
	}
	return types, nil
}

// instrumentCode rewrites every function body of a code section.
func instrumentCode(b []byte, check []byte, facts *codeFacts) ([]byte, error) {
	r := &reader{b: b}
	count := r.count()
	out := binary.AppendUvarint(make([]byte, 0, len(b)+len(b)/16), uint64(count))
	for range count {
		size := r.u32()
		if r.err != nil || uint64(size) > uint64(len(b)-r.off) {
			return nil, errCannotInstrument
		}
		body, err := instrumentBody(b[r.off:r.off+int(size)], check, facts)
		if err != nil {
			return nil, err
		}
		r.off += int(size)
		out = binary.AppendUvarint(out, uint64(len(body)))
		out = append(out, body...)
	}
	if r.err != nil || r.off != len(b) {
		return nil, errCannotInstrument
	}
	return out, nil
}

// instrumentBody copies one function body, adding check after each loop's
// block type, and notes in facts what the body does.
func instrumentBody(b []byte, check []byte, facts *codeFacts) ([]byte, error) {
	r := &reader{b: b}
	for range r.count() { // local declarations
		r.u32()
		if !isValType(r.byte()) {
			return nil, errCannotInstrument
		}
	}
	out := make([]byte, 0, len(b)+64)
	out = append(out, b[:r.off]...)
	for r.off < len(b) && r.err == nil {
		start := r.off
		op := r.byte()
		loop := false
		switch {
		case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0b || op == 0x0f || op == 0x1a || op == 0x1b:
			// unreachable nop else end return drop select
		case op == 0x02 || op == 0x04: // block if
			r.s64()
		case op == 0x03: // loop
			r.s64()
			loop = true
		case op == 0x0c || op == 0x0d || op == 0x10: // br br_if call
			r.u32()
		case op == 0x0e: // br_table
			for range r.count() {
				r.u32()
			}
			r.u32()
		case op == 0x11: // call_indirect
			r.u32()
			r.u32()
		case op == 0x1c: // select t*
			for range r.count() {
				if !isValType(r.byte()) {
					return nil, errCannotInstrument
				}
			}
		case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
			r.u32()
			if op == 0x26 {
				facts.writesTables = true
			}
		case op >= 0x28 && op <= 0x3e: // loads and stores
			if align := r.u32(); align&0x40 != 0 { // multi-memory index follows
				return nil, errCannotInstrument
			}
			r.u32()
		case op == 0x3f || op == 0x40: // memory.size memory.grow
			if r.byte() != 0 {
				return nil, errCannotInstrument
			}
		case op == 0x41:
			r.s64()
		case op == 0x42:
			r.s64()
		case op == 0x43:
			r.skip(4)
		case op == 0x44:
			r.skip(8)
		case op >= 0x45 && op <= 0xc4: // numeric, incl. sign extension
		case op == 0xd0: // ref.null
			r.byte()
		case op == 0xd1: // ref.is_null
		case op == 0xd2: // ref.func
			r.u32()
		case op == 0xfc:
			sub, err := skipPrefixedFC(r)
			if err != nil {
				return nil, err
			}
			if sub >= 12 && sub <= 17 && sub != 16 { // all table ops but table.size
				facts.writesTables = true
			}
		default:
			// Tail calls, exceptions, SIMD, threads, GC, and anything newer.
			return nil, fmt.Errorf("%w: opcode 0x%02x", errCannotInstrument, op)
		}
		out = append(out, b[start:r.off]...)
		if loop {
			out = append(out, check...)
		}
	}
	if r.err != nil || r.off != len(b) || len(b) == 0 || b[len(b)-1] != 0x0b {
		return nil, errCannotInstrument
	}
	return out, nil
}

// skipPrefixedFC skips the immediates of a 0xfc-prefixed instruction:
// saturating truncation, bulk memory and table instructions, and returns
// which one it was.
func skipPrefixedFC(r *reader) (uint32, error) {
	sub := r.u32()
	switch {
	case sub <= 7: // trunc_sat
	case sub == 8: // memory.init
		r.u32()
		r.byte()
	case sub == 9 || sub == 13: // data.drop elem.drop
		r.u32()
	case sub == 10: // memory.copy
		r.byte()
		r.byte()
	case sub == 11: // memory.fill
		r.byte()
	case sub == 12 || sub == 14: // table.init table.copy
		r.u32()
		r.u32()
	case sub >= 15 && sub <= 17: // table.grow table.size table.fill
		r.u32()
	default:
		return sub, errCannotInstrument
	}
	return sub, nil
}

func isValType(t byte) bool {
	switch t {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x70, 0x6f: // i32 i64 f32 f64 funcref externref
		return true
	}
	return false // v128 and GC types are left to wazero's check
}

// reader walks a byte slice, remembering the first error.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCannotInstrument
	}
	r.off = len(r.b)
}

func (r *reader) byte() byte {
	if r.off >= len(r.b) {
		r.fail()
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || v > 1<<32-1 {
		r.fail()
		return 0
	}
	r.off += n
	return uint32(v)
}

// count reads a vector length; every element takes at least one byte, so
// a length beyond the remaining bytes is malformed (and would make the
// caller loop for nothing).
func (r *reader) count() uint32 {
	n := r.u32()
	if int64(n) > int64(len(r.b)-r.off) {
		r.fail()
		return 0
	}
	return n
}

func (r *reader) s64() {
	for i := 0; i < 10; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail()
}

func (r *reader) skip(n int) {
	if r.off+n > len(r.b) {
		r.fail()
		return
	}
	r.off += n
}

func (r *reader) name() string {
	n := int(r.u32())
	start := r.off
	r.skip(n)
	if r.err != nil {
		return ""
	}
	return string(r.b[start : start+n])
}

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&0x01 != 0 {
		r.u32()
	}
	if flags > 0x03 { // memory64 or unknown
		r.fail()
	}
}
