// Package strangler is migrate's control plane: the strangler config file,
// the compiled route table, the per-route state machine with its audit log,
// durable state in SQLite, and the admin HTTP API the CLI talks to.
package strangler

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/internal/configfile"
	"github.com/strangler-fig/migrate/shadow"
)

// Defaults for the config fields that may be left out.
const (
	DefaultListen          = "127.0.0.1:8080"
	DefaultAdmin           = "127.0.0.1:9090"
	DefaultStore           = "migrate.db"
	DefaultTimeout         = 30 * time.Second
	DefaultCandidateTime   = 5 * time.Second
	DefaultMaxIdlePerHost  = 256
	DefaultMaxBufferedBody = 1 << 20
	DefaultCanaryWeight    = 10
	DefaultAccessLogSample = 0.01
)

// Config is a strangler.yaml document. Only json tags: YAML is read by
// converting it to JSON first, so both spellings behave the same.
type Config struct {
	// APIVersion, when present, must be migrate/v1.
	APIVersion string `json:"apiVersion,omitempty"`
	// Kind, when present, must be StranglerConfig.
	Kind string `json:"kind,omitempty"`
	// Listen is the address the proxy serves on. Default 127.0.0.1:8080.
	Listen string `json:"listen,omitempty"`
	// Admin is the admin API address. Default 127.0.0.1:9090. A non-loopback
	// address requires MIGRATE_ADMIN_TOKEN.
	Admin string `json:"admin,omitempty"`
	// AdminHosts are the host names and addresses, besides localhost,
	// loopback addresses and the address a request arrived on, that the
	// admin API answers to in the Host header (a Service's name or cluster
	// IP); any other is refused so a DNS-rebinding page cannot reach it.
	AdminHosts []string `json:"adminHosts,omitempty"`
	// Store is the SQLite state file, relative to the config file's
	// directory. Default migrate.db next to the config.
	Store string `json:"store,omitempty"`
	// Default is the upstream for requests no route matches, like a
	// catch-all route to legacy. Empty: unmatched requests get a 404.
	Default string `json:"default,omitempty"`
	// MaxBufferedBody caps the request and response bytes held in memory to
	// send a request to two sides. Larger requests are served but not
	// mirrored (counted as mirror drops). Default 1MiB.
	MaxBufferedBody ByteSize `json:"maxBufferedBody,omitempty"`
	// WasmMemory caps the memory all in-process (Wasm) candidates together
	// may make the proxy hold: each instance reserves its route's maxMemory
	// plus maxResponse from it before it starts, and an instance that finds
	// no room within a second is refused with a 503 (kind "budget").
	// Read at start. Default: a quarter of the machine's RAM, at most 1GiB.
	WasmMemory ByteSize `json:"wasmMemory,omitempty"`
	// AccessLogSample is the share of requests logged. Default 1%.
	AccessLogSample *Percent `json:"accessLogSample,omitempty"`
	// Services maps a service name to its upstreams and routes.
	Services map[string]*Service `json:"services"`

	// Path is the file the config was loaded from ("" when parsed from bytes).
	Path string `json:"-"`
	// Dir resolves relative paths (store, wasm modules): the config's directory.
	Dir string `json:"-"`
	// doc is the parsed file, kept to place errors found after loading
	// at their line and column without reading the file again.
	doc *configfile.Doc
}

