package configfile

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestNearest(t *testing.T) {
	opts := []string{"legacy", "listen", "routes", "writes", "openapi", "fish", "bash"}
	for word, want := range map[string]string{
		"wirtes": "writes", "lisen": "listen", "Legacy": "legacy", "opnapi": "openapi",
		"fsh": "fish", "retries": "", "x": "", "": "",
	} {
		if got := Nearest(word, opts); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", word, got, want)
		}
	}
}

type inner struct {
	Writes string   `json:"writes,omitempty"`
	Ignore []string `json:"ignore,omitempty"`
}

type outer struct {
	Name     string            `json:"name"`
	Count    int               `json:"count"`
	Blocks   map[string]*inner `json:"blocks"`
	Embedded                   // promoted fields
}

type Embedded struct {
	Extra bool `json:"extra"`
}

func TestDecodeSaysWhere(t *testing.T) {
	tests := []struct{ doc, want string }{
		{"name: a\nblocks:\n  b1:\n    wirtes: x\n", `4:5: blocks.b1.wirtes: unknown key; did you mean "writes"?`},
		{"name: a\nblocks:\n  \"GET /a\": {ignore: 3}\n", `3:22: blocks["GET /a"].ignore: want a list, found "3"`},
		{"count: many\n", `1:8: count: "many" is not a whole number`},
		{"extra: maybe\n", `1:8: extra: "maybe" is not true or false`},
		{"base: &b {writes: x}\n", `1:1: base: unknown key; known keys: blocks, count, extra, name`},
		{"name: [\n", `2:1: not valid YAML`},
	}
	for _, tt := range tests {
		var v outer
		_, err := Decode([]byte(tt.doc), &v)
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %s", tt.doc, err, tt.want)
		}
	}
	var v outer
	if _, err := Decode([]byte("name: a\ncount: 2\nextra: true\nblocks: {x: {writes: w, ignore: [/a]}}\n"), &v); err != nil ||
		v.Name != "a" || v.Count != 2 || !v.Extra || v.Blocks["x"].Ignore[0] != "/a" {
		t.Fatalf("valid document: %v %+v", err, v)
	}
	// An alias to an anchor outside a block that decodes itself resolves.
	var g struct {
		A *custom `json:"a"`
		B *custom `json:"b"`
	}
	if _, err := Decode([]byte("a: {num: &n 5}\nb: {num: *n}\n"), &g); err != nil || g.B == nil || g.B.N != 5 {
		t.Errorf("alias across blocks: %v %+v", err, g.B)
	}
	bomb := "raw:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n" +
		"  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
	var anything struct {
		Raw custom `json:"raw"`
	}
	if _, err := Decode([]byte(bomb+"  more: *e\n"), &anything); err == nil || !strings.Contains(err.Error(), "aliases of aliases") {
		t.Errorf("alias bomb: err = %v", err)
	}
	doc, _ := Parse([]byte("name: a\nblocks:\n  \"GET /a\": {ignore: [x, y]}\n"))
	if l, c := doc.Position(`blocks["GET /a"].ignore[1]`); l != 3 || c != 26 {
		t.Errorf("Position = %d:%d, want 3:26", l, c)
	}
	if err := doc.CheckTypes(reflect.TypeFor[inner]()); err != nil {
		t.Errorf("CheckTypes must skip unknown keys: %v", err)
	}
}

// custom decodes itself, leniently: the walk must check it by decoding.
type custom struct{ N int }

func (c *custom) UnmarshalJSON(b []byte) error {
	var v struct {
		N int `json:"num"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	c.N = v.N
	return nil
}

func (*custom) AllowsOtherKeys() bool { return true }
