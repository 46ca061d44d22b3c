package analyze

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"
)

// Limits on what Probe reads from a live service.
const (
	// ProbeTimeout bounds each request to one actuator or springdoc endpoint.
	ProbeTimeout = 10 * time.Second
	// MaxProbeBytes caps each actuator response; /actuator/mappings of a large
	// application is a few hundred KiB.
	MaxProbeBytes = 8 << 20
	// maxInfoEntries keeps a chatty /actuator/info from bloating the inventory.
	maxInfoEntries = 64
)

// maskedValue is how Spring Boot's /actuator/env hides a sanitized value.
const maskedValue = "******"

// ProbeService reads a live Spring Boot service at baseURL: its springdoc document
// (/v3/api-docs, or springfox's /v2/api-docs), and the actuator endpoints
// info, health, mappings and env. Endpoints that are absent are noted in
// Runtime.Absent and are not errors; ProbeService fails only when the service
// answers none of them. The service is named from info (app.name, then
// build.artifact/build.name), then spring.application.name when the env
// endpoint shows it unmasked, then the host. Env values are never stored.
func ProbeService(ctx context.Context, baseURL string) (*Service, error) {
	base, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, fmt.Errorf("probe %s: not an http(s) URL; pass the service's base URL, e.g. http://127.0.0.1:8080", baseURL)
	}
	p := &prober{base: base, client: &http.Client{Timeout: ProbeTimeout}}
	rt := &Runtime{Source: base.String()}
	s := &Service{Runtime: rt}
	answered := 0

	for _, docPath := range []string{"/v3/api-docs", "/v2/api-docs"} {
		api, reached, note, err := p.openAPI(ctx, docPath)
		if err != nil {
			return nil, fmt.Errorf("probe %s: %w", baseURL, err)
		}
		if reached {
			answered++
		}
		if api != nil {
			s.API = api
			s.Sources = append(s.Sources, "openapi:"+api.Source)
			break
		}
		rt.Absent = append(rt.Absent, fmt.Sprintf("%s (%s)", docPath, note))
	}

	var info map[string]any
	var health struct {
		Status     string                     `json:"status"`
		Components map[string]json.RawMessage `json:"components"`
		Details    map[string]json.RawMessage `json:"details"` // Spring Boot 1.x shape
	}
	var mappings map[string]any
	var env struct {
		PropertySources []struct {
			Name       string `json:"name"`
			Properties map[string]struct {
				Value any `json:"value"`
			} `json:"properties"`
		} `json:"propertySources"`
	}
	endpoints := []struct {
		path   string
		target any
	}{
		{"/actuator/info", &info},
		{"/actuator/health", &health},
		{"/actuator/mappings", &mappings},
		{"/actuator/env", &env},
	}
	for _, ep := range endpoints {
		ok, reached, note, err := p.getJSON(ctx, ep.path, ep.target)
		if err != nil {
			return nil, fmt.Errorf("probe %s: %w", baseURL, err)
		}
		if reached {
			answered++
		}
		if ok {
			s.Sources = append(s.Sources, "actuator:"+p.url(ep.path))
		} else {
			rt.Absent = append(rt.Absent, fmt.Sprintf("%s (%s)", ep.path, note))
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("probe %s: nothing answered at /v3/api-docs or /actuator/*; is the service running and is this its base URL?", baseURL)
	}

	rt.Info = flattenInfo(info)
	rt.Status = health.Status
	components := health.Components
	if components == nil {
		components = health.Details
	}
	for name := range components {
		rt.Health = append(rt.Health, name)
	}
	sort.Strings(rt.Health)
	rt.Routes = mappingRoutes(mappings)

	// Only names leave /actuator/env. spring.application.name is read, when it
	// is not masked, solely to name the service.
	var appName string
	names := map[string]bool{}
	for _, ps := range env.PropertySources {
		for name, prop := range ps.Properties {
			names[name] = true
			if name == "spring.application.name" && appName == "" {
				if v, ok := prop.Value.(string); ok && v != maskedValue && !strings.Contains(v, "*") {
					appName = v
				}
			}
		}
	}
	for name := range names {
		rt.Env = append(rt.Env, name)
	}
	sort.Strings(rt.Env)

	s.Name = cmp.Or(rt.Info["app.name"], rt.Info["build.artifact"], rt.Info["build.name"], appName, base.Hostname())
	if h := base.Hostname(); s.Name == h && (h == "localhost" || isIPAddress(h)) {
		s.Name = base.Host
	}
	s.Sources = append([]string{"probe:" + base.String()}, s.Sources...)
	return s, nil
}

// prober holds what every request of one ProbeService call shares.
type prober struct {
	base   *url.URL
	client *http.Client
}

func (p *prober) url(endpoint string) string {
	u := *p.base
	u.Path = strings.TrimRight(u.Path, "/") + endpoint
	return u.String()
}

// getJSON fetches an endpoint into target. ok is false when the endpoint is
// absent, too large or not JSON, and note then says which; reached is false
// when nothing answered at all. err is only for a dead context.
func (p *prober) getJSON(ctx context.Context, endpoint string, target any) (ok, reached bool, note string, err error) {
	body, status, ferr := fetchStatus(ctx, p.client, p.url(endpoint), MaxProbeBytes, ProbeTimeout,
		"application/vnd.spring-boot.actuator.v3+json, application/json")
	if ctx.Err() != nil {
		return false, false, "", ctx.Err()
	}
	switch {
	case status == 0:
		return false, false, "no answer", nil
	case ferr != nil:
		return false, true, "response larger than the probe's cap", nil
	// Health answers 503 with a full body when the service is DOWN.
	case status != http.StatusOK && !(endpoint == "/actuator/health" && status == http.StatusServiceUnavailable):
		return false, true, httpStatusText(status), nil
	case json.Unmarshal(body, target) != nil:
		return false, true, "not the expected JSON", nil
	}
	return true, true, "", nil
}

