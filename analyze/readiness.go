package analyze

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
)

// Finding categories, after the usual migration-assessment vocabulary.
const (
	// CategoryMandatory: the service cannot run as a component until this is
	// redesigned; there is no drop-in platform capability.
	CategoryMandatory = "mandatory"
	// CategoryPotential: a platform capability exists, but the code using it
	// must be ported to that capability's interface.
	CategoryPotential = "potential"
	// CategoryOptional: the platform already covers it or it can be dropped;
	// worth doing, never blocking.
	CategoryOptional = "optional"
)

// Readiness levels, overall and per target.
const (
	LevelReady               = "ready"
	LevelReadyWithConditions = "ready-with-conditions"
	LevelNotReady            = "not-ready"
	LevelUnknown             = "unknown"
)

// Targets are the Wasm platforms readiness is assessed against.
var Targets = []string{"spin", "wasmcloud"}

// Support says how a target platform covers what a rule detected.
type Support int

const (
	// Native: the platform offers the capability; porting is mechanical.
	Native Support = iota
	// Adapt: possible with a platform interface that differs from what the
	// Java code uses (a provider, an outbound API, a bridge).
	Adapt
	// Unsupported: no capability on this platform; a redesign is needed.
	Unsupported
)

// Trigger says what evidence makes a rule match. Patterns are path.Match
// globs, compared case-insensitively.
type Trigger struct {
	// Artifacts match dependency artifact ids found in the image
	// ("hibernate-core", "spring-boot-starter-data-*").
	Artifacts []string
	// Health match actuator health component names ("db", "redis").
	Health []string
	// Env match environment variable names from manifests and property names
	// from /actuator/env, both normalised to upper snake case
	// (spring.datasource.url → SPRING_DATASOURCE_URL).
	Env []string
	// EnvExcept removes env names that Env would otherwise match.
	EnvExcept []string
	// DependsOn match names of services this one depends on (backing
	// services from compose depends_on or manifests: "postgres", "redis").
	DependsOn []string
	// Images match the repository name (last path element, no tag) of the
	// image a deployment runs ("postgres", "*kafka*").
	Images []string
	// API is a trait of the service's HTTP surface; it returns the evidence
	// text, or "" when the trait is absent.
	API func(*Service) string
}

// Rule maps one detected technology to what it means on Spin and wasmCloud.
type Rule struct {
	ID       string // stable, used in Finding.ID and by reports
	Title    string // what was detected, in a few words
	Category string // CategoryMandatory, CategoryPotential or CategoryOptional
	// Effort is in story points (1, 2, 3, 5, 8, 13): how much porting work
	// the finding means. Each point costs scorePerPoint readiness points.
	Effort    int
	Spin      Support // how Spin covers it
	WasmCloud Support // how wasmCloud covers it
	Rationale string  // why, and what the port looks like
	Trigger   Trigger // the evidence that makes the rule match
}

// BackingServiceRule is the id of the rule that marks a workload as a stock
// database, cache or broker. Such a service gets no other finding, an
// unknown readiness, and no place in the migration order.
const BackingServiceRule = "backing-service"

// scorePerPoint converts effort into readiness score: 25 points of effort
// (a JPA service with messaging and a cache) leaves nothing.
const scorePerPoint = 4

