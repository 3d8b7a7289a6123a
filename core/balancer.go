package core

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/lb"
	"github.com/edgeway/gateway/pool"
)

// passHost modes.
const (
	passHostPass uint8 = iota
	passHostNode
	passHostRewrite
)

// Balancer is an upstream compiled for the hot path: its nodes, picker,
// retry policy and connection pools. It is built by the compiler and is
// immutable afterwards; the node state and pools it points to are shared
// between snapshots and are safe for concurrent use.
//
// The Balancer of an upstream whose nodes come from service discovery or
// DNS names is a root with a stable identity whose node set is replaced at
// run time: requests are served by its current version, Live() (see
// discovery.go).
type Balancer struct {
	// Key names the upstream's origin: "/apisix/upstreams/1", or the route
	// or service key for an inline upstream.
	Key  string
	Conf *Upstream

	// Nodes are the picker's nodes; refs[i] is the proxy's data for Nodes[i]
	// and nodeConf[i] its configuration.
	Nodes    []*lb.Node
	refs     []nodeRef
	nodeConf []Node
	picker   lb.Picker
	// hashKey extracts the chash key; nil for other types.
	hashKey *hashKey

	// retries is the number of retries after the first try.
	retries      int
	retryTimeout time.Duration
	// retryOn is the set of retry_on_statuses, bit s-500 for status s.
	retryOn      [2]uint64
	timeout      Timeout
	passHost     uint8
	upstreamHost []byte
	https        bool
	// clientSSL is the SSL object of tls.client_cert_id when compiled.
	clientSSL *SSL
	// hashCookie is set for Kong's consistent hashing on a cookie.
	hashCookie *hashCookie
	// health receives try outcomes when the upstream has checks (see
	// health.go); nil otherwise.
	health PassiveHealth
	// allDownHint is set while every node is down (fail-open, see pick).
	allDownHint atomic.Bool
	// wantRTT is set when the picker uses latencies (ewma); other pickers
	// are released without reading the clock.
	wantRTT bool
	// dyn is set on the root of a discovered upstream (see Live).
	dyn *dynamic
	// noNodes is the 503 body of a discovered upstream without nodes.
	noNodes []byte
}

type nodeRef struct {
	// pool is the node's pool; with https and pass_host=pass, the pool for
	// requests without a Host, and group holds the pools per SNI.
	pool     *pool.Pool
	group    *pool.Group
	meter    *pool.Meter
	poolKey  string
	stateKey string
	// hostHeader is what pass_host=node sends: the node host, with the
	// port unless it is the scheme's default.
	hostHeader []byte
}

// NewPickerFunc builds the picker of an upstream type over its nodes: all
// of them, or one priority group (buildBalancer adds the priority layer and
// the single-node rule around it).
type NewPickerFunc func(u *Upstream, nodes []*lb.Node) lb.Picker

// pickers maps an upstream type to its picker constructor. Other dialects'
// names for the same algorithms (Kong's round-robin, consistent-hashing,
// least-connections, latency) map onto these types when they are
// validated into the model.
var pickers = map[string]NewPickerFunc{
	"roundrobin": func(_ *Upstream, nodes []*lb.Node) lb.Picker { return lb.NewRoundRobin(nodes) },
	"chash":      func(_ *Upstream, nodes []*lb.Node) lb.Picker { return lb.NewCHash(nodes) },
	"least_conn": func(_ *Upstream, nodes []*lb.Node) lb.Picker { return lb.NewLeastConn(nodes) },
	"ewma":       func(_ *Upstream, nodes []*lb.Node) lb.Picker { return lb.NewEWMA(nodes) },
}

// RegisterPicker makes a balancer type available to the compiler. It must
// be called before any snapshot is compiled (from an init function).
func RegisterPicker(typ string, f NewPickerFunc) { pickers[typ] = f }

