package admin

import (
	"bytes"
	"fmt"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgeway/gateway/core"
)

// writeDiscoveryMetrics writes the state of every discovered upstream (by
// discovery_type and service_name, or with static nodes given by host
// name): the nodes it serves and how often they changed; and for each
// watched service, the nodes it gives, the last successful lookup, the
// failures, whether the nodes are stale (the latest lookup failed and the
// last good ones are kept) and the last error.
func writeDiscoveryMetrics(w *bytes.Buffer, snap *core.Snapshot) {
	for _, du := range snap.Discovered() {
		l := fmt.Sprintf(`{upstream=%q}`, du.Upstream)
		metrics.WriteGaugeUint64(w, "gateway_discovery_upstream_nodes"+l, uint64(len(du.Nodes)))
		metrics.WriteCounterUint64(w, "gateway_discovery_upstream_updates_total"+l, du.Updates)
		for _, src := range du.Sources {
			st := src.State
			l := fmt.Sprintf(`{upstream=%q,type=%q,service=%q}`, du.Upstream, src.Type, src.Service)
			metrics.WriteGaugeUint64(w, "gateway_discovery_nodes"+l, uint64(len(st.Nodes)))
			metrics.WriteGaugeFloat64(w, "gateway_discovery_last_success_timestamp_seconds"+l, unixSeconds(st.Resolved))
			metrics.WriteCounterUint64(w, "gateway_discovery_lookup_failures_total"+l, st.Failures)
			stale := uint64(0)
			if st.Err != nil {
				stale = 1
			}
			metrics.WriteGaugeUint64(w, "gateway_discovery_stale"+l, stale)
			metrics.WriteGaugeFloat64(w, "gateway_discovery_last_error_timestamp_seconds"+l, unixSeconds(st.LastErrAt))
			if st.LastErr != nil {
				metrics.WriteGaugeUint64(w, fmt.Sprintf(`gateway_discovery_last_error_info{upstream=%q,type=%q,service=%q,error=%q}`,
					du.Upstream, src.Type, src.Service, st.LastErr.Error()), 1)
			}
		}
	}
}

// unixSeconds is t in seconds since the epoch (ms precision), 0 for the
// zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMilli()) / 1000
}
