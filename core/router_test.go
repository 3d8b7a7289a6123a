package core

import (
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/valyala/fasthttp"
)

// rs describes a route for router tests.
type rs struct {
	id      string
	uris    []string
	hosts   []string
	prio    int
	methods MethodSet
	remote  []string // IPs or CIDRs
	vars    []any    // decoded JSON `vars`
	off     bool     // status 0
}

func (s rs) entry(tb testing.TB) *RouteEntry {
	tb.Helper()
	r := &Route{ID: s.id, URIs: s.uris, Priority: s.prio, Methods: s.methods, Status: 1}
	if s.off {
		r.Status = 0
	}
	for _, a := range s.remote {
		p, err := ParsePrefix(a)
		if err != nil {
			tb.Fatalf("route %s: %v", s.id, err)
		}
		r.RemoteAddrs = append(r.RemoteAddrs, p)
	}
	if s.vars != nil {
		e, err := ParseExpr(s.vars)
		if err != nil {
			tb.Fatalf("route %s: vars: %v", s.id, err)
		}
		r.Vars = e
	}
	return &RouteEntry{Route: r, Hosts: s.hosts, Key: "/apisix/routes/" + s.id}
}

func buildRoutes(tb testing.TB, specs ...rs) *Router {
	tb.Helper()
	entries := make([]*RouteEntry, len(specs))
	for i, s := range specs {
		entries[i] = s.entry(tb)
	}
	return BuildRouter(entries)
}

// rq describes a request for router tests. Empty fields take defaults:
// GET, no Host header, client 127.0.0.1.
type rq struct {
	method, uri, host, remote string
}

func (q rq) ctx(tb testing.TB) *fasthttp.RequestCtx {
	tb.Helper()
	ctx, err := q.build()
	if err != nil {
		tb.Fatal(err)
	}
	return ctx
}

// build makes a request context; it may be called from any goroutine.
func (q rq) build() (*fasthttp.RequestCtx, error) {
	var req fasthttp.Request
	req.SetRequestURI(q.uri)
	if q.method != "" {
		req.Header.SetMethod(q.method)
	}
	if q.host != "" {
		req.Header.SetHost(q.host)
	}
	ip := "127.0.0.1"
	if q.remote != "" {
		ip = q.remote
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return nil, fmt.Errorf("remote %q: %w", ip, err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: a.AsSlice(), Port: 40000}, nil)
	return &ctx, nil
}

// matchID returns the ID of the matched route, or "" for no match.
func matchID(r *Router, ctx *fasthttp.RequestCtx) string {
	e := r.Match(ctx, make([]byte, 0, 512))
	if e == nil {
		return ""
	}
	return e.Route.ID
}

// checkMatch asserts which route (by ID, "" for none) serves each request.
func checkMatch(t *testing.T, r *Router, want string, reqs ...rq) {
	t.Helper()
	for _, q := range reqs {
		if got := matchID(r, q.ctx(t)); got != want {
			t.Errorf("%s %s host=%q from %s: got route %q, want %q", q.method, q.uri, q.host, q.remote, got, want)
		}
	}
}

func TestRouterURIPrecedence(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "prefix-hi", uris: []string{"/a/b*"}, prio: 100},
		rs{id: "exact", uris: []string{"/a/b"}, prio: -5},
		rs{id: "short", uris: []string{"/a*"}, prio: 1000},
		rs{id: "root", uris: []string{"/*"}},
	)
	// An exact uri beats any prefix whatever the priorities.
	checkMatch(t, r, "exact", rq{uri: "/a/b"}, rq{uri: "/a/b?x=1"})
	// The longest prefix wins over a shorter one with a higher priority.
	checkMatch(t, r, "prefix-hi", rq{uri: "/a/bc"}, rq{uri: "/a/b/c"}, rq{uri: "/a/b/"})
	checkMatch(t, r, "short", rq{uri: "/a"}, rq{uri: "/ab"}, rq{uri: "/a/"}, rq{uri: "/a/c/b"})
	checkMatch(t, r, "root", rq{uri: "/"}, rq{uri: "/b"}, rq{uri: "/x/a/b"})
}

