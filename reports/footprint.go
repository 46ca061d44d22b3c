package reports

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/strangler-fig/migrate/analyze"
	"github.com/strangler-fig/migrate/strangler"
)

// gib is the "GB" of the memory coefficient: Kubernetes quantities and
// container memory are binary, so the estimate uses 2^30 bytes.
const gib = 1 << 30

// buildFootprint compares the legacy deployment's reservation with what
// the Wasm routes measured, and estimates energy and carbon with the GSF
// SCI formula on CCF coefficients.
func buildFootprint(inv *analyze.Inventory, services []Service, opts Options) Footprint {
	c := opts.Carbon
	fp := Footprint{
		Formula:        "SCI = (E × I + M) per R",
		FunctionalUnit: "R = one hour of operation of the service",
		Method: "E (kWh) follows the Cloud Carbon Footprint method: vCPU-hours × (min W + utilisation × (max W − min W)) / 1000 " +
			"+ GB-hours × memory kWh/GB-h, all × PUE. I is grid intensity; M is embodied emissions per vCPU-hour. " +
			"SCI follows " + sourceSCI + ".",
		Assumptions: []string{
			"This is an estimate for comparison, not a measurement of energy.",
			"R is one hour of operation of each service: per-request figures need the legacy request rate, which the inputs do not carry.",
			"Legacy: reserved vCPU (CPU requests × replicas) at the average utilisation coefficient, plus reserved memory (memory requests × replicas): the deployment holds both whether traffic arrives or not.",
			"Wasm: busy vCPU (measured CPU time, or else Wasm latency × samples over the evidence window — wall time, an upper bound) at maximum watts, plus the peak memory measured; instances live per request and hold nothing when idle.",
			"Shadow traffic may be sampled: Wasm figures derived from evidence cover the mirrored traffic only.",
			"The proxy/runtime host process, networking and storage are left out on both sides.",
			"GB means 2^30 bytes, as in Kubernetes quantities.",
		},
		Coefficients: []NamedCoefficient{
			{"Memory energy", c.MemoryKWhPerGBHour},
			{"vCPU power at idle", c.VCPUMinWatts},
			{"vCPU power at full load", c.VCPUMaxWatts},
			{"Average vCPU utilisation (legacy)", c.CPUUtilization},
			{"Power usage effectiveness (PUE)", c.PUE},
			{"Grid carbon intensity (I)", c.GridIntensity},
			{"Embodied emissions (M)", c.EmbodiedPerVCPUHour},
		},
	}
	byName := map[string]*analyze.Service{}
	for i := range inv.Services {
		if _, dup := byName[inv.Services[i].Name]; !dup {
			byName[inv.Services[i].Name] = &inv.Services[i]
		}
	}
	modules := map[string]WasmModule{}
	var moduleOrder []string
	for _, m := range opts.Modules {
		if _, dup := modules[m.Service]; !dup {
			moduleOrder = append(moduleOrder, m.Service)
		}
		modules[m.Service] = m
	}
	routesOf := map[string][]RouteReport{}
	var names []string
	seen := map[string]bool{}
	for _, s := range services {
		names = append(names, s.Name)
		seen[s.Name] = true
		routesOf[s.Name] = s.Routes
	}
	for _, n := range moduleOrder {
		if !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	rss := map[string]LegacyMemory{}
	for _, l := range opts.LegacyMemory {
		if _, dup := rss[l.Service]; dup || l.ResidentBytes <= 0 {
			continue
		}
		rss[l.Service] = l
		if !seen[l.Service] {
			names = append(names, l.Service)
			seen[l.Service] = true
		}
	}
	for _, n := range names {
		sf := serviceFootprint(n, byName[n], modules[n], routesOf[n], c)
		if l, ok := rss[n]; ok {
			sf.LegacyRSS = &Figure{Bytes: l.ResidentBytes, Basis: BasisMeasured, Method: cmp.Or(l.Method, "resident set size of one legacy process")}
		}
		fp.Services = append(fp.Services, sf)
		t := &fp.Totals
		if sf.ImageBytes != nil && sf.ImageImplausible == "" {
			t.ImageBytes += *sf.ImageBytes
		}
		if sf.WasmBytes != nil {
			t.WasmBytes += *sf.WasmBytes
		}
		if sf.ReservedMemoryBytes != nil {
			t.ReservedMemoryBytes += *sf.ReservedMemoryBytes
		}
		if sf.WasmMemoryBytes != nil {
			t.WasmMemoryBytes += *sf.WasmMemoryBytes
		}
		if sf.Legacy != nil && sf.Wasm != nil {
			t.Compared++
			t.LegacySCI += sf.Legacy.SCI
			t.WasmSCI += sf.Wasm.SCI
		}
	}
	if fp.PerProcessMeasured() {
		fp.Assumptions = append(fp.Assumptions, "Memory measured per process (a legacy process's RSS, one Wasm instance's linear memory) is shown beside the estimate, not used in it: a deployment holds its memory requests whatever its processes hold.")
	}
	fp.Headline = footprintHeadline(fp)
	return fp
}

// footprintHeadline compares like with like: each sentence covers only the
// services for which both sides are known, and says how many those are.
func footprintHeadline(fp Footprint) []string {
	out := []string{}
	var img, wasm int64
	var n, implausible int
	var reserved, used int64
	var nm int
	for _, s := range fp.Services {
		if s.ImageImplausible != "" {
			implausible++
		} else if s.ImageBytes != nil && s.WasmBytes != nil {
			img += *s.ImageBytes
			wasm += *s.WasmBytes
			n++
		}
		if s.ReservedMemoryBytes != nil && s.WasmMemoryBytes != nil {
			reserved += *s.ReservedMemoryBytes
			used += *s.WasmMemoryBytes
			nm++
		}
	}
	if n > 0 && wasm > 0 {
		// Say it the way round it is: the comparison must not flatter Wasm.
		cmp := fmt.Sprintf("%s× smaller", fmtRatio(float64(img)/float64(wasm)))
		if wasm > img {
			cmp = fmt.Sprintf("%s× larger", fmtRatio(float64(wasm)/float64(img)))
		}
		out = append(out, fmt.Sprintf("Artifacts (measured): %s of container images (compressed layers, as analyzed) against %s of Wasm module files for the %d %s with both (the modules are %s).",
			fmtBytes(img), fmtBytes(wasm), n, plural(n, "service", "services"), cmp))
	}
	if implausible > 0 {
		out = append(out, fmt.Sprintf("Artifacts: not compared for %d %s: %s too small to hold the Java runtime %s (%s).",
			implausible, plural(implausible, "service", "services"), plural(implausible, "its analyzed image is", "their analyzed images are"),
			plural(implausible, "it ships", "they ship"), plural(implausible, "a test fixture?", "test fixtures?")))
	}
	if nm > 0 {
		out = append(out, fmt.Sprintf("Memory: the legacy deployments reserve %s (declared requests × replicas); the Wasm routes used at most %s (measured by the proxy; %d %s compared).",
			fmtBytes(reserved), fmtBytes(used), nm, plural(nm, "service", "services")))
	}
	out = append(out, perProcessHeadline(fp)...)
	if t := fp.Totals; t.Compared > 0 && t.LegacySCI > 0 {
		out = append(out, fmt.Sprintf("Carbon (estimate): %s/h legacy against %s/h Wasm for the %d compared %s, %s lower.",
			fmtGrams(t.LegacySCI), fmtGrams(t.WasmSCI), t.Compared, plural(t.Compared, "service", "services"), strangler.FormatPercent(1-t.WasmSCI/t.LegacySCI)))
	}
	return out
}

// perProcessHeadline compares the memory measured of one legacy process
// with one Wasm instance's, for the services where both were measured, and
// names the legacy processes measured without a Wasm side.
func perProcessHeadline(fp Footprint) []string {
	var legacy, wasm int64
	var n int
	var alone []string
	var aloneBytes int64
	for _, s := range fp.Services {
		switch {
		case s.LegacyRSS != nil && s.WasmInstanceMemory != nil:
			legacy += s.LegacyRSS.Bytes
			wasm += s.WasmInstanceMemory.Bytes
			n++
		case s.LegacyRSS != nil:
			alone = append(alone, s.Service)
			aloneBytes += s.LegacyRSS.Bytes
		}
	}
	var out []string
	if n > 0 && wasm > 0 {
		out = append(out, fmt.Sprintf("Memory per process (measured on the running services): one legacy process holds %s resident (RSS) against %s of linear memory for one Wasm instance, %s× less (%d %s measured on both sides, summed).",
			fmtBytes(legacy), fmtBytes(wasm), fmtRatio(float64(legacy)/float64(wasm)), n, plural(n, "service", "services")))
	}
	if len(alone) > 0 {
		out = append(out, fmt.Sprintf("Memory (measured): %s resident in the legacy %s of %s, which %s no measured Wasm instance.",
			fmtBytes(aloneBytes), plural(len(alone), "process", "processes"), strings.Join(alone, ", "), plural(len(alone), "has", "have")))
	}
	return out
}

// minJavaImageBytes is the least a container image holding a Java runtime
// weighs compressed: the smallest JRE base images (jlink-trimmed, Alpine or
// distroless) are several times this. A smaller "Java image" is synthetic.
const minJavaImageBytes = 20 << 20

func serviceFootprint(name string, s *analyze.Service, m WasmModule, routes []RouteReport, c Coefficients) ServiceFootprint {
	sf := ServiceFootprint{Service: name}
	if s != nil && s.Image != nil && s.Image.SizeBytes > 0 {
		v := s.Image.SizeBytes
		sf.ImageBytes = &v
	}
	if m.SizeBytes > 0 {
		v := m.SizeBytes
		sf.WasmBytes = &v
	}
	if s != nil && s.Image != nil && s.Image.Java != nil && s.Image.SizeBytes > 0 && s.Image.SizeBytes < minJavaImageBytes {
		sf.ImageImplausible = fmt.Sprintf("the image measures %s yet ships Java %s, whose runtime alone compresses to more than %s: it is not the image the service deploys (a test fixture?), so no size is compared",
			fmtBytes(s.Image.SizeBytes), s.Image.Java.Version, fmtBytes(minJavaImageBytes))
		sf.Notes = append(sf.Notes, sf.ImageImplausible)
	}
	if sf.ImageBytes != nil && sf.WasmBytes != nil && sf.ImageImplausible == "" {
		r := float64(*sf.ImageBytes) / float64(*sf.WasmBytes)
		sf.SizeRatio = &r
	}
	if m.MemoryBytes > 0 {
		v := m.MemoryBytes
		sf.WasmMemoryBytes = &v
	}
	if m.InstanceMemoryBytes > 0 {
		sf.WasmInstanceMemory = &Figure{Bytes: m.InstanceMemoryBytes, Basis: BasisMeasured,
			Method: "the most linear memory one instance used, measured by the proxy"}
	}

	if s != nil && s.Deployment != nil {
		d := s.Deployment
		replicas := d.Replicas
		if replicas <= 0 {
			replicas = 1
			sf.Notes = append(sf.Notes, "replicas not declared: counted as 1, the Kubernetes default")
		}
		sf.Replicas = &replicas
		memQ, memNote := resourceQuantity(d.Resources, "memory")
		cpuQ, cpuNote := resourceQuantity(d.Resources, "cpu")
		sf.Notes = appendNonEmpty(sf.Notes, memNote, cpuNote)
		sf.MemoryRequest, sf.CPURequest = memQ, cpuQ
		if memQ != "" {
			if v, err := ParseQuantity(memQ); err == nil {
				b := int64(v * float64(replicas))
				sf.ReservedMemoryBytes = &b
			} else {
				sf.Notes = append(sf.Notes, "memory request unreadable: "+err.Error())
			}
		}
		if cpuQ != "" {
			if v, err := ParseQuantity(cpuQ); err == nil {
				cores := v * float64(replicas)
				sf.ReservedVCPU = &cores
			} else {
				sf.Notes = append(sf.Notes, "CPU request unreadable: "+err.Error())
			}
		}
	}

	pue, intensity := c.PUE.Value, c.GridIntensity.Value
	if sf.ReservedVCPU != nil && sf.ReservedMemoryBytes != nil {
		watts := c.VCPUMinWatts.Value + c.CPUUtilization.Value*(c.VCPUMaxWatts.Value-c.VCPUMinWatts.Value)
		e := (*sf.ReservedVCPU*watts/1000 + float64(*sf.ReservedMemoryBytes)/gib*c.MemoryKWhPerGBHour.Value) * pue
		sf.Legacy = estimate(e, intensity, *sf.ReservedVCPU*c.EmbodiedPerVCPUHour.Value)
	} else if s != nil {
		sf.Notes = append(sf.Notes, "legacy estimate unknown: needs both CPU and memory requests")
	}

	vcpu, note := wasmVCPU(m, routes)
	sf.Notes = appendNonEmpty(sf.Notes, note)
	sf.WasmVCPU = vcpu
	if vcpu != nil && sf.WasmMemoryBytes != nil {
		e := (*vcpu*c.VCPUMaxWatts.Value/1000 + float64(*sf.WasmMemoryBytes)/gib*c.MemoryKWhPerGBHour.Value) * pue
		sf.Wasm = estimate(e, intensity, *vcpu*c.EmbodiedPerVCPUHour.Value)
	} else {
		sf.Notes = append(sf.Notes, "Wasm estimate unknown: needs measured Wasm memory and CPU time or shadow latency")
	}
	return sf
}

func estimate(kwh, intensity, embodied float64) *Estimate {
	op := kwh * intensity
	return &Estimate{EnergyKWh: kwh, OperationalG: op, EmbodiedG: embodied, SCI: op + embodied}
}

// resourceQuantity picks a resource's request, falling back to its limit as
// Kubernetes does when only a limit is set.
func resourceQuantity(r analyze.Resources, name string) (string, string) {
	if q := r.Requests[name]; q != "" {
		return q, ""
	}
	if q := r.Limits[name]; q != "" {
		return q, fmt.Sprintf("no %s request: the limit %s counts, as Kubernetes uses a lone limit as the request", name, q)
	}
	return "", ""
}

// wasmVCPU is the average vCPU the Wasm routes kept busy: measured CPU
// time when the caller has it, else candidate latency × samples over the
// span of the evidence.
func wasmVCPU(m WasmModule, routes []RouteReport) (*float64, string) {
	if m.CPUSeconds > 0 && m.Window > 0 {
		v := m.CPUSeconds / m.Window.Seconds()
		return &v, ""
	}
	var busy float64
	var start, end time.Time
	found := false
	for _, rr := range routes {
		e := rr.Evidence
		if e == nil || e.Samples == 0 || len(e.MatchSeries) == 0 {
			continue
		}
		mean, ok := meanMs(e.Candidate)
		if !ok {
			continue
		}
		found = true
		busy += mean / 1000 * float64(e.Samples)
		first, last := e.MatchSeries[0].At, e.MatchSeries[len(e.MatchSeries)-1].At
		step := time.Minute
		if n := len(e.MatchSeries); n > 1 {
			step = last.Sub(first) / time.Duration(n-1)
		}
		last = last.Add(step)
		if start.IsZero() || first.Before(start) {
			start = first
		}
		if last.After(end) {
			end = last
		}
	}
	if !found || !end.After(start) {
		return nil, ""
	}
	v := busy / end.Sub(start).Seconds()
	return &v, "Wasm vCPU estimated from Wasm latency × samples over the evidence window (wall time: an upper bound on CPU)"
}

// meanMs estimates the mean latency from the histogram (bucket midpoints),
// falling back to the median.
func meanMs(l LatencyReport) (float64, bool) {
	var sum float64
	var n int64
	prev := 0.0
	for _, b := range l.Buckets {
		sum += float64(b.Count) * (prev + b.LeMs) / 2
		n += b.Count
		prev = b.LeMs
	}
	if n > 0 {
		return sum / float64(n), true
	}
	if l.P50Ms != nil {
		return *l.P50Ms, true
	}
	return 0, false
}

func appendNonEmpty(list []string, s ...string) []string {
	for _, x := range s {
		if x != "" {
			list = append(list, x)
		}
	}
	return list
}
