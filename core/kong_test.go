package core

import (
	"net/http"
	"strings"
	"testing"

	json "github.com/goccy/go-json"
)

// kongObj decodes a JSON object as the Admin API does (numbers exact).
func kongObj(t *testing.T, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func normalize(t *testing.T, kind Kind, s string) (map[string]any, *KongError) {
	t.Helper()
	obj := kongObj(t, s)
	if err := ApplyKongShorthands(kind, obj); err != nil {
		return nil, err
	}
	return NormalizeKong(kind, obj)
}

func TestNormalizeKongServiceURL(t *testing.T) {
	out, err := normalize(t, KindKongServices, `{"name":"example_service","url":"http://mockbin.org"}`)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"protocol": "http", "host": "mockbin.org", "port": json.Number("80"), "path": nil,
		"retries": json.Number("5"), "connect_timeout": json.Number("60000"), "write_timeout": json.Number("60000"),
		"read_timeout": json.Number("60000"), "enabled": true, "tls_verify": nil, "name": "example_service",
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("%s = %#v, want %#v", k, out[k], v)
		}
	}
	out, err = normalize(t, KindKongServices, `{"url":"https://example.com:8443/api/v1"}`)
	if err != nil {
		t.Fatal(err)
	}
	if out["protocol"] != "https" || out["port"] != json.Number("8443") || out["path"] != "/api/v1" {
		t.Fatalf("url shorthand: %v", out)
	}
}

func TestKongSchemaErrors(t *testing.T) {
	tests := []struct {
		kind Kind
		body string
		msg  string
	}{
		{KindKongUpstreams, `{}`, "schema violation (name: required field missing)"},
		{KindKongUpstreams, `{"name":"10.0.0.1"}`, "schema violation (name: Invalid name ('10.0.0.1'); no ip addresses allowed)"},
		{KindKongUpstreams, `{"name":"a.b:80"}`, "schema violation (name: Invalid name ('a.b:80'); no port allowed)"},
		{KindKongUpstreams, `{"name":"u","slots":5}`, "schema violation (slots: value should be between 10 and 65536)"},
		{KindKongUpstreams, `{"name":"u","hash_on":"header"}`,
			"2 schema violations (failed conditional validation given value of field 'hash_on'; hash_on_header: required field missing)"},
		{KindKongUpstreams, `{"name":"u","hash_on":"cookie","hash_on_cookie":"c","hash_fallback":"ip"}`,
			"2 schema violations (failed conditional validation given value of field 'hash_on'; hash_fallback: expected one of: none)"},
		{KindKongUpstreams, `{"name":"u","hash_on_cookie_path":"x"}`, "schema violation (hash_on_cookie_path: should start with: /)"},
		{KindKongUpstreams, `{"name":"u","healthchecks":{"active":{"healthy":{"interval":-1}}}}`,
			"schema violation (healthchecks.active.healthy.interval: value should be between 0 and 65535)"},
		{KindKongUpstreams, `{"name":"u","foo":1}`, "schema violation (foo: unknown field)"},
		{KindKongTargets, `{"target":"a.b","weight":70000,"upstream":{"id":"6f1a8a2e-4a5c-4d9e-8f7b-123456789abc"}}`,
			"schema violation (weight: value should be between 0 and 65535)"},
		{KindKongTargets, `{"target":"a b","upstream":{"id":"6f1a8a2e-4a5c-4d9e-8f7b-123456789abc"}}`,
			"schema violation (target: Invalid target ('a b'); not a valid hostname or ip address)"},
		{KindKongServices, `{"host":"h","retries":"x"}`, "schema violation (retries: expected an integer)"},
		{KindKongServices, `{"name":"a b","host":"h"}`,
			"schema violation (name: invalid value 'a b': it must only contain alphanumeric and '., -, _, ~' characters)"},
		{KindKongRoutes, `{"protocols":["http"]}`,
			"schema violation (must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http')"},
		{KindKongRoutes, `{"paths":["mock"]}`, "schema violation (paths.1: should start with: / (fixed path) or ~/ (regex path))"},
	}
	for _, tt := range tests {
		_, err := normalize(t, tt.kind, tt.body)
		if err == nil {
			t.Errorf("%s %s: accepted", tt.kind, tt.body)
			continue
		}
		if err.Message != tt.msg || err.Code != KongSchemaViolation || err.Name != "schema violation" || err.Status() != 400 {
			t.Errorf("%s %s:\n got %d %q\nwant %q", tt.kind, tt.body, err.Code, err.Message, tt.msg)
		}
	}
}

