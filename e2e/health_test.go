package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// controlGet sends GET path to the control API, with the Accept header
// when not empty.
func (g *gateway) controlGet(path, accept string) (int, string) {
	g.t.Helper()
	req, err := http.NewRequest("GET", "http://"+g.control+path, nil)
	if err != nil {
		g.t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkerJSON is one checker of /v1/healthcheck.
type checkerJSON struct {
	Name  string     `json:"name"`
	Type  string     `json:"type"`
	Nodes []nodeJSON `json:"nodes"`
}

type nodeJSON struct {
	IP       string         `json:"ip"`
	Port     int            `json:"port"`
	Hostname string         `json:"hostname,omitempty"`
	Status   string         `json:"status"`
	Counter  map[string]int `json:"counter"`
}

// nodeStatus returns the control API's view of one node of a checker
// ("upstreams/1", "routes/2", ...).
func (g *gateway) nodeStatus(src, addr string) nodeJSON {
	g.t.Helper()
	code, body := g.controlGet("/v1/healthcheck/"+src, "")
	if code != 200 {
		g.t.Fatalf("control API on %s: %d %s", src, code, body)
	}
	var c checkerJSON
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		g.t.Fatalf("control API answered %q: %v", body, err)
	}
	for _, n := range c.Nodes {
		if fmt.Sprintf("%s:%d", n.IP, n.Port) == addr {
			return n
		}
	}
	return nodeJSON{}
}

// waitStatus polls the control API until the node reaches one of the
// states and returns how long that took. It gives up after limit.
func (g *gateway) waitStatus(src, addr string, limit time.Duration, states ...string) time.Duration {
	g.t.Helper()
	start := time.Now()
	for {
		n := g.nodeStatus(src, addr)
		for _, s := range states {
			if n.Status == s {
				return time.Since(start)
			}
		}
		if time.Since(start) > limit {
			g.t.Fatalf("%s node %s still %q after %v (want %v)\n%s", src, addr, n.Status, limit, states, g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// healthOrigin is an origin that serves traffic with its port as body
// (or trafficStatus when set) and /health with the status in health.
type healthOrigin struct {
	*origin
	health        atomic.Int32
	trafficStatus atomic.Int32
	probes        atomic.Int64
	traffic       atomic.Int64
}

func startHealthOrigin(t *testing.T) *healthOrigin {
	h := &healthOrigin{}
	h.health.Store(200)
	h.origin = startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" || r.URL.Path == "/status" {
			h.probes.Add(1)
			w.WriteHeader(int(h.health.Load()))
			return
		}
		h.traffic.Add(1)
		if s := h.trafficStatus.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		fmt.Fprint(w, h.Port)
	})
	return h
}

// TestHealthActiveEjectsAndRestores: an origin whose /health turns 500 is
// ejected after http_failures × interval and comes back after successes ×
// interval; traffic follows. Checkers start when the upstream is
// configured: no request primes them. The times are logged (figures for
// docs/health-checks.md), and only their lower bounds are asserted: the
// counters need that many probes, one interval apart.
func TestHealthActiveEjectsAndRestores(t *testing.T) {
	t.Parallel()
	a, b := startHealthOrigin(t), startHealthOrigin(t)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"%s":1,"%s":1},"checks":{"active":{
		"http_path":"/health","healthy":{"interval":1,"successes":2},"unhealthy":{"interval":1,"http_failures":2}}}}`,
		a.Addr, b.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/","upstream_id":"1"}`, 201)
	deadline := time.Now().Add(5 * time.Second)
	for a.probes.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no probe within 5 s of configuring the upstream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ejections, recoveries []time.Duration
	for cycle := 0; cycle < 3; cycle++ {
		a.health.Store(500)
		d := g.waitStatus("upstreams/1", a.Addr, 10*time.Second, "unhealthy")
		ejections = append(ejections, d)
		if d < 900*time.Millisecond {
			t.Errorf("ejected after %v: two failed probes need at least one interval", d)
		}
		if got := countBodies(t, g, "/", 12); got[port(b.origin)] != 12 {
			t.Fatalf("with %s ejected: %v", a.Addr, got)
		}
		n := g.nodeStatus("upstreams/1", a.Addr)
		if n.Counter["http_failure"] != 2 || n.Counter["success"] != 0 {
			t.Errorf("ejected node counters %v", n.Counter)
		}
		a.health.Store(200)
		d = g.waitStatus("upstreams/1", a.Addr, 10*time.Second, "healthy")
		recoveries = append(recoveries, d)
		if d < 900*time.Millisecond {
			t.Errorf("restored after %v: two successful probes need at least one interval", d)
		}
		if got := countBodies(t, g, "/", 12); got[port(a.origin)] != 6 || got[port(b.origin)] != 6 {
			t.Fatalf("with %s restored: %v", a.Addr, got)
		}
	}
	t.Logf("interval 1 s, http_failures 2, successes 2: ejected after %v, restored after %v", ejections, recoveries)
	g.waitLog("health: /apisix/upstreams/1 node " + a.Addr + ": mostly_unhealthy -> healthy")
}

