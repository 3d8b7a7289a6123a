package core

import (
	"reflect"
	"sort"
)

// Config is a parsed configuration: every valid stored object by id. A
// Config is immutable once published; the manager builds a new one per
// change set, sharing unchanged objects (pointer equality tells the
// compiler what it may reuse).
type Config struct {
	Routes    map[string]*Route
	Upstreams map[string]*Upstream
	Services  map[string]*Service
	SSLs      map[string]*SSL
	// Kong holds the Kong dialect's entities by id, and KongDerived the
	// routes and upstreams translated from them (ids "kong:..."). The
	// compiler serves both dialects from the one snapshot.
	Kong        KongEntities
	KongDerived *KongDerived
	// Revision is the store revision the config reflects.
	Revision int64
}

// NewConfig returns an empty config.
func NewConfig() *Config {
	return &Config{Routes: map[string]*Route{}, Upstreams: map[string]*Upstream{}, Services: map[string]*Service{},
		SSLs: map[string]*SSL{}, Kong: newKongEntities(), KongDerived: &KongDerived{}}
}

// upstream returns the upstream with the given id, from either dialect.
func (cfg *Config) upstream(id string) *Upstream {
	if u := cfg.Upstreams[id]; u != nil {
		return u
	}
	if cfg.KongDerived != nil {
		return cfg.KongDerived.Upstreams[id]
	}
	return nil
}

// route returns the route with the given id, from either dialect.
func (cfg *Config) route(id string) *Route {
	if r := cfg.Routes[id]; r != nil {
		return r
	}
	if cfg.KongDerived != nil {
		return cfg.KongDerived.Routes[id]
	}
	return nil
}

// Key returns the store key of a resource, e.g. "/apisix/routes/1".
func Key(kind Kind, id string) string { return "/apisix/" + string(kind) + "/" + id }

// Snapshot is everything the hot path reads, compiled from one Config and
// published whole through an atomic pointer. It is never mutated after
// publication.
type Snapshot struct {
	Config *Config
	// Routes indexes the compiled routes (and finds them by key).
	Routes *RouteTable
	// Balancers holds every compiled upstream by key (standalone and inline).
	Balancers map[string]*Balancer
	// Certs indexes the server SSL objects by SNI for the HTTPS listener.
	Certs *CertIndex
}

// Entry returns the compiled route with the given store key, or nil.
func (s *Snapshot) Entry(key string) *RouteEntry { return s.Routes.Entry(key) }

