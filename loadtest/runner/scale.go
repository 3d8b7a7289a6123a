package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgeway/gateway/loadtest/harness"
	"github.com/valyala/fasthttp"
)

// memory is a gateway's resident and Go heap figures.
type memory struct {
	rssKB  int64
	hwmKB  int64 // peak RSS
	heapKB int64 // go_memstats_heap_inuse_bytes / 1024; 0 when not exported
}

// readMemory reads g's memory. The Go heap in use still holds the
// garbage of loading until the next collection, which may not come soon:
// the proxy path allocates nothing, so traffic does not trigger one.
func readMemory(g *harness.Gateway) memory {
	m := memory{}
	m.rssKB, _ = harness.StatusKB(g.Pid(), "VmRSS")
	m.hwmKB, _ = harness.StatusKB(g.Pid(), "VmHWM")
	resp, err := http.Get("http://" + g.Admin + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "go_memstats_heap_inuse_bytes "); ok {
			v, _ := strconv.ParseFloat(rest, 64)
			m.heapKB = int64(v / 1024)
		}
	}
	return m
}

func perTenK(a, b int64, routes int) string {
	return fmt.Sprintf("%.1f", float64(b-a)/1024/(float64(routes)/10000))
}

// manyRoutes compares a gateway serving one route with one serving
// -routes routes, both from a standalone file (the fast way to load
// 100,000 routes: one file, one compile). Both run at once on the gateway
// core and are measured in alternation, -scale-rounds times each; the
// figures are medians, and CPU time per request (the gateway process's
// user+system time over the runs / requests) is the steadier measure on a
// noisy machine.
func (r *runner) manyRoutes() error {
	n := *nroutes
	fmt.Printf("== 1 route against %d routes (standalone files) ==\n", n)
	small, large := filepath.Join(r.dir, "one.json"), filepath.Join(r.dir, "many.json")
	if err := writeStandalone(small, r.nodes[:2], 0); err != nil {
		return err
	}
	if err := writeStandalone(large, r.nodes[:2], n); err != nil {
		return err
	}
	type side struct {
		name  string
		g     *harness.Gateway
		ready time.Duration
		rps   []float64
		p50   []float64
		p99   []float64
		reqs  int64
		errs  harness.WrkResult // error counters summed over runs
		cpu   time.Duration
		mem   memory
	}
	sides := []*side{{name: "1-route"}, {name: fmt.Sprintf("%dk-routes", n/1000)}}
	for i, file := range []string{small, large} {
		start := time.Now()
		g, err := r.startGateway(sides[i].name, file)
		if err != nil {
			return err
		}
		defer g.Stop()
		sides[i].g, sides[i].ready = g, time.Since(start)
	}
	for round := 0; round < *scaleRounds; round++ {
		for k := range sides {
			s := sides[(round+k)%len(sides)]
			before, err := harness.TreeCPU(s.g.Pid())
			if err != nil {
				return err
			}
			res, err := harness.RunWrk(context.Background(), harness.WrkOptions{URL: "http://" + s.g.Proxy + "/hello",
				Script: r.script("get.lua"), Conns: *conns, Duration: *duration, CPUs: *loadCPUs})
			if err != nil {
				return err
			}
			after, err := harness.TreeCPU(s.g.Pid())
			if err != nil {
				return err
			}
			s.rps, s.p50, s.p99 = append(s.rps, res.RPS()), append(s.p50, float64(res.P50US)), append(s.p99, float64(res.P99US))
			s.reqs += res.Requests
			s.errs.AddErrors(res)
			s.cpu += after - before
			fmt.Printf("  round %d %-12s GET /hello %9.0f req/s  p99 %-9v errors %d\n", round+1, s.name, res.RPS(), res.P99(), res.Errors())
		}
	}
	if _, err := r.wrk(sides[1].name+" GET "+middleURI(n), "http://"+sides[1].g.Proxy+middleURI(n), "get.lua"); err != nil {
		return err
	}
	for _, s := range sides {
		s.mem = readMemory(s.g)
		r.rows = append(r.rows, row{name: s.name + " GET /hello", tool: "wrk get.lua", rps: harness.Median(s.rps), p50: time.Duration(harness.Median(s.p50)) * time.Microsecond,
			p99:  time.Duration(harness.Median(s.p99)) * time.Microsecond,
			note: fmt.Sprintf("median of %d alternating runs; CPU %.2f µs/request", len(s.rps), harness.CPUPerRequest(s.cpu, s.reqs))})
	}
	one, many := sides[0], sides[1]
	ratio := harness.Median(many.rps) / harness.Median(one.rps)
	cpuRatio := harness.CPUPerRequest(many.cpu, many.reqs) / harness.CPUPerRequest(one.cpu, one.reqs)
	r.figure(fmt.Sprintf("%d routes: throughput vs 1 route", n),
		fmt.Sprintf("%.2f× (median %.0f vs %.0f req/s over %d alternating runs each; CPU per request %.2f×: %.2f vs %.2f µs)",
			ratio, harness.Median(many.rps), harness.Median(one.rps), *scaleRounds, cpuRatio,
			harness.CPUPerRequest(many.cpu, many.reqs), harness.CPUPerRequest(one.cpu, one.reqs)),
		"≥ 0.9×", verdict(ratio >= 0.9))
	r.figure(fmt.Sprintf("%d routes from a standalone file: start to ready", n),
		fmt.Sprintf("%v (1 route: %v)", many.ready.Round(time.Millisecond), one.ready.Round(time.Millisecond)), "reported", "")
	r.figure("memory per 10,000 routes (standalone file)",
		fmt.Sprintf("RSS +%s MiB, Go heap in use +%s MiB (RSS %s with 1 route, %s with %d, peak %s while loading)",
			perTenK(one.mem.rssKB, many.mem.rssKB, n), perTenK(one.mem.heapKB, many.mem.heapKB, n),
			mib(one.mem.rssKB), mib(many.mem.rssKB), n, mib(many.mem.hwmKB)), "reported", "")
	return nil
}

