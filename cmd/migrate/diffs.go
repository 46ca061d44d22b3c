package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/proxy"
	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

type diffsOptions struct {
	controlOptions
	limit     int
	maxBytes  int
	all       bool
	replay    bool
	candidate string
}

func newDiffsCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &diffsOptions{}
	cmd := &cobra.Command{
		Use:   "diffs [ROUTE]",
		Short: "Show the stored shadow differences between legacy and candidate",
		Long: `Show the shadow samples the running proxy stored: for each mismatching (or failed)
request, the typed differences and a unified diff of legacy (-) against candidate (+),
JSON pretty-printed with sorted keys so only real changes show; noise is marked.

With --replay, each stored mismatching request is sent again to the route's current
candidate (the config's candidate URL or Wasm module, or --candidate URL) and compared
with the stored legacy response, so you can see which differences a new build fixed.

Exits 3 when differences remain, so CI can use it as a check.`,
		Example: `  migrate diffs
  migrate diffs "GET /api/order" --limit 5
  migrate diffs "GET /api/order" -o json
  migrate diffs "POST /api/order" --replay --candidate http://127.0.0.1:3000`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			route := ""
			if len(args) == 1 {
				route = args[0]
			}
			if o.limit <= 0 {
				return usageErrorf("--limit must be positive, not %d", o.limit)
			}
			if o.maxBytes < 0 {
				return usageErrorf("--max-bytes must be 0 (no cut) or positive, not %d", o.maxBytes)
			}
			if o.candidate != "" && !o.replay {
				return usageErrorf("--candidate only makes sense with --replay")
			}
			return runDiffs(cmd.Context(), o, route, g, s)
		},
	}
	o.bind(cmd)
	cmd.ValidArgsFunction = o.completeTargets(false) // routes only
	f := cmd.Flags()
	f.IntVar(&o.limit, "limit", 20, "how many stored differences to show per route, newest first (with --all: samples of any kind)")
	f.IntVar(&o.maxBytes, "max-bytes", 4096, "cut each sample's diff after this many bytes, and any line after 240 (0: no cut; -o json is never cut)")
	f.BoolVar(&o.all, "all", false, "include matching and A/A baseline samples")
	f.BoolVar(&o.replay, "replay", false, "re-send stored mismatching requests to the current candidate and report which now match")
	f.StringVar(&o.candidate, "candidate", "", "candidate base URL to replay against (default: the config's candidate)")
	return cmd
}

// diffsDocument is `migrate diffs -o json`: one object per route with its
// status figures and the samples shown.
type diffsDocument struct {
	APIVersion string       `json:"apiVersion"`
	Routes     []diffsRoute `json:"routes"`
}

type diffsRoute struct {
	strangler.RouteStatus
	Diffs  []storedSample  `json:"diffs"`
	Replay []replayOutcome `json:"replay,omitempty"`
}

type storedSample struct {
	ID int64 `json:"id"`
	shadow.Sample
}

// replayOutcome is one re-sent request and how it compares now.
type replayOutcome struct {
	ID         int64    `json:"id"`
	Before     string   `json:"before"`
	After      string   `json:"after"`
	Error      string   `json:"error,omitempty"`
	Skipped    string   `json:"skipped,omitempty"`
	Signatures []string `json:"signatures,omitempty"`
}

