package core

import (
	"sort"
	"sync"
	"time"

	"github.com/edgeway/gateway/discovery"
	"github.com/edgeway/gateway/lb"
	"github.com/edgeway/gateway/pool"
)

// Runtime holds the state that outlives snapshots: node states (in-flight
// counts, health), connection pools and counters, per-route counters, each
// keyed so that an unrelated edit keeps them. Its methods lock and are
// called only while compiling (and by metrics), never per request.
type Runtime struct {
	Pools *pool.Registry
	// Health, when set, attaches passive health checks to every compiled
	// upstream that has checks (package health sets it). Set it before
	// the first Compile.
	Health HealthAttacher
	// Discovery holds the registries of upstreams with discovery_type;
	// its "dns" member also resolves static nodes given by host name (see
	// discovery.go). Set it before the first Compile; nil leaves host
	// names to be resolved when connections are dialed.
	Discovery discovery.Set
	// DiscoveryWait bounds how long AwaitDiscovery waits for the first
	// lookups of new discovered upstreams; 0 means 2 s.
	DiscoveryWait time.Duration
	// Logf logs node-set changes; nil discards.
	Logf func(format string, args ...any)

	// dynMu serialises Compile and the node-set swaps of discovered
	// upstreams; it guards dyns, live and the dynamic fields it names.
	dynMu sync.Mutex
	dyns  map[*dynamic]bool
	// live counts the references to node states and pools of the
	// published snapshot and of every version swapped in since.
	live *usedKeys
	// latest is the snapshot Compile returned last.
	latest *Snapshot

	mu         sync.Mutex
	nodes      map[string]*lb.NodeState
	meters     map[string]*NodeMeter
	routeStats map[string]*RouteStats
}

// NewRuntime returns an empty runtime whose pools are swept every second.
func NewRuntime() *Runtime {
	return &Runtime{
		Pools:      pool.NewRegistry(time.Second),
		nodes:      map[string]*lb.NodeState{},
		meters:     map[string]*NodeMeter{},
		routeStats: map[string]*RouteStats{},
	}
}

// Close closes every pool.
func (rt *Runtime) Close() { rt.Pools.Close() }

// usedKeys collects what a snapshot references, so the runtime can forget
// the rest once the snapshot is published. nodes and pools count the
// references (a node of a discovered upstream may come and go while the
// snapshot is served).
type usedKeys struct {
	nodes  map[string]int
	pools  map[string]int
	routes map[string]bool
	// ssls are the SSL objects of the configuration being compiled (for
	// upstreams' tls.client_cert_id).
	ssls map[string]*SSL
}

func newUsedKeys() *usedKeys {
	return &usedKeys{nodes: map[string]int{}, pools: map[string]int{}, routes: map[string]bool{}}
}

// add counts o's references in u.
func (u *usedKeys) add(o *usedKeys) {
	for k, n := range o.nodes {
		u.nodes[k] += n
	}
	for k, n := range o.pools {
		u.pools[k] += n
	}
}

func (rt *Runtime) nodeState(key string) *lb.NodeState {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s, ok := rt.nodes[key]
	if !ok {
		s = &lb.NodeState{}
		rt.nodes[key] = s
	}
	return s
}

// NodeState returns the state kept for a node key, if any (for tests and
// the control API).
func (rt *Runtime) NodeState(key string) (*lb.NodeState, bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s, ok := rt.nodes[key]
	return s, ok
}

func (rt *Runtime) stats(routeKey string) *RouteStats {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	s, ok := rt.routeStats[routeKey]
	if !ok {
		s = &RouteStats{}
		rt.routeStats[routeKey] = s
	}
	return s
}

// NodeMeter is the connection counters of one node of one upstream.
type NodeMeter struct {
	// Upstream is the upstream key, e.g. "/apisix/upstreams/1".
	Upstream string
	// Node is the node address, "host:port".
	Node  string
	Meter *pool.Meter
}

// meter returns the counters kept for a node key (the node state key:
// upstream, scheme and address), creating them.
func (rt *Runtime) meter(key, upstream, addr string) *pool.Meter {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	m, ok := rt.meters[key]
	if !ok {
		m = &NodeMeter{Upstream: upstream, Node: addr, Meter: &pool.Meter{}}
		rt.meters[key] = m
	}
	return m.Meter
}

// EachMeter calls f for the counters of every node of every upstream
// served (for metrics), sorted by upstream and node.
func (rt *Runtime) EachMeter(f func(m NodeMeter)) {
	rt.mu.Lock()
	list := make([]NodeMeter, 0, len(rt.meters))
	for _, m := range rt.meters {
		list = append(list, *m)
	}
	rt.mu.Unlock()
	sort.Slice(list, func(i, j int) bool {
		if list[i].Upstream != list[j].Upstream {
			return list[i].Upstream < list[j].Upstream
		}
		return list[i].Node < list[j].Node
	})
	for _, m := range list {
		f(m)
	}
}

// retain forgets what the newest snapshot no longer uses.
func (rt *Runtime) retain(used *usedKeys) {
	rt.mu.Lock()
	for k := range rt.nodes {
		if used.nodes[k] == 0 {
			delete(rt.nodes, k)
		}
	}
	for k := range rt.meters {
		if used.nodes[k] == 0 {
			delete(rt.meters, k)
		}
	}
	for k := range rt.routeStats {
		if !used.routes[k] {
			delete(rt.routeStats, k)
		}
	}
	rt.mu.Unlock()
	rt.Pools.RetainFunc(func(key string) bool { return used.pools[key] > 0 })
}

// release drops the references of a version that was swapped out, and
// forgets the node states, counters and pools no live version uses any
// more. Called with rt.dynMu held. Requests still running on the old
// version finish normally; their connections to a forgotten pool are
// closed when released.
func (rt *Runtime) release(old *Balancer) {
	var pools []string
	rt.mu.Lock()
	for _, ref := range old.refs {
		if rt.live.nodes[ref.stateKey]--; rt.live.nodes[ref.stateKey] <= 0 {
			delete(rt.live.nodes, ref.stateKey)
			delete(rt.nodes, ref.stateKey)
			delete(rt.meters, ref.stateKey)
		}
		if rt.live.pools[ref.poolKey]--; rt.live.pools[ref.poolKey] <= 0 {
			delete(rt.live.pools, ref.poolKey)
			pools = append(pools, ref.poolKey)
		}
	}
	rt.mu.Unlock()
	rt.Pools.Forget(pools...)
}

func (rt *Runtime) logf(format string, args ...any) {
	if rt.Logf != nil {
		rt.Logf(format, args...)
	}
}
