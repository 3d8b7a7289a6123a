package admin

import (
	"bytes"
	"context"
	"errors"
	"strings"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

// checkClientCertID checks an upstream's tls.client_cert_id as APISIX's
// check_upstream_conf: the SSL object must exist and be of type client.
// It answers 400 (or 503 for a store failure) itself and returns false
// when the reference is refused.
func (a *API) checkClientCertID(ctx *fasthttp.RequestCtx, wctx context.Context, u *core.Upstream) bool {
	if u == nil || u.TLS == nil || u.TLS.ClientCertID == "" {
		return true
	}
	id := u.TLS.ClientCertID
	kv, err := a.Store.Get(wctx, core.Key(core.KindSSLs, id))
	if errors.Is(err, store.ErrNotFound) {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("failed to fetch ssl info by ssl id ["+id+"], response code: 404"))
		return false
	}
	if err != nil {
		a.storeError(ctx, "check ssl "+id, err)
		return false
	}
	var v struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(kv.Value, &v)
	if v.Type != "client" {
		writeJSON(ctx, fasthttp.StatusBadRequest, errMsg("failed to fetch ssl info by ssl id ["+id+"], wrong ssl type"))
		return false
	}
	return true
}

// sslUsers names what references SSL object id through tls.client_cert_id.
func sslUsers(cfg *core.Config, id string) []string {
	uses := func(u *core.Upstream) bool { return u != nil && u.TLS != nil && u.TLS.ClientCertID == id }
	var users []string
	for _, uid := range sortedKeys(cfg.Upstreams) {
		if uses(cfg.Upstreams[uid]) {
			users = append(users, "upstream ["+uid+"]")
		}
	}
	for _, sid := range sortedKeys(cfg.Services) {
		if uses(cfg.Services[sid].Upstream) {
			users = append(users, "service ["+sid+"]")
		}
	}
	for _, rid := range sortedKeys(cfg.Routes) {
		if uses(cfg.Routes[rid].Upstream) {
			users = append(users, "route ["+rid+"]")
		}
	}
	return users
}

// redact removes private keys from a stored value before it is sent in
// any response: an SSL object's key and keys (APISIX never returns them),
// and the tls.client_key of an upstream, inline or standalone. The store
// keeps them, so PATCH still merges onto the full object.
func redact(key string, value []byte) json.RawMessage {
	ssl := strings.HasPrefix(key, core.Prefix+string(core.KindSSLs)+"/")
	// Fast path: nothing that looks like a key.
	if !ssl && !bytes.Contains(value, []byte(`"client_key"`)) {
		return value
	}
	v, err := decodeJSON(value)
	obj, _ := v.(map[string]any)
	if err != nil || obj == nil {
		return value
	}
	if ssl {
		delete(obj, "key")
		delete(obj, "keys")
	} else {
		dropClientKey(obj)
		if up, ok := obj["upstream"].(map[string]any); ok {
			dropClientKey(up)
		}
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return value
	}
	return out
}

func dropClientKey(upstream map[string]any) {
	if t, ok := upstream["tls"].(map[string]any); ok {
		delete(t, "client_key")
	}
}
