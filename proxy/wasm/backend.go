package wasm

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler-fig/migrate/shadow"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// wasiModule is the only import namespace a WAGI module may use.
const wasiModule = "wasi_snapshot_preview1"

// reloadCheckInterval bounds how often RoundTrip stats the module file.
const reloadCheckInterval = time.Second

// maxStderr is how much of one request's guest stderr reaches the log.
const maxStderr = 4 << 10

// frozenWalltime is the wall clock of a FrozenClock guest:
// 2024-01-01T00:00:00Z.
const frozenWalltime = 1704067200

// Backend serves HTTP requests with a WAGI module, in process: every
// request gets a fresh instance of the compiled module, its own linear
// memory, the request as CGI environment and stdin, and its stdout parsed
// as the response. It is safe for concurrent use.
//
// The module file is watched: at most once a second a request stats it,
// and when its size or modification time changed the new file is compiled
// in the background and swapped in atomically. Requests already running
// finish on the old module, which is closed after the last of them; a file
// that fails to compile is logged and counted (Stats.ReloadErrors) and the
// old module keeps serving.
type Backend struct {
	rt     *Runtime
	opts   Options
	logger *slog.Logger
	mem    *memoryPool
	slots  chan struct{} // nil unless Options.Pool > 0
	base   wazero.ModuleConfig
	stats  counters

	services atomic.Pointer[Services] // named outbound services; nil: none

	checkEvery time.Duration // reloadCheckInterval; tests shorten it
	lastCheck  atomic.Int64  // unix nanoseconds of the last stat
	reloading  atomic.Bool
	reloads    sync.WaitGroup

	mu        sync.Mutex
	cur       *module
	idleTimer *time.Timer // trims idle reusable instances; nil when none wait
	badStamp  fileStamp   // a changed file that did not compile; not retried until it changes again
	closed    bool
	requests  sync.WaitGroup
	closeOnce sync.Once
}

// module is one compiled version of the module file.
type module struct {
	compiled wazero.CompiledModule
	// instrumented says the module carries instrumentLoops' interruption
	// check and was compiled by Runtime.fast; otherwise Runtime.checked.
	instrumented bool
	// reusable says the module is a reusable guest (it exports
	// ServeExport instead of _start); idle are its instances waiting for
	// a request, guarded by Backend.mu.
	reusable bool
	idle     []*instance
	// data is the initial memory content the allocator writes in place
	// of the module's data section (stripData). preinit says the module
	// was rewritten by prepareSnapshot: globals are the exports of its
	// mutable globals, and snap, when pre-initialization succeeded, its
	// state after _initialize, from which every instance starts.
	data    memImage
	preinit bool
	globals []string
	snap    *snapshot
	stamp   fileStamp
	refs    int  // requests using it; guarded by Backend.mu
	retired bool // replaced by a newer version; guarded by Backend.mu
}

// fileStamp identifies a version of the module file cheaply. The file's
// identity is part of it: file systems keep modification times in clock
// ticks of a few milliseconds, so a same-size file renamed into place
// right after the last one (the atomic way to deploy) may differ from it
// only there.
type fileStamp struct {
	size  int64
	mtime time.Time
	file  os.FileInfo
}

func stampOf(st os.FileInfo) fileStamp { return fileStamp{st.Size(), st.ModTime(), st} }

// is reports whether both stamps are of the same version of the file.
func (s fileStamp) is(o fileStamp) bool {
	return s.file != nil && o.file != nil && s.size == o.size && s.mtime.Equal(o.mtime) && os.SameFile(s.file, o.file)
}

