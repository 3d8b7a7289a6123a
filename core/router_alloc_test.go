//go:build !race

package core

import "testing"

// TestRouterMatchAllocs guards the hot-path promise: Match allocates
// nothing for hits, misses, wildcard hosts and vars conditions.
func TestRouterMatchAllocs(t *testing.T) {
	r := buildRoutes(t,
		rs{id: "exact", uris: []string{"/api/v1/users"}},
		rs{id: "prefix", uris: []string{"/api/*"}},
		rs{id: "host", uris: []string{"/h/*"}, hosts: []string{"api.foo.com"}},
		rs{id: "wild", uris: []string{"/w/*"}, hosts: []string{"*.foo.com"}},
		rs{id: "star", uris: []string{"/s"}, hosts: []string{"*"}},
		rs{id: "vars", uris: []string{"/v"}, vars: []any{[]any{"arg_k", "==", "v"}}},
		rs{id: "hostvar", uris: []string{"/v*"}, vars: []any{
			"OR", []any{"host", "==", "x.org"}, []any{"http_x_user", "~~", "^adm"},
		}},
		rs{id: "remote", uris: []string{"/r"}, remote: []string{"10.0.0.0/8"}, methods: MethodGET},
	)
	cases := []struct {
		name string
		q    rq
		want string
	}{
		{"exact", rq{uri: "/api/v1/users"}, "exact"},
		{"prefix", rq{uri: "/api/v2/orders/1"}, "prefix"},
		{"miss", rq{uri: "/nothing/here"}, ""},
		{"exact host", rq{uri: "/h/1", host: "API.foo.com:8443"}, "host"},
		{"wildcard host", rq{uri: "/w/1", host: "a.b.foo.com"}, "wild"},
		{"wildcard host miss", rq{uri: "/zz", host: "a.b.foo.com"}, ""},
		{"star host", rq{uri: "/s", host: "example.org"}, "star"},
		{"vars hit", rq{uri: "/v?k=v"}, "vars"},
		{"vars miss", rq{uri: "/v?k=x"}, ""},
		{"vars host", rq{uri: "/v?k=x", host: "X.org"}, "hostvar"},
		{"remote hit", rq{uri: "/r", remote: "10.2.3.4"}, "remote"},
		{"remote miss", rq{uri: "/r", remote: "192.0.2.1"}, ""},
	}
	for _, c := range cases {
		ctx := c.q.ctx(t)
		buf := make([]byte, 0, 512)
		if got := matchID(r, ctx); got != c.want {
			t.Fatalf("%s: got %q, want %q", c.name, got, c.want)
		}
		r.Match(ctx, buf) // warm up: fasthttp parses the URI and args lazily
		if n := testing.AllocsPerRun(100, func() { r.Match(ctx, buf) }); n != 0 {
			t.Errorf("%s: Match allocates %v times per call, want 0", c.name, n)
		}
	}
}
