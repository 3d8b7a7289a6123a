package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestTrafficSplitAdmin: the APISIX dialect accepts the traffic-split
// plugin in the form the ingress controller emits (one rule, no match),
// splits by weight, and protects the upstreams it names from deletion.
func TestTrafficSplitAdmin(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/a", fmt.Sprintf(`{"nodes":{"%s":1}}`, a.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/upstreams/b", fmt.Sprintf(`{"nodes":{"%s":1}}`, b.Addr), 201)
	r := g.do("PUT", "/apisix/admin/routes/r", `{"uri":"/s","upstream_id":"a","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream_id":"missing","weight":1}]}]}}}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), "failed to fetch upstream info by upstream id [missing]") {
		t.Fatalf("missing split upstream: %d %s", r.Status, r.Body)
	}
	g.mustDo("PUT", "/apisix/admin/routes/r",
		`{"uri":"/s","upstream_id":"a","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"weight":3},{"upstream_id":"b","weight":1}]}]}}}`, 201)
	counts := countBodies(t, g, "/s", 40)
	if counts[port(a)] != 30 || counts[port(b)] != 10 {
		t.Fatalf("weights 3:1 over 40 requests gave %v", counts)
	}
	r = g.do("DELETE", "/apisix/admin/upstreams/b", "")
	if r.Status != 400 || !strings.Contains(string(r.Body), "plugin in route [r] is still using it now") {
		t.Fatalf("delete a split upstream: %d %s", r.Status, r.Body)
	}
	r = g.do("PUT", "/apisix/admin/routes/r2", `{"uri":"/x","upstream_id":"a","plugins":{"traffic-split":{"rules":[{"match":[{"vars":[["arg_a","==","1"]]}],"weighted_upstreams":[{"weight":1}]}]}}}`)
	if r.Status != 400 || !strings.Contains(string(r.Body), "match conditions are not supported") {
		t.Fatalf("conditional split: %d %s", r.Status, r.Body)
	}
}
