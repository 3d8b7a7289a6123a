package core

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	json "github.com/goccy/go-json"
)

// Kong entities are stored as Kong returns them (kong_entities.go) and
// translated here into the one model: every Kong route becomes a Route, and
// the service it names (with the upstream the service's host names, and
// that upstream's targets) becomes an Upstream. The snapshot compiler then
// treats them like any APISIX object. Translated ids start with "kong:",
// which no APISIX id can contain, so the two dialects never collide.

// KongService is a stored Kong service.
type KongService struct {
	ID                string         `json:"id"`
	Name              *string        `json:"name"`
	Protocol          string         `json:"protocol"`
	Host              string         `json:"host"`
	Port              int            `json:"port"`
	Path              *string        `json:"path"`
	Retries           int            `json:"retries"`
	ConnectTimeout    int            `json:"connect_timeout"`
	WriteTimeout      int            `json:"write_timeout"`
	ReadTimeout       int            `json:"read_timeout"`
	Enabled           bool           `json:"enabled"`
	TLSVerify         *bool          `json:"tls_verify"`
	TLSVerifyDepth    *int           `json:"tls_verify_depth"`
	CACertificates    []string       `json:"ca_certificates"`
	ClientCertificate map[string]any `json:"client_certificate"`
	CreatedAt         int64          `json:"created_at"`
}

// KongRef is a foreign key as Kong stores it.
type KongRef struct {
	ID string `json:"id"`
}

// KongRoute is a stored Kong route.
type KongRoute struct {
	ID            string              `json:"id"`
	Name          *string             `json:"name"`
	Protocols     []string            `json:"protocols"`
	Methods       []string            `json:"methods"`
	Hosts         []string            `json:"hosts"`
	Paths         []string            `json:"paths"`
	Headers       map[string][]string `json:"headers"`
	SNIs          []string            `json:"snis"`
	Sources       []any               `json:"sources"`
	Destinations  []any               `json:"destinations"`
	StripPath     bool                `json:"strip_path"`
	PreserveHost  bool                `json:"preserve_host"`
	PathHandling  string              `json:"path_handling"`
	RegexPriority int                 `json:"regex_priority"`
	Service       *KongRef            `json:"service"`
	CreatedAt     int64               `json:"created_at"`
}

// KongUpstream is a stored Kong upstream.
type KongUpstream struct {
	ID                     string           `json:"id"`
	Name                   string           `json:"name"`
	Algorithm              string           `json:"algorithm"`
	HashOn                 string           `json:"hash_on"`
	HashFallback           string           `json:"hash_fallback"`
	HashOnHeader           *string          `json:"hash_on_header"`
	HashFallbackHeader     *string          `json:"hash_fallback_header"`
	HashOnCookie           *string          `json:"hash_on_cookie"`
	HashOnCookiePath       string           `json:"hash_on_cookie_path"`
	HashOnQueryArg         *string          `json:"hash_on_query_arg"`
	HashFallbackQueryArg   *string          `json:"hash_fallback_query_arg"`
	HashOnURICapture       *string          `json:"hash_on_uri_capture"`
	HashFallbackURICapture *string          `json:"hash_fallback_uri_capture"`
	Slots                  int              `json:"slots"`
	Healthchecks           KongHealthchecks `json:"healthchecks"`
	HostHeader             *string          `json:"host_header"`
	ClientCertificate      map[string]any   `json:"client_certificate"`
	UseSRVName             bool             `json:"use_srv_name"`
	CreatedAt              int64            `json:"created_at"`
}

// KongHealthchecks is an upstream's `healthchecks`.
type KongHealthchecks struct {
	Active struct {
		Type                   string              `json:"type"`
		Timeout                float64             `json:"timeout"`
		Concurrency            int                 `json:"concurrency"`
		HTTPPath               string              `json:"http_path"`
		HTTPSSNI               *string             `json:"https_sni"`
		HTTPSVerifyCertificate bool                `json:"https_verify_certificate"`
		Headers                map[string][]string `json:"headers"`
		Healthy                struct {
			Interval     float64 `json:"interval"`
			HTTPStatuses []int   `json:"http_statuses"`
			Successes    int     `json:"successes"`
		} `json:"healthy"`
		Unhealthy struct {
			Interval     float64 `json:"interval"`
			HTTPStatuses []int   `json:"http_statuses"`
			TCPFailures  int     `json:"tcp_failures"`
			Timeouts     int     `json:"timeouts"`
			HTTPFailures int     `json:"http_failures"`
		} `json:"unhealthy"`
	} `json:"active"`
	Passive struct {
		Type    string `json:"type"`
		Healthy struct {
			HTTPStatuses []int `json:"http_statuses"`
			Successes    int   `json:"successes"`
		} `json:"healthy"`
		Unhealthy struct {
			HTTPStatuses []int `json:"http_statuses"`
			TCPFailures  int   `json:"tcp_failures"`
			Timeouts     int   `json:"timeouts"`
			HTTPFailures int   `json:"http_failures"`
		} `json:"unhealthy"`
	} `json:"passive"`
	Threshold float64 `json:"threshold"`
}

