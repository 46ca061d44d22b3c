package logs

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

func decode(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	h := NewLimiter(slog.NewJSONHandler(&buf, nil), LimitOptions{Window: time.Hour, Burst: 2, Exempt: []string{"access"}})
	log := slog.New(h)
	ctx := WithRoute(context.Background(), "GET /a")
	for range 10 {
		log.WarnContext(ctx, "guest failed", "kind", "exit")        // route from the context
		log.Warn("guest failed", "route", "GET /b", "kind", "exit") // its own route: another group
		log.Warn("guest failed", "route", "GET /b", "kind", "trap") // another reason
		log.With("route", "GET /c").Error("copy failed")            // route from With
		log.InfoContext(ctx, "access")                              // exempt
	}
	Flush(h)
	counts := map[string]int{}
	summaries := map[string]float64{}
	for _, r := range decode(t, buf.String()) {
		route, _ := r["route"].(string)
		reason, _ := r["reason"].(string)
		if kind, ok := r["kind"].(string); ok {
			reason = kind
		}
		if route == "" {
			t.Errorf("line without a route: %v", r)
		}
		if r["msg"] == SuppressedMessage {
			summaries[route+" "+r["message"].(string)+" "+reason] = r["suppressed"].(float64)
			continue
		}
		counts[route+" "+r["msg"].(string)+" "+reason]++
	}
	wantCounts := map[string]int{"GET /a guest failed exit": 2, "GET /b guest failed exit": 2, "GET /b guest failed trap": 2,
		"GET /c copy failed ": 2, "GET /a access ": 10}
	for k, v := range wantCounts {
		if counts[k] != v {
			t.Errorf("%q written %d times, want %d (all: %v)", k, counts[k], v, counts)
		}
	}
	for _, k := range []string{"GET /a guest failed exit", "GET /b guest failed exit", "GET /b guest failed trap", "GET /c copy failed "} {
		if summaries[k] != 8 {
			t.Errorf("summary of %q says %v suppressed, want 8 (all: %v)", k, summaries[k], summaries)
		}
	}
}

// TestLimiterWindow: after a window the group starts again, and the
// summary of the one that ended comes out without any further line.
func TestLimiterWindow(t *testing.T) {
	var buf syncBuffer
	h := NewLimiter(slog.NewJSONHandler(&buf, nil), LimitOptions{Window: 100 * time.Millisecond, Burst: 1})
	log := slog.New(h)
	for range 5 {
		log.Warn("x", "route", "r")
	}
	time.Sleep(250 * time.Millisecond)
	recs := decode(t, buf.String())
	if len(recs) != 2 || recs[1]["msg"] != SuppressedMessage || recs[1]["suppressed"].(float64) != 4 {
		t.Fatalf("after one window: %v", recs)
	}
	log.Warn("x", "route", "r")
	if recs := decode(t, buf.String()); len(recs) != 3 || recs[2]["msg"] != "x" {
		t.Fatalf("a new window lets the line through again: %v", recs)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