func TestRouterPrefixSemantics(t *testing.T) {
	r := buildRoutes(t, rs{id: "a", uris: []string{"/a*"}})
	checkMatch(t, r, "a", rq{uri: "/a"}, rq{uri: "/ab"}, rq{uri: "/a/b"}, rq{uri: "/a/b/c?d=e"})
	checkMatch(t, r, "", rq{uri: "/"}, rq{uri: "/b"}, rq{uri: "/A"})

	// An exact route does not match longer paths, and nothing without a
	// catch-all matches an unknown path.
	r = buildRoutes(t, rs{id: "x", uris: []string{"/x"}}, rs{id: "all", uris: []string{"*"}})
	checkMatch(t, r, "x", rq{uri: "/x"})
	checkMatch(t, r, "all", rq{uri: "/x/"}, rq{uri: "/xy"}, rq{uri: "/"})

	// The path is fasthttp's normalized and decoded one, like nginx $uri.
	r = buildRoutes(t, rs{id: "b", uris: []string{"/a b/c"}})
	checkMatch(t, r, "b", rq{uri: "/a%20b/c"}, rq{uri: "/a%20b/./x/../c"}, rq{uri: "/a%20b//c"})
}

func TestRouterPriorityWithinBucket(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "low", uris: []string{"/p"}, prio: 1},
		rs{id: "high", uris: []string{"/p"}, prio: 10},
		rs{id: "mid", uris: []string{"/p"}, prio: 5},
	)
	checkMatch(t, r, "high", rq{uri: "/p"})

	// Ties: by route ID, then by the order given.
	r = buildRoutes(t,
		rs{id: "b", uris: []string{"/p*"}},
		rs{id: "a", uris: []string{"/p*"}},
	)
	checkMatch(t, r, "a", rq{uri: "/p/1"})
	r = buildRoutes(t,
		rs{id: "same", uris: []string{"/p"}, methods: MethodPOST},
		rs{id: "same", uris: []string{"/p"}},
	)
	checkMatch(t, r, "same", rq{uri: "/p"})
	if e := r.Match(rq{uri: "/p", method: "POST"}.ctx(t), make([]byte, 0, 512)); e == nil || e.Route.Methods != MethodPOST {
		t.Errorf("tie on ID: want the first entry given, got %+v", e)
	}
}

func TestRouterHostPrecedence(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "none", uris: []string{"/api/v1/users"}},
		rs{id: "any", uris: []string{"/api*"}, hosts: []string{"*"}},
		rs{id: "wild-short", uris: []string{"/api*"}, hosts: []string{"*.com"}},
		rs{id: "wild", uris: []string{"/api*"}, hosts: []string{"*.foo.com"}},
		rs{id: "exact", uris: []string{"/api*"}, hosts: []string{"api.foo.com"}},
	)
	checkMatch(t, r, "exact", rq{uri: "/api/v1/users", host: "api.foo.com"})
	checkMatch(t, r, "wild", rq{uri: "/api/v1/users", host: "web.foo.com"})
	checkMatch(t, r, "wild-short", rq{uri: "/api/v1/users", host: "bar.com"})
	checkMatch(t, r, "any", rq{uri: "/api/v1/users", host: "example.org"}, rq{uri: "/api/v1/users"})

	// A host-bound route wins even though the host-less uri is more
	// specific; the host-less index serves only when no host-bound one does.
	r = buildRoutes(t,
		rs{id: "none", uris: []string{"/api/v1/users"}},
		rs{id: "host", uris: []string{"/*"}, hosts: []string{"api.foo.com"}},
	)
	checkMatch(t, r, "host", rq{uri: "/api/v1/users", host: "api.foo.com"})
	checkMatch(t, r, "none", rq{uri: "/api/v1/users", host: "other.foo.com"}, rq{uri: "/api/v1/users"})
	checkMatch(t, r, "", rq{uri: "/other", host: "other.foo.com"})

	// A failing host-bound candidate falls back to a shorter wildcard, then
	// to the host-less index.
	r = buildRoutes(t,
		rs{id: "exact-post", uris: []string{"/x"}, hosts: []string{"a.foo.com"}, methods: MethodPOST},
		rs{id: "wild-put", uris: []string{"/x"}, hosts: []string{"*.foo.com"}, methods: MethodPUT},
		rs{id: "none", uris: []string{"/x"}},
	)
	checkMatch(t, r, "exact-post", rq{uri: "/x", host: "a.foo.com", method: "POST"})
	checkMatch(t, r, "wild-put", rq{uri: "/x", host: "a.foo.com", method: "PUT"})
	checkMatch(t, r, "none", rq{uri: "/x", host: "a.foo.com", method: "GET"})
}