func runDiffs(ctx context.Context, o *diffsOptions, route string, g *globalOptions, s *streams) error {
	c, err := o.client()
	if err != nil {
		return err
	}
	status, err := c.Routes(ctx)
	if err != nil {
		return apiError(err)
	}
	var routes []strangler.RouteStatus
	var names []string
	for _, r := range status.Routes {
		names = append(names, r.Route)
		if route == "" || r.Route == route {
			routes = append(routes, r)
		}
	}
	if route != "" && len(routes) == 0 {
		return usageErrorf("%q is not a route of the running proxy.\nroutes:\n  %s", route, strings.Join(names, "\n  "))
	}
	doc := diffsDocument{APIVersion: APIVersion, Routes: []diffsRoute{}}
	remaining := 0
	var replayer *replayer
	if o.replay {
		if replayer, err = newReplayer(ctx, o); err != nil {
			return err
		}
		defer replayer.close(ctx)
	}
	for _, r := range routes {
		rows, err := c.Samples(ctx, r.Route, o.limit, !o.all)
		if err != nil {
			return apiError(err)
		}
		dr := diffsRoute{RouteStatus: r, Diffs: []storedSample{}}
		var noise *shadow.Noise
		if o.replay {
			noise = storedNoise(rows.Samples)
		}
		for _, row := range rows.Samples {
			var smp shadow.Sample
			if err := json.Unmarshal(row.Data, &smp); err != nil {
				return fmt.Errorf("stored sample %d of %q is not a shadow sample: %w", row.ID, r.Route, err)
			}
			interesting := !smp.Baseline && smp.Result.Outcome != shadow.OutcomeMatch
			if !o.all && !interesting {
				continue
			}
			dr.Diffs = append(dr.Diffs, storedSample{ID: row.ID, Sample: smp})
			if interesting && !o.replay {
				remaining++
			}
			if o.replay && interesting {
				out := replayer.replay(ctx, r.Route, r.Service, row.ID, smp, noise)
				if out.After != shadow.OutcomeMatch {
					remaining++
				}
				dr.Replay = append(dr.Replay, out)
			}
		}
		doc.Routes = append(doc.Routes, dr)
	}

	switch {
	case g.output != "table":
		if err := render(s.out, g.output, doc, nil); err != nil {
			return err
		}
	case o.replay:
		_ = render(s.out, "table", doc, func(tw *tableWriter) {
			row(tw, "ROUTE", "SAMPLE", "BEFORE", "NOW", "STILL DIFFERENT")
			for _, r := range doc.Routes {
				for _, rp := range r.Replay {
					now := rp.After
					switch {
					case rp.Skipped != "":
						now = "skipped: " + rp.Skipped
					case rp.After == shadow.OutcomeMatch:
						now = s.paint(colorGreen, "match")
					default:
						now = s.paint(colorRed, now)
					}
					still := make([]string, len(rp.Signatures))
					for i, sig := range rp.Signatures {
						still[i] = shadow.DescribeSignature(sig)
					}
					row(tw, r.Route, rp.ID, rp.Before, now, strings.Join(still, ", "))
				}
			}
		})
	default:
		shown := 0
		for _, r := range doc.Routes {
			for _, smp := range r.Diffs {
				if shown > 0 {
					fmt.Fprintln(s.out)
				}
				fmt.Fprintf(s.out, "%s\n", s.paint(colorDim, fmt.Sprintf("sample %d", smp.ID)))
				var buf bytes.Buffer
				if err := shadow.Render(smp.Sample, &buf, s.color); err != nil {
					return err
				}
				writeBounded(s.out, buf.String(), o.maxBytes, s.color)
				shown++
			}
		}
		if shown == 0 {
			fmt.Fprintln(s.out, "No stored differences.")
		}
	}
	if remaining > 0 {
		return notMetErrorf("%d stored sample(s) still differ", remaining)
	}
	return nil
}

// replayer re-sends stored requests to the current candidate.
type replayer struct {
	cfg      *strangler.Config
	override *url.URL
	client   *http.Client
	// In-process candidates are built as the proxy builds them, from the
	// same compilation cache.
	newWasm   proxy.WasmFactory
	closeWasm func(context.Context) error
	wasm      map[string]shadow.Backend
	closers   []func(context.Context) error
}

func newReplayer(ctx context.Context, o *diffsOptions) (*replayer, error) {
	rp := &replayer{wasm: map[string]shadow.Backend{}, client: &http.Client{
		Timeout: 30 * time.Second,
		// A redirect is part of the answer being compared, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	if o.candidate != "" {
		u, err := url.Parse(o.candidate)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, usageErrorf("--candidate %q is not a URL like http://127.0.0.1:3000", o.candidate)
		}
		rp.override = u
	}
	if path := o.configPath(); path != "" {
		cfg, err := o.loadConfig(path)
		if err != nil {
			return nil, usageErrorf("%v", err)
		}
		rp.cfg = cfg
	}
	if rp.override == nil && rp.cfg == nil {
		return nil, usageErrorf("--replay needs the candidate: pass --candidate URL or --config strangler.yaml")
	}
	return rp, nil
}

