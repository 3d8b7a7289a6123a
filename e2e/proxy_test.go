package e2e

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// countBodies sends n GETs and counts responses by body.
func countBodies(t *testing.T, g *gateway, path string, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		code, body, _ := g.get(path)
		if code != 200 {
			t.Fatalf("request %d to %s: status %d body %q", i, path, code, body)
		}
		counts[body]++
	}
	return counts
}

func port(o *origin) string { return strconv.Itoa(o.Port) }

func TestWeightedRoundRobin(t *testing.T) {
	a, b, c := startOrigin(t, nil), startOrigin(t, nil), startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/eq", fmt.Sprintf(`{"nodes":{"%s":1,"%s":1}}`, a.Addr, b.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/eq", `{"uri":"/eq","upstream_id":"eq"}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/w", fmt.Sprintf(`{"uri":"/w","upstream":{"type":"roundrobin","nodes":[
		{"host":"127.0.0.1","port":%d,"weight":1},{"host":"127.0.0.1","port":%d,"weight":2},{"host":"127.0.0.1","port":%d,"weight":3}]}}`,
		a.Port, b.Port, c.Port), 201)
	g.mustDo("PUT", "/apisix/admin/routes/zero", fmt.Sprintf(`{"uri":"/zero","upstream":{"nodes":{"%s":3,"%s":0,"%s":1}}}`,
		a.Addr, b.Addr, c.Addr), 201)

	if got := countBodies(t, g, "/eq", 100); got[port(a)] != 50 || got[port(b)] != 50 {
		t.Errorf("1:1 over 100 requests: %v", got)
	}
	if got := countBodies(t, g, "/w", 600); got[port(a)] != 100 || got[port(b)] != 200 || got[port(c)] != 300 {
		t.Errorf("1:2:3 over 600 requests: %v", got)
	}
	if got := countBodies(t, g, "/zero", 12); got[port(a)] != 9 || got[port(b)] != 0 || got[port(c)] != 3 {
		t.Errorf("3:0:1 over 12 requests: %v", got)
	}
}

func TestServiceUpstreamAndHosts(t *testing.T) {
	a := startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"%s":1}}`, a.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/services/s1", `{"upstream_id":"1","hosts":["svc.example.com"]}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/r1", `{"uri":"/svc","service_id":"s1"}`, 201)
	if code, body, _ := g.get("/svc", "Host", "svc.example.com"); code != 200 || body != port(a) {
		t.Fatalf("route via service: %d %q", code, body)
	}
	if code, _, _ := g.get("/svc", "Host", "other.example.com"); code != 404 {
		t.Fatalf("service hosts must be inherited: got %d for another host", code)
	}
}

