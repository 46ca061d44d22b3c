package shadow

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// isUUID reports whether s is a UUID in its canonical 8-4-4-4-12 form.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
	}
	return true
}

var timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$`)

// isTimestamp reports whether s is an ISO 8601 date or date-time, as Spring
// (Jackson) and most other stacks write them.
func isTimestamp(s string) bool {
	if len(s) < 10 || len(s) > 40 || s[4] != '-' {
		return false
	}
	return timestampRE.MatchString(s)
}

// shapeOf classifies two differing values that share a recognisable shape.
// A shape is a hint, never a verdict: a UUID that differs is a real
// difference unless the path is declared or learned noise.
func shapeOf(a, b string) string {
	switch {
	case isUUID(a) && isUUID(b):
		return "uuid"
	case isTimestamp(a) && isTimestamp(b):
		return "timestamp"
	}
	return ""
}

// maskTokens matches the volatile tokens of a text line, most specific
// first: UUIDs, ISO timestamps, then numbers.
var maskTokens = regexp.MustCompile(`[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?|\d+(?:\.\d+)?`)

// maskLine replaces UUIDs, timestamps and numbers in a line by <uuid>,
// <timestamp> and <n>, so "Order Number 6f1c… Placed Successfully" becomes
// "Order Number <uuid> Placed Successfully" on both sides.
func maskLine(s string) string {
	return maskTokens.ReplaceAllStringFunc(s, func(tok string) string {
		switch {
		case isUUID(tok):
			return "<uuid>"
		case len(tok) >= 10 && tok[4] == '-':
			return "<timestamp>"
		}
		return "<n>"
	})
}

// templateRegexp turns a masked line into the regular expression that
// Options.IgnoreLines takes.
func templateRegexp(t string) string {
	var b strings.Builder
	b.WriteByte('^')
	for t != "" {
		i := strings.IndexByte(t, '<')
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(t))
			break
		}
		b.WriteString(regexp.QuoteMeta(t[:i]))
		t = t[i:]
		switch {
		case strings.HasPrefix(t, "<uuid>"):
			b.WriteString(`[0-9a-fA-F-]{36}`)
			t = t[len("<uuid>"):]
		case strings.HasPrefix(t, "<timestamp>"):
			b.WriteString(`\S+`)
			t = t[len("<timestamp>"):]
		case strings.HasPrefix(t, "<n>"):
			b.WriteString(`[0-9.]+`)
			t = t[len("<n>"):]
		default:
			b.WriteString(regexp.QuoteMeta("<"))
			t = t[1:]
		}
	}
	b.WriteByte('$')
	return b.String()
}

// splitLines splits text into lines without their terminators; CRLF and
// LF compare equal and a final newline does not make an extra line.
func splitLines(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// lineOp is one line of a line diff.
type lineOp struct {
	op   diffmatchpatch.Operation
	text string
}

// lineDiff computes a line-level diff with go-diff: lines are mapped to
// runes so the Myers diff runs over lines, not characters.
func lineDiff(a, b []string) []lineOp {
	dmp := diffmatchpatch.New()
	// Bound the work one pathological pair of bodies can cost a worker; past
	// the deadline go-diff returns a coarser (still correct) diff.
	dmp.DiffTimeout = 200 * time.Millisecond
	ta := strings.Join(a, "\n")
	tb := strings.Join(b, "\n")
	if len(a) > 0 {
		ta += "\n"
	}
	if len(b) > 0 {
		tb += "\n"
	}
	ra, rb, lines := dmp.DiffLinesToRunes(ta, tb)
	diffs := dmp.DiffCharsToLines(dmp.DiffMainRunes(ra, rb, false), lines)
	var ops []lineOp
	for _, d := range diffs {
		if d.Text == "" {
			continue
		}
		// Every line went in with its "\n", so a chunk is whole lines.
		for _, l := range strings.Split(strings.TrimSuffix(d.Text, "\n"), "\n") {
			ops = append(ops, lineOp{op: d.Type, text: l})
		}
	}
	return ops
}

// diffText compares two text bodies line by line. Changed lines are paired
// within each changed block; a pair that is equal once volatile tokens are
// masked gets shape "masked" and its template, which noise learning and
// ignoreLines rules use to recognise it.
func (w *walker) diffText(a, b string) {
	ops := lineDiff(splitLines(a), splitLines(b))
	line := 0 // legacy line number
	for i := 0; i < len(ops); {
		if ops[i].op == diffmatchpatch.DiffEqual {
			line++
			i++
			continue
		}
		var dels, ins []string
		start := line
		for i < len(ops) && ops[i].op != diffmatchpatch.DiffEqual {
			if ops[i].op == diffmatchpatch.DiffDelete {
				dels = append(dels, ops[i].text)
				line++
			} else {
				ins = append(ins, ops[i].text)
			}
			i++
		}
		n := max(len(dels), len(ins))
		for k := 0; k < n; k++ {
			path := "@line/" + strconv.Itoa(start+min(k, max(len(dels)-1, 0))+1)
			d := Difference{Path: path, Type: DiffLine, Signature: "@text " + DiffLine}
			switch {
			case k >= len(ins):
				d.Type, d.Legacy, d.Signature = DiffMissing, dels[k], "@text "+DiffMissing
			case k >= len(dels):
				d.Type, d.Candidate, d.Signature = DiffExtra, ins[k], "@text "+DiffExtra
			default:
				d.Legacy, d.Candidate = dels[k], ins[k]
				if t := maskLine(dels[k]); t == maskLine(ins[k]) {
					d.Shape, d.Template = "masked", t
					if w.noise.hasLine(t) {
						d.Noise = NoiseLearned
					}
				}
				for _, re := range w.c.ignoreLines {
					if re.MatchString(dels[k]) && re.MatchString(ins[k]) {
						d.Noise = NoiseDeclared
						break
					}
				}
			}
			d.Legacy, d.Candidate = truncateText(d.Legacy, 200), truncateText(d.Candidate, 200)
			w.add(d)
		}
	}
}
