package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hitLog records which origins saw a request, in arrival order.
type hitLog struct {
	mu   sync.Mutex
	hits []string
}

func (l *hitLog) add(name string) {
	l.mu.Lock()
	l.hits = append(l.hits, name)
	l.mu.Unlock()
}

func (l *hitLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.hits, " ")
}

// aborting starts an origin that logs its name, optionally sleeps, reads
// the request body and aborts.
func aborting(t *testing.T, log *hitLog, name string, sleep time.Duration) *origin {
	return startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		log.add(name)
		io.Copy(io.Discard, r.Body)
		time.Sleep(sleep)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close()
		}
	})
}

// nodesJSON renders origins (or addresses) as an object-form nodes value.
func nodesJSON(weights map[string]int) string {
	var parts []string
	for addr, w := range weights {
		parts = append(parts, fmt.Sprintf("%q:%d", addr, w))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// TestCHash follows APISIX's t/node/chash-balance.t and chash-hashon.t:
// one client maps to one node, each hash_on source is consistent, a
// missing key falls back to remote_addr, many keys split over the nodes,
// all weights 0 is a 502, and a retry walks on to a live node.
func TestCHash(t *testing.T) {
	a, b, c := startOrigin(t, nil), startOrigin(t, nil), startOrigin(t, nil)
	g := startGateway(t, "")
	two := nodesJSON(map[string]int{a.Addr: 1, b.Addr: 1})
	three := nodesJSON(map[string]int{a.Addr: 1, b.Addr: 1, c.Addr: 1})
	put := func(id, upstream string) {
		t.Helper()
		g.mustDo("PUT", "/apisix/admin/upstreams/"+id, upstream, 201)
		g.mustDo("PUT", "/apisix/admin/routes/"+id, fmt.Sprintf(`{"uri":"/%s","upstream_id":"%s"}`, id, id), 201)
	}
	put("ip2", `{"type":"chash","key":"remote_addr","nodes":`+two+`}`)
	put("ip3", `{"type":"chash","key":"remote_addr","nodes":`+three+`}`)
	put("hdr", `{"type":"chash","hash_on":"header","key":"custom_header","nodes":`+two+`}`)
	put("sid", `{"type":"chash","hash_on":"header","key":"X-Sessionid","nodes":`+two+`}`)
	put("cookie", `{"type":"chash","hash_on":"cookie","key":"custom-cookie","nodes":`+two+`}`)
	put("combo", `{"type":"chash","hash_on":"vars_combinations","key":"$http_custom_header-$http_custom_header_second","nodes":`+two+`}`)
	put("zero", `{"type":"chash","key":"remote_addr","nodes":`+nodesJSON(map[string]int{a.Addr: 0, b.Addr: 0})+`}`)
	dead := deadAddr(t)
	put("retry", `{"type":"chash","key":"arg_device_id","nodes":`+nodesJSON(map[string]int{dead: 1000, a.Addr: 1})+`}`)

	// same sends n requests and returns the one body they all got.
	same := func(n int, path string, hdr ...string) string {
		t.Helper()
		first := ""
		for i := 0; i < n; i++ {
			code, body, _ := g.get(path, hdr...)
			if code != 200 {
				t.Fatalf("%s %v: status %d", path, hdr, code)
			}
			if i == 0 {
				first = body
			} else if body != first {
				t.Fatalf("%s %v: request %d went to %s, the first to %s", path, hdr, i, body, first)
			}
		}
		return first
	}
	same(12, "/ip2")
	same(12, "/ip3")
	// Header: the same value, one node; no header, the remote_addr node.
	same(4, "/hdr", "Custom-Header", "chash_val_1")
	if got, want := same(4, "/hdr"), same(1, "/ip2"); got != want {
		t.Errorf("no header went to %s, remote_addr to %s", got, want)
	}
	same(4, "/cookie", "Cookie", "custom-cookie=chash_val_1")
	if got, want := same(4, "/cookie", "Cookie", "other=1"), same(1, "/ip2"); got != want {
		t.Errorf("no cookie went to %s, remote_addr to %s", got, want)
	}
	same(4, "/combo", "Custom-Header", "a", "Custom-Header-Second", "b")
	if got, want := same(4, "/combo"), same(1, "/ip2"); got != want {
		t.Errorf("no variable of the template went to %s, remote_addr to %s", got, want)
	}
	// Many session ids split over both nodes, each one consistently.
	seen := map[string]int{}
	for i := 0; i < 40; i++ {
		seen[same(2, "/sid", "X-Sessionid", fmt.Sprintf("chash_val_%d", i))]++
	}
	if len(seen) != 2 || seen[port(a)] < 8 || seen[port(b)] < 8 {
		t.Errorf("40 session ids over 2 nodes: %v", seen)
	}
	// Every weight 0: nothing to pick.
	if code, _, _ := g.get("/zero"); code != 502 {
		t.Errorf("all weights 0: %d, want 502", code)
	}
	// The heavy node is dead: the retry walks on to the live one.
	for i := 0; i < 5; i++ {
		if code, body, _ := g.get(fmt.Sprintf("/retry?device_id=%d", i)); code != 200 || body != port(a) {
			t.Errorf("device %d: %d %q, want 200 from the live node", i, code, body)
		}
	}
}

// TestCHashFleetAgrees: two gateways with the same upstream map every key
// to the same node (the ring depends only on the node set).
func TestCHashFleetAgrees(t *testing.T) {
	var origins []*origin
	weights := map[string]int{}
	for i := 0; i < 5; i++ {
		o := startOrigin(t, nil)
		origins = append(origins, o)
		weights[o.Addr] = 1 + i%2
	}
	g1, g2 := startGateway(t, ""), startGateway(t, "")
	for _, g := range []*gateway{g1, g2} {
		// Each gateway gets the nodes in another order.
		var parts []string
		for i := range origins {
			o := origins[i]
			if g == g2 {
				o = origins[len(origins)-1-i]
			}
			parts = append(parts, fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"weight":%d}`, o.Port, weights[o.Addr]))
		}
		g.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/k","upstream":{"type":"chash","hash_on":"header","key":"user","nodes":[`+
			strings.Join(parts, ",")+`]}}`, 201)
	}
	spread := map[string]bool{}
	for i := 0; i < 50; i++ {
		user := fmt.Sprintf("user-%d", i)
		_, b1, _ := g1.get("/k", "User", user)
		_, b2, _ := g2.get("/k", "User", user)
		if b1 != b2 {
			t.Fatalf("%s: gateway 1 sent it to %s, gateway 2 to %s", user, b1, b2)
		}
		spread[b1] = true
	}
	if len(spread) < 4 {
		t.Errorf("50 users reached only %d of 5 nodes", len(spread))
	}
}

// TestLeastConn follows APISIX's t/node/least_conn.t.
func TestLeastConn(t *testing.T) {
	var log hitLog
	slowNamed := func(name string) *origin {
		return startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			log.add(name)
			time.Sleep(300 * time.Millisecond)
			fmt.Fprint(w, name)
		})
	}
	a, b := slowNamed("A"), slowNamed("B")
	live := startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/w21", fmt.Sprintf(`{"uri":"/w21","upstream":{"type":"least_conn","nodes":{"%s":2,"%s":1}}}`,
		a.Addr, b.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/w32", fmt.Sprintf(`{"uri":"/w32","upstream":{"type":"least_conn","nodes":{"%s":3,"%s":2}}}`,
		a.Addr, b.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/dead", fmt.Sprintf(`{"uri":"/dead","upstream":{"type":"least_conn","nodes":{"%s":2,"%s":1}}}`,
		deadAddr(t), live.Addr), 201)

	// Weights 2:1, one request at a time: always the weight-2 node.
	for i := 0; i < 3; i++ {
		if code, body, _ := g.get("/w21"); code != 200 || body != "A" {
			t.Fatalf("weights 2:1: %d %q, want A", code, body)
		}
	}
	// Weights 3:2, three overlapping requests: A, B, A.
	log = hitLog{}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Go(func() {
			if code, _, _ := g.get("/w32"); code != 200 {
				t.Errorf("w32: %d", code)
			}
		})
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	if got := log.String(); got != "A B A" {
		t.Errorf("weights 3:2, three overlapping requests went to %q, want \"A B A\"", got)
	}
	// A dead heavy node: retried on the live one.
	for i := 0; i < 3; i++ {
		if code, body, _ := g.get("/dead"); code != 200 || body != port(live) {
			t.Errorf("dead heavy node: %d %q", code, body)
		}
	}
}

