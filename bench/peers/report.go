package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/edgeway/gateway/loadtest/harness"
)

// The peers section of docs/performance.md lies between these markers;
// everything else in the file is kept as it is.
const (
	beginMarker = "<!-- peers:begin (written by make peers) -->"
	endMarker   = "<!-- peers:end -->"
)

func find(sums []summary, name string) (summary, bool) {
	for _, s := range sums {
		if s.name == name {
			return s, true
		}
	}
	return summary{}, false
}

// ratio is one gateway/peer comparison with its target.
type ratio struct {
	what, target string
	vs           map[string]float64 // peer name → gateway/peer
	ok           func(float64) bool
}

func ratios(sums []summary) []ratio {
	g, _ := find(sums, "gateway")
	rs := []ratio{
		{what: "requests/s", target: "≥ 1.0× (aim 1.2×)", ok: func(x float64) bool { return x >= 1.0 }},
		{what: "CPU time per request", target: "≤ 1.0× (aim 0.8×)", ok: func(x float64) bool { return x <= 1.0 }},
		{what: "p99 latency", target: "≤ 1.0× nginx's", ok: func(x float64) bool { return x <= 1.0 }},
		{what: "CPU time per request, least disturbed round", target: "(check of the row above: noise only adds)",
			ok: func(x float64) bool { return x <= 1.0 }},
	}
	for i := range rs {
		rs[i].vs = map[string]float64{}
		for _, peer := range []string{"nginx", "haproxy", "baseline"} {
			p, ok := find(sums, peer)
			if !ok {
				continue
			}
			var x float64
			switch i {
			case 0:
				x = g.rps / p.rps
			case 1:
				x = g.cpuPerReq / p.cpuPerReq
			case 2:
				x = float64(g.p99) / float64(p.p99)
			case 3:
				x = g.cpuMin / p.cpuMin
			}
			rs[i].vs[peer] = x
		}
	}
	return rs
}

func verdict(r ratio, peer string) string {
	x, ok := r.vs[peer]
	if !ok {
		return "–"
	}
	if peer == "baseline" || (r.what == "p99 latency" && peer != "nginx") {
		return fmt.Sprintf("%.2f×", x)
	}
	if r.ok(x) {
		return fmt.Sprintf("%.2f× (met)", x)
	}
	return fmt.Sprintf("**%.2f× (missed)**", x)
}

func printTables(w io.Writer, sums []summary) {
	fmt.Fprintln(w, "\n== Peers (medians over rounds; CPU per request = total CPU / total requests) ==")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "proxy\treq/s\tp50\tp99\terrors\tCPU µs/req\tCPU µs/req per round (min–max)\t")
	for _, s := range sums {
		fmt.Fprintf(tw, "%s\t%.0f\t%v\t%v\t%d\t%.2f\t%.2f–%.2f\t\n", s.name, s.rps, s.p50, s.p99, s.errors, s.cpuPerReq, s.cpuMin, s.cpuMax)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	peers := []string{"nginx", "haproxy"}
	if _, ok := find(sums, "baseline"); ok {
		peers = append(peers, "baseline")
	}
	fmt.Fprint(tw, "ratio")
	for _, p := range peers {
		fmt.Fprintf(tw, "\tgateway/%s", p)
	}
	fmt.Fprintln(tw, "\ttarget")
	for _, r := range ratios(sums) {
		fmt.Fprint(tw, r.what)
		for _, p := range peers {
			fmt.Fprintf(tw, "\t%s", strings.ReplaceAll(verdict(r, p), "**", ""))
		}
		fmt.Fprintf(tw, "\t%s\n", r.target)
	}
	tw.Flush()
}

// cpuCount counts the machine's CPUs from /proc/cpuinfo (runtime.NumCPU
// would count only the CPUs this pinned process may use).
func cpuCount() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
	}
	if n == 0 {
		return runtime.NumCPU()
	}
	return n
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return "unknown CPU"
}

