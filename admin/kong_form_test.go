package admin

import (
	"net/url"
	"strings"
	"testing"

	"github.com/edgeway/gateway/core"
	"github.com/goccy/go-json"
)

// queryPairs splits a form body into its pairs, in order.
func queryPairs(s string) [][2]string {
	var out [][2]string
	for _, part := range strings.Split(s, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		out = append(out, [2]string{k, v})
	}
	return out
}

func TestDecodeKongForm(t *testing.T) {
	tests := []struct{ in, want string }{
		{"name=example_upstream", `{"name":"example_upstream"}`},
		{"paths[]=/a&paths[]=/b", `{"paths":["/a","/b"]}`},
		{"paths=/a&paths=/b", `{"paths":["/a","/b"]}`},
		{"paths[2]=/b&paths[1]=/a", `{"paths":["/a","/b"]}`},
		{"paths.1=/a", `{"paths":["/a"]}`},
		{"healthchecks.active.http_path=/status", `{"healthchecks":{"active":{"http_path":"/status"}}}`},
		{"healthchecks[active][healthy][interval]=5&healthchecks.active.unhealthy.interval=3",
			`{"healthchecks":{"active":{"healthy":{"interval":"5"},"unhealthy":{"interval":"3"}}}}`},
		{"service.id=abc", `{"service":{"id":"abc"}}`},
		{"headers[x-a][]=1&headers[x-a][]=2", `{"headers":{"x-a":["1","2"]}}`},
		{"test[foo.bar]=1", `{"test":{"foo.bar":"1"}}`},
		{".weird=1&trailing.=2", `{".weird":"1","trailing.":"2"}`},
		{"name=", `{"name":""}`},
	}
	for _, tt := range tests {
		if got := formJSON(queryPairs(tt.in)); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.in, got, tt.want)
		}
	}
	if _, err := DecodeKongForm(queryPairs("paths[100000]=/a")); err == nil {
		t.Error("a huge index must be refused")
	}
	if _, err := DecodeKongForm(queryPairs(strings.Repeat("a.", 40) + "b=1")); err == nil {
		t.Error("deep nesting must be refused")
	}
}

func TestInferKongForm(t *testing.T) {
	obj, err := DecodeKongForm(queryPairs("name=u&slots=100&healthchecks.active.healthy.interval=5" +
		"&healthchecks.active.healthy.http_statuses=200&healthchecks.active.https_verify_certificate=false&hash_on_cookie_path="))
	if err != nil {
		t.Fatal(err)
	}
	core.InferKong(core.KindKongUpstreams, obj)
	b, _ := json.Marshal(obj)
	want := `{"hash_on_cookie_path":null,"healthchecks":{"active":{"healthy":{"http_statuses":[200],"interval":5},"https_verify_certificate":false}},"name":"u","slots":100}`
	if string(b) != want {
		t.Fatalf("inferred\n got %s\nwant %s", b, want)
	}
	obj, _ = DecodeKongForm(queryPairs("paths[]=/mock&name=example_route&strip_path=false&methods=GET"))
	core.InferKong(core.KindKongRoutes, obj)
	b, _ = json.Marshal(obj)
	if want := `{"methods":["GET"],"name":"example_route","paths":["/mock"],"strip_path":false}`; string(b) != want {
		t.Fatalf("route\n got %s\nwant %s", b, want)
	}
}

// FuzzKongForm feeds arbitrary form bodies through the decoder, the type
// inference and the schema of every Kong kind: none may panic, and what
// decodes must encode as JSON.
func FuzzKongForm(f *testing.F) {
	for _, s := range []string{
		"name=example_upstream",
		"target=mockbin.org:80&weight=0",
		"paths[]=/mock&name=example_route",
		"url=http://mockbin.org&name=example_service",
		"healthchecks[active][healthy][interval]=5&healthchecks.active.http_path=/status",
		"paths[1]=/a&paths[]=/b&paths=/c",
		"a[b][c][]=1&a[b][c][3]=2&a.b.c=3",
		"service.name=s&hosts=example.com&methods[]=GET",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		obj, err := DecodeKongForm(queryPairs(body))
		if err != nil {
			return
		}
		if _, err := json.Marshal(obj); err != nil {
			t.Fatalf("decoded form does not encode: %v", err)
		}
		for _, kind := range []core.Kind{core.KindKongServices, core.KindKongRoutes, core.KindKongUpstreams, core.KindKongTargets} {
			o := copyJSON(obj).(map[string]any)
			core.InferKong(kind, o)
			if core.ApplyKongShorthands(kind, o) != nil {
				continue
			}
			if out, kerr := core.NormalizeKong(kind, o); kerr == nil {
				core.KongUnsupported(kind, out)
				if _, err := json.Marshal(out); err != nil {
					t.Fatalf("normalized %s does not encode: %v", kind, err)
				}
			}
		}
	})
}

// formJSON returns the decoded form as JSON.
func formJSON(pairs [][2]string) string {
	v, err := DecodeKongForm(pairs)
	if err != nil {
		return "error: " + err.Error()
	}
	b, _ := json.Marshal(v)
	return string(b)
}