// Rules is the readiness table: every finding Assess can produce. Read it
// top to bottom; each row is one technology, its category and effort, how
// Spin and wasmCloud cover it, and the evidence that triggers it.
var Rules = []Rule{
	{
		ID: BackingServiceRule, Title: "Backing service (database, cache, broker), not an application", Category: CategoryOptional, Effort: 1,
		Spin: Native, WasmCloud: Native,
		Rationale: "the workload runs a stock database, cache or broker image; it is not migrated, the components reach it (or a managed equivalent) through the platform's outbound capabilities",
		Trigger: Trigger{Images: []string{"postgres*", "postgis*", "mysql*", "mariadb*", "redis*", "valkey*", "nats*", "*kafka*", "redpanda*", "rabbitmq*", "zookeeper*",
			"mongo*", "elasticsearch*", "opensearch*", "memcached*", "cassandra*", "minio*", "keycloak*", "jaeger*", "zipkin*", "otel*", "prometheus*", "grafana*"}},
	},
	{
		ID: "http-rest", Title: "HTTP REST endpoints", Category: CategoryPotential, Effort: 1,
		Spin: Native, WasmCloud: Native,
		Rationale: "request/response handlers map one to one onto wasi:http incoming-handler components; the strangler proxy moves them route by route",
		Trigger: Trigger{
			Artifacts: []string{"spring-webmvc", "spring-boot-starter-web", "jersey-server", "spring-boot-starter-jersey"},
			API:       hasOperations,
		},
	},
	{
		ID: "openapi-broken-ref", Title: "OpenAPI document has $refs that lead nowhere", Category: CategoryPotential, Effort: 3,
		Spin: Native, WasmCloud: Native,
		Rationale: "an operation whose request or response schema cannot be resolved has no known contract: routes planned from it cannot be checked, so fix the document (the problems list each broken $ref) before planning",
		Trigger:   Trigger{API: brokenRefs},
	},
	{
		ID: "reactive-webflux", Title: "Reactive stack (WebFlux / Reactor)", Category: CategoryPotential, Effort: 3,
		Spin: Adapt, WasmCloud: Adapt,
		Rationale: "Reactor's event loop and schedulers have no equivalent in a single-threaded component; handlers become plain request/response functions",
		Trigger:   Trigger{Artifacts: []string{"spring-webflux", "spring-boot-starter-webflux", "reactor-netty*"}},
	},
	{
		ID: "outbound-http", Title: "Calls other services over HTTP", Category: CategoryPotential, Effort: 2,
		Spin: Native, WasmCloud: Native,
		Rationale: "RestTemplate/WebClient/Feign calls become wasi:http outgoing-handler requests; Spin needs allowed_outbound_hosts, wasmCloud a link to the HTTP client provider",
		Trigger: Trigger{
			Artifacts: []string{"spring-cloud-starter-openfeign", "feign-core", "okhttp", "httpclient5", "httpclient"},
			Env:       []string{"*_URL", "*_URI", "*_BASE_URL", "*_ENDPOINT"},
			EnvExcept: []string{"*DATASOURCE*", "*REDIS*", "*KAFKA*", "*RABBIT*", "*AMQP*", "*NATS*", "*JDBC*", "*DATABASE*", "*MONGO*", "*ZIPKIN*", "*OTEL*", "*TRACING*", "*EUREKA*", "*CONFIG_IMPORT*", "*R2DBC*", "*FLYWAY*", "*LIQUIBASE*"},
		},
	},
	{
		ID: "keyvalue-redis", Title: "Redis / key-value store", Category: CategoryPotential, Effort: 3,
		Spin: Adapt, WasmCloud: Adapt,
		Rationale: "Spring Data Redis repositories are rewritten against Spin key-value (or outbound Redis) or wasi:keyvalue with wasmCloud's Redis provider; @RedisHash entities become explicit keys",
		Trigger: Trigger{
			Artifacts: []string{"lettuce-core", "jedis", "spring-data-redis", "spring-boot-starter-data-redis*", "redisson*"},
			Health:    []string{"redis"},
			Env:       []string{"SPRING_DATA_REDIS_*", "SPRING_REDIS_*", "REDIS_*"},
			DependsOn: []string{"redis*", "valkey*"},
		},
	},
	{
		ID: "relational-jpa", Title: "Relational database via JPA / Hibernate / JDBC", Category: CategoryPotential, Effort: 8,
		Spin: Adapt, WasmCloud: Adapt,
		Rationale: "there is no JDBC in a component: entities and repositories are rewritten as SQL over Spin's outbound PostgreSQL/MySQL (or SQLite) or wasmCloud's sqldb-postgres provider; transactions and lazy loading must be made explicit",
		Trigger: Trigger{
			Artifacts: []string{"hibernate-core", "spring-data-jpa", "spring-boot-starter-data-jpa", "spring-jdbc", "spring-boot-starter-jdbc", "hikaricp", "postgresql", "mysql-connector*", "mariadb-java-client", "ojdbc*", "mssql-jdbc", "jakarta.persistence-api"},
			Health:    []string{"db"},
			Env:       []string{"SPRING_DATASOURCE_*", "SPRING_JPA_*", "JDBC_*"},
			DependsOn: []string{"postgres*", "mysql*", "mariadb*", "*-db", "db"},
		},
	},
	{
		ID: "schema-migrations", Title: "Database schema migrations at start-up (Flyway / Liquibase)", Category: CategoryOptional, Effort: 2,
		Spin: Adapt, WasmCloud: Adapt,
		Rationale: "components have no start-up phase to migrate a schema in; run the migrations as a separate job before deploying",
		Trigger: Trigger{
			Artifacts: []string{"flyway-core", "liquibase-core"},
			Env:       []string{"SPRING_FLYWAY_*", "SPRING_LIQUIBASE_*"},
		},
	},
	{
		ID: "messaging-kafka", Title: "Kafka consumer or producer", Category: CategoryMandatory, Effort: 13,
		Spin: Unsupported, WasmCloud: Adapt,
		Rationale: "a listener container is a long-lived polling loop with consumer-group state; Spin has no Kafka trigger, and on wasmCloud the flow must be redesigned as a messaging handler behind the Kafka provider",
		Trigger: Trigger{
			Artifacts: []string{"spring-kafka", "kafka-clients", "kafka-streams", "spring-cloud-stream-binder-kafka*"},
			Health:    []string{"kafka", "binders"},
			Env:       []string{"SPRING_KAFKA_*", "KAFKA_*"},
			DependsOn: []string{"kafka*", "zookeeper*", "redpanda*"},
		},
	},
	{
		ID: "messaging-amqp", Title: "AMQP / RabbitMQ listener", Category: CategoryMandatory, Effort: 13,
		Spin: Unsupported, WasmCloud: Unsupported,
		Rationale: "@RabbitListener containers hold connections and threads; neither platform has an AMQP trigger, so the consumer must move to a supported broker or stay on the JVM",
		Trigger: Trigger{
			Artifacts: []string{"spring-rabbit", "spring-boot-starter-amqp", "amqp-client", "spring-amqp"},
			Health:    []string{"rabbit"},
			Env:       []string{"SPRING_RABBITMQ_*", "RABBITMQ_*", "AMQP_*"},
			DependsOn: []string{"rabbitmq*", "rabbit*"},
		},
	},
	{
		ID: "messaging-nats", Title: "NATS messaging", Category: CategoryPotential, Effort: 3,
		Spin: Adapt, WasmCloud: Native,
		Rationale: "wasmCloud speaks NATS natively (wasmcloud:messaging); Spin has no NATS client, so publishing goes through an HTTP bridge or Spin's MQTT/Redis outbound instead",
		Trigger: Trigger{
			Artifacts: []string{"jnats", "nats-spring*", "spring-nats*"},
			Health:    []string{"nats"},
			Env:       []string{"NATS_*", "SPRING_NATS_*"},
			DependsOn: []string{"nats*"},
		},
	},
	{
		ID: "no-http-surface", Title: "No HTTP endpoints: driven by messages or schedules", Category: CategoryMandatory, Effort: 5,
		Spin: Unsupported, WasmCloud: Adapt,
		Rationale: "the service answers no requests, so it is a consumer or a scheduled worker; route-by-route shadowing cannot cover it, Spin has no NATS or Kafka trigger, and on wasmCloud it becomes a messaging handler",
		Trigger:   Trigger{API: noHTTPSurface},
	},
	{
		ID: "threads-async", Title: "Background threads, @Async or scheduled work", Category: CategoryMandatory, Effort: 8,
		Spin: Unsupported, WasmCloud: Unsupported,
		Rationale: "a component runs only while it handles a request and cannot start threads; background work moves to a scheduler trigger (Spin cron) or a separate worker. @Async itself is not visible in jar names, so this row relies on the libraries and properties that configure it",
		Trigger: Trigger{
			Artifacts: []string{"quartz", "spring-boot-starter-quartz", "shedlock-*", "spring-batch-core", "spring-boot-starter-batch"},
			Env:       []string{"SPRING_TASK_EXECUTION_*", "SPRING_TASK_SCHEDULING_*", "SPRING_QUARTZ_*", "SPRING_BATCH_*"},
		},
	},
	{
		ID: "websocket", Title: "WebSocket / STOMP endpoints", Category: CategoryMandatory, Effort: 8,
		Spin: Unsupported, WasmCloud: Unsupported,
		Rationale: "wasi:http is request/response; long-lived WebSocket sessions need a gateway that turns frames into requests, or the endpoint stays on the JVM",
		Trigger: Trigger{
			Artifacts: []string{"spring-websocket", "spring-boot-starter-websocket", "spring-messaging"},
			API:       hasWebSocketRoute,
		},
	},
	{
		ID: "native-code", Title: "Native code through JNI / JNA", Category: CategoryMandatory, Effort: 13,
		Spin: Unsupported, WasmCloud: Unsupported,
		Rationale: "native libraries cannot be loaded into a Wasm sandbox; replace them with pure implementations",
		Trigger: Trigger{
			Artifacts: []string{"jna", "jna-platform", "jnr-ffi", "netty-tcnative*", "netty-transport-native-*", "rocksdbjni", "leveldbjni*", "sqlite-jdbc", "zstd-jni", "snappy-java", "lz4-java", "conscrypt-*", "bcprov-ext-*"},
		},
	},
	{
		ID: "in-memory-cache", Title: "In-process cache (Caffeine / Ehcache / Hazelcast)", Category: CategoryPotential, Effort: 2,
		Spin: Adapt, WasmCloud: Adapt,
		Rationale: "instances are short-lived and share no memory, so a process cache no longer caches; use the platform key-value store",
		Trigger: Trigger{
			Artifacts: []string{"caffeine", "ehcache*", "hazelcast*", "spring-boot-starter-cache"},
			Env:       []string{"SPRING_CACHE_*"},
		},
	},
	{
		ID: "security-oauth2", Title: "Spring Security / OAuth2", Category: CategoryPotential, Effort: 3,
		Spin: Adapt, WasmCloud: Adapt,
		Rationale: "filter chains do not carry over; validate tokens in the component (or at the gateway in front of it)",
		Trigger: Trigger{
			Artifacts: []string{"spring-security-core", "spring-boot-starter-security", "spring-boot-starter-oauth2-*", "spring-security-oauth2-*"},
			Env:       []string{"SPRING_SECURITY_*"},
		},
	},
	{
		ID: "resilience", Title: "Circuit breakers and retries (Resilience4j / Hystrix)", Category: CategoryOptional, Effort: 1,
		Spin: Adapt, WasmCloud: Adapt,
		Rationale: "breaker state lives in process memory, which a fresh instance per request does not keep; rely on timeouts and retries in the platform or the proxy, or keep state in key-value",
		Trigger: Trigger{
			Artifacts: []string{"resilience4j-*", "spring-cloud-starter-circuitbreaker-*", "hystrix-core", "spring-retry"},
			Health:    []string{"circuitbreakers", "ratelimiters"},
			Env:       []string{"RESILIENCE4J_*"},
		},
	},
	{
		ID: "service-discovery", Title: "Client-side service discovery and config server", Category: CategoryOptional, Effort: 1,
		Spin: Native, WasmCloud: Native,
		Rationale: "the platform routes and configures components (Spin variables, wasmCloud links and config); Eureka/Consul/Config clients are dropped",
		Trigger: Trigger{
			Artifacts: []string{"spring-cloud-starter-netflix-eureka-client", "eureka-client", "spring-cloud-starter-consul-*", "spring-cloud-config-client", "spring-cloud-starter-config"},
			Env:       []string{"EUREKA_*", "SPRING_CLOUD_CONFIG_*", "SPRING_CLOUD_CONSUL_*"},
		},
	},
	{
		ID: "observability", Title: "Actuator, Micrometer and tracing", Category: CategoryOptional, Effort: 1,
		Spin: Native, WasmCloud: Native,
		Rationale: "health and metrics come from the platform (both export OpenTelemetry); actuator endpoints are not ported, readiness probes point at the platform",
		Trigger: Trigger{
			Artifacts: []string{"spring-boot-actuator", "spring-boot-starter-actuator", "micrometer-registry-*", "micrometer-tracing*"},
			Health:    []string{"ping", "diskspace", "livenessstate", "readinessstate"},
		},
	},
}

