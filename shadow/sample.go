package shadow

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Sample is one recorded exchange: the request, both responses and how they
// compared. Samples handed to a Recorder are already redacted and their
// bodies decoded and truncated.
type Sample struct {
	At        time.Time       `json:"at"`
	Route     string          `json:"route"`
	Service   string          `json:"service,omitempty"`
	Request   RecordedRequest `json:"request"`
	Legacy    Response        `json:"legacy"`
	Candidate Response        `json:"candidate"`
	Result    Result          `json:"result"`
	// Baseline marks an A/A sample: Candidate holds legacy's second answer.
	Baseline bool `json:"baseline,omitempty"`
}

// RecordedRequest is the stored form of a mirrored request.
type RecordedRequest struct {
	Method string      `json:"method"`
	URL    string      `json:"url"`
	Header http.Header `json:"header,omitempty"`
	Body   []byte      `json:"body,omitempty"`
	// Truncated is set when Body was cut at the sample body cap.
	Truncated bool `json:"truncated,omitempty"`
}

// Recorder receives samples; the strangler store implements it. Record is
// called from Mirror's workers and must not block for long.
type Recorder interface {
	Record(Sample)
}

// SampleFilter is an optional part of a Recorder: a Recorder that keeps only
// some samples says which before the mirror redacts one (redaction decodes
// and re-encodes bodies), so samples it would throw away cost nothing.
type SampleFilter interface {
	Wants(Sample) bool
}

// RecorderFunc adapts a function to Recorder.
type RecorderFunc func(Sample)

// Record calls f(s).
func (f RecorderFunc) Record(s Sample) { f(s) }

// redactedHeaders, secretParams and the form fields of the same names never
// reach storage; Options.Redact adds to them with "@header/NAME",
// "@query/NAME" and "@form/NAME".
var redactedHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "X-Auth-Token"}

// secretParams are query parameters and form fields whose values never
// reach storage.
var secretParams = []string{"access_token", "token", "api_key", "apikey", "password", "secret",
	"client_secret", "session", "signature", "sig"}

const redacted = "[redacted]"

// Prefixes of Options.Redact entries that name a header, query parameter or
// form field instead of a JSON pointer.
const (
	redactHeaderPrefix = "@header/"
	redactQueryPrefix  = "@query/"
	redactFormPrefix   = "@form/"
)

// minSecret is the shortest redacted value that is also blotted out of
// difference renderings: shorter values carry no secret worth the cost of
// replacing every "1" or "ok" in every difference.
const minSecret = 3

// Redact returns the sample as it may be stored: credentials headers, query
// parameters and form fields replaced, the configured JSON fields
// (Options.Redact) replaced in every body, every value found there blotted
// out of every difference (JSON, text line, template), bodies decoded and
// cut at maxBody (Options.MaxBody, default 1MiB).
func Redact(s Sample, opts *Options) Sample {
	c := compileOptions(opts)
	limit := c.maxBody
	var secrets []string
	s.Request.Header = redactHeader(s.Request.Header, c, &secrets)
	s.Request.URL = redactQuery(s.Request.URL, c, &secrets)
	s.Request.Body, s.Request.Truncated, _ = redactBody(s.Request.Body, s.Request.Header.Get("Content-Type"), "", c, limit, &secrets)
	s.Legacy = redactResponse(s.Legacy, c, limit, &secrets)
	s.Candidate = redactResponse(s.Candidate, c, limit, &secrets)
	// Services echo what they were sent, and one side's secret may sit
	// unredacted in the other side's body: every secret found anywhere in
	// the exchange is blotted out of every stored body.
	s.Request.Body = blotBody(s.Request.Body, secrets)
	s.Legacy.Body = blotBody(s.Legacy.Body, secrets)
	s.Candidate.Body = blotBody(s.Candidate.Body, secrets)
	if len(s.Result.Differences) > 0 {
		diffs := make([]Difference, len(s.Result.Differences))
		copy(diffs, s.Result.Differences)
		for i := range diffs {
			d := &diffs[i]
			if c.sensitiveHeaderPath(d.Path) || strings.HasPrefix(d.Path, "/") && len(c.redact) > 0 && underRedacted(mustPattern(d.Path), c.redact) {
				if d.Legacy != "" {
					d.Legacy = redacted
				}
				if d.Candidate != "" {
					d.Candidate = redacted
				}
			}
			d.Legacy = blot(d.Legacy, secrets)
			d.Candidate = blot(d.Candidate, secrets)
			d.Template = blot(d.Template, secrets)
		}
		s.Result.Differences = diffs
	}
	s.Result.Error = blot(s.Result.Error, secrets)
	return s
}

// blot replaces every occurrence of a secret in a rendering.
func blot(text string, secrets []string) string {
	if text == "" {
		return text
	}
	for _, sec := range secrets {
		if strings.Contains(text, sec) {
			text = strings.ReplaceAll(text, sec, redacted)
		}
	}
	return text
}

// blotBody replaces every secret in a stored body. A JSON body is blotted
// value by value, so it stays JSON (a number that is a secret becomes the
// string "[redacted]"); any other body, or a JSON body cut at the size
// cap, byte by byte.
func blotBody(body []byte, secrets []string) []byte {
	if len(body) == 0 || len(secrets) == 0 {
		return body
	}
	found := false
	for _, sec := range secrets {
		if bytes.Contains(body, []byte(sec)) {
			found = true
			break
		}
	}
	if !found {
		return body
	}
	if looksJSON(body) {
		if v, err := parseJSON(string(body)); err == nil {
			blotValue(&v, secrets)
			return appendJSON(nil, &v, false, 0, 0)
		}
	}
	return []byte(blot(string(body), secrets))
}