// New compiles the module at opts.Path (or loads it from the runtime's
// compilation cache) and returns a Backend serving it. It fails if the file
// is not a WASI preview1 command: no `_start` export, imports from
// anything but wasi_snapshot_preview1, or a minimum memory above
// MaxMemory.
func New(ctx context.Context, opts Options, rt *Runtime) (*Backend, error) {
	if rt == nil {
		return nil, errors.New("wasm candidate: no runtime; create one with NewRuntime")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Backend{
		rt:         rt,
		opts:       opts,
		logger:     rt.logger.With("module", opts.Path),
		mem:        newMemoryPool(opts.Pool, rt.budget),
		checkEvery: reloadCheckInterval,
	}
	if opts.Pool > 0 {
		b.slots = make(chan struct{}, opts.Pool)
	}
	b.base = wazero.NewModuleConfig().
		WithName(""). // anonymous: any number of instances may coexist
		WithArgs(filepath.Base(opts.Path)).
		WithStartFunctions("_start")
	if !opts.FrozenClock {
		b.base = b.base.WithSysWalltime().WithSysNanotime()
	}
	if opts.Seed == 0 {
		b.base = b.base.WithRandSource(crand.Reader)
	}
	m, err := b.load(ctx)
	if err != nil {
		return nil, err
	}
	b.cur = m
	b.lastCheck.Store(time.Now().UnixNano())
	rt.budget.register(b)
	return b, nil
}

// load reads, rewrites and compiles the module file.
func (b *Backend) load(ctx context.Context) (*module, error) {
	path := b.opts.Path
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("wasm candidate: %w (build the module, e.g. GOOS=wasip1 GOARCH=wasm go build -o %s)", err, path)
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wasm candidate: %w", err)
	}
	if err := checkCounts(bin); err != nil {
		return nil, fmt.Errorf("wasm module %s: %w", path, err)
	}
	m := &module{stamp: stampOf(st)}
	// A reusable guest that can be pre-initialized is compiled rewritten
	// for it (preinit.go); the rewrite is only worth it with the cheap
	// interruption check, and sound only for code that writes no table.
	if p := b.preinitModuleFor(bin); p != nil {
		var facts codeFacts
		fast, err := instrument(p.bin, &facts)
		switch {
		case err != nil:
			b.logger.Warn("preinit: the wasm guest runs _initialize in every instance: its code is not understood well enough to rewrite", "error", err)
		case facts.writesTables:
			b.logger.Warn("preinit: the wasm guest runs _initialize in every instance: its code writes tables, which a snapshot does not hold")
		default:
			if compiled, err := compile(ctx, b.rt.fast, fast); err == nil {
				m.compiled, m.instrumented = compiled, true
				m.preinit, m.data, m.globals = true, p.data, p.globals
			} else {
				b.logger.Warn("preinit: the wasm guest runs _initialize in every instance: the rewritten module did not compile", "error", err)
			}
		}
	}
	if m.compiled == nil {
		// The allocator writes the initial memory when it can (stripData);
		// otherwise wazero does, from coalesced segments.
		if out, img, err := stripData(bin); err == nil {
			bin, m.data = out, img
		} else {
			bin, _, _ = coalesceData(bin)
		}
		if fast, ok := instrumentLoops(bin); ok {
			compiled, err := compile(ctx, b.rt.fast, fast)
			if err == nil {
				m.compiled, m.instrumented = compiled, true
			} else {
				b.logger.Debug("instrumented module did not compile; using wazero's interruption check", "error", err)
			}
		}
	}
	if m.compiled == nil {
		compiled, err := compile(ctx, b.rt.checked, bin)
		if err != nil {
			return nil, fmt.Errorf("compile wasm module %s: %w", path, err)
		}
		m.compiled = compiled
	}
	reusable, err := b.validate(m.compiled)
	if err != nil {
		_ = m.compiled.Close(ctx)
		return nil, fmt.Errorf("wasm module %s: %w", path, err)
	}
	m.reusable = reusable
	if m.preinit {
		snap, err := b.preinitialize(ctx, m)
		if err != nil {
			b.logger.Warn("preinit: the wasm guest runs _initialize in every instance: pre-initialization failed", "error", err)
		} else {
			m.snap = snap
			b.logger.Debug("wasm guest pre-initialized", "memory", ByteSize(len(snap.mem.data)), "globals", len(snap.globals))
		}
	}
	return m, nil
}

