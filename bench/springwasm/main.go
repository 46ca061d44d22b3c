//go:build linux

// Command springwasm measures the real Spring Boot fleet (fixtures/spring)
// against the Go Wasm ports that replace it, side by side in one run: for
// each JVM, the time from exec to its first 200 on an API route and its
// resident memory once idle; for each Wasm port run in process (proxy/wasm),
// the time to compile the module, the first request (instantiation
// included), the median of fresh-instance requests, and the linear memory
// one instance uses; then the published load test (-load POST /api/order at
// -c) on the JVM order-service directly, through `migrate proxy` with the
// route in legacy mode, directly again, and on its Wasm port in process. It prints
// Markdown tables; see bench/spring-vs-wasm.sh.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strangler-fig/migrate/fixtures"
	"github.com/strangler-fig/migrate/fixtures/spring"
	"github.com/strangler-fig/migrate/proxy/wasm"
)

// probe is the route each service is timed to its first 200 on.
var probe = map[string]struct{ method, path, body string }{
	fixtures.ProductService:      {"GET", "/api/product", ""},
	fixtures.InventoryService:    {"GET", "/api/inventory?skuCode=ENG-V8-500&skuCode=FL-PMP-ELEC", ""},
	fixtures.OrderService:        {"POST", "/api/order", `{"orderLineItemsDtoList":[{"skuCode":"ENG-V8-500","price":1000,"quantity":1}]}`},
	fixtures.NotificationService: {"GET", "/actuator/health", ""},
}

var loadN, loadC int

var guests = map[string]string{fixtures.ProductService: "product", fixtures.InventoryService: "inventory", fixtures.OrderService: "order"}

func main() {
	requests := flag.Int("requests", 200, "fresh-instance requests per Wasm port for the median")
	flag.IntVar(&loadN, "load", 10000, "POST /api/order requests of the load test, on the JVM and on the Wasm port (0: skip)")
	flag.IntVar(&loadC, "c", 20, "concurrency of the load test")
	flag.Parse()
	if err := run(*requests); err != nil {
		fmt.Fprintln(os.Stderr, "springwasm:", err)
		os.Exit(1)
	}
}

type jvmResult struct {
	startup       time.Duration
	rss, hwm      int64 // KiB, idle after warm-up
	pid           int
	healthStartup time.Duration
}

type wasmResult struct {
	compile, first, median time.Duration
	peakMemory             uint64
	moduleBytes            int64
}

