package admin

import (
	"bytes"
	"context"
	"mime/multipart"
	"net"
	"strings"
	"testing"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-json"
	"github.com/valyala/fasthttp"
)

const formCT = "application/x-www-form-urlencoded"

type kongClient struct {
	t       *testing.T
	api     *API
	handler fasthttp.RequestHandler
}

func newKongClient(t *testing.T) *kongClient {
	t.Helper()
	st := store.NewMemory()
	rt := core.NewRuntime()
	mgr := &core.Manager{Store: st, Runtime: rt, Proxy: core.NewProxy(), Logf: t.Logf}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); st.Close(); rt.Close() })
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	a := &API{Store: st, Manager: mgr, Logf: t.Logf}
	return &kongClient{t: t, api: a, handler: a.Handler()}
}

// do sends one admin request and returns the status and the decoded body.
func (c *kongClient) do(method, path, ct, body string) (int, map[string]any) {
	c.t.Helper()
	var req fasthttp.Request
	req.Header.SetMethod(method)
	req.SetRequestURI(path)
	if ct != "" {
		req.Header.SetContentType(ct)
	}
	req.SetBodyString(body)
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}, nil)
	c.handler(&ctx)
	var v map[string]any
	if b := ctx.Response.Body(); len(b) > 0 {
		if err := json.Unmarshal(b, &v); err != nil {
			c.t.Fatalf("%s %s: non-JSON answer %q", method, path, b)
		}
	}
	return ctx.Response.StatusCode(), v
}

func (c *kongClient) must(method, path, ct, body string, want int) map[string]any {
	c.t.Helper()
	status, v := c.do(method, path, ct, body)
	if status != want {
		c.t.Fatalf("%s %s %s: status %d, want %d: %v", method, path, body, status, want, v)
	}
	return v
}

