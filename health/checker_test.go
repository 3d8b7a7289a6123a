package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeway/gateway/core"
)

// script is a fake ProbeFunc: each address answers what its function says,
// and every probe's time (from the bubble's start) is recorded.
type script struct {
	mu    sync.Mutex
	start time.Time
	fn    map[string]func(context.Context) ProbeResult
	times map[string][]time.Duration
	specs map[string]ProbeSpec
}

func newScript() *script {
	return &script{start: time.Now(), fn: map[string]func(context.Context) ProbeResult{},
		times: map[string][]time.Duration{}, specs: map[string]ProbeSpec{}}
}

func (s *script) set(addr string, f func(context.Context) ProbeResult) {
	s.mu.Lock()
	s.fn[addr] = f
	s.mu.Unlock()
}

func (s *script) status(addr string, status int) {
	s.set(addr, func(context.Context) ProbeResult { return ProbeResult{Status: status} })
}

func (s *script) probe(ctx context.Context, spec *ProbeSpec) ProbeResult {
	s.mu.Lock()
	s.times[spec.Addr] = append(s.times[spec.Addr], time.Since(s.start))
	s.specs[spec.Addr] = *spec
	f := s.fn[spec.Addr]
	s.mu.Unlock()
	if f == nil {
		return ProbeResult{Status: 200}
	}
	return f(ctx)
}

func (s *script) seconds(addr string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, d := range s.times[addr] {
		out = append(out, int(d/time.Second))
	}
	return out
}

// env is a runtime compiling configs with a health manager attached,
// inside a synctest bubble.
type env struct {
	t    *testing.T
	rt   *core.Runtime
	m    *Manager
	s    *script
	snap *core.Snapshot
	logs []string
	mu   sync.Mutex
}

func newEnv(t *testing.T) *env {
	e := &env{t: t, rt: core.NewRuntime(), s: newScript()}
	e.m = NewManager(Options{Probe: e.s.probe, Logf: func(f string, a ...any) {
		e.mu.Lock()
		e.logs = append(e.logs, fmt.Sprintf(f, a...))
		e.mu.Unlock()
	}})
	e.rt.Health = e.m
	t.Cleanup(func() { e.m.Close(); e.rt.Close() })
	return e
}

