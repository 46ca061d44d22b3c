package analyze

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Actuator bodies as Spring Boot 3.4 writes them (trimmed).
const (
	bootHealth = `{"status":"UP","components":{"db":{"status":"UP","details":{"database":"PostgreSQL","validationQuery":"isValid()"}},"diskSpace":{"status":"UP","details":{"total":1,"free":1,"threshold":1,"path":"/app/.","exists":true}},"ping":{"status":"UP"}}}`
	bootInfo   = `{"app":{"name":"order-service","description":"orders"},"build":{"artifact":"order-service","name":"order-service","version":"0.0.1-SNAPSHOT","group":"com.example"},"java":{"version":"17.0.13","vendor":{"name":"Eclipse Adoptium"}}}`
	bootEnv    = `{"activeProfiles":[],"propertySources":[{"name":"server.ports","properties":{"local.server.port":{"value":"******"}}},{"name":"systemEnvironment","properties":{"INVENTORY_URL":{"value":"******","origin":"System Environment Property \"INVENTORY_URL\""},"SPRING_DATASOURCE_PASSWORD":{"value":"******"}}},{"name":"Config resource 'class path resource [application.properties]' via location 'optional:classpath:/'","properties":{"spring.application.name":{"value":"******"},"spring.datasource.url":{"value":"******"},"nats.url":{"value":"******"}}}]}`
	bootMaps   = `{"contexts":{"order-service":{"mappings":{"dispatcherServlets":{"dispatcherServlet":[
{"handler":"com.example.OrderController#placeOrder(OrderRequest)","predicate":"{POST [/api/order], consumes [application/json]}","details":{"handlerMethod":{"className":"com.example.OrderController","name":"placeOrder"},"requestMappingConditions":{"consumes":[{"mediaType":"application/json","negated":false}],"headers":[],"methods":["POST"],"params":[],"patterns":["/api/order"],"produces":[]}}},
{"handler":"com.example.OrderController#getOrders()","predicate":"{GET [/api/order]}","details":{"handlerMethod":{"className":"com.example.OrderController","name":"getOrders"},"requestMappingConditions":{"consumes":[],"headers":[],"methods":["GET"],"params":[],"patterns":["/api/order"],"produces":[]}}},
{"handler":"Actuator web endpoint 'health'","predicate":"{GET [/actuator/health], produces [application/vnd.spring-boot.actuator.v3+json || application/json]}","details":{"handlerMethod":{"className":"x","name":"handle"},"requestMappingConditions":{"methods":["GET"],"patterns":["/actuator/health"]}}},
{"handler":"org.springframework.boot.autoconfigure.web.servlet.error.BasicErrorController#error(HttpServletRequest)","predicate":"{ [/error]}","details":{"handlerMethod":{"className":"x","name":"error"},"requestMappingConditions":{"methods":[],"patterns":["/error"]}}},
{"handler":"com.example.AdminController#flush()","predicate":"{DELETE [/internal/cache]}"},
{"handler":"ResourceHttpRequestHandler [classpath [META-INF/resources/]]","predicate":"/**"}
]}}}}}`
)

// springService serves what a Spring Boot service with springdoc and
// actuator exposes; endpoints not in bodies answer 404 like Spring does.
func springService(t *testing.T, bodies map[string]string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.URL.Path]
		if !ok {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"timestamp":"2024-09-10T10:15:30.123+00:00","status":404,"error":"Not Found","path":"` + r.URL.Path + `"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProbeServiceSpringBoot(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("testdata", "openapi", "oas30-petstore-expanded.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	srv := springService(t, map[string]string{
		"/v3/api-docs":       string(doc),
		"/actuator/health":   bootHealth,
		"/actuator/info":     bootInfo,
		"/actuator/env":      bootEnv,
		"/actuator/mappings": bootMaps,
	})
	s, err := ProbeService(context.Background(), srv.URL+"/")
	if err != nil {
		t.Fatalf("ProbeService: %v", err)
	}
	if s.Name != "order-service" {
		t.Errorf("name = %q, want order-service (from info app.name)", s.Name)
	}
	if s.API == nil || len(s.API.Operations) != 4 || s.API.Source != srv.URL+"/v3/api-docs" {
		t.Fatalf("api = %+v", s.API)
	}
	rt := s.Runtime
	if rt == nil || rt.Status != "UP" || rt.Source != srv.URL {
		t.Fatalf("runtime = %+v", rt)
	}
	if want := []string{"db", "diskSpace", "ping"}; !slices.Equal(rt.Health, want) {
		t.Errorf("health = %v, want %v", rt.Health, want)
	}
	if want := []string{"DELETE /internal/cache", "GET /api/order", "POST /api/order"}; !slices.Equal(rt.Routes, want) {
		t.Errorf("routes = %v, want %v", rt.Routes, want)
	}
	if want := []string{"INVENTORY_URL", "SPRING_DATASOURCE_PASSWORD", "local.server.port", "nats.url", "spring.application.name", "spring.datasource.url"}; !slices.Equal(rt.Env, want) {
		t.Errorf("env = %v, want %v", rt.Env, want)
	}
	if rt.Info["build.version"] != "0.0.1-SNAPSHOT" || rt.Info["java.vendor.name"] != "Eclipse Adoptium" {
		t.Errorf("info = %v", rt.Info)
	}
	if len(rt.Absent) != 0 {
		t.Errorf("absent = %v, want none", rt.Absent)
	}
	for _, want := range []string{"probe:" + srv.URL, "openapi:" + srv.URL + "/v3/api-docs", "actuator:" + srv.URL + "/actuator/health"} {
		if !slices.Contains(s.Sources, want) {
			t.Errorf("sources %v lack %q", s.Sources, want)
		}
	}

	Assess(s)
	ids := findingIDs(s)
	for _, want := range []string{"http-rest", "relational-jpa", "messaging-nats", "outbound-http", "observability"} {
		if !slices.Contains(ids, want) {
			t.Errorf("findings %v lack %s", ids, want)
		}
	}
}

