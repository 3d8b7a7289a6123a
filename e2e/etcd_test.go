package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/gateway/store/etcdtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Fleet tests: gateways sharing one real etcd (Debian's etcd-server,
// started per test on free loopback ports). They skip when etcd is not
// installed; .ci/run installs it.

// fleetWait bounds the eventual checks below. It turns a hang into a
// failure; no test asserts a duration.
const fleetWait = 20 * time.Second

// startFleetGateway starts a gateway on etcd at endpoint.
func startFleetGateway(t *testing.T, endpoint string, extra ...string) *gateway {
	t.Helper()
	return startGateway(t, "", append([]string{"-etcd", endpoint}, extra...)...)
}

// spawnGateway starts a gateway on etcd without waiting for its
// listeners (it may be waiting for etcd).
func spawnGateway(t *testing.T, endpoint string) *gateway {
	t.Helper()
	g := &gateway{t: t, dataDir: t.TempDir(),
		proxy: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	g.tls = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g.control = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	g.args = []string{"-listen", g.proxy, "-listen-tls", g.tls, "-admin-listen", g.admin, "-control-listen", g.control,
		"-data-dir", g.dataDir, "-etcd", endpoint}
	g.spawn()
	t.Cleanup(g.kill)
	return g
}

// listening reports whether addr accepts connections.
func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// waitFor polls cond until it holds or fleetWait passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(fleetWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, fleetWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// probe sends one proxied GET without failing the test (safe from any
// goroutine); code is 0 when the request failed.
func probe(client *http.Client, addr, path string) (code int, body string) {
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err.Error()
	}
	return resp.StatusCode, string(b)
}

// waitServed waits until g answers path with code (and body, if not "").
func waitServed(t *testing.T, g *gateway, path string, code int, body string) {
	t.Helper()
	var got int
	var gotBody string
	deadline := time.Now().Add(fleetWait)
	for {
		got, gotBody = probe(proxyClient, g.proxy, path)
		if got == code && (body == "" || gotBody == body) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway %s: GET %s answered %d %q, want %d %q within %v", g.proxy, path, got, gotBody, code, body, fleetWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metric reads one unlabelled value from the gateway's /metrics.
func metric(t *testing.T, g *gateway, name string) float64 {
	t.Helper()
	r := g.do("GET", "/metrics", "")
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(r.Body)
	if m == nil {
		t.Fatalf("metric %s missing from /metrics", name)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// etcdClient connects the test itself to etcd, for bulk loads.
func etcdClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestFleetWritesServedByAll runs three gateways on one etcd: writes
// through any gateway's Admin API, and keys put straight into etcd with
// etcdctl in APISIX's JSON, are served by all of them; deletes too.
func TestFleetWritesServedByAll(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	gs := []*gateway{startFleetGateway(t, srv.Endpoint), startFleetGateway(t, srv.Endpoint), startFleetGateway(t, srv.Endpoint)}
	g1, g2, g3 := gs[0], gs[1], gs[2]

	g1.mustDo("PUT", "/apisix/admin/upstreams/ua", fmt.Sprintf(`{"nodes":{"%s":1}}`, a.Addr), 201)
	g2.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/one","upstream_id":"ua"}`, 201)
	// Read your writes on the gateway that took the write...
	if code, body, _ := g2.get("/one"); code != 200 || body != port(a) {
		t.Fatalf("right after the 201, g2 served %d %q", code, body)
	}
	// ...and the others follow through their watch.
	for _, g := range gs {
		waitServed(t, g, "/one", 200, port(a))
	}
	// Replacing is a 200, and create vs replace holds across gateways.
	g3.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/one","upstream":{"nodes":{"%s":1}}}`, b.Addr), 200)
	for _, g := range gs {
		waitServed(t, g, "/one", 200, port(b))
	}

	// createdIndex/modifiedIndex are etcd's revisions.
	got := g1.mustDo("GET", "/apisix/admin/routes/1", "", 200).JSON(t)
	out := srv.Ctl("get", "/apisix/routes/1", "-w", "json")
	for _, f := range []struct{ admin, etcd string }{{"createdIndex", "create_revision"}, {"modifiedIndex", "mod_revision"}} {
		m := regexp.MustCompile(`"` + f.etcd + `":(\d+)`).FindStringSubmatch(out)
		if m == nil || fmt.Sprint(got[f.admin]) != m[1] {
			t.Fatalf("%s %v, etcd's %s in %s", f.admin, got[f.admin], f.etcd, out)
		}
	}

	// A route written straight into etcd, as APISIX's tools do, next to
	// the directory keys `apisix init` creates.
	srv.Ctl("put", "/apisix/routes/", "init_dir")
	srv.Ctl("put", "/apisix/routes/ctl", fmt.Sprintf(`{"id":"ctl","uri":"/ctl","upstream":{"type":"roundrobin","nodes":[{"host":"127.0.0.1","port":%d,"weight":1}]}}`, a.Port))
	for _, g := range gs {
		waitServed(t, g, "/ctl", 200, port(a))
	}
	list := g3.mustDo("GET", "/apisix/admin/routes", "", 200).JSON(t)
	if list["total"].(float64) != 2 {
		t.Fatalf("admin lists %v routes, want 2 (the init_dir key is not one): %v", list["total"], list)
	}

	// POST ids are etcd revisions, as APISIX makes them.
	r := g1.mustDo("POST", "/apisix/admin/routes", `{"uri":"/posted","upstream_id":"ua"}`, 201).JSON(t)
	id := r["value"].(map[string]any)["id"].(string)
	if len(id) != 20 {
		t.Fatalf("POST id %q", id)
	}
	for _, g := range gs {
		waitServed(t, g, "/posted", 200, port(a))
	}

	// An invalid value written into etcd is skipped and counted; the rest
	// keeps serving and later writes apply.
	before := metric(t, g2, "gateway_config_invalid_values_total")
	srv.Ctl("put", "/apisix/routes/bad", `{"uri":42}`)
	srv.Ctl("put", "/apisix/routes/after-bad", fmt.Sprintf(`{"uri":"/after-bad","upstream":{"nodes":{"%s":1}}}`, a.Addr))
	for _, g := range gs {
		waitServed(t, g, "/after-bad", 200, port(a))
		if n := metric(t, g, "gateway_config_invalid_values_total"); n < before+1 {
			t.Fatalf("gateway %s counted %v invalid values, want at least %v", g.proxy, n, before+1)
		}
		waitServed(t, g, "/one", 200, port(b))
	}
	if !strings.Contains(g2.logs(), "/apisix/routes/bad") {
		t.Fatalf("the invalid value is not logged:\n%s", g2.logs())
	}

	// Deletes: through the Admin API of one gateway, and with etcdctl.
	g3.mustDo("DELETE", "/apisix/admin/routes/1", "", 200)
	if code, _, _ := g3.get("/one"); code != 404 {
		t.Fatalf("right after DELETE g3 served /one: %d", code)
	}
	srv.Ctl("del", "/apisix/routes/ctl")
	for _, g := range gs {
		waitServed(t, g, "/one", 404, "")
		waitServed(t, g, "/ctl", 404, "")
		waitServed(t, g, "/posted", 200, port(a))
	}
	for _, g := range gs {
		if v := metric(t, g, "gateway_store_connected"); v != 1 {
			t.Fatalf("gateway_store_connected %v", v)
		}
	}
}

// TestFleetPropagation measures, over 200 writes, the time from an admin
// write on gateway A to the first request gateway B serves with it. It
// logs the figures and asserts nothing about them.
func TestFleetPropagation(t *testing.T) {
	srv := etcdtest.Start(t)
	o := startOrigin(t, nil)
	ga, gb := startFleetGateway(t, srv.Endpoint), startFleetGateway(t, srv.Endpoint)
	ga.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1}}`, o.Addr), 201)
	for i := 0; i < 100; i++ { // some configuration to compile
		ga.mustDo("PUT", fmt.Sprintf("/apisix/admin/routes/bg%d", i), fmt.Sprintf(`{"uri":"/bg/%d","upstream_id":"u"}`, i), 201)
	}
	props, acks := measurePropagation(t, ga, gb, "u", 200)
	t.Logf("propagation, 101 routes: A admin write sent -> first request served by B, 200 writes: median %v, p99 %v, max %v (A's own 2xx: median %v, p99 %v)",
		pct(props, 50), pct(props, 99), pct(props, 100), pct(acks, 50), pct(acks, 99))
}

// measurePropagation makes n admin writes on ga, one after the other, each
// moving route "prop" to a new path, and returns for each the time from
// sending the write to the first request gb served on the new path
// (polled from another goroutine from the moment the write is sent), and
// the time ga took to answer.
func measurePropagation(t *testing.T, ga, gb *gateway, upstream string, n int) (props, acks []time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	for i := 0; i < n; i++ {
		path := fmt.Sprintf("/prop/%d", i)
		start := time.Now()
		served := make(chan time.Duration, 1)
		go func() {
			for time.Since(start) < fleetWait {
				if code, _ := probe(client, gb.proxy, path); code == 200 {
					served <- time.Since(start)
					return
				}
				time.Sleep(100 * time.Microsecond)
			}
			served <- -1
		}()
		ga.mustDo("PUT", "/apisix/admin/routes/prop", fmt.Sprintf(`{"uri":%q,"upstream_id":%q}`, path, upstream), []int{201, 200}[min(i, 1)])
		acks = append(acks, time.Since(start))
		d := <-served
		if d < 0 {
			t.Fatalf("write %d not served by B within %v", i, fleetWait)
		}
		props = append(props, d)
	}
	return props, acks
}

// pct returns the p-th percentile (nearest rank).
func pct(ds []time.Duration, p int) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p+99)/100 - 1
	return s[max(0, min(i, len(s)-1))].Round(10 * time.Microsecond)
}

// TestFleetEtcdOutage stops etcd while two gateways serve traffic: no
// proxied request fails, admin writes answer 503 with a clear message,
// /metrics shows the store disconnected; after etcd restarts the fleet
// catches up and writes work again.
func TestFleetEtcdOutage(t *testing.T) {
	srv := etcdtest.Start(t)
	o1, o2 := startOrigin(t, nil), startOrigin(t, nil)
	ga, gb := startFleetGateway(t, srv.Endpoint), startFleetGateway(t, srv.Endpoint)
	ga.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1,"%s":1}}`, o1.Addr, o2.Addr), 201)
	ga.mustDo("PUT", "/apisix/admin/routes/hot", `{"uri":"/hot","upstream_id":"u"}`, 201)
	waitServed(t, gb, "/hot", 200, "")

	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stopLoad := runLoad(4, func(w int) {
		g := []*gateway{ga, gb}[w%2]
		code, body := probe(proxyClient, g.proxy, "/hot")
		if code != 200 {
			failed.Add(1)
			firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", g.proxy, code, body))
			return
		}
		ok.Add(1)
		time.Sleep(time.Millisecond)
	})
	defer stopLoad()

	srv.Stop()
	for _, g := range []*gateway{ga, gb} {
		waitFor(t, "gateway_store_connected 0", func() bool { return metric(t, g, "gateway_store_connected") == 0 })
	}
	began := time.Now()
	r := ga.do("PUT", "/apisix/admin/routes/new", `{"uri":"/new","upstream_id":"u"}`)
	t.Logf("admin PUT while etcd is down answered %d in %v: %s", r.Status, time.Since(began).Round(time.Millisecond), r.Body)
	if r.Status != 503 || !strings.Contains(string(r.Body), "configuration store is unavailable") {
		t.Fatalf("admin PUT while etcd is down: %d %s", r.Status, r.Body)
	}
	if r := gb.do("DELETE", "/apisix/admin/routes/hot", ""); r.Status != 503 {
		t.Fatalf("admin DELETE while etcd is down: %d %s", r.Status, r.Body)
	}
	if r := gb.do("GET", "/apisix/admin/routes/hot", ""); r.Status != 503 {
		t.Fatalf("admin GET while etcd is down: %d %s", r.Status, r.Body)
	}
	time.Sleep(time.Second) // more traffic while etcd is down
	downOK := ok.Load()

	srv.Restart()
	restarted := time.Now()
	for _, g := range []*gateway{ga, gb} {
		waitFor(t, "gateway_store_connected 1", func() bool { return metric(t, g, "gateway_store_connected") == 1 })
	}
	t.Logf("both gateways connected again %v after etcd answered", time.Since(restarted).Round(time.Millisecond))
	ga.mustDo("PUT", "/apisix/admin/routes/new", `{"uri":"/new","upstream_id":"u"}`, 201)
	waitServed(t, gb, "/new", 200, "")
	srv.Ctl("put", "/apisix/routes/ctl", fmt.Sprintf(`{"uri":"/ctl","upstream":{"nodes":{"%s":1}}}`, o1.Addr))
	waitServed(t, ga, "/ctl", 200, port(o1))
	waitServed(t, gb, "/ctl", 200, port(o1))
	t.Logf("caught up %v after etcd answered", time.Since(restarted).Round(time.Millisecond))

	stopLoad()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d proxied requests failed; first: %v", failed.Load(), ok.Load()+failed.Load(), firstFailure.Load())
	}
	t.Logf("%d proxied requests, none failed (%d by the end of the outage)", ok.Load(), downOK)
	if !strings.Contains(ga.logs(), "unreachable") {
		t.Fatalf("the outage is not logged:\n%s", ga.logs())
	}
}