func (rp *replayer) close(ctx context.Context) {
	for _, c := range rp.closers {
		c(ctx)
	}
	if rp.closeWasm != nil {
		rp.closeWasm(ctx)
	}
}

// backend finds the candidate of a service: --candidate, else the
// config's candidate URL or in-process Wasm module.
func (rp *replayer) backend(ctx context.Context, service string) (shadow.Backend, *shadow.Options, error) {
	var opts *shadow.Options
	var svc *strangler.Service
	if rp.cfg != nil {
		svc = rp.cfg.Services[service]
		if svc != nil {
			opts = svc.Shadow
		}
	}
	if rp.override != nil {
		return urlBackend{base: rp.override, client: rp.client}, opts, nil
	}
	if svc == nil || svc.Candidate == nil {
		return nil, opts, fmt.Errorf("service %q has no candidate in the config; pass --candidate URL", service)
	}
	if svc.Candidate.URL != "" {
		u, err := url.Parse(svc.Candidate.URL)
		if err != nil {
			return nil, opts, fmt.Errorf("candidate URL of %q: %w", service, err)
		}
		return urlBackend{base: u, client: rp.client}, opts, nil
	}
	if b, ok := rp.wasm[service]; ok {
		return b, opts, nil
	}
	if rp.newWasm == nil {
		f, closeAll, err := proxy.NewWasmFactory(ctx, wasmCacheDir(rp.cfg), slog.Default())
		if err != nil {
			return nil, opts, err
		}
		rp.newWasm, rp.closeWasm = f, closeAll
	}
	b, closeFn, err := rp.newWasm(ctx, svc.Candidate.Raw, rp.cfg.Dir)
	if err != nil {
		return nil, opts, fmt.Errorf("load candidate of %q: %w", service, err)
	}
	if wb, ok := b.(*wasm.Backend); ok {
		wb.UseServices(legacyServices{cfg: rp.cfg, client: rp.client})
	}
	rp.closers = append(rp.closers, closeFn)
	rp.wasm[service] = b
	return b, opts, nil
}

// legacyServices answers a replayed candidate's calls to named services
// from their legacy upstreams: there is no route table in a replay, and a
// replay's writes are stubbed (shadow.WithCalls), so only reads are sent.
type legacyServices struct {
	cfg    *strangler.Config
	client *http.Client
}

func (l legacyServices) HasService(name string) bool { return l.cfg.Services[name] != nil }

// ServiceRoute names the service's route a call matches, so a replayed
// candidate's writes are grouped by route template as the stored legacy
// calls, recorded by the proxy's egress, are.
func (l legacyServices) ServiceRoute(service, method, path string) string {
	routes := l.cfg.Services[service].Routes
	m, err := strangler.NewMatcher(routes)
	if err != nil {
		return ""
	}
	if i := m.Match(method, path); i >= 0 {
		return routes[i]
	}
	return ""
}

func (l legacyServices) ServiceRoundTrip(service string, r *http.Request) (*http.Response, error) {
	base, err := url.Parse(l.cfg.Services[service].Legacy)
	if err != nil {
		return nil, err
	}
	return urlBackend{base: base, client: l.client}.RoundTrip(r)
}

