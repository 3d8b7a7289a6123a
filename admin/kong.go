package admin

import (
	"context"
	"errors"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/fasthttp/router"
	"github.com/valyala/fasthttp"
)

// Kong's Admin API (the routes of kong/api/endpoints.lua and
// kong/api/routes/upstreams.lua that the upstream → targets → service →
// route flow uses). Entities are validated by core's Kong schemas, stored
// as Kong returns them under /apisix/kong_<kind>/<uuid>, and translated
// into the model by the configuration manager: one store, one snapshot.
// Answers use Kong's shapes: the entity itself, {"data":[...],"next":...}
// for lists, {code,name,message,fields} for DAO errors and
// {"message":"Not found"} for unknown entities.

// kongKind describes one Kong collection.
type kongKind struct {
	kind core.Kind
	// plural is the path segment and the name used in messages.
	plural string
	// endpointKey is the field an entity may be named by in a URL.
	endpointKey string
}

var (
	kongServices  = &kongKind{kind: core.KindKongServices, plural: "services", endpointKey: "name"}
	kongRoutes    = &kongKind{kind: core.KindKongRoutes, plural: "routes", endpointKey: "name"}
	kongUpstreams = &kongKind{kind: core.KindKongUpstreams, plural: "upstreams", endpointKey: "name"}
	kongTargets   = &kongKind{kind: core.KindKongTargets, plural: "targets", endpointKey: "target"}
)

// registerKong adds Kong's endpoints to r.
func (a *API) registerKong(r *router.Router) {
	h := func(f fasthttp.RequestHandler) fasthttp.RequestHandler { return a.guard(a.kongReadOnly(f)) }
	r.ANY("/services", h(a.kongCollection(kongServices, nil)))
	r.ANY("/services/{service}", h(a.kongEntity(kongServices, nil)))
	r.ANY("/services/{service}/routes", h(a.kongCollection(kongRoutes, kongServices)))
	r.ANY("/services/{service}/routes/{route}", h(a.kongEntity(kongRoutes, kongServices)))
	r.ANY("/routes", h(a.kongCollection(kongRoutes, nil)))
	r.ANY("/routes/{route}", h(a.kongEntity(kongRoutes, nil)))
	r.ANY("/upstreams", h(a.kongCollection(kongUpstreams, nil)))
	r.ANY("/upstreams/{upstream}", h(a.kongEntity(kongUpstreams, nil)))
	r.ANY("/upstreams/{upstream}/health", h(a.kongHealth))
	r.ANY("/upstreams/{upstream}/targets", h(a.kongCollection(kongTargets, kongUpstreams)))
	r.ANY("/upstreams/{upstream}/targets/{target}", h(a.kongTargetEntity))
}

// userValue names the URL parameter of a kind.
func (k *kongKind) param() string {
	switch k {
	case kongServices:
		return "service"
	case kongRoutes:
		return "route"
	case kongUpstreams:
		return "upstream"
	}
	return "target"
}

// kongReadOnly refuses writes in standalone mode.
func (a *API) kongReadOnly(h fasthttp.RequestHandler) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		if a.ReadOnly && !ctx.IsGet() && !ctx.IsHead() {
			kongMessage(ctx, fasthttp.StatusMethodNotAllowed,
				"the Admin API is read-only: this gateway runs in standalone mode and serves its configuration file")
			return
		}
		h(ctx)
	}
}

func kongMessage(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeJSON(ctx, status, map[string]string{"message": msg})
}

func kongNotFound(ctx *fasthttp.RequestCtx) { kongMessage(ctx, fasthttp.StatusNotFound, "Not found") }

func kongMethodNotAllowed(ctx *fasthttp.RequestCtx) {
	kongMessage(ctx, fasthttp.StatusMethodNotAllowed, "Method not allowed")
}

func kongFail(ctx *fasthttp.RequestCtx, err *core.KongError) { writeJSON(ctx, err.Status(), err) }

// kongStoreError answers a store failure.
func (a *API) kongStoreError(ctx *fasthttp.RequestCtx, op string, err error) {
	a.logf("admin: kong %s failed: %v", op, err)
	msg := "the configuration store failed: " + err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "timed out waiting for the configuration store"
	}
	kongMessage(ctx, fasthttp.StatusServiceUnavailable, msg)
}