func TestKongAdminFlow(t *testing.T) {
	c := newKongClient(t)
	up := c.must("POST", "/upstreams", formCT, "name=example_upstream", 201)
	if !core.IsUUID(up["id"].(string)) || up["algorithm"] != "round-robin" || up["slots"] != 10000.0 || up["hash_on"] != "none" {
		t.Fatalf("upstream defaults: %v", up)
	}
	tg := c.must("POST", "/upstreams/example_upstream/targets", formCT, "target=mockbin.org:80", 201)
	if tg["weight"] != 100.0 || tg["target"] != "mockbin.org:80" || tg["upstream"].(map[string]any)["id"] != up["id"] {
		t.Fatalf("target: %v", tg)
	}
	c.must("POST", "/upstreams/example_upstream/targets", formCT, "target=10.0.0.2", 201)
	svc := c.must("POST", "/services", formCT, "name=example_service&url=http://mockbin.org", 201)
	if svc["host"] != "mockbin.org" || svc["port"] != 80.0 || svc["retries"] != 5.0 || svc["connect_timeout"] != 60000.0 {
		t.Fatalf("service: %v", svc)
	}
	rt := c.must("POST", "/services/example_service/routes", formCT, "paths[]=/mock&name=example_route", 201)
	if rt["strip_path"] != true || rt["preserve_host"] != false || rt["service"].(map[string]any)["id"] != svc["id"] {
		t.Fatalf("route: %v", rt)
	}
	svc = c.must("PATCH", "/services/example_service", formCT, "host=example_upstream", 200)
	if svc["host"] != "example_upstream" || svc["name"] != "example_service" {
		t.Fatalf("patched service: %v", svc)
	}

	// The translation is served from the same snapshot.
	cfg := c.api.Manager.Config()
	r := cfg.KongDerived.Routes["kong:"+rt["id"].(string)]
	u := cfg.KongDerived.Upstreams["kong:"+svc["id"].(string)]
	if r == nil || u == nil || len(u.Nodes) != 2 || u.Nodes[0].Port != 8000 {
		t.Fatalf("translation: route %+v upstream %+v", r, u)
	}

	// Reads by id and name, lists, nested lists.
	c.must("GET", "/services/"+svc["id"].(string), "", "", 200)
	list := c.must("GET", "/routes", "", "", 200)
	if len(list["data"].([]any)) != 1 || list["next"] != nil {
		t.Fatalf("routes list: %v", list)
	}
	list = c.must("GET", "/upstreams/example_upstream/targets", "", "", 200)
	if d := list["data"].([]any); len(d) != 2 || d[0].(map[string]any)["target"] != "10.0.0.2:8000" {
		t.Fatalf("targets list (newest first): %v", list)
	}
	c.must("GET", "/services/example_service/routes/example_route", "", "", 200)
	health := c.must("GET", "/upstreams/example_upstream/health", "", "", 200)
	if d := health["data"].([]any); len(d) != 2 || d[0].(map[string]any)["health"] != "HEALTHCHECKS_OFF" || health["node_id"] == nil {
		t.Fatalf("health: %v", health)
	}
	bh := c.must("GET", "/upstreams/example_upstream/health?balancer_health=1", "", "", 200)
	if bh["data"].(map[string]any)["balancer_health"] != "HEALTHY" {
		t.Fatalf("balancer health: %v", bh)
	}

	// Errors: not found, unique, schema, foreign keys, methods.
	if _, v := c.do("GET", "/services/nope", "", ""); v["message"] != "Not found" {
		t.Fatalf("not found: %v", v)
	}
	_, v := c.do("POST", "/upstreams", formCT, "name=example_upstream")
	if v["code"] != 5.0 || v["name"] != "unique constraint violation" ||
		v["message"] != `UNIQUE violation detected on '{name="example_upstream"}'` || v["fields"].(map[string]any)["name"] != "example_upstream" {
		t.Fatalf("unique: %v", v)
	}
	if status, v := c.do("POST", "/upstreams/example_upstream/targets", formCT, "target=mockbin.org:80"); status != 409 || v["code"] != 5.0 {
		t.Fatalf("duplicate target: %d %v", status, v)
	}
	status, v := c.do("POST", "/upstreams", formCT, "slots=3")
	if status != 400 || v["code"] != 2.0 || v["message"] != "2 schema violations (name: required field missing; slots: value should be between 10 and 65536)" {
		t.Fatalf("schema: %d %v", status, v)
	}
	if f := v["fields"].(map[string]any); f["name"] != "required field missing" || f["slots"] != "value should be between 10 and 65536" {
		t.Fatalf("fields: %v", v["fields"])
	}
	status, v = c.do("POST", "/routes", "application/json", `{"paths":["/x"],"service":{"id":"00000000-0000-4000-8000-000000000000"}}`)
	if status != 400 || v["code"] != 4.0 {
		t.Fatalf("foreign key: %d %v", status, v)
	}
	status, v = c.do("DELETE", "/services/example_service", "", "")
	if status != 400 || v["code"] != 4.0 || v["fields"].(map[string]any)["@referenced_by"] != "routes" {
		t.Fatalf("delete referenced service: %d %v", status, v)
	}
	if status, v = c.do("POST", "/services", "application/json", `{"name":`); status != 400 || v["message"] != "Cannot parse JSON body" {
		t.Fatalf("bad JSON: %d %v", status, v)
	}
	if status, v = c.do("POST", "/routes", formCT, "paths[]=~/re"); status != 400 || !strings.Contains(v["message"].(string), "regex paths are not supported") {
		t.Fatalf("regex path: %d %v", status, v)
	}
	if status, _ := c.do("TRACE", "/services", "", ""); status != 405 {
		t.Fatalf("method: %d", status)
	}

	// Deletes: the route, then the service; the upstream takes its targets.
	c.must("DELETE", "/routes/example_route", "", "", 204)
	c.must("DELETE", "/services/example_service", "", "", 204)
	c.must("DELETE", "/services/example_service", "", "", 204) // idempotent
	c.must("DELETE", "/upstreams/example_upstream", "", "", 204)
	if kvs, _, _ := c.api.Store.List(context.Background(), "/apisix/kong_targets/"); len(kvs) != 0 {
		t.Fatalf("targets left after their upstream: %d", len(kvs))
	}
	if cfg := c.api.Manager.Config(); len(cfg.KongDerived.Routes) != 0 {
		t.Fatalf("routes still served: %v", cfg.KongDerived.Routes)
	}
}

