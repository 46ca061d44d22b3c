package strangler

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/shadow"
)

// Canary step defaults, used when the gate block leaves them out.
const (
	DefaultCanaryMinRequests   = 20
	DefaultCanaryMaxExtensions = 5
	// DefaultCanaryMaxErrorRate is a canary step's error ceiling when the
	// gate has no maxErrorRate.
	DefaultCanaryMaxErrorRate = 0.01
	// DefaultMinCutoverTime is how long a route must have been in cutover
	// before it may be retired when the gate has no minCutoverTime: a
	// whole daily cycle of traffic.
	DefaultMinCutoverTime = 24 * time.Hour
)

// gateFields is GateConfig as written: percentages stay raw so an
// out-of-range value is reported by validation with its full path
// (services.orders.gate.minMatch) instead of as an anonymous parse error.
type gateFields struct {
	MinSamples          int                        `json:"minSamples"`
	MinMatch            json.RawMessage            `json:"minMatch"`
	MaxP99Ratio         float64                    `json:"maxP99Ratio"`
	MaxErrorRate        json.RawMessage            `json:"maxErrorRate"`
	CleanWindow         int                        `json:"cleanWindow"`
	MinDuration         Duration                   `json:"minDuration"`
	RequireWrites       bool                       `json:"requireWrites"`
	MinCutoverTime      Duration                   `json:"minCutoverTime"`
	CanaryMinRequests   int                        `json:"canaryMinRequests"`
	CanaryMaxExtensions int                        `json:"canaryMaxExtensions"`
	Routes              map[string]json.RawMessage `json:"routes"`
}

// UnmarshalJSON reads a gate block strictly (unknown keys are errors, as
// everywhere in the config) and defers range checks to validation.
func (g *GateConfig) UnmarshalJSON(b []byte) error {
	var f gateFields
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	out := GateConfig{MinSamples: f.MinSamples, MaxP99Ratio: f.MaxP99Ratio, CleanWindow: f.CleanWindow,
		MinDuration: f.MinDuration, RequireWrites: f.RequireWrites, MinCutoverTime: f.MinCutoverTime,
		CanaryMinRequests: f.CanaryMinRequests, CanaryMaxExtensions: f.CanaryMaxExtensions}
	var err error
	if out.MinMatch, err = rawPercent("minMatch", f.MinMatch); err != nil {
		return err
	}
	if out.MaxErrorRate, err = rawPercent("maxErrorRate", f.MaxErrorRate); err != nil {
		return err
	}
	if len(f.Routes) > 0 {
		out.Routes = make(map[string]*GateConfig, len(f.Routes))
		for route, raw := range f.Routes {
			var sub GateConfig
			if err := json.Unmarshal(raw, &sub); err != nil {
				return fmt.Errorf("routes[%q]: %w", route, err)
			}
			out.Routes[route] = &sub
		}
	}
	*g = out
	return nil
}

// rawPercent reads "99.9%", "99.9" or 99.9 as a fraction without range
// checks; null or absent is nil.
func rawPercent(field string, raw json.RawMessage) (*Percent, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil {
		var f float64
		if err2 := json.Unmarshal(raw, &f); err2 != nil {
			return nil, fmt.Errorf("%s: %s is not a percentage; write it as text such as \"99.9%%\"", field, raw)
		}
		text = strconv.FormatFloat(f, 'g', -1, 64)
	}
	t := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(text), "%"))
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%s: %q is not a percentage; write it as 0%% to 100%%, e.g. 99.9%%", field, text)
	}
	p := Percent(math.Round(f*1e10) / 1e12)
	return &p, nil
}