func TestGatewayErrors(t *testing.T) {
	slow := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second)
		fmt.Fprint(w, "late")
	})
	boom := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		fmt.Fprint(w, "boom")
	})
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/empty", `{"uri":"/empty","upstream":{"nodes":{}}}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/dead", fmt.Sprintf(`{"uri":"/dead","upstream":{"nodes":{"%s":1}}}`, deadAddr(t)), 201)
	g.mustDo("PUT", "/apisix/admin/routes/slow", fmt.Sprintf(`{"uri":"/slow","upstream":{"nodes":{"%s":1},
		"timeout":{"connect":0.5,"send":0.5,"read":0.3}}}`, slow.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/slow2", fmt.Sprintf(`{"uri":"/slow2","timeout":{"connect":1,"send":1,"read":0.3},
		"upstream":{"nodes":{"%s":1},"timeout":{"connect":2,"send":2,"read":2}}}`, slow.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/boom", fmt.Sprintf(`{"uri":"/boom","upstream":{"nodes":{"%s":1,"%s":1}}}`,
		boom.Addr, deadAddr(t)), 201)

	f := func(path string, wantCode int, wantUpstreamStatus string) {
		t.Helper()
		code, body, h := g.get(path)
		if code != wantCode || h.Get("X-APISIX-Upstream-Status") != wantUpstreamStatus {
			t.Errorf("%s: %d %q (X-APISIX-Upstream-Status %q); want %d %q", path, code, body,
				h.Get("X-APISIX-Upstream-Status"), wantCode, wantUpstreamStatus)
		}
	}
	f("/empty", 503, "")
	f("/dead", 502, "502")
	f("/slow", 504, "504")
	f("/slow2", 504, "504") // the route's timeout wins over the upstream's
	// An upstream 500 passes through untouched and is not retried.
	before := boom.hits.Load()
	for i := 0; i < 4; i++ {
		code, body, h := g.get("/boom")
		if code == 500 {
			if body != "boom" || h.Get("X-APISIX-Upstream-Status") == "" {
				t.Errorf("/boom: 500 %q upstream-status %q", body, h.Get("X-APISIX-Upstream-Status"))
			}
		} else if code != 502 {
			t.Errorf("/boom: %d", code)
		}
	}
	if hits := boom.hits.Load() - before; hits != 2 && hits != 4 && hits != 3 {
		t.Errorf("origin saw %d requests", hits)
	}
	if code, body, _ := g.get("/nothing-here"); code != 404 || body != "{\"error_msg\":\"404 Route Not Found\"}\n" {
		t.Errorf("no route: %d %q", code, body)
	}
}

func TestRetriesNeverTryANodeTwice(t *testing.T) {
	g := startGateway(t, "")
	var nodes []string
	for i := 0; i < 4; i++ {
		nodes = append(nodes, fmt.Sprintf(`"%s":1`, deadAddr(t)))
	}
	all := "{" + strings.Join(nodes, ",") + "}"
	g.mustDo("PUT", "/apisix/admin/routes/d", `{"uri":"/d","upstream":{"nodes":`+all+`}}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/r1", `{"uri":"/r1","upstream":{"retries":1,"nodes":`+all+`}}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/r0", `{"uri":"/r0","upstream":{"retries":0,"nodes":`+all+`}}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/r9", `{"uri":"/r9","upstream":{"retries":9,"nodes":`+all+`}}`, 201)
	f := func(path, want string) {
		t.Helper()
		code, _, h := g.get(path)
		if code != 502 || h.Get("X-APISIX-Upstream-Status") != want {
			t.Errorf("%s: %d, upstream status %q, want 502 %q", path, code, h.Get("X-APISIX-Upstream-Status"), want)
		}
	}
	f("/d", "502, 502, 502, 502") // default retries = nodes - 1
	f("/r1", "502, 502")
	f("/r0", "502")
	f("/r9", "502, 502, 502, 502") // never more than one try per node
}

func TestPassHost(t *testing.T) {
	a := startOrigin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, r.Host) })
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/pass", fmt.Sprintf(`{"uri":"/pass","upstream":{"nodes":{"%s":1}}}`, a.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/node", fmt.Sprintf(`{"uri":"/node","upstream":{"pass_host":"node","nodes":{"localhost:%d":1}}}`, a.Port), 201)
	g.mustDo("PUT", "/apisix/admin/routes/rw", fmt.Sprintf(`{"uri":"/rw","upstream":{"pass_host":"rewrite","upstream_host":"test.com","nodes":{"%s":1}}}`, a.Addr), 201)
	f := func(path, want string) {
		t.Helper()
		if code, body, _ := g.get(path, "Host", "client.example:8443"); code != 200 || body != want {
			t.Errorf("%s: %d Host %q, want %q", path, code, body, want)
		}
	}
	f("/pass", "client.example:8443")
	f("/node", fmt.Sprintf("localhost:%d", a.Port))
	f("/rw", "test.com")
}

func TestForwardedHeadersAndTarget(t *testing.T) {
	a := startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, a.Addr), 201)
	code, _, _ := g.get("/p/../q//r%2Fs?x=1&y=%20", "Host", "localhost", "X-Forwarded-For", "1.2.3.4",
		"X-Forwarded-Proto", "https", "Forwarded", "for=9.9.9.9", "Connection", "keep-alive, X-Secret",
		"X-Secret", "hop", "Keep-Alive", "timeout=5", "X-Custom", "kept")
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	r := a.last.Load()
	_, gwPort, _ := strings.Cut(g.proxy, ":")
	for name, want := range map[string]string{
		"X-Forwarded-For": "1.2.3.4, 127.0.0.1", "X-Real-Ip": "127.0.0.1", "X-Forwarded-Proto": "http",
		"X-Forwarded-Host": "localhost", "X-Forwarded-Port": gwPort, "Forwarded": "", "X-Secret": "",
		"Keep-Alive": "", "X-Custom": "kept",
	} {
		if got := r.Header.Get(name); got != want {
			t.Errorf("upstream %s = %q, want %q", name, got, want)
		}
	}
	if r.RequestURI != "/p/../q//r%2Fs?x=1&y=%20" {
		t.Errorf("upstream request target %q, want it byte for byte", r.RequestURI)
	}
}