// openAPI fetches and analyzes a springdoc/springfox document. api is nil when
// the endpoint is absent or its body is not a document; note then says why.
func (p *prober) openAPI(ctx context.Context, endpoint string) (api *API, reached bool, note string, err error) {
	u := p.url(endpoint)
	body, status, ferr := fetchStatus(ctx, p.client, u, MaxOpenAPIBytes, ProbeTimeout, "application/json")
	if ctx.Err() != nil {
		return nil, false, "", ctx.Err()
	}
	switch {
	case status == 0:
		return nil, false, "no answer", nil
	case ferr != nil:
		return nil, true, "response larger than the probe's cap", nil
	case status != http.StatusOK:
		return nil, true, httpStatusText(status), nil
	}
	loc, _ := url.Parse(u)
	api, aerr := analyzeOpenAPIData(ctx, u, body, loc)
	if aerr != nil {
		return nil, true, "not an OpenAPI document", nil
	}
	return api, true, "", nil
}

// flattenInfo turns /actuator/info's nested object into dotted keys with
// string values ("build.version": "1.0.0"), keeping at most maxInfoEntries.
func flattenInfo(info map[string]any) map[string]string {
	if len(info) == 0 {
		return nil
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				key := k
				if prefix != "" {
					key = prefix + "." + k
				}
				walk(key, x[k])
			}
		case string:
			if len(out) < maxInfoEntries && x != maskedValue {
				out[prefix] = x
			}
		case float64, bool:
			if len(out) < maxInfoEntries {
				out[prefix] = fmt.Sprint(x)
			}
		}
	}
	walk("", info)
	if len(out) == 0 {
		return nil
	}
	return out
}

// mappingRoutes lists "METHOD /path" for every request mapping a dispatcher
// servlet (or WebFlux dispatcher handler) reports in /actuator/mappings,
// leaving out Spring's own endpoints (actuator, error, springdoc).
func mappingRoutes(mappings map[string]any) []string {
	set := map[string]bool{}
	contexts, _ := mappings["contexts"].(map[string]any)
	for _, c := range contexts {
		cm, _ := c.(map[string]any)
		m, _ := cm["mappings"].(map[string]any)
		for _, group := range []string{"dispatcherServlets", "dispatcherHandlers"} {
			dispatchers, _ := m[group].(map[string]any)
			for _, d := range dispatchers {
				list, _ := d.([]any)
				for _, entry := range list {
					for _, r := range routesOfMapping(entry) {
						set[r] = true
					}
				}
			}
		}
	}
	routes := make([]string, 0, len(set))
	for r := range set {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	if len(routes) == 0 {
		return nil
	}
	return routes
}

// routesOfMapping reads one mapping entry: the structured
// requestMappingConditions when present, else the "{GET [/path]}" predicate.
func routesOfMapping(entry any) []string {
	e, _ := entry.(map[string]any)
	var methods, patterns []string
	details, _ := e["details"].(map[string]any)
	if cond, ok := details["requestMappingConditions"].(map[string]any); ok {
		methods = stringList(cond["methods"])
		patterns = stringList(cond["patterns"])
	} else if pred, ok := e["predicate"].(string); ok {
		methods, patterns = parsePredicate(pred)
	}
	var out []string
	for _, p := range patterns {
		if isFrameworkPath(p) {
			continue
		}
		if len(methods) == 0 {
			out = append(out, "* "+p)
		}
		for _, m := range methods {
			out = append(out, strings.ToUpper(m)+" "+p)
		}
	}
	return out
}

// parsePredicate reads Spring's "{GET [/api/order], produces [...]}" or
// "{GET /api/order}" form.
func parsePredicate(pred string) (methods, patterns []string) {
	pred = strings.TrimPrefix(strings.TrimSpace(pred), "{")
	// Methods and patterns come first, the patterns in brackets; later
	// clauses (consumes, produces, params) are not routes.
	head := pred
	if i := strings.IndexByte(pred, ']'); i >= 0 {
		head = pred[:i]
	} else if i := strings.IndexAny(pred, ",}"); i >= 0 {
		head = pred[:i]
	}
	fields := strings.Fields(strings.NewReplacer("[", " ", ",", " ", "||", " ").Replace(head))
	for _, f := range fields {
		switch {
		case strings.HasPrefix(f, "/"):
			patterns = append(patterns, f)
		case slices.Contains(methodOrder, strings.ToUpper(f)):
			methods = append(methods, strings.ToUpper(f))
		}
	}
	return methods, patterns
}

// isFrameworkPath reports Spring's own routes, which are not the service's API.
func isFrameworkPath(p string) bool {
	for _, prefix := range []string{"/actuator", "/error", "/v3/api-docs", "/v2/api-docs", "/swagger-ui", "/swagger-resources", "/webjars"} {
		if p == prefix || strings.HasPrefix(p, prefix+"/") || strings.HasPrefix(p, prefix+".") {
			return true
		}
	}
	// "/**" and friends are static-resource handlers, not endpoints.
	return p == "/swagger-ui.html" || strings.HasSuffix(p, "/**")
}

func stringList(v any) []string {
	list, _ := v.([]any)
	var out []string
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func isIPAddress(host string) bool { return net.ParseIP(host) != nil }
