// Command healthprobes measures what active health checks cost the proxy:
// requests/s on a plain route while the gateway probes N nodes every
// second, against requests/s with no probes, in one run with alternating
// phases (none, probes, none, probes, ...) so that drift on a shared
// machine hits both sides alike.
//
// It starts the real gateway binary (pinned to one core with GOMAXPROCS=1
// when -gateway-cpu is set), an origin for the route and N probe targets in
// this process (one listener per node), and runs wrk. Run it through
// loadtest/health-probes.sh, which builds everything and pins this process
// and wrk to the other core.
//
//	healthprobes -gateway ./bin/gateway -nodes 1000 -duration 10s -rounds 3
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/loadtest/harness"
	"github.com/valyala/fasthttp"
)

var (
	gatewayBin = flag.String("gateway", "./bin/gateway", "gateway binary")
	gatewayCPU = flag.String("gateway-cpu", "0", "CPU list for taskset; empty runs the gateway unpinned with all cores")
	nodes      = flag.Int("nodes", 1000, "probed nodes (each on its own port)")
	interval   = flag.Int("interval", 1, "healthy.interval of the probes, seconds")
	duration   = flag.Duration("duration", 10*time.Second, "length of each wrk run")
	rounds     = flag.Int("rounds", 3, "pairs of phases (no probes, probes)")
	conns      = flag.Int("c", 32, "wrk connections")
	settle     = flag.Duration("settle", 3*time.Second, "wait after switching probes on or off")
)

func main() {
	flag.Parse()
	log.SetFlags(0)
	work, err := os.MkdirTemp("", "healthprobes")
	check(err)
	defer os.RemoveAll(work)

	hello := startOrigin()
	targets, probes := startTargets(*nodes)
	proxy, admin, control := harness.FreeAddr(), harness.FreeAddr(), harness.FreeAddr()
	args := []string{*gatewayBin, "-listen", proxy, "-admin-listen", admin, "-control-listen", control,
		"-data-dir", filepath.Join(work, "data")}
	if *gatewayCPU != "" {
		args = append([]string{"taskset", "-c", *gatewayCPU}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	if *gatewayCPU != "" {
		cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	}
	logf, err := os.Create(filepath.Join(work, "gateway.log"))
	check(err)
	cmd.Stdout, cmd.Stderr = logf, logf
	check(cmd.Start())
	defer cmd.Process.Kill()
	waitUp(admin)

	put(admin, "/apisix/admin/routes/hello", fmt.Sprintf(`{"uri":"/hello","upstream":{"nodes":{"%s":1}}}`, hello))
	var nb strings.Builder
	for i, t := range targets {
		if i > 0 {
			nb.WriteByte(',')
		}
		fmt.Fprintf(&nb, "%q:1", t)
	}
	probed := fmt.Sprintf(`{"nodes":{%s},"checks":{"active":{"http_path":"/health","healthy":{"interval":%d},"unhealthy":{"interval":%d}}}}`,
		nb.String(), *interval, *interval)
	url := "http://" + proxy + "/hello"
	run(url, time.Second) // warm up

	fmt.Printf("gateway on CPU %q (GOMAXPROCS=1 when pinned), %d probed nodes at %d s, wrk -c%d for %v per phase\n",
		*gatewayCPU, *nodes, *interval, *conns, *duration)
	var base, with, baseEff, withEff []float64
	for r := 0; r < *rounds; r++ {
		for _, on := range []bool{false, true} {
			if on {
				put(admin, "/apisix/admin/upstreams/probed", probed)
			} else {
				del(admin, "/apisix/admin/upstreams/probed")
			}
			time.Sleep(*settle)
			p0, cpu0, t0 := probes.Load(), cpuTime(cmd.Process.Pid), time.Now()
			rps := run(url, *duration)
			secs := time.Since(t0).Seconds()
			pr := float64(probes.Load()-p0) / secs
			cpu := (cpuTime(cmd.Process.Pid) - cpu0).Seconds() / secs * 100
			// Requests per second of gateway CPU: what a saturated core
			// would serve. Less noisy than requests/s on a shared machine.
			eff := rps / (cpu / 100)
			name := "no probes"
			if on {
				name = "probes"
				with, withEff = append(with, rps), append(withEff, eff)
			} else {
				base, baseEff = append(base, rps), append(baseEff, eff)
			}
			fmt.Printf("round %d %-10s %8.0f req/s   probes %5.0f/s   gateway CPU %5.1f%%   %8.0f req per CPU-second\n",
				r+1, name, rps, pr, cpu, eff)
		}
	}
	// Probes alone: the CPU they take from an idle gateway.
	put(admin, "/apisix/admin/upstreams/probed", probed)
	time.Sleep(*settle)
	p0, cpu0, t0 := probes.Load(), cpuTime(cmd.Process.Pid), time.Now()
	time.Sleep(*duration)
	secs := time.Since(t0).Seconds()
	idleCPU := (cpuTime(cmd.Process.Pid) - cpu0).Seconds() / secs * 100
	idleProbes := float64(probes.Load()-p0) / secs
	mb, mw := mean(base), mean(with)
	fmt.Printf("requests/s: mean without probes %.0f, with probes %.0f: ratio %.3f (%.1f%% lost)\n", mb, mw, mw/mb, (1-mw/mb)*100)
	eb, ew := mean(baseEff), mean(withEff)
	fmt.Printf("requests per gateway CPU-second: without probes %.0f, with probes %.0f: ratio %.3f (%.1f%% lost)\n", eb, ew, ew/eb, (1-ew/eb)*100)
	fmt.Printf("idle gateway probing %d nodes: %.0f probes/s, %.1f%% of one core\n", *nodes, idleProbes, idleCPU)
	fmt.Printf("health metrics:\n%s", grep(get("http://"+admin+"/metrics"), "gateway_health_"))
}

// startOrigin serves the proxied route: a 1 KiB body.
func startOrigin() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	body := bytes.Repeat([]byte("a"), 1024)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) }, NoDefaultDate: true}
	go srv.Serve(ln)
	return ln.Addr().String()
}

