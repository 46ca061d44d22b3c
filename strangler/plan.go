package strangler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/shadow"
)

// PlanOptions steer Plan.
type PlanOptions struct {
	// Source names the inventory file, for the header comment.
	Source string
	// Upstreams override legacy base URLs by service name.
	Upstreams map[string]string
	// Default is the upstream for unmatched requests; when empty Plan uses
	// the service whose ingress routes "/" if there is one.
	Default string
	// Listen, Admin and Store override the defaults.
	Listen, Admin, Store string
	// Candidates sets a service's candidate: an http(s) URL (a remote Wasm
	// platform) or a .wasm module path. Other services get commented-out
	// examples.
	Candidates map[string]string
	// Reusable marks services whose .wasm candidate is a reusable guest
	// (it exports migrate_serve); their candidate is planned with reuse.
	Reusable map[string]bool
	// Gate replaces the default gate block of every service.
	Gate *GateConfig
	// Shadow replaces the default shadow block of a service.
	Shadow map[string]*shadow.Options
}

// plannedReuse is the reuse Plan gives a reusable guest: enough requests
// per instance that instantiation all but disappears from the cost of a
// request (BENCHMARKS.md), few enough that a slow leak in a guest is
// bounded.
const plannedReuse = 10000

// PlanResult is a planned config: the YAML text (commented, meant to be
// edited and committed) and what was skipped and why.
type PlanResult struct {
	YAML     []byte
	Services int
	Routes   int
	Skipped  []string
}

