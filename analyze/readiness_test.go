package analyze

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"
)

func findingIDs(s *Service) []string {
	var ids []string
	for _, f := range s.Findings {
		ids = append(ids, f.ID)
	}
	return ids
}

func dumpJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func deps(artifacts ...string) []Dependency {
	var out []Dependency
	for _, a := range artifacts {
		out = append(out, Dependency{Group: "g", Artifact: a, Version: "1.0"})
	}
	return out
}

// The fixture fleet's services, as the image and cluster readers describe them.
var (
	productService = Service{Name: "product-service",
		Image:      &Image{Dependencies: deps("spring-boot-starter-web", "spring-webmvc", "spring-data-redis", "lettuce-core", "spring-boot-starter-actuator")},
		Deployment: &Deployment{Env: []string{"SPRING_DATA_REDIS_HOST"}, DependsOn: []string{"redis"}}}
	inventoryService = Service{Name: "inventory-service",
		Image:      &Image{Dependencies: deps("spring-boot-starter-web", "spring-data-jpa", "hibernate-core", "postgresql", "HikariCP")},
		Deployment: &Deployment{Env: []string{"SPRING_DATASOURCE_URL", "SPRING_DATASOURCE_PASSWORD"}, DependsOn: []string{"postgres"}}}
	orderService = Service{Name: "order-service",
		Image:      &Image{Dependencies: deps("spring-boot-starter-web", "hibernate-core", "postgresql", "jnats", "resilience4j-circuitbreaker")},
		Deployment: &Deployment{Env: []string{"INVENTORY_URL", "SPRING_DATASOURCE_URL", "NATS_URL"}, DependsOn: []string{"inventory-service", "postgres", "nats"}}}
	notificationService = Service{Name: "notification-service",
		Image:      &Image{Dependencies: deps("spring-boot-starter", "spring-kafka", "kafka-clients")},
		Deployment: &Deployment{Env: []string{"SPRING_KAFKA_BOOTSTRAP_SERVERS"}, DependsOn: []string{"kafka", "order-service"}}}
)

