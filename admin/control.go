package admin

import (
	"bytes"
	"fmt"
	"html"
	"strings"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/health"
	"github.com/valyala/fasthttp"
)

// Control is APISIX's control API (apisix/control/v1.lua), served on the
// control listener: the health of every checked upstream node.
//
//	GET /v1/healthcheck                                  every checker
//	GET /v1/healthcheck/{routes|services|upstreams}/{id} one checker
//	GET /v1/discovery                                    discovered upstreams (ours)
//
// A resource is listed when it holds checks itself: an upstream with
// checks, or a route or service whose inline upstream has checks (a route
// using upstream_id is not listed; its upstream is). JSON by default, an
// HTML table when the Accept header contains text/html. It needs no key:
// like APISIX's, the listener is meant for loopback (127.0.0.1:9090).
type Control struct {
	Manager *core.Manager
	Health  *health.Manager
}

// controlNode is one node in APISIX's JSON shape.
type controlNode struct {
	IP         string         `json:"ip"`
	Port       int            `json:"port"`
	Hostname   string         `json:"hostname,omitempty"`
	HostHeader string         `json:"hostheader,omitempty"`
	Status     string         `json:"status"`
	Counter    controlCounter `json:"counter"`
}

type controlCounter struct {
	Success        int `json:"success"`
	HTTPFailure    int `json:"http_failure"`
	TCPFailure     int `json:"tcp_failure"`
	TimeoutFailure int `json:"timeout_failure"`
}

type controlChecker struct {
	Name  string        `json:"name"`
	Type  string        `json:"type"`
	Nodes []controlNode `json:"nodes"`
}

// Handler returns the request handler of the control listener.
func (c *Control) Handler() fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		path := string(ctx.Path())
		switch {
		case path == "/v1/healthcheck" || path == "/v1/healthcheck/":
			if !c.allowed(ctx) {
				return
			}
			c.all(ctx)
		case strings.HasPrefix(path, "/v1/healthcheck/"):
			if !c.allowed(ctx) {
				return
			}
			c.one(ctx, strings.Split(strings.TrimPrefix(path, "/v1/healthcheck/"), "/"))
		case path == "/v1/discovery" || path == "/v1/discovery/":
			if !c.allowed(ctx) {
				return
			}
			c.discovery(ctx)
		default:
			writeJSON(ctx, fasthttp.StatusNotFound, errMsg("404 Route Not Found"))
		}
	}
}

func (c *Control) allowed(ctx *fasthttp.RequestCtx) bool {
	if ctx.IsGet() || ctx.IsHead() {
		return true
	}
	ctx.Response.Header.Set("Allow", "GET, HEAD")
	writeJSON(ctx, fasthttp.StatusMethodNotAllowed, errMsg("405 Method Not Allowed"))
	return false
}

// all answers GET /v1/healthcheck: routes, then services, then upstreams,
// each by id. With no checker APISIX answers `{}` (an empty Lua table).
func (c *Control) all(ctx *fasthttp.RequestCtx) {
	cfg := c.Manager.Config()
	var list []controlChecker
	for _, id := range sortedKeys(cfg.Routes) {
		if u := cfg.Routes[id].Upstream; u != nil && u.Checks != nil {
			list = append(list, c.checker(core.Key(core.KindRoutes, id), u.Checks))
		}
	}
	for _, id := range sortedKeys(cfg.Services) {
		if u := cfg.Services[id].Upstream; u != nil && u.Checks != nil {
			list = append(list, c.checker(core.Key(core.KindServices, id), u.Checks))
		}
	}
	for _, id := range sortedKeys(cfg.Upstreams) {
		if u := cfg.Upstreams[id]; u.Checks != nil {
			list = append(list, c.checker(core.Key(core.KindUpstreams, id), u.Checks))
		}
	}
	if wantsHTML(ctx) {
		writeHTML(ctx, list)
		return
	}
	if len(list) == 0 {
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBodyString("{}\n")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, list)
}

