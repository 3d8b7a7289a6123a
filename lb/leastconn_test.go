package lb

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

func TestLeastConnAPISIX(t *testing.T) {
	// t/node/least_conn.t TEST 1: weights 2 and 1, one request: the first.
	ns := nodes(2, 1)
	var r Request
	if got := pickDone(NewLeastConn(ns), &r); got != 0 {
		t.Fatalf("weights 2:1 picked %d, want 0", got)
	}
	// TEST 2: weights 3 and 2, three requests in flight at once: A, B, A.
	ns = nodes(3, 2)
	lc := NewLeastConn(ns)
	var got []int
	for range 3 {
		got = append(got, lc.Pick(&r).Index)
	}
	if fmt.Sprint(got) != "[0 1 0]" {
		t.Fatalf("weights 3:2, three concurrent picks: %v, want [0 1 0]", got)
	}
}

// TestLeastConnSteps checks picks against in-flight vectors step by step.
func TestLeastConnSteps(t *testing.T) {
	for _, tc := range []struct {
		weights  []int
		inflight []int64
		tried    []int
		down     []int
		want     int
	}{
		{[]int{1, 1, 1}, []int64{2, 0, 1}, nil, nil, 1},
		{[]int{1, 1, 1}, []int64{0, 0, 0}, []int{0}, nil, 1},
		{[]int{1, 1, 1}, []int64{5, 0, 1}, []int{1}, nil, 2},
		{[]int{1, 1, 1}, []int64{5, 0, 1}, nil, []int{1}, 2},
		{[]int{1, 1, 1}, []int64{5, 0, 1}, []int{0, 1, 2}, nil, -1},
		{[]int{0, 1}, []int64{0, 9}, nil, nil, 1},
		{[]int{10, 1}, []int64{9, 0}, nil, nil, 0},  // 10/10 vs 1/1: a tie, the first
		{[]int{10, 1}, []int64{10, 0}, nil, nil, 1}, // 11/10 > 1
		{[]int{10, 1}, []int64{8, 0}, nil, nil, 0},  // 9/10 < 1
		{[]int{3, 2}, []int64{1, 0}, nil, nil, 1},   // 2/3 > 1/2
		{[]int{3, 2}, []int64{1, 1}, nil, nil, 0},   // 2/3 < 2/2
	} {
		ns := nodes(tc.weights...)
		setInflight(ns, tc.inflight...)
		var r Request
		for _, i := range tc.tried {
			r.Tried.Add(i)
		}
		for _, i := range tc.down {
			ns[i].State.SetDown(true)
		}
		if got := pickDone(NewLeastConn(ns), &r); got != tc.want {
			t.Errorf("weights %v in flight %v tried %v down %v: picked %d, want %d", tc.weights, tc.inflight, tc.tried, tc.down, got, tc.want)
		}
	}
}

func TestLeastConnTiesInTurn(t *testing.T) {
	ns := nodes(1, 1, 1)
	lc := NewLeastConn(ns)
	var r Request
	var got []int
	for range 7 {
		got = append(got, pickDone(lc, &r))
	}
	if fmt.Sprint(got) != "[0 1 2 0 1 2 0]" {
		t.Fatalf("idle equal nodes picked %v, want them in turn", got)
	}
}

