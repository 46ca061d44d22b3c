package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/user"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/strangler"
)

// controlOptions are shared by the commands that talk to a running proxy.
type controlOptions struct {
	config string
	admin  string
	token  string
	// cmd is the command bound to: its stderr gets the warning about a
	// config that does not load (admin.go).
	cmd *cobra.Command
	// loaded is the config loaded by loadConfig, once per command.
	loaded *loadedConfig
}

type loadedConfig struct {
	cfg *strangler.Config
	err error
}

// loadConfig loads the config at path (configPath's) once: the admin
// address and a replay's candidates come from the same file.
func (o *controlOptions) loadConfig(path string) (*strangler.Config, error) {
	if o.loaded == nil {
		cfg, err := strangler.LoadConfig(path)
		o.loaded = &loadedConfig{cfg, err}
	}
	return o.loaded.cfg, o.loaded.err
}

func (o *controlOptions) bind(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "strangler config whose proxy to talk to (default ./strangler.yaml if present)")
	f.StringVar(&o.admin, "admin", "", "admin API address, e.g. 127.0.0.1:9090 (default $MIGRATE_ADMIN, else the running proxy's, else the config's)")
	f.StringVar(&o.token, "token", "", "admin API bearer token (default $MIGRATE_TOKEN, else $MIGRATE_ADMIN_TOKEN)")
	o.cmd = cmd
	cmd.ValidArgsFunction = o.completeTargets(true)
}

// completeTargets offers the routes a command can name, and the services
// too when it takes one: from the config (--config or ./strangler.yaml)
// when there is one, else from the running proxy's admin API, asked with a
// short deadline so a tab never hangs.
func (o *controlOptions) completeTargets(services bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var svc, routes []string
		if path := o.configPath(); path != "" && o.admin == "" {
			if cfg, err := strangler.LoadConfig(path); err == nil {
				svc, routes = cfg.ServiceNames(), cfg.RouteNames()
			}
		} else if c, err := o.client(); err == nil {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Second)
			defer cancel()
			if doc, err := c.Routes(ctx); err == nil {
				seen := map[string]bool{}
				for _, r := range doc.Routes {
					seen[r.Service] = true
					routes = append(routes, r.Route)
				}
				svc = slices.Sorted(maps.Keys(seen))
			}
		}
		if !services {
			svc = nil
		}
		var out []string
		for _, n := range append(svc, routes...) {
			if strings.HasPrefix(n, toComplete) {
				out = append(out, n)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// configPath is --config, else ./strangler.yaml when it exists, else "".
func (o *controlOptions) configPath() string {
	if o.config != "" {
		return o.config
	}
	if _, err := os.Stat("strangler.yaml"); err == nil {
		return "strangler.yaml"
	}
	return ""
}

// client resolves the admin API and its token (admin.go).
func (o *controlOptions) client() (*strangler.AdminClient, error) {
	var warn io.Writer = io.Discard
	if o.cmd != nil {
		warn = o.cmd.ErrOrStderr()
	}
	return adminClient(o, warn)
}

// apiError maps admin API errors to exit codes: an unknown name is a usage
// error (2) listing the valid names, a gate not met is 3.
func apiError(err error) error {
	var e *strangler.APIError
	if !errors.As(err, &e) {
		return err
	}
	switch e.Doc.Code {
	case "unknown-target":
		return usageErrorf("%q is neither a route nor a service.\nservices: %s\nroutes:\n  %s",
			targetOf(e.Doc.Error), strings.Join(e.Doc.Services, ", "), strings.Join(e.Doc.Routes, "\n  "))
	case "gate-not-met":
		return notMetErrorf("%s", e.Doc.Error)
	case "bad-request":
		return usageErrorf("%s", e.Doc.Error)
	case "unauthorized":
		return fmt.Errorf("%s", e.Doc.Error)
	}
	return err
}

func targetOf(msg string) string {
	if i := strings.Index(msg, `" is neither`); i > 0 && strings.HasPrefix(msg, `"`) {
		return msg[1:i]
	}
	return msg
}

type statusOptions struct {
	controlOptions
	timeline bool
}

func newStatusCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [SERVICE|ROUTE]",
		Short: "Show every route's mode, weight, shadow evidence and latency",
		Long: `Show the running proxy's routes: mode, canary weight, compared samples, matches,
mismatches, candidate errors, and p50/p95/p99 latency of each side. With a service
or route name, only those routes.`,
		Example: `  migrate status
  migrate status order-service -o json
  migrate status order-service --timeline   # who changed what, when, why, on which numbers
  migrate status "GET /api/order" --admin http://127.0.0.1:9090`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			filter := ""
			if len(args) == 1 {
				filter = args[0]
			}
			return runStatus(cmd.Context(), o, filter, g, s)
		},
	}
	o.bind(cmd)
	cmd.Flags().BoolVar(&o.timeline, "timeline", false, "show the audited transitions (time, actor, reason, gate numbers) and canary walks instead")
	return cmd
}

