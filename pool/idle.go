package pool

import "sync/atomic"

// idleStack is a bounded lock-free LIFO of idle connections.
//
// It is two Treiber stacks over one fixed array of slots: `head` links the
// slots that hold a connection (most recently released first), `free`
// links the empty ones. Each head word packs a slot number (index+1, 0 for
// empty) in its low 32 bits and a modification tag in its high 32 bits, so
// a compare-and-swap cannot succeed on a stale view (the ABA problem).
// Capacity is fixed at construction: that is the keepalive_pool size.
//
// A sweeper may steal a connection out of a slot that is still linked in
// `head` (by swapping the slot's pointer to nil); pop skips such slots.
//
// push, pop and steal are safe for concurrent use; none locks or allocates.
type idleStack struct {
	slots []idleSlot
	head  atomic.Uint64
	free  atomic.Uint64
	// count approximates the number of idle connections, for metrics.
	count atomic.Int64
}

type idleSlot struct {
	conn atomic.Pointer[Conn]
	next atomic.Uint32
}

// newIdleStack returns an empty stack of the given capacity (at least 1).
func newIdleStack(capacity int) *idleStack {
	s := &idleStack{slots: make([]idleSlot, capacity)}
	for i := capacity - 1; i >= 0; i-- {
		pushSlot(&s.free, s.slots, uint32(i))
	}
	return s
}

// push stores c as the most recent idle connection. It returns false when
// the stack is full; the caller then closes c.
func (s *idleStack) push(c *Conn) bool {
	i, ok := popSlot(&s.free, s.slots)
	if !ok {
		return false
	}
	s.slots[i].conn.Store(c)
	s.count.Add(1)
	pushSlot(&s.head, s.slots, i)
	return true
}

// pop returns the most recently pushed connection, or nil.
func (s *idleStack) pop() *Conn {
	for {
		i, ok := popSlot(&s.head, s.slots)
		if !ok {
			return nil
		}
		c := s.slots[i].conn.Swap(nil)
		pushSlot(&s.free, s.slots, i)
		if c != nil {
			s.count.Add(-1)
			return c
		}
		// The sweeper stole this one; try the next.
	}
}

// steal removes the connection in slot i if pred accepts it, without
// unlinking the slot. It is used by the idle sweeper.
func (s *idleStack) steal(i int, pred func(*Conn) bool) *Conn {
	c := s.slots[i].conn.Load()
	if c == nil || !pred(c) {
		return nil
	}
	if !s.slots[i].conn.CompareAndSwap(c, nil) {
		return nil
	}
	s.count.Add(-1)
	return c
}

func popSlot(head *atomic.Uint64, slots []idleSlot) (uint32, bool) {
	for {
		old := head.Load()
		top := uint32(old)
		if top == 0 {
			return 0, false
		}
		next := slots[top-1].next.Load()
		if head.CompareAndSwap(old, (old>>32+1)<<32|uint64(next)) {
			return top - 1, true
		}
	}
}

func pushSlot(head *atomic.Uint64, slots []idleSlot, i uint32) {
	for {
		old := head.Load()
		slots[i].next.Store(uint32(old))
		if head.CompareAndSwap(old, (old>>32+1)<<32|uint64(i+1)) {
			return
		}
	}
}
