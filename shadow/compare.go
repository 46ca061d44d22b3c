package shadow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// Response is one side of an exchange as migrate compares and stores it.
type Response struct {
	Status  int           `json:"status,omitempty"`
	Header  http.Header   `json:"header,omitempty"`
	Body    []byte        `json:"body,omitempty"`
	Latency time.Duration `json:"latency,omitempty"`
	// Error is "" or a candidate error kind (see ErrorKind): timeout, reset,
	// connect, too-large, trap, exit, memory, ...
	Error string `json:"error,omitempty"`
	// Calls are the outbound calls the side made while answering, when
	// CallsRecorded says they were watched: legacy's through the proxy's
	// egress, an in-process candidate's through its host functions. Writes
	// are compared (DiffSideEffect) only when both sides were watched.
	Calls         []Call `json:"calls,omitempty"`
	CallsRecorded bool   `json:"callsRecorded,omitempty"`
}

// Outcomes of one sample.
const (
	OutcomeMatch          = "match"           // no unexplained difference
	OutcomeMismatch       = "mismatch"        // at least one unexplained difference
	OutcomeCandidateError = "candidate-error" // the candidate failed; Result.Error says how
	OutcomeLegacyError    = "legacy-error"    // the legacy side could not be compared (e.g. too large)
)

// Difference types.
const (
	DiffStatus      = "status"       // HTTP status differs
	DiffHeader      = "header"       // a compared header's value differs, or it is missing/extra
	DiffContentType = "content-type" // media type or charset differs
	DiffEncoding    = "encoding"     // a body could not be decoded (bad gzip/br/deflate)
	DiffInvalidJSON = "invalid-json" // legacy body is JSON, the candidate's does not parse
	DiffValue       = "value"        // same JSON type, different value
	DiffType        = "type"         // different JSON types
	DiffMissing     = "missing"      // the candidate lacks a field or element
	DiffExtra       = "extra"        // the candidate has a field or element the legacy lacks
	DiffSize        = "size"         // arrays of different length
	DiffOrder       = "order"        // same elements, different order
	DiffLine        = "line"         // a text line differs (or is missing/extra)
	DiffBody        = "body"         // non-text bodies differ (length + SHA-256)
)

// Noise sources on a Difference.
const (
	NoiseDeclared = "declared" // matched an ignoreValues/ignoreLines rule
	NoiseLearned  = "learned"  // the same difference was seen legacy-vs-legacy
)

// Difference is one typed difference between the legacy and candidate
// responses.
type Difference struct {
	// Path says where: "@status", "@header/<lower-case name>", a JSON pointer
	// into the body ("" is the root), "@line/<n>" (1-based legacy line) for
	// text, or "@body".
	Path string `json:"path"`
	// Type is one of the Diff* constants.
	Type string `json:"type"`
	// Legacy and Candidate are short renderings of the two values; empty on
	// the side that lacks the value.
	Legacy    string `json:"legacy,omitempty"`
	Candidate string `json:"candidate,omitempty"`
	// Shape classifies values of the same shape on both sides: "uuid",
	// "timestamp", "numeric-equal" (200 vs 200.00), "masked" (text lines equal
	// once UUIDs, timestamps and numbers are masked).
	Shape string `json:"shape,omitempty"`
	// Template is the masked line for text differences of shape "masked".
	Template string `json:"template,omitempty"`
	// Noise is "" for an unexplained difference, else why it is noise.
	Noise string `json:"noise,omitempty"`
	// Signature groups the same difference across samples: the path with
	// array indices as "*" (text lines as "@text") and the type.
	Signature string `json:"signature"`
}

// Result is the outcome of comparing one exchange.
type Result struct {
	Outcome string `json:"outcome"`
	// Kind is how the bodies were compared: json, text, binary or empty.
	Kind string `json:"kind,omitempty"`
	// Error is the candidate error kind when Outcome is candidate-error.
	Error string `json:"error,omitempty"`
	// Differences lists every difference found, explained (Noise != "") or
	// not, at most maxDifferences of them.
	Differences []Difference `json:"differences,omitempty"`
	// Truncated is set when more differences existed than were kept.
	Truncated bool `json:"truncated,omitempty"`
}

// Matched reports whether the sample has no unexplained difference.
func (r *Result) Matched() bool { return r.Outcome == OutcomeMatch }

