package core

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/gateway/discovery"
)

// fakeDiscovery is a Discoverer whose states the test sets.
type fakeDiscovery struct {
	mu      sync.Mutex
	states  map[string]discovery.State
	watches []*fakeWatch
}

type fakeWatch struct {
	d       *fakeDiscovery
	q       discovery.Query
	notify  func(discovery.State)
	stopped bool
}

func newFakeDiscovery() *fakeDiscovery {
	return &fakeDiscovery{states: map[string]discovery.State{}}
}

func (f *fakeDiscovery) Watch(q discovery.Query, notify func(discovery.State)) discovery.Watch {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := &fakeWatch{d: f, q: q, notify: notify}
	f.watches = append(f.watches, w)
	return w
}

func (w *fakeWatch) State() discovery.State {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	return w.d.states[w.q.Service]
}

func (w *fakeWatch) Stop() {
	w.d.mu.Lock()
	defer w.d.mu.Unlock()
	w.stopped = true
}

// set changes a service's state and notifies its live watches, as a
// discoverer's goroutine would.
func (f *fakeDiscovery) set(service string, st discovery.State) {
	f.mu.Lock()
	if st.Checked.IsZero() {
		st.Checked = time.Now()
	}
	f.states[service] = st
	var ws []*fakeWatch
	for _, w := range f.watches {
		if w.q.Service == service && !w.stopped {
			ws = append(ws, w)
		}
	}
	f.mu.Unlock()
	for _, w := range ws {
		w.notify(st)
	}
}

// live counts the watches not stopped.
func (f *fakeDiscovery) live() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, w := range f.watches {
		if !w.stopped {
			n++
		}
	}
	return n
}

func known(ports ...int) discovery.State {
	st := discovery.State{Known: true, Resolved: time.Now()}
	for _, p := range ports {
		st.Nodes = append(st.Nodes, discovery.Node{Host: "127.0.0.1", Port: p, Weight: 1})
	}
	return st
}

// discoveryGateway serves cfg with fake DNS discovery.
func discoveryGateway(t *testing.T, disc *fakeDiscovery, cfg *Config) *testGateway {
	t.Helper()
	return startGatewayWith(t, cfg, func(rt *Runtime) {
		rt.Discovery = discovery.Set{"dns": disc}
		rt.Logf = t.Logf
	})
}

func (g *testGateway) recompile(cfg *Config) {
	s := g.rt.Compile(cfg, g.proxy.Snapshot())
	g.proxy.Publish(s)
}

// spread sends n requests and counts the answers by body.
func spread(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		code, body, _ := get(t, url, nil)
		if code != 200 {
			body = strconv.Itoa(code)
		}
		got[body]++
	}
	return got
}