// Plan turns an inventory into a strangler config: one route per OpenAPI
// operation, grouped by service, every route on legacy, legacy upstreams
// from the cluster description. The result always parses with ParseConfig.
func Plan(inv *analyze.Inventory, opts PlanOptions) (*PlanResult, error) {
	res := &PlanResult{}
	for name, c := range opts.Candidates {
		if !hasService(inv, name) {
			return nil, fmt.Errorf("--candidate %s: the inventory has no service %q; it has %s", name, name, strings.Join(serviceNames(inv), ", "))
		}
		if strings.Contains(c, "://") {
			if err := checkUpstream(c); err != nil {
				return nil, fmt.Errorf("--candidate %s: %w", name, err)
			}
		}
	}
	gateLine := "{minSamples: 1000, minMatch: 99.9%, maxP99Ratio: 1.5, maxErrorRate: 0.1%}"
	if opts.Gate != nil {
		b, err := json.Marshal(opts.Gate)
		if err != nil {
			return nil, fmt.Errorf("gate: %w", err)
		}
		gateLine = string(b)
	}
	for name := range opts.Upstreams {
		if !hasService(inv, name) {
			return nil, fmt.Errorf("--upstream %s: the inventory has no service %q; it has %s", name, name, strings.Join(serviceNames(inv), ", "))
		}
		if err := checkUpstream(opts.Upstreams[name]); err != nil {
			return nil, fmt.Errorf("--upstream %s: %w", name, err)
		}
	}
	if opts.Default != "" {
		if err := checkUpstream(opts.Default); err != nil {
			return nil, fmt.Errorf("--default: %w", err)
		}
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	src := opts.Source
	if src == "" {
		src = "an inventory"
	}
	w("# strangler.yaml: the strangler-fig proxy's routes, planned by `migrate plan` from %s.\n", src)
	w("# Edit freely and commit it: `migrate proxy` reloads it on change (or SIGHUP) and\n")
	w("# rejects an invalid edit while the previous config keeps serving. Route modes live\n")
	w("# in the state store once the proxy runs; change them with `migrate shadow|canary|\n")
	w("# cutover|rollback|retire SERVICE|ROUTE`, never by editing this file.\n")
	w("apiVersion: %s\nkind: StranglerConfig\n\n", APIVersion)
	w("# Client traffic.\nlisten: %s\n", orDefault(opts.Listen, DefaultListen))
	w("# Admin API for the control commands. A non-loopback address requires %s.\n", AdminTokenEnv)
	w("admin: %s\n", orDefault(opts.Admin, DefaultAdmin))
	w("# Durable state (route modes, audit log, counters, shadow evidence), next to this file.\n")
	w("store: %s\n", quote(orDefault(opts.Store, DefaultStore)))
	w("# Requests up to this size are buffered so they can go to both sides; larger ones are\n# served but not mirrored.\nmaxBufferedBody: 1MiB\n")

	def, defWhy := opts.Default, "--default"
	if def == "" {
		def, defWhy = ingressCatchAll(inv, opts)
	}
	w("# The default route: requests no route below matches pass unchanged to legacy.\n")
	if def != "" {
		w("# Chosen from %s.\ndefault: %s\n", defWhy, quote(def))
	} else {
		w("# No service owns \"/\" in the cluster description; set the legacy gateway or ingress\n")
		w("# here (or pass --default URL) so unmatched requests are not answered with 404.\n")
		w("# default: http://legacy-gateway:8080\n")
	}
	w("\nservices:\n")

	names := serviceNames(inv)
	planned := planRoutes(inv, names, res)
	for _, name := range names {
		svc := findService(inv, name)
		if err := validServiceName(name); err != nil {
			res.Skipped = append(res.Skipped, fmt.Sprintf("service %q: %v", name, err))
			continue
		}
		p := planned[name]
		routes, notes, opSource := p.routes, p.notes, p.source
		if len(routes) == 0 && svc.IsBacking() {
			// A database, cache or broker is what the services use, not
			// something to port: "no OpenAPI document" would send the
			// reader looking for one.
			res.Skipped = append(res.Skipped, fmt.Sprintf("service %s: a backing service (database, cache or broker), not migrated", name))
			w("  # %s: skipped, a backing service the others use.\n", name)
			continue
		}
		if len(routes) == 0 {
			res.Skipped = append(res.Skipped, fmt.Sprintf("service %s: no HTTP operations known (no OpenAPI document or actuator mappings)", name))
			w("  # %s: skipped, no HTTP operations are known for it (analyze its OpenAPI document).\n", name)
			continue
		}
		legacy, why := legacyURL(svc, opts)
		w("\n  # %s: %d route(s) from %s.", name, len(routes), opSource)
		if svc.Readiness.Level != "" {
			w(" Readiness %d/100 (%s).", svc.Readiness.Score, svc.Readiness.Level)
		}
		w("\n  %s:\n", quote(name))
		w("    # Legacy upstream, %s.\n", why)
		w("    legacy: %s\n", quote(legacy))
		w("    # Longest wait for legacy's response headers.\n    timeout: 30s\n")
		switch c := opts.Candidates[name]; {
		case strings.Contains(c, "://"):
			w("    # The Wasm replacement, on a remote platform.\n    candidate: {url: %s}\n", quote(c))
		case c != "" && opts.Reusable[name]:
			w("    # The Wasm replacement, run in process. It is a reusable guest, so an instance serves\n")
			w("    # up to %d requests in turn; set reuse: 0 if it keeps anything of one request for the next,\n", plannedReuse)
			w("    # and preinit: true to start each fresh instance from a snapshot taken after _initialize.\n")
			out := plannedOutbound(planned, svc, w)
			w("    candidate: {wasm: %s, reuse: %d, maxMemory: 64MiB, timeout: 5s%s}\n", quote(c), plannedReuse, out)
		case c != "":
			w("    # The Wasm replacement, run in process.\n")
			out := plannedOutbound(planned, svc, w)
			w("    candidate: {wasm: %s, maxMemory: 64MiB, timeout: 5s%s}\n", quote(c), out)
		default:
			w("    # The Wasm replacement; uncomment one before leaving legacy mode:\n")
			w("    # candidate: {wasm: components/%s.wasm, maxMemory: 64MiB, timeout: 5s}\n", name)
			w("    # candidate: {url: \"http://%s.spin.local:3000\"}\n", name)
		}
		w("    # Initial mode of new routes (the state store wins afterwards).\n    mode: legacy\n")
		w("    # Canary: share of users sent to the candidate, kept on one side by this key.\n")
		w("    weight: %d\n    stickyBy: \"header:X-User\"\n", DefaultCanaryWeight)
		if so := opts.Shadow[name]; so != nil {
			b, err := json.Marshal(so)
			if err != nil {
				return nil, fmt.Errorf("shadow block of %s: %w", name, err)
			}
			w("    # Shadow: mirror a copy to the candidate and compare.\n    shadow: %s\n", b)
		} else {
			w("    # Shadow: mirror a copy to the candidate and compare; writes are not mirrored by default.\n")
			w("    shadow: {sample: 100%%, writes: deny}\n")
		}
		w("    # Evidence required before cutover.\n")
		w("    gate: %s\n", gateLine)
		w("    routes:\n")
		width := 0
		for _, r := range routes {
			width = max(width, len(quote(r)))
		}
		for i, r := range routes {
			q := quote(r)
			if notes[i] != "" {
				w("      - %s%s  # %s\n", q, strings.Repeat(" ", width-len(q)), notes[i])
			} else {
				w("      - %s\n", q)
			}
		}
		res.Services++
		res.Routes += len(routes)
	}
	if res.Services == 0 {
		return nil, fmt.Errorf("the inventory has no service with HTTP operations; run `migrate analyze openapi` or `analyze cluster --probe` so routes are known")
	}
	if len(res.Skipped) > 0 {
		w("\n# Skipped while planning:\n")
		for _, s := range res.Skipped {
			w("#   %s\n", strings.ReplaceAll(s, "\n", " "))
		}
	}
	res.YAML = b.Bytes()
	if _, err := ParseConfig(res.YAML, ""); err != nil {
		return nil, fmt.Errorf("planned config does not validate: %w", err)
	}
	return res, nil
}

func operations(svc *analyze.Service) ([]analyze.Operation, string) {
	if svc.API != nil && len(svc.API.Operations) > 0 {
		ops := append([]analyze.Operation(nil), svc.API.Operations...)
		sort.SliceStable(ops, func(i, j int) bool {
			if ops[i].Path != ops[j].Path {
				return ops[i].Path < ops[j].Path
			}
			return methodRank(ops[i].Method) < methodRank(ops[j].Method)
		})
		src := svc.API.Source
		if svc.API.Format != "" {
			src += " (" + svc.API.Format + ")"
		}
		return ops, src
	}
	if svc.Runtime != nil && len(svc.Runtime.Routes) > 0 {
		var ops []analyze.Operation
		for _, r := range svc.Runtime.Routes {
			if m, p, ok := SplitRouteName(r); ok {
				ops = append(ops, analyze.Operation{Method: m, Path: p})
			}
		}
		return ops, "actuator mappings at " + svc.Runtime.Source
	}
	return nil, ""
}

func methodRank(m string) int {
	for i, v := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		if strings.EqualFold(m, v) {
			return i
		}
	}
	return 99
}

