package shadow

import (
	"net/textproto"
	"strings"
)

// Describe says a difference in plain words for people: "body differs",
// "header Content-Type differs", "array has extra items at /items",
// "value differs at /0/price". JSON and YAML keep the typed Path and Type;
// this is what tables, the demo and the report show.
func Describe(d Difference) string {
	if d.Type == DiffSideEffect {
		return SideEffectText(d)
	}
	if strings.HasPrefix(d.Path, "@line/") {
		n := strings.TrimPrefix(d.Path, "@line/")
		switch d.Type {
		case DiffMissing:
			return "text line " + n + " missing"
		case DiffExtra:
			return "extra text line after line " + n
		}
		return "text line " + n + " differs"
	}
	if d.Type == DiffSize && d.Legacy != "" && d.Candidate != "" {
		if len(d.Candidate) > len(d.Legacy) || len(d.Candidate) == len(d.Legacy) && d.Candidate > d.Legacy {
			return "array has extra items at " + PointerText(d.Path)
		}
		return "array is missing items at " + PointerText(d.Path)
	}
	return describe(d.Path, d.Type)
}

// DescribeSignature says a difference class (a signature such as
// "/*/price value" or "@header/content-type content-type") in plain words.
func DescribeSignature(sig string) string {
	path, typ := SplitSignature(sig)
	if typ == "" {
		return sig
	}
	return describe(path, typ)
}

func describe(path, typ string) string {
	switch {
	case path == "@status":
		return "status differs"
	case strings.HasPrefix(path, "@call/"):
		return "side effect " + strings.TrimPrefix(path, "@call/") + " differs"
	case path == "@body":
		switch typ {
		case DiffEncoding:
			return "body cannot be decoded (Content-Encoding)"
		case DiffInvalidJSON:
			return "body is not valid JSON"
		}
		return "body differs"
	case path == "@text":
		switch typ {
		case DiffMissing:
			return "text lines missing"
		case DiffExtra:
			return "extra text lines"
		}
		return "text line differs"
	case strings.HasPrefix(path, "@header/"):
		name := textproto.CanonicalMIMEHeaderKey(strings.TrimPrefix(path, "@header/"))
		switch typ {
		case DiffMissing:
			return "header " + name + " missing"
		case DiffExtra:
			return "extra header " + name
		}
		return "header " + name + " differs"
	}
	if typ == DiffInvalidJSON {
		return "body is not valid JSON"
	}
	parent, last := path, ""
	if i := strings.LastIndexByte(path, '/'); i >= 0 {
		parent, last = path[:i], path[i+1:]
	}
	item := last == "*" || last != "" && strings.Trim(last, "0123456789") == ""
	switch typ {
	case DiffValue:
		return "value differs at " + PointerText(path)
	case DiffType:
		return "JSON type differs at " + PointerText(path)
	case DiffMissing:
		if item {
			return "array is missing items at " + PointerText(parent)
		}
		return "field missing at " + PointerText(path)
	case DiffExtra:
		if item {
			return "array has extra items at " + PointerText(parent)
		}
		return "extra field at " + PointerText(path)
	case DiffSize:
		return "array length differs at " + PointerText(path)
	case DiffOrder:
		return "array order differs at " + PointerText(path)
	case DiffStatus:
		return "status differs"
	case DiffBody:
		return "body differs"
	}
	return typ + " differs at " + PointerText(path)
}

// PointerText shows a JSON pointer into a body: "(root)" for the whole
// document, where the pointer itself is the empty string.
func PointerText(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}
