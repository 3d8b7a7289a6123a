package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/loadtest/harness"
)

// mainGateway runs the scripts, k6, churn and stream parts on one gateway
// with the embedded store, configured through the Admin API.
func (r *runner) mainGateway() error {
	fmt.Println("== gateway (embedded store), configured through the Admin API ==")
	g, err := r.startGateway("gateway", "")
	if err != nil {
		return err
	}
	defer g.Stop()
	web := fmt.Sprintf(`{"type":"roundrobin","nodes":{"%s":1,"%s":1}}`, r.nodes[0], r.nodes[1])
	var ch strings.Builder
	for i, a := range r.nodes {
		if i > 0 {
			ch.WriteByte(',')
		}
		fmt.Fprintf(&ch, `"%s":1`, a)
	}
	puts := [][2]string{
		{"upstreams/web", web},
		{"upstreams/chash", `{"type":"chash","hash_on":"vars","key":"arg_user","nodes":{` + ch.String() + `}}`},
		{"routes/hello", `{"uri":"/hello","upstream_id":"web"}`},
		{"routes/post", `{"uri":"/post","methods":["POST"],"upstream_id":"web"}`},
		{"routes/chash", `{"uri":"/chash","upstream_id":"chash"}`},
	}
	for _, p := range puts {
		if err := g.Put(p[0], p[1]); err != nil {
			return err
		}
	}
	const hosts = 1000
	if err := harness.PutMany(g.Admin, hosts, 32, func(i int) (string, string) {
		return fmt.Sprintf("routes/site%d", i), fmt.Sprintf(`{"uri":"/site","hosts":["h%d.example.com"],"upstream_id":"web"}`, i)
	}); err != nil {
		return err
	}
	base := "http://" + g.Proxy
	if enabled("scripts") {
		if _, err := r.wrk("GET /hello", base+"/hello", "get.lua"); err != nil {
			return err
		}
		if _, err := r.wrk("POST 128 B/1 KiB/16 KiB", base+"/post", "post.lua", "128", "1024", "16384"); err != nil {
			return err
		}
		if _, err := r.wrk("chash, 100,000 keys", base+"/chash", "chash.lua", "100000"); err != nil {
			return err
		}
		if _, err := r.wrk("1,000 hosts", base+"/site", "hosts.lua", strconv.Itoa(hosts)); err != nil {
			return err
		}
	}
	if enabled("k6") {
		if err := r.k6Run("k6 arrival", "arrival.js", g, ""); err != nil {
			return err
		}
	}
	if enabled("churn") {
		if err := r.churn(g); err != nil {
			return err
		}
		if err := r.k6Run("k6 churn", "churn.js", g, strconv.Itoa(*writesPerS)); err != nil {
			return err
		}
	}
	if enabled("stream") {
		if err := r.stream(g); err != nil {
			return err
		}
	}
	return nil
}

// k6Summary is the line printed by loadtest/k6/summary.js.
type k6Summary struct {
	Requests     float64  `json:"requests"`
	RPS          float64  `json:"rps"`
	P50ms        float64  `json:"p50_ms"`
	P99ms        float64  `json:"p99_ms"`
	Maxms        float64  `json:"max_ms"`
	Failed       float64  `json:"failed"`
	Dropped      float64  `json:"dropped_iterations"`
	AdminWrites  *float64 `json:"admin_writes"`
	AdminFailed  *float64 `json:"admin_failed"`
	ThresholdsOK bool     `json:"thresholds_ok"`
}