func TestKongUpstreamShorthands(t *testing.T) {
	out, err := normalize(t, KindKongUpstreams, `{"name":"u","hash_on":"ip"}`)
	if err != nil {
		t.Fatal(err)
	}
	if out["algorithm"] != "consistent-hashing" {
		t.Fatalf("hash_on ip: algorithm %v", out["algorithm"])
	}
	out, _ = normalize(t, KindKongUpstreams, `{"name":"u","algorithm":"consistent-hashing","hash_on":"none"}`)
	if out["algorithm"] != "round-robin" {
		t.Fatalf("hash_on none: algorithm %v", out["algorithm"])
	}
	out, _ = normalize(t, KindKongUpstreams, `{"name":"u","algorithm":"least-connections","hash_on":"ip"}`)
	if out["algorithm"] != "least-connections" || out["hash_on"] != "none" {
		// Kong applies algorithm first (which clears hash_on), then hash_on.
		t.Fatalf("algorithm then hash_on: %v %v", out["algorithm"], out["hash_on"])
	}
	out, _ = normalize(t, KindKongUpstreams, `{"name":"u","algorithm":"latency"}`)
	if out["algorithm"] != "latency" || out["hash_on"] != "none" {
		t.Fatalf("latency: %v %v", out["algorithm"], out["hash_on"])
	}
	hc := out["healthchecks"].(map[string]any)
	if hc["threshold"] != json.Number("0") || hc["active"].(map[string]any)["http_path"] != "/" {
		t.Fatalf("healthchecks defaults: %v", hc)
	}
}

func TestNormalizeKongTarget(t *testing.T) {
	for in, want := range map[string]string{
		"mockbin.org:80": "mockbin.org:80", "10.0.0.1": "10.0.0.1:8000", "::1": "[::1]:8000",
		"[::1]:81": "[::1]:81", "example_upstream": "example_upstream:8000",
	} {
		got, ok := NormalizeKongTarget(in)
		if !ok || got != want {
			t.Errorf("%s: %q, want %q", in, got, want)
		}
	}
}

func TestKongUnsupported(t *testing.T) {
	tests := []struct {
		kind Kind
		body string
		want string
	}{
		{KindKongRoutes, `{"paths":["~/a"]}`, "paths.1: regex paths are not supported"},
		{KindKongRoutes, `{"paths":["/a"],"headers":{"x":["1"]}}`, "headers: matching on 'headers'"},
		{KindKongRoutes, `{"hosts":["example.*"]}`, "hosts: wildcard hosts ending in '.*'"},
		{KindKongServices, `{"host":"h","protocol":"grpc"}`, "protocol: protocol 'grpc' is not supported"},
		{KindKongUpstreams, `{"name":"u","healthchecks":{"threshold":50}}`, "healthchecks.threshold: an upstream health threshold"},
	}
	for _, tt := range tests {
		out, err := normalize(t, tt.kind, tt.body)
		if err != nil {
			t.Fatalf("%s: %v", tt.body, err)
		}
		kerr := KongUnsupported(tt.kind, out)
		if kerr == nil || !strings.Contains(kerr.Message, tt.want) {
			t.Errorf("%s: %v, want %q", tt.body, kerr, tt.want)
		}
	}
	out, _ := normalize(t, KindKongRoutes, `{"paths":["/a"],"methods":["GET"],"hosts":["*.example.com"]}`)
	if err := KongUnsupported(KindKongRoutes, out); err != nil {
		t.Fatalf("plain route refused: %v", err)
	}
}

// kongConfig builds a Config from Kong entities given as JSON (normalized
// first), keyed by kind.
func kongConfig(t *testing.T, entities map[Kind][]string) *Config {
	t.Helper()
	cfg := NewConfig()
	for kind, list := range entities {
		for _, s := range list {
			obj := kongObj(t, s)
			if err := ApplyKongShorthands(kind, obj); err != nil {
				t.Fatal(err)
			}
			out, err := NormalizeKong(kind, obj)
			if err != nil {
				t.Fatalf("%s: %v", s, err)
			}
			b, _ := json.Marshal(out)
			v, perr := ParseKong(kind, b)
			if perr != nil {
				t.Fatal(perr)
			}
			cfg.Kong.set(out["id"].(string), v)
		}
	}
	d, problems := TranslateKong(&cfg.Kong, nil)
	if len(problems) > 0 {
		t.Fatalf("translation problems: %v", problems)
	}
	cfg.KongDerived = d
	return cfg
}

