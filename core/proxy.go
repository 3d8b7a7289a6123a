package core

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/lb"
	"github.com/valyala/fasthttp"
)

// Proxy serves client requests from the current snapshot. Publish swaps the
// snapshot whole; requests in flight finish on the snapshot they started
// with. Handler is safe for concurrent use and, for requests whose bodies
// fit the in-memory limits, neither locks nor allocates.
type Proxy struct {
	snap atomic.Pointer[Snapshot]

	// Metrics receives per-request observations; never nil.
	Metrics *Metrics
	// Logf logs upstream failures; nil discards them.
	Logf func(format string, args ...any)
}

// NewProxy returns a proxy serving an empty snapshot (every request 404s).
func NewProxy() *Proxy {
	p := &Proxy{Metrics: NewMetrics()}
	p.snap.Store(&Snapshot{Config: NewConfig(), Router: BuildRouter(nil)})
	return p
}

// Publish makes s the snapshot new requests are served from.
func (p *Proxy) Publish(s *Snapshot) { p.snap.Store(s) }

// Snapshot returns the snapshot currently served.
func (p *Proxy) Snapshot() *Snapshot { return p.snap.Load() }

// reqState is per-request scratch space, pooled so that a request
// allocates nothing once the pool is warm.
type reqState struct {
	buf      []byte // router and vars scratch
	hdr      []byte // the serialized upstream request header
	xff      []byte
	statuses []byte // the X-APISIX-Upstream-Status chain
	lbreq    lb.Request
}

var statePool = sync.Pool{New: func() any {
	return &reqState{
		buf:      make([]byte, 0, 512),
		hdr:      make([]byte, 0, 2048),
		xff:      make([]byte, 0, 128),
		statuses: make([]byte, 0, 32),
	}
}}

// Handler is the fasthttp request handler of the proxy listener.
func (p *Proxy) Handler(ctx *fasthttp.RequestCtx) {
	st := statePool.Get().(*reqState)
	snap := p.snap.Load()
	e := snap.Router.Match(ctx, st.buf[:0])
	var status int
	if e == nil {
		status = writeNotFound(ctx)
	} else {
		status = p.serve(ctx, st, e)
		e.Stats.count(status)
	}
	p.Metrics.observe(status, time.Since(ctx.Time()))
	st.lbreq.Reset()
	statePool.Put(st)
}

// serve forwards the request to e's upstream with retries and returns the
// status sent to the client.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx, st *reqState, e *RouteEntry) int {
	b := e.Upstream
	if b == nil {
		if e.FailStatus == fasthttp.StatusNotFound {
			return writeNotFound(ctx)
		}
		return writeError(ctx, e.FailStatus, nil)
	}
	if len(b.Nodes) == 0 {
		return writeError(ctx, fasthttp.StatusServiceUnavailable, nil)
	}
	body, ok := p.prepareRequest(ctx, st)
	if !ok {
		return writeError(ctx, fasthttp.StatusBadRequest, nil)
	}
	idempotent := isIdempotent(ctx.Method())
	start := ctx.Time()
	var deadline time.Time
	if b.retryTimeout > 0 {
		deadline = start.Add(b.retryTimeout)
	}
	st.statuses = st.statuses[:0]
	last := fasthttp.StatusBadGateway
	var tried *lb.Node // the node of the latest try
	var out outcome
	for try := 0; try <= b.retries; try++ {
		if try > 0 {
			if !deadline.IsZero() && time.Now().After(deadline) {
				// APISIX: no new try starts after retry_timeout.
				last = fasthttp.StatusBadGateway
				break
			}
			// Passive health checks count the failed try before the retry.
			b.reportRetry(tried, out)
		}
		n := b.pick(&st.lbreq)
		if n == nil {
			// Every node tried (or none usable): nginx's "no live upstreams".
			if try == 0 {
				last = fasthttp.StatusBadGateway
			}
			break
		}
		tried = n
		st.lbreq.Tried.Add(n.Index)
		out = p.forward(ctx, st, b, n, e.Timeout, &body)
		if out.done {
			if out.status >= 500 {
				// As APISIX: a 5xx carries the status of every try.
				st.statuses = appendStatus(st.statuses, out.status)
				ctx.Response.Header.SetBytesKV(strUpstreamStatus, st.statuses)
			}
			b.reportFinal(n, out.status)
			return out.status
		}
		st.statuses = appendStatus(st.statuses, out.status)
		last = out.status
		// A try that failed before anything was sent may always be
		// retried; one that reached the upstream only when replaying it is
		// safe (idempotent method, body still in memory).
		if out.sent && !(idempotent && body.replayable) {
			break
		}
	}
	status := writeError(ctx, last, st.statuses)
	b.reportFinal(tried, status)
	return status
}

// isIdempotent reports whether a method may be replayed after it was sent
// (RFC 9110 §9.2.2; nginx's proxy_next_upstream rule).
func isIdempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE":
		return true
	}
	return false
}

func appendStatus(dst []byte, status int) []byte {
	if len(dst) > 0 {
		dst = append(dst, ", "...)
	}
	return fasthttp.AppendUint(dst, status)
}
