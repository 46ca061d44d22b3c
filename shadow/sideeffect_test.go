package shadow

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func jsonResponse(body string, calls ...Call) Response {
	return Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body),
		Calls: calls, CallsRecorded: true}
}

func TestCompareSideEffects(t *testing.T) {
	read := Call{Method: "GET", To: "inventory-service", URL: "/api/inventory?skuCode=a", Status: 200}
	reserve := Call{Method: "POST", To: "inventory-service", URL: "/api/inventory/reserve", Status: 200, Stubbed: true}
	for _, c := range []struct {
		name             string
		legacy, cand     Response
		want             []string // side-effect texts
		outcome          string
		sideEffectResult bool
	}{
		{"same writes", jsonResponse(`{}`, read, reserve), jsonResponse(`{}`, read, reserve), nil, OutcomeMatch, false},
		{"extra write", jsonResponse(`{}`, read), jsonResponse(`{}`, read, reserve),
			[]string{"candidate called POST /api/inventory/reserve, legacy did not"}, OutcomeMismatch, true},
		{"missing write", jsonResponse(`{}`, reserve), jsonResponse(`{}`),
			[]string{"legacy called POST /api/inventory/reserve, candidate did not"}, OutcomeMismatch, true},
		{"twice", jsonResponse(`{}`, reserve), jsonResponse(`{}`, reserve, reserve),
			[]string{"legacy called POST /api/inventory/reserve 1×, candidate 2×"}, OutcomeMismatch, true},
		// Reads change nothing: another query or a skipped read is not a side effect.
		{"reads differ", jsonResponse(`{}`, read), jsonResponse(`{}`), nil, OutcomeMatch, false},
		// A side not watched (a remote candidate) has unknown calls: nothing to compare.
		{"not watched", jsonResponse(`{}`, reserve), Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{}`)},
			nil, OutcomeMatch, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := Compare(c.legacy, c.cand, nil, nil)
			var got []string
			for _, d := range res.Differences {
				if d.Type == DiffSideEffect {
					got = append(got, SideEffectText(d))
					if !strings.HasPrefix(d.Signature, "@call/POST /api/inventory/reserve ") {
						t.Errorf("signature %q", d.Signature)
					}
				}
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") || res.Outcome != c.outcome || res.HasSideEffect() != c.sideEffectResult {
				t.Errorf("got %q %s %v, want %q %s %v", got, res.Outcome, res.HasSideEffect(), c.want, c.outcome, c.sideEffectResult)
			}
		})
	}
}

// TestMirrorRecordsCandidateCalls: the mirror runs the candidate's copy
// under a recorder, keeps what a watching backend records on the sample,
// compares it with legacy's calls and counts the side-effect difference in
// the evidence (and only a watched side's calls are compared).
func TestMirrorRecordsCandidateCalls(t *testing.T) {
	rec := &collect{}
	m := NewMirror(MirrorConfig{}, rec)
	watching := backendFunc(func(r *http.Request) (*http.Response, error) {
		calls := CallsFrom(r.Context())
		if calls == nil {
			t.Error("the candidate's copy carries no call recorder")
		} else {
			calls.Watch()
			calls.Add(NewCall("inventory-service", &url.URL{Path: "/api/inventory/reserve"}, "POST", 200))
		}
		return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(`{}`))}, nil
	})
	req := mustReq(t, "POST", "http://legacy/api/order", `{}`)
	legacy := jsonResponse(`{}`)
	allow := &Options{Writes: WritesAllow}
	for i := 0; i < 3; i++ {
		if out := m.Submit(Exchange{Route: "POST /api/order", Service: "order", Options: allow, Request: req, Body: []byte(`{}`),
			Legacy: legacy, Candidate: watching}); out != OutcomeQueued {
			t.Fatal(out)
		}
	}
	closeMirror(t, m)
	ev := m.Evidence("POST /api/order")
	if ev.CallsCompared != 3 || ev.SideEffects != 3 || ev.Signatures["@call/POST /api/inventory/reserve side-effect"] != 3 {
		t.Errorf("evidence: compared %d, side effects %d, signatures %v", ev.CallsCompared, ev.SideEffects, ev.Signatures)
	}
	sum := ev.Summary(nil)
	if sum.SideEffects != 3 || sum.CallsCompared != 3 {
		t.Errorf("summary: %+v", sum)
	}
	merged := NewEvidence("POST /api/order", "order")
	merged.Merge(ev)
	merged.Merge(ev)
	if merged.SideEffects != 6 || merged.CallsCompared != 6 {
		t.Errorf("merged: %d of %d", merged.SideEffects, merged.CallsCompared)
	}
	samples := rec.all()
	if len(samples) == 0 || len(samples[0].Candidate.Calls) != 1 || !samples[0].Candidate.CallsRecorded {
		t.Fatalf("recorded sample: %+v", samples)
	}
	var out bytes.Buffer
	if err := Render(samples[0], &out, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"candidate called POST /api/inventory/reserve, legacy did not", "@@ outbound calls @@",
		"+POST inventory-service /api/inventory/reserve → 200"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rendered sample lacks %q:\n%s", want, out.String())
		}
	}
}

type backendFunc func(*http.Request) (*http.Response, error)

func (f backendFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCallsRecorderOnContext(t *testing.T) {
	if CallsFrom(context.Background()) != nil || CallsFrom(WithCalls(context.Background(), nil)) != nil {
		t.Error("a context without a recorder returned one")
	}
	c := &Calls{}
	if CallsFrom(WithCalls(context.Background(), c)) != c {
		t.Error("recorder lost")
	}
}

// TestSideEffectsGroupedByRoute: writes are compared, and their difference
// classes named, by route template: the called service's route when the
// call went to a named service, else the path with ids as {id}. Reserving
// stock 42 in one sample and 43 in another is one class.
func TestSideEffectsGroupedByRoute(t *testing.T) {
	reserve := func(path, route string) Call {
		return Call{Method: "POST", To: "inventory-service", URL: path, Route: route, Status: 200}
	}
	sigs := func(legacy, cand []Call) []string {
		res := Compare(jsonResponse(`{}`, legacy...), jsonResponse(`{}`, cand...), nil, nil)
		return res.Signatures()
	}
	// The same write to another id is the same write.
	if got := sigs([]Call{reserve("/api/inventory/reserve/42", "")}, []Call{reserve("/api/inventory/reserve/43", "")}); len(got) != 0 {
		t.Errorf("reserve 42 against reserve 43: %q, want no difference", got)
	}
	a := sigs(nil, []Call{reserve("/api/inventory/reserve/42?x=1", "")})
	b := sigs(nil, []Call{reserve("/api/inventory/reserve/43", "")})
	u := sigs(nil, []Call{reserve("/api/inventory/reserve/3F2504E0-4F89-41D3-9A0C-0305E82C3301", "")})
	want := "@call/POST /api/inventory/reserve/{id} side-effect"
	for _, got := range [][]string{a, b, u} {
		if len(got) != 1 || got[0] != want {
			t.Errorf("signatures %q, want [%q]", got, want)
		}
	}
	// A named service's route wins over the guess: a SKU is no number.
	routed := "POST /api/inventory/reserve/{sku}"
	x := sigs(nil, []Call{reserve("/api/inventory/reserve/ABC-1", routed)})
	y := sigs(nil, []Call{reserve("/api/inventory/reserve/XYZ-9", routed)})
	if len(x) != 1 || x[0] != "@call/"+routed+" side-effect" || len(y) != 1 || y[0] != x[0] {
		t.Errorf("routed signatures %q and %q, want one class @call/%s", x, y, routed)
	}
	// Counted per class: two reservations against one is a difference.
	got := sigs([]Call{reserve("/api/inventory/reserve/1", "")}, []Call{reserve("/api/inventory/reserve/1", ""), reserve("/api/inventory/reserve/2", "")})
	if len(got) != 1 || got[0] != want {
		t.Errorf("one reservation against two: %q", got)
	}
	for in, out := range map[string]string{
		"/api/order/7/items/12": "/api/order/{id}/items/{id}",
		"/api/v2/sku-7":         "/api/v2/sku-7",
		"/":                     "/",
	} {
		if got := CollapseIDs(in); got != out {
			t.Errorf("CollapseIDs(%q) = %q, want %q", in, got, out)
		}
	}
}

// TestEvidenceCountsSamplesWithWrites: of the samples whose calls were
// compared, those in which either side wrote are counted, merged across
// replicas and summarised; reads alone are not writes.
func TestEvidenceCountsSamplesWithWrites(t *testing.T) {
	read := Call{Method: "GET", URL: "/api/inventory", Status: 200}
	write := Call{Method: "DELETE", URL: "/api/inventory/7", Status: 204}
	add := func(ev *Evidence, legacy, cand []Call) {
		l, c := jsonResponse(`{}`, legacy...), jsonResponse(`{}`, cand...)
		ev.Add(Sample{At: time.Now(), Route: ev.Route, Legacy: l, Candidate: c, Result: Compare(l, c, nil, nil)})
	}
	a, b := NewEvidence("GET /api/order", "order-service"), NewEvidence("GET /api/order", "order-service")
	add(a, []Call{read}, []Call{read})
	add(a, []Call{write}, []Call{write})
	add(b, nil, []Call{write})
	a.Merge(b)
	sum := a.Summary(nil)
	if a.CallsCompared != 3 || a.CallsWrote != 2 || sum.CallsWrote != 2 || sum.SideEffects != 1 {
		t.Errorf("compared %d, wrote %d (summary %d), side effects %d; want 3, 2, 2, 1", a.CallsCompared, a.CallsWrote, sum.CallsWrote, sum.SideEffects)
	}
}
