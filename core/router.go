package core

import (
	"net"
	"net/netip"

	"github.com/valyala/fasthttp"
)

// Router is an immutable route index built from compiled route entries by
// BuildRouter. It matches requests the way APISIX's default
// `radixtree_host_uri` router does:
//
//   - Host-bound routes are tried first: the exact host, then wildcard
//     suffixes from the longest to the shortest (`*.foo.com`, then a plain
//     `*`). Routes without hosts are tried only when no host-bound route
//     matched, conditions included.
//   - Within one host, routes whose uri equals the path come first, then
//     prefix routes (`/a/b*`) from the longest prefix to the shortest.
//   - Routes sharing one uri string are ordered by Priority (higher first),
//     then by route ID, then by their order in the slice given to BuildRouter.
//   - The first route whose methods, remote_addrs and vars all pass wins.
//
// A Router is never modified after BuildRouter returns, so any number of
// goroutines may call Match and Len concurrently without locking. A
// configuration change builds a new Router and publishes it whole (as part
// of a Snapshot). The zero value and a nil *Router match nothing.
type Router struct {
	// entries holds every bucket (routes sharing one host key and one uri,
	// in precedence order) back to back; a span names one bucket.
	entries []*RouteEntry
	// nodes holds the prefix trees of every host index; a tree is named by
	// the index of its root.
	nodes []radixNode

	// exactHosts indexes host-bound routes by exact, lower-cased host.
	exactHosts map[string]*hostIndex
	// wildHosts indexes host-bound routes by wildcard suffix: `*.foo.com`
	// under ".foo.com", and a plain `*` under "".
	wildHosts map[string]*hostIndex
	// wildLens[n] says whether wildHosts holds a suffix of n bytes, and
	// whether it starts with a dot (wildDot) or not (wildOther). Only those
	// suffixes of the request host are looked up.
	wildLens []uint8
	// hostBound is true when exactHosts or wildHosts is not empty.
	hostBound bool

	// noHost indexes the routes that have no hosts.
	noHost hostIndex

	// n counts the indexed (host, uri, route) triples.
	n int
}

// Kinds of wildcard suffix in Router.wildLens.
const (
	wildDot   uint8 = 1 << iota // the suffix starts with '.' (`*.foo.com`)
	wildOther                   // any other suffix (`*foo.com`, `*`)
)

// span is the half-open range [lo, hi) of Router.entries or Router.nodes.
type span struct{ lo, hi int32 }

func (s span) empty() bool { return s.lo >= s.hi }

// hostIndex holds the routes of one host key.
type hostIndex struct {
	// exact maps a uri to its bucket; nil when there are no exact uris.
	exact map[string]span
	// root is the root node of the prefix tree in Router.nodes; it is
	// valid only when hasTree is set (there are prefix uris).
	root    int32
	hasTree bool
}

// radixNode is a node of a compressed prefix tree. The key of a node is the
// concatenation of the labels from the root down to it.
type radixNode struct {
	// label is the part of the key that this node adds to its parent's.
	// Only the root's label may be empty.
	label string
	// kids are the child nodes in Router.nodes, sorted by label[0].
	kids span
	// bucket holds the prefix routes whose prefix is this node's key;
	// empty for inner nodes.
	bucket span
	// up is the nearest proper ancestor with a non-empty bucket, or -1. It
	// lets Match walk the candidates from the longest prefix to the
	// shortest without keeping a stack.
	up int32
	// depth is the length of the node's key (the prefix it stands for).
	depth int32
}

// Len returns the number of indexed (host, uri) entries: a route with two
// hosts and three uris counts six, a route without hosts counts its uris.
// Duplicates within one route count once.
func (r *Router) Len() int {
	if r == nil {
		return 0
	}
	return r.n
}

// Match returns the entry that serves the request, or nil when no route
// matches (the caller answers 404).
//
// The path is ctx.Path() (decoded and normalized, like nginx's $uri) and
// the host is the Host header without its port, lower-cased.
//
// buf is caller-owned scratch space: Match writes the lower-cased host and
// the values of vars conditions into it. It should have a capacity of at
// least 512 bytes; a larger host or variable makes Match allocate. The
// contents of buf are undefined after Match returns.
//
// Match does not allocate (given enough buf), does not lock, and its cost
// does not depend on the number of routes. It is safe for concurrent use.
func (r *Router) Match(ctx *fasthttp.RequestCtx, buf []byte) *RouteEntry {
	if r == nil {
		return nil
	}
	m := routeMatch{ctx: ctx, path: ctx.Path(), scratch: buf[:0]}
	return r.match(&m, buf)
}

// match runs one lookup; m carries the request, the entries to skip and,
// on return, the rank of the entry found.
func (r *Router) match(m *routeMatch, buf []byte) *RouteEntry {
	if r.hostBound {
		host := AppendLowerHost(buf[:0], m.ctx.Request.Header.Host())
		// Vars are evaluated after the host so that the host stays intact
		// for the next wildcard suffix.
		m.scratch = host[len(host):]
		if e := r.matchHost(m, host); e != nil {
			return e
		}
	}
	m.rank.host, m.rank.hostLen = rankNoHost, 0
	return r.matchIndex(&r.noHost, m)
}