const (
	svcID = "11111111-1111-4111-8111-111111111111"
	upID  = "22222222-2222-4222-8222-222222222222"
)

func TestKongTranslationServed(t *testing.T) {
	a := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("a " + r.Host + " " + r.URL.RequestURI()))
	})
	b := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("b " + r.Host + " " + r.URL.RequestURI()))
	})
	zero := startOrigin(t, nil)
	cfg := kongConfig(t, map[Kind][]string{
		KindKongServices: {`{"id":"` + svcID + `","name":"s","host":"example_upstream","path":"/base"}`},
		KindKongRoutes: {
			`{"id":"33333333-3333-4333-8333-333333333333","paths":["/mock"],"service":{"id":"` + svcID + `"}}`,
			`{"id":"44444444-4444-4444-8444-444444444444","paths":["/keep"],"strip_path":false,"preserve_host":true,"service":{"id":"` + svcID + `"}}`,
		},
		KindKongUpstreams: {`{"id":"` + upID + `","name":"example_upstream"}`},
		KindKongTargets: {
			`{"id":"55555555-5555-4555-8555-555555555555","target":"127.0.0.1:` + itoa(a.port) + `","upstream":{"id":"` + upID + `"}}`,
			`{"id":"66666666-6666-4666-8666-666666666666","target":"127.0.0.1:` + itoa(b.port) + `","upstream":{"id":"` + upID + `"}}`,
			`{"id":"77777777-7777-4777-8777-777777777777","target":"127.0.0.1:` + itoa(zero.port) + `","weight":0,"upstream":{"id":"` + upID + `"}}`,
		},
	})
	g := startGateway(t, cfg)
	seen := map[byte]int{}
	for i := 0; i < 20; i++ {
		code, body, _ := get(t, "http://"+g.addr+"/mock/headers?x=1", map[string]string{"Host": "client.example"})
		if code != 200 {
			t.Fatalf("status %d body %q", code, body)
		}
		seen[body[0]]++
		port := a.port
		if body[0] == 'b' {
			port = b.port
		}
		if want := " 127.0.0.1:" + itoa(port) + " /base/headers?x=1"; body[1:] != want {
			t.Fatalf("upstream saw %q, want %q", body[1:], want)
		}
	}
	if seen['a'] != 10 || seen['b'] != 10 || zero.hits.Load() != 0 {
		t.Fatalf("split a=%d b=%d, weight-0 target got %d", seen['a'], seen['b'], zero.hits.Load())
	}
	code, body, _ := get(t, "http://"+g.addr+"/keep/x", map[string]string{"Host": "client.example"})
	if code != 200 || !strings.HasSuffix(body, " client.example /base/keep/x") {
		t.Fatalf("strip_path false, preserve_host: %d %q", code, body)
	}
}

func TestKongTranslationReusesUpstreams(t *testing.T) {
	cfg := kongConfig(t, map[Kind][]string{
		KindKongServices: {`{"id":"` + svcID + `","host":"10.0.0.1","port":8080}`},
		KindKongRoutes:   {`{"id":"33333333-3333-4333-8333-333333333333","paths":["/x"],"service":{"id":"` + svcID + `"}}`},
	})
	u := cfg.KongDerived.Upstreams["kong:"+svcID]
	if u == nil || len(u.Nodes) != 1 || u.Nodes[0].Host != "10.0.0.1" || u.Nodes[0].Port != 8080 || *u.Retries != 5 || u.PassHost != "node" {
		t.Fatalf("plain service upstream: %+v", u)
	}
	if u.Timeout.Connect.Milliseconds() != 60000 {
		t.Fatalf("timeout %v", u.Timeout)
	}
	d, _ := TranslateKong(&cfg.Kong, cfg.KongDerived)
	if d.Upstreams["kong:"+svcID] != u {
		t.Fatal("an unchanged service must keep its upstream object (and so its balancer)")
	}
}

