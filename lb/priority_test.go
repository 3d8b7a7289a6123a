package lb

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// prioritized builds nodes with the given priorities, weight 1.
func prioritized(prios ...int) []*Node {
	ws := make([]int, len(prios))
	for i := range ws {
		ws[i] = 1
	}
	ns := nodes(ws...)
	for i, p := range prios {
		ns[i].Priority = p
	}
	return ns
}

// TestPriorityFailover: APISIX t/node/priority-balancer/sanity.t with every
// algorithm: retries walk p1, p1, p0, p0, p-1, then nothing.
func TestPriorityFailover(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for name, build := range constructors {
		for round := range 10 {
			ns := prioritized(1, 1, 0, 0, -1)
			p := NewPriority(shuffled(rng, ns), build)
			r := Request{Hash: rng.Uint64()}
			var got []int
			for {
				n := p.Pick(&r)
				if n == nil {
					break
				}
				got = append(got, n.Priority)
				r.Tried.Add(n.Index)
				p.Done(n, 0, true)
			}
			if fmt.Sprint(got) != "[1 1 0 0 -1]" {
				t.Fatalf("%s round %d: priorities tried %v, want [1 1 0 0 -1]", name, round, got)
			}
			for _, n := range ns {
				if n.State.InFlight() != 0 {
					t.Fatalf("%s: Done went to the wrong group: in flight %v", name, inflight(ns))
				}
			}
		}
	}
}

// TestPriorityOnlyWhenHigherUnusable: without failures, only the highest
// group serves; when its nodes are down, the next one does at once.
func TestPriorityOnlyWhenHigherUnusable(t *testing.T) {
	for name, build := range constructors {
		ns := prioritized(0, 5, 0, 5, -3)
		p := NewPriority(ns, build)
		for k := range 200 {
			r := Request{Hash: uint64(k) * 0x9e3779b97f4a7c15}
			if n := pickDone(p, &r); ns[n].Priority != 5 {
				t.Fatalf("%s: picked priority %d with priority 5 up", name, ns[n].Priority)
			}
		}
		ns[1].State.SetDown(true)
		ns[3].State.SetDown(true)
		for k := range 200 {
			r := Request{Hash: uint64(k) * 0x9e3779b97f4a7c15}
			if n := pickDone(p, &r); ns[n].Priority != 0 {
				t.Fatalf("%s: picked priority %d with priority 5 down", name, ns[n].Priority)
			}
		}
		// Weight 0 counts as unusable too.
		ns[0].Weight, ns[2].Weight = 0, 0
		p = NewPriority(ns, build)
		var r Request
		if n := pickDone(p, &r); n != 4 {
			t.Fatalf("%s: picked %d, want the priority -3 node", name, n)
		}
	}
}

func TestPriorities(t *testing.T) {
	if got := Priorities(prioritized(1, 1, 0, 2)); got != 3 {
		t.Fatalf("Priorities = %d, want 3", got)
	}
}