// check reports the first impossible or contradictory setting. routes
// are the service's routes, which per-route overrides must name; top is
// false inside an override (overrides do not nest).
func (g *GateConfig) check(routes []string, top bool) error {
	pct := func(name string, p *Percent) error {
		if p == nil {
			return nil
		}
		if *p < 0 {
			return fmt.Errorf("%s: %s is negative; use 0%% to 100%%", name, FormatPercent(float64(*p)))
		}
		if *p > 1 {
			return fmt.Errorf("%s: %s is more than 100%%; no route can do better than all of its samples", name, FormatPercent(float64(*p)))
		}
		return nil
	}
	switch {
	case g.MinSamples < 0:
		return fmt.Errorf("minSamples: %d is negative; use 0 (not checked) or a sample count", g.MinSamples)
	case g.MaxP99Ratio < 0 || math.IsNaN(g.MaxP99Ratio):
		return fmt.Errorf("maxP99Ratio: %g is negative; use a ratio such as 1.5 (below 1 demands a faster candidate)", g.MaxP99Ratio)
	case g.CleanWindow < 0:
		return fmt.Errorf("cleanWindow: %d is negative; use a sample count up to %d", g.CleanWindow, shadow.DefaultWindow)
	case g.CleanWindow > shadow.DefaultWindow:
		return fmt.Errorf("cleanWindow: %d is more than the %d recent samples the evidence remembers; use at most %d",
			g.CleanWindow, shadow.DefaultWindow, shadow.DefaultWindow)
	case g.MinDuration < 0:
		return fmt.Errorf("minDuration: %s is negative", time.Duration(g.MinDuration))
	case g.MinCutoverTime < 0:
		return fmt.Errorf("minCutoverTime: %s is negative", time.Duration(g.MinCutoverTime))
	case g.CanaryMinRequests < 0:
		return fmt.Errorf("canaryMinRequests: %d is negative", g.CanaryMinRequests)
	case g.CanaryMaxExtensions < 0:
		return fmt.Errorf("canaryMaxExtensions: %d is negative", g.CanaryMaxExtensions)
	}
	if err := pct("minMatch", g.MinMatch); err != nil {
		return err
	}
	if err := pct("maxErrorRate", g.MaxErrorRate); err != nil {
		return err
	}
	if len(g.Routes) > 0 {
		if !top {
			return fmt.Errorf("routes: per-route overrides cannot nest")
		}
		known := map[string]bool{}
		for _, r := range routes {
			known[r] = true
		}
		names := make([]string, 0, len(g.Routes))
		for r := range g.Routes {
			names = append(names, r)
		}
		sort.Strings(names)
		for _, r := range names {
			if !known[r] {
				return fmt.Errorf("routes[%q]: the service does not list this route; overrides must name one of: %s",
					r, strings.Join(routes, ", "))
			}
			if g.Routes[r] == nil {
				return fmt.Errorf("routes[%q]: the override is empty", r)
			}
			if err := g.Routes[r].check(nil, false); err != nil {
				return fmt.Errorf("routes[%q].%w", r, err)
			}
		}
	}
	return nil
}

// For returns the gate that applies to route: the service's gate with the
// route's override fields laid over it. A nil gate stays nil.
func (g *GateConfig) For(route string) *GateConfig {
	if g == nil {
		return nil
	}
	eff := *g
	eff.Routes = nil
	o := g.Routes[route]
	if o == nil {
		return &eff
	}
	if o.MinSamples != 0 {
		eff.MinSamples = o.MinSamples
	}
	if o.MinMatch != nil {
		eff.MinMatch = o.MinMatch
	}
	if o.MaxP99Ratio != 0 {
		eff.MaxP99Ratio = o.MaxP99Ratio
	}
	if o.MaxErrorRate != nil {
		eff.MaxErrorRate = o.MaxErrorRate
	}
	if o.CleanWindow != 0 {
		eff.CleanWindow = o.CleanWindow
	}
	if o.MinDuration != 0 {
		eff.MinDuration = o.MinDuration
	}
	if o.RequireWrites {
		eff.RequireWrites = true
	}
	if o.MinCutoverTime != 0 {
		eff.MinCutoverTime = o.MinCutoverTime
	}
	if o.CanaryMinRequests != 0 {
		eff.CanaryMinRequests = o.CanaryMinRequests
	}
	if o.CanaryMaxExtensions != 0 {
		eff.CanaryMaxExtensions = o.CanaryMaxExtensions
	}
	return &eff
}

// canaryMinRequests is the conclusive-step threshold, defaulted.
func (g *GateConfig) canaryMinRequests() int64 {
	if g != nil && g.CanaryMinRequests > 0 {
		return int64(g.CanaryMinRequests)
	}
	return DefaultCanaryMinRequests
}

func (g *GateConfig) canaryMaxExtensions() int {
	if g != nil && g.CanaryMaxExtensions > 0 {
		return g.CanaryMaxExtensions
	}
	return DefaultCanaryMaxExtensions
}

func (g *GateConfig) canaryMaxErrorRate() float64 {
	if g != nil && g.MaxErrorRate != nil {
		return float64(*g.MaxErrorRate)
	}
	return DefaultCanaryMaxErrorRate
}

func (g *GateConfig) minCutoverTime() time.Duration {
	if g != nil && g.MinCutoverTime > 0 {
		return time.Duration(g.MinCutoverTime)
	}
	return DefaultMinCutoverTime
}
