package core

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// routeValidCases lists valid routes with the model they must produce
// (Vars is only checked for nil / non-nil).
func routeValidCases(f func(body string, want *Route)) {
	f(`{"uri":"/a","upstream_id":1}`, &Route{URIs: []string{"/a"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/a","upstream_id":1,"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"weight":100},{"upstream_id":"b","weight":100}]}]}}}`,
		&Route{URIs: []string{"/a"}, UpstreamID: "1", Status: 1, Split: []WeightedUpstream{{Weight: 100}, {UpstreamID: "b", Weight: 100}}})
	f(`{"uri":"/a*","upstream_id":"up-1.x_y"}`, &Route{URIs: []string{"/a*"}, UpstreamID: "up-1.x_y", Status: 1})
	f(`{"uris":["/a","/b*"],"service_id":"s1"}`, &Route{URIs: []string{"/a", "/b*"}, ServiceID: "s1", Status: 1})
	f(`{"id":"r1","name":"n","desc":"","labels":{"env":"prod","v":"1"},"create_time":1700000000,"update_time":1700000001,"uri":"/","upstream_id":9}`,
		&Route{ID: "r1", Name: "n", Labels: map[string]string{"env": "prod", "v": "1"}, URIs: []string{"/"}, UpstreamID: "9", Status: 1})
	f(`{"id":12,"uri":"/","upstream_id":1.0}`, &Route{ID: "12", URIs: []string{"/"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"labels":{}}`, &Route{URIs: []string{"/"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"host":"Foo.COM"}`, &Route{URIs: []string{"/"}, Hosts: []string{"foo.com"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"hosts":["*.Foo.com","*","[::1]:80"]}`,
		&Route{URIs: []string{"/"}, Hosts: []string{"*.foo.com", "*", "[::1]:80"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"remote_addr":"10.0.0.1"}`,
		&Route{URIs: []string{"/"}, RemoteAddrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"remote_addrs":["10.0.0.7/8","::1","fe80::/10"]}`,
		&Route{URIs: []string{"/"}, RemoteAddrs: []netip.Prefix{
			netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fe80::/10"),
		}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"methods":["GET","PURGE","OPTIONS"]}`,
		&Route{URIs: []string{"/"}, Methods: MethodGET | MethodPURGE | MethodOPTIONS, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"methods":[]}`, &Route{URIs: []string{"/"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"priority":-5,"status":0,"enable_websocket":true}`,
		&Route{URIs: []string{"/"}, Priority: -5, Status: 0, EnableWebsocket: true, UpstreamID: "1"})
	f(`{"uri":"/","upstream_id":1,"timeout":{"connect":0.5,"send":2,"read":3.25}}`,
		&Route{URIs: []string{"/"}, UpstreamID: "1", Status: 1, Timeout: &Timeout{
			Connect: 500 * time.Millisecond, Send: 2 * time.Second, Read: 3250 * time.Millisecond,
		}})
	f(`{"uri":"/","upstream_id":1,"plugins":{}}`, &Route{URIs: []string{"/"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"vars":[]}`, &Route{URIs: []string{"/"}, UpstreamID: "1", Status: 1})
	f(`{"uri":"/","upstream_id":1,"vars":[["arg_k","==","v"],["http_x_n",">",1]]}`,
		&Route{URIs: []string{"/"}, UpstreamID: "1", Status: 1, Vars: &Expr{}})
	f(`{"uri":"/","upstream_id":1,"vars":["OR",["arg_k","==","v"],["arg_j","in",["a",2]]]}`,
		&Route{URIs: []string{"/"}, UpstreamID: "1", Status: 1, Vars: &Expr{}})
	f(`{"uri":"/","upstream":{"nodes":{"127.0.0.1:1980":1}}}`, &Route{URIs: []string{"/"}, Status: 1, Upstream: &Upstream{
		Type: "roundrobin", Scheme: "http", PassHost: "pass", HashOn: "vars",
		Nodes: []Node{{Host: "127.0.0.1", Port: 1980, Weight: 1}},
	}})
	// The upstream of a route may come from several places at once; the
	// compiler picks (upstream_id first).
	f(`{"uri":"/","upstream":{"nodes":[]},"upstream_id":"u","service_id":"s"}`, &Route{URIs: []string{"/"}, Status: 1,
		UpstreamID: "u", ServiceID: "s", Upstream: &Upstream{
			Type: "roundrobin", Scheme: "http", PassHost: "pass", HashOn: "vars", Nodes: []Node{},
		}})
}

func TestParseRouteValid(t *testing.T) {
	f := func(body string, want *Route) {
		t.Helper()
		got, err := ParseRoute([]byte(body))
		if err != nil {
			t.Fatalf("body %s: unexpected error %q", body, err)
		}
		if (got.Vars == nil) != (want.Vars == nil) {
			t.Fatalf("body %s: Vars = %v, want nil: %v", body, got.Vars, want.Vars == nil)
		}
		got.Vars, want.Vars = nil, nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %s:\n got %+v\nwant %+v", body, got, want)
		}
	}
	routeValidCases(f)
}

