package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// columnStarts returns where (in terminal columns) each cell after the
// first begins on a line the table printed.
func columnStarts(line string, cells []string) []int {
	var starts []int
	plain := ansiEscape.ReplaceAllString(line, "")
	runes := []rune(plain)
	pos := 0
	for i, c := range cells {
		c = ansiEscape.ReplaceAllString(c, "")
		idx := strings.Index(string(runes[pos:]), c)
		if idx < 0 {
			return nil
		}
		col := pos + len([]rune(string(runes[pos:])[:idx]))
		if i > 0 {
			starts = append(starts, displayWidth(string(runes[:col])))
		}
		pos = col + len([]rune(c))
	}
	return starts
}

// TestTableAlignsColouredAndNonASCIICells lays out the cells a terminal
// gets (colour codes, accented and CJK names) and checks that every
// column starts at the same screen column on every line.
func TestTableAlignsColouredAndNonASCIICells(t *testing.T) {
	s := &streams{color: true}
	rows := [][]string{
		{"SERVICE", "STATE", "SCORE"},
		{"order-service", s.paint(colorGreen, "ready"), "80"},
		{"größen-dienst", s.paint(colorRed, "not-ready"), "20"},
		{"注文サービス", s.paint(colorBold+";"+colorYellow, "ready-with-conditions"), "60"},
		{"café", "-", "-"},
	}
	var out bytes.Buffer
	err := render(&out, "table", nil, func(tw *tableWriter) {
		for _, r := range rows {
			row(tw, r[0], r[1], r[2])
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(rows), out.String())
	}
	want := columnStarts(lines[0], rows[0])
	for i, l := range lines {
		if got := columnStarts(l, rows[i]); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("line %d columns start at %v, want %v:\n%s", i, got, want, ansiEscape.ReplaceAllString(out.String(), ""))
		}
	}
	if !strings.Contains(out.String(), "\x1b[31mnot-ready\x1b[0m") {
		t.Error("colour codes were not passed through")
	}
}

func TestDisplayWidth(t *testing.T) {
	for s, want := range map[string]int{
		"abc": 3, "größe": 5, "注文": 4, "\x1b[1;31mfail\x1b[0m": 4, "e\u0301": 1, "→": 1, "": 0,
		"\x1b]8;;http://x\x07link\x1b]8;;\x07": 4,
	} {
		if got := displayWidth(s); got != want {
			t.Errorf("displayWidth(%q) = %d, want %d", s, got, want)
		}
	}
}

// TestOutputFlagIsAFormatEverywhere runs each command with an -o it cannot
// print: every one refuses with the formats it can, and a file name gets
// pointed at --out.
func TestOutputFlagIsAFormatEverywhere(t *testing.T) {
	tests := []struct {
		args  []string
		valid string
	}{
		{[]string{"version"}, "table, json, yaml"},
		{[]string{"analyze", "openapi", "x.json"}, "table, json, yaml"},
		{[]string{"plan", "--inventory", "inventory.json"}, "table, json, yaml"},
		{[]string{"status"}, "table, json, yaml"},
		{[]string{"diffs"}, "table, json, yaml"},
		{[]string{"gate", "GET /x"}, "table, json, yaml"},
		{[]string{"cutover", "GET /x"}, "table, json, yaml"},
		{[]string{"report"}, "html, md, json"},
		{[]string{"demo"}, "table"},
		{[]string{"proxy", "--config", "strangler.yaml"}, "table"},
	}
	for _, tt := range tests {
		for _, bad := range []string{"xml", "out.yaml"} {
			args := append(append([]string{}, tt.args...), "-o", bad)
			_, stderr, code := runCLI(t, args...)
			if code != exitUsage || !strings.Contains(stderr, "valid: "+tt.valid) {
				t.Errorf("migrate %s: exit %d, want %d naming %q:\n%s", strings.Join(args, " "), code, exitUsage, tt.valid, stderr)
			}
			hasOut := tt.args[0] == "plan" || tt.args[0] == "report"
			if bad == "out.yaml" && hasOut && !strings.Contains(stderr, "--out out.yaml") {
				t.Errorf("migrate %s: the error does not point at --out:\n%s", strings.Join(args, " "), stderr)
			}
		}
	}
}

