// Package wasm serves a Wasm candidate in process: a WAGI module (a WASI
// preview1 command) run by wazero, one fresh instance per HTTP request —
// or, for a reusable guest on a route that opts in, one kept instance for
// many requests in turn.
//
// A service whose candidate is declared as `{wasm: path/to/module.wasm}` in
// strangler.yaml is answered by a Backend. The proxy calls
// Backend.RoundTrip like any http.RoundTripper; the same module file runs
// unchanged under Spin's wagi executor and `wasmtime run`.
//
// # The WAGI contract
//
// Request. The guest's environment is exactly the following CGI variables;
// nothing of migrate's own environment is passed:
//
//	REQUEST_METHOD     GET, POST, ...
//	PATH_INFO          the URL path, decoded ("/api/order"); SCRIPT_NAME is ""
//	                   because the module is mounted at the root (Spin route "/...")
//	PATH_TRANSLATED    same as PATH_INFO
//	X_RAW_PATH_INFO    the path as sent, still escaped
//	QUERY_STRING       the raw query ("skuCode=A&skuCode=B"), no "?"
//	CONTENT_TYPE       the request's Content-Type, or ""
//	CONTENT_LENGTH     bytes on stdin, always set ("0" without a body)
//	X_FULL_URL         scheme://host/path?query as the client sent it
//	X_MATCHED_ROUTE    the path template of the route the proxy matched (see
//	                   WithMatchedRoute), "/..." when none was given
//	SERVER_NAME        host part of the Host header
//	SERVER_PORT        its port, else 80 or 443
//	SERVER_PROTOCOL    HTTP/1.1, HTTP/2.0, ...
//	SERVER_SOFTWARE    migrate
//	GATEWAY_INTERFACE  CGI/1.1
//	REMOTE_ADDR        client IP address (REMOTE_HOST: the same)
//	HTTP_<NAME>        one per request header: upper-cased, "-" becomes "_"
//	                   (X-Request-Id → HTTP_X_REQUEST_ID); repeated values are
//	                   joined with ", " ("; " for Cookie); HTTP_HOST is the
//	                   Host; Content-Type and Content-Length appear only as
//	                   the CGI variables above; a "Proxy" header is dropped
//	                   (httpoxy)
//
// The request body is read completely (at most MaxMemory bytes) and is the
// guest's stdin. argv is the module's file name.
//
// Response. The guest writes to stdout a header block, an empty line, and
// the body. Lines end in "\n" or "\r\n". In the header block:
//
//	Status: 404 Not Found   the status code; the reason text is ignored
//	Content-Type: ...       required when there is a body
//	Location: /elsewhere    a redirect: status 302 unless Status says otherwise
//	Other-Header: value     passed to the client; repeat a line to repeat it
//
// Without Status the status is 200. A header-only response ("Status:
// 201\n\n") needs no Content-Type. Connection-level headers (Connection,
// Transfer-Encoding, Content-Length, ...) are dropped: the length is the
// body's. The guest must exit with code 0; stderr goes to migrate's log.
//
// A minimal guest in Go (GOOS=wasip1 GOARCH=wasm go build -o hello.wasm):
//
//	package main
//
//	import (
//		"fmt"
//		"io"
//		"os"
//	)
//
//	func main() {
//		body, _ := io.ReadAll(os.Stdin)
//		fmt.Printf("Content-Type: text/plain\n\n%s %s got %d bytes\n",
//			os.Getenv("REQUEST_METHOD"), os.Getenv("PATH_INFO"), len(body))
//	}
//
// A complete one is testdata/inventory/main.go, served by Example.
//
// # Isolation and limits
//
// Every request instantiates the compiled module afresh: no global, heap or
// file state survives from one request to the next, whatever the guest
// does. A route that is not serving holds only the compiled code; linear
// memory exists only while a request runs (plus, for one idle second, the
// buffers of recent requests, kept for the next ones). The guest gets no filesystem,
// no sockets and no host functions other than wasi_snapshot_preview1; New
// rejects modules importing anything else. Clocks and randomness are the
// host's unless Options.FrozenClock or Options.Seed make them
// deterministic, which removes timestamp and UUID noise from shadow diffs.
//
// Per route: Options.MaxMemory caps linear memory, Options.Timeout
// interrupts the guest (it is stopped, not abandoned: New instruments every
// loop of the module so that the guest checks its deadline every 1024
// iterations — see instrumentLoops — and a sleeping guest is woken),
// Options.MaxResponse caps stdout.
//
// Across routes: a Runtime given a MemoryBudget (Runtime.LimitMemory, the
// proxy's wasmMemory) makes every instance reserve its MaxMemory plus
// MaxResponse from it before it starts; one that finds no room within the
// budget's wait fails with KindBudget, so all guests together never hold
// more than the budget, whatever they do.
//
// # Failures
//
// When the guest fails, RoundTrip returns a *GuestError whose Kind is one
// of trap, exit, deadline, memory, headers, too-large and budget; Stats counts them
// per kind for metrics. The proxy answers clients with a 5xx and records
// the kind as the candidate's error in shadow mode.
//
// # Why it is fast enough
//
// Instantiating a Go-built module per request with wazero's defaults costs
// about 4ms of CPU, little of it in the guest. Three changes bring it to
// about 1.2ms without weakening isolation (BENCHMARKS.md has the figures):
//
//   - The module's tens of thousands of data segments are taken out of it
//     at load and their bytes written by the memory allocator as one image
//     (stripData), so instantiation copies one block instead of evaluating
//     40,000 segment offsets; modules whose segments the allocator cannot
//     stand in for have them merged into a handful instead (coalesceData:
//     the same bytes at the same addresses).
//   - Linear memory is recycled through a small pool and zeroed before
//     reuse (all but the image, which overwrites its own range), instead
//     of being allocated, page-faulted and garbage collected per request.
//   - Deadlines are enforced by a loop budget compiled into the module
//     (instrumentLoops) rather than by wazero's WithCloseOnContextDone,
//     which leaves the compiled code for Go on every loop iteration and
//     would triple the cost of a request. Modules the instrumentation does
//     not understand fall back to wazero's check.
//
// A fresh instance of a Go command still costs about 1ms: the guest's own
// runtime start-up and package initialisation, which no host can skip
// without changing what the guest sees. A reusable guest can have it
// skipped (Options.Preinit, below); routes that need more opt in to reuse.
//
// # Reusable guests
//
// A module that exports ServeExport ("migrate_serve", a function of no
// parameters and no results) and no _start is a reusable guest: a WASI
// reactor (Go: -buildmode=c-shared). Its _initialize, if exported, runs
// when an instance starts; then, for each request, migrate_serve is called
// with stdin holding the request block — the CGI variables above as
// NAME=value lines, an empty line, the body — and writes the response to
// stdout exactly as a command does. Its environment is empty.
//
// Without Options.Reuse every request still gets a new instance. With
// Reuse N, an instance serves up to N requests one after another; between
// them it waits in an idle list (at most Options.Pool, default 16) and is
// closed after one idle second. Globals and heap persist across those
// requests, which is the point (the fixture order component: about 0.1ms
// instead of 1.2ms of CPU per request) and the trade-off: only a guest that
// keeps nothing of one request for the next may be reused. Any failure —
// trap, exit, deadline, memory, an oversized response — discards the
// instance.
//
// # Pre-initialization
//
// With Options.Preinit, a reusable guest's _initialize runs once, when the
// module is loaded, in an instance of its own; what it leaves — linear
// memory and the mutable globals — becomes the starting state of every
// later instance, which then has migrate_serve called at once. This is
// Wizer's model (Fastly's fresh instance per request): each request still
// gets a brand-new instance, nothing one request does reaches the next,
// and the runtime start-up is paid once instead of per request (the
// fixture order component: about a third of the CPU per request of a fresh
// command, BENCHMARKS.md).
//
// wazero reads and writes only exported globals, and Go exports none, so
// the module is rewritten before it is compiled (prepareSnapshot): every
// mutable global is exported as "migrate.global.N", and the data section
// is dropped, its bytes written by the memory allocator instead, so one
// compiled module serves the initializing instance (memory: the data
// segments) and every later one (memory: the snapshot) without wazero
// copying the original data first. A new instance gets the snapshot copied
// into its recycled buffer, the rest of the buffer zeroed, its memory grown
// to the snapshot's size and its globals set.
//
// What instances share is what _initialize computed. The monotonic clock
// is the host's (FrozenClock: it continues from where _initialize left
// it), so time never goes back between the snapshot and a request. The
// random state is the snapshot's: a Go guest's runtime seeds map hashing
// and math/rand's top-level functions during start-up, so those return
// the same sequence in every request and map iteration order repeats;
// crypto/rand reads random_get each time and stays random. That is why
// Preinit is opt-in: a guest must take its random IDs from crypto/rand (the
// fixtures do). Modules whose state the snapshot cannot hold are
// initialized per instance, with a warning: an imported memory, table or
// global; a start section; a data count section (memory.init, data.drop);
// non-numeric mutable globals; code that writes a table; code the loop
// instrumentation does not understand; and an _initialize that fails,
// writes to stdout (a fresh instance's response would include it) or makes
// an outbound call (its answer would be replayed to every request).
package wasm