// routeErrorCases lists invalid routes with the message of their error.
func routeErrorCases(f func(body, wantErr string)) {
	// Not a route at all.
	f(``, `invalid request body: EOF`)
	f(`{"uri":"/","upstream_id":1,"plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"weight":-1}]}]}}}`,
		`property "plugins" validation failed: property "traffic-split" validation failed: property "rules" validation failed: failed to validate item 1: property "weighted_upstreams" validation failed: failed to validate item 1: property "weight" validation failed: expected -1 to be at least 0`)
	f(`{"uri":"/",`, `invalid request body: unexpected EOF`)
	f(`{"uri":"/","upstream_id":1} {}`, `invalid request body: unexpected data after the top-level value`)
	f(`[1]`, `wrong type: expected object, got array`)
	f(`null`, `wrong type: expected object, got null`)
	f(`[]`, `value should match only one schema, but matches none`)

	// Metadata.
	f(`{"id":"a b","uri":"/","upstream_id":1}`, `property "id" validation failed: failed to match pattern "^[a-zA-Z0-9-_.]+$" with "a b"`)
	f(`{"id":"","uri":"/","upstream_id":1}`, `property "id" validation failed: string too short, expected at least 1, got 0`)
	f(`{"id":"`+strings.Repeat("a", 65)+`","uri":"/","upstream_id":1}`, `property "id" validation failed: string too long, expected at most 64, got 65`)
	f(`{"id":0,"uri":"/","upstream_id":1}`, `property "id" validation failed: expected 0 to be at least 1`)
	f(`{"id":1.5,"uri":"/","upstream_id":1}`, `property "id" validation failed: wrong type: expected one of string, integer, got number`)
	f(`{"id":true,"uri":"/","upstream_id":1}`, `property "id" validation failed: wrong type: expected one of string, integer, got boolean`)
	f(`{"id":1e300,"uri":"/","upstream_id":1}`, `property "id" validation failed: expected 1e+300 to be at most 9007199254740991`)
	f(`{"name":"","uri":"/","upstream_id":1}`, `property "name" validation failed: string too short, expected at least 1, got 0`)
	f(`{"name":"`+strings.Repeat("é", 257)+`","uri":"/","upstream_id":1}`, `property "name" validation failed: string too long, expected at most 256, got 257`)
	f(`{"desc":"`+strings.Repeat("d", 300)+`","uri":"/","upstream_id":1}`, `property "desc" validation failed: string too long, expected at most 256, got 300`)
	f(`{"labels":{"env":1},"uri":"/","upstream_id":1}`, `property "labels" validation failed: failed to validate env (matching ".*"): wrong type: expected string, got number`)
	f(`{"labels":{"env":{}},"uri":"/","upstream_id":1}`, `property "labels" validation failed: failed to validate env (matching ".*"): wrong type: expected string, got object`)
	f(`{"labels":{"a":"x y"},"uri":"/","upstream_id":1}`, `property "labels" validation failed: failed to validate a (matching ".*"): failed to match pattern "^\\S+$" with "x y"`)
	f(`{"labels":["x"],"uri":"/","upstream_id":1}`, `property "labels" validation failed: wrong type: expected object, got array`)
	f(`{"create_time":"now","uri":"/","upstream_id":1}`, `property "create_time" validation failed: wrong type: expected integer, got string`)
	f(`{"update_time":1.5,"uri":"/","upstream_id":1}`, `property "update_time" validation failed: wrong type: expected integer, got number`)

	// uri / uris.
	f(`{"upstream_id":1}`, `value should match only one schema, but matches none`)
	f(`{"uri":"/a","uris":["/b"],"upstream_id":1}`, `only one of uri or uris is allowed`)
	f(`{"uri":"","upstream_id":1}`, `property "uri" validation failed: string too short, expected at least 1, got 0`)
	f(`{"uri":"/`+strings.Repeat("a", 4096)+`","upstream_id":1}`, `property "uri" validation failed: string too long, expected at most 4096, got 4097`)
	f(`{"uri":1,"upstream_id":1}`, `property "uri" validation failed: wrong type: expected string, got number`)
	f(`{"uris":[],"upstream_id":1}`, `property "uris" validation failed: expect array to have at least 1 items`)
	f(`{"uris":"/a","upstream_id":1}`, `property "uris" validation failed: wrong type: expected array, got string`)
	f(`{"uris":["/a",1],"upstream_id":1}`, `property "uris" validation failed: failed to validate item 2: wrong type: expected string, got number`)
	f(`{"uris":["/a","/b","/a"],"upstream_id":1}`, `property "uris" validation failed: expected unique items but items 1 and 3 are equal`)

	// host / hosts, remote_addr / remote_addrs.
	f(`{"uri":"/","upstream_id":1,"host":"a.com","hosts":["b.com"]}`, `only one of host or hosts is allowed`)
	f(`{"uri":"/","upstream_id":1,"remote_addr":"1.1.1.1","remote_addrs":["2.2.2.2"]}`, `only one of remote_addr or remote_addrs is allowed`)
	f(`{"uri":"/","upstream_id":1,"host":"a b"}`, `property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a b"`)
	f(`{"uri":"/","upstream_id":1,"host":"a.*"}`, `property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a.*"`)
	f(`{"uri":"/","upstream_id":1,"host":""}`, `property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with ""`)
	f(`{"uri":"/","upstream_id":1,"hosts":[]}`, `property "hosts" validation failed: expect array to have at least 1 items`)
	f(`{"uri":"/","upstream_id":1,"hosts":["a.com","a/b"]}`, `property "hosts" validation failed: failed to validate item 2: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a/b"`)
	f(`{"uri":"/","upstream_id":1,"hosts":["a.com","a.com"]}`, `property "hosts" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"uri":"/","upstream_id":1,"remote_addr":"x"}`, `property "remote_addr" validation failed: invalid IP "x"`)
	f(`{"uri":"/","upstream_id":1,"remote_addr":"10.0.0.0/33"}`, `property "remote_addr" validation failed: invalid CIDR "10.0.0.0/33"`)
	f(`{"uri":"/","upstream_id":1,"remote_addr":"fe80::1%eth0"}`, `property "remote_addr" validation failed: invalid IP "fe80::1%eth0"`)
	f(`{"uri":"/","upstream_id":1,"remote_addr":1}`, `property "remote_addr" validation failed: wrong type: expected string, got number`)
	f(`{"uri":"/","upstream_id":1,"remote_addrs":[]}`, `property "remote_addrs" validation failed: expect array to have at least 1 items`)
	f(`{"uri":"/","upstream_id":1,"remote_addrs":["::1","::1"]}`, `property "remote_addrs" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"uri":"/","upstream_id":1,"remote_addrs":["::1","1.2.3"]}`, `property "remote_addrs" validation failed: failed to validate item 2: invalid IP "1.2.3"`)

	// methods, priority, status, enable_websocket, timeout.
	f(`{"uri":"/","upstream_id":1,"methods":["FOO"]}`, `property "methods" validation failed: failed to validate item 1: matches none of the enum values`)
	f(`{"uri":"/","upstream_id":1,"methods":["GET","get"]}`, `property "methods" validation failed: failed to validate item 2: matches none of the enum values`)
	f(`{"uri":"/","upstream_id":1,"methods":["GET","GET"]}`, `property "methods" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"uri":"/","upstream_id":1,"methods":"GET"}`, `property "methods" validation failed: wrong type: expected array, got string`)
	f(`{"uri":"/","upstream_id":1,"priority":"1"}`, `property "priority" validation failed: wrong type: expected integer, got string`)
	f(`{"uri":"/","upstream_id":1,"priority":1.5}`, `property "priority" validation failed: wrong type: expected integer, got number`)
	f(`{"uri":"/","upstream_id":1,"priority":null}`, `property "priority" validation failed: wrong type: expected integer, got null`)
	f(`{"uri":"/","upstream_id":1,"status":2}`, `property "status" validation failed: matches none of the enum values`)
	f(`{"uri":"/","upstream_id":1,"status":true}`, `property "status" validation failed: wrong type: expected integer, got boolean`)
	f(`{"uri":"/","upstream_id":1,"enable_websocket":"yes"}`, `property "enable_websocket" validation failed: wrong type: expected boolean, got string`)
	f(`{"uri":"/","upstream_id":1,"timeout":{"connect":0,"send":1,"read":1}}`, `property "timeout" validation failed: property "connect" validation failed: expected 0 to be greater than 0`)
	f(`{"uri":"/","upstream_id":1,"timeout":{"connect":1,"send":-0.5,"read":1}}`, `property "timeout" validation failed: property "send" validation failed: expected -0.5 to be greater than 0`)
	f(`{"uri":"/","upstream_id":1,"timeout":{"connect":1,"read":1}}`, `property "timeout" validation failed: property "send" is required`)
	f(`{"uri":"/","upstream_id":1,"timeout":{"connect":1,"send":1,"read":"1"}}`, `property "timeout" validation failed: property "read" validation failed: wrong type: expected number, got string`)
	f(`{"uri":"/","upstream_id":1,"timeout":{"connect":1,"send":1,"read":1,"write":1}}`, `property "timeout" validation failed: additional properties forbidden, found write`)
	f(`{"uri":"/","upstream_id":1,"timeout":{"connect":1e10,"send":1,"read":1}}`, `property "timeout" validation failed: property "connect" validation failed: expected 10000000000 to be at most 9223372036`)
	f(`{"uri":"/","upstream_id":1,"timeout":5}`, `property "timeout" validation failed: wrong type: expected object, got number`)

	// vars.
	f(`{"uri":"/","upstream_id":1,"vars":"x"}`, `property "vars" validation failed: wrong type: expected array, got string`)
	f(`{"uri":"/","upstream_id":1,"vars":[["arg_k","=","v"]]}`, `failed to validate the 'vars' expression: invalid operator '='`)
	f(`{"uri":"/","upstream_id":1,"vars":[["nope_x","==","v"]]}`, `failed to validate the 'vars' expression: unknown variable "nope_x"`)
	f(`{"uri":"/","upstream_id":1,"vars":["arg_k","==","v"]}`, `failed to validate the 'vars' expression: rule should be wrapped inside brackets`)

	// References and inline upstream.
	f(`{"uri":"/"}`, `route must have one of upstream, upstream_id or service_id`)
	f(`{"uri":"/","plugins":{}}`, `route must have one of upstream, upstream_id or service_id`)
	f(`{"uri":"/","upstream_id":""}`, `property "upstream_id" validation failed: string too short, expected at least 1, got 0`)
	f(`{"uri":"/","upstream_id":{"a":1}}`, `property "upstream_id" validation failed: wrong type: expected one of string, integer, got object`)
	f(`{"uri":"/","service_id":-1}`, `property "service_id" validation failed: expected -1 to be at least 1`)
	f(`{"uri":"/","upstream":"u1"}`, `property "upstream" validation failed: wrong type: expected object, got string`)
	f(`{"uri":"/","upstream":{}}`, `property "upstream" validation failed: property "nodes" is required`)
	f(`{"uri":"/","upstream":{"nodes":{},"retries":-1}}`, `property "upstream" validation failed: property "retries" validation failed: expected -1 to be at least 0`)
	f(`{"uri":"/","upstream":{"nodes":{"127.0.0.1:80":-1}}}`, `property "upstream" validation failed: property "nodes" validation failed: failed to validate 127.0.0.1:80 (matching ".*"): expected -1 to be at least 0`)
	f(`{"uri":"/","upstream":{"nodes":[{"host":"a","weight":1,"port":0}]}}`, `property "upstream" validation failed: property "nodes" validation failed: failed to validate item 1: property "port" validation failed: expected 0 to be at least 1`)
	f(`{"uri":"/","upstream":{"nodes":{},"type":"chash"}}`, `property "upstream" validation failed: missing key`)
	f(`{"uri":"/","upstream":{"nodes":{"::1":1}}}`, `property "upstream" validation failed: IPv6 address must be enclosed with '[' and ']'`)
	f(`{"uri":"/","upstream":{"nodes":{},"scheme":"grpc"}}`, `property "upstream" validation failed: property "scheme" validation failed: scheme "grpc" is not supported by this gateway (needs HTTP/2)`)

	// Unsupported features and unknown properties.
	f(`{"uri":"/","upstream_id":1,"plugins":{"limit-count":{},"key-auth":{}}}`, `plugins are not supported by this gateway: key-auth, limit-count`)
	f(`{"uri":"/","plugins":{"proxy-rewrite":{}}}`, `plugins are not supported by this gateway: proxy-rewrite`)
	f(`{"uri":"/","upstream_id":1,"plugins":"x"}`, `property "plugins" validation failed: wrong type: expected object, got string`)
	f(`{"uri":"/","upstream_id":1,"plugin_config_id":1}`, `plugin_config_id is not supported by this gateway`)
	f(`{"uri":"/","upstream_id":1,"filter_func":"function(vars) return true end"}`, `filter_func is not supported by this gateway`)
	f(`{"uri":"/","script":"local _M = {} return _M"}`, `script is not supported by this gateway`)
	f(`{"uri":"/","upstream_id":1,"script_id":"1"}`, `script_id is not supported by this gateway`)
	f(`{"uri":"/","upstream_id":1,"foo":1}`, `additional properties forbidden, found foo`)
	f(`{"uri":"/","upstream_id":1,"zz":1,"aa":2}`, `additional properties forbidden, found aa`)
	f(`{"uri":"/","upstream_id":1,"service_protocol":"grpc"}`, `additional properties forbidden, found service_protocol`)
	// A known property's failure is reported before an unknown property.
	f(`{"uri":"/","upstream_id":1,"foo":1,"priority":"x"}`, `property "priority" validation failed: wrong type: expected integer, got string`)
}

