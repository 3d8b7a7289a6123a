// Package admin serves the Admin API on the admin listener: APISIX's v3
// dialect under /apisix/admin/, Kong's dialect under /services, /routes
// and /upstreams (kong.go), and Prometheus metrics at /metrics.
//
// Handlers never touch the served snapshot: every write goes to the store,
// and the handler answers 2xx only after the configuration manager serves
// the write's revision (read your own writes).
package admin

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"io"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/health"
	"github.com/edgeway/gateway/store"
	"github.com/fasthttp/router"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"
)

// MaxBodySize is the largest admin request body accepted (APISIX: 1.5 MiB).
const MaxBodySize = 1536 << 10

// Version is what X-API-VERSION carries.
const Version = "v3"

// API is the Admin API. Its handlers are safe for concurrent use.
type API struct {
	// Store receives every write.
	Store store.Store
	// Manager provides the served configuration (for reference checks)
	// and WaitRevision (for read-your-writes).
	Manager *core.Manager
	// Key, when non-empty, is required in X-API-KEY (or the api_key query
	// argument, or the x_api_key cookie). When empty, only loopback
	// clients may use the API.
	Key string
	// ReadOnly refuses writes with 405 (standalone mode).
	ReadOnly bool
	// WriteTimeout bounds a write, including the wait until it is served.
	// Default 10 s.
	WriteTimeout time.Duration
	// Logf logs; nil uses the standard logger.
	Logf func(format string, args ...any)
	// Health, when set, adds the node health gauges to /metrics.
	Health *health.Manager

	// NodeID identifies this gateway in Kong's health answers; a random
	// UUID when empty.
	NodeID string

	// AuthFailures counts requests refused for a missing or wrong key.
	AuthFailures atomic.Uint64
	nodeOnce     sync.Once

	// keyOverride, once SetKey was called, replaces Key (see key.go).
	keyOverride atomic.Pointer[string]

	// Now returns the current time (tests may replace it).
	Now func() time.Time
}

// Handler returns the request handler for the admin listener.
func (a *API) Handler() fasthttp.RequestHandler {
	if a.WriteTimeout == 0 {
		a.WriteTimeout = 10 * time.Second
	}
	if a.Now == nil {
		a.Now = time.Now
	}
	r := router.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = false
	r.GET("/metrics", a.metrics)
	// Go's profiler, behind the admin key like the Admin API.
	r.GET("/debug/pprof/{profile:*}", a.guard(pprofhandler.PprofHandler))
	r.ANY("/apisix/admin", a.guard(a.root))
	r.ANY("/apisix/admin/{path:*}", a.guard(a.apisix))
	a.registerKong(r)
	r.NotFound = func(ctx *fasthttp.RequestCtx) {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"error_msg": "404 Not Found"})
	}
	return r.Handler
}

// guard applies authentication, the body limit and the common headers.
func (a *API) guard(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-API-VERSION", Version)
		ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
		if ctx.IsOptions() {
			ctx.Response.Header.Set("Access-Control-Allow-Methods", "GET, PUT, POST, PATCH, DELETE, OPTIONS, HEAD")
			ctx.Response.Header.Set("Access-Control-Allow-Headers", "Content-Type, X-API-KEY")
			ctx.SetStatusCode(fasthttp.StatusOK)
			return
		}
		if !a.authorized(ctx) {
			return
		}
		if len(ctx.PostBody()) > MaxBodySize {
			writeJSON(ctx, fasthttp.StatusRequestEntityTooLarge, errMsg("request body is too large: the limit is 1.5 MiB"))
			return
		}
		h(ctx)
	}
}

// authorized checks the admin key (or, without one, that the client is on
// loopback) and writes the refusal when it fails.
func (a *API) authorized(ctx *fasthttp.RequestCtx) bool {
	want := a.currentKey()
	if want == "" {
		if ctx.RemoteIP().IsLoopback() {
			return true
		}
		a.AuthFailures.Add(1)
		a.logf("admin: refused %s from non-loopback %s: no admin key is configured", ctx.Method(), ctx.RemoteIP())
		writeJSON(ctx, fasthttp.StatusForbidden, errMsg("admin API is only open to loopback clients when no admin key is configured"))
		return false
	}
	key := ctx.Request.Header.Peek("X-API-KEY")
	if len(key) == 0 {
		key = ctx.QueryArgs().Peek("api_key")
	}
	if len(key) == 0 {
		key = ctx.Request.Header.Cookie("x_api_key")
	}
	if len(key) == 0 {
		a.AuthFailures.Add(1)
		a.logf("admin: refused %s %s from %s: missing apikey", ctx.Method(), ctx.Path(), ctx.RemoteIP())
		writeJSON(ctx, fasthttp.StatusUnauthorized, map[string]string{"error_msg": "failed to check token", "description": "missing apikey"})
		return false
	}
	if subtle.ConstantTimeCompare(key, []byte(want)) != 1 {
		a.AuthFailures.Add(1)
		a.logf("admin: refused %s %s from %s: wrong apikey", ctx.Method(), ctx.Path(), ctx.RemoteIP())
		writeJSON(ctx, fasthttp.StatusUnauthorized, map[string]string{"error_msg": "failed to check token", "description": "wrong apikey"})
		return false
	}
	return true
}

func (a *API) root(ctx *fasthttp.RequestCtx) {
	if ctx.IsHead() || ctx.IsGet() {
		ctx.SetStatusCode(fasthttp.StatusOK)
		return
	}
	writeJSON(ctx, fasthttp.StatusNotFound, errMsg("Unsupported resource type: "))
}

// writeCtx returns the context for a write: bounded by WriteTimeout.
func (a *API) writeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.WriteTimeout)
}

// storeError answers a store failure: 503, as APISIX does for etcd errors.
func (a *API) storeError(ctx *fasthttp.RequestCtx, op string, err error) {
	a.logf("admin: %s failed: %v", op, err)
	msg := err.Error()
	switch {
	case errors.Is(err, store.ErrConflict):
		msg = "value changed before overwritten"
	case errors.Is(err, store.ErrUnavailable):
		msg = "the configuration store is unavailable: " + err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		msg = "timed out waiting for the configuration store"
	}
	writeJSON(ctx, fasthttp.StatusServiceUnavailable, errMsg(msg))
}

func (a *API) logf(format string, args ...any) {
	if a.Logf != nil {
		a.Logf(format, args...)
		return
	}
	log.Printf(format, args...)
}

func errMsg(msg string) map[string]string { return map[string]string{"error_msg": msg} }

// writeJSON answers with v encoded as JSON.
func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = fasthttp.StatusInternalServerError, []byte(`{"error_msg":"cannot encode response"}`)
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '\n'))
}

// decodeJSON parses one JSON value, keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON value")
	}
	return v, nil
}
