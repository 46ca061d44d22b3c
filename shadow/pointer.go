package shadow

import (
	"fmt"
	"strconv"
	"strings"
)

// pattern is a parsed JSON pointer whose segments may be "*" (any one
// segment). The empty pattern is the document root.
type pattern []string

// parsePattern accepts RFC 6901 pointers ("/items/*/price") and the
// JSONPath-like spelling people paste from other tools ("$.items[*].price",
// "$" for the root). Surrounding whitespace is dropped as a typo; a key
// that really starts or ends with a space is what exactPattern reaches.
func parsePattern(s string) (pattern, error) {
	return exactPattern(strings.TrimSpace(s))
}

// exactPattern parses s as it is, every byte part of a segment.
func exactPattern(s string) (pattern, error) {
	switch {
	case s == "" || s == "$" || s == "/":
		// "/" strictly names the key "" at the root; everyone who writes it
		// means the root itself, so that is what it means here.
		return pattern{}, nil
	case strings.HasPrefix(s, "$"):
		return parseDollar(s)
	case strings.HasPrefix(s, "/"):
		parts := strings.Split(s[1:], "/")
		for i, p := range parts {
			parts[i] = unescapeSegment(p)
		}
		return pattern(parts), nil
	}
	return nil, fmt.Errorf("shadow: %q is not a JSON pointer: write it like \"/items/*/price\" or \"$.items[*].price\"", s)
}

func parseDollar(s string) (pattern, error) {
	var out pattern
	rest := s[1:]
	for rest != "" {
		switch rest[0] {
		case '.':
			rest = rest[1:]
			end := strings.IndexAny(rest, ".[")
			if end < 0 {
				end = len(rest)
			}
			if end == 0 {
				return nil, fmt.Errorf("shadow: %q: empty segment (recursive \"..\" is not supported)", s)
			}
			out = append(out, rest[:end])
			rest = rest[end:]
		case '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return nil, fmt.Errorf("shadow: %q: missing \"]\"", s)
			}
			seg := strings.Trim(rest[1:end], `'"`)
			out = append(out, seg)
			rest = rest[end+1:]
		default:
			return nil, fmt.Errorf("shadow: %q: expected \".\" or \"[\" after %q", s, s[:len(s)-len(rest)])
		}
	}
	return out, nil
}

func unescapeSegment(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~1", "/"), "~0", "~")
}

func escapeSegment(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// matches reports whether the concrete path segs is matched by p.
func (p pattern) matches(segs []string) bool {
	if len(p) != len(segs) {
		return false
	}
	for i := len(p) - 1; i >= 0; i-- { // leaves differ most, so test them first
		if p[i] != "*" && p[i] != segs[i] {
			return false
		}
	}
	return true
}

// String writes the pattern as a JSON pointer.
func (p pattern) String() string {
	return pointer(p)
}

// pointer joins segments into an RFC 6901 pointer.
func pointer(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	n := 0
	for _, s := range segs {
		n += len(s) + 1
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(escapeSegment(s))
	}
	return b.String()
}

// generalPointer is pointer with array indices replaced by "*", so that the
// same field of every element shares one signature and one noise entry.
func generalPointer(segs []string, isIndex []bool) string {
	if len(segs) == 0 {
		return ""
	}
	var b strings.Builder
	for i, s := range segs {
		b.WriteByte('/')
		if isIndex[i] {
			b.WriteByte('*')
		} else {
			b.WriteString(escapeSegment(s))
		}
	}
	return b.String()
}

// indexNames avoids an allocation per array element while walking.
var indexNames = func() [1024]string {
	var a [1024]string
	for i := range a {
		a[i] = strconv.Itoa(i)
	}
	return a
}()

func indexName(i int) string {
	if i < len(indexNames) {
		return indexNames[i]
	}
	return strconv.Itoa(i)
}
