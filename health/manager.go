package health

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/lb"
	"github.com/panjf2000/ants/v2"
)

// Options configure a Manager. The zero value is usable.
type Options struct {
	// Logf logs state changes and probe trouble; nil discards.
	Logf func(format string, args ...any)
	// Probe runs one active probe; nil means Probe (the network). Tests
	// replace it.
	Probe ProbeFunc
	// MaxWorkers caps the probe pool: the pool holds the sum of the
	// checkers' `concurrency`, at least 16 and at most MaxWorkers
	// (default 1024).
	MaxWorkers int
	// NoKeepAlive makes every http and https probe open its own
	// connection and send `Connection: close`, as APISIX does. By default
	// a target's connection is kept between probes (see ProbeSpec).
	NoKeepAlive bool
}

// Manager runs the health checkers of every upstream that has checks.
//
// Wiring: set it as core.Runtime.Health before the first Compile (the
// compiler then attaches a Passive to each upstream with checks) and call
// Sync with every published snapshot (core.Manager.OnPublish): Sync starts
// the checkers of new upstreams, reconciles the targets of changed ones and
// stops those of upstreams that are gone. Passive and Sync must not run
// concurrently with each other (core runs the compiler, OnPublish and the
// node-set changes of discovered upstreams, which call Passive and then
// Sync, under one lock); every other method is safe for concurrent use.
type Manager struct {
	opts      Options
	probeFunc ProbeFunc
	ctx       context.Context
	cancel    context.CancelFunc
	pool      *ants.Pool

	mu       sync.Mutex
	closed   bool
	checkers map[string]*checker
	targets  map[string]*Target
	// attached holds the node states some live target publishes to.
	attached map[*lb.NodeState]bool

	events     chan struct{}
	pending    atomic.Bool
	eventsDone chan struct{}

	// probes counts active probe outcomes by Kind, then ignored statuses.
	probes [5]atomic.Uint64
	// changes counts state changes.
	changes atomic.Uint64
}

// NewManager returns a running manager with no checkers.
func NewManager(o Options) *Manager {
	if o.MaxWorkers <= 0 {
		o.MaxWorkers = 1024
	}
	m := &Manager{
		opts:       o,
		probeFunc:  o.Probe,
		checkers:   map[string]*checker{},
		targets:    map[string]*Target{},
		attached:   map[*lb.NodeState]bool{},
		events:     make(chan struct{}, 1),
		eventsDone: make(chan struct{}),
	}
	if m.probeFunc == nil {
		m.probeFunc = Probe
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	pool, err := ants.NewPool(min(16, o.MaxWorkers),
		ants.WithNonblocking(true),
		ants.WithExpiryDuration(10*time.Second),
		ants.WithPanicHandler(func(r any) { m.logf("health: probe worker panicked: %v", r) }))
	if err != nil {
		panic("BUG: health: cannot create the probe pool: " + err.Error())
	}
	m.pool = pool
	go m.eventLoop()
	return m
}

// Close stops every checker and the probe pool, waiting up to a few
// seconds for running probes. The manager cannot be used afterwards.
func (m *Manager) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	cs := make([]*checker, 0, len(m.checkers))
	for _, c := range m.checkers {
		c.stop()
		cs = append(cs, c)
	}
	for _, t := range m.targets {
		t.conns.Close()
	}
	m.mu.Unlock()
	m.cancel()
	for _, c := range cs {
		if c.started() {
			<-c.done
		}
	}
	<-m.eventsDone
	_ = m.pool.ReleaseTimeout(5 * time.Second)
}

func (m *Manager) submit(task func()) error { return m.pool.Submit(task) }

// Passive builds the passive hook of a compiled balancer whose upstream has
// checks, creating its targets or finding those that already exist (same
// upstream, address and checks.active host and port). It implements
// core.HealthAttacher and is called by the compiler only.
func (m *Manager) Passive(b *core.Balancer) core.PassiveHealth {
	hc := b.Conf.Checks
	if hc == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	targets := make([]*Target, len(b.Nodes))
	for i := range b.Nodes {
		// A node given by host name (or discovered) has its address here,
		// and its name in Domain.
		n := b.NodeConfig(i)
		host, port, hostname := splitHost(n.Host), n.Port, ""
		if a := hc.Active; a != nil {
			if a.Port > 0 {
				port = a.Port
			}
			hostname = a.Host
		}
		key := targetKey(b.Key, host, port, hostname)
		t := m.targets[key]
		if t == nil || t.detached() {
			t = &Target{Upstream: b.Key, IP: host, Port: port, Hostname: hostname, key: key,
				addr: probeAddr(host, port), m: m}
			switch {
			case n.Domain != "":
				t.HostHeader = n.Domain
			case !isIP(host):
				t.HostHeader = host
			}
			m.targets[key] = t
		}
		if s := b.Nodes[i].State; !t.hasNode(s) {
			var nodes []*lb.NodeState
			if ns := t.nodes.Load(); ns != nil {
				nodes = append(nodes, *ns...)
			}
			t.setNodes(append(nodes, s))
			t.publish()
		}
		targets[i] = t
	}
	return newPassive(hc, targets)
}

