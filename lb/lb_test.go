package lb

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// nodes builds one node per weight, at addresses 10.0.0.i:80, Index i.
func nodes(weights ...int) []*Node {
	ns := make([]*Node, len(weights))
	for i, w := range weights {
		ns[i] = &Node{Addr: fmt.Sprintf("10.0.0.%d:80", i), Weight: w, Index: i, State: &NodeState{}}
	}
	return ns
}

// inflight returns every node's in-flight count.
func inflight(ns []*Node) []int64 {
	v := make([]int64, len(ns))
	for i, n := range ns {
		v[i] = n.State.InFlight()
	}
	return v
}

// setInflight sets the in-flight counts.
func setInflight(ns []*Node, v ...int64) {
	for i, n := range ns {
		n.State.inflight.Store(v[i])
	}
}

// pickDone picks once, releases at once, and returns the node's index
// (-1 for nil).
func pickDone(p Picker, r *Request) int {
	n := p.Pick(r)
	if n == nil {
		return -1
	}
	p.Done(n, 0, false)
	return n.Index
}

// shuffled returns a random permutation of ns (Index kept).
func shuffled(rng *rand.Rand, ns []*Node) []*Node {
	out := make([]*Node, len(ns))
	for i, j := range rng.Perm(len(ns)) {
		out[i] = ns[j]
	}
	return out
}

func TestNodeStateIsTwoCacheLines(t *testing.T) {
	if s := unsafe.Sizeof(NodeState{}); s != 128 {
		t.Fatalf("NodeState is %d bytes, want 128 (its counters padded onto one cache line)", s)
	}
	if o := unsafe.Offsetof(NodeState{}.inflight); o != 64 {
		t.Fatalf("inflight at offset %d, want 64", o)
	}
}

func TestTried(t *testing.T) {
	var tr Tried
	for _, i := range []int{0, 63, 64, 127, 128, 1000, 5000} {
		if tr.Has(i) {
			t.Fatalf("empty set has %d", i)
		}
		tr.Add(i)
		tr.Add(i)
		if !tr.Has(i) {
			t.Fatalf("set lacks %d after Add", i)
		}
	}
	if tr.Len() != 7 || tr.Has(1) || tr.Has(999) {
		t.Fatalf("Len %d", tr.Len())
	}
	tr.Reset()
	if tr.Len() != 0 || tr.Has(1000) {
		t.Fatal("Reset left members")
	}
}

func TestRoundRobinCycle(t *testing.T) {
	for _, tc := range []struct {
		weights []int
		want    []int
	}{
		{[]int{1, 1}, []int{6, 6}},
		{[]int{3, 2, 1}, []int{6, 4, 2}},
		{[]int{3, 0, 1}, []int{9, 0, 3}},
		{[]int{0, 0}, []int{0, 0}},
	} {
		ns := nodes(tc.weights...)
		rr := NewRoundRobin(ns)
		got := make([]int, len(ns))
		var r Request
		for range 12 {
			if i := pickDone(rr, &r); i >= 0 {
				got[i]++
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("weights %v: 12 picks gave %v, want %v", tc.weights, got, tc.want)
		}
	}
}

func TestRoundRobinSkipsTriedAndDown(t *testing.T) {
	ns := nodes(5, 1, 1)
	rr := NewRoundRobin(ns)
	var r Request
	seen := map[int]bool{}
	for range 3 {
		n := rr.Pick(&r)
		if n == nil || seen[n.Index] {
			t.Fatalf("retry returned %v after %v", n, seen)
		}
		seen[n.Index] = true
		r.Tried.Add(n.Index)
		rr.Done(n, 0, true)
	}
	if n := rr.Pick(&r); n != nil {
		t.Fatalf("all tried, got %s", n.Addr)
	}
	r.Reset()
	ns[0].State.SetDown(true)
	for range 10 {
		if i := pickDone(rr, &r); i == 0 {
			t.Fatal("picked a node that is down")
		}
	}
	r.IgnoreDown = true
	got := 0
	for range 7 {
		if pickDone(rr, &r) == 0 {
			got++
		}
	}
	if got != 5 {
		t.Fatalf("IgnoreDown: node 0 got %d of 7 picks, want 5", got)
	}
}
