package core

import (
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
)

// routerSink keeps benchmark results observable so that the compiler
// cannot drop the calls.
var routerSink atomic.Pointer[RouteEntry]

// benchRoutes generates n routes with distinct uris: even ones exact, odd
// ones prefix; one in ten bound to an exact host, one in ten to a wildcard
// host, the rest host-less. With n == 1 it returns one host-less route with
// an exact and a prefix uri, so that every benchmark case can hit.
func benchRoutes(n int) []*RouteEntry {
	if n == 1 {
		r := &Route{ID: "0", Status: 1, URIs: []string{"/api/v0/svc0/res0", "/api/v3/svc0/res3/*"}}
		return []*RouteEntry{{Route: r}}
	}
	entries := make([]*RouteEntry, n)
	for i := range entries {
		r := &Route{ID: strconv.Itoa(i), Status: 1, Priority: i % 3, URIs: []string{benchURI(i)}}
		e := &RouteEntry{Route: r}
		switch i % 10 {
		case 1:
			e.Hosts = []string{fmt.Sprintf("h%d.example.com", i%100)}
		case 6:
			e.Hosts = []string{fmt.Sprintf("*.w%d.example.com", i%20)}
		}
		entries[i] = e
	}
	return entries
}

// benchURI is the uri of generated route i.
func benchURI(i int) string {
	u := fmt.Sprintf("/api/v%d/svc%d/res%d", i%4, i/64, i)
	if i%2 == 1 {
		u += "/*"
	}
	return u
}

// benchCases returns requests against benchRoutes(n) and the route IDs
// they must reach ("" for none).
func benchCases(n int) []struct {
	name string
	q    rq
	want string
} {
	// With one route, both uris belong to route "0".
	exact, prefix, wantExact, wantPrefix := 0, 3, "0", "0"
	if n > 1 {
		// Host-less routes from the middle of the set.
		exact, prefix = n/2+2, n/2+3
		wantExact, wantPrefix = strconv.Itoa(exact), strconv.Itoa(prefix)
	}
	host := "www.example.org"
	cases := []struct {
		name string
		q    rq
		want string
	}{
		{"hit-exact", rq{uri: benchURI(exact), host: host}, wantExact},
		{"hit-prefix", rq{uri: benchURI(prefix)[:len(benchURI(prefix))-1] + "items/42", host: host}, wantPrefix},
		{"miss", rq{uri: "/api/v1/svc1/nothing", host: host}, ""},
	}
	if n > 1 {
		wild := n/2 + 6
		cases = append(cases, struct {
			name string
			q    rq
			want string
		}{"hit-wildcard", rq{uri: benchURI(wild), host: fmt.Sprintf("a.b.w%d.example.com", wild%20)}, strconv.Itoa(wild)})
	}
	return cases
}

func BenchmarkRouterMatch(b *testing.B) {
	for _, n := range []int{1, 10_000, 100_000} {
		r := BuildRouter(benchRoutes(n))
		for _, c := range benchCases(n) {
			b.Run(fmt.Sprintf("routes=%d/%s", n, c.name), func(b *testing.B) {
				if got := matchID(r, c.q.ctx(b)); got != c.want {
					b.Fatalf("got route %q, want %q", got, c.want)
				}
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					// Each goroutine owns its request and buffer, as the
					// server's goroutines do.
					ctx, err := c.q.build()
					if err != nil {
						panic(err)
					}
					buf := make([]byte, 0, 512)
					var e *RouteEntry
					for pb.Next() {
						e = r.Match(ctx, buf)
					}
					routerSink.Store(e)
				})
			})
		}
	}
}

// BenchmarkRouterBuild reports the time to build the index (ns/op, one
// goroutine: a build is never parallel) and the heap it keeps (the index
// alone: the entries and their routes exist before and are not counted).
func BenchmarkRouterBuild(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			entries := benchRoutes(n)
			retained := routerHeap(entries)
			b.ReportAllocs()
			for b.Loop() {
				r := BuildRouter(entries)
				if r.Len() != n {
					b.Fatalf("Len = %d, want %d", r.Len(), n)
				}
			}
			// After the loop: b.Loop resets the timer and the metrics.
			b.ReportMetric(float64(retained)/(1<<20), "index-MiB")
			b.ReportMetric(float64(retained)/float64(n), "index-B/route")
		})
	}
}

// routerHeap returns the live heap a Router over entries holds, measured
// with runtime.MemStats before and after building it.
func routerHeap(entries []*RouteEntry) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := BuildRouter(entries)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(r)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// TestRouterMemory logs the heap held by the index (go test -v -run Memory).
func TestRouterMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100k routes")
	}
	for _, n := range []int{10_000, 100_000} {
		entries := benchRoutes(n)
		h := routerHeap(entries)
		t.Logf("routes=%d: index holds %.2f MiB (%d B/route)", n, float64(h)/(1<<20), h/uint64(n))
	}
}
