package core

// RouteEntry is a route as compiled into a Snapshot: the route's own
// conditions plus what the compiler resolved for it (effective hosts,
// upstream, timeouts, counters). Entries are immutable once the snapshot
// that holds them is published.
type RouteEntry struct {
	// Route is the validated route. The router reads URIs, Methods, Vars,
	// RemoteAddrs, Priority and Status from it.
	Route *Route
	// Hosts are the effective hosts: the route's own, or, when it has none,
	// those of its service. Lower-cased; `*.` prefix marks a wildcard.
	Hosts []string
	// Key is the store key of the route, e.g. "/apisix/routes/1".
	Key string

	// Upstream is the resolved balancer; nil when the route has none that
	// can be used, and then FailStatus says what the client gets.
	Upstream *Balancer
	// FailStatus is the status sent when Upstream is nil: 502 for an
	// upstream_id that does not exist, 404 for a missing service, 503 when
	// no upstream is configured.
	FailStatus int
	// Timeout is the effective per-try timeout (route over upstream over
	// the 60 s default).
	Timeout Timeout

	// Stats counts requests by status class; it outlives snapshots.
	Stats *RouteStats

	// rewrite, when set, builds the upstream request target (Kong's
	// service.path and strip_path).
	rewrite *rewriteRule
	// split, when set, chooses the upstream per request by weight; Upstream
	// and Timeout then describe its first share.
	split *upstreamSplit
}
