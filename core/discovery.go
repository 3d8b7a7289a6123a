package core

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/discovery"
	"github.com/valyala/fasthttp"
)

// Upstreams whose nodes change at run time: those with discovery_type and
// service_name, and those with static nodes given by host name (each name
// is resolved through DNS discovery and every address becomes a node with
// the node's weight and priority).
//
// Design: a node-set change must not rebuild the configuration (a full
// Compile of 100k routes costs ~100 ms), and the hot path must neither
// lock nor allocate. So the Balancer a snapshot holds for such an
// upstream — the root — keeps a stable identity: RouteEntries, splits and
// Snapshot.Balancers point at it for as long as the upstream's
// configuration is unchanged. Its node set lives in versions: complete,
// immutable Balancers built by buildBalancer from the same configuration
// and the current nodes, published through an atomic.Pointer in the root
// (dynamic.cur). The proxy loads the pointer once per request (Live) and
// serves the whole request — every try, the streamed body, each pick's
// Done — from that one version; a swap affects the next request only.
//
// Versions take their node state and connection pools from the Runtime,
// keyed by address as for any compile, so the nodes that stay keep their
// health, in-flight counts, EWMA and warm connections; only a node that
// leaves loses its state and pool. The Runtime counts the references of
// the published snapshot plus every swap (Runtime.live), so that a swap
// releases exactly what no live version uses any more, without walking
// the configuration.
//
// The other way — recompiling only the affected balancers and publishing
// a snapshot that shares everything else — was not taken: every
// RouteEntry and traffic split that points at the old balancer would have
// to be found and rebuilt (entries are immutable and the router holds
// them), and every change would publish a snapshot, which OnPublish
// consumers (health) walk whole. With versions a change costs what its
// upstream costs (BenchmarkDiscoveredSwap: ~7 µs with 10,000 routes,
// against ~22 ms for a compile), and the request path pays one atomic
// load (static upstreams only a nil check).
//
// Discovery notifications, swaps and Compile are serialised by
// Runtime.dynMu; none of them runs on the request path. An upstream with
// checks also has its health checkers reconciled after a swap (see
// healthSyncer), which walks the snapshot's balancers once.

// healthSyncer is a HealthAttacher that reconciles its checkers with a
// snapshot (health.Manager.Sync). After a node-set change of an upstream
// with checks it is called, under dynMu, with the newest compiled
// snapshot, whose roots hold their current versions. dynMu also covers
// Compile (which attaches passive checks) and the manager's publication
// and OnPublish, so no reconciliation runs between the attachment of a new
// version's checks and its swap.
type healthSyncer interface{ Sync(*Snapshot) }

// defaultDiscoveryWait bounds how long publishing a snapshot waits for the
// first lookups of the upstreams it starts to discover.
const defaultDiscoveryWait = 2 * time.Second

// dynamic is the run-time part of a root Balancer.
type dynamic struct {
	// cur is the version serving requests; never nil once built.
	cur  atomic.Pointer[Balancer]
	root *Balancer
	key  string
	conf *Upstream
	ssls map[string]*SSL
	// sources are the watches: one for discovery_type, else one per node
	// given by host name, in node order.
	sources []*source
	// swaps counts node-set changes.
	swaps atomic.Uint64

	// Guarded by Runtime.dynMu.
	retired bool
	nodes   []Node
	empty   string
	pending int
	ready   chan struct{}
}

// source is one watched service of a dynamic upstream.
type source struct {
	typ     string
	service string
	// node is the index in conf.Nodes of the node this source resolves;
	// -1 for a discovery_type upstream.
	node  int
	watch discovery.Watch
	// state is the latest state notified (under Runtime.dynMu).
	state    discovery.State
	reported bool
}

// Live returns the Balancer that serves requests now: b itself, or, when
// b's nodes come from discovery or DNS, its current version. Code outside
// the request path that reads Nodes (metrics, health, the control API)
// must read them from Live(); b.Nodes of such a root are its first
// version's.
func (b *Balancer) Live() *Balancer {
	if d := b.dyn; d != nil {
		return d.cur.Load()
	}
	return b
}

// writeNoNodes answers a request to an upstream without nodes: 503, with
// the reason for a discovered upstream.
func writeNoNodes(ctx *fasthttp.RequestCtx, b *Balancer) int {
	if b.noNodes == nil {
		return writeError(ctx, fasthttp.StatusServiceUnavailable, nil)
	}
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(fasthttp.StatusServiceUnavailable)
	ctx.Response.Header.SetContentTypeBytes(strContentTypeTextPlain)
	ctx.Response.SetBodyRaw(b.noNodes)
	return fasthttp.StatusServiceUnavailable
}

// isDynamic reports whether u's nodes are discovered or resolved.
func (rt *Runtime) isDynamic(u *Upstream) bool {
	if u.DiscoveryType != "" {
		return true
	}
	if rt.Discovery["dns"] == nil {
		// No resolver (unit tests, embedders): host names are resolved
		// when a connection is dialed.
		return false
	}
	for _, n := range u.Nodes {
		if !isIPHost(n.Host) {
			return true
		}
	}
	return false
}

