package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTemplates checks the rendered configurations carry the settings the
// comparison depends on.
func TestTemplates(t *testing.T) {
	d := tmplData{Dir: t.TempDir(), Listen: "127.0.0.1:1", Origins: []string{"127.0.0.1:2", "127.0.0.1:3"}}
	want := map[string][]string{
		"nginx.conf.tmpl": {"worker_processes 1;", "keepalive 320;", "proxy_http_version 1.1;",
			`proxy_set_header Connection "";`, "X-Real-IP $remote_addr", "X-Forwarded-For $proxy_add_x_forwarded_for",
			"X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port", "server 127.0.0.1:2;", "server 127.0.0.1:3;",
			"listen 127.0.0.1:1", "access_log off;"},
		"haproxy.cfg.tmpl": {"nbthread 1", "http-reuse always", "option http-keep-alive", "balance roundrobin",
			"option forwardfor", "X-Real-IP", "X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Port",
			"server s1 127.0.0.1:2", "server s2 127.0.0.1:3", "bind 127.0.0.1:1"},
		"gateway.json.tmpl": {`"type": "roundrobin"`, `"127.0.0.1:2": 1`, `"127.0.0.1:3": 1`, `"uri": "/hello"`},
	}
	for name, needles := range want {
		path, err := render(name, name+".out", d)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(path)
		for _, n := range needles {
			if !strings.Contains(string(b), n) {
				t.Errorf("%s lacks %q", name, n)
			}
		}
	}
}

func TestReplaceSection(t *testing.T) {
	sums := []summary{
		{name: "gateway", rps: 40000, p99: 3 * time.Millisecond, cpuPerReq: 20},
		{name: "nginx", rps: 36000, p99: 4 * time.Millisecond, cpuPerReq: 25},
		{name: "haproxy", rps: 35000, p99: 5 * time.Millisecond, cpuPerReq: 24},
	}
	doc := "# Performance\n\n## Kept\n\ntext\n"
	sec := section(sums, "peers.png")
	once := replaceSection(doc, sec)
	if !strings.HasPrefix(once, doc[:len(doc)-1]) || !strings.Contains(once, "| gateway |") {
		t.Fatalf("appended section wrong:\n%s", once)
	}
	twice := replaceSection(once+"\n## After\n", section(sums[:2], ""))
	if strings.Count(twice, beginMarker) != 1 || strings.Contains(twice, "| haproxy |") || !strings.Contains(twice, "## After") ||
		!strings.Contains(twice, "## Kept") {
		t.Fatalf("replaced section wrong:\n%s", twice)
	}
	if !strings.Contains(sec, "0.80× (met)") { // CPU: 20/25
		t.Fatalf("ratio missing:\n%s", sec)
	}
}

func TestChart(t *testing.T) {
	sums := []summary{{name: "gateway", rps: 40000, cpuPerReq: 20}, {name: "nginx", rps: 36000, cpuPerReq: 25}}
	path := filepath.Join(t.TempDir(), "c.png")
	if err := writeChart(path, sums); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("not a PNG (%d bytes)", len(b))
	}
}
