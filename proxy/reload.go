package proxy

import (
	"context"
	"os"
	"reflect"
	"time"

	"github.com/strangler-fig/migrate/proxy/wasm"
	"github.com/strangler-fig/migrate/strangler"
)

// Apply loads a config read from its file, at start and on every reload:
// an unknown Wasm option gets its line, column and a suggestion, and an
// error the table finds names its place in the file.
func (p *Proxy) Apply(ctx context.Context, cfg *strangler.Config) error {
	if err := cfg.CheckWasmCandidates(reflect.TypeFor[wasm.Options]()); err != nil {
		return err
	}
	return cfg.Locate(p.Load(ctx, cfg))
}

// Reload reads the config file again and swaps it in. An invalid config is
// rejected with the reason, and the table in service keeps serving.
func (p *Proxy) Reload(ctx context.Context, path string) error {
	cfg, err := strangler.LoadConfig(path)
	if err == nil {
		err = p.Apply(ctx, cfg)
	}
	p.ctrl.Metrics().Reloaded(err == nil)
	if err != nil {
		p.logger.Error("config reload rejected; the previous config keeps serving", "config", path, "err", err)
		return err
	}
	p.logger.Info("config reloaded", "config", path, "routes", len(cfg.RouteNames()))
	return nil
}

// Watch reloads path whenever hup fires (SIGHUP) or the file's modification
// time or size changes (polled every interval), until ctx ends.
func (p *Proxy) Watch(ctx context.Context, path string, interval time.Duration, hup <-chan os.Signal) {
	last := fileStamp(path)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			last = fileStamp(path)
			_ = p.Reload(ctx, path)
		case <-t.C:
			if now := fileStamp(path); now != last {
				last = now
				_ = p.Reload(ctx, path)
			}
		}
	}
}

type stamp struct {
	mod  time.Time
	size int64
}

func fileStamp(path string) stamp {
	fi, err := os.Stat(path)
	if err != nil {
		return stamp{}
	}
	return stamp{fi.ModTime(), fi.Size()}
}
