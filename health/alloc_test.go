//go:build !race

package health

import (
	"net"
	"testing"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/internal/testorigin"
	"github.com/valyala/fasthttp"
)

// TestProxyAllocationsWithRealHealth runs the proxy handler over an
// upstream with active and passive checks and the real health manager
// attached: 0 allocations per request while passive reports flow, while
// they flip nodes down and up, and while every node is down (fail-open).
func TestProxyAllocationsWithRealHealth(t *testing.T) {
	ok := testorigin.Canned(t, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", nil).String()
	bad := testorigin.Canned(t, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 3\r\n\r\nbad", nil).String()
	m := NewManager(Options{})
	defer m.Close()
	rt := core.NewRuntime()
	defer rt.Close()
	rt.Health = m
	cfg := core.NewConfig()
	checks := `"checks":{"active":{"healthy":{"interval":60},"unhealthy":{"interval":60}},
		"passive":{"healthy":{"successes":1},"unhealthy":{"http_failures":1}}}`
	cfg.Upstreams["ok"] = upstream(t, `{"nodes":{"`+ok+`":1,"`+ok+`":1},`+checks+`}`)
	cfg.Upstreams["bad"] = upstream(t, `{"nodes":{"`+bad+`":1},`+checks+`}`)
	for id, uri := range map[string]string{"ok": "/ok", "bad": "/bad"} {
		r, err := core.ParseRoute([]byte(`{"uri":"` + uri + `","upstream_id":"` + id + `"}`))
		if err != nil {
			t.Fatal(err)
		}
		cfg.Routes[id] = r
	}
	p := core.NewProxy()
	snap := rt.Compile(cfg, nil)
	p.Publish(snap)
	m.Sync(snap)

	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}
	run := func(uri string, want int) func() {
		return func() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.SetRequestURI(uri)
			ctx.Request.Header.SetHost("example.com")
			ctx.Init2(nil, nil, false)
			ctx.SetRemoteAddr(remote)
			p.Handler(&ctx)
			if ctx.Response.StatusCode() != want {
				t.Fatalf("%s: status %d", uri, ctx.Response.StatusCode())
			}
		}
	}
	check := func(name string, f func()) {
		t.Helper()
		for i := 0; i < 100; i++ {
			f()
		}
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Fatalf("%s: %.2f allocations per request, want 0", name, n)
		}
	}
	okRun, badRun := run("/ok", 200), run("/bad", 500)
	check("passive successes", okRun)
	// Every response trips the breaker (http_failures 1): the only node
	// is down and each request fails open to it.
	check("passive failures, fail-open", badRun)
	if !snap.Balancers["/apisix/upstreams/bad"].Nodes[0].State.Down() {
		t.Fatal("the failing node is not down")
	}
	// Alternate: each success flips the node up, each failure down.
	healthy := snap.Balancers["/apisix/upstreams/ok"].Health()
	check("flips", func() {
		okRun()
		badRun()
		healthy.Final(0, 500) // down...
		healthy.Final(0, 200) // ...and up again
	})
}