// TestFleetCompactionDuringWatch cuts gateway B off etcd while A writes
// and etcdctl compacts the history B still needs: when B reconnects, its
// watch is refused as compacted and B lists everything again.
func TestFleetCompactionDuringWatch(t *testing.T) {
	srv := etcdtest.Start(t)
	relay := etcdtest.NewProxy(t, srv)
	o1, o2 := startOrigin(t, nil), startOrigin(t, nil)
	ga, gb := startFleetGateway(t, srv.Endpoint), startFleetGateway(t, relay.Endpoint)
	ga.mustDo("PUT", "/apisix/admin/routes/keep", fmt.Sprintf(`{"uri":"/keep","upstream":{"nodes":{"%s":1}}}`, o1.Addr), 201)
	ga.mustDo("PUT", "/apisix/admin/routes/gone", fmt.Sprintf(`{"uri":"/gone","upstream":{"nodes":{"%s":1}}}`, o1.Addr), 201)
	waitServed(t, gb, "/gone", 200, port(o1))

	// Compaction of history B has already applied changes nothing.
	rev := metric(t, ga, "gateway_config_revision")
	srv.Ctl("compact", strconv.FormatFloat(rev, 'f', 0, 64))
	ga.mustDo("PUT", "/apisix/admin/routes/live", fmt.Sprintf(`{"uri":"/live","upstream":{"nodes":{"%s":1}}}`, o1.Addr), 201)
	waitServed(t, gb, "/live", 200, port(o1))

	relay.Cut()
	waitFor(t, "B disconnected", func() bool { return metric(t, gb, "gateway_store_connected") == 0 })
	ga.mustDo("PUT", "/apisix/admin/routes/keep", fmt.Sprintf(`{"uri":"/keep","upstream":{"nodes":{"%s":1}}}`, o2.Addr), 200)
	ga.mustDo("DELETE", "/apisix/admin/routes/gone", "", 200)
	for i := 0; i < 10; i++ {
		ga.mustDo("PUT", fmt.Sprintf("/apisix/admin/routes/n%d", i), fmt.Sprintf(`{"uri":"/n/%d","upstream":{"nodes":{"%s":1}}}`, i, o2.Addr), 201)
	}
	rev = metric(t, ga, "gateway_config_revision")
	srv.Ctl("compact", strconv.FormatFloat(rev, 'f', 0, 64))
	// Meanwhile B serves what it had.
	if code, body, _ := gb.get("/gone"); code != 200 || body != port(o1) {
		t.Fatalf("B while cut off: /gone %d %q", code, body)
	}
	relay.Restore()
	waitServed(t, gb, "/keep", 200, port(o2))
	waitServed(t, gb, "/gone", 404, "")
	for i := 0; i < 10; i++ {
		waitServed(t, gb, fmt.Sprintf("/n/%d", i), 200, port(o2))
	}
	if !strings.Contains(gb.logs(), "compacted") {
		t.Fatalf("B did not see the compaction:\n%s", gb.logs())
	}
	// And B keeps following after the re-list.
	ga.mustDo("PUT", "/apisix/admin/routes/later", fmt.Sprintf(`{"uri":"/later","upstream":{"nodes":{"%s":1}}}`, o2.Addr), 201)
	waitServed(t, gb, "/later", 200, port(o2))
}

