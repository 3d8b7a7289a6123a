package core

// Balancer is an upstream compiled for the hot path: its nodes, picker,
// retry policy and connection pools. It is built by the compiler and is
// immutable afterwards; node runtime state it points to is shared and
// atomic.
type Balancer struct {
	// Key names the upstream's origin: "/apisix/upstreams/1", or the route
	// or service key for an inline upstream.
	Key  string
	Conf *Upstream
}