func runStatus(ctx context.Context, o *statusOptions, filter string, g *globalOptions, s *streams) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	if o.timeline {
		return runTimeline(ctx, c, filter, g, s) // gate.go
	}
	doc, err := c.Routes(ctx)
	if err != nil {
		return apiError(err)
	}
	if filter != "" {
		var keep []strangler.RouteStatus
		services := map[string]bool{}
		var names []string
		for _, r := range doc.Routes {
			services[r.Service] = true
			names = append(names, r.Route)
			if r.Route == filter || r.Service == filter {
				keep = append(keep, r)
			}
		}
		if len(keep) == 0 {
			var svc []string
			for name := range services {
				svc = append(svc, name)
			}
			return usageErrorf("%q is neither a route nor a service.\nservices: %s\nroutes:\n  %s",
				filter, strings.Join(slices.Sorted(slices.Values(svc)), ", "), strings.Join(names, "\n  "))
		}
		doc.Routes = keep
	}
	if doc.Routes == nil {
		doc.Routes = []strangler.RouteStatus{}
	}
	err = render(s.out, g.output, doc, func(tw *tableWriter) {
		row(tw, "ROUTE", "SERVICE", "MODE", "WEIGHT", "SAMPLES", "MATCH", "MISMATCH", "CAND-ERR",
			"LEGACY p50/p99", "CANDIDATE p50/p99")
		for _, r := range doc.Routes {
			match := "-"
			if answered := r.Matches + r.Mismatches; answered > 0 {
				match = percentText(r.Matches, answered)
			}
			row(tw, r.Route, r.Service, s.paint(modeColor(r.Mode), string(r.Mode)), weightCell(r.Mode, r.Weight), r.Samples, match,
				r.Mismatches, r.CandidateErrors, latencyCell(r.Latency[strangler.SideLegacy]),
				latencyCell(r.Latency[strangler.SideCandidate]))
		}
	})
	if err != nil || g.output != "table" {
		return err
	}
	writeSkippedWrites(s, doc.Routes)
	if filter == "" {
		return nil
	}
	for _, r := range doc.Routes {
		writeSuggestions(s, r)
	}
	return nil
}

// writeSkippedWrites says, under the table, which routes had writes that
// were never shadowed and how to compare them: their gates cannot pass on
// shadow evidence otherwise.
func writeSkippedWrites(s *streams, routes []strangler.RouteStatus) {
	first := true
	for _, r := range routes {
		if r.WritesSkipped == 0 {
			continue
		}
		if first {
			fmt.Fprintln(s.out)
			first = false
		}
		fmt.Fprintf(s.out, "%s: %d writes skipped, not shadowed; set shadow.writes: allow or marked for %s to compare them\n",
			r.Route, r.WritesSkipped, r.Service)
	}
}

// writeSuggestions shows the ignore rules that would accept a route's
// learned noise, as lines to paste into its service's shadow block.
func writeSuggestions(s *streams, r strangler.RouteStatus) {
	if len(r.Suggestions) == 0 {
		return
	}
	fmt.Fprintf(s.out, "\nNoise learned on %s from legacy-vs-legacy samples. To accept it, add to the\nshadow block of %s in the config:\n", r.Route, r.Service)
	for _, sg := range r.Suggestions {
		fmt.Fprintf(s.out, "  %s\n", sg)
	}
}