func TestAssess(t *testing.T) {
	tests := []struct {
		name      string
		service   Service
		findings  []string // exactly these rule ids, in table order
		level     string
		spin      string
		wasmcloud string
		score     int
	}{
		{
			name: "OpenAPI document with a broken $ref",
			service: Service{Name: "a", API: &API{Source: "a.yaml", Operations: []Operation{{Method: "GET", Path: "/a"}},
				Problems: []Problem{{Location: "paths./a.get", Message: `$ref "x.json": cannot read x.json: no such file`, Kind: ProblemBrokenRef}}}},
			findings: []string{"http-rest", "openapi-broken-ref"}, level: LevelReadyWithConditions, spin: LevelReadyWithConditions, wasmcloud: LevelReadyWithConditions, score: 84,
		},
		{
			name:     "plain REST from OpenAPI only",
			service:  Service{Name: "a", API: &API{Operations: []Operation{{Method: "GET", Path: "/a"}}}},
			findings: []string{"http-rest"}, level: LevelReady, spin: LevelReady, wasmcloud: LevelReady, score: 96,
		},
		{
			name:     "redis key-value",
			service:  productService,
			findings: []string{"http-rest", "keyvalue-redis", "observability"}, level: LevelReadyWithConditions,
			spin: LevelReadyWithConditions, wasmcloud: LevelReadyWithConditions, score: 80,
		},
		{
			name:     "JPA",
			service:  inventoryService,
			findings: []string{"http-rest", "relational-jpa"}, level: LevelReadyWithConditions,
			spin: LevelReadyWithConditions, wasmcloud: LevelReadyWithConditions, score: 64,
		},
		{
			name:     "JPA, NATS, outbound HTTP and a circuit breaker",
			service:  orderService,
			findings: []string{"http-rest", "outbound-http", "relational-jpa", "messaging-nats", "resilience"}, level: LevelReadyWithConditions,
			spin: LevelReadyWithConditions, wasmcloud: LevelReadyWithConditions, score: 40,
		},
		{
			name:     "Kafka consumer is a blocker, worse on Spin",
			service:  notificationService,
			findings: []string{"messaging-kafka"}, level: LevelNotReady,
			spin: LevelNotReady, wasmcloud: LevelReadyWithConditions, score: 48,
		},
		{
			name: "health components and env reveal backing services without an image",
			service: Service{Name: "live", Runtime: &Runtime{Health: []string{"db", "redis", "rabbit", "ping"},
				Env: []string{"spring.rabbitmq.host"}, Absent: []string{"/actuator/mappings (404 Not Found)"}}},
			findings: []string{"keyvalue-redis", "relational-jpa", "messaging-amqp", "observability"}, level: LevelNotReady,
			spin: LevelNotReady, wasmcloud: LevelNotReady, score: 0,
		},
		{
			name:     "websocket from a route",
			service:  Service{Name: "ws", Runtime: &Runtime{Routes: []string{"GET /chat/ws"}}},
			findings: []string{"http-rest", "websocket"}, level: LevelNotReady,
			spin: LevelNotReady, wasmcloud: LevelNotReady, score: 64,
		},
		{
			name:     "a message consumer answers no requests",
			service:  Service{Name: "c", API: &API{Source: "http://c/v3/api-docs", Operations: []Operation{}}, Runtime: &Runtime{Health: []string{"ping"}}},
			findings: []string{"no-http-surface", "observability"}, level: LevelNotReady,
			spin: LevelNotReady, wasmcloud: LevelReadyWithConditions, score: 76,
		},
		{
			name:     "native code",
			service:  Service{Name: "n", Image: &Image{Dependencies: deps("rocksdbjni")}},
			findings: []string{"native-code"}, level: LevelNotReady, spin: LevelNotReady, wasmcloud: LevelNotReady, score: 48,
		},
		{
			name:     "an image with nothing notable is ready",
			service:  Service{Name: "tiny", Image: &Image{Dependencies: deps("slf4j-api")}},
			findings: nil, level: LevelReady, spin: LevelReady, wasmcloud: LevelReady, score: 100,
		},
		{
			name: "a stock broker is a backing service, whatever its env says",
			service: Service{Name: "kafka", Deployment: &Deployment{Image: "docker.io/apache/kafka:3.8.1@sha256:abc",
				Env: []string{"KAFKA_NODE_ID", "KAFKA_LISTENERS"}}},
			findings: []string{"backing-service"}, level: LevelUnknown, spin: LevelUnknown, wasmcloud: LevelUnknown, score: 0,
		},
		{
			name: "a pulled stock image is still a backing service",
			service: Service{Name: "redis", Image: &Image{BuildTool: "unknown"},
				Deployment: &Deployment{Image: "redis:7.4-alpine"}},
			findings: []string{"backing-service"}, level: LevelUnknown, spin: LevelUnknown, wasmcloud: LevelUnknown, score: 0,
		},
		{
			name:     "an application built on a postgres-named image is still assessed",
			service:  Service{Name: "pg-api", Deployment: &Deployment{Image: "postgres-api:1"}, API: &API{Operations: []Operation{{Method: "GET", Path: "/"}}}},
			findings: []string{"http-rest"}, level: LevelReady, spin: LevelReady, wasmcloud: LevelReady, score: 96,
		},
		{
			name:     "no evidence at all",
			service:  Service{Name: "ghost"},
			findings: nil, level: LevelUnknown, spin: LevelUnknown, wasmcloud: LevelUnknown, score: 0,
		},
		{
			name:     "a bare manifest says nothing about the inside",
			service:  Service{Name: "bare", Deployment: &Deployment{Kind: "Deployment", Replicas: 2}},
			findings: nil, level: LevelUnknown, spin: LevelUnknown, wasmcloud: LevelUnknown, score: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.service
			Assess(&s)
			if got := findingIDs(&s); !slices.Equal(got, tt.findings) {
				t.Errorf("findings = %v, want %v", got, tt.findings)
			}
			r := s.Readiness
			if r.Level != tt.level || r.Score != tt.score || r.Targets["spin"] != tt.spin || r.Targets["wasmcloud"] != tt.wasmcloud {
				t.Errorf("readiness = %+v, want level %s score %d spin %s wasmcloud %s", r, tt.level, tt.score, tt.spin, tt.wasmcloud)
			}
			for _, f := range s.Findings {
				if f.Evidence == "" || f.Title == "" || f.Effort <= 0 {
					t.Errorf("finding %+v lacks evidence, title or effort", f)
				}
			}
		})
	}
}

