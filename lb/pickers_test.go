package lb

import (
	"math/rand/v2"
	"testing"
)

func TestSingle(t *testing.T) {
	for name, build := range constructors {
		ns := nodes(0)
		s := NewSingle(build(ns), ns[0])
		var r Request
		ns[0].State.SetDown(true)
		for try := range 3 {
			n := s.Pick(&r)
			if n != ns[0] {
				t.Fatalf("%s: try %d got %v, want the only node", name, try, n)
			}
			r.Tried.Add(n.Index)
		}
		if got := ns[0].State.InFlight(); got != 3 {
			t.Fatalf("%s: in flight %d, want 3", name, got)
		}
		for range 3 {
			s.Done(ns[0], 0, true)
		}
		if got := ns[0].State.InFlight(); got != 0 {
			t.Fatalf("%s: in flight %d after Done, want 0", name, got)
		}
	}
}

// constructors builds each algorithm's picker.
var constructors = map[string]func([]*Node) Picker{
	"roundrobin": func(ns []*Node) Picker { return NewRoundRobin(ns) },
	"chash":      func(ns []*Node) Picker { return NewCHash(ns) },
	"least_conn": func(ns []*Node) Picker { return NewLeastConn(ns) },
	"ewma":       func(ns []*Node) Picker { return NewEWMA(ns) },
}

// TestRetriesVisitEveryNodeOnce: for every algorithm, at sizes around the
// least_conn exact limit, picking with the tried set visits each weighted
// node once, skips weight 0, then returns nil.
func TestRetriesVisitEveryNodeOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, build := range constructors {
		for _, size := range []int{2, 3, 16, 17, 100} {
			weights := make([]int, size)
			zero := 0
			for i := range weights {
				weights[i] = rng.IntN(4)
				if weights[i] == 0 {
					zero++
				}
			}
			ns := nodes(weights...)
			p := build(shuffled(rng, ns))
			for key := range 20 {
				r := Request{Hash: rng.Uint64()}
				seen := map[int]bool{}
				for {
					n := p.Pick(&r)
					if n == nil {
						break
					}
					if seen[n.Index] || n.Weight == 0 {
						t.Fatalf("%s size %d key %d: picked %d (weight %d) again or with weight 0", name, size, key, n.Index, n.Weight)
					}
					seen[n.Index] = true
					r.Tried.Add(n.Index)
					p.Done(n, 0, true)
				}
				if len(seen) != size-zero {
					t.Fatalf("%s size %d: visited %d nodes, want %d", name, size, len(seen), size-zero)
				}
			}
			for _, n := range ns {
				if n.State.InFlight() != 0 {
					t.Fatalf("%s: node %d left in flight %d", name, n.Index, n.State.InFlight())
				}
			}
		}
	}
}

func TestEmptyAndZeroWeights(t *testing.T) {
	for name, build := range constructors {
		var r Request
		if n := build(nil).Pick(&r); n != nil {
			t.Errorf("%s: empty picker returned %s", name, n.Addr)
		}
		for _, size := range []int{2, 40} {
			weights := make([]int, size)
			if n := build(nodes(weights...)).Pick(&r); n != nil {
				t.Errorf("%s: all weights 0 (%d nodes) returned %s", name, size, n.Addr)
			}
		}
	}
}