// TestDiscoveredNodeSetSwap: a node-set change swaps the upstream's
// version without a compile; nodes that stay keep their state and pool;
// a node that leaves loses both; an authoritative empty set answers 503
// with the reason; a failed lookup (nodes kept) changes nothing.
func TestDiscoveredNodeSetSwap(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	disc := newFakeDiscovery()
	disc.set("web.test", known(a.port))
	cfg := NewConfig()
	cfg.Upstreams["1"] = &Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass", DiscoveryType: "dns", ServiceName: "web.test"}
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, UpstreamID: "1"}
	g := discoveryGateway(t, disc, cfg)
	url := "http://" + g.addr + "/hello"
	pa, pb := strconv.Itoa(a.port), strconv.Itoa(b.port)

	if got := spread(t, url, 4); got[pa] != 4 {
		t.Fatalf("one node: %v", got)
	}
	snap := g.proxy.Snapshot()
	root := snap.Balancers["/apisix/upstreams/1"]
	v1 := root.Live()
	keyA := "/apisix/upstreams/1|http://127.0.0.1:" + pa
	stateA, _ := g.rt.NodeState(keyA)
	poolA := v1.refs[0].pool

	disc.set("web.test", known(a.port, b.port))
	if g.proxy.Snapshot() != snap || snap.Entry("/apisix/routes/1").Upstream != root {
		t.Fatal("a node-set change replaced the snapshot or the route's balancer")
	}
	v2 := root.Live()
	if v2 == v1 || len(v2.Nodes) != 2 {
		t.Fatalf("no new version: %d nodes", len(v2.Nodes))
	}
	if s, _ := g.rt.NodeState(keyA); s != stateA || v2.Nodes[0].State != stateA || v2.refs[0].pool != poolA {
		t.Fatal("the node that stayed lost its state or its pool")
	}
	if got := spread(t, url, 10); got[pa] != 5 || got[pb] != 5 {
		t.Fatalf("two nodes: %v", got)
	}

	// A failed lookup keeps the nodes: no swap.
	st := known(a.port, b.port)
	st.Err = errTest
	disc.set("web.test", st)
	if root.Live() != v2 {
		t.Fatal("a failed lookup swapped the node set")
	}

	disc.set("web.test", known(b.port))
	v3 := root.Live()
	if _, ok := g.rt.NodeState(keyA); ok || !poolA.Closed() {
		t.Fatal("the node that left kept its state or its pool")
	}
	if v3.refs[0].pool != v2.refs[1].pool {
		t.Fatal("the remaining node changed pools")
	}
	if got := spread(t, url, 4); got[pb] != 4 {
		t.Fatalf("after removal: %v", got)
	}

	disc.set("web.test", discovery.State{Known: true, Empty: "NXDOMAIN for web.test"})
	code, body, hdr := get(t, url, nil)
	if code != 503 || !strings.Contains(body, "dns service web.test has no instances (NXDOMAIN for web.test)") ||
		!strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("empty set: %d %q %v", code, body, hdr)
	}
	if d := snap.Discovered(); len(d) != 1 || d[0].Upstream != "/apisix/upstreams/1" || len(d[0].Nodes) != 0 ||
		d[0].Updates != 3 || d[0].Sources[0].Service != "web.test" {
		t.Fatalf("Discovered: %+v", d)
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

var errTest = testErr("server 127.0.0.1:53 answered SERVFAIL")

// TestDiscoveredAcrossCompiles: an unrelated edit keeps the root, its
// watch and its current nodes' state; an edit of the upstream makes a new
// root, stops the old watch, and the old root ignores late notifications.
func TestDiscoveredAcrossCompiles(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	disc := newFakeDiscovery()
	disc.set("web.test", known(a.port))
	cfg := NewConfig()
	u := &Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass", DiscoveryType: "dns", ServiceName: "web.test"}
	cfg.Upstreams["1"] = u
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, UpstreamID: "1"}
	g := discoveryGateway(t, disc, cfg)
	root := g.proxy.Snapshot().Balancers["/apisix/upstreams/1"]
	disc.set("web.test", known(a.port, b.port))
	keyB := "/apisix/upstreams/1|http://127.0.0.1:" + strconv.Itoa(b.port)
	stateB, _ := g.rt.NodeState(keyB)

	// Unrelated edit.
	cfg2 := &Config{Routes: cloneMap(cfg.Routes), Upstreams: cfg.Upstreams, Services: cfg.Services, SSLs: cfg.SSLs,
		Kong: cfg.Kong, KongDerived: cfg.KongDerived}
	cfg2.Routes["2"] = &Route{ID: "2", URIs: []string{"/other"}, Status: 1, UpstreamID: "1"}
	g.recompile(cfg2)
	if g.proxy.Snapshot().Balancers["/apisix/upstreams/1"] != root || disc.live() != 1 || len(disc.watches) != 1 {
		t.Fatal("an unrelated edit rebuilt the discovered upstream or its watch")
	}
	if s, ok := g.rt.NodeState(keyB); !ok || s != stateB {
		t.Fatal("an unrelated edit dropped the state of a discovered node")
	}
	if root.Live().refs[1].pool.Closed() {
		t.Fatal("an unrelated edit closed the pool of a discovered node")
	}

	// The upstream itself changes.
	u2 := *u
	u2.Retries = intPtr(0)
	cfg3 := &Config{Routes: cfg2.Routes, Upstreams: map[string]*Upstream{"1": &u2}, Services: cfg.Services, SSLs: cfg.SSLs,
		Kong: cfg.Kong, KongDerived: cfg.KongDerived}
	g.recompile(cfg3)
	root2 := g.proxy.Snapshot().Balancers["/apisix/upstreams/1"]
	if root2 == root || disc.live() != 1 || !disc.watches[0].stopped {
		t.Fatal("the edited upstream did not get a new root and watch")
	}
	if len(root2.Live().Nodes) != 2 {
		t.Fatalf("the new root did not start from the known nodes: %d", len(root2.Live().Nodes))
	}
	if s, _ := g.rt.NodeState(keyB); s != stateB {
		t.Fatal("the new root did not keep the node state")
	}
	old := root.Live()
	disc.watches[0].notify(known(b.port))
	if root.Live() != old {
		t.Fatal("a retired root followed a late notification")
	}
	if s, ok := g.rt.NodeState(keyB); !ok || s != stateB {
		t.Fatal("a late notification to a retired root touched the runtime")
	}
}

