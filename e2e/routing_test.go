package e2e

import (
	"fmt"
	"net/http"
	"testing"
)

// TestRoutingRules checks each matching rule against the real binary.
// Every route answers with its own name.
func TestRoutingRules(t *testing.T) {
	named := map[string]*origin{}
	g := startGateway(t, "")
	route := func(id, spec string) {
		t.Helper()
		o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, id) })
		named[id] = o
		body := fmt.Sprintf(`{%s,"upstream":{"nodes":{"%s":1}}}`, spec, o.Addr)
		g.mustDo("PUT", "/apisix/admin/routes/"+id, body, 201)
	}
	route("exact", `"uri":"/a/b","priority":-5`)
	route("prefix-long", `"uri":"/a/b/*","priority":10`)
	route("prefix-short", `"uri":"/a/*","priority":100`)
	route("host", `"uri":"/h","host":"api.example.com"`)
	route("wild", `"uri":"/h","hosts":["*.example.com"]`)
	route("hostless", `"uri":"/h"`)
	route("hostbound-prefix", `"uri":"/deep/*","host":"api.example.com"`)
	route("hostless-exact", `"uri":"/deep/x"`)
	route("prio-low", `"uri":"/p","priority":1`)
	route("prio-high", `"uri":"/p","priority":2`)
	route("post-only", `"uri":"/m","methods":["POST"]`)
	route("vars", `"uri":"/v","vars":[["arg_k","==","v"]]`)
	route("off", `"uri":"/off","status":0`)
	route("local", `"uri":"/ip","remote_addrs":["127.0.0.0/8"]`)
	route("elsewhere", `"uri":"/ip2","remote_addr":"10.0.0.1"`)

	f := func(method, path, host, want string) {
		t.Helper()
		hdr := []string{}
		if host != "" {
			hdr = append(hdr, "Host", host)
		}
		code, body, _ := g.request(method, path, "", hdr...)
		if want == "404" {
			if code != 404 {
				t.Errorf("%s %s (Host %s): %d %q, want 404", method, path, host, code, body)
			}
			return
		}
		if code != 200 || body != want {
			t.Errorf("%s %s (Host %s): %d %q, want %q", method, path, host, code, body, want)
		}
	}
	f("GET", "/a/b", "", "exact")         // exact beats prefix, whatever the priority
	f("GET", "/a/b/c", "", "prefix-long") // the longest prefix wins
	f("GET", "/a/bc", "", "prefix-short")
	f("GET", "/a/", "", "prefix-short")
	f("GET", "/h", "api.example.com", "host")
	f("GET", "/h", "API.Example.com:9080", "host") // case and port do not matter
	f("GET", "/h", "x.example.com", "wild")
	f("GET", "/h", "a.b.example.com", "wild")
	f("GET", "/h", "example.com", "hostless") // *.example.com does not match example.com
	f("GET", "/h", "other.org", "hostless")
	f("GET", "/deep/x", "api.example.com", "hostbound-prefix") // host-bound routes first
	f("GET", "/deep/x", "other.org", "hostless-exact")
	f("GET", "/p", "", "prio-high")
	f("POST", "/m", "", "post-only")
	f("GET", "/m", "", "404")
	f("GET", "/v?k=v", "", "vars")
	f("GET", "/v?k=x", "", "404")
	f("GET", "/off", "", "404")
	f("GET", "/ip", "", "local")
	f("GET", "/ip2", "", "404")
}