// compile is rt.CompileModule, with a panic turned into an error: wazero's
// validator panics on some malformed modules (a 38-byte one found by
// FuzzModuleReaders indexes past a slice) instead of refusing them, and a
// module must never take the proxy down, at start or on a hot reload.
func compile(ctx context.Context, rt wazero.Runtime, bin []byte) (c wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			c, err = nil, fmt.Errorf("not a valid Wasm module: the compiler failed on it (%v)", p)
		}
	}()
	return rt.CompileModule(ctx, bin)
}

// validate rejects modules that are neither WAGI commands nor reusable
// guests, with errors that say how to build one, and reports which of the
// two the module is.
func (b *Backend) validate(c wazero.CompiledModule) (reusable bool, err error) {
	if reusable, err = reusableKind(c); err != nil {
		return false, err
	}
	if b.opts.Preinit && !reusable {
		return false, fmt.Errorf("preinit needs a reusable guest, and this module is a WAGI command (it exports _start): build it as a WASI reactor exporting %s (Go: -buildmode=c-shared), or remove preinit", ServeExport)
	}
	if b.opts.Reuse > 1 && !reusable {
		return false, fmt.Errorf("reuse: %d needs a reusable guest, and this module is a WAGI command (it exports _start): build it as a WASI reactor exporting %s (Go: -buildmode=c-shared), or remove reuse", b.opts.Reuse, ServeExport)
	}
	for _, f := range c.ImportedFunctions() {
		if mod, name, _ := f.Import(); mod != wasiModule && mod != outboundModule {
			return false, fmt.Errorf("imports %s.%s: only %s and %s (outbound HTTP) are provided", mod, name, wasiModule, outboundModule)
		}
	}
	if len(c.ImportedMemories()) > 0 {
		return false, errors.New("imports its memory: a WAGI module must define its own")
	}
	for name, m := range c.ExportedMemories() {
		if m.Min() > b.opts.memoryPages() {
			return false, fmt.Errorf("memory %q starts at %d pages (%s), above maxMemory %s; raise maxMemory", name, m.Min(), ByteSize(int64(m.Min())*wasmPageSize), b.opts.MaxMemory)
		}
	}
	return reusable, nil
}

// linearLimit is the most linear memory one instance may have, in bytes.
func (b *Backend) linearLimit() int64 { return int64(b.opts.memoryPages()) * wasmPageSize }

// Options returns the backend's options with defaults applied.
func (b *Backend) Options() Options { return b.opts }

// Stats returns the backend's counters.
func (b *Backend) Stats() Stats {
	s := b.stats.snapshot(b.opts.Path)
	b.mu.Lock()
	s.IdleInstances = len(b.cur.idle)
	b.mu.Unlock()
	return s
}

