package health

import (
	"fmt"
	"io"
	"sort"
)

// NodeStatus is one target as the control API shows it.
type NodeStatus struct {
	IP   string
	Port int
	// Hostname is checks.active.host ("" when not set).
	Hostname string
	// HostHeader is the node's domain name ("" for an IP node).
	HostHeader string
	State      State
	Counters   Counters
}

// CheckerStatus is one checker as the control API shows it.
type CheckerStatus struct {
	// Name is the key of the resource that holds the checks, e.g.
	// "/apisix/upstreams/1" or "/apisix/routes/1" for an inline upstream.
	Name string
	// Type is checks.active.type, else checks.passive.type.
	Type  string
	Nodes []NodeStatus
}

// Status returns the checker of the upstream with the given key, if one
// runs.
func (m *Manager) Status(key string) (CheckerStatus, bool) {
	m.mu.Lock()
	c := m.checkers[key]
	m.mu.Unlock()
	if c == nil {
		return CheckerStatus{}, false
	}
	typ, targets := c.state()
	cs := CheckerStatus{Name: key, Type: typ, Nodes: make([]NodeStatus, 0, len(targets))}
	for _, t := range targets {
		st, ctr := t.snapshot()
		cs.Nodes = append(cs.Nodes, NodeStatus{IP: t.IP, Port: t.Port, Hostname: t.Hostname,
			HostHeader: t.HostHeader, State: st, Counters: ctr})
	}
	return cs, true
}

// WritePrometheus writes the health metrics in Prometheus text format:
// gateway_upstream_node_healthy{upstream,node} (1 when the node takes
// traffic, healthy or mostly_healthy; 0 otherwise), the number of checkers
// and targets, probe outcomes and logged state changes.
func (m *Manager) WritePrometheus(w io.Writer) {
	m.mu.Lock()
	keys := make([]string, 0, len(m.checkers))
	for k := range m.checkers {
		keys = append(keys, k)
	}
	checkers := len(m.checkers)
	targets := len(m.targets)
	m.mu.Unlock()
	sort.Strings(keys)
	for _, k := range keys {
		cs, ok := m.Status(k)
		if !ok {
			continue
		}
		for _, n := range cs.Nodes {
			v := 0
			if n.State.Up() {
				v = 1
			}
			fmt.Fprintf(w, "gateway_upstream_node_healthy{upstream=%q,node=%q} %d\n",
				k, probeAddr(n.IP, n.Port), v)
		}
	}
	fmt.Fprintf(w, "gateway_health_checkers %d\n", checkers)
	fmt.Fprintf(w, "gateway_health_targets %d\n", targets)
	for k := Success; k <= TimeoutFailure; k++ {
		fmt.Fprintf(w, "gateway_health_probes_total{result=%q} %d\n", k.String(), m.probes[k].Load())
	}
	fmt.Fprintf(w, "gateway_health_probes_total{result=\"ignored\"} %d\n", m.probes[4].Load())
	fmt.Fprintf(w, "gateway_health_state_changes_total %d\n", m.changes.Load())
}