// TestSlowNodeShedsTraffic: under concurrency a node that answers in
// 100 ms gets little least_conn or ewma traffic next to fast nodes.
func TestSlowNodeShedsTraffic(t *testing.T) {
	fast1, fast2 := startOrigin(t, nil), startOrigin(t, nil)
	slow := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(100 * time.Millisecond)
		fmt.Fprint(w, "slow")
	})
	g := startGateway(t, "")
	nodes := nodesJSON(map[string]int{fast1.Addr: 1, fast2.Addr: 1, slow.Addr: 1})
	for _, typ := range []string{"least_conn", "ewma", "roundrobin"} {
		g.mustDo("PUT", "/apisix/admin/routes/"+typ, fmt.Sprintf(`{"uri":"/%s","upstream":{"type":"%s","nodes":%s}}`, typ, typ, nodes), 201)
	}
	share := func(typ string) (float64, int64) {
		before := [3]int64{fast1.hits.Load(), fast2.hits.Load(), slow.hits.Load()}
		var failed atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(1500 * time.Millisecond)
		for w := 0; w < 12; w++ {
			wg.Go(func() {
				for time.Now().Before(stop) {
					if code, _, _ := g.get("/" + typ); code != 200 {
						failed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		f := fast1.hits.Load() - before[0] + fast2.hits.Load() - before[1]
		s := slow.hits.Load() - before[2]
		return float64(s) / float64(f+s), failed.Load()
	}
	rr, _ := share("roundrobin")
	lc, lcFailed := share("least_conn")
	ew, ewFailed := share("ewma")
	t.Logf("slow node's share: roundrobin %.3f, least_conn %.3f, ewma %.3f", rr, lc, ew)
	if lcFailed+ewFailed != 0 {
		t.Errorf("%d least_conn and %d ewma requests failed", lcFailed, ewFailed)
	}
	if lc > 0.1 {
		t.Errorf("least_conn sent %.1f%% of the requests to the slow node", lc*100)
	}
	if ew > 0.03 {
		t.Errorf("ewma sent %.1f%% of the requests to the slow node", ew*100)
	}
}

// TestEWMASequential follows APISIX's t/node/ewma.t: 12 sequential
// requests, at least 11 to the faster node. APISIX's nodes answer in 0.1 s
// and 0.2 s; a peak EWMA follows a single late answer at once, so on a
// busy test machine 50 ms and 300 ms keep the test about the algorithm.
func TestEWMASequential(t *testing.T) {
	named := func(name string, d time.Duration) *origin {
		return startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(d)
			fmt.Fprint(w, name)
		})
	}
	fast, slow := named("fast", 50*time.Millisecond), named("slow", 300*time.Millisecond)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/e", fmt.Sprintf(`{"type":"ewma","nodes":{"%s":1,"%s":1}}`, fast.Addr, slow.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/e", `{"uri":"/e","upstream_id":"e"}`, 201)
	if got := countBodies(t, g, "/e", 12); got["fast"] < 11 {
		t.Errorf("12 sequential requests: %v, want at least 11 on the fast node", got)
	}
}

// TestPriorityFailover follows t/node/priority-balancer/sanity.t (nodes
// at priorities 1, 1, 0, 0, -1 of which only -1 answers: one request tries
// them in that order), then checks that taking a whole priority group
// down under load fails no request.
func TestPriorityFailover(t *testing.T) {
	var log hitLog
	p1a, p1b := aborting(t, &log, "1", 0), aborting(t, &log, "1", 0)
	p0a, p0b := aborting(t, &log, "0", 0), aborting(t, &log, "0", 0)
	backup := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		log.add("-1")
		fmt.Fprint(w, "backup")
	})
	g := startGateway(t, "")
	node := func(o *origin, prio int) string {
		return fmt.Sprintf(`{"host":"127.0.0.1","port":%d,"weight":1,"priority":%d}`, o.Port, prio)
	}
	g.mustDo("PUT", "/apisix/admin/routes/p", `{"uri":"/p","upstream":{"nodes":[`+
		strings.Join([]string{node(p0a, 0), node(backup, -1), node(p1a, 1), node(p0b, 0), node(p1b, 1)}, ",")+`]}}`, 201)
	if code, body, _ := g.get("/p"); code != 200 || body != "backup" {
		t.Fatalf("%d %q, want 200 from the backup", code, body)
	}
	if got := log.String(); got != "1 1 0 0 -1" {
		t.Fatalf("tries went to priorities %q, want \"1 1 0 0 -1\"", got)
	}
	// Every node aborts: 502 after five tries.
	g.mustDo("PUT", "/apisix/admin/routes/p", `{"uri":"/p","upstream":{"nodes":[`+
		strings.Join([]string{node(p0a, 0), node(p1a, 1), node(p0b, 0), node(p1b, 1)}, ",")+`]}}`, 200)
	if code, _, h := g.get("/p"); code != 502 || h.Get("X-APISIX-Upstream-Status") != "502, 502, 502, 502" {
		t.Fatalf("all nodes fail: %d %q", code, h.Get("X-APISIX-Upstream-Status"))
	}

	// Under load, the primary group goes away: zero failed requests.
	primary1, primary2, standby := startOrigin(t, nil), startOrigin(t, nil), startOrigin(t, nil)
	g.mustDo("PUT", "/apisix/admin/routes/f", `{"uri":"/f","upstream":{"nodes":[`+
		strings.Join([]string{node(primary1, 1), node(primary2, 1), node(standby, 0)}, ",")+`]}}`, 201)
	var failed, served atomic.Int64
	stopLoad := runLoad(8, func(int) {
		if code, _, _ := g.get("/f"); code != 200 {
			failed.Add(1)
		}
		served.Add(1)
	})
	time.Sleep(300 * time.Millisecond)
	if standby.hits.Load() != 0 {
		t.Errorf("the standby served %d requests while the primaries were up", standby.hits.Load())
	}
	primary1.srv.Close()
	time.Sleep(200 * time.Millisecond)
	primary2.srv.Close()
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	if failed.Load() != 0 || standby.hits.Load() == 0 {
		t.Errorf("%d of %d requests failed while the primaries went away; the standby served %d",
			failed.Load(), served.Load(), standby.hits.Load())
	}
}