// Compile builds a snapshot of cfg. Balancers of prev whose upstream
// object is unchanged are reused as they are (their picker state
// continues); node state, pools and route counters come from rt and so
// survive any edit that keeps them. Compile must not be called
// concurrently with itself on the same Runtime.
//
// Upstreams whose nodes come from discovery or DNS names are compiled
// into roots that follow their services until a later Compile drops them
// (see discovery.go).
func (rt *Runtime) Compile(cfg *Config, prev *Snapshot) *Snapshot {
	rt.dynMu.Lock()
	defer rt.dynMu.Unlock()
	used := newUsedKeys()
	used.ssls = cfg.SSLs
	s := &Snapshot{
		Config:    cfg,
		Balancers: make(map[string]*Balancer, len(cfg.Upstreams)),
	}
	balancer := func(key string, u *Upstream) *Balancer {
		if b, ok := s.Balancers[key]; ok {
			return b
		}
		var b *Balancer
		if prev != nil {
			if old, ok := prev.Balancers[key]; ok && old.Conf == u && old.clientSSL == clientSSL(u, cfg) {
				b = old
				old.markUsed(used)
			}
		}
		if b == nil {
			b = rt.newBalancer(key, u, cfg.SSLs, used)
		}
		s.Balancers[key] = b
		return b
	}
	for id, u := range cfg.Upstreams {
		balancer(Key(KindUpstreams, id), u)
	}
	if cfg.KongDerived != nil {
		for id, u := range cfg.KongDerived.Upstreams {
			balancer(Key(KindUpstreams, id), u)
		}
	}
	for id, svc := range cfg.Services {
		if svc.Upstream != nil {
			balancer(Key(KindServices, id), svc.Upstream)
		}
	}

	ids := make([]string, 0, len(cfg.Routes))
	for id := range cfg.Routes {
		ids = append(ids, id)
	}
	if cfg.KongDerived != nil {
		for id := range cfg.KongDerived.Routes {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	entries := make([]*RouteEntry, 0, len(ids))
	for _, id := range ids {
		key := Key(KindRoutes, id)
		used.routes[key] = true
		entries = append(entries, s.compileRoute(rt, cfg, key, cfg.route(id), balancer))
	}
	s.Routes = NewRouteTable(entries)
	if prev != nil && prev.Certs != nil && sameMap(prev.Config.SSLs, cfg.SSLs) {
		s.Certs = prev.Certs
	} else {
		s.Certs = buildCertIndex(cfg.SSLs, baseServerTLS())
	}
	rt.retireDynamics(s)
	rt.retain(used)
	rt.live = used
	rt.latest = s
	return s
}

// compileRoute builds the entry of route r (stored under key).
func (s *Snapshot) compileRoute(rt *Runtime, cfg *Config, key string, r *Route, balancer func(string, *Upstream) *Balancer) *RouteEntry {
	e := &RouteEntry{Route: r, Key: key, Hosts: r.Hosts, Stats: rt.stats(key)}
	s.resolve(e, cfg, balancer)
	e.rewrite = compileRewrite(r.Rewrite)
	if len(r.Split) > 0 {
		s.resolveSplit(e, cfg, balancer)
	}
	return e
}

// clientSSL returns the SSL object u names with tls.client_cert_id, if any.
func clientSSL(u *Upstream, cfg *Config) *SSL {
	if u.TLS == nil || u.TLS.ClientCertID == "" {
		return nil
	}
	return cfg.SSLs[u.TLS.ClientCertID]
}

// sameMap reports whether a and b are the same map (not merely equal):
// the manager shares a kind's map between configs until that kind changes.
func sameMap[V any](a, b map[string]V) bool {
	return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// resolve finds the route's upstream (route upstream_id, route upstream,
// service upstream_id, service upstream — APISIX's order), its effective
// hosts and its timeout.
func (s *Snapshot) resolve(e *RouteEntry, cfg *Config, balancer func(string, *Upstream) *Balancer) {
	r := e.Route
	var svc *Service
	if r.ServiceID != "" {
		svc = cfg.Services[r.ServiceID]
		if svc == nil {
			e.FailStatus = 404
			return
		}
		if len(e.Hosts) == 0 {
			e.Hosts = svc.Hosts
		}
	}
	switch {
	case r.UpstreamID != "":
		if u := cfg.upstream(r.UpstreamID); u != nil {
			e.Upstream = balancer(Key(KindUpstreams, r.UpstreamID), u)
		}
	case r.Upstream != nil:
		e.Upstream = balancer(e.Key, r.Upstream)
	case svc != nil && svc.UpstreamID != "":
		if u := cfg.Upstreams[svc.UpstreamID]; u != nil {
			e.Upstream = balancer(Key(KindUpstreams, svc.UpstreamID), u)
		}
	case svc != nil && svc.Upstream != nil:
		e.Upstream = balancer(Key(KindServices, svc.ID), svc.Upstream)
	default:
		e.FailStatus = 503
		return
	}
	if e.Upstream == nil {
		// An upstream_id that names nothing: APISIX answers 502.
		e.FailStatus = 502
		return
	}
	e.Timeout = e.Upstream.timeout
	if r.Timeout != nil {
		e.Timeout = *r.Timeout
	}
}

// resolveSplit compiles the route's weighted upstreams. A share naming an
// upstream that does not exist answers 502, as a missing upstream_id does.
func (s *Snapshot) resolveSplit(e *RouteEntry, cfg *Config, balancer func(string, *Upstream) *Balancer) {
	r := e.Route
	choices := make([]splitChoice, len(r.Split))
	weights := make([]int, len(r.Split))
	for i, w := range r.Split {
		weights[i] = w.Weight
		if w.UpstreamID == "" {
			choices[i] = splitChoice{b: e.Upstream, timeout: e.Timeout, failStatus: e.FailStatus}
			continue
		}
		u := cfg.upstream(w.UpstreamID)
		if u == nil {
			choices[i] = splitChoice{failStatus: 502}
			continue
		}
		b := balancer(Key(KindUpstreams, w.UpstreamID), u)
		c := splitChoice{b: b, timeout: b.timeout}
		if r.Timeout != nil {
			c.timeout = *r.Timeout
		}
		choices[i] = c
	}
	e.split = newUpstreamSplit(choices, weights)
	if e.split == nil {
		// Every weight is 0: nothing may take the route's traffic.
		e.Upstream, e.FailStatus = nil, 503
	}
}

// markUsed records a reused balancer's node states and pools as in use
// (those of its current version, for a discovered upstream).
func (b *Balancer) markUsed(used *usedKeys) {
	for _, ref := range b.Live().refs {
		used.pools[ref.poolKey]++
		used.nodes[ref.stateKey]++
	}
}
