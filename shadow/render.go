package shadow

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/sergi/go-diff/diffmatchpatch"
)

// ANSI colours used by Render when asked.
const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiCyan   = "\x1b[36m"
	ansiDim    = "\x1b[2m"
	ansiBold   = "\x1b[1m"
	ansiReset  = "\x1b[0m"
)

// contextLines is how many unchanged lines surround each hunk.
const contextLines = 3

// Render writes a sample as a readable unified diff: a header, the typed
// differences (noise marked), then status, headers and body as "-legacy /
// +candidate" hunks. JSON bodies are pretty-printed with sorted keys first,
// so only real changes show. color adds ANSI colours; pass it only for a
// terminal.
func Render(s Sample, w io.Writer, color bool) error {
	bw := bufio.NewWriter(w)
	paint := func(code, text string) string {
		if !color {
			return text
		}
		return code + text + ansiReset
	}
	title := s.Route
	if s.Service != "" {
		title += "  (" + s.Service + ")"
	}
	kind := "legacy vs candidate"
	if s.Baseline {
		kind = "legacy vs legacy (A/A baseline)"
	}
	fmt.Fprintf(bw, "%s\n", paint(ansiBold, title))
	fmt.Fprintf(bw, "%s  %s  %s\n", s.At.UTC().Format("2006-01-02T15:04:05Z"), kind, outcomeText(s.Result, paint))
	if s.Request.Method != "" {
		fmt.Fprintf(bw, "request  %s %s\n", printable(s.Request.Method), printable(s.Request.URL))
	}
	if len(s.Request.Body) > 0 {
		fmt.Fprintf(bw, "body     %s\n", requestBodyLine(s.Request))
	}
	if s.Legacy.Latency > 0 || s.Candidate.Latency > 0 {
		fmt.Fprintf(bw, "latency  legacy %v  candidate %v\n", s.Legacy.Latency.Round(10_000), s.Candidate.Latency.Round(10_000))
	}
	for _, d := range s.Result.Differences {
		text := Describe(d)
		if d.Type != DiffSideEffect { // a side effect's words say what each side did
			text = fmt.Sprintf("%-40s %s", text, valuePair(d))
		}
		line := printable("  " + text)
		if d.Shape != "" {
			line += "  [" + d.Shape + "]"
		}
		if d.Noise != "" {
			line = paint(ansiYellow, line+"  (noise: "+d.Noise+")")
		}
		fmt.Fprintln(bw, line)
	}
	if s.Result.Truncated {
		fmt.Fprintln(bw, "  … more differences not kept")
	}
	if s.Result.Outcome == OutcomeCandidateError && s.Result.Error != "invalid-json" {
		fmt.Fprintf(bw, "%s\n", paint(ansiRed, "candidate failed: "+printable(s.Result.Error)))
		return bw.Flush()
	}
	fmt.Fprintln(bw, paint(ansiBold, "--- legacy"))
	if s.Baseline {
		fmt.Fprintln(bw, paint(ansiBold, "+++ legacy (second answer)"))
	} else {
		fmt.Fprintln(bw, paint(ansiBold, "+++ candidate"))
	}
	if s.Legacy.Status != s.Candidate.Status {
		fmt.Fprintln(bw, paint(ansiCyan, "@@ status @@"))
		fmt.Fprintln(bw, paint(ansiRed, fmt.Sprintf("-%d", s.Legacy.Status)))
		fmt.Fprintln(bw, paint(ansiGreen, fmt.Sprintf("+%d", s.Candidate.Status)))
	}
	var hl, hc []string
	for _, d := range s.Result.Differences {
		if !strings.HasPrefix(d.Path, "@header/") {
			continue
		}
		name := strings.TrimPrefix(d.Path, "@header/")
		if d.Legacy != "" || d.Type != DiffExtra {
			hl = append(hl, name+": "+d.Legacy)
		}
		if d.Candidate != "" || d.Type != DiffMissing {
			hc = append(hc, name+": "+d.Candidate)
		}
	}
	if len(hl)+len(hc) > 0 {
		fmt.Fprintln(bw, paint(ansiCyan, "@@ headers @@"))
		for _, l := range hl {
			fmt.Fprintln(bw, paint(ansiRed, "-"+printable(l)))
		}
		for _, l := range hc {
			fmt.Fprintln(bw, paint(ansiGreen, "+"+printable(l)))
		}
	}
	if len(s.Legacy.Calls)+len(s.Candidate.Calls) > 0 {
		fmt.Fprintln(bw, paint(ansiCyan, "@@ outbound calls @@"))
		for _, c := range s.Legacy.Calls {
			fmt.Fprintln(bw, paint(ansiRed, "-"+printable(callLine(c))))
		}
		for _, c := range s.Candidate.Calls {
			fmt.Fprintln(bw, paint(ansiGreen, "+"+printable(callLine(c))))
		}
	}
	left := bodyLines(s.Legacy)
	right := bodyLines(s.Candidate)
	writeUnified(bw, left, right, paint)
	return bw.Flush()
}