func upstream(t *testing.T, js string) *core.Upstream {
	t.Helper()
	u, err := core.ParseUpstream([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// publish compiles and syncs a config holding the given upstreams (by id).
func (e *env) publish(ups map[string]*core.Upstream) {
	cfg := core.NewConfig()
	for id, u := range ups {
		u.ID = id
		cfg.Upstreams[id] = u
	}
	e.snap = e.rt.Compile(cfg, e.snap)
	e.m.Sync(e.snap)
}

func (e *env) status(key, addr string) NodeStatus {
	e.t.Helper()
	cs, ok := e.m.Status(key)
	if !ok {
		e.t.Fatalf("no checker for %s", key)
	}
	for _, n := range cs.Nodes {
		if probeAddr(n.IP, n.Port) == addr {
			return n
		}
	}
	e.t.Fatalf("no node %s in %+v", addr, cs)
	return NodeStatus{}
}

func (e *env) down(key string, i int) bool {
	return e.snap.Balancers[key].Nodes[i].State.Down()
}

func eq(a, b []int) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

const up1 = "/apisix/upstreams/1"

// TestIntervalsPerState: healthy targets are probed every healthy.interval
// from one interval after the checker starts; a target that turns
// unhealthy is then probed every unhealthy.interval, and back on the
// healthy rhythm once it recovers.
func TestIntervalsPerState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.s.status("10.0.0.1:80", 500)
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1,"10.0.0.2:80":1},
			"checks":{"active":{"healthy":{"interval":2,"successes":2},"unhealthy":{"interval":5,"http_failures":2}}}}`)})
		time.Sleep(10500 * time.Millisecond)
		synctest.Wait()
		// 10.0.0.1 fails at 2 and 4 (unhealthy at 4), then every 5 s.
		if got := e.s.seconds("10.0.0.1:80"); !eq(got, []int{2, 4, 9}) {
			t.Fatalf("failing node probed at %v", got)
		}
		if got := e.s.seconds("10.0.0.2:80"); !eq(got, []int{2, 4, 6, 8, 10}) {
			t.Fatalf("healthy node probed at %v", got)
		}
		if !e.down(up1, 0) || e.down(up1, 1) {
			t.Fatal("wrong node down")
		}
		n := e.status(up1, "10.0.0.1:80")
		if n.State != Unhealthy || n.Counters != ctr(0, 2, 0, 0) {
			t.Fatalf("failing node: %+v", n)
		}
		// Recovery: successes at 14 and 19 bring it back; from then on
		// it is on the 2 s rhythm again.
		e.s.status("10.0.0.1:80", 200)
		time.Sleep(13 * time.Second) // until 23.5
		synctest.Wait()
		if got := e.s.seconds("10.0.0.1:80"); !eq(got, []int{2, 4, 9, 14, 19, 21, 23}) {
			t.Fatalf("recovering node probed at %v", got)
		}
		if e.down(up1, 0) {
			t.Fatal("recovered node still down")
		}
		if n := e.status(up1, "10.0.0.1:80"); n.State != Healthy || n.Counters != ctr(2, 0, 0, 0) {
			t.Fatalf("recovered node: %+v", n)
		}
	})
}

// TestTransitionsThroughMostlyStates follows one target through all four
// states with active probes, and checks the log line of each change.
func TestTransitionsThroughMostlyStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		const a = "10.0.0.1:80"
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1},
			"checks":{"active":{"healthy":{"interval":1,"successes":3},"unhealthy":{"interval":1,"http_failures":3}}}}`)})
		step := func(status int, want State, wantC Counters, wantDown bool) {
			t.Helper()
			e.s.status(a, status)
			time.Sleep(time.Second)
			synctest.Wait()
			n := e.status(up1, a)
			if n.State != want || n.Counters != wantC || e.down(up1, 0) != wantDown {
				t.Fatalf("after a %d: %v %+v down=%v, want %v %+v down=%v", status, n.State, n.Counters,
					e.down(up1, 0), want, wantC, wantDown)
			}
		}
		time.Sleep(500 * time.Millisecond) // probes at x.0; look at x.5
		step(200, Healthy, ctr(0, 0, 0, 0), false)
		step(500, MostlyHealthy, ctr(0, 1, 0, 0), false)
		step(200, MostlyHealthy, ctr(1, 0, 0, 0), false)
		step(500, MostlyHealthy, ctr(0, 1, 0, 0), false)
		step(500, MostlyHealthy, ctr(0, 2, 0, 0), false)
		step(500, Unhealthy, ctr(0, 3, 0, 0), true)
		step(200, MostlyUnhealthy, ctr(1, 0, 0, 0), true)
		step(404, MostlyUnhealthy, ctr(0, 1, 0, 0), true)
		step(418, MostlyUnhealthy, ctr(0, 1, 0, 0), true) // in neither list: ignored
		step(200, MostlyUnhealthy, ctr(1, 0, 0, 0), true)
		step(200, MostlyUnhealthy, ctr(2, 0, 0, 0), true)
		step(200, Healthy, ctr(3, 0, 0, 0), false)
		step(200, Healthy, ctr(3, 0, 0, 0), false)

		e.mu.Lock()
		logs := fmt.Sprint(e.logs)
		e.mu.Unlock()
		for _, want := range []string{"healthy -> mostly_healthy", "mostly_healthy -> unhealthy",
			"unhealthy -> mostly_unhealthy", "mostly_unhealthy -> healthy"} {
			if !contains(logs, want) {
				t.Errorf("no log line %q in %s", want, logs)
			}
		}
	})
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// TestProbeFailureKinds: connect errors count as tcp failures, timeouts as
// timeouts, each against its own threshold; for type tcp a connect is a
// success.
func TestProbeFailureKinds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.s.set("10.0.0.1:80", func(context.Context) ProbeResult { return ProbeResult{Err: errors.New("connection refused")} })
		e.s.set("10.0.0.2:80", func(context.Context) ProbeResult { return ProbeResult{Err: context.DeadlineExceeded} })
		e.s.set("10.0.0.3:80", func(context.Context) ProbeResult { return ProbeResult{Status: 0} })
		e.publish(map[string]*core.Upstream{
			"1": upstream(t, `{"nodes":{"10.0.0.1:80":1,"10.0.0.2:80":1,"10.0.0.3:80":1},
				"checks":{"active":{"unhealthy":{"tcp_failures":2,"timeouts":3,"http_failures":1}}}}`),
			"2": upstream(t, `{"nodes":{"10.0.0.9:80":1},"checks":{"active":{"type":"tcp"}}}`),
		})
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if n := e.status(up1, "10.0.0.1:80"); n.State != Unhealthy || n.Counters != ctr(0, 0, 2, 0) {
			t.Errorf("refused: %+v", n)
		}
		if n := e.status(up1, "10.0.0.2:80"); n.State != MostlyHealthy || n.Counters != ctr(0, 0, 0, 2) {
			t.Errorf("timeouts after 2 probes: %+v", n)
		}
		if n := e.status(up1, "10.0.0.3:80"); n.State != Unhealthy || n.Counters != ctr(0, 1, 0, 0) {
			t.Errorf("unparsable status line: %+v", n)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n := e.status(up1, "10.0.0.2:80"); n.State != Unhealthy || n.Counters != ctr(0, 0, 0, 3) {
			t.Errorf("timeouts after 3 probes: %+v", n)
		}
		if n := e.status("/apisix/upstreams/2", "10.0.0.9:80"); n.State != Healthy {
			t.Errorf("tcp check: %+v", n)
		}
		if e.s.specs["10.0.0.9:80"].Type != "tcp" {
			t.Errorf("tcp probe spec %+v", e.s.specs["10.0.0.9:80"])
		}
	})
}

