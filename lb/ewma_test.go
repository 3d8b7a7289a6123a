package lb

import (
	"math"
	"testing"
	"time"
)

// fakeClock is a settable clock for EWMA.
type fakeClock struct{ now time.Duration }

func (c *fakeClock) read() time.Duration { return c.now }

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol*want }

func TestEWMADecay(t *testing.T) {
	clk := &fakeClock{now: time.Hour}
	ns := nodes(1, 1)
	e := newEWMA(ns, clk.read)
	s := ns[0].State
	avg := func() float64 { return decayedCost(s.ewma.Load(), millis(clk.now)) / 1e6 } // ms

	e.Done(acquire(ns[0]), 100*time.Millisecond, false)
	if got := avg(); !near(got, 100, 1e-6) {
		t.Fatalf("first sample: %.3f ms, want 100", got)
	}
	// Idle: decays toward zero with τ = 10 s.
	clk.now += 10 * time.Second
	if got := avg(); !near(got, 100*math.Exp(-1), 1e-3) {
		t.Fatalf("after 10 s idle: %.3f ms, want %.3f", got, 100*math.Exp(-1))
	}
	// A peak replaces the average at once.
	e.Done(acquire(ns[0]), 200*time.Millisecond, false)
	if got := avg(); !near(got, 200, 1e-6) {
		t.Fatalf("peak: %.3f ms, want 200", got)
	}
	// A lower sample 1 s later moves the average by 1-e^(-0.1) toward it.
	clk.now += time.Second
	e.Done(acquire(ns[0]), 10*time.Millisecond, false)
	w := math.Exp(-0.1)
	if got, want := avg(), 200*w+10*(1-w); !near(got, want, 1e-3) {
		t.Fatalf("lower sample: %.3f ms, want %.3f", got, want)
	}
	// Steady samples converge to their value within a few τ.
	for range 600 {
		clk.now += 100 * time.Millisecond
		e.Done(acquire(ns[0]), 10*time.Millisecond, false)
	}
	if got := avg(); !near(got, 10, 0.05) {
		t.Fatalf("after 60 s of 10 ms samples: %.3f ms", got)
	}
	// A failure counts as at least a second; a success of unknown
	// latency counts as nothing.
	e.Done(acquire(ns[0]), 0, false)
	if got := avg(); !near(got, 10, 0.05) {
		t.Fatalf("rtt 0 moved the average to %.3f ms", got)
	}
	e.Done(acquire(ns[0]), 0, true)
	if got := avg(); !near(got, 1000, 1e-6) {
		t.Fatalf("failure: %.3f ms, want 1000", got)
	}
	if ns[0].State.InFlight() != 0 {
		t.Fatal("Done did not release")
	}
}

// simulate sends sequential requests for d of fake time; latency gives
// each node's response time. It returns the picks per node.
func simulate(e *EWMA, clk *fakeClock, ns []*Node, d time.Duration, latency func(i int) time.Duration) []int {
	counts := make([]int, len(ns))
	for end := clk.now + d; clk.now < end; {
		var r Request
		n := e.Pick(&r)
		rtt := latency(n.Index)
		clk.now += rtt
		e.Done(n, rtt, false)
		counts[n.Index]++
	}
	return counts
}

func TestEWMAShedsSlowNodeAndWinsBack(t *testing.T) {
	clk := &fakeClock{now: time.Hour}
	ns := nodes(1, 1, 1, 1)
	e := newEWMA(ns, clk.read)
	slow := true
	latency := func(i int) time.Duration {
		if i == 0 && slow {
			return 100 * time.Millisecond
		}
		return time.Millisecond
	}
	// APISIX t/node/ewma.t: a slow node gets (almost) nothing.
	counts := simulate(e, clk, ns, 10*time.Second, latency)
	total := counts[0] + counts[1] + counts[2] + counts[3]
	if counts[0] > 5 {
		t.Fatalf("slow node got %d of %d requests", counts[0], total)
	}
	// Fast again: it wins its share back within tens of seconds.
	slow = false
	simulate(e, clk, ns, 60*time.Second, latency)
	counts = simulate(e, clk, ns, 10*time.Second, latency)
	total = counts[0] + counts[1] + counts[2] + counts[3]
	if share := float64(counts[0]) / float64(total); share < 0.15 {
		t.Fatalf("60 s after recovering, node 0 gets %.2f of the traffic (%v)", share, counts)
	}
}

