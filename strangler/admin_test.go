package strangler

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckAdminAddress(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:9090", "", true},
		{"[::1]:9090", "", true},
		{"localhost:9090", "", true},
		{"0.0.0.0:9090", "", false},
		{":9090", "", false},
		{"10.0.0.5:9090", "", false},
		{"0.0.0.0:9090", "s3cret", true},
		{"nonsense", "", false},
	}
	for _, tt := range tests {
		err := CheckAdminAddress(tt.addr, tt.token)
		if (err == nil) != tt.ok {
			t.Errorf("CheckAdminAddress(%q, %q) = %v, want ok=%v", tt.addr, tt.token, err, tt.ok)
		}
		if err != nil && strings.Contains(tt.addr, ":") && tt.addr != "nonsense" && !strings.Contains(err.Error(), AdminTokenEnv) {
			t.Errorf("error %q does not say how to fix it", err)
		}
	}
}

func newAdminServer(t *testing.T, token string) (*Controller, *httptest.Server) {
	t.Helper()
	c := newTestController(t, filepath.Join(t.TempDir(), "migrate.db"))
	srv := httptest.NewServer(NewAdmin(c, AdminOptions{Token: token}))
	t.Cleanup(srv.Close)
	return c, srv
}

func TestAdminRequiresToken(t *testing.T) {
	_, srv := newAdminServer(t, "s3cret")
	tests := []struct {
		path, auth string
		want       int
	}{
		{"/v1/routes", "", http.StatusUnauthorized},
		{"/v1/routes", "Bearer wrong", http.StatusUnauthorized},
		{"/v1/routes", "Bearer s3cre", http.StatusUnauthorized},
		{"/v1/routes", "s3cret", http.StatusUnauthorized},
		{"/v1/routes", "Bearer s3cret", http.StatusOK},
		{"/v1/routes", "bearer s3cret", http.StatusOK},
		{"/v1/routes", "BEARER  s3cret", http.StatusOK},
		{"/v1/routes", "Basic s3cret", http.StatusUnauthorized},
		{"/v1/routes", "Bearer s3cret2", http.StatusUnauthorized},
		{"/metrics", "", http.StatusUnauthorized},
		{"/metrics", "Bearer s3cret", http.StatusOK},
		{"/healthz", "", http.StatusOK},
		{"/readyz", "", http.StatusOK},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s with %q: %d, want %d", tt.path, tt.auth, resp.StatusCode, tt.want)
		}
	}
}

func TestAdminAPIWithClient(t *testing.T) {
	ctx := context.Background()
	c, srv := newAdminServer(t, "tok")
	cl := &AdminClient{BaseURL: srv.URL, Token: "tok"}

	doc, err := cl.Transition(ctx, TransitionRequest{Target: "orders", To: ModeShadow, Actor: "alice", Reason: "go"})
	if err != nil || len(doc.Transitions) != 2 {
		t.Fatalf("transition: %+v %v", doc, err)
	}
	c.Route("GET /api/order").Observe(SideLegacy, 2_000_000, false)
	routes, err := cl.Routes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if routes.APIVersion != APIVersion || len(routes.Routes) != 3 || routes.Routes[0].Route != "GET /api/order" ||
		routes.Routes[0].Mode != ModeShadow || routes.Routes[0].Latency[SideLegacy].P50 == 0 {
		t.Fatalf("routes = %+v", routes)
	}
	_, err = cl.Transition(ctx, TransitionRequest{Target: "nope", To: ModeShadow})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 404 || apiErr.Doc.Code != "unknown-target" || len(apiErr.Doc.Routes) != 3 {
		t.Fatalf("unknown target: %+v", err)
	}
	if _, err := cl.Transition(ctx, TransitionRequest{Target: "orders", To: ModeRetired}); !IsCode(err, "invalid-transition") {
		t.Fatalf("invalid transition: %v", err)
	}
	audit, err := cl.Audit(ctx, AuditQuery{Service: "orders"})
	if err != nil || len(audit.Transitions) != 2 || audit.Transitions[0].Actor != "alice" {
		t.Fatalf("audit: %+v %v", audit, err)
	}
	// Route names with spaces, slashes and braces travel in bodies and queries.
	audit, err = cl.Audit(ctx, AuditQuery{Route: "POST /api/order", Limit: 1})
	if err != nil || len(audit.Transitions) != 1 || audit.Transitions[0].Route != "POST /api/order" {
		t.Fatalf("audit by route: %+v %v", audit, err)
	}
}

