package declarative

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
)

func mustLoad(t *testing.T, file string) *Result {
	t.Helper()
	r, err := LoadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK() {
		t.Fatalf("%s: %v", file, r.Err())
	}
	return r
}

func kvMap(r *Result) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, kv := range r.KVs {
		var v map[string]any
		if err := json.Unmarshal(kv.Value, &v); err != nil {
			panic(err)
		}
		out[kv.Key] = v
	}
	return out
}

// manager builds the served configuration from a result, as standalone
// mode does.
func served(t *testing.T, r *Result) *core.Config {
	t.Helper()
	m := store.NewMemory()
	defer m.Close()
	if _, _, err := m.Replace(r.KVs); err != nil {
		t.Fatal(err)
	}
	mgr := &core.Manager{Store: m, Runtime: core.NewRuntime(), Proxy: core.NewProxy(), Logf: t.Logf}
	defer mgr.Runtime.Close()
	ctx, cancel := contextWithCancel()
	defer cancel()
	if err := mgr.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if n := mgr.InvalidValues.Load(); n != 0 {
		t.Fatalf("%d loaded values were refused by the manager", n)
	}
	return mgr.Config()
}

func TestLoadAPISIX(t *testing.T) {
	for _, f := range []string{"apisix.yaml", "apisix.json"} {
		r := mustLoad(t, f)
		if r.Format != FormatAPISIX {
			t.Fatalf("%s: format %s", f, r.Format)
		}
		cfg := served(t, r)
		if cfg.Routes["hello"] == nil || cfg.Upstreams["web"] == nil {
			t.Fatalf("%s: served %v %v", f, cfg.Routes, cfg.Upstreams)
		}
	}
	r := mustLoad(t, "apisix.yaml")
	if r.Summary() != "apisix: 2 routes, 1 upstreams" {
		t.Fatalf("summary %q", r.Summary())
	}
}

func TestLoadIngressSeed(t *testing.T) {
	r := mustLoad(t, "ingress.yaml")
	if r.Format != FormatIngress {
		t.Fatalf("format %s", r.Format)
	}
	kvs := kvMap(r)
	up := kvs["/apisix/upstreams/default_httpbin-external-domain"]
	if up["scheme"] != "https" || up["pass_host"] != "node" {
		t.Fatalf("upstream %v", up)
	}
	node := up["nodes"].([]any)[0].(map[string]any)
	if node["host"] != "httpbin.org" || node["port"] != 443.0 || node["weight"] != 1.0 {
		t.Fatalf("node %v", node)
	}
	route := kvs["/apisix/routes/default_lb-route_lb-route"]
	if route["upstream_id"] != "default_httpbin-external-domain" {
		t.Fatalf("route %v", route)
	}
	split := route["plugins"].(map[string]any)["traffic-split"].(map[string]any)["rules"].([]any)[0].(map[string]any)["weighted_upstreams"].([]any)
	if len(split) != 2 || split[0].(map[string]any)["weight"] != 100.0 ||
		split[1].(map[string]any)["upstream_id"] != "default_mockapi7-external-domain" || split[1].(map[string]any)["weight"] != 100.0 {
		t.Fatalf("traffic split %v", split)
	}
	cfg := served(t, r)
	if rt := cfg.Routes["default_lb-route_lb-route"]; rt == nil || len(rt.Split) != 2 {
		t.Fatalf("served route %+v", rt)
	}
}

func TestLoadKong(t *testing.T) {
	r := mustLoad(t, "kong.yaml")
	if r.Format != FormatKong || r.Summary() != "kong: 1 routes, 1 services, 2 targets, 1 upstreams" {
		t.Fatalf("%s %s", r.Format, r.Summary())
	}
	cfg := served(t, r)
	if len(cfg.KongDerived.Routes) != 1 || len(cfg.KongDerived.Upstreams) != 1 {
		t.Fatalf("translation %+v", cfg.KongDerived)
	}
	for _, u := range cfg.KongDerived.Upstreams {
		if len(u.Nodes) != 2 || u.Nodes[0].Host != "httpbin.org" {
			t.Fatalf("upstream nodes %+v", u.Nodes)
		}
	}
	// Stable ids: loading again gives the same keys and values.
	r2 := mustLoad(t, "kong.yaml")
	for i := range r.KVs {
		if r.KVs[i].Key != r2.KVs[i].Key || string(r.KVs[i].Value) != string(r2.KVs[i].Value) {
			t.Fatal("loading the same file twice must give the same configuration")
		}
	}
}

