package core

import (
	"github.com/valyala/fasthttp"
)

// Host classes of a match, best first.
const (
	rankExactHost uint8 = iota
	rankWildHost
	rankNoHost
)

// matchRank places a matched (host key, uri, route) in the router's
// precedence order: exact host before wildcard hosts (longer suffix first)
// before host-less routes; then exact uri before prefixes (longer first);
// then higher priority; then route ID. Two routers that index different
// routes order their matches consistently by it.
type matchRank struct {
	host    uint8
	hostLen int
	prefix  bool
	uriLen  int
}

// beats reports whether a match ranked r with entry e takes precedence over
// one ranked o with entry f.
func (r matchRank) beats(e *RouteEntry, o matchRank, f *RouteEntry) bool {
	if r.host != o.host {
		return r.host < o.host
	}
	if r.hostLen != o.hostLen {
		return r.hostLen > o.hostLen
	}
	if r.prefix != o.prefix {
		return !r.prefix
	}
	if r.uriLen != o.uriLen {
		return r.uriLen > o.uriLen
	}
	if e.Route.Priority != f.Route.Priority {
		return e.Route.Priority > f.Route.Priority
	}
	return e.Route.ID < f.Route.ID
}

// RouteTable is the routing index of a snapshot: a base Router, built from
// every route at some point, plus a small overlay Router of the routes
// changed since, and the set of base entries those changes replaced or
// deleted. A change then costs a rebuild of the overlay only; the manager
// rebuilds the base in the background once the overlay grows (see
// Compact). A RouteTable is immutable and safe for concurrent Match.
type RouteTable struct {
	base *Router
	// overlay indexes the entries of pending that are not nil; nil when
	// nothing changed since base was built.
	overlay *Router
	// dead holds the base entries that pending replaced or deleted.
	dead map[*RouteEntry]struct{}
	// pending maps the key of every route changed since base was built to
	// its current entry (nil when deleted).
	pending map[string]*RouteEntry
	// baseEntries maps each route key to its entry in base.
	baseEntries map[string]*RouteEntry
}

// NewRouteTable indexes entries in a fresh base with no overlay.
func NewRouteTable(entries []*RouteEntry) *RouteTable {
	t := &RouteTable{base: BuildRouter(entries), baseEntries: make(map[string]*RouteEntry, len(entries))}
	for _, e := range entries {
		t.baseEntries[e.Key] = e
	}
	return t
}

// Match returns the entry that serves the request, or nil. With no overlay
// it is exactly Router.Match; otherwise the better (by precedence) of the
// overlay's match and the base's match that skips dead entries. It does not
// allocate or lock.
func (t *RouteTable) Match(ctx *fasthttp.RequestCtx, buf []byte) *RouteEntry {
	if t.overlay == nil {
		// Fast path: no change since the base was built.
		return t.base.Match(ctx, buf)
	}
	m := routeMatch{ctx: ctx, path: ctx.Path(), scratch: buf[:0], dead: t.dead}
	e := t.base.match(&m, buf)
	o := routeMatch{ctx: ctx, path: m.path, scratch: buf[:0]}
	f := t.overlay.match(&o, buf)
	switch {
	case f == nil:
		return e
	case e == nil:
		return f
	case o.rank.beats(f, m.rank, e):
		return f
	}
	return e
}

// Pending returns how many routes changed since the base was built.
func (t *RouteTable) Pending() int { return len(t.pending) }

// Entry returns the compiled route with the given store key, or nil.
func (t *RouteTable) Entry(key string) *RouteEntry {
	if e, ok := t.pending[key]; ok {
		return e
	}
	return t.baseEntries[key]
}

// Len returns the number of routes.
func (t *RouteTable) Len() int {
	n := len(t.baseEntries)
	for k, e := range t.pending {
		_, inBase := t.baseEntries[k]
		switch {
		case e == nil && inBase:
			n--
		case e != nil && !inBase:
			n++
		}
	}
	return n
}

// Each calls f for every route, in no particular order.
func (t *RouteTable) Each(f func(e *RouteEntry)) {
	for k, e := range t.baseEntries {
		if _, changed := t.pending[k]; !changed {
			f(e)
		}
	}
	for _, e := range t.pending {
		if e != nil {
			f(e)
		}
	}
}

// Entries returns every route (for building a fresh base).
func (t *RouteTable) Entries() []*RouteEntry {
	out := make([]*RouteEntry, 0, t.Len())
	t.Each(func(e *RouteEntry) { out = append(out, e) })
	return out
}

// Compacted returns a table with the same routes as t whose base is base,
// a router built from entries, which were t's routes at some earlier time
// (see Compact). The routes changed since then become the overlay.
func (t *RouteTable) Compacted(base *Router, entries []*RouteEntry) *RouteTable {
	n := &RouteTable{base: base, baseEntries: make(map[string]*RouteEntry, len(entries))}
	for _, e := range entries {
		n.baseEntries[e.Key] = e
	}
	changes := map[string]*RouteEntry{}
	for k, e := range t.pending {
		if n.baseEntries[k] != e {
			changes[k] = e
		}
	}
	// Routes deleted from t's base but never in pending cannot exist: every
	// change to t's routes goes through pending.
	return n.With(changes)
}

// With returns a table in which the routes in changes (key → new entry, or
// nil for a deleted route) replace what t holds for those keys. Its cost
// grows with the number of routes changed since the base was built, not
// with the total.
func (t *RouteTable) With(changes map[string]*RouteEntry) *RouteTable {
	if len(changes) == 0 {
		return t
	}
	n := &RouteTable{base: t.base, baseEntries: t.baseEntries,
		pending: make(map[string]*RouteEntry, len(t.pending)+len(changes))}
	for k, e := range t.pending {
		n.pending[k] = e
	}
	for k, e := range changes {
		n.pending[k] = e
	}
	n.dead = make(map[*RouteEntry]struct{}, len(n.pending))
	overlay := make([]*RouteEntry, 0, len(n.pending))
	for k, e := range n.pending {
		if old, ok := n.baseEntries[k]; ok && old != e {
			n.dead[old] = struct{}{}
		}
		if e != nil && n.baseEntries[k] != e {
			overlay = append(overlay, e)
		}
	}
	n.overlay = BuildRouter(overlay)
	return n
}
