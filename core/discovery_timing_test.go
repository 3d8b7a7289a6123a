package core

import (
	"strconv"
	"testing"

	"github.com/edgeway/gateway/discovery"
)

// BenchmarkDiscoveredSwap measures a node-set change of one discovered
// upstream in a configuration of 10,000 routes (each with its own
// upstream), against a Compile of the same configuration (reusing every
// balancer, as an unrelated edit does): the change must cost what the
// upstream costs, not what the configuration does. On the 2-core machine
// here: about 7 µs for the change, 22 ms for the Compile.
func BenchmarkDiscoveredSwap(b *testing.B) {
	cfg := NewConfig()
	for i := 0; i < 10000; i++ {
		id := strconv.Itoa(i)
		cfg.Routes[id] = &Route{ID: id, URIs: []string{"/r/" + id}, Status: 1, Upstream: upstreamOf(1000 + i%50000)}
	}
	cfg.Upstreams["d"] = &Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass", DiscoveryType: "dns", ServiceName: "web.test"}
	cfg.Routes["d"] = &Route{ID: "d", URIs: []string{"/d"}, Status: 1, UpstreamID: "d"}
	disc := newFakeDiscovery()
	rt := NewRuntime()
	defer rt.Close()
	rt.Discovery = discovery.Set{"dns": disc}
	snap := rt.Compile(cfg, nil)
	sets := []discovery.State{known(8001, 8002, 8003), known(8001, 8002, 8004)}

	b.Run("swap", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			disc.set("web.test", sets[i%2])
		}
		if len(snap.Balancers["/apisix/upstreams/d"].Live().Nodes) != 3 {
			b.Fatal("no swap")
		}
	})
	b.Run("compile", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			snap = rt.Compile(cfg, snap)
		}
	})
}
