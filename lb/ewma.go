package lb

import (
	"math"
	"slices"
	"time"
)

// EWMA tuning (Finagle's defaults; APISIX's decay time is also 10 s).
const (
	// ewmaTau is the time constant of the latency average.
	ewmaTau = 10 * time.Second
	// ewmaFailure is the least latency a failed try counts as: a node
	// that refuses connections must not look fast.
	ewmaFailure = time.Second
	// ewmaPenalty is the cost of a node with no latency data yet and tries
	// in flight (Finagle's Penalty), so that a cold node is not flooded
	// before its first answer.
	ewmaPenalty = float64(math.MaxInt64 >> 16)
)

// epoch is the origin of the millisecond timestamps stored in NodeState.
var epoch = time.Now()

// sinceEpoch reads the monotonic clock.
func sinceEpoch() time.Duration { return time.Since(epoch) }

// EWMA is Finagle's peak EWMA with the power of two random choices (APISIX
// `ewma`, which implements a plain EWMA without the in-flight factor).
//
// Each node keeps an exponentially weighted moving average of its response
// latency with a 10 s time constant τ. Between samples the average, as
// Pick reads it, decays toward zero by e^(−Δ/τ), Δ being the time since the
// last sample, so an idle node is tried again after a while. A sample at or
// above that decayed average replaces it at once (the peak); a sample below
// it moves the stored average toward the sample by 1−e^(−Δ/τ). So a node
// that turns slow sheds its traffic with its first slow answer, one that
// turns fast under traffic wins it back over tens of seconds, and an idle
// one is probed and, if fast, at once judged by its new latency. A node's
// cost is average × (in_flight+1). Pick draws two distinct usable nodes at
// random and takes the cheaper one. Weights are ignored except that
// weight-0 nodes are never picked, as in APISIX.
//
// Finagle's read stores the decayed average (so its cost is in effect a
// decaying maximum of recent samples); here reading writes nothing, so a
// pick never writes another node's state, and comparing a sample with the
// decayed average gives the same peaks. The only shared writes are the
// chosen node's in-flight count and, in Done, its average. The average is one atomic word of NodeState (float32 latency and
// a millisecond timestamp, updated by compare-and-swap), so it is shared by
// every snapshot and every request of the process. A node new to the set
// starts at the mean of the others' averages; before any sample, a node
// with tries in flight costs a large penalty.
//
// EWMA is safe for concurrent use.
type EWMA struct {
	nodes []*Node
	clock func() time.Duration
}

// NewEWMA builds the picker over nodes.
func NewEWMA(nodes []*Node) *EWMA { return newEWMA(nodes, sinceEpoch) }

// newEWMA builds the picker with a clock (time since epoch) for tests.
func newEWMA(nodes []*Node, clock func() time.Duration) *EWMA {
	e := &EWMA{nodes: slices.Clone(nodes), clock: clock}
	now := millis(clock())
	sum, count := 0.0, 0
	for _, n := range e.nodes {
		if v := n.State.ewma.Load(); v != 0 {
			sum += decayedCost(v, now)
			count++
		}
	}
	if count > 0 {
		seed := packEWMA(sum/float64(count), now)
		for _, n := range e.nodes {
			n.State.ewma.CompareAndSwap(0, seed)
		}
	}
	return e
}

// Pick returns the cheaper of two random usable nodes, or nil.
func (e *EWMA) Pick(r *Request) *Node {
	n := len(e.nodes)
	if n < 2 {
		if n == 1 && usable(e.nodes[0], r) {
			return acquire(e.nodes[0])
		}
		return nil
	}
	now := e.now(r)
	// Fast path: two distinct random candidates.
	for range 4 {
		i := random(n)
		j := random(n - 1)
		if j >= i {
			j++
		}
		a, b := e.nodes[i], e.nodes[j]
		ua, ub := usable(a, r), usable(b, r)
		switch {
		case ua && ub:
			if cost(b, now) < cost(a, now) {
				a = b
			}
		case ub:
			a = b
		case !ua:
			continue
		}
		return acquire(a)
	}
	// Slow path: retries or many nodes down; the cheapest of all.
	var best *Node
	bestCost := 0.0
	start := random(n)
	for k := range n {
		node := e.nodes[(start+k)%n]
		if !usable(node, r) {
			continue
		}
		if c := cost(node, now); best == nil || c < bestCost {
			best, bestCost = node, c
		}
	}
	if best == nil {
		return nil
	}
	return acquire(best)
}