// kongRecord is one stored entity.
type kongRecord struct {
	kv  store.KV
	obj map[string]any
}

func (r *kongRecord) id() string { s, _ := r.obj["id"].(string); return s }

// kongAll lists a kind, decoded.
func (a *API) kongAll(ctx context.Context, k *kongKind) ([]*kongRecord, error) {
	kvs, _, err := a.Store.List(ctx, core.Key(k.kind, ""))
	if err != nil {
		return nil, err
	}
	out := make([]*kongRecord, 0, len(kvs))
	for _, kv := range kvs {
		v, err := decodeJSON(kv.Value)
		obj, ok := v.(map[string]any)
		if err != nil || !ok {
			continue
		}
		out = append(out, &kongRecord{kv: kv, obj: obj})
	}
	return out, nil
}

// kongFind returns the entity named by a URL segment: a UUID is an id,
// anything else the endpoint key (name; host:port for targets, within
// parent). nil when there is none.
func (a *API) kongFind(ctx context.Context, k *kongKind, ref string, parent *kongRecord) (*kongRecord, error) {
	if core.IsUUID(ref) {
		kv, err := a.Store.Get(ctx, core.Key(k.kind, ref))
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		v, err := decodeJSON(kv.Value)
		obj, ok := v.(map[string]any)
		if err != nil || !ok {
			return nil, nil
		}
		rec := &kongRecord{kv: kv, obj: obj}
		if parent != nil && !kongChildOf(k, rec, parent) {
			return nil, nil
		}
		return rec, nil
	}
	all, err := a.kongAll(ctx, k)
	if err != nil {
		return nil, err
	}
	if k == kongTargets {
		if t, ok := core.NormalizeKongTarget(ref); ok {
			ref = t
		}
	}
	for _, rec := range all {
		if rec.obj[k.endpointKey] == ref && (parent == nil || kongChildOf(k, rec, parent)) {
			return rec, nil
		}
	}
	return nil, nil
}

// kongChildOf reports whether rec (a route or target) belongs to parent.
func kongChildOf(k *kongKind, rec, parent *kongRecord) bool {
	field := "service"
	if k == kongTargets {
		field = "upstream"
	}
	ref, _ := rec.obj[field].(map[string]any)
	return ref != nil && ref["id"] == parent.id()
}

// kongParent resolves the parent named in the URL of a nested endpoint,
// answering 404 when it does not exist.
func (a *API) kongParent(ctx *fasthttp.RequestCtx, parent *kongKind) (*kongRecord, bool) {
	if parent == nil {
		return nil, true
	}
	ref, _ := ctx.UserValue(parent.param()).(string)
	rec, err := a.kongFind(context.Background(), parent, ref, nil)
	if err != nil {
		a.kongStoreError(ctx, "find "+parent.plural, err)
		return nil, false
	}
	if rec == nil {
		kongNotFound(ctx)
		return nil, false
	}
	return rec, true
}

// kongCollection serves GET (list) and POST (create) on a collection,
// nested under parent when it is set.
func (a *API) kongCollection(k, parent *kongKind) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		p, ok := a.kongParent(ctx, parent)
		if !ok {
			return
		}
		switch string(ctx.Method()) {
		case fasthttp.MethodGet, fasthttp.MethodHead:
			a.kongList(ctx, k, p)
		case fasthttp.MethodPost:
			obj, ok := a.kongInput(ctx, k)
			if !ok {
				return
			}
			a.kongWrite(ctx, k, p, nil, obj, false)
		default:
			kongMethodNotAllowed(ctx)
		}
	}
}

// kongEntity serves GET, PATCH, PUT and DELETE on one entity.
func (a *API) kongEntity(k, parent *kongKind) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		p, ok := a.kongParent(ctx, parent)
		if !ok {
			return
		}
		ref, _ := ctx.UserValue(k.param()).(string)
		a.kongOne(ctx, k, p, ref)
	}
}

