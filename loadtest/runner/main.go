// Command runner is `make loadtest`: it installs what is missing (wrk from
// Debian packages, k6 with go install), starts origins and the gateway
// built from this repository, runs the wrk scripts of loadtest/wrk and the
// k6 scripts of loadtest/k6, measures the configuration-size figures
// (100,000 routes against one, an admin write at 100,000 routes, memory
// per 10,000 routes, 100 config writes/s during load, a 1 GiB response),
// and prints a summary.
//
// The gateway runs on core 0 with GOMAXPROCS=1; the origins, wrk, k6 and
// this program on core 1 (run it under `taskset -c 1`, as make does). All
// traffic stays on 127.0.0.1. It checks nothing against a clock: the
// targets are printed next to the figures, not asserted.
//
//	taskset -c 1 bin/loadtest -d 10s -routes 100000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgeway/gateway/loadtest/harness"
)

var (
	gatewayBin  = flag.String("gateway", "bin/gateway", "gateway binary")
	originBin   = flag.String("origin", "bin/origin", "origin binary (loadtest/origin)")
	scriptsDir  = flag.String("scripts", "loadtest", "folder holding wrk/ and k6/")
	duration    = flag.Duration("d", 10*time.Second, "duration of each wrk run")
	k6Duration  = flag.Duration("k6-d", 20*time.Second, "duration of each k6 run")
	conns       = flag.Int("c", 64, "wrk connections")
	rate        = flag.Int("rate", 1000, "k6 arrival rate, requests/s")
	p99ms       = flag.Float64("p99-ms", 20, "k6 threshold on p99 latency, ms")
	nroutes     = flag.Int("routes", 100000, "routes of the large configuration")
	scaleRounds = flag.Int("scale-rounds", 3, "alternating runs of each gateway in the 1-route against many-routes comparison")
	writesPerS  = flag.Int("writes", 100, "config writes per second during load")
	streamBytes = flag.Int64("stream-bytes", 1<<30, "size of the streamed response")
	only        = flag.String("only", "", "comma-separated parts to run: scripts,k6,churn,stream,routes,admin (default: all)")
	gatewayCPUs = flag.String("gateway-cpus", "0", "taskset -c for the gateway")
	loadCPUs    = flag.String("load-cpus", "1", "taskset -c for origins and load generators")
	keep        = flag.Bool("keep", false, "keep the work directory (logs, configs)")
)

// row is one line of the load table.
type row struct {
	name, tool string
	rps        float64
	p50, p99   time.Duration
	errors     int64
	note       string
}

// figure is one line of the figures table.
type figure struct {
	name, value, target, verdict string
}

type runner struct {
	dir     string
	k6      string
	rows    []row
	figures []figure
	origins *harness.Proc
	nodes   []string // origin addresses; nodes[:2] serve the round-robin routes
}

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func enabled(part string) bool {
	if *only == "" {
		return true
	}
	for _, p := range strings.Split(*only, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

func run() error {
	if err := harness.EnsureApt("wrk", "wrk"); err != nil {
		return err
	}
	if err := harness.EnsureApt("taskset", "util-linux"); err != nil {
		return err
	}
	r := &runner{}
	if enabled("k6") || enabled("churn") {
		k6, err := harness.EnsureK6()
		if err != nil {
			return err
		}
		r.k6 = k6
	}
	dir, err := os.MkdirTemp("", "loadtest")
	if err != nil {
		return err
	}
	r.dir = dir
	if *keep {
		fmt.Println("work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	for i := 0; i < 8; i++ {
		r.nodes = append(r.nodes, harness.FreeAddr())
	}
	r.origins, err = harness.StartOrigins(dir, *originBin, *loadCPUs, 1024, r.nodes...)
	if err != nil {
		return err
	}
	defer r.origins.Stop()
	fmt.Printf("loadtest: gateway on core %s (GOMAXPROCS=1); origins, wrk, k6 and this runner on core %s; wrk %v × %d connections; the machine is shared, so compare figures within this run\n\n",
		*gatewayCPUs, *loadCPUs, *duration, *conns)

	if enabled("scripts") || enabled("k6") || enabled("churn") || enabled("stream") {
		if err := r.mainGateway(); err != nil {
			return err
		}
	}
	if enabled("routes") {
		if err := r.manyRoutes(); err != nil {
			return err
		}
	}
	if enabled("admin") {
		if err := r.adminAtScale(); err != nil {
			return err
		}
	}
	r.print()
	return nil
}

func (r *runner) script(name string) string {
	return filepath.Join(*scriptsDir, "wrk", name)
}

// wrk runs one wrk script against the gateway and records a row.
func (r *runner) wrk(name, url, script string, args ...string) (harness.WrkResult, error) {
	fmt.Printf("  wrk %-28s ", name)
	res, err := harness.RunWrk(context.Background(), harness.WrkOptions{
		URL: url, Script: r.script(script), Args: args, Conns: *conns, Duration: *duration, CPUs: *loadCPUs})
	if err != nil {
		fmt.Println("failed")
		return res, err
	}
	fmt.Printf("%9.0f req/s  p50 %-8v p99 %-8v errors %d\n", res.RPS(), res.P50(), res.P99(), res.Errors())
	note := ""
	if res.Errors() > 0 {
		note = "errors: " + errDetail(res)
	}
	r.rows = append(r.rows, row{name: name, tool: "wrk " + script, rps: res.RPS(), p50: res.P50(), p99: res.P99(), errors: res.Errors(), note: note})
	return res, nil
}

func (r *runner) figure(name, value, target, verdict string) {
	fmt.Printf("  %s: %s\n", name, value)
	r.figures = append(r.figures, figure{name, value, target, verdict})
}

func (r *runner) startGateway(name, standalone string) (*harness.Gateway, error) {
	return harness.StartGateway(harness.GatewayOptions{Bin: *gatewayBin, Dir: r.dir, Name: name,
		CPUs: *gatewayCPUs, GOMAXPROCS: 1, Standalone: standalone, Ready: 5 * time.Minute})
}

func (r *runner) print() {
	fmt.Println("\n== Load scripts (gateway: 1 core, GOMAXPROCS=1; shared noisy machine: compare within this run) ==")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\ttool\treq/s\tp50\tp99\terrors\tnote\t")
	for _, x := range r.rows {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%v\t%v\t%d\t%s\t\n", x.name, x.tool, x.rps, x.p50, x.p99, x.errors, x.note)
	}
	tw.Flush()
	fmt.Println("\n== Figures against the targets of issue 8 ==")
	tw = tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\tvalue\ttarget\tverdict")
	for _, f := range r.figures {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.name, f.value, f.target, f.verdict)
	}
	tw.Flush()
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func mib(kb int64) string { return fmt.Sprintf("%.1f MiB", float64(kb)/1024) }
