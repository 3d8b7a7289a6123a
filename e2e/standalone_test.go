package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeFile writes a configuration file atomically (rename), as editors
// and deploy tools do.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitBody polls a proxied path until its body starts with prefix.
func (g *gateway) waitBody(path, prefix string) {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		_, body, _ = g.get(path)
		if strings.HasPrefix(body, prefix) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	g.t.Fatalf("GET %s: body %q, want it to start with %q\n%s", path, body, prefix, g.logs())
}

// metric returns the value of a metric line from /metrics, or -1.
func (g *gateway) metric(name string) float64 {
	g.t.Helper()
	r := g.do("GET", "/metrics", "")
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// standaloneFormats holds one configuration per file format: {port} is
// replaced by the origin's port and {name} by a word the origin answers
// with. broken is an edit that must not be applied.
var standaloneFormats = []struct {
	name, file, content, broken, brokenMsg string
}{
	{
		name: "apisix-yaml", file: "apisix.yaml",
		content:   "routes:\n  - id: r\n    uri: /{name}\n    upstream:\n      nodes:\n        \"127.0.0.1:{port}\": 1\n#END\n",
		broken:    "routes:\n  - id: r\n    uri: /x\n    upstream:\n      nodes:\n        \"127.0.0.1:1\": -1\n#END\n",
		brokenMsg: ":6:",
	},
	{
		name: "apisix-json", file: "apisix.json",
		content:   `{"routes":[{"id":"r","uri":"/{name}","upstream":{"nodes":{"127.0.0.1:{port}":1}}}]}`,
		broken:    `{"routes":[{"id":"r","uri":"/x","upstream":{"nodes":{"127.0.0.1:1":1}}},]}`,
		brokenMsg: "invalid JSON",
	},
	{
		name: "ingress", file: "ingress.yaml",
		content: "apiVersion: apisix.apache.org/v2\nkind: ApisixUpstream\nmetadata: {name: u}\nspec:\n  externalNodes:\n  - {type: Domain, name: 127.0.0.1, port: {port}}\n" +
			"---\napiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata: {name: r}\nspec:\n  http:\n  - name: rule\n    match: {paths: [/{name}]}\n    upstreams: [{name: u}]\n",
		broken:    "apiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata: {name: r}\nspec:\n  http:\n  - name: rule\n    match: {paths: [/x]}\n    upstreams: [{name: missing}]\n",
		brokenMsg: ":8:",
	},
	{
		name: "kong", file: "kong.yaml",
		content:   "_format_version: \"3.0\"\nservices:\n  - name: s\n    url: http://127.0.0.1:{port}\n    routes:\n      - name: r\n        paths: [/{name}]\n        strip_path: false\n",
		broken:    "_format_version: \"3.0\"\nservices:\n  - name: s\n    url: http://127.0.0.1:1\n    routes:\n      - name: r\n        paths: [\"~/x\"]\n",
		brokenMsg: ":7:",
	},
}

func fill(tpl string, o *origin, name string) string {
	return strings.NewReplacer("{port}", port(o), "{name}", name).Replace(tpl)
}

// TestStandaloneFormats serves each format, re-applies a change, and keeps
// the last good configuration on a broken edit (logged with its position,
// counted in the metrics).
func TestStandaloneFormats(t *testing.T) {
	for _, f := range standaloneFormats {
		t.Run(f.name, func(t *testing.T) {
			first := startOrigin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "first") })
			second := startOrigin(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "second") })
			file := filepath.Join(t.TempDir(), f.file)
			writeFile(t, file, fill(f.content, first, "one"))
			g := startGateway(t, "", "-standalone", file)
			if code, body, _ := g.get("/one"); code != 200 || body != "first" {
				t.Fatalf("initial file: %d %q\n%s", code, body, g.logs())
			}

			// The Admin API reads the file's configuration and refuses writes.
			if strings.HasPrefix(f.name, "kong") {
				if r := g.kong("GET", "/services/s", "", ""); r.Status != 200 {
					t.Fatalf("Kong GET: %d %s", r.Status, r.Body)
				}
				if r := g.kong("POST", "/services", form, "name=x&host=h"); r.Status != 405 || !strings.Contains(string(r.Body), "standalone") {
					t.Fatalf("Kong write: %d %s", r.Status, r.Body)
				}
			} else {
				if r := g.do("GET", "/apisix/admin/routes", ""); r.Status != 200 || r.JSON(t)["total"].(float64) != 1 {
					t.Fatalf("APISIX GET: %d %s", r.Status, r.Body)
				}
				if r := g.do("PUT", "/apisix/admin/routes/x", `{"uri":"/x","upstream_id":"u"}`); r.Status != 405 || !strings.Contains(string(r.Body), "standalone") {
					t.Fatalf("APISIX write: %d %s", r.Status, r.Body)
				}
			}

			// A change is applied.
			writeFile(t, file, fill(f.content, second, "two"))
			g.waitBody("/two", "second")
			if code, _, _ := g.get("/one"); code != 404 {
				t.Fatalf("the old route is still served: %d", code)
			}
			failures := g.metric(`gateway_config_file_reloads_total{result="failure"}`)

			// A broken edit keeps the last good configuration.
			writeFile(t, file, f.broken)
			deadline := time.Now().Add(10 * time.Second)
			for !strings.Contains(g.logs(), "keeping the last good configuration") && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			logs := g.logs()
			if !strings.Contains(logs, file+f.brokenMsg) && !strings.Contains(logs, f.brokenMsg) {
				t.Fatalf("the problem is not logged with %q:\n%s", f.brokenMsg, logs)
			}
			if !strings.Contains(logs, "keeping the last good configuration") {
				t.Fatalf("no log line about keeping the configuration:\n%s", logs)
			}
			if code, body, _ := g.get("/two"); code != 200 || body != "second" {
				t.Fatalf("after a broken edit: %d %q", code, body)
			}
			if got := g.metric(`gateway_config_file_reloads_total{result="failure"}`); got != failures+1 {
				t.Fatalf("failures counted %v, want %v", got, failures+1)
			}
			if got := g.metric("gateway_config_file_last_reload_successful"); got != 0 {
				t.Fatalf("last reload successful = %v", got)
			}
		})
	}
}

