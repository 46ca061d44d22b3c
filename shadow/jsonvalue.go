package shadow

import (
	"errors"
	"sort"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// kind is the JSON type of a value.
type kind uint8

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// value is a parsed JSON value. migrate parses JSON itself rather than into
// interface{} because the diff needs three things encoding/json throws away or
// makes expensive: the number's literal text (200 vs 200.00), object key order
// (to re-serialise faithfully), and zero-copy strings (bodies are converted to
// a string once and unescaped strings are sub-slices of it).
type value struct {
	kind kind
	b    bool
	s    string   // string contents (unescaped) or number literal
	keys []string // object keys, in document order
	vals []value  // array elements or object values (parallel to keys)
}

var errBadJSON = errors.New("invalid JSON")

// maxDepth bounds nesting so hostile bodies cannot exhaust the stack.
const maxDepth = 512

// parseJSON parses one JSON document; trailing whitespace is allowed,
// anything else after the value is an error.
func parseJSON(src string) (value, error) {
	p := parser{src: src, validUTF8: utf8.ValidString(src)}
	p.ws()
	v, err := p.value(0)
	if err != nil {
		return value{}, err
	}
	p.ws()
	if p.i != len(p.src) {
		return value{}, errBadJSON
	}
	return v, nil
}

type parser struct {
	src string
	i   int
	// stack and keyStack hold the children of the containers being parsed;
	// each container copies its own out into an exactly sized slice when it
	// closes, so a document costs two allocations per container instead of
	// a growslice per element.
	stack    []value
	keyStack []string
	// validUTF8 is set when the whole document is valid UTF-8, so strings
	// need no check of their own.
	validUTF8 bool
	// vslab and kslab are chunks that closed containers carve their
	// children from: a handful of allocations per document instead of two
	// per container.
	vslab []value
	kslab []string
}

// slabChunk sizes a new chunk: about what a document of this size needs.
func (p *parser) slabChunk(n int) int {
	return max(n, min(len(p.src)/24+16, 4096))
}

func (p *parser) carveVals(src []value) []value {
	if len(src) > cap(p.vslab)-len(p.vslab) {
		p.vslab = make([]value, 0, p.slabChunk(len(src)))
	}
	start := len(p.vslab)
	p.vslab = append(p.vslab, src...)
	return p.vslab[start:len(p.vslab):len(p.vslab)]
}

func (p *parser) carveKeys(src []string) []string {
	if len(src) > cap(p.kslab)-len(p.kslab) {
		p.kslab = make([]string, 0, p.slabChunk(len(src)))
	}
	start := len(p.kslab)
	p.kslab = append(p.kslab, src...)
	return p.kslab[start:len(p.kslab):len(p.kslab)]
}

func (p *parser) ws() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (value, error) {
	if depth > maxDepth || p.i >= len(p.src) {
		return value{}, errBadJSON
	}
	switch c := p.src[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.str()
		return value{kind: kString, s: s}, err
	case c == 't':
		return p.lit("true", value{kind: kBool, b: true})
	case c == 'f':
		return p.lit("false", value{kind: kBool})
	case c == 'n':
		return p.lit("null", value{kind: kNull})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return value{}, errBadJSON
}

func (p *parser) lit(word string, v value) (value, error) {
	if !strings.HasPrefix(p.src[p.i:], word) {
		return value{}, errBadJSON
	}
	p.i += len(word)
	return v, nil
}

func (p *parser) number() (value, error) {
	start := p.i
	if p.src[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.src) && p.src[p.i] >= '0' && p.src[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if n := digits(); n == 0 || (n > 1 && p.src[intStart] == '0') {
		return value{}, errBadJSON
	}
	if p.i < len(p.src) && p.src[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return value{}, errBadJSON
		}
	}
	if p.i < len(p.src) && (p.src[p.i] == 'e' || p.src[p.i] == 'E') {
		p.i++
		if p.i < len(p.src) && (p.src[p.i] == '+' || p.src[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return value{}, errBadJSON
		}
	}
	return value{kind: kNumber, s: p.src[start:p.i]}, nil
}

// str parses a string; without escapes the result shares memory with src.
func (p *parser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	for p.i < len(p.src) {
		c := p.src[p.i]
		switch {
		case c == '"':
			s := p.src[start:p.i]
			p.i++
			if !p.validUTF8 && !utf8.ValidString(s) {
				return strings.ToValidUTF8(s, "\uFFFD"), nil
			}
			return s, nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return "", errBadJSON
		}
		p.i++
	}
	return "", errBadJSON
}

func (p *parser) strSlow(start int) (string, error) {
	var sb strings.Builder
	sb.WriteString(p.src[start:p.i])
	for p.i < len(p.src) {
		c := p.src[p.i]
		switch {
		case c == '"':
			p.i++
			return strings.ToValidUTF8(sb.String(), "\uFFFD"), nil
		case c < 0x20:
			return "", errBadJSON
		case c != '\\':
			sb.WriteByte(c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.src) {
			return "", errBadJSON
		}
		e := p.src[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			sb.WriteByte(e)
		case 'b':
			sb.WriteByte('\b')
		case 'f':
			sb.WriteByte('\f')
		case 'n':
			sb.WriteByte('\n')
		case 'r':
			sb.WriteByte('\r')
		case 't':
			sb.WriteByte('\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", errBadJSON
			}
			if utf16.IsSurrogate(r) {
				if strings.HasPrefix(p.src[p.i:], `\u`) {
					save := p.i
					p.i += 2
					r2, ok := p.hex4()
					if ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							sb.WriteRune(dec)
							continue
						}
					}
					p.i = save
				}
				r = utf8.RuneError
			}
			sb.WriteRune(r)
		default:
			return "", errBadJSON
		}
	}
	return "", errBadJSON
}

func (p *parser) hex4() (rune, bool) {
	if p.i+4 > len(p.src) {
		return 0, false
	}
	n, err := strconv.ParseUint(p.src[p.i:p.i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

func (p *parser) array(depth int) (value, error) {
	p.i++
	v := value{kind: kArray}
	p.ws()
	if p.i < len(p.src) && p.src[p.i] == ']' {
		p.i++
		return v, nil
	}
	mark := len(p.stack)
	defer func() { p.stack = p.stack[:mark] }()
	for {
		p.ws()
		el, err := p.value(depth + 1)
		if err != nil {
			return value{}, err
		}
		p.stack = append(p.stack, el)
		p.ws()
		if p.i >= len(p.src) {
			return value{}, errBadJSON
		}
		switch p.src[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			v.vals = p.carveVals(p.stack[mark:])
			return v, nil
		default:
			return value{}, errBadJSON
		}
	}
}

func (p *parser) object(depth int) (value, error) {
	p.i++
	v := value{kind: kObject}
	p.ws()
	if p.i < len(p.src) && p.src[p.i] == '}' {
		p.i++
		return v, nil
	}
	mark, kmark := len(p.stack), len(p.keyStack)
	defer func() { p.stack, p.keyStack = p.stack[:mark], p.keyStack[:kmark] }()
	for {
		p.ws()
		if p.i >= len(p.src) || p.src[p.i] != '"' {
			return value{}, errBadJSON
		}
		k, err := p.str()
		if err != nil {
			return value{}, err
		}
		p.ws()
		if p.i >= len(p.src) || p.src[p.i] != ':' {
			return value{}, errBadJSON
		}
		p.i++
		p.ws()
		el, err := p.value(depth + 1)
		if err != nil {
			return value{}, err
		}
		// A duplicate key keeps its last value, as encoding/json does.
		if j := indexKey(p.keyStack[kmark:], k); j >= 0 {
			p.stack[mark+j] = el
		} else {
			p.keyStack = append(p.keyStack, k)
			p.stack = append(p.stack, el)
		}
		p.ws()
		if p.i >= len(p.src) {
			return value{}, errBadJSON
		}
		switch p.src[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			v.keys = p.carveKeys(p.keyStack[kmark:])
			v.vals = p.carveVals(p.stack[mark:])
			return v, nil
		default:
			return value{}, errBadJSON
		}
	}
}

// indexKey finds k in keys; objects in API responses are small, so a linear
// scan beats building a map.
func indexKey(keys []string, k string) int {
	for i, x := range keys {
		if x == k {
			return i
		}
	}
	return -1
}

// field returns the value of key k of an object.
func (v *value) field(k string) (*value, bool) {
	if v.kind != kObject {
		return nil, false
	}
	if j := indexKey(v.keys, k); j >= 0 {
		return &v.vals[j], true
	}
	return nil, false
}

// appendJSON writes v as JSON. With sorted, object keys are sorted so two
// documents that differ only in key order serialise identically; indent > 0
// pretty-prints with that many spaces per level.
func appendJSON(dst []byte, v *value, sorted bool, indent, level int) []byte {
	nl := func(dst []byte, lv int) []byte {
		if indent <= 0 {
			return dst
		}
		dst = append(dst, '\n')
		for i := 0; i < lv*indent; i++ {
			dst = append(dst, ' ')
		}
		return dst
	}
	switch v.kind {
	case kNull:
		return append(dst, "null"...)
	case kBool:
		return strconv.AppendBool(dst, v.b)
	case kNumber:
		return append(dst, v.s...)
	case kString:
		return appendQuoted(dst, v.s)
	case kArray:
		if len(v.vals) == 0 {
			return append(dst, "[]"...)
		}
		dst = append(dst, '[')
		for i := range v.vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = nl(dst, level+1)
			dst = appendJSON(dst, &v.vals[i], sorted, indent, level+1)
		}
		dst = nl(dst, level)
		return append(dst, ']')
	}
	if len(v.keys) == 0 {
		return append(dst, "{}"...)
	}
	order := make([]int, len(v.keys))
	for i := range order {
		order[i] = i
	}
	if sorted {
		sort.Slice(order, func(a, b int) bool { return v.keys[order[a]] < v.keys[order[b]] })
	}
	dst = append(dst, '{')
	for n, i := range order {
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = nl(dst, level+1)
		dst = appendQuoted(dst, v.keys[i])
		dst = append(dst, ':')
		if indent > 0 {
			dst = append(dst, ' ')
		}
		dst = appendJSON(dst, &v.vals[i], sorted, indent, level+1)
	}
	dst = nl(dst, level)
	return append(dst, '}')
}

const hexDigits = "0123456789abcdef"

// appendQuoted writes s as a JSON string.
func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			dst = append(dst, c)
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		i++
	}
	return append(dst, '"')
}

// short renders v compactly for a difference report, cut at max bytes.
func short(v *value, max int) string {
	if v == nil {
		return ""
	}
	var b []byte
	switch v.kind {
	case kString, kNumber, kBool, kNull:
		b = appendJSON(nil, v, false, 0, 0)
	default:
		b = appendJSON(nil, v, true, 0, 0)
	}
	if len(b) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		return string(b[:cut]) + "…"
	}
	return string(b)
}