// KongTarget is a stored Kong target.
type KongTarget struct {
	ID        string  `json:"id"`
	Target    string  `json:"target"` // host:port, IPv6 bracketed
	Weight    int     `json:"weight"`
	Upstream  KongRef `json:"upstream"`
	CreatedAt float64 `json:"created_at"`
}

// KongEntities holds the Kong entities of a configuration by id.
type KongEntities struct {
	Services  map[string]*KongService
	Routes    map[string]*KongRoute
	Upstreams map[string]*KongUpstream
	Targets   map[string]*KongTarget
}

func newKongEntities() KongEntities {
	return KongEntities{
		Services:  map[string]*KongService{},
		Routes:    map[string]*KongRoute{},
		Upstreams: map[string]*KongUpstream{},
		Targets:   map[string]*KongTarget{},
	}
}

// ParseKong decodes a stored Kong entity of kind into its typed form (one
// of *KongService, *KongRoute, *KongUpstream, *KongTarget). It checks the
// schema and KongUnsupported again, so that a value written behind the
// Admin API's back (e.g. straight into etcd) cannot reach the translation
// unchecked.
func ParseKong(kind Kind, value []byte) (any, error) {
	v, verr := decodeJSON(value)
	if verr != nil {
		return nil, verr
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("a Kong entity must be a JSON object")
	}
	norm, kerr := NormalizeKong(kind, obj)
	if kerr == nil {
		kerr = KongUnsupported(kind, norm)
	}
	if kerr != nil {
		return nil, kerr
	}
	var out any
	switch kind {
	case KindKongServices:
		out = &KongService{}
	case KindKongRoutes:
		out = &KongRoute{}
	case KindKongUpstreams:
		out = &KongUpstream{}
	case KindKongTargets:
		out = &KongTarget{}
	default:
		return nil, fmt.Errorf("unknown Kong kind %s", kind)
	}
	if err := json.Unmarshal(value, out); err != nil {
		return nil, err
	}
	return out, nil
}

// PickerRegistered reports whether the compiler has a picker for an
// upstream type (roundrobin, chash, least_conn, ewma).
func PickerRegistered(typ string) bool {
	_, ok := pickers[typ]
	return ok
}

// kongAlgorithms maps Kong's algorithm names onto upstream types.
var kongAlgorithms = map[string]string{
	"round-robin":        "roundrobin",
	"consistent-hashing": "chash",
	"least-connections":  "least_conn",
	"latency":            "ewma",
}

