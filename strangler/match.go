package strangler

import (
	"fmt"
	"sort"
	"strings"
)

// Matcher finds the route for a request by method and OpenAPI path
// template. It is compiled once per config into a segment tree, so a match
// costs a few map lookups whatever the table size. Literal segments beat
// {params} at every depth ("GET /api/order/latest" wins over
// "GET /api/order/{id}"), and a matcher is immutable: safe for concurrent use.
type Matcher struct {
	roots map[string]*node
	names []string
}

type node struct {
	literals map[string]*node
	partials []*partial // segments like "{file}.json", longest literal part first
	param    *node      // a whole-segment {param}
	leaf     int        // route index ending here, or -1
}

type partial struct {
	prefix, suffix string
	next           *node
}

type segment struct {
	literal        string
	param          bool
	prefix, suffix string // for partial params
}

func parseSegment(seg string) (segment, error) {
	open := strings.IndexByte(seg, '{')
	if open < 0 {
		if strings.IndexByte(seg, '}') >= 0 {
			return segment{}, fmt.Errorf("segment %q has } without {", seg)
		}
		return segment{literal: seg}, nil
	}
	end := strings.IndexByte(seg, '}')
	if end < open {
		return segment{}, fmt.Errorf("segment %q has an unclosed {", seg)
	}
	if end == open+1 {
		return segment{}, fmt.Errorf("segment %q has an empty {} parameter", seg)
	}
	if strings.ContainsAny(seg[end+1:], "{}") || strings.ContainsAny(seg[open+1:end], "{") {
		return segment{}, fmt.Errorf("segment %q: one {param} per path segment", seg)
	}
	if open == 0 && end == len(seg)-1 {
		return segment{param: true}, nil
	}
	return segment{param: true, prefix: seg[:open], suffix: seg[end+1:]}, nil
}

func newNode() *node { return &node{leaf: -1} }

// NewMatcher compiles route names ("METHOD /path/template"). Route i of the
// result is names[i]. Two templates that match exactly the same requests
// (e.g. /a/{id} and /a/{name}) are an error.
func NewMatcher(names []string) (*Matcher, error) {
	m := &Matcher{roots: map[string]*node{}, names: append([]string(nil), names...)}
	for i, name := range names {
		if err := ValidateRouteName(name); err != nil {
			return nil, err
		}
		method, path, _ := SplitRouteName(name)
		n := m.roots[method]
		if n == nil {
			n = newNode()
			m.roots[method] = n
		}
		for _, raw := range strings.Split(path[1:], "/") {
			seg, _ := parseSegment(raw)
			n = n.child(seg)
		}
		if n.leaf >= 0 {
			return nil, fmt.Errorf("route %q matches the same requests as %q; keep one", name, names[n.leaf])
		}
		n.leaf = i
	}
	for _, r := range m.roots {
		r.sortPartials()
	}
	return m, nil
}

func (n *node) child(s segment) *node {
	switch {
	case !s.param:
		if n.literals == nil {
			n.literals = map[string]*node{}
		}
		c := n.literals[s.literal]
		if c == nil {
			c = newNode()
			n.literals[s.literal] = c
		}
		return c
	case s.prefix == "" && s.suffix == "":
		if n.param == nil {
			n.param = newNode()
		}
		return n.param
	}
	for _, p := range n.partials {
		if p.prefix == s.prefix && p.suffix == s.suffix {
			return p.next
		}
	}
	p := &partial{prefix: s.prefix, suffix: s.suffix, next: newNode()}
	n.partials = append(n.partials, p)
	return p.next
}

func (n *node) sortPartials() {
	sort.SliceStable(n.partials, func(i, j int) bool {
		return len(n.partials[i].prefix)+len(n.partials[i].suffix) >
			len(n.partials[j].prefix)+len(n.partials[j].suffix)
	})
	for _, c := range n.literals {
		c.sortPartials()
	}
	for _, p := range n.partials {
		p.next.sortPartials()
	}
	if n.param != nil {
		n.param.sortPartials()
	}
}

// Match returns the index of the most specific route for method and path
// (the request's escaped path), or -1. It does not allocate.
func (m *Matcher) Match(method, path string) int {
	root := m.roots[method]
	if root == nil {
		if method == "HEAD" {
			return m.Match("GET", path)
		}
		return -1
	}
	if path == "" || path[0] != '/' {
		return -1
	}
	i := root.match(path[1:])
	if i < 0 && method == "HEAD" {
		return m.Match("GET", path)
	}
	return i
}

// Name is route i's name.
func (m *Matcher) Name(i int) string { return m.names[i] }

// Len is the number of routes.
func (m *Matcher) Len() int { return len(m.names) }

func (n *node) match(p string) int {
	seg, rest, more := p, "", false
	if i := strings.IndexByte(p, '/'); i >= 0 {
		seg, rest, more = p[:i], p[i+1:], true
	}
	if c := n.literals[seg]; c != nil {
		if r := c.descend(rest, more); r >= 0 {
			return r
		}
	}
	if seg == "" {
		return -1 // a parameter never matches an empty segment
	}
	for _, pt := range n.partials {
		if len(seg) > len(pt.prefix)+len(pt.suffix) &&
			strings.HasPrefix(seg, pt.prefix) && strings.HasSuffix(seg, pt.suffix) {
			if r := pt.next.descend(rest, more); r >= 0 {
				return r
			}
		}
	}
	if n.param != nil {
		return n.param.descend(rest, more)
	}
	return -1
}

func (n *node) descend(rest string, more bool) int {
	if !more {
		return n.leaf
	}
	return n.match(rest)
}
