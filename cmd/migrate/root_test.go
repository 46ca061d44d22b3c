package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// runCLI runs the command tree with buffers and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &streams{in: strings.NewReader(""), out: &out, err: &errOut})
	return out.String(), errOut.String(), code
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"version"}, exitOK},
		{[]string{"no-such-command"}, exitUsage},
		{[]string{"version", "--no-such-flag"}, exitUsage},
		{[]string{"version", "extra-arg"}, exitUsage},
		{[]string{"version", "-o", "xml"}, exitUsage},
		{[]string{"help", "analyze", "cluster"}, exitOK},
		{[]string{"help"}, exitOK},
		{[]string{"help", "bogus"}, exitUsage},
		{[]string{"help", "analyze", "bogus"}, exitUsage},
		{[]string{"analyze"}, exitOK}, // a parent alone shows its help
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if _, stderr, code := runCLI(t, tt.args...); code != tt.code {
				t.Fatalf("exit code = %d, want %d (stderr: %s)", code, tt.code, stderr)
			}
		})
	}
}

func TestExitCodeMapping(t *testing.T) {
	if got := exitCode(notMetErrorf("gate not met")); got != exitGateOrDiff {
		t.Fatalf("notMetErrorf → %d, want %d", got, exitGateOrDiff)
	}
	if got := exitCode(usageErrorf("bad")); got != exitUsage {
		t.Fatalf("usageErrorf → %d, want %d", got, exitUsage)
	}
}

func TestVersionJSONIsVersioned(t *testing.T) {
	stdout, _, code := runCLI(t, "version", "-o", "json")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(stdout), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if v["apiVersion"] != APIVersion {
		t.Fatalf("apiVersion = %v", v["apiVersion"])
	}
}

func TestCompletionScripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		stdout, stderr, code := runCLI(t, "completion", shell)
		if code != exitOK || !strings.Contains(stdout, "migrate") {
			t.Fatalf("completion %s: exit %d, stderr %s", shell, code, stderr)
		}
	}
}

func TestNoColourWhenNotATerminal(t *testing.T) {
	s := &streams{color: false}
	if got := s.paint(colorRed, "x"); got != "x" {
		t.Fatalf("paint without colour = %q", got)
	}
}
