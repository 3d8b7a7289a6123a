//go:build !race

package core

import (
	"crypto/tls"
	"net"
	"testing"

	"github.com/edgeway/gateway/internal/testorigin"
	"github.com/valyala/fasthttp"
)

// rawOrigin is an allocation-free HTTP/1.1 origin: it answers every
// request on a connection with the same canned response, so that
// allocation counts measured in this process are the gateway's own.
func rawOrigin(t testing.TB, response string) int {
	t.Helper()
	return rawOriginTLS(t, response, nil)
}

// rawOriginTLS is rawOrigin speaking TLS with cfg when cfg is non-nil.
func rawOriginTLS(t testing.TB, response string, cfg *tls.Config) int {
	t.Helper()
	return testorigin.Canned(t, response, cfg).Port
}

func TestHandlerAllocations(t *testing.T) {
	port := rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	port2 := rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	busy := rawOrigin(t, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
	for _, tc := range []struct {
		name string
		edit func(u *Upstream)
	}{
		{"roundrobin", func(u *Upstream) {}},
		{"chash header", func(u *Upstream) { u.Type, u.HashOn, u.Key = "chash", "header", "X-User" }},
		{"chash missing header", func(u *Upstream) { u.Type, u.HashOn, u.Key = "chash", "header", "X-Absent" }},
		{"chash cookie", func(u *Upstream) { u.Type, u.HashOn, u.Key = "chash", "cookie", "sid" }},
		{"chash vars_combinations", func(u *Upstream) {
			u.Type, u.HashOn, u.Key = "chash", "vars_combinations", "$http_x_user-$arg_a-$remote_addr"
		}},
		{"least_conn", func(u *Upstream) { u.Type = "least_conn" }},
		{"ewma", func(u *Upstream) { u.Type = "ewma" }},
		{"priority", func(u *Upstream) { u.Nodes[1].Priority = -1 }},
		{"retry_on_statuses", func(u *Upstream) { u.RetryOnStatuses = []int{502, 503} }},
		{"retry_on_statuses retried", func(u *Upstream) {
			// Every other request meets the 503 node first and is retried.
			u.Nodes[1].Port = busy
			u.RetryOnStatuses = []int{503}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := upstreamOf(port, port2)
			tc.edit(u)
			checkHandlerAllocations(t, u, 0)
		})
	}
}

// TestHandlerAllocationsHTTPS: the same over TLS to the upstream, with
// pass_host=pass, so each request also finds its pool by SNI (the Host).
//
// crypto/tls allocates once per record it reads (readFromUntil hands a
// heap-allocated atLeastReader to bytes.Buffer.ReadFrom, Go 1.26): once
// for the response the gateway reads and once for the request the
// in-process origin reads. The gateway's own code adds nothing.
func TestHandlerAllocationsHTTPS(t *testing.T) {
	pki := fixedPKI()
	pair, err := tls.X509KeyPair([]byte(pki.Server.Cert), []byte(pki.Server.Key))
	if err != nil {
		t.Fatal(err)
	}
	port := rawOriginTLS(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
		&tls.Config{Certificates: []tls.Certificate{pair}})
	u := upstreamOf(port, port)
	u.Scheme = "https"
	checkHandlerAllocations(t, u, 2)
}

func checkHandlerAllocations(t *testing.T, u *Upstream, allowed float64) {
	t.Helper()
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: u}
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
		ctx.Request.Header.Set("X-User", "alice")
		ctx.Request.Header.Set("Cookie", "theme=dark; sid=s3cr3t")
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
	if n := testing.AllocsPerRun(1000, run); n > allowed {
		t.Fatalf("handler allocates %.2f times per request, want %v", n, allowed)
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

// TestHandlerAllocationsRewriteSplitCookie covers the per-route features of
// the Kong and ingress dialects: a strip_path rewrite of the request
// target, a weighted split between two upstreams, and a hash cookie issued
// to a client that has none.
func TestHandlerAllocationsRewriteSplitCookie(t *testing.T) {
	port := rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	port2 := rawOrigin(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello")
	cfg := NewConfig()
	cfg.Upstreams["a"] = upstreamOf(port)
	cfg.Upstreams["b"] = upstreamOf(port2)
	cookie := upstreamOf(port)
	cookie.HashOn, cookie.Key, cookie.HashCookie = "cookie", "sid", &HashCookie{Path: "/"}
	cfg.Upstreams["c"] = cookie
	cfg.Routes["strip"] = &Route{ID: "strip", URIs: []string{"/mock*"}, Status: 1, UpstreamID: "a",
		Rewrite: &PathRewrite{Base: "/svc", Strip: true, StripPrefixes: []string{"/mock"}}}
	cfg.Routes["split"] = &Route{ID: "split", URIs: []string{"/split"}, Status: 1, UpstreamID: "a",
		Split: []WeightedUpstream{{Weight: 90}, {UpstreamID: "b", Weight: 10}}}
	cfg.Routes["cookie"] = &Route{ID: "cookie", URIs: []string{"/cookie"}, Status: 1, UpstreamID: "c"}
	rt := NewRuntime()
	defer rt.Close()
	p := NewProxy()
	p.Publish(rt.Compile(cfg, nil))

	var ctx fasthttp.RequestCtx
	remote := &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 5555}
	for _, path := range []string{"/mock/a/b?x=1", "/split", "/cookie"} {
		run := func() {
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.SetRequestURI(path)
			ctx.Request.Header.SetHost("example.com")
			ctx.Init2(nil, nil, false)
			ctx.SetRemoteAddr(remote)
			p.Handler(&ctx)
			if ctx.Response.StatusCode() != 200 || string(ctx.Response.Body()) != "hello" {
				t.Fatalf("%s: status %d body %q", path, ctx.Response.StatusCode(), ctx.Response.Body())
			}
		}
		for i := 0; i < 100; i++ {
			run()
		}
		switch path {
		case "/mock/a/b?x=1":
			if got := string(ctx.Request.Header.RequestURI()); got != "/svc/a/b?x=1" {
				t.Fatalf("rewritten target %q", got)
			}
		case "/cookie":
			if got := string(ctx.Response.Header.PeekCookie("sid")); len(got) < 36 {
				t.Fatalf("hash cookie not issued: %q", ctx.Response.Header.String())
			}
		}
		if n := testing.AllocsPerRun(1000, run); n != 0 {
			t.Fatalf("%s: handler allocates %.2f times per request, want 0", path, n)
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

// TestHeaderRewriteAllocations guards BenchmarkHeaderRewrite's 0 allocs/op.
func TestHeaderRewriteAllocations(t *testing.T) {
	tmpl := parseBenchRequest(t)
	p, ctx := NewProxy(), newBenchCtx()
	st := statePool.Get().(*reqState)
	defer statePool.Put(st)
	rewriteOnce(p, ctx, st, tmpl)
	if n := testing.AllocsPerRun(1000, func() { rewriteOnce(p, ctx, st, tmpl) }); n != 0 {
		t.Fatalf("header rewrite allocates %.2f times per request, want 0", n)
	}
}