func (r *runner) k6Run(name, script string, g *harness.Gateway, writes string) error {
	fmt.Printf("  %-32s ", name)
	argv := []string{"taskset", "-c", *loadCPUs, r.k6, "run", "--quiet", "--no-color",
		"-e", "TARGET=http://" + g.Proxy + "/hello", "-e", "ADMIN=http://" + g.Admin,
		"-e", "NODES=" + r.nodes[0] + "," + r.nodes[1],
		"-e", "RATE=" + strconv.Itoa(*rate), "-e", "DURATION=" + k6Duration.String(),
		"-e", "P99_MS=" + strconv.FormatFloat(*p99ms, 'f', -1, 64)}
	if writes != "" {
		argv = append(argv, "-e", "WRITES_PER_S="+writes)
	}
	argv = append(argv, *scriptsDir+"/k6/"+script)
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.Output()
	// 99: a threshold failed; the summary still tells which figure.
	if ee, ok := err.(*exec.ExitError); err != nil && !(ok && ee.ExitCode() == 99) {
		return fmt.Errorf("k6 %s: %w\n%s\n%s", script, err, out, ee.Stderr)
	}
	var s k6Summary
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "k6-summary: "); ok {
			if err := json.Unmarshal([]byte(rest), &s); err != nil {
				return fmt.Errorf("k6 %s: bad summary: %w", script, err)
			}
		}
	}
	note := fmt.Sprintf("offered %d/s; thresholds (p99<%gms, 0 failed, 0 dropped) ", *rate, *p99ms)
	if s.ThresholdsOK {
		note += "passed"
	} else {
		note += "FAILED"
	}
	if s.Dropped > 0 {
		note += fmt.Sprintf("; %.0f iterations dropped (k6 could not offer the rate)", s.Dropped)
	}
	if s.AdminWrites != nil {
		failed := 0.0
		if s.AdminFailed != nil {
			failed = *s.AdminFailed
		}
		note += fmt.Sprintf("; %.0f admin writes (%.0f failed)", *s.AdminWrites, failed)
	}
	fmt.Printf("%9.0f req/s  p50 %.2fms p99 %.2fms failed %.0f; %s\n", s.RPS, s.P50ms, s.P99ms, s.Failed, note)
	r.rows = append(r.rows, row{name: name, tool: "k6 " + script, rps: s.RPS,
		p50: time.Duration(s.P50ms * float64(time.Millisecond)), p99: time.Duration(s.P99ms * float64(time.Millisecond)),
		errors: int64(s.Failed), note: note})
	return nil
}

// writer rewrites churn routes through the Admin API at a steady rate
// until stop is closed; every write changes the route.
type writer struct {
	done, failed atomic.Int64
	// skipped counts ticks with 64 writes already outstanding: the
	// Admin API answered slower than the rate.
	skipped  atomic.Int64
	firstErr atomic.Value
}