// TestHealthClosedPortEjected: a node whose port is closed is ejected by a
// tcp check, and by an http check through its tcp_failures, without any
// traffic.
func TestHealthClosedPortEjected(t *testing.T) {
	t.Parallel()
	live := startOrigin(t, nil)
	dead := deadAddr(t)
	g := startGateway(t, "")
	for id, typ := range map[string]string{"tcp": "tcp", "http": "http"} {
		g.mustDo("PUT", "/apisix/admin/upstreams/"+id, fmt.Sprintf(`{"nodes":{"%s":1,"%s":1},"checks":{"active":{
			"type":"%s","healthy":{"interval":1},"unhealthy":{"interval":1,"tcp_failures":2}}}}`, live.Addr, dead, typ), 201)
		g.mustDo("PUT", "/apisix/admin/routes/"+id, fmt.Sprintf(`{"uri":"/%s","upstream_id":"%s"}`, id, id), 201)
	}
	for _, id := range []string{"tcp", "http"} {
		d := g.waitStatus("upstreams/"+id, dead, 10*time.Second, "unhealthy")
		n := g.nodeStatus("upstreams/"+id, dead)
		if n.Counter["tcp_failure"] != 2 {
			t.Errorf("%s check: closed port counters %v", id, n.Counter)
		}
		if l := g.nodeStatus("upstreams/"+id, live.Addr); l.Status != "healthy" {
			t.Errorf("%s check: live node %+v", id, l)
		}
		t.Logf("%s check, tcp_failures 2, interval 1 s: closed port ejected %v after the wait began", id, d)
		if got := countBodies(t, g, "/"+id, 10); got[port(live)] != 10 {
			t.Fatalf("%s: %v", id, got)
		}
	}
}