// Signatures lists the distinct signatures of unexplained differences,
// sorted: the "class" of a mismatch.
func (r *Result) Signatures() []string {
	var out []string
	for i := range r.Differences {
		d := &r.Differences[i]
		if d.Noise == "" {
			out = append(out, d.Signature)
		}
	}
	sort.Strings(out)
	return dedupSorted(out)
}

func dedupSorted(s []string) []string {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, x := range s[1:] {
		if x != out[len(out)-1] {
			out = append(out, x)
		}
	}
	return out
}

// maxDifferences bounds a result's size: a body that differs everywhere
// should not make one sample megabytes large.
const maxDifferences = 64

// defaultIgnoredHeaders are never compared: they differ by construction
// (Date, Server), describe the connection rather than the resource
// (hop-by-hop), or describe the encoding that migrate undoes before comparing.
var defaultIgnoredHeaders = map[string]bool{
	"date": true, "server": true, "connection": true, "keep-alive": true,
	"proxy-authenticate": true, "proxy-authorization": true, "proxy-connection": true,
	"te": true, "trailer": true, "transfer-encoding": true, "upgrade": true,
	"content-length": true, "content-encoding": true, "x-migrate-shadow": true,
	"via": true, "alt-svc": true, "x-request-id": true, "traceparent": true, "tracestate": true,
}

// Compare compares a legacy and a candidate response. It is pure: the same
// inputs give the same result, and nothing is recorded. noise may be nil.
// Bodies are decoded (gzip, br, deflate) before comparison.
func Compare(legacy, candidate Response, opts *Options, noise *Noise) Result {
	if legacy.Error != "" {
		return Result{Outcome: OutcomeLegacyError, Error: legacy.Error}
	}
	if candidate.Error != "" {
		return Result{Outcome: OutcomeCandidateError, Error: candidate.Error}
	}
	c := compileOptions(opts)
	nv := noise.view()
	w := walker{c: c, noise: nv}

	if legacy.Status != candidate.Status {
		w.add(Difference{Path: "@status", Type: DiffStatus,
			Legacy: strconv.Itoa(legacy.Status), Candidate: strconv.Itoa(candidate.Status),
			Signature: "@status " + DiffStatus})
	}
	w.compareHeaders(legacy.Header, candidate.Header, legacy.Status)
	if legacy.CallsRecorded && candidate.CallsRecorded {
		w.compareCalls(legacy.Calls, candidate.Calls)
	}

	lb, lerr := decodeBody(legacy.Body, legacy.Header.Get("Content-Encoding"), c.maxBody)
	cb, cerr := decodeBody(candidate.Body, candidate.Header.Get("Content-Encoding"), c.maxBody)
	res := Result{}
	switch {
	case errors.Is(lerr, errTooLarge):
		// Decoded, the legacy body is over maxBody: nothing to compare against.
		return Result{Outcome: OutcomeLegacyError, Error: ErrTooLarge}
	case errors.Is(cerr, errTooLarge):
		return Result{Outcome: OutcomeCandidateError, Error: ErrTooLarge}
	case lerr != nil && cerr != nil && bytes.Equal(legacy.Body, candidate.Body):
		res.Kind = "binary" // equally undecodable on both sides: the same bytes
	case lerr != nil || cerr != nil:
		d := Difference{Path: "@body", Type: DiffEncoding, Signature: "@body " + DiffEncoding}
		if lerr != nil {
			d.Legacy = lerr.Error()
		}
		if cerr != nil {
			d.Candidate = cerr.Error()
		}
		w.add(d)
		res.Kind = "binary"
	default:
		res.Kind = w.compareBodies(lb, cb, legacy.Header.Get("Content-Type"), candidate.Header.Get("Content-Type"))
	}
	res.Differences = w.diffs
	res.Truncated = w.truncated
	res.Outcome = OutcomeMatch
	for i := range w.diffs {
		d := &w.diffs[i]
		if d.Type == DiffInvalidJSON && d.Noise == "" {
			res.Outcome, res.Error = OutcomeCandidateError, "invalid-json"
			break
		}
		if d.Noise == "" {
			res.Outcome = OutcomeMismatch
		}
	}
	return res
}

// compiled is Options prepared for comparison.
type compiled struct {
	ignore        []pattern
	unordered     []pattern
	matchBy       []keyedPattern
	redact        []pattern
	redactHeaders map[string]bool // canonical names
	redactQuery   map[string]bool // lower case
	redactForm    map[string]bool // lower case
	ignoreHeaders map[string]bool
	ignoreValues  []*regexp.Regexp
	ignoreLines   []*regexp.Regexp
	numeric       bool
	subset        bool
	spring        bool
	maxBody       int64
}