// replay re-sends one stored request and compares the answer with the
// stored legacy response.
func (rp *replayer) replay(ctx context.Context, route, service string, id int64, smp shadow.Sample, noise *shadow.Noise) replayOutcome {
	out := replayOutcome{ID: id, Before: smp.Result.Outcome}
	if smp.Request.Truncated {
		out.Skipped = "request body was truncated when stored"
		out.After = smp.Result.Outcome
		return out
	}
	be, opts, err := rp.backend(ctx, service)
	if err != nil {
		out.Skipped, out.After = err.Error(), smp.Result.Outcome
		return out
	}
	u, err := url.Parse(smp.Request.URL)
	if err != nil {
		out.Skipped, out.After = "stored URL does not parse", smp.Result.Outcome
		return out
	}
	req, err := http.NewRequestWithContext(ctx, smp.Request.Method, u.RequestURI(), nil)
	if err != nil {
		out.Skipped, out.After = err.Error(), smp.Result.Outcome
		return out
	}
	for k, vs := range smp.Request.Header {
		for _, v := range vs {
			if v != "[redacted]" { // redacted credentials cannot be replayed
				req.Header.Add(k, v)
			}
		}
	}
	// A replay is a shadow copy once more: an in-process candidate's writes
	// are stubbed, not sent, and its calls compared with legacy's stored ones.
	cand := shadow.Send(ctx, route, be, req, smp.Request.Body, opts, "replay", false, &shadow.Calls{})
	res := shadow.Compare(smp.Legacy, cand, opts, noise)
	out.After, out.Error, out.Signatures = res.Outcome, res.Error, res.Signatures()
	sort.Strings(out.Signatures)
	return out
}

// storedNoise rebuilds the route's learned noise from its stored samples:
// the legacy-vs-legacy baselines, and the differences the proxy marked as
// learned noise. Without it a replay would call an order number that
// differs on every request a difference, and no fix could ever match.
func storedNoise(rows []strangler.SampleRow) *shadow.Noise {
	noise := shadow.NewNoise()
	for _, row := range rows {
		var smp shadow.Sample
		if json.Unmarshal(row.Data, &smp) != nil {
			continue // reported when the sample itself is shown
		}
		if smp.Baseline {
			noise.Learn(smp.Result, smp.At)
			continue
		}
		var learned shadow.Result
		for _, d := range smp.Result.Differences {
			if d.Noise == shadow.NoiseLearned {
				learned.Differences = append(learned.Differences, d)
			}
		}
		if len(learned.Differences) > 0 {
			noise.Learn(learned, smp.At)
		}
	}
	return noise
}

// urlBackend sends a request to a remote candidate's base URL.
type urlBackend struct {
	base   *url.URL
	client *http.Client
}

func (b urlBackend) RoundTrip(r *http.Request) (*http.Response, error) {
	r.URL.Scheme, r.URL.Host = b.base.Scheme, b.base.Host
	if p := strings.TrimSuffix(b.base.Path, "/"); p != "" {
		r.URL.Path = p + r.URL.Path
	}
	r.Host = b.base.Host
	r.RequestURI = ""
	return b.client.Do(r)
}

// maxDiffLineBytes is where a rendered diff line is cut: a minified JSON
// body or a long text line would otherwise fill the screen.
const maxDiffLineBytes = 240

// writeBounded writes a rendered sample with long lines cut at
// maxDiffLineBytes, and stops at the first line past limit bytes (0: no
// cut at all); each cut says how many bytes it left out. Bytes are
// counted as shown: colour codes do not count, and a cut never splits a
// character or a code.
func writeBounded(w io.Writer, text string, limit int, color bool) {
	if limit == 0 {
		io.WriteString(w, text)
		return
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	written := 0
	for i, line := range lines {
		if written >= limit {
			rest := 0
			for _, l := range lines[i:] {
				rest += visibleLen(l) + 1
			}
			fmt.Fprintf(w, "… %d more bytes (--max-bytes 0 or -o json shows them all)\n", rest)
			return
		}
		cut, omitted := cutVisible(line, maxDiffLineBytes)
		written += visibleLen(cut) + 1
		if omitted > 0 {
			cut += resetIf(color) + fmt.Sprintf(" … %d more bytes", omitted)
		}
		io.WriteString(w, cut+"\n")
	}
}

func resetIf(color bool) string {
	if color {
		return "\x1b[0m"
	}
	return ""
}

// cutVisible keeps the first n shown bytes of s (escape sequences are kept
// whole and not counted) and returns how many shown bytes it dropped.
func cutVisible(s string, n int) (string, int) {
	shown := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i += escapeLen(s[i:])
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		if shown+size > n {
			return s[:i], visibleLen(s[i:])
		}
		shown += size
		i += size
	}
	return s, 0
}

// visibleLen counts the bytes of s outside escape sequences.
func visibleLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i += escapeLen(s[i:])
			continue
		}
		n++
		i++
	}
	return n
}
