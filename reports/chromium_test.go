package reports

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// chromiumPath finds a headless-capable Chromium. Without one the browser
// tests skip on a workstation but fail in CI, where the package is installed.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed but CI is set: install it (apt-get install -y chromium) so the report is checked in a real browser")
	}
	t.Skip("chromium is not installed: apt-get install -y chromium to run the headless browser checks")
	return ""
}

// runChromium runs one headless Chromium with a private profile and returns
// stdout and stderr; flags match what CI uses.
func runChromium(t *testing.T, bin string, args ...string) (stdout, stderr []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.Bytes())
	}
	return out.Bytes(), errb.Bytes()
}

var consoleLine = regexp.MustCompile(`(?m)^.*(:CONSOLE|Uncaught).*$`)

// consoleErrors returns the console messages and uncaught exceptions Chromium logged.
func consoleErrors(stderr []byte) []string {
	return consoleLine.FindAllString(string(stderr), -1)
}

func writeHTML(t *testing.T, r *Report) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := r.WriteHTML(f); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestChromiumRendersReport(t *testing.T) {
	bin := chromiumPath(t)
	page := writeHTML(t, sampleReport())
	url := "file://" + page

	t.Run("screenshot", func(t *testing.T) {
		t.Parallel()
		png := filepath.Join(t.TempDir(), "report.png")
		_, stderr := runChromium(t, bin, "--screenshot="+png, "--window-size=1280,2000", url)
		data, err := os.ReadFile(png)
		if err != nil {
			t.Fatalf("no screenshot: %v\n%s", err, stderr)
		}
		if len(data) < 24 || !bytes.Equal(data[:8], []byte("\x89PNG\r\n\x1a\n")) {
			t.Fatalf("screenshot is not a PNG (%d bytes)", len(data))
		}
		w, h := binary.BigEndian.Uint32(data[16:20]), binary.BigEndian.Uint32(data[20:24])
		if w != 1280 || h != 2000 {
			t.Fatalf("screenshot is %dx%d, want 1280x2000", w, h)
		}
		// A blank page compresses to a few kilobytes; the report has text, tables and charts.
		if len(data) < 50_000 {
			t.Fatalf("screenshot is only %d bytes: the page looks blank", len(data))
		}
		if errs := consoleErrors(stderr); len(errs) > 0 {
			t.Fatalf("console errors while rendering:\n%s", strings.Join(errs, "\n"))
		}
		if dir := os.Getenv("MIGRATE_REPORT_SCREENSHOT_DIR"); dir != "" {
			if err := os.WriteFile(filepath.Join(dir, "report.png"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("dom", func(t *testing.T) {
		t.Parallel()
		dom, stderr := runChromium(t, bin, "--dump-dom", url)
		if errs := consoleErrors(stderr); len(errs) > 0 {
			t.Fatalf("console errors while loading:\n%s", strings.Join(errs, "\n"))
		}
		d := string(dom)
		for _, id := range []string{`id="summary"`, `id="fleet"`, `id="services"`, `id="footprint"`, `id="method"`} {
			if !strings.Contains(d, id) {
				t.Errorf("DOM lacks section %s", id)
			}
		}
		// Route states, readiness per service, the dependency graph and the
		// largest difference classes, plus a match chart and a latency chart
		// for each of the four routes with evidence.
		if n := strings.Count(d, "<svg"); n != 12 {
			t.Errorf("DOM has %d SVG charts, want 12", n)
		}
		for _, label := range []string{`aria-label="Route states"`, `aria-label="Readiness per service"`, `aria-label="Difference classes"`,
			`aria-label="Migration order by dependency depth"`, `aria-label="Match ratio over time"`, `aria-label="Latency distribution, legacy and Wasm"`} {
			if !strings.Contains(d, label) {
				t.Errorf("DOM lacks chart %s", label)
			}
		}
	})

	t.Run("print to PDF", func(t *testing.T) {
		t.Parallel()
		pdf := filepath.Join(t.TempDir(), "report.pdf")
		_, stderr := runChromium(t, bin, "--no-pdf-header-footer", "--print-to-pdf="+pdf, url)
		data, err := os.ReadFile(pdf)
		if err != nil {
			t.Fatalf("no PDF: %v\n%s", err, stderr)
		}
		if !bytes.HasPrefix(data, []byte("%PDF-")) {
			t.Fatal("output is not a PDF")
		}
		if pages := regexp.MustCompile(`/Type\s*/Page[^s]`).FindAll(data, -1); len(pages) < 3 {
			t.Fatalf("PDF has %d pages, want several (the report is long)", len(pages))
		}
	})
}

// TestChromiumConsoleCheckCatchesErrors proves the console check above can
// fail: a page with a script error must be caught.
func TestChromiumConsoleCheckCatchesErrors(t *testing.T) {
	bin := chromiumPath(t)
	page := filepath.Join(t.TempDir(), "broken.html")
	if err := os.WriteFile(page, []byte(`<!DOCTYPE html><html><body><script>missingFunction()</script></body></html>`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr := runChromium(t, bin, "--dump-dom", "file://"+page)
	if errs := consoleErrors(stderr); len(errs) == 0 || !strings.Contains(strings.Join(errs, "\n"), "Uncaught ReferenceError") {
		t.Fatalf("console check missed an uncaught error; stderr:\n%s", stderr)
	}
}

// TestHTMLSelfContained checks the HTML needs nothing from the network: no
// external scripts, stylesheets, fonts or images.
func TestHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := sampleReport().WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	h := buf.String()
	for _, bad := range []string{"<link", "<script", "<img", "@import", "@font-face", "<iframe"} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML contains %q: the report must be self-contained", bad)
		}
	}
	// url() may only point inside the document (SVG markers).
	for rest := h; ; {
		i := strings.Index(rest, "url(")
		if i < 0 {
			break
		}
		rest = rest[i+4:]
		if !strings.HasPrefix(rest, "#") {
			t.Errorf("HTML has an external url(%s", rest[:min(len(rest), 40)])
		}
	}
	stripped := strings.ReplaceAll(h, `xmlns="http://www.w3.org/2000/svg"`, "")
	if i := strings.Index(stripped, "http://"); i >= 0 {
		t.Errorf("HTML references http:// at %q", stripped[max(0, i-40):min(len(stripped), i+60)])
	}
	if !strings.Contains(h, "@media print") {
		t.Error("HTML lacks print styles")
	}
}