func TestAssessEvidenceNamesTheFacts(t *testing.T) {
	s := orderService
	s.Runtime = &Runtime{Health: []string{"db"}}
	Assess(&s)
	var jpa Finding
	for _, f := range s.Findings {
		if f.ID == "relational-jpa" {
			jpa = f
		}
	}
	for _, want := range []string{"hibernate-core", "postgresql", "health component db", "SPRING_DATASOURCE_URL", "depends on postgres"} {
		if !strings.Contains(jpa.Evidence, want) {
			t.Errorf("evidence %q lacks %q", jpa.Evidence, want)
		}
	}
	// INVENTORY_URL is a call to another service; the datasource URL is not.
	for _, f := range s.Findings {
		if f.ID == "outbound-http" && (!strings.Contains(f.Evidence, "INVENTORY_URL") || strings.Contains(f.Evidence, "DATASOURCE") || strings.Contains(f.Evidence, "NATS")) {
			t.Errorf("outbound-http evidence = %q", f.Evidence)
		}
	}
}

// TestRulesTable keeps the table well-formed: unique ids, known categories,
// story-point efforts, a rationale and at least one trigger, valid globs.
func TestRulesTable(t *testing.T) {
	ids := map[string]bool{}
	points := []int{1, 2, 3, 5, 8, 13}
	for _, r := range Rules {
		if ids[r.ID] {
			t.Errorf("duplicate rule id %s", r.ID)
		}
		ids[r.ID] = true
		if !slices.Contains([]string{CategoryMandatory, CategoryPotential, CategoryOptional}, r.Category) {
			t.Errorf("%s: category %q", r.ID, r.Category)
		}
		if !slices.Contains(points, r.Effort) {
			t.Errorf("%s: effort %d is not a story point", r.ID, r.Effort)
		}
		if r.Title == "" || len(r.Rationale) < 30 {
			t.Errorf("%s: needs a title and a rationale", r.ID)
		}
		tr := r.Trigger
		if len(tr.Artifacts)+len(tr.Health)+len(tr.Env)+len(tr.DependsOn)+len(tr.Images) == 0 && tr.API == nil {
			t.Errorf("%s: nothing triggers it", r.ID)
		}
		for _, p := range slices.Concat(tr.Artifacts, tr.Health, tr.Env, tr.EnvExcept, tr.DependsOn, tr.Images) {
			if _, err := path.Match(p, ""); err != nil {
				t.Errorf("%s: bad pattern %q: %v", r.ID, p, err)
			}
		}
		// A blocker must be unsupported somewhere, or it is not a blocker.
		if r.Category == CategoryMandatory && r.Spin != Unsupported && r.WasmCloud != Unsupported {
			t.Errorf("%s: mandatory but supported on every target", r.ID)
		}
	}
}