// kongTargetEntity serves /upstreams/{u}/targets/{t}, and
// /upstreams/{u}/targets/all (every target, weight 0 included).
func (a *API) kongTargetEntity(ctx *fasthttp.RequestCtx) {
	p, ok := a.kongParent(ctx, kongUpstreams)
	if !ok {
		return
	}
	ref, _ := ctx.UserValue("target").(string)
	if ref == "all" {
		if !ctx.IsGet() && !ctx.IsHead() {
			kongMethodNotAllowed(ctx)
			return
		}
		a.kongList(ctx, kongTargets, p)
		return
	}
	a.kongOne(ctx, kongTargets, p, ref)
}

func (a *API) kongOne(ctx *fasthttp.RequestCtx, k *kongKind, p *kongRecord, ref string) {
	method := string(ctx.Method())
	rec, err := a.kongFind(context.Background(), k, ref, p)
	if err != nil {
		a.kongStoreError(ctx, "find "+k.plural, err)
		return
	}
	switch method {
	case fasthttp.MethodGet, fasthttp.MethodHead:
		if rec == nil {
			kongNotFound(ctx)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBody(append(rec.kv.Value, '\n'))
	case fasthttp.MethodPatch:
		if rec == nil {
			kongNotFound(ctx)
			return
		}
		obj, ok := a.kongInput(ctx, k)
		if !ok {
			return
		}
		a.kongWrite(ctx, k, p, rec, kongMerge(cloneObj(rec.obj), obj), false)
	case fasthttp.MethodPut:
		obj, ok := a.kongInput(ctx, k)
		if !ok {
			return
		}
		if rec == nil && k == kongTargets {
			// Kong upserts targets only through POST.
			kongNotFound(ctx)
			return
		}
		if rec == nil {
			if core.IsUUID(ref) {
				obj["id"] = ref
			} else {
				obj[k.endpointKey] = ref
			}
		} else {
			obj["id"] = rec.id()
			if _, given := obj[k.endpointKey]; !given && !core.IsUUID(ref) {
				obj[k.endpointKey] = ref
			}
		}
		a.kongWrite(ctx, k, p, rec, obj, true)
	case fasthttp.MethodDelete:
		if rec == nil {
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}
		a.kongDelete(ctx, k, rec)
	default:
		kongMethodNotAllowed(ctx)
	}
}

// kongInput decodes the body and types form values against the schema.
func (a *API) kongInput(ctx *fasthttp.RequestCtx, k *kongKind) (map[string]any, bool) {
	obj, err := kongBody(ctx)
	if errors.Is(err, errCannotParseJSON) {
		kongMessage(ctx, fasthttp.StatusBadRequest, "Cannot parse JSON body")
		return nil, false
	}
	if err != nil {
		kongMessage(ctx, fasthttp.StatusBadRequest, "Cannot parse request body: "+err.Error())
		return nil, false
	}
	if !isJSONBody(ctx) {
		core.InferKong(k.kind, obj)
	}
	if kerr := core.ApplyKongShorthands(k.kind, obj); kerr != nil {
		kongFail(ctx, kerr)
		return nil, false
	}
	return obj, true
}

func isJSONBody(ctx *fasthttp.RequestCtx) bool {
	ct := string(ctx.Request.Header.ContentType())
	return ct != "" && !hasPrefixFold(ct, "application/x-www-form-urlencoded") && !hasPrefixFold(ct, "multipart/form-data")
}

func hasPrefixFold(s, prefix string) bool {
	if len(s) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != prefix[i] {
			return false
		}
	}
	return true
}

// kongMerge applies a PATCH: fields replace, records merge field by field
// (Kong's merge_values), arrays replace.
func kongMerge(dst, patch map[string]any) map[string]any {
	for k, pv := range patch {
		pm, pIsObj := pv.(map[string]any)
		dm, dIsObj := dst[k].(map[string]any)
		if pIsObj && dIsObj && k != "service" && k != "upstream" {
			dst[k] = kongMerge(dm, pm)
			continue
		}
		dst[k] = pv
	}
	return dst
}

func cloneObj(m map[string]any) map[string]any { return copyJSON(m).(map[string]any) }
