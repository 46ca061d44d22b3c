package reports

import (
	"math"
	"strings"
	"testing"
)

func TestParseQuantity(t *testing.T) {
	cases := []struct {
		in   string
		want float64
	}{
		{"512Mi", 512 << 20},
		{"1Gi", 1 << 30},
		{"1.5Gi", 1.5 * (1 << 30)},
		{"128974848", 128974848},
		{"129e6", 129e6},
		{"129M", 129e6},
		{"123Ki", 123 << 10},
		{"250m", 0.25},
		{"1", 1},
		{"0.5", 0.5},
		{".5", 0.5},
		{"100u", 100e-6},
		{"2k", 2000},
		{"1E3", 1000},
		{"5e-3", 0.005},
		{" 2Ti ", 2 << 40},
		{"+1Ei", 1 << 60},
		{"0", 0},
	}
	for _, tc := range cases {
		got, err := ParseQuantity(tc.in)
		if err != nil {
			t.Errorf("ParseQuantity(%q): %v", tc.in, err)
			continue
		}
		if math.Abs(got-tc.want) > 1e-9*math.Max(1, tc.want) {
			t.Errorf("ParseQuantity(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseQuantityRejects(t *testing.T) {
	for _, in := range []string{"", "Mi", "lots", "1.2.3", "12Mb", "1e", "1e+", "--1", "1 Gi", "5x", "1e999"} {
		if v, err := ParseQuantity(in); err == nil {
			t.Errorf("ParseQuantity(%q) = %v, want an error", in, v)
		} else if !strings.Contains(err.Error(), "parse quantity") {
			t.Errorf("ParseQuantity(%q) error %q lacks context", in, err)
		}
	}
}

func FuzzParseQuantity(f *testing.F) {
	for _, s := range []string{"512Mi", "250m", "1e3", "1.5Gi", "", "-1", "9999999999Ei", "1e-400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseQuantity(s)
		if err != nil {
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			t.Fatalf("ParseQuantity(%q) = %v without an error", s, v)
		}
	})
}

// FuzzMarkdownEscape checks that escaped user text can never end a table
// cell, start a new line, or open an HTML tag in the Markdown report.
func FuzzMarkdownEscape(f *testing.F) {
	for _, s := range []string{"a|b", "<script>", "line\nbreak", "`code`", "*em* _u_", `\|`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := md(s)
		if strings.ContainsAny(got, "<>\n\r") {
			t.Fatalf("md(%q) = %q keeps a tag or line break", s, got)
		}
		// Every | must be escaped by an odd run of backslashes.
		for i := 0; i < len(got); i++ {
			if got[i] != '|' {
				continue
			}
			n := 0
			for j := i - 1; j >= 0 && got[j] == '\\'; j-- {
				n++
			}
			if n%2 == 0 {
				t.Fatalf("md(%q) = %q has an unescaped |", s, got)
			}
		}
		code := mdCode(s)
		if strings.ContainsAny(code, "\n\r") {
			t.Fatalf("mdCode(%q) = %q spans lines", s, code)
		}
	})
}
