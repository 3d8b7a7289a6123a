// Command upstreamconn measures upstream connection reuse through the real
// gateway binary: requests per second and upstream connections opened per
// 10,000 requests, over plain HTTP with keep-alive (the default
// keepalive_pool), with keepalive_pool.requests = 1 (a new connection per
// request), and over HTTPS to the upstream (keep-alive, then requests = 1).
//
// It starts the gateway (built with `make build`), two fasthttp origins on
// 127.0.0.1 (one plain, one TLS with an in-memory self-signed certificate)
// that count the connections they accept, configures one route per case
// through the Admin API, and drives each route with a keep-alive fasthttp
// client. All three processes share the machine, so the figures compare
// cases with each other; they are not a capacity claim.
//
//	go run ./bench/upstreamconn -gateway bin/gateway -c 32 -d 5s
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/internal/testpki"
	"github.com/edgeway/gateway/loadtest/harness"
	"github.com/valyala/fasthttp"
)

var (
	gatewayBin  = flag.String("gateway", "bin/gateway", "gateway binary to start")
	concurrency = flag.Int("c", 32, "concurrent client connections to the gateway")
	duration    = flag.Duration("d", 5*time.Second, "measured duration of each case (after a 1 s warm-up)")
)

// origin is a fasthttp server that counts accepted connections.
type origin struct {
	addr     string
	accepted atomic.Int64
}

func startOrigin(certPEM, keyPEM []byte) *origin {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	o := &origin{addr: ln.Addr().String()}
	body := []byte("hello from the origin\n")
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBody(body) },
		ConnState: func(_ net.Conn, s fasthttp.ConnState) {
			if s == fasthttp.StateNew {
				o.accepted.Add(1)
			}
		},
		NoDefaultServerHeader: true,
	}
	if certPEM != nil {
		go func() { _ = srv.ServeTLSEmbed(ln, certPEM, keyPEM) }()
	} else {
		go func() { _ = srv.Serve(ln) }()
	}
	return o
}

func main() {
	flag.Parse()
	pair := testpki.NewCA("bench CA").Issue(false, "bench.test")
	certPEM, keyPEM := []byte(pair.Cert), []byte(pair.Key)
	plain, secure := startOrigin(nil, nil), startOrigin(certPEM, keyPEM)

	dir, err := os.MkdirTemp("", "upstreamconn")
	check(err)
	defer os.RemoveAll(dir)
	proxy, admin, tlsAddr := harness.FreeAddr(), harness.FreeAddr(), harness.FreeAddr()
	cmd := exec.Command(*gatewayBin, "-listen", proxy, "-admin-listen", admin, "-listen-tls", tlsAddr, "-data-dir", dir)
	var gwLog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &gwLog, &gwLog
	check(cmd.Start())
	gateway = cmd
	defer stopGateway()
	for _, addr := range []string{proxy, admin} {
		if err := harness.WaitTCP(addr, nil, 15*time.Second); err != nil {
			fail("%v", err)
		}
	}

	put := func(path, body string) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.Header.SetMethod("PUT")
		req.SetRequestURI("http://" + admin + path)
		req.SetBodyString(body)
		check(fasthttp.Do(req, resp))
		if resp.StatusCode() >= 300 {
			fail("PUT %s: %d %s", path, resp.StatusCode(), resp.Body())
		}
	}
	cases := []struct {
		name, path string
		o          *origin
		upstream   string
	}{
		{"HTTP, keep-alive (defaults: size 320, requests 1000)", "/ka", plain,
			`{"nodes":{"` + plain.addr + `":1}}`},
		{"HTTP, keepalive_pool.requests = 1", "/r1", plain,
			`{"nodes":{"` + plain.addr + `":1},"keepalive_pool":{"requests":1}}`},
		{"HTTPS upstream, keep-alive (defaults)", "/tls", secure,
			`{"scheme":"https","nodes":{"` + secure.addr + `":1}}`},
		{"HTTPS upstream, keepalive_pool.requests = 1", "/tls1", secure,
			`{"scheme":"https","nodes":{"` + secure.addr + `":1},"keepalive_pool":{"requests":1}}`},
	}
	for i, c := range cases {
		put(fmt.Sprintf("/apisix/admin/routes/%d", i), `{"uri":"`+c.path+`","upstream":`+c.upstream+`}`)
	}

	client := &fasthttp.HostClient{Addr: proxy, MaxConns: *concurrency * 2, MaxIdleConnDuration: time.Minute}
	fmt.Printf("gateway %s, %d client connections, %v per case, GOMAXPROCS %d, %d CPUs\n\n",
		*gatewayBin, *concurrency, *duration, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Println("| case | requests/s | upstream connections opened per 10,000 requests | errors |")
	fmt.Println("|---|---:|---:|---:|")
	for _, c := range cases {
		run(client, c.path, time.Second) // warm-up
		before := c.o.accepted.Load()
		n, errs, elapsed := run(client, c.path, *duration)
		opened := c.o.accepted.Load() - before
		fmt.Printf("| %s | %.0f | %.1f | %d |\n", c.name, float64(n)/elapsed.Seconds(), float64(opened)*10000/float64(max(n, 1)), errs)
	}
}

// run drives path with keep-alive clients for d and returns the 200s, the
// failures and the time taken.
func run(client *fasthttp.HostClient, path string, d time.Duration) (ok, failed int64, elapsed time.Duration) {
	var okN, failN atomic.Int64
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI("http://" + client.Addr + path)
			req.Header.SetHost("bench.test")
			for time.Now().Before(stop) {
				if err := client.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					failN.Add(1)
					continue
				}
				okN.Add(1)
			}
		}()
	}
	wg.Wait()
	return okN.Load(), failN.Load(), time.Since(start)
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

// gateway is the started gateway process, stopped on every exit path.
var gateway *exec.Cmd

func stopGateway() {
	if gateway != nil && gateway.Process != nil {
		_ = gateway.Process.Kill()
		_ = gateway.Wait()
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "upstreamconn: "+format+"\n", args...)
	stopGateway()
	os.Exit(1)
}
