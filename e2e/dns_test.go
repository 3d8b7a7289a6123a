package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/dnsmasq"
)

// Black-box tests of DNS discovery against a real DNS server (dnsmasq on a
// free loopback port, authoritative for the zone "test", TTL 1 s). They
// are skipped when dnsmasq is not installed.

// startOriginOn starts an origin on ip:port (port 0 picks one) that
// answers with its address.
func startOriginOn(t *testing.T, ip string, port int) *origin {
	t.Helper()
	return listenOrigin(t, net.JoinHostPort(ip, strconv.Itoa(port)), func(o *origin, w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, o.Addr)
	})
}

// eventually polls cond every 20 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// hitsBy sends n requests to path and counts the answers by body (the
// origin's address) or status.
func (g *gateway) hitsBy(path string, n int) map[string]int {
	g.t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		code, body, _ := g.get(path)
		if code != 200 {
			body = fmt.Sprintf("status %d: %s", code, body)
		}
		got[body]++
	}
	return got
}

// TestDNSSRVWeights: two SRV targets share the traffic by their weights;
// /metrics shows the discovered upstream; the Admin API refuses a
// discovery type this gateway does not have, naming the supported ones.
func TestDNSSRVWeights(t *testing.T) {
	a, b := startOriginOn(t, "127.0.0.1", 0), startOriginOn(t, "127.0.0.1", 0)
	srv := dnsmasq.Start(t, dnsmasq.Config{Zone: "test", Records: []string{
		fmt.Sprintf("srv-host=_http._tcp.web.test,a.web.test,%d,10,3", a.Port),
		fmt.Sprintf("srv-host=_http._tcp.web.test,b.web.test,%d,10,1", b.Port),
		"host-record=a.web.test,127.0.0.1",
		"host-record=b.web.test,127.0.0.1",
	}})
	g := startGateway(t, "", "-dns-servers", srv.Addr)
	g.mustDo("PUT", "/apisix/admin/upstreams/1", `{"discovery_type":"dns","service_name":"_http._tcp.web.test"}`, 201)
	g.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/w","upstream_id":"1"}`, 201)

	got := g.hitsBy("/w", 400)
	if got[a.Addr] < 280 || got[a.Addr] > 320 || got[b.Addr] < 80 || got[b.Addr] > 120 {
		t.Fatalf("weights 3:1 over 400 requests: %v", got)
	}
	if v := g.metric(`gateway_discovery_upstream_nodes{upstream="/apisix/upstreams/1"}`); v != 2 {
		t.Fatalf("gateway_discovery_upstream_nodes = %v", v)
	}
	l := `{upstream="/apisix/upstreams/1",type="dns",service="_http._tcp.web.test"}`
	if v := g.metric("gateway_discovery_last_success_timestamp_seconds" + l); v < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("last success %v", v)
	}
	if v := g.metric("gateway_discovery_stale" + l); v != 0 {
		t.Fatalf("stale %v", v)
	}

	r := g.do("PUT", "/apisix/admin/upstreams/2", `{"discovery_type":"consul","service_name":"web"}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), `discovery type \"consul\" is not supported by this gateway yet; supported: dns`) {
		t.Fatalf("consul: %d %s", r.Status, r.Body)
	}
	r = g.do("PUT", "/apisix/admin/upstreams/2", `{"discovery_type":"dns","service_name":"web.test","nodes":{"127.0.0.1:1":1}}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), "only one of nodes and service_name") {
		t.Fatalf("both: %d %s", r.Status, r.Body)
	}
}

// TestDNSHostNameNodes: a static node given by host name (and a Kong
// target by name) resolves to every address of the name, with the node's
// weight, and pass_host=node sends the name. A record removed leaves the
// traffic after its TTL; the node that stays keeps its warm connection.
func TestDNSHostNameNodes(t *testing.T) {
	a := startOriginOn(t, "127.0.0.2", 0)
	b := startOriginOn(t, "127.0.0.3", a.Port)
	srv := dnsmasq.Start(t, dnsmasq.Config{Zone: "test", Hosts: "127.0.0.2 web.test\n127.0.0.3 web.test\n"})
	g := startGateway(t, "", "-dns-servers", srv.Addr)
	g.mustDo("PUT", "/apisix/admin/routes/1",
		fmt.Sprintf(`{"uri":"/h","upstream":{"pass_host":"node","nodes":{"web.test:%d":1}}}`, a.Port), 201)
	g.kongMust("POST", "/upstreams", form, "name=orders", 201)
	g.kongMust("POST", "/upstreams/orders/targets", form, fmt.Sprintf("target=web.test:%d", a.Port), 201)
	g.kongMust("POST", "/services", form, "name=orders&host=orders", 201)
	g.kongMust("POST", "/services/orders/routes", form, "paths%5B%5D=/k", 201)

	for _, path := range []string{"/h", "/k"} {
		got := g.hitsBy(path, 20)
		if got[a.Addr] != 10 || got[b.Addr] != 10 {
			t.Fatalf("%s: both addresses of web.test: %v", path, got)
		}
		if h := a.last.Load().Host; h != fmt.Sprintf("web.test:%d", a.Port) {
			t.Fatalf("%s: Host %q, want the node's name", path, h)
		}
	}
	connsA := a.conns.Load()

	srv.SetHosts("127.0.0.2 web.test\n")
	took := eventually(t, 10*time.Second, "the removed address leaves the traffic", func() bool {
		got := g.hitsBy("/h", 10)
		return got[a.Addr] == 10
	})
	t.Logf("the removed record left the traffic after %v (TTL 1 s)", took.Round(10*time.Millisecond))
	if got := g.hitsBy("/h", 20); got[a.Addr] != 20 {
		t.Fatalf("after removal: %v", got)
	}
	eventually(t, 10*time.Second, "the Kong target follows", func() bool { return g.hitsBy("/k", 10)[a.Addr] == 10 })
	if n := a.conns.Load(); n != connsA {
		t.Fatalf("the node that stayed opened %d new connections across the node-set change", n-connsA)
	}
}

// load sends GET path from several workers until finish, counting answers.
type load struct {
	stop     func()
	ok, fail atomic.Int64
	mu       sync.Mutex
	failures []string
}

func startLoad(g *gateway, path string, workers int) *load {
	l := &load{}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	l.stop = runLoad(workers, func(int) {
		resp, err := client.Get("http://" + g.proxy + path)
		if err != nil {
			l.failed(err.Error())
			return
		}
		var buf [256]byte
		n, _ := resp.Body.Read(buf[:])
		resp.Body.Close()
		if resp.StatusCode != 200 {
			l.failed(fmt.Sprintf("status %d: %s", resp.StatusCode, buf[:n]))
			return
		}
		l.ok.Add(1)
	})
	return l
}

func (l *load) failed(what string) {
	l.fail.Add(1)
	l.mu.Lock()
	if len(l.failures) < 5 {
		l.failures = append(l.failures, what)
	}
	l.mu.Unlock()
}

// finish stops the load and waits for the requests in flight; it may be
// called more than once.
func (l *load) finish() { l.stop() }

// TestDNSResolverOutageUnderLoad: under load, the resolver dies: the last
// good nodes keep serving with zero failed requests and /metrics says the
// nodes are stale; the resolver comes back with a record fewer: the
// gateway picks it up and the traffic follows, still without a failure.
func TestDNSResolverOutageUnderLoad(t *testing.T) {
	a := startOriginOn(t, "127.0.0.2", 0)
	b := startOriginOn(t, "127.0.0.3", a.Port)
	srv := dnsmasq.Start(t, dnsmasq.Config{Zone: "test", Hosts: "127.0.0.2 svc.test\n127.0.0.3 svc.test\n"})
	g := startGateway(t, "", "-dns-servers", srv.Addr)
	g.mustDo("PUT", "/apisix/admin/routes/1",
		fmt.Sprintf(`{"uri":"/s","upstream":{"discovery_type":"dns","service_name":"svc.test:%d"}}`, a.Port), 201)

	l := startLoad(g, "/s", 4)
	defer l.finish() // finish may be called more than once
	eventually(t, 5*time.Second, "both nodes serve", func() bool { return a.hits.Load() > 50 && b.hits.Load() > 50 })

	srv.Stop()
	series := fmt.Sprintf(`{upstream="/apisix/routes/1",type="dns",service="svc.test:%d"}`, a.Port)
	eventually(t, 5*time.Second, "/metrics reports stale nodes", func() bool {
		v := g.metric("gateway_discovery_stale" + series)
		return v == 1
	})
	ha, hb := a.hits.Load(), b.hits.Load()
	time.Sleep(3 * time.Second) // several TTLs and retries without a resolver
	if a.hits.Load()-ha < 50 || b.hits.Load()-hb < 50 {
		t.Fatalf("during the outage a node stopped serving: %d and %d requests", a.hits.Load()-ha, b.hits.Load()-hb)
	}
	if v := g.metric(`gateway_discovery_upstream_nodes{upstream="/apisix/routes/1"}`); v != 2 {
		t.Fatalf("nodes during the outage: %v", v)
	}
	if v := g.metric("gateway_discovery_lookup_failures_total" + series); v < 1 {
		t.Fatalf("lookup failures during the outage: %v", v)
	}
	// The control API says the same.
	code, body := g.controlGet("/v1/discovery", "")
	var list []struct {
		Upstream string   `json:"upstream"`
		Nodes    []string `json:"nodes"`
		Services []struct {
			Service     string `json:"service"`
			Stale       bool   `json:"stale"`
			Error       string `json:"error"`
			LastSuccess string `json:"last_success"`
		} `json:"services"`
	}
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 1 {
		t.Fatalf("/v1/discovery: %d %s (%v)", code, body, err)
	}
	if d := list[0]; d.Upstream != "/apisix/routes/1" || len(d.Nodes) != 2 || len(d.Services) != 1 ||
		!d.Services[0].Stale || d.Services[0].Error == "" || d.Services[0].LastSuccess == "" {
		t.Fatalf("/v1/discovery during the outage: %s", body)
	}

	// The resolver returns, without 127.0.0.3.
	srv.SetHosts("127.0.0.2 svc.test\n")
	srv.Restart(nil)
	took := eventually(t, 20*time.Second, "the restored resolver's records are followed", func() bool {
		v := g.metric(`gateway_discovery_upstream_nodes{upstream="/apisix/routes/1"}`)
		return v == 1
	})
	t.Logf("the restored resolver was picked up after %v", took.Round(10*time.Millisecond))
	hb = b.hits.Load()
	time.Sleep(300 * time.Millisecond)
	if n := b.hits.Load() - hb; n != 0 {
		t.Fatalf("the removed node still got %d requests", n)
	}
	l.finish()
	if l.fail.Load() != 0 {
		t.Fatalf("%d of %d requests failed through the outage and the change: %q", l.fail.Load(), l.ok.Load()+l.fail.Load(), l.failures)
	}
	t.Logf("%d requests, none failed", l.ok.Load())
	if v := g.metric("gateway_discovery_stale" + series); v != 0 {
		t.Fatalf("still stale after recovery")
	}
}

// TestDNSNXDOMAIN: a service whose name does not exist (authoritative
// NXDOMAIN) answers 503 with a body that says so; the name appearing
// brings traffic, and its removal empties the node set again.
func TestDNSNXDOMAIN(t *testing.T) {
	a := startOriginOn(t, "127.0.0.2", 0)
	srv := dnsmasq.Start(t, dnsmasq.Config{Zone: "test"})
	g := startGateway(t, "", "-dns-servers", srv.Addr)
	g.mustDo("PUT", "/apisix/admin/routes/1",
		fmt.Sprintf(`{"uri":"/g","upstream":{"discovery_type":"dns","service_name":"gone.test:%d"}}`, a.Port), 201)

	want := fmt.Sprintf(`{"error_msg":"503 Service Unavailable: no upstream node: dns service gone.test:%d has no instances (NXDOMAIN for gone.test)"}`, a.Port)
	code, body, hdr := g.get("/g")
	if code != 503 || strings.TrimSpace(body) != want {
		t.Fatalf("NXDOMAIN: %d %q, want 503 %q", code, body, want)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("Content-Type %q", ct)
	}

	srv.SetHosts("127.0.0.2 gone.test\n")
	eventually(t, 10*time.Second, "the new name serves", func() bool { code, _, _ := g.get("/g"); return code == 200 })
	srv.SetHosts("")
	eventually(t, 10*time.Second, "NXDOMAIN empties the node set", func() bool { code, _, _ := g.get("/g"); return code == 503 })
}
