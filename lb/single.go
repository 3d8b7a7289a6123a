package lb

import "time"

// Single is the picker of an upstream with exactly one node. APISIX returns
// such a node without consulting health or weight, and a retry goes to it
// again: `retries: 2` on one dead node makes three tries. Single asks the
// upstream's own picker first, so that its accounting (in-flight counts,
// latency) stays right for when the upstream grows, and returns the node
// anyway when that picker declines (weight 0, down, already tried).
//
// Single is immutable once built and safe for concurrent use. The inner
// picker's Done must accept the node whether or not its own Pick returned
// it; every picker of this package does.
type Single struct {
	inner Picker
	node  *Node
}

// NewSingle wraps the picker of a one-node upstream.
func NewSingle(inner Picker, node *Node) *Single { return &Single{inner: inner, node: node} }

// Pick returns the node; it never returns nil.
func (s *Single) Pick(r *Request) *Node {
	if n := s.inner.Pick(r); n != nil {
		return n
	}
	return acquire(s.node)
}

// Done releases a pick through the inner picker.
func (s *Single) Done(n *Node, rtt time.Duration, failed bool) { s.inner.Done(n, rtt, failed) }

var _ Picker = (*Single)(nil)
