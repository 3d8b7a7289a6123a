//go:build !race

package core

import (
	"bytes"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// rawOrigin is an allocation-free HTTP/1.1 origin: it answers every
// request on a connection with the same canned response, so that
// allocation counts measured in this process are the gateway's own.
func rawOrigin(t testing.TB, response string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	resp := []byte(response)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				buf := make([]byte, 64<<10)
				n := 0
				for {
					m, err := c.Read(buf[n:])
					if err != nil {
						return
					}
					n += m
					for {
						end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
						if end < 0 {
							break
						}
						if _, err := c.Write(resp); err != nil {
							return
						}
						n = copy(buf, buf[end+4:n])
					}
				}
			}(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func TestHandlerAllocations(t *testing.T) {
	port := rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: upstreamOf(port, port)}
	rt := NewRuntime()
	defer rt.Close()
	p := NewProxy()
	p.Publish(rt.Compile(cfg, nil))

	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}
	run := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI("/hello?a=1")
		ctx.Request.Header.SetHost("example.com")
		ctx.Request.Header.Set("X-Forwarded-For", "1.1.1.1")
		ctx.Init2(nil, nil, false)
		ctx.SetRemoteAddr(remote)
		p.Handler(&ctx)
		if ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != "hello" {
			t.Fatalf("status %d body %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	for i := 0; i < 100; i++ {
		run()
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("handler allocates %.2f times per request, want 0", n)
	}
}

func TestExprAllocations(t *testing.T) {
	var v any = []any{[]any{"arg_n", ">", float64(5)}, []any{"arg_k", "~~", "^a"}}
	e, err := ParseExpr(v)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	for _, uri := range []string{"/?n=abc&k=a", "/?n=beef&k=a", "/?n=0x10&k=abc", "/?n=7&k=abc"} {
		ctx := exprCtx(uri)
		e.Eval(ctx, buf)
		if n := testing.AllocsPerRun(100, func() { e.Eval(ctx, buf) }); n != 0 {
			t.Fatalf("Eval on %s allocates %.1f", uri, n)
		}
	}
}

// TestHandlerAllocationsWithHealthChecks: an upstream with active and
// passive checks still costs 0 allocations per request, both while its
// nodes are up (a passive report per request) and while every node is down
// (the fail-open pick, plus a report before each retry).
func TestHandlerAllocationsWithHealthChecks(t *testing.T) {
	ok := rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: withChecks(upstreamOf(ok, ok))}
	rt := NewRuntime()
	defer rt.Close()
	hc := &counting{}
	rt.Health = countingHealth{hc}
	p := NewProxy()
	p.Publish(rt.Compile(cfg, nil))
	if p.Snapshot().Balancers["/apisix/routes/1"].Health() == nil {
		t.Fatal("no passive hook attached")
	}

	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}
	run := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI("/hello")
		ctx.Request.Header.SetHost("example.com")
		ctx.Init2(nil, nil, false)
		ctx.SetRemoteAddr(remote)
		p.Handler(&ctx)
		if ctx.Response.StatusCode() != 200 {
			t.Fatalf("status %d", ctx.Response.StatusCode())
		}
	}
	for i := 0; i < 100; i++ {
		run()
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("handler with health checks allocates %.2f times per request, want 0", n)
	}
	if hc.finals.Load() == 0 {
		t.Fatal("no final status reported")
	}
	for _, n := range p.Snapshot().Balancers["/apisix/routes/1"].Nodes {
		n.State.SetDown(true)
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("handler failing open allocates %.2f times per request, want 0", n)
	}
}
