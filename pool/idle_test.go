package pool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// tracked is a connection stand-in whose holder count must never exceed
// one: two goroutines holding the same connection is the bug a broken
// lock-free stack produces.
type tracked struct {
	conns []*Conn
	held  map[*Conn]*atomic.Int32
}

func newTracked(n int) *tracked {
	tr := &tracked{held: map[*Conn]*atomic.Int32{}}
	for i := 0; i < n; i++ {
		c := &Conn{}
		tr.conns = append(tr.conns, c)
		tr.held[c] = &atomic.Int32{}
	}
	return tr
}

func (tr *tracked) take(t *testing.T, c *Conn) {
	if !tr.held[c].CompareAndSwap(0, 1) {
		t.Errorf("connection %p handed out twice", c)
	}
}

func (tr *tracked) give(c *Conn) { tr.held[c].Store(0) }

func TestIdleStackCapacityAndOrder(t *testing.T) {
	s := newIdleStack(3)
	tr := newTracked(4)
	if s.pop() != nil {
		t.Fatal("pop on an empty stack returned a connection")
	}
	for i := 0; i < 3; i++ {
		if !s.push(tr.conns[i]) {
			t.Fatalf("push %d refused below capacity", i)
		}
	}
	if s.push(tr.conns[3]) {
		t.Fatal("push accepted beyond capacity")
	}
	if n := s.count.Load(); n != 3 {
		t.Fatalf("count %d, want 3", n)
	}
	// LIFO: the warmest connection first.
	for i := 2; i >= 0; i-- {
		if c := s.pop(); c != tr.conns[i] {
			t.Fatalf("pop returned %p, want conns[%d]", c, i)
		}
	}
	if s.pop() != nil || s.count.Load() != 0 {
		t.Fatal("stack not empty after popping everything")
	}
	// Slots are recycled: the stack takes three again.
	for i := 0; i < 3; i++ {
		if !s.push(tr.conns[i]) {
			t.Fatalf("push %d refused after recycling", i)
		}
	}
}

func TestIdleStackSteal(t *testing.T) {
	s := newIdleStack(4)
	tr := newTracked(4)
	for _, c := range tr.conns {
		s.push(c)
	}
	// Steal the connections in even slots.
	var stolen []*Conn
	for i := range s.slots {
		if c := s.steal(i, func(c *Conn) bool { return c == tr.conns[0] || c == tr.conns[2] }); c != nil {
			stolen = append(stolen, c)
		}
	}
	if len(stolen) != 2 || s.count.Load() != 2 {
		t.Fatalf("stole %d, count %d; want 2 and 2", len(stolen), s.count.Load())
	}
	if c := s.steal(0, func(*Conn) bool { return true }); c != nil && (c == tr.conns[0] || c == tr.conns[2]) {
		t.Fatal("stole an already stolen connection")
	}
	// pop skips the emptied slots and frees them.
	var popped []*Conn
	for c := s.pop(); c != nil; c = s.pop() {
		popped = append(popped, c)
	}
	if len(popped)+len(stolen) < 3 {
		t.Fatalf("popped %d after stealing %d", len(popped), len(stolen))
	}
	for i := 0; i < 4; i++ {
		if !s.push(tr.conns[i]) {
			t.Fatalf("slot %d not recycled after steal", i)
		}
	}
}

// TestIdleStackConcurrent hammers push, pop and steal from many
// goroutines (run it with -race): no connection may be handed to two
// holders, and none may be lost.
func TestIdleStackConcurrent(t *testing.T) {
	const capacity, total, workers, rounds = 8, 24, 8, 20000
	s := newIdleStack(capacity)
	tr := newTracked(total)
	var mu sync.Mutex
	spare := append([]*Conn(nil), tr.conns...) // connections nobody holds or stacks
	var stolen atomic.Int64
	stop := make(chan struct{})
	var sweeper sync.WaitGroup
	sweeper.Add(1)
	go func() {
		defer sweeper.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i := range s.slots {
				if c := s.steal(i, func(*Conn) bool { return true }); c != nil {
					tr.take(t, c)
					stolen.Add(1)
					tr.give(c)
					mu.Lock()
					spare = append(spare, c)
					mu.Unlock()
				}
			}
			runtime.Gosched()
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*Conn
			for r := 0; r < rounds; r++ {
				if r%3 == 2 || len(mine) == 0 {
					if c := s.pop(); c != nil {
						tr.take(t, c)
						mine = append(mine, c)
						continue
					}
					mu.Lock()
					if n := len(spare); n > 0 {
						c := spare[n-1]
						spare = spare[:n-1]
						mu.Unlock()
						tr.take(t, c)
						mine = append(mine, c)
						continue
					}
					mu.Unlock()
					continue
				}
				c := mine[len(mine)-1]
				mine = mine[:len(mine)-1]
				tr.give(c)
				if !s.push(c) {
					mu.Lock()
					spare = append(spare, c)
					mu.Unlock()
				}
			}
			for _, c := range mine {
				tr.give(c)
				mu.Lock()
				spare = append(spare, c)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	sweeper.Wait()

	seen := map[*Conn]bool{}
	for c := s.pop(); c != nil; c = s.pop() {
		seen[c] = true
	}
	if int(s.count.Load()) != 0 {
		t.Fatalf("count %d after draining", s.count.Load())
	}
	for _, c := range spare {
		if seen[c] {
			t.Fatalf("connection %p both stacked and spare", c)
		}
		seen[c] = true
	}
	if len(seen) != total {
		t.Fatalf("%d distinct connections at the end, want %d (lost some)", len(seen), total)
	}
	t.Logf("%d steals", stolen.Load())
}