// Service is one legacy service, its candidate replacement and its routes.
type Service struct {
	// Legacy is the base URL of the legacy service. Required.
	Legacy string `json:"legacy"`
	// Timeout bounds how long the legacy service may take to send response
	// headers. Default 30s.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxIdleConns is the keep-alive pool size per upstream host. Default 256.
	MaxIdleConns int `json:"maxIdleConns,omitempty"`
	// Candidate is the replacement: {url: ...} or a wasm module block.
	Candidate *Candidate `json:"candidate,omitempty"`
	// Routes are "METHOD /path/template" names, as in the OpenAPI document.
	Routes []string `json:"routes"`
	// Mode is the initial mode of routes the state store does not know yet.
	// The store wins afterwards, so a restart resumes exactly. Default legacy.
	Mode Mode `json:"mode,omitempty"`
	// Weight is the initial canary weight in percent. Default 10.
	Weight int `json:"weight,omitempty"`
	// StickyBy keeps one user on one side in canary mode: "header:X-User"
	// or "cookie:SESSION". Default: no stickiness (random per request).
	StickyBy string `json:"stickyBy,omitempty"`
	// ReverseShadow keeps comparing after shadow mode: in cutover, and in
	// canary for the requests the candidate answers, a detached copy goes
	// to legacy and the two answers are compared into the route's evidence
	// (writes only under `shadow.writes: allow`). A canary walk then also
	// judges each step's match ratio. Default false.
	ReverseShadow bool `json:"reverseShadow,omitempty"`
	// Shadow is the shadow block: sampling, write policy, normalisation.
	// Default: 100% of reads mirrored, writes denied.
	Shadow *shadow.Options `json:"shadow,omitempty"`
	// Gate is the promotion gate evaluated before cutover.
	Gate *GateConfig `json:"gate,omitempty"`
}

