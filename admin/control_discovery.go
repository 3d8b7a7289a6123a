package admin

import (
	"time"

	"github.com/valyala/fasthttp"
)

// discoveryJSON is one discovered upstream in GET /v1/discovery.
type discoveryJSON struct {
	// Upstream is the upstream's key ("/apisix/upstreams/1", or the route
	// or service of an inline upstream).
	Upstream string `json:"upstream"`
	// Nodes are the addresses served now.
	Nodes   []string `json:"nodes"`
	Updates uint64   `json:"updates"`
	// Services are the watched services: the service_name, or each static
	// node given by host name.
	Services []discoveryServiceJSON `json:"services"`
}

type discoveryServiceJSON struct {
	Type    string              `json:"type"`
	Service string              `json:"service"`
	Nodes   []discoveryNodeJSON `json:"nodes"`
	// Stale is true while the latest lookup failed: Nodes are the last
	// good ones.
	Stale       bool   `json:"stale"`
	Empty       string `json:"empty,omitempty"`
	Resolved    string `json:"last_success,omitempty"`
	Checked     string `json:"last_lookup,omitempty"`
	Error       string `json:"error,omitempty"`
	LastError   string `json:"last_error,omitempty"`
	LastErrorAt string `json:"last_error_at,omitempty"`
	Failures    uint64 `json:"failures"`
}

type discoveryNodeJSON struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Weight   int    `json:"weight"`
	Priority int    `json:"priority"`
}

// discovery answers GET /v1/discovery: every upstream whose nodes come
// from service discovery or DNS names, with its current nodes and, per
// watched service, the last good nodes, the time of the last successful
// lookup and the last error. An empty list is [].
func (c *Control) discovery(ctx *fasthttp.RequestCtx) {
	list := []discoveryJSON{}
	for _, du := range c.Manager.Proxy.Snapshot().Discovered() {
		dj := discoveryJSON{Upstream: du.Upstream, Nodes: du.Nodes, Updates: du.Updates}
		if dj.Nodes == nil {
			dj.Nodes = []string{}
		}
		for _, src := range du.Sources {
			st := src.State
			sj := discoveryServiceJSON{Type: src.Type, Service: src.Service, Nodes: []discoveryNodeJSON{},
				Stale: st.Err != nil, Empty: st.Empty, Resolved: stamp(st.Resolved), Checked: stamp(st.Checked),
				LastErrorAt: stamp(st.LastErrAt), Failures: st.Failures}
			for _, n := range st.Nodes {
				sj.Nodes = append(sj.Nodes, discoveryNodeJSON{Host: n.Host, Port: n.Port, Weight: n.Weight, Priority: n.Priority})
			}
			if st.Err != nil {
				sj.Error = st.Err.Error()
			}
			if st.LastErr != nil {
				sj.LastError = st.LastErr.Error()
			}
			dj.Services = append(dj.Services, sj)
		}
		list = append(list, dj)
	}
	writeJSON(ctx, fasthttp.StatusOK, list)
}

// stamp renders a time in RFC 3339 with milliseconds, "" for zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z07:00")
}
