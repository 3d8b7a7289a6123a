package admin

import (
	"context"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// listBody is APISIX's list shape. An empty list is exactly
// {"list":[],"total":0}.
type listBody struct {
	List  []item `json:"list"`
	Total int    `json:"total"`
}

// listFields are the value fields the list filters look at.
type listFields struct {
	Name       string            `json:"name"`
	Labels     map[string]string `json:"labels"`
	URI        string            `json:"uri"`
	URIs       []string          `json:"uris"`
	ServiceID  any               `json:"service_id"`
	UpstreamID any               `json:"upstream_id"`
}

// list answers GET /apisix/admin/{resource} with APISIX's filters
// (name, label, uri, filter) and paging (page, page_size 10..500).
func (a *API) list(ctx *fasthttp.RequestCtx, kind core.Kind) {
	args := ctx.QueryArgs()
	var nameRe, uriRe *regexp.Regexp
	var err error
	if v := args.Peek("name"); len(v) > 0 {
		if nameRe, err = regexp.Compile(string(v)); err != nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid name filter: "+err.Error()))
			return
		}
	}
	if v := args.Peek("uri"); len(v) > 0 && kind == core.KindRoutes {
		if uriRe, err = regexp.Compile(string(v)); err != nil {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid uri filter: "+err.Error()))
			return
		}
	}
	label := string(args.Peek("label"))
	var filterKey, filterVal string
	if f := string(args.Peek("filter")); f != "" {
		var ok bool
		filterKey, filterVal, ok = strings.Cut(f, "=")
		if !ok || (filterKey != "service_id" && filterKey != "upstream_id") {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid filter: expected service_id=<id> or upstream_id=<id>"))
			return
		}
	}
	page, pageSize := 0, 0
	if v := args.Peek("page"); len(v) > 0 {
		if page, err = strconv.Atoi(string(v)); err != nil || page < 1 {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid page: must be an integer >= 1"))
			return
		}
	}
	if v := args.Peek("page_size"); len(v) > 0 {
		if pageSize, err = strconv.Atoi(string(v)); err != nil || pageSize < 10 || pageSize > 500 {
			writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("invalid page_size: must be an integer from 10 to 500"))
			return
		}
	}

	kvs, _, err := a.Store.List(context.Background(), core.Key(kind, ""))
	if err != nil {
		a.storeError(ctx, "list "+string(kind), err)
		return
	}
	out := listBody{List: []item{}}
	for _, kv := range kvs {
		if !matches(kv, nameRe, uriRe, label, filterKey, filterVal) {
			continue
		}
		out.List = append(out.List, item{Key: kv.Key, Value: redact(kv.Key, kv.Value), CreatedIndex: kv.CreateRevision, ModifiedIndex: kv.ModRevision})
	}
	out.Total = len(out.List)
	if page > 0 || pageSize > 0 {
		if page == 0 {
			page = 1
		}
		if pageSize == 0 {
			pageSize = 10
		}
		sort.SliceStable(out.List, func(i, j int) bool { return out.List[i].CreatedIndex < out.List[j].CreatedIndex })
		from := min((page-1)*pageSize, len(out.List))
		to := min(from+pageSize, len(out.List))
		out.List = out.List[from:to]
	}
	writeJSON(ctx, fasthttp.StatusOK, out)
}

func matches(kv store.KV, nameRe, uriRe *regexp.Regexp, label, filterKey, filterVal string) bool {
	if nameRe == nil && uriRe == nil && label == "" && filterKey == "" {
		return true
	}
	var f listFields
	if json.Unmarshal(kv.Value, &f) != nil {
		return false
	}
	if nameRe != nil && !nameRe.MatchString(f.Name) {
		return false
	}
	if uriRe != nil {
		hit := f.URI != "" && uriRe.MatchString(f.URI)
		for _, u := range f.URIs {
			hit = hit || uriRe.MatchString(u)
		}
		if !hit {
			return false
		}
	}
	if label != "" {
		k, v, hasV := strings.Cut(label, ":")
		got, ok := f.Labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	if filterKey != "" {
		ref := f.ServiceID
		if filterKey == "upstream_id" {
			ref = f.UpstreamID
		}
		id, _ := idString(ref)
		if id != filterVal {
			return false
		}
	}
	return true
}
