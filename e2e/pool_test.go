package e2e

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// countingOrigin is an HTTP/1.1 origin (net/http, TLS when given a
// configuration) that counts the connections it accepted and those still
// open.
type countingOrigin struct {
	Addr     string
	Port     int
	accepted atomic.Int64
	open     atomic.Int64
	requests atomic.Int64
	srv      *http.Server
}

func startCountingOrigin(t testing.TB, tlsCfg *tls.Config, h http.HandlerFunc) *countingOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &countingOrigin{Addr: ln.Addr().String(), Port: ln.Addr().(*net.TCPAddr).Port}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.requests.Add(1)
			if h != nil {
				h(w, r)
				return
			}
			io.WriteString(w, "ok")
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				o.accepted.Add(1)
				o.open.Add(1)
			case http.StateClosed, http.StateHijacked:
				o.open.Add(-1)
			}
		},
		// HTTP/1.1 only, as the gateway speaks it.
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	if tlsCfg != nil {
		o.srv.TLSConfig = tlsCfg
		go o.srv.ServeTLS(ln, "", "")
	} else {
		go o.srv.Serve(ln)
	}
	t.Cleanup(func() { o.srv.Close() })
	return o
}

func mustGet(t *testing.T, g *gateway, path string, hdr ...string) string {
	t.Helper()
	code, body, _ := g.get(path, hdr...)
	if code != 200 {
		t.Fatalf("GET %s: %d %q\n%s", path, code, body, g.logs())
	}
	return body
}

// TestPoolReuse: with the default keepalive_pool, 10,000 sequential
// requests use a handful of upstream connections: ten, because a
// connection retires after requests (1000) requests.
func TestPoolReuse(t *testing.T) {
	o := startCountingOrigin(t, nil, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1}}`, o.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/r", `{"uri":"/r","upstream_id":"u"}`, 201)
	const n = 10000
	for i := 0; i < n; i++ {
		mustGet(t, g, "/r")
	}
	if got := o.accepted.Load(); got > n/1000+2 {
		t.Fatalf("%d sequential requests opened %d upstream connections", n, got)
	}
	l := fmt.Sprintf(`{upstream="/apisix/upstreams/u",node="%s"}`, o.Addr)
	opened, reused := g.metric("gateway_upstream_connections_opened_total"+l), g.metric("gateway_upstream_connections_reused_total"+l)
	if opened != float64(o.accepted.Load()) || opened+reused != n {
		t.Fatalf("metrics: opened %v reused %v; origin accepted %d", opened, reused, o.accepted.Load())
	}
	t.Logf("%d requests, %d connections", n, o.accepted.Load())
}

// TestPoolRequestsLimit: keepalive_pool.requests retires a connection
// after that many requests.
func TestPoolRequestsLimit(t *testing.T) {
	o := startCountingOrigin(t, nil, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/r", fmt.Sprintf(`{"uri":"/r","upstream":{"nodes":{"%s":1},
		"keepalive_pool":{"requests":10}}}`, o.Addr), 201)
	for i := 0; i < 1000; i++ {
		mustGet(t, g, "/r")
	}
	if got := o.accepted.Load(); got < 100 || got > 105 {
		t.Fatalf("1000 requests at 10 per connection opened %d connections, want about 100", got)
	}
	waitFor(t, "retired connections to close", func() bool { return o.open.Load() <= 1 })
}

// TestPoolIdleTimeout: idle connections close after idle_timeout; with 0
// they close as soon as they are idle.
func TestPoolIdleTimeout(t *testing.T) {
	o := startCountingOrigin(t, nil, nil)
	z := startCountingOrigin(t, nil, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/one", fmt.Sprintf(`{"uri":"/one","upstream":{"nodes":{"%s":1},
		"keepalive_pool":{"idle_timeout":1}}}`, o.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/zero", fmt.Sprintf(`{"uri":"/zero","upstream":{"nodes":{"%s":1},
		"keepalive_pool":{"idle_timeout":0}}}`, z.Addr), 201)

	mustGet(t, g, "/one")
	mustGet(t, g, "/one")
	if o.accepted.Load() != 1 || o.open.Load() != 1 {
		t.Fatalf("idle_timeout 1: accepted %d open %d right after two requests, want 1 and 1", o.accepted.Load(), o.open.Load())
	}
	start := time.Now()
	waitFor(t, "the idle connection to close", func() bool { return o.open.Load() == 0 })
	t.Logf("idle_timeout 1 s: closed after %v", time.Since(start).Round(10*time.Millisecond))

	for i := 0; i < 20; i++ {
		mustGet(t, g, "/zero")
	}
	if got := z.accepted.Load(); got != 20 {
		t.Fatalf("idle_timeout 0: 20 requests opened %d connections, want 20", got)
	}
	waitFor(t, "idle_timeout 0 connections to close", func() bool { return z.open.Load() == 0 })
}

// TestPoolSizeAfterBurst: size caps idle connections, not concurrency
// (nginx keepalive N): a burst opens what it needs, then at most size stay.
func TestPoolSizeAfterBurst(t *testing.T) {
	o := startCountingOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
		io.WriteString(w, "ok")
	})
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/r", fmt.Sprintf(`{"uri":"/r","upstream":{"nodes":{"%s":1},
		"keepalive_pool":{"size":5}}}`, o.Addr), 201)
	const burst = 50
	if failed := getConcurrently(g, "/r", burst)(); failed > 0 {
		t.Fatalf("%d requests of the burst failed", failed)
	}
	if got := o.accepted.Load(); got < burst/2 {
		t.Fatalf("a burst of %d concurrent requests opened only %d connections: size must not cap concurrency", burst, got)
	}
	waitFor(t, "the surplus to close", func() bool { return o.open.Load() <= 5 })
	// What stays is reused.
	before := o.accepted.Load()
	for i := 0; i < 5; i++ {
		mustGet(t, g, "/r")
	}
	if o.accepted.Load() != before {
		t.Fatalf("after the burst, sequential requests opened %d new connections", o.accepted.Load()-before)
	}
	t.Logf("burst of %d: %d connections opened, %d left open", burst, before, o.open.Load())
}

// TestOriginClosesIdleConnections: an origin that drops keep-alive
// connections after 200 ms of idleness causes no 502.
func TestOriginClosesIdleConnections(t *testing.T) {
	o := startCountingOrigin(t, nil, nil)
	o.srv.IdleTimeout = 200 * time.Millisecond
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/r", fmt.Sprintf(`{"uri":"/r","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	for i := 0; i < 4; i++ {
		mustGet(t, g, "/r")
		if code, body, _ := g.request("POST", "/r", "payload"); code != 200 {
			t.Fatalf("POST after the origin closed the idle connection: %d %q", code, body)
		}
		time.Sleep(350 * time.Millisecond)
	}
	if got, sent := o.requests.Load(), int64(8); got != sent {
		t.Fatalf("origin served %d requests, the client sent %d", got, sent)
	}
}

