package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestHelpExamplesParse puts every `Example:` line of every command, and
// every migrate command line of the README's shell blocks, through the
// command's own argument and flag parsing (nothing runs), so an example with
// a flag that does not exist, an -o value the command refuses or the wrong
// number of arguments fails the build instead of the reader.
func TestHelpExamplesParse(t *testing.T) {
	var walk func(cmd *cobra.Command)
	walk = func(cmd *cobra.Command) {
		// Every command the user can call by name shows how (the README
		// says so); cobra's own shell subcommands and help are its to explain.
		if cmd.Example == "" && !cmd.Hidden && cmd.Name() != "help" && cmd.Parent() != nil && cmd.Parent().Name() != "completion" {
			t.Errorf("%s --help has no examples", cmd.CommandPath())
		}
		for _, line := range strings.Split(cmd.Example, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			where := cmd.CommandPath() + " --help"
			invocations := migrateInvocations(line)
			if len(invocations) == 0 {
				t.Errorf("%s: example %q runs no migrate command", where, line)
			}
			for _, args := range invocations {
				checkExampleParses(t, where, line, args)
			}
		}
		for _, sub := range cmd.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&streams{}))

	docs, _ := filepath.Glob("../../docs/*.md")
	n := 0
	for _, doc := range append([]string{"../../README.md", "../../BENCHMARKS.md", "../../fixtures/README.md"}, docs...) {
		n += checkShellBlocks(t, doc)
	}
	if n < 15 {
		t.Fatalf("found %d migrate commands in the docs' shell blocks; the README's journey alone has more", n)
	}
}

// checkShellBlocks checks the migrate command lines of a Markdown file's
// ```sh blocks, and the "$ migrate" lines of pasted terminal sessions,
// and says how many it found.
func checkShellBlocks(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	name := strings.TrimPrefix(path, "../../")
	sc := bufio.NewScanner(f)
	inBlock, inShell, n := false, false, 0
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "```"):
			inShell = line == "```sh" && !inBlock
			inBlock = !inBlock
		case inBlock && strings.HasPrefix(strings.TrimSpace(line), "$ "):
			// A command in a pasted terminal session.
			for _, args := range migrateInvocations(strings.TrimPrefix(strings.TrimSpace(line), "$ ")) {
				n++
				checkExampleParses(t, name, line, args)
			}
		case inShell:
			for _, args := range migrateInvocations(line) {
				n++
				checkExampleParses(t, name, line, args)
			}
		}
	}
	return n
}

// checkExampleParses parses args as the command line "migrate args...".
// Each run gets a fresh command tree: flags keep the values they parsed.
func checkExampleParses(t *testing.T, where, line string, args []string) {
	t.Helper()
	root := newRootCmd(&streams{})
	cmd, rest, err := root.Find(args)
	if err == nil && cmd == root && len(args) > 0 {
		err = unknownSubcommand(root, args[0])
	}
	if err == nil {
		err = cmd.ParseFlags(rest)
	}
	if err == nil && cmd.Args != nil {
		err = cmd.ValidateArgs(cmd.Flags().Args())
	}
	if err == nil {
		err = checkOutputFormat(cmd, root.PersistentFlags().Lookup("output").Value.String())
	}
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, line, err)
	}
}

// migrateInvocations returns the arguments of each migrate command in a
// shell line: it splits on ; && || |, drops comments, redirections,
// leading VAR=value assignments and loop keywords. Quotes and $(...) are
// kept whole. A "go run ./cmd/migrate" command counts as migrate too.
func migrateInvocations(line string) [][]string {
	var (
		out    [][]string
		words  []string
		word   strings.Builder
		inWord bool
		quote  rune
		depth  int
	)
	endWord := func() {
		if inWord {
			words = append(words, word.String())
		}
		word.Reset()
		inWord = false
	}
	endCommand := func() {
		endWord()
		if args, ok := migrateArgs(words); ok {
			out = append(out, args)
		}
		words = nil
	}
	rs := []rune(line)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				word.WriteRune(c)
			}
		case depth > 0:
			word.WriteRune(c)
			if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '$' && i+1 < len(rs) && rs[i+1] == '(':
			word.WriteString("$(")
			depth, inWord = 1, true
			i++
		case c == '#' && !inWord:
			i = len(rs)
		case c == ';' || c == '|' || c == '&':
			endCommand()
		case c == ' ' || c == '\t':
			endWord()
		default:
			word.WriteRune(c)
			inWord = true
		}
	}
	endCommand()
	return out
}

// migrateArgs strips what a shell would not pass to migrate and says
// whether the command is migrate at all.
func migrateArgs(words []string) ([]string, bool) {
	for len(words) > 0 && (strings.Contains(words[0], "=") && !strings.HasPrefix(words[0], "-") ||
		words[0] == "until" || words[0] == "while" || words[0] == "do" || words[0] == "then") {
		words = words[1:]
	}
	switch {
	case len(words) > 0 && words[0] == "migrate":
		words = words[1:]
	case len(words) > 2 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/migrate":
		words = words[3:]
	default:
		return nil, false
	}
	var args []string
	for i := 0; i < len(words); i++ {
		w := strings.TrimPrefix(words[i], "2")
		if w == ">" || w == ">>" || w == "<" {
			i++ // the redirection's file is the next word
			continue
		}
		if strings.HasPrefix(w, ">") || strings.HasPrefix(w, "<") {
			continue
		}
		args = append(args, words[i])
	}
	return args, true
}