func TestRouterWildcardHosts(t *testing.T) {
	r := buildRoutes(t, rs{id: "w", uris: []string{"/"}, hosts: []string{"*.foo.com"}})
	checkMatch(t, r, "w", rq{uri: "/", host: "a.foo.com"}, rq{uri: "/", host: "a.b.foo.com"}, rq{uri: "/", host: ".foo.com"})
	checkMatch(t, r, "", rq{uri: "/", host: "foo.com"}, rq{uri: "/", host: "afoo.com"}, rq{uri: "/", host: "a.foo.co"},
		rq{uri: "/", host: "com"}, rq{uri: "/"})

	// A wildcard without a dot after the star is a plain suffix, as the
	// APISIX host pattern allows and lua-resty-radixtree matches it.
	r = buildRoutes(t, rs{id: "s", uris: []string{"/"}, hosts: []string{"*foo.com"}})
	checkMatch(t, r, "s", rq{uri: "/", host: "foo.com"}, rq{uri: "/", host: "xfoo.com"}, rq{uri: "/", host: "a.foo.com"})
	checkMatch(t, r, "", rq{uri: "/", host: "oo.com"})

	// A plain `*` matches every host, and a request without Host.
	r = buildRoutes(t, rs{id: "star", uris: []string{"/"}, hosts: []string{"*"}})
	checkMatch(t, r, "star", rq{uri: "/", host: "x"}, rq{uri: "/", host: "a.b.c"}, rq{uri: "/"})

	// Longest suffix first, whatever the kind of wildcard.
	r = buildRoutes(t,
		rs{id: "dot", uris: []string{"/"}, hosts: []string{"*.b.c"}},
		rs{id: "nodot", uris: []string{"/"}, hosts: []string{"*a.b.c"}},
		rs{id: "c", uris: []string{"/"}, hosts: []string{"*.c"}},
	)
	checkMatch(t, r, "nodot", rq{uri: "/", host: "xa.b.c"}, rq{uri: "/", host: "a.b.c"})
	checkMatch(t, r, "dot", rq{uri: "/", host: "x.b.c"}, rq{uri: "/", host: "z.a.x.b.c"})
	checkMatch(t, r, "c", rq{uri: "/", host: "b.c"}, rq{uri: "/", host: "x.c"})
}

func TestRouterHostNormalization(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "exact", uris: []string{"/"}, hosts: []string{"Api.Foo.com"}},
		rs{id: "wild", uris: []string{"/"}, hosts: []string{"*.BAR.com"}},
		rs{id: "v6", uris: []string{"/"}, hosts: []string{"[::1]"}},
	)
	checkMatch(t, r, "exact", rq{uri: "/", host: "api.foo.com"}, rq{uri: "/", host: "API.FOO.COM"},
		rq{uri: "/", host: "api.foo.com:8080"}, rq{uri: "/", host: "Api.Foo.Com:443"})
	checkMatch(t, r, "wild", rq{uri: "/", host: "X.Bar.Com"}, rq{uri: "/", host: "x.bar.com:9080"})
	checkMatch(t, r, "v6", rq{uri: "/", host: "[::1]:9080"}, rq{uri: "/", host: "[::1]"})
	checkMatch(t, r, "", rq{uri: "/", host: "api.foo.co:80"}, rq{uri: "/", host: "bar.com:80"})
}