// TestHealthPassiveBreaker (reference apisix.md §9 item 21): retries 0,
// passive unhealthy {http_statuses:[500 or 502], http_failures:1}. The
// first request meets the failing node and trips the breaker; the next
// five go to the other node. The tripped node returns only through active
// probes. Passive checks without active ones are refused with 400.
func TestHealthPassiveBreaker(t *testing.T) {
	t.Parallel()
	good := startOrigin(t, nil)
	// bad500 answers traffic with a real 500, but its health endpoint is
	// fine.
	bad := startHealthOrigin(t)
	bad.trafficStatus.Store(500)
	bad500 := bad.origin
	dead := deadAddr(t)
	g := startGateway(t, "")
	const checks = `"checks":{"active":{"http_path":"/health","healthy":{"interval":1,"successes":2},"unhealthy":{"interval":1}},
		"passive":{"unhealthy":{"http_statuses":[%d],"http_failures":1,"tcp_failures":1}}}`
	// Array form keeps the node order: round robin starts with the first.
	g.mustDo("PUT", "/apisix/admin/routes/5xx", fmt.Sprintf(`{"uri":"/5xx","upstream":{"retries":0,"nodes":[
		{"host":"127.0.0.1","port":%d,"weight":1},{"host":"127.0.0.1","port":%d,"weight":1}],`+checks+`}}`,
		bad500.Port, good.Port, 500), 201)
	deadPort := strings.TrimPrefix(dead, "127.0.0.1:")
	g.mustDo("PUT", "/apisix/admin/routes/dead", fmt.Sprintf(`{"uri":"/dead","upstream":{"retries":0,"nodes":[
		{"host":"127.0.0.1","port":%s,"weight":1},{"host":"127.0.0.1","port":%d,"weight":1}],`+checks+`}}`,
		deadPort, good.Port, 502), 201)
	for _, path := range []string{"/5xx", "/dead"} {
		got := map[int]int{}
		for i := 0; i < 6; i++ {
			code, _, _ := g.get(path)
			got[code]++
		}
		want := map[int]int{200: 5, 500: 1}
		if path == "/dead" {
			want = map[int]int{200: 5, 502: 1}
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: statuses %v, want %v", path, got, want)
		}
	}
	if n := g.nodeStatus("routes/5xx", bad500.Addr); n.Status != "unhealthy" || n.Counter["http_failure"] != 1 {
		t.Errorf("tripped node %+v", n)
	}
	// The 500 node's health endpoint answers 200: active probes bring it
	// back after successes (2) × interval (1 s).
	d := g.waitStatus("routes/5xx", bad500.Addr, 10*time.Second, "healthy")
	t.Logf("passive breaker tripped by one real 500; restored by active probes after %v", d)
	if code, _, _ := g.get("/5xx"); code != 500 {
		// Round robin resumes with the restored node.
		code2, _, _ := g.get("/5xx")
		if code2 != 500 {
			t.Errorf("restored node gets no traffic: %d, %d", code, code2)
		}
	}
	r := g.do("PUT", "/apisix/admin/routes/p", fmt.Sprintf(`{"uri":"/p","upstream":{"nodes":{"%s":1},
		"checks":{"passive":{"unhealthy":{"http_statuses":[502],"http_failures":1,"tcp_failures":1}}}}}`, good.Addr))
	if r.Status != 400 || !strings.Contains(string(r.Body), `object matches none of the required: [\"active\"] or [\"active\",\"passive\"]`) {
		t.Errorf("passive without active: %d %s", r.Status, r.Body)
	}
}

// TestHealthSurvivesUnrelatedEdits: an ejected node stays ejected, with
// its counters, through a PATCH of desc and the addition of a node.
func TestHealthSurvivesUnrelatedEdits(t *testing.T) {
	t.Parallel()
	a, b, c := startHealthOrigin(t), startHealthOrigin(t), startHealthOrigin(t)
	a.health.Store(500)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"%s":1,"%s":1},"checks":{"active":{
		"http_path":"/health","healthy":{"interval":1,"successes":2},"unhealthy":{"interval":1,"http_failures":2}}}}`,
		a.Addr, b.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/","upstream_id":"1"}`, 201)
	g.waitStatus("upstreams/1", a.Addr, 10*time.Second, "unhealthy")
	before := g.nodeStatus("upstreams/1", a.Addr)
	traffic := a.traffic.Load()

	g.mustDo("PATCH", "/apisix/admin/upstreams/1", `{"desc":"an unrelated edit"}`, 200)
	if n := g.nodeStatus("upstreams/1", a.Addr); n.Status != "unhealthy" || fmt.Sprint(n.Counter) != fmt.Sprint(before.Counter) {
		t.Fatalf("after a desc edit: %+v, before %+v", n, before)
	}
	if got := countBodies(t, g, "/", 10); got[port(b.origin)] != 10 {
		t.Fatalf("after a desc edit: %v", got)
	}
	g.mustDo("PATCH", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"%s":1}}`, c.Addr), 200)
	if n := g.nodeStatus("upstreams/1", a.Addr); n.Status != "unhealthy" {
		t.Fatalf("after adding a node: %+v", n)
	}
	if n := g.nodeStatus("upstreams/1", c.Addr); n.Status != "healthy" {
		t.Fatalf("added node: %+v", n)
	}
	if got := countBodies(t, g, "/", 12); got[port(b.origin)] != 6 || got[port(c.origin)] != 6 {
		t.Fatalf("after adding a node: %v", got)
	}
	if n := a.traffic.Load() - traffic; n != 0 {
		t.Fatalf("the ejected node got %d requests", n)
	}
	// Its probes go on, on the same checker: it still fails them.
	probes := a.probes.Load()
	time.Sleep(1500 * time.Millisecond)
	if n := g.nodeStatus("upstreams/1", a.Addr); n.Status != "unhealthy" || a.probes.Load() == probes {
		t.Fatalf("ejected node after the edits: %+v, %d probes", n, a.probes.Load()-probes)
	}
}

// TestHealthFailOpen: when every node is unhealthy, requests are still
// proxied to them (APISIX: "all upstream nodes is unhealthy, use default").
func TestHealthFailOpen(t *testing.T) {
	t.Parallel()
	a, b := startHealthOrigin(t), startHealthOrigin(t)
	a.health.Store(503)
	b.health.Store(503)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"%s":1,"%s":1},"checks":{"active":{
		"http_path":"/health","healthy":{"interval":1},"unhealthy":{"interval":1,"http_failures":1}}}}`, a.Addr, b.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/","upstream_id":"1"}`, 201)
	g.waitStatus("upstreams/1", a.Addr, 10*time.Second, "unhealthy")
	g.waitStatus("upstreams/1", b.Addr, 10*time.Second, "unhealthy")
	if got := countBodies(t, g, "/", 12); got[port(a.origin)] != 6 || got[port(b.origin)] != 6 {
		t.Fatalf("every node unhealthy: %v", got)
	}
	b.health.Store(200)
	g.waitStatus("upstreams/1", b.Addr, 10*time.Second, "healthy")
	if got := countBodies(t, g, "/", 12); got[port(b.origin)] != 12 {
		t.Fatalf("one node back: %v", got)
	}
}