// TestFleetConcurrentPatches has two gateways PATCH the same upstream at
// once, each adding its own labels: every update survives (a PATCH that
// loses the race five times answers 503 and the client retries it).
func TestFleetConcurrentPatches(t *testing.T) {
	srv := etcdtest.Start(t)
	o := startOrigin(t, nil)
	ga, gb := startFleetGateway(t, srv.Endpoint), startFleetGateway(t, srv.Endpoint)
	ga.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1},"labels":{"base":"1"}}`, o.Addr), 201)
	const perGateway = 40
	var retried atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, 2*perGateway)
	for gi, g := range []*gateway{ga, gb} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 20 * time.Second}
			for i := 0; i < perGateway; i++ {
				body := fmt.Sprintf(`{"labels":{"g%d-%d":"v"}}`, gi, i)
				for attempt := 0; ; attempt++ {
					req, _ := http.NewRequest("PATCH", "http://"+g.admin+"/apisix/admin/upstreams/u", strings.NewReader(body))
					resp, err := client.Do(req)
					if err != nil {
						errs <- err.Error()
						return
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						break
					}
					if resp.StatusCode == 503 && strings.Contains(string(b), "value changed before overwritten") && attempt < 20 {
						retried.Add(1)
						continue
					}
					errs <- fmt.Sprintf("PATCH %s: %d %s", body, resp.StatusCode, b)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	for _, g := range []*gateway{ga, gb} {
		v := g.mustDo("GET", "/apisix/admin/upstreams/u", "", 200).JSON(t)
		labels := v["value"].(map[string]any)["labels"].(map[string]any)
		if len(labels) != 1+2*perGateway {
			t.Fatalf("%d labels after %d PATCHes, want %d: %v", len(labels), 2*perGateway, 1+2*perGateway, labels)
		}
		for gi := 0; gi < 2; gi++ {
			for i := 0; i < perGateway; i++ {
				if labels[fmt.Sprintf("g%d-%d", gi, i)] != "v" {
					t.Fatalf("label g%d-%d lost: %v", gi, i, labels)
				}
			}
		}
	}
	t.Logf("%d PATCHes from two gateways, %d answered 503 (lost the race five times) and were retried", 2*perGateway, retried.Load())
	waitServed(t, gb, "/nothing", 404, "")
}

// TestFleetStartsWhileEtcdDown starts a gateway while etcd is down: it
// waits, says so in its log and keeps its proxy listener closed; once
// etcd answers it loads the configuration and serves it.
func TestFleetStartsWhileEtcdDown(t *testing.T) {
	srv := etcdtest.Start(t)
	o := startOrigin(t, nil)
	srv.Ctl("put", "/apisix/routes/1", fmt.Sprintf(`{"uri":"/stored","upstream":{"nodes":{"%s":1}}}`, o.Addr))
	srv.Stop()

	g := spawnGateway(t, srv.Endpoint)
	waitFor(t, "the gateway logs that it waits", func() bool {
		return strings.Contains(g.logs(), "waiting for the configuration store")
	})
	time.Sleep(time.Second)
	if listening(g.proxy) {
		t.Fatal("the proxy listener opened before the configuration was loaded")
	}
	select {
	case <-g.exited:
		t.Fatalf("the gateway exited while etcd was down:\n%s", g.logs())
	default:
	}

	srv.Restart()
	restarted := time.Now()
	waitFor(t, "proxy listener", func() bool { return listening(g.proxy) })
	t.Logf("the waiting gateway opened its proxy %v after etcd answered", time.Since(restarted).Round(time.Millisecond))
	// The first request already gets the stored configuration.
	if code, body, _ := g.get("/stored"); code != 200 || body != port(o) {
		t.Fatalf("first request after start: %d %q", code, body)
	}
}

// TestFleetJoin10kRoutes loads 10,000 routes straight into etcd, measures
// how long new gateways take to join (process start to serving), then
// writes a burst of 500 changes: the gateways coalesce them into far fewer
// compiles. Figures are logged, not asserted.
func TestFleetJoin10kRoutes(t *testing.T) {
	srv := etcdtest.Start(t)
	o := startOrigin(t, nil)
	cli := etcdClient(t, srv.Endpoint)
	ctx := context.Background()
	const routes = 10_000
	if _, err := cli.Put(ctx, "/apisix/upstreams/u", fmt.Sprintf(`{"id":"u","nodes":{"%s":1},"type":"roundrobin"}`, o.Addr)); err != nil {
		t.Fatal(err)
	}
	loadStart := time.Now()
	for i := 0; i < routes; i += 128 { // etcd's default limit of operations per transaction
		var ops []clientv3.Op
		for j := i; j < min(i+128, routes); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("/apisix/routes/r%05d", j),
				fmt.Sprintf(`{"id":"r%05d","uri":"/r/%d","upstream_id":"u","create_time":1700000000,"update_time":1700000000}`, j, j)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("loaded %d routes into etcd in %v", routes, time.Since(loadStart).Round(time.Millisecond))

	var joins []time.Duration
	var gs []*gateway
	for i := 0; i < 3; i++ {
		began := time.Now()
		g := spawnGateway(t, srv.Endpoint)
		waitFor(t, "the joining gateway listens", func() bool { return listening(g.proxy) })
		listened := time.Since(began)
		if code, body := probe(proxyClient, g.proxy, fmt.Sprintf("/r/%d", routes-1)); code != 200 || body != port(o) {
			t.Fatalf("new gateway: /r/%d answered %d %q", routes-1, code, body)
		}
		joins = append(joins, time.Since(began))
		t.Logf("gateway %d joined a fleet of %d routes: proxy listening after %v, first request served after %v",
			i+1, routes, listened.Round(time.Millisecond), joins[i].Round(time.Millisecond))
		waitFor(t, "admin listener", func() bool { return listening(g.admin) })
		gs = append(gs, g)
	}
	t.Logf("join time with %d routes (process start to first request served), 3 gateways: median %v, max %v",
		routes, pct(joins, 50), pct(joins, 100))
	if n := metric(t, gs[0], "gateway_config_routes"); n != routes {
		t.Fatalf("gateway_config_routes %v, want %d", n, routes)
	}
	props, acks := measurePropagation(t, gs[0], gs[1], "u", 200)
	t.Logf("propagation, %d routes: A admin write sent -> first request served by B, 200 writes: median %v, p99 %v, max %v (A's own 2xx: median %v, p99 %v)",
		routes+1, pct(props, 50), pct(props, 99), pct(props, 100), pct(acks, 50), pct(acks, 99))

	// A burst: 500 route updates from 10 concurrent writers.
	compiles, updates := make([]float64, len(gs)), make([]float64, len(gs))
	for i, g := range gs {
		compiles[i] = metric(t, g, "gateway_config_compiles_total")
		updates[i] = metric(t, g, "gateway_config_updates_total")
	}
	const burst = 500
	var wg sync.WaitGroup
	var last atomic.Int64
	burstStart := time.Now()
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := w; j < burst; j += 10 {
				resp, err := cli.Put(ctx, fmt.Sprintf("/apisix/routes/r%05d", j),
					fmt.Sprintf(`{"id":"r%05d","uri":"/burst/%d","upstream_id":"u"}`, j, j))
				if err != nil {
					t.Error(err)
					return
				}
				for r := last.Load(); resp.Header.Revision > r && !last.CompareAndSwap(r, resp.Header.Revision); r = last.Load() {
				}
			}
		}()
	}
	wg.Wait()
	for i, g := range gs {
		waitFor(t, "the burst applied", func() bool { return metric(t, g, "gateway_config_revision") >= float64(last.Load()) })
		full := metric(t, g, "gateway_config_compiles_total") - compiles[i]
		incr := metric(t, g, "gateway_config_updates_total") - updates[i]
		n := full + incr
		t.Logf("gateway %d applied a burst of %d writes (over %v) in %v full compiles and %v incremental updates of %d routes",
			i+1, burst, time.Since(burstStart).Round(time.Millisecond), full, incr, routes)
		if n >= burst {
			t.Fatalf("gateway %d compiled %v times for %d writes: bursts are not coalesced", i+1, n, burst)
		}
		waitServed(t, g, fmt.Sprintf("/burst/%d", burst-1), 200, port(o))
		waitServed(t, g, fmt.Sprintf("/r/%d", routes-1), 200, port(o))
	}
}

// TestFleetPrefixAndConfigFile sets -etcd (two endpoints, the first one
// dead) and -etcd-prefix in the YAML config file: the gateway reaches the
// live endpoint and maps /apisix/... to its prefix both ways.
func TestFleetPrefixAndConfigFile(t *testing.T) {
	srv := etcdtest.Start(t)
	o := startOrigin(t, nil)
	conf := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := fmt.Sprintf("etcd:\n  - http://%s\n  - %s\netcd_prefix: /edge\n", deadAddr(t), srv.Endpoint)
	if err := os.WriteFile(conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, "", "-c", conf)
	srv.Ctl("put", "/edge/routes/ctl", fmt.Sprintf(`{"uri":"/ctl","upstream":{"nodes":{"%s":1}}}`, o.Addr))
	srv.Ctl("put", "/apisix/routes/other", fmt.Sprintf(`{"uri":"/other","upstream":{"nodes":{"%s":1}}}`, o.Addr))
	waitServed(t, g, "/ctl", 200, port(o))
	g.mustDo("PUT", "/apisix/admin/routes/adm", fmt.Sprintf(`{"uri":"/adm","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	if out := srv.Ctl("get", "/edge/routes/adm", "--print-value-only"); !strings.Contains(out, `"/adm"`) {
		t.Fatalf("the admin write is not at /edge/routes/adm: %q", out)
	}
	if code, _, _ := g.get("/other"); code != 404 {
		t.Fatalf("a key outside the prefix is served: %d", code)
	}
	r := g.mustDo("GET", "/apisix/admin/routes/ctl", "", 200).JSON(t)
	if r["key"] != "/apisix/routes/ctl" {
		t.Fatalf("admin key %v, want APISIX's /apisix/routes/ctl", r["key"])
	}
	if !strings.Contains(g.logs(), "prefix /edge") {
		t.Fatalf("the log does not name the prefix:\n%s", g.logs())
	}
}

