package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// benchBodies returns two ~4 KiB JSON product listings that differ in a
// handful of places: two prices (one only in literal form), a renamed
// field, a changed SKU and an extra field.
func benchBodies() (string, string) {
	var a, b strings.Builder
	a.WriteString("[")
	b.WriteString("[")
	for i := 0; i < 24; i++ {
		if i > 0 {
			a.WriteString(",")
			b.WriteString(",")
		}
		fmt.Fprintf(&a, `{"id":"%08d-4f89-11d3-9a0c-0305e82c3301","name":"Part %d","description":"Replacement part number %d for the fleet","price":%d.00,"skuCode":"SKU-%04d","inStock":true}`, i, i, i, 100+i, i)
		price := fmt.Sprintf("%d.00", 100+i)
		sku := fmt.Sprintf("SKU-%04d", i)
		desc := fmt.Sprintf("Replacement part number %d for the fleet", i)
		extra := ""
		switch i {
		case 3:
			price = "103"
		case 7:
			price = "999.00"
		case 11:
			sku = "SKU-XXXX"
		case 15:
			extra = `,"is_in_stock":true`
		}
		if i == 19 {
			fmt.Fprintf(&b, `{"id":"%08d-4f89-11d3-9a0c-0305e82c3301","name":"Part %d","description":%q,"price":%s,"sku":%q,"inStock":true%s}`, i, i, desc, price, sku, extra)
			continue
		}
		fmt.Fprintf(&b, `{"id":"%08d-4f89-11d3-9a0c-0305e82c3301","name":"Part %d","description":%q,"price":%s,"skuCode":%q,"inStock":true%s}`, i, i, desc, price, sku, extra)
	}
	a.WriteString("]")
	b.WriteString("]")
	return a.String(), b.String()
}

// cpuTime is the process's user+system CPU time. The build machine is
// shared, so wall-clock ns/op swings with other load; CPU time per
// operation (GC work included) is the stable per-core figure.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-µs/op and ops/s per core, measured in CPU time.
func reportCPU(b *testing.B, start time.Duration, unit string) {
	cpu := cpuTime() - start
	if cpu <= 0 {
		return
	}
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), unit+"/cpu-s")
}

func BenchmarkCompareJSON4K(b *testing.B) {
	la, ca := benchBodies()
	legacy, cand := jsonResp(200, la), jsonResp(200, ca)
	opts := &Options{Ignore: []string{"/*/description"}}
	res := Compare(legacy, cand, opts, nil)
	if n := len(diffsOf(res)); n < 4 || n > 8 {
		b.Fatalf("benchmark bodies should differ in a handful of places, got %d: %+v", n, res.Differences)
	}
	b.SetBytes(int64(len(la) + len(ca)))
	b.ReportAllocs()
	b.ResetTimer()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		Compare(legacy, cand, opts, nil)
	}
	reportCPU(b, start, "compares")
}

func BenchmarkCompareJSON4KEqual(b *testing.B) {
	la, _ := benchBodies()
	legacy := jsonResp(200, la)
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		Compare(legacy, legacy, nil, nil)
	}
	reportCPU(b, start, "compares")
}

// BenchmarkNaiveDeepEqual is what a user would write instead: unmarshal
// both bodies into interface{} and reflect.DeepEqual them. It says only
// "different", with no path, type or noise handling.
func BenchmarkNaiveDeepEqual(b *testing.B) {
	la, ca := benchBodies()
	lb, cb := []byte(la), []byte(ca)
	b.SetBytes(int64(len(la) + len(ca)))
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; i < b.N; i++ {
		var x, y any
		json.Unmarshal(lb, &x)
		json.Unmarshal(cb, &y)
		if reflect.DeepEqual(x, y) {
			b.Fatal("bodies should differ")
		}
	}
	reportCPU(b, start, "compares")
}

