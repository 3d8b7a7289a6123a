package lb

import (
	"sync/atomic"
	"time"
)

// maxSequence bounds the precomputed round-robin cycle. Weights whose sum
// (after dividing by their gcd) exceeds it are scaled down proportionally,
// keeping every positive weight at least 1.
const maxSequence = 1 << 20

// RoundRobin is nginx's smooth weighted round robin made lock-free: the
// whole cycle (sum of weights / gcd picks) is computed once, when the
// snapshot is compiled, with nginx's algorithm, and Pick walks it with one
// atomic cursor. Each cycle therefore has exact proportions and nginx's
// interleaved order (weights 5:1:1 give a a b a c a a).
//
// Nodes of weight 0, nodes marked down and nodes already tried by the
// request are skipped. RoundRobin is safe for concurrent use. The cursor is
// the one counter shared by every request of the upstream (a strict
// rotation needs it); it sits on a cache line of its own.
type RoundRobin struct {
	nodes []*Node
	seq   []uint32

	_      [64]byte
	cursor atomic.Uint64
	_      [56]byte
}

// NewRoundRobin builds the picker over nodes.
func NewRoundRobin(nodes []*Node) *RoundRobin {
	return &RoundRobin{nodes: nodes, seq: smoothSequence(nodes)}
}

// Pick returns the next usable node of the cycle, or nil.
func (rr *RoundRobin) Pick(r *Request) *Node {
	n := uint64(len(rr.seq))
	if n == 0 {
		return nil
	}
	start := rr.cursor.Add(1) - 1
	// Fast path: the next node in the cycle is usable.
	node := rr.nodes[rr.seq[start%n]]
	if usable(node, r) {
		return acquire(node)
	}
	// Slow path (retries, nodes down): take the next turns of the cycle,
	// each a new turn of the shared cursor, so that the nodes left keep
	// their proportions. Walking on from start instead would give every
	// turn of a down node to the node after it in the cycle.
	for i := uint64(1); i < n; i++ {
		node = rr.nodes[rr.seq[(rr.cursor.Add(1)-1)%n]]
		if usable(node, r) {
			return acquire(node)
		}
	}
	// Slowest path: concurrent picks took turns in between, so the turns
	// above may have missed the usable nodes; a full cycle visits every
	// weighted node, so this finds one if there is one.
	for i := uint64(1); i < n; i++ {
		node = rr.nodes[rr.seq[(start+i)%n]]
		if usable(node, r) {
			return acquire(node)
		}
	}
	return nil
}

// Done releases a pick.
func (rr *RoundRobin) Done(n *Node, _ time.Duration, _ bool) { release(n) }

// smoothSequence computes one cycle of nginx's smooth weighted round robin
// over the nodes' weights.
func smoothSequence(nodes []*Node) []uint32 {
	weights := make([]int, len(nodes))
	for i, n := range nodes {
		weights[i] = n.Weight
	}
	return SmoothSchedule(weights, maxSequence)
}

// SmoothSchedule returns one cycle of nginx's smooth weighted round robin
// over weights: the index of the weight served at each turn, interleaved
// (5:1:1 gives 0 0 1 0 2 0 0) and with exact proportions. The weights are
// first divided by their GCD and, when their sum is still above limit,
// scaled down proportionally, keeping every positive weight at least 1. A weight ≤ 0 never appears; SmoothSchedule
// returns nil when no weight is positive. It is computed once per compiled
// configuration, never on the request path.
func SmoothSchedule(weights []int, limit int) []uint32 {
	w, total := reduceWeights(weights, 1, limit)
	if total == 0 {
		return nil
	}
	seq := make([]uint32, 0, total)
	if total*len(w) <= 1<<24 {
		// nginx's algorithm: every step adds each weight to its current
		// weight, picks the largest and subtracts the total.
		current := make([]int, len(w))
		for len(seq) < total {
			best := -1
			for i, x := range w {
				if x == 0 {
					continue
				}
				current[i] += x
				if best < 0 || current[i] > current[best] {
					best = i
				}
			}
			current[best] -= total
			seq = append(seq, uint32(best))
		}
		return seq
	}
	// Large upstreams: earliest-deadline-first with mid-interval start
	// times. Same proportions, also interleaved, O(total·log n) to build.
	h := make(edfHeap, 0, len(w))
	for i, x := range w {
		if x > 0 {
			h = append(h, edfItem{deadline: 0.5 / float64(x), step: 1 / float64(x), idx: uint32(i)})
		}
	}
	h.init()
	for len(seq) < total {
		top := &h[0]
		seq = append(seq, top.idx)
		top.deadline += top.step
		h.fix0()
	}
	return seq
}

type edfItem struct {
	deadline, step float64
	idx            uint32
}

// edfHeap is a min-heap by (deadline, idx).
type edfHeap []edfItem

func (h edfHeap) less(i, j int) bool {
	if h[i].deadline != h[j].deadline {
		return h[i].deadline < h[j].deadline
	}
	return h[i].idx < h[j].idx
}

func (h edfHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h edfHeap) fix0() { h.down(0) }

func (h edfHeap) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(h) {
			return
		}
		m := l
		if r := l + 1; r < len(h) && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

var _ Picker = (*RoundRobin)(nil)
