package health

import (
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/lb"
)

// Target is one checked address of an upstream: APISIX's (ip, port,
// hostname) triple, where port is checks.active.port or the node's port and
// hostname is checks.active.host. Nodes that map to the same triple share
// one target, as in APISIX.
//
// Its state and counters live in one atomic word, changed by CAS from probe
// goroutines and from the request path alike. Targets are keyed by upstream
// key and address, so they outlive snapshots: an edit that keeps the
// address keeps the state.
type Target struct {
	// Upstream is the key of the upstream, e.g. "/apisix/upstreams/1".
	Upstream string
	// IP is the node's host (an IP address or a name).
	IP string
	// Port is the port probed and reported against.
	Port int
	// Hostname is checks.active.host, "" when not set.
	Hostname string
	// HostHeader is the node's domain name when the node is given by name
	// (APISIX's hostheader), "" otherwise.
	HostHeader string

	key  string
	addr string // IP:Port, for dialing and logs
	m    *Manager

	word atomic.Uint64
	// nodes are the node states this target publishes its health to.
	nodes atomic.Pointer[[]*lb.NodeState]

	// probing is set while an active probe of the target runs.
	probing atomic.Bool
	// due is when the latest probe was due (or when the target was added);
	// owned by the checker goroutine.
	due time.Time
	// logged is the state last logged; owned by the manager's event loop.
	logged State
	// flips counts state changes not yet logged.
	flips atomic.Uint32
	// conns keeps the probe connection between probes.
	conns ConnCache
}

func targetKey(upstream, ip string, port int, hostname string) string {
	return upstream + "|" + net.JoinHostPort(ip, strconv.Itoa(port)) + "|" + hostname
}

// Addr returns "ip:port" (IPv6 bracketed).
func (t *Target) Addr() string { return t.addr }

// State returns the target's state.
func (t *Target) State() State { return wordState(t.word.Load()) }

// Counters returns the target's counters.
func (t *Target) Counters() Counters { return wordCounters(t.word.Load()) }

// snapshot returns state and counters read together.
func (t *Target) snapshot() (State, Counters) {
	w := t.word.Load()
	return wordState(w), wordCounters(w)
}

// report applies one report of kind k with threshold limit. It neither
// locks nor allocates: a CAS on the state word, then, only when the state
// moves between up and down, stores to the nodes' down flags, and, only
// when the state changes, a wake-up of the manager's event loop.
func (t *Target) report(k Kind, limit int) {
	for {
		w := t.word.Load()
		nw, changed := apply(w, k, limit)
		if !changed {
			return
		}
		if !t.word.CompareAndSwap(w, nw) {
			continue
		}
		from, to := wordState(w), wordState(nw)
		if from.Up() != to.Up() {
			t.publish()
		}
		if from != to && t.m != nil {
			t.flips.Add(1)
			t.m.changes.Add(1)
			t.m.notify()
		}
		return
	}
}

// publish stores the target's up/down class into every node it covers.
//
// Two reports flipping the state in opposite directions may store out of
// order; each store is therefore followed by a check that the class it
// stored is still current, and repeated otherwise, so the last store always
// reflects the final word. A detached target stores "up": a node without a
// checker is never held down.
func (t *Target) publish() {
	for {
		w := t.word.Load()
		down := isDown(w)
		if ns := t.nodes.Load(); ns != nil {
			for _, s := range *ns {
				// Store only on change: the flag shares a cache line with
				// counters the pickers read on every request.
				if s.Down() != down {
					s.SetDown(down)
				}
			}
		}
		if isDown(t.word.Load()) == down {
			return
		}
	}
}

func isDown(w uint64) bool { return w&detachedBit == 0 && !wordState(w).Up() }

// detach marks the target as gone: later reports are ignored and its
// probe connection is closed.
func (t *Target) detach() {
	t.conns.Close()
	for {
		w := t.word.Load()
		if w&detachedBit != 0 || t.word.CompareAndSwap(w, w|detachedBit) {
			return
		}
	}
}

func (t *Target) detached() bool { return t.word.Load()&detachedBit != 0 }

// setNodes replaces the node states the target publishes to.
func (t *Target) setNodes(nodes []*lb.NodeState) {
	t.nodes.Store(&nodes)
}

// hasNode reports whether s is among the target's nodes.
func (t *Target) hasNode(s *lb.NodeState) bool {
	if ns := t.nodes.Load(); ns != nil {
		for _, x := range *ns {
			if x == s {
				return true
			}
		}
	}
	return false
}