func BenchmarkEvidenceAdd(b *testing.B) {
	e := NewEvidence("GET /x", "")
	t0 := time.Now()
	samples := []Sample{
		{Result: Result{Outcome: OutcomeMatch}},
		{Result: mismatch("/*/price value", "/*/sku extra")},
		{Result: Result{Outcome: OutcomeCandidateError, Error: ErrTimeout}},
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := samples[i%len(samples)]
		if i%10 != 1 {
			s = samples[0]
		}
		s.At = t0.Add(time.Duration(i) * time.Millisecond)
		s.Legacy.Latency = time.Duration(1000+i%5000) * time.Microsecond
		s.Candidate.Latency = time.Duration(800+i%7000) * time.Microsecond
		e.Add(s)
	}
}

// BenchmarkGateSummary1M evaluates the gate-facing summary of a route with
// 1,000,000 samples (target: ≤ 50 ms).
func BenchmarkGateSummary1M(b *testing.B) {
	e, n := evidence1M(b)
	b.ReportAllocs()
	b.ResetTimer()
	var sum Summary
	for i := 0; i < b.N; i++ {
		sum = e.Summary(n)
	}
	if sum.Samples != 1_000_000 || sum.Explained == 0 {
		b.Fatalf("summary %+v", sum)
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/eval")
}

// BenchmarkEvidenceClone1M is what the controller pays to snapshot a
// route's evidence (Mirror.Evidence) before evaluating its gate.
func BenchmarkEvidenceClone1M(b *testing.B) {
	e, _ := evidence1M(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if c := e.Clone(); c.Samples != e.Samples {
			b.Fatal("clone differs")
		}
	}
}

// evidence1M builds the evidence of 1,000,000 samples: 97% matches, a
// recurring and a long tail of mismatch classes, 1% candidate errors.
func evidence1M(b *testing.B) (*Evidence, *Noise) {
	e := NewEvidence("GET /x", "")
	t0 := time.Now()
	match := Sample{Result: Result{Outcome: OutcomeMatch}}
	for i := 0; i < 1_000_000; i++ {
		s := match
		switch i % 100 {
		case 7:
			s.Result = mismatch("/*/price value")
		case 9:
			s.Result = mismatch(fmt.Sprintf("/f%d value", i%300))
		case 11:
			s.Result = Result{Outcome: OutcomeCandidateError, Error: ErrReset}
		}
		s.At = t0.Add(time.Duration(i) * 10 * time.Millisecond)
		s.Legacy.Latency = time.Duration(1000+i%5000) * time.Microsecond
		s.Candidate.Latency = time.Duration(800+i%7000) * time.Microsecond
		e.Add(s)
	}
	n := NewNoise()
	n.Learn(mismatch("/*/price value"), t0)
	return e, n
}

// BenchmarkMirrorSustained floods one route with 4 KiB exchanges while the
// candidate answers slowly (2 ms), as fast as Submit can be called, and
// reports the peak live heap: queue and sample caps must keep it flat no
// matter how many requests pass.
func BenchmarkMirrorSustained(b *testing.B) {
	la, ca := benchBodies()
	candidate := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(2 * time.Millisecond)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, ca)
	}))
	defer candidate.Close()
	be := newUpstream(b, candidate.URL)
	var recorded int
	m := NewMirror(MirrorConfig{Workers: 4, QueueSize: 64}, RecorderFunc(func(Sample) { recorded++ }))
	legacy := jsonResp(200, la)
	body := []byte(strings.Repeat("x", 4096))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak uint64
	accepted := 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("PUT", "/api/product", nil)
		// A fresh *Options per request on purpose: the compile cache must
		// stay bounded even for a caller that does this.
		if m.Submit(Exchange{Route: "PUT /api/product", Options: &Options{Writes: WritesAllow}, Request: req, Body: body,
			Legacy: legacy, Candidate: be}) == OutcomeQueued {
			accepted++
		}
		if i%20000 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.Close(ctx)
	ev := m.Evidence("PUT /api/product")
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(peak-min(base, peak))/(1<<20), "peak-heap-MB")
	b.ReportMetric(float64(ms.HeapAlloc-min(base, ms.HeapAlloc))/(1<<20), "retained-MB")
	b.ReportMetric(float64(ev.Drops)/float64(b.N)*100, "%dropped")
	b.ReportMetric(float64(ev.Samples), "compared")
}
