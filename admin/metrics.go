package admin

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/pool"
	"github.com/valyala/fasthttp"
)

var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// metrics answers GET /metrics in Prometheus text format: Go runtime and
// process metrics, request counters per route and upstream by status
// class, the latency histogram, upstream connection counters and the
// configuration state. It carries no secrets and needs no admin key.
func (a *API) metrics(ctx *fasthttp.RequestCtx) {
	var w bytes.Buffer
	metrics.WritePrometheus(&w, true)
	m := a.Manager
	snap := m.Proxy.Snapshot()

	keys := make([]string, 0, len(snap.Entries))
	for k := range snap.Entries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		e := snap.Entries[k]
		upstream := ""
		if e.Upstream != nil {
			upstream = e.Upstream.Key
		}
		for c := range e.Stats.ByClass {
			if n := e.Stats.ByClass[c].Load(); n > 0 {
				metrics.WriteCounterUint64(&w, fmt.Sprintf(`gateway_http_requests_total{route=%q,upstream=%q,class=%q}`,
					e.Route.ID, upstream, statusClasses[c]), n)
			}
		}
	}
	pm := m.Proxy.Metrics
	metrics.WriteCounterUint64(&w, "gateway_http_unmatched_requests_total", pm.NotFound.Load())
	cum, sum, count := pm.Histogram()
	for i, le := range core.LatencyBounds() {
		metrics.WriteCounterUint64(&w, `gateway_http_request_duration_seconds_bucket{le="`+strconv.FormatFloat(le, 'g', -1, 64)+`"}`, cum[i])
	}
	metrics.WriteCounterUint64(&w, `gateway_http_request_duration_seconds_bucket{le="+Inf"}`, cum[len(cum)-1])
	metrics.WriteCounterFloat64(&w, "gateway_http_request_duration_seconds_sum", sum)
	metrics.WriteCounterUint64(&w, "gateway_http_request_duration_seconds_count", count)

	m.Runtime.Pools.Each(func(key string, p *pool.Pool) {
		st := p.Stats()
		addr := p.Options().Addr
		l := fmt.Sprintf(`{addr=%q,pool=%q}`, addr, key)
		metrics.WriteCounterUint64(&w, "gateway_upstream_connections_opened_total"+l, st.Opened)
		metrics.WriteCounterUint64(&w, "gateway_upstream_connections_reused_total"+l, st.Reused)
		metrics.WriteCounterUint64(&w, "gateway_upstream_connections_closed_total"+l, st.Closed)
		metrics.WriteCounterUint64(&w, "gateway_upstream_connect_errors_total"+l, st.DialErrors)
		metrics.WriteCounterUint64(&w, "gateway_upstream_tls_handshakes_total"+l, st.TLSHandshakes)
		metrics.WriteCounterUint64(&w, "gateway_upstream_tls_handshake_failures_total"+l, st.TLSFailures)
		metrics.WriteGaugeUint64(&w, "gateway_upstream_connections_idle"+l, uint64(max(st.Idle, 0)))
	})

	metrics.WriteGaugeUint64(&w, "gateway_config_revision", uint64(max(snap.Config.Revision, 0)))
	metrics.WriteGaugeUint64(&w, "gateway_config_routes", uint64(len(snap.Entries)))
	metrics.WriteCounterUint64(&w, "gateway_config_compiles_total", m.Compiles.Load())
	metrics.WriteCounterUint64(&w, "gateway_config_invalid_values_total", m.InvalidValues.Load())
	metrics.WriteCounterUint64(&w, "gateway_admin_auth_failures_total", a.AuthFailures.Load())
	if a.Health != nil {
		a.Health.WritePrometheus(&w)
	}

	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	ctx.SetBody(w.Bytes())
}