// RoundTrip runs the guest for one request and returns its response. The
// request body is read fully before the guest starts (it becomes stdin and
// CONTENT_LENGTH) and closed. Guest failures are *GuestError values (see
// Kinds); other errors are about the request or the backend itself.
func (b *Backend) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := readBody(r, int64(b.opts.MaxMemory))
	if err != nil {
		return nil, err
	}
	b.maybeReload()
	m, err := b.acquire()
	if err != nil {
		return nil, err
	}
	defer b.release(m)

	ctx, cancel := context.WithTimeout(r.Context(), time.Duration(b.opts.Timeout))
	defer cancel()
	ctx, cancelCause := context.WithCancelCause(ctx)
	defer cancelCause(nil)
	ctx = b.withOutbound(ctx, r)

	if b.slots != nil {
		select {
		case b.slots <- struct{}{}:
			defer func() { <-b.slots }()
		case <-ctx.Done():
			b.stats.fail(KindDeadline)
			return nil, &GuestError{Kind: KindDeadline, Err: fmt.Errorf("waited %s for one of %d pool slots: %w", b.opts.Timeout, b.opts.Pool, context.Cause(ctx))}
		}
	}

	// The proxy-wide memory budget: this request's stdout, and for a WAGI
	// command the instance's whole linear memory, are reserved before the
	// guest starts (a reusable guest's instance reserves its own).
	need := int64(b.opts.MaxResponse)
	if !m.reusable {
		need += b.linearLimit()
	}
	if err := b.rt.budget.reserve(ctx, need); err != nil {
		b.stats.fail(KindBudget)
		return nil, &GuestError{Kind: KindBudget, Err: err}
	}
	defer b.rt.budget.release(int64(b.opts.MaxResponse))

	b.stats.requests.Add(1)
	b.stats.enter()
	defer b.stats.inFlight.Add(-1)

	stdout := &limitedBuffer{limit: int(b.opts.MaxResponse), overflow: func() { cancelCause(errTooLarge) }}
	defer stdout.free()
	stderr := &headBuffer{limit: maxStderr}
	var mem *linearMemory
	var runErr error
	if m.reusable {
		mem, runErr = b.serveReusable(ctx, m, r, body, stdout, stderr)
	} else {
		mem = &linearMemory{pool: b.mem, limit: uint64(b.linearLimit()), live: &b.stats, reserved: b.linearLimit(), image: m.data}
		runErr = b.run(experimental.WithMemoryAllocator(ctx, mem), m, b.config(ctx, r, body, stdout, stderr))
		// The guest has stopped for good: its memory may serve the next request.
		b.stats.observeMemory(mem.peakSize)
		mem.release()
	}

	if gerr := b.classify(ctx, runErr, mem, stdout, stderr); gerr != nil {
		b.stats.fail(gerr.Kind)
		b.logStderr(r, stderr, gerr)
		return nil, gerr
	}
	status, header, respBody, err := parseCGIResponse(stdout.Bytes())
	if err != nil {
		gerr := &GuestError{Kind: KindHeaders, Err: err}
		b.stats.fail(KindHeaders)
		b.logStderr(r, stderr, gerr)
		return nil, gerr
	}
	b.logStderr(r, stderr, nil)
	contentLength := int64(len(respBody))
	if r.Method == http.MethodHead {
		respBody = nil
	} else if stdout.mapped {
		// The capture buffer is unmapped when RoundTrip returns, so that a
		// large answer's pages go back to the system at once; the body the
		// client gets is a copy of exactly its size.
		respBody = bytes.Clone(respBody)
	}
	return &http.Response{
		Status:        strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode:    status,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        header,
		Body:          io.NopCloser(bytes.NewReader(respBody)),
		ContentLength: contentLength,
		Request:       r,
	}, nil
}

// run instantiates the module and runs _start until it returns, exits,
// traps or is interrupted. Instrumented modules are interrupted by the
// Osyield hook of their configuration; the others by wazero itself.
func (b *Backend) run(ctx context.Context, m *module, cfg wazero.ModuleConfig) error {
	mod, err := b.runtimeFor(m).InstantiateModule(ctx, m.compiled, cfg)
	if mod != nil {
		_ = mod.Close(ctx)
	}
	return err
}

// runtimeFor is the runtime that runs m: the one whose interruption check
// m's instrumentation relies on, or wazero's own.
func (b *Backend) runtimeFor(m *module) wazero.Runtime {
	if m.instrumented {
		return b.rt.fast
	}
	return b.rt.checked
}

// instanceConfig is the configuration of one instance: the shared base,
// with stdio, sleep and the interruption check aimed at rio (the request
// being served), and the route's clock and random source.
//
// clock, when not nil, is the FrozenClock guest's clock; nil starts a new
// one at zero.
func (b *Backend) instanceConfig(rio *requestIO, clock *frozenClock) wazero.ModuleConfig {
	cfg := b.base.
		WithStdin(ioStdin{rio}).
		WithStdout(ioStdout{rio}).
		WithStderr(ioStderr{rio}).
		WithNanosleep(func(ns int64) { sleepUntil(rio.ctx, ns) }).
		WithOsyield(func() {
			interruptIfDone(rio.ctx)
			if rio.yield != nil {
				rio.yield()
			}
		})
	if b.opts.FrozenClock {
		if clock == nil {
			clock = &frozenClock{}
		}
		cfg = cfg.WithWalltime(clock.walltime, 1).WithNanotime(clock.nanotime, 1).WithNanosleep(clock.nanosleep)
	}
	if b.opts.Seed != 0 {
		cfg = cfg.WithRandSource(seededRand(b.opts.Seed))
	}
	return cfg
}

