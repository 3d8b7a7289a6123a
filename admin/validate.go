package admin

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// validate encodes obj, checks it against kind's schema and that the
// objects it references exist, and returns the bytes to store. It answers
// 400 itself when the object is refused.
func (a *API) validate(ctx *fasthttp.RequestCtx, wctx context.Context, kind core.Kind, obj map[string]any) ([]byte, bool) {
	value, err := json.Marshal(obj)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid configuration: "+err.Error()))
		return nil, false
	}
	var refs [][2]string  // (kind, id) that must exist
	var up *core.Upstream // whose tls.client_cert_id must name a client SSL
	switch kind {
	case core.KindRoutes:
		r, err := core.ParseRoute(value)
		if err != nil {
			return nil, refuse(ctx, err)
		}
		up = r.Upstream
		if r.UpstreamID != "" {
			refs = append(refs, [2]string{"upstream", r.UpstreamID})
		}
		if r.ServiceID != "" {
			refs = append(refs, [2]string{"service", r.ServiceID})
		}
		for _, w := range r.Split {
			if w.UpstreamID != "" {
				refs = append(refs, [2]string{"upstream", w.UpstreamID})
			}
		}
	case core.KindUpstreams:
		u, err := core.ParseUpstream(value)
		if err != nil {
			return nil, refuse(ctx, err)
		}
		up = u
	case core.KindServices:
		s, err := core.ParseService(value)
		if err != nil {
			return nil, refuse(ctx, err)
		}
		up = s.Upstream
		if s.UpstreamID != "" {
			refs = append(refs, [2]string{"upstream", s.UpstreamID})
		}
	case core.KindSSLs:
		s, err := core.ParseSSL(value)
		if err != nil {
			return nil, refuse(ctx, err)
		}
		id, _ := idString(obj["id"])
		if users := sslUsers(a.Manager.Config(), id); s.Type != "client" && len(users) > 0 {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg(usedMessage("can not change the type of this ssl to "+s.Type+", ", users)+
				" as a client certificate"))
			return nil, false
		}
	}
	if !a.checkClientCertID(ctx, wctx, up) {
		return nil, false
	}
	for _, ref := range refs {
		_, err := a.Store.Get(wctx, core.Key(core.Kind(ref[0]+"s"), ref[1]))
		if errors.Is(err, store.ErrNotFound) {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("failed to fetch "+ref[0]+" info by "+ref[0]+
				" id ["+ref[1]+"], response code: 404"))
			return nil, false
		}
		if err != nil {
			a.storeError(ctx, "check "+ref[0]+" "+ref[1], err)
			return nil, false
		}
	}
	return value, true
}

// refuse answers 400 for a validation error.
func refuse(ctx *fasthttp.RequestCtx, err error) bool {
	writeJSON(ctx, fasthttp.StatusBadRequest, errMsg(core.AdminMessage(err)))
	return false
}

// stillUsed names what still references an upstream or a service, in
// APISIX's words; "" when nothing does.
func (a *API) stillUsed(_ context.Context, kind core.Kind, id string) string {
	cfg := a.Manager.Config()
	var users []string
	switch kind {
	case core.KindUpstreams:
		for _, rid := range sortedKeys(cfg.Routes) {
			if cfg.Routes[rid].UpstreamID == id {
				users = append(users, "route ["+rid+"]")
			}
		}
		for _, sid := range sortedKeys(cfg.Services) {
			if cfg.Services[sid].UpstreamID == id {
				users = append(users, "service ["+sid+"]")
			}
		}
		for _, rid := range sortedKeys(cfg.Routes) {
			for _, w := range cfg.Routes[rid].Split {
				if w.UpstreamID == id {
					users = append(users, "plugin in route ["+rid+"]")
					break
				}
			}
		}
		if len(users) > 0 {
			return usedMessage("can not delete this upstream, ", users)
		}
	case core.KindServices:
		for _, rid := range sortedKeys(cfg.Routes) {
			if cfg.Routes[rid].ServiceID == id {
				users = append(users, "route ["+rid+"]")
			}
		}
		if len(users) > 0 {
			return usedMessage("can not delete this service directly, ", users)
		}
	case core.KindSSLs:
		if users := sslUsers(cfg, id); len(users) > 0 {
			return usedMessage("can not delete this ssl, ", users)
		}
	}
	return ""
}

func usedMessage(prefix string, users []string) string {
	msg := prefix + users[0] + " is still using it now"
	if len(users) > 1 {
		msg += " (also used by " + strings.Join(users[1:], ", ") + ")"
	}
	return msg
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
