package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/strangler"
)

type gateOptions struct {
	controlOptions
	to string
}

func newGateCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &gateOptions{}
	cmd := &cobra.Command{
		Use:   "gate SERVICE|ROUTE",
		Short: "Check whether routes clear their gate, without changing anything",
		Long: `Evaluate the gate of a route, or of every route of a service, against its live
evidence and print one line per criterion: what the gate wants, what the evidence
has, and how far off it is. Nothing changes.

The gate checked is the next one: cutover (samples, match ratio after noise, judged
by its 95% confidence bounds, recent unexplained differences, candidate error rate,
p99 ratio, shadow duration, write coverage; from canary also what the current step
served), or retired for routes already cut over (time in cutover, record since).

Exit code 0 when the gate passes, 3 when it is not met (failed: fix what failed; or
inconclusive: too little evidence yet), so CI pipelines can wait on it.`,
		Example: `  migrate gate order-service
  migrate gate "POST /api/order" -o json | jq '.routes[].criteria[] | select(.pass | not)'
  until migrate gate product-service >/dev/null; do sleep 60; done && migrate cutover product-service`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.to {
			case "", string(strangler.ModeCutover), string(strangler.ModeRetired):
			default:
				return usageErrorf("--to must be cutover or retired, not %q", o.to)
			}
			return runGate(cmd.Context(), o, args[0], g, s)
		},
	}
	o.bind(cmd)
	cmd.Flags().StringVar(&o.to, "to", "", "promotion to check: cutover or retired (default: the route's next one)")
	return cmd
}

func runGate(ctx context.Context, o *gateOptions, target string, g *globalOptions, s *streams) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	rep, err := c.Gate(ctx, target, strangler.Mode(o.to))
	if err != nil {
		return apiError(err)
	}
	err = render(s.out, g.output, rep, func(tw *tableWriter) {
		gateTable(tw, s, rep.Routes)
	})
	if err != nil {
		return err
	}
	if g.output == "table" {
		fmt.Fprintf(s.out, "\ngate for %s: %s\n", target, s.paint(verdictColor(rep.Verdict), rep.Verdict))
		writeHints(s, rep.Routes)
	}
	if !rep.Pass {
		return notMetErrorf("gate for %s is %s: %s", target, rep.Verdict, notMetHint(rep.Verdict))
	}
	return nil
}

// notMetHint is what to do about a verdict: a failed criterion needs a
// fix, waiting will not change it; an inconclusive one needs evidence.
func notMetHint(verdict string) string {
	if verdict == strangler.VerdictInconclusive {
		return "not enough evidence yet; collect more evidence and check again"
	}
	return "fix what failed; more of the same evidence will not change it"
}

// writeHints prints, under a gate table, what would meet each criterion
// that was not met (once per hint and route).
func writeHints(s *streams, routes []strangler.RouteGate) {
	seen := map[string]bool{}
	first := true
	for _, r := range routes {
		for _, c := range r.Criteria {
			key := r.Route + "\x00" + c.Hint
			if c.Pass || c.Hint == "" || seen[key] {
				continue
			}
			seen[key] = true
			if first {
				fmt.Fprintln(s.out)
				first = false
			}
			fmt.Fprintf(s.out, "%s: %s: %s\n", r.Route, c.Name, c.Hint)
		}
	}
}

func verdictColor(v string) string {
	switch v {
	case strangler.VerdictPass:
		return colorGreen
	case strangler.VerdictInconclusive:
		return colorYellow
	}
	return colorRed
}

// gateTable prints one row per criterion of each route.
func gateTable(tw *tableWriter, s *streams, routes []strangler.RouteGate) {
	row(tw, "ROUTE", "TO", "CRITERION", "WANT", "GOT", "OFF BY", "RESULT")
	for _, r := range routes {
		if len(r.Criteria) == 0 {
			row(tw, r.Route, r.To, "-", "no gate configured", "-", "-", s.paint(verdictColor(r.Verdict), r.Verdict))
			continue
		}
		for _, c := range r.Criteria {
			row(tw, r.Route, r.To, c.Name, c.Want, c.Got, orDash(c.Delta), s.paint(verdictColor(criterionVerdict(c)), criterionVerdict(c)))
		}
	}
}