// hasOperations is the API trait of a service with a known HTTP surface.
func hasOperations(s *Service) string {
	if s.API != nil && len(s.API.Operations) > 0 {
		return countNoun(len(s.API.Operations), "OpenAPI operation")
	}
	if s.Runtime != nil && len(s.Runtime.Routes) > 0 {
		return countNoun(len(s.Runtime.Routes), "route") + " in /actuator/mappings"
	}
	return ""
}

func countNoun(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// brokenRefs is the API trait of a document with $refs that cannot be
// followed.
func brokenRefs(s *Service) string {
	if s.API == nil {
		return ""
	}
	var first *Problem
	n := 0
	for i, p := range s.API.Problems {
		if p.Kind == ProblemBrokenRef {
			if first == nil {
				first = &s.API.Problems[i]
			}
			n++
		}
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%s in %s, first at %s: %s", countNoun(n, "broken $ref"), s.API.Source, first.Location, first.Message)
}

// noHTTPSurface is the trait of a service whose API document or request
// mappings were read and list nothing.
func noHTTPSurface(s *Service) string {
	apiEmpty := s.API != nil && len(s.API.Operations) == 0
	routesRead := s.Runtime != nil && !slices.ContainsFunc(s.Runtime.Absent, func(a string) bool { return strings.HasPrefix(a, "/actuator/mappings ") })
	routesEmpty := s.Runtime == nil || len(s.Runtime.Routes) == 0
	switch {
	case apiEmpty && routesEmpty:
		return "OpenAPI document " + s.API.Source + " lists no operations"
	case s.API == nil && routesRead && routesEmpty:
		return "/actuator/mappings lists no request mappings"
	}
	return ""
}

// hasWebSocketRoute looks for the handshake endpoints STOMP setups expose.
func hasWebSocketRoute(s *Service) string {
	var paths []string
	if s.API != nil {
		for _, op := range s.API.Operations {
			paths = append(paths, op.Path)
		}
	}
	if s.Runtime != nil {
		for _, r := range s.Runtime.Routes {
			_, p, _ := strings.Cut(r, " ")
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		lp := strings.ToLower(p)
		if strings.HasSuffix(lp, "/ws") || strings.Contains(lp, "/websocket") || strings.Contains(lp, "/ws/") || strings.Contains(lp, "sockjs") {
			return "route " + p
		}
	}
	return ""
}

// Assess matches the service against Rules and fills Findings and
// Readiness. The score starts at 100 and loses scorePerPoint per effort
// point. Any mandatory finding makes the service not-ready; any other
// finding makes it ready-with-conditions unless the score stays at 90 or
// above. A target is not-ready when a finding is Unsupported on it,
// ready-with-conditions when one needs Adapt (or the service as a whole has
// conditions), else ready. With no evidence at all (no image, API or live
// probe, and a manifest that triggers no rule) the level is unknown.
func Assess(s *Service) {
	s.Findings = nil
	if s.Image == nil && s.API == nil && s.Deployment == nil && s.Runtime == nil {
		s.Readiness = unknownReadiness()
		return
	}
	ev := collectEvidence(s)
	// A stock image (no Java or Spring Boot in it) with no API and no live
	// probe is a database, cache or broker the fleet uses, not a candidate.
	if s.API == nil && s.Runtime == nil && (s.Image == nil || (s.Image.Java == nil && s.Image.SpringBoot == nil)) {
		if r := ruleByID(BackingServiceRule); r != nil {
			if e := r.Trigger.match(s, ev); e != "" {
				s.Findings = []Finding{{ID: r.ID, Title: r.Title, Category: r.Category, Effort: r.Effort, Evidence: e}}
				s.Readiness = unknownReadiness()
				return
			}
		}
	}
	effort := 0
	mandatory := false
	worst := map[string]Support{"spin": Native, "wasmcloud": Native}
	for _, r := range Rules {
		if r.ID == BackingServiceRule {
			continue
		}
		evidence := r.Trigger.match(s, ev)
		if evidence == "" {
			continue
		}
		s.Findings = append(s.Findings, Finding{ID: r.ID, Title: r.Title, Category: r.Category, Effort: r.Effort, Evidence: evidence})
		effort += r.Effort
		mandatory = mandatory || r.Category == CategoryMandatory
		worst["spin"] = max(worst["spin"], r.Spin)
		worst["wasmcloud"] = max(worst["wasmcloud"], r.WasmCloud)
	}
	score := max(0, 100-scorePerPoint*effort)
	level := LevelReady
	switch {
	case mandatory:
		level = LevelNotReady
	case score < 90:
		level = LevelReadyWithConditions
	}
	if len(s.Findings) == 0 && s.Image == nil && s.API == nil && s.Runtime == nil {
		// A manifest alone says how a service runs, not what is inside it.
		s.Readiness = unknownReadiness()
		return
	}
	targets := map[string]string{}
	for t, sup := range worst {
		switch {
		case sup == Unsupported:
			targets[t] = LevelNotReady
		case sup == Adapt || level != LevelReady:
			targets[t] = LevelReadyWithConditions
		default:
			targets[t] = LevelReady
		}
	}
	s.Readiness = Readiness{Score: score, Level: level, Targets: targets}
}

// IsBackingImage reports whether an image reference names a stock database,
// cache or broker image (the backing-service rule's patterns), which
// `analyze cluster --images` does not pull.
func IsBackingImage(ref string) bool {
	r := ruleByID(BackingServiceRule)
	repo := strings.ToLower(imageRepository(ref))
	return r != nil && repo != "" && globAny(r.Trigger.Images, repo, strings.ToLower)
}

func ruleByID(id string) *Rule {
	for i := range Rules {
		if Rules[i].ID == id {
			return &Rules[i]
		}
	}
	return nil
}

func unknownReadiness() Readiness {
	return Readiness{Score: 0, Level: LevelUnknown, Targets: map[string]string{"spin": LevelUnknown, "wasmcloud": LevelUnknown}}
}

// evidence is a service's facts, each kept as written (for the finding's
// evidence text) with its normalised form (for matching).
type evidence struct {
	artifacts, health, env, dependsOn, images []fact
}

type fact struct{ text, norm string }

func collectEvidence(s *Service) evidence {
	var ev evidence
	lower := func(v string) fact { return fact{v, strings.ToLower(v)} }
	if s.Image != nil {
		for _, d := range s.Image.Dependencies {
			ev.artifacts = append(ev.artifacts, lower(d.Artifact))
		}
	}
	if s.Runtime != nil {
		for _, h := range s.Runtime.Health {
			ev.health = append(ev.health, lower(h))
		}
		for _, e := range s.Runtime.Env {
			ev.env = append(ev.env, fact{e, normaliseEnvName(e)})
		}
	}
	if s.Deployment != nil {
		for _, e := range s.Deployment.Env {
			ev.env = append(ev.env, fact{e, normaliseEnvName(e)})
		}
		for _, d := range s.Deployment.DependsOn {
			ev.dependsOn = append(ev.dependsOn, lower(d))
		}
		if repo := imageRepository(s.Deployment.Image); repo != "" {
			ev.images = append(ev.images, fact{s.Deployment.Image, strings.ToLower(repo)})
		}
	}
	for _, list := range []*[]fact{&ev.artifacts, &ev.health, &ev.env, &ev.dependsOn, &ev.images} {
		slices.SortFunc(*list, func(a, b fact) int { return strings.Compare(a.norm, b.norm) })
		// One entry per normalised name: SPRING_DATASOURCE_URL from a
		// manifest and spring.datasource.url from actuator are one fact.
		*list = slices.CompactFunc(*list, func(a, b fact) bool { return a.norm == b.norm })
	}
	return ev
}

// imageRepository is the last path element of an image reference without
// tag or digest: docker.io/library/postgres:16.6 → postgres.
func imageRepository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	last := path.Base(ref)
	if i := strings.IndexByte(last, ':'); i >= 0 {
		last = last[:i]
	}
	if last == "." || last == "/" {
		return ""
	}
	return last
}

// normaliseEnvName maps a Spring property name and its environment-variable
// spelling to one form: spring.data.redis-host → SPRING_DATA_REDIS_HOST.
func normaliseEnvName(name string) string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_", "[", "_", "]", "").Replace(name))
}

// match returns the evidence that triggers the rule, "" when none does.
func (t Trigger) match(s *Service, ev evidence) string {
	var parts []string
	if m := matchAll(t.Artifacts, ev.artifacts, nil, strings.ToLower); len(m) > 0 {
		parts = append(parts, "dependency "+limitList(m))
	}
	if m := matchAll(t.Health, ev.health, nil, strings.ToLower); len(m) > 0 {
		parts = append(parts, "health component "+limitList(m))
	}
	if m := matchAll(t.Env, ev.env, t.EnvExcept, strings.ToUpper); len(m) > 0 {
		parts = append(parts, "env "+limitList(m))
	}
	if m := matchAll(t.DependsOn, ev.dependsOn, nil, strings.ToLower); len(m) > 0 {
		parts = append(parts, "depends on "+limitList(m))
	}
	if m := matchAll(t.Images, ev.images, nil, strings.ToLower); len(m) > 0 {
		parts = append(parts, "runs image "+limitList(m))
	}
	if t.API != nil {
		if e := t.API(s); e != "" {
			parts = append(parts, e)
		}
	}
	return strings.Join(parts, "; ")
}

// matchAll returns the facts (as written) that match any pattern and no
// exception; patterns are folded the way the facts were normalised.
func matchAll(patterns []string, facts []fact, except []string, fold func(string) string) []string {
	if len(patterns) == 0 {
		return nil
	}
	var out []string
	for _, f := range facts {
		if globAny(patterns, f.norm, fold) && !globAny(except, f.norm, fold) {
			out = append(out, f.text)
		}
	}
	return out
}

func globAny(patterns []string, v string, fold func(string) string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(fold(p), v); ok {
			return true
		}
	}
	return false
}