type keyedPattern struct {
	p   pattern
	key string
}

var defaultCompiled = compile(nil)

type cacheEntry struct {
	snap Options
	c    *compiled
}

// compiledCache maps a route's *Options to its compiled form. Options are
// long-lived config values, so compiling once per pointer (and again only if
// the fields changed, e.g. on reload) keeps Compare allocation-light.
var compiledCache sync.Map // *Options → *cacheEntry

func compileOptions(o *Options) *compiled {
	if o == nil {
		return defaultCompiled
	}
	if e, ok := compiledCache.Load(o); ok {
		ce := e.(*cacheEntry)
		if sameOptions(&ce.snap, o) {
			return ce.c
		}
	}
	ce := &cacheEntry{snap: cloneOptions(o), c: compile(o)}
	// A caller that builds fresh Options per request must not grow the
	// cache without bound: past maxCompiled entries it starts over.
	if compiledCount.Add(1) > maxCompiled {
		compiledCache.Clear()
		compiledCount.Store(1)
	}
	compiledCache.Store(o, ce)
	return ce.c
}

const maxCompiled = 1024

var compiledCount atomic.Int64

func cloneOptions(o *Options) Options {
	s := *o
	s.Ignore = append([]string(nil), o.Ignore...)
	s.IgnoreHeaders = append([]string(nil), o.IgnoreHeaders...)
	s.Unordered = append([]string(nil), o.Unordered...)
	s.IgnoreValues = append([]string(nil), o.IgnoreValues...)
	s.IgnoreLines = append([]string(nil), o.IgnoreLines...)
	s.Redact = append([]string(nil), o.Redact...)
	s.MatchBy = maps.Clone(o.MatchBy)
	if o.SpringErrors != nil {
		b := *o.SpringErrors
		s.SpringErrors = &b
	}
	return s
}

func sameOptions(a, b *Options) bool {
	eq := slices.Equal[[]string]
	return a.Numeric == b.Numeric && a.Subset == b.Subset && a.MaxBody == b.MaxBody &&
		eq(a.Ignore, b.Ignore) && eq(a.IgnoreHeaders, b.IgnoreHeaders) && eq(a.Unordered, b.Unordered) &&
		eq(a.IgnoreValues, b.IgnoreValues) && eq(a.IgnoreLines, b.IgnoreLines) && eq(a.Redact, b.Redact) &&
		maps.Equal(a.MatchBy, b.MatchBy) && (a.SpringErrors == nil) == (b.SpringErrors == nil) &&
		(a.SpringErrors == nil || *a.SpringErrors == *b.SpringErrors)
}

