// Package discovery keeps the node sets of upstreams in step with service
// registries: an upstream names a service (APISIX's discovery_type and
// service_name) instead of listing nodes, and a Discoverer follows that
// service in the background and reports every change of its node set.
//
// The request path never calls into this package. Package core subscribes
// with Watch when it compiles an upstream that needs discovery, and swaps
// the upstream's node set when notified (see core's discovery.go).
//
// One registry is one Discoverer, in one file that registers its type name
// and service-name check in an init function (see Register). Shipped:
//
//   - dns (dns.go): SRV, then A/AAAA, re-resolved on the records' TTL.
//     Also resolves the host names of static nodes.
//
// Planned, each one file behind the same interface once a real server can
// run in the tests: consul (the catalog and health API with blocking
// queries), consul_kv, nacos, eureka and kubernetes (EndpointSlices). Until
// then Consul and Kubernetes are reachable through their DNS interfaces
// (docs/discovery.md).
package discovery

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Node is one instance of a discovered service.
type Node struct {
	// Host is an IP address (IPv6 without brackets).
	Host string
	Port int
	// Weight is ≥ 1.
	Weight int
	// Priority groups nodes: higher groups are used first (APISIX's
	// convention; DNS SRV priorities are negated to fit it).
	Priority int
}

// Query names what to follow.
type Query struct {
	// Service is the upstream's service_name (for dns "name" or
	// "name:port").
	Service string
	// Args are the upstream's discovery_args; nil when absent.
	Args map[string]string
	// DefaultPort is the port of nodes for which the registry gives none
	// (80 or 443 by the upstream's scheme).
	DefaultPort int
	// AddressOnly asks for the addresses of a host name only (A and AAAA
	// records, no SRV): the host name of a static node, whose port is
	// DefaultPort. Registries other than dns ignore it.
	AddressOnly bool
}

// State is what is known about one watched service.
//
// Nodes is the last good node set: a failed lookup (an unreachable,
// failing or refusing registry) keeps it; only a lookup that succeeds
// replaces it, and only an answer the registry gives with authority that
// the service has no instances empties it.
type State struct {
	// Nodes is the last good node set, sorted by priority (highest
	// first), host and port. Empty when the registry said there are no
	// instances, or when no lookup has succeeded yet (Known is false).
	Nodes []Node
	// Known is set once a lookup has succeeded.
	Known bool
	// Resolved is the time of the latest successful lookup.
	Resolved time.Time
	// Checked is the time of the latest lookup, successful or not; zero
	// before the first one ended.
	Checked time.Time
	// Err is the error of the latest lookup; nil when it succeeded. While
	// it is set, Nodes are the last good ones (stale).
	Err error
	// LastErr and LastErrAt are the most recent failure, kept after the
	// registry recovers (for the operator).
	LastErr   error
	LastErrAt time.Time
	// Failures counts failed lookups since the watch started.
	Failures uint64
	// Empty explains an empty node set that the registry gave (e.g. "NXDOMAIN"),
	// for the 503 the proxy answers; "" otherwise.
	Empty string
}

// Discoverer follows services in one registry. It is safe for concurrent
// use.
type Discoverer interface {
	// Watch starts following q (or joins a watch of the same query that
	// is already running) and returns at once; the first lookup runs in
	// the background.
	//
	// notify is called from a goroutine of the discoverer, never
	// concurrently with itself for one Watch, after the first lookup ends
	// and after every later lookup that changes Nodes, Known or Empty.
	// It may be called once more after Stop returns (a delivery that was
	// under way); the caller ignores it. notify must not call Stop.
	Watch(q Query, notify func(State)) Watch
}

// Watch is one subscription to a service.
type Watch interface {
	// State returns what is known now.
	State() State
	// Stop ends the subscription; it does not block. The lookups stop
	// once no subscription to the query is left.
	Stop()
}

// Set maps discovery types to the gateway's discoverers.
type Set map[string]Discoverer

// TypeInfo describes a registry type to the validation of upstreams.
type TypeInfo struct {
	// CheckService validates an upstream's service_name and
	// discovery_args for this registry (nil accepts anything). The
	// message of the error is shown to the Admin API user.
	CheckService func(service string, args map[string]string) error
}

var (
	typesMu sync.RWMutex
	types   = map[string]TypeInfo{}
)

// Register makes a discovery type known to validation. Each registry file
// calls it from an init function.
func Register(name string, info TypeInfo) {
	typesMu.Lock()
	defer typesMu.Unlock()
	types[name] = info
}

// Types returns the registered discovery types, sorted.
func Types() []string {
	typesMu.RLock()
	defer typesMu.RUnlock()
	return slices.Sorted(maps.Keys(types))
}

// planned are APISIX's discovery types this gateway does not have yet.
var planned = map[string]bool{"consul": true, "consul_kv": true, "nacos": true, "eureka": true, "kubernetes": true}

// CheckType validates an upstream's discovery_type: a registered type.
func CheckType(typ string) error {
	typesMu.RLock()
	_, ok := types[typ]
	typesMu.RUnlock()
	if ok {
		return nil
	}
	if planned[typ] {
		return fmt.Errorf("discovery type %q is not supported by this gateway yet; supported: %s", typ, joinNames(Types()))
	}
	return fmt.Errorf("unknown discovery type %q; supported: %s", typ, joinNames(Types()))
}

// CheckService validates an upstream's service_name and discovery_args
// for its (registered) discovery_type.
func CheckService(typ, service string, args map[string]string) error {
	typesMu.RLock()
	info := types[typ]
	typesMu.RUnlock()
	if info.CheckService != nil {
		return info.CheckService(service, args)
	}
	return nil
}

func joinNames(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

// sortNodes orders nodes by priority (highest first), host and port.
func sortNodes(nodes []Node) {
	slices.SortFunc(nodes, func(a, b Node) int {
		if a.Priority != b.Priority {
			return b.Priority - a.Priority
		}
		if a.Host != b.Host {
			if a.Host < b.Host {
				return -1
			}
			return 1
		}
		return a.Port - b.Port
	})
}

// EqualNodes reports whether two sorted node sets are the same.
func EqualNodes(a, b []Node) bool { return slices.Equal(a, b) }