func run(requests int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fmt.Fprintln(os.Stderr, "building the Spring fleet (or reusing the cached build)...")
	b, err := spring.BuildFleet(ctx)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "springwasm-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// One JVM at a time, so each start-up has the machine to itself (as
	// much as a shared machine allows); each stays up for the idle figure.
	jvms := map[string]*jvmResult{}
	var cmds []*exec.Cmd
	defer func() {
		for _, c := range cmds {
			c.Process.Signal(syscall.SIGTERM)
			c.Wait()
		}
	}()
	urls := map[string]string{}
	for _, name := range fixtures.ServiceNames {
		port, err := freePort()
		if err != nil {
			return err
		}
		urls[name] = "http://127.0.0.1:" + strconv.Itoa(port)
		args := append(append([]string(nil), spring.JVMOptions...), "-jar", b.Jars[name], "--server.port="+strconv.Itoa(port), "--server.address=127.0.0.1")
		cmd := exec.CommandContext(ctx, b.Toolchain.Java, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "INVENTORY_URL="+urls[fixtures.InventoryService]+"/api/inventory")
		logf, err := os.Create(filepath.Join(work, name+".log"))
		if err != nil {
			return err
		}
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		fmt.Fprintf(os.Stderr, "starting %s...\n", name)
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds = append(cmds, cmd)
		p := probe[name]
		health, err := first200(ctx, urls[name], "GET", "/actuator/health", "", start, 4*time.Minute)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		api, err := first200(ctx, urls[name], p.method, p.path, p.body, start, time.Minute)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		jvms[name] = &jvmResult{startup: api, healthStartup: health, pid: cmd.Process.Pid}
	}
	// Warm up each service a little, then let it settle before reading RSS.
	for _, name := range fixtures.ServiceNames {
		p := probe[name]
		for range 50 {
			if _, err := send(ctx, urls[name], p.method, p.path, p.body); err != nil {
				return err
			}
		}
	}
	time.Sleep(5 * time.Second)
	for _, name := range fixtures.ServiceNames {
		r := jvms[name]
		r.rss, r.hwm, err = procMemory(r.pid)
		if err != nil {
			return err
		}
	}

	fmt.Fprintln(os.Stderr, "building and timing the Wasm ports...")
	mods, err := fixtures.BuildWasm(ctx, filepath.Join(work, "wasm"))
	if err != nil {
		return err
	}
	ports := map[string]*wasmResult{}
	for service, guest := range guests {
		rt, err := wasm.NewRuntime(ctx, "", nil) // no compilation cache: a cold start
		if err != nil {
			return err
		}
		st, err := os.Stat(mods[guest])
		if err != nil {
			return err
		}
		r := &wasmResult{moduleBytes: st.Size()}
		start := time.Now()
		be, err := wasm.New(ctx, wasm.Options{Path: mods[guest]}, rt)
		if err != nil {
			return err
		}
		r.compile = time.Since(start)
		p := probe[service]
		var lat []time.Duration
		for i := 0; i <= requests; i++ {
			var body io.Reader
			if p.body != "" {
				body = strings.NewReader(p.body)
			}
			req, _ := http.NewRequestWithContext(ctx, p.method, "http://127.0.0.1"+p.path, body)
			if p.body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			t := time.Now()
			resp, err := be.RoundTrip(req)
			if err != nil {
				return fmt.Errorf("%s port: %w", service, err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			d := time.Since(t)
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s port answered %d", service, resp.StatusCode)
			}
			if i == 0 {
				r.first = d
			} else {
				lat = append(lat, d)
			}
		}
		slices.Sort(lat)
		r.median = lat[len(lat)/2]
		r.peakMemory = be.Stats().PeakMemory
		be.Close(ctx)
		rt.Close(ctx)
		ports[service] = r
	}

	var jvmLoad, proxiedLoad, jvmLoad2, wasmLoad, cutLoad loadResult
	var proxyCPU, cutCPU time.Duration
	if loadN > 0 {
		p := probe[fixtures.OrderService]
		onJVM := func(base string) func() (bool, error) {
			return func() (bool, error) {
				code, b, err := sendRead(ctx, base, p.method, p.path, p.body)
				return placed(code, b), err
			}
		}
		proxyURL, px, err := startProxy(ctx, work, urls[fixtures.OrderService], "")
		if err != nil {
			return err
		}
		// Direct, through the proxy, direct again: the proxied run sits
		// between two direct ones, so the JVM's JIT warming up over the
		// runs flatters neither side.
		fmt.Fprintf(os.Stderr, "load test: %d POST /api/order at c=%d on the JVM...\n", loadN, loadC)
		jvmLoad = load(loadN, loadC, onJVM(urls[fixtures.OrderService]))
		fmt.Fprintf(os.Stderr, "load test: the same through migrate proxy (route in legacy mode)...\n")
		cpu0 := px.cpu()
		proxiedLoad = load(loadN, loadC, onJVM(proxyURL))
		proxyCPU = px.cpu() - cpu0
		px.stop()
		fmt.Fprintf(os.Stderr, "load test: on the JVM directly again...\n")
		jvmLoad2 = load(loadN, loadC, onJVM(urls[fixtures.OrderService]))
		rt, err := wasm.NewRuntime(ctx, "", nil)
		if err != nil {
			return err
		}
		be, err := wasm.New(ctx, wasm.Options{Path: mods["order"]}, rt)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "load test: the same on the Wasm port...\n")
		wasmLoad = load(loadN, loadC, func() (bool, error) {
			req, _ := http.NewRequestWithContext(ctx, p.method, "http://127.0.0.1"+p.path, strings.NewReader(p.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := be.RoundTrip(req)
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			return placed(resp.StatusCode, b), err
		})
		be.Close(ctx)
		rt.Close(ctx)
		cutURL, cpx, err := startProxy(ctx, work, urls[fixtures.OrderService], mods["order"])
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "load test: the same through migrate proxy, the route cut over to the Wasm port...\n")
		cpu0 = cpx.cpu()
		cutLoad = load(loadN, loadC, onJVM(cutURL))
		cutCPU = cpx.cpu() - cpu0
		cpx.stop()
	}

	fmt.Printf("Spring Boot %s on %s (%s), JVM options `%s`; Wasm ports on wazero in process, %d fresh-instance requests each.\n\n",
		spring.BootVersion, "Java "+b.Toolchain.JavaVersion, b.Toolchain.Java, strings.Join(spring.JVMOptions, " "), requests)
	fmt.Println("| service | JVM: exec → first 200 on the API (health) | JVM idle RSS (peak) | Wasm: compile | first request | median request (fresh instance) | linear memory per instance | module |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, name := range fixtures.ServiceNames {
		j := jvms[name]
		row := fmt.Sprintf("| %s | %s (%s) | %s (%s) |", name, secs(j.startup), secs(j.healthStartup), mib(j.rss*1024), mib(j.hwm*1024))
		if w := ports[name]; w != nil {
			row += fmt.Sprintf(" %s | %s | %s | %s | %s |", ms(w.compile), ms(w.first), ms(w.median), mib(int64(w.peakMemory)), mib(w.moduleBytes))
		} else {
			row += " — | — | — | — | — (no port: it only consumes events) |"
		}
		fmt.Println(row)
	}
	if loadN > 0 {
		fmt.Printf("\nLoad test: %d × `POST /api/order` (one in-stock line), concurrency %d.\n\n", loadN, loadC)
		fmt.Println("| order-service | req/s | placed (201) | other answers / errors | p50 | p99 | slowest |")
		fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
		for _, r := range []struct {
			name string
			l    loadResult
		}{{"Spring Boot JVM, direct (its inventory call included), run 1", jvmLoad},
			{"Spring Boot JVM through `migrate proxy`, route in legacy mode", proxiedLoad},
			{"Spring Boot JVM, direct, run 2", jvmLoad2},
			{"Wasm port in process, fresh instance per request", wasmLoad},
			{"Wasm port through `migrate proxy`, route cut over, fresh instance per request", cutLoad}} {
			fmt.Printf("| %s | %.0f | %d | %d | %s | %s | %s |\n", r.name, r.l.rps, r.l.created, r.l.other, ms(r.l.p50), ms(r.l.p99), ms(r.l.max))
		}
		fmt.Printf("\nThe proxy used %s of CPU for the %d proxied requests to the JVM (%.0f µs each), %s for the %d it answered with the Wasm port (%.0f µs each, the guest included).\n",
			proxyCPU.Round(time.Millisecond), loadN, float64(proxyCPU.Microseconds())/float64(loadN),
			cutCPU.Round(time.Millisecond), loadN, float64(cutCPU.Microseconds())/float64(loadN))
	}
	return nil
}

type loadResult struct {
	rps            float64
	created, other int
	p50, p99, max  time.Duration
}

// load sends n requests from c workers and summarises what came back.
func load(n, c int, do func() (bool, error)) loadResult {
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)
	start := time.Now()
	done := make(chan struct{})
	for range c {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range next {
				t := time.Now()
				placed, err := do()
				lat[i] = time.Since(t)
				ok[i] = placed && err == nil
			}
		}()
	}
	for range c {
		<-done
	}
	elapsed := time.Since(start)
	var r loadResult
	for _, placed := range ok {
		if placed {
			r.created++
		} else {
			r.other++
		}
	}
	slices.Sort(lat)
	r.rps = float64(n) / elapsed.Seconds()
	r.p50, r.p99, r.max = lat[n/2], lat[n*99/100], lat[n-1]
	return r
}

