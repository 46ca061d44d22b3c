package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/reports"
	"github.com/strangler-fig/migrate/strangler"
)

// reportOptions are the flags of `migrate report`.
type reportOptions struct {
	config    string
	inventory string
	format    string
	out       string
	title     string
	carbon    reports.Coefficients
	// legacyRSS are --legacy-rss SERVICE=QUANTITY values: the measured
	// resident memory of one legacy process; legacyRSSMethod says how they
	// were measured (default: given on the command line).
	legacyRSS       []string
	legacyRSSMethod string
	// configSet and inventorySet say the file was named on the command
	// line: then it must exist. Only the defaults may be missing.
	configSet, inventorySet bool
}

// carbonFlags binds each estimate coefficient to a flag, so every number
// the footprint section uses can be replaced by the user's own.
func (o *reportOptions) carbonFlags() []struct {
	name, help string
	coef       *reports.Coefficient
} {
	return []struct {
		name, help string
		coef       *reports.Coefficient
	}{
		{"grid-intensity", "carbon intensity of electricity, gCO2e/kWh", &o.carbon.GridIntensity},
		{"pue", "data centre power usage effectiveness", &o.carbon.PUE},
		{"memory-kwh-per-gb-hour", "energy of one GB of memory for one hour, kWh", &o.carbon.MemoryKWhPerGBHour},
		{"vcpu-min-watts", "one vCPU's power at idle, W", &o.carbon.VCPUMinWatts},
		{"vcpu-max-watts", "one vCPU's power at full load, W", &o.carbon.VCPUMaxWatts},
		{"cpu-utilization", "average utilisation of reserved legacy vCPUs, 0-1", &o.carbon.CPUUtilization},
		{"embodied-per-vcpu-hour", "embodied emissions per vCPU-hour, gCO2e (default: not included)", &o.carbon.EmbodiedPerVCPUHour},
	}
}

func newReportCmd(s *streams, g *globalOptions) *cobra.Command {
	o := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report [-o html|md|json] [--out FILE]",
		Short: "Write the cutover report for architects",
		Long: `Write the cutover report from the inventory and the proxy's state store: a
decision summary (what is cut over, what is blocked and why, what to do next),
fleet readiness and migration order, shadow evidence per route, latency legacy
vs Wasm, and a footprint and carbon estimate with every coefficient's source.

Without --config or --inventory the default files are used when they exist, and the
report says which part is missing; a file named with --config or --inventory must
exist (exit 2 otherwise).

HTML is one self-contained file (no network fetches) that prints well; md renders
on GitHub and GitLab; json is the versioned model for dashboards. As in every
command, -o is the format and --out the file: the format follows --out's
extension when -o is not given, and the file defaults to migrate-report.<format>
(--out - writes to stdout).`,
		Example: `  migrate report --out migrate-report.html
  migrate report -o md --out CUTOVER.md --inventory inventory.json --config strangler.yaml
  migrate report -o json --out - | jq .summary
  migrate report --grid-intensity 56 --pue 1.1 --out report.html   # a low-carbon region
  migrate report --legacy-rss order-service=252Mi --legacy-rss inventory-service=201Mi   # measured RSS`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, c := range o.carbonFlags() {
				if cmd.Flags().Changed(c.name) {
					c.coef.Source = "set with --" + c.name
				}
			}
			o.configSet, o.inventorySet = cmd.Flags().Changed("config"), cmd.Flags().Changed("inventory")
			if cmd.Flags().Changed("output") {
				if o.format != "" && o.format != g.output {
					return usageErrorf("-o %s and --format %s disagree; use -o alone", g.output, o.format)
				}
				o.format = g.output
			}
			return runReport(cmd.Context(), o, s)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "strangler.yaml", "strangler config: its routes, gates and state store")
	f.StringVarP(&o.inventory, "inventory", "i", "inventory.json", "inventory written by migrate analyze (optional)")
	f.StringVar(&o.format, "format", "", "html, md or json (default: from the file extension, else html)")
	_ = f.MarkDeprecated("format", "use -o html|md|json")
	f.StringVar(&o.out, "out", "", "output file, - for stdout (default migrate-report.<format>)")
	f.StringVar(&o.title, "title", "", "report title")
	f.StringArrayVar(&o.legacyRSS, "legacy-rss", nil, "SERVICE=QUANTITY: the resident memory (RSS) measured of one legacy process, e.g. order-service=252Mi; repeatable. The footprint shows it as measured beside the Wasm instance's")
	for _, c := range o.carbonFlags() {
		f.Float64Var(&c.coef.Value, c.name, 0, c.help)
	}
	setFormats(cmd, reportFormats...)
	return cmd
}

// reportFormats are the -o values of report.
var reportFormats = []string{"html", "md", "json"}

