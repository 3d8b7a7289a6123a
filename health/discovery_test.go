package health

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/discovery"
)

// fakeRegistry is a discovery.Discoverer whose node sets the test sets.
type fakeRegistry struct {
	mu     sync.Mutex
	state  discovery.State
	notify []func(discovery.State)
}

func (f *fakeRegistry) Watch(_ discovery.Query, notify func(discovery.State)) discovery.Watch {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.notify = append(f.notify, notify)
	return fakeRegistryWatch{f}
}

type fakeRegistryWatch struct{ f *fakeRegistry }

func (w fakeRegistryWatch) State() discovery.State {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	return w.f.state
}

func (w fakeRegistryWatch) Stop() {}

func (f *fakeRegistry) set(hosts ...string) {
	st := discovery.State{Known: true, Checked: time.Now(), Resolved: time.Now()}
	for _, h := range hosts {
		st.Nodes = append(st.Nodes, discovery.Node{Host: h, Port: 80, Weight: 1})
	}
	f.mu.Lock()
	f.state = st
	ns := append([]func(discovery.State){}, f.notify...)
	f.mu.Unlock()
	for _, n := range ns {
		n(st)
	}
}

// TestDiscoveredNodesKeepHealth: the health of a discovered upstream's
// nodes follows its node-set changes: a node that stays keeps its state
// (an ejected node stays ejected, its probe rhythm continues), a new node
// is probed, a node that leaves stops being probed.
func TestDiscoveredNodesKeepHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		reg := &fakeRegistry{}
		e.rt.Discovery = discovery.Set{"dns": reg}
		reg.set("10.0.0.1", "10.0.0.2")
		e.s.set("10.0.0.1:80", func(context.Context) ProbeResult { return ProbeResult{Err: errors.New("refused")} })
		e.publish(map[string]*core.Upstream{"1": upstream(t, `{"discovery_type":"dns","service_name":"web.test",
			"checks":{"active":{"healthy":{"interval":1},"unhealthy":{"interval":3,"tcp_failures":2}}}}`)})
		root := e.snap.Balancers[up1]
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if !root.Live().Nodes[0].State.Down() {
			t.Fatal("not ejected")
		}

		reg.set("10.0.0.1", "10.0.0.2", "10.0.0.3")
		synctest.Wait()
		v := root.Live()
		if len(v.Nodes) != 3 || !v.Nodes[0].State.Down() || v.Nodes[1].State.Down() || v.Nodes[2].State.Down() {
			t.Fatalf("after the node-set change: %d nodes", len(v.Nodes))
		}
		if n := e.status(up1, "10.0.0.1:80"); n.State != Unhealthy {
			t.Fatalf("ejected node after the change: %+v", n)
		}
		time.Sleep(6 * time.Second) // to 8.5 s
		synctest.Wait()
		if got := e.s.seconds("10.0.0.1:80"); !eq(got, []int{1, 2, 5, 8}) {
			t.Fatalf("ejected node probed at %v (its rhythm must continue)", got)
		}
		if got := e.s.seconds("10.0.0.3:80"); !eq(got, []int{3, 4, 5, 6, 7, 8}) {
			t.Fatalf("new node probed at %v", got)
		}

		reg.set("10.0.0.2", "10.0.0.3")
		synctest.Wait()
		n := len(e.s.seconds("10.0.0.1:80"))
		time.Sleep(4 * time.Second)
		synctest.Wait()
		if got := len(e.s.seconds("10.0.0.1:80")); got != n {
			t.Fatalf("a node that left was probed %d more times", got-n)
		}
		if cs, _ := e.m.Status(up1); len(cs.Nodes) != 2 {
			t.Fatalf("status lists %d nodes, want 2", len(cs.Nodes))
		}
	})
}