// first200 polls until method path answers 200 or 201, and returns the time since start.
func first200(ctx context.Context, base, method, path, body string, start time.Time, limit time.Duration) (time.Duration, error) {
	deadline := start.Add(limit)
	for time.Now().Before(deadline) {
		if code, err := send(ctx, base, method, path, body); err == nil && code/100 == 2 {
			return time.Since(start), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("no 2xx from %s %s within %s", method, path, limit)
}

var client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}

func send(ctx context.Context, base, method, path, body string) (int, error) {
	code, _, err := sendRead(ctx, base, method, path, body)
	return code, err
}

// placed reports whether an order-service answer is a placed order: a 201
// may also be the out-of-stock or circuit-breaker message.
func placed(code int, body []byte) bool {
	return code == http.StatusCreated && strings.HasPrefix(string(body), "Order Number ")
}

func sendRead(ctx context.Context, base, method, path, body string) (int, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// procMemory reads VmRSS and VmHWM (KiB) of a process.
func procMemory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = n
		case "VmHWM":
			hwm = n
		}
	}
	return rss, hwm, sc.Err()
}

// proxyProc is a running `migrate proxy`.
type proxyProc struct{ cmd *exec.Cmd }

// cpu is the proxy's user+system CPU time so far (/proc/PID/stat).
func (p proxyProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the parenthesised command name: utime is the 12th, stime the 13th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
}