// requestIO is what an instance's stdio, sleep and interruption check
// refer to: the request it is serving now. A reused instance is re-aimed
// at each request in turn.
type requestIO struct {
	ctx    context.Context
	yield  func() // shadow.Yielder of ctx: a shadow copy gives way to client traffic
	stdin  bytes.Reader
	stdout io.Writer
	stderr io.Writer
}

type (
	ioStdin  struct{ *requestIO }
	ioStdout struct{ *requestIO }
	ioStderr struct{ *requestIO }
)

func (r ioStdin) Read(p []byte) (int, error)   { return r.stdin.Read(p) }
func (r ioStdout) Write(p []byte) (int, error) { return r.stdout.Write(p) }
func (r ioStderr) Write(p []byte) (int, error) { return r.stderr.Write(p) }

// sleepUntil is a guest's nanosleep: it sleeps on the host, and wakes early
// when the request ends so the guest returns to code that notices it.
func sleepUntil(ctx context.Context, ns int64) {
	t := time.NewTimer(time.Duration(ns))
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// interruptIfDone is the sched_yield hook that instrumented modules call
// every yieldEvery loop iterations: where a guest learns that its request
// is over.
func interruptIfDone(ctx context.Context) {
	if err := ctx.Err(); err != nil {
		code := sys.ExitCodeDeadlineExceeded
		if errors.Is(err, context.Canceled) {
			code = sys.ExitCodeContextCanceled
		}
		panic(sys.NewExitError(code)) // wazero ends the guest with this exit
	}
}

// seededRand is the deterministic random stream of Options.Seed.
func seededRand(seed int64) io.Reader {
	var s [32]byte
	binary.LittleEndian.PutUint64(s[:], uint64(seed))
	return rand.NewChaCha8(s)
}

// config is a WAGI command's configuration for one request: the instance
// configuration with the body as stdin and the CGI environment.
func (b *Backend) config(ctx context.Context, r *http.Request, body []byte, stdout, stderr io.Writer) wazero.ModuleConfig {
	rio := &requestIO{ctx: ctx, yield: shadow.Yielder(ctx), stdout: stdout, stderr: stderr}
	rio.stdin.Reset(body)
	cfg := b.instanceConfig(rio, nil)
	for _, kv := range cgiEnv(r, int64(len(body))) {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	return cfg
}

var errTooLarge = errors.New("response too large")

// classify maps how the guest ended to a GuestError, or nil for a clean
// exit. The limits are checked first: a guest refused memory or output
// fails in whatever way its language handles that, and the operator needs
// to know which limit it hit, not how it died.
func (b *Backend) classify(ctx context.Context, err error, mem *linearMemory, stdout *limitedBuffer, stderr *headBuffer) *GuestError {
	if stdout.overflowed {
		// Even if the guest exited cleanly before the interruption landed,
		// its response was cut short.
		return &GuestError{Kind: KindTooLarge, Err: fmt.Errorf("stdout exceeded maxResponse %s; the guest was stopped", b.opts.MaxResponse)}
	}
	if err == nil {
		// A guest refused memory that recovered and answered is a success.
		return nil
	}
	if errors.Is(err, errBudget) {
		// A reusable guest's new instance found no room in the budget.
		return &GuestError{Kind: KindBudget, Err: err}
	}
	why := stderr.firstLine()
	if why != "" {
		why = " (stderr: " + why + ")"
	}
	var exit *sys.ExitError
	isExit := errors.As(err, &exit)
	switch {
	case mem.refused:
		return &GuestError{Kind: KindMemory, Err: fmt.Errorf("linear memory would grow past maxMemory %s (raise maxMemory if the guest needs more): %w", b.opts.MaxMemory, err)}
	case isExit && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled):
		return &GuestError{Kind: KindDeadline, Err: fmt.Errorf("interrupted after the %s timeout or request cancellation: %w", b.opts.Timeout, context.Cause(ctx))}
	case isExit:
		return &GuestError{Kind: KindExit, Err: fmt.Errorf("exit code %d%s", exit.ExitCode(), why)}
	default:
		return &GuestError{Kind: KindTrap, Err: fmt.Errorf("%w%s", err, why)}
	}
}

// logStderr puts what the guest wrote to stderr in the structured log,
// with the route, at Warn when the request failed and Info otherwise.
func (b *Backend) logStderr(r *http.Request, stderr *headBuffer, gerr *GuestError) {
	if stderr.total == 0 && gerr == nil {
		return
	}
	attrs := []any{
		"route", matchedRoute(r.Context()),
		"method", r.Method,
		"path", r.URL.Path,
		"stderr", string(stderr.buf),
		"stderrBytes", stderr.total,
	}
	if gerr != nil {
		attrs = append(attrs, "kind", gerr.Kind, "error", gerr.Err.Error())
		b.logger.WarnContext(r.Context(), "wasm guest failed", attrs...)
		return
	}
	b.logger.InfoContext(r.Context(), "wasm guest stderr", attrs...)
}

// acquire pins the current module version for one request.
func (b *Backend) acquire() (*module, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("wasm candidate %s is closed", b.opts.Path)
	}
	b.cur.refs++
	b.requests.Add(1)
	return b.cur, nil
}

