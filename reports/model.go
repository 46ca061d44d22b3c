// Package reports turns the fleet inventory and the strangler's evidence
// into the cutover report an architect puts in front of a review board:
// what is cut over, what is blocked and by how much, what to do next, the
// fleet's readiness, per-route shadow evidence, and a footprint/carbon
// estimate. One model (Report) is rendered as self-contained HTML,
// GitHub-flavoured Markdown, or versioned JSON.
package reports

import (
	"time"

	"github.com/strangler-fig/migrate/analyze"
)

// APIVersion and Kind stamp the JSON form of a report.
const (
	APIVersion = "migrate/v1"
	Kind       = "Report"
)

// Route statuses: the verdict a route gets in the decision summary.
const (
	StatusCutover    = "cutover"     // serving from Wasm
	StatusRetired    = "retired"     // legacy retired
	StatusReady      = "ready"       // gate passed, can be promoted
	StatusCollecting = "collecting"  // on its way, needs more samples
	StatusBlocked    = "blocked"     // a gate criterion other than samples failed
	StatusNotStarted = "not-started" // on legacy, no shadow data
)

// Report is the whole cutover report, the versioned JSON document dashboards read.
type Report struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Title      string    `json:"title"`
	Generated  time.Time `json:"generated"`
	// InventoryGenerated is when the inventory was taken; nil when no inventory was given.
	InventoryGenerated *time.Time  `json:"inventoryGenerated,omitempty"`
	Summary            Summary     `json:"summary"`
	Fleet              Fleet       `json:"fleet"`
	Services           []Service   `json:"services"`
	Footprint          Footprint   `json:"footprint"`
	Gate               Gate        `json:"defaultGate"`
	InputErrors        []InputNote `json:"inputErrors,omitempty"`
}

// InputNote is an input the inventory could not analyze.
type InputNote = analyze.InputError

// Summary is the decision summary at the top of the report.
type Summary struct {
	Routes int `json:"routes"`
	// Counts is the number of routes per status (cutover, retired, ready,
	// collecting, blocked, not-started); every status is present.
	Counts  map[string]int `json:"counts"`
	CutOver []RouteRef     `json:"cutOver"`
	Ready   []RouteRef     `json:"ready"`
	Blocked []Blocked      `json:"blocked"`
	// NextSteps are concrete actions derived from the data, most urgent first.
	NextSteps []Step `json:"nextSteps"`
}

// RouteRef names a route in a summary list.
type RouteRef struct {
	Route   string `json:"route"`
	Service string `json:"service"`
	Mode    string `json:"mode"`
	Weight  int    `json:"weight,omitempty"`
}

// Blocked is a route held back, with the criteria that failed.
type Blocked struct {
	RouteRef
	Failed []GateCheck `json:"failed"`
}

// Step is one recommended next action.
type Step struct {
	// Action: fix-differences | fix-errors | reduce-latency | collect-samples |
	// add-ignore-rules | promote | cutover | resolve-finding | start-shadow | add-routes.
	Action  string `json:"action"`
	Service string `json:"service,omitempty"`
	Route   string `json:"route,omitempty"`
	Text    string `json:"text"`
}

// Fleet is the fleet overview: readiness, findings, migration order.
type Fleet struct {
	Services []FleetService `json:"services"`
	// Order is the suggested migration order, leaf services first.
	Order []string `json:"order"`
	// Effort sums findings by category (mandatory, optional, potential).
	Effort   []CategoryEffort `json:"effort"`
	Findings []FindingRow     `json:"findings"`
	// Backing names the databases, caches and brokers found in the cluster:
	// the applications depend on them, but they are not migrated.
	Backing []string `json:"backing,omitempty"`
}

// FleetService is one row of the fleet overview.
type FleetService struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
	// Order is the 1-based position in the migration order.
	Order int `json:"order"`
	// Depth is the dependency depth: 0 for services depending on no other fleet service.
	Depth     int               `json:"depth"`
	DependsOn []string          `json:"dependsOn,omitempty"`
	Level     string            `json:"level"`
	Score     *int              `json:"score,omitempty"`
	Targets   map[string]string `json:"targets,omitempty"`
	Findings  []CategoryEffort  `json:"findings"`
	Effort    int               `json:"effort"`
	Routes    int               `json:"routes"`
	CutOver   int               `json:"cutOver"`
	// InInventory is false for services known only from the strangler routes.
	InInventory bool `json:"inInventory"`
}

