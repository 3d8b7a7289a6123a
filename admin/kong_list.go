package admin

import (
	"context"
	"encoding/base64"
	"net/url"
	"sort"
	"strconv"

	"github.com/edgeway/gateway/core"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

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