// one answers GET /v1/healthcheck/{type}/{id} with APISIX's errors: 400
// for an unknown type, 404 for a missing id, a resource that does not exist
// or one without checks.
func (c *Control) one(ctx *fasthttp.RequestCtx, segs []string) {
	typ := segs[0]
	var id string
	if len(segs) > 1 {
		id = segs[1]
	}
	cfg := c.Manager.Config()
	var checks *core.HealthChecks
	var found bool
	switch typ {
	case "routes":
		var r *core.Route
		if r, found = cfg.Routes[id]; found && r.Upstream != nil {
			checks = r.Upstream.Checks
		}
	case "services":
		var s *core.Service
		if s, found = cfg.Services[id]; found && s.Upstream != nil {
			checks = s.Upstream.Checks
		}
	case "upstreams":
		var u *core.Upstream
		if u, found = cfg.Upstreams[id]; found {
			checks = u.Checks
		}
	case "stream_routes":
		// This gateway has no stream routes: none can be found.
	default:
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid src type "+typ))
		return
	}
	switch {
	case id == "":
		writeJSON(ctx, fasthttp.StatusNotFound, errMsg("missing src id for src type "+typ))
	case !found:
		writeJSON(ctx, fasthttp.StatusNotFound, errMsg(fmt.Sprintf("%s[%s] not found", typ, id)))
	case checks == nil:
		writeJSON(ctx, fasthttp.StatusNotFound, errMsg(fmt.Sprintf("no checker for %s[%s]", typ, id)))
	default:
		info := c.checker(core.Key(core.Kind(typ), id), checks)
		if wantsHTML(ctx) {
			writeHTML(ctx, []controlChecker{info})
			return
		}
		writeJSON(ctx, fasthttp.StatusOK, info)
	}
}

// checker returns a resource's checker; nodes are empty until it runs.
func (c *Control) checker(key string, checks *core.HealthChecks) controlChecker {
	out := controlChecker{Name: key, Type: "http", Nodes: []controlNode{}}
	if checks.Active != nil {
		out.Type = checks.Active.Type
	} else if checks.Passive != nil {
		out.Type = checks.Passive.Type
	}
	st, ok := c.Health.Status(key)
	if !ok {
		return out
	}
	for _, n := range st.Nodes {
		out.Nodes = append(out.Nodes, controlNode{
			IP: n.IP, Port: n.Port, Hostname: n.Hostname, HostHeader: n.HostHeader, Status: n.State.String(),
			Counter: controlCounter{Success: int(n.Counters.Success), HTTPFailure: int(n.Counters.HTTPFailure),
				TCPFailure: int(n.Counters.TCPFailure), TimeoutFailure: int(n.Counters.TimeoutFailure)},
		})
	}
	return out
}

func wantsHTML(ctx *fasthttp.RequestCtx) bool {
	return bytes.Contains(ctx.Request.Header.Peek("Accept"), []byte("text/html"))
}

// writeHTML answers with APISIX's table: Index, Upstream, Check type,
// Host, Status, Success counts, TCP Failures, HTTP Failures, TIMEOUT
// Failures; rows of nodes that are down are red.
func writeHTML(ctx *fasthttp.RequestCtx, list []controlChecker) {
	var b strings.Builder
	b.WriteString(`<html xmlns="http://www.w3.org/1999/xhtml">
<head>
  <title>upstream check status</title>
</head>
<body>
<h1>upstream check status</h1>
<table style="background-color:white" cellspacing="0" cellpadding="3" border="1">
  <tr bgcolor="#C0C0C0">
    <th>Index</th>
    <th>Upstream</th>
    <th>Check type</th>
    <th>Host</th>
    <th>Status</th>
    <th>Success counts</th>
    <th>TCP Failures</th>
    <th>HTTP Failures</th>
    <th>TIMEOUT Failures</th>
  </tr>
`)
	i := 0
	for _, c := range list {
		for _, n := range c.Nodes {
			i++
			if n.Status == "healthy" || n.Status == "mostly_healthy" {
				b.WriteString("  <tr>\n")
			} else {
				b.WriteString("  <tr bgcolor=\"#FF0000\">\n")
			}
			for _, cell := range []string{
				fmt.Sprint(i), c.Name, c.Type, fmt.Sprintf("%s:%d", n.IP, n.Port), n.Status,
				fmt.Sprint(n.Counter.Success), fmt.Sprint(n.Counter.TCPFailure),
				fmt.Sprint(n.Counter.HTTPFailure), fmt.Sprint(n.Counter.TimeoutFailure),
			} {
				b.WriteString("    <td>" + html.EscapeString(cell) + "</td>\n")
			}
			b.WriteString("  </tr>\n")
		}
	}
	b.WriteString("</table>\n</body>\n</html>\n")
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType("text/html")
	ctx.SetBodyString(b.String())
}
