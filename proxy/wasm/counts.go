package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// maxLocals is the most locals one function may declare: the limit browser
// engines enforce. wazero fills a slice with every declared local one by
// one, so a few bytes declaring four billion of them would cost seconds of
// CPU and gigabytes of memory before any other check ran.
const maxLocals = 50_000

// checkCounts refuses a module any of whose vectors claims more elements
// than the bytes left could hold. wazero's decoder allocates every vector —
// of imports, of types, of a name's bytes — at its declared length before
// reading it, so a 15-byte module declaring four billion imports makes it
// ask for hundreds of gigabytes, and the Go runtime ends the process: the
// whole proxy, not one route (found by FuzzModuleReaders). Every element
// takes at least one byte, so a count above the bytes left is malformed
// whatever the element. It reads every vector the decoder sizes from the
// input: section heads, type entries, import and export names, element
// segments, data bytes, function locals (at most maxLocals) and bodies,
// and the name section. It reads no deeper than that; what it reads and
// cannot parse, wazero would refuse too, so it is refused here, saying
// where.
func checkCounts(bin []byte) error {
	if !bytes.HasPrefix(bin, []byte("\x00asm")) {
		return errors.New("not a Wasm module: it does not start with the \\0asm magic number")
	}
	sections, ok := splitSections(bin)
	if !ok {
		return errors.New("not a valid Wasm module: a section runs past the end of the file (truncated?)")
	}
	for _, s := range sections {
		r := &byteReader{b: s.body}
		switch s.id {
		case 0:
			if r.name() == "name" {
				checkNameSection(r)
			}
		case sectionType:
			r.each(checkTypeEntry)
		case sectionImport:
			r.each(checkImport)
		case sectionExport:
			r.each(checkExport)
		case sectionElement:
			r.each(checkElementSegment)
		case sectionCode:
			r.each(checkFunctionBody)
		case sectionData:
			r.each(checkDataSegment)
		case sectionFunction, sectionTable, sectionMemory, sectionGlobal, sectionTag:
			r.count() // their entries hold no vectors
		}
		if r.err != nil {
			return fmt.Errorf("not a valid Wasm module: section %d at byte %d: %w", s.id, s.start, r.err)
		}
	}
	return nil
}

// checkTypeEntry reads an entry of the type section: a function type, or
// a recursive group of them.
func checkTypeEntry(r *byteReader) {
	if len(r.b) > 0 && r.b[0] == 0x4e {
		r.byte()
		r.each(checkFunctionType)
		return
	}
	checkFunctionType(r)
}

// checkFunctionType reads a function type with its parameter and result
// types. Other forms (GC types) wazero does not support, so it refuses
// them too.
func checkFunctionType(r *byteReader) {
	if form := r.byte(); r.err == nil && form != 0x60 {
		r.err = fmt.Errorf("type form 0x%02x", form)
		return
	}
	r.each((*byteReader).valueType) // parameters
	r.each((*byteReader).valueType) // results
}

// checkExport reads one export.
func checkExport(r *byteReader) { r.export() }

// checkImport reads one import: two names and what it imports.
func checkImport(r *byteReader) {
	r.name() // module
	r.name() // field
	switch kind := r.byte(); kind {
	case 0x00: // function: a type index
		r.u32()
	case 0x01: // table: a reference type and limits
		r.valueType()
		r.limits()
	case 0x02: // memory: limits
		r.limits()
	case 0x03: // global: a value type and mutability
		r.valueType()
		r.byte()
	case 0x04: // tag: an attribute and a type index
		r.byte()
		r.u32()
	default:
		if r.err == nil {
			r.err = fmt.Errorf("import kind 0x%02x", kind)
		}
	}
}

// checkDataSegment reads one data segment: active ones have an offset
// expression (and, in form 2, a memory index) before their bytes.
func checkDataSegment(r *byteReader) {
	switch form := r.u32(); form {
	case 0:
		r.constExpr()
	case 1:
	case 2:
		r.u32()
		r.constExpr()
	default:
		if r.err == nil {
			r.err = fmt.Errorf("data segment form %d", form)
		}
		return
	}
	r.skip(uint64(r.count()))
}

// checkElementSegment reads one element segment (all eight forms), checking
// the length of its vector of function indexes or expressions.
func checkElementSegment(r *byteReader) {
	flags := r.u32()
	if flags > 7 {
		r.err = fmt.Errorf("element segment flags %d", flags)
		return
	}
	if flags&2 != 0 && flags&1 == 0 {
		r.u32() // table index
	}
	if flags&1 == 0 {
		r.constExpr()
	}
	if flags&3 != 0 {
		r.valueType() // an element kind (0x00) or a reference type
	}
	if flags&4 == 0 {
		r.each(func(r *byteReader) { r.u32() }) // function indexes
	} else {
		r.each((*byteReader).constExpr)
	}
}

