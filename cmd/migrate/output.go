package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"sigs.k8s.io/yaml"
)

// APIVersion stamps every JSON and YAML document migrate prints.
const APIVersion = "migrate/v1"

// render prints v in the format the user chose with -o. JSON and YAML are
// the stable, versioned forms; table is for people and is built by table,
// which writes tab-separated rows.
func render(w io.Writer, format string, v any, table func(tw *tableWriter)) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case "yaml":
		js, err := json.Marshal(v)
		if err != nil {
			return err
		}
		y, err := yaml.JSONToYAML(js)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	default:
		tw := newTableWriter(w)
		table(tw)
		return tw.Flush()
	}
}

// row writes one tab-separated table row.
func row(tw io.Writer, cells ...any) {
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c)
	}
	fmt.Fprintln(tw)
}

// percentText shows n of total as a percentage to 0.1 pp, never rounded
// to 100% or 0% when it is not.
func percentText(n, total int64) string {
	switch {
	case total <= 0:
		return "-"
	case n == total:
		return "100%"
	case n == 0:
		return "0%"
	}
	return ratioText(float64(n) / float64(total))
}

// ratioText shows a ratio (0-1) as a percentage to 0.1 pp, never rounded
// to 100% or 0% when it is not.
func ratioText(f float64) string {
	switch {
	case f >= 1:
		return "100%"
	case f <= 0:
		return "0%"
	}
	v := min(max(math.Round(1000*f)/10, 0.1), 99.9)
	return strconv.FormatFloat(v, 'f', 1, 64) + "%"
}

// -o is the output format everywhere; a file is always named by --out.
// dataFormats are what a command that prints data accepts; a command that
// prints something else lists its own in the formatsAnnotation.
var dataFormats = []string{"table", "json", "yaml"}

const formatsAnnotation = "migrate/output-formats"

// setFormats declares the -o values cmd accepts.
func setFormats(cmd *cobra.Command, formats ...string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[formatsAnnotation] = strings.Join(formats, ",")
}

// outputFormats are the -o values cmd accepts.
func outputFormats(cmd *cobra.Command) []string {
	for c := cmd; c != nil; c = c.Parent() {
		if f, ok := c.Annotations[formatsAnnotation]; ok {
			return strings.Split(f, ",")
		}
	}
	return dataFormats
}

// checkOutputFormat refuses an -o value cmd cannot print, naming the ones
// it can, and points at --out when the value looks like a file name (the
// old "-o FILE" habit).
func checkOutputFormat(cmd *cobra.Command, format string) error {
	valid := outputFormats(cmd)
	for _, f := range valid {
		if f == format {
			return nil
		}
	}
	if !cmd.Flags().Changed("output") {
		// The default "table" on a command that prints something else:
		// the command picks its own default.
		return nil
	}
	msg := fmt.Sprintf("unknown output format %q for %s; valid: %s", format, cmd.CommandPath(), strings.Join(valid, ", "))
	if strings.ContainsAny(format, "./\\") && cmd.Flags().Lookup("out") != nil {
		msg += fmt.Sprintf("\n-o is the format; to write a file use --out %s", format)
	}
	return &codedError{code: exitUsage, err: silentUsage{errors.New(msg)}}
}

var badFlagValue = regexp.MustCompile(`^invalid argument "(.*)" for "(.*)" flag: (.*)$`)

// plainFlagError says a flag value the flag parser refused in our words:
// its message names Go functions ("strconv.ParseInt: parsing ...").
func plainFlagError(err error) error {
	m := badFlagValue.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	value, flag, why := m[1], m[2], m[3]
	if i := strings.LastIndex(flag, ", "); i >= 0 {
		flag = flag[i+2:] // "-o, --output": the long name
	}
	var want string
	switch {
	case strings.Contains(why, "out of range"):
		want = "a number in range"
	case strings.HasPrefix(why, "strconv.ParseInt"), strings.HasPrefix(why, "strconv.ParseUint"):
		want = "a whole number"
	case strings.HasPrefix(why, "strconv.ParseFloat"):
		want = "a number"
	case strings.HasPrefix(why, "strconv.ParseBool"):
		want = "true or false"
	case strings.HasPrefix(why, "time:"):
		want = "a duration such as 30s, 10m or 1h"
	default:
		return err
	}
	return fmt.Errorf("%s %q: want %s", flag, value, want)
}

