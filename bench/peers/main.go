// Command peers is `make peers`: the gateway, nginx and HAProxy side by
// side in one run, with the same origins and the same load.
//
// Each proxy runs pinned to core 0 with one worker (GOMAXPROCS=1, nginx
// worker_processes 1, HAProxy nbthread 1); the two origins
// (loadtest/origin) and wrk run on core 1. The configurations are
// equivalent (templates/): round robin over the two origins, keep-alive
// to them, the same forwarded headers (X-Real-IP, X-Forwarded-For,
// -Proto, -Host, -Port), no access log. Several rounds run in rotating
// order; each measured wrk run follows a short warm-up. For each proxy it
// reports requests/s, p50, p99, errors and CPU time per request: the
// user+system time of its processes (nginx: master and worker) from
// /proc over the measured runs, divided by the requests served. On a
// 2-core machine wrk's core can cap requests/s, so CPU per request is the
// fair measure of a proxy's own cost.
//
// It prints the tables, then rewrites the peers section of
// docs/performance.md and the chart docs/peers.png.
//
//	taskset -c 1 bin/peers -rounds 7 -d 12s -c 64
package main

import (
	"context"
	"embed"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/edgeway/gateway/loadtest/harness"
)

//go:embed templates/*.tmpl
var templates embed.FS

var (
	gatewayBin = flag.String("gateway", "bin/gateway", "gateway binary")
	originBin  = flag.String("origin", "bin/origin", "origin binary (loadtest/origin)")
	wrkScript  = flag.String("script", "loadtest/wrk/get.lua", "wrk script (prints the summary line)")
	rounds     = flag.Int("rounds", 7, "rounds; each runs every proxy once, in rotating order")
	duration   = flag.Duration("d", 12*time.Second, "measured duration of each run")
	warmup     = flag.Duration("warmup", 2*time.Second, "unmeasured wrk run before each measured one")
	conns      = flag.Int("c", 64, "wrk connections")
	bodySize   = flag.Int("size", 1024, "origin response body, bytes")
	proxyCPUs  = flag.String("proxy-cpus", "0", "taskset -c for the proxies")
	loadCPUs   = flag.String("load-cpus", "1", "taskset -c for the origins and wrk")
	docPath    = flag.String("doc", "docs/performance.md", "markdown file whose peers section is rewritten; empty to skip")
	chartPath  = flag.String("chart", "docs/peers.png", "PNG chart to write; empty to skip")
	keep       = flag.Bool("keep", false, "keep the work directory (configs, logs)")
	only       = flag.String("proxies", "gateway,nginx,haproxy", "comma-separated proxies to run: gateway, nginx, haproxy, baseline")
	baseline   = flag.String("baseline", "", "a second gateway binary, run as proxy \"baseline\" with the gateway's configuration (A/B a change in one run; implies -proxies ...,baseline)")
)

// tmplData fills the configuration templates.
type tmplData struct {
	Dir     string
	Listen  string
	Origins []string
}

// proxy is one of the compared servers.
type proxy struct {
	name    string
	version string
	listen  string
	proc    *harness.Proc
	runs    []run
}

// run is one measured wrk run against a proxy.
type run struct {
	round int
	res   harness.WrkResult
	cpu   time.Duration
}

func main() {
	flag.Parse()
	if err := mainErr(); err != nil {
		fmt.Fprintln(os.Stderr, "peers:", err)
		os.Exit(1)
	}
}

func mainErr() error {
	for _, p := range [][2]string{{"wrk", "wrk"}, {"nginx", "nginx-light"}, {"haproxy", "haproxy"}, {"taskset", "util-linux"}} {
		if err := harness.EnsureApt(p[0], p[1]); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "peers")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	origins := []string{harness.FreeAddr(), harness.FreeAddr()}
	op, err := harness.StartOrigins(dir, *originBin, *loadCPUs, *bodySize, origins...)
	if err != nil {
		return err
	}
	defer op.Stop()

	names := strings.Split(*only, ",")
	if *baseline != "" && !slices.Contains(names, "baseline") {
		names = append(names, "baseline")
	}
	var proxies []*proxy
	for _, n := range names {
		switch n {
		case "gateway", "nginx", "haproxy":
		case "baseline":
			if *baseline == "" {
				return fmt.Errorf("-proxies names baseline but -baseline is empty")
			}
		default:
			return fmt.Errorf("-proxies: unknown proxy %q (want gateway, nginx, haproxy or baseline)", n)
		}
		proxies = append(proxies, &proxy{name: n})
	}
	defer func() {
		for _, p := range proxies {
			p.proc.Stop()
		}
	}()
	for _, p := range proxies {
		if err := start(p, dir, origins); err != nil {
			return err
		}
	}
	fmt.Printf("peers: each proxy on core %s with one worker; origins (%d-byte body) and wrk (-t1 -c%d) on core %s; %d rounds × %v (after a %v warm-up), rotating order\n",
		*proxyCPUs, *bodySize, *conns, *loadCPUs, *rounds, *duration, *warmup)
	fmt.Println("the machine is shared and noisy: compare the proxies within this run, not across runs")
	for _, p := range proxies {
		fmt.Printf("  %-8s %s on %s\n", p.name, p.version, p.listen)
	}
	fmt.Println()
	for r := 0; r < *rounds; r++ {
		for i := range proxies {
			p := proxies[(r+i)%len(proxies)]
			if err := measure(p, r); err != nil {
				return err
			}
		}
	}
	sums := summarize(proxies)
	printTables(os.Stdout, sums)
	if *docPath != "" {
		if err := writeDoc(*docPath, *chartPath, sums); err != nil {
			return err
		}
		fmt.Println("\nwrote", *docPath)
	}
	if *chartPath != "" {
		if err := writeChart(*chartPath, sums); err != nil {
			return err
		}
		fmt.Println("wrote", *chartPath)
	}
	return nil
}