func TestKongAdminBodies(t *testing.T) {
	c := newKongClient(t)
	// JSON with nested records.
	up := c.must("POST", "/upstreams", "application/json",
		`{"name":"json.up","healthchecks":{"active":{"http_path":"/status","healthy":{"interval":5}}}}`, 201)
	a := up["healthchecks"].(map[string]any)["active"].(map[string]any)
	if a["http_path"] != "/status" || a["healthy"].(map[string]any)["interval"] != 5.0 || a["timeout"] != 1.0 {
		t.Fatalf("nested defaults: %v", a)
	}
	// PATCH merges records.
	up = c.must("PATCH", "/upstreams/json.up", formCT, "healthchecks.active.unhealthy.interval=3", 200)
	a = up["healthchecks"].(map[string]any)["active"].(map[string]any)
	if a["http_path"] != "/status" || a["unhealthy"].(map[string]any)["interval"] != 3.0 {
		t.Fatalf("merged: %v", a)
	}
	// Multipart.
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("name", "multi")
	w.WriteField("host", "10.0.0.9")
	w.WriteField("port", "8080")
	w.Close()
	svc := c.must("POST", "/services", w.FormDataContentType(), buf.String(), 201)
	if svc["port"] != 8080.0 || svc["host"] != "10.0.0.9" {
		t.Fatalf("multipart: %v", svc)
	}
	// PUT upserts by name and keeps the id on the second call.
	s1 := c.must("PUT", "/services/put-svc", "application/json", `{"host":"a.example"}`, 200)
	s2 := c.must("PUT", "/services/put-svc", "application/json", `{"host":"b.example"}`, 200)
	if s1["id"] != s2["id"] || s2["host"] != "b.example" || s2["name"] != "put-svc" {
		t.Fatalf("put: %v then %v", s1, s2)
	}
	// Route given its service by name, in JSON.
	r := c.must("POST", "/routes", "application/json", `{"hosts":["example.com"],"service":{"name":"multi"}}`, 201)
	if r["service"].(map[string]any)["id"] != svc["id"] {
		t.Fatalf("service by name: %v", r)
	}
	// Paging.
	for _, n := range []string{"p1", "p2", "p3"} {
		c.must("POST", "/upstreams", formCT, "name="+n, 201)
	}
	page := c.must("GET", "/upstreams?size=2", "", "", 200)
	next, _ := page["next"].(string)
	if len(page["data"].([]any)) != 2 || !strings.HasPrefix(next, "/upstreams?offset=") {
		t.Fatalf("page 1: %v", page)
	}
	page = c.must("GET", next, "", "", 200)
	if len(page["data"].([]any)) != 2 || page["next"] != nil {
		t.Fatalf("page 2: %v", page)
	}
	// Read-only (standalone) refuses writes.
	c.api.ReadOnly = true
	if status, v := c.do("POST", "/upstreams", formCT, "name=ro"); status != 405 || !strings.Contains(v["message"].(string), "read-only") {
		t.Fatalf("read-only: %d %v", status, v)
	}
	c.must("GET", "/upstreams", "", "", 200)
}

func TestKongAdminWeightZeroAndHashing(t *testing.T) {
	c := newKongClient(t)
	c.must("POST", "/upstreams", formCT, "name=u1", 201)
	c.must("POST", "/upstreams/u1/targets", formCT, "target=10.0.0.1:80&weight=0", 201)
	all := c.must("GET", "/upstreams/u1/targets/all", "", "", 200)
	if d := all["data"].([]any); len(d) != 1 || d[0].(map[string]any)["weight"] != 0.0 {
		t.Fatalf("all: %v", all)
	}
	status, v := c.do("POST", "/upstreams", formCT, "name=u2&hash_on=header&hash_on_header=X-User&hash_fallback=path")
	if core.PickerRegistered("chash") {
		if status != 400 || !strings.Contains(v["message"].(string), "hash_fallback") {
			t.Fatalf("unsupported fallback: %d %v", status, v)
		}
	} else if status != 400 || !strings.Contains(v["message"].(string), "algorithm 'consistent-hashing' is not available") {
		t.Fatalf("chash without its balancer: %d %v", status, v)
	}
}