// limitList joins at most four values so evidence stays readable.
func limitList(vals []string) string {
	if len(vals) <= 4 {
		return strings.Join(vals, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(vals[:4], ", "), len(vals)-4)
}

// MigrationOrder suggests the order to migrate services in: a service comes
// after every service it depends on (DependsOn names outside the list, such
// as databases, are ignored), so leaves go first. Services Assess marked as
// backing services are left out: they are not migrated. Among services that are
// free to go, the higher readiness score goes first, then the name. A
// dependency cycle is broken at the service with the fewest unmet
// dependencies (same tie-breaks), so the result always lists every service
// exactly once and is the same on every run.
func MigrationOrder(services []Service) []string {
	byName := map[string]*Service{}
	for i := range services {
		if services[i].IsBacking() {
			continue
		}
		if _, dup := byName[services[i].Name]; !dup {
			byName[services[i].Name] = &services[i]
		}
	}
	pending := map[string]map[string]bool{} // service → unmet dependencies
	for name, s := range byName {
		deps := map[string]bool{}
		if s.Deployment != nil {
			for _, d := range s.Deployment.DependsOn {
				if _, known := byName[d]; known && d != name {
					deps[d] = true
				}
			}
		}
		pending[name] = deps
	}
	better := func(a, b string) int {
		if c := len(pending[a]) - len(pending[b]); c != 0 {
			return c
		}
		if c := byName[b].Readiness.Score - byName[a].Readiness.Score; c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	}
	order := make([]string, 0, len(pending))
	for len(pending) > 0 {
		names := make([]string, 0, len(pending))
		for n := range pending {
			names = append(names, n)
		}
		// The best candidate has no unmet dependency when one exists; when
		// none does, it is where the cycle is cut.
		next := slices.MinFunc(names, better)
		order = append(order, next)
		delete(pending, next)
		for _, deps := range pending {
			delete(deps, next)
		}
	}
	return order
}

// IsBacking reports whether the service is a stock backing service (a
// database, cache or broker the applications use), not an application to
// migrate.
func (s *Service) IsBacking() bool {
	return slices.ContainsFunc(s.Findings, func(f Finding) bool { return f.ID == BackingServiceRule })
}