// tableWriter lays tab-separated rows out in aligned columns, as
// text/tabwriter does, but measures a cell by what a terminal shows: ANSI
// escape sequences take no room and a character takes one column however
// many bytes it has (two for East Asian wide ones). tabwriter counts the
// bytes of colour codes, which shifts every coloured row.
type tableWriter struct {
	w       io.Writer
	pending []byte
	lines   [][]string
}

// tablePadding is the room between columns.
const tablePadding = 2

func newTableWriter(w io.Writer) *tableWriter { return &tableWriter{w: w} }

func (t *tableWriter) Write(p []byte) (int, error) {
	t.pending = append(t.pending, p...)
	for {
		i := bytes.IndexByte(t.pending, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, strings.Split(string(t.pending[:i]), "\t"))
		t.pending = t.pending[i+1:]
	}
	return len(p), nil
}

// Flush writes the table. A cell belongs to a column only when a tab ends
// it; a column's width is the widest cell of the run of adjacent lines
// that have it, so a heading or a blank line between two tables starts a
// new layout, as with tabwriter.
func (t *tableWriter) Flush() error {
	if len(t.pending) > 0 {
		t.lines = append(t.lines, strings.Split(string(t.pending), "\t"))
		t.pending = nil
	}
	widths := make([][]int, len(t.lines))
	for i, cells := range t.lines {
		widths[i] = make([]int, len(cells))
	}
	for col := 0; ; col++ {
		any := false
		for start := 0; start < len(t.lines); {
			if len(t.lines[start]) <= col+1 {
				start++
				continue
			}
			any = true
			end, w := start, 0
			for end < len(t.lines) && len(t.lines[end]) > col+1 {
				w = max(w, displayWidth(t.lines[end][col]))
				end++
			}
			for i := start; i < end; i++ {
				widths[i][col] = w
			}
			start = end
		}
		if !any {
			break
		}
	}
	var b strings.Builder
	for i, cells := range t.lines {
		var line strings.Builder
		for j, c := range cells {
			line.WriteString(c)
			if j < len(cells)-1 {
				line.WriteString(strings.Repeat(" ", widths[i][j]-displayWidth(c)+tablePadding))
			}
		}
		// Empty last cells (FORCED "" on a gated move) would leave the
		// row ending in padding.
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteByte('\n')
	}
	t.lines = nil
	_, err := io.WriteString(t.w, b.String())
	return err
}

// displayWidth is how many terminal columns s takes: escape sequences
// none, combining marks none, East Asian wide characters two, others one.
func displayWidth(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i += escapeLen(s[i:])
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r) || r == '\u200b':
		case isWide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

// escapeLen is the length of the ANSI escape sequence s starts with: CSI
// (ESC [ … final byte), OSC (ESC ] … BEL or ST) or a two-byte escape.
func escapeLen(s string) int {
	if len(s) < 2 {
		return len(s)
	}
	switch s[1] {
	case '[':
		for i := 2; i < len(s); i++ {
			if s[i] >= 0x40 && s[i] <= 0x7e {
				return i + 1
			}
		}
		return len(s)
	case ']':
		for i := 2; i < len(s); i++ {
			if s[i] == 0x07 {
				return i + 1
			}
			if s[i] == 0x1b && i+1 < len(s) && s[i+1] == '\\' {
				return i + 2
			}
		}
		return len(s)
	}
	return 2
}

// isWide reports the East Asian wide and fullwidth ranges terminals draw
// two columns wide (CJK, Hangul, fullwidth forms, emoji).
func isWide(r rune) bool {
	switch {
	case r < 0x1100:
		return false
	case r <= 0x115f, r >= 0x2e80 && r <= 0xa4cf && r != 0x303f, r >= 0xac00 && r <= 0xd7a3,
		r >= 0xf900 && r <= 0xfaff, r >= 0xfe30 && r <= 0xfe4f, r >= 0xff00 && r <= 0xff60,
		r >= 0xffe0 && r <= 0xffe6, r >= 0x1f300 && r <= 0x1f64f, r >= 0x1f900 && r <= 0x1f9ff,
		r >= 0x20000 && r <= 0x3fffd:
		return true
	}
	return false
}