// tlsOrigin is an HTTPS origin on 127.0.0.1 (the seed's upstreams are
// https://httpbin.org and https://mock.api7.ai).
func tlsOrigin(t *testing.T, name string) (*httptest.Server, *int) {
	hits := new(int)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*hits++
		fmt.Fprintf(w, `{"headers":{"Host":%q},"origin":%q}`, r.Host, name)
	}))
	s.Config.SetKeepAlivesEnabled(true)
	s.StartTLS()
	t.Cleanup(s.Close)
	return s, hits
}

// TestStandaloneIngressSeedSplit serves the APISIX Ingress tutorial's
// manifest as written, with the two external domains replaced by local
// HTTPS origins: the rule's two upstreams split the traffic by their
// weights (100 each by default), and passHost node sends each its own
// Host.
func TestStandaloneIngressSeedSplit(t *testing.T) {
	httpbin, _ := tlsOrigin(t, "httpbin")
	mock, _ := tlsOrigin(t, "mock")
	hb := strings.TrimPrefix(httpbin.URL, "https://127.0.0.1:")
	mk := strings.TrimPrefix(mock.URL, "https://127.0.0.1:")
	manifest := `apiVersion: apisix.apache.org/v2
kind: ApisixUpstream
metadata:
  name: httpbin-external-domain
spec:
  scheme: https
  passHost: node
  externalNodes:
  - type: Domain
    name: 127.0.0.1
    weight: 1
    port: ` + hb + `
---
apiVersion: apisix.apache.org/v2
kind: ApisixUpstream
metadata:
  name: mockapi7-external-domain
spec:
  scheme: https
  passHost: node
  externalNodes:
  - type: Domain
    name: 127.0.0.1
    weight: 1
    port: ` + mk + `
---
apiVersion: apisix.apache.org/v2
kind: ApisixRoute
metadata:
  name: lb-route
spec:
  ingressClassName: apisix
  http:
    - name: lb-route
      match:
        paths:
          - /headers
      upstreams:
      - name: httpbin-external-domain
      - name: mockapi7-external-domain
`
	file := filepath.Join(t.TempDir(), "lb-route.yaml")
	writeFile(t, file, manifest)
	g := startGateway(t, "", "-standalone", file)
	counts := map[string]int{}
	for i := 0; i < 200; i++ {
		code, body, _ := g.get("/headers")
		if code != 200 {
			t.Fatalf("request %d: %d %q\n%s", i, code, body, g.logs())
		}
		switch {
		case strings.Contains(body, `"origin":"httpbin"`):
			counts["httpbin"]++
			if !strings.Contains(body, `"Host":"127.0.0.1:`+hb+`"`) {
				t.Fatalf("passHost node: %s", body)
			}
		case strings.Contains(body, `"origin":"mock"`):
			counts["mock"]++
		}
	}
	if counts["httpbin"] != 100 || counts["mock"] != 100 {
		t.Fatalf("200 requests split %v, want 100 and 100 (weights 100:100)", counts)
	}

	// Weights from the manifest: 90 and 10.
	weighted := strings.Replace(manifest, "      - name: httpbin-external-domain\n      - name: mockapi7-external-domain\n",
		"      - name: httpbin-external-domain\n        weight: 90\n      - name: mockapi7-external-domain\n        weight: 10\n", 1)
	writeFile(t, file, weighted)
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(g.logs(), "revision 3") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	counts = map[string]int{}
	for i := 0; i < 200; i++ {
		_, body, _ := g.get("/headers")
		if strings.Contains(body, `"origin":"httpbin"`) {
			counts["httpbin"]++
		} else {
			counts["mock"]++
		}
	}
	if counts["httpbin"] != 180 || counts["mock"] != 20 {
		t.Fatalf("200 requests split %v, want 180 and 20 (weights 90:10)\n%s", counts, g.logs())
	}
}