// TestRetryPolicy covers retries exhausted, retry_timeout, POSTs never
// replayed once sent, single-node retries and retry_on_statuses.
func TestRetryPolicy(t *testing.T) {
	g := startGateway(t, "")

	// Retries exhausted: every try's status in the chain, then 502.
	var log hitLog
	ab1, ab2, ab3 := aborting(t, &log, "a", 0), aborting(t, &log, "b", 0), aborting(t, &log, "c", 0)
	g.mustDo("PUT", "/apisix/admin/routes/all", fmt.Sprintf(`{"uri":"/all","upstream":{"nodes":%s}}`,
		nodesJSON(map[string]int{ab1.Addr: 1, ab2.Addr: 1, deadAddr(t): 1, ab3.Addr: 1})), 201)
	code, _, h := g.get("/all")
	if code != 502 || h.Get("X-APISIX-Upstream-Status") != "502, 502, 502, 502" {
		t.Errorf("all fail: %d %q", code, h.Get("X-APISIX-Upstream-Status"))
	}
	if hits := len(strings.Fields(log.String())); hits != 3 {
		t.Errorf("aborting nodes saw %d tries, want one each", hits)
	}

	// retry_timeout (t/node/upstream-retries.t TEST 13): nodes abort after
	// 0.1 s, retries 10, retry_timeout 0.15: 502 after 2 tries.
	log = hitLog{}
	s1, s2, s3 := aborting(t, &log, "a", 100*time.Millisecond), aborting(t, &log, "b", 100*time.Millisecond),
		aborting(t, &log, "c", 100*time.Millisecond)
	g.mustDo("PUT", "/apisix/admin/routes/rt", fmt.Sprintf(`{"uri":"/rt","upstream":{"retries":10,"retry_timeout":0.15,"nodes":%s}}`,
		nodesJSON(map[string]int{s1.Addr: 1, s2.Addr: 1, s3.Addr: 1})), 201)
	start := time.Now()
	code, _, h = g.get("/rt")
	if code != 502 || h.Get("X-APISIX-Upstream-Status") != "502, 502" {
		t.Errorf("retry_timeout: %d %q, want 502 after two tries", code, h.Get("X-APISIX-Upstream-Status"))
	}
	if hits := len(strings.Fields(log.String())); hits != 2 {
		t.Errorf("retry_timeout: %d tries, want 2", hits)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("retry_timeout: answered after %v", d)
	}

	// A POST that reached an upstream is never replayed; one that could
	// not connect is retried.
	log = hitLog{}
	p1, p2 := aborting(t, &log, "a", 0), aborting(t, &log, "b", 0)
	g.mustDo("PUT", "/apisix/admin/routes/post", fmt.Sprintf(`{"uri":"/post","upstream":{"nodes":%s}}`,
		nodesJSON(map[string]int{p1.Addr: 1, p2.Addr: 1})), 201)
	for i := 0; i < 4; i++ {
		before := len(strings.Fields(log.String()))
		code, _, _ := g.request("POST", "/post", "order=1")
		if got := len(strings.Fields(log.String())) - before; code != 502 || got != 1 {
			t.Errorf("POST %d: %d after %d upstream hits, want 502 after exactly 1", i, code, got)
		}
		// GET is replayed on the other node.
		before = len(strings.Fields(log.String()))
		if code, _, _ := g.get("/post"); code != 502 || len(strings.Fields(log.String()))-before != 2 {
			t.Errorf("GET %d: %d, %d hits, want 502 after 2", i, code, len(strings.Fields(log.String()))-before)
		}
	}
	okPost := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "got %s", b)
	})
	g.mustDo("PUT", "/apisix/admin/routes/post2", fmt.Sprintf(`{"uri":"/post2","upstream":{"nodes":%s}}`,
		nodesJSON(map[string]int{deadAddr(t): 1, okPost.Addr: 1})), 201)
	for i := 0; i < 4; i++ {
		if code, body, _ := g.request("POST", "/post2", "order=2"); code != 200 || body != "got order=2" {
			t.Errorf("POST with a dead node: %d %q", code, body)
		}
	}
	if n := okPost.hits.Load(); n != 4 {
		t.Errorf("live node saw %d POSTs, want 4", n)
	}

	// Single node (t/node/least_conn.t TEST 6): retries 2 on one failing
	// node makes three tries on it, whatever the type.
	for _, typ := range []string{"roundrobin", "least_conn", "chash", "ewma"} {
		log = hitLog{}
		one := aborting(t, &log, "x", 0)
		if r := g.do("PUT", "/apisix/admin/routes/one", fmt.Sprintf(`{"uri":"/one","upstream":{"type":"%s","key":"remote_addr","retries":2,"nodes":{"%s":1}}}`,
			typ, one.Addr)); r.Status != 200 && r.Status != 201 {
			t.Fatalf("PUT %s: %d %s", typ, r.Status, r.Body)
		}
		code, _, h := g.get("/one")
		if code != 502 || h.Get("X-APISIX-Upstream-Status") != "502, 502, 502" || log.String() != "x x x" {
			t.Errorf("%s, one node, retries 2: %d %q, tries %q", typ, code, h.Get("X-APISIX-Upstream-Status"), log.String())
		}
	}

	// retry_on_statuses: GET goes on to the next node, POST does not.
	busy := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		fmt.Fprint(w, "busy")
	})
	fine := startOrigin(t, nil)
	g.mustDo("PUT", "/apisix/admin/routes/st", fmt.Sprintf(`{"uri":"/st","upstream":{"retry_on_statuses":[502,503],"nodes":%s}}`,
		nodesJSON(map[string]int{busy.Addr: 1, fine.Addr: 1})), 201)
	g.mustDo("PUT", "/apisix/admin/routes/nost", fmt.Sprintf(`{"uri":"/nost","upstream":{"nodes":%s}}`,
		nodesJSON(map[string]int{busy.Addr: 1, fine.Addr: 1})), 201)
	for i := 0; i < 6; i++ {
		if code, body, h := g.get("/st"); code != 200 || body != port(fine) || h.Get("X-APISIX-Upstream-Status") != "" {
			t.Errorf("GET with retry_on_statuses: %d %q %q", code, body, h.Get("X-APISIX-Upstream-Status"))
		}
	}
	busyBefore, got503 := busy.hits.Load(), 0
	for i := 0; i < 6; i++ {
		code, body, h := g.request("POST", "/st", "x")
		if code == 503 {
			got503++
			if body != "busy" || h.Get("X-APISIX-Upstream-Status") != "503" {
				t.Errorf("POST 503: %q %q", body, h.Get("X-APISIX-Upstream-Status"))
			}
		}
	}
	if hits := busy.hits.Load() - busyBefore; got503 != 3 || hits != 3 {
		t.Errorf("6 POSTs: %d answered 503, the busy node saw %d; want 3 and 3 (never retried)", got503, hits)
	}
	// Without the option a 503 passes through.
	got503 = 0
	for i := 0; i < 4; i++ {
		if code, _, h := g.get("/nost"); code == 503 {
			got503++
			if h.Get("X-APISIX-Upstream-Status") != "503" {
				t.Errorf("503 chain %q", h.Get("X-APISIX-Upstream-Status"))
			}
		}
	}
	if got503 != 2 {
		t.Errorf("without retry_on_statuses %d of 4 GETs got the 503, want 2", got503)
	}
}
