package wasm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// ServeExport is the function a reusable guest exports: it answers the one
// request on stdin and returns, leaving the instance ready for the next.
const ServeExport = "migrate_serve"

// IsReusable reports whether the module at path is a reusable guest: it
// exports ServeExport and no _start. It reads only the export section, so
// it is cheap enough for `migrate plan`; the proxy still validates the
// whole module when it loads it.
func IsReusable(path string) (bool, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	exports := exportedFunctions(bin)
	if exports == nil {
		return false, fmt.Errorf("%s: not a Wasm module with exports", path)
	}
	return exportsServe(exports), nil
}

// exportsServe reports whether a module exporting these functions is a
// reusable guest: ServeExport, and no _start.
func exportsServe(exports []string) bool {
	return slices.Contains(exports, ServeExport) && !slices.Contains(exports, "_start")
}

// defaultIdleInstances bounds the idle instances of a reusing route whose
// Options.Pool is 0: enough for the requests one proxy runs at once on two
// to eight cores, few enough that an idle route's memory is small (a Go
// guest holds about 4MiB each) until idleRelease reclaims it.
const defaultIdleInstances = 16

// instance is one live instance of a reusable guest. It serves one request
// at a time; between requests it waits in its module's idle list. The WASI
// functions it was instantiated with read and write through io, which
// RoundTrip points at the current request.
type instance struct {
	mod    api.Module
	serve  api.Function
	mem    *linearMemory
	io     *requestIO
	served int
	since  time.Time // when it went idle
}

// serveReusable answers one request with an instance of a reusable guest:
// an idle one of the current module version when Options.Reuse allows,
// otherwise a new one. An instance that failed in any way, reached its
// request budget, or belongs to a replaced version is closed afterwards;
// the others wait for the next request. It returns how the call ended and
// the instance's memory, for classify.
func (b *Backend) serveReusable(ctx context.Context, m *module, r *http.Request, body []byte, stdout, stderr io.Writer) (*linearMemory, error) {
	in := b.takeIdle(m)
	if in == nil {
		var err error
		in, err = b.instantiate(ctx, m, stdout, stderr)
		if err != nil {
			return in.mem, err
		}
	}
	in.io.ctx, in.io.yield, in.io.stdout, in.io.stderr = ctx, shadow.Yielder(ctx), stdout, stderr
	in.io.stdin.Reset(requestBlock(r, body))
	in.mem.refused = false
	_, err := in.serve.Call(ctx)
	in.served++
	b.stats.observeMemory(in.mem.peakSize)
	// Drop the request's buffers before the instance waits for the next.
	in.io.ctx, in.io.yield, in.io.stdout, in.io.stderr = context.Background(), nil, io.Discard, io.Discard
	in.io.stdin.Reset(nil)
	// A cancelled request context means a deadline or an oversized
	// response stopped (or was about to stop) the guest: a failure too.
	if err != nil || ctx.Err() != nil || in.mem.refused || in.served >= b.opts.Reuse || !b.putIdle(m, in) {
		b.closeInstance(in)
	}
	return in.mem, err
}

// instantiate starts a new instance of a reusable guest: from m's
// snapshot when it was pre-initialized (preinit.go), otherwise by running
// its _initialize, if exported, under the request's deadline.
func (b *Backend) instantiate(ctx context.Context, m *module, stdout, stderr io.Writer) (*instance, error) {
	rio := &requestIO{ctx: ctx, yield: shadow.Yielder(ctx), stdout: stdout, stderr: stderr}
	in := &instance{io: rio, mem: &linearMemory{pool: b.mem, limit: uint64(b.linearLimit()), live: &b.stats, image: m.data}}
	// The instance holds its linear memory's reservation while it lives,
	// idle ones included; closeInstance gives it back.
	if err := b.rt.budget.reserve(ctx, b.linearLimit()); err != nil {
		return in, err
	}
	in.mem.reserved = b.linearLimit()
	var cfg wazero.ModuleConfig
	if m.snap != nil {
		in.mem.image = m.snap.mem
		cfg = b.instanceConfig(rio, &frozenClock{mono: m.snap.mono}).WithStartFunctions()
	} else {
		cfg = b.instanceConfig(rio, nil).WithStartFunctions("_initialize")
	}
	mod, err := b.runtimeFor(m).InstantiateModule(experimental.WithMemoryAllocator(ctx, in.mem), m.compiled, cfg)
	if err == nil && m.snap != nil {
		err = m.snap.restore(mod, m.globals)
	}
	if err != nil {
		if mod != nil {
			_ = mod.Close(context.Background())
		}
		in.mem.release()
		return in, err
	}
	in.mod, in.serve = mod, mod.ExportedFunction(ServeExport)
	return in, nil
}

