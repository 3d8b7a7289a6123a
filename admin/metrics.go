package admin

import (
	"bytes"
	"fmt"
	"sort"
	"strconv"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/pool"
	"github.com/edgeway/gateway/store"
	"github.com/valyala/fasthttp"
)

var statusClasses = [...]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// metrics answers GET /metrics in Prometheus text format: Go runtime and
// process metrics, request counters per route and upstream by status
// class, the latency histogram, upstream connection counters, service
// discovery, the configuration state and whether the configuration store
// is reachable.
// It carries no secrets and needs no admin key.
func (a *API) metrics(ctx *fasthttp.RequestCtx) {
	var w bytes.Buffer
	metrics.WritePrometheus(&w, true)
	m := a.Manager
	snap := m.Proxy.Snapshot()

	entries := snap.Routes.Entries()
	sort.Slice(entries, func(i, j int) bool { return entries[i].Key < entries[j].Key })
	for _, e := range entries {
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

	// Connection counters per upstream node: a pool shared by several
	// upstreams charges each event to the upstream that caused it.
	m.Runtime.EachMeter(func(nm core.NodeMeter) {
		l := fmt.Sprintf(`{upstream=%q,node=%q}`, nm.Upstream, nm.Node)
		mt := nm.Meter
		metrics.WriteCounterUint64(&w, "gateway_upstream_connections_opened_total"+l, mt.Opened.Load())
		metrics.WriteCounterUint64(&w, "gateway_upstream_connections_reused_total"+l, mt.Reused.Load())
		metrics.WriteCounterUint64(&w, "gateway_upstream_connections_closed_total"+l, mt.Closed.Load())
		metrics.WriteCounterUint64(&w, "gateway_upstream_connect_errors_total"+l, mt.DialErrors.Load())
		metrics.WriteCounterUint64(&w, "gateway_upstream_tls_handshakes_total"+l, mt.TLSHandshakes.Load())
		metrics.WriteCounterUint64(&w, "gateway_upstream_tls_handshake_failures_total"+l, mt.TLSFailures.Load())
	})
	// Idle connections per pool (pools are shared by upstreams with the
	// same node, TLS identity and keepalive_pool settings).
	type poolRow struct {
		key, addr, sni string
		idle           int64
	}
	var rows []poolRow
	m.Runtime.Pools.Each(func(g *pool.Group) {
		g.Each(func(sni string, p *pool.Pool) {
			rows = append(rows, poolRow{g.Key(), p.Options().Addr, sni, p.Stats().Idle})
		})
	})
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].key != rows[j].key {
			return rows[i].key < rows[j].key
		}
		return rows[i].sni < rows[j].sni
	})
	for _, r := range rows {
		metrics.WriteGaugeUint64(&w, fmt.Sprintf(`gateway_upstream_connections_idle{addr=%q,sni=%q,pool=%q}`, r.addr, r.sni, r.key),
			uint64(max(r.idle, 0)))
	}
	metrics.WriteGaugeUint64(&w, "gateway_tls_certificates_sni", uint64(snap.Certs.Len()))
	writeDiscoveryMetrics(&w, snap)

	metrics.WriteGaugeUint64(&w, "gateway_config_revision", uint64(max(snap.Config.Revision, 0)))
	metrics.WriteGaugeUint64(&w, "gateway_config_routes", uint64(snap.Routes.Len()))
	metrics.WriteCounterUint64(&w, "gateway_config_compiles_total", m.Compiles.Load())
	metrics.WriteCounterUint64(&w, "gateway_config_updates_total", m.Updates.Load())
	metrics.WriteCounterUint64(&w, "gateway_config_compactions_total", m.Compactions.Load())
	metrics.WriteCounterUint64(&w, "gateway_config_invalid_values_total", m.InvalidValues.Load())
	// 1 while the configuration store answers (always for the embedded
	// store); 0 while etcd is unreachable and the last configuration is
	// served as it is.
	connected := uint64(0)
	if store.Connected(a.Store) {
		connected = 1
	}
	metrics.WriteGaugeUint64(&w, "gateway_store_connected", connected)
	metrics.WriteCounterUint64(&w, "gateway_admin_auth_failures_total", a.AuthFailures.Load())
	if a.Health != nil {
		a.Health.WritePrometheus(&w)
	}

	ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
	ctx.SetBody(w.Bytes())
}
