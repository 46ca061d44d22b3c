package wasm

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestOptionsFromYAML(t *testing.T) {
	const doc = `
wasm: components/orders.wasm
maxMemory: 32MiB
timeout: 1500ms
maxResponse: 512KiB
pool: 4
frozenClock: true
seed: 7
`
	var o Options
	if err := yaml.Unmarshal([]byte(doc), &o); err != nil {
		t.Fatal(err)
	}
	want := Options{Path: "components/orders.wasm", MaxMemory: 32 << 20, Timeout: Duration(1500 * time.Millisecond),
		MaxResponse: 512 << 10, Pool: 4, FrozenClock: true, Seed: 7}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("got %+v, want %+v", o, want)
	}
	// Round trip: text stays text.
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"maxMemory":"32MiB"`) || !strings.Contains(string(b), `"timeout":"1.5s"`) {
		t.Errorf("marshalled %s", b)
	}
	var back Options
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, o) {
		t.Errorf("round trip %+v, %v", back, err)
	}
}

func TestOptionsDefaultsAndValidation(t *testing.T) {
	o, err := Options{Path: "a.wasm"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxMemory != 64<<20 || o.Timeout != Duration(5*time.Second) || o.MaxResponse != 8<<20 || o.memoryPages() != 1024 {
		t.Errorf("defaults %+v", o)
	}
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{}, "module path"},
		{Options{Path: "a", MaxMemory: 1000}, "below one 64KiB"},
		{Options{Path: "a", MaxMemory: 5 << 30}, "exceeds the 4GiB"},
		{Options{Path: "a", Timeout: -1}, "negative"},
		{Options{Path: "a", Pool: -1}, "negative"},
	} {
		if _, err := tt.o.withDefaults(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.o, err, tt.want)
		}
	}
}

func TestByteSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want ByteSize
		err  bool
	}{
		{`"64MiB"`, 64 << 20, false},
		{`"64 MiB"`, 64 << 20, false},
		{`"1.5GiB"`, 3 << 29, false},
		{`"512KiB"`, 512 << 10, false},
		{`"10MB"`, 10e6, false},
		{`"4k"`, 0, true},
		{`"4K"`, 4 << 10, false},
		{`"100"`, 100, false},
		{`"100B"`, 100, false},
		{`1048576`, 1 << 20, false},
		{`"lots"`, 0, true},
		{`"-1MiB"`, 0, true},
		{`-5`, 0, true},
		{`true`, 0, true},
	} {
		var b ByteSize
		err := json.Unmarshal([]byte(tt.in), &b)
		if (err != nil) != tt.err || (!tt.err && b != tt.want) {
			t.Errorf("%s: got %d, %v; want %d (error %v)", tt.in, b, err, tt.want, tt.err)
		}
	}
	for b, want := range map[ByteSize]string{64 << 20: "64MiB", 1 << 30: "1GiB", 1536: "1536B", 2048: "2KiB", 0: "0B"} {
		if b.String() != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), b.String(), want)
		}
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := json.Unmarshal([]byte(`"250ms"`), &d); err != nil || d != Duration(250*time.Millisecond) {
		t.Errorf("got %v, %v", d, err)
	}
	if err := json.Unmarshal([]byte(`5`), &d); err != nil || d != Duration(5*time.Second) {
		t.Errorf("a bare number is seconds: got %v, %v", d, err)
	}
	for _, bad := range []string{`"5"`, `-1`, `"soon"`} {
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func FuzzParseByteSize(f *testing.F) {
	for _, s := range []string{"64MiB", "1.5GiB", "0", "", "1e400KiB", "NaNMiB", "-0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseByteSize(s)
		if err == nil && b < 0 {
			t.Fatalf("%q parsed to negative %d", s, b)
		}
	})
}
