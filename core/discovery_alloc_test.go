//go:build !race

package core

import (
	"net"
	"testing"

	"github.com/edgeway/gateway/discovery"
	"github.com/valyala/fasthttp"
)

// TestHandlerAllocationsDiscovered: a request to a discovered upstream
// (its version loaded through the root's atomic pointer), after node-set
// swaps, allocates nothing; nor does the 503 of an empty node set.
func TestHandlerAllocationsDiscovered(t *testing.T) {
	const ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello"
	port, port2 := rawOrigin(t, ok), rawOrigin(t, ok)
	disc := newFakeDiscovery()
	disc.set("web.test", known(port))
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: &Upstream{
		Type: "roundrobin", Scheme: "http", PassHost: "pass", DiscoveryType: "dns", ServiceName: "web.test"}}
	rt := NewRuntime()
	defer rt.Close()
	rt.Discovery = discovery.Set{"dns": disc}
	p := NewProxy()
	p.Publish(rt.Compile(cfg, nil))
	disc.set("web.test", known(port, port2))

	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}
	status := 200
	run := func() {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURI("/hello?a=1")
		ctx.Request.Header.SetHost("example.com")
		ctx.Init2(nil, nil, false)
		ctx.SetRemoteAddr(remote)
		p.Handler(&ctx)
		if ctx.Response.StatusCode() != status {
			t.Fatalf("status %d body %q", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
	for i := 0; i < 100; i++ {
		run()
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("handler allocates %.2f times per request, want 0", n)
	}

	disc.set("web.test", discovery.State{Known: true, Empty: "NXDOMAIN for web.test"})
	status = 503
	for i := 0; i < 100; i++ {
		run()
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("the 503 of an empty node set allocates %.2f times per request, want 0", n)
	}
}
