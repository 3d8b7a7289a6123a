package core

import "maps"

// Update compiles a change confined to APISIX routes: cfg differs from
// prev.Config only in the routes named by ids (added, replaced or
// removed). Unchanged route entries, every standalone and service
// balancer, the certificates and the base route index are shared with
// prev; the new entries go to the route table's overlay. Its cost grows
// with the routes changed since the last full Compile, not with their
// total, which keeps a write visible within milliseconds at 100,000 routes.
//
// ids may name a route more than once. Inline upstreams of the changed
// routes are built (or released) here, and their node states and pools are
// counted as Compile counts them. Like Compile, Update must not run
// concurrently with Compile or itself.
func (rt *Runtime) Update(cfg *Config, prev *Snapshot, ids []string) *Snapshot {
	rt.dynMu.Lock()
	defer rt.dynMu.Unlock()
	s := &Snapshot{Config: cfg, Balancers: prev.Balancers, Certs: prev.Certs}
	copied := false
	own := func() {
		if !copied {
			s.Balancers, copied = maps.Clone(prev.Balancers), true
		}
	}
	used := newUsedKeys()
	used.ssls = cfg.SSLs
	balancer := func(key string, u *Upstream) *Balancer {
		if b, ok := s.Balancers[key]; ok && b.Conf == u && b.clientSSL == clientSSL(u, cfg) {
			return b
		}
		// Only a changed route's inline upstream gets here: the
		// upstreams and services are those prev was compiled from.
		own()
		b := rt.newBalancer(key, u, cfg.SSLs, used)
		s.Balancers[key] = b
		return b
	}
	changes := make(map[string]*RouteEntry, len(ids))
	var released []*Balancer
	var gone []string
	for _, id := range ids {
		key := Key(KindRoutes, id)
		if _, seen := changes[key]; seen {
			// A route named twice is compiled once: a second pass would
			// release its old inline upstream twice and count the new one
			// twice.
			continue
		}
		if old := prev.Routes.Entry(key); old != nil && prev.Balancers[key] != nil {
			// The route had an inline upstream, kept under its key.
			released = append(released, prev.Balancers[key])
			own()
			delete(s.Balancers, key)
		}
		r := cfg.Routes[id]
		if r == nil {
			changes[key] = nil
			gone = append(gone, key)
			continue
		}
		changes[key] = s.compileRoute(rt, cfg, key, r, balancer)
	}
	s.Routes = prev.Routes.With(changes)

	// Count what the new inline balancers hold, then drop what the
	// replaced ones held (in this order, so that a node kept by the new
	// balancer keeps its state and warm connections).
	rt.live.add(used)
	for _, b := range released {
		rt.release(b.Live())
	}
	rt.retireDynamics(s)
	rt.forgetStats(gone)
	rt.latest = s
	return s
}

// forgetStats drops the counters of deleted routes.
func (rt *Runtime) forgetStats(keys []string) {
	if len(keys) == 0 {
		return
	}
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, k := range keys {
		delete(rt.routeStats, k)
	}
}