// TestReportOutputFormatAndFile: -o is the report's format, --out its file.
func TestReportOutputFormatAndFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	inv := filepath.Join(dir, "inventory.json")
	if err := analyze.WriteInventory(inv, &analyze.Inventory{APIVersion: analyze.APIVersion, Kind: "Inventory",
		Generated: time.Now(), Services: []analyze.Service{{Name: "order-service", Sources: []string{"x"}}}}); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(config, []byte(reportConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	common := []string{"report", "--inventory", inv, "--config", config}
	read := func(path string) string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	isMarkdown := func(s string) bool { return strings.HasPrefix(s, "# ") && !strings.Contains(s, "<html") }

	if _, stderr, code := runCLI(t, append(common, "-o", "md")...); code != exitOK {
		t.Fatalf("report -o md: exit %d %s", code, stderr)
	}
	if _, err := os.Stat("md"); err == nil {
		t.Fatal(`report -o md wrote a file called "md"`)
	}
	if got := read("migrate-report.md"); !isMarkdown(got) {
		t.Fatalf("report -o md did not write Markdown to migrate-report.md:\n%.200s", got)
	}

	if _, stderr, code := runCLI(t, append(common, "-o", "md", "--out", "CUTOVER.txt")...); code != exitOK || !isMarkdown(read("CUTOVER.txt")) {
		t.Fatalf("report -o md --out CUTOVER.txt: exit %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, append(common, "--out", "r.json")...); code != exitOK || !strings.Contains(read("r.json"), `"kind": "Report"`) {
		t.Fatalf("report --out r.json (format from the extension): exit %d %s", code, stderr)
	}
	stdout, stderr, code := runCLI(t, append(common, "-o", "json", "--out", "-")...)
	if code != exitOK || !strings.Contains(stdout, `"apiVersion": "migrate/v1"`) {
		t.Fatalf("report -o json --out -: exit %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, append(common, "-o", "migrate-report.html")...); code != exitUsage ||
		!strings.Contains(stderr, "valid: html, md, json") || !strings.Contains(stderr, "--out migrate-report.html") {
		t.Fatalf("report -o FILE: exit %d %s", code, stderr)
	}
	if _, stderr, code := runCLI(t, append(common, "-o", "md", "--format", "html")...); code != exitUsage {
		t.Fatalf("-o md --format html: exit %d %s", code, stderr)
	}
}

// TestFlagValueErrorsInWords: a bad flag value is refused in our words,
// never with the parser's Go function names.
func TestFlagValueErrorsInWords(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"diffs", "--limit", "x"}, `--limit "x": want a whole number`},
		{[]string{"demo", "--rate", "fast"}, `--rate "fast": want a number`},
		{[]string{"canary", "GET /x", "--interval", "5"}, `--interval "5": want a duration such as 30s, 10m or 1h`},
		{[]string{"diffs", "--all=maybe"}, `--all "maybe": want true or false`},
	} {
		_, stderr, code := runCLI(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "strconv") || strings.Contains(stderr, "time:") {
			t.Errorf("migrate %s: exit %d\n%s", strings.Join(tt.args, " "), code, stderr)
		}
	}
}

// A row whose last cells are empty (FORCED on a gated move) ends at its
// last printed cell, not in padding.
func TestTableRowsEndWithoutBlanks(t *testing.T) {
	var out bytes.Buffer
	err := render(&out, "table", nil, func(tw *tableWriter) {
		row(tw, "ROUTE", "WEIGHT", "FORCED")
		row(tw, "GET /api/product", "-", "")
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.TrimRight(l, " ") != l {
			t.Errorf("line %q ends in blanks", l)
		}
	}
}