// unmet keeps the criteria that did not pass.
func unmet(criteria []strangler.Criterion) []strangler.Criterion {
	var out []strangler.Criterion
	for _, c := range criteria {
		if !c.Pass {
			out = append(out, c)
		}
	}
	return out
}

func criterionVerdict(c strangler.Criterion) string {
	switch {
	case c.Pass:
		return strangler.VerdictPass
	case c.Inconclusive:
		return strangler.VerdictInconclusive
	}
	return strangler.VerdictFail
}

// refusedTransition explains a refused cutover or retire: the table of
// criteria that were not met (or the error document with -o json/yaml),
// then exit code 3. Other admin API errors map as usual.
func refusedTransition(err error, target string, g *globalOptions, s *streams) error {
	var e *strangler.APIError
	if !errors.As(err, &e) || e.Doc.Code != "gate-not-met" || len(e.Doc.Gate) == 0 {
		return apiError(err)
	}
	names := make([]string, 0, len(e.Doc.Gate))
	for name := range e.Doc.Gate {
		names = append(names, name)
	}
	sort.Strings(names)
	var routes []strangler.RouteGate
	verdict := strangler.VerdictPass
	for _, name := range names {
		res := e.Doc.Gate[name]
		v := res.Verdict
		if v == "" {
			v = strangler.VerdictFail
			if res.Pass {
				v = strangler.VerdictPass
			}
		}
		if v == strangler.VerdictFail || (v == strangler.VerdictInconclusive && verdict == strangler.VerdictPass) {
			verdict = v
		}
		var to strangler.Mode
		var snap strangler.GateSnapshot
		if json.Unmarshal(res.Evidence, &snap) == nil {
			to = snap.To
		}
		if missed := unmet(res.Criteria); len(missed) > 0 {
			routes = append(routes, strangler.RouteGate{Route: name, To: to, Verdict: v, Criteria: missed})
		}
	}
	if g.output == "table" {
		fmt.Fprintf(s.out, "%s refused, gate verdict %s:\n\n", target, s.paint(verdictColor(verdict), verdict))
		_ = render(s.out, "table", nil, func(tw *tableWriter) { gateTable(tw, s, routes) })
		writeHints(s, routes)
		fmt.Fprintln(s.out)
	} else if rerr := render(s.out, g.output, e.Doc, nil); rerr != nil {
		return rerr
	}
	return &codedError{code: exitGateOrDiff, err: &gateRefusal{verdict: verdict,
		msg: fmt.Sprintf("gate not met for %s (%s): %s; or override with --force --reason TEXT", target, verdict, notMetHint(verdict))}}
}

// gateRefusal is a promotion the gate refused, with its verdict (fail or
// inconclusive), so a caller can tell the two apart without the text.
type gateRefusal struct {
	verdict string
	msg     string
}

func (e *gateRefusal) Error() string { return e.msg }

