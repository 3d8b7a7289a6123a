package core

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// updateFixture is a config of n routes with a shared
// upstream, a service and routes with inline upstreams.
func updateFixture(n int) *Config {
	cfg := NewConfig()
	cfg.Upstreams["u"] = upstreamOf(18001, 18002)
	cfg.Services["s"] = &Service{ID: "s", UpstreamID: "u", Hosts: []string{"svc.example.com"}}
	for i := 0; i < n; i++ {
		id := fmt.Sprint("r", i)
		r := &Route{ID: id, URIs: []string{fmt.Sprintf("/api/%d", i)}, Status: 1, UpstreamID: "u"}
		switch i % 4 {
		case 1:
			r.URIs[0] += "/*"
		case 2:
			r.UpstreamID, r.Upstream = "", upstreamOf(18100+i%50)
		case 3:
			r.UpstreamID, r.ServiceID = "", "s"
		}
		cfg.Routes[id] = r
	}
	return cfg
}

// TestUpdateMatchesFullCompile applies random route changes with Update
// and checks, after each, that the snapshot answers and counts resources
// exactly as a full Compile of the same config does.
func TestUpdateMatchesFullCompile(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(42, seed))
	cfg := updateFixture(600)
	rt := NewRuntime()
	defer rt.Close()
	snap := rt.Compile(cfg, nil)
	next := 600
	for step := 0; step < 40; step++ {
		c2 := *cfg
		c2.Routes = maps.Clone(cfg.Routes)
		var ids []string
		for k := 1 + rnd.IntN(6); k > 0; k-- {
			var id string
			switch rnd.IntN(3) {
			case 0:
				id = fmt.Sprint("r", next)
				next++
			default:
				id = fmt.Sprint("r", rnd.IntN(next))
			}
			ids = append(ids, id)
			if rnd.IntN(4) == 0 {
				delete(c2.Routes, id)
				continue
			}
			r := &Route{ID: id, URIs: []string{fmt.Sprintf("/api/%d", rnd.IntN(next))}, Status: 1, Priority: rnd.IntN(3)}
			if rnd.IntN(2) == 0 {
				r.URIs[0] += "*"
			}
			switch rnd.IntN(3) {
			case 0:
				r.UpstreamID = "u"
			case 1:
				r.Upstream = upstreamOf(18100 + rnd.IntN(60))
			default:
				r.ServiceID = "s"
			}
			c2.Routes[id] = r
		}
		cfg = &c2
		snap = rt.Update(cfg, snap, ids)

		// The same config compiled in full, on its own runtime.
		frt := NewRuntime()
		full := frt.Compile(cfg, nil)
		if got, want := snap.Routes.Len(), full.Routes.Len(); got != want {
			t.Fatalf("step %d: %d routes, full compile has %d", step, got, want)
		}
		if got, want := len(snap.Balancers), len(full.Balancers); got != want {
			t.Fatalf("step %d: %d balancers, full compile has %d", step, got, want)
		}
		if !maps.Equal(rt.live.nodes, frt.live.nodes) || !maps.Equal(rt.live.pools, frt.live.pools) {
			t.Fatalf("step %d: live node/pool references differ from a full compile:\nupdate %v %v\nfull   %v %v",
				step, rt.live.nodes, rt.live.pools, frt.live.nodes, frt.live.pools)
		}
		buf := make([]byte, 0, 512)
		for q := 0; q < 200; q++ {
			var ctx fasthttp.RequestCtx
			ctx.Request.SetRequestURI(fmt.Sprintf("/api/%d%s", rnd.IntN(next), []string{"", "/x", "1"}[rnd.IntN(3)]))
			ctx.Request.Header.SetHost([]string{"svc.example.com", "other.org"}[rnd.IntN(2)])
			ctx.Init2(nil, nil, false)
			ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 1})
			got, want := snap.Routes.Match(&ctx, buf), full.Routes.Match(&ctx, buf)
			if (got == nil) != (want == nil) || (got != nil && (got.Key != want.Key || got.Upstream.Key != want.Upstream.Key ||
				got.FailStatus != want.FailStatus || len(got.Upstream.Nodes) != len(want.Upstream.Nodes))) {
				t.Fatalf("step %d: %s (Host %s): update serves %s, full compile %s", step, ctx.Path(),
					ctx.Request.Header.Host(), describeEntry(got), describeEntry(want))
			}
		}
		frt.Close()
	}
}

// TestUpdateRepeatedID names one route twice in a change (a new inline
// upstream replacing an old one): the old balancer is released once and
// the new one counted once, as a full compile counts them.
func TestUpdateRepeatedID(t *testing.T) {
	cfg := updateFixture(2100)
	rt := NewRuntime()
	defer rt.Close()
	snap := rt.Compile(cfg, nil)
	c2 := *cfg
	c2.Routes = maps.Clone(cfg.Routes)
	// r2 has an inline upstream on 18102; move it to 18177.
	c2.Routes["r2"] = &Route{ID: "r2", URIs: []string{"/api/2"}, Status: 1, Upstream: upstreamOf(18177)}
	snap = rt.Update(&c2, snap, []string{"r2", "r2"})

	frt := NewRuntime()
	defer frt.Close()
	frt.Compile(&c2, nil)
	if !maps.Equal(rt.live.nodes, frt.live.nodes) || !maps.Equal(rt.live.pools, frt.live.pools) {
		t.Fatalf("live references differ from a full compile:\nupdate %v\nfull   %v", rt.live.pools, frt.live.pools)
	}
	if b := snap.Balancers[Key(KindRoutes, "r2")]; b == nil || len(b.Nodes) != 1 || b.Nodes[0].Addr != "127.0.0.1:18177" {
		t.Fatalf("r2 balancer after the update: %+v", b)
	}
}

// TestUpdateTiming100k logs the cost of a route write at 100,000 routes:
// a full compile against an incremental update (not asserted: timing).
func TestUpdateTiming100k(t *testing.T) {
	if testing.Short() {
		t.Skip("builds 100,000 routes")
	}
	cfg := updateFixture(100000)
	rt := NewRuntime()
	defer rt.Close()
	t0 := time.Now()
	snap := rt.Compile(cfg, nil)
	full := time.Since(t0)
	var worst time.Duration
	for i := 0; i < 20; i++ {
		c2 := *cfg
		t1 := time.Now()
		c2.Routes = maps.Clone(cfg.Routes)
		id := fmt.Sprint("new", i)
		c2.Routes[id] = &Route{ID: id, URIs: []string{"/new/" + id}, Status: 1, UpstreamID: "u"}
		snap = rt.Update(&c2, snap, []string{id})
		worst = max(worst, time.Since(t1))
		cfg = &c2
	}
	t.Logf("100,000 routes: full compile %v; route write (config copy + Update), worst of 20: %v", full, worst)
}