func TestEWMAInFlightAndPenalty(t *testing.T) {
	clk := &fakeClock{now: time.Hour}
	ns := nodes(1, 1)
	e := newEWMA(ns, clk.read)
	// No data: a node with a try in flight costs the penalty.
	var r Request
	first := e.Pick(&r)
	second := e.Pick(&r)
	if first == second {
		t.Fatal("cold start: both picks on one node")
	}
	e.Done(first, 0, false)
	e.Done(second, 0, false)
	// Equal averages: the one with fewer tries in flight wins.
	ns[0].State.observe(millis(clk.now), 1e6)
	ns[1].State.observe(millis(clk.now), 1e6)
	setInflight(ns, 3, 1)
	if got := e.Pick(&r); got != ns[1] {
		t.Fatal("in-flight count ignored")
	}
	// Cost is average × (in flight + 1): 1 ms × (2+1) = 3 ms < 4 ms × 1.
	setInflight(ns, 0, 2)
	ns[0].State.ewma.Store(packEWMA(4e6, millis(clk.now)))
	if got := e.Pick(&r); got != ns[1] {
		t.Fatalf("4 ms idle against 1 ms with 2 in flight: picked %s", got.Addr)
	}
}

func TestEWMANewNodeStartsAtMean(t *testing.T) {
	clk := &fakeClock{now: time.Hour}
	ns := nodes(1, 1, 1)
	ns[0].State.observe(millis(clk.now), 10e6)
	ns[1].State.observe(millis(clk.now), 30e6)
	newEWMA(ns, clk.read)
	if got := decayedCost(ns[2].State.ewma.Load(), millis(clk.now)); !near(got, 20e6, 1e-6) {
		t.Fatalf("new node starts at %.0f ns, want the mean 20 ms", got)
	}
	// With no data anywhere, nodes start empty.
	fresh := nodes(1, 1)
	newEWMA(fresh, clk.read)
	if fresh[0].State.ewma.Load() != 0 {
		t.Fatal("seeded from nothing")
	}
}

func TestEWMASkipsTriedDownAndZero(t *testing.T) {
	clk := &fakeClock{now: time.Hour}
	ns := nodes(1, 0, 1, 1)
	e := newEWMA(ns, clk.read)
	ns[0].State.observe(millis(clk.now), 1e3) // the fastest, but tried
	ns[3].State.SetDown(true)
	for range 100 {
		var r Request
		r.Tried.Add(0)
		if got := pickDone(e, &r); got != 2 {
			t.Fatalf("picked %d, want 2 (0 tried, 1 weight 0, 3 down)", got)
		}
	}
}

func TestEWMAPack(t *testing.T) {
	v := packEWMA(123456789, 42)
	avg, stamp := unpackEWMA(v)
	if stamp != 42 || !near(avg, 123456789, 1e-7) {
		t.Fatalf("unpacked %v %d", avg, stamp)
	}
	// The timestamp wraps after 49 days; decay still sees a small Δ.
	before, after := uint32(math.MaxUint32-4), uint32(5)
	if d := decay(after, before); !near(d, math.Exp(-10.0/10000), 1e-9) {
		t.Fatalf("decay across the wrap: %v", d)
	}
	// A pick time before the last sample counts as no time at all.
	if d := decay(before, after); d != 1 {
		t.Fatalf("negative Δ decays by %v", d)
	}
	// The table matches math.Exp.
	for _, ms := range []uint32{1, 255, 256, 1000, 10000, 65537, 1 << 20, 1<<31 - 1} {
		if got, want := decay(ms, 0), math.Exp(-float64(ms)/10000); math.Abs(got-want) > 1e-12+1e-9*want {
			t.Fatalf("decay(%d ms) = %v, want %v", ms, got, want)
		}
	}
}
