package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssKB is the gateway's resident memory now.
func (g *gateway) rssKB(t *testing.T) int64 {
	t.Helper()
	time.Sleep(200 * time.Millisecond) // let the counters settle
	return procStatusKB(t, g.cmd.Process.Pid, "VmRSS")
}

// openIdle opens n client connections; with request set each sends one
// request and reads the answer, so that it is an idle keep-alive
// connection, else it sends nothing.
func openIdle(t *testing.T, addr string, n int, request bool) []net.Conn {
	t.Helper()
	conns := make([]net.Conn, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 64)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			conns[i] = c
			if !request {
				return
			}
			io.WriteString(c, "GET /idle HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				errs <- err
				return
			}
			io.Copy(io.Discard, resp.Body)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return conns
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
}

// TestResourceCeilings measures the gateway's memory per idle client
// connection (keep-alive, and never used), per pooled upstream
// connection, and checks the connection cap bounds memory: 3,000 clients
// against a cap of 1,000 get 1,000 served and 2,000 clean 503s, and the
// resident memory stays within the cap's budget. The figures are in
// docs/security.md.
func TestResourceCeilings(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	const n = 2000
	raiseFDLimit(t, 4*n+1000)
	o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			time.Sleep(300 * time.Millisecond)
		}
		fmt.Fprint(w, "ok")
	})
	// Resident memory only grows (the Go runtime keeps what it freed), so
	// each figure is measured on top of the previous one, nothing closed.
	g := startGateway(t, "", "-max-client-conns", "5000")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1},
		"keepalive_pool":{"size":1000,"idle_timeout":300,"requests":10000}}}`, o.Addr), 201)
	for i := 0; i < 50; i++ {
		g.get("/warm")
	}
	perConn := func(before, after int64, count int) float64 { return float64(after-before) / float64(count) }

	// Connections that never send a byte.
	base := g.rssKB(t)
	fresh := openIdle(t, g.proxy, n, false)
	defer closeAll(fresh)
	withFresh := g.rssKB(t)
	freshKB := perConn(base, withFresh, n)

	// Idle keep-alive clients.
	idle := openIdle(t, g.proxy, n, true)
	defer closeAll(idle)
	withIdle := g.rssKB(t)
	kaKB := perConn(withFresh, withIdle, n)

	// Pooled upstream connections: 500 concurrent slow requests open 500,
	// which stay idle in the pool afterwards.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resp, err := client.Get("http://" + g.proxy + "/slow"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	pooled := scrapeMetricSum(t, g, "gateway_upstream_connections_idle")
	withPool := g.rssKB(t)
	poolKB := perConn(withIdle, withPool, int(pooled))

	// At the cap: 3,000 clients, 1,000 slots, on a gateway of its own.
	g = startGateway(t, "", "-max-client-conns", "1000")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	for i := 0; i < 50; i++ {
		g.get("/warm")
	}
	base4 := g.rssKB(t)
	var served, refused, other int
	var mu sync.Mutex
	conns := make([]net.Conn, 3000)
	sem := make(chan struct{}, 200)
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.Dial("tcp", g.proxy)
			if err != nil {
				mu.Lock()
				other++
				mu.Unlock()
				return
			}
			conns[i] = c
			io.WriteString(c, "GET /cap HTTP/1.1\r\nHost: a\r\n\r\n")
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				other++
			case resp.StatusCode == 200:
				served++ // and stays open: it holds a slot
			case resp.StatusCode == 503:
				refused++
			default:
				other++
			}
		}()
	}
	wg.Wait()
	atCap := g.rssKB(t)
	closeAll(conns)
	peak := procStatusKB(t, g.cmd.Process.Pid, "VmHWM")

	t.Logf("memory per client connection that sent nothing: %.1f KiB (%d KiB for %d)", freshKB, withFresh-base, n)
	t.Logf("memory per idle keep-alive client connection: %.1f KiB (%d KiB for %d)", kaKB, withIdle-withFresh, n)
	t.Logf("memory per pooled upstream connection: %.1f KiB (%d KiB for %.0f)", poolKB, withPool-withIdle, pooled)
	t.Logf("at a cap of 1,000: %d served, %d refused with 503, %d other; RSS %d KiB -> %d KiB; peak %d KiB",
		served, refused, other, base4, atCap, peak)

	if pooled < 400 {
		t.Errorf("only %.0f upstream connections pooled after 500 concurrent requests", pooled)
	}
	if served > 1000 || served < 900 || refused < 1900 || other > 50 {
		t.Errorf("at the cap: %d served, %d refused, %d other; want 1,000 served and the rest refused", served, refused, other)
	}
	// The cap is the memory ceiling: 3,000 clients cost no more than the
	// 1,000 it admits (with room for the refusals in flight).
	if budget := int64(max(kaKB, freshKB)*1000*2) + 16<<10; atCap-base4 > budget {
		t.Errorf("RSS grew by %d KiB at the cap, more than twice the budget of 1,000 connections (%d KiB)", atCap-base4, budget)
	}
	if code, _, _ := g.get("/after"); code != 200 {
		t.Fatalf("after the cap test: %d", code)
	}
}

// scrapeMetricSum adds up every series of a metric in /metrics.
func scrapeMetricSum(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	r := g.doKey("GET", "/metrics", "", "")
	var sum float64
	for _, line := range strings.Split(string(r.Body), "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v)
			sum += v
		}
	}
	return sum
}
