package core

import (
	"fmt"
	"runtime"
	"testing"
)

// heapOf returns the live heap that build's result holds.
func heapOf(build func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := build()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// TestMemoryPerRoute measures the heap a route costs once parsed from its
// Admin API JSON and compiled into a served snapshot (model, router index,
// route entry, counters; upstream pools are per node address, shared), for
// 10,000 routes in two shapes: all naming one upstream, and each with an
// inline upstream over two of 100 node addresses. The figures are in
// docs/security.md; the ceiling here is a guard against regressions.
func TestMemoryPerRoute(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 20,000 routes")
	}
	const n = 10_000
	shapes := map[string]func(i int) string{
		"shared upstream": func(i int) string {
			return fmt.Sprintf(`{"uri":"/api/v1/items/%d/*","methods":["GET","POST"],"hosts":["api%d.example.com"],"upstream_id":"u"}`, i, i%50)
		},
		"inline upstream": func(i int) string {
			return fmt.Sprintf(`{"uri":"/api/v1/items/%d/*","methods":["GET","POST"],"hosts":["api%d.example.com"],
				"upstream":{"type":"roundrobin","nodes":{"10.0.%d.1:8080":1,"10.0.%d.2:8080":1}}}`, i, i%50, i%50, i%50)
		},
	}
	for name, body := range shapes {
		rt := NewRuntime()
		h := heapOf(func() any {
			cfg := NewConfig()
			u, err := ParseUpstream([]byte(`{"nodes":{"10.0.0.1:8080":1,"10.0.0.2:8080":1}}`))
			if err != nil {
				t.Fatal(err)
			}
			u.ID = "u"
			cfg.Upstreams["u"] = u
			for i := 0; i < n; i++ {
				r, err := ParseRoute([]byte(body(i)))
				if err != nil {
					t.Fatal(err)
				}
				r.ID = fmt.Sprint(i)
				cfg.Routes[r.ID] = r
			}
			return rt.Compile(cfg, nil)
		})
		rt.Close()
		per := h / n
		t.Logf("%s: %d routes hold %.1f MiB, %d B per route", name, n, float64(h)/(1<<20), per)
		if per > 8<<10 {
			t.Errorf("%s: %d B per route, ceiling 8 KiB", name, per)
		}
	}
}
