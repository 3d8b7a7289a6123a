//go:build !race

package lb

import (
	"testing"
	"time"
)

// TestPickAllocations: Pick and Done allocate nothing, on the fast path and
// on the retry walks, for every algorithm, with and without priorities.
func TestPickAllocations(t *testing.T) {
	for name, build := range constructors {
		for _, size := range []int{1, 2, 40} {
			weights := make([]int, size)
			for i := range weights {
				weights[i] = 1 + i%3
			}
			ns := nodes(weights...)
			for i, n := range ns {
				n.Priority = i % 2
			}
			pickers := map[string]Picker{"plain": build(ns), "priority": NewPriority(ns, build), "single": NewSingle(build(ns[:1]), ns[0])}
			for kind, p := range pickers {
				var r Request
				k := uint64(0)
				run := func() {
					r.Reset()
					k += 0x9e3779b97f4a7c15
					r.Hash = k
					for range 4 {
						n := p.Pick(&r)
						if n == nil {
							return
						}
						r.Tried.Add(n.Index)
						p.Done(n, time.Millisecond, false)
					}
				}
				if allocs := testing.AllocsPerRun(200, run); allocs != 0 {
					t.Errorf("%s/%s/%d: %.1f allocations per request", name, kind, size, allocs)
				}
			}
		}
	}
}
