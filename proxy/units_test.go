package proxy

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

// durationKey names the JSON fields that hold a duration.
var durationKey = regexp.MustCompile(`(?i)^p\d\d|latency|duration|millis|nanos|seconds|elapsed`)

// TestRoutesDurationsInMilliseconds reads GET /v1/routes of a proxy whose
// route was shadowed (so it has live latencies and a comparison summary)
// and checks that every duration in it is a number of milliseconds in a
// field whose name ends in Millis, with values that agree with the
// backends' real delay.
func TestRoutesDurationsInMilliseconds(t *testing.T) {
	legacy := newBackend(t, "legacy", func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		fmt.Fprint(w, `{"id":1}`)
	})
	candidate := newBackend(t, "candidate", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"id":1}`) })
	store, err := strangler.OpenStore(filepath.Join(t.TempDir(), "samples.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	mirror := shadow.NewMirror(shadow.MirrorConfig{}, store)
	h := newHarness(t, twoSided, map[string]string{"legacy": legacy.URL, "candidate": candidate.URL}, mirror)
	h.set(t, "GET /api/order", strangler.ModeShadow, 0)
	for range 5 {
		get(t, h.front.URL+"/api/order", nil)
	}
	for deadline := time.Now().Add(5 * time.Second); statusOf(h, "GET /api/order").Samples < 5; {
		if time.Now().After(deadline) {
			t.Fatal("the shadow copies were not compared")
		}
		time.Sleep(20 * time.Millisecond)
	}
	admin := httptest.NewServer(strangler.NewAdmin(h.ctrl, strangler.AdminOptions{}))
	defer admin.Close()
	resp, err := http.Get(admin.URL + "/v1/routes")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var doc any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var found []string
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, child := range v {
				p := path + "." + k
				_, isNum := child.(float64)
				if isNum && durationKey.MatchString(k) && !strings.HasSuffix(k, "Ratio") {
					if !strings.HasSuffix(k, "Millis") {
						t.Errorf("%s is a duration not named ...Millis", p)
					}
					found = append(found, p)
				}
				walk(p, child)
			}
		case []any:
			for _, child := range v {
				walk(path+"[]", child)
			}
		case string:
			if _, err := time.ParseDuration(v); err == nil && v != "0" {
				t.Errorf("%s = %q: a duration as a Go string", path, v)
			}
		}
	}
	walk("", doc)
	var route struct {
		Routes []struct {
			Route   string
			Latency map[string]struct{ P50Millis float64 }
			Shadow  *struct{ LegacyLatency, CandidateLatency struct{ P50Millis float64 } }
		}
	}
	if err := json.Unmarshal(raw, &route); err != nil {
		t.Fatal(err)
	}
	for _, r := range route.Routes {
		if r.Route != "GET /api/order" {
			continue
		}
		// The legacy backend sleeps 20 ms: its p50 is about 20 (ms), not 2e7 (ns).
		if p := r.Latency["legacy"].P50Millis; p < 15 || p > 200 {
			t.Errorf("latency.legacy.p50Millis = %v", p)
		}
		if r.Shadow == nil || r.Shadow.LegacyLatency.P50Millis < 15 || r.Shadow.LegacyLatency.P50Millis > 200 {
			t.Errorf("shadow.legacyLatency = %+v", r.Shadow)
		}
	}
	if len(found) < 12 {
		t.Errorf("only %d duration fields found (%v): the walk missed the latencies", len(found), found)
	}
}

func statusOf(h *harness, route string) strangler.RouteStatus {
	for _, s := range h.ctrl.Status() {
		if s.Route == route {
			return s
		}
	}
	return strangler.RouteStatus{}
}

// TestPercentilesReadOldEvidence: gate evidence stored before durations
// were milliseconds (nanoseconds under p50/p95/p99) still reads right.
func TestPercentilesReadOldEvidence(t *testing.T) {
	var p shadow.Percentiles
	if err := json.Unmarshal([]byte(`{"p50":20000000,"p95":30000000,"p99":45000000}`), &p); err != nil || p.P99 != 45*time.Millisecond || p.P50 != 20*time.Millisecond {
		t.Fatalf("old evidence read as %+v, %v", p, err)
	}
	out, _ := json.Marshal(shadow.Percentiles{P50: 1500 * time.Microsecond, P95: 20 * time.Millisecond, P99: time.Second})
	if string(out) != `{"p50Millis":1.5,"p95Millis":20,"p99Millis":1000}` {
		t.Fatalf("written as %s", out)
	}
	var back shadow.Percentiles
	if err := json.Unmarshal(out, &back); err != nil || back.P50 != 1500*time.Microsecond || back.P99 != time.Second {
		t.Fatalf("read back as %+v, %v", back, err)
	}
}
