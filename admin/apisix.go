package admin

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// apisixKinds are the resources of the APISIX dialect.
var apisixKinds = map[string]core.Kind{
	"routes":    core.KindRoutes,
	"upstreams": core.KindUpstreams,
	"services":  core.KindServices,
	"ssls":      core.KindSSLs,
}

// item is one stored object in APISIX's response shape.
type item struct {
	Key           string          `json:"key"`
	Value         json.RawMessage `json:"value"`
	CreatedIndex  int64           `json:"createdIndex,omitempty"`
	ModifiedIndex int64           `json:"modifiedIndex,omitempty"`
}

// apisix dispatches /apisix/admin/{resource}[/{id}[/{sub/path}]].
func (a *API) apisix(ctx *fasthttp.RequestCtx) {
	path, _ := ctx.UserValue("path").(string)
	res, rest, _ := strings.Cut(path, "/")
	id, sub, _ := strings.Cut(rest, "/")
	kind, ok := apisixKinds[res]
	if !ok {
		writeJSON(ctx, fasthttp.StatusNotFound, errMsg("Unsupported resource type: "+res))
		return
	}
	method := string(ctx.Method())
	if a.ReadOnly && method != fasthttp.MethodGet && method != fasthttp.MethodHead {
		writeJSON(ctx, fasthttp.StatusMethodNotAllowed,
			errMsg("the Admin API is read-only: this gateway runs in standalone mode and serves its configuration file"))
		return
	}
	switch method {
	case fasthttp.MethodGet, fasthttp.MethodHead:
		if id == "" {
			a.list(ctx, kind)
		} else {
			a.get(ctx, kind, id)
		}
	case fasthttp.MethodPut:
		a.put(ctx, kind, id)
	case fasthttp.MethodPost:
		if id != "" {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("wrong "+kind.Singular()+" id, do not need it"))
			return
		}
		a.post(ctx, kind)
	case fasthttp.MethodPatch:
		a.patch(ctx, kind, id, sub)
	case fasthttp.MethodDelete:
		a.delete(ctx, kind, id)
	default:
		writeJSON(ctx, fasthttp.StatusMethodNotAllowed, errMsg("method "+method+" is not supported"))
	}
}

func (a *API) get(ctx *fasthttp.RequestCtx, kind core.Kind, id string) {
	kv, err := a.Store.Get(context.Background(), core.Key(kind, id))
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"message": "Key not found"})
		return
	}
	if err != nil {
		a.storeError(ctx, "get "+kv.Key, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, item{Key: kv.Key, Value: redact(kv.Key, kv.Value), CreatedIndex: kv.CreateRevision, ModifiedIndex: kv.ModRevision})
}

// bodyObject decodes the request body as a JSON object, answering 400
// when it is not one.
func bodyObject(ctx *fasthttp.RequestCtx) (map[string]any, bool) {
	body := ctx.PostBody()
	v, err := decodeJSON(body)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, map[string]string{
			"error_msg": "invalid request body: " + err.Error(), "req_body": string(body)})
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid configuration: the request body must be a JSON object"))
		return nil, false
	}
	return obj, true
}

// forbidTimestamps refuses server-managed properties in a PUT or POST body.
func forbidTimestamps(ctx *fasthttp.RequestCtx, obj map[string]any) bool {
	for _, p := range []string{"create_time", "update_time"} {
		if _, ok := obj[p]; ok {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("the property is forbidden:  "+p))
			return false
		}
		if up, ok := obj["upstream"].(map[string]any); ok {
			if _, ok := up[p]; ok {
				writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("the property is forbidden:  upstream."+p))
				return false
			}
		}
	}
	return true
}

func (a *API) put(ctx *fasthttp.RequestCtx, kind core.Kind, id string) {
	obj, ok := bodyObject(ctx)
	if !ok || !forbidTimestamps(ctx, obj) {
		return
	}
	bodyID, hasBodyID := idString(obj["id"])
	switch {
	case id == "" && !hasBodyID:
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("missing "+kind.Singular()+" id"))
		return
	case id == "":
		id = bodyID
	case hasBodyID && bodyID != id:
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("wrong "+kind.Singular()+" id"))
		return
	}
	obj["id"] = id
	wctx, cancel := a.writeCtx()
	defer cancel()
	key := core.Key(kind, id)
	for attempt := 0; ; attempt++ {
		prev, err := a.Store.Get(wctx, key)
		expect := int64(0)
		now := json.Number(strconv.FormatInt(a.Now().Unix(), 10))
		obj["create_time"], obj["update_time"] = now, now
		switch {
		case err == nil:
			expect = prev.ModRevision
			if ct := createTime(prev.Value); ct != nil {
				obj["create_time"] = ct
			}
		case !errors.Is(err, store.ErrNotFound):
			a.storeError(ctx, "put "+key, err)
			return
		}
		value, ok := a.validate(ctx, wctx, kind, obj)
		if !ok {
			return
		}
		kv, created, err := a.Store.Put(wctx, key, value, expect)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue // another admin wrote in between: start over
		}
		if err != nil {
			a.storeError(ctx, "put "+key, err)
			return
		}
		a.answerWrite(ctx, wctx, kv, created)
		return
	}
}

