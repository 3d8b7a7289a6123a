package lb

import (
	"cmp"
	"slices"
	"time"
)

// Priority layers APISIX node priorities over any algorithm: nodes are
// grouped by Priority, highest first, with one picker per group. Pick asks
// each group in turn and returns the first node it gets, so a lower group
// serves a request only when every node of the higher groups is down, has
// weight 0 or was already tried by the request; retries therefore walk
// down the groups. A higher group with usable nodes always wins, so normal
// picks cost one group's pick.
//
// When every node of a higher group is down, each pick first asks that
// group, which costs its picker's unsuccessful walk (for RoundRobin the
// whole cycle): a degraded state, bounded by the group's size.
//
// Priority is immutable once built and safe for concurrent use.
type Priority struct {
	// groups are ordered by priority, highest first.
	groups []Picker
	// group[n.Index] is the position in groups of node n's group.
	group []uint32
}

// NewPriority groups nodes by priority and builds each group's picker with
// build, which gets the group's nodes in their original order.
func NewPriority(nodes []*Node, build func(group []*Node) Picker) *Priority {
	sorted := slices.Clone(nodes)
	// Stable: a group keeps the nodes' original order.
	slices.SortStableFunc(sorted, func(a, b *Node) int { return cmp.Compare(b.Priority, a.Priority) })
	p := &Priority{}
	maxIndex := -1
	for _, n := range nodes {
		maxIndex = max(maxIndex, n.Index)
	}
	p.group = make([]uint32, maxIndex+1)
	for start := 0; start < len(sorted); {
		end := start + 1
		for end < len(sorted) && sorted[end].Priority == sorted[start].Priority {
			end++
		}
		for _, n := range sorted[start:end] {
			p.group[n.Index] = uint32(len(p.groups))
		}
		p.groups = append(p.groups, build(sorted[start:end:end]))
		start = end
	}
	return p
}

// Priorities returns the number of distinct priorities among nodes.
func Priorities(nodes []*Node) int {
	seen := map[int]bool{}
	for _, n := range nodes {
		seen[n.Priority] = true
	}
	return len(seen)
}

// Pick returns a node of the highest group that has a usable one, or nil.
func (p *Priority) Pick(r *Request) *Node {
	for _, g := range p.groups {
		if n := g.Pick(r); n != nil {
			return n
		}
	}
	return nil
}

// Done releases a pick through the picker of the node's group.
func (p *Priority) Done(n *Node, rtt time.Duration, failed bool) {
	p.groups[p.group[n.Index]].Done(n, rtt, failed)
}

var _ Picker = (*Priority)(nil)
