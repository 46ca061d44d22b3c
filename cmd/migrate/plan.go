package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

type planOptions struct {
	inventory string
	out       string
	upstreams []string
	def       string
	force     bool
	// candidates are SERVICE=PATH.wasm|URL pairs (--candidate).
	candidates []string
	// gate, when set, replaces the default gate block (callers in this
	// package, such as the demo, set it; there is no flag for it).
	gate *strangler.GateConfig
	// shadow, when set, replaces a service's default shadow block (the demo).
	shadow map[string]*shadow.Options
	// listen and admin, when set, replace the default addresses (the demo
	// writes the ones its proxy serves on, so the config works as is).
	listen, admin string
}

// planSummary is what `plan --out FILE` prints.
type planSummary struct {
	APIVersion string   `json:"apiVersion"`
	File       string   `json:"file"`
	Services   int      `json:"services"`
	Routes     int      `json:"routes"`
	Skipped    []string `json:"skipped,omitempty"`
}

func newPlanCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &planOptions{}
	cmd := &cobra.Command{
		Use:   "plan --inventory inventory.json [--out strangler.yaml]",
		Short: "Turn an inventory into a strangler config, every route on legacy",
		Long: `Write a commented strangler config from an inventory: one route per OpenAPI
operation ("METHOD /path/template"), grouped by service, every route starting in
legacy mode, legacy upstreams taken from the cluster description, else the probed
URL, else the OpenAPI document's servers (override with --upstream SERVICE=URL), and
a default route that passes anything unmatched to legacy. The file is meant to be
edited by hand and committed.

A --candidate must be a WebAssembly file that exists (a relative path is read from
the config's directory, as the proxy will) or a URL that answers.

Output: the config is written to stdout (as YAML, or as JSON with -o json), or to
the file named by --out, and then -o is the format of the summary printed. An
existing file is not overwritten without --force.`,
		Example: `  migrate plan --inventory inventory.json --out strangler.yaml
  migrate plan --inventory inventory.json --upstream order-service=http://10.0.0.7:8080 > strangler.yaml
  migrate plan --inventory inventory.json --candidate order-service=components/order.wasm --out strangler.yaml
  migrate plan --inventory inventory.json --default http://legacy-gateway:8080 --out strangler.yaml --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.inventory == "" {
				return usageErrorf("--inventory is required: the inventory.json written by `migrate analyze ... --inventory-out`")
			}
			return runPlan(cmd.Context(), o, g, s)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.inventory, "inventory", "i", "", "inventory file (required)")
	f.StringVar(&o.out, "out", "", "write the config to this file instead of stdout")
	f.StringArrayVar(&o.upstreams, "upstream", nil, "legacy base URL of a service, SERVICE=URL (repeatable)")
	f.StringVar(&o.def, "default", "", "upstream for requests no route matches (default: the service the ingress routes / to)")
	f.BoolVar(&o.force, "force", false, "overwrite an existing --out file")
	f.StringArrayVar(&o.candidates, "candidate", nil, "a service's Wasm replacement, SERVICE=PATH.wasm or SERVICE=URL (repeatable)")
	return cmd
}

func runPlan(ctx context.Context, o *planOptions, g *globalOptions, s *streams) error {
	inv, err := analyze.ReadInventory(o.inventory)
	if err != nil {
		return err
	}
	ups := map[string]string{}
	for _, u := range o.upstreams {
		name, url, ok := strings.Cut(u, "=")
		if !ok || name == "" || url == "" {
			return usageErrorf("--upstream %q: write it as SERVICE=URL, e.g. order-service=http://10.0.0.7:8080", u)
		}
		ups[name] = url
	}
	cands, reusable := map[string]string{}, map[string]bool{}
	for _, c := range o.candidates {
		name, where, ok := strings.Cut(c, "=")
		if !ok || name == "" || where == "" {
			return usageErrorf("--candidate %q: write it as SERVICE=PATH.wasm or SERVICE=URL", c)
		}
		cands[name] = where
		if strings.Contains(where, "://") {
			if err := checkCandidateURL(ctx, where); err != nil {
				return usageErrorf("--candidate %s: %v", c, err)
			}
			continue
		}
		// The proxy reads the path relative to the config's directory.
		path := where
		if !filepath.IsAbs(path) && o.out != "" {
			path = filepath.Join(filepath.Dir(o.out), path)
		}
		if err := checkWasmFile(path); err != nil {
			return usageErrorf("--candidate %s: %v", c, err)
		}
		reusable[name], _ = wasm.IsReusable(path)
	}
	res, err := strangler.Plan(inv, strangler.PlanOptions{Source: o.inventory, Upstreams: ups, Default: o.def,
		Candidates: cands, Reusable: reusable, Gate: o.gate, Shadow: o.shadow, Listen: o.listen, Admin: o.admin})
	if err != nil {
		return usageErrorf("%v", err)
	}
	if o.out == "" {
		if g.output == "json" {
			js, err := yaml.YAMLToJSON(res.YAML)
			if err != nil {
				return err
			}
			var v any
			_ = json.Unmarshal(js, &v)
			return render(s.out, "json", v, nil)
		}
		_, err := s.out.Write(res.YAML)
		return err
	}
	if _, err := os.Stat(o.out); err == nil && !o.force {
		return usageErrorf("%s exists and may hold hand edits; pass --force to overwrite it, or choose another --out", o.out)
	}
	if err := os.WriteFile(o.out, res.YAML, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", o.out, err)
	}
	sum := planSummary{APIVersion: APIVersion, File: o.out, Services: res.Services, Routes: res.Routes, Skipped: res.Skipped}
	return render(s.out, g.output, sum, func(tw *tableWriter) {
		row(tw, "wrote", o.out)
		row(tw, "services", res.Services)
		row(tw, "routes", fmt.Sprintf("%d, all on legacy", res.Routes))
		for _, sk := range res.Skipped {
			row(tw, "skipped", sk)
		}
		row(tw, "next", "migrate proxy --config "+o.out)
	})
}

// wasmMagic starts every WebAssembly module and component.
var wasmMagic = []byte("\x00asm")

// checkWasmFile refuses a candidate path that is not a Wasm binary: a
// config naming one would only fail later, when the proxy loads it.
func checkWasmFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s does not exist (a relative path is read from the config's directory); build the module first", path)
	}
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 8)
	n, _ := io.ReadFull(f, head)
	if n < len(head) || !bytes.HasPrefix(head, wasmMagic) {
		return fmt.Errorf("%s is not a WebAssembly module (it does not start with \\0asm); pass the .wasm file the build produced", path)
	}
	return nil
}

// checkCandidateURL refuses a candidate URL nothing answers at. Any HTTP
// answer, even 404, shows the platform is there.
func checkCandidateURL(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", raw)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("nothing answers at %s: %v; start the candidate (spin up, wasmtime serve, ...) or fix the URL", raw, err)
	}
	resp.Body.Close()
	return nil
}