func (p proxyProc) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
}

// startProxy builds migrate (once) and runs `migrate proxy` with order-service's
// POST /api/order route, the JVM at legacy, and returns its URL once an
// order placed through it succeeds. With a candidate module the route is cut
// over to it (in process, a fresh instance per request); without, it stays on
// legacy.
func startProxy(ctx context.Context, work, legacy, candidate string) (string, proxyProc, error) {
	dir := filepath.Join(work, "proxy-legacy")
	if candidate != "" {
		dir = filepath.Join(work, "proxy-cutover")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", proxyProc{}, err
	}
	bin := filepath.Join(work, "migrate")
	if _, err := os.Stat(bin); err != nil { // built by the first call
		if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/migrate").CombinedOutput(); err != nil {
			return "", proxyProc{}, fmt.Errorf("build migrate: %v\n%s", err, out)
		}
	}
	port, err := freePort()
	if err != nil {
		return "", proxyProc{}, err
	}
	admin, err := freePort()
	if err != nil {
		return "", proxyProc{}, err
	}
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\nadmin: 127.0.0.1:%d\nstore: migrate.db\naccessLogSample: 0%%\nservices:\n"+
		"  order-service:\n    legacy: %s\n    routes: [\"POST /api/order\"]\n", port, admin, legacy)
	if candidate != "" {
		conf += fmt.Sprintf("    mode: cutover\n    candidate: {wasm: %q}\n", candidate)
	}
	if err := os.WriteFile(filepath.Join(dir, "strangler.yaml"), []byte(conf), 0o644); err != nil {
		return "", proxyProc{}, err
	}
	cmd := exec.CommandContext(ctx, bin, "proxy", "--config", "strangler.yaml", "--log-level", "warn")
	cmd.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "proxy.log"))
	if err != nil {
		return "", proxyProc{}, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return "", proxyProc{}, err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	p := probe[fixtures.OrderService]
	if _, err := first200(ctx, url, p.method, p.path, p.body, time.Now(), 30*time.Second); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return "", proxyProc{}, fmt.Errorf("migrate proxy: %w (log %s)", err, logf.Name())
	}
	return url, proxyProc{cmd}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
func ms(d time.Duration) string   { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }
func mib(b int64) string          { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