// release unpins a module version, closing it if it was replaced and this
// was its last request.
func (b *Backend) release(m *module) {
	b.mu.Lock()
	m.refs--
	closeIt := m.retired && m.refs == 0
	b.mu.Unlock()
	if closeIt {
		_ = m.compiled.Close(context.Background())
	}
	b.requests.Done()
}

// maybeReload stats the module file if the last check is older than
// checkEvery, and starts a background reload when the file changed.
func (b *Backend) maybeReload() {
	now := time.Now().UnixNano()
	last := b.lastCheck.Load()
	if now-last < int64(b.checkEvery) || !b.lastCheck.CompareAndSwap(last, now) {
		return
	}
	st, err := os.Stat(b.opts.Path)
	if err != nil {
		return // a file being replaced may be missing for a moment; keep serving
	}
	stamp := stampOf(st)
	b.mu.Lock()
	unchanged := b.closed || stamp.is(b.cur.stamp) || stamp.is(b.badStamp)
	b.mu.Unlock()
	if unchanged || !b.reloading.CompareAndSwap(false, true) {
		return
	}
	b.reloads.Add(1)
	go func() {
		defer b.reloads.Done()
		defer b.reloading.Store(false)
		b.reload()
	}()
}

// reload compiles the changed file and swaps it in.
func (b *Backend) reload() {
	ctx := context.Background()
	m, err := b.load(ctx)
	if err != nil {
		b.stats.reloadErrors.Add(1)
		b.logger.Error("wasm module changed but did not load; still serving the previous version", "error", err)
		if st, serr := os.Stat(b.opts.Path); serr == nil {
			b.mu.Lock()
			b.badStamp = stampOf(st)
			b.mu.Unlock()
		}
		return
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = m.compiled.Close(ctx)
		return
	}
	old := b.cur
	b.cur = m
	old.retired = true
	closeOld := old.refs == 0
	stale := drainIdle(old)
	b.mu.Unlock()
	for _, in := range stale {
		b.closeInstance(in)
	}
	if closeOld {
		_ = old.compiled.Close(ctx)
	}
	b.stats.reloads.Add(1)
	b.logger.Info("wasm module reloaded", "size", m.stamp.size, "modified", m.stamp.mtime)
}