// weightCell is the WEIGHT column: the canary share, or "-" in other modes.
func weightCell(m strangler.Mode, weight int) string {
	if m != strangler.ModeCanary {
		return "-"
	}
	return fmt.Sprintf("%d%%", weight)
}

func latencyCell(l strangler.Latency) string {
	if l.P50 == 0 && l.P99 == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f/%.2f ms", l.P50, l.P99)
}

func modeColor(m strangler.Mode) string {
	switch m {
	case strangler.ModeShadow:
		return colorBlue
	case strangler.ModeCanary:
		return colorYellow
	case strangler.ModeCutover, strangler.ModeRetired:
		return colorGreen
	}
	return colorDim
}

// transitionOptions are the flags of shadow, canary, cutover, rollback, retire.
type transitionOptions struct {
	controlOptions
	mode   strangler.Mode
	weight int
	reason string
	actor  string
	force  bool
	// expect makes the request optimistic (conflict if the route moved).
	expect string
	// steps and interval start a progressive canary walk (gate.go).
	steps    string
	interval time.Duration
}

func newTransitionCmds(s *streams, g *globalOptions) []*cobra.Command {
	specs := []struct {
		mode          strangler.Mode
		use, short    string
		long, example string
	}{
		{strangler.ModeShadow, "shadow SERVICE|ROUTE", "Mirror a route's traffic to its candidate and compare (legacy still answers)",
			"Put a route, or every route of a service, in shadow mode: legacy keeps answering every\nclient; a detached copy of each request goes to the candidate and the responses are compared.",
			"  migrate shadow order-service\n  migrate shadow \"GET /api/order\" --reason \"candidate v2 deployed\""},
		{strangler.ModeCanary, "canary SERVICE|ROUTE --weight N | --steps LIST", "Send a sticky share of users to the candidate",
			"Put routes in canary mode: N% of users (kept on one side by the service's stickyBy key) are\nanswered by the candidate, the rest by legacy. Run again with another --weight to change it.\nEntering canary needs shadow evidence that clears the gate, a higher weight needs the current\nstep to have served enough requests within the error ceiling; --force --reason overrides\n(audited). Exit code 3 when the gate is not met.\n\nWith --steps the proxy walks the weights itself: after each --interval it compares the\ncandidate's error rate and p99 with legacy's; a failure rolls back to legacy at once, too\nlittle traffic extends the step, and passing 100% cuts over through the gate. The walk is\nstored, so a restarted proxy resumes it. See it with `migrate status --timeline`.",
			"  migrate canary order-service --weight 5\n  migrate canary order-service --steps 1,5,25,50,100 --interval 10m\n  migrate canary \"POST /api/order\" --weight 50 --reason \"error rate flat for 24h\""},
		{strangler.ModeCutover, "cutover SERVICE|ROUTE", "Let the candidate answer all traffic (after its gate passes)",
			"Cut routes over: the candidate answers every request. From shadow the gate is checked on the\nshadow evidence (like Argo Rollouts' promote --full, skipping canary); from canary on the\nshadow evidence and on what the current canary step served. --force --reason overrides a\ngate not met and records why in the audit log. Exit code 3 when the gate is not met.",
			"  migrate cutover order-service\n  until migrate gate order-service >/dev/null; do sleep 60; done && migrate cutover order-service\n  migrate cutover \"GET /api/order\" --force --reason \"approved by CAB-1234\""},
		{strangler.ModeLegacy, "rollback SERVICE|ROUTE", "Send a route's traffic straight back to legacy",
			"Roll routes back to legacy from any mode, at once. Never gated.",
			"  migrate rollback order-service --reason \"p99 regression\"\n  migrate rollback \"POST /api/order\""},
		{strangler.ModeRetired, "retire SERVICE|ROUTE", "Stop calling legacy for a cut-over route",
			"Retire routes that are cut over: legacy is never called for them again (no reverse shadow),\nso the legacy service can be scaled down. The gate wants the route to have run cleanly in\ncutover: at least minCutoverTime there (default 24h) and enough candidate requests since,\nwithin the error ceiling. --force --reason overrides (audited). Exit code 3 when not met.",
			"  migrate retire product-service\n  migrate retire product-service --force --reason \"legacy host decommissioned\""},
	}
	var cmds []*cobra.Command
	for _, spec := range specs {
		o := &transitionOptions{mode: spec.mode}
		cmd := &cobra.Command{
			Use:     spec.use,
			Short:   spec.short,
			Long:    spec.long,
			Example: spec.example,
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if o.mode == strangler.ModeCanary && cmd.Flags().Changed("steps") {
					if cmd.Flags().Changed("weight") {
						return usageErrorf("use --weight N (one weight) or --steps LIST (a walk), not both")
					}
					if o.force {
						return usageErrorf("a walk is never forced: force its first weight with --weight N --force --reason TEXT, then start the walk at N")
					}
					return runCanaryWalk(cmd.Context(), o, args[0], g, s)
				}
				if o.mode == strangler.ModeCanary && !cmd.Flags().Changed("weight") {
					return usageErrorf("canary needs --weight N (the percentage of users sent to the candidate, 1-100) or --steps LIST --interval D (a progressive walk)")
				}
				return runTransition(cmd.Context(), o, args[0], g, s)
			},
		}
		o.bind(cmd)
		f := cmd.Flags()
		f.StringVar(&o.reason, "reason", "", "why, for the audit log")
		f.StringVar(&o.actor, "actor", "", "who, for the audit log (default: $USER)")
		f.StringVar(&o.expect, "expect-mode", "", "refuse (conflict, exit 1) unless the routes are still in this mode: guards against a concurrent change")
		switch spec.mode {
		case strangler.ModeCanary:
			f.IntVar(&o.weight, "weight", 0, "percentage of users sent to the candidate (1-100)")
			f.StringVar(&o.steps, "steps", "", "walk these weights, e.g. 1,5,25,50,100: each step is checked after --interval; a failure rolls back, 100 ends in cutover")
			f.DurationVar(&o.interval, "interval", time.Minute, "how long each --steps weight is observed before it is checked")
		}
		switch spec.mode {
		case strangler.ModeCanary, strangler.ModeCutover, strangler.ModeRetired:
			f.BoolVar(&o.force, "force", false, "promote although the gate is not met (needs --reason; audited)")
		}
		cmds = append(cmds, cmd)
	}
	return cmds
}