// now returns the time of the pick in milliseconds since epoch.
func (e *EWMA) now(r *Request) uint32 {
	if r.Now.IsZero() {
		return millis(e.clock())
	}
	return millis(r.Now.Sub(epoch))
}

// Done releases a pick and records its latency; a failed try counts as at
// least ewmaFailure, a success of unknown latency (rtt ≤ 0) as nothing.
func (e *EWMA) Done(n *Node, rtt time.Duration, failed bool) {
	release(n)
	if failed {
		rtt = max(rtt, ewmaFailure)
	} else if rtt <= 0 {
		return
	}
	n.State.observe(millis(e.clock()), float64(rtt))
}

// cost is the node's peak EWMA times its in-flight count plus one.
func cost(n *Node, now uint32) float64 {
	c := decayedCost(n.State.ewma.Load(), now)
	in := n.State.inflight.Load()
	if c == 0 && in > 0 {
		return ewmaPenalty + float64(in)
	}
	return c * float64(in+1)
}

// observe folds a latency sample (nanoseconds) into the node's average.
func (s *NodeState) observe(now uint32, rtt float64) {
	for {
		old := s.ewma.Load()
		avg := rtt
		if old != 0 {
			c, stamp := unpackEWMA(old)
			// A sample at or above the average as Pick sees it (decayed
			// toward zero) is a peak and replaces it; one below moves the
			// stored average toward it.
			if w := decay(now, stamp); rtt < c*w {
				avg = c*w + rtt*(1-w)
			}
		}
		if s.ewma.CompareAndSwap(old, packEWMA(avg, now)) {
			return
		}
	}
}

// EWMA returns the node's latency average as Pick sees it now.
func (s *NodeState) EWMA() time.Duration {
	return time.Duration(decayedCost(s.ewma.Load(), millis(sinceEpoch())))
}

// decayedCost returns a packed average decayed toward zero until now.
func decayedCost(v uint64, now uint32) float64 {
	if v == 0 {
		return 0
	}
	c, stamp := unpackEWMA(v)
	return c * decay(now, stamp)
}

// decay returns e^(−Δ/τ) for the time from stamp to now, in milliseconds.
// Δ is taken modulo 2^32 ms as a signed number: a node idle for more than
// 24 days would see a wrong Δ, but its average has long decayed to nothing.
// A negative Δ (a pick time older than the last sample) counts as zero.
func decay(now, stamp uint32) float64 {
	dt := int32(now - stamp)
	if dt <= 0 {
		return 1
	}
	// e^(−Δ/τ) as the product of four table entries, one per byte of Δ:
	// cheaper than math.Exp on the pick path.
	u := uint32(dt)
	return decayTable[0][u&0xff] * decayTable[1][u>>8&0xff] * decayTable[2][u>>16&0xff] * decayTable[3][u>>24]
}

// decayTable[k][b] is e^(−b·256^k ms / τ).
var decayTable = func() (t [4][256]float64) {
	for k := range t {
		for b := range t[k] {
			t[k][b] = math.Exp(-float64(b) * math.Pow(256, float64(k)) / float64(ewmaTau/time.Millisecond))
		}
	}
	return t
}()

func millis(d time.Duration) uint32 { return uint32(d / time.Millisecond) }

func packEWMA(avg float64, now uint32) uint64 {
	return uint64(math.Float32bits(float32(avg)))<<32 | uint64(now)
}

func unpackEWMA(v uint64) (avg float64, stamp uint32) {
	return float64(math.Float32frombits(uint32(v >> 32))), uint32(v)
}

var _ Picker = (*EWMA)(nil)