// KongUnsupported reports, as a schema violation, what of a normalized
// Kong entity this gateway cannot honour: it refuses rather than ignores.
// It returns nil when everything can be served.
func KongUnsupported(kind Kind, obj map[string]any) *KongError {
	errs := map[string]any{}
	nonEmpty := func(name string) bool {
		switch x := obj[name].(type) {
		case nil:
			return false
		case []any:
			return len(x) > 0
		case map[string]any:
			return len(x) > 0
		}
		return true
	}
	switch kind {
	case KindKongServices:
		if p, _ := obj["protocol"].(string); p != "http" && p != "https" {
			errs["protocol"] = "protocol '" + p + "' is not supported by this gateway (http and https are)"
		}
		for _, f := range []string{"client_certificate", "tls_verify_depth", "ca_certificates"} {
			if nonEmpty(f) {
				errs[f] = "upstream TLS verification and client certificates are not supported by this gateway yet"
			}
		}
		if obj["tls_verify"] == true {
			errs["tls_verify"] = "upstream TLS verification is not supported by this gateway yet"
		}
	case KindKongRoutes:
		for _, p := range stringList(obj["protocols"]) {
			if p != "http" && p != "https" {
				errs["protocols"] = "protocol '" + p + "' is not supported by this gateway (http and https are)"
			}
		}
		if !containsStr(stringList(obj["protocols"]), "http") {
			errs["protocols"] = "routes must accept 'http': this gateway cannot restrict a route to https"
		}
		var pathErrs []any
		bad := false
		for _, p := range stringList(obj["paths"]) {
			if strings.HasPrefix(p, "~") {
				pathErrs, bad = append(pathErrs, "regex paths are not supported by this gateway"), true
			} else {
				pathErrs = append(pathErrs, nil)
			}
		}
		if bad {
			errs["paths"] = pathErrs
		}
		for _, h := range stringList(obj["hosts"]) {
			if strings.HasSuffix(h, ".*") {
				errs["hosts"] = "wildcard hosts ending in '.*' are not supported by this gateway"
			} else if _, _, hasPort, _, _ := splitKongHost(strings.Replace(h, "*", "w", 1)); hasPort {
				errs["hosts"] = "hosts with a port are not supported by this gateway"
			}
		}
		for _, m := range stringList(obj["methods"]) {
			if MethodBit([]byte(m)) == 0 {
				errs["methods"] = "method '" + m + "' is not supported by this gateway"
			}
		}
		for _, f := range []string{"headers", "snis", "sources", "destinations"} {
			if nonEmpty(f) {
				errs[f] = "matching on '" + f + "' is not supported by this gateway"
			}
		}
	case KindKongUpstreams:
		alg, _ := obj["algorithm"].(string)
		if typ := kongAlgorithms[alg]; !PickerRegistered(typ) {
			errs["algorithm"] = "algorithm '" + alg + "' is not available in this build (no '" + typ + "' balancer)"
		}
		if alg == "consistent-hashing" {
			on, _ := obj["hash_on"].(string)
			fb, _ := obj["hash_fallback"].(string)
			if on == "uri_capture" {
				errs["hash_on"] = "'uri_capture' needs regex paths, which this gateway does not support"
			}
			if fb != "none" && fb != "ip" {
				errs["hash_fallback"] = "'" + fb + "' cannot be expressed by this gateway's consistent hashing, which falls back to the client IP (use none or ip)"
			}
			if on == "query_arg" {
				if q, _ := obj["hash_on_query_arg"].(string); q != "" && !hashVarsPattern.re.MatchString("arg_"+q) {
					errs["hash_on_query_arg"] = "query argument names must match [0-9a-zA-Z_-]+"
				}
			}
			if h, _ := obj["hash_on_header"].(string); on == "header" && !hashHeaderPattern.re.MatchString(h) {
				errs["hash_on_header"] = "header names must match [a-zA-Z0-9-_]+"
			}
			if c, _ := obj["hash_on_cookie"].(string); on == "cookie" && !hashHeaderPattern.re.MatchString(c) {
				errs["hash_on_cookie"] = "cookie names must match [a-zA-Z0-9-_]+"
			}
		}
		if nonEmpty("client_certificate") {
			errs["client_certificate"] = "client certificates towards targets are not supported by this gateway yet"
		}
		if obj["use_srv_name"] == true {
			errs["use_srv_name"] = "SRV records are not supported by this gateway"
		}
		if hc, ok := obj["healthchecks"].(map[string]any); ok {
			hcErrs := map[string]any{}
			if t, _ := hc["threshold"].(json.Number); t != "" && t != "0" {
				hcErrs["threshold"] = "an upstream health threshold is not supported by this gateway (use 0)"
			}
			if a, ok := hc["active"].(map[string]any); ok {
				aErrs := map[string]any{}
				if t, _ := a["type"].(string); t == "grpc" || t == "grpcs" {
					aErrs["type"] = "gRPC health checks are not supported by this gateway"
				}
				if a["https_sni"] != nil {
					aErrs["https_sni"] = "a probe SNI is not supported by this gateway"
				}
				if len(aErrs) > 0 {
					hcErrs["active"] = aErrs
				}
			}
			if len(hcErrs) > 0 {
				errs["healthchecks"] = hcErrs
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return KongSchemaError(errs)
}

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
		names := make([]string, 0, len(a.Headers))
		for n := range a.Headers {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
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

// set stores a parsed entity under its kind's map.
func (k *KongEntities) set(id string, v any) {
	switch x := v.(type) {
	case *KongService:
		x.ID = id
		k.Services[id] = x
	case *KongRoute:
		x.ID = id
		k.Routes[id] = x
	case *KongUpstream:
		x.ID = id
		k.Upstreams[id] = x
	case *KongTarget:
		x.ID = id
		k.Targets[id] = x
	}
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
			for _, n := range b.Nodes {
				if n.State.Down() {
					down[n.Addr] = true
				}
			}
		}
	}
	return down
}