// TestControlAPI (reference apisix.md §9 item 22 and §6): the control
// API lists each node's status and counters, per resource and in full, in
// JSON and HTML, with APISIX's errors; /metrics has a gauge per node and
// the log a line per state change.
func TestControlAPI(t *testing.T) {
	t.Parallel()
	live := startOrigin(t, nil)
	deadPort := freePort(t)
	g := startGateway(t, "")
	if code, body := g.controlGet("/v1/healthcheck", ""); code != 200 || strings.TrimSpace(body) != "{}" {
		t.Fatalf("no checker: %d %q", code, body)
	}
	g.mustDo("PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"%s":1,"127.0.0.2:%d":1},"checks":{"active":{
		"http_path":"/status","healthy":{"interval":1,"successes":1},"unhealthy":{"interval":1,"http_failures":1}}}}`,
		live.Addr, deadPort), 201)
	g.mustDo("PUT", "/apisix/admin/upstreams/2", fmt.Sprintf(`{"nodes":{"%s":1}}`, live.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/hello","upstream_id":"1"}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/2", fmt.Sprintf(`{"uri":"/r2","upstream":{"nodes":{"%s":1},
		"checks":{"active":{"type":"tcp","host":"127.0.0.1","healthy":{"interval":1}}}}}`, live.Addr), 201)
	dead := fmt.Sprintf("127.0.0.2:%d", deadPort)
	g.waitStatus("upstreams/1", dead, 10*time.Second, "unhealthy")

	code, body := g.controlGet("/v1/healthcheck", "")
	var all []checkerJSON
	if err := json.Unmarshal([]byte(body), &all); code != 200 || err != nil {
		t.Fatalf("/v1/healthcheck: %d %s", code, body)
	}
	if len(all) != 2 || all[0].Name != "/apisix/routes/2" || all[0].Type != "tcp" ||
		all[1].Name != "/apisix/upstreams/1" || all[1].Type != "http" {
		t.Fatalf("/v1/healthcheck lists %s", body)
	}
	want := fmt.Sprintf(`[{"ip":"127.0.0.1","port":%d,"status":"healthy","counter":{"success":0,"http_failure":0,"tcp_failure":0,"timeout_failure":0}},`+
		`{"ip":"127.0.0.2","port":%d,"status":"unhealthy","counter":{"success":0,"http_failure":0,"tcp_failure":2,"timeout_failure":0}}]`,
		live.Port, deadPort)
	if got, _ := json.Marshal(all[1].Nodes); !sameJSON(t, string(got), want) {
		t.Errorf("upstream 1 nodes in the list:\n%s\nwant\n%s", got, want)
	}
	code, one := g.controlGet("/v1/healthcheck/upstreams/1", "")
	var c checkerJSON
	if err := json.Unmarshal([]byte(one), &c); code != 200 || err != nil || c.Name != "/apisix/upstreams/1" {
		t.Fatalf("/v1/healthcheck/upstreams/1: %d %s", code, one)
	}
	if got, _ := json.Marshal(c.Nodes); !sameJSON(t, string(got), want) {
		t.Errorf("/v1/healthcheck/upstreams/1 nodes:\n%s\nwant\n%s", got, want)
	}
	if n := g.nodeStatus("routes/2", live.Addr); n.Hostname != "127.0.0.1" || n.Status != "healthy" {
		t.Errorf("route 2 node %+v", n)
	}

	for path, want := range map[string]string{
		"/v1/healthcheck/upstreams/9": `404 {"error_msg":"upstreams[9] not found"}`,
		"/v1/healthcheck/routes/9":    `404 {"error_msg":"routes[9] not found"}`,
		"/v1/healthcheck/upstreams/2": `404 {"error_msg":"no checker for upstreams[2]"}`,
		"/v1/healthcheck/routes/1":    `404 {"error_msg":"no checker for routes[1]"}`,
		"/v1/healthcheck/route/1":     `400 {"error_msg":"invalid src type route"}`,
		"/v1/healthcheck/upstreams":   `404 {"error_msg":"missing src id for src type upstreams"}`,
	} {
		code, body := g.controlGet(path, "")
		if got := fmt.Sprintf("%d %s", code, strings.TrimSpace(body)); got != want {
			t.Errorf("%s: %s, want %s", path, got, want)
		}
	}

	code, page := g.controlGet("/v1/healthcheck", "text/html,application/xhtml+xml")
	for _, want := range []string{"<table", "<th>TCP Failures</th>", "<td>/apisix/upstreams/1</td>",
		"<td>" + dead + "</td>", `<tr bgcolor="#FF0000">`} {
		if code != 200 || !strings.Contains(page, want) {
			t.Errorf("HTML page lacks %q: %d\n%s", want, code, page)
		}
	}
	code, page = g.controlGet("/v1/healthcheck/upstreams/1", "text/html")
	if code != 200 || !strings.Contains(page, "<td>"+dead+"</td>") || strings.Contains(page, "/apisix/routes/2") {
		t.Errorf("HTML page of upstream 1: %d\n%s", code, page)
	}

	metrics := string(g.do("GET", "/metrics", "").Body)
	for _, want := range []string{
		fmt.Sprintf(`gateway_upstream_node_healthy{upstream="/apisix/upstreams/1",node="%s"} 0`, dead),
		fmt.Sprintf(`gateway_upstream_node_healthy{upstream="/apisix/upstreams/1",node="%s"} 1`, live.Addr),
		`gateway_health_checkers 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	g.waitLog("health: /apisix/upstreams/1 node " + dead + ": mostly_healthy -> unhealthy")

	// Removing the checks removes the checker.
	g.mustDo("PUT", "/apisix/admin/upstreams/1", fmt.Sprintf(`{"nodes":{"%s":1,"127.0.0.2:%d":1}}`, live.Addr, deadPort), 200)
	if code, body := g.controlGet("/v1/healthcheck/upstreams/1", ""); code != 404 {
		t.Errorf("after removing checks: %d %s", code, body)
	}
}

// sameJSON compares two JSON texts by value.
func sameJSON(t *testing.T, a, b string) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal([]byte(a), &x); err != nil {
		t.Fatalf("%q: %v", a, err)
	}
	if err := json.Unmarshal([]byte(b), &y); err != nil {
		t.Fatalf("%q: %v", b, err)
	}
	xb, _ := json.Marshal(x)
	yb, _ := json.Marshal(y)
	return string(xb) == string(yb)
}