// startTargets opens n listeners answering every request with 200 (keeping
// the connection unless the request says close), and counts requests.
func startTargets(n int) ([]string, *atomic.Int64) {
	var count atomic.Int64
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	addrs := make([]string, n)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		check(err)
		addrs[i] = ln.Addr().String()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go serveTarget(c, resp, &count)
			}
		}()
	}
	return addrs, &count
}

func serveTarget(c net.Conn, resp []byte, count *atomic.Int64) {
	defer c.Close()
	br := bufio.NewReaderSize(c, 1024)
	for {
		closing := false
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break
			}
			if bytes.HasPrefix(bytes.ToLower(line), []byte("connection: close")) {
				closing = true
			}
		}
		count.Add(1)
		if _, err := c.Write(resp); err != nil || closing {
			return
		}
	}
}

var rpsRe = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// run runs wrk and returns requests/s.
func run(url string, d time.Duration) float64 {
	out, err := exec.Command("wrk", "-t1", "-c"+strconv.Itoa(*conns), "-d"+strconv.Itoa(int(d/time.Second))+"s", url).CombinedOutput()
	if err != nil {
		log.Fatalf("wrk: %v\n%s", err, out)
	}
	m := rpsRe.FindSubmatch(out)
	if m == nil {
		log.Fatalf("no Requests/sec in wrk's output:\n%s", out)
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	if bytes.Contains(out, []byte("Non-2xx")) || bytes.Contains(out, []byte("Socket errors")) {
		log.Printf("wrk reported errors:\n%s", out)
	}
	return v
}

// cpuTime returns the user+system CPU time of a process (Linux).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	check(err)
	// Fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

func mean(xs []float64) float64 {
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func waitUp(admin string) {
	for i := 0; i < 200; i++ {
		if resp, err := http.Get("http://" + admin + "/apisix/admin/routes"); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	log.Fatal("the gateway did not start")
}

func put(admin, path, body string) { request("PUT", "http://"+admin+path, body) }
func del(admin, path string)       { request("DELETE", "http://"+admin+path, "") }

func request(method, url, body string) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	check(err)
	resp, err := http.DefaultClient.Do(req)
	check(err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode >= 300 && !(method == "DELETE" && resp.StatusCode == 404) {
		log.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
}

func get(url string) string {
	resp, err := http.Get(url)
	check(err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grep(s, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
