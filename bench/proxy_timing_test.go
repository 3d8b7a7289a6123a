// Package bench holds end-to-end benchmarks of the hot path.
package bench

import (
	"fmt"
	"net"
	"testing"

	"github.com/edgeway/gateway/core"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// startOrigin runs an allocation-free fasthttp origin on 127.0.0.1.
func startOrigin(b testing.TB, body []byte) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("text/plain")
		ctx.SetBody(body)
	}}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// startGateway serves a compiled config on an in-memory listener and
// returns a client connected to it.
func startGateway(b testing.TB, cfg *core.Config) *fasthttp.HostClient {
	b.Helper()
	rt := core.NewRuntime()
	p := core.NewProxy()
	p.Publish(rt.Compile(cfg, nil))
	ln := fasthttputil.NewInmemoryListener()
	srv := core.NewServer(p.Handler)
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(); rt.Close() })
	return &fasthttp.HostClient{
		Addr:     "gateway",
		Dial:     func(string) (net.Conn, error) { return ln.Dial() },
		MaxConns: 1024,
	}
}

func upstream(addrs ...string) *core.Upstream {
	u := &core.Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass"}
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		var p int
		fmt.Sscan(port, &p)
		u.Nodes = append(u.Nodes, core.Node{Host: host, Port: p, Weight: 1})
	}
	return u
}

// BenchmarkProxyGET measures a GET through route match, pick and forward,
// client → gateway (in-memory listener) → origin (loopback TCP).
func BenchmarkProxyGET(b *testing.B) {
	body := make([]byte, 1024)
	a, o := startOrigin(b, body), startOrigin(b, body)
	cfg := core.NewConfig()
	cfg.Routes["1"] = &core.Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: upstream(a, o)}
	for i := 0; i < 100; i++ {
		id := fmt.Sprint("filler", i)
		cfg.Routes[id] = &core.Route{ID: id, URIs: []string{"/filler/" + id + "/*"}, Status: 1, Upstream: upstream(a)}
	}
	c := startGateway(b, cfg)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://gateway/hello?x=1")
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		for pb.Next() {
			if err := c.Do(req, resp); err != nil {
				b.Fatal(err)
			}
			if resp.StatusCode() != 200 || len(resp.Body()) != len(body) {
				b.Fatalf("status %d len %d", resp.StatusCode(), len(resp.Body()))
			}
		}
	})
}

// BenchmarkOriginDirect is the baseline: the same client straight to the
// origin over loopback TCP.
func BenchmarkOriginDirect(b *testing.B) {
	body := make([]byte, 1024)
	a := startOrigin(b, body)
	c := &fasthttp.HostClient{Addr: a, MaxConns: 1024}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://" + a + "/hello?x=1")
		for pb.Next() {
			if err := c.Do(req, resp); err != nil {
				b.Fatal(err)
			}
		}
	})
}
