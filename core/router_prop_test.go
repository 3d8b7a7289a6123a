package core

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// naiveMatch is the reference matcher for property and fuzz tests: a linear
// scan over every (route, host, uri) triple that ranks each candidate by
// the documented precedence and returns the best one whose conditions pass.
// It shares no code with Router besides the condition primitives.
func naiveMatch(entries []*RouteEntry, ctx *fasthttp.RequestCtx) *RouteEntry {
	path := string(ctx.Path())
	host := string(AppendLowerHost(nil, ctx.Request.Header.Host()))

	// rank orders candidates; smaller is better.
	type rank struct {
		tier      int // 0 exact host, 1 wildcard host, 2 no host
		suffixLen int // wildcard suffix length, longer first
		prefix    int // 0 exact uri, 1 prefix uri
		uriLen    int // prefix length, longer first
		prio      int // higher first
		id        string
		seq       int
	}
	less := func(a, b rank) bool {
		for _, c := range [...]int{
			a.tier - b.tier, b.suffixLen - a.suffixLen, a.prefix - b.prefix, b.uriLen - a.uriLen, b.prio - a.prio,
			strings.Compare(a.id, b.id), a.seq - b.seq,
		} {
			if c != 0 {
				return c < 0
			}
		}
		return false
	}

	var best *RouteEntry
	var bestRank rank
	for seq, e := range entries {
		if e == nil || e.Route == nil || e.Route.Status == 0 || !naiveConditions(e.Route, ctx) {
			continue
		}
		type hostRank struct{ tier, suffixLen int }
		var hosts []hostRank
		if len(e.Hosts) == 0 {
			hosts = append(hosts, hostRank{tier: 2})
		}
		for _, h := range e.Hosts {
			h = strings.ToLower(h)
			if suffix, ok := strings.CutPrefix(h, "*"); ok {
				if strings.HasSuffix(host, suffix) {
					hosts = append(hosts, hostRank{1, len(suffix)})
				}
			} else if h == host {
				hosts = append(hosts, hostRank{tier: 0})
			}
		}
		for _, hr := range hosts {
			for _, u := range e.Route.URIs {
				rk := rank{tier: hr.tier, suffixLen: hr.suffixLen, prio: e.Route.Priority, id: e.Route.ID, seq: seq}
				if p, ok := strings.CutSuffix(u, "*"); ok {
					if !strings.HasPrefix(path, p) {
						continue
					}
					rk.prefix, rk.uriLen = 1, len(p)
				} else if u != path {
					continue
				}
				if best == nil || less(rk, bestRank) {
					best, bestRank = e, rk
				}
			}
		}
	}
	return best
}

// naiveConditions checks methods, remote_addrs and vars.
func naiveConditions(rt *Route, ctx *fasthttp.RequestCtx) bool {
	if !rt.Methods.Allows(ctx.Method()) {
		return false
	}
	if len(rt.RemoteAddrs) > 0 {
		ip, _ := netip.AddrFromSlice(ctx.RemoteIP())
		found := false
		for _, p := range rt.RemoteAddrs {
			found = found || p.Contains(ip.Unmap())
		}
		if !found {
			return false
		}
	}
	return rt.Vars.Eval(ctx, make([]byte, 0, 64))
}

// routeGen draws routes and requests from small alphabets so that uris,
// hosts, priorities and IDs collide often.
type routeGen struct{ rnd *rand.Rand }

func (g routeGen) pick(s ...string) string { return s[g.rnd.IntN(len(s))] }

func (g routeGen) path() string {
	var b strings.Builder
	b.WriteByte('/')
	for n := g.rnd.IntN(6); n > 0; n-- {
		b.WriteString(g.pick("a", "b", "ab", "/", "c/"))
	}
	return b.String()
}

func (g routeGen) route(id int) rs {
	s := rs{id: fmt.Sprint(id % 7), prio: g.rnd.IntN(3) - 1, off: g.rnd.IntN(20) == 0}
	for n := 1 + g.rnd.IntN(2); n > 0; n-- {
		u := g.path()
		if g.rnd.IntN(2) == 0 {
			u += "*"
		}
		s.uris = append(s.uris, u)
	}
	if g.rnd.IntN(2) == 0 {
		for n := 1 + g.rnd.IntN(2); n > 0; n-- {
			s.hosts = append(s.hosts, g.pick("a.com", "b.a.com", "A.com", "*.a.com", "*.com", "*a.com", "*", "x.b.a.com", "*.B.a.com"))
		}
	}
	switch g.rnd.IntN(6) {
	case 0:
		s.methods = MethodGET
	case 1:
		s.methods = MethodPOST | MethodPUT
	}
	if g.rnd.IntN(5) == 0 {
		s.remote = []string{"10.0.0.0/8"}
	}
	if g.rnd.IntN(5) == 0 {
		s.vars = []any{[]any{"arg_k", "==", "1"}}
	}
	return s
}