func (w *writer) run(g *harness.Gateway, perSecond int, stop <-chan struct{}) {
	t := time.NewTicker(time.Second / time.Duration(perSecond))
	defer t.Stop()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for n := 0; ; n++ {
		select {
		case <-stop:
			wg.Wait()
			return
		case <-t.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			// 64 writes outstanding: the admin API is slower than the
			// rate; the write is not sent.
			w.skipped.Add(1)
			continue
		}
		wg.Add(1)
		go func(n int) {
			defer func() { <-sem; wg.Done() }()
			id, flip := n%100, n/100%2
			body := fmt.Sprintf(`{"uri":"/churn/%d/v%d","upstream_id":"web"}`, id, flip)
			if err := g.Put(fmt.Sprintf("routes/churn-%d", id), body); err != nil {
				w.failed.Add(1)
				w.firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			w.done.Add(1)
		}(n)
	}
}

// churn compares wrk's throughput on /hello with and without config
// writes at -writes per second, in -scale-rounds alternating pairs of runs
// (medians), with the gateway's CPU time per request in each mode.
func (r *runner) churn(g *harness.Gateway) error {
	url := "http://" + g.Proxy + "/hello"
	type mode struct {
		name   string
		rps    []float64
		p50    []float64
		p99    []float64
		reqs   int64
		errors int64
		errs   harness.WrkResult // error counters summed over runs
		cpu    time.Duration
	}
	quiet := &mode{name: "GET /hello, quiet"}
	busy := &mode{name: fmt.Sprintf("GET /hello, %d writes/s", *writesPerS)}
	var w writer
	for round := 0; round < *scaleRounds; round++ {
		for _, m := range []*mode{quiet, busy} {
			var stop chan struct{}
			if m == busy {
				stop = make(chan struct{})
				go w.run(g, *writesPerS, stop)
			}
			before, err := harness.TreeCPU(g.Pid())
			if err != nil {
				return err
			}
			res, err := harness.RunWrk(context.Background(), harness.WrkOptions{URL: url, Script: r.script("get.lua"),
				Conns: *conns, Duration: *duration, CPUs: *loadCPUs})
			after, _ := harness.TreeCPU(g.Pid())
			if stop != nil {
				close(stop)
			}
			if err != nil {
				return err
			}
			m.rps, m.p50, m.p99 = append(m.rps, res.RPS()), append(m.p50, float64(res.P50US)), append(m.p99, float64(res.P99US))
			m.reqs += res.Requests
			m.errors += res.Errors()
			m.errs.AddErrors(res)
			m.cpu += after - before
			fmt.Printf("  round %d %-26s %9.0f req/s  p99 %-9v errors %d\n", round+1, m.name, res.RPS(), res.P99(), res.Errors())
		}
	}
	for _, m := range []*mode{quiet, busy} {
		note := fmt.Sprintf("median of %d runs; CPU %.2f µs/request", len(m.rps), harness.CPUPerRequest(m.cpu, m.reqs))
		if m == busy {
			note += fmt.Sprintf("; %d writes done, %d failed, %d not sent (64 outstanding)", w.done.Load(), w.failed.Load(), w.skipped.Load())
		}
		if m.errors > 0 {
			note += "; errors: " + errDetail(m.errs)
		}
		r.rows = append(r.rows, row{name: m.name, tool: "wrk get.lua", rps: harness.Median(m.rps), p50: time.Duration(harness.Median(m.p50)) * time.Microsecond,
			p99: time.Duration(harness.Median(m.p99)) * time.Microsecond, errors: m.errors, note: note})
	}
	ratio := harness.Median(busy.rps) / harness.Median(quiet.rps)
	r.figure(fmt.Sprintf("%d config writes/s during load: failed requests", *writesPerS),
		fmt.Sprintf("%d (of %d: %s; %d writes done, %d failed, %d not sent as 64 were outstanding)", busy.errors, busy.reqs,
			errDetail(busy.errs), w.done.Load(), w.failed.Load(), w.skipped.Load()),
		"0", verdict(busy.errors == 0 && w.failed.Load() == 0))
	r.figure(fmt.Sprintf("%d config writes/s during load: throughput vs quiet", *writesPerS),
		fmt.Sprintf("%.2f× (median %.0f vs %.0f req/s; CPU per request %.2f vs %.2f µs, writes included)",
			ratio, harness.Median(busy.rps), harness.Median(quiet.rps), harness.CPUPerRequest(busy.cpu, busy.reqs), harness.CPUPerRequest(quiet.cpu, quiet.reqs)),
		"≥ 0.9×", verdict(ratio >= 0.9))
	if e := w.firstErr.Load(); e != nil {
		fmt.Println("  first write error:", e)
	}
	return nil
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// stream sends a -stream-bytes response through the gateway from an
// origin in this process and records the gateway's peak RSS growth.
func (r *runner) stream(g *harness.Gateway) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	size := *streamBytes
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		_, _ = io.CopyN(w, zeros{}, size)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	if err := g.Put("routes/big", fmt.Sprintf(`{"uri":"/big","upstream":{"nodes":{"%s":1}}}`, ln.Addr())); err != nil {
		return err
	}
	baseHWM, err := harness.StatusKB(g.Pid(), "VmHWM")
	if err != nil {
		return err
	}
	baseRSS, _ := harness.StatusKB(g.Pid(), "VmRSS")
	start := time.Now()
	resp, err := http.Get("http://" + g.Proxy + "/big")
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	el := time.Since(start)
	if err != nil || n != size {
		return fmt.Errorf("stream: got %d of %d bytes: %v", n, size, err)
	}
	hwm, _ := harness.StatusKB(g.Pid(), "VmHWM")
	rss, _ := harness.StatusKB(g.Pid(), "VmRSS")
	growth := hwm - baseHWM
	if rss-baseRSS > growth {
		growth = rss - baseRSS
	}
	r.figure(fmt.Sprintf("%.0f MiB response streamed: gateway RSS growth", float64(size)/(1<<20)),
		fmt.Sprintf("%s (peak RSS %s → %s; %.0f MiB/s)", mib(growth), mib(baseHWM), mib(hwm), float64(size)/(1<<20)/el.Seconds()),
		"< 64 MiB", verdict(growth < 64<<10))
	return nil
}

// errDetail names the kinds of wrk errors in r.
func errDetail(r harness.WrkResult) string {
	if r.Errors() == 0 {
		return "none"
	}
	return fmt.Sprintf("%d timeouts (> 2 s), %d status ≥ 400, %d socket", r.ErrorsTimeout, r.ErrorsStatus,
		r.ErrorsConnect+r.ErrorsRead+r.ErrorsWrite)
}