// Sync reconciles the checkers with a published snapshot: checkers of new
// upstreams start (their first probes come one interval later), changed
// upstreams get their new configuration and target list (targets that
// remain keep their state, counters and probe rhythm), and checkers and
// targets that are gone stop; their nodes are released to "up".
func (m *Manager) Sync(s *core.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	liveTargets := map[*Target][]*lb.NodeState{}
	liveCheckers := map[string]bool{}
	workers := 0
	keys := make([]string, 0, len(s.Balancers))
	for key := range s.Balancers {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		// A discovered upstream's nodes are those of its current version.
		b := s.Balancers[key].Live()
		p, _ := b.Health().(*Passive)
		if p == nil {
			continue
		}
		liveCheckers[key] = true
		var list []*Target
		for i, t := range p.targets {
			nodes, seen := liveTargets[t]
			if !seen {
				list = append(list, t)
			}
			if st := b.Nodes[i].State; !containsState(nodes, st) {
				nodes = append(nodes, st)
			}
			liveTargets[t] = nodes
		}
		c := m.checkers[key]
		if c == nil {
			c = newChecker(m, key)
			m.checkers[key] = c
		}
		if b.Conf.Checks.Active != nil {
			workers += max(b.Conf.Checks.Active.Concurrency, 1)
		}
		if c.conf == b.Conf && c.from == b {
			continue
		}
		c.from = b
		var cfg *activeConfig
		if b.Conf.Checks.Active != nil {
			cfg = newActiveConfig(b.Conf)
			cfg.keepAlive = !m.opts.NoKeepAlive
		}
		c.set(b.Conf, cfg, list)
		if cfg != nil && !c.started() {
			c.start()
		}
	}
	attached := make(map[*lb.NodeState]bool, len(m.attached))
	for _, nodes := range liveTargets {
		for _, st := range nodes {
			attached[st] = true
		}
	}
	for key, t := range m.targets {
		if _, ok := liveTargets[t]; ok {
			continue
		}
		t.detach()
		delete(m.targets, key)
	}
	// A node no live target covers any more is never held down.
	for st := range m.attached {
		if !attached[st] {
			st.SetDown(false)
		}
	}
	m.attached = attached
	for t, nodes := range liveTargets {
		t.setNodes(nodes)
		t.publish()
	}
	for key, c := range m.checkers {
		if !liveCheckers[key] {
			c.stop()
			delete(m.checkers, key)
		}
	}
	m.pool.Tune(min(max(workers, 16), m.opts.MaxWorkers))
}

func containsState(list []*lb.NodeState, s *lb.NodeState) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// notify wakes the event loop after a state change. On the request path it
// costs one CAS, plus one non-blocking channel send for the first change
// since the loop last ran.
func (m *Manager) notify() {
	if m.pending.CompareAndSwap(false, true) {
		select {
		case m.events <- struct{}{}:
		default:
		}
	}
}

// eventLoopSpacing is the least time between two runs of the event loop:
// a flapping node costs at most one log line per run.
const eventLoopSpacing = 100 * time.Millisecond

// eventLoop logs state changes. After a wake-up it looks at every target
// and logs, once, each whose state differs from the state it last logged,
// with the number of changes in between (a node flapping faster than the
// loop runs is not logged once per flip; gateway_health_state_changes_total
// counts every flip).
func (m *Manager) eventLoop() {
	defer close(m.eventsDone)
	for {
		select {
		case <-m.events:
		case <-m.ctx.Done():
			return
		}
		m.pending.Store(false)
		changed := map[string]bool{}
		for _, t := range m.allTargets() {
			st, c := t.snapshot()
			flips := t.flips.Swap(0)
			if st == t.logged && flips == 0 || t.detached() {
				continue
			}
			changed[t.Upstream] = true
			m.logf("health: %s node %s: %s -> %s (success=%d http_failure=%d tcp_failure=%d timeout_failure=%d, %d changes)",
				t.Upstream, t.addr, t.logged, st, c.Success, c.HTTPFailure, c.TCPFailure, c.TimeoutFailure, flips)
			t.logged = st
		}
		// A state changed by passive reports may change the target's
		// probe interval: its checker looks again.
		m.mu.Lock()
		for key := range changed {
			if c := m.checkers[key]; c != nil {
				c.rescan.Store(true)
				c.signal()
			}
		}
		m.mu.Unlock()
		select {
		case <-time.After(eventLoopSpacing):
		case <-m.ctx.Done():
			return
		}
	}
}

func (m *Manager) allTargets() []*Target {
	m.mu.Lock()
	defer m.mu.Unlock()
	ts := make([]*Target, 0, len(m.targets))
	for _, t := range m.targets {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].key < ts[j].key })
	return ts
}

func (m *Manager) logf(format string, args ...any) {
	if m.opts.Logf != nil {
		m.opts.Logf(format, args...)
	}
}
