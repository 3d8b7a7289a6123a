package lb

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkPickDone measures one Pick and its Done per operation, for each
// algorithm at 2 and 1000 nodes, from GOMAXPROCS goroutines at once (run
// with -cpu 1,2 to see how the shared state scales). chash keys vary per
// operation; ewma nodes have latency data.
//
//	go test -run '^$' -bench PickDone -benchmem -cpu 1,2 ./lb/
func BenchmarkPickDone(b *testing.B) {
	for _, name := range []string{"roundrobin", "chash", "least_conn", "ewma"} {
		for _, size := range []int{2, 1000} {
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				weights := make([]int, size)
				for i := range weights {
					weights[i] = 1
				}
				ns := nodes(weights...)
				for i, n := range ns {
					n.State.observe(millis(sinceEpoch()), float64(time.Millisecond)*(1+float64(i%7)/10))
				}
				p := constructors[name](ns)
				keys := make([]uint64, 1024)
				for i := range keys {
					keys[i] = NewKeyHash().AddString(fmt.Sprintf("client-%d", i)).Sum64()
				}
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					r := Request{Now: time.Now()}
					i := rand.IntN(len(keys))
					for pb.Next() {
						if i&1023 == 0 {
							// The caller's clock reading, as core shares
							// its per-try reading.
							r.Now = time.Now()
						}
						r.Hash = keys[i&1023]
						i++
						n := p.Pick(&r)
						p.Done(n, time.Millisecond, false)
					}
				})
			})
		}
	}
}

var sinkHash uint64

func BenchmarkKeyHash(b *testing.B) {
	key := []byte("203.0.113.195")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var h uint64
		for pb.Next() {
			h += NewKeyHash().Add(key).Sum64()
		}
		sinkHash = h
	})
}
