package wasm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"sort"
)

// The ids of a Wasm binary's sections (0 is a custom section).
const (
	sectionType      = 1
	sectionImport    = 2
	sectionFunction  = 3
	sectionTable     = 4
	sectionMemory    = 5
	sectionGlobal    = 6
	sectionExport    = 7
	sectionStart     = 8
	sectionElement   = 9
	sectionCode      = 10
	sectionData      = 11
	sectionDataCount = 12
	sectionTag       = 13
)

// section is one section of a Wasm binary: its id, where it starts and ends
// (id and size included) and its body.
type section struct {
	id         byte
	start, end int
	body       []byte
}

// splitSections splits a Wasm binary into its sections, or reports false
// when bin is not one.
func splitSections(bin []byte) ([]section, bool) {
	const headerLen = 8 // magic + version
	if len(bin) < headerLen || !bytes.Equal(bin[:4], []byte("\x00asm")) {
		return nil, false
	}
	var sections []section
	for i := headerLen; i < len(bin); {
		id := bin[i]
		size, n := binary.Uvarint(bin[i+1:])
		if n <= 0 || size > uint64(len(bin)-(i+1+n)) {
			return nil, false
		}
		bodyStart := i + 1 + n
		end := bodyStart + int(size)
		sections = append(sections, section{id, i, end, bin[bodyStart:end]})
		i = end
	}
	return sections, true
}

// exportedFunctions names the functions a Wasm binary exports, read from
// its export section without compiling it; nil when bin is not a module
// this can read.
func exportedFunctions(bin []byte) []string {
	const kindFunc = 0x00
	sections, _ := splitSections(bin)
	for _, s := range sections {
		if s.id != sectionExport {
			continue
		}
		r := &byteReader{b: s.body}
		var names []string
		r.each(func(r *byteReader) {
			if name, kind := r.export(); kind == kindFunc {
				names = append(names, name)
			}
		})
		if r.err != nil {
			return nil
		}
		return names
	}
	return nil
}

// maxDataGap is the largest run of zero bytes coalesceData writes to join
// two data segments. Go's linker splits its data at every zero run, so a
// typical Go module has tens of thousands of segments: wazero evaluates an
// offset expression and copies separately for each one on every
// instantiation, which costs more than copying the zeros in between.
const maxDataGap = 4096

// dataSegment is an active data segment of memory 0 at a constant offset.
type dataSegment struct {
	offset uint32
	init   []byte
}

// coalesceData returns the module with its active data segments merged into
// as few segments as possible, which makes instantiation several times
// cheaper for Go modules (measured in BENCHMARKS.md). The rewrite keeps the
// module's meaning exactly: the merged segments write the same bytes at the
// same offsets, the bytes in the gaps are zeros written onto memory that is
// still all zeros when data segments are applied, and instantiation fails
// the same way when a segment is out of bounds because the highest end
// offset is unchanged. Modules it cannot prove this for — passive or
// non-constant segments, overlapping segments, a data count section (whose
// memory.init/data.drop instructions name segments by index) — are
// returned unchanged, as is anything it cannot parse (the compiler then
// reports the real problem).
func coalesceData(bin []byte) (out []byte, before, after int) {
	sections, ok := splitSections(bin)
	if !ok {
		return bin, 0, 0
	}
	dataIndex := -1
	for i, s := range sections {
		if s.id == sectionDataCount {
			return bin, 0, 0
		}
		if s.id == sectionData {
			dataIndex = i
		}
	}
	if dataIndex < 0 {
		return bin, 0, 0
	}
	segs, err := parseDataSection(sections[dataIndex].body)
	if err != nil || len(segs) < 2 {
		return bin, len(segs), len(segs)
	}
	merged, ok := mergeSegments(segs)
	if !ok {
		return bin, len(segs), len(segs)
	}
	body := binary.AppendUvarint(nil, uint64(len(merged)))
	for _, s := range merged {
		body = append(body, 0x00, 0x41) // active, memory 0; i32.const
		body = appendSLEB32(body, int32(s.offset))
		body = append(body, 0x0b) // end
		body = binary.AppendUvarint(body, uint64(len(s.init)))
		body = append(body, s.init...)
	}
	d := sections[dataIndex]
	out = make([]byte, 0, len(bin)-len(d.body)+len(body))
	out = append(out, bin[:d.start]...)
	out = append(out, sectionData)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, body...)
	out = append(out, bin[d.end:]...)
	return out, len(segs), len(merged)
}

var errUnsupportedSegment = errors.New("data segment is not an active constant-offset segment of memory 0")

// parseDataSection reads the segments of a data section, accepting only
// the form `(data (i32.const N) "...")`.
func parseDataSection(b []byte) ([]dataSegment, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 || count > uint64(len(b)) {
		return nil, errUnsupportedSegment
	}
	b = b[n:]
	segs := make([]dataSegment, 0, count)
	for range count {
		if len(b) < 2 || b[0] != 0x00 || b[1] != 0x41 {
			return nil, errUnsupportedSegment
		}
		off, n, ok := readSLEB32(b[2:])
		if !ok {
			return nil, errUnsupportedSegment
		}
		b = b[2+n:]
		if len(b) == 0 || b[0] != 0x0b {
			return nil, errUnsupportedSegment
		}
		b = b[1:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, errUnsupportedSegment
		}
		segs = append(segs, dataSegment{offset: uint32(off), init: b[n : n+int(size)]})
		b = b[n+int(size):]
	}
	if len(b) != 0 {
		return nil, errUnsupportedSegment
	}
	return segs, nil
}

// mergeSegments joins segments separated by at most maxDataGap zero bytes.
// Segments apply in order, so a later one may overwrite an earlier one;
// rather than reason about that, it refuses overlapping input.
func mergeSegments(segs []dataSegment) ([]dataSegment, bool) {
	sorted := make([]dataSegment, len(segs))
	copy(sorted, segs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].offset < sorted[j].offset })
	var out []dataSegment
	var cur []byte
	var curOff, curEnd uint64
	for i, s := range sorted {
		off, end := uint64(s.offset), uint64(s.offset)+uint64(len(s.init))
		if i > 0 && off < curEnd {
			return nil, false
		}
		if i > 0 && off-curEnd <= maxDataGap {
			cur = append(cur, make([]byte, off-curEnd)...)
			cur = append(cur, s.init...)
			curEnd = end
			continue
		}
		if i > 0 {
			out = append(out, dataSegment{uint32(curOff), cur})
		}
		cur = append([]byte(nil), s.init...)
		curOff, curEnd = off, end
	}
	out = append(out, dataSegment{uint32(curOff), cur})
	return out, true
}

func readSLEB32(b []byte) (int32, int, bool) {
	var result int64
	var shift uint
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		result |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				result |= -1 << shift
			}
			if result < -1<<31 || result > 1<<31-1 {
				return 0, 0, false
			}
			return int32(result), i + 1, true
		}
	}
	return 0, 0, false
}

func appendSLEB32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
