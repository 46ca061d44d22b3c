// Package configfile decodes the YAML and JSON files migrate reads (the
// strangler config) strictly, with errors people can act on: the line and
// column, the key path ("services.orders.shadow.wirtes"), and for an
// unknown key the known key it most likely meant. The decoding itself stays
// sigs.k8s.io/yaml (YAML to JSON, then encoding/json with the json tags);
// this package walks the YAML node tree against the Go type first, so a
// mistake is reported where it is instead of as "error unmarshaling JSON".
package configfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v4"
	sigsyaml "sigs.k8s.io/yaml"
)

// Error is a mistake in a config file, with where it is.
type Error struct {
	// Line and Column are 1-based; 0 when the position is not known.
	Line, Column int
	// Path is the key path, e.g. services.orders.routes[1]; "" for the
	// document itself.
	Path string
	// Msg says what is wrong and, when it can, what to write instead.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", e.Line, e.Column)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// In names the file: "strangler.yaml:12:5: services.orders...: msg".
func (e *Error) In(file string) string {
	if e.Line > 0 {
		return file + ":" + e.Error()
	}
	return file + ": " + e.Error()
}

// AllowsOtherKeys is implemented by types whose block may hold keys beyond
// their own fields, decoded elsewhere (a candidate's Wasm options).
type AllowsOtherKeys interface{ AllowsOtherKeys() bool }

var (
	unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
	otherKeysType   = reflect.TypeFor[AllowsOtherKeys]()
)

// Doc is a parsed document, for finding where a key path is.
type Doc struct{ root *yaml.Node }

// Parse reads the YAML (or JSON) text into a node tree.
func Parse(data []byte) (*Doc, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		var le *yaml.LoadError
		if errors.As(err, &le) {
			return nil, &Error{Line: le.Mark.Line, Column: le.Mark.Column, Msg: "not valid YAML: " + le.Message}
		}
		return nil, &Error{Msg: "not valid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	root := &n
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	return &Doc{root: root}, nil
}

// Decode checks data against v's type and decodes it into v. Unknown keys
// are errors (with a suggestion), as are values of the wrong kind. The
// parsed document is returned too, to place errors found later (Position).
func Decode(data []byte, v any) (*Doc, error) {
	doc, err := Parse(data)
	if err != nil {
		return nil, err
	}
	if err := doc.Check(reflect.TypeOf(v)); err != nil {
		return nil, err
	}
	if err := sigsyaml.UnmarshalStrict(data, v); err != nil {
		// The walk above mirrors the decoder; whatever it did not catch
		// is still reported, in the decoder's words without its wrapping.
		return nil, &Error{Msg: cleanDecodeError(err)}
	}
	return doc, nil
}

// Check walks the document against type t and returns the first mistake.
func (d *Doc) Check(t reflect.Type) error {
	w := &walker{}
	return w.check(d.root, t, "")
}

// CheckTypes is Check for documents that may hold keys a newer version
// wrote (an inventory): unknown keys are skipped, wrong values reported.
func (d *Doc) CheckTypes(t reflect.Type) error {
	w := &walker{lenient: true}
	return w.check(d.root, t, "")
}

// CheckAt checks the block at a key path against type t, as Check does
// for the whole document; a path the document lacks is no mistake.
func (d *Doc) CheckAt(path string, t reflect.Type) error {
	n := d.node(path, false)
	if n == nil {
		return nil
	}
	w := &walker{}
	return w.check(n, t, path)
}

// Position finds the node at a key path ("services.orders.routes[1]"), and
// returns its line and column, or 0, 0. For a key it is the key's own place.
func (d *Doc) Position(path string) (line, col int) {
	n := d.node(path, true)
	if n == nil {
		return 0, 0
	}
	return n.Line, n.Column
}

// node finds the value at a key path; with key, a mapping key's own node
// instead of its value when the path ends at it.
func (d *Doc) node(path string, key bool) *yaml.Node {
	n := d.root
	for path != "" && n != nil {
		n = resolve(n)
		if strings.HasPrefix(path, `["`) {
			q, err := strconv.QuotedPrefix(path[1:])
			key, uerr := strconv.Unquote(q)
			if err != nil || uerr != nil || n.Kind != yaml.MappingNode || !strings.HasPrefix(path[1+len(q):], "]") {
				return nil
			}
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == key {
					next = n.Content[i+1]
				}
			}
			if next == nil {
				return nil
			}
			n, path = next, strings.TrimPrefix(path[2+len(q):], ".")
			continue
		}
		if strings.HasPrefix(path, "[") {
			end := strings.IndexByte(path, ']')
			i, err := strconv.Atoi(path[1:max(end, 1)])
			if end < 0 || err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return nil
			}
			n, path = n.Content[i], strings.TrimPrefix(path[end+1:], ".")
			continue
		}
		if n.Kind != yaml.MappingNode {
			return nil
		}
		// Map keys may hold dots (a service called "order.v2"): take
		// the longest key that the path starts with.
		var next *yaml.Node
		best := -1
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if k == path || strings.HasPrefix(path, k+".") || strings.HasPrefix(path, k+"[") {
				if len(k) > best {
					best, next = len(k), n.Content[i+1]
					if k == path && key {
						next = n.Content[i] // the key itself: where people look
					}
				}
			}
		}
		if next == nil {
			return nil
		}
		n, path = next, strings.TrimPrefix(path[best:], ".")
	}
	return n
}

