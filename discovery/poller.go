package discovery

import (
	"context"
	"sync"
	"time"
)

// Result is the outcome of one lookup, as a registry client reports it.
type Result struct {
	// Nodes is the service's node set when Err is nil; an empty set means
	// the registry said, with authority, that there are no instances.
	Nodes []Node
	// TTL is how long the answer may be trusted (DNS: the smallest TTL of
	// the records used, or the negative-caching TTL). The schedule clamps
	// it.
	TTL time.Duration
	// Empty explains an empty Nodes ("NXDOMAIN", ...).
	Empty string
	// Err is set when the lookup failed: the registry could not be asked,
	// or did not answer with authority. The last good nodes stay.
	Err error
}

// Schedule decides when a service is looked up again.
//
// After a successful lookup (positive or authoritative empty) the next one
// comes after the answer's TTL clamped to [MinTTL, MaxTTL]. After a failed
// one it comes after RetryMin, doubling with every further failure up to
// RetryMax; the next success resets the back-off.
type Schedule struct {
	MinTTL, MaxTTL     time.Duration
	RetryMin, RetryMax time.Duration
}

// DefaultSchedule is the schedule of DNS discovery: TTLs clamped to
// [1 s, 60 s]; after failures 1 s, 2 s, 4 s, ... up to 15 s.
//
// The floor keeps TTL 0 records (Consul's default) from turning into a
// query per request or a busy loop (Kong issues 3641 and 5477); the
// ceiling bounds how long a change behind a long TTL goes unseen.
var DefaultSchedule = Schedule{MinTTL: time.Second, MaxTTL: time.Minute, RetryMin: time.Second, RetryMax: 15 * time.Second}

// Next returns the delay before the next lookup, given the latest result
// and the number of consecutive failures including it.
func (s Schedule) Next(r Result, failures int) time.Duration {
	if r.Err == nil {
		return min(max(r.TTL, s.MinTTL), s.MaxTTL)
	}
	d := s.RetryMin
	for i := 1; i < failures && d < s.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.RetryMax)
}

// lookupFunc runs one lookup; it must return promptly once ctx ends.
type lookupFunc func(ctx context.Context) Result

// hub shares one poller between the watches of one query. It is safe for
// concurrent use.
type hub struct {
	sched Schedule
	logf  func(format string, args ...any)

	mu      sync.Mutex
	closed  bool
	pollers map[string]*poller
}

func newHub(s Schedule, logf func(string, ...any)) *hub {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return &hub{sched: s, logf: logf, pollers: map[string]*poller{}}
}

// watch subscribes to the poller of key, starting it with newLookup when
// none runs. name is how logs call the service.
func (h *hub) watch(key, name string, newLookup func() lookupFunc, notify func(State)) Watch {
	h.mu.Lock()
	defer h.mu.Unlock()
	p := h.pollers[key]
	if p == nil {
		ctx, cancel := context.WithCancel(context.Background())
		p = &poller{h: h, key: key, name: name, lookup: newLookup(), cancel: cancel,
			subs: map[*subscription]bool{}, done: make(chan struct{})}
		h.pollers[key] = p
		if h.closed {
			cancel()
			close(p.done)
		} else {
			go p.run(ctx)
		}
	}
	s := &subscription{p: p, notify: notify}
	p.mu.Lock()
	p.subs[s] = true
	p.mu.Unlock()
	return s
}

// close stops every poller and waits for them.
func (h *hub) close() {
	h.mu.Lock()
	h.closed = true
	ps := make([]*poller, 0, len(h.pollers))
	for _, p := range h.pollers {
		p.cancel()
		ps = append(ps, p)
	}
	h.mu.Unlock()
	for _, p := range ps {
		<-p.done
	}
}

// poller looks one query up on its schedule and tells the subscribers.
type poller struct {
	h      *hub
	key    string
	name   string
	lookup lookupFunc
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	state State
	subs  map[*subscription]bool
}

func (p *poller) run(ctx context.Context) {
	defer close(p.done)
	failures := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		r := p.lookup(ctx)
		if ctx.Err() != nil {
			return
		}
		if r.Err != nil {
			failures++
		} else {
			failures = 0
		}
		if changed := p.record(r, time.Now()); changed {
			p.notify()
		}
		t.Reset(p.h.sched.Next(r, failures))
	}
}

// record stores a result and reports whether subscribers must hear of it.
func (p *poller) record(r Result, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.state
	first := s.Checked.IsZero()
	s.Checked = now
	if r.Err != nil {
		if s.Err == nil || s.Err.Error() != r.Err.Error() {
			// Logged when the failure starts or changes, not on every retry.
			if s.Known {
				p.h.logf("discovery: %s: lookup failed, keeping the last good node set (%d nodes): %v", p.name, len(s.Nodes), r.Err)
			} else {
				p.h.logf("discovery: %s: lookup failed, no nodes known yet: %v", p.name, r.Err)
			}
		}
		s.Err, s.LastErr, s.LastErrAt = r.Err, r.Err, now
		s.Failures++
		return first
	}
	if s.Err != nil {
		p.h.logf("discovery: %s: lookups succeed again (%d nodes)", p.name, len(r.Nodes))
	}
	s.Err = nil
	s.Resolved = now
	nodes := append([]Node(nil), r.Nodes...)
	sortNodes(nodes)
	changed := first || !s.Known || !EqualNodes(s.Nodes, nodes) || s.Empty != r.Empty
	if changed && s.Known && len(nodes) == 0 {
		p.h.logf("discovery: %s: no instances (%s)", p.name, r.Empty)
	}
	s.Known, s.Nodes, s.Empty = true, nodes, r.Empty
	return changed
}

// notify calls every subscriber with the current state.
func (p *poller) notify() {
	p.mu.Lock()
	st := p.state
	subs := make([]*subscription, 0, len(p.subs))
	for s := range p.subs {
		subs = append(subs, s)
	}
	p.mu.Unlock()
	for _, s := range subs {
		s.notify(st)
	}
}

// subscription implements Watch.
type subscription struct {
	p      *poller
	notify func(State)
	once   sync.Once
}

func (s *subscription) State() State {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.p.state
}

func (s *subscription) Stop() {
	s.once.Do(func() {
		p := s.p
		h := p.h
		h.mu.Lock()
		defer h.mu.Unlock()
		p.mu.Lock()
		delete(p.subs, s)
		last := len(p.subs) == 0
		p.mu.Unlock()
		if last && h.pollers[p.key] == p {
			delete(h.pollers, p.key)
			p.cancel()
		}
	})
}