func TestLoadProblems(t *testing.T) {
	tests := []struct {
		name, src, want string
		line            int
	}{
		{"no #END", "routes: []\n", "does not end with a #END line", 0},
		{"yaml syntax", "routes: [\n  - id: 1\n#END\n", "invalid YAML", 0},
		{"json syntax", "{\"routes\": [1,]}", "invalid JSON", 1},
		{"unknown format", "foo: 1\n", "unrecognised configuration", 0},
		{"route error with position", "routes:\n  - id: r1\n    uri: /a\n    upstream_id: missing\n  - id: r2\n    uri: 5\n    upstream_id: missing\n#END\n",
			`route r2: invalid configuration: property "uri" validation failed`, 6},
		{"missing reference", "routes:\n  - id: r1\n    uri: /a\n    upstream_id: missing\n#END\n", "upstream missing does not exist", 4},
		{"duplicate id", "upstreams:\n  - {id: a, nodes: {}}\n  - {id: a, nodes: {}}\n#END\n", `duplicate upstream id "a"`, 3},
		{"unsupported list", "consumers: [{username: a}]\nroutes: []\n#END\n", "consumers are not supported", 1},
		{"env unset", "routes: [{id: a, uri: '${{EDGEWAY_TEST_UNSET}}', upstream_id: x}]\n#END\n", "EDGEWAY_TEST_UNSET is not set", 0},
		{"ingress unknown field", "apiVersion: apisix.apache.org/v2\nkind: ApisixUpstream\nmetadata: {name: a}\nspec:\n  externalNodes: [{name: a.b}]\n  retrys: 2\n",
			`unknown field "retrys"`, 6},
		{"ingress backends", "apiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata: {name: r}\nspec:\n  http:\n  - name: a\n    match: {paths: [/a]}\n    backends: [{serviceName: s, servicePort: 80}]\n",
			"backends is not supported: Kubernetes Service backends need a cluster", 8},
		{"ingress missing upstream", "apiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata: {name: r}\nspec:\n  http:\n  - name: a\n    match: {paths: [/a]}\n    upstreams: [{name: nope}]\n",
			"ApisixUpstream default/nope is not in this file", 8},
		{"ingress other kind", "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: i}\n", "Ingress is not supported", 2},
		{"kong bad entity", "_format_version: \"3.0\"\nservices:\n  - name: s\n    host: h\n  - name: t\n    port: 70000\n    host: h\n",
			"t: schema violation (port: value should be between 0 and 65535)", 6},
		{"kong duplicate name", "_format_version: \"3.0\"\nupstreams:\n  - name: u\n  - name: u\n", "u: duplicate name (also at line 3)", 4},
		{"kong missing service", "_format_version: \"3.0\"\nroutes:\n  - name: r\n    paths: [/a]\n    service: nope\n", `service "nope" is not in this file`, 5},
		{"kong regex path", "_format_version: \"3.0\"\nroutes:\n  - paths: ['~/a']\n", "regex paths are not supported", 3},
		{"kong version", "_format_version: \"1.1\"\n", `_format_version "1.1" is not supported`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Load([]byte(tt.src))
			if r.OK() || len(r.KVs) != 0 {
				t.Fatalf("accepted: %+v", r)
			}
			var hit *Problem
			for i, p := range r.Problems {
				if strings.Contains(p.Msg, tt.want) {
					hit = &r.Problems[i]
				}
			}
			if hit == nil {
				t.Fatalf("problems %v, want one containing %q", r.Problems, tt.want)
			}
			if tt.line > 0 && hit.Line != tt.line {
				t.Fatalf("problem %q at line %d, want %d", hit.Msg, hit.Line, tt.line)
			}
		})
	}
}

func TestLoadEnvSubstitution(t *testing.T) {
	t.Setenv("EDGEWAY_TEST_PORT", "9999")
	r := Load([]byte("upstreams:\n  - id: a\n    nodes: {\"127.0.0.1:${{EDGEWAY_TEST_PORT}}\": 1, \"127.0.0.1:${{EDGEWAY_NOPE:=81}}\": 1}\n#END\n"))
	if !r.OK() {
		t.Fatal(r.Err())
	}
	if v := string(r.KVs[0].Value); !strings.Contains(v, "127.0.0.1:9999") || !strings.Contains(v, "127.0.0.1:81") {
		t.Fatalf("substituted %s", v)
	}
}

// FuzzLoadFile feeds arbitrary files to the loaders. None may panic, and a
// file that loads must give values the configuration manager accepts
// whole (Load's promise: all or nothing, validated as the Admin APIs do).
func FuzzLoadFile(f *testing.F) {
	for _, name := range []string{"apisix.yaml", "apisix.json", "ingress.yaml", "kong.yaml"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("routes: [{id: 1, uri: /a, upstream: {nodes: {\"a:1\": 1}}}]\n#END\n"))
	f.Add([]byte("_format_version: \"3.0\"\nupstreams: [{name: u, targets: [{target: a}]}]\nroutes: [{paths: [/x]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := Load(data)
		if !r.OK() {
			if len(r.KVs) != 0 {
				t.Fatal("a file with errors must yield no configuration")
			}
			return
		}
		for _, kv := range r.KVs {
			kind, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, "/apisix/"), "/")
			var err error
			switch core.Kind(kind) {
			case core.KindRoutes:
				_, err = core.ParseRoute(kv.Value)
			case core.KindUpstreams:
				_, err = core.ParseUpstream(kv.Value)
			case core.KindServices:
				_, err = core.ParseService(kv.Value)
			case core.KindKongServices, core.KindKongRoutes, core.KindKongUpstreams, core.KindKongTargets:
				_, err = core.ParseKong(core.Kind(kind), kv.Value)
			}
			if err != nil {
				t.Fatalf("loaded %s does not parse: %v\n%s", kv.Key, err, kv.Value)
			}
		}
	})
}
