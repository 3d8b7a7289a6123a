package core

import (
	"cmp"
	"slices"
	"strings"
)

// Kinds of host key a route is indexed under. Their order only groups the
// records when sorting; it is not the lookup order.
const (
	hostKeyNone  uint8 = iota // the route has no hosts
	hostKeyExact              // `api.foo.com`
	hostKeyWild               // `*.foo.com` or `*`, stored without the `*`
)

// routeRec is one (host key, uri, route) triple to index.
type routeRec struct {
	host string // exact host, or wildcard suffix without the leading `*`
	uri  string // for a prefix uri, without the trailing `*`
	id   string
	e    *RouteEntry
	prio int
	seq  int // position of the entry in BuildRouter's argument

	hostKind uint8
	prefix   bool
}

// compareRecs sorts records into index order: by host key, exact uris
// before prefix ones, by uri, and within one bucket by precedence.
func compareRecs(a, b *routeRec) int {
	if c := cmp.Compare(a.hostKind, b.hostKind); c != 0 {
		return c
	}
	if c := strings.Compare(a.host, b.host); c != 0 {
		return c
	}
	if a.prefix != b.prefix {
		if !a.prefix {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.uri, b.uri); c != 0 {
		return c
	}
	// Precedence within one bucket: higher priority, then route ID, then
	// insertion order.
	if c := cmp.Compare(b.prio, a.prio); c != 0 {
		return c
	}
	if c := strings.Compare(a.id, b.id); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// BuildRouter builds the route index from compiled entries. Entries with a
// nil Route, with Route.Status == 0 or without uris are skipped. Hosts are
// read from RouteEntry.Hosts (the effective hosts) and compared without
// regard to case. Every uri of a route is indexed under every one of its
// hosts.
//
// Building costs O(n log n) in the number of (host, uri) pairs; it does not
// modify the entries, and the Router keeps pointers to them and to their
// uri strings. BuildRouter may be called concurrently with itself and with
// Match on other routers.
func BuildRouter(entries []*RouteEntry) *Router {
	recs := collectRecs(entries)
	slices.SortFunc(recs, func(a, b routeRec) int { return compareRecs(&a, &b) })
	recs = dedupRecs(recs)

	r := &Router{
		entries: make([]*RouteEntry, 0, len(recs)),
		n:       len(recs),
	}
	b := treeBuilder{r: r}

	// Count the host groups first so that the host indexes can share one
	// allocation.
	groups := 0
	for i := 0; i < len(recs); i = hostGroupEnd(recs, i) {
		if recs[i].hostKind != hostKeyNone {
			groups++
		}
	}
	hosts := make([]hostIndex, 0, groups)
	maxWild := -1
	for i := 0; i < len(recs); {
		j := hostGroupEnd(recs, i)
		hi := &r.noHost
		switch recs[i].hostKind {
		case hostKeyExact:
			hosts = append(hosts, hostIndex{})
			hi = &hosts[len(hosts)-1]
			if r.exactHosts == nil {
				r.exactHosts = make(map[string]*hostIndex)
			}
			r.exactHosts[recs[i].host] = hi
		case hostKeyWild:
			hosts = append(hosts, hostIndex{})
			hi = &hosts[len(hosts)-1]
			if r.wildHosts == nil {
				r.wildHosts = make(map[string]*hostIndex)
			}
			r.wildHosts[recs[i].host] = hi
			maxWild = max(maxWild, len(recs[i].host))
		}
		b.fillIndex(hi, recs[i:j])
		i = j
	}
	r.hostBound = len(hosts) > 0

	if maxWild >= 0 {
		r.wildLens = make([]uint8, maxWild+1)
		for suffix := range r.wildHosts {
			if strings.HasPrefix(suffix, ".") {
				r.wildLens[len(suffix)] |= wildDot
			} else {
				r.wildLens[len(suffix)] |= wildOther
			}
		}
	}
	return r
}

// collectRecs expands the enabled entries into (host key, uri) records.
func collectRecs(entries []*RouteEntry) []routeRec {
	n := 0
	for _, e := range entries {
		if e != nil && e.Route != nil && e.Route.Status != 0 {
			n += len(e.Route.URIs) * max(1, len(e.Hosts))
		}
	}
	recs := make([]routeRec, 0, n)
	for seq, e := range entries {
		if e == nil || e.Route == nil || e.Route.Status == 0 {
			continue
		}
		rt := e.Route
		for _, u := range rt.URIs {
			rec := routeRec{uri: u, id: rt.ID, e: e, prio: rt.Priority, seq: seq}
			if strings.HasSuffix(u, "*") {
				rec.uri, rec.prefix = u[:len(u)-1], true
			}
			if len(e.Hosts) == 0 {
				recs = append(recs, rec)
				continue
			}
			for _, h := range e.Hosts {
				h = strings.ToLower(h)
				rec.host, rec.hostKind = h, hostKeyExact
				if strings.HasPrefix(h, "*") {
					rec.host, rec.hostKind = h[1:], hostKeyWild
				}
				recs = append(recs, rec)
			}
		}
	}
	return recs
}

// dedupRecs drops repeated triples of one route (the same host or uri given
// twice). Sorting has made them adjacent.
func dedupRecs(recs []routeRec) []routeRec {
	return slices.CompactFunc(recs, func(a, b routeRec) bool {
		return a.e == b.e && a.seq == b.seq && a.hostKind == b.hostKind &&
			a.prefix == b.prefix && a.host == b.host && a.uri == b.uri
	})
}

// hostGroupEnd returns the end of the run of records sharing recs[i]'s host key.
func hostGroupEnd(recs []routeRec, i int) int {
	j := i + 1
	for j < len(recs) && recs[j].hostKind == recs[i].hostKind && recs[j].host == recs[i].host {
		j++
	}
	return j
}

// uriGroupEnd returns the end of the bucket starting at recs[i].
func uriGroupEnd(recs []routeRec, i int) int {
	j := i + 1
	for j < len(recs) && recs[j].prefix == recs[i].prefix && recs[j].uri == recs[i].uri {
		j++
	}
	return j
}

// treeBuilder appends buckets and prefix trees to a Router under construction.
type treeBuilder struct {
	r *Router
	// keys is scratch space for the prefix keys of one host index.
	keys []prefixKey
}

// prefixKey is one distinct prefix of a host index and its bucket.
type prefixKey struct {
	s string
	b span
}

// fillIndex indexes the sorted records of one host key into hi.
func (b *treeBuilder) fillIndex(hi *hostIndex, recs []routeRec) {
	r := b.r
	b.keys = b.keys[:0]
	exact := 0
	for i := 0; i < len(recs); i = uriGroupEnd(recs, i) {
		if !recs[i].prefix {
			exact++
		}
	}
	if exact > 0 {
		hi.exact = make(map[string]span, exact)
	}
	for i := 0; i < len(recs); {
		j := uriGroupEnd(recs, i)
		s := span{lo: int32(len(r.entries))}
		for _, rec := range recs[i:j] {
			r.entries = append(r.entries, rec.e)
		}
		s.hi = int32(len(r.entries))
		if recs[i].prefix {
			b.keys = append(b.keys, prefixKey{s: recs[i].uri, b: s})
		} else {
			hi.exact[recs[i].uri] = s
		}
		i = j
	}
	if len(b.keys) > 0 {
		// The keys are sorted and distinct: the records were sorted by uri.
		hi.root, hi.hasTree = int32(len(r.nodes)), true
		r.nodes = append(r.nodes, radixNode{})
		b.fillNode(hi.root, b.keys, 0, -1)
	}
}

// fillNode makes r.nodes[at] the node for keys, which are sorted, distinct
// and share their first d bytes (the key of the parent). up is the nearest
// ancestor with a bucket. Children are allocated next to each other, so a
// node's children form one span.
func (b *treeBuilder) fillNode(at int32, keys []prefixKey, d int, up int32) {
	first, last := keys[0].s, keys[len(keys)-1].s
	// Sorted keys: the common prefix of the first and the last is common to all.
	end := d + commonPrefixLen(first[d:], last[d:])
	nd := radixNode{label: first[d:end], up: up, depth: int32(end)}
	if len(first) == end {
		nd.bucket = keys[0].b
		keys = keys[1:]
		up = at
	}
	kids := 0
	for i := 0; i < len(keys); i = byteGroupEnd(keys, i, end) {
		kids++
	}
	lo := int32(len(b.r.nodes))
	b.r.nodes = append(b.r.nodes, make([]radixNode, kids)...)
	nd.kids = span{lo: lo, hi: lo + int32(kids)}
	b.r.nodes[at] = nd
	for i, k := 0, lo; i < len(keys); k++ {
		j := byteGroupEnd(keys, i, end)
		b.fillNode(k, keys[i:j], end, up)
		i = j
	}
}

// byteGroupEnd returns the end of the run of keys that have keys[i]'s byte
// at position d. All keys are longer than d.
func byteGroupEnd(keys []prefixKey, i, d int) int {
	c := keys[i].s[d]
	j := i + 1
	for j < len(keys) && keys[j].s[d] == c {
		j++
	}
	return j
}

// commonPrefixLen returns the length of the longest common prefix of a and b.
func commonPrefixLen(a, b string) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
