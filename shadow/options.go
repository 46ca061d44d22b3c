package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Write policies for Options.Writes.
const (
	// WritesDeny never mirrors POST, PUT, PATCH or DELETE; each one is counted
	// as a skipped write so reports say how much traffic went unverified.
	WritesDeny = "deny"
	// WritesAllow mirrors writes unchanged: the candidate must own its own data.
	WritesAllow = "allow"
	// WritesMarked mirrors writes with HeaderShadowWrite set so the candidate
	// can run them in dry-run mode.
	WritesMarked = "marked"
)

// Headers migrate puts on every mirrored copy.
const (
	// HeaderShadow marks every mirrored copy, so a candidate (or its logs) can
	// tell shadow traffic from real traffic.
	HeaderShadow = "X-Migrate-Shadow"
	// HeaderShadowWrite is added to mirrored writes under `writes: marked`.
	HeaderShadowWrite = "X-Migrate-Shadow-Write"
)

// Defaults applied when a field of Options is zero.
const (
	DefaultTimeout = 5 * time.Second
	DefaultMaxBody = 1 << 20
)

// Options are a route's `shadow:` block in strangler.yaml (json tags are the
// YAML keys). The zero value is usable: 100% sampling, writes denied, 5s
// candidate deadline, 1MiB body cap.
type Options struct {
	// Sample is the share of requests mirrored; unset means 100%, and an
	// explicit 0% pauses mirroring without leaving shadow mode.
	Sample *Percent `json:"sample,omitempty"`
	// RateLimit caps mirrored copies per second (token bucket, burst of one
	// second's worth); 0 means no cap.
	RateLimit float64 `json:"rateLimit,omitempty"`
	// StickyBy makes sampling consistent per user: "header:X-User" or
	// "cookie:SESSION". A request without the key is sampled at random.
	StickyBy string `json:"stickyBy,omitempty"`
	// Writes is the write policy: deny (default), allow or marked.
	Writes string `json:"writes,omitempty"`
	// BaselineWrites lets noise learning send a sampled write to legacy a
	// second time (the A/A baseline). Off by default: legacy would apply the
	// write twice. Turn it on only where legacy writes are harmless to
	// repeat (idempotent, or a disposable environment).
	BaselineWrites bool `json:"baselineWrites,omitempty"`
	// Ignore lists JSON pointers whose differences are declared noise; `*`
	// matches one segment. The JSONPath-like "$.a[*].b" form is accepted too.
	Ignore []string `json:"ignore,omitempty"`
	// IgnoreHeaders are response headers never compared, on top of the
	// defaults (Date, Server, hop-by-hop, Content-Length, Content-Encoding).
	IgnoreHeaders []string `json:"ignoreHeaders,omitempty"`
	// Unordered lists pointers of arrays compared as multisets.
	Unordered []string `json:"unordered,omitempty"`
	// MatchBy pairs elements of an unordered array by a key field
	// (array pointer → field name) so differences inside an element are
	// reported at that element instead of as missing + extra.
	MatchBy map[string]string `json:"matchBy,omitempty"`
	// Numeric compares JSON numbers by value: 200 equals 200.00.
	Numeric bool `json:"numericTolerance,omitempty"`
	// Subset lets the candidate add fields the legacy response lacks.
	Subset bool `json:"subset,omitempty"`
	// Timeout is the mirrored copy's deadline (the candidate's; legacy's
	// under reverse shadow), default 5s.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxBody caps how much of a candidate body is read (and how much of any
	// body is stored in a sample), default 1MiB.
	MaxBody ByteSize `json:"maxBody,omitempty"`

	// IgnoreValues are regular expressions: a value difference where both
	// sides match the same expression is declared noise.
	IgnoreValues []string `json:"ignoreValues,omitempty"`
	// IgnoreLines are regular expressions for text bodies: a changed line
	// that matches the same expression on both sides is declared noise.
	// Noise.Suggestions produces them from learned line masks.
	IgnoreLines []string `json:"ignoreLines,omitempty"`
	// Redact lists JSON pointers whose values are replaced by "[redacted]"
	// in stored samples and blotted out of every difference, and with the
	// prefixes "@header/", "@query/" and "@form/" more headers, query
	// parameters and form fields to redact. Always redacted: headers
	// Authorization, Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key,
	// X-Auth-Token; parameters and form fields access_token, token, api_key,
	// apikey, password, secret, client_secret, session, signature, sig.
	Redact []string `json:"redact,omitempty"`
	// SpringErrors, when explicitly false, stops treating Spring Boot's
	// default error body specially. By default `timestamp` and `trace` of an
	// object that has `status` and `error` are ignored.
	SpringErrors *bool `json:"springErrors,omitempty"`
}

// timeout returns the candidate deadline with its default applied.
func (o *Options) timeout() time.Duration {
	if o == nil || o.Timeout <= 0 {
		return DefaultTimeout
	}
	return time.Duration(o.Timeout)
}

// maxBody returns the body cap with its default applied.
func (o *Options) maxBody() int64 {
	if o == nil || o.MaxBody <= 0 {
		return DefaultMaxBody
	}
	return int64(o.MaxBody)
}

