package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/strangler-fig/migrate/proxy/wasm"
)

// NewWasmFactory returns the factory for in-process Wasm candidates and the
// function that releases what it built. All modules share one runtime and
// its on-disk compilation cache in cacheDir ("" keeps it in memory), which
// is created on first use, so configs without wasm candidates pay nothing.
func NewWasmFactory(ctx context.Context, cacheDir string, logger *slog.Logger) (WasmFactory, func(context.Context) error, error) {
	return NewLimitedWasmFactory(ctx, cacheDir, nil, logger)
}

// NewLimitedWasmFactory is NewWasmFactory with every instance of every
// module reserving its memory from budget (nil: unlimited), the
// proxy-wide wasmMemory cap.
func NewLimitedWasmFactory(ctx context.Context, cacheDir string, budget *wasm.MemoryBudget, logger *slog.Logger) (WasmFactory, func(context.Context) error, error) {
	var (
		mu sync.Mutex
		rt *wasm.Runtime
	)
	factory := func(ctx context.Context, block json.RawMessage, dir string) (Backend, func(context.Context) error, error) {
		var opts wasm.Options
		dec := json.NewDecoder(bytes.NewReader(block))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&opts); err != nil {
			return nil, nil, fmt.Errorf("wasm candidate block: %w", err)
		}
		if opts.Path != "" && !filepath.IsAbs(opts.Path) && dir != "" {
			opts.Path = filepath.Join(dir, opts.Path)
		}
		mu.Lock()
		if rt == nil {
			r, err := wasm.NewRuntime(ctx, cacheDir, logger)
			if err != nil {
				mu.Unlock()
				return nil, nil, err
			}
			r.LimitMemory(budget)
			rt = r
		}
		mu.Unlock()
		b, err := wasm.New(ctx, opts, rt)
		if err != nil {
			return nil, nil, err
		}
		return b, b.Close, nil
	}
	closeAll := func(ctx context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		if rt == nil {
			return nil
		}
		return rt.Close(ctx)
	}
	return factory, closeAll, nil
}
