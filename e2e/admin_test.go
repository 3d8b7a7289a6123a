package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestAdminRoundTrip(t *testing.T) {
	g := startGateway(t, "")
	a := startOrigin(t, nil)
	nodes := fmt.Sprintf(`{"%s":1}`, a.Addr)

	// An empty list is exactly this.
	if r := g.mustDo("GET", "/apisix/admin/upstreams", "", 200); string(r.Body) != "{\"list\":[],\"total\":0}\n" {
		t.Fatalf("empty list: %s", r.Body)
	}
	r := g.mustDo("PUT", "/apisix/admin/upstreams/unwanted", `{"nodes":`+nodes+`,"type":"roundrobin"}`, 201)
	if h := r.Header.Get("X-API-VERSION"); h != "v3" {
		t.Errorf("X-API-VERSION %q", h)
	}
	v := r.JSON(t)
	val := v["value"].(map[string]any)
	if v["key"] != "/apisix/upstreams/unwanted" || val["id"] != "unwanted" || val["type"] != "roundrobin" {
		t.Fatalf("PUT answer %s", r.Body)
	}
	if _, ok := v["createdIndex"]; ok {
		t.Errorf("PUT answer must not carry createdIndex: %s", r.Body)
	}
	ct, ut := val["create_time"].(float64), val["update_time"].(float64)
	if ct == 0 || ut == 0 {
		t.Fatalf("timestamps missing: %s", r.Body)
	}
	// Stored values hold only what the client sent (APISIX >= 3.14).
	for _, k := range []string{"pass_host", "scheme", "hash_on"} {
		if _, ok := val[k]; ok {
			t.Errorf("default %s was written back: %s", k, r.Body)
		}
	}
	g.mustDo("PUT", "/apisix/admin/upstreams/unwanted", `{"nodes":`+nodes+`,"type":"roundrobin","desc":"again"}`, 200)

	r = g.mustDo("GET", "/apisix/admin/upstreams/unwanted", "", 200)
	v = r.JSON(t)
	if v["createdIndex"] == nil || v["modifiedIndex"] == nil || v["modifiedIndex"].(float64) <= v["createdIndex"].(float64) {
		t.Fatalf("GET indexes: %s", r.Body)
	}
	if v["value"].(map[string]any)["create_time"].(float64) != ct {
		t.Errorf("PUT over an existing key must keep create_time: %s", r.Body)
	}

	r = g.mustDo("GET", "/apisix/admin/upstreams", "", 200)
	v = r.JSON(t)
	if v["total"].(float64) != 1 || len(v["list"].([]any)) != 1 {
		t.Fatalf("list: %s", r.Body)
	}

	// POST makes a 20-digit id.
	r = g.mustDo("POST", "/apisix/admin/upstreams", `{"nodes":`+nodes+`}`, 201)
	id := r.JSON(t)["value"].(map[string]any)["id"].(string)
	if len(id) != 20 || strings.Trim(id, "0123456789") != "" {
		t.Fatalf("POST id %q", id)
	}

	// PATCH merges objects; a sub-path PATCH replaces the subtree.
	r = g.mustDo("PATCH", "/apisix/admin/upstreams/unwanted", `{"nodes":{"127.0.0.1:8081":3},"desc":null}`, 200)
	val = r.JSON(t)["value"].(map[string]any)
	if n := val["nodes"].(map[string]any); len(n) != 2 || n["127.0.0.1:8081"].(float64) != 3 {
		t.Fatalf("PATCH merge: %s", r.Body)
	}
	if _, ok := val["desc"]; ok {
		t.Fatalf("PATCH null must delete: %s", r.Body)
	}
	r = g.mustDo("PATCH", "/apisix/admin/upstreams/unwanted/nodes", `{"127.0.0.6:8081":3}`, 200)
	if n := r.JSON(t)["value"].(map[string]any)["nodes"].(map[string]any); len(n) != 1 || n["127.0.0.6:8081"] == nil {
		t.Fatalf("sub-path PATCH: %s", r.Body)
	}
	r = g.mustDo("PATCH", "/apisix/admin/upstreams/unwanted/desc", `"new desc"`, 200)
	if r.JSON(t)["value"].(map[string]any)["desc"] != "new desc" {
		t.Fatalf("scalar sub-path PATCH: %s", r.Body)
	}

	// A referenced upstream cannot be deleted, unless forced.
	g.mustDo("PUT", "/apisix/admin/routes/1", `{"uri":"/x","upstream_id":"unwanted"}`, 201)
	r = g.mustDo("DELETE", "/apisix/admin/upstreams/unwanted", "", 400)
	if msg := r.JSON(t)["error_msg"]; msg != "can not delete this upstream, route [1] is still using it now" {
		t.Fatalf("delete in use: %s", r.Body)
	}
	g.mustDo("DELETE", "/apisix/admin/upstreams/unwanted?force=anyvalue", "", 400)
	g.mustDo("DELETE", "/apisix/admin/routes/1", "", 200)
	r = g.mustDo("DELETE", "/apisix/admin/upstreams/unwanted", "", 200)
	if string(r.Body) != "{\"deleted\":\"1\",\"key\":\"/apisix/upstreams/unwanted\"}\n" {
		t.Fatalf("delete answer %s", r.Body)
	}
	r = g.mustDo("GET", "/apisix/admin/upstreams/unwanted", "", 404)
	if string(r.Body) != "{\"message\":\"Key not found\"}\n" {
		t.Fatalf("404 body %s", r.Body)
	}
}