// TestHungNodeDelaysNoOther: one target's probe hangs far beyond its
// interval (and another's panics); the other targets are still probed on
// time, and the hung target skips turns instead of piling up probes.
func TestHungNodeDelaysNoOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.s.set("10.0.0.1:80", func(ctx context.Context) ProbeResult {
			select {
			case <-time.After(10 * time.Second):
			case <-ctx.Done():
			}
			return ProbeResult{Err: context.DeadlineExceeded}
		})
		e.s.set("10.0.0.2:80", func(context.Context) ProbeResult { panic("boom") })
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1,"10.0.0.2:80":1,"10.0.0.3:80":1},
			"checks":{"active":{"concurrency":2,"healthy":{"interval":1}}}}`)})
		time.Sleep(6500 * time.Millisecond)
		synctest.Wait()
		if got := e.s.seconds("10.0.0.3:80"); !eq(got, []int{1, 2, 3, 4, 5, 6}) {
			t.Fatalf("healthy node probed at %v beside a hung one", got)
		}
		if got := e.s.seconds("10.0.0.2:80"); !eq(got, []int{1, 2, 3, 4, 5, 6}) {
			t.Fatalf("panicking node probed at %v", got)
		}
		if got := e.s.seconds("10.0.0.1:80"); !eq(got, []int{1}) {
			t.Fatalf("hung node probed at %v", got)
		}
		time.Sleep(6 * time.Second) // to 12.5
		synctest.Wait()
		// The hang ends at 11, the very moment of a turn: that turn or
		// the next one probes again.
		if got := e.s.seconds("10.0.0.1:80"); len(got) != 2 || got[1] != 11 && got[1] != 12 {
			t.Fatalf("hung node probed at %v; want a new probe at its first turn after the hang", got)
		}
		if n := e.status(up1, "10.0.0.1:80"); n.Counters.TimeoutFailure != 1 {
			t.Fatalf("hung node: %+v", n)
		}
	})
}

// TestStateSurvivesUnrelatedEdits: a new desc and an added node keep the
// ejected node ejected, with its counters and its probe rhythm; the new
// node starts healthy with its own first probe one interval later.
func TestStateSurvivesUnrelatedEdits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		const checks = `"checks":{"active":{"healthy":{"interval":1},"unhealthy":{"interval":3,"tcp_failures":2}}}`
		e.s.set("10.0.0.1:80", func(context.Context) ProbeResult { return ProbeResult{Err: errors.New("refused")} })
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1,"10.0.0.2:80":1},`+checks+`}`)})
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if !e.down(up1, 0) {
			t.Fatal("not ejected")
		}
		before := e.m.targets[targetKey(up1, "10.0.0.1", 80, "")]
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"desc":"edited","nodes":{"10.0.0.1:80":1,"10.0.0.2:80":1,"10.0.0.3:80":5},`+checks+`}`)})
		synctest.Wait()
		if !e.down(up1, 0) || e.down(up1, 1) || e.down(up1, 2) {
			t.Fatalf("after the edit: down = %v %v %v", e.down(up1, 0), e.down(up1, 1), e.down(up1, 2))
		}
		if after := e.m.targets[targetKey(up1, "10.0.0.1", 80, "")]; after != before {
			t.Fatal("the edit replaced the target")
		}
		if n := e.status(up1, "10.0.0.1:80"); n.State != Unhealthy || n.Counters != ctr(0, 0, 2, 0) {
			t.Fatalf("ejected node after the edit: %+v", n)
		}
		time.Sleep(6 * time.Second) // to 8.5
		synctest.Wait()
		// The unhealthy rhythm continues: 2 (flip), 5, 8.
		if got := e.s.seconds("10.0.0.1:80"); !eq(got, []int{1, 2, 5, 8}) {
			t.Fatalf("ejected node probed at %v", got)
		}
		if got := e.s.seconds("10.0.0.3:80"); !eq(got, []int{3, 4, 5, 6, 7, 8}) {
			t.Fatalf("added node probed at %v", got)
		}
		if !e.down(up1, 0) {
			t.Fatal("the ejected node came back while still failing")
		}

		// Changing checks keeps the state too (thresholds apply anew).
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1,"10.0.0.2:80":1},
			"checks":{"active":{"healthy":{"interval":1,"successes":1},"unhealthy":{"interval":1,"tcp_failures":2}}}}`)})
		if !e.down(up1, 0) {
			t.Fatal("a checks edit reset the ejected node")
		}
		e.s.status("10.0.0.1:80", 200)
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if e.down(up1, 0) {
			t.Fatal("one success (successes: 1) did not bring the node back")
		}
	})
}

