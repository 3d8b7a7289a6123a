package harness

import (
	"slices"
	"time"
)

// Median returns the median of v (the mean of the two middle values for an
// even count), or 0 for none. v is not modified.
func Median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// CPUPerRequest returns cpu divided by requests in microseconds, or 0
// without requests.
func CPUPerRequest(cpu time.Duration, requests int64) float64 {
	if requests == 0 {
		return 0
	}
	return float64(cpu.Microseconds()) / float64(requests)
}