// Close stops accepting requests, waits for running ones (until ctx is
// done; the runtime's Close interrupts any left), and releases the compiled
// module and pooled memory.
func (b *Backend) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()

	done := make(chan struct{})
	go func() {
		b.requests.Wait()
		b.reloads.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("close wasm candidate %s: requests still running: %w", b.opts.Path, ctx.Err())
	}
	var err error
	b.closeOnce.Do(func() {
		b.mu.Lock()
		m := b.cur
		idle := drainIdle(m)
		if b.idleTimer != nil {
			b.idleTimer.Stop()
			b.idleTimer = nil
		}
		b.mu.Unlock()
		for _, in := range idle {
			b.closeInstance(in)
		}
		err = m.compiled.Close(ctx)
		b.mem.close()
		b.rt.budget.unregister(b)
	})
	return err
}

// readBody reads the whole request body, up to limit bytes, and closes it.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	defer r.Body.Close()
	if r.ContentLength > limit {
		return nil, fmt.Errorf("request body of %d bytes exceeds the wasm candidate's maxMemory (%d bytes)", r.ContentLength, limit)
	}
	var buf bytes.Buffer
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	if n > limit {
		return nil, fmt.Errorf("request body exceeds the wasm candidate's maxMemory (%d bytes)", limit)
	}
	return buf.Bytes(), nil
}

// limitedBuffer collects stdout up to limit bytes; past it, writes fail
// (nothing more is kept) and overflow stops the guest. It starts on the Go
// heap; an output that outgrows mappedAbove moves to a mapping of the whole
// limit, which free unmaps, so a guest printing megabytes leaves nothing
// behind for the Go heap to hold on to.
type limitedBuffer struct {
	buf        []byte
	mapped     bool
	limit      int
	overflowed bool
	overflow   func()
}

// mappedAbove is the output size past which stdout moves to a mapping.
const mappedAbove = 64 << 10

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if w.overflowed || len(w.buf)+len(p) > w.limit {
		if !w.overflowed {
			w.overflowed = true
			w.overflow()
		}
		return 0, errTooLarge
	}
	if n := len(w.buf) + len(p); n > cap(w.buf) {
		w.grow(n)
	}
	w.buf = append(w.buf, p...)
	return len(p), nil
}

// grow makes room for n bytes, never allocating past the limit.
func (w *limitedBuffer) grow(n int) {
	var nb []byte
	mapped := false
	if n > mappedAbove && !w.mapped {
		if nb = reserveLinear(uint64(w.limit)); nb != nil {
			mapped = true
		}
	}
	if nb == nil {
		nb = make([]byte, 0, min(max(n, 2*cap(w.buf), 512), w.limit))
	}
	nb = append(nb, w.buf...)
	releaseLinear(w.buf, w.mapped)
	w.buf, w.mapped = nb, mapped
}

// Bytes is what the guest wrote; valid until free.
func (w *limitedBuffer) Bytes() []byte { return w.buf }

// free releases the buffer.
func (w *limitedBuffer) free() {
	releaseLinear(w.buf, w.mapped)
	w.buf, w.mapped = nil, false
}

// headBuffer keeps the first limit bytes written and counts the rest.
type headBuffer struct {
	buf   []byte
	limit int
	total int
}

func (w *headBuffer) Write(p []byte) (int, error) {
	w.total += len(p)
	if room := w.limit - len(w.buf); room > 0 {
		w.buf = append(w.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// firstLine is the first non-empty stderr line, shortened.
func (w *headBuffer) firstLine() string {
	for line := range strings.Lines(string(w.buf)) {
		if s := strings.TrimSpace(line); s != "" {
			return preview([]byte(s))
		}
	}
	return ""
}

// frozenClock is the deterministic clock of one FrozenClock request.
type frozenClock struct{ mono int64 }

func (c *frozenClock) walltime() (int64, int32) { return frozenWalltime, 0 }
func (c *frozenClock) nanotime() int64          { c.mono += int64(time.Microsecond); return c.mono }
func (c *frozenClock) nanosleep(ns int64)       { c.mono += ns }
