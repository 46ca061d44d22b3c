package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Runtime is what the Wasm candidates of one proxy share: wazero's
// compiler engine, one compilation cache, and the WASI host module. It is
// safe for concurrent use.
type Runtime struct {
	// fast runs modules instrumented by instrumentLoops: they carry their
	// own cheap interruption check.
	fast wazero.Runtime
	// checked runs modules the instrumentation does not understand, with
	// wazero's WithCloseOnContextDone check instead.
	checked wazero.Runtime
	cache   wazero.CompilationCache
	logger  *slog.Logger
	// budget is the proxy-wide cap on guest memory; nil is unlimited.
	budget *MemoryBudget
}

// LimitMemory makes every Backend created afterwards with r reserve its
// instances' memory from budget (see MemoryBudget). Call it before New.
func (r *Runtime) LimitMemory(budget *MemoryBudget) { r.budget = budget }

// MemoryBudget returns the budget set by LimitMemory, or nil.
func (r *Runtime) MemoryBudget() *MemoryBudget { return r.budget }

// NewRuntime starts a runtime that compiles modules with wazero's optimizing
// compiler (the interpreter where no compiler exists for the platform).
//
// cacheDir, when not empty, holds the compiled machine code on disk
// (wazero.NewCompilationCacheWithDir), so that after a restart a module is
// served without recompiling it: compiling a 4MB Go module takes seconds,
// loading it from the cache tens of milliseconds. The directory is created
// if needed; keep it private to migrate. With "" the cache lives in memory.
//
// Guests are interrupted when their request's deadline passes, wherever
// they are: New adds a check to every loop of the module (see
// instrumentLoops), and modules that cannot be instrumented run with
// wazero's WithCloseOnContextDone, which does the same check but leaves
// the compiled code for Go on every loop iteration — about 1-2.5ms per
// request for a Go guest, which is why it is only the fallback.
//
// Memory caps are per route (Options.MaxMemory) and enforced by the memory
// allocator of each instance, because wazero's memory limit is per runtime
// and routes share this one.
//
// logger receives guest stderr and module reloads; nil discards them.
func NewRuntime(ctx context.Context, cacheDir string, logger *slog.Logger) (*Runtime, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var cache wazero.CompilationCache
	if cacheDir == "" {
		cache = wazero.NewCompilationCache()
	} else {
		c, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("open wasm compilation cache %s: %w (choose a writable directory, or none to cache in memory)", cacheDir, err)
		}
		cache = c
	}
	r := &Runtime{cache: cache, logger: logger}
	for _, rt := range []*wazero.Runtime{&r.fast, &r.checked} {
		cfg := wazero.NewRuntimeConfig().
			WithCompilationCache(cache).
			WithCloseOnContextDone(rt == &r.checked)
		*rt = wazero.NewRuntimeWithConfig(ctx, cfg)
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, *rt); err != nil {
			_ = r.Close(ctx)
			return nil, fmt.Errorf("instantiate WASI preview1 host module: %w", err)
		}
		if err := instantiateOutbound(ctx, *rt); err != nil {
			_ = r.Close(ctx)
			return nil, fmt.Errorf("instantiate %s host module: %w", outboundModule, err)
		}
	}
	return r, nil
}

// Close releases the runtime and all modules compiled with it. Close every
// Backend first: requests still running are interrupted.
func (r *Runtime) Close(ctx context.Context) error {
	var errs []error
	for _, rt := range []wazero.Runtime{r.fast, r.checked} {
		if rt != nil {
			errs = append(errs, rt.Close(ctx))
		}
	}
	errs = append(errs, r.cache.Close(ctx))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close wasm runtime: %w", err)
	}
	return nil
}
