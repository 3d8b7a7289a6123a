package lb

import (
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"time"
)

// exactLimit is the largest node count LeastConn scans exactly.
const exactLimit = 16

// maxWeight bounds the weights LeastConn compares, so that
// (in-flight+1)·weight products fit an int64.
const maxWeight = 1 << 30

// LeastConn picks the node with the lowest score (in_flight+1)/weight
// (APISIX `least_conn`). In-flight counts are the process-wide counts of
// NodeState, so every request of the process sees the same load (APISIX and
// Kong count per nginx worker). Nodes of weight 0, nodes that are down and
// nodes already tried by the request are skipped.
//
// Up to 16 nodes the choice is exact: Pick scans every node and claims the
// best one with a compare-and-swap of its in-flight count, looking again if
// a concurrent request changed that count in between, so concurrent picks
// behave as if they were made one after another (weights 3:2 and three
// concurrent requests give A, B, A). Nodes tied for the best score are
// served in turn, through a counter advanced on each tie.
//
// Above 16 nodes a full scan per request would cost O(n), so Pick takes
// the better of two random candidates (power of two choices, O(1)): one
// drawn in proportion to weight (through an alias table), one uniformly.
// With both drawn by weight, light nodes are under-served (weight counts
// twice: in the draw and in the score); with both drawn uniformly, they
// are over-served; the mix stays within a few percent of the exact
// algorithm's per-weight shares once nodes have requests in flight (see
// TestLeastConnSampledSpread). That is an approximation: the chosen node is
// the least loaded of two, not of all, which keeps the most loaded node
// within O(log log n) of the least loaded (Mitzenmacher) instead of exactly
// level; ties go to the weighted candidate, so they are broken at random.
// When both candidates are unusable four times over (retries, many nodes
// down), Pick falls back to the exact scan.
//
// LeastConn is safe for concurrent use; its only shared word besides the
// node states is the tie counter, on a cache line of its own and written
// only when a tie is broken.
type LeastConn struct {
	nodes   []*Node
	weights []int64
	alias   alias

	_    [64]byte
	ties atomic.Uint32
	_    [60]byte
}

// NewLeastConn builds the picker over nodes.
func NewLeastConn(nodes []*Node) *LeastConn {
	lc := &LeastConn{nodes: slices.Clone(nodes), weights: make([]int64, len(nodes))}
	w := make([]int, len(nodes))
	for i, n := range nodes {
		w[i] = min(n.Weight, maxWeight)
		lc.weights[i] = int64(w[i])
	}
	if len(nodes) > exactLimit {
		lc.alias = newAlias(w)
	}
	return lc
}

// Pick returns the least loaded usable node, or nil.
func (lc *LeastConn) Pick(r *Request) *Node {
	if len(lc.nodes) <= exactLimit {
		return lc.scan(r, true)
	}
	if len(lc.alias.prob) == 0 {
		return nil // every weight is 0
	}
	// Fast path: power of two choices.
	for range 4 {
		i, j := lc.alias.sample(), random(len(lc.nodes))
		ui, uj := usable(lc.nodes[i], r), usable(lc.nodes[j], r)
		switch {
		case ui && uj:
			if lc.less(j, i) {
				i = j
			}
		case uj:
			i = j
		case !ui:
			continue
		}
		return acquire(lc.nodes[i])
	}
	// Slow path: retries or many nodes down.
	return lc.scan(r, false)
}

// less reports whether node i scores lower than node j.
func (lc *LeastConn) less(i, j int) bool {
	return (lc.nodes[i].State.inflight.Load()+1)*lc.weights[j] < (lc.nodes[j].State.inflight.Load()+1)*lc.weights[i]
}

// maxClaims bounds how often scan looks again after losing a claim.
const maxClaims = 4

// scan picks the best usable node among all. Nodes tied for the best
// score take turns: the tie counter's next value chooses among them, so a
// stable set of tied nodes is served in strict rotation. With claim (at
// most exactLimit nodes), the winner is claimed by compare-and-swap of the
// count it was judged by, and the scan repeats (up to maxClaims times) when
// that fails.
func (lc *LeastConn) scan(r *Request, claim bool) *Node {
	var tied [exactLimit]int32
	var tiedIn [exactLimit]int64
	for attempt := 1; ; attempt++ {
		best, bestIn, nt := -1, int64(0), 0
		for i, node := range lc.nodes {
			if !usable(node, r) {
				continue
			}
			in := node.State.inflight.Load()
			if best >= 0 {
				// (in+1)/w against (bestIn+1)/bestW, without division.
				a, b := (in+1)*lc.weights[best], (bestIn+1)*lc.weights[i]
				if a > b {
					continue
				}
				if a == b {
					if nt < len(tied) {
						tied[nt], tiedIn[nt] = int32(i), in
						nt++
					}
					continue
				}
			}
			best, bestIn = i, in
			tied[0], tiedIn[0], nt = int32(i), in, 1
		}
		if best < 0 {
			return nil
		}
		if nt > 1 {
			k := int((lc.ties.Add(1) - 1) % uint32(nt))
			best, bestIn = int(tied[k]), tiedIn[k]
		}
		node := lc.nodes[best]
		if claim && attempt < maxClaims {
			if !node.State.inflight.CompareAndSwap(bestIn, bestIn+1) {
				continue
			}
		} else {
			node.State.inflight.Add(1)
		}
		return node
	}
}

// Done releases a pick.
func (lc *LeastConn) Done(n *Node, _ time.Duration, _ bool) { release(n) }

// alias is Vose's alias table: O(1) sampling of an index in proportion to
// a weight.
type alias struct {
	// prob[i] is the chance, scaled to 2^32, of keeping i over alias[i].
	prob  []uint64
	alias []uint32
}

func newAlias(weights []int) alias {
	n := len(weights)
	total := 0.0
	for _, w := range weights {
		total += float64(w)
	}
	if total == 0 {
		return alias{}
	}
	a := alias{prob: make([]uint64, n), alias: make([]uint32, n)}
	scaled := make([]float64, n)
	var small, large []int
	for i, w := range weights {
		scaled[i] = float64(w) * float64(n) / total
		if scaled[i] < 1 {
			small = append(small, i)
		} else {
			large = append(large, i)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		a.prob[s] = uint64(scaled[s] * (1 << 32))
		a.alias[s] = uint32(l)
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	// What is left has probability 1 (up to rounding).
	for _, i := range append(small, large...) {
		a.prob[i] = 1 << 32
		a.alias[i] = uint32(i)
	}
	return a
}

// sample returns an index with probability weight/total.
func (a *alias) sample() int {
	x := rand.Uint64()
	i := int((x >> 32) * uint64(len(a.prob)) >> 32)
	if x&(1<<32-1) < a.prob[i] {
		return i
	}
	return int(a.alias[i])
}

var _ Picker = (*LeastConn)(nil)
