package analyze

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// refDocs reads and parses the documents that $refs name, each once, through
// the same reader (and so the same limits and host rules) as kin-openapi's
// loader.
type refDocs struct {
	root *url.URL // where the root document was read from; nil when unknown
	read func(*url.URL) ([]byte, error)
	docs map[string]any
	errs map[string]error
}

func newRefDocs(root *url.URL, rootTree any, read func(*url.URL) ([]byte, error)) *refDocs {
	d := &refDocs{root: root, read: read, docs: map[string]any{}, errs: map[string]error{}}
	d.docs[docKey(root)] = rootTree
	return d
}

// docKey names a document: its URL without the fragment.
func docKey(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// load returns the parsed document at u (fragment ignored).
func (d *refDocs) load(u *url.URL) (any, error) {
	key := docKey(u)
	if tree, ok := d.docs[key]; ok {
		return tree, nil
	}
	if err, ok := d.errs[key]; ok {
		return nil, err
	}
	tree, err := d.fetch(u)
	if err != nil {
		d.errs[key] = err
		return nil, err
	}
	d.docs[key] = tree
	return tree, nil
}

func (d *refDocs) fetch(u *url.URL) (any, error) {
	c := *u
	c.Fragment, c.RawFragment = "", ""
	data, err := d.read(&c)
	if err != nil {
		return nil, err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %s", oneLine(err.Error()))
	}
	var tree any
	if err := json.Unmarshal(js, &tree); err != nil {
		return nil, fmt.Errorf("not valid JSON: %s", oneLine(err.Error()))
	}
	return tree, nil
}

// target resolves ref, as written in the document at base, to an absolute URL.
func (d *refDocs) target(base *url.URL, ref string) (*url.URL, error) {
	r, err := url.Parse(ref)
	if err != nil {
		return nil, fmt.Errorf("not a valid reference")
	}
	if base == nil {
		if r.Scheme != "" || r.Host != "" || r.Path != "" {
			return nil, fmt.Errorf("external $refs are only followed in documents read from a file or URL")
		}
		return r, nil
	}
	return base.ResolveReference(r), nil
}

// name is how a document is called in a message: its path relative to the
// root document's directory, or its URL when it is on another host.
func (d *refDocs) name(u *url.URL) string {
	if d.root == nil || docKey(u) == docKey(d.root) {
		return "the document"
	}
	if u.Scheme == d.root.Scheme && u.Host == d.root.Host {
		if rel, ok := relPath(path.Dir(d.root.Path), u.Path); ok {
			return rel
		}
	}
	return docKey(u)
}

// relPath is filepath.Rel for slash paths.
func relPath(dir, p string) (string, bool) {
	dirs := strings.Split(strings.Trim(dir, "/"), "/")
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if dir == "/" {
		dirs = nil
	}
	i := 0
	for i < len(dirs) && i < len(parts)-1 && dirs[i] == parts[i] {
		i++
	}
	up := len(dirs) - i
	if up > 3 {
		return "", false
	}
	return strings.Repeat("../", up) + strings.Join(parts[i:], "/"), true
}

// pointer follows a JSON pointer (a $ref's fragment) into tree.
func pointer(tree any, fragment string) (any, bool) {
	if fragment == "" {
		return tree, true
	}
	if !strings.HasPrefix(fragment, "/") {
		return nil, false
	}
	cur := tree
	for _, tok := range strings.Split(fragment[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := cur.(type) {
		case map[string]any:
			v, ok := n[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil, false
			}
			cur = n[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// brokenRefs checks every $ref in the root document and in every document
// it reaches, and describes each one that cannot be followed: the file it is
// in, where in that file, what it names and what is missing. kin-openapi
// stops at the first with a message in its own terms ("failed to resolve
// "X" in fragment in URI"), which tells a user neither where nor why.
func (d *refDocs) brokenRefs() []Problem {
	var out []Problem
	walked := map[string]bool{}
	queue := []*url.URL{d.root} // nil: the root, read from no file or URL
	for len(queue) > 0 {
		base := queue[0]
		queue = queue[1:]
		if walked[docKey(base)] {
			continue
		}
		walked[docKey(base)] = true
		walkRefs(d.docs[docKey(base)], nil, func(at []string, ref string) {
			loc := dotted(at)
			if docKey(base) != docKey(d.root) {
				loc = d.name(base) + "#" + loc
			}
			problem := func(format string, args ...any) {
				out = append(out, Problem{Location: loc, Message: fmt.Sprintf("$ref %q: ", ref) + fmt.Sprintf(format, args...), Kind: ProblemBrokenRef})
			}
			u, err := d.target(base, ref)
			if err != nil {
				problem("%v", err)
				return
			}
			doc, err := d.load(u)
			if err != nil {
				problem("cannot read %s: %s", d.name(u), oneLine(err.Error()))
				return
			}
			if _, ok := pointer(doc, u.Fragment); !ok {
				problem("%s has no %s", d.name(u), missingPart(doc, u.Fragment))
				return
			}
			queue = append(queue, u)
		})
	}
	return out
}

// missingPart names the first step of fragment that tree lacks, with the
// path that does exist: `"tagParam" at its top level` or `/components/schemas/NoSuch`.
func missingPart(tree any, fragment string) string {
	if !strings.HasPrefix(fragment, "/") {
		return fmt.Sprintf("%q (a fragment must be a JSON pointer starting with /)", fragment)
	}
	toks := strings.Split(fragment[1:], "/")
	for i := range toks {
		if _, ok := pointer(tree, "/"+strings.Join(toks[:i+1], "/")); !ok {
			if i == 0 {
				return fmt.Sprintf("%q at its top level", toks[i])
			}
			return fmt.Sprintf("%q under /%s", toks[i], strings.Join(toks[:i], "/"))
		}
	}
	return fragment
}

// walkRefs calls fn with the location and value of every $ref in tree, in a
// stable order.
func walkRefs(tree any, at []string, fn func(at []string, ref string)) {
	switch n := tree.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			fn(at, ref)
		}
		for _, k := range sortedKeys(n) {
			if k != "$ref" {
				walkRefs(n[k], append(at, k), fn)
			}
		}
	case []any:
		for i, v := range n {
			walkRefs(v, append(at, "["+strconv.Itoa(i)+"]"), fn)
		}
	}
}

// dotted renders a location the way validation problems are written:
// paths./pets.get.parameters[0].
func dotted(at []string) string {
	if len(at) == 0 {
		return "document"
	}
	var b strings.Builder
	for i, s := range at {
		if i > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// swaggerSection is where a bundled Swagger 2 $ref target goes, by what the
// reference stands for.
type swaggerSection string

const (
	sectionDefinitions swaggerSection = "definitions"
	sectionParameters  swaggerSection = "parameters"
	sectionResponses   swaggerSection = "responses"
)

// bundleSwagger2 copies every target of an external $ref into the root
// document's definitions, parameters or responses and points the $ref
// there. kin-openapi converts Swagger 2 to OpenAPI 3 on the root document
// only: a parameter or response that lives in another file is loaded as if
// it were already OpenAPI 3, so a valid multi-file document fails validation
// ("parameter must contain exactly one of content and schema"). Bundled, the
// converter sees every object in its 2.0 shape. Callers check brokenRefs
// first: a target that cannot be read is left as it was.
func (d *refDocs) bundleSwagger2() map[string]any {
	root, _ := d.docs[docKey(d.root)].(map[string]any)
	if root == nil || d.root == nil {
		return root
	}
	b := &swaggerBundle{docs: d, root: root, names: map[string]string{}}
	if paths, ok := root["paths"].(map[string]any); ok {
		for _, p := range sortedKeys(paths) {
			item, ok := paths[p].(map[string]any)
			if !ok || item["$ref"] != nil {
				continue // a path item in another file is not a section's object
			}
			for _, k := range sortedKeys(item) {
				switch {
				case k == "parameters":
					item[k] = b.each(item[k], d.root, sectionParameters)
				case slices.Contains(methodOrder, strings.ToUpper(k)):
					op, ok := item[k].(map[string]any)
					if !ok {
						continue
					}
					for _, ok := range sortedKeys(op) {
						switch ok {
						case "parameters":
							op[ok] = b.each(op[ok], d.root, sectionParameters)
						case "responses":
							op[ok] = b.each(op[ok], d.root, sectionResponses)
						}
					}
				}
			}
		}
	}
	for _, s := range []swaggerSection{sectionDefinitions, sectionParameters, sectionResponses} {
		if sec, ok := root[string(s)].(map[string]any); ok {
			for _, k := range sortedKeys(sec) {
				sec[k] = b.walk(sec[k], d.root, s)
			}
		}
	}
	return root
}

type swaggerBundle struct {
	docs  *refDocs
	root  map[string]any
	names map[string]string // target URL → its local $ref
}

// each walks the items of a list or the values of a map as objects of kind.
func (b *swaggerBundle) each(node any, base *url.URL, kind swaggerSection) any {
	switch n := node.(type) {
	case []any:
		for i := range n {
			n[i] = b.walk(n[i], base, kind)
		}
	case map[string]any:
		for _, k := range sortedKeys(n) {
			n[k] = b.walk(n[k], base, kind)
		}
	}
	return node
}

// walk rewrites the $refs in node, an object of kind written in the document
// at base. Inside a parameter or a response only `schema` holds schemas.
func (b *swaggerBundle) walk(node any, base *url.URL, kind swaggerSection) any {
	switch n := node.(type) {
	case map[string]any:
		if ref, ok := n["$ref"].(string); ok {
			return b.ref(n, ref, base, kind)
		}
		for _, k := range sortedKeys(n) {
			switch {
			case kind == sectionDefinitions:
				n[k] = b.walk(n[k], base, sectionDefinitions)
			case k == "schema":
				n[k] = b.walk(n[k], base, sectionDefinitions)
			}
		}
	case []any:
		if kind == sectionDefinitions {
			for i := range n {
				n[i] = b.walk(n[i], base, kind)
			}
		}
	}
	return node
}

// ref turns a $ref that leaves the root document into one inside it.
func (b *swaggerBundle) ref(node map[string]any, ref string, base *url.URL, kind swaggerSection) any {
	u, err := b.docs.target(base, ref)
	if err != nil {
		return node
	}
	if docKey(u) == docKey(b.docs.root) {
		if base == b.docs.root {
			return node
		}
		return map[string]any{"$ref": "#" + u.Fragment}
	}
	if local, ok := b.names[u.String()]; ok {
		return map[string]any{"$ref": local}
	}
	doc, err := b.docs.load(u)
	if err != nil {
		return node
	}
	target, ok := pointer(doc, u.Fragment)
	if !ok {
		return node
	}
	sec, _ := b.root[string(kind)].(map[string]any)
	if sec == nil {
		sec = map[string]any{}
		b.root[string(kind)] = sec
	}
	name := uniqueName(sec, refName(u))
	local := "#/" + string(kind) + "/" + strings.ReplaceAll(strings.ReplaceAll(name, "~", "~0"), "/", "~1")
	b.names[u.String()] = local
	sec[name] = nil // reserved before the walk, so a cycle finds it
	sec[name] = b.walk(deepCopy(target), u, kind)
	return map[string]any{"$ref": local}
}

// refName is the name a bundled target gets: the last step of its pointer,
// or its file's name without the extension.
func refName(u *url.URL) string {
	if i := strings.LastIndex(u.Fragment, "/"); i >= 0 && i < len(u.Fragment)-1 {
		return strings.ReplaceAll(strings.ReplaceAll(u.Fragment[i+1:], "~1", "/"), "~0", "~")
	}
	base := path.Base(u.Path)
	if ext := path.Ext(base); ext != "" && ext != base {
		base = strings.TrimSuffix(base, ext)
	}
	return base
}

func uniqueName(sec map[string]any, name string) string {
	if _, taken := sec[name]; !taken {
		return name
	}
	for i := 2; ; i++ {
		n := name + strconv.Itoa(i)
		if _, taken := sec[n]; !taken {
			return n
		}
	}
}

// deepCopy copies a parsed JSON tree, so that rewriting a bundled target's
// $refs does not change the document it was read from.
func deepCopy(v any) any {
	switch n := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(n))
		for k, e := range n {
			c[k] = deepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(n))
		for i, e := range n {
			c[i] = deepCopy(e)
		}
		return c
	}
	return v
}
