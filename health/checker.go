package health

import (
	"net"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/core"
)

// activeConfig is checks.active of one upstream, prepared for probing. It
// is immutable; a config change replaces it.
type activeConfig struct {
	typ         string
	timeout     time.Duration
	concurrency int
	path        string
	headers     []byte
	verify      bool
	// hostOverride is upstream_host when pass_host is rewrite: it is then
	// the Host of every probe.
	hostOverride string
	// intervals by up/down class. 0 means targets of that class are not
	// probed (Kong's convention; APISIX's schema requires ≥ 1 s).
	healthyInterval   time.Duration
	unhealthyInterval time.Duration
	healthy           statusSet
	unhealthy         statusSet
	limits            Thresholds
	// keepAlive keeps http and https probe connections between probes.
	keepAlive bool
}

func newActiveConfig(u *core.Upstream) *activeConfig {
	a := u.Checks.Active
	c := &activeConfig{
		typ:               a.Type,
		timeout:           a.Timeout,
		concurrency:       max(a.Concurrency, 1),
		path:              a.HTTPPath,
		headers:           renderHeaders(a.ReqHeaders),
		verify:            a.HTTPSVerifyCertificate,
		healthyInterval:   a.Healthy.Interval,
		unhealthyInterval: a.Unhealthy.Interval,
		healthy:           newStatusSet(a.Healthy.HTTPStatuses),
		unhealthy:         newStatusSet(a.Unhealthy.HTTPStatuses),
		limits: Thresholds{
			Success:        a.Healthy.Successes,
			HTTPFailure:    a.Unhealthy.HTTPFailures,
			TCPFailure:     a.Unhealthy.TCPFailures,
			TimeoutFailure: a.Unhealthy.Timeouts,
		},
	}
	if c.typ == "" {
		c.typ = "http"
	}
	if c.timeout <= 0 {
		c.timeout = time.Second
	}
	if c.path == "" {
		c.path = "/"
	}
	if u.PassHost == "rewrite" {
		c.hostOverride = u.UpstreamHost
	}
	return c
}

// interval returns how often a target in state s is probed: healthy and
// mostly_healthy targets every healthy.interval, the others every
// unhealthy.interval.
func (c *activeConfig) interval(s State) time.Duration {
	if s.Up() {
		return c.healthyInterval
	}
	return c.unhealthyInterval
}

// classify turns a probe result into a report. ok is false for a status in
// neither list, which APISIX ignores.
func (c *activeConfig) classify(r ProbeResult) (k Kind, ok bool) {
	switch {
	case r.Err != nil && isTimeout(r.Err):
		return TimeoutFailure, true
	case r.Err != nil:
		return TCPFailure, true
	case c.typ == "tcp":
		return Success, true
	case c.healthy.has(r.Status):
		return Success, true
	case r.Status == 0 || c.unhealthy.has(r.Status):
		return HTTPFailure, true
	}
	return 0, false
}

// spec returns the probe of t. The Host is upstream_host under pass_host
// rewrite, else the node's domain name, else checks.active.host, else the
// node's IP.
func (c *activeConfig) spec(t *Target) ProbeSpec {
	host := c.hostOverride
	switch {
	case host != "":
	case t.HostHeader != "":
		host = t.HostHeader
	case t.Hostname != "":
		host = t.Hostname
	case strings.IndexByte(t.IP, ':') >= 0:
		host = "[" + t.IP + "]"
	default:
		host = t.IP
	}
	spec := ProbeSpec{Type: c.typ, Addr: t.addr, Path: c.path, Host: host, Headers: c.headers,
		Timeout: c.timeout, VerifyCertificate: c.verify}
	if c.keepAlive && c.typ != "tcp" {
		spec.Conns = &t.conns
	}
	return spec
}

// checker is one upstream's health checker, APISIX's
// `upstream#<resource key>`. It owns the upstream's targets (for the
// control API) and, with active checks, a goroutine that schedules probes.
//
// Scheduling is per target: a target is probed one interval after it was
// added, then every interval of its current state (fixed rate, so probe
// times do not drift). Probes run on the manager's bounded pool, at most
// `concurrency` at a time for this checker. A target whose previous probe
// still runs (a hung node) skips its turn instead of queueing, and nothing
// waits for a probe, so a hung node delays no other node: it holds one of
// the checker's slots for at most its probe's timeouts.
type checker struct {
	m   *Manager
	key string
	// conf is the upstream the checker was last configured from, and from
	// the compiled balancer (a discovered upstream's version, whose nodes
	// change with the same conf). Both are guarded by Manager.mu.
	conf *core.Upstream
	from *core.Balancer

	mu      sync.Mutex
	typ     string
	cfg     *activeConfig // nil without active checks
	targets []*Target

	wake     chan struct{}
	quit     chan struct{}
	done     chan struct{}
	running  atomic.Bool
	stopped  atomic.Bool
	inflight atomic.Int32
	// starved is set when a due probe waited for a slot; the next probe to
	// finish then wakes the scheduler.
	starved atomic.Bool
	// rescan asks the scheduler to look at every target again (new
	// configuration, or a target whose interval changed).
	rescan atomic.Bool
}