// TestHostnameNodes: static nodes given by name resolve through DNS
// discovery (addresses only, on the node's port); each address is a node
// with the node's weight, and pass_host=node sends the configured name.
func TestHostnameNodes(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	disc := newFakeDiscovery()
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: &Upstream{
		Type: "roundrobin", Scheme: "http", PassHost: "node",
		Nodes: []Node{{Host: "orders.internal", Port: a.port, Weight: 3}, {Host: "127.0.0.1", Port: b.port, Weight: 1}}}}
	g := discoveryGateway(t, disc, cfg)
	url := "http://" + g.addr + "/hello"
	if len(disc.watches) != 1 || !disc.watches[0].q.AddressOnly || disc.watches[0].q.DefaultPort != a.port ||
		disc.watches[0].q.Service != "orders.internal" {
		t.Fatalf("watch: %+v", disc.watches)
	}
	// Not resolved yet: the static node serves.
	if got := spread(t, url, 2); got[strconv.Itoa(b.port)] != 2 {
		t.Fatalf("before resolution: %v", got)
	}
	disc.set("orders.internal", known(a.port))
	got := spread(t, url, 8)
	if got[strconv.Itoa(a.port)] != 6 || got[strconv.Itoa(b.port)] != 2 {
		t.Fatalf("weights 3:1: %v", got)
	}
	if h := a.lastReq.Load().Host; h != "orders.internal:"+strconv.Itoa(a.port) {
		t.Fatalf("Host %q, want the configured name", h)
	}
	v := g.proxy.Snapshot().Entry("/apisix/routes/1").Upstream.Live()
	if v.Nodes[0].Weight != 3 || v.retries != 1 {
		t.Fatalf("weight %d retries %d", v.Nodes[0].Weight, v.retries)
	}
}

// TestAwaitDiscovery: publishing waits for the first lookup of a new
// discovered upstream, at most DiscoveryWait.
func TestAwaitDiscovery(t *testing.T) {
	disc := newFakeDiscovery()
	cfg := NewConfig()
	cfg.Upstreams["1"] = &Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass", DiscoveryType: "dns", ServiceName: "web.test"}
	rt := NewRuntime()
	defer rt.Close()
	rt.Discovery = discovery.Set{"dns": disc}
	rt.DiscoveryWait = 100 * time.Millisecond
	s := rt.Compile(cfg, nil)
	start := time.Now()
	rt.AwaitDiscovery(s)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("returned after %v without a lookup", d)
	}
	rt.DiscoveryWait = time.Hour
	go func() {
		time.Sleep(20 * time.Millisecond)
		disc.set("web.test", known(80))
	}()
	rt.AwaitDiscovery(s)
	if n := len(s.Balancers["/apisix/upstreams/1"].Live().Nodes); n != 1 {
		t.Fatalf("%d nodes after the wait", n)
	}
	// Nothing pending: no wait.
	rt.AwaitDiscovery(s)
}

// TestDiscoveryTypeNotConfigured: a type the runtime has no discoverer
// for answers 503 with the reason.
func TestDiscoveryTypeNotConfigured(t *testing.T) {
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: &Upstream{
		Type: "roundrobin", Scheme: "http", PassHost: "pass", DiscoveryType: "consul", ServiceName: "web"}}
	g := discoveryGateway(t, newFakeDiscovery(), cfg)
	code, body, _ := get(t, "http://"+g.addr+"/hello", nil)
	if code != 503 || !strings.Contains(body, "discovery type consul is not configured") {
		t.Fatalf("%d %q", code, body)
	}
}