// TestStandaloneRefusesABrokenFileAtStart: the gateway starts only with a
// good configuration.
func TestStandaloneRefusesABrokenFileAtStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "apisix.yaml")
	writeFile(t, file, "routes:\n  - id: r\n    uri: /x\n")
	out, err := runBinary(t, "-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"-admin-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)), "-standalone", file)
	if err == nil || !strings.Contains(out, "#END") {
		t.Fatalf("started with an incomplete file (err %v):\n%s", err, out)
	}
}

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	good := map[string]string{
		"apisix.yaml":  "upstreams:\n  - id: u\n    nodes: {\"127.0.0.1:80\": 1}\nroutes:\n  - id: r\n    uri: /x\n    upstream_id: u\n#END\n",
		"apisix.json":  `{"routes":[{"id":"r","uri":"/x","upstream":{"nodes":{"127.0.0.1:80":1}}}]}`,
		"ingress.yaml": "apiVersion: apisix.apache.org/v2\nkind: ApisixUpstream\nmetadata: {name: u}\nspec:\n  externalNodes: [{name: a.example}]\n",
		"kong.yaml":    "_format_version: \"3.0\"\nupstreams:\n  - name: u\n    targets: [{target: 10.0.0.1}]\n",
	}
	for name, content := range good {
		file := filepath.Join(dir, name)
		writeFile(t, file, content)
		out, err := runBinary(t, "validate", file)
		if err != nil || !strings.Contains(out, file+": OK (") {
			t.Errorf("%s: err %v\n%s", name, err, out)
		}
	}
	broken := []struct{ name, content, want string }{
		{"no-end.yaml", "routes: []\n", "does not end with a #END line"},
		{"bad-route.yaml", "routes:\n  - id: r\n    uri: /x\n    upstream_id: nope\n#END\n", "bad-route.yaml:4:18: route r: upstream nope does not exist"},
		{"syntax.yaml", "routes:\n  - id: [\n#END\n", "syntax.yaml:2:"},
		{"kong.yaml", "_format_version: \"3.0\"\nservices:\n  - name: s\n    host: h\n    retries: -1\n", "kong.yaml:5:14: s: schema violation (retries: value should be between 0 and 32767)"},
		{"ingress.yaml", "apiVersion: apisix.apache.org/v2\nkind: ApisixRoute\nmetadata: {name: r}\nspec:\n  http:\n  - name: a\n    match: {paths: [/a]}\n    backends: [{serviceName: s}]\n",
			"ingress.yaml:8:15: backends is not supported"},
	}
	for _, b := range broken {
		file := filepath.Join(dir, b.name)
		writeFile(t, file, b.content)
		out, err := runBinary(t, "validate", file)
		var ee *exec.ExitError
		if err == nil || !asExit(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%s: exit %v, want status 1\n%s", b.name, err, out)
		}
		if !strings.Contains(out, b.want) {
			t.Errorf("%s: output lacks %q:\n%s", b.name, b.want, out)
		}
	}
	if out, err := runBinary(t, "validate", filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(out, "no such file") {
		t.Errorf("missing file: %v\n%s", err, out)
	}
}

func asExit(err error, target **exec.ExitError) bool {
	ee, ok := err.(*exec.ExitError)
	if ok {
		*target = ee
	}
	return ok
}