// buildBalancer compiles u over nodes (u.Nodes, or the node set of a
// discovered upstream). key identifies the upstream's origin; rt provides
// the node states and pools shared with earlier snapshots.
func buildBalancer(key string, u *Upstream, nodes []Node, rt *Runtime, used *usedKeys) *Balancer {
	b := &Balancer{Key: key, Conf: u, https: u.Scheme == "https"}
	b.timeout = DefaultTimeout
	if u.Timeout != nil {
		b.timeout = *u.Timeout
	}
	b.retryTimeout = u.RetryTimeout
	b.hashCookie = compileHashCookie(u)
	switch u.PassHost {
	case "node":
		b.passHost = passHostNode
	case "rewrite":
		b.passHost = passHostRewrite
		b.upstreamHost = []byte(u.UpstreamHost)
	}
	scheme := u.Scheme
	if scheme == "" {
		scheme = "http"
	}
	kp := DefaultKeepalivePool
	if u.KeepalivePool != nil {
		kp = *u.KeepalivePool
	}
	spec := upstreamConnSpec(u, scheme, kp, used.ssls)
	b.clientSSL = spec.clientSSL
	b.nodeConf = nodes
	b.Nodes = make([]*lb.Node, len(nodes))
	b.refs = make([]nodeRef, len(nodes))
	for i, n := range nodes {
		addr := net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
		stateKey := key + "|" + scheme + "://" + addr
		b.Nodes[i] = &lb.Node{Addr: addr, Weight: n.Weight, Priority: n.Priority, Index: i, State: rt.nodeState(stateKey)}
		used.nodes[stateKey]++
		b.refs[i] = nodeRef{hostHeader: nodeHostHeader(n, scheme), stateKey: stateKey}
		rt.attachPool(&b.refs[i], &spec, key, n, addr, used)
	}
	if u.Retries != nil {
		b.retries = *u.Retries
	} else {
		b.retries = max(len(nodes)-1, 0)
	}
	typ := u.Type
	if typ == "" {
		typ = "roundrobin"
	}
	newPicker, ok := pickers[typ]
	if !ok {
		// Validation refuses unsupported types; reaching here is a bug.
		panic("BUG: core: no picker registered for upstream type " + typ)
	}
	b.picker = buildPicker(u, b.Nodes, newPicker)
	b.wantRTT = typ == "ewma"
	if typ == "chash" {
		b.hashKey = compileHashKey(u.HashOn, u.Key)
	}
	for _, s := range u.RetryOnStatuses {
		if s >= 500 && s <= 599 {
			b.retryOn[(s-500)/64] |= 1 << ((s - 500) % 64)
		}
	}
	b.attachHealth(rt)
	return b
}

// buildPicker builds the picker of an upstream: the type's own picker,
// one per priority group when the nodes have several priorities, and for
// a single node APISIX's rule that it is always used (lb.Single).
func buildPicker(u *Upstream, nodes []*lb.Node, newPicker NewPickerFunc) lb.Picker {
	switch {
	case len(nodes) == 1:
		return lb.NewSingle(newPicker(u, nodes), nodes[0])
	case lb.Priorities(nodes) > 1:
		return lb.NewPriority(nodes, func(group []*lb.Node) lb.Picker { return newPicker(u, group) })
	}
	return newPicker(u, nodes)
}

// since returns the time elapsed since start when the picker uses it, and
// 0 otherwise (saving a clock read per try).
func (b *Balancer) since(start time.Time) time.Duration {
	if !b.wantRTT {
		return 0
	}
	return time.Since(start)
}

// retryStatus reports whether an upstream status is in retry_on_statuses.
func (b *Balancer) retryStatus(status int) bool {
	s := status - 500
	return s >= 0 && s < 100 && b.retryOn[s/64]&(1<<(s%64)) != 0
}

// nodeHostHeader returns the Host that pass_host=node sends for n: its
// host name when it was resolved from one.
func nodeHostHeader(n Node, scheme string) []byte {
	host := n.Host
	if n.Domain != "" {
		host = n.Domain
	}
	if containsColon(host) {
		host = "[" + host + "]"
	}
	if (scheme == "http" && n.Port == 80) || (scheme == "https" && n.Port == 443) {
		return []byte(host)
	}
	return []byte(host + ":" + strconv.Itoa(n.Port))
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}