func runTransition(ctx context.Context, o *transitionOptions, target string, g *globalOptions, s *streams) error {
	if o.mode == strangler.ModeCanary && (o.weight < 1 || o.weight > 100) {
		return usageErrorf("--weight %d: use a percentage between 1 and 100", o.weight)
	}
	if o.force && strings.TrimSpace(o.reason) == "" {
		return usageErrorf("--force needs --reason: the audit log must say why the gate was overridden")
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	actor := o.actor
	if actor == "" {
		actor = currentUser()
	}
	doc, err := c.Transition(ctx, strangler.TransitionRequest{Target: target, To: o.mode, Weight: o.weight,
		Actor: actor, Reason: o.reason, Force: o.force, ExpectMode: strangler.Mode(o.expect)})
	if err != nil {
		return refusedTransition(err, target, g, s) // gate.go: table of unmet criteria, exit 3
	}
	if doc.Transitions == nil {
		doc.Transitions = []strangler.Transition{}
	}
	if len(doc.Transitions) == 0 && g.output == "table" {
		fmt.Fprintf(s.out, "%s is already in %s mode; nothing changed\n", target, o.mode)
		return nil
	}
	return render(s.out, g.output, doc, func(tw *tableWriter) {
		row(tw, "ROUTE", "SERVICE", "FROM", "TO", "WEIGHT", "FORCED")
		for _, t := range doc.Transitions {
			forced := ""
			if t.Forced {
				forced = s.paint(colorYellow, "forced")
			}
			row(tw, t.Route, t.Service, t.From, s.paint(modeColor(t.To), string(t.To)), weightCell(t.To, t.ToWeight), forced)
		}
	})
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "cli"
}
