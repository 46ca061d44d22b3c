package strangler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// AdminClient talks to a running proxy's admin API (the CLI's control
// commands, gates and reports use it).
type AdminClient struct {
	// BaseURL is e.g. "http://127.0.0.1:9090".
	BaseURL string
	// Token is sent as a bearer token when set.
	Token string
	// HTTP is the client to use; default has a 30s timeout.
	HTTP *http.Client
}

// AdminURLFor turns a config's admin address into a base URL.
func AdminURLFor(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// APIError is an error document returned by the admin API.
type APIError struct {
	Status int
	Doc    ErrorDocument
}

func (e *APIError) Error() string { return e.Doc.Error }

// Routes lists every route with its mode, weight and live stats.
func (c *AdminClient) Routes(ctx context.Context) (*RoutesDocument, error) {
	var doc RoutesDocument
	return &doc, c.do(ctx, http.MethodGet, "/v1/routes", nil, &doc)
}

// Transition asks for a mode change.
func (c *AdminClient) Transition(ctx context.Context, req TransitionRequest) (*TransitionsDocument, error) {
	var doc TransitionsDocument
	return &doc, c.do(ctx, http.MethodPost, "/v1/transitions", req, &doc)
}

// Audit reads the transition log.
func (c *AdminClient) Audit(ctx context.Context, q AuditQuery) (*TransitionsDocument, error) {
	v := url.Values{}
	if q.Route != "" {
		v.Set("route", q.Route)
	}
	if q.Service != "" {
		v.Set("service", q.Service)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var doc TransitionsDocument
	return &doc, c.do(ctx, http.MethodGet, "/v1/audit?"+v.Encode(), nil, &doc)
}

// Samples reads stored shadow samples of a route ("" = all), newest first;
// with differences only mismatches and candidate errors (Store.Samples).
func (c *AdminClient) Samples(ctx context.Context, route string, limit int, differences bool) (*SamplesDocument, error) {
	v := url.Values{}
	if route != "" {
		v.Set("route", route)
	}
	if differences {
		v.Set("differences", "true")
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var doc SamplesDocument
	return &doc, c.do(ctx, http.MethodGet, "/v1/samples?"+v.Encode(), nil, &doc)
}

func (c *AdminClient) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("admin API %s: %w", c.BaseURL, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return &unreachableError{err: err, msg: fmt.Sprintf("cannot reach the admin API at %s: %s (is `migrate proxy` running? check --admin, $MIGRATE_ADMIN or the config's admin address)", c.BaseURL, unreachableReason(err))}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read admin API answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &APIError{Status: resp.StatusCode}
		if json.Unmarshal(data, &e.Doc) != nil || e.Doc.Error == "" {
			e.Doc.Error = fmt.Sprintf("admin API answered %s: %s", resp.Status, strings.TrimSpace(string(data)))
		}
		return e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode admin API answer: %w", err)
	}
	return nil
}

// IsCode reports whether err is an admin API error with the given code.
func IsCode(err error, code string) bool {
	var e *APIError
	return errors.As(err, &e) && e.Doc.Code == code
}

// AdminFile is where a running proxy records the admin address it bound,
// next to its SQLite state file, so the control commands find the proxy
// without reading the config: during an incident the config may be the
// broken part, and --admin may have moved the address. A PostgreSQL store
// has no local file: there the config's admin address is used.
func AdminFile(storePath string) string {
	if storePath == "" || IsPostgresURL(storePath) {
		return ""
	}
	return storePath + ".admin"
}

// AdminFileDocument is the content of an AdminFile.
type AdminFileDocument struct {
	// Admin is the bound admin address, host:port.
	Admin string `json:"admin"`
	// PID is the proxy's process id, to tell the user which process it was.
	PID int `json:"pid"`
	// Started is when the proxy began serving.
	Started time.Time `json:"started"`
}

// WriteAdminFile records the bound admin address atomically (a reader
// never sees half a file). The proxy removes it on a clean shutdown.
func WriteAdminFile(path string, doc AdminFileDocument) error {
	data, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write admin address file: %w", err)
	}
	_, werr := tmp.Write(append(data, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write admin address file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write admin address file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write admin address file: %w", err)
	}
	return nil
}

// ReadAdminFile reads an AdminFile; a missing file is fs.ErrNotExist.
func ReadAdminFile(path string) (*AdminFileDocument, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc AdminFileDocument
	if err := json.Unmarshal(data, &doc); err != nil || doc.Admin == "" {
		return nil, fmt.Errorf("%s: not an admin address file written by `migrate proxy`; remove it, or pass --admin", path)
	}
	return &doc, nil
}

// unreachableError says why the admin API could not be reached in words
// and keeps the cause for errors.Is (a cancelled context, a refused
// connection).
type unreachableError struct {
	err error
	msg string
}

func (e *unreachableError) Error() string { return e.msg }
func (e *unreachableError) Unwrap() error { return e.err }

// unreachableReason is the cause without Go's wording
// (`Get "http://…/v1/routes": dial tcp 127.0.0.1:9090: connect: connection refused`).
func unreachableReason(err error) string {
	var dnsErr *net.DNSError
	var uerr *url.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens there"
	case errors.As(err, &dnsErr):
		return "no host named " + dnsErr.Name
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.As(err, &uerr) && uerr.Timeout():
		return "it did not answer in time"
	case errors.As(err, &uerr):
		return uerr.Err.Error()
	}
	return err.Error()
}