// CategoryEffort counts findings of one category and their effort points.
type CategoryEffort struct {
	Category string `json:"category"`
	Count    int    `json:"count"`
	Effort   int    `json:"effort"`
}

// FindingRow is one finding with its service.
type FindingRow struct {
	Service string `json:"service"`
	analyze.Finding
}

// Service is one service's section: its routes and their evidence.
type Service struct {
	Name   string        `json:"name"`
	Level  string        `json:"level"`
	Score  *int          `json:"score,omitempty"`
	Routes []RouteReport `json:"routes"`
}

// RouteReport is one route's section.
type RouteReport struct {
	Route    string          `json:"route"`
	Service  string          `json:"service"`
	Mode     string          `json:"mode"`
	Weight   int             `json:"weight,omitempty"`
	Status   string          `json:"status"`
	Gate     Gate            `json:"gate"`
	Checks   []GateCheck     `json:"checks,omitempty"`
	Timeline []Transition    `json:"timeline"`
	Evidence *EvidenceReport `json:"evidence,omitempty"`
	anchor   string
}

// EvidenceReport is the shadow evidence of a route as the report presents it.
type EvidenceReport struct {
	Samples         int64       `json:"samples"`
	Matches         int64       `json:"matches"`
	Mismatches      int64       `json:"mismatches"`
	CandidateErrors int64       `json:"candidateErrors"`
	ErrorsByKind    []KindCount `json:"errorsByKind,omitempty"`
	SkippedWrites   int64       `json:"skippedWrites,omitempty"`
	SideEffects     int64       `json:"sideEffects,omitempty"`
	// MatchRatio and ErrorRate are ratios (0-1) of Samples; nil without samples.
	MatchRatio *float64 `json:"matchRatio,omitempty"`
	ErrorRate  *float64 `json:"errorRate,omitempty"`
	// DifferenceClasses is the number of (path, type) classes seen; Differences the top ones.
	DifferenceClasses int          `json:"differenceClasses"`
	Differences       []Difference `json:"differences,omitempty"`
	SampleRequest     string       `json:"sampleRequest,omitempty"`
	SampleDiff        string       `json:"sampleDiff,omitempty"`
	// SampleDiffOmitted counts the diff lines cut (or cut short) to keep the report readable.
	SampleDiffOmitted int           `json:"sampleDiffOmittedLines,omitempty"`
	NoiseFields       []string      `json:"noiseFields,omitempty"`
	Legacy            LatencyReport `json:"legacy"`
	Candidate         LatencyReport `json:"candidate"`
	// P99Ratio is candidate p99 / legacy p99; nil when either is unknown.
	P99Ratio    *float64     `json:"p99Ratio,omitempty"`
	MatchSeries []MatchPoint `json:"matchSeries,omitempty"`
}

// KindCount is a candidate error kind and how often it happened.
type KindCount struct {
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
}

// LatencyReport is one side's latency in milliseconds; nil percentiles are unknown.
type LatencyReport struct {
	P50Ms   *float64       `json:"p50Ms,omitempty"`
	P95Ms   *float64       `json:"p95Ms,omitempty"`
	P99Ms   *float64       `json:"p99Ms,omitempty"`
	Buckets []BucketReport `json:"buckets,omitempty"`
}

// BucketReport is a histogram bucket in milliseconds.
type BucketReport struct {
	LeMs  float64 `json:"leMs"`
	Count int64   `json:"count"`
}

// Footprint compares what the legacy deployment reserves with what the Wasm routes use.
type Footprint struct {
	// Headline states the comparison in a few sentences, from known values only.
	Headline []string           `json:"headline"`
	Services []ServiceFootprint `json:"services"`
	Totals   FootprintTotals    `json:"totals"`
	// Coefficients are the numbers behind the estimate, each with its source.
	Coefficients []NamedCoefficient `json:"coefficients"`
	// Formula and FunctionalUnit describe the SCI calculation.
	Formula        string   `json:"formula"`
	FunctionalUnit string   `json:"functionalUnit"`
	Method         string   `json:"method"`
	Assumptions    []string `json:"assumptions"`
}

