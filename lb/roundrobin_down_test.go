package lb

import (
	"fmt"
	"testing"
)

func nodesOf(weights ...int) []*Node {
	nodes := make([]*Node, len(weights))
	for i, w := range weights {
		nodes[i] = &Node{Addr: fmt.Sprint(i), Weight: w, Index: i, State: &NodeState{}}
	}
	return nodes
}

func spread(rr *RoundRobin, n int) []int {
	got := make([]int, len(rr.nodes))
	var r Request
	for i := 0; i < n; i++ {
		node := rr.Pick(&r)
		if node == nil {
			continue // counted as no pick: the sum falls short of n
		}
		got[node.Index]++
		rr.Done(node, 0, false)
		r.Reset()
	}
	return got
}

// TestRoundRobinDownNodeKeepsProportions: the turns of a node that is down
// are shared by the others in proportion to their weights, not handed to
// the node after it in the cycle.
func TestRoundRobinDownNodeKeepsProportions(t *testing.T) {
	f := func(weights []int, down []int, n int, want string) {
		t.Helper()
		nodes := nodesOf(weights...)
		for _, i := range down {
			nodes[i].State.SetDown(true)
		}
		if got := fmt.Sprint(spread(NewRoundRobin(nodes), n)); got != want {
			t.Errorf("weights %v, down %v: %s, want %s", weights, down, got, want)
		}
	}
	f([]int{1, 1, 1}, []int{0}, 12, "[0 6 6]")
	f([]int{1, 1, 1}, []int{1}, 12, "[6 0 6]")
	f([]int{1, 1, 1, 1}, []int{0, 1}, 12, "[0 0 6 6]")
	f([]int{3, 2, 1}, []int{0}, 12, "[0 8 4]")
	f([]int{5, 1, 1}, []int{0}, 12, "[0 6 6]")
	f([]int{1, 1}, []int{0, 1}, 4, "[0 0]")
}

// TestRoundRobinIgnoreDown: a request that ignores health (fail-open) is
// served by down nodes, in proportion.
func TestRoundRobinIgnoreDown(t *testing.T) {
	nodes := nodesOf(1, 1)
	nodes[0].State.SetDown(true)
	nodes[1].State.SetDown(true)
	rr := NewRoundRobin(nodes)
	got := make([]int, 2)
	for i := 0; i < 8; i++ {
		r := Request{IgnoreDown: true}
		n := rr.Pick(&r)
		got[n.Index]++
		rr.Done(n, 0, false)
	}
	if got[0] != 4 || got[1] != 4 {
		t.Fatalf("spread %v", got)
	}
	var r Request
	r.IgnoreDown = true
	r.Reset()
	if r.IgnoreDown {
		t.Fatal("Reset keeps IgnoreDown")
	}
}

// TestSmoothSchedule checks the schedule shared by the roundrobin picker
// and the route split: nginx's interleaved order, the GCD reduction, the
// scaling above the limit, and nil without a positive weight.
func TestSmoothSchedule(t *testing.T) {
	if got := fmt.Sprint(SmoothSchedule([]int{5, 1, 1}, 100)); got != "[0 0 1 0 2 0 0]" {
		t.Fatalf("5:1:1 gives %s, want nginx's [0 0 1 0 2 0 0]", got)
	}
	if got := fmt.Sprint(SmoothSchedule([]int{10, 0, 10}, 100)); got != "[0 2]" {
		t.Fatalf("10:0:10 gives %s, want [0 2]", got)
	}
	seq := SmoothSchedule([]int{3000, 1000, 1}, 400)
	counts := map[uint32]int{}
	for _, i := range seq {
		counts[i]++
	}
	if counts[0] != 299 || counts[1] != 99 || counts[2] != 1 {
		t.Fatalf("3000:1000:1 scaled to 400: counts %v, want 299 99 1", counts)
	}
	if SmoothSchedule([]int{0, -1}, 100) != nil || SmoothSchedule(nil, 100) != nil {
		t.Fatal("a schedule without a positive weight is not nil")
	}
}