// render writes templates/name filled with d to dir/out.
func render(name, out string, d tmplData) (string, error) {
	t, err := template.ParseFS(templates, "templates/"+name)
	if err != nil {
		return "", err
	}
	path := filepath.Join(d.Dir, out)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return path, t.Execute(f, d)
}

// start renders p's configuration and starts it on the proxy core.
func start(p *proxy, dir string, origins []string) error {
	p.listen = harness.FreeAddr()
	d := tmplData{Dir: dir, Listen: p.listen, Origins: origins}
	var argv, env []string
	switch p.name {
	case "gateway", "baseline":
		cfg, err := render("gateway.json.tmpl", p.name+".json", d)
		if err != nil {
			return err
		}
		bin := *gatewayBin
		p.version = "edgeway " + gitRev()
		if p.name == "baseline" {
			bin = *baseline
			p.version = "edgeway " + bin
		}
		argv = []string{bin, "-standalone", cfg, "-listen", p.listen,
			"-admin-listen", harness.FreeAddr(), "-listen-tls", "", "-control-listen", ""}
		env = []string{"GOMAXPROCS=1"}
	case "nginx":
		cfg, err := render("nginx.conf.tmpl", "nginx.conf", d)
		if err != nil {
			return err
		}
		argv = []string{"nginx", "-p", dir, "-e", filepath.Join(dir, "nginx-error.log"), "-c", cfg}
		p.version = version("nginx", "-v")
	case "haproxy":
		cfg, err := render("haproxy.cfg.tmpl", "haproxy.cfg", d)
		if err != nil {
			return err
		}
		argv = []string{"haproxy", "-db", "-f", cfg}
		p.version = version("haproxy", "-v")
	}
	proc, err := harness.Start(dir, p.name, *proxyCPUs, env, argv...)
	if err != nil {
		return err
	}
	p.proc = proc
	return harness.WaitTCP(p.listen, proc, time.Minute)
}

// measure runs the warm-up and one measured wrk run against p, taking
// p's CPU time around the measured one.
func measure(p *proxy, round int) error {
	url := "http://" + p.listen + "/hello"
	ctx := context.Background()
	if *warmup > 0 {
		if _, err := harness.RunWrk(ctx, harness.WrkOptions{URL: url, Script: *wrkScript, Conns: *conns,
			Duration: *warmup, CPUs: *loadCPUs}); err != nil {
			return err
		}
	}
	before, err := harness.TreeCPU(p.proc.Pid())
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	res, err := harness.RunWrk(ctx, harness.WrkOptions{URL: url, Script: *wrkScript, Conns: *conns,
		Duration: *duration, CPUs: *loadCPUs})
	if err != nil {
		return err
	}
	after, err := harness.TreeCPU(p.proc.Pid())
	if err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	r := run{round: round, res: res, cpu: after - before}
	p.runs = append(p.runs, r)
	fmt.Printf("round %d  %-8s %9.0f req/s  p50 %-9v p99 %-9v errors %-4d CPU %6.2f µs/request\n",
		round+1, p.name, res.RPS(), res.P50(), res.P99(), res.Errors(), harness.CPUPerRequest(r.cpu, res.Requests))
	return nil
}

// summary is one proxy's figures over all rounds.
type summary struct {
	name, version      string
	rps                float64 // median over rounds
	p50, p99           time.Duration
	errors, requests   int64
	cpuPerReq          float64 // total CPU / total requests, µs
	cpuMin, cpuMax     float64 // per-round range, µs
	rpsMin, rpsMax     float64
	rounds             int
	totalCPU           time.Duration
	perRoundCPUPerReqs []float64
	runs               []run
}

func summarize(proxies []*proxy) []summary {
	var out []summary
	for _, p := range proxies {
		s := summary{name: p.name, version: p.version, rounds: len(p.runs), runs: p.runs}
		var rps, p50, p99, cpr []float64
		for _, r := range p.runs {
			rps = append(rps, r.res.RPS())
			p50 = append(p50, float64(r.res.P50US))
			p99 = append(p99, float64(r.res.P99US))
			c := harness.CPUPerRequest(r.cpu, r.res.Requests)
			cpr = append(cpr, c)
			s.errors += r.res.Errors()
			s.requests += r.res.Requests
			s.totalCPU += r.cpu
		}
		s.rps = harness.Median(rps)
		s.p50 = time.Duration(harness.Median(p50)) * time.Microsecond
		s.p99 = time.Duration(harness.Median(p99)) * time.Microsecond
		s.cpuPerReq = harness.CPUPerRequest(s.totalCPU, s.requests)
		s.cpuMin, s.cpuMax = slices.Min(cpr), slices.Max(cpr)
		s.rpsMin, s.rpsMax = slices.Min(rps), slices.Max(rps)
		s.perRoundCPUPerReqs = cpr
		out = append(out, s)
	}
	return out
}

func gitRev() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "(unknown revision)"
	}
	return strings.TrimSpace(string(out))
}

// version returns the first line a server prints for its version flag.
func version(argv ...string) string {
	out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	line = strings.TrimPrefix(line, "nginx version: ")
	line = strings.Replace(line, "HAProxy version ", "HAProxy ", 1)
	if f := strings.Fields(line); len(f) > 2 && strings.HasPrefix(line, "HAProxy ") {
		line = f[0] + " " + f[1] // drop the release date
	}
	if i := strings.Index(line, " - https"); i >= 0 {
		line = line[:i]
	}
	return line
}