func TestIsBackingImage(t *testing.T) {
	for ref, want := range map[string]bool{
		"postgres:16.6":                             true,
		"docker.io/library/redis:7.4-alpine":        true,
		"apache/kafka:3.8.1":                        true,
		"nats:2.10.24-alpine@sha256:abc":            true,
		"registry.example.com/shop/order-service:1": false,
		"": false,
	} {
		if got := IsBackingImage(ref); got != want {
			t.Errorf("IsBackingImage(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestNormaliseEnvName(t *testing.T) {
	for in, want := range map[string]string{
		"spring.datasource.url":          "SPRING_DATASOURCE_URL",
		"spring.data.redis.host":         "SPRING_DATA_REDIS_HOST",
		"resilience4j.circuitbreaker.x":  "RESILIENCE4J_CIRCUITBREAKER_X",
		"spring.kafka.bootstrap-servers": "SPRING_KAFKA_BOOTSTRAP_SERVERS",
		"INVENTORY_URL":                  "INVENTORY_URL",
		"my.list[0].name":                "MY_LIST_0_NAME",
	} {
		if got := normaliseEnvName(in); got != want {
			t.Errorf("normaliseEnvName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMigrationOrder(t *testing.T) {
	svc := func(name string, score int, dependsOn ...string) Service {
		return Service{Name: name, Readiness: Readiness{Score: score}, Deployment: &Deployment{DependsOn: dependsOn}}
	}
	tests := []struct {
		name     string
		services []Service
		want     []string
	}{
		{
			name: "fixture fleet: leaves first, backing services ignored",
			services: []Service{
				svc("order-service", 40, "inventory-service", "postgres", "nats"),
				svc("notification-service", 48, "order-service", "kafka"),
				svc("product-service", 80, "redis"),
				svc("inventory-service", 64, "postgres"),
			},
			want: []string{"product-service", "inventory-service", "order-service", "notification-service"},
		},
		{
			name:     "ties by score then name",
			services: []Service{svc("b", 50), svc("a", 50), svc("c", 90)},
			want:     []string{"c", "a", "b"},
		},
		{
			name:     "a cycle is cut deterministically",
			services: []Service{svc("x", 10, "y"), svc("y", 20, "z"), svc("z", 30, "x"), svc("leaf", 0)},
			want:     []string{"leaf", "z", "y", "x"},
		},
		{
			name:     "self dependency and duplicates",
			services: []Service{svc("a", 1, "a"), svc("a", 99), {Name: "b"}},
			want:     []string{"a", "b"},
		},
		{
			name: "backing services are not migrated",
			services: []Service{svc("app", 50, "db"),
				{Name: "db", Findings: []Finding{{ID: BackingServiceRule}}, Deployment: &Deployment{Image: "postgres:16"}}},
			want: []string{"app"},
		},
		{name: "empty", services: nil, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MigrationOrder(tt.services)
			if !slices.Equal(got, tt.want) {
				t.Errorf("MigrationOrder = %v, want %v", got, tt.want)
			}
			// Same input in reverse gives the same order.
			rev := slices.Clone(tt.services)
			slices.Reverse(rev)
			if tt.name != "self dependency and duplicates" {
				if again := MigrationOrder(rev); !slices.Equal(again, got) {
					t.Errorf("order depends on input order: %v vs %v", again, got)
				}
			}
		})
	}
}

// ExampleAssess shows the readiness of a service backed by Redis.
func ExampleAssess() {
	s := Service{Name: "product-service", Image: &Image{Dependencies: []Dependency{
		{Artifact: "spring-boot-starter-web"}, {Artifact: "lettuce-core"},
	}}}
	Assess(&s)
	for _, f := range s.Findings {
		fmt.Printf("%s (%s, %d): %s\n", f.ID, f.Category, f.Effort, f.Evidence)
	}
	fmt.Println(s.Readiness.Score, s.Readiness.Level, s.Readiness.Targets["spin"], s.Readiness.Targets["wasmcloud"])
	// Output:
	// http-rest (potential, 1): dependency spring-boot-starter-web
	// keyvalue-redis (potential, 3): dependency lettuce-core
	// 84 ready-with-conditions ready-with-conditions ready-with-conditions
}

// ExampleMigrationOrder orders the fixture fleet: order-service calls
// inventory-service, so inventory-service moves first.
func ExampleMigrationOrder() {
	fleet := []Service{
		{Name: "order-service", Readiness: Readiness{Score: 40}, Deployment: &Deployment{DependsOn: []string{"inventory-service", "postgres"}}},
		{Name: "inventory-service", Readiness: Readiness{Score: 64}, Deployment: &Deployment{DependsOn: []string{"postgres"}}},
		{Name: "product-service", Readiness: Readiness{Score: 80}},
	}
	fmt.Println(MigrationOrder(fleet))
	// Output: [product-service inventory-service order-service]
}
