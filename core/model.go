package core

import (
	"net/netip"
	"time"
)

// Kind names a resource collection. Its string is the path segment used by
// APISIX both in the Admin API (/apisix/admin/<kind>) and in the store key
// layout (/apisix/<kind>/<id>).
type Kind string

// The resource kinds this gateway serves.
const (
	KindRoutes    Kind = "routes"
	KindUpstreams Kind = "upstreams"
	KindServices  Kind = "services"
	KindSSLs      Kind = "ssls"
)

// Kinds lists every kind in the order the compiler needs them resolved.
var Kinds = []Kind{KindUpstreams, KindServices, KindSSLs, KindRoutes}

// Singular returns the word APISIX uses in messages ("route", "upstream", ...).
func (k Kind) Singular() string {
	switch k {
	case KindRoutes:
		return "route"
	case KindUpstreams:
		return "upstream"
	case KindServices:
		return "service"
	case KindSSLs:
		return "ssl"
	}
	return string(k)
}

// Route is a validated APISIX route. Values are immutable once parsed: the
// compiler and the hot path share them between goroutines without locks.
type Route struct {
	ID     string
	Name   string
	Desc   string
	Labels map[string]string

	// URIs holds `uri` or `uris`. A trailing `*` marks a prefix match.
	URIs []string
	// Hosts holds `host` or `hosts`, lower-cased. A leading `*` marks a
	// wildcard suffix match (`*.foo.com`).
	Hosts []string
	// RemoteAddrs holds `remote_addr` or `remote_addrs` as prefixes (a
	// single IP becomes a /32 or /128).
	RemoteAddrs []netip.Prefix
	// Methods is the allowed method set; zero means any method.
	Methods MethodSet
	// Vars is the compiled `vars` expression; nil means no condition.
	Vars *Expr
	// Priority orders routes that share the same uri (higher first). Default 0.
	Priority int
	// Status is 1 (enabled, the default) or 0 (never matches).
	Status int

	// Upstream is the inline upstream, if any.
	Upstream   *Upstream
	UpstreamID string
	ServiceID  string
	// Timeout overrides the upstream's timeout when set.
	Timeout *Timeout

	EnableWebsocket bool

	// Rewrite, when set, replaces the path of the upstream request target
	// (Kong's service.path and strip_path). nil forwards the client's
	// request target byte for byte.
	Rewrite *PathRewrite
	// Split, when not empty, divides the route's requests between several
	// upstreams by weight (APISIX's traffic-split plugin with one rule and
	// no match, as the ingress controller emits it). The route's own
	// upstream takes part through the item whose UpstreamID is empty.
	Split []WeightedUpstream
}

// PathRewrite describes how the upstream request path is built from the
// client's, following Kong's rules: Base (service.path) joined with the
// request path, from which the longest matching StripPrefixes entry was
// removed when Strip is set. The query string is kept.
type PathRewrite struct {
	// Base is the upstream base path; "/" when the service has none.
	Base string
	// Strip removes the matched prefix (Kong route.strip_path).
	Strip bool
	// StripPrefixes are the route's plain prefix paths (Kong route.paths).
	// Empty means "/" (the route matched on something other than a path).
	StripPrefixes []string
	// V1 selects Kong's deprecated path_handling "v1" join; the default is
	// "v0".
	V1 bool
}

// WeightedUpstream is one share of a Route.Split.
type WeightedUpstream struct {
	// UpstreamID names a stored upstream; "" means the route's own.
	UpstreamID string
	// Weight is ≥ 0; 0 takes no traffic.
	Weight int
}

// Service is a validated APISIX service: shared upstream and hosts for the
// routes that name it with `service_id`.
type Service struct {
	ID     string
	Name   string
	Desc   string
	Labels map[string]string

	Upstream   *Upstream
	UpstreamID string
	// Hosts are inherited by routes that declare no host of their own.
	Hosts []string

	EnableWebsocket bool
}

// Upstream is a validated APISIX upstream (standalone or inline).
type Upstream struct {
	ID     string
	Name   string
	Desc   string
	Labels map[string]string

	// Type is the balancer: roundrobin (default), chash, least_conn, ewma.
	Type string
	// Nodes in the order given (the object form is sorted by key so that the
	// order does not depend on JSON map iteration).
	Nodes []Node
	// DiscoveryType and ServiceName name a service whose nodes come from
	// a registry instead of Nodes (exactly one of the two is set);
	// DiscoveryArgs are the registry's arguments (discovery_args).
	DiscoveryType string
	ServiceName   string
	DiscoveryArgs map[string]string
	// Retries is nil when absent: the proxy then uses len(Nodes)-1.
	Retries *int
	// RetryTimeout bounds the time from the first try after which no new try
	// starts. Zero means no bound.
	RetryTimeout time.Duration
	// Timeout is nil when absent: 60 s for each phase, as nginx.
	Timeout *Timeout
	// Scheme is http (default) or https.
	Scheme string
	// PassHost is pass (default), node or rewrite.
	PassHost string
	// UpstreamHost is the Host sent when PassHost is rewrite.
	UpstreamHost string

	// HashOn and Key configure chash: HashOn is vars (default), header,
	// cookie, consumer or vars_combinations.
	HashOn string
	Key    string

	// KeepalivePool is nil when absent (APISIX defaults then apply).
	KeepalivePool *KeepalivePool
	// TLS holds client-certificate settings for HTTPS upstreams.
	TLS *UpstreamTLS
	// Checks holds health-check settings; nil means no checks.
	Checks *HealthChecks

	// RetryOnStatuses lists upstream statuses that are retried on another
	// node (idempotent requests only). Empty by default, as APISIX.
	RetryOnStatuses []int

	// HashCookie, when set, makes the proxy issue the hash cookie (named by
	// Key, with HashOn "cookie") to clients that do not send it: Kong's
	// consistent-hashing on a cookie. APISIX upstreams never set it.
	HashCookie *HashCookie
}