func TestKongChecksMapping(t *testing.T) {
	var hc KongHealthchecks
	if kongChecks(&hc) != nil {
		t.Fatal("all zeros must mean no checks")
	}
	hc.Passive.Unhealthy.HTTPFailures = 3
	c := kongChecks(&hc)
	if c == nil || c.Active != nil || c.Passive == nil || c.Passive.Unhealthy.HTTPFailures != 3 {
		t.Fatalf("passive only: %+v", c)
	}
	hc.Active.Unhealthy.Interval = 2
	hc.Active.Headers = map[string][]string{"X-A": {"1", "2"}}
	c = kongChecks(&hc)
	if c.Active == nil || c.Active.Unhealthy.Interval.Seconds() != 2 || c.Active.Healthy.Interval != 0 ||
		len(c.Active.ReqHeaders) != 2 || c.Active.ReqHeaders[0] != "X-A: 1" {
		t.Fatalf("active: %+v", c.Active)
	}
}

func TestHashCookieIssued(t *testing.T) {
	o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Cookie("sid")
		if c != nil {
			w.Write([]byte(c.Value))
		}
	})
	cfg := NewConfig()
	u := upstreamOf(o.port)
	u.HashOn, u.Key, u.HashCookie = "cookie", "sid", &HashCookie{Path: "/app"}
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/*"}, Status: 1, Upstream: u}
	g := startGateway(t, cfg)
	code, body, hdr := get(t, "http://"+g.addr+"/x", nil)
	sc := hdr.Get("Set-Cookie")
	if code != 200 || !IsUUID(body) || sc != "sid="+body+"; Path=/app; SameSite=Lax; HttpOnly" {
		t.Fatalf("first request: %d %q Set-Cookie %q", code, body, sc)
	}
	_, body, hdr = get(t, "http://"+g.addr+"/x", map[string]string{"Cookie": "sid=abc"})
	if body != "abc" || hdr.Get("Set-Cookie") != "" {
		t.Fatalf("with cookie: %q Set-Cookie %q", body, hdr.Get("Set-Cookie"))
	}
}

func itoa(n int) string { return jsonInt(n) }

func jsonInt(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestKongHashKey(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		up          KongUpstream
		hashOn, key string
		cookie      bool
	}{
		{KongUpstream{HashOn: "none"}, "vars_combinations", "kong-hash-none", false},
		{KongUpstream{HashOn: "ip"}, "vars", "remote_addr", false},
		{KongUpstream{HashOn: "path"}, "vars", "uri", false},
		{KongUpstream{HashOn: "consumer"}, "consumer", "", false},
		{KongUpstream{HashOn: "query_arg", HashOnQueryArg: s("user")}, "vars", "arg_user", false},
		{KongUpstream{HashOn: "header", HashOnHeader: s("X-User")}, "header", "X-User", false},
		{KongUpstream{HashOn: "cookie", HashOnCookie: s("sid"), HashOnCookiePath: "/app"}, "cookie", "sid", true},
	}
	for _, tt := range tests {
		on, key, cookie, err := kongHashKey(&tt.up)
		if err != nil || on != tt.hashOn || key != tt.key || (cookie != nil) != tt.cookie {
			t.Errorf("%s: %q %q %v %v", tt.up.HashOn, on, key, cookie, err)
		}
		if tt.hashOn != "consumer" {
			// The key must be one the chash key extraction accepts.
			if err := checkHashKey(on, key); err != nil {
				t.Errorf("%s: key %q refused by the schema: %v", tt.up.HashOn, key, err)
			}
		}
	}
	if _, _, _, err := kongHashKey(&KongUpstream{HashOn: "uri_capture"}); err == nil {
		t.Error("uri_capture must be refused")
	}
}

// TestKongChashTranslation needs the chash balancer (branch lb).
func TestKongChashTranslation(t *testing.T) {
	if !PickerRegistered("chash") {
		t.Skip("no chash balancer registered in this build")
	}
	cfg := kongConfig(t, map[Kind][]string{
		KindKongServices:  {`{"id":"` + svcID + `","host":"u"}`},
		KindKongRoutes:    {`{"id":"33333333-3333-4333-8333-333333333333","paths":["/x"],"service":{"id":"` + svcID + `"}}`},
		KindKongUpstreams: {`{"id":"` + upID + `","name":"u","hash_on":"cookie","hash_on_cookie":"sid"}`},
	})
	u := cfg.KongDerived.Upstreams["kong:"+svcID]
	if u.Type != "chash" || u.HashOn != "cookie" || u.Key != "sid" || u.HashCookie == nil {
		t.Fatalf("upstream %+v", u)
	}
}
