package reports

import (
	"bytes"
	"encoding/json"
	"html"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/strangler-fig/migrate/analyze"
)

// framed puts the report in an iframe exactly width px wide (Chromium's
// headless window is never narrower than 500 px) and tall enough to need
// no scrollbar of its own. With probe, a script of the host page measures
// the laid-out report once it has loaded: the document's scroll width
// against the frame's, and every element that reaches past the right edge
// without a scrolling box around it. The report itself has no script; only
// this host page does.
func framed(report string, width int, probe bool) string {
	var b strings.Builder
	// The host page shows no scrollbar of its own in the screenshot.
	b.WriteString(`<!DOCTYPE html><html style="overflow:hidden"><head><meta charset="utf-8"></head><body style="margin:0">`)
	b.WriteString(`<iframe id="f" style="display:block;border:0;width:` + strconv.Itoa(width) + `px;height:60000px" srcdoc="` + html.EscapeString(report) + `"></iframe>`)
	if probe {
		b.WriteString(`<script>
document.getElementById('f').addEventListener('load', e => {
  const d = e.target.contentDocument, w = e.target.contentWindow;
  const W = d.documentElement.clientWidth, bad = [];
  for (const el of d.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= W + 1) continue;
    let p = el.parentElement, inScroller = false;
    for (; p && p !== d.body; p = p.parentElement) {
      const o = w.getComputedStyle(p).overflowX;
      if (o === 'auto' || o === 'scroll' || o === 'hidden') { inScroller = true; break; }
    }
    if (!inScroller) bad.push(el.tagName.toLowerCase() + (el.className && el.className.baseVal === undefined ? '.' + el.className : '') + ' right=' + Math.round(r.right) + ' "' + (el.textContent || '').trim().slice(0, 50) + '"');
  }
  document.body.setAttribute('data-layout', JSON.stringify({width: W, scrollWidth: d.documentElement.scrollWidth, overflow: bad.slice(0, 15)}));
});
</script>`)
	}
	b.WriteString(`</body></html>`)
	return b.String()
}

var layoutAttr = regexp.MustCompile(`data-layout="([^"]*)"`)

// TestChromiumLayoutFitsDesktopAndPhone lays the report out in Chromium at
// a laptop's 1280 px and a phone's 390 px: nothing may make the page
// scroll sideways (wide tables scroll inside themselves, the findings
// table wraps), and a screenshot of each is kept as a test artifact
// (go test -artifacts keeps them; without it they go with the temp dir).
func TestChromiumLayoutFitsDesktopAndPhone(t *testing.T) {
	bin := chromiumPath(t)
	rep := sampleReport()
	// What real inventories hold: evidence made of long dotted property
	// names with no place to break a line.
	rep.Fleet.Findings = append(rep.Fleet.Findings, FindingRow{Service: "order-service", Finding: analyze.Finding{
		ID: "resilience", Title: "Circuit breakers and retries (Resilience4j / Hystrix)", Category: "optional", Effort: 1,
		Evidence: "env resilience4j.circuitbreaker.instances.inventory.failureRateThreshold,resilience4j.circuitbreaker.instances.inventory.slidingWindowSize"}})
	var page bytes.Buffer
	if err := rep.WriteHTML(&page); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, width := range []int{1280, 390} {
		t.Run(strconv.Itoa(width)+"px", func(t *testing.T) {
			size := "--window-size=" + strconv.Itoa(width) + ",2400"
			probed := filepath.Join(dir, "probed-"+strconv.Itoa(width)+".html")
			plain := filepath.Join(dir, "framed-"+strconv.Itoa(width)+".html")
			if err := os.WriteFile(probed, []byte(framed(page.String(), width, true)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(plain, []byte(framed(page.String(), width, false)), 0o644); err != nil {
				t.Fatal(err)
			}
			dom, stderr := runChromium(t, bin, size, "--dump-dom", "file://"+probed)
			m := layoutAttr.FindSubmatch(dom)
			if m == nil {
				t.Fatalf("the layout probe did not run:\n%s", stderr)
			}
			var got struct {
				Width       int      `json:"width"`
				ScrollWidth int      `json:"scrollWidth"`
				Overflow    []string `json:"overflow"`
			}
			if err := json.Unmarshal([]byte(html.UnescapeString(string(m[1]))), &got); err != nil {
				t.Fatal(err)
			}
			if got.Width > width || got.Width < width-30 {
				t.Fatalf("viewport is %d px wide, want about %d: the window size did not apply", got.Width, width)
			}
			if got.ScrollWidth > got.Width || len(got.Overflow) > 0 {
				t.Errorf("at %d px the page is %d px wide; reaching past the edge:\n  %s", got.Width, got.ScrollWidth, strings.Join(got.Overflow, "\n  "))
			}
			png := filepath.Join(t.ArtifactDir(), "report-"+strconv.Itoa(width)+".png")
			runChromium(t, bin, size, "--screenshot="+png, "file://"+plain)
			if fi, err := os.Stat(png); err != nil || fi.Size() < 20_000 {
				t.Fatalf("screenshot %s: %v", png, err)
			}
			t.Logf("screenshot: %s", png)
		})
	}
}
