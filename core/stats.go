package core

import (
	"sync/atomic"
	"time"
)

// RouteStats counts a route's responses by status class (index 1 for 1xx
// through 5 for 5xx; 0 for anything else). It is kept across snapshots,
// keyed by route, so edits do not reset it. Counting is one atomic add.
type RouteStats struct {
	ByClass [6]atomic.Uint64
}

func (s *RouteStats) count(status int) {
	c := status / 100
	if c < 1 || c > 5 {
		c = 0
	}
	s.ByClass[c].Add(1)
}

// latencyBuckets are the upper bounds (seconds) of the request latency
// histogram, Prometheus style.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}

// Metrics holds process-wide request counters and the latency histogram,
// as plain atomics so that observing a request neither locks nor
// allocates (VictoriaMetrics' Histogram takes a mutex per update).
type Metrics struct {
	// buckets[i] counts requests with latency <= latencyBuckets[i] and
	// above the previous bound; the last one counts the rest (+Inf).
	buckets [len(latencyBuckets) + 1]atomic.Uint64
	sumNs   atomic.Uint64
	count   atomic.Uint64
	// NotFound counts requests no route matched.
	NotFound atomic.Uint64
}

// NewMetrics returns zeroed metrics.
func NewMetrics() *Metrics { return &Metrics{} }

func (m *Metrics) observe(status int, d time.Duration) {
	if status == 404 {
		m.NotFound.Add(1)
	}
	sec := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && sec > latencyBuckets[i] {
		i++
	}
	m.buckets[i].Add(1)
	m.sumNs.Add(uint64(d))
	m.count.Add(1)
}

// Histogram returns the cumulative bucket counts (matching Bounds, plus
// +Inf last), the sum of latencies in seconds and the count.
func (m *Metrics) Histogram() (cumulative []uint64, sum float64, count uint64) {
	cumulative = make([]uint64, len(m.buckets))
	var acc uint64
	for i := range m.buckets {
		acc += m.buckets[i].Load()
		cumulative[i] = acc
	}
	return cumulative, time.Duration(m.sumNs.Load()).Seconds(), m.count.Load()
}

// LatencyBounds returns the histogram's bucket upper bounds in seconds.
func LatencyBounds() []float64 { return latencyBuckets[:] }