// section renders the markdown of the peers section.
func section(sums []summary, chart string) string {
	var b bytes.Buffer
	fmt.Fprintln(&b, beginMarker)
	fmt.Fprintln(&b, "## Side by side with nginx and HAProxy (`make peers`)")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "One `make peers` run on %s (%s, %d vCPU, shared and noisy: compare the rows with each other,\n",
		time.Now().UTC().Format("2006-01-02"), cpuModel(), cpuCount())
	fmt.Fprintf(&b, "not with other runs). Each proxy pinned to core %s with one worker (gateway `GOMAXPROCS=1`, nginx\n", *proxyCPUs)
	fmt.Fprintf(&b, "`worker_processes 1`, HAProxy `nbthread 1`); the two origins (`loadtest/origin`, %d-byte body) and\n", *bodySize)
	fmt.Fprintf(&b, "wrk (`-t1 -c%d`, keep-alive) on core %s. Equivalent configurations (`bench/peers/templates/`):\n", *conns, *loadCPUs)
	fmt.Fprintln(&b, "round robin over the two origins, keep-alive to them (nginx `keepalive 320`, HTTP/1.1, `Connection \"\"`;")
	fmt.Fprintln(&b, "HAProxy `http-reuse always`, plus `option http-no-delay`: without it HAProxy's coalesced writes wait")
	fmt.Fprintln(&b, "on delayed ACKs over loopback, ~40 ms at p99), X-Real-IP and X-Forwarded-For/Proto/Host/Port set,")
	fmt.Fprintln(&b, "no access log.")
	fmt.Fprintf(&b, "%d rounds of %v in rotating order, each after a %v warm-up. Requests/s, p50 and p99 are medians\n", *rounds, *duration, *warmup)
	fmt.Fprintln(&b, "over the rounds; CPU per request is the proxy's user+system time (`/proc/<pid>/stat`, nginx's")
	fmt.Fprintln(&b, "master and worker together) over the measured runs divided by the requests served. wrk and the")
	fmt.Fprintln(&b, "origins share the other core and can cap requests/s, so CPU per request is the fair measure.")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| proxy | version | requests/s | p50 | p99 | errors | CPU µs/request | per round (min–max) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|")
	for _, s := range sums {
		fmt.Fprintf(&b, "| %s | %s | %.0f | %s | %s | %d | **%.2f** | %.2f–%.2f |\n", s.name, s.version, s.rps,
			ms(s.p50), ms(s.p99), s.errors, s.cpuPerReq, s.cpuMin, s.cpuMax)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| ratio | gateway/nginx | gateway/haproxy | target (issue 8) |")
	fmt.Fprintln(&b, "|---|---|---|---|")
	for _, r := range ratios(sums) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.what, verdict(r, "nginx"), verdict(r, "haproxy"), r.target)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Every round (requests/s, CPU µs/request); a round where every proxy is slow is the machine's")
	fmt.Fprintln(&b, "other tenants, not the proxies:")
	fmt.Fprintln(&b)
	fmt.Fprint(&b, "| proxy |")
	for i := range sums[0].runs {
		fmt.Fprintf(&b, " round %d |", i+1)
	}
	fmt.Fprintln(&b)
	fmt.Fprint(&b, "|---|")
	for range sums[0].runs {
		fmt.Fprint(&b, "---|")
	}
	fmt.Fprintln(&b)
	for _, s := range sums {
		fmt.Fprintf(&b, "| %s |", s.name)
		for _, r := range s.runs {
			fmt.Fprintf(&b, " %.0f, %.2f |", r.res.RPS(), harness.CPUPerRequest(r.cpu, r.res.Requests))
		}
		fmt.Fprintln(&b)
	}
	if chart != "" {
		fmt.Fprintln(&b)
		fmt.Fprintf(&b, "![requests/s and CPU time per request of each proxy](%s)\n", chart)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "Reproduce: `make peers` (installs nginx-light, haproxy and wrk when missing; about 6 minutes;")
	fmt.Fprintln(&b, "`make peers PEERS_FLAGS='-rounds 3 -d 20s -c 32'` for other settings).")
	fmt.Fprint(&b, endMarker)
	return b.String()
}

// replaceSection puts sec in place of the text between the markers of
// doc, or appends it when the markers are absent.
func replaceSection(doc, sec string) string {
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	if i >= 0 && j > i {
		return doc[:i] + sec + doc[j+len(endMarker):]
	}
	return strings.TrimRight(doc, "\n") + "\n\n" + sec + "\n"
}

func writeDoc(path, chart string, sums []summary) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	rel := ""
	if chart != "" {
		if r, err := filepath.Rel(filepath.Dir(path), chart); err == nil {
			rel = r
		}
	}
	return os.WriteFile(path, []byte(replaceSection(string(old), section(sums, rel))), 0o644)
}