// NamedCoefficient is a coefficient with its name.
type NamedCoefficient struct {
	Name string `json:"name"`
	Coefficient
}

// ServiceFootprint is one service's footprint; nil fields are unknown.
type ServiceFootprint struct {
	Service    string   `json:"service"`
	ImageBytes *int64   `json:"imageBytes,omitempty"`
	WasmBytes  *int64   `json:"wasmBytes,omitempty"`
	SizeRatio  *float64 `json:"sizeRatio,omitempty"` // image / wasm
	// ImageImplausible says why ImageBytes, though measured, is left out of
	// every comparison: an image that ships a Java runtime cannot be this
	// small, so it is not what the service deploys (a test fixture).
	ImageImplausible string `json:"imageImplausible,omitempty"`
	Replicas         *int   `json:"replicas,omitempty"`
	// MemoryRequest and CPURequest are the per-replica quantities as declared.
	MemoryRequest string `json:"memoryRequest,omitempty"`
	CPURequest    string `json:"cpuRequest,omitempty"`
	// ReservedMemoryBytes and ReservedVCPU are requests × replicas.
	ReservedMemoryBytes *int64   `json:"reservedMemoryBytes,omitempty"`
	ReservedVCPU        *float64 `json:"reservedVCPU,omitempty"`
	WasmMemoryBytes     *int64   `json:"wasmMemoryBytes,omitempty"`
	// LegacyRSS is one legacy process's resident memory and
	// WasmInstanceMemory one Wasm instance's linear memory, both measured
	// on the running services; nil when not measured.
	LegacyRSS          *Figure `json:"legacyRSS,omitempty"`
	WasmInstanceMemory *Figure `json:"wasmInstanceMemory,omitempty"`
	// WasmVCPU is the average vCPU the Wasm routes kept busy.
	WasmVCPU *float64  `json:"wasmVCPU,omitempty"`
	Legacy   *Estimate `json:"legacy,omitempty"`
	Wasm     *Estimate `json:"wasm,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// PerProcessMeasured reports whether any service has a measured
// per-process figure (legacy RSS or one Wasm instance's memory).
func (f Footprint) PerProcessMeasured() bool {
	for _, s := range f.Services {
		if s.LegacyRSS != nil || s.WasmInstanceMemory != nil {
			return true
		}
	}
	return false
}

// Bases of a figure: what it rests on.
const (
	BasisMeasured  = "measured"  // read off the running software
	BasisDeclared  = "declared"  // as the deployment declares it (requests, replicas)
	BasisEstimated = "estimated" // computed from coefficients
)

// Figure is a quantity in bytes with its basis and how it was obtained.
type Figure struct {
	Bytes int64 `json:"bytes"`
	// Basis is BasisMeasured, BasisDeclared or BasisEstimated.
	Basis  string `json:"basis"`
	Method string `json:"method,omitempty"`
}

// Estimate is an energy and carbon estimate for one hour of operation.
type Estimate struct {
	EnergyKWh float64 `json:"energyKWh"`
	// OperationalG is E·I and EmbodiedG is M, both in gCO2e.
	OperationalG float64 `json:"operationalG"`
	EmbodiedG    float64 `json:"embodiedG"`
	// SCI is (E·I + M) per R, in gCO2e per hour of operation.
	SCI float64 `json:"sci"`
}

// FootprintTotals sums the fleet; each total covers only services where it is known.
type FootprintTotals struct {
	ImageBytes          int64   `json:"imageBytes"`
	WasmBytes           int64   `json:"wasmBytes"`
	ReservedMemoryBytes int64   `json:"reservedMemoryBytes"`
	WasmMemoryBytes     int64   `json:"wasmMemoryBytes"`
	LegacySCI           float64 `json:"legacySCI"`
	WasmSCI             float64 `json:"wasmSCI"`
	// Compared counts services with both a legacy and a Wasm estimate; the
	// SCI totals cover those services only.
	Compared int `json:"compared"`
}
