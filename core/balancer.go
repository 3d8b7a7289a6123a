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
type Balancer struct {
	// Key names the upstream's origin: "/apisix/upstreams/1", or the route
	// or service key for an inline upstream.
	Key  string
	Conf *Upstream

	// Nodes are the picker's nodes; refs[i] is the proxy's data for Nodes[i].
	Nodes  []*lb.Node
	refs   []nodeRef
	picker lb.Picker

	// retries is the number of retries after the first try.
	retries      int
	retryTimeout time.Duration
	timeout      Timeout
	passHost     uint8
	upstreamHost []byte
	https        bool
	// health receives try outcomes when the upstream has checks (see
	// health.go); nil otherwise.
	health PassiveHealth
	// allDownHint is set while every node is down (fail-open, see pick).
	allDownHint atomic.Bool
}

type nodeRef struct {
	pool     *pool.Pool
	poolKey  string
	stateKey string
	// hostHeader is what pass_host=node sends: the node host, with the
	// port unless it is the scheme's default.
	hostHeader []byte
}

// NewPickerFunc builds the picker of an upstream type over its nodes.
type NewPickerFunc func(u *Upstream, nodes []*lb.Node) lb.Picker

// pickers maps an upstream type to its picker constructor.
var pickers = map[string]NewPickerFunc{
	"roundrobin": func(_ *Upstream, nodes []*lb.Node) lb.Picker { return lb.NewRoundRobin(nodes) },
}

// RegisterPicker makes a balancer type available to the compiler. It must
// be called before any snapshot is compiled (from an init function).
func RegisterPicker(typ string, f NewPickerFunc) { pickers[typ] = f }

// buildBalancer compiles u. key identifies the upstream's origin; rt
// provides the node states and pools shared with earlier snapshots.
func buildBalancer(key string, u *Upstream, rt *Runtime, used *usedKeys) *Balancer {
	b := &Balancer{Key: key, Conf: u, https: u.Scheme == "https"}
	b.timeout = DefaultTimeout
	if u.Timeout != nil {
		b.timeout = *u.Timeout
	}
	b.retryTimeout = u.RetryTimeout
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
	b.Nodes = make([]*lb.Node, len(u.Nodes))
	b.refs = make([]nodeRef, len(u.Nodes))
	for i, n := range u.Nodes {
		addr := net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
		stateKey := key + "|" + scheme + "://" + addr
		b.Nodes[i] = &lb.Node{Addr: addr, Weight: n.Weight, Priority: n.Priority, Index: i, State: rt.nodeState(stateKey)}
		used.nodes[stateKey] = true
		b.refs[i] = nodeRef{hostHeader: nodeHostHeader(n, scheme), stateKey: stateKey, poolKey: poolKey(scheme, addr, kp)}
		b.refs[i].pool = rt.pool(scheme, addr, kp, used)
	}
	if u.Retries != nil {
		b.retries = *u.Retries
	} else {
		b.retries = max(len(u.Nodes)-1, 0)
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
	b.picker = newPicker(u, b.Nodes)
	b.attachHealth(rt)
	return b
}

// nodeHostHeader returns the Host that pass_host=node sends for n.
func nodeHostHeader(n Node, scheme string) []byte {
	host := n.Host
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

// poolKey identifies connections that may be shared: same scheme, address,
// TLS identity and pool settings.
func poolKey(scheme, addr string, kp KeepalivePool) string {
	return scheme + "://" + addr + "|" + strconv.Itoa(kp.Size) + "|" +
		strconv.FormatInt(int64(kp.IdleTimeout), 10) + "|" + strconv.Itoa(kp.Requests)
}
