package core

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/store"
)

// Manager keeps the served configuration in step with the store: it loads
// everything at one revision, compiles and publishes a snapshot, then
// applies watch events in batches (a burst of writes costs one compile).
// Admin writes wait with WaitRevision until their revision is served, which
// gives read-your-writes.
type Manager struct {
	Store   store.Store
	Runtime *Runtime
	Proxy   *Proxy
	// Logf logs skipped values and watch trouble; nil discards.
	Logf func(format string, args ...any)
	// OnPublish, when set, is called after each snapshot is published
	// (health checkers and the control API follow snapshots through it).
	// It runs with the runtime's node-set lock held (see discovery.go): it
	// must not compile, nor wait for discovery.
	OnPublish func(*Snapshot)

	// InvalidValues counts stored values skipped because they did not
	// validate.
	InvalidValues atomic.Uint64
	// Compiles counts full snapshot compiles; Updates counts incremental
	// route updates; Compactions counts route indexes rebuilt in the
	// background.
	Compiles    atomic.Uint64
	Updates     atomic.Uint64
	Compactions atomic.Uint64

	mu      sync.Mutex
	cfg     *Config
	applied int64
	notify  chan struct{}

	// compacted receives background rebuilds of the route index; only the
	// goroutine that follows the store reads compacting and the channel.
	compacted  chan compaction
	compacting bool
}

// A change confined to routes is applied incrementally (Runtime.Update),
// whatever the configuration's size: a full compile of even a thousand
// routes costs a millisecond of the proxy's core, which 100 writes/s turn
// into a tenth of it. The route index is rebuilt in the background once
// compactAfter routes have changed since it was built.
const compactAfter = 256

// compaction is a route index rebuilt in the background from the routes
// of table from.
type compaction struct {
	from    *RouteTable
	base    *Router
	entries []*RouteEntry
}

// Prefix is the key prefix of every resource the gateway serves.
const Prefix = "/apisix/"

// Start loads the configuration and publishes the first snapshot; it
// returns once that snapshot is served. It then follows the store until
// ctx ends.
func (m *Manager) Start(ctx context.Context) error {
	kvs, rev, err := m.Store.List(ctx, Prefix)
	if err != nil {
		return err
	}
	m.notify = make(chan struct{})
	m.compacted = make(chan compaction, 1)
	m.publish(m.buildFrom(kvs, rev))
	go m.follow(ctx, rev)
	return nil
}

