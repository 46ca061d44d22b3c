package shadow

import (
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

// redactedHeaders never reach storage.
var redactedHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie"}

const redacted = "[redacted]"

// Redact returns the sample as it may be stored: credentials headers
// replaced, the configured JSON fields (Options.Redact) replaced in every
// body and in the differences that quote them, bodies decoded and cut at
// maxBody (Options.MaxBody, default 1MiB).
func Redact(s Sample, opts *Options) Sample {
	c := compileOptions(opts)
	limit := c.maxBody
	s.Request.Header = redactHeader(s.Request.Header)
	s.Request.URL = redactQuery(s.Request.URL)
	s.Request.Body, s.Request.Truncated, _ = redactBody(s.Request.Body, s.Request.Header.Get("Content-Type"), "", c, limit)
	s.Legacy = redactResponse(s.Legacy, c, limit)
	s.Candidate = redactResponse(s.Candidate, c, limit)
	if len(s.Result.Differences) > 0 {
		diffs := make([]Difference, len(s.Result.Differences))
		copy(diffs, s.Result.Differences)
		for i := range diffs {
			if sensitiveHeaderPath(diffs[i].Path) || strings.HasPrefix(diffs[i].Path, "/") && len(c.redact) > 0 && underRedacted(mustPattern(diffs[i].Path), c.redact) {
				if diffs[i].Legacy != "" {
					diffs[i].Legacy = redacted
				}
				if diffs[i].Candidate != "" {
					diffs[i].Candidate = redacted
				}
			}
		}
		s.Result.Differences = diffs
	}
	return s
}

// secretParams are query parameters whose values never reach storage.
var secretParams = map[string]bool{"access_token": true, "token": true, "api_key": true, "apikey": true,
	"password": true, "secret": true, "client_secret": true, "signature": true, "sig": true}

// redactQuery replaces the values of credential-like query parameters.
func redactQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.RawQuery == "" {
		return raw
	}
	q := u.Query()
	changed := false
	for k := range q {
		if secretParams[strings.ToLower(k)] {
			q[k] = []string{redacted}
			changed = true
		}
	}
	if !changed {
		return raw
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func sensitiveHeaderPath(path string) bool {
	for _, h := range redactedHeaders {
		if strings.EqualFold(path, "@header/"+h) {
			return true
		}
	}
	return false
}

func mustPattern(ptr string) pattern {
	p, _ := parsePattern(ptr)
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

func redactHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := h.Clone()
	for _, k := range redactedHeaders {
		if _, ok := out[k]; ok {
			out[k] = []string{redacted}
		}
	}
	return out
}

func redactResponse(r Response, c *compiled, limit int64) Response {
	r.Header = redactHeader(r.Header)
	body, _, decoded := redactBody(r.Body, r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"), c, limit)
	if decoded {
		// Stored bodies are decoded so they can be read and diffed later.
		r.Header.Del("Content-Encoding")
	}
	r.Body = body
	return r
}

// redactBody decodes, redacts configured JSON fields and truncates a body.
func redactBody(body []byte, contentType, encoding string, c *compiled, limit int64) (out []byte, truncated, decoded bool) {
	if len(body) == 0 {
		return body, false, false
	}
	if encoding != "" {
		if dec, err := decodeBody(body, encoding, limit); err == nil {
			body, decoded = dec, true
		}
	}
	if len(c.redact) > 0 && (isJSONMedia(mediaType(contentType)) || looksJSON(body)) {
		if v, err := parseJSON(string(body)); err == nil {
			redactValue(&v, nil, c.redact)
			body = appendJSON(nil, &v, false, 0, 0)
		}
	}
	if int64(len(body)) > limit {
		return append([]byte(nil), body[:limit]...), true, decoded
	}
	return append([]byte(nil), body...), false, decoded
}

func redactValue(v *value, segs []string, rules []pattern) {
	for _, r := range rules {
		if r.matches(segs) {
			*v = value{kind: kString, s: redacted}
			return
		}
	}
	switch v.kind {
	case kObject:
		for i, k := range v.keys {
			redactValue(&v.vals[i], append(segs, k), rules)
		}
	case kArray:
		for i := range v.vals {
			redactValue(&v.vals[i], append(segs, indexName(i)), rules)
		}
	}
}