func opNote(op analyze.Operation) string {
	var parts []string
	if op.OperationID != "" {
		parts = append(parts, op.OperationID)
	}
	if len(op.Tags) > 0 {
		parts = append(parts, "["+strings.Join(op.Tags, ", ")+"]")
	}
	return strings.ReplaceAll(strings.Join(parts, " "), "\n", " ")
}

func legacyURL(svc *analyze.Service, opts PlanOptions) (string, string) {
	if u := opts.Upstreams[svc.Name]; u != "" {
		return strings.TrimSuffix(u, "/"), "from --upstream"
	}
	if d := svc.Deployment; d != nil && d.Upstream != "" && checkUpstream(d.Upstream) == nil {
		return strings.TrimSuffix(d.Upstream, "/"), "from the cluster description; override with --upstream " + svc.Name + "=URL"
	}
	if rt := svc.Runtime; rt != nil && rt.Source != "" && checkUpstream(rt.Source) == nil {
		return strings.TrimSuffix(rt.Source, "/"), "the live endpoint that was probed; override with --upstream " + svc.Name + "=URL"
	}
	if u := serverUpstream(svc.API); u != "" {
		return u, "from the OpenAPI document's servers; override with --upstream " + svc.Name + "=URL"
	}
	port := 8080
	if d := svc.Deployment; d != nil && len(d.Ports) > 0 && d.Ports[0].Port > 0 {
		port = d.Ports[0].Port
	}
	host := svc.Name
	if svc.Namespace != "" && svc.Namespace != "default" {
		host += "." + svc.Namespace
	}
	return "http://" + host + ":" + strconv.Itoa(port), "guessed from the service name; check it or pass --upstream " + svc.Name + "=URL"
}

