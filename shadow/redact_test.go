package shadow

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRedactEchoedSecrets: a redacted request header, query parameter or
// response field whose value a service echoes elsewhere — in a text line,
// in another JSON field, as a number — is blotted out of every stored body,
// and a JSON body stays JSON.
func TestRedactEchoedSecrets(t *testing.T) {
	opts := &Options{Redact: []string{"/card/number", "@header/X-Session-Key", "@query/pin"}}
	s := Sample{Route: "GET /me", Request: RecordedRequest{Method: "GET", URL: "/me?pin=pin1234&page=2",
		Header: http.Header{"X-Session-Key": {"sess-abcdef"}, "Authorization": {"Bearer tok-98765"}}},
		Legacy: textResp(200, "hello\nsession sess-abcdef\nauth tok-98765 pin pin1234\n"),
		Candidate: jsonResp(200, `{"card":{"number":4111111111111111},"echo":"card 4111111111111111, session sess-abcdef",`+
			`"last":4111111111111111,"sess-abcdef":true,"scheme":"Bearer"}`)}
	s.Result = Compare(s.Legacy, s.Candidate, opts, nil)
	r := Redact(s, opts)
	stored, _ := json.Marshal(r)
	all := string(stored) + string(r.Legacy.Body) + string(r.Candidate.Body)
	for _, secret := range []string{"sess-abcdef", "tok-98765", "pin1234", "4111111111111111"} {
		if strings.Contains(all, secret) {
			t.Errorf("%q survived redaction:\n%s\n%s", secret, r.Legacy.Body, r.Candidate.Body)
		}
	}
	if !json.Valid(r.Candidate.Body) || !strings.Contains(string(r.Candidate.Body), `"last":"[redacted]"`) {
		t.Errorf("candidate body %s: want JSON with the echoed number redacted", r.Candidate.Body)
	}
	if !strings.Contains(string(r.Candidate.Body), `"scheme":"Bearer"`) || !strings.Contains(string(r.Legacy.Body), "hello\n") {
		t.Errorf("what is not secret should stay: %s / %s", r.Legacy.Body, r.Candidate.Body)
	}
}