// adminAtScale measures, on a gateway with the embedded store holding
// -routes routes, how long an Admin API write takes to be served and
// whether requests in flight meanwhile are held up.
func (r *runner) adminAtScale() error {
	n := *nroutes
	fmt.Printf("== Admin API writes at %d routes (embedded store) ==\n", n)
	t := time.Now()
	if err := prepopulate(filepath.Join(r.dir, "empty-data"), r.nodes[:2], 0); err != nil {
		return err
	}
	if err := prepopulate(filepath.Join(r.dir, "large-data"), r.nodes[:2], n); err != nil {
		return err
	}
	fmt.Printf("  stores written in %v\n", time.Since(t).Round(time.Millisecond))
	empty, err := r.startGateway("empty", "")
	if err != nil {
		return err
	}
	// Warm the proxy path, then read its memory.
	if _, err := r.wrkQuiet("http://"+empty.Proxy+"/hello", 2*time.Second); err != nil {
		empty.Stop()
		return err
	}
	emptyMem := readMemory(empty)
	empty.Stop()

	start := time.Now()
	g, err := r.startGateway("large", "")
	if err != nil {
		return err
	}
	defer g.Stop()
	ready := time.Since(start)
	if _, err := r.wrkQuiet("http://"+g.Proxy+"/hello", 2*time.Second); err != nil {
		return err
	}
	largeMem := readMemory(g)
	r.figure(fmt.Sprintf("%d routes in the embedded store: start to ready", n), ready.Round(time.Millisecond).String(), "reported", "")
	r.figure("memory per 10,000 routes (embedded store)",
		fmt.Sprintf("RSS +%s MiB, Go heap in use +%s MiB (RSS %s with 1 route, %s with %d, peak %s while loading)",
			perTenK(emptyMem.rssKB, largeMem.rssKB, n), perTenK(emptyMem.heapKB, largeMem.heapKB, n),
			mib(emptyMem.rssKB), mib(largeMem.rssKB), n, mib(largeMem.hwmKB)), "reported", "")

	url := "http://" + g.Proxy + "/hello"
	quiet, err := r.wrk(fmt.Sprintf("%dk routes, quiet", n/1000), url, "get.lua")
	if err != nil {
		return err
	}
	// Writes spaced over the wrk run, each probed.
	const writes = 8
	var vis, put []time.Duration
	var probeErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(*duration / (writes + 1))
		for k := 0; k < writes; k++ {
			v, p, err := probeWrite(g, k)
			if err != nil {
				probeErr = err
				return
			}
			vis, put = append(vis, v), append(put, p)
			time.Sleep(*duration / (writes + 1))
		}
	}()
	busy, err := r.wrk(fmt.Sprintf("%dk routes, %d admin writes", n/1000, writes), url, "get.lua")
	wg.Wait()
	if err != nil {
		return err
	}
	if probeErr != nil {
		return probeErr
	}
	slices.Sort(vis)
	slices.Sort(put)
	r.rows[len(r.rows)-1].note = fmt.Sprintf("max latency %v (quiet: %v)", time.Duration(busy.MaxUS)*time.Microsecond,
		time.Duration(quiet.MaxUS)*time.Microsecond)
	r.figure(fmt.Sprintf("admin write at %d routes: write to first request served with it", n),
		fmt.Sprintf("median %v, max %v over %d writes (PUT answered in median %v, max %v)",
			vis[len(vis)/2].Round(time.Microsecond), vis[len(vis)-1].Round(time.Microsecond), len(vis),
			put[len(put)/2].Round(time.Microsecond), put[len(put)-1].Round(time.Microsecond)),
		"< 100 ms", verdict(vis[len(vis)-1] < 100*time.Millisecond))
	r.figure(fmt.Sprintf("admin writes at %d routes: requests held up", n),
		fmt.Sprintf("errors %d; p99 %v, max %v (quiet: p99 %v, max %v)", busy.Errors(), busy.P99(),
			time.Duration(busy.MaxUS)*time.Microsecond, quiet.P99(), time.Duration(quiet.MaxUS)*time.Microsecond),
		"never blocked", "see max latency")
	return nil
}