// TestCheckerStopsWithItsUpstream: deleting the upstream (or its checks)
// stops the probes and releases its nodes.
func TestCheckerStopsWithItsUpstream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.s.status("10.0.0.1:80", 500)
		u := `{"nodes":{"10.0.0.1:80":1},"checks":{"active":{"unhealthy":{"http_failures":1}}}}`
		e.publish(map[string]*core.Upstream{"1": upstream(t, u), "2": upstream(t, u)})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		old := e.snap
		if !old.Balancers[up1].Nodes[0].State.Down() {
			t.Fatal("not ejected")
		}
		// Upstream 1 loses its checks; upstream 2 is deleted.
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1}}`)})
		if e.down(up1, 0) {
			t.Fatal("a node without checks is held down")
		}
		if _, ok := e.m.Status(up1); ok {
			t.Fatal("checker of an upstream without checks still listed")
		}
		n := len(e.s.seconds("10.0.0.1:80"))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if got := len(e.s.seconds("10.0.0.1:80")); got != n {
			t.Fatalf("%d probes after the checkers stopped", got-n)
		}
		// A request still in flight on the old snapshot reports to a
		// detached target: nothing happens.
		old.Balancers[up1].Health().TryFailed(0, 502, true)
		old.Balancers[up1].Health().Final(0, 500)
		if e.down(up1, 0) {
			t.Fatal("a report on the old snapshot took the node down")
		}
	})
}

// TestSharedTargetWithActivePort: with checks.active.port, nodes on one IP
// share one target (APISIX's target is ip, port, hostname).
func TestSharedTargetWithActivePort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.s.status("10.0.0.1:9000", 503)
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1,"10.0.0.1:81":1},
			"pass_host":"rewrite","upstream_host":"svc.example",
			"checks":{"active":{"port":9000,"host":"probe.example","http_path":"/status","req_headers":["X-A: 1"],
			"unhealthy":{"http_failures":1}}}}`)})
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		cs, _ := e.m.Status(up1)
		if len(cs.Nodes) != 1 || cs.Nodes[0].Port != 9000 || cs.Nodes[0].Hostname != "probe.example" {
			t.Fatalf("targets %+v", cs.Nodes)
		}
		if !e.down(up1, 0) || !e.down(up1, 1) {
			t.Fatal("both nodes share the target and must be down")
		}
		spec := e.s.specs["10.0.0.1:9000"]
		if spec.Host != "svc.example" || spec.Path != "/status" || string(spec.Headers) != "X-A: 1\r\n" {
			t.Fatalf("probe spec %+v", spec)
		}
	})
}