func TestRouterMethods(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "write", uris: []string{"/m"}, methods: MethodPOST | MethodPUT},
		rs{id: "read", uris: []string{"/m*"}, methods: MethodGET | MethodHEAD},
	)
	checkMatch(t, r, "write", rq{uri: "/m", method: "POST"}, rq{uri: "/m", method: "PUT"})
	checkMatch(t, r, "read", rq{uri: "/m", method: "GET"}, rq{uri: "/m", method: "HEAD"}, rq{uri: "/mm"})
	checkMatch(t, r, "", rq{uri: "/m", method: "DELETE"}, rq{uri: "/mm", method: "POST"}, rq{uri: "/m", method: "get"})
}

func TestRouterVars(t *testing.T) {
	r := buildRoutes(t, rs{id: "k", uris: []string{"/v"}, vars: []any{[]any{"arg_k", "==", "v"}}})
	checkMatch(t, r, "k", rq{uri: "/v?k=v"}, rq{uri: "/v?a=1&k=v"})
	checkMatch(t, r, "", rq{uri: "/v?k=x"}, rq{uri: "/v"})

	// A failed vars check moves on: next in the bucket, then shorter prefixes,
	// then the host-less index.
	r = buildRoutes(t,
		rs{id: "host-k", uris: []string{"/v/*"}, hosts: []string{"h.com"}, vars: []any{[]any{"arg_k", "==", "h"}}},
		rs{id: "k1", uris: []string{"/v/1"}, prio: 2, vars: []any{[]any{"arg_k", "==", "1"}}},
		rs{id: "k2", uris: []string{"/v/1"}, prio: 1, vars: []any{[]any{"http_x_k", "==", "2"}}},
		rs{id: "k3", uris: []string{"/v/*"}, vars: []any{[]any{"arg_k", "==", "3"}}},
		rs{id: "k4", uris: []string{"/*"}, vars: []any{[]any{"host", "==", "h.com"}}},
	)
	checkMatch(t, r, "host-k", rq{uri: "/v/1?k=h", host: "h.com"})
	checkMatch(t, r, "k1", rq{uri: "/v/1?k=1", host: "h.com"}, rq{uri: "/v/1?k=1"})
	checkMatch(t, r, "k3", rq{uri: "/v/1?k=3", host: "h.com"}, rq{uri: "/v/2?k=3"})
	// The host variable is read into the same buffer as the lower-cased host.
	checkMatch(t, r, "k4", rq{uri: "/v/1?k=9", host: "H.com:80"})
	checkMatch(t, r, "", rq{uri: "/v/1?k=9", host: "x.com"})

	ctx := rq{uri: "/v/1"}.ctx(t)
	ctx.Request.Header.Set("X-K", "2")
	if got := matchID(r, ctx); got != "k2" {
		t.Errorf("header condition: got %q, want k2", got)
	}
}

func TestRouterRemoteAddrs(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "lan", uris: []string{"/r"}, remote: []string{"10.0.0.0/8", "192.168.1.7"}},
		rs{id: "v6", uris: []string{"/r"}, remote: []string{"2001:db8::/32"}},
		rs{id: "rest", uris: []string{"/r*"}},
	)
	checkMatch(t, r, "lan", rq{uri: "/r", remote: "10.1.2.3"}, rq{uri: "/r", remote: "192.168.1.7"},
		rq{uri: "/r", remote: "::ffff:10.9.9.9"})
	checkMatch(t, r, "v6", rq{uri: "/r", remote: "2001:db8::5"})
	checkMatch(t, r, "rest", rq{uri: "/r", remote: "192.168.1.8"}, rq{uri: "/r", remote: "11.0.0.1"},
		rq{uri: "/r", remote: "2001:db9::1"}, rq{uri: "/r/x", remote: "10.0.0.1"})
}

