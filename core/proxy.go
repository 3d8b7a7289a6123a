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
	// limits are the edge limits in force (nil: DefaultLimits); see limits.go.
	limits atomic.Pointer[Limits]

	// Metrics receives per-request observations; never nil.
	Metrics *Metrics
	// Logf logs upstream failures; nil discards them.
	Logf func(format string, args ...any)
}

// NewProxy returns a proxy serving an empty snapshot (every request 404s).
func NewProxy() *Proxy {
	p := &Proxy{Metrics: NewMetrics()}
	p.snap.Store(&Snapshot{Config: NewConfig(), Routes: NewRouteTable(nil)})
	return p
}

// Publish makes s the snapshot new requests are served from.
func (p *Proxy) Publish(s *Snapshot) { p.snap.Store(s) }

// Snapshot returns the snapshot currently served.
func (p *Proxy) Snapshot() *Snapshot { return p.snap.Load() }

// reqState is per-request scratch space, pooled so that a request
// allocates nothing once the pool is warm.
type reqState struct {
	buf       []byte // router and vars scratch
	hdr       []byte // the serialized upstream request header
	xff       []byte
	statuses  []byte // the X-APISIX-Upstream-Status chain
	uri       []byte // a rewritten request target
	setCookie []byte // a Set-Cookie value to add to the response
	lbreq     lb.Request
	cbody     clientBody // the streamed request body, when there is one
}

var statePool = sync.Pool{New: func() any {
	return &reqState{
		buf:      make([]byte, 0, 512),
		hdr:      make([]byte, 0, 2048),
		xff:      make([]byte, 0, 128),
		statuses: make([]byte, 0, 32),
		uri:      make([]byte, 0, 256),
	}
}}

// Handler is the fasthttp request handler of the proxy listener.
func (p *Proxy) Handler(ctx *fasthttp.RequestCtx) {
	st := statePool.Get().(*reqState)
	snap := p.snap.Load()
	var status int
	if status = p.lim().checkRequest(ctx); status != 0 {
		refuse(ctx, status)
	} else if e := snap.Routes.Match(ctx, st.buf[:0]); e == nil {
		status = writeNotFound(ctx)
	} else {
		status = p.serve(ctx, st, e)
		e.Stats.count(status)
	}
	finishBody(ctx, &st.cbody)
	p.Metrics.observe(status, time.Since(ctx.Time()))
	st.lbreq.Reset()
	st.cbody = clientBody{}
	statePool.Put(st)
}

// serve forwards the request to e's upstream with retries and returns the
// status sent to the client.
//
// Retry policy (APISIX's, which is nginx's proxy_next_upstream "error
// timeout"): up to `retries` retries (default: nodes − 1), none started
// after `retry_timeout` from the first try; a node is never tried twice for
// one request unless it is the upstream's only node. A try that failed
// before a response arrived (connect error, timeout, reset) is retried,
// unless the request reached the upstream and cannot be replayed (a
// non-idempotent method, or a body already streamed). An upstream's 5xx
// passes through un-retried, unless its status is in retry_on_statuses
// and the request is idempotent and replayable: that response is then
// kept aside and discarded when another node is picked, or sent as the
// answer when none is left. A final 5xx carries X-APISIX-Upstream-Status
// with the status of every try.
func (p *Proxy) serve(ctx *fasthttp.RequestCtx, st *reqState, e *RouteEntry) int {
	b, timeout, failStatus := e.Upstream, e.Timeout, e.FailStatus
	if e.split != nil {
		c := e.split.pick()
		b, timeout, failStatus = c.b, c.timeout, c.failStatus
	}
	if b == nil {
		if failStatus == fasthttp.StatusNotFound {
			return writeNotFound(ctx)
		}
		return writeError(ctx, failStatus, nil)
	}
	// A discovered upstream's node set may be replaced at any time: this
	// request uses the one current now, for every try.
	b = b.Live()
	if len(b.Nodes) == 0 {
		return writeNoNodes(ctx, b)
	}
	// Kong's cookie hashing gives a client without the cookie a fresh one
	// first, so that this request already hashes on it.
	issued := b.hashCookie != nil && b.hashCookie.ensure(ctx, st)
	if b.hashKey != nil {
		// Before prepareRequest: the key reads the client's own headers.
		st.lbreq.Hash = b.hashKey.sum(ctx, st.buf[:0])
	}
	body, ok := p.prepareRequest(ctx, st)
	if !ok {
		return writeError(ctx, fasthttp.StatusBadRequest, nil)
	}
	if e.rewrite != nil {
		e.rewrite.rewriteTarget(ctx, st)
	}
	idempotent := isIdempotent(ctx.Method())
	start := ctx.Time()
	var deadline time.Time
	if b.retryTimeout > 0 {
		deadline = start.Add(b.retryTimeout)
	}
	st.statuses = st.statuses[:0]
	last := fasthttp.StatusBadGateway
	// kept is the status of the response ctx.Response holds when that
	// status is in retry_on_statuses: the answer unless a later try
	// replaces it. 0 when there is none.
	kept := 0
	var tried *lb.Node // the node of the latest try
	var out outcome
	for try := 0; try <= b.retries; try++ {
		if try > 0 {
			if !deadline.IsZero() && time.Now().After(deadline) {
				// APISIX: no new try starts after retry_timeout; 502.
				last = fasthttp.StatusBadGateway
				break
			}
			// Passive health checks count the failed try before the retry.
			b.reportRetry(tried, out)
		}
		// One clock reading per try, shared by the picker and the try.
		now := time.Now()
		st.lbreq.Now = now
		n := b.pick(&st.lbreq)
		if n == nil {
			// Every node tried (or none usable): APISIX's "all upstream
			// servers tried", 502.
			last = fasthttp.StatusBadGateway
			break
		}
		if kept != 0 {
			// Discard the kept response: a buffered body was read whole
			// (its connection is back in the pool); a streamed one closes
			// its connection.
			ctx.Response.Reset()
			kept = 0
		}
		tried = n
		st.lbreq.Tried.Add(n.Index)
		out = p.forward(ctx, st, b, n, timeout, &body, now)
		st.statuses = appendStatus(st.statuses, out.status)
		last = out.status
		if out.done {
			if idempotent && body.replayable && b.retryStatus(out.status) {
				kept = out.status
				continue
			}
			if issued {
				ctx.Response.Header.SetBytesKV(strSetCookie, st.setCookie)
			}
			if out.status >= 500 {
				// As APISIX: a 5xx carries the status of every try.
				ctx.Response.Header.SetBytesKV(strUpstreamStatus, st.statuses)
			}
			b.reportFinal(n, out.status)
			return out.status
		}
		// A try that failed before anything was sent may always be
		// retried; one that reached the upstream only when replaying it is
		// safe (idempotent method, body still in memory).
		if out.sent && !(idempotent && body.replayable) {
			break
		}
	}
	if kept != 0 {
		if issued {
			ctx.Response.Header.SetBytesKV(strSetCookie, st.setCookie)
		}
		ctx.Response.Header.SetBytesKV(strUpstreamStatus, st.statuses)
		b.reportFinal(tried, kept)
		return kept
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
