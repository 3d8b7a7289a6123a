// Package lb holds the load-balancing algorithms: one file per algorithm
// behind the small Picker interface.
//
// Pickers are built when a configuration snapshot is compiled and are
// immutable afterwards; Pick walks immutable slices and reads atomics, so it
// neither locks nor allocates. Runtime state that must outlive a snapshot
// (in-flight counts, health, latency) lives in NodeState, which the caller
// shares between snapshots by node address.
//
// The algorithms are RoundRobin (APISIX `roundrobin`), CHash (`chash`),
// LeastConn (`least_conn`) and EWMA (`ewma`); Priority layers node
// priorities over any of them and Single gives a one-node upstream
// APISIX's retry-the-same-node behaviour.
package lb

import (
	"math/bits"
	"math/rand/v2"
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
	// Index is the node's position in the upstream's node list; Tried and
	// the caller's per-node data are indexed by it. A picker may be built
	// over a subset of the list (one priority group), so Index need not
	// equal the node's position in the slice a picker was given.
	Index int
	// State is shared by every snapshot that has a node at this address.
	State *NodeState
}

// NodeState is the runtime state of one node. All fields are atomics.
//
// Sharding: the counters are sharded per node, never per upstream or
// process. Each NodeState is padded so that its counters sit on a cache line
// of their own; two requests contend on a line only when they use the same
// node, never because they use the same upstream. The 128-byte struct is
// allocated from Go's 128-byte size class, which keeps the middle 64 bytes
// on one line.
type NodeState struct {
	_ [64]byte

	// inflight counts tries picked and not yet released.
	inflight atomic.Int64
	// ewma packs the peak-EWMA latency (float32 nanoseconds, high half)
	// and the time of its last sample (uint32 milliseconds since the
	// process started, low half); zero means no sample yet. See ewma.go.
	ewma atomic.Uint64
	// down is set by health checks; pickers skip nodes that are down.
	down atomic.Bool

	_ [44]byte
}

// InFlight returns the number of tries currently using the node.
func (s *NodeState) InFlight() int64 { return s.inflight.Load() }

// Down reports whether health checks have taken the node out of rotation.
func (s *NodeState) Down() bool { return s.down.Load() }

// SetDown marks the node as out of (true) or back in (false) rotation.
func (s *NodeState) SetDown(down bool) { s.down.Store(down) }

// Request is what a picker may look at for one pick. The caller owns it
// (typically pooled per request) and resets it between requests; it is used
// by one goroutine at a time.
type Request struct {
	// Hash is the request's hash key for consistent hashing (see KeyHash).
	Hash uint64
	// Tried holds the nodes already tried for this request. The caller adds
	// each picked node; pickers skip its members.
	Tried Tried
	// IgnoreDown makes pickers treat nodes marked down as usable. The
	// proxy sets it when every node of the upstream is down, so that the
	// request is still sent to them (APISIX's fail-open); see usable.
	IgnoreDown bool
	// Now is the time of the pick (with its monotonic reading), for pickers
	// that need one; the caller reads the clock once per try and shares the
	// reading. Zero makes such pickers read the clock themselves.
	Now time.Time
}

// Reset clears the request for reuse.
func (r *Request) Reset() {
	r.Hash = 0
	r.IgnoreDown = false
	r.Now = time.Time{}
	r.Tried.Reset()
}

// Picker chooses a node for each try of a request.
//
// Pick returns a node not in r.Tried, or nil when none is available. Every
// non-nil Pick must be paired with exactly one Done for the same node when
// the try ends (response complete, error or timeout); Done releases the
// in-flight count and feeds latency-aware pickers: rtt is the time from
// sending the request to its response (0 when unknown), failed reports a
// try that got no usable response. The node must not be used after Done.
//
// Both methods must be safe for concurrent use and must not lock or
// allocate.
type Picker interface {
	Pick(r *Request) *Node
	Done(n *Node, rtt time.Duration, failed bool)
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

// random returns a uniformly distributed value in [0, n). It uses the
// runtime's per-thread generator (math/rand/v2's global source), so it
// neither locks nor allocates nor shares a cache line between threads.
func random(n int) int {
	hi, _ := bits.Mul64(rand.Uint64(), uint64(n))
	return int(hi)
}

// reduceWeights divides the positive weights by their GCD, multiplies them
// by unit and, when their sum is then above limit, scales them down
// proportionally, keeping every positive weight at least 1. Weights ≤ 0
// become 0; total is the sum of the result, 0 when no weight is positive.
// weights is not modified.
func reduceWeights(weights []int, unit, limit int) (out []int, total int) {
	g := 0
	for _, x := range weights {
		if x > 0 {
			g = gcd(g, x)
		}
	}
	out = make([]int, len(weights))
	if g == 0 {
		return out, 0
	}
	for i, x := range weights {
		if x > 0 {
			out[i] = x / g * unit
			total += out[i]
		}
	}
	if total > limit {
		sum := int64(total)
		total = 0
		for i, x := range out {
			if x > 0 {
				out[i] = max(1, int(int64(x)*int64(limit)/sum))
			}
			total += out[i]
		}
	}
	return out, total
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