// HashCookie configures the cookie a Kong cookie-hashed upstream issues.
type HashCookie struct {
	// Path is the cookie's Path attribute; "/" by default.
	Path string
}

// Node is one upstream target.
type Node struct {
	// Host is an IP address or a hostname, without brackets for IPv6.
	Host string
	Port int
	// Weight 0 means present but never picked.
	Weight   int
	Priority int
	// Metadata is kept only to be echoed; the proxy does not read it.
	Metadata map[string]any
	// Domain is the host name Host was resolved from, for a node given by
	// name (APISIX's node.domain); "" otherwise. pass_host=node sends it,
	// and it is the SNI towards the node.
	Domain string
}

// Timeout holds per-try proxy timeouts (nginx proxy_connect_timeout,
// proxy_send_timeout, proxy_read_timeout).
type Timeout struct {
	Connect time.Duration
	Send    time.Duration
	Read    time.Duration
}

// DefaultTimeout is nginx's default for each phase.
var DefaultTimeout = Timeout{Connect: 60 * time.Second, Send: 60 * time.Second, Read: 60 * time.Second}

// KeepalivePool configures the idle-connection pool of an upstream.
type KeepalivePool struct {
	// Size caps idle connections (not concurrency). Default 320.
	Size int
	// IdleTimeout closes connections idle longer than this. 0 closes them as
	// soon as they are idle. Default 60 s.
	IdleTimeout time.Duration
	// Requests retires a connection after this many requests. Default 1000.
	Requests int
}

// DefaultKeepalivePool holds APISIX's defaults (nginx keepalive 320,
// keepalive_timeout 60s, keepalive_requests 1000).
var DefaultKeepalivePool = KeepalivePool{Size: 320, IdleTimeout: 60 * time.Second, Requests: 1000}

// UpstreamTLS configures TLS towards an upstream.
type UpstreamTLS struct {
	ClientCert   string
	ClientKey    string
	ClientCertID string
	Verify       bool
	CACerts      []string
}

// HealthChecks mirrors APISIX's `checks` object. Active is required when
// Passive is set in APISIX objects.
//
// Checks translated from Kong (kong.go) follow Kong's conventions, which
// APISIX's schema does not allow: Active may be nil while Passive is set
// (a circuit breaker that only active probes or an operator undo), an
// active Interval of 0 means targets in that state are not probed, and a
// threshold (Successes, HTTPFailures, TCPFailures, Timeouts) of 0 disables
// that counter.
type HealthChecks struct {
	Active  *ActiveCheck
	Passive *PassiveCheck
}

// ActiveCheck mirrors `checks.active`.
type ActiveCheck struct {
	Type                   string // http (default), https, tcp
	Timeout                time.Duration
	Concurrency            int
	HTTPPath               string
	Host                   string
	Port                   int
	HTTPSVerifyCertificate bool
	ReqHeaders             []string
	Healthy                ActiveHealthy
	Unhealthy              ActiveUnhealthy
}

// ActiveHealthy mirrors `checks.active.healthy`.
type ActiveHealthy struct {
	Interval     time.Duration
	HTTPStatuses []int
	Successes    int
}

// ActiveUnhealthy mirrors `checks.active.unhealthy`.
type ActiveUnhealthy struct {
	Interval     time.Duration
	HTTPStatuses []int
	HTTPFailures int
	TCPFailures  int
	Timeouts     int
}

// PassiveCheck mirrors `checks.passive`.
type PassiveCheck struct {
	Type      string
	Healthy   PassiveHealthy
	Unhealthy PassiveUnhealthy
}

// PassiveHealthy mirrors `checks.passive.healthy`.
type PassiveHealthy struct {
	HTTPStatuses []int
	Successes    int
}

// PassiveUnhealthy mirrors `checks.passive.unhealthy`.
type PassiveUnhealthy struct {
	HTTPStatuses []int
	HTTPFailures int
	TCPFailures  int
	Timeouts     int
}

// MethodSet is a bit set of HTTP methods; the zero value means "any".
type MethodSet uint16

// Method bits, in APISIX's schema order.
const (
	MethodGET MethodSet = 1 << iota
	MethodPOST
	MethodPUT
	MethodDELETE
	MethodPATCH
	MethodHEAD
	MethodOPTIONS
	MethodCONNECT
	MethodTRACE
	MethodPURGE
)

// MethodNames lists the methods APISIX accepts in `methods`, in bit order.
var MethodNames = [...]string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"}

// MethodBit returns the bit for a method name, or 0 for an unknown one.
func MethodBit(m []byte) MethodSet {
	switch string(m) {
	case "GET":
		return MethodGET
	case "POST":
		return MethodPOST
	case "PUT":
		return MethodPUT
	case "DELETE":
		return MethodDELETE
	case "PATCH":
		return MethodPATCH
	case "HEAD":
		return MethodHEAD
	case "OPTIONS":
		return MethodOPTIONS
	case "CONNECT":
		return MethodCONNECT
	case "TRACE":
		return MethodTRACE
	case "PURGE":
		return MethodPURGE
	}
	return 0
}

// Allows reports whether the set admits the request method.
func (s MethodSet) Allows(m []byte) bool {
	if s == 0 {
		return true
	}
	return s&MethodBit(m) != 0
}
