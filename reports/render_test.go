package reports

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file: %v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\n got: %s\nwant: %s\n(run go test ./reports -update if the change is intended)", name, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length: got %d lines, want %d (run go test ./reports -update if intended)", name, len(gl), len(wl))
	}
}

func TestGolden(t *testing.T) {
	full := sampleReport()
	empty := Build(nil, nil, Options{Now: fixedNow})
	for _, tc := range []struct {
		name   string
		report *Report
		format string
	}{
		{"report.md", full, "md"},
		{"report.json", full, "json"},
		{"report.html", full, "html"},
		{"empty.md", empty, "md"},
		{"empty.json", empty, "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tc.report.Render(&buf, tc.format); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, buf.Bytes())
		})
	}
}

func TestRenderUnknownFormat(t *testing.T) {
	err := sampleReport().Render(&bytes.Buffer{}, "pdf")
	if err == nil || !strings.Contains(err.Error(), "use html, md or json") {
		t.Fatalf("Render(pdf) error = %v, want a hint at the valid formats", err)
	}
}

func TestJSONIsVersioned(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Summary    struct {
			Counts    map[string]int `json:"counts"`
			NextSteps []Step         `json:"nextSteps"`
		} `json:"summary"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.APIVersion != "migrate/v1" || doc.Kind != "Report" {
		t.Fatalf("apiVersion/kind = %q/%q, want migrate/v1/Report", doc.APIVersion, doc.Kind)
	}
	want := map[string]int{"cutover": 1, "retired": 0, "ready": 1, "collecting": 1, "blocked": 1, "not-started": 1}
	for k, v := range want {
		if doc.Summary.Counts[k] != v {
			t.Errorf("counts[%s] = %d, want %d", k, doc.Summary.Counts[k], v)
		}
	}
}

// TestPartialInputsRender renders every format from inputs that lack
// whole parts, and checks that missing data says "unknown" or "no shadow
// data yet" rather than a made-up number.
func TestPartialInputsRender(t *testing.T) {
	inv := sampleInventory()
	inv.Services[0].Image = nil
	inv.Services[1].Deployment = nil
	inv.Services[2].Deployment.Resources = analyze.Resources{Requests: map[string]string{"memory": "lots"}}
	cases := []struct {
		name   string
		inv    *analyze.Inventory
		routes []Route
		opts   Options
		want   []string
	}{
		{"nothing", nil, nil, Options{Now: fixedNow}, []string{"No routes are in the strangler config yet", "No services yet"}},
		{"inventory only", sampleInventory(), nil, Options{Now: fixedNow}, []string{"unknown", "KAFKA-CONSUMER"}},
		{"routes only", nil, []Route{{Route: "GET /x", Service: "x", Mode: "shadow"}, {Route: "GET /y"}},
			Options{Now: fixedNow}, []string{"No shadow data yet", "(unassigned)", "not in inventory"}},
		{"holes", inv, []Route{
			{Route: "GET /api/product", Service: "product-service", Mode: "shadow", Evidence: &Evidence{}},
			{Route: "GET /api/inventory", Service: "inventory-service", Mode: "canary", Weight: 5,
				Evidence: &Evidence{Samples: 10, Matches: 9, Mismatches: 1, Legacy: Latency{P99: time.Millisecond}}},
			{Route: "GET /api/order", Service: "order-service", Mode: "cutover", Evidence: &Evidence{MatchSeries: []MatchPoint{{At: fixedNow}}}},
		}, Options{Now: fixedNow, Modules: []WasmModule{{Service: "ghost-service", SizeBytes: 100}}},
			[]string{"unknown", "memory request unreadable", "ghost-service", "p99 ratio unknown"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(tc.inv, tc.routes, tc.opts)
			for _, f := range []string{"html", "md", "json"} {
				var buf bytes.Buffer
				if err := r.Render(&buf, f); err != nil {
					t.Fatalf("render %s: %v", f, err)
				}
				if buf.Len() == 0 {
					t.Fatalf("render %s: empty output", f)
				}
				if f == "json" {
					continue
				}
				for _, w := range tc.want {
					if !strings.Contains(buf.String(), w) {
						t.Errorf("%s output lacks %q", f, w)
					}
				}
			}
		})
	}
}

// TestUserDataIsEscaped feeds markup through every user-controlled field
// and checks no renderer lets it through as markup.
func TestUserDataIsEscaped(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	inv := sampleInventory()
	inv.Services[0].Findings[0].Evidence = evil
	inv.Services[0].Findings[0].Title = evil
	routes := sampleRoutes()
	routes[3].Evidence.SampleDiff = "-{\"name\":\"" + evil + "\"}\n+{\"name\":\"<img src=x onerror=alert(1)>\"}\n```\n# heading"
	routes[3].Evidence.SampleRequest = evil
	routes[3].Evidence.NoiseFields = []string{evil}
	routes[3].Evidence.Differences[0].Path = "/a|b/" + evil
	routes[3].Timeline[0].Reason = evil
	routes[3].Timeline[0].Actor = "</td></tr><script>x</script>"
	r := Build(inv, routes, Options{Now: fixedNow, Title: evil})

	var html bytes.Buffer
	if err := r.WriteHTML(&html); err != nil {
		t.Fatal(err)
	}
	h := html.String()
	for _, bad := range []string{"<script>", "<img src=x", "</td></tr><script>"} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML contains unescaped %q", bad)
		}
	}
	if !strings.Contains(h, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Error("HTML lacks the escaped diff text: the payload must still be shown, escaped")
	}

	var md bytes.Buffer
	if err := r.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	// Outside fenced code blocks, no raw tag may survive; inside, text is inert.
	inFence := ""
	for _, line := range strings.Split(md.String(), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			fence := strings.TrimRight(trimmed, "abcdefghijklmnopqrstuvwxyz")
			switch {
			case inFence == "":
				inFence = fence
			case fence == inFence:
				inFence = ""
			}
			continue
		}
		if inFence != "" {
			continue
		}
		line = stripCodeSpans(line)
		if strings.Contains(line, "<script") || strings.Contains(line, "<img") || strings.Contains(line, "</td>") {
			t.Errorf("Markdown line carries raw markup: %s", line)
		}
	}
	if inFence != "" {
		t.Error("Markdown leaves a code fence open: the diff's backticks closed it early")
	}
}

// stripCodeSpans drops inline code spans, whose content Markdown shows literally.
func stripCodeSpans(line string) string {
	var out strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' {
			out.WriteByte(line[i])
			i++
			continue
		}
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		fence := line[i : i+n]
		rest := line[i+n:]
		end := -1
		for j := 0; j+n <= len(rest); j++ {
			if rest[j:j+n] == fence && (j+n == len(rest) || rest[j+n] != '`') && (j == 0 || rest[j-1] != '`') {
				end = j
				break
			}
		}
		if end < 0 {
			out.WriteString(line[i:])
			break
		}
		i += n + end + n
	}
	return out.String()
}