func newChecker(m *Manager, key string) *checker {
	return &checker{m: m, key: key, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// set installs the upstream's configuration and targets.
func (c *checker) set(u *core.Upstream, cfg *activeConfig, targets []*Target) {
	typ := "http"
	if hc := u.Checks; hc.Active != nil {
		typ = hc.Active.Type
	} else if hc.Passive != nil && hc.Passive.Type != "" {
		typ = hc.Passive.Type
	}
	c.mu.Lock()
	c.conf, c.typ, c.cfg, c.targets = u, typ, cfg, targets
	c.mu.Unlock()
	if cfg == nil || !cfg.keepAlive {
		for _, t := range targets {
			t.conns.Drop()
		}
	}
	c.rescan.Store(true)
	c.signal()
}

func (c *checker) state() (string, []*Target) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.typ, c.targets
}

// signal wakes the scheduler without blocking.
func (c *checker) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// stop ends the scheduler; probes still running finish without reporting.
func (c *checker) stop() {
	if c.stopped.CompareAndSwap(false, true) {
		close(c.quit)
	}
}

// start runs the scheduler goroutine.
func (c *checker) start() {
	c.running.Store(true)
	go c.run()
}

func (c *checker) started() bool { return c.running.Load() }

// run is the scheduler goroutine. It scans the targets when the earliest
// due time comes (or when the configuration or a target's interval
// changed) and queues those that are due; it starts queued probes whenever
// a slot is free. Waking up for a free slot costs no scan, so a checker of
// many targets on few slots does O(targets) work per interval, not per
// probe.
func (c *checker) run() {
	defer close(c.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var scanAt time.Time // zero: scan at once
	var queue []*Target
	for {
		c.mu.Lock()
		cfg, targets := c.cfg, c.targets
		c.mu.Unlock()
		now := time.Now()
		if c.rescan.Swap(false) || !now.Before(scanAt) {
			queue, scanAt = scan(now, cfg, targets, queue[:0])
		}
		var retry bool
		queue, retry = c.drain(now, cfg, queue)
		next := scanAt
		if r := now.Add(retrySubmit); retry && r.Before(next) {
			next = r
		}
		timer.Reset(time.Until(next))
		select {
		case <-c.quit:
			return
		case <-c.wake:
		case <-timer.C:
		}
	}
}

// retrySubmit is how soon a probe refused by a full pool is tried again.
const retrySubmit = 10 * time.Millisecond

// scan appends the targets that are due to queue and returns when the
// next one will be.
func scan(now time.Time, cfg *activeConfig, targets []*Target, queue []*Target) ([]*Target, time.Time) {
	next := now.Add(time.Hour)
	if cfg == nil {
		return queue, next
	}
	earliest := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	for _, t := range targets {
		if t.due.IsZero() {
			// Not seen by any scheduler yet: first probe one interval on.
			t.due = now
		}
		iv := cfg.interval(t.State())
		if iv <= 0 {
			continue
		}
		at := t.due.Add(iv)
		switch {
		case at.After(now):
			earliest(at)
		case t.probing.Load():
			// The previous probe still runs (a hung node): skip this
			// turn rather than queue behind it.
			t.due = now
			earliest(now.Add(iv))
		default:
			queue = append(queue, t)
			earliest(at.Add(iv))
		}
	}
	return queue, next
}

// drain starts queued probes while the checker has free slots. retry
// reports a probe the pool refused (it stays queued).
func (c *checker) drain(now time.Time, cfg *activeConfig, queue []*Target) (rest []*Target, retry bool) {
	for len(queue) > 0 {
		if int(c.inflight.Load()) >= cfg.concurrency {
			// Every slot is busy: the next probe to finish wakes us. Look
			// again after saying so, in case it finished in between.
			c.starved.Store(true)
			if int(c.inflight.Load()) >= cfg.concurrency {
				return queue, false
			}
		}
		t := queue[0]
		iv := cfg.interval(t.State())
		if iv <= 0 || t.probing.Load() || t.detached() {
			queue = queue[1:]
			continue
		}
		prev := t.due
		t.due = t.due.Add(iv)
		if now.Sub(t.due) >= iv {
			// More than a whole interval late (a stall, or a skipped
			// turn): restart the rhythm from now rather than catch up.
			t.due = now
		}
		t.probing.Store(true)
		c.inflight.Add(1)
		if err := c.m.submit(func() { c.probe(t, cfg) }); err != nil {
			t.probing.Store(false)
			c.inflight.Add(-1)
			t.due = prev
			return queue, true
		}
		queue = queue[1:]
	}
	return queue, false
}

// probe runs on a pool worker.
func (c *checker) probe(t *Target, cfg *activeConfig) {
	before := t.State()
	defer func() {
		if r := recover(); r != nil {
			c.m.logf("health: %s node %s: probe panicked: %v\n%s", c.key, t.addr, r, debug.Stack())
		}
		t.probing.Store(false)
		c.inflight.Add(-1)
		// Wake the scheduler when the target's interval may have changed
		// or a due probe waits for this slot.
		if t.State().Up() != before.Up() {
			c.rescan.Store(true)
			c.signal()
		} else if c.starved.Swap(false) {
			c.signal()
		}
	}()
	spec := cfg.spec(t)
	res := c.m.probeFunc(c.m.ctx, &spec)
	if c.stopped.Load() || c.m.ctx.Err() != nil || t.detached() {
		return
	}
	k, ok := cfg.classify(res)
	if !ok {
		c.m.probes[4].Add(1)
		return
	}
	c.m.probes[k].Add(1)
	t.report(k, cfg.limits[k])
	// Re-assert the nodes' flags: this heals a node whose flag a racing
	// reconfiguration left stale.
	t.publish()
}

// splitHost returns a node host without IPv6 brackets.
func splitHost(h string) string {
	if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		return h[1 : len(h)-1]
	}
	return h
}

func isIP(h string) bool { return net.ParseIP(splitHost(h)) != nil }