// serverUpstream is the scheme and host of the document's first absolute
// server URL without variables. Its path is not kept: the operations'
// paths already include it.
func serverUpstream(api *analyze.API) string {
	if api == nil {
		return ""
	}
	for _, raw := range api.Servers {
		if strings.Contains(raw, "{") {
			continue
		}
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			continue
		}
		return u.Scheme + "://" + u.Host
	}
	return ""
}

// ingressCatchAll picks the legacy upstream of a service the cluster routes
// "/" to: the natural default route.
func ingressCatchAll(inv *analyze.Inventory, opts PlanOptions) (string, string) {
	for _, name := range serviceNames(inv) {
		svc := findService(inv, name)
		if svc.Deployment == nil {
			continue
		}
		for _, r := range svc.Deployment.Routes {
			if r == "/" || r == "/*" {
				u, _ := legacyURL(svc, opts)
				return u, "service " + name + ", which the ingress routes \"/\" to"
			}
		}
	}
	return "", ""
}

func validServiceName(name string) error {
	if name == "" || strings.ContainsAny(name, " /\t\n") {
		return fmt.Errorf("a service name must be non-empty and contain no spaces or slashes")
	}
	return nil
}

func hasService(inv *analyze.Inventory, name string) bool { return findService(inv, name) != nil }

// plannedService is what the plan routes to one service.
type plannedService struct {
	routes, notes []string
	source        string // where the operations came from
}

// planRoutes decides every service's routes before any is written, in the
// order they are written: a route goes to the first service that has it, and
// one the matcher cannot tell from an earlier one is skipped. A candidate's
// outbound list may then name only services that get a block, whatever their
// order (an entry naming a service the config lacks does not load).
func planRoutes(inv *analyze.Inventory, names []string, res *PlanResult) map[string]plannedService {
	out := map[string]plannedService{}
	var all []string
	seen := map[string]string{}
	for _, name := range names {
		if validServiceName(name) != nil {
			continue
		}
		ops, source := operations(findService(inv, name))
		p := plannedService{source: source}
		for _, op := range ops {
			route := strings.ToUpper(op.Method) + " " + op.Path
			if err := ValidateRouteName(route); err != nil {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			if other, dup := seen[route]; dup {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: route %q is already planned for %s", name, route, other))
				continue
			}
			if _, err := NewMatcher(append(append([]string(nil), all...), route)); err != nil {
				res.Skipped = append(res.Skipped, fmt.Sprintf("%s: %v", name, err))
				continue
			}
			seen[route] = name
			all = append(all, route)
			p.routes = append(p.routes, route)
			p.notes = append(p.notes, opNote(op))
		}
		out[name] = p
	}
	return out
}

func findService(inv *analyze.Inventory, name string) *analyze.Service {
	for i := range inv.Services {
		if inv.Services[i].Name == name {
			return &inv.Services[i]
		}
	}
	return nil
}

// serviceNames lists services in the inventory's migration order (leaf
// services first), then the rest by name.
func serviceNames(inv *analyze.Inventory) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range inv.Order {
		if !seen[n] && hasService(inv, n) {
			seen[n] = true
			out = append(out, n)
		}
	}
	var rest []string
	for _, s := range inv.Services {
		if !seen[s.Name] {
			seen[s.Name] = true
			rest = append(rest, s.Name)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// quote writes s as a YAML double-quoted scalar (JSON strings are valid YAML).
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// plannedOutbound lets an in-process candidate call, by name, the services
// its legacy deployment depends on that the plan routes too: the calls go
// through the route table (docs/outbound.md). It writes the comment and
// returns the ", outbound: [...]" option, or "" for none.
func plannedOutbound(planned map[string]plannedService, svc *analyze.Service, w func(string, ...any)) string {
	if svc == nil || svc.Deployment == nil {
		return ""
	}
	var deps []string
	for _, d := range svc.Deployment.DependsOn {
		if len(planned[d].routes) > 0 {
			deps = append(deps, quote(d))
		}
	}
	if len(deps) == 0 {
		return ""
	}
	w("    # It calls the services it depends on by name (http://SERVICE/…), through this route table;\n")
	w("    # in shadow its writes are stubbed, not sent, and compared with legacy's.\n")
	return ", outbound: [" + strings.Join(deps, ", ") + "]"
}
