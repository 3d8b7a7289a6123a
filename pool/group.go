package pool

import (
	"sync"
	"sync/atomic"
	"time"
)

// MaxSNIs bounds the pools of one Group. With pass_host=pass the SNI is
// the client's Host, which a client chooses freely; past this many
// distinct names a request gets a connection of its own, closed after use,
// instead of a new pool.
const MaxSNIs = 64

// EvictAfter is how long a per-request pool (one made for a client's Host)
// may go unused, with no idle connection, before the sweeper removes it,
// making room under MaxSNIs for names in use.
const EvictAfter = 5 * time.Minute

// Group is every pool to one address with one TLS identity and one set of
// pool settings: one pool per SNI, so that a TLS connection is never
// reused for another server name (Kong#4001). A plain HTTP group has one
// pool, for the SNI "".
//
// Pool is lock-free and allocation-free for a server name seen before: it
// reads an immutable map through an atomic pointer. The first request for
// a new name takes the group's mutex and publishes a copy of the map with
// the new pool (copy on write).
type Group struct {
	key  string
	opts Options

	pools atomic.Pointer[map[string]*Pool]

	mu       sync.Mutex // serialises writers of pools and closed
	closed   bool
	overflow atomic.Uint64
}

func newGroup(key string, opts Options) *Group {
	g := &Group{key: key, opts: opts}
	empty := map[string]*Pool{}
	g.pools.Store(&empty)
	return g
}

// Key returns the registry key of the group.
func (g *Group) Key() string { return g.key }

// Options returns the group's settings; for TLS, Options().TLS is the
// template each pool's configuration is cloned from.
func (g *Group) Options() Options { return g.opts }

// Pool returns the pool for server name sni (ignored without TLS). The
// bytes are not retained.
func (g *Group) Pool(sni []byte) *Pool {
	if g.opts.TLS == nil {
		sni = nil
	}
	// Fast path: the map index does not convert sni to a string.
	if p, ok := (*g.pools.Load())[string(sni)]; ok {
		return p
	}
	// Slow path: first use of this server name.
	return g.add(string(sni), false)
}

// PoolFor is Pool for a string, used when compiling a snapshot: the pool
// is pinned (never evicted), since the snapshot holds on to it.
func (g *Group) PoolFor(sni string) *Pool {
	if g.opts.TLS == nil {
		sni = ""
	}
	if p, ok := (*g.pools.Load())[sni]; ok && p.pinned.Load() {
		return p
	}
	return g.add(sni, true)
}

func (g *Group) add(sni string, pinned bool) *Pool {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.pools.Load()
	if p, ok := old[sni]; ok {
		if pinned {
			p.pinned.Store(true)
		}
		return p
	}
	opts := g.opts
	if opts.TLS != nil {
		opts.TLS = opts.TLS.Clone()
		opts.TLS.ServerName = sni
	}
	if g.closed || len(old) >= MaxSNIs {
		// Not pooled: one connection per request, closed on release.
		g.overflow.Add(1)
		opts.MaxIdle, opts.IdleTimeout, opts.MaxRequests = 1, 0, 1
		p := New(opts)
		p.Close()
		return p
	}
	p := New(opts)
	p.pinned.Store(pinned)
	m := make(map[string]*Pool, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[sni] = p
	g.pools.Store(&m)
	return p
}

// Each calls f for every pool of the group.
func (g *Group) Each(f func(sni string, p *Pool)) {
	for sni, p := range *g.pools.Load() {
		f(sni, p)
	}
}

// Overflows counts requests served outside the pools because the group
// already had MaxSNIs pools (or was closed).
func (g *Group) Overflows() uint64 { return g.overflow.Load() }

// close closes every pool; pools asked for later are not pooled.
func (g *Group) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	for _, p := range *g.pools.Load() {
		p.Close()
	}
}

// sweep closes expired idle connections and evicts per-request pools
// unused for EvictAfter. Only the registry's sweeper calls it.
func (g *Group) sweep(now int64) {
	var unused []string
	for sni, p := range *g.pools.Load() {
		p.sweep(now)
		uses := p.opened.Load() + p.reused.Load()
		if p.quietSince == 0 || uses != p.sweptUses || p.idle.count.Load() > 0 {
			p.sweptUses, p.quietSince = uses, now
		} else if time.Duration(now-p.quietSince) >= EvictAfter {
			unused = append(unused, sni)
		}
	}
	if len(unused) == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.pools.Load()
	m := make(map[string]*Pool, len(old))
	for k, v := range old {
		m[k] = v
	}
	for _, sni := range unused {
		if p := m[sni]; p != nil && !p.pinned.Load() {
			delete(m, sni)
			// A request that took the pool just now finishes; its
			// connection is closed on release.
			p.Close()
		}
	}
	g.pools.Store(&m)
}
