package core

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestFailOpenWhenAllDown: nodes marked down are skipped, and when every
// node is down all are used, as APISIX.
func TestFailOpenWhenAllDown(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	for _, typ := range []string{"roundrobin", "chash", "least_conn", "ewma"} {
		t.Run(typ, func(t *testing.T) {
			cfg := NewConfig()
			u := upstreamOf(a.port, b.port)
			u.Type, u.Key = typ, "remote_addr"
			cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/x"}, Status: 1, Upstream: u}
			g := startGateway(t, cfg)
			nodes := g.proxy.Snapshot().Entry("/apisix/routes/1").Upstream.Nodes
			nodes[0].State.SetDown(true)
			for i := 0; i < 10; i++ {
				if code, body, _ := get(t, "http://"+g.addr+"/x", nil); code != 200 || body != fmt.Sprint(b.port) {
					t.Fatalf("node 0 down: %d %q", code, body)
				}
			}
			nodes[1].State.SetDown(true)
			if code, _, _ := get(t, "http://"+g.addr+"/x", nil); code != 200 {
				t.Fatalf("all down: %d, want 200 (fail open)", code)
			}
		})
	}
}

// TestRetryOnStatuses: an idempotent request answered 503 goes on to the
// next node; a POST does not; the final answer of a retried status is the
// upstream's own response with the chain.
func TestRetryOnStatuses(t *testing.T) {
	busy := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(503)
		fmt.Fprint(w, "busy")
	})
	ok := startOrigin(t, nil)
	cfg := NewConfig()
	u := upstreamOf(busy.port, ok.port)
	u.RetryOnStatuses = []int{503}
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/x"}, Status: 1, Upstream: u}
	// Two node addresses for the same busy origin.
	both := upstreamOf(busy.port)
	both.Nodes = append(both.Nodes, Node{Host: "localhost", Port: busy.port, Weight: 1})
	both.RetryOnStatuses = []int{503}
	cfg.Routes["2"] = &Route{ID: "2", URIs: []string{"/y"}, Status: 1, Upstream: both}
	g := startGateway(t, cfg)
	for i := 0; i < 4; i++ {
		code, body, h := get(t, "http://"+g.addr+"/x", nil)
		if code != 200 || body != fmt.Sprint(ok.port) || h.Get("X-APISIX-Upstream-Status") != "" {
			t.Fatalf("GET: %d %q %q", code, body, h.Get("X-APISIX-Upstream-Status"))
		}
	}
	posts := 0
	for i := 0; i < 4; i++ {
		resp, err := http.Post("http://"+g.addr+"/x", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 503 {
			posts++
			if resp.Header.Get("X-APISIX-Upstream-Status") != "503" {
				t.Fatalf("POST 503 chain %q", resp.Header.Get("X-APISIX-Upstream-Status"))
			}
		}
	}
	if posts != 2 {
		t.Fatalf("%d of 4 POSTs got the 503, want 2 (never retried)", posts)
	}
	code, body, h := get(t, "http://"+g.addr+"/y", nil)
	if code != 503 || body != "busy" || h.Get("X-APISIX-Upstream-Status") != "503, 503" {
		t.Fatalf("every node 503: %d %q %q", code, body, h.Get("X-APISIX-Upstream-Status"))
	}
}
