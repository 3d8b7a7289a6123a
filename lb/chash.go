package lb

import (
	"cmp"
	"slices"
	"time"
)

// pointsPerWeight is the number of ring points per unit of weight, after
// the weights are divided by their gcd (APISIX's resty.chash uses 160).
const pointsPerWeight = 160

// maxPoints caps the ring size (12 bytes per point). Larger rings are
// scaled down in proportion, every weighted node keeping at least one point.
const maxPoints = 1 << 20

// maxWalk bounds the ring walk of a retry (or of a pick that lands on a node
// that is down) before the walk goes on over the node list instead. 1024
// points meet about 640 distinct nodes of a 1000-node ring, and every node
// of a small one.
const maxWalk = 1024

// CHash is consistent hashing on a ring (APISIX `chash`). Each node of
// weight w gets 160·w/gcd(weights) points, whose positions hash the node's
// address and the point number only: the ring depends on the set of nodes,
// not on their order, so every gateway of a fleet maps a key to the same
// node, and adding one node to N moves about 1/(N+1) of the keys, nearly
// all to the new node. Nodes of weight 0 get no points; a ring without
// points picks nothing.
//
// Pick finds the first point at or after r.Hash by binary search
// (O(log points)). When that point's node is down or already tried, the
// pick walks on to the next distinct usable node of the ring, so a retry
// goes to the next node clockwise and every gateway retries the same way.
// After maxWalk points the walk continues over the nodes in address order,
// which bounds it by the node count.
//
// CHash is immutable once built and safe for concurrent use.
type CHash struct {
	// nodes are sorted by address.
	nodes []*Node
	// hashes are the ring's point positions, ascending; owner[i] is the
	// position in nodes of point i's node.
	hashes []uint64
	owner  []uint32
}

// NewCHash builds the ring over nodes.
func NewCHash(nodes []*Node) *CHash {
	c := &CHash{nodes: slices.Clone(nodes)}
	slices.SortStableFunc(c.nodes, func(a, b *Node) int { return cmp.Compare(a.Addr, b.Addr) })
	weights := make([]int, len(c.nodes))
	for i, n := range c.nodes {
		weights[i] = n.Weight
	}
	points, total := reduceWeights(weights, pointsPerWeight, maxPoints)
	if total == 0 {
		return c
	}
	type point struct {
		hash  uint64
		owner uint32
	}
	ring := make([]point, 0, total)
	for i, n := range c.nodes {
		base := NewKeyHash().AddString(n.Addr)
		for k := range points[i] {
			ring = append(ring, point{hash: base.addPoint(uint32(k)).Sum64(), owner: uint32(i)})
		}
	}
	// Ties (two points at one position) go to the lower address, so the
	// order of the input never matters.
	slices.SortFunc(ring, func(a, b point) int {
		if c := cmp.Compare(a.hash, b.hash); c != 0 {
			return c
		}
		return cmp.Compare(a.owner, b.owner)
	})
	c.hashes = make([]uint64, len(ring))
	c.owner = make([]uint32, len(ring))
	for i, p := range ring {
		c.hashes[i], c.owner[i] = p.hash, p.owner
	}
	return c
}

// Pick returns the node owning r.Hash on the ring, or the next usable one.
func (c *CHash) Pick(r *Request) *Node {
	n := len(c.hashes)
	if n == 0 {
		return nil
	}
	i, _ := slices.BinarySearch(c.hashes, r.Hash)
	if i == n {
		i = 0
	}
	// Fast path: the owner of the key's point is usable.
	if node := c.nodes[c.owner[i]]; usable(node, r) {
		return acquire(node)
	}
	return c.walk(r, i)
}

// walk is the slow path of Pick: from point start, on to the next distinct
// usable node.
func (c *CHash) walk(r *Request, start int) *Node {
	n := len(c.hashes)
	limit := min(n, maxWalk)
	prev := c.owner[start]
	for k := 1; k < limit; k++ {
		i := start + k
		if i >= n {
			i -= n
		}
		o := c.owner[i]
		if o == prev {
			continue
		}
		prev = o
		if node := c.nodes[o]; usable(node, r) {
			return acquire(node)
		}
	}
	if limit == n {
		return nil
	}
	// Slowest path: a long run of unusable nodes. Go on in address order
	// from the start point's node; still the same choice on every gateway.
	first := int(c.owner[start])
	for k := 1; k < len(c.nodes); k++ {
		i := first + k
		if i >= len(c.nodes) {
			i -= len(c.nodes)
		}
		if node := c.nodes[i]; usable(node, r) {
			return acquire(node)
		}
	}
	return nil
}

// Done releases a pick.
func (c *CHash) Done(n *Node, _ time.Duration, _ bool) { release(n) }

// KeyHash is the hash of chash keys and ring points: 64-bit FNV-1a with
// murmur3's 64-bit finaliser, so that short, similar keys still spread over
// the whole ring. It is deterministic across processes and machines (unlike
// hash/maphash), which keeps a fleet of gateways in agreement, and it is
// streaming: hashing a value in pieces gives the sum of hashing it whole.
// The zero value is not a valid start; use NewKeyHash.
type KeyHash uint64

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// NewKeyHash returns the hash of the empty key.
func NewKeyHash() KeyHash { return fnvOffset64 }

// Add hashes b into h.
func (h KeyHash) Add(b []byte) KeyHash {
	for _, c := range b {
		h ^= KeyHash(c)
		h *= fnvPrime64
	}
	return h
}

// AddString hashes s into h.
func (h KeyHash) AddString(s string) KeyHash {
	for i := 0; i < len(s); i++ {
		h ^= KeyHash(s[i])
		h *= fnvPrime64
	}
	return h
}

// addPoint hashes a NUL separator and a point number, little-endian.
func (h KeyHash) addPoint(k uint32) KeyHash {
	h *= fnvPrime64 // ^ 0
	for range 4 {
		h ^= KeyHash(k & 0xff)
		h *= fnvPrime64
		k >>= 8
	}
	return h
}

// Sum64 returns the finished hash.
func (h KeyHash) Sum64() uint64 {
	x := uint64(h)
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

var _ Picker = (*CHash)(nil)