func TestPassiveReports(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.publish(map[string]*core.Upstream{
			// Passive configured: the final status counts; threshold 1.
			"1": upstream(t, `{"nodes":{"10.0.0.1:80":1,"10.0.0.2:80":1},"checks":{"active":{"healthy":{"interval":60},"unhealthy":{"interval":60}},
				"passive":{"healthy":{"successes":1},"unhealthy":{"http_statuses":[502],"http_failures":1,"tcp_failures":1,"timeouts":2}}}}`),
			// Active only: only reports before a retry count, with
			// lua-resty-healthcheck's passive defaults (tcp_failures 2).
			"2": upstream(t, `{"nodes":{"10.0.0.1:80":1},"checks":{"active":{"healthy":{"interval":60},"unhealthy":{"interval":60}}}}`),
		})
		p1 := e.snap.Balancers[up1].Health()
		p1.Final(0, 500) // not in passive.unhealthy.http_statuses: ignored
		if e.down(up1, 0) {
			t.Fatal("500 counted")
		}
		p1.Final(0, 502)
		if !e.down(up1, 0) {
			t.Fatal("502 (http_failures 1) did not trip the breaker")
		}
		p1.TryFailed(1, 504, true)
		if n := e.status(up1, "10.0.0.2:80"); n.State != MostlyHealthy || n.Counters != ctr(0, 0, 0, 1) {
			t.Fatalf("timeout before retry: %+v", n)
		}
		p1.TryFailed(1, 502, true)
		if !e.down(up1, 1) {
			t.Fatal("tcp failure (tcp_failures 1) did not trip")
		}
		// Passive successes count too (a down node gets traffic only
		// through fail-open; here one is reported directly).
		p1.Final(0, 200)
		if e.down(up1, 0) {
			t.Fatal("passive success (successes 1) did not count")
		}

		const up2 = "/apisix/upstreams/2"
		p2 := e.snap.Balancers[up2].Health()
		p2.Final(0, 500)
		p2.Final(0, 503)
		if n := e.status(up2, "10.0.0.1:80"); n.State != Healthy || n.Counters != ctr(0, 0, 0, 0) {
			t.Fatalf("final statuses counted without checks.passive: %+v", n)
		}
		p2.TryFailed(0, 502, true)
		p2.TryFailed(0, 502, true)
		if !e.down(up2, 0) {
			t.Fatal("two failed tries before retries did not trip (default tcp_failures 2)")
		}
	})
}

// TestPassiveTripProbedOnUnhealthyInterval: a node tripped by passive
// checks is probed on the unhealthy interval from then on, and comes back
// through active probes.
func TestPassiveTripProbedOnUnhealthyInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"nodes":{"10.0.0.1:80":1},"checks":{
			"active":{"healthy":{"interval":10,"successes":2},"unhealthy":{"interval":1}},
			"passive":{"unhealthy":{"http_failures":1}}}}`)})
		time.Sleep(12500 * time.Millisecond) // probed at 10
		e.snap.Balancers[up1].Health().Final(0, 500)
		if !e.down(up1, 0) {
			t.Fatal("not tripped")
		}
		time.Sleep(3 * time.Second) // to 15.5
		synctest.Wait()
		// Overdue on the 1 s rhythm at the trip (12.5): probed at once,
		// then every second; two successes bring it back at 13.5.
		if got := e.s.seconds("10.0.0.1:80"); !eq(got, []int{10, 12, 13}) {
			t.Fatalf("probed at %v; want the unhealthy rhythm right after the trip", got)
		}
		if e.down(up1, 0) {
			t.Fatal("two successful probes did not bring the node back")
		}
	})
}