// TestProbeServiceNeverStoresMaskedValues makes sure no env value, masked or
// not, reaches the Service.
func TestProbeServiceNeverStoresMaskedValues(t *testing.T) {
	env := `{"propertySources":[{"name":"systemEnvironment","properties":{"DB_PASSWORD":{"value":"hunter2-plain"},"API_TOKEN":{"value":"******"},"spring.application.name":{"value":"billing"}}}]}`
	srv := springService(t, map[string]string{"/actuator/env": env, "/actuator/info": `{"secret":"******"}`})
	s, err := ProbeService(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "billing" {
		t.Errorf("name = %q, want billing (unmasked spring.application.name)", s.Name)
	}
	if strings.Contains(dumpJSON(t, s), "hunter2") || strings.Contains(dumpJSON(t, s), "******") {
		t.Errorf("a value leaked into the service: %s", dumpJSON(t, s))
	}
}

func TestProbeServiceMissingEndpoints(t *testing.T) {
	srv := springService(t, map[string]string{"/actuator/health": `{"status":"UP"}`})
	s, err := ProbeService(context.Background(), srv.URL)
	if err != nil {
		t.Fatalf("ProbeService: %v", err)
	}
	if s.API != nil {
		t.Errorf("api = %+v, want none", s.API)
	}
	wantAbsent := []string{"/v3/api-docs (404 Not Found)", "/v2/api-docs (404 Not Found)", "/actuator/info (404 Not Found)", "/actuator/mappings (404 Not Found)", "/actuator/env (404 Not Found)"}
	if !slices.Equal(s.Runtime.Absent, wantAbsent) {
		t.Errorf("absent = %v, want %v", s.Runtime.Absent, wantAbsent)
	}
	// A loopback address names the service by host:port, which stays unique.
	if !strings.HasPrefix(s.Name, "127.0.0.1:") {
		t.Errorf("name = %q, want host:port", s.Name)
	}
}

func TestProbeServiceFailures(t *testing.T) {
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	tests := []struct {
		name, url, want string
		timeout         time.Duration
	}{
		{"not a URL", "order-service", "not an http(s) URL", time.Second},
		{"nothing listening", deadURL, "nothing answered", 5 * time.Second},
		{"hangs past the deadline", slow.URL, "context deadline exceeded", 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			_, err := ProbeService(ctx, tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.url) {
				t.Errorf("err = %v, want one naming %s and saying %q", err, tt.url, tt.want)
			}
		})
	}
}

func TestProbeServiceSizeCap(t *testing.T) {
	big := `{"status":"UP","components":{"x":"` + strings.Repeat("a", MaxProbeBytes) + `"}}`
	srv := springService(t, map[string]string{"/actuator/health": big, "/actuator/info": `{"app":{"name":"big"}}`})
	s, err := ProbeService(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if s.Runtime.Health != nil || !slices.Contains(s.Runtime.Absent, "/actuator/health (response larger than the probe's cap)") {
		t.Errorf("oversized health was used: health=%v absent=%v", s.Runtime.Health, s.Runtime.Absent)
	}
}

func TestParsePredicate(t *testing.T) {
	tests := map[string]string{
		"{GET [/api/order]}": "GET /api/order",
		"{POST [/api/order], consumes [application/json]}": "POST /api/order",
		"{GET /api/product}":     "GET /api/product",
		"{GET || HEAD [/a, /b]}": "GET /a,HEAD /a,GET /b,HEAD /b",
		"{ [/error]}":            "",
		"{PUT [/x/{id}], produces [application/json]}, extra": "PUT /x/{id}",
	}
	for pred, want := range tests {
		got := routesOfMapping(map[string]any{"predicate": pred})
		slices.Sort(got)
		w := strings.Split(want, ",")
		if want == "" {
			w = nil
		}
		slices.Sort(w)
		if !slices.Equal(got, w) {
			t.Errorf("%s → %v, want %v", pred, got, w)
		}
	}
}
