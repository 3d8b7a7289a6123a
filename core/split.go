package core

import (
	"sync/atomic"

	"github.com/edgeway/gateway/lb"
)

// upstreamSplit divides a route's requests between several balancers by
// weight (a Route.Split compiled). Choosing is one atomic add and a slice
// read: a precomputed smooth weighted round-robin schedule (the roundrobin
// picker's, lb.SmoothSchedule) is walked by a shared counter, so that over
// every len(schedule) consecutive requests each share gets exactly its
// weight (reduced by the weights' GCD) and the shares are interleaved
// rather than served in runs.
//
// An upstreamSplit belongs to one snapshot; its counter starts from zero
// when the route is compiled again.
type upstreamSplit struct {
	choices  []splitChoice
	schedule []uint32 // indexes into choices
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
	schedule := lb.SmoothSchedule(weights, maxSchedule)
	if schedule == nil {
		return nil
	}
	return &upstreamSplit{choices: choices, schedule: schedule}
}

// pick returns the share for the next request. It neither locks nor
// allocates and is safe for concurrent use.
func (s *upstreamSplit) pick() *splitChoice {
	n := s.next.Add(1) - 1
	return &s.choices[s.schedule[n%uint64(len(s.schedule))]]
}