// compile prepares options; invalid entries are skipped here because
// Validate reports them when the config is loaded.
func compile(o *Options) *compiled {
	c := &compiled{ignoreHeaders: defaultIgnoredHeaders, spring: true, maxBody: o.maxBody()}
	c.redactHeaders = map[string]bool{}
	c.redactQuery, c.redactForm = map[string]bool{}, map[string]bool{}
	for _, h := range redactedHeaders {
		c.redactHeaders[h] = true
	}
	for _, p := range secretParams {
		c.redactQuery[p], c.redactForm[p] = true, true
	}
	if o == nil {
		return c
	}
	pats := func(list []string) []pattern {
		var out []pattern
		for _, s := range list {
			if p, err := parsePattern(s); err == nil {
				out = append(out, p)
			}
		}
		return out
	}
	c.ignore = pats(o.Ignore)
	c.unordered = pats(o.Unordered)
	var pointers []string
	for _, r := range o.Redact {
		if name, ok := strings.CutPrefix(r, redactHeaderPrefix); ok {
			c.redactHeaders[http.CanonicalHeaderKey(name)] = true
		} else if name, ok := strings.CutPrefix(r, redactQueryPrefix); ok {
			c.redactQuery[strings.ToLower(name)] = true
		} else if name, ok := strings.CutPrefix(r, redactFormPrefix); ok {
			c.redactForm[strings.ToLower(name)] = true
		} else {
			pointers = append(pointers, r)
		}
	}
	c.redact = pats(pointers)
	// Spaces around a pointer may belong to a key ("/name "): that key is
	// redacted too, since a leaked value is worse than one field too many
	// hidden.
	for _, s := range pointers {
		if strings.TrimSpace(s) != s {
			if p, err := exactPattern(s); err == nil {
				c.redact = append(c.redact, p)
			}
		}
	}
	keys := make([]string, 0, len(o.MatchBy))
	for k := range o.MatchBy {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if p, err := parsePattern(k); err == nil {
			c.matchBy = append(c.matchBy, keyedPattern{p: p, key: o.MatchBy[k]})
		}
	}
	if len(o.IgnoreHeaders) > 0 {
		c.ignoreHeaders = make(map[string]bool, len(defaultIgnoredHeaders)+len(o.IgnoreHeaders))
		for k := range defaultIgnoredHeaders {
			c.ignoreHeaders[k] = true
		}
		for _, h := range o.IgnoreHeaders {
			c.ignoreHeaders[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	for _, s := range o.IgnoreValues {
		if re, err := regexp.Compile(s); err == nil {
			c.ignoreValues = append(c.ignoreValues, re)
		}
	}
	for _, s := range o.IgnoreLines {
		if re, err := regexp.Compile(s); err == nil {
			c.ignoreLines = append(c.ignoreLines, re)
		}
	}
	c.numeric, c.subset = o.Numeric, o.Subset
	if o.SpringErrors != nil {
		c.spring = *o.SpringErrors
	}
	return c
}

// walker accumulates differences while walking two documents.
type walker struct {
	c         *compiled
	noise     *noiseView
	segs      []string // current JSON path
	isIndex   []bool   // which segments are array indices
	diffs     []Difference
	truncated bool
}

// add records a difference, classifying it as noise when a rule or the
// learned mask explains it.
func (w *walker) add(d Difference) {
	if d.Noise == "" && w.noise.has(d.Signature) {
		d.Noise = NoiseLearned
	}
	if len(w.diffs) >= maxDifferences {
		w.truncated = true
		return
	}
	w.diffs = append(w.diffs, d)
}

// sortedUnion is the keys of a and b, each once, in order.
func sortedUnion[V any](a, b map[string]V) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

func (w *walker) compareHeaders(lh, ch http.Header, status int) {
	names := sortedUnion(lh, ch)
	seen := map[string]bool{}
	for _, k := range names {
		lk := strings.ToLower(k)
		if w.c.ignoreHeaders[lk] || seen[lk] {
			continue
		}
		seen[lk] = true
		lv, lok := headerValue(lh, k)
		cv, cok := headerValue(ch, k)
		path := "@header/" + lk
		if lk == "content-type" {
			ln, cn := normaliseContentType(lv), normaliseContentType(cv)
			if ln != cn || lok != cok {
				w.add(Difference{Path: path, Type: DiffContentType, Legacy: lv, Candidate: cv,
					Signature: path + " " + DiffContentType})
			}
			continue
		}
		if lok == cok && lv == cv {
			continue
		}
		if fold, ok := listHeaders[lk]; ok {
			lt, ct := headerTokens(lv, fold), headerTokens(cv, fold)
			if lk == "vary" && status >= 400 {
				lt, ct = withoutCORSVary(lt), withoutCORSVary(ct)
			}
			// An empty list (Spring's `Accept-Patch: ` on OPTIONS when no
			// handler takes PATCH) says what no header says.
			if len(lt) == len(ct) && slices.Equal(lt, ct) {
				continue
			}
		}
		d := Difference{Path: path, Type: DiffHeader, Legacy: lv, Candidate: cv, Signature: path + " " + DiffHeader}
		switch {
		case !cok:
			d.Type, d.Signature = DiffMissing, path+" "+DiffMissing
		case !lok:
			d.Type, d.Signature = DiffExtra, path+" "+DiffExtra
		default:
			d.Shape = shapeOf(lv, cv)
		}
		w.add(d)
	}
}

// listHeaders are headers whose value is a set of comma-separated tokens:
// order, spacing, repeats, an empty value versus none and (where the value
// maps to true) case carry no meaning,
// and servers differ in all three. Spring writes `Allow: GET, POST` or
// `GET,HEAD,POST,OPTIONS` depending on the path through the framework, and
// sends Vary as one header line per field.
var listHeaders = map[string]bool{
	"allow": false, "vary": true, "accept-patch": true,
	"access-control-allow-methods": false, "access-control-allow-headers": true,
	"access-control-expose-headers": true,
}

// headerTokens splits a list header into its sorted, de-duplicated tokens.
func headerTokens(v string, fold bool) []string {
	var out []string
	for _, t := range strings.Split(v, ",") {
		t = strings.TrimSpace(t)
		if fold {
			t = strings.ToLower(t)
		}
		if t != "" {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// withoutCORSVary drops the Vary fields a CORS filter adds. Spring's CORS
// processing puts them on error answers (a 404 from the dispatcher carries
// `Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers`)
// where no cache keys on them; on a 2xx answer they still count.
func withoutCORSVary(tokens []string) []string {
	return slices.DeleteFunc(tokens, func(t string) bool {
		return t == "origin" || t == "access-control-request-method" || t == "access-control-request-headers"
	})
}

// headerValue joins a header's values case-insensitively.
func headerValue(h http.Header, name string) (string, bool) {
	vs, ok := h[name]
	if !ok {
		vs, ok = h[http.CanonicalHeaderKey(name)]
	}
	if !ok {
		for k, v := range h {
			if strings.EqualFold(k, name) {
				vs, ok = v, true
				break
			}
		}
	}
	return strings.TrimSpace(strings.Join(vs, ", ")), ok
}

// normaliseContentType reduces a Content-Type to "type/subtype; charset=x"
// in lower case; JSON and text default to utf-8 so that Spring's
// "application/json" and "application/json;charset=UTF-8" compare equal.
func normaliseContentType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(ct))
	}
	cs := strings.ToLower(params["charset"])
	if cs == "utf8" {
		cs = "utf-8"
	}
	if cs == "" && (isJSONMedia(mt) || strings.HasPrefix(mt, "text/")) {
		cs = "utf-8"
	}
	if cs == "" {
		return mt
	}
	return mt + "; charset=" + cs
}

func isJSONMedia(mt string) bool {
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}

func mediaType(ct string) string {
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	}
	return mt
}

// compareBodies picks the comparison by content type and content, and
// returns which one it used.
func (w *walker) compareBodies(lb, cb []byte, lct, cct string) string {
	if len(lb) == 0 && len(cb) == 0 {
		return "empty"
	}
	lmt, cmt := mediaType(lct), mediaType(cct)
	jsonish := isJSONMedia(lmt) || isJSONMedia(cmt) || (looksJSON(lb) && looksJSON(cb))
	if jsonish {
		// The parsed values borrow the bodies' memory (no copy); nothing
		// that outlives Compare keeps a substring of them: differences hold
		// freshly rendered strings.
		lv, lerr := parseJSON(borrowString(lb))
		if lerr == nil {
			cv, cerr := parseJSON(borrowString(cb))
			switch {
			case cerr != nil && (isJSONMedia(cmt) || looksJSON(cb)):
				// The candidate meant to answer JSON and failed: a broken
				// candidate, not a different answer.
				w.add(Difference{Path: "", Type: DiffInvalidJSON, Legacy: truncateText(string(lb), 80),
					Candidate: truncateText(string(cb), 80), Signature: " " + DiffInvalidJSON})
				return "json"
			case cerr != nil:
				// A different kind of answer altogether (e.g. plain-text
				// "400 Bad Request" where Spring sends its JSON error body).
				w.add(Difference{Path: "@body", Type: DiffBody, Legacy: truncateText(string(lb), 80),
					Candidate: truncateText(string(cb), 80), Signature: "@body " + DiffBody})
				return "json"
			}
			w.diffValue(&lv, &cv)
			return "json"
		}
	}
	if bytes.Equal(lb, cb) {
		if utf8.Valid(lb) {
			return "text"
		}
		return "binary"
	}
	textual := strings.HasPrefix(lmt, "text/") || strings.HasPrefix(cmt, "text/") || lmt == "" || cmt == ""
	if textual && utf8.Valid(lb) && utf8.Valid(cb) {
		w.diffText(string(lb), string(cb))
		return "text"
	}
	w.add(Difference{Path: "@body", Type: DiffBody, Legacy: digest(lb), Candidate: digest(cb),
		Signature: "@body " + DiffBody})
	return "binary"
}

// borrowString views b as a string without copying; b must not change
// while the string is in use.
func borrowString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func looksJSON(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && (b[0] == '{' || b[0] == '[')
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return strconv.Itoa(len(b)) + " bytes sha256:" + hex.EncodeToString(sum[:8])
}

func truncateText(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
