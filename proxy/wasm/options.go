package wasm

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by New to zero-valued Options fields.
const (
	DefaultMaxMemory   ByteSize = 64 << 20
	DefaultTimeout              = Duration(5 * time.Second)
	DefaultMaxResponse ByteSize = 8 << 20

	// wasmPageSize is the unit in which linear memory grows.
	wasmPageSize = 64 << 10
	// maxLinearMemory is the most a wasm32 memory can address.
	maxLinearMemory = 4 << 30
)

// Options are a Wasm candidate's settings: the `candidate:` block of
// strangler.yaml, e.g. `{wasm: components/orders.wasm, timeout: 2s}`.
type Options struct {
	// Path is the WAGI module file (a WASI preview1 command). Required.
	// A changed file is picked up while serving (see Backend).
	Path string `json:"wasm"`
	// MaxMemory caps the guest's linear memory; a guest that tries to grow
	// past it fails with Kind "memory". Default 64MiB. Rounded down to whole
	// 64KiB Wasm pages.
	MaxMemory ByteSize `json:"maxMemory,omitempty"`
	// Timeout is the wall-clock budget of one request, from instantiation to
	// exit; the guest is interrupted when it runs out (Kind "deadline").
	// Default 5s. A shorter deadline on the request context wins.
	Timeout Duration `json:"timeout,omitempty"`
	// MaxResponse caps everything the guest writes to stdout (header block
	// and body); the guest is interrupted when it writes more (Kind
	// "too-large"). Default 8MiB.
	MaxResponse ByteSize `json:"maxResponse,omitempty"`
	// Pool, when N > 0, keeps N zeroed linear-memory buffers allocated while
	// the route is idle and runs at most N guests of this module at once
	// (more requests wait for a slot until their deadline); with Reuse it
	// also bounds the idle instances kept. A WAGI command still gets a
	// fresh instance per request: it exits after answering. Default 0:
	// buffers are reused only while requests keep coming and released after
	// one idle second.
	Pool int `json:"pool,omitempty"`
	// Reuse, when N > 1, lets one instance of a reusable guest serve up to
	// N requests, one after another, before it is replaced; instances wait
	// between requests in a bounded idle list (Pool, default 16) and are
	// closed after one idle second. It needs a module that exports
	// migrate_serve (see the package documentation) and gives up the
	// isolation of a fresh instance per request: globals, heap and caches
	// persist between the requests one instance serves, so only guests
	// that keep nothing of one request for the next may use it. A failed
	// request always discards its instance. Default 0: a fresh instance
	// per request.
	Reuse int `json:"reuse,omitempty"`
	// Preinit runs a reusable guest's _initialize once, when the module
	// is loaded, and starts every new instance from the memory and globals
	// it left (pre-initialization, as Wizer does): a fresh instance then
	// costs no runtime start-up — for a Go guest about a millisecond of
	// CPU per request without Reuse. Each request still gets a new
	// instance; what all instances share is what _initialize computed,
	// including what it drew from the clock and the random source. For a
	// Go guest that includes the runtime's random state: math/rand's
	// top-level functions return the same sequence in every request (an
	// ID made with them repeats), and map iteration order is the same
	// each time; crypto/rand asks the host each time and is unaffected.
	// Only guests that take their randomness from crypto/rand may use it.
	// A guest whose state is not all linear memory and numeric globals,
	// or whose _initialize writes to stdout or makes an outbound call, is
	// initialized per instance instead (with a warning in the log).
	// Needs a module that exports migrate_serve. Default false.
	Preinit bool `json:"preinit,omitempty"`
	// FrozenClock fixes the guest's wall clock at 2024-01-01T00:00:00Z and
	// makes its monotonic clock advance 1µs per reading (and by the
	// requested duration on sleep), so timestamps do not differ between
	// runs. Default false: the host's real clocks.
	FrozenClock bool `json:"frozenClock,omitempty"`
	// Seed, when non-zero, replaces the guest's random source (random_get)
	// with a deterministic stream derived from it, the same for every
	// request. Default 0: crypto/rand.
	Seed int64 `json:"seed,omitempty"`
	// Outbound lists what the guest may call through the
	// wasi_experimental_http host module: origins ("http://host:port") or
	// bare hosts. Anything else is refused with destination_not_allowed
	// and a warning in the log. Default: nothing.
	Outbound []string `json:"outbound,omitempty"`
	// MaxOutboundCalls caps the outbound calls of one request (further
	// calls fail with too_many_sessions). Default 16.
	MaxOutboundCalls int `json:"maxOutboundCalls,omitempty"`
	// MaxOutboundBody caps each outbound request and response body.
	// Default 1MiB. The request's Timeout bounds every call.
	MaxOutboundBody ByteSize `json:"maxOutboundBody,omitempty"`
	// Stubs answer a shadow copy's writes, which are never sent: keys are
	// "METHOD /path" (a trailing * matches a prefix). Default for any
	// write: 200 with {} (docs/outbound.md).
	Stubs map[string]Stub `json:"stubs,omitempty"`
	// ShadowReads sends a shadow copy's reads (GET, HEAD, OPTIONS) for
	// real. Default true; false stubs them too.
	ShadowReads *bool `json:"shadowReads,omitempty"`
}