// TestAdminRefusesBrowsers replays what a web page can make a browser send:
// a cross-site form or text/plain POST, and a DNS-rebound name in Host.
func TestAdminRefusesBrowsers(t *testing.T) {
	c := newTestController(t, filepath.Join(t.TempDir(), "migrate.db"))
	srv := httptest.NewServer(NewAdmin(c, AdminOptions{Hosts: []string{"migrate.internal"}}))
	t.Cleanup(srv.Close)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	move, back := `{"target":"orders","mode":"shadow"}`, `{"target":"orders","mode":"legacy"}`
	tests := []struct {
		name, method, path, host, origin, contentType string
		want                                          int
	}{
		{"cli write", "POST", "/v1/transitions", "", "", "application/json", http.StatusOK},
		{"own origin", "POST", "/v1/transitions", "", srv.URL, "application/json; charset=utf-8", http.StatusOK},
		{"foreign origin", "POST", "/v1/transitions", "", "https://evil.example", "application/json", http.StatusForbidden},
		{"null origin", "POST", "/v1/transitions", "", "null", "application/json", http.StatusForbidden},
		{"text/plain", "POST", "/v1/transitions", "", "", "text/plain", http.StatusUnsupportedMediaType},
		{"cross-origin text/plain", "POST", "/v1/transitions", "", "https://evil.example", "text/plain", http.StatusForbidden},
		{"cross-origin walk", "POST", "/v1/canary", "", "https://evil.example", "text/plain;charset=UTF-8", http.StatusForbidden},
		{"form", "POST", "/v1/transitions", "", "", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"no content type", "POST", "/v1/transitions", "", "", "", http.StatusUnsupportedMediaType},
		{"rebound host read", "GET", "/v1/samples", "evil.example:" + port, "", "", http.StatusMisdirectedRequest},
		{"rebound host write", "POST", "/v1/transitions", "evil.example:" + port, "http://evil.example:" + port, "application/json", http.StatusMisdirectedRequest},
		{"localhost", "GET", "/v1/routes", "localhost:" + port, "", "", http.StatusOK},
		{"ipv6 loopback", "GET", "/v1/routes", "[::1]:" + port, "", "", http.StatusOK},
		{"listener address", "GET", "/v1/routes", "127.0.0.1:" + port, "", "", http.StatusOK},
		{"another ip address", "GET", "/v1/samples", "10.1.2.3:" + port, "", "", http.StatusMisdirectedRequest},
		{"rebound host probe", "GET", "/healthz", "evil.example", "", "", http.StatusMisdirectedRequest},
		{"configured name", "GET", "/v1/routes", "Migrate.Internal:" + port, "", "", http.StatusOK},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.method == "POST" {
			body = strings.NewReader(move)
			if tt.name == "own origin" {
				body = strings.NewReader(back)
			}
		}
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, body)
		if tt.host != "" {
			req.Host = tt.host
		}
		if tt.origin != "" {
			req.Header.Set("Origin", tt.origin)
		}
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, resp.StatusCode, data, tt.want)
		}
	}
	// Only the two allowed writes moved the service.
	audit, err := (&AdminClient{BaseURL: srv.URL}).Audit(context.Background(), AuditQuery{Service: "orders"})
	if err != nil || len(audit.Transitions) != 2*2 {
		t.Fatalf("audit after refused writes: %d transitions, %v", len(audit.Transitions), err)
	}
}

func TestAllowedHost(t *testing.T) {
	local := net.ParseIP("10.0.0.7")
	hosts := []string{"migrate-admin", "10.96.0.12"}
	for host, want := range map[string]bool{
		"localhost:9090": true, "LOCALHOST": true, "app.localhost:9090": true, "127.0.0.1:9090": true, "127.1.2.3": true,
		"[::1]:9090": true, "10.0.0.7:9090": true, "10.0.0.7": true, "migrate-admin:9090": true, "migrate-admin.:9090": true,
		"10.96.0.12:9090": true,
		"10.0.0.8:9090":   false, "[fe80::1]:9090": false, "0.0.0.0:9090": false, "evil.example": false,
		"migrate-admin.evil.example": false, "localhost.evil.example": false, "": false, ":9090": false,
	} {
		if got := allowedHost(host, local, hosts); got != want {
			t.Errorf("allowedHost(%q) = %v, want %v", host, got, want)
		}
	}
	if allowedHost("10.0.0.7:9090", nil, nil) {
		t.Error("an address is allowed without being the listener's")
	}
}

func TestTokenEqual(t *testing.T) {
	for _, tt := range []struct {
		got, want string
		eq        bool
	}{{"s3cret", "s3cret", true}, {"s3cre", "s3cret", false}, {"s3cret ", "s3cret", false}, {"", "s3cret", false}, {"S3CRET", "s3cret", false}} {
		if tokenEqual(tt.got, tt.want) != tt.eq {
			t.Errorf("tokenEqual(%q, %q) = %v", tt.got, tt.want, !tt.eq)
		}
	}
}

func TestAdminRejectsMalformedRequests(t *testing.T) {
	_, srv := newAdminServer(t, "")
	for _, body := range []string{`{`, `{"target":"orders","mode":"shadow","extra":1}`, `{"mode":"shadow"}`, `{"target":"orders","mode":"fast"}`} {
		resp, err := http.Post(srv.URL+"/v1/transitions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var doc ErrorDocument
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(data, &doc) != nil || doc.Code != "bad-request" {
			t.Errorf("%s: %d %s", body, resp.StatusCode, data)
		}
	}
}

func TestMetricsExposeRouteSeries(t *testing.T) {
	ctx := context.Background()
	c, srv := newAdminServer(t, "")
	c.Route("GET /api/order").Observe(SideLegacy, 1_000_000, true)
	if _, err := c.Transition(ctx, TransitionRequest{Target: "GET /api/order", To: ModeShadow}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`migrate_requests_total{route="GET /api/order",side="legacy"} 1`,
		`migrate_errors_total{route="GET /api/order",side="legacy"} 1`,
		`migrate_request_duration_seconds_bucket{route="GET /api/order",side="legacy",le="0.001"} 1`,
		`migrate_route_mode{mode="shadow",route="GET /api/order",service="orders"} 1`,
		`migrate_route_mode{mode="legacy",route="GET /api/order",service="orders"} 0`,
	} {
		if !strings.Contains(string(data), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
