package reports

import "time"

// Options tune a report. The zero value is usable: every field has a default.
type Options struct {
	// Now stamps the report; zero means time.Now().UTC(). Tests pass a fixed clock.
	Now time.Time
	// Title heads the report; default "Cutover report".
	Title string
	// DefaultGate applies to routes whose Gate is nil; zero means
	// {minSamples: 1000, minMatch: 99.9%, maxP99Ratio: 1.5, maxErrorRate: 0.1%}.
	DefaultGate Gate
	// Modules are the measured Wasm components, one per service.
	Modules []WasmModule
	// LegacyMemory is the resident memory measured of legacy processes, at
	// most one per service.
	LegacyMemory []LegacyMemory
	// Carbon overrides the energy and carbon coefficients; a zero field keeps
	// its documented default (see DefaultCoefficients).
	Carbon Coefficients
	// TopDifferences caps the difference classes listed per route; default 5.
	TopDifferences int
	// MaxDiffLines caps the lines of the representative diff shown per route; default 40.
	MaxDiffLines int
	// MaxDiffBytes caps the bytes of that diff, for one-line bodies; default 4096.
	MaxDiffBytes int
	// MaxSeriesPoints caps the points of a match-ratio series (consecutive
	// intervals are merged); default 48.
	MaxSeriesPoints int
}

// defaultGate is DESIGN.md's example gate, used when a route names none.
var defaultGate = Gate{MinSamples: 1000, MinMatch: 0.999, MaxP99Ratio: 1.5, MaxErrorRate: 0.001}

func (o Options) withDefaults() Options {
	if o.Now.IsZero() {
		o.Now = time.Now().UTC()
	}
	if o.Title == "" {
		o.Title = "Cutover report"
	}
	if o.DefaultGate == (Gate{}) {
		o.DefaultGate = defaultGate
	}
	if o.TopDifferences <= 0 {
		o.TopDifferences = 5
	}
	if o.MaxDiffLines <= 0 {
		o.MaxDiffLines = 40
	}
	if o.MaxDiffBytes <= 0 {
		o.MaxDiffBytes = 4096
	}
	if o.MaxSeriesPoints <= 1 {
		o.MaxSeriesPoints = 48
	}
	o.Carbon = o.Carbon.withDefaults()
	return o
}

// Coefficient is one number of the energy/carbon estimate with where it comes from.
type Coefficient struct {
	// Value is the number; zero means "use the default".
	Value float64 `json:"value"`
	// Unit names the unit of Value.
	Unit string `json:"unit"`
	// Source cites where the value comes from. When a caller sets Value and
	// leaves Source empty, the report says the value was overridden.
	Source string `json:"source"`
}

// Coefficients are the inputs of the Software Carbon Intensity estimate.
type Coefficients struct {
	// MemoryKWhPerGBHour is the energy of one GB of memory for one hour.
	MemoryKWhPerGBHour Coefficient `json:"memoryKWhPerGBHour"`
	// VCPUMinWatts and VCPUMaxWatts are one vCPU's power at idle and at full load.
	VCPUMinWatts Coefficient `json:"vcpuMinWatts"`
	VCPUMaxWatts Coefficient `json:"vcpuMaxWatts"`
	// CPUUtilization is the average utilisation (0-1) assumed for reserved legacy vCPUs.
	CPUUtilization Coefficient `json:"cpuUtilization"`
	// PUE is the data centre's power usage effectiveness.
	PUE Coefficient `json:"pue"`
	// GridIntensity is the carbon intensity of electricity in gCO2e/kWh (I in SCI).
	GridIntensity Coefficient `json:"gridIntensity"`
	// EmbodiedPerVCPUHour is the embodied emissions share (M in SCI) per
	// vCPU-hour in gCO2e; the default 0 leaves embodied emissions out, and
	// the report says so.
	EmbodiedPerVCPUHour Coefficient `json:"embodiedPerVCPUHour"`
}

// Sources cited by the default coefficients.
const (
	sourceCCF     = "Cloud Carbon Footprint methodology (cloudcarbonfootprint.org/docs/methodology), AWS averages"
	sourceCCFUtil = "Cloud Carbon Footprint methodology: 50% average vCPU utilisation when none is measured"
	sourceIEA     = "IEA global average carbon intensity of electricity generation (475 gCO2/kWh), as used in Green Software Foundation SCI examples"
	sourceSCI     = "Green Software Foundation, Software Carbon Intensity (SCI) specification v1.1 / ISO/IEC 21031:2024 (sci.greensoftware.foundation)"
	sourceNoM     = "not included: embodied emissions need hardware data; give gCO2e per vCPU-hour with migrate report --embodied-per-vcpu-hour (CCF embodied-emissions methodology) to include M"
	sourceUser    = "overridden in report options"
)

// DefaultCoefficients returns the coefficients used when Options.Carbon leaves a field zero.
func DefaultCoefficients() Coefficients {
	return Coefficients{
		MemoryKWhPerGBHour:  Coefficient{0.000392, "kWh per GB-hour", sourceCCF},
		VCPUMinWatts:        Coefficient{0.74, "W per vCPU", sourceCCF},
		VCPUMaxWatts:        Coefficient{3.5, "W per vCPU", sourceCCF},
		CPUUtilization:      Coefficient{0.5, "ratio", sourceCCFUtil},
		PUE:                 Coefficient{1.135, "ratio", sourceCCF},
		GridIntensity:       Coefficient{475, "gCO2e per kWh", sourceIEA},
		EmbodiedPerVCPUHour: Coefficient{0, "gCO2e per vCPU-hour", sourceNoM},
	}
}

func (c Coefficients) withDefaults() Coefficients {
	d := DefaultCoefficients()
	pick := func(set, def Coefficient) Coefficient {
		if set.Value == 0 {
			return def
		}
		if set.Unit == "" {
			set.Unit = def.Unit
		}
		if set.Source == "" {
			set.Source = sourceUser
		}
		return set
	}
	return Coefficients{
		MemoryKWhPerGBHour:  pick(c.MemoryKWhPerGBHour, d.MemoryKWhPerGBHour),
		VCPUMinWatts:        pick(c.VCPUMinWatts, d.VCPUMinWatts),
		VCPUMaxWatts:        pick(c.VCPUMaxWatts, d.VCPUMaxWatts),
		CPUUtilization:      pick(c.CPUUtilization, d.CPUUtilization),
		PUE:                 pick(c.PUE, d.PUE),
		GridIntensity:       pick(c.GridIntensity, d.GridIntensity),
		EmbodiedPerVCPUHour: pick(c.EmbodiedPerVCPUHour, d.EmbodiedPerVCPUHour),
	}
}