// withDefaults returns o with zero fields set to their defaults, or an
// error naming the field a user must fix.
func (o Options) withDefaults() (Options, error) {
	if strings.TrimSpace(o.Path) == "" {
		return o, errors.New("wasm candidate: the module path (wasm:) is empty; set it to a .wasm file built for WASI preview1 (GOOS=wasip1 GOARCH=wasm)")
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxResponse == 0 {
		o.MaxResponse = DefaultMaxResponse
	}
	if o.MaxOutboundCalls == 0 {
		o.MaxOutboundCalls = DefaultMaxOutboundCalls
	}
	if o.MaxOutboundBody == 0 {
		o.MaxOutboundBody = DefaultMaxOutboundBody
	}
	if err := o.checkOutbound(); err != nil {
		return o, err
	}
	switch {
	case o.MaxMemory < wasmPageSize:
		return o, fmt.Errorf("wasm candidate %s: maxMemory %s is below one 64KiB Wasm page; use at least 1MiB", o.Path, o.MaxMemory)
	case o.MaxMemory > maxLinearMemory:
		return o, fmt.Errorf("wasm candidate %s: maxMemory %s exceeds the 4GiB a wasm32 module can address", o.Path, o.MaxMemory)
	case o.Timeout < 0:
		return o, fmt.Errorf("wasm candidate %s: timeout %s is negative", o.Path, o.Timeout)
	case o.MaxResponse < 0:
		return o, fmt.Errorf("wasm candidate %s: maxResponse %s is negative", o.Path, o.MaxResponse)
	case o.Reuse < 0:
		return o, fmt.Errorf("wasm candidate %s: reuse %d is negative; use 0 for a fresh instance per request", o.Path, o.Reuse)
	case o.Pool < 0:
		return o, fmt.Errorf("wasm candidate %s: pool %d is negative; use 0 for a fresh instance per request", o.Path, o.Pool)
	}
	return o, nil
}

// memoryPages is MaxMemory in whole Wasm pages.
func (o Options) memoryPages() uint32 { return uint32(o.MaxMemory / wasmPageSize) }

// ByteSize is a size in bytes written as text in configuration: "64MiB",
// "512KiB", "1GB", "1048576". Binary (KiB, MiB, GiB) and decimal (KB, MB,
// GB) suffixes are accepted; a bare JSON number is bytes.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
	{"B", 1},
}

// ParseByteSize parses text such as "64MiB" or "1.5GiB".
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t, factor = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.factor
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("invalid size %q: use a number with an optional unit, e.g. 64MiB or 512KiB", s)
	}
	v := f * float64(factor)
	if v > math.MaxInt64/2 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return ByteSize(v), nil
}

// String renders the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return strconv.FormatInt(int64(b>>30), 10) + "GiB"
	case b != 0 && b%(1<<20) == 0:
		return strconv.FormatInt(int64(b>>20), 10) + "MiB"
	case b != 0 && b%(1<<10) == 0:
		return strconv.FormatInt(int64(b>>10), 10) + "KiB"
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// MarshalJSON writes the size as text, e.g. "64MiB".
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON accepts "64MiB"-style text or a number of bytes.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var n int64
		if err := json.Unmarshal(data, &n); err != nil || n < 0 {
			return fmt.Errorf("invalid size %s: use text such as \"64MiB\" or a number of bytes", data)
		}
		*b = ByteSize(n)
		return nil
	}
	v, err := ParseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// Duration is a time.Duration written as text in configuration: "5s",
// "250ms", "1m30s".
type Duration time.Duration

// String renders the duration the way time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as text, e.g. "5s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts text understood by time.ParseDuration, or a bare
// number of seconds, as the rest of the config does.
func (d *Duration) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		var seconds float64
		if err := json.Unmarshal(data, &seconds); err != nil || seconds < 0 {
			return fmt.Errorf("invalid duration %s: use text such as \"5s\" or \"250ms\"", data)
		}
		*d = Duration(seconds * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return fmt.Errorf("invalid duration %q: use text such as \"5s\" or \"250ms\"", s)
	}
	*d = Duration(v)
	return nil
}