func isIPHost(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// newBalancer compiles u: a plain Balancer, or the root of a dynamic one.
// Called by Compile with rt.dynMu held.
func (rt *Runtime) newBalancer(key string, u *Upstream, ssls map[string]*SSL, used *usedKeys) *Balancer {
	if !rt.isDynamic(u) {
		return buildBalancer(key, u, u.Nodes, rt, used)
	}
	d := &dynamic{key: key, conf: u, ssls: ssls, ready: make(chan struct{})}
	if u.DiscoveryType != "" {
		d.sources = []*source{{typ: u.DiscoveryType, service: u.ServiceName, node: -1}}
	} else {
		for i, n := range u.Nodes {
			if !isIPHost(n.Host) {
				d.sources = append(d.sources, &source{typ: "dns", service: net.JoinHostPort(n.Host, strconv.Itoa(n.Port)), node: i})
			}
		}
	}
	for _, src := range d.sources {
		disc := rt.Discovery[src.typ]
		if disc == nil {
			// Validation accepts only registered types; a gateway built
			// without this registry's client serves 503 with the reason.
			src.reported = true
			continue
		}
		q := discovery.Query{Service: src.service, Args: u.DiscoveryArgs, DefaultPort: defaultPort(u.Scheme)}
		if src.node >= 0 {
			q = discovery.Query{Service: u.Nodes[src.node].Host, DefaultPort: u.Nodes[src.node].Port, AddressOnly: true}
		}
		src.watch = disc.Watch(q, func(st discovery.State) { rt.onDiscovery(d, src, st) })
		src.state = src.watch.State()
		src.reported = !src.state.Checked.IsZero()
	}
	for _, src := range d.sources {
		if !src.reported {
			d.pending++
		}
	}
	if d.pending == 0 {
		close(d.ready)
	}
	d.nodes, d.empty = d.compose()
	b := buildBalancer(key, u, d.nodes, rt, used)
	b.noNodes = noNodesBody(d.empty)
	b.dyn, d.root = d, b
	d.cur.Store(b)
	if rt.dyns == nil {
		rt.dyns = map[*dynamic]bool{}
	}
	rt.dyns[d] = true
	return b
}

// onDiscovery receives a watch's notification.
func (rt *Runtime) onDiscovery(d *dynamic, src *source, st discovery.State) {
	rt.dynMu.Lock()
	defer rt.dynMu.Unlock()
	if d.retired {
		return
	}
	src.state = st
	rt.refresh(d)
	// After the swap: AwaitDiscovery's caller then publishes the nodes.
	if !src.reported {
		src.reported = true
		if d.pending--; d.pending == 0 {
			close(d.ready)
		}
	}
}

// refresh publishes a new version of d when its node set (or the reason it
// has none) changed. Called with rt.dynMu held.
func (rt *Runtime) refresh(d *dynamic) {
	nodes, empty := d.compose()
	if sameNodes(nodes, d.nodes) && empty == d.empty {
		return
	}
	used := newUsedKeys()
	used.ssls = d.ssls
	v := buildBalancer(d.key, d.conf, nodes, rt, used)
	v.noNodes = noNodesBody(empty)
	old := d.cur.Swap(v)
	before := len(d.nodes)
	d.nodes, d.empty = nodes, empty
	d.swaps.Add(1)
	// The new version's keys become live before the old one's are
	// released, so that the nodes that stay keep their state and pools.
	rt.live.add(used)
	rt.release(old)
	if hs, ok := rt.Health.(healthSyncer); ok && d.conf.Checks != nil && rt.latest != nil {
		// The checkers follow the new nodes: targets that stay keep their
		// state; those of nodes that left stop.
		hs.Sync(rt.latest)
	}
	if len(nodes) == 0 {
		rt.logf("discovery: upstream %s: no nodes (was %d): %s", d.key, before, empty)
	} else {
		rt.logf("discovery: upstream %s: %d nodes (was %d): %s", d.key, len(nodes), before, nodeList(v))
	}
}

// compose builds the node set from the sources' states, and the reason
// when it is empty.
func (d *dynamic) compose() ([]Node, string) {
	u := d.conf
	if u.DiscoveryType != "" {
		src := d.sources[0]
		nodes := make([]Node, 0, len(src.state.Nodes))
		for _, n := range src.state.Nodes {
			nodes = append(nodes, Node{Host: n.Host, Port: n.Port, Weight: n.Weight, Priority: n.Priority})
		}
		if len(nodes) > 0 {
			return nodes, ""
		}
		return nil, src.why()
	}
	var nodes []Node
	si := 0
	why := ""
	for i, n := range u.Nodes {
		if si < len(d.sources) && d.sources[si].node == i {
			src := d.sources[si]
			si++
			for _, a := range src.state.Nodes {
				nodes = append(nodes, Node{Host: a.Host, Port: a.Port, Weight: n.Weight, Priority: n.Priority,
					Metadata: n.Metadata, Domain: n.Host})
			}
			if len(src.state.Nodes) == 0 && why == "" {
				why = src.why()
			}
			continue
		}
		nodes = append(nodes, n)
	}
	if len(nodes) > 0 {
		return nodes, ""
	}
	if why == "" {
		why = "the upstream has no node"
	}
	return nil, why
}

// why explains an empty node set of one source.
func (src *source) why() string {
	st := src.state
	switch {
	case src.watch == nil:
		return fmt.Sprintf("discovery type %s is not configured in this gateway", src.typ)
	case st.Known:
		return fmt.Sprintf("%s service %s has no instances (%s)", src.typ, src.service, st.Empty)
	case st.Err != nil:
		return fmt.Sprintf("%s service %s is not resolved yet: %v", src.typ, src.service, st.Err)
	}
	return fmt.Sprintf("%s service %s is not resolved yet", src.typ, src.service)
}

// noNodesBody is the 503 body of an upstream without nodes.
func noNodesBody(why string) []byte {
	if why == "" {
		return nil
	}
	body, _ := json.Marshal(map[string]string{"error_msg": "503 Service Unavailable: no upstream node: " + why})
	return append(body, '\n')
}

func sameNodes(a, b []Node) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Host != y.Host || x.Port != y.Port || x.Weight != y.Weight || x.Priority != y.Priority || x.Domain != y.Domain {
			return false
		}
	}
	return true
}