func TestRouterStatusAndEmpty(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "off", uris: []string{"/s"}, prio: 10, off: true},
		rs{id: "on", uris: []string{"/s*"}},
		rs{id: "off-host", uris: []string{"/s"}, hosts: []string{"h.com"}, off: true},
	)
	checkMatch(t, r, "on", rq{uri: "/s"}, rq{uri: "/s", host: "h.com"})
	if r.Len() != 1 {
		t.Errorf("Len = %d, want 1", r.Len())
	}

	for _, r := range []*Router{nil, BuildRouter(nil), {}, buildRoutes(t, rs{id: "off", uris: []string{"*"}, off: true})} {
		if e := r.Match(rq{uri: "/", host: "a.com"}.ctx(t), make([]byte, 0, 512)); e != nil || r.Len() != 0 {
			t.Errorf("empty router: Match = %v, Len = %d", e, r.Len())
		}
	}
	entries := []*RouteEntry{nil, {}, rs{id: "ok", uris: []string{"/"}}.entry(t)}
	checkMatch(t, BuildRouter(entries), "ok", rq{uri: "/"})
}

func TestRouterManyURIsAndHosts(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "multi", uris: []string{"/a", "/b*", "/c/d"}, hosts: []string{"x.com", "*.y.com", "X.com"}},
		rs{id: "fallback", uris: []string{"/*"}},
	)
	// 3 uris x 2 distinct hosts (X.com and x.com are one host).
	if r.Len() != 6+1 {
		t.Errorf("Len = %d, want 7", r.Len())
	}
	for _, host := range []string{"x.com", "a.y.com", "a.b.y.com:81"} {
		checkMatch(t, r, "multi", rq{uri: "/a", host: host}, rq{uri: "/b", host: host},
			rq{uri: "/bb/c", host: host}, rq{uri: "/c/d", host: host})
		checkMatch(t, r, "fallback", rq{uri: "/c", host: host}, rq{uri: "/a/", host: host})
	}
	checkMatch(t, r, "fallback", rq{uri: "/a", host: "y.com"}, rq{uri: "/a"})
}

func TestRouterSameURIAndHost(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "1", uris: []string{"/same"}, hosts: []string{"h.com"}, prio: 3, methods: MethodDELETE},
		rs{id: "2", uris: []string{"/same"}, hosts: []string{"h.com"}, prio: 2, remote: []string{"10.0.0.0/8"}},
		rs{id: "3", uris: []string{"/same"}, hosts: []string{"h.com"}, prio: 1, vars: []any{[]any{"arg_q", "==", "1"}}},
		rs{id: "4", uris: []string{"/same"}, hosts: []string{"h.com"}, prio: 1},
	)
	checkMatch(t, r, "1", rq{uri: "/same", host: "h.com", method: "DELETE", remote: "10.0.0.1"})
	checkMatch(t, r, "2", rq{uri: "/same", host: "h.com", remote: "10.0.0.1"})
	checkMatch(t, r, "3", rq{uri: "/same?q=1", host: "h.com"})
	checkMatch(t, r, "4", rq{uri: "/same?q=2", host: "h.com"}, rq{uri: "/same", host: "h.com", method: "PUT"})
	checkMatch(t, r, "", rq{uri: "/same", host: "g.com"})
}

// TestRouterDeepTree exercises node splitting and the ancestor links with
// prefixes that share and split at various depths.
func TestRouterDeepTree(t *testing.T) {
	var specs []rs
	for _, p := range []string{"", "/", "/a", "/ab", "/abc", "/abd", "/b", "/abcdef", "/abcx", "/z/y/x"} {
		specs = append(specs, rs{id: "p" + p, uris: []string{p + "*"}})
	}
	r := buildRoutes(t, specs...)
	for path, want := range map[string]string{
		"/": "p/", "/a": "p/a", "/ab": "p/ab", "/abc": "p/abc", "/abcd": "p/abc", "/abcde": "p/abc",
		"/abcdef": "p/abcdef", "/abcdefg": "p/abcdef", "/abcx1": "p/abcx", "/abd": "p/abd", "/abe": "p/ab",
		"/ac": "p/a", "/b/c": "p/b", "/c": "p/", "/z/y": "p/", "/z/y/x/w": "p/z/y/x",
	} {
		checkMatch(t, r, want, rq{uri: path})
	}
}