// writes returns the write policy with its default applied; anything
// unrecognised (Validate reports it) fails safe to deny.
func (o *Options) writes() string {
	if o != nil && (o.Writes == WritesAllow || o.Writes == WritesMarked) {
		return o.Writes
	}
	return WritesDeny
}

// sample returns the sampled share in [0,100].
func (o *Options) sample() float64 {
	if o == nil || o.Sample == nil {
		return 100
	}
	return float64(*o.Sample)
}

// Validate reports the first mistake in the options, phrased so the user
// knows which key of the route's shadow block to fix.
func (o *Options) Validate() error {
	if o == nil {
		return nil
	}
	switch o.Writes {
	case "", WritesDeny, WritesAllow, WritesMarked:
	default:
		return fmt.Errorf("shadow.writes must be deny, allow or marked, not %q", o.Writes)
	}
	if o.Sample != nil && (*o.Sample < 0 || *o.Sample > 100) {
		return fmt.Errorf("shadow.sample must be between 0%% and 100%%, not %v", *o.Sample)
	}
	if o.RateLimit < 0 {
		return fmt.Errorf("shadow.rateLimit must not be negative, not %v", o.RateLimit)
	}
	if o.StickyBy != "" {
		if _, _, err := parseSticky(o.StickyBy); err != nil {
			return err
		}
	}
	for _, r := range o.Redact {
		for _, prefix := range []string{redactHeaderPrefix, redactQueryPrefix, redactFormPrefix} {
			if name, ok := strings.CutPrefix(r, prefix); ok && strings.TrimSpace(name) == "" {
				return fmt.Errorf("shadow.redact: %q names no %s", r, strings.Trim(prefix, "@/"))
			}
		}
	}
	for i, list := range [][]string{o.Ignore, o.Unordered, o.Redact} {
		for _, p := range list {
			if i == 2 && (strings.HasPrefix(p, redactHeaderPrefix) || strings.HasPrefix(p, redactQueryPrefix) || strings.HasPrefix(p, redactFormPrefix)) {
				continue
			}
			if _, err := parsePattern(p); err != nil {
				return err
			}
		}
	}
	for p := range o.MatchBy {
		if _, err := parsePattern(p); err != nil {
			return err
		}
	}
	for _, list := range [][]string{o.IgnoreValues, o.IgnoreLines} {
		for _, re := range list {
			if _, err := regexp.Compile(re); err != nil {
				return fmt.Errorf("shadow: bad regular expression %q: %w", re, err)
			}
		}
	}
	return nil
}

// parseSticky splits "header:X-User" / "cookie:SESSION".
func parseSticky(s string) (kind, name string, err error) {
	kind, name, ok := strings.Cut(s, ":")
	kind = strings.ToLower(strings.TrimSpace(kind))
	name = strings.TrimSpace(name)
	if !ok || name == "" || (kind != "header" && kind != "cookie") {
		return "", "", fmt.Errorf("shadow.stickyBy must look like \"header:X-User\" or \"cookie:SESSION\", not %q", s)
	}
	return kind, name, nil
}

// Percent is a share in percent, written "50%", "50" or 50 in YAML.
type Percent float64

// MarshalJSON writes the percent as text, e.g. "12.5%".
func (p Percent) MarshalJSON() ([]byte, error) {
	return json.Marshal(strconv.FormatFloat(float64(p), 'f', -1, 64) + "%")
}

// UnmarshalJSON accepts "50%", "50" and 50.
func (p *Percent) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	s = strings.TrimSuffix(strings.TrimSpace(s), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return fmt.Errorf("percent %s: write it like \"25%%\"", b)
	}
	*p = Percent(f)
	return nil
}

// Duration is a time.Duration written as text ("5s", "250ms") in YAML; a
// bare number means seconds.
type Duration time.Duration

// MarshalJSON writes the duration as text, e.g. "5s".
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON accepts "5s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("duration %q: write it like \"5s\" or \"250ms\"", s)
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: write it like \"5s\" or \"250ms\"", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// ByteSize is a size in bytes written as text ("1MiB", "64KB") in YAML; a
// bare number means bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"B", 1},
}

// MarshalJSON writes the size as text in the largest exact binary unit.
func (s ByteSize) MarshalJSON() ([]byte, error) {
	n := int64(s)
	switch {
	case n != 0 && n%(1<<30) == 0:
		return json.Marshal(strconv.FormatInt(n>>30, 10) + "GiB")
	case n != 0 && n%(1<<20) == 0:
		return json.Marshal(strconv.FormatInt(n>>20, 10) + "MiB")
	case n != 0 && n%(1<<10) == 0:
		return json.Marshal(strconv.FormatInt(n>>10, 10) + "KiB")
	}
	return json.Marshal(strconv.FormatInt(n, 10) + "B")
}

// UnmarshalJSON accepts "1MiB", "64KB", "512" and 512.
func (s *ByteSize) UnmarshalJSON(b []byte) error {
	text := strings.TrimSpace(string(b))
	if strings.HasPrefix(text, `"`) {
		if err := json.Unmarshal(b, &text); err != nil {
			return err
		}
		text = strings.TrimSpace(text)
	}
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(text, u.suffix) {
			text, mult = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f < 0 {
		return fmt.Errorf("size %s: write it like \"1MiB\" or \"64KB\"", b)
	}
	*s = ByteSize(f * float64(mult))
	return nil
}
