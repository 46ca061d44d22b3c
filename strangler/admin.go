package strangler

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// AdminTokenEnv names the environment variable holding the admin bearer token.
const AdminTokenEnv = "MIGRATE_ADMIN_TOKEN"

// APIVersion stamps every admin API document.
const APIVersion = "migrate/v1"

// CheckAdminAddress refuses a non-loopback admin address without a token:
// the admin API changes where production traffic goes.
func CheckAdminAddress(addr, token string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q is not host:port: %w", addr, err)
	}
	if token != "" || isLoopback(host) {
		return nil
	}
	return fmt.Errorf("admin address %s is reachable from other hosts; set %s to a secret bearer token, or bind the admin API to 127.0.0.1", addr, AdminTokenEnv)
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AdminOptions configure the admin API.
type AdminOptions struct {
	// Token, when set, is required as "Authorization: Bearer TOKEN" on every
	// endpoint except /healthz and /readyz.
	Token string
	// Ready reports readiness for /readyz; nil means ready.
	Ready func() bool
	// Hosts are the names, besides loopback names and IP addresses, accepted
	// in the Host header (config adminHosts).
	Hosts []string
}

// RoutesDocument is the body of GET /v1/routes and of `migrate status -o json`.
type RoutesDocument struct {
	APIVersion string        `json:"apiVersion"`
	Routes     []RouteStatus `json:"routes"`
}

// TransitionsDocument is the body of POST /v1/transitions and GET /v1/audit.
type TransitionsDocument struct {
	APIVersion  string       `json:"apiVersion"`
	Transitions []Transition `json:"transitions"`
	// Gate holds the gate verdicts of a refused or forced promotion.
	Gate map[string]GateResult `json:"gate,omitempty"`
}

// SamplesDocument is the body of GET /v1/samples.
type SamplesDocument struct {
	APIVersion string      `json:"apiVersion"`
	Samples    []SampleRow `json:"samples"`
}

// ErrorDocument is the body of every admin API error.
type ErrorDocument struct {
	APIVersion string `json:"apiVersion"`
	// Code is machine-readable: bad-request, unauthorized, unknown-target,
	// invalid-transition, conflict, gate-not-met, internal.
	Code     string                `json:"code"`
	Error    string                `json:"error"`
	Routes   []string              `json:"routes,omitempty"`
	Services []string              `json:"services,omitempty"`
	Gate     map[string]GateResult `json:"gate,omitempty"`
}