// maxDepth bounds the walk: configs are shallow, and a recursive type (a
// gate's per-route gates) must not follow a hostile document forever.
const maxDepth = 64

// maxVisits bounds the values the walk looks at: aliases of aliases can
// make a short document expand to billions of values.
const maxVisits = 100_000

type walker struct {
	depth, visits int
	lenient       bool // unknown keys are not errors
}

func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxDepth; i++ {
		n = n.Alias
	}
	return n
}

// isNull is an empty value: null, ~, nothing, or a document of comments.
func isNull(n *yaml.Node) bool {
	return n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.Tag == "!!null") ||
		(n.Kind == yaml.DocumentNode && len(n.Content) == 0)
}

func (w *walker) check(n *yaml.Node, t reflect.Type, path string) error {
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		return nil
	}
	w.depth++
	w.visits++
	defer func() { w.depth-- }()
	if w.visits > maxVisits {
		return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf("the document expands to more than %d values (aliases of aliases?)", maxVisits)}
	}
	if w.depth > maxDepth {
		return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: "nested too deeply"}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if isNull(n) {
		return nil // an empty value leaves the field at its default
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// The type reads itself. Its keys are checked first (for the
		// suggestion); then this block alone is decoded exactly as the
		// decoder will, to place any other complaint here.
		if t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode && !reflect.PointerTo(t).Implements(otherKeysType) {
			if err := w.checkStruct(n, t, path, true); err != nil {
				return err
			}
		}
		if err := decodeNode(n, t); err != nil {
			return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: err.Error()}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return w.kindError(n, path, "a block of keys")
		}
		return w.checkStruct(n, t, path, false)
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return w.kindError(n, path, "a block of keys")
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := resolve(n.Content[i]), n.Content[i+1]
			if k == nil {
				continue
			}
			if first, dup := seen[k.Value]; dup {
				return &Error{Line: k.Line, Column: k.Column, Path: join(path, k.Value), Msg: fmt.Sprintf("set twice (first on line %d)", first)}
			}
			seen[k.Value] = k.Line
			if err := w.check(v, t.Elem(), join(path, k.Value)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // json.RawMessage and []byte take anything
		}
		if n.Kind != yaml.SequenceNode {
			return w.kindError(n, path, "a list")
		}
		for i, item := range n.Content {
			if err := w.check(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Interface:
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return w.kindError(n, path, want(t))
	}
	if err := decodeNode(n, t); err != nil {
		return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf("%q is not %s", n.Value, want(t))}
	}
	return nil
}