func (g routeGen) request() rq {
	q := rq{
		method: g.pick("GET", "POST"),
		uri:    g.path(),
		host:   g.pick("a.com", "b.a.com", "x.b.a.com", "c.com", "com", ".a.com", "", "B.A.COM:80", "ba.com", "y.x.b.a.com"),
		remote: g.pick("10.0.0.1", "127.0.0.1"),
	}
	if g.rnd.IntN(2) == 0 {
		q.uri += "?k=1"
	}
	return q
}

func TestRouterMatchesNaive(t *testing.T) {
	seeds := []uint64{1, uint64(time.Now().UnixNano()), rand.Uint64(), rand.Uint64()}
	iters := 400
	if testing.Short() {
		iters = 50
	}
	for _, seed := range seeds {
		g := routeGen{rand.New(rand.NewPCG(seed, 0))}
		for it := 0; it < iters; it++ {
			entries := make([]*RouteEntry, g.rnd.IntN(30))
			for i := range entries {
				entries[i] = g.route(i).entry(t)
			}
			r := BuildRouter(entries)
			buf := make([]byte, 0, 512)
			for k := 0; k < 40; k++ {
				q := g.request()
				ctx := q.ctx(t)
				got, want := r.Match(ctx, buf), naiveMatch(entries, ctx)
				if got != want {
					t.Fatalf("seed %d iteration %d: %+v: got %s, want %s\nroutes:\n%s",
						seed, it, q, describeEntry(got), describeEntry(want), describeEntries(entries))
				}
			}
		}
	}
}

func describeEntry(e *RouteEntry) string {
	if e == nil {
		return "<nil>"
	}
	r := e.Route
	return fmt.Sprintf("{id=%s uris=%q hosts=%q prio=%d methods=%b remote=%v vars=%v status=%d}",
		r.ID, r.URIs, e.Hosts, r.Priority, r.Methods, r.RemoteAddrs, r.Vars != nil, r.Status)
}

func describeEntries(entries []*RouteEntry) string {
	var b strings.Builder
	for i, e := range entries {
		fmt.Fprintf(&b, "  %d %s\n", i, describeEntry(e))
	}
	return b.String()
}

// fuzzRoutes is the fixed route set of FuzzRouterMatch.
var fuzzRoutes = []rs{
	{id: "1", uris: []string{"/"}},
	{id: "2", uris: []string{"/*"}, prio: 1},
	{id: "3", uris: []string{"/api/*", "/api"}},
	{id: "4", uris: []string{"/api/v1/users"}, hosts: []string{"api.foo.com"}},
	{id: "5", uris: []string{"/api/v1*"}, hosts: []string{"*.foo.com", "foo.com"}},
	{id: "6", uris: []string{"/static/*"}, hosts: []string{"*"}, methods: MethodGET | MethodHEAD},
	{id: "7", uris: []string{"/a b/c", "/%2F*"}, hosts: []string{"*oo.com"}},
	{id: "8", uris: []string{"/api/v1/users"}, vars: []any{[]any{"arg_k", "==", "v"}}, prio: 5},
	{id: "9", uris: []string{"*"}, hosts: []string{"[::1]", "127.0.0.1"}},
	{id: "10", uris: []string{"/api/v1/users*"}, hosts: []string{"api.foo.com"}, remote: []string{"10.0.0.0/8"}},
}

func FuzzRouterMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"/api/v1/users", "api.foo.com"},
		{"/api/v1/users?k=v", ""},
		{"/static/x.png", "Example.ORG:8080"},
		{"/a%20b/c", "x.foo.com"},
		{"/..//api/./v1", ".foo.com"},
		{"/%2Fx", "[::1]:80"},
		{"", "127.0.0.1"},
		{"/api", "oo.com"},
	} {
		f.Add(s[0], s[1])
	}
	entries := make([]*RouteEntry, len(fuzzRoutes))
	for i, s := range fuzzRoutes {
		entries[i] = s.entry(f)
	}
	r := BuildRouter(entries)
	f.Fuzz(func(t *testing.T, path, host string) {
		var req fasthttp.Request
		req.SetRequestURI(path)
		req.Header.SetHost(host)
		var ctx fasthttp.RequestCtx
		ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 1234}, nil)
		got, want := r.Match(&ctx, make([]byte, 0, 512)), naiveMatch(entries, &ctx)
		if got != want {
			t.Fatalf("path %q (%q) host %q: got %s, want %s", path, ctx.Path(), host, describeEntry(got), describeEntry(want))
		}
	})
}
