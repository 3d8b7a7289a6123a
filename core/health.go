package core

import "github.com/edgeway/gateway/lb"

// Hook points between the proxy and health checking (package health). core
// knows nothing of probes or state machines: health publishes node state by
// setting lb.NodeState down or up, pickers skip nodes that are down, and the
// proxy hands the outcome of every try to the upstream's PassiveHealth.

// PassiveHealth receives the outcome of tries on an upstream that has
// health checks. It is attached to the Balancer when the snapshot is
// compiled, so the request path finds it without a lookup.
//
// Both methods are called on the request path: implementations must be safe
// for concurrent use and must neither lock nor allocate.
type PassiveHealth interface {
	// TryFailed reports a try on node i (an index into Balancer.Nodes)
	// just before the request is retried on another try, as APISIX does
	// before every retry. failed means the try got no usable response:
	// status is then 504 for a timeout and 502 for any other connect, send
	// or read failure. Otherwise status is the upstream's response status.
	TryFailed(i int, status int, failed bool)
	// Final reports the status sent to the client (including statuses the
	// gateway generated, such as 502 and 504) against node i, the node of
	// the last try.
	Final(i int, status int)
}

// HealthAttacher connects the compiler to health checking. Runtime.Health
// holds it; the compiler calls Passive once for every balancer it builds
// whose upstream has checks.
type HealthAttacher interface {
	// Passive returns what receives the tries of b, or nil. b is complete
	// (Key, Conf, Nodes and node keys are set) but not yet published.
	Passive(b *Balancer) PassiveHealth
}

// attachHealth sets the balancer's passive health hook, when the runtime
// has health checking and the upstream has checks.
func (b *Balancer) attachHealth(rt *Runtime) {
	if rt.Health != nil && b.Conf.Checks != nil {
		b.health = rt.Health.Passive(b)
	}
}

// Health returns the balancer's passive health hook (nil without checks).
func (b *Balancer) Health() PassiveHealth { return b.health }

// NodeConfig returns the configuration node i was built from: for a node
// resolved from a host name (or discovered), its address in Host and the
// name in Domain. Use it rather than Conf.Nodes, which a discovered
// upstream does not have and whose indexes differ once names resolve.
func (b *Balancer) NodeConfig(i int) Node { return b.nodeConf[i] }

// NodeKey returns the key under which node i's runtime state is kept:
// "<upstream key>|<scheme>://<host:port>". It outlives snapshots.
func (b *Balancer) NodeKey(i int) string { return b.refs[i].stateKey }

// pick asks the picker for a node for the next try.
//
// Fail-open (APISIX's "all upstream nodes is unhealthy, use default"): when
// every node the picker could choose (weight > 0) is marked down by health
// checks, the request ignores health from then on (lb.Request.IgnoreDown)
// and is sent to the down nodes rather than refused. When some node is up,
// a nil pick stands (every up node was already tried).
//
// The balancer remembers that it found every node down (allDownHint), so
// that while this lasts each request asks the picker once, with health
// ignored: a failed pick first would move a round robin's cursor twice per
// request and skew the spread over the down nodes.
func (b *Balancer) pick(r *lb.Request) *lb.Node {
	if b.allDownHint.Load() && !r.IgnoreDown {
		// Slow path: every node was down at the last look.
		if b.allDown() {
			r.IgnoreDown = true
			return b.picker.Pick(r)
		}
		b.allDownHint.Store(false)
	}
	n := b.picker.Pick(r)
	if n != nil || r.IgnoreDown || !b.allDown() {
		return n
	}
	// Slow path: every pickable node is down.
	b.allDownHint.Store(true)
	r.IgnoreDown = true
	return b.picker.Pick(r)
}

// allDown reports whether every node of weight > 0 is marked down (and
// there is at least one such node).
func (b *Balancer) allDown() bool {
	found := false
	for _, n := range b.Nodes {
		if n.Weight <= 0 {
			continue
		}
		if !n.State.Down() {
			return false
		}
		found = true
	}
	return found
}

// reportRetry hands a failed try to passive health checks before the
// request is retried.
func (b *Balancer) reportRetry(n *lb.Node, out outcome) {
	if b.health != nil && n != nil {
		b.health.TryFailed(n.Index, out.status, !out.done)
	}
}

// reportFinal hands the status sent to the client to passive health
// checks, against n, the node of the last try (nil when none was tried).
func (b *Balancer) reportFinal(n *lb.Node, status int) {
	if b.health != nil && n != nil {
		b.health.Final(n.Index, status)
	}
}