// TestLeastConnPermutations: whatever the node order, the exact picker
// chooses a node of minimal score, and ties rotate among all minimal nodes.
func TestLeastConnPermutations(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := range 2000 {
		size := 2 + rng.IntN(exactLimit-1)
		weights := make([]int, size)
		in := make([]int64, size)
		for i := range weights {
			weights[i] = rng.IntN(4)
			in[i] = int64(rng.IntN(4))
		}
		ns := nodes(weights...)
		setInflight(ns, in...)
		best := -1
		for i, n := range ns {
			if n.Weight > 0 && (best < 0 || (in[i]+1)*int64(ns[best].Weight) < (in[best]+1)*int64(n.Weight)) {
				best = i
			}
		}
		lc := NewLeastConn(shuffled(rng, ns))
		var r Request
		got := lc.Pick(&r)
		if best < 0 {
			if got != nil {
				t.Fatalf("round %d: all weights 0, picked %d", round, got.Index)
			}
			continue
		}
		if (in[got.Index]+1)*int64(ns[best].Weight) != (in[best]+1)*int64(got.Weight) {
			t.Fatalf("round %d: weights %v in flight %v: picked %d, a minimum is %d", round, weights, in, got.Index, best)
		}
		lc.Done(got, 0, false)
		// Every node of minimal score wins a tie within size picks.
		won := map[int]bool{}
		for range size {
			won[pickDone(lc, &r)] = true
		}
		for i, n := range ns {
			if n.Weight > 0 && (in[i]+1)*int64(ns[best].Weight) == (in[best]+1)*int64(n.Weight) && !won[i] {
				t.Fatalf("round %d: weights %v in flight %v: tied node %d never picked (%v)", round, weights, in, i, won)
			}
		}
	}
}

// TestLeastConnSampledSpread: above the exact limit, the sampled picker
// serves each weight class within a few percent of what the exact scan
// serves, under sustained load (each pick held for a while).
func TestLeastConnSampledSpread(t *testing.T) {
	weights := make([]int, 100)
	for i := range weights {
		weights[i] = 1 + i%4
	}
	// perUnit simulates picks held until a random later release and
	// returns, per weight class, the picks served per unit of weight, and
	// the spread of in flight per unit of weight at the end.
	perUnit := func(pick func(*LeastConn, *Request) *Node, hold int) (served [5]float64, spread float64) {
		ns := nodes(weights...)
		lc := NewLeastConn(ns)
		var r Request
		var held []*Node
		for i := range 150000 {
			n := pick(lc, &r)
			served[n.Weight] += 1 / float64(n.Weight*25)
			held = append(held, n)
			if len(held) > hold {
				j := i % len(held)
				lc.Done(held[j], 0, false)
				held[j] = held[len(held)-1]
				held = held[:len(held)-1]
			}
		}
		lo, hi := 1e9, 0.0
		for _, n := range ns {
			v := float64(n.State.InFlight()) / float64(n.Weight)
			lo, hi = min(lo, v), max(hi, v)
		}
		return served, hi - lo
	}
	sampled := (*LeastConn).Pick
	exact := func(lc *LeastConn, r *Request) *Node { return lc.scan(r, false) }
	for _, hold := range []int{500, 5000} {
		got, spread := perUnit(sampled, hold)
		want, _ := perUnit(exact, hold)
		for w := 1; w <= 4; w++ {
			if got[w] < 0.9*want[w] || got[w] > 1.1*want[w] {
				t.Errorf("%d held: weight-%d nodes served %.0f per unit of weight, exact scan %.0f", hold, w, got[w], want[w])
			}
		}
		// Mean in flight per unit of weight is hold/250; P2C lets single
		// nodes stray by a few requests, never run away.
		if spread > 4+float64(hold)/250/2 {
			t.Errorf("%d held: in flight per unit of weight spans %.2f", hold, spread)
		}
	}
}

func TestLeastConnConcurrent(t *testing.T) {
	ns := nodes(3, 2, 1, 1)
	lc := NewLeastConn(ns)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var r Request
			for range 5000 {
				n := lc.Pick(&r)
				lc.Done(n, 0, false)
			}
		})
	}
	wg.Wait()
	for _, v := range inflight(ns) {
		if v != 0 {
			t.Fatalf("in flight %v after all Done", inflight(ns))
		}
	}
}

func TestAlias(t *testing.T) {
	weights := []int{1, 0, 3, 6}
	a := newAlias(weights)
	counts := make([]int, len(weights))
	for range 100000 {
		counts[a.sample()]++
	}
	for i, w := range weights {
		want := 10000 * w
		if counts[i] < want*9/10 || counts[i] > want*11/10 || (w == 0 && counts[i] != 0) {
			t.Errorf("index %d (weight %d): %d samples, want about %d", i, w, counts[i], want)
		}
	}
}