// TestAdminErrorsLoseNothing sends malformed writes and checks each is a
// clear 4xx and that what was stored before is unchanged.
func TestAdminErrorsLoseNothing(t *testing.T) {
	g := startGateway(t, "")
	a := startOrigin(t, nil)
	good := fmt.Sprintf(`{"uri":"/keep","upstream":{"nodes":{"%s":1}}}`, a.Addr)
	g.mustDo("PUT", "/apisix/admin/routes/keep", good, 201)
	g.mustDo("PUT", "/apisix/admin/upstreams/u1", fmt.Sprintf(`{"nodes":{"%s":1}}`, a.Addr), 201)
	before := g.mustDo("GET", "/apisix/admin/routes/keep", "", 200).Body

	f := func(method, path, body string, wantStatus int, wantMsg string) {
		t.Helper()
		r := g.do(method, path, body)
		if r.Status != wantStatus {
			t.Errorf("%s %s %s: status %d (%s), want %d", method, path, body, r.Status, r.Body, wantStatus)
			return
		}
		var v map[string]any
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Errorf("%s %s: non-JSON error body %q", method, path, r.Body)
			return
		}
		msg, _ := v["error_msg"].(string)
		if m, ok := v["message"].(string); ok && msg == "" {
			msg = m
		}
		if !strings.Contains(msg, wantMsg) {
			t.Errorf("%s %s %s: message %q does not contain %q", method, path, body, msg, wantMsg)
		}
	}
	f("PUT", "/apisix/admin/routes/keep", `{"uri":`, 400, "invalid request body")
	f("PUT", "/apisix/admin/routes/keep", `[1,2]`, 400, "invalid configuration")
	f("PUT", "/apisix/admin/routes/keep", `{"uri":"/keep","upstream":{"nodes":{"a:1":1}},"bogus":1}`, 400, "bogus")
	f("PUT", "/apisix/admin/routes/keep", `{"uris":"/keep","upstream_id":"u1"}`, 400, "uris")
	f("PUT", "/apisix/admin/routes/keep", `{"uri":"/keep","upstream_id":"nope"}`, 400,
		"failed to fetch upstream info by upstream id [nope], response code: 404")
	f("PUT", "/apisix/admin/routes/keep", `{"uri":"/keep","service_id":"nope"}`, 400,
		"failed to fetch service info by service id [nope], response code: 404")
	f("PUT", "/apisix/admin/routes/keep", `{"uri":"/keep","upstream":{"nodes":{"a:1":1}},"create_time":1}`, 400,
		"the property is forbidden:  create_time")
	f("PUT", "/apisix/admin/routes/other", `{"id":"keep","uri":"/keep","upstream_id":"u1"}`, 400, "wrong route id")
	f("PUT", "/apisix/admin/routes", `{"uri":"/keep","upstream_id":"u1"}`, 400, "missing route id")
	f("POST", "/apisix/admin/routes/5", `{"uri":"/keep","upstream_id":"u1"}`, 400, "wrong route id, do not need it")
	f("PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"a:1":1},"retries":-1}`, 400,
		`invalid configuration: property "retries" validation failed: expected -1 to be at least 0`)
	f("PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"a:1":1},"retry_timeout":-1}`, 400,
		`property "retry_timeout" validation failed`)
	f("PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"a:1":1},"type":"chash"}`, 400, "missing key")
	f("PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"a:1":1},"scheme":"grpc"}`, 400, "grpc")
	f("PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"a:1":1},"pass_host":"rewrite"}`, 400, "upstream_host")
	f("PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"::1:80":1}}`, 400, "IPv6 address must be enclosed with '[' and ']'")
	f("PUT", "/apisix/admin/upstreams/u1", `{"nodes":{"a:1":1},"checks":{"passive":{}}}`, 400, "active")
	f("PATCH", "/apisix/admin/routes/keep", `{"upstream":{"nodes":{"a:1":-1}}}`, 400, "invalid configuration")
	f("PATCH", "/apisix/admin/routes/keep/uri/x", `1`, 400, "invalid sub-path")
	f("PATCH", "/apisix/admin/routes/missing", `{"desc":"x"}`, 404, "Key not found")
	f("DELETE", "/apisix/admin/routes/missing", ``, 404, "Key not found")
	f("GET", "/apisix/admin/consumers/x", ``, 404, "Unsupported resource type: consumers")
	f("GET", "/apisix/admin/routes?page_size=5", ``, 400, "page_size")
	f("PUT", "/apisix/admin/routes/keep", `{"uri":"/k","upstream_id":"u1","desc":"`+strings.Repeat("x", 2<<20)+`"}`, 413, "too large")

	after := g.mustDo("GET", "/apisix/admin/routes/keep", "", 200).Body
	if string(after) != string(before) {
		t.Fatalf("a refused write changed the stored route:\nbefore %s\nafter  %s", before, after)
	}
	if code, body, _ := g.get("/keep"); code != 200 || body != port(a) {
		t.Fatalf("the running configuration changed: %d %q", code, body)
	}
}

func TestAdminAuth(t *testing.T) {
	g := startGateway(t, "", "-admin-key", "s3cret")
	r := g.doKey("GET", "/apisix/admin/routes", "", "")
	if r.Status != 401 || !strings.Contains(string(r.Body), "missing apikey") {
		t.Fatalf("no key: %d %s", r.Status, r.Body)
	}
	r = g.doKey("GET", "/apisix/admin/routes", "", "wrong")
	if r.Status != 401 || !strings.Contains(string(r.Body), "wrong apikey") {
		t.Fatalf("wrong key: %d %s", r.Status, r.Body)
	}
	g.mustDo("GET", "/apisix/admin/routes", "", 200)
	if r := g.doKey("GET", "/apisix/admin/routes?api_key=s3cret", "", ""); r.Status != 200 {
		t.Fatalf("api_key argument: %d", r.Status)
	}
	// /metrics needs no key and carries no secret.
	r = g.doKey("GET", "/metrics", "", "")
	if r.Status != 200 || strings.Contains(string(r.Body), "s3cret") {
		t.Fatalf("metrics: %d", r.Status)
	}
	if !strings.Contains(string(r.Body), "gateway_admin_auth_failures_total 2") {
		t.Errorf("auth failures not counted:\n%s", r.Body)
	}
}

func TestRefusesNonLoopbackAdminWithoutKey(t *testing.T) {
	out, err := runBinary(t, "-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-admin-listen", fmt.Sprintf("0.0.0.0:%d", freePort(t)), "-data-dir", t.TempDir())
	if err == nil || !strings.Contains(out, "no -admin-key") {
		t.Fatalf("gateway started with a public admin listener and no key: %v\n%s", err, out)
	}
}