// reportFormat settles the format from -o or the file extension.
func reportFormat(format, out string) (string, error) {
	if format == "" {
		switch strings.ToLower(filepath.Ext(out)) {
		case ".md", ".markdown":
			format = "md"
		case ".json":
			format = "json"
		default:
			format = "html"
		}
	}
	switch format {
	case "html", "md", "json":
		return format, nil
	case "markdown":
		return "md", nil
	}
	return "", usageErrorf("unknown report format %q; valid: %s", format, strings.Join(reportFormats, ", "))
}

func runReport(ctx context.Context, o *reportOptions, s *streams) error {
	format, err := reportFormat(o.format, o.out)
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = "migrate-report." + format
	}
	rep, err := buildReport(ctx, o)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := rep.Render(&buf, format); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	if o.out == "-" {
		_, err := s.out.Write(buf.Bytes())
		return err
	}
	if err := os.WriteFile(o.out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	abs, _ := filepath.Abs(o.out)
	fmt.Fprintf(s.err, "%s report written to %s\n", s.paint(colorGreen, "✓"), abs)
	return nil
}

// buildReport gathers the inventory and the proxy's records. Either may be
// missing when it was not named on the command line: the report then says
// so per section instead of failing.
func buildReport(ctx context.Context, o *reportOptions) (*reports.Report, error) {
	var inv *analyze.Inventory
	var err error
	if o.inventory != "" {
		inv, err = analyze.ReadInventory(o.inventory)
		if errors.Is(err, fs.ErrNotExist) && o.inventorySet {
			return nil, usageErrorf("--inventory %s: no such file (write one with `migrate analyze ... --inventory-out %s`)", o.inventory, o.inventory)
		} else if errors.Is(err, fs.ErrNotExist) {
			inv = nil
		} else if err != nil {
			return nil, err
		}
	}
	opts := reports.Options{Title: o.title, Carbon: o.carbon}
	if opts.LegacyMemory, err = legacyMemory(o.legacyRSS, o.legacyRSSMethod); err != nil {
		return nil, err
	}
	var routes []reports.Route
	cfg, err := strangler.LoadConfig(o.config)
	switch {
	case errors.Is(err, fs.ErrNotExist) && o.configSet:
		return nil, usageErrorf("--config %s: no such file (write one with `migrate plan -o %s`)", o.config, o.config)
	case errors.Is(err, fs.ErrNotExist):
		// No strangler config yet: an inventory-only report.
	case err != nil:
		return nil, err
	default:
		var usage map[string]reports.WasmModule
		if _, err := os.Stat(cfg.StorePath()); err == nil {
			st, err := strangler.OpenStore(cfg.StorePath())
			if err != nil {
				return nil, err
			}
			defer st.Close()
			if routes, err = reports.FromStore(ctx, st, cfg); err != nil {
				return nil, err
			}
			if usage, err = reports.WasmUsageFromStore(ctx, st); err != nil {
				return nil, err
			}
		}
		opts.Modules = wasmModules(cfg, usage)
	}
	return reports.Build(inv, routes, opts), nil
}

// wasmModules measures the in-process candidates' module files and adds
// the memory the proxy measured them using (usage, by service; may be nil).
func wasmModules(cfg *strangler.Config, usage map[string]reports.WasmModule) []reports.WasmModule {
	var mods []reports.WasmModule
	for _, name := range cfg.ServiceNames() {
		c := cfg.Services[name].Candidate
		if c == nil || c.Wasm == "" {
			continue
		}
		m := reports.WasmModule{Service: name, Component: filepath.Base(c.Wasm), MemoryBytes: usage[name].MemoryBytes,
			InstanceMemoryBytes: usage[name].InstanceMemoryBytes}
		if fi, err := os.Stat(cfg.Resolve(c.Wasm)); err == nil {
			m.SizeBytes = fi.Size()
		}
		mods = append(mods, m)
	}
	return mods
}

// legacyMemory reads --legacy-rss values (SERVICE=QUANTITY, a Kubernetes
// quantity such as 252Mi or a plain byte count).
func legacyMemory(values []string, method string) ([]reports.LegacyMemory, error) {
	if method == "" {
		method = "given with --legacy-rss"
	}
	var out []reports.LegacyMemory
	seen := map[string]bool{}
	for _, v := range values {
		svc, q, ok := strings.Cut(v, "=")
		if !ok || svc == "" || q == "" {
			return nil, usageErrorf("--legacy-rss %q: want SERVICE=QUANTITY, e.g. order-service=252Mi", v)
		}
		if seen[svc] {
			return nil, usageErrorf("--legacy-rss names %s twice", svc)
		}
		seen[svc] = true
		n, err := reports.ParseQuantity(q)
		if err != nil || n < 1 {
			return nil, usageErrorf("--legacy-rss %s: %q is not a memory quantity (e.g. 252Mi, 1Gi, 264241152)", svc, q)
		}
		out = append(out, reports.LegacyMemory{Service: svc, ResidentBytes: int64(n), Method: method})
	}
	return out, nil
}