func TestParseRouteErrors(t *testing.T) {
	f := func(body, wantErr string) {
		t.Helper()
		r, err := ParseRoute([]byte(body))
		checkValidationError(t, body, err, wantErr)
		if r != nil {
			t.Fatalf("body %s: non-nil route with an error", body)
		}
	}
	routeErrorCases(f)
}

// TestAdminMessage checks which messages APISIX sends without the
// "invalid configuration: " prefix.
func TestAdminMessage(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		_, err := ParseRoute([]byte(body))
		if err == nil {
			t.Fatalf("body %s: no error", body)
		}
		if got := err.(*ValidationError).AdminMessage(); got != want {
			t.Fatalf("body %s:\n got %q\nwant %q", body, got, want)
		}
	}
	f(`{"uri":"/","upstream_id":1,"host":"a","hosts":["b"]}`, `only one of host or hosts is allowed`)
	f(`{"uri":"/","upstream_id":1,"vars":[["arg_k","=","v"]]}`, `failed to validate the 'vars' expression: invalid operator '='`)
	f(`{"uri":"/","upstream_id":1,"plugins":{"a":{}}}`, `plugins are not supported by this gateway: a`)
	f(`{`, `invalid request body: unexpected EOF`)
	f(`{"uri":"/","upstream_id":1,"priority":"x"}`, `invalid configuration: property "priority" validation failed: wrong type: expected integer, got string`)
	f(`{"uri":"/","upstream":{"nodes":{},"type":"chash"}}`, `invalid configuration: property "upstream" validation failed: missing key`)

	g := func(body, want string) {
		t.Helper()
		_, err := ParseUpstream([]byte(body))
		if err == nil {
			t.Fatalf("body %s: no error", body)
		}
		if got := err.(*ValidationError).AdminMessage(); got != want {
			t.Fatalf("body %s:\n got %q\nwant %q", body, got, want)
		}
	}
	g(`{"nodes":{},"retry_timeout":-1}`, `invalid configuration: property "retry_timeout" validation failed: expected -1 to be at least 0`)
	g(`{"nodes":{},"type":"chash"}`, `missing key`)
	g(`{"nodes":{},"pass_host":"rewrite"}`, "`upstream_host` can't be empty when `pass_host` is `rewrite`")
	g(`{"nodes":[{"host":"::1","port":80,"weight":1}]}`, `invalid configuration: IPv6 address must be enclosed with '[' and ']'`)
}

