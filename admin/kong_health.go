package admin

import (
	"context"
	"sort"
	"strconv"

	"github.com/edgeway/gateway/core"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// Target health values of Kong's GET /upstreams/{u}/health.
const (
	healthHealthy   = "HEALTHY"
	healthUnhealthy = "UNHEALTHY"
	healthOff       = "HEALTHCHECKS_OFF"
)

// kongHealth answers GET /upstreams/{u}/health: every target with its
// health as this gateway's node state shows it (HEALTHCHECKS_OFF when the
// upstream's checks are off or the target's weight is 0), or, with
// ?balancer_health=1, the upstream as a whole.
func (a *API) kongHealth(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		kongMethodNotAllowed(ctx)
		return
	}
	up, ok := a.kongParent(ctx, kongUpstreams)
	if !ok {
		return
	}
	all, err := a.kongAll(context.Background(), kongTargets)
	if err != nil {
		a.kongStoreError(ctx, "list targets", err)
		return
	}
	var targets []map[string]any
	for _, t := range all {
		if kongChildOf(kongTargets, t, up) {
			targets = append(targets, t.obj)
		}
	}
	sort.Slice(targets, func(i, j int) bool {
		ci, _ := strconv.ParseFloat(jsonString(targets[i]["created_at"]), 64)
		cj, _ := strconv.ParseFloat(jsonString(targets[j]["created_at"]), 64)
		return ci > cj
	})
	checksOn := kongChecksOn(up.obj)
	name, _ := up.obj["name"].(string)
	down := a.Manager.Proxy.Snapshot().KongTargetsDown(name)

	data := make([]map[string]any, 0, len(targets))
	total, available := 0, 0
	for _, t := range targets {
		addr, _ := t["target"].(string)
		w, _ := strconv.Atoi(jsonString(t["weight"]))
		health := healthOff
		if checksOn && w > 0 {
			health = healthHealthy
			if down[addr] {
				health = healthUnhealthy
			}
		}
		total += w
		avail := w
		if down[addr] {
			avail = 0
		}
		available += avail
		host, port := core.KongTargetAddr(addr)
		out := make(map[string]any, len(t)+2)
		for k, v := range t {
			out[k] = v
		}
		out["health"] = health
		out["data"] = map[string]any{
			"host": host, "port": port, "nodeWeight": w,
			"weight":    map[string]int{"total": w, "available": avail, "unavailable": w - avail},
			"addresses": []map[string]any{{"ip": host, "port": port, "weight": w, "health": health}},
		}
		data = append(data, out)
	}
	if string(ctx.QueryArgs().Peek("balancer_health")) == "1" {
		health, balancer := healthOff, healthHealthy
		if available == 0 && total > 0 || len(targets) == 0 {
			balancer = healthUnhealthy
		}
		if checksOn {
			health = balancer
		}
		writeJSON(ctx, fasthttp.StatusOK, map[string]any{
			"data": map[string]any{
				"id": up.id(), "health": health, "balancer_health": balancer,
				"details": map[string]any{"healthy": balancer == healthHealthy,
					"weight": map[string]int{"total": total, "available": available, "unavailable": total - available}},
			},
			"next": nil, "node_id": a.nodeID(),
		})
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]any{"data": data, "next": nil, "node_id": a.nodeID()})
}

// kongChecksOn is Kong's is_upstream_using_healthcheck: an active interval
// or a passive failure counter is non-zero.
func kongChecksOn(up map[string]any) bool {
	b, _ := json.Marshal(up["healthchecks"])
	var hc core.KongHealthchecks
	if json.Unmarshal(b, &hc) != nil {
		return false
	}
	return hc.Active.Healthy.Interval > 0 || hc.Active.Unhealthy.Interval > 0 ||
		hc.Passive.Unhealthy.TCPFailures > 0 || hc.Passive.Unhealthy.Timeouts > 0 || hc.Passive.Unhealthy.HTTPFailures > 0
}

// nodeID identifies this gateway process in health answers.
func (a *API) nodeID() string {
	a.nodeOnce.Do(func() {
		if a.NodeID == "" {
			a.NodeID = core.NewUUID()
		}
	})
	return a.NodeID
}
