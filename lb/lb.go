// Package lb holds the load-balancing algorithms: one file per algorithm
// behind the small Picker interface.
//
// Pickers are built when a configuration snapshot is compiled and are
// immutable afterwards; Pick walks immutable slices and reads atomics, so it
// neither locks nor allocates. Runtime state that must outlive a snapshot
// (in-flight counts, health, latency) lives in NodeState, which the caller
// shares between snapshots by node address.
package lb

import (
	"sync/atomic"
	"time"
)

// Node is one pickable upstream node as compiled into a snapshot.
type Node struct {
	// Addr is "host:port" (IPv6 bracketed). It identifies the node.
	Addr string
	// Weight is ≥ 0; a node of weight 0 is never picked by weighted pickers.
	Weight int
	// Priority groups nodes: higher groups are used first.
	Priority int
	// Index is the node's position in the slice given to the picker's
	// constructor; callers use it to find their own per-node data.
	Index int
	// State is shared by every snapshot that has a node at this address.
	State *NodeState
}

// NodeState is the runtime state of one node. All fields are atomics; a
// NodeState is padded to a cache line of its own so that counters of
// different nodes never share one.
type NodeState struct {
	_ [64]byte

	// inflight counts tries picked and not yet released.
	inflight atomic.Int64
	// down is set by health checks; pickers skip nodes that are down.
	down atomic.Bool

	_ [48]byte
}

// InFlight returns the number of tries currently using the node.
func (s *NodeState) InFlight() int64 { return s.inflight.Load() }

// Down reports whether health checks have taken the node out of rotation.
func (s *NodeState) Down() bool { return s.down.Load() }

// SetDown marks the node as out of (true) or back in (false) rotation.
func (s *NodeState) SetDown(down bool) { s.down.Store(down) }

// Request is what a picker may look at for one pick. The caller owns it
// (typically pooled per request) and resets it between requests.
type Request struct {
	// Hash is the request's hash key for consistent hashing.
	Hash uint64
	// Tried holds the nodes already tried for this request.
	Tried Tried
	// IgnoreDown makes pickers treat nodes marked down as usable. The
	// proxy sets it when every node of the upstream is down, so that the
	// request is still sent to them (APISIX's fail-open); see usable.
	IgnoreDown bool
}

// Reset clears the request for reuse.
func (r *Request) Reset() {
	r.Hash = 0
	r.Tried.Reset()
	r.IgnoreDown = false
}

// Picker chooses a node for each try of a request.
//
// Pick returns a node not in r.Tried, or nil when none is available. Every
// non-nil Pick must be paired with exactly one Done for the same node when
// the try ends (response complete, error or timeout); Done releases the
// in-flight count and feeds latency-aware pickers. Both must be safe for
// concurrent use and must not lock or allocate.
type Picker interface {
	Pick(r *Request) *Node
	Done(n *Node, r *Request, rtt time.Duration, failed bool)
}

// acquire marks a try as started on n.
func acquire(n *Node) *Node {
	n.State.inflight.Add(1)
	return n
}

// release marks a try on n as finished.
func release(n *Node) {
	if n.State.inflight.Add(-1) < 0 {
		panic("BUG: lb: in-flight count of " + n.Addr + " went negative")
	}
}

// usable reports whether n may be picked for r: weighted, up (or the
// request ignores health, r.IgnoreDown), not tried. Every picker filters
// through it, so that the proxy's fail-open retry works with any picker.
func usable(n *Node, r *Request) bool {
	return n.Weight > 0 && (r.IgnoreDown || !n.State.down.Load()) && !r.Tried.Has(n.Index)
}