// NewAdmin builds the admin API handler:
//
//	GET  /v1/routes        every route with mode, weight and live stats
//	POST /v1/transitions   {"target": ROUTE|SERVICE, "mode": M, "weight": N, "reason": ..., "actor": ..., "force": bool}
//	GET  /v1/audit         ?route=R&service=S&limit=N, oldest first
//	GET  /v1/samples       ?route=R&limit=N&differences=true, newest first
//	GET  /metrics          Prometheus
//	GET  /healthz, /readyz
//
// Targets travel in JSON bodies or query parameters, never in the URL path,
// because route names contain spaces and slashes.
func NewAdmin(ctrl *Controller, opts AdminOptions) http.Handler {
	mux := http.NewServeMux()
	a := &admin{ctrl: ctrl}
	mux.HandleFunc("GET /v1/routes", a.routes)
	mux.HandleFunc("POST /v1/transitions", a.transition)
	mux.HandleFunc("GET /v1/audit", a.audit)
	mux.HandleFunc("GET /v1/samples", a.samples)
	mountGate(mux, ctrl) // gate, canary walks, Flagger and Argo endpoints (integrations.go)
	mux.Handle("GET /metrics", ctrl.Metrics().Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// A store outage degrades the proxy but does not make it unhealthy:
		// it serves from its route table, and restarting it would not help.
		store := ctrl.StoreHealth()
		status := "ok"
		if store.Status != "ok" {
			status = "degraded"
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": status, "store": store})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if opts.Ready != nil && !opts.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return hostGuard(tokenGuard(writeGuard(mux), opts.Token), opts.Hosts)
}

// tokenGuard requires "Authorization: Bearer TOKEN" (scheme in any case,
// token compared in constant time) on every endpoint but the probes.
func tokenGuard(next http.Handler, token string) http.Handler {
	if token == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
			scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
			ok := tokenEqual(strings.TrimSpace(got), token)
			if !strings.EqualFold(scheme, "Bearer") || !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="migrate"`)
				writeJSON(w, http.StatusUnauthorized, ErrorDocument{APIVersion: APIVersion, Code: "unauthorized",
					Error: "missing or wrong bearer token; send Authorization: Bearer $" + AdminTokenEnv})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// tokenEqual compares in time that depends on neither token: both are
// hashed first, since a plain constant-time compare still returns at once
// when the lengths differ, telling a prober the token's length.
func tokenEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// hostGuard keeps DNS-rebinding pages away from the admin API, which a
// browser on the operator's machine reaches even on loopback: a Host that is
// neither a loopback name, an IP address nor a configured name is refused.
func hostGuard(next http.Handler, hosts []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowedHost(r.Host, localIP(r), hosts) {
			writeJSON(w, http.StatusMisdirectedRequest, ErrorDocument{APIVersion: APIVersion, Code: "forbidden-host",
				Error: fmt.Sprintf("host %q is not a loopback name or address, this listener's address or one of the config's adminHosts", r.Host)})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeGuard refuses cross-site writes: a write whose Origin is another
// site, or whose body is not application/json (the kinds a page may send
// without a CORS preflight).
func writeGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
			writeJSON(w, http.StatusForbidden, ErrorDocument{APIVersion: APIVersion, Code: "forbidden-origin",
				Error: fmt.Sprintf("origin %q is not the admin API's own; writes from other sites are refused", origin)})
			return
		}
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, ErrorDocument{APIVersion: APIVersion, Code: "bad-request",
				Error: fmt.Sprintf("content type %q: writes take Content-Type: application/json", r.Header.Get("Content-Type"))})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowedHost reports whether a Host header names this machine in a way a
// DNS-rebinding page cannot: localhost, a loopback address, the address
// the request arrived on (a probe or scrape of the pod's IP), or a
// configured name or address.
func allowedHost(hostport string, local net.IP, hosts []string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || local != nil && ip.Equal(local)) {
		return true
	}
	for _, h := range hosts {
		if strings.EqualFold(host, strings.TrimSuffix(h, ".")) {
			return true
		}
	}
	return false
}

// localIP is the address the request's connection was accepted on.
func localIP(r *http.Request) net.IP {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(*net.TCPAddr); ok {
		return a.IP
	}
	return nil
}

// sameOrigin reports whether an Origin header is the admin API's own.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && strings.EqualFold(u.Host, host)
}

type admin struct{ ctrl *Controller }

func (a *admin) routes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, RoutesDocument{APIVersion: APIVersion, Routes: a.ctrl.Status()})
}

func (a *admin) transition(w http.ResponseWriter, r *http.Request) {
	var req TransitionRequest
	if !decodeRequest(w, r, &req, "transition request") {
		return
	}
	if req.Target == "" {
		badRequest(w, "target is required: a route name or a service name")
		return
	}
	ts, err := a.ctrl.Transition(r.Context(), req)
	writeDocument(w, TransitionsDocument{APIVersion: APIVersion, Transitions: nonNil(ts)}, err)
}

func (a *admin) audit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ts, err := a.ctrl.Audit(r.Context(), AuditQuery{Route: q.Get("route"), Service: q.Get("service"), Limit: queryLimit(q)})
	writeDocument(w, TransitionsDocument{APIVersion: APIVersion, Transitions: nonNil(ts)}, err)
}

func (a *admin) samples(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rows, err := a.ctrl.Store().Samples(r.Context(), q.Get("route"), queryLimit(q), q.Get("differences") == "true")
	writeDocument(w, SamplesDocument{APIVersion: APIVersion, Samples: nonNil(rows)}, err)
}

// queryLimit reads ?limit=N; anything unparsable means no limit (0).
func queryLimit(q url.Values) int {
	limit, _ := strconv.Atoi(q.Get("limit"))
	return limit
}

// nonNil makes an empty list encode as [] rather than null, so clients can
// iterate without a null check.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// decodeRequest reads a JSON body of at most 1MiB into v, refusing unknown
// fields so a misspelt key is reported instead of silently ignored. On
// failure it has already answered 400 and returns false.
func decodeRequest(w http.ResponseWriter, r *http.Request, v any, what string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		badRequest(w, "decode "+what+": "+err.Error())
		return false
	}
	return true
}

// badRequest answers 400 with a bad-request error document.
func badRequest(w http.ResponseWriter, msg string) {
	writeJSON(w, http.StatusBadRequest, ErrorDocument{APIVersion: APIVersion, Code: "bad-request", Error: msg})
}

// writeDocument answers 200 with doc, or with err's error document.
func writeDocument(w http.ResponseWriter, doc any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, doc)
}

func writeError(w http.ResponseWriter, err error) {
	doc := ErrorDocument{APIVersion: APIVersion, Code: "internal", Error: err.Error()}
	status := http.StatusInternalServerError
	var unknown *UnknownTargetError
	var invalid *InvalidTransitionError
	var gate *GateError
	var bad *RequestError
	var conflict *ConflictError
	switch {
	case errors.As(err, &conflict):
		status, doc.Code = http.StatusConflict, "conflict"
	case errors.As(err, &bad):
		status, doc.Code = http.StatusBadRequest, "bad-request"
	case errors.As(err, &unknown):
		status, doc.Code, doc.Routes, doc.Services = http.StatusNotFound, "unknown-target", unknown.Routes, unknown.Services
	case errors.As(err, &invalid):
		status, doc.Code = http.StatusConflict, "invalid-transition"
	case errors.As(err, &gate):
		status, doc.Code, doc.Gate = http.StatusUnprocessableEntity, "gate-not-met", gate.Results
	}
	writeJSON(w, status, doc)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ServeAdmin serves the admin API on ln until ctx ends, then shuts down
// gracefully. Check the address with CheckAdminAddress before listening.
func ServeAdmin(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