// TestFleetEtcdClusterFailover runs two gateways on a three-member etcd
// cluster, each given every member: losing one member changes nothing
// (writes go on, the watch moves to another member); losing two stops
// writes (503, store disconnected) while traffic is still served; when a
// member returns the fleet catches up.
func TestFleetEtcdClusterFailover(t *testing.T) {
	members := etcdtest.StartCluster(t, 3)
	var eps []string
	for _, m := range members {
		eps = append(eps, m.Endpoint)
	}
	o := startOrigin(t, nil)
	ga := startFleetGateway(t, strings.Join(eps, ","))
	gb := startFleetGateway(t, strings.Join(eps, ","))
	ga.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1}}`, o.Addr), 201)
	ga.mustDo("PUT", "/apisix/admin/routes/r0", `{"uri":"/r0","upstream_id":"u"}`, 201)
	waitServed(t, gb, "/r0", 200, port(o))

	// write retries an admin PUT until it succeeds: a write in flight on
	// the member that dies fails once (503) and is not retried by the
	// client, as its outcome is unknown.
	write := func(g *gateway, id string) {
		t.Helper()
		body := fmt.Sprintf(`{"uri":"/%s","upstream_id":"u"}`, id)
		waitFor(t, "PUT "+id, func() bool {
			r := g.do("PUT", "/apisix/admin/routes/"+id, body)
			return r.Status == 200 || r.Status == 201
		})
	}

	members[0].Stop()
	for i := 1; i <= 5; i++ {
		write([]*gateway{ga, gb}[i%2], fmt.Sprintf("r%d", i))
	}
	for i := 1; i <= 5; i++ {
		waitServed(t, ga, fmt.Sprintf("/r%d", i), 200, port(o))
		waitServed(t, gb, fmt.Sprintf("/r%d", i), 200, port(o))
	}
	for _, g := range []*gateway{ga, gb} {
		waitFor(t, "connected with one member down", func() bool { return metric(t, g, "gateway_store_connected") == 1 })
	}

	members[1].Stop() // no quorum left
	for _, g := range []*gateway{ga, gb} {
		waitFor(t, "disconnected without quorum", func() bool { return metric(t, g, "gateway_store_connected") == 0 })
	}
	if r := ga.do("PUT", "/apisix/admin/routes/late", `{"uri":"/late","upstream_id":"u"}`); r.Status != 503 {
		t.Fatalf("admin PUT without quorum: %d %s", r.Status, r.Body)
	}
	if code, body, _ := gb.get("/r5"); code != 200 || body != port(o) {
		t.Fatalf("traffic without quorum: %d %q", code, body)
	}

	members[1].Restart()
	write(gb, "late")
	waitServed(t, ga, "/late", 200, port(o))
	for _, g := range []*gateway{ga, gb} {
		waitFor(t, "connected again", func() bool { return metric(t, g, "gateway_store_connected") == 1 })
	}
}