// checkStruct checks a block's keys against t's fields and, unless keysOnly
// (a type that decodes its own fields), each value against its field.
func (w *walker) checkStruct(n *yaml.Node, t reflect.Type, path string, keysOnly bool) error {
	fields := jsonFields(t)
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil {
			continue
		}
		key := k.Value
		if key == "<<" {
			continue // a YAML merge key: its keys are checked where they are defined
		}
		field, ok := fields[key]
		if !ok {
			// encoding/json matches names regardless of case.
			for name, f := range fields {
				if strings.EqualFold(name, key) {
					field, ok = f, true
					break
				}
			}
		}
		if !ok && w.lenient {
			continue
		}
		if !ok {
			msg := "unknown key"
			if near := Nearest(key, names); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			} else {
				msg += "; known keys: " + strings.Join(names, ", ")
			}
			return &Error{Line: k.Line, Column: k.Column, Path: join(path, key), Msg: msg}
		}
		if first, dup := seen[strings.ToLower(key)]; dup {
			return &Error{Line: k.Line, Column: k.Column, Path: join(path, key), Msg: fmt.Sprintf("set twice (first on line %d)", first)}
		}
		seen[strings.ToLower(key)] = k.Line
		if keysOnly {
			continue
		}
		if err := w.check(v, field.Type, join(path, key)); err != nil {
			return err
		}
	}
	return nil
}

func (w *walker) kindError(n *yaml.Node, path, wanted string) error {
	got := "a value"
	switch n.Kind {
	case yaml.MappingNode:
		got = "a block of keys"
	case yaml.SequenceNode:
		got = "a list"
	case yaml.ScalarNode:
		got = strconv.Quote(n.Value)
	}
	return &Error{Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf("want %s, found %s", wanted, got)}
}

// jsonFields are the keys encoding/json reads into struct type t, with
// embedded structs' fields promoted.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	out := map[string]reflect.StructField{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range jsonFields(ft) {
					if _, ok := out[k]; !ok {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f
	}
	return out
}

// decodeNode decodes one node into a new value of type t the way the real
// decoder does: the node as YAML, converted to JSON, read by encoding/json.
func decodeNode(n *yaml.Node, t reflect.Type) error {
	budget := maxVisits
	flat, err := expand(n, &budget, 0)
	if err != nil {
		return err
	}
	text, err := yaml.Marshal(flat)
	if err != nil {
		return err
	}
	js, err := sigsyaml.YAMLToJSON(text)
	if err != nil {
		return errors.New(cleanDecodeError(err))
	}
	if err := json.Unmarshal(js, reflect.New(t).Interface()); err != nil {
		return errors.New(cleanDecodeError(err))
	}
	return nil
}

// expand copies a subtree with its aliases replaced by what they refer to:
// marshaled alone, an alias to an anchor outside the subtree would not
// resolve. budget bounds the copy, as aliases of aliases can make it huge.
func expand(n *yaml.Node, budget *int, depth int) (*yaml.Node, error) {
	n = resolve(n)
	if n == nil || n.Kind == yaml.AliasNode {
		return nil, errors.New("an alias refers to nothing")
	}
	*budget--
	if *budget < 0 || depth > maxDepth {
		return nil, fmt.Errorf("the block expands to more than %d values (aliases of aliases?)", maxVisits)
	}
	c := *n
	c.Anchor = ""
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, sub := range n.Content {
		e, err := expand(sub, budget, depth+1)
		if err != nil {
			return nil, err
		}
		c.Content[i] = e
	}
	return &c, nil
}

// want names what a value of type t is written as.
func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string (quote it)"
	}
	return "a value"
}

// cleanDecodeError strips the layers sigs.k8s.io/yaml and encoding/json
// wrap around a message.
func cleanDecodeError(err error) string {
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "json: ", "yaml: "} {
		msg = strings.ReplaceAll(msg, p, "")
	}
	return msg
}

// plainKey is a key written bare in a key path; any other is quoted in
// brackets: gate.routes["GET /api/order"].
var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Join appends a key to a key path, as the errors write it.
func Join(path, key string) string { return join(path, key) }

func join(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}