// runCanaryWalk starts a progressive canary: the proxy walks the weights.
func runCanaryWalk(ctx context.Context, o *transitionOptions, target string, g *globalOptions, s *streams) error {
	steps, err := strangler.ParseSteps(o.steps)
	if err != nil {
		return usageErrorf("--steps: %v", err)
	}
	if o.interval <= 0 {
		return usageErrorf("--interval %s: each step needs a positive observation time, e.g. 1m", o.interval)
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	actor := o.actor
	if actor == "" {
		actor = currentUser()
	}
	doc, err := c.StartCanary(ctx, strangler.CanaryRequest{Target: target, Steps: steps,
		Interval: strangler.Duration(o.interval), Actor: actor, Reason: o.reason})
	if err != nil {
		return apiError(err)
	}
	return render(s.out, g.output, doc, func(tw *tableWriter) {
		walkTable(tw, s, doc.Walks)
	})
}

func walkTable(tw *tableWriter, s *streams, walks []strangler.CanaryWalk) {
	row(tw, "WALK", "TARGET", "STEPS", "WEIGHT", "INTERVAL", "STATE", "DETAIL")
	for _, w := range walks {
		steps := make([]string, len(w.Steps))
		for i, st := range w.Steps {
			steps[i] = fmt.Sprintf("%d", st)
		}
		row(tw, fmt.Sprintf("#%d", w.ID), w.Target, strings.Join(steps, ","), fmt.Sprintf("%d%%", w.Weight),
			time.Duration(w.Interval), s.paint(walkColor(w.State), w.State), orDash(w.Detail))
	}
}

func walkColor(state string) string {
	switch state {
	case strangler.WalkRunning:
		return colorBlue
	case strangler.WalkCompleted:
		return colorGreen
	case strangler.WalkPaused:
		return colorYellow
	}
	return colorRed
}

// TimelineDocument is `migrate status --timeline -o json`: the audited
// transitions (oldest first) and the canary walks (newest first).
type TimelineDocument struct {
	APIVersion  string                 `json:"apiVersion"`
	Target      string                 `json:"target,omitempty"`
	Transitions []strangler.Transition `json:"transitions"`
	Walks       []strangler.CanaryWalk `json:"walks"`
}

// runTimeline prints the audit trail of a service, a route or everything.
func runTimeline(ctx context.Context, c *strangler.AdminClient, filter string, g *globalOptions, s *streams) error {
	q := strangler.AuditQuery{Service: filter, Limit: 1000}
	audit, err := c.Audit(ctx, q)
	if err != nil {
		return apiError(err)
	}
	if filter != "" && len(audit.Transitions) == 0 {
		if audit, err = c.Audit(ctx, strangler.AuditQuery{Route: filter, Limit: 1000}); err != nil {
			return apiError(err)
		}
	}
	walks, err := c.CanaryWalks(ctx, filter)
	if err != nil && !strangler.IsCode(err, "unknown-target") {
		return apiError(err)
	}
	doc := TimelineDocument{APIVersion: APIVersion, Target: filter, Transitions: audit.Transitions, Walks: []strangler.CanaryWalk{}}
	if doc.Transitions == nil {
		doc.Transitions = []strangler.Transition{}
	}
	if walks != nil && walks.Walks != nil {
		doc.Walks = walks.Walks
	}
	return render(s.out, g.output, doc, func(tw *tableWriter) {
		row(tw, "TIME", "SERVICE", "ROUTE", "CHANGE", "ACTOR", "GATE", "REASON")
		for _, t := range doc.Transitions {
			change := fmt.Sprintf("%s → %s", modeText(t.From, t.FromWeight), modeText(t.To, t.ToWeight))
			row(tw, t.At.Local().Format("2006-01-02 15:04:05"), t.Service, t.Route, change, t.Actor,
				gateCell(s, t), orDash(t.Reason))
		}
		if len(doc.Walks) > 0 {
			tw.Flush()
			fmt.Fprintln(tw)
			walkTable(tw, s, doc.Walks)
		}
	})
}

func modeText(m strangler.Mode, weight int) string {
	if m == strangler.ModeCanary {
		return fmt.Sprintf("canary %d%%", weight)
	}
	return string(m)
}

// gateCell summarises the gate snapshot stored with a transition.
func gateCell(s *streams, t strangler.Transition) string {
	var snap strangler.GateSnapshot
	if len(t.Evidence) == 0 || json.Unmarshal(t.Evidence, &snap) != nil {
		if t.Forced {
			return s.paint(colorYellow, "forced")
		}
		return "-"
	}
	cell := snap.Verdict
	if cell == "" {
		cell = "ungated"
	}
	if snap.Shadow != nil && snap.Shadow.Samples > 0 {
		cell += fmt.Sprintf(" (%d samples, %s match)", snap.Shadow.Samples, ratioText(snap.Shadow.MatchRatio))
	}
	if snap.Canary != nil {
		cell += fmt.Sprintf(" (step %d%%: %d requests, %d errors)", snap.Canary.Weight, snap.Canary.CandidateRequests, snap.Canary.CandidateErrors)
	}
	if t.Forced {
		cell = "forced over " + cell
		return s.paint(colorYellow, cell)
	}
	return s.paint(verdictColor(snap.Verdict), cell)
}