// TestRouteEmptyContainers: see TestEmptyContainers.
func TestRouteEmptyContainers(t *testing.T) {
	r, err := ParseRoute([]byte(`{"uri":"/","upstream_id":1,"methods":{},"vars":{},"plugins":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Methods != 0 || r.Vars != nil {
		t.Fatalf("got %+v", r)
	}
	body := `{"uri":"/","upstream_id":1,"methods":{"GET":1}}`
	_, err = ParseRoute([]byte(body))
	checkValidationError(t, body, err, `property "methods" validation failed: wrong type: expected array, got object`)
}

// TestRouteNestedChecks checks an error two objects deep in an inline upstream.
func TestRouteNestedChecks(t *testing.T) {
	body := `{"uri":"/","upstream":{"nodes":{},"checks":{"passive":{}}}}`
	_, err := ParseRoute([]byte(body))
	checkValidationError(t, body, err, `property "upstream" validation failed: property "checks" validation failed: `+
		`object matches none of the required: ["active"] or ["active","passive"]`)
}

func serviceValidCases(f func(body string, want *Service)) {
	f(`{}`, &Service{})
	f(`{"id":"s1","name":"svc","desc":"d","labels":{"a":"b"},"create_time":1,"update_time":2,"plugins":{},"upstream_id":3,"enable_websocket":true,"hosts":["A.com","*.b.com"]}`,
		&Service{ID: "s1", Name: "svc", Desc: "d", Labels: map[string]string{"a": "b"}, UpstreamID: "3", EnableWebsocket: true,
			Hosts: []string{"a.com", "*.b.com"}})
	f(`{"upstream":{"nodes":{"a:81":2},"scheme":"https"}}`, &Service{Upstream: &Upstream{
		Type: "roundrobin", Scheme: "https", PassHost: "pass", HashOn: "vars", Nodes: []Node{{Host: "a", Port: 81, Weight: 2}},
	}})
}

func TestParseServiceValid(t *testing.T) {
	f := func(body string, want *Service) {
		t.Helper()
		got, err := ParseService([]byte(body))
		if err != nil {
			t.Fatalf("body %s: unexpected error %q", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %s:\n got %+v\nwant %+v", body, got, want)
		}
	}
	serviceValidCases(f)
}

func serviceErrorCases(f func(body, wantErr string)) {
	f(`"s"`, `wrong type: expected object, got string`)
	f(`{"uri":"/"}`, `additional properties forbidden, found uri`)
	f(`{"host":"a.com"}`, `additional properties forbidden, found host`)
	f(`{"hosts":[]}`, `property "hosts" validation failed: expect array to have at least 1 items`)
	f(`{"hosts":["a b"]}`, `property "hosts" validation failed: failed to validate item 1: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a b"`)
	f(`{"upstream_id":0}`, `property "upstream_id" validation failed: expected 0 to be at least 1`)
	f(`{"upstream":{"nodes":{},"type":"foo"}}`, `property "upstream" validation failed: property "type" validation failed: balancer type "foo" is not supported; expected one of chash, ewma, least_conn, roundrobin`)
	f(`{"enable_websocket":1}`, `property "enable_websocket" validation failed: wrong type: expected boolean, got number`)
	f(`{"plugins":{"limit-req":{}}}`, `plugins are not supported by this gateway: limit-req`)
	f(`{"script":"return {}"}`, `script is not supported by this gateway`)
	f(`{"name":""}`, `property "name" validation failed: string too short, expected at least 1, got 0`)
}

func TestParseServiceErrors(t *testing.T) {
	f := func(body, wantErr string) {
		t.Helper()
		s, err := ParseService([]byte(body))
		checkValidationError(t, body, err, wantErr)
		if s != nil {
			t.Fatalf("body %s: non-nil service with an error", body)
		}
	}
	serviceErrorCases(f)
}

func TestParseRouteTrafficSplit(t *testing.T) {
	r, err := ParseRoute([]byte(`{"uri":"/","upstream_id":"a","plugins":{"traffic-split":{"rules":[{"weighted_upstreams":[{"weight":90},{"upstream_id":"b","weight":10},{"upstream_id":3}]}]}}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []WeightedUpstream{{Weight: 90}, {UpstreamID: "b", Weight: 10}, {UpstreamID: "3", Weight: 1}}
	if len(r.Split) != 3 || r.Split[0] != want[0] || r.Split[1] != want[1] || r.Split[2] != want[2] {
		t.Fatalf("split %+v", r.Split)
	}
	for body, msg := range map[string]string{
		`{"traffic-split":{"rules":[{"match":[{"vars":[]}],"weighted_upstreams":[{"weight":1}]}]}}`: "match conditions are not supported",
		`{"traffic-split":{"rules":[]}}`:                                                       "only one rule",
		`{"traffic-split":{"rules":[{"weighted_upstreams":[{"upstream":{}}]}]}}`:               "inline upstreams are not supported",
		`{"traffic-split":{"rules":[{"weighted_upstreams":[{"weight":1}]}]},"limit-count":{}}`: "plugins are not supported by this gateway: limit-count",
	} {
		_, err := ParseRoute([]byte(`{"uri":"/","upstream_id":"a","plugins":` + body + `}`))
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want %q", body, err, msg)
		}
	}
}
