package core

import (
	"sync/atomic"
)

// upstreamSplit divides a route's requests between several balancers by
// weight (a Route.Split compiled). Choosing is one atomic add and a slice
// read: a precomputed smooth weighted round-robin schedule is walked by a
// shared counter, so that over every len(schedule) consecutive requests
// each share gets exactly its weight (reduced by the weights' GCD) and the
// shares are interleaved rather than served in runs.
//
// An upstreamSplit belongs to one snapshot; its counter starts from zero
// when the route is compiled again.
type upstreamSplit struct {
	choices  []splitChoice
	schedule []uint16 // indexes into choices
	next     atomic.Uint64
}

// splitChoice is one share of a split. b is nil when the upstream it names
// does not exist; such a share answers failStatus.
type splitChoice struct {
	b          *Balancer
	timeout    Timeout
	failStatus int
}

// maxSchedule bounds the schedule length; larger weight sums are scaled
// down proportionally (keeping every non-zero weight ≥ 1).
const maxSchedule = 4096

// newUpstreamSplit builds the schedule for weights (one per choice). It
// returns nil when every weight is 0.
func newUpstreamSplit(choices []splitChoice, weights []int) *upstreamSplit {
	w := scaleWeights(weights)
	total := 0
	for _, x := range w {
		total += x
	}
	if total == 0 {
		return nil
	}
	s := &upstreamSplit{choices: choices, schedule: make([]uint16, 0, total)}
	// Smooth weighted round-robin (nginx): each step adds every weight to
	// its current value and takes the largest, which then pays the total.
	cur := make([]int, len(w))
	for range total {
		best := -1
		for i, x := range w {
			if x == 0 {
				continue
			}
			cur[i] += x
			if best < 0 || cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		s.schedule = append(s.schedule, uint16(best))
	}
	return s
}

// scaleWeights divides the weights by their GCD and, when their sum is
// still above maxSchedule, scales them down proportionally.
func scaleWeights(weights []int) []int {
	g := 0
	for _, x := range weights {
		if x > 0 {
			g = gcd(g, x)
		}
	}
	out := make([]int, len(weights))
	if g == 0 {
		return out
	}
	sum := 0
	for i, x := range weights {
		if x > 0 {
			out[i] = x / g
			sum += out[i]
		}
	}
	if sum <= maxSchedule {
		return out
	}
	for i, x := range out {
		if x > 0 {
			out[i] = max(1, x*maxSchedule/sum)
		}
	}
	return out
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pick returns the share for the next request. It neither locks nor
// allocates and is safe for concurrent use.
func (s *upstreamSplit) pick() *splitChoice {
	n := s.next.Add(1) - 1
	return &s.choices[s.schedule[n%uint64(len(s.schedule))]]
}