// closingOrigin answers each request on a connection, without
// Connection: close, and then closes the connection: every pooled
// connection to it is stale.
type closingOrigin struct {
	Addr     string
	accepted atomic.Int64
	served   atomic.Int64
	closed   atomic.Int64
}

func startClosingOrigin(t *testing.T) *closingOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	o := &closingOrigin{Addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.accepted.Add(1)
			go func() {
				defer o.closed.Add(1)
				defer c.Close()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				io.Copy(io.Discard, req.Body)
				o.served.Add(1)
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	return o
}

// TestOriginClosesAfterEachResponse: every reuse of a pooled connection
// meets a closed socket; GETs are sent again on a fresh connection, POSTs
// are only ever sent once (a liveness check precedes their reuse), and
// the client never sees a 502.
func TestOriginClosesAfterEachResponse(t *testing.T) {
	o := startClosingOrigin(t)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/r", fmt.Sprintf(`{"uri":"/r","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	sent := int64(0)
	for i := 0; i < 200; i++ {
		if body := mustGet(t, g, "/r"); body != "ok" {
			t.Fatalf("body %q", body)
		}
		sent++
	}
	for i := 0; i < 50; i++ {
		// Wait until the origin has closed the last connection: a POST
		// written while the close is still under way fails (it may not be
		// sent twice), as with nginx; one written after the close must not.
		waitFor(t, "the origin to close", func() bool { return o.closed.Load() == o.accepted.Load() })
		if code, body, _ := g.request("POST", "/r", "payload"); code != 200 {
			t.Fatalf("POST %d: %d %q\n%s", i, code, body, g.logs())
		}
		sent++
	}
	if got := o.served.Load(); got != sent {
		t.Fatalf("the origin served %d requests for %d sent: a request was replayed or lost", got, sent)
	}
	if strings.Contains(g.logs(), "cannot read response header") {
		t.Fatalf("a stale connection surfaced as an error:\n%s", g.logs())
	}
}

// TestPoolsAcrossEdits: an edit that keeps a node keeps its warm
// connection; changing the pool settings moves new requests to a new pool
// without breaking requests in flight.
func TestPoolsAcrossEdits(t *testing.T) {
	slow := atomic.Bool{}
	a := startCountingOrigin(t, nil, func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() && r.URL.Query().Get("slow") != "" {
			time.Sleep(500 * time.Millisecond)
		}
		io.WriteString(w, "a")
	})
	b := startCountingOrigin(t, nil, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1}}`, a.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/r", `{"uri":"/r","upstream_id":"u"}`, 201)
	for i := 0; i < 5; i++ {
		mustGet(t, g, "/r")
	}
	// Add a node of weight 0 (never picked) and an unrelated route.
	g.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1,"%s":0}}`, a.Addr, b.Addr), 200)
	g.mustDo("PUT", "/apisix/admin/routes/other", fmt.Sprintf(`{"uri":"/other","upstream":{"nodes":{"%s":1}}}`, b.Addr), 201)
	for i := 0; i < 5; i++ {
		mustGet(t, g, "/r")
	}
	if got := a.accepted.Load(); got != 1 {
		t.Fatalf("edits that kept the node opened %d connections, want the one warm connection", got)
	}

	// Requests in flight while the pool settings change complete.
	slow.Store(true)
	wait := getConcurrently(g, "/r?slow=1", 4)
	waitFor(t, "requests in flight", func() bool { return a.requests.Load() >= 14 })
	g.mustDo("PATCH", "/apisix/admin/upstreams/u", `{"keepalive_pool":{"size":2,"idle_timeout":30,"requests":100}}`, 200)
	mustGet(t, g, "/r")
	if failed := wait(); failed > 0 {
		t.Fatalf("%d requests in flight failed across the pool change", failed)
	}
	// The old pool's connections were closed when released; the new pool
	// keeps at most 2.
	waitFor(t, "the old pool to drain", func() bool { return a.open.Load() <= 2 })
}

// getConcurrently sends n GET path at once; wait returns, once all have
// ended, how many failed (no answer, or not 200).
func getConcurrently(g *gateway, path string, n int) (wait func() int64) {
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range n {
		wg.Go(func() {
			resp, err := proxyClient.Get("http://" + g.proxy + path)
			if err != nil {
				failed.Add(1)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		})
	}
	return func() int64 { wg.Wait(); return failed.Load() }
}
