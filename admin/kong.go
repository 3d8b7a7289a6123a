package admin

import (
	"context"
	"encoding/base64"
	"errors"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/fasthttp/router"
	"github.com/goccy/go-json"
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

// kongWrite validates obj and stores it: a new entity when prev is nil,
// else a replacement of prev (PATCH merged, PUT whole).
func (a *API) kongWrite(ctx *fasthttp.RequestCtx, k *kongKind, parent, prev *kongRecord, obj map[string]any, put bool) {
	wctx, cancel := a.writeCtx()
	defer cancel()
	now := a.Now()
	switch {
	case parent != nil && k == kongTargets:
		obj["upstream"] = map[string]any{"id": parent.id()}
	case parent != nil:
		obj["service"] = map[string]any{"id": parent.id()}
	}
	if k == kongRoutes {
		if kerr := a.kongResolveService(wctx, obj); kerr != nil {
			kongFail(ctx, kerr)
			return
		}
	}
	if prev == nil {
		if _, ok := obj["id"]; !ok {
			obj["id"] = core.NewUUID()
		}
		if id, ok := obj["id"].(string); ok && core.IsUUID(id) {
			if _, err := a.Store.Get(wctx, core.Key(k.kind, id)); err == nil {
				kongFail(ctx, core.NewKongError(core.KongPrimaryKeyViolation,
					`primary key violation on key '{id="`+id+`"}'`, map[string]any{"id": id}))
				return
			}
		}
	} else {
		obj["id"] = prev.id()
	}
	kongTimestamps(k, obj, prev, now)
	out, kerr := core.NormalizeKong(k.kind, obj)
	if kerr != nil {
		kongFail(ctx, kerr)
		return
	}
	if kerr := core.KongUnsupported(k.kind, out); kerr != nil {
		kongFail(ctx, kerr)
		return
	}
	if kerr, err := a.kongConstraints(wctx, k, out); err != nil {
		a.kongStoreError(ctx, "check "+k.plural, err)
		return
	} else if kerr != nil {
		kongFail(ctx, kerr)
		return
	}
	value, err := json.Marshal(out)
	if err != nil {
		kongMessage(ctx, fasthttp.StatusBadRequest, "cannot encode the entity: "+err.Error())
		return
	}
	expect := int64(0)
	if prev != nil {
		expect = prev.kv.ModRevision
	}
	key := core.Key(k.kind, out["id"].(string))
	kv, _, err := a.Store.Put(wctx, key, value, expect)
	if errors.Is(err, store.ErrConflict) {
		kongMessage(ctx, fasthttp.StatusConflict, "the entity changed before it was overwritten; try again")
		return
	}
	if err != nil {
		a.kongStoreError(ctx, "write "+key, err)
		return
	}
	if err := a.Manager.WaitRevision(wctx, kv.ModRevision); err != nil {
		a.kongStoreError(ctx, "wait for "+key, err)
		return
	}
	status := fasthttp.StatusOK
	if prev == nil && !put {
		status = fasthttp.StatusCreated
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(value, '\n'))
}

// kongTimestamps sets created_at (kept from prev) and updated_at: integer
// seconds, or millisecond-precision seconds for targets.
func kongTimestamps(k *kongKind, obj map[string]any, prev *kongRecord, now time.Time) {
	ts := json.Number(strconv.FormatInt(now.Unix(), 10))
	if k == kongTargets {
		ts = json.Number(strconv.FormatFloat(float64(now.UnixMilli())/1000, 'f', -1, 64))
	}
	if prev != nil && prev.obj["created_at"] != nil {
		obj["created_at"] = prev.obj["created_at"]
	} else if _, given := obj["created_at"]; !given {
		obj["created_at"] = ts
	}
	obj["updated_at"] = ts
}

// kongResolveService turns a route's `service` given by name into its id
// and checks that the service exists (Kong's foreign key check).
func (a *API) kongResolveService(ctx context.Context, obj map[string]any) *core.KongError {
	ref, ok := obj["service"].(map[string]any)
	if !ok {
		return nil // null, absent, or the schema reports the type
	}
	if name, ok := ref["name"].(string); ok && ref["id"] == nil {
		rec, err := a.kongFind(ctx, kongServices, name, nil)
		if err != nil || rec == nil {
			return core.NewKongError(core.KongForeignKeyViolation,
				`the foreign key '{name="`+name+`"}' does not reference an existing 'services' entity.`,
				map[string]any{"service": map[string]any{"name": name}})
		}
		obj["service"] = map[string]any{"id": rec.id()}
		return nil
	}
	if id, ok := ref["id"].(string); ok && core.IsUUID(id) {
		if _, err := a.Store.Get(ctx, core.Key(core.KindKongServices, id)); errors.Is(err, store.ErrNotFound) {
			return core.NewKongError(core.KongForeignKeyViolation,
				`the foreign key '{id="`+id+`"}' does not reference an existing 'services' entity.`,
				map[string]any{"service": map[string]any{"id": id}})
		}
	}
	return nil
}

// kongConstraints checks the unique keys (name; a target within its
// upstream).
func (a *API) kongConstraints(ctx context.Context, k *kongKind, out map[string]any) (*core.KongError, error) {
	id := out["id"]
	if k == kongTargets {
		all, err := a.kongAll(ctx, kongTargets)
		if err != nil {
			return nil, err
		}
		up, _ := out["upstream"].(map[string]any)
		for _, rec := range all {
			ru, _ := rec.obj["upstream"].(map[string]any)
			if rec.id() != id && rec.obj["target"] == out["target"] && ru != nil && up != nil && ru["id"] == up["id"] {
				t, _ := out["target"].(string)
				uid, _ := up["id"].(string)
				return core.NewKongError(core.KongUniqueViolation,
					`UNIQUE violation detected on '{target="`+t+`",upstream={id="`+uid+`"}}'`,
					map[string]any{"target": t, "upstream": map[string]any{"id": uid}}), nil
			}
		}
		return nil, nil
	}
	name, ok := out["name"].(string)
	if !ok {
		return nil, nil
	}
	all, err := a.kongAll(ctx, k)
	if err != nil {
		return nil, err
	}
	for _, rec := range all {
		if rec.id() != id && rec.obj["name"] == name {
			return core.NewKongError(core.KongUniqueViolation,
				`UNIQUE violation detected on '{name="`+name+`"}'`, map[string]any{"name": name}), nil
		}
	}
	return nil, nil
}

// kongDelete removes an entity: a service still used by routes is
// refused, an upstream takes its targets with it.
func (a *API) kongDelete(ctx *fasthttp.RequestCtx, k *kongKind, rec *kongRecord) {
	wctx, cancel := a.writeCtx()
	defer cancel()
	var cascade []*kongRecord
	switch k {
	case kongServices:
		routes, err := a.kongAll(wctx, kongRoutes)
		if err != nil {
			a.kongStoreError(ctx, "list routes", err)
			return
		}
		for _, r := range routes {
			if kongChildOf(kongRoutes, r, rec) {
				kongFail(ctx, core.NewKongError(core.KongForeignKeyViolation,
					"an existing 'routes' entity references this 'services' entity",
					map[string]any{"@referenced_by": "routes"}))
				return
			}
		}
	case kongUpstreams:
		targets, err := a.kongAll(wctx, kongTargets)
		if err != nil {
			a.kongStoreError(ctx, "list targets", err)
			return
		}
		for _, t := range targets {
			if kongChildOf(kongTargets, t, rec) {
				cascade = append(cascade, t)
			}
		}
	}
	var rev int64
	for _, t := range cascade {
		_, r, err := a.Store.Delete(wctx, t.kv.Key, store.AnyRevision)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			a.kongStoreError(ctx, "delete "+t.kv.Key, err)
			return
		}
		rev = max(rev, r)
	}
	_, r, err := a.Store.Delete(wctx, rec.kv.Key, rec.kv.ModRevision)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case errors.Is(err, store.ErrConflict):
		kongMessage(ctx, fasthttp.StatusConflict, "the entity changed before it was deleted; try again")
		return
	case err != nil:
		a.kongStoreError(ctx, "delete "+rec.kv.Key, err)
		return
	}
	rev = max(rev, r)
	if rev > 0 {
		if err := a.Manager.WaitRevision(wctx, rev); err != nil {
			a.kongStoreError(ctx, "wait for "+rec.kv.Key, err)
			return
		}
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// kongListBody is Kong's list shape.
type kongListBody struct {
	Data   []json.RawMessage `json:"data"`
	Next   *string           `json:"next"`
	Offset string            `json:"offset,omitempty"`
}

// kongList answers a collection GET: entities in id order (targets newest
// first, as Kong), `size` per page (default 100, at most 1000) from the
// opaque `offset`.
func (a *API) kongList(ctx *fasthttp.RequestCtx, k *kongKind, parent *kongRecord) {
	args := ctx.QueryArgs()
	size := 100
	if v := args.Peek("size"); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > 1000 {
			kongFail(ctx, core.NewKongError(9, "size must be an integer between 1 and 1000", nil))
			return
		}
		size = n
	}
	all, err := a.kongAll(context.Background(), k)
	if err != nil {
		a.kongStoreError(ctx, "list "+k.plural, err)
		return
	}
	var items []*kongRecord
	for _, rec := range all {
		if parent == nil || kongChildOf(k, rec, parent) {
			items = append(items, rec)
		}
	}
	if k == kongTargets {
		sort.SliceStable(items, func(i, j int) bool {
			ci, _ := strconv.ParseFloat(jsonString(items[i].obj["created_at"]), 64)
			cj, _ := strconv.ParseFloat(jsonString(items[j].obj["created_at"]), 64)
			if ci != cj {
				return ci > cj
			}
			// Same millisecond: the later write is the newer.
			return items[i].kv.CreateRevision > items[j].kv.CreateRevision
		})
	} else {
		sort.SliceStable(items, func(i, j int) bool { return items[i].id() < items[j].id() })
	}
	start := 0
	if v := args.Peek("offset"); len(v) > 0 {
		raw, err := base64.RawURLEncoding.DecodeString(string(v))
		n, perr := strconv.Atoi(string(raw))
		if err != nil || perr != nil || n < 0 {
			kongFail(ctx, core.NewKongError(7, "'"+string(v)+"' is not a valid offset: bad base64 encoding", nil))
			return
		}
		start = min(n, len(items))
	}
	end := min(start+size, len(items))
	body := kongListBody{Data: make([]json.RawMessage, 0, end-start)}
	for _, rec := range items[start:end] {
		body.Data = append(body.Data, rec.kv.Value)
	}
	if end < len(items) {
		off := base64.RawURLEncoding.EncodeToString([]byte(strconv.Itoa(end)))
		next := string(ctx.Path()) + "?offset=" + url.QueryEscape(off)
		if len(args.Peek("size")) > 0 {
			next += "&size=" + strconv.Itoa(size)
		}
		body.Next, body.Offset = &next, off
	}
	writeJSON(ctx, fasthttp.StatusOK, body)
}

func jsonString(v any) string {
	switch x := v.(type) {
	case json.Number:
		return string(x)
	case string:
		return x
	}
	return ""
}
