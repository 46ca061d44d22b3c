package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/internal/configfile"
	"github.com/strangler-fig/migrate/internal/logs"
)

// Exit codes are part of the contract: pipelines branch on them.
const (
	exitOK         = 0
	exitError      = 1
	exitUsage      = 2
	exitGateOrDiff = 3 // a gate was not met, or differences were found
)

// codedError carries the exit code a failure should end the process with.
type codedError struct {
	code int
	err  error
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// usageErrorf reports a mistake in how the command was called (exit 2).
func usageErrorf(format string, args ...any) error {
	return &codedError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// notMetErrorf reports a gate not met or differences found (exit 3).
func notMetErrorf(format string, args ...any) error {
	return &codedError{code: exitGateOrDiff, err: fmt.Errorf(format, args...)}
}

// exitCode is the one place that maps an error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var coded *codedError
	if errors.As(err, &coded) {
		return coded.code
	}
	// cobra reports unknown commands and flags as plain errors.
	msg := err.Error()
	if strings.HasPrefix(msg, "unknown command") || strings.HasPrefix(msg, "unknown flag") ||
		strings.HasPrefix(msg, "unknown shorthand flag") {
		return exitUsage
	}
	return exitError
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	output    string
	logLevel  string
	logFormat string
}

// run builds the command tree, executes it and returns the exit code.
func run(args []string, s *streams) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := newRootCmd(s)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		code := exitCode(err)
		fmt.Fprintf(s.err, "%s %v\n", s.paint(colorRed, "error:"), err)
		if code == exitUsage && !errors.Is(err, errSilentUsage) {
			fmt.Fprintf(s.err, "Run '%s --help' for usage.\n", commandPathFor(root, args))
		}
		return code
	}
	return exitOK
}

// errSilentUsage marks usage errors whose message already says what to do.
var errSilentUsage = errors.New("usage")

// silentUsage is a usage error whose message already says what to do, so
// no "--help" hint follows it: it is errSilentUsage for errors.Is.
type silentUsage struct{ error }

func (silentUsage) Is(target error) bool { return target == errSilentUsage }

// commandPathFor names the subcommand the user ran, for the usage hint.
func commandPathFor(root *cobra.Command, args []string) string {
	if cmd, _, err := root.Find(args); err == nil && cmd != nil {
		return cmd.CommandPath()
	}
	return root.Name()
}

func newRootCmd(s *streams) *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "migrate",
		Short: "Move Spring Boot services to WebAssembly, route by route, with evidence",
		Long: `migrate moves a fleet of Spring Boot microservices onto WebAssembly components
(Spin, wasmCloud) one route at a time, and tells you whether the new component
really behaves like the old service before any user depends on it.

The journey:
  1. analyze   inventory the fleet (OpenAPI, images, manifests, actuator) and score readiness
  2. plan      turn the inventory into a strangler config: every route starts on legacy
  3. proxy     serve traffic through the strangler-fig proxy
  4. shadow    mirror requests to the Wasm candidate and diff the responses
  5. cutover   promote a route only when its evidence clears its gate; roll back instantly
  6. report    a cutover report for the review board

Try the whole journey on the built-in fixture fleet:
  migrate demo`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutputFormat(cmd, g.output); err != nil {
				return err
			}
			logger, err := newLogger(s.err, g.logLevel, g.logFormat)
			if err != nil {
				return err
			}
			slog.SetDefault(logger)
			return nil
		},
	}
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &codedError{code: exitUsage, err: plainFlagError(err)}
	})

	pf := root.PersistentFlags()
	pf.StringVarP(&g.output, "output", "o", "table", "output format: table, json or yaml (report: html, md or json); a file is named with --out")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	_ = root.RegisterFlagCompletionFunc("output", func(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return outputFormats(cmd), cobra.ShellCompDirectiveNoFileComp
	})

	root.AddCommand(
		newVersionCmd(s, g),
		newAnalyzeCmd(s, g),
		newPlanCmd(s, g),
		newProxyCmd(s),
		newStatusCmd(s, g),
		newDiffsCmd(s, g),
	)
	root.AddCommand(newTransitionCmds(s, g)...)
	root.AddCommand(newGateCmd(s, g))
	root.AddCommand(newReportCmd(s, g))
	root.AddCommand(newDemoCmd(s, g))
	root.SetHelpCommand(newHelpCmd())
	// Added now rather than when executing, so wrapArgErrors sees it too.
	root.InitDefaultCompletionCmd()
	if c, _, err := root.Find([]string{"completion"}); err == nil && c != root {
		c.Example = `  migrate completion bash > /etc/bash_completion.d/migrate
  migrate completion zsh > "${fpath[1]}/_migrate"
  migrate completion fish > ~/.config/fish/completions/migrate.fish`
	}
	wrapArgErrors(root)
	return root
}

// wrapArgErrors makes positional-argument mistakes exit with the usage code.
// A parent command (one that only groups subcommands) given an unknown
// subcommand fails with a suggestion; cobra would print its help and exit 0,
// which lets a typo in a script pass for success.
func wrapArgErrors(cmd *cobra.Command) {
	if cmd.HasParent() && cmd.HasSubCommands() && !cmd.Runnable() {
		cmd.Args = cobra.ArbitraryArgs
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			return unknownSubcommand(c, args[0])
		}
	} else if validate := cmd.Args; validate != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := validate(c, args); err != nil {
				return &codedError{code: exitUsage, err: err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		wrapArgErrors(sub)
	}
}

// newHelpCmd is cobra's help command, except that an unknown topic is a
// usage error (cobra prints "Unknown help topic" and exits 0).
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help shows the help of any command: migrate help analyze cluster.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil || cmd == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, sub.Name()+"\t"+sub.Short)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			root := c.Root()
			cmd, rest, err := root.Find(args)
			switch {
			case err != nil || cmd == nil:
				err = unknownSubcommand(root, args[0])
			case len(rest) > 0:
				err = unknownSubcommand(cmd, rest[0])
			default:
				return cmd.Help()
			}
			// "Run 'migrate help --help'" would not help: the message
			// already lists or suggests the commands.
			return &codedError{code: exitUsage, err: silentUsage{err}}
		},
	}
}

// unknownSubcommand is the usage error for `migrate analyze bogus`: the
// closest subcommand when one is near, else the list to choose from.
func unknownSubcommand(parent *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, parent.CommandPath())
	var names []string
	for _, sub := range parent.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	if near := configfile.Nearest(name, names); near != "" {
		return usageErrorf("%s; did you mean %q?", msg, near)
	}
	return usageErrorf("%s; choose one of %s", msg, strings.Join(names, ", "))
}

// newLogger builds the structured logger every command logs through.
func newLogger(w interface{ Write([]byte) (int, error) }, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageErrorf("--log-level: %v", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	var h slog.Handler
	switch format {
	case "text":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, usageErrorf("--log-format must be text or json, not %q", format)
	}
	// A candidate failing every request must not write a line per request:
	// repeats per route and reason are summarised (the sampled access log,
	// whose rate accessLogSample sets, is left alone).
	return slog.New(logs.NewLimiter(h, logs.LimitOptions{Window: logWindow, Exempt: []string{"access"}})), nil
}

// logWindow is the log limiter's window: per route, message and reason,
// logs.DefaultBurst lines per window, then one summary line.
var logWindow = logs.DefaultWindow
