// Package analyze builds the fleet inventory: what each Spring Boot service
// exposes (OpenAPI), what it is built from (container image), how it is
// deployed (Kubernetes manifests, compose files, live actuator endpoints),
// and how ready it is to move to a WebAssembly platform.
package analyze

import "time"

// APIVersion is stamped on every inventory document.
const APIVersion = "migrate/v1"

// Inventory is the migrate/v1 inventory document: the one file that plan and
// report read. Secret values never enter it: env values, secretKeyRefs and
// actuator-masked values are reduced to names.
type Inventory struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"` // always "Inventory"
	Generated  time.Time `json:"generated"`
	Services   []Service `json:"services"`
	// Order is the suggested migration order: leaf services first.
	Order []string `json:"order,omitempty"`
	// Errors records inputs that could not be analyzed; the rest still were.
	Errors []InputError `json:"errors,omitempty"`
}

// InputError names an input that failed and why.
type InputError struct {
	Input   string `json:"input"`
	Service string `json:"service,omitempty"`
	Error   string `json:"error"`
}

// Service is everything known about one service, each fact with its source.
type Service struct {
	Name       string      `json:"name"`
	Namespace  string      `json:"namespace,omitempty"`
	Sources    []string    `json:"sources"`
	API        *API        `json:"api,omitempty"`
	Image      *Image      `json:"image,omitempty"`
	Deployment *Deployment `json:"deployment,omitempty"`
	Runtime    *Runtime    `json:"runtime,omitempty"`
	Findings   []Finding   `json:"findings,omitempty"`
	Readiness  Readiness   `json:"readiness"`
}

// API is the service's HTTP surface as its OpenAPI document declares it.
type API struct {
	Source     string      `json:"source"`
	Format     string      `json:"format"` // openapi-3.0 | openapi-3.1 | swagger-2.0
	Title      string      `json:"title,omitempty"`
	Version    string      `json:"version,omitempty"`
	Servers    []string    `json:"servers,omitempty"`
	Operations []Operation `json:"operations"`
	Problems   []Problem   `json:"problems,omitempty"`
}

// Operation is one method on one path template. Path includes the server
// URL's path or Swagger 2 basePath, so it is what a client really requests.
type Operation struct {
	Method      string   `json:"method"`
	Path        string   `json:"path"`
	OperationID string   `json:"operationId,omitempty"`
	Tags        []string `json:"tags,omitempty"`
}

// Problem is a validation problem in a document, with where it was found.
type Problem struct {
	Location string `json:"location"`
	Message  string `json:"message"`
	// Kind is set for problems that leave the contract incomplete, so rules
	// can tell them from a missing description: ProblemBrokenRef.
	Kind string `json:"kind,omitempty"`
}

// ProblemBrokenRef marks a $ref that names a file or a part of one that does
// not exist: the operations that use it have no known shape.
const ProblemBrokenRef = "broken-ref"

// Image is what a container image says about the service inside it.
type Image struct {
	Ref          string       `json:"ref"`
	Digest       string       `json:"digest,omitempty"`
	SizeBytes    int64        `json:"sizeBytes"`
	Layers       int          `json:"layers"`
	Created      *time.Time   `json:"created,omitempty"`
	BuildTool    string       `json:"buildTool"` // jib | buildpacks | dockerfile-fatjar | dockerfile-layered | unknown
	Base         string       `json:"base,omitempty"`
	User         string       `json:"user,omitempty"`
	ExposedPorts []string     `json:"exposedPorts,omitempty"`
	Java         *Java        `json:"java,omitempty"`
	SpringBoot   *SpringBoot  `json:"springBoot,omitempty"`
	MainClass    string       `json:"mainClass,omitempty"`
	Dependencies []Dependency `json:"dependencies,omitempty"`
	Evidence     []Evidence   `json:"evidence,omitempty"`
}

// Java is the runtime the image ships.
type Java struct {
	Version  string `json:"version"`
	Vendor   string `json:"vendor,omitempty"`
	Evidence string `json:"evidence"`
}

// SpringBoot is the framework version the application was built with.
type SpringBoot struct {
	Version  string `json:"version"`
	Evidence string `json:"evidence"`
}

// Dependency is one library found in the image.
type Dependency struct {
	Group    string `json:"group,omitempty"`
	Artifact string `json:"artifact"`
	Version  string `json:"version,omitempty"`
}

// Evidence ties a detected fact to the file, label or env var that said so.
type Evidence struct {
	Fact   string `json:"fact"`
	Source string `json:"source"`
}

// Deployment is how the service runs today.
type Deployment struct {
	Kind      string    `json:"kind"` // Deployment | StatefulSet | compose
	Replicas  int       `json:"replicas"`
	Image     string    `json:"image,omitempty"`
	Ports     []Port    `json:"ports,omitempty"`
	Resources Resources `json:"resources"`
	Probes    []Probe   `json:"probes,omitempty"`
	Env       []string  `json:"env,omitempty"` // names only, never values
	DependsOn []string  `json:"dependsOn,omitempty"`
	Routes    []string  `json:"routes,omitempty"` // ingress path prefixes routed to it
	Upstream  string    `json:"upstream,omitempty"`
}

// Port is a container or service port.
type Port struct {
	Name     string `json:"name,omitempty"`
	Port     int    `json:"port"`
	Protocol string `json:"protocol,omitempty"`
}

// Resources are the per-replica requests and limits, as Kubernetes quantities.
type Resources struct {
	Requests map[string]string `json:"requests,omitempty"`
	Limits   map[string]string `json:"limits,omitempty"`
}

// Probe is a liveness, readiness or startup probe.
type Probe struct {
	Type string `json:"type"` // liveness | readiness | startup
	Path string `json:"path,omitempty"`
	Port string `json:"port,omitempty"`
}

// Runtime is what a live service said about itself through Spring Boot
// actuator. Its backing services show up as health components (db, redis,
// ...), which is evidence no manifest or image carries.
type Runtime struct {
	Source string            `json:"source"`           // base URL probed
	Status string            `json:"status,omitempty"` // overall health: UP, DOWN, ...
	Health []string          `json:"health,omitempty"` // health component names
	Info   map[string]string `json:"info,omitempty"`   // /actuator/info leaves, flattened (app.name, build.version, ...)
	Routes []string          `json:"routes,omitempty"` // "METHOD /path" from /actuator/mappings
	Env    []string          `json:"env,omitempty"`    // property names from /actuator/env; never values
	Absent []string          `json:"absent,omitempty"` // endpoints that were not there, e.g. "/actuator/env (404)"
}

// Finding is one readiness rule that matched, with its evidence.
type Finding struct {
	ID       string `json:"id"`
	Title    string `json:"title"`
	Category string `json:"category"` // mandatory | optional | potential
	Effort   int    `json:"effort"`
	Evidence string `json:"evidence"`
}

// Readiness scores how ready a service is to run as a Wasm component.
type Readiness struct {
	Score   int               `json:"score"`             // 0-100
	Level   string            `json:"level"`             // ready | ready-with-conditions | not-ready | unknown
	Targets map[string]string `json:"targets,omitempty"` // spin, wasmcloud → level
}
