package strangler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
		return fmt.Errorf("reach the admin API at %s: %w (is `migrate proxy` running? check --admin or the config's admin address)", c.BaseURL, err)
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
