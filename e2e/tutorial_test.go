package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestSeedTutorial replays APISIX 3.4's load-balancing tutorial with local
// origins: a route over two nodes, pass_host node, then 100 requests that
// must split evenly.
func TestSeedTutorial(t *testing.T) {
	httpbin := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"headers":{"Host":%q,"X-Forwarded-Host":%q},"origin":"httpbin"}`,
			r.Host, r.Header.Get("X-Forwarded-Host"))
	})
	mock := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"headers":{"host":%q},"origin":"mock"}`, r.Host)
	})
	g := startGateway(t, "")
	body := fmt.Sprintf(`{
  "id": "getting-started-headers",
  "uri": "/headers",
  "upstream" : {
    "type": "roundrobin",
    "nodes": {
      "%s": 1,
      "%s": 1
    },
    "pass_host": "node",
    "scheme": "http"
  }
}`, httpbin.Addr, mock.Addr)
	r := g.mustDo("PUT", "/apisix/admin/routes", body, 201)
	v := r.JSON(t)
	if v["key"] != "/apisix/routes/getting-started-headers" {
		t.Fatalf("key = %v", v["key"])
	}

	hc := 0
	for i := 0; i < 100; i++ {
		code, body, _ := g.get("/headers", "Host", "localhost")
		if code != 200 {
			t.Fatalf("request %d: status %d body %q", i, code, body)
		}
		if strings.Contains(body, "httpbin") {
			hc++
			if !strings.Contains(body, `"Host":"`+httpbin.Addr+`"`) {
				t.Fatalf("pass_host node: upstream saw %s", body)
			}
			if !strings.Contains(body, `"X-Forwarded-Host":"localhost"`) {
				t.Fatalf("X-Forwarded-Host: upstream saw %s", body)
			}
		}
	}
	if hc != 50 {
		t.Fatalf("split %d, %d; want 50, 50", hc, 100-hc)
	}
}