func outcomeText(r Result, paint func(string, string) string) string {
	noise := 0
	for _, d := range r.Differences {
		if d.Noise != "" {
			noise++
		}
	}
	text := r.Outcome
	switch r.Outcome {
	case OutcomeMatch:
		text = paint(ansiGreen, "match")
	case OutcomeMismatch:
		text = paint(ansiRed, "mismatch")
	case OutcomeCandidateError:
		text = paint(ansiRed, "candidate error: "+r.Error)
	}
	return fmt.Sprintf("%s (%s, %d noise)", text, plural(len(r.Differences), "difference"), noise)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// maxRequestBodyLine is how much of a request body the header of a
// rendered sample shows: enough to tell requests apart.
const maxRequestBodyLine = 240

// requestBodyLine shows a request body on one line: JSON compacted, text
// with its line breaks escaped, binary as its size and digest.
func requestBodyLine(r RecordedRequest) string {
	body := r.Body
	if !utf8.Valid(body) {
		return "(binary " + digest(body) + ")"
	}
	text := string(body)
	if v, err := parseJSON(text); err == nil {
		text = string(appendJSON(nil, &v, false, 0, 0))
	} else {
		text = strings.NewReplacer("\r", `\r`, "\n", `\n`).Replace(text)
	}
	text = printable(text)
	if len(text) > maxRequestBodyLine {
		cut := maxRequestBodyLine
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	} else if r.Truncated {
		text += "…"
	}
	return text
}

// callLine is "POST inventory-service /api/inventory/reserve → 200 (stubbed)".
func callLine(c Call) string {
	line := c.Method + " " + c.To + " " + c.URL
	switch {
	case c.Error != "":
		line += " → " + c.Error
	case c.Status != 0:
		line += fmt.Sprintf(" → %d", c.Status)
	}
	if c.Stubbed {
		line += " (stubbed, not sent)"
	}
	return line
}

func valuePair(d Difference) string {
	switch {
	case d.Legacy != "" && d.Candidate != "":
		return d.Legacy + " → " + d.Candidate
	case d.Legacy != "":
		return d.Legacy + " → (absent)"
	case d.Candidate != "":
		return "(absent) → " + d.Candidate
	}
	return ""
}

// bodyLines renders a body for diffing: decoded, JSON pretty-printed with
// sorted keys, text as is, binary as a digest line; control characters
// escaped either way (JSON may hold C1 ones raw).
func bodyLines(r Response) []string {
	lines := rawBodyLines(r)
	for i, l := range lines {
		lines[i] = printable(l)
	}
	return lines
}

func rawBodyLines(r Response) []string {
	body := r.Body
	if enc := r.Header.Get("Content-Encoding"); enc != "" {
		if dec, err := decodeBody(body, enc, int64(len(body))*64+DefaultMaxBody); err == nil {
			body = dec
		}
	}
	if len(body) == 0 {
		return nil
	}
	if looksJSON(body) || isJSONMedia(mediaType(r.Header.Get("Content-Type"))) {
		if v, err := parseJSON(string(body)); err == nil {
			return strings.Split(string(appendJSON(nil, &v, true, 2, 0)), "\n")
		}
	}
	if utf8.Valid(body) {
		return splitLines(string(body))
	}
	return []string{"(binary " + digest(body) + ")"}
}

// printable escapes the control characters in s (tabs aside), so that
// bytes from a request or a response can never drive the terminal a diff
// is shown on: an escape sequence in a body is shown, not obeyed.
func printable(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, `\x%02x`, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isControl reports C0 and C1 control characters (a terminal takes U+009B
// as the start of an escape sequence too), except tab.
func isControl(r rune) bool { return r != '\t' && (r < 0x20 || r >= 0x7f && r <= 0x9f) }

// writeUnified writes a line diff as unified-diff hunks.
func writeUnified(w io.Writer, a, b []string, paint func(string, string) string) {
	ops := lineDiff(a, b)
	changed := false
	for _, op := range ops {
		if op.op != diffmatchpatch.DiffEqual {
			changed = true
			break
		}
	}
	if !changed {
		if len(a) > 0 {
			fmt.Fprintln(w, paint(ansiDim, fmt.Sprintf("@@ body: %d identical lines @@", len(a))))
		}
		return
	}
	// Positions (legacy line, candidate line) of every op, for hunk headers.
	type pos struct{ la, lb int }
	at := make([]pos, len(ops)+1)
	la, lb := 1, 1
	for i, op := range ops {
		at[i] = pos{la, lb}
		switch op.op {
		case diffmatchpatch.DiffEqual:
			la++
			lb++
		case diffmatchpatch.DiffDelete:
			la++
		case diffmatchpatch.DiffInsert:
			lb++
		}
	}
	at[len(ops)] = pos{la, lb}
	for i := 0; i < len(ops); {
		if ops[i].op == diffmatchpatch.DiffEqual {
			i++
			continue
		}
		start := max(i-contextLines, 0)
		end := i
		for end < len(ops) {
			if ops[end].op != diffmatchpatch.DiffEqual {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].op == diffmatchpatch.DiffEqual {
				run++
			}
			if run == len(ops) || run-end > 2*contextLines {
				end = min(end+contextLines, len(ops))
				break
			}
			end = run
		}
		na, nb := 0, 0
		for _, op := range ops[start:end] {
			if op.op != diffmatchpatch.DiffInsert {
				na++
			}
			if op.op != diffmatchpatch.DiffDelete {
				nb++
			}
		}
		fmt.Fprintln(w, paint(ansiCyan, fmt.Sprintf("@@ -%d,%d +%d,%d @@ body", at[start].la, na, at[start].lb, nb)))
		for _, op := range ops[start:end] {
			switch op.op {
			case diffmatchpatch.DiffEqual:
				fmt.Fprintln(w, " "+op.text)
			case diffmatchpatch.DiffDelete:
				fmt.Fprintln(w, paint(ansiRed, "-"+op.text))
			case diffmatchpatch.DiffInsert:
				fmt.Fprintln(w, paint(ansiGreen, "+"+op.text))
			}
		}
		i = end
	}
}
