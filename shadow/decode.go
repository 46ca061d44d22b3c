package shadow

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/andybalholm/brotli"
)

// Candidate error kinds migrate assigns itself; in-process backends may add
// their own (trap, exit, memory, ...) through ErrorKind.
const (
	ErrTimeout  = "timeout"   // no complete answer before Options.Timeout
	ErrReset    = "reset"     // the connection broke mid-exchange
	ErrConnect  = "connect"   // the candidate could not be reached
	ErrTooLarge = "too-large" // the body exceeded Options.MaxBody
	ErrOther    = "error"     // anything else
)

// errTooLarge marks a body that exceeded its cap.
var errTooLarge = errors.New("body exceeds the shadow maxBody limit")

// Kinded is implemented by errors that know their own kind. migrate finds it
// anywhere in an error's chain with errors.As, so an in-process backend (e.g.
// proxy/wasm's GuestError, whose ErrorKind returns its Kind field) reports
// "trap" or "memory" instead of a generic "error". An interface, rather than
// reflection on a Kind field, keeps shadow independent of every backend.
type Kinded interface {
	ErrorKind() string
}

// ErrorKind classifies a candidate failure into a short, stable kind.
func ErrorKind(err error) string {
	if err == nil {
		return ""
	}
	var k Kinded
	if errors.As(err, &k) {
		if kind := k.ErrorKind(); kind != "" {
			return kind
		}
	}
	if errors.Is(err, errTooLarge) {
		return ErrTooLarge
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		return ErrTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ErrTimeout
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) {
		return ErrConnect
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return ErrConnect
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return ErrConnect
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		return ErrReset
	}
	if strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "server closed") {
		return ErrReset
	}
	return ErrOther
}

// readCapped reads at most max bytes of r; more is errTooLarge, and the rest
// is never read (a 5 GB body costs max+1 bytes, not 5 GB).
func readCapped(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return b, err
	}
	if int64(len(b)) > max {
		return b[:max], errTooLarge
	}
	return b, nil
}

// decodeBody undoes Content-Encoding (possibly a list, applied in order) so
// that gzip-vs-identity or two gzip streams with different mtimes compare by
// content. The decoded size is capped too: a small bomb must not expand
// without bound.
func decodeBody(body []byte, encoding string, max int64) ([]byte, error) {
	encoding = strings.TrimSpace(encoding)
	if encoding == "" || len(body) == 0 {
		return body, nil
	}
	codings := strings.Split(encoding, ",")
	for i := len(codings) - 1; i >= 0; i-- {
		c := strings.ToLower(strings.TrimSpace(codings[i]))
		var r io.Reader
		switch c {
		case "", "identity":
			continue
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				return body, fmt.Errorf("gzip: %w", err)
			}
			r = zr
		case "br":
			r = brotli.NewReader(bytes.NewReader(body))
		case "deflate":
			// RFC 9110 says zlib-wrapped; some servers send raw DEFLATE.
			if zr, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
				r = zr
			} else {
				r = flate.NewReader(bytes.NewReader(body))
			}
		default:
			return body, fmt.Errorf("unsupported content-encoding %q", c)
		}
		out, err := readCapped(r, max)
		if err != nil {
			return body, fmt.Errorf("%s: %w", c, err)
		}
		body = out
	}
	return body, nil
}
