package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/strangler-fig/migrate/internal/logs"
	"github.com/strangler-fig/migrate/proxy"
	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/shadow"
	"github.com/strangler-fig/migrate/strangler"
)

type proxyOptions struct {
	config        string
	listen        string
	admin         string
	poll          time.Duration
	flush         time.Duration
	shutdownGrace time.Duration
	// tuneGC applies the proxy process's garbage-collection defaults; only
	// the command sets it, so tests and the demo keep their own.
	tuneGC bool
	// onReady, when set, is told the bound addresses (tests use port 0).
	onReady func(listen, admin string)
}

func newProxyCmd(s *streams) *cobra.Command {
	o := &proxyOptions{}
	cmd := &cobra.Command{
		Use:   "proxy --config strangler.yaml",
		Short: "Serve traffic through the strangler-fig proxy",
		Long: `Serve client traffic through the strangler-fig proxy. Each request is matched to
a route (method + OpenAPI path template, most specific first) and sent where the
route's mode says: legacy, shadow (legacy answers, a copy goes to the candidate and
is compared), canary (a sticky share of users goes to the candidate), cutover or
retired (the candidate answers). Unmatched requests go to the config's default
upstream.

Route modes and the audit log are kept in the state store (SQLite, "store:" in the
config); a restart resumes exactly. The config is reloaded on SIGHUP and when the
file changes; an invalid edit is rejected and the previous config keeps serving.

The admin API (status, mode changes, /metrics, /healthz, /readyz) listens on the
config's "admin" address, 127.0.0.1:9090 by default. A non-loopback admin address
requires MIGRATE_ADMIN_TOKEN, which clients then send as a bearer token.`,
		Example: `  migrate proxy --config strangler.yaml
  MIGRATE_ADMIN_TOKEN=$(openssl rand -hex 16) migrate proxy --config strangler.yaml --admin 0.0.0.0:9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.config == "" {
				return usageErrorf("--config is required: the strangler.yaml to serve (write one with `migrate plan`)")
			}
			o.tuneGC = true
			return runProxy(cmd.Context(), o, s)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.config, "config", "c", "", "strangler config file (required)")
	f.StringVar(&o.listen, "listen", "", "override the config's listen address")
	f.StringVar(&o.admin, "admin", "", "override the config's admin address")
	f.DurationVar(&o.poll, "watch-interval", 2*time.Second, "how often to check the config file for changes (0 disables)")
	f.DurationVar(&o.flush, "flush-interval", 5*time.Second, "how often counters are written to the state store")
	f.DurationVar(&o.shutdownGrace, "shutdown-grace", 15*time.Second, "how long in-flight requests may finish on shutdown")
	setFormats(cmd, "table") // it serves; its logs take --log-format
	return cmd
}

// Garbage collection defaults for the proxy process: its live heap is small
// and it allocates on every request, so collecting less often (GOGC 400)
// buys about 15% throughput, while a soft memory limit keeps the resident
// set bounded under many connections. In-process Wasm candidates need more
// than that limit while their instances run: under it the collector would
// run back to back (it cost a third of the order component's throughput),
// so with them the limit is left off. GOGC and GOMEMLIMIT still win.
const (
	proxyGCPercent   = 400
	proxyMemoryLimit = 40 << 20
)

func tuneGC(cfg *strangler.Config) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(proxyGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" && !hasWasmCandidate(cfg) {
		debug.SetMemoryLimit(proxyMemoryLimit)
	}
}

// hasWasmCandidate reports whether any service runs its candidate in process.
func hasWasmCandidate(cfg *strangler.Config) bool {
	for _, svc := range cfg.Services {
		if svc.Candidate != nil && svc.Candidate.Wasm != "" {
			return true
		}
	}
	return false
}

func runProxy(ctx context.Context, o *proxyOptions, s *streams) error {
	logger := slog.Default()
	cfg, err := strangler.LoadConfig(o.config)
	if err != nil {
		return err
	}
	if o.tuneGC {
		tuneGC(cfg)
	}
	if o.listen != "" {
		cfg.Listen = o.listen
	}
	if o.admin != "" {
		cfg.Admin = o.admin
	}
	token := os.Getenv(strangler.AdminTokenEnv)
	if err := strangler.CheckAdminAddress(cfg.Admin, token); err != nil {
		return usageErrorf("%v", err)
	}
	store, err := strangler.OpenStore(cfg.StorePath())
	if err != nil {
		return err
	}
	defer store.Close()
	// The comparison engine records redacted samples into the store; the
	// controller reads, persists and restores its evidence.
	mirror := shadow.NewMirror(shadow.MirrorConfig{Logger: logger}, store)
	ctrl := strangler.NewController(store, strangler.NewMetrics(), logger)
	ctrl.Shadow = mirror
	budget, err := wasmBudget(cfg, ctrl)
	if err != nil {
		return err
	}
	wasmFactory, closeWasm, err := proxy.NewLimitedWasmFactory(ctx, wasmCacheDir(cfg), budget, logger)
	if err != nil {
		return err
	}
	px := proxy.New(proxy.Options{Controller: ctrl, Logger: logger, Mirror: mirror, Wasm: wasmFactory})
	ctrl.Usage = px.WasmUsage // each flush records what the in-process candidates used, for the report
	if err := px.Apply(ctx, cfg); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another proxy running? change listen in the config)", cfg.Listen, err)
	}
	adminLn, err := net.Listen("tcp", cfg.Admin)
	if err != nil {
		ln.Close()
		return fmt.Errorf("admin API on %s: %w (change admin in the config)", cfg.Admin, err)
	}
	var ready atomic.Bool
	adminH := strangler.NewAdmin(ctrl, strangler.AdminOptions{Token: token, Ready: ready.Load, Hosts: cfg.AdminHosts})
	srv := &proxy.Server{Handler: px, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	flushDone := make(chan struct{})
	go func() { ctrl.RunFlusher(runCtx, o.flush); close(flushDone) }()
	// Replicas sharing a PostgreSQL store apply each other's transitions.
	go ctrl.WatchStore(runCtx, time.Second)
	adminDone := make(chan error, 1)
	go func() { adminDone <- strangler.ServeAdmin(runCtx, adminLn, adminH) }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	interval := o.poll
	if interval <= 0 {
		interval = 365 * 24 * time.Hour
	}
	go px.Watch(runCtx, cfg.Path, interval, hup)
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	// The admin-address file lets the control commands find this proxy
	// even when the config is broken or --admin moved the address.
	if file := strangler.AdminFile(cfg.StorePath()); file != "" {
		doc := strangler.AdminFileDocument{Admin: adminLn.Addr().String(), PID: os.Getpid(), Started: time.Now().UTC()}
		if err := strangler.WriteAdminFile(file, doc); err != nil {
			logger.Warn("the control commands will not find this proxy without --admin", "err", err)
		} else {
			defer removeAdminFile(file, doc.PID, logger)
		}
	}
	ready.Store(true)
	logger.Info("proxy serving", "listen", ln.Addr().String(), "admin", adminLn.Addr().String(),
		"config", cfg.Path, "store", store.Path(), "routes", len(cfg.RouteNames()))
	if o.onReady != nil {
		o.onReady(ln.Addr().String(), adminLn.Addr().String())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
	case serveErr = <-adminDone:
	}
	ready.Store(false)
	logger.Info("proxy shutting down; finishing requests in flight", "grace", o.shutdownGrace)
	defer logs.Flush(logger.Handler()) // the counts of lines still being suppressed
	sctx, cancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		logger.Warn("shutdown", "err", err)
	}
	// The mirror finishes its queued copies first, so their evidence
	// reaches the flusher's final flush when runCtx ends.
	errs := []error{mirror.Close(sctx)}
	stop()
	<-flushDone
	errs = append(errs, px.Close(sctx), closeWasm(sctx))
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		errs = append(errs, serveErr)
	}
	return errors.Join(errs...)
}

// removeAdminFile removes the admin-address file on a clean shutdown, unless
// another proxy has written its own since.
func removeAdminFile(file string, pid int, logger *slog.Logger) {
	if doc, err := strangler.ReadAdminFile(file); err == nil && doc.PID != pid {
		return
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		logger.Warn("remove admin address file", "file", file, "err", err)
	}
}

// wasmBudget is the proxy-wide cap on guest memory (wasmMemory), exported
// as metrics: its limit, what is reserved now, and the instances refused.
func wasmBudget(cfg *strangler.Config, ctrl *strangler.Controller) (*wasm.MemoryBudget, error) {
	limit := int64(cfg.WasmMemory)
	if limit == 0 {
		limit = wasm.DefaultMemoryLimit()
	}
	budget, err := wasm.NewMemoryBudget(limit, 0)
	if err != nil {
		return nil, err
	}
	reg := ctrl.Metrics().Registry()
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "migrate_wasm_memory_limit_bytes",
			Help: "The memory budget of all in-process candidates together (wasmMemory)."},
			func() float64 { return float64(budget.Stats().Limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "migrate_wasm_memory_reserved_bytes",
			Help: "Guest memory reserved now: running instances (maxMemory + maxResponse each), idle reusable instances and pooled buffers."},
			func() float64 { return float64(budget.Stats().Reserved) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "migrate_wasm_memory_refused_total",
			Help: "Guest instances refused (503, candidate error kind budget) because the memory budget stayed full."},
			func() float64 { return float64(budget.Stats().Refused) }),
	)
	return budget, nil
}

// wasmCacheDir is where compiled modules are cached between runs: next to
// a SQLite state file, so a restart does not compile again.
func wasmCacheDir(cfg *strangler.Config) string {
	if strangler.IsPostgresURL(cfg.Store) {
		// No state directory: the user's cache ($XDG_CACHE_HOME), which a
		// container points at a writable volume.
		if dir, err := os.UserCacheDir(); err == nil {
			return filepath.Join(dir, "migrate", "wasm")
		}
		return filepath.Join(os.TempDir(), "migrate-cache", "wasm")
	}
	return filepath.Join(filepath.Dir(cfg.StorePath()), ".migrate-cache", "wasm")
}