// wrkQuiet runs wrk without recording a row (warm-up).
func (r *runner) wrkQuiet(url string, d time.Duration) (harness.WrkResult, error) {
	return harness.RunWrk(context.Background(), harness.WrkOptions{URL: url, Script: r.script("get.lua"),
		Conns: 8, Duration: d, CPUs: *loadCPUs})
}

// probeWrite PUTs route vis-k (uri /vis/k) while a client polls /vis/k
// back to back, and returns the time from sending the PUT to the first
// 200 from the proxy, and the time the PUT took to be answered.
func probeWrite(g *harness.Gateway, k int) (visible, answered time.Duration, err error) {
	path := fmt.Sprintf("/vis/%d", k)
	c := &fasthttp.HostClient{Addr: g.Proxy}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + g.Proxy + path)
	// The route must not exist yet.
	if err := c.Do(req, resp); err != nil || resp.StatusCode() != 404 {
		return 0, 0, fmt.Errorf("probe %s before the write: status %d, %v", path, resp.StatusCode(), err)
	}
	start := time.Now()
	putDone := make(chan error, 1)
	var putTook time.Duration
	go func() {
		err := g.Put(fmt.Sprintf("routes/vis-%d", k), fmt.Sprintf(`{"uri":"%s","upstream_id":"web"}`, path))
		putTook = time.Since(start)
		putDone <- err
	}()
	deadline := start.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if err := c.Do(req, resp); err != nil {
			return 0, 0, fmt.Errorf("probe %s: %w", path, err)
		}
		if resp.StatusCode() == 200 {
			visible = time.Since(start)
			break
		}
	}
	if err := <-putDone; err != nil {
		return 0, 0, err
	}
	if visible == 0 {
		return 0, 0, fmt.Errorf("route %s not served 30 s after the write", path)
	}
	return visible, putTook, nil
}
