package core

import (
	"crypto/tls"
	"net"
	"sync"
	"time"

	"github.com/edgeway/gateway/lb"
	"github.com/edgeway/gateway/pool"
)

// Runtime holds the state that outlives snapshots: node states (in-flight
// counts, health), connection pools and per-route counters, each keyed so
// that an unrelated edit keeps them. Its methods lock and are called only
// while compiling, never per request.
type Runtime struct {
	Pools *pool.Registry
	// Health, when set, attaches passive health checks to every compiled
	// upstream that has checks (package health sets it). Set it before
	// the first Compile.
	Health HealthAttacher

	mu         sync.Mutex
	nodes      map[string]*lb.NodeState
	routeStats map[string]*RouteStats
}

// NewRuntime returns an empty runtime whose pools are swept every second.
func NewRuntime() *Runtime {
	return &Runtime{
		Pools:      pool.NewRegistry(time.Second),
		nodes:      map[string]*lb.NodeState{},
		routeStats: map[string]*RouteStats{},
	}
}

// Close closes every pool.
func (rt *Runtime) Close() { rt.Pools.Close() }

// usedKeys collects what a snapshot references, so the runtime can forget
// the rest once the snapshot is published.
type usedKeys struct {
	nodes  map[string]bool
	pools  map[string]bool
	routes map[string]bool
}

func newUsedKeys() *usedKeys {
	return &usedKeys{nodes: map[string]bool{}, pools: map[string]bool{}, routes: map[string]bool{}}
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

func (rt *Runtime) pool(scheme, addr string, kp KeepalivePool, used *usedKeys) *pool.Pool {
	key := poolKey(scheme, addr, kp)
	used.pools[key] = true
	opts := pool.Options{Addr: addr, MaxIdle: kp.Size, IdleTimeout: kp.IdleTimeout, MaxRequests: kp.Requests}
	if scheme == "https" {
		host, _, _ := net.SplitHostPort(addr)
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12} //nolint:gosec // APISIX does not verify upstreams unless tls.verify is set.
		if net.ParseIP(host) == nil {
			cfg.ServerName = host
		}
		opts.TLS = cfg
	}
	return rt.Pools.Get(key, opts)
}

// retain forgets what the newest snapshot no longer uses.
func (rt *Runtime) retain(used *usedKeys) {
	rt.mu.Lock()
	for k := range rt.nodes {
		if !used.nodes[k] {
			delete(rt.nodes, k)
		}
	}
	for k := range rt.routeStats {
		if !used.routes[k] {
			delete(rt.routeStats, k)
		}
	}
	rt.mu.Unlock()
	rt.Pools.Retain(used.pools)
}