// Config returns the configuration currently served. It is immutable.
func (m *Manager) Config() *Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// WaitRevision blocks until the served configuration reflects store
// revision rev (or ctx ends).
func (m *Manager) WaitRevision(ctx context.Context, rev int64) error {
	for {
		m.mu.Lock()
		applied, ch := m.applied, m.notify
		m.mu.Unlock()
		if applied >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (m *Manager) buildFrom(kvs []store.KV, rev int64) *Config {
	cfg := NewConfig()
	for _, kv := range kvs {
		m.put(cfg, kv)
	}
	cfg.Revision = rev
	m.translateKong(cfg, nil)
	return cfg
}

// translateKong derives the Kong routes and upstreams of cfg, reusing
// prev's where their inputs are unchanged. Problems are logged and counted
// like invalid values.
func (m *Manager) translateKong(cfg *Config, prev *KongDerived) {
	d, problems := TranslateKong(&cfg.Kong, prev)
	for _, err := range problems {
		m.InvalidValues.Add(1)
		m.logf("config: %v", err)
	}
	cfg.KongDerived = d
}

// publish compiles cfg in full and serves it.
func (m *Manager) publish(cfg *Config) {
	snap := m.Runtime.Compile(cfg, m.Proxy.Snapshot())
	m.Compiles.Add(1)
	m.install(cfg, snap)
}

// publishRoutes serves cfg, which differs from what is served only in the
// APISIX routes named by ids, with an incremental update.
func (m *Manager) publishRoutes(cfg *Config, ids []string) {
	snap := m.Runtime.Update(cfg, m.Proxy.Snapshot(), ids)
	m.Updates.Add(1)
	m.install(cfg, snap)
	m.maybeCompact()
}

// maybeCompact starts a background rebuild of the route index once many
// routes have changed since it was built, so that updates stay cheap.
func (m *Manager) maybeCompact() {
	t := m.Proxy.Snapshot().Routes
	if m.compacting || t.Pending() < compactAfter {
		return
	}
	m.compacting = true
	go func() {
		entries := t.Entries()
		m.compacted <- compaction{from: t, base: BuildRouter(entries), entries: entries}
	}()
}

// installCompaction serves the rebuilt route index, with the routes that
// changed while it was being built as its overlay. It is dropped when a
// full compile replaced the index meanwhile.
func (m *Manager) installCompaction(c compaction) {
	m.compacting = false
	cur := m.Proxy.Snapshot()
	if cur.Routes.base != c.from.base {
		return
	}
	next := *cur
	next.Routes = cur.Routes.Compacted(c.base, c.entries)
	m.Compactions.Add(1)
	m.Runtime.dynMu.Lock()
	m.Runtime.latest = &next
	m.Proxy.Publish(&next)
	if m.OnPublish != nil {
		m.OnPublish(&next)
	}
	m.Runtime.dynMu.Unlock()
	m.maybeCompact()
}

// install serves snap, compiled from cfg, and wakes WaitRevision callers.
func (m *Manager) install(cfg *Config, snap *Snapshot) {
	// New discovered upstreams serve their nodes from the first request
	// (bounded wait; see AwaitDiscovery).
	m.Runtime.AwaitDiscovery(snap)
	// A node-set change of a discovered upstream (which builds a new
	// version and resyncs health checks) never interleaves with the
	// publication and its hook.
	m.Runtime.dynMu.Lock()
	m.Proxy.Publish(snap)
	if m.OnPublish != nil {
		m.OnPublish(snap)
	}
	m.Runtime.dynMu.Unlock()
	m.mu.Lock()
	m.cfg = cfg
	m.applied = cfg.Revision
	close(m.notify)
	m.notify = make(chan struct{})
	m.mu.Unlock()
}

// follow applies watch events until ctx ends, re-listing after compaction
// and re-watching (with a short back-off) after errors.
func (m *Manager) follow(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		ch := m.Store.Watch(ctx, rev)
		rev = m.consume(ctx, ch, rev)
		if ctx.Err() != nil {
			return
		}
		select {
		case <-time.After(500 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	}
}

// consume applies responses from one watch channel and returns the last
// revision applied.
func (m *Manager) consume(ctx context.Context, ch <-chan store.WatchResponse, rev int64) int64 {
	for {
		var resp store.WatchResponse
		var ok bool
		select {
		case resp, ok = <-ch:
		case c := <-m.compacted:
			m.installCompaction(c)
			continue
		}
		if !ok {
			return rev
		}
		if resp.Err != nil {
			m.logf("config: watch failed: %v", resp.Err)
			return rev
		}
		if resp.Compacted {
			kvs, r, err := m.Store.List(ctx, Prefix)
			if err != nil {
				m.logf("config: cannot re-list after compaction: %v", err)
				return rev
			}
			m.publish(m.buildFrom(kvs, r))
			return r
		}
		events := resp.Events
		last := max(rev, resp.Revision)
		// Coalesce a burst: take whatever else is already waiting. A
		// compaction or error ends the batch; the caller starts over.
		stop := false
	drain:
		for {
			select {
			case more, ok := <-ch:
				if !ok || more.Err != nil || more.Compacted {
					stop = true
					break drain
				}
				events = append(events, more.Events...)
				last = max(last, more.Revision)
			default:
				break drain
			}
		}
		m.apply(events, last)
		rev = last
		if stop {
			return rev
		}
	}
}

// apply builds a new config from the current one plus events and
// publishes it. Unchanged objects keep their pointers.
func (m *Manager) apply(events []store.Event, rev int64) {
	old := m.Config()
	cfg := &Config{Routes: old.Routes, Upstreams: old.Upstreams, Services: old.Services, SSLs: old.SSLs,
		Kong: old.Kong, KongDerived: old.KongDerived, Revision: rev}
	copied := map[Kind]bool{}
	var routeIDs []string
	for _, ev := range events {
		kind, id, ok := splitKey(ev.KV.Key)
		if !ok {
			continue
		}
		if kind == KindRoutes {
			routeIDs = append(routeIDs, id)
		}
		if !copied[kind] {
			cfg.copyKind(kind)
			copied[kind] = true
		}
		if ev.Type == store.EventDelete {
			cfg.remove(ev.KV.Key)
			continue
		}
		m.put(cfg, ev.KV)
	}
	if copied[KindKongServices] || copied[KindKongRoutes] || copied[KindKongUpstreams] || copied[KindKongTargets] {
		m.translateKong(cfg, old.KongDerived)
	}
	if len(copied) == 0 {
		// Nothing the proxy serves changed (e.g. the id counter).
		m.mu.Lock()
		if rev > m.applied {
			m.applied = rev
			close(m.notify)
			m.notify = make(chan struct{})
		}
		m.mu.Unlock()
		return
	}
	if len(copied) == 1 && copied[KindRoutes] {
		m.publishRoutes(cfg, routeIDs)
		return
	}
	m.publish(cfg)
}

// put parses kv into cfg. An invalid value is logged, counted and skipped;
// whatever cfg held for the key before stays.
func (m *Manager) put(cfg *Config, kv store.KV) {
	kind, id, ok := splitKey(kv.Key)
	if !ok {
		return
	}
	var err error
	switch kind {
	case KindRoutes:
		var r *Route
		if r, err = ParseRoute(kv.Value); err == nil {
			r.ID = id
			cfg.Routes[id] = r
		}
	case KindUpstreams:
		var u *Upstream
		if u, err = ParseUpstream(kv.Value); err == nil {
			u.ID = id
			cfg.Upstreams[id] = u
		}
	case KindServices:
		var s *Service
		if s, err = ParseService(kv.Value); err == nil {
			s.ID = id
			cfg.Services[id] = s
		}
	case KindSSLs:
		var s *SSL
		if s, err = ParseSSL(kv.Value); err == nil {
			s.ID = id
			cfg.SSLs[id] = s
		}
	case KindKongServices, KindKongRoutes, KindKongUpstreams, KindKongTargets:
		var v any
		if v, err = ParseKong(kind, kv.Value); err == nil {
			cfg.Kong.set(id, v)
		}
	}
	if err != nil {
		m.InvalidValues.Add(1)
		m.logf("config: skipping invalid value at %s: %v", kv.Key, err)
	}
}

func (cfg *Config) copyKind(kind Kind) {
	switch kind {
	case KindRoutes:
		cfg.Routes = cloneMap(cfg.Routes)
	case KindUpstreams:
		cfg.Upstreams = cloneMap(cfg.Upstreams)
	case KindServices:
		cfg.Services = cloneMap(cfg.Services)
	case KindSSLs:
		cfg.SSLs = cloneMap(cfg.SSLs)
	case KindKongServices:
		cfg.Kong.Services = cloneMap(cfg.Kong.Services)
	case KindKongRoutes:
		cfg.Kong.Routes = cloneMap(cfg.Kong.Routes)
	case KindKongUpstreams:
		cfg.Kong.Upstreams = cloneMap(cfg.Kong.Upstreams)
	case KindKongTargets:
		cfg.Kong.Targets = cloneMap(cfg.Kong.Targets)
	}
}

func (cfg *Config) remove(key string) {
	kind, id, _ := splitKey(key)
	switch kind {
	case KindRoutes:
		delete(cfg.Routes, id)
	case KindUpstreams:
		delete(cfg.Upstreams, id)
	case KindServices:
		delete(cfg.Services, id)
	case KindSSLs:
		delete(cfg.SSLs, id)
	case KindKongServices:
		delete(cfg.Kong.Services, id)
	case KindKongRoutes:
		delete(cfg.Kong.Routes, id)
	case KindKongUpstreams:
		delete(cfg.Kong.Upstreams, id)
	case KindKongTargets:
		delete(cfg.Kong.Targets, id)
	}
}

func cloneMap[V any](m map[string]V) map[string]V {
	c := make(map[string]V, len(m)+1)
	for k, v := range m {
		c[k] = v
	}
	return c
}

// splitKey splits "/apisix/routes/1" into (routes, "1").
func splitKey(key string) (Kind, string, bool) {
	rest, ok := strings.CutPrefix(key, Prefix)
	if !ok {
		return "", "", false
	}
	kind, id, ok := strings.Cut(rest, "/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", "", false
	}
	switch Kind(kind) {
	case KindRoutes, KindUpstreams, KindServices, KindSSLs,
		KindKongServices, KindKongRoutes, KindKongUpstreams, KindKongTargets:
		return Kind(kind), id, true
	}
	return "", "", false
}

func (m *Manager) logf(format string, args ...any) {
	if m.Logf != nil {
		m.Logf(format, args...)
	}
}
