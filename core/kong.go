package core

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Kong entities are stored as Kong returns them (kong_entities.go) and
// translated here into the one model: every Kong route becomes a Route, and
// the service it names (with the upstream the service's host names, and
// that upstream's targets) becomes an Upstream. The snapshot compiler then
// treats them like any APISIX object. Translated ids start with "kong:",
// which no APISIX id can contain, so the two dialects never collide.

// KongDerived holds the model objects translated from the Kong entities of
// a Config. It is immutable once built.
type KongDerived struct {
	Routes    map[string]*Route
	Upstreams map[string]*Upstream
	// memo lets the next translation reuse an Upstream whose inputs are the
	// same objects, so that its balancer survives unrelated edits.
	memo map[string]*kongUpMemo
}

type kongUpMemo struct {
	svc     *KongService
	up      *KongUpstream
	targets []*KongTarget
	result  *Upstream
}

// TranslateKong translates the Kong entities into routes and upstreams.
// prev (may be nil) is the previous translation; its upstreams are reused
// when their inputs did not change. Problems (an entity that cannot be
// served) are returned; the rest is still translated.
func TranslateKong(k *KongEntities, prev *KongDerived) (*KongDerived, []error) {
	d := &KongDerived{
		Routes:    make(map[string]*Route, len(k.Routes)),
		Upstreams: map[string]*Upstream{},
		memo:      map[string]*kongUpMemo{},
	}
	if len(k.Routes) == 0 {
		return d, nil
	}
	byName := make(map[string]*KongUpstream, len(k.Upstreams))
	for _, u := range k.Upstreams {
		byName[u.Name] = u
	}
	targets := map[string][]*KongTarget{}
	for _, t := range k.Targets {
		targets[t.Upstream.ID] = append(targets[t.Upstream.ID], t)
	}
	for _, l := range targets {
		sort.Slice(l, func(i, j int) bool { return l[i].Target < l[j].Target })
	}

	var problems []error
	ids := make([]string, 0, len(k.Routes))
	for id := range k.Routes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		kr := k.Routes[id]
		r := translateKongRoute(kr)
		d.Routes[r.ID] = r
		if kr.Service == nil {
			continue // no service: the route answers 503
		}
		svc := k.Services[kr.Service.ID]
		if svc == nil {
			problems = append(problems, fmt.Errorf("kong route %s: service %s does not exist", kr.ID, kr.Service.ID))
			r.UpstreamID = "kong:missing:" + kr.Service.ID
			continue
		}
		if !svc.Enabled {
			r.Status = 0 // Kong does not route to a disabled service
		}
		if svc.Path != nil && *svc.Path != "" {
			r.Rewrite.Base = *svc.Path
		}
		uid := "kong:" + svc.ID
		if kr.PreserveHost {
			uid += ":preserve_host"
		}
		r.UpstreamID = uid
		if _, done := d.Upstreams[uid]; done {
			continue
		}
		up := byName[svc.Host]
		var ts []*KongTarget
		if up != nil {
			ts = targets[up.ID]
		}
		if prev != nil {
			if m := prev.memo[uid]; m != nil && m.svc == svc && m.up == up && slices.Equal(m.targets, ts) {
				d.Upstreams[uid], d.memo[uid] = m.result, m
				continue
			}
		}
		u, err := translateKongService(uid, svc, up, ts, kr.PreserveHost)
		if err != nil {
			problems = append(problems, fmt.Errorf("kong route %s: %w", kr.ID, err))
			continue
		}
		d.Upstreams[uid] = u
		d.memo[uid] = &kongUpMemo{svc: svc, up: up, targets: ts, result: u}
	}
	return d, problems
}

// translateKongRoute builds the route's matching part and rewrite.
func translateKongRoute(kr *KongRoute) *Route {
	r := &Route{ID: "kong:" + kr.ID, Status: 1}
	if kr.Name != nil {
		r.Name = *kr.Name
	}
	for _, p := range kr.Paths {
		r.URIs = append(r.URIs, p+"*")
	}
	if len(r.URIs) == 0 {
		r.URIs = []string{"/*"}
	}
	for _, h := range kr.Hosts {
		r.Hosts = append(r.Hosts, strings.ToLower(h))
	}
	for _, m := range kr.Methods {
		r.Methods |= MethodBit([]byte(m))
	}
	if r.Methods != 0 {
		// Kong tries the route matching more categories first.
		r.Priority = 1
	}
	r.Rewrite = &PathRewrite{Base: "/", Strip: kr.StripPath, StripPrefixes: kr.Paths, V1: kr.PathHandling == "v1"}
	return r
}

// translateKongService builds the upstream a service proxies to: the Kong
// upstream its host names (balanced over its targets), or its host and
// port as a single node.
func translateKongService(id string, svc *KongService, up *KongUpstream, targets []*KongTarget, preserveHost bool) (*Upstream, error) {
	retries := svc.Retries
	u := &Upstream{
		ID:       id,
		Type:     "roundrobin",
		Scheme:   svc.Protocol,
		Retries:  &retries,
		PassHost: "node",
		HashOn:   "vars",
		Timeout: &Timeout{
			Connect: time.Duration(svc.ConnectTimeout) * time.Millisecond,
			Send:    time.Duration(svc.WriteTimeout) * time.Millisecond,
			Read:    time.Duration(svc.ReadTimeout) * time.Millisecond,
		},
	}
	if svc.Name != nil {
		u.Name = *svc.Name
	}
	if preserveHost {
		u.PassHost = "pass"
	}
	if up == nil {
		u.Nodes = []Node{{Host: svc.Host, Port: svc.Port, Weight: 100}}
		return u, nil
	}
	if up.HostHeader != nil && !preserveHost {
		u.PassHost, u.UpstreamHost = "rewrite", *up.HostHeader
	}
	for _, t := range targets {
		host, port, _, _, ok := splitKongHost(t.Target)
		if !ok {
			return nil, fmt.Errorf("target %s: invalid address %q", t.ID, t.Target)
		}
		u.Nodes = append(u.Nodes, Node{Host: host, Port: port, Weight: t.Weight})
	}
	if err := kongBalancing(u, up); err != nil {
		return nil, err
	}
	u.Checks = kongChecks(&up.Healthchecks)
	return u, nil
}