// checkFunctionBody reads one entry of the code section: its size, its
// local declarations (counted against maxLocals), and skips the code.
func checkFunctionBody(r *byteReader) {
	body := r.sized("function body")
	var locals uint64
	body.each(func(r *byteReader) {
		locals += uint64(r.u32())
		r.valueType()
	})
	if body.err == nil && locals > maxLocals {
		body.err = fmt.Errorf("a function declares %d locals, more than %d", locals, maxLocals)
	}
	r.err = body.err
}

// checkNameSection reads the module name and the function and local name
// maps of a "name" custom section; its other subsections are skipped.
func checkNameSection(r *byteReader) {
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		sub := r.sized("name subsection")
		switch id {
		case 0: // the module's name
			sub.name()
		case 1: // function names: a name map
			checkNameMap(sub)
		case 2: // local names: an indirect name map
			sub.each(func(r *byteReader) {
				r.u32()
				checkNameMap(r)
			})
		}
		r.err = sub.err
	}
}

func checkNameMap(r *byteReader) {
	r.each(func(r *byteReader) {
		r.u32()
		r.name()
	})
}

// byteReader reads the Wasm binary encoding. The first error sticks and
// turns later reads into no-ops that return zero.
type byteReader struct {
	b   []byte
	err error
}

var errTruncated = errors.New("truncated")

func (r *byteReader) byte() byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) == 0 {
		r.err = errTruncated
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *byteReader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n > 5 || v > 1<<32-1 {
		r.err = errors.New("malformed unsigned LEB128 number")
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

// sized reads a size and returns a reader over that many bytes, which it
// skips; what names the content for the error.
func (r *byteReader) sized(what string) *byteReader {
	size := r.u32()
	if r.err == nil && uint64(size) > uint64(len(r.b)) {
		r.err = fmt.Errorf("%s of %d bytes, %d left", what, size, len(r.b))
	}
	if r.err != nil {
		return &byteReader{err: r.err}
	}
	sub := &byteReader{b: r.b[:size]}
	r.b = r.b[size:]
	return sub
}

// each reads a vector, calling read for each of its elements.
func (r *byteReader) each(read func(*byteReader)) {
	for n := r.count(); n > 0 && r.err == nil; n-- {
		read(r)
	}
}

// count reads a vector length and rejects one the bytes left cannot hold.
func (r *byteReader) count() uint32 {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)) {
		r.err = fmt.Errorf("a vector of %d elements with %d bytes left", n, len(r.b))
		return 0
	}
	return n
}

// export reads one entry of the export section: its name and kind (0 for
// a function), then skips its index.
func (r *byteReader) export() (name string, kind byte) {
	name, kind = r.name(), r.byte()
	r.u32()
	return name, kind
}

// valueType skips a value or reference type: one byte, or 0x63/0x64
// (ref null? heaptype) and a heap type.
func (r *byteReader) valueType() {
	if t := r.byte(); t == 0x63 || t == 0x64 {
		r.skipLEB(5)
	}
}

// limits skips a table's or a memory's limits: flags, a minimum and,
// when flag 1 is set, a maximum (64-bit for memory64).
func (r *byteReader) limits() {
	if flags := r.byte(); flags&1 != 0 {
		r.skipLEB(10)
	}
	r.skipLEB(10)
}

func (r *byteReader) skip(n uint64) {
	if r.err == nil && n > uint64(len(r.b)) {
		r.err = errTruncated
	}
	if r.err == nil {
		r.b = r.b[n:]
	}
}

func (r *byteReader) name() string {
	n := r.count()
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// constExpr skips a constant expression up to and including its end.
func (r *byteReader) constExpr() {
	for r.err == nil {
		switch op := r.byte(); op {
		case 0x0b: // end
			return
		case 0x41, 0x42, 0x23, 0xd2, 0xd0: // i32/i64.const, global.get, ref.func, ref.null
			r.skipLEB(10)
		case 0x43: // f32.const
			r.skip(4)
		case 0x44: // f64.const
			r.skip(8)
		case 0x6a, 0x6b, 0x6c, 0x7c, 0x7d, 0x7e: // extended constant arithmetic
		default:
			r.err = fmt.Errorf("opcode 0x%02x in a constant expression", op)
		}
	}
}

// skipLEB skips a LEB128 number, signed or not, of at most maxBytes bytes
// (5 for 33 bits, 10 for 64).
func (r *byteReader) skipLEB(maxBytes int) {
	for i := 0; r.err == nil; i++ {
		if i == maxBytes {
			r.err = errors.New("malformed LEB128 number")
			return
		}
		if r.byte()&0x80 == 0 {
			return
		}
	}
}