// Candidate is a service's replacement: a remote URL (Spin, wasmCloud,
// wasmtime serve) or an in-process Wasm module. Raw keeps the whole block so
// the proxy can decode the module options it owns.
type Candidate struct {
	URL     string   `json:"url,omitempty"`
	Wasm    string   `json:"wasm,omitempty"`
	Timeout Duration `json:"timeout,omitempty"`
	// Raw is the block as written, for the wasm options.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON keeps the raw block and reads the fields strangler needs.
func (c *Candidate) UnmarshalJSON(b []byte) error {
	var head struct {
		URL     string   `json:"url"`
		Wasm    string   `json:"wasm"`
		Timeout Duration `json:"timeout"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	c.URL, c.Wasm, c.Timeout = head.URL, head.Wasm, head.Timeout
	c.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// AllowsOtherKeys: the block's other keys are the Wasm module's options,
// which the proxy decodes (and checks) itself.
func (*Candidate) AllowsOtherKeys() bool { return true }

// MarshalJSON writes the block as it was read.
func (c Candidate) MarshalJSON() ([]byte, error) {
	if len(c.Raw) > 0 {
		return c.Raw, nil
	}
	type plain struct {
		URL     string   `json:"url,omitempty"`
		Wasm    string   `json:"wasm,omitempty"`
		Timeout Duration `json:"timeout,omitempty"`
	}
	return json.Marshal(plain{c.URL, c.Wasm, c.Timeout})
}

// GateConfig is a route's promotion gate (the `gate:` block): the evidence a route needs before it
// may be cut over, the canary walk's step checks, and when it may be retired. Zero fields are not
// checked. Evaluation lives in gate.go; parsing and validation in gate_config.go.
type GateConfig struct {
	// MinSamples is the number of compared shadow samples required. Fewer
	// makes the gate inconclusive, not failed.
	MinSamples int `json:"minSamples,omitempty"`
	// MinMatch is the share of answered samples that must match after
	// learned noise is applied, e.g. 99.9%.
	MinMatch *Percent `json:"minMatch,omitempty"`
	// MaxP99Ratio bounds candidate p99 latency / legacy p99 latency. Below 1
	// demands a faster candidate; it must not be negative.
	MaxP99Ratio float64 `json:"maxP99Ratio,omitempty"`
	// MaxErrorRate bounds the candidate's error share, e.g. 0.1%. It is also
	// how far a canary step's error rate may exceed legacy's in the same
	// window, and the ceiling of the record since cutover that retire
	// checks. Default for canary steps and retire: 1%.
	MaxErrorRate *Percent `json:"maxErrorRate,omitempty"`
	// CleanWindow is K in "no unexplained difference class in the last K
	// compared samples" (at most 1000, the evidence's recent window).
	CleanWindow int `json:"cleanWindow,omitempty"`
	// MinDuration is how long shadow evidence must span (first to last
	// compared sample), e.g. "24h" to cover a daily cycle.
	MinDuration Duration `json:"minDuration,omitempty"`
	// RequireWrites fails a write route (POST, PUT, PATCH, DELETE) whose
	// writes were only skipped (shadow writes: deny), never compared.
	RequireWrites bool `json:"requireWrites,omitempty"`
	// MinCutoverTime is how long a route must have been in cutover, with a
	// clean record, before it may be retired, e.g. "72h". Default 24h.
	MinCutoverTime Duration `json:"minCutoverTime,omitempty"`
	// CanaryMinRequests is how many candidate requests a canary step needs
	// to be conclusive; with fewer the step is extended. Default 20.
	CanaryMinRequests int `json:"canaryMinRequests,omitempty"`
	// CanaryMaxExtensions is how many times an inconclusive canary step is
	// extended before the walk pauses at its weight. Default 5.
	CanaryMaxExtensions int `json:"canaryMaxExtensions,omitempty"`
	// Routes overrides fields per route of the service:
	// routes: {"POST /api/order": {minSamples: 200}}.
	Routes map[string]*GateConfig `json:"routes,omitempty"`
}

func (g *GateConfig) validate(routes []string) error { return g.check(routes, true) }

// LoadConfig reads and validates a strangler.yaml file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := ParseConfig(data, filepath.Dir(abs))
	if err != nil {
		var ce *configfile.Error
		if errors.As(err, &ce) {
			return nil, &ConfigError{File: path, Err: ce}
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	cfg.Path = abs
	return cfg, nil
}

// ParseConfig decodes and validates a config; dir resolves relative paths.
// Unknown keys are errors: a typo must not silently change behaviour.
func ParseConfig(data []byte, dir string) (*Config, error) {
	var cfg Config
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("config is empty: it needs at least a services block")
	}
	doc, err := configfile.Decode(data, &cfg)
	if err != nil {
		return nil, err
	}
	cfg.Dir, cfg.doc = dir, doc
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, locate(doc, err)
	}
	return &cfg, nil
}

// ConfigError is a mistake in a config file, with where it is:
// "strangler.yaml:12:5: services.orders.shadow.wirtes: unknown key; did you mean "writes"?".
type ConfigError struct {
	File string
	Err  *configfile.Error
}

func (e *ConfigError) Error() string { return e.Err.In(e.File) }
func (e *ConfigError) Unwrap() error { return e.Err }

// Locate places an error found after loading (the proxy decoding a
// candidate's Wasm options) in the config file, when it starts with a key
// path the file has: "strangler.yaml:7:16: services.orders.candidate: ...".
func (c *Config) Locate(err error) error {
	if err == nil || c.Path == "" || c.doc == nil {
		return err
	}
	ce := locate(c.doc, errors.New(strings.ReplaceAll(err.Error(), "json: ", "")))
	return &ConfigError{File: c.Path, Err: ce.(*configfile.Error)}
}

// CheckWasmCandidates checks each in-process candidate block against the
// options type of the Wasm host (t), which strangler does not know, so an
// unknown option gets the same line, column and suggestion as any key.
func (c *Config) CheckWasmCandidates(t reflect.Type) error {
	if c.Path == "" || c.doc == nil {
		return nil
	}
	for _, name := range c.ServiceNames() {
		if cand := c.Services[name].Candidate; cand == nil || cand.Wasm == "" {
			continue
		}
		path := configfile.Join(configfile.Join("services", name), "candidate")
		var ce *configfile.Error
		if err := c.doc.CheckAt(path, t); errors.As(err, &ce) {
			return &ConfigError{File: c.Path, Err: ce}
		}
	}
	return nil
}

// locate gives a validation error the line and column of the key path it
// starts with ("services.orders.legacy: ..."), when the document has it.
func locate(doc *configfile.Doc, err error) error {
	msg := err.Error()
	best, line, col := 0, 0, 0
	for i := range len(msg) {
		if msg[i] != ':' && msg[i] != ' ' {
			continue
		}
		if l, c := doc.Position(msg[:i]); l > 0 && i > best {
			best, line, col = i, l, c
		}
	}
	return &configfile.Error{Line: line, Column: col, Msg: msg}
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Admin == "" {
		c.Admin = DefaultAdmin
	}
	if c.Store == "" {
		c.Store = DefaultStore
	}
	if c.MaxBufferedBody == 0 {
		c.MaxBufferedBody = DefaultMaxBufferedBody
	}
	if c.AccessLogSample == nil {
		p := Percent(DefaultAccessLogSample)
		c.AccessLogSample = &p
	}
	for _, s := range c.Services {
		if s == nil {
			continue
		}
		if s.Timeout == 0 {
			s.Timeout = Duration(DefaultTimeout)
		}
		if s.MaxIdleConns == 0 {
			s.MaxIdleConns = DefaultMaxIdlePerHost
		}
		if s.Mode == "" {
			s.Mode = ModeLegacy
		}
		if s.Weight == 0 {
			s.Weight = DefaultCanaryWeight
		}
		if s.Candidate != nil && s.Candidate.Timeout == 0 {
			s.Candidate.Timeout = Duration(DefaultCandidateTime)
		}
	}
}

// Validate reports the first problem with a config, naming where it is.
func (c *Config) Validate() error {
	if c.APIVersion != "" && c.APIVersion != APIVersion {
		return fmt.Errorf("apiVersion %q is not supported; this migrate reads %s", c.APIVersion, APIVersion)
	}
	if c.Kind != "" && c.Kind != "StranglerConfig" {
		return fmt.Errorf("kind %q: a strangler config has kind StranglerConfig", c.Kind)
	}
	if len(c.Services) == 0 {
		return errors.New("services: at least one service is required")
	}
	if err := checkHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	if err := checkHostPort(c.Admin); err != nil {
		return fmt.Errorf("admin: %w", err)
	}
	if c.Default != "" {
		if err := checkUpstream(c.Default); err != nil {
			return fmt.Errorf("default: %w", err)
		}
	}
	if c.MaxBufferedBody < 0 {
		return errors.New("maxBufferedBody must not be negative")
	}
	if c.WasmMemory < 0 || (c.WasmMemory > 0 && c.WasmMemory < 1<<20) {
		return fmt.Errorf("wasmMemory %d bytes is below 1MiB: it must hold at least one guest (its maxMemory plus maxResponse); omit it for the default", c.WasmMemory)
	}
	if c.AccessLogSample != nil && (*c.AccessLogSample < 0 || *c.AccessLogSample > 1) {
		return errors.New("accessLogSample must be between 0% and 100%")
	}
	owner := map[string]string{}
	for _, name := range c.ServiceNames() {
		s := c.Services[name]
		where := "services." + name
		if name == "" || strings.ContainsAny(name, " /\t\n") {
			return fmt.Errorf("%s: a service name must be non-empty and contain no spaces or slashes", where)
		}
		if s == nil {
			return fmt.Errorf("%s: the service block is empty; it needs legacy and routes", where)
		}
		if s.Legacy == "" {
			return fmt.Errorf("%s.legacy: the legacy base URL is required, e.g. http://%s:8080", where, name)
		}
		if err := checkUpstream(s.Legacy); err != nil {
			return fmt.Errorf("%s.legacy: %w", where, err)
		}
		if s.Timeout < 0 {
			return fmt.Errorf("%s.timeout must not be negative", where)
		}
		if s.MaxIdleConns < 0 {
			return fmt.Errorf("%s.maxIdleConns must not be negative", where)
		}
		if !s.Mode.Valid() {
			return fmt.Errorf("%s.mode: %q is not a mode; use one of %s", where, s.Mode, modeList())
		}
		if s.Weight < 0 || s.Weight > 100 {
			return fmt.Errorf("%s.weight: %d is not a percentage between 0 and 100", where, s.Weight)
		}
		if s.StickyBy != "" {
			if _, _, err := ParseStickyBy(s.StickyBy); err != nil {
				return fmt.Errorf("%s.stickyBy: %w", where, err)
			}
		}
		if c := s.Candidate; c != nil {
			switch {
			case c.URL != "" && c.Wasm != "":
				return fmt.Errorf("%s.candidate: set url or wasm, not both", where)
			case c.URL != "":
				if err := checkUpstream(c.URL); err != nil {
					return fmt.Errorf("%s.candidate.url: %w", where, err)
				}
			case c.Wasm == "":
				return fmt.Errorf("%s.candidate: set url (a remote Wasm platform) or wasm (a module file)", where)
			}
			if c.Timeout < 0 {
				return fmt.Errorf("%s.candidate.timeout must not be negative", where)
			}
		}
		if s.Mode != ModeLegacy && s.Candidate == nil {
			return fmt.Errorf("%s.mode: %s needs a candidate block", where, s.Mode)
		}
		if err := s.Shadow.Validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if s.Gate != nil {
			if err := s.Gate.validate(s.Routes); err != nil {
				return fmt.Errorf("%s.gate: %w", where, err)
			}
		}
		if len(s.Routes) == 0 {
			return fmt.Errorf("%s.routes: list at least one route, e.g. \"GET /api/%s\"", where, name)
		}
		for i, r := range s.Routes {
			if err := ValidateRouteName(r); err != nil {
				return fmt.Errorf("%s.routes[%d]: %w", where, i, err)
			}
			if other, dup := owner[r]; dup {
				return fmt.Errorf("%s.routes[%d]: route %q is already listed by service %s", where, i, r, other)
			}
			owner[r] = name
		}
	}
	if _, err := NewMatcher(c.RouteNames()); err != nil {
		return err
	}
	return c.checkOutboundNames()
}

// ServiceNames lists the services in a stable (sorted) order.
func (c *Config) ServiceNames() []string {
	names := make([]string, 0, len(c.Services))
	for n := range c.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RouteNames lists every route, service by service in ServiceNames order.
func (c *Config) RouteNames() []string {
	var out []string
	for _, n := range c.ServiceNames() {
		if s := c.Services[n]; s != nil {
			out = append(out, s.Routes...)
		}
	}
	return out
}

// ServiceOf names the service that lists route, or "".
func (c *Config) ServiceOf(route string) string {
	for n, s := range c.Services {
		for _, r := range s.Routes {
			if r == route {
				return n
			}
		}
	}
	return ""
}

// StorePath is the absolute path of the state file, or the PostgreSQL URL
// of a store shared by several replicas.
func (c *Config) StorePath() string {
	if IsPostgresURL(c.Store) {
		return c.Store
	}
	return c.Resolve(c.Store)
}

// Resolve makes a path from the config relative to the config's directory.
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) || c.Dir == "" {
		return p
	}
	return filepath.Join(c.Dir, p)
}

// ParseStickyBy splits "header:X-User" or "cookie:SESSION".
func ParseStickyBy(s string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(s, ":")
	if !ok || name == "" || (kind != "header" && kind != "cookie") {
		return "", "", fmt.Errorf("%q: use header:NAME or cookie:NAME", s)
	}
	return kind, name, nil
}

func checkHostPort(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	return nil
}

func checkUpstream(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: use an http:// or https:// URL", raw)
	}
	if u.Host == "" {
		return fmt.Errorf("%q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q: an upstream URL takes no query or fragment", raw)
	}
	return nil
}