// kongBalancing maps the upstream's algorithm and hashing onto u.
func kongBalancing(u *Upstream, up *KongUpstream) error {
	typ, ok := kongAlgorithms[up.Algorithm]
	if !ok || !PickerRegistered(typ) {
		return fmt.Errorf("upstream %s: algorithm %q is not available in this build", up.Name, up.Algorithm)
	}
	u.Type = typ
	if typ != "chash" {
		return nil
	}
	var err error
	u.HashOn, u.Key, u.HashCookie, err = kongHashKey(up)
	return err
}

// kongHashKey maps Kong's hash_on onto chash's hash_on and key. Kong's
// fallback is not expressed: an empty key falls back to the client
// address (APISIX's rule), which is Kong's hash_fallback "ip"; validation
// refuses the other fallbacks.
func kongHashKey(up *KongUpstream) (hashOn, key string, cookie *HashCookie, err error) {
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	switch up.HashOn {
	case "none":
		// Kong hashes the empty string: every request lands on one target.
		return "vars_combinations", "kong-hash-none", nil, nil
	case "consumer":
		return "consumer", "", nil, nil
	case "ip":
		return "vars", "remote_addr", nil, nil
	case "path":
		return "vars", "uri", nil, nil
	case "query_arg":
		return "vars", "arg_" + str(up.HashOnQueryArg), nil, nil
	case "header":
		return "header", str(up.HashOnHeader), nil, nil
	case "cookie":
		return "cookie", str(up.HashOnCookie), &HashCookie{Path: up.HashOnCookiePath}, nil
	}
	return "", "", nil, fmt.Errorf("upstream %s: hash_on %q is not supported", up.Name, up.HashOn)
}

// kongChecks maps Kong's healthchecks onto the model. Kong's checks are
// off unless an active interval or a passive failure counter is non-zero;
// then the model carries Kong's values as they are, zeros included (an
// interval of 0 means "do not probe targets in that state", a threshold of
// 0 disables that counter). Passive checks may come without active ones.
func kongChecks(hc *KongHealthchecks) *HealthChecks {
	a, p := &hc.Active, &hc.Passive
	activeOn := a.Healthy.Interval > 0 || a.Unhealthy.Interval > 0
	passiveOn := p.Unhealthy.TCPFailures > 0 || p.Unhealthy.Timeouts > 0 || p.Unhealthy.HTTPFailures > 0
	if !activeOn && !passiveOn {
		return nil
	}
	secs := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	out := &HealthChecks{}
	if activeOn {
		ac := &ActiveCheck{
			Type:                   a.Type,
			Timeout:                secs(a.Timeout),
			Concurrency:            a.Concurrency,
			HTTPPath:               a.HTTPPath,
			HTTPSVerifyCertificate: a.HTTPSVerifyCertificate,
			Healthy: ActiveHealthy{
				Interval: secs(a.Healthy.Interval), HTTPStatuses: a.Healthy.HTTPStatuses, Successes: a.Healthy.Successes,
			},
			Unhealthy: ActiveUnhealthy{
				Interval: secs(a.Unhealthy.Interval), HTTPStatuses: a.Unhealthy.HTTPStatuses,
				HTTPFailures: a.Unhealthy.HTTPFailures, TCPFailures: a.Unhealthy.TCPFailures, Timeouts: a.Unhealthy.Timeouts,
			},
		}
		for _, n := range slices.Sorted(maps.Keys(a.Headers)) {
			for _, v := range a.Headers[n] {
				ac.ReqHeaders = append(ac.ReqHeaders, n+": "+v)
			}
		}
		out.Active = ac
	}
	if passiveOn {
		out.Passive = &PassiveCheck{
			Type:    p.Type,
			Healthy: PassiveHealthy{HTTPStatuses: p.Healthy.HTTPStatuses, Successes: p.Healthy.Successes},
			Unhealthy: PassiveUnhealthy{
				HTTPStatuses: p.Unhealthy.HTTPStatuses, HTTPFailures: p.Unhealthy.HTTPFailures,
				TCPFailures: p.Unhealthy.TCPFailures, Timeouts: p.Unhealthy.Timeouts,
			},
		}
	}
	return out
}

// KongTargetAddr splits a stored target "host:port" for display.
func KongTargetAddr(t string) (host string, port int) {
	h, p, _, _, _ := splitKongHost(t)
	return h, p
}

// KongTargetsDown reports, for the Kong upstream called name, the target
// addresses ("host:port", IPv6 bracketed) that health checks have marked
// down in any balancer serving it (one per service naming the upstream).
func (s *Snapshot) KongTargetsDown(name string) map[string]bool {
	down := map[string]bool{}
	cfg := s.Config
	for id, svc := range cfg.Kong.Services {
		if svc.Host != name {
			continue
		}
		for _, suffix := range []string{"", ":preserve_host"} {
			b := s.Balancers[Key(KindUpstreams, "kong:"+id+suffix)]
			if b == nil {
				continue
			}
			for _, n := range b.Live().Nodes {
				if n.State.Down() {
					down[n.Addr] = true
				}
			}
		}
	}
	return down
}