func nodeList(b *Balancer) string {
	var sb strings.Builder
	for i, n := range b.Nodes {
		if i == 8 {
			fmt.Fprintf(&sb, ", ... (%d more)", len(b.Nodes)-i)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(n.Addr)
	}
	return sb.String()
}

// retireDynamics stops the watches of the dynamic roots that s no longer
// holds. Called by Compile with rt.dynMu held, after s is built, so that
// a watch shared with a new root keeps running.
func (rt *Runtime) retireDynamics(s *Snapshot) {
	for d := range rt.dyns {
		if s.Balancers[d.key] == d.root {
			continue
		}
		d.retired = true
		for _, src := range d.sources {
			if src.watch != nil {
				src.watch.Stop()
			}
		}
		if d.pending > 0 {
			d.pending = 0
			close(d.ready)
		}
		delete(rt.dyns, d)
	}
}

// AwaitDiscovery waits, up to the runtime's DiscoveryWait (default 2 s),
// until every discovered upstream of s has had its first lookups, so that
// a new upstream serves its nodes from its first request (start ready,
// read your writes). An upstream whose registry does not answer in time
// serves 503 until it does.
func (rt *Runtime) AwaitDiscovery(s *Snapshot) {
	wait := rt.DiscoveryWait
	if wait == 0 {
		wait = defaultDiscoveryWait
	}
	var chans []chan struct{}
	rt.dynMu.Lock()
	for _, b := range s.Balancers {
		if d := b.dyn; d != nil && d.pending > 0 {
			chans = append(chans, d.ready)
		}
	}
	rt.dynMu.Unlock()
	if len(chans) == 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for _, ch := range chans {
		select {
		case <-ch:
		case <-t.C:
			return
		}
	}
}

// DiscoveredUpstream describes an upstream whose nodes come from a
// registry or from DNS names (for /metrics and the control API).
type DiscoveredUpstream struct {
	// Upstream is the upstream's key, e.g. "/apisix/upstreams/1".
	Upstream string
	// Nodes are the addresses served now ("host:port").
	Nodes []string
	// Updates counts node-set changes since the upstream was compiled.
	Updates uint64
	// Sources are the watched services.
	Sources []DiscoverySource
}

// DiscoverySource is one watched service of a discovered upstream.
type DiscoverySource struct {
	// Type is the discovery type ("dns").
	Type string
	// Service is the service_name, or "host:port" of a static node.
	Service string
	// State is what the registry gave: the last good nodes, the time of
	// the last successful lookup, the latest error.
	State discovery.State
}

// Discovered lists the discovered upstreams of s, sorted by key.
func (s *Snapshot) Discovered() []DiscoveredUpstream {
	var out []DiscoveredUpstream
	for key, b := range s.Balancers {
		d := b.dyn
		if d == nil {
			continue
		}
		v := b.Live()
		du := DiscoveredUpstream{Upstream: key, Updates: d.swaps.Load()}
		for _, n := range v.Nodes {
			du.Nodes = append(du.Nodes, n.Addr)
		}
		for _, src := range d.sources {
			ds := DiscoverySource{Type: src.typ, Service: src.service}
			if src.watch != nil {
				ds.State = src.watch.State()
			} else {
				ds.State.Err = fmt.Errorf("discovery type %s is not configured in this gateway", src.typ)
			}
			du.Sources = append(du.Sources, ds)
		}
		out = append(out, du)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Upstream < out[j].Upstream })
	return out
}