// takeIdle returns the most recently used idle instance of m, or nil.
func (b *Backend) takeIdle(m *module) *instance {
	if b.opts.Reuse <= 1 {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(m.idle)
	if n == 0 {
		return nil
	}
	in := m.idle[n-1]
	m.idle[n-1] = nil
	m.idle = m.idle[:n-1]
	return in
}

// putIdle parks in for the next request, unless m was replaced, the
// backend is closing, or enough instances already wait.
func (b *Backend) putIdle(m *module, in *instance) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := b.opts.Pool
	if limit == 0 {
		limit = defaultIdleInstances
	}
	if b.closed || m.retired || len(m.idle) >= limit {
		return false
	}
	in.since = time.Now()
	m.idle = append(m.idle, in)
	if b.idleTimer == nil {
		b.idleTimer = time.AfterFunc(idleRelease, b.trimIdle)
	}
	return true
}

// trimIdle closes instances idle for idleRelease, so that a route that
// stopped serving holds only its compiled code, and re-arms itself while
// any instance waits.
func (b *Backend) trimIdle() {
	cutoff := time.Now().Add(-idleRelease)
	b.mu.Lock()
	b.idleTimer = nil
	m := b.cur
	// The oldest are first: the list is used from its end.
	i := 0
	for i < len(m.idle) && m.idle[i].since.Before(cutoff) {
		i++
	}
	stale := slices.Clone(m.idle[:i])
	m.idle = append(m.idle[:0], m.idle[i:]...)
	if len(m.idle) > 0 && !b.closed {
		b.idleTimer = time.AfterFunc(idleRelease, b.trimIdle)
	}
	b.mu.Unlock()
	for _, in := range stale {
		b.closeInstance(in)
	}
}

// dropIdle closes the idle reusable instances at once, for an instance
// waiting on the memory budget, and drops the buffers they leave in the
// pool; it reports whether it freed anything.
func (b *Backend) dropIdle() bool {
	b.mu.Lock()
	idle := drainIdle(b.cur)
	b.mu.Unlock()
	for _, in := range idle {
		b.closeInstance(in)
	}
	return b.mem.dropIdle() || len(idle) > 0
}

// drainIdle removes and returns all idle instances of m; b.mu is held.
func drainIdle(m *module) []*instance {
	idle := m.idle
	m.idle = nil
	return idle
}

func (b *Backend) closeInstance(in *instance) {
	if in.mod != nil {
		_ = in.mod.Close(context.Background())
	}
	in.mem.release()
}

// requestBlock is a reusable guest's stdin: the CGI variables as
// NAME=value lines, an empty line, then the body. A value never holds a
// line break (HTTP forbids them in header fields); one that somehow does
// has it replaced by a space, so it cannot forge a variable.
func requestBlock(r *http.Request, body []byte) []byte {
	env := cgiEnv(r, int64(len(body)))
	n := 1 + len(body)
	for _, kv := range env {
		n += len(kv) + 1
	}
	buf := make([]byte, 0, n)
	for _, kv := range env {
		start := len(buf)
		buf = append(buf, kv...)
		for i := start; i < len(buf); i++ {
			if buf[i] == '\r' || buf[i] == '\n' {
				buf[i] = ' '
			}
		}
		buf = append(buf, '\n')
	}
	buf = append(buf, '\n')
	return append(buf, body...)
}

// reusableKind tells a reusable guest from a WAGI command by its exports,
// and says what is wrong with a module that is neither.
func reusableKind(c wazero.CompiledModule) (reusable bool, err error) {
	exports := c.ExportedFunctions()
	if _, ok := exports["_start"]; ok {
		return false, nil
	}
	f, ok := exports[ServeExport]
	if !ok {
		return false, errors.New("no _start export: a WAGI module is a WASI command (Go: package main built with GOOS=wasip1 GOARCH=wasm); a reusable guest exports " + ServeExport + " instead (Go: -buildmode=c-shared)")
	}
	if len(f.ParamTypes()) != 0 || len(f.ResultTypes()) != 0 {
		return false, fmt.Errorf("%s must take no parameters and return nothing (Go: //go:wasmexport %s on a func()), not %s", ServeExport, ServeExport, signature(f))
	}
	return true, nil
}

func signature(f api.FunctionDefinition) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for i, t := range ts {
			s[i] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(f.ParamTypes()) + ") -> (" + names(f.ResultTypes()) + ")"
}
