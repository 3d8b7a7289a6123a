package admin

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

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