// matchHost tries the host-bound indexes in precedence order.
func (r *Router) matchHost(m *routeMatch, host []byte) *RouteEntry {
	// Fast path: the exact host. Indexing a map with string(bytes) does not
	// allocate.
	if hi := r.exactHosts[string(host)]; hi != nil {
		m.rank.host, m.rank.hostLen = rankExactHost, 0
		if e := r.matchIndex(hi, m); e != nil {
			return e
		}
	}
	// Wildcards: every suffix host[i:] of a length that some wildcard has,
	// longest first. The plain `*` is the empty suffix, tried last. The
	// number of lookups is bounded by the host length, not by the routes.
	i := len(host) + 1 - len(r.wildLens)
	if i < 0 {
		i = 0
	}
	for ; i <= len(host); i++ {
		kind := r.wildLens[len(host)-i]
		if kind == 0 {
			continue
		}
		if kind&wildOther == 0 && host[i] != '.' {
			// Only dotted suffixes have this length; host[i:] is not one.
			// (i < len(host) here: the empty suffix is wildOther.)
			continue
		}
		if hi := r.wildHosts[string(host[i:])]; hi != nil {
			m.rank.host, m.rank.hostLen = rankWildHost, len(host)-i
			if e := r.matchIndex(hi, m); e != nil {
				return e
			}
		}
	}
	return nil
}

// matchIndex returns the first route of one host index that serves the
// request: exact uri first, then prefixes from the longest to the shortest.
func (r *Router) matchIndex(hi *hostIndex, m *routeMatch) *RouteEntry {
	if hi.exact != nil {
		// Fast path: an exact uri.
		if s, ok := hi.exact[string(m.path)]; ok {
			m.rank.prefix, m.rank.uriLen = false, len(m.path)
			if e := r.matchBucket(s, m); e != nil {
				return e
			}
		}
	}
	if !hi.hasTree {
		return nil
	}
	for n := r.longestPrefix(hi.root, m.path); n >= 0; n = r.nodes[n].up {
		m.rank.prefix, m.rank.uriLen = true, int(r.nodes[n].depth)
		if e := r.matchBucket(r.nodes[n].bucket, m); e != nil {
			return e
		}
	}
	return nil
}

// longestPrefix walks the tree under root along path and returns the
// deepest node whose key is a prefix of path and whose bucket is not empty,
// or -1. It costs O(len(path)) label bytes plus a binary search over at
// most 256 children per level.
func (r *Router) longestPrefix(root int32, path []byte) int32 {
	nodes := r.nodes
	n := root
	nd := &nodes[n]
	if !hasPrefix(path, nd.label) {
		return -1
	}
	best := int32(-1)
	i := len(nd.label)
	for {
		if !nd.bucket.empty() {
			best = n
		}
		if i == len(path) {
			return best
		}
		k := findKid(nodes, nd.kids, path[i])
		if k < 0 {
			return best
		}
		kd := &nodes[k]
		if !hasPrefix(path[i:], kd.label) {
			return best
		}
		i += len(kd.label)
		n, nd = k, kd
	}
}

// findKid returns the child among nodes[kids] whose label starts with c, or
// -1. Children are sorted by their first byte and have distinct ones.
func findKid(nodes []radixNode, kids span, c byte) int32 {
	lo, hi := kids.lo, kids.hi
	for lo < hi {
		mid := int32(uint32(lo+hi) >> 1)
		switch b := nodes[mid].label[0]; {
		case b == c:
			return mid
		case b < c:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return -1
}

// hasPrefix reports whether b starts with s, without allocating.
func hasPrefix(b []byte, s string) bool {
	return len(b) >= len(s) && string(b[:len(s)]) == s
}

// matchBucket returns the first entry of a bucket whose conditions pass.
func (r *Router) matchBucket(s span, m *routeMatch) *RouteEntry {
	for _, e := range r.entries[s.lo:s.hi] {
		if m.dead != nil {
			if _, gone := m.dead[e]; gone {
				continue
			}
		}
		if m.accepts(e.Route) {
			return e
		}
	}
	return nil
}

// routeMatch is the per-request state of one Match call. It lives on the
// stack of Match.
type routeMatch struct {
	ctx  *fasthttp.RequestCtx
	path []byte
	// scratch is the free part of the caller's buf, for vars.
	scratch []byte
	// dead holds entries to skip (see RouteTable); nil skips none.
	dead map[*RouteEntry]struct{}
	// rank is where the entry being tried sits in the precedence order;
	// after a match it is the rank of the entry returned.
	rank matchRank

	// ip is the client address, read once on the first remote_addr check.
	ip     netip.Addr
	ipRead bool
}

// accepts reports whether the request passes the route's conditions, the
// cheap ones first.
func (m *routeMatch) accepts(rt *Route) bool {
	if !rt.Methods.Allows(m.ctx.Method()) {
		return false
	}
	if len(rt.RemoteAddrs) > 0 && !m.remoteIn(rt.RemoteAddrs) {
		return false
	}
	return rt.Vars.Eval(m.ctx, m.scratch)
}

// remoteIn reports whether the client IP lies in one of the prefixes. A
// client address that is not TCP never matches.
func (m *routeMatch) remoteIn(prefixes []netip.Prefix) bool {
	if !m.ipRead {
		m.ipRead = true
		if a, ok := m.ctx.RemoteAddr().(*net.TCPAddr); ok {
			if ip, ok := netip.AddrFromSlice(a.IP); ok {
				m.ip = ip.Unmap()
			}
		}
	}
	for _, p := range prefixes {
		if p.Contains(m.ip) {
			return true
		}
	}
	return false
}
