package core

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// recorder is a PassiveHealth that records every report (tests only; it
// locks, which the real one must not).
type recorder struct {
	mu    sync.Mutex
	calls []string
	nodes []string
}

func (r *recorder) TryFailed(i int, status int, failed bool) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("retry %s %d %v", r.nodes[i], status, failed))
	r.mu.Unlock()
}

func (r *recorder) Final(i int, status int) {
	r.mu.Lock()
	r.calls = append(r.calls, fmt.Sprintf("final %s %d", r.nodes[i], status))
	r.mu.Unlock()
}

func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

type recordingHealth struct{ r *recorder }

func (h recordingHealth) Passive(b *Balancer) PassiveHealth {
	for _, n := range b.Nodes {
		h.r.nodes = append(h.r.nodes, n.Addr)
	}
	return h.r
}

// counting is an allocation-free PassiveHealth for the allocation test.
type counting struct{ retries, finals atomic.Int64 }

func (c *counting) TryFailed(int, int, bool) { c.retries.Add(1) }
func (c *counting) Final(int, int)           { c.finals.Add(1) }

type countingHealth struct{ c *counting }

func (h countingHealth) Passive(*Balancer) PassiveHealth { return h.c }

func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

func withChecks(u *Upstream) *Upstream {
	u.Checks = &HealthChecks{Active: &ActiveCheck{Type: "http"}, Passive: &PassiveCheck{Type: "http"}}
	return u
}

// TestPassiveHooks: a failed try is reported before the retry, and the
// final status against the last node tried — including a status the
// gateway generated.
func TestPassiveHooks(t *testing.T) {
	live := startOrigin(t, nil)
	dead := closedPort(t)
	cfg := NewConfig()
	// Node order is the order given; round robin starts with the first.
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/a"}, Status: 1, Upstream: withChecks(upstreamOf(dead, live.port))}
	one := withChecks(upstreamOf(dead))
	cfg.Routes["2"] = &Route{ID: "2", URIs: []string{"/b"}, Status: 1, Upstream: one}
	rec := &recorder{}
	g := &testGateway{rt: NewRuntime(), proxy: NewProxy()}
	g.rt.Health = recordingHealth{rec}
	g.proxy.Publish(g.rt.Compile(cfg, nil))
	srv := NewServer(g.proxy.Handler)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(); g.rt.Close() })
	base := "http://" + ln.Addr().String()

	if code, _, _ := get(t, base+"/a", nil); code != 200 {
		t.Fatalf("status %d", code)
	}
	deadAddr := fmt.Sprintf("127.0.0.1:%d", dead)
	liveAddr := fmt.Sprintf("127.0.0.1:%d", live.port)
	want := fmt.Sprint([]string{"retry " + deadAddr + " 502 true", "final " + liveAddr + " 200"})
	if got := fmt.Sprint(rec.take()); got != want {
		t.Fatalf("reports %s, want %s", got, want)
	}
	// A single dead node, no retry: only the gateway's 502 is reported.
	if code, _, _ := get(t, base+"/b", nil); code != 502 {
		t.Fatalf("status %d", code)
	}
	if got := fmt.Sprint(rec.take()); got != fmt.Sprint([]string{"final " + deadAddr + " 502"}) {
		t.Fatalf("reports %s", got)
	}
}

// TestFailOpen: nodes marked down are skipped while one is up; when every
// node is down the request is still sent to them (APISIX's fail-open).
func TestFailOpen(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: upstreamOf(a.port, b.port)}
	g := startGateway(t, cfg)
	nodes := g.proxy.Snapshot().Balancers["/apisix/routes/1"].Nodes

	count := func() map[string]int {
		got := map[string]int{}
		for i := 0; i < 8; i++ {
			code, body, _ := get(t, "http://"+g.addr+"/hello", nil)
			if code != 200 {
				t.Fatalf("status %d", code)
			}
			got[body]++
		}
		return got
	}
	nodes[0].State.SetDown(true)
	if got := count(); got[fmt.Sprint(b.port)] != 8 {
		t.Fatalf("with node a down: %v", got)
	}
	nodes[1].State.SetDown(true)
	if got := count(); got[fmt.Sprint(a.port)] != 4 || got[fmt.Sprint(b.port)] != 4 {
		t.Fatalf("with every node down (fail-open): %v", got)
	}
	nodes[0].State.SetDown(false)
	if got := count(); got[fmt.Sprint(a.port)] != 8 {
		t.Fatalf("with node b down: %v", got)
	}
}

// TestFailOpenRetriesEveryNode: with every node down and dead, the
// request still tries each node once, then 502.
func TestFailOpenRetriesEveryNode(t *testing.T) {
	live := startOrigin(t, nil)
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: upstreamOf(closedPort(t), live.port)}
	g := startGateway(t, cfg)
	for _, n := range g.proxy.Snapshot().Balancers["/apisix/routes/1"].Nodes {
		n.State.SetDown(true)
	}
	for i := 0; i < 4; i++ {
		if code, _, _ := get(t, "http://"+g.addr+"/hello", nil); code != 200 {
			t.Fatalf("status %d", code)
		}
	}
}