func (a *API) post(ctx *fasthttp.RequestCtx, kind core.Kind) {
	obj, ok := bodyObject(ctx)
	if !ok || !forbidTimestamps(ctx, obj) {
		return
	}
	if _, has := obj["id"]; has {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("wrong "+kind.Singular()+" id, do not need it"))
		return
	}
	wctx, cancel := a.writeCtx()
	defer cancel()
	id, err := a.Store.NextID(wctx)
	if err != nil {
		a.storeError(ctx, "post "+string(kind), err)
		return
	}
	obj["id"] = id
	now := json.Number(strconv.FormatInt(a.Now().Unix(), 10))
	obj["create_time"], obj["update_time"] = now, now
	value, ok := a.validate(ctx, wctx, kind, obj)
	if !ok {
		return
	}
	kv, _, err := a.Store.Put(wctx, core.Key(kind, id), value, 0)
	if err != nil {
		a.storeError(ctx, "post "+string(kind), err)
		return
	}
	a.answerWrite(ctx, wctx, kv, true)
}

func (a *API) patch(ctx *fasthttp.RequestCtx, kind core.Kind, id, sub string) {
	if id == "" {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("missing "+kind.Singular()+" id"))
		return
	}
	body := ctx.PostBody()
	patchVal, err := decodeJSON(body)
	if err != nil {
		writeJSON(ctx, fasthttp.StatusBadRequest, map[string]string{
			"error_msg": "invalid request body: " + err.Error(), "req_body": string(body)})
		return
	}
	sub = strings.Trim(sub, "/")
	patchObj, isObj := patchVal.(map[string]any)
	if sub == "" && !isObj {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid configuration"))
		return
	}
	wctx, cancel := a.writeCtx()
	defer cancel()
	key := core.Key(kind, id)
	for attempt := 0; ; attempt++ {
		prev, err := a.Store.Get(wctx, key)
		if errors.Is(err, store.ErrNotFound) {
			writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"message": "Key not found"})
			return
		}
		if err != nil {
			a.storeError(ctx, "patch "+key, err)
			return
		}
		cur, err := decodeJSON(prev.Value)
		obj, _ := cur.(map[string]any)
		if err != nil || obj == nil {
			obj = map[string]any{}
		}
		now := json.Number(strconv.FormatInt(a.Now().Unix(), 10))
		if sub != "" {
			if msg := patchPath(obj, sub, copyJSON(patchVal)); msg != "" {
				writeJSON(ctx, fasthttp.StatusBadRequest, errMsg(msg))
				return
			}
			obj["update_time"] = now
		} else {
			obj = mergePatch(obj, copyJSON(patchObj).(map[string]any))
			if _, given := patchObj["update_time"]; !given {
				obj["update_time"] = now
			}
		}
		obj["id"] = id
		if _, ok := obj["create_time"]; !ok {
			obj["create_time"] = now
		}
		value, ok := a.validate(ctx, wctx, kind, obj)
		if !ok {
			return
		}
		kv, _, err := a.Store.Put(wctx, key, value, prev.ModRevision)
		if errors.Is(err, store.ErrConflict) && attempt < 5 {
			continue // merge again onto what the other writer stored
		}
		if err != nil {
			a.storeError(ctx, "patch "+key, err)
			return
		}
		a.answerWrite(ctx, wctx, kv, false)
		return
	}
}

func (a *API) delete(ctx *fasthttp.RequestCtx, kind core.Kind, id string) {
	if id == "" {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("missing "+kind.Singular()+" id"))
		return
	}
	wctx, cancel := a.writeCtx()
	defer cancel()
	key := core.Key(kind, id)
	prev, err := a.Store.Get(wctx, key)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"message": "Key not found"})
		return
	}
	if err != nil {
		a.storeError(ctx, "delete "+key, err)
		return
	}
	if string(ctx.QueryArgs().Peek("force")) != "true" {
		if msg := a.stillUsed(wctx, kind, id); msg != "" {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg(msg))
			return
		}
	}
	_, rev, err := a.Store.Delete(wctx, key, prev.ModRevision)
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(ctx, fasthttp.StatusNotFound, map[string]string{"message": "Key not found"})
		return
	}
	if err != nil {
		a.storeError(ctx, "delete "+key, err)
		return
	}
	if err := a.Manager.WaitRevision(wctx, rev); err != nil {
		a.storeError(ctx, "delete "+key, err)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, map[string]string{"deleted": "1", "key": key})
}

// answerWrite waits until the write is served, then answers with the
// stored object.
func (a *API) answerWrite(ctx *fasthttp.RequestCtx, wctx context.Context, kv store.KV, created bool) {
	if err := a.Manager.WaitRevision(wctx, kv.ModRevision); err != nil {
		a.storeError(ctx, "wait for "+kv.Key, err)
		return
	}
	status := fasthttp.StatusOK
	if created {
		status = fasthttp.StatusCreated
	}
	writeJSON(ctx, status, item{Key: kv.Key, Value: redact(kv.Key, kv.Value)})
}

// idString returns an id given as a string or an integer.
func idString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, x != ""
	case json.Number:
		return x.String(), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	}
	return "", false
}

// createTime extracts create_time from a stored value.
func createTime(value []byte) any {
	var v struct {
		CreateTime json.Number `json:"create_time"`
	}
	if json.Unmarshal(value, &v) != nil || v.CreateTime == "" {
		return nil
	}
	return v.CreateTime
}
