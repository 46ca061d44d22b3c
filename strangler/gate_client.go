package strangler

import (
	"context"
	"net/http"
	"net/url"
)

// Gate evaluates the gate of a route or service without changing it; to is
// "" (the next gated promotion), cutover or retired.
func (c *AdminClient) Gate(ctx context.Context, target string, to Mode) (*GateReport, error) {
	v := url.Values{"target": {target}}
	if to != "" {
		v.Set("to", string(to))
	}
	var doc GateReport
	return &doc, c.do(ctx, http.MethodGet, "/v1/gate?"+v.Encode(), nil, &doc)
}

// StartCanary starts a progressive canary walk.
func (c *AdminClient) StartCanary(ctx context.Context, req CanaryRequest) (*CanaryWalksDocument, error) {
	var doc CanaryWalksDocument
	return &doc, c.do(ctx, http.MethodPost, "/v1/canary", req, &doc)
}

// CanaryWalks lists the walks over a route or service ("" = all).
func (c *AdminClient) CanaryWalks(ctx context.Context, target string) (*CanaryWalksDocument, error) {
	path := "/v1/canary"
	if target != "" {
		path += "?" + url.Values{"target": {target}}.Encode()
	}
	var doc CanaryWalksDocument
	return &doc, c.do(ctx, http.MethodGet, path, nil, &doc)
}