func blotValue(v *value, secrets []string) {
	switch v.kind {
	case kString:
		v.s = blot(v.s, secrets)
	case kNumber:
		if blot(v.s, secrets) != v.s {
			*v = value{kind: kString, s: redacted}
		}
	case kObject, kArray:
		for i := range v.keys {
			v.keys[i] = blot(v.keys[i], secrets)
		}
		for i := range v.vals {
			blotValue(&v.vals[i], secrets)
		}
	}
}

// authSchemes are the words before a credential in Authorization headers:
// they are not secret, and blotting them would hide every "Bearer" in a
// body.
var authSchemes = map[string]bool{"basic": true, "bearer": true, "digest": true, "negotiate": true, "hoba": true, "mutual": true, "aws4-hmac-sha256": true}

// keep adds a redacted value, and its JSON-escaped spelling, to the values
// blotted out of differences.
func keep(secrets *[]string, v string) {
	if len(v) < minSecret {
		return
	}
	*secrets = append(*secrets, v)
	q := string(appendJSON(nil, &value{kind: kString, s: v}, false, 0, 0))
	if q = q[1 : len(q)-1]; q != v {
		*secrets = append(*secrets, q)
	}
}

// redactQuery replaces the values of credential-like query parameters.
func redactQuery(raw string, c *compiled, secrets *[]string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return raw
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil && len(q) == 0 {
		return raw
	}
	if !redactValues(q, c.redactQuery, secrets) {
		return raw
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// redactValues replaces the values of the named keys (lower case).
func redactValues(q url.Values, names map[string]bool, secrets *[]string) bool {
	changed := false
	for k, vs := range q {
		if names[strings.ToLower(k)] {
			for _, v := range vs {
				keep(secrets, v)
			}
			q[k] = []string{redacted}
			changed = true
		}
	}
	return changed
}

func (c *compiled) sensitiveHeaderPath(path string) bool {
	name, ok := strings.CutPrefix(path, redactHeaderPrefix)
	return ok && c.redactHeaders[http.CanonicalHeaderKey(name)]
}

func mustPattern(ptr string) pattern {
	p, _ := exactPattern(ptr) // a difference's path, spelt exactly
	return p
}

func underRedacted(p pattern, rules []pattern) bool {
	for _, r := range rules {
		if len(p) >= len(r) && r.matches(p[:len(r)]) {
			return true
		}
	}
	return false
}

func redactHeader(h http.Header, c *compiled, secrets *[]string) http.Header {
	if h == nil {
		return nil
	}
	out := h.Clone()
	for k, vs := range out {
		if c.redactHeaders[http.CanonicalHeaderKey(k)] {
			for _, v := range vs {
				keep(secrets, v)
				// "Bearer TOKEN", "a=1; b=2": the parts may be quoted alone.
				for _, part := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ';' || r == ',' || r == '=' }) {
					if !authSchemes[strings.ToLower(part)] {
						keep(secrets, part)
					}
				}
			}
			out[k] = []string{redacted}
		}
	}
	return out
}

func redactResponse(r Response, c *compiled, limit int64, secrets *[]string) Response {
	r.Header = redactHeader(r.Header, c, secrets)
	r.Calls = redactCalls(r.Calls, c, secrets)
	body, _, decoded := redactBody(r.Body, r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), c, limit, secrets)
	if decoded {
		// Stored bodies are decoded so they can be read and diffed later.
		r.Header.Del("Content-Encoding")
	}
	r.Body = body
	return r
}

// redactBody decodes, redacts configured JSON fields or form fields and
// truncates a body.
func redactBody(body []byte, contentType, encoding string, c *compiled, limit int64, secrets *[]string) (out []byte, truncated, decoded bool) {
	if len(body) == 0 {
		return body, false, false
	}
	if encoding != "" {
		if dec, err := decodeBody(body, encoding, limit); err == nil {
			body, decoded = dec, true
		}
	}
	switch mt := mediaType(contentType); {
	case len(c.redact) > 0 && (isJSONMedia(mt) || looksJSON(body)):
		if v, err := parseJSON(string(body)); err == nil {
			redactValue(&v, nil, c.redact, secrets)
			body = appendJSON(nil, &v, false, 0, 0)
		}
	case mt == "application/x-www-form-urlencoded":
		if q, err := url.ParseQuery(string(body)); err == nil && redactValues(q, c.redactForm, secrets) {
			body = []byte(q.Encode())
		}
	}
	if int64(len(body)) > limit {
		return append([]byte(nil), body[:limit]...), true, decoded
	}
	return append([]byte(nil), body...), false, decoded
}

func redactValue(v *value, segs []string, rules []pattern, secrets *[]string) {
	for _, r := range rules {
		if r.matches(segs) {
			keepLeaves(v, secrets)
			*v = value{kind: kString, s: redacted}
			return
		}
	}
	switch v.kind {
	case kObject:
		for i, k := range v.keys {
			redactValue(&v.vals[i], append(segs, k), rules, secrets)
		}
	case kArray:
		for i := range v.vals {
			redactValue(&v.vals[i], append(segs, indexName(i)), rules, secrets)
		}
	}
}

// keepLeaves adds a redacted value's strings and numbers, and its whole
// rendering, to the values blotted out of differences.
func keepLeaves(v *value, secrets *[]string) {
	switch v.kind {
	case kString, kNumber:
		keep(secrets, v.s)
	case kObject, kArray:
		keep(secrets, string(appendJSON(nil, v, false, 0, 0)))
		for i := range v.vals {
			keepLeaves(&v.vals[i], secrets)
		}
	}
}
