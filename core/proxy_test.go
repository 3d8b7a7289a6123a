package core

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// origin is a real HTTP server on 127.0.0.1 that answers with its port and
// records what it received.
type origin struct {
	ln      net.Listener
	port    int
	hits    atomic.Int64
	lastReq atomic.Pointer[http.Request]
	handler http.HandlerFunc
}

func startOrigin(t *testing.T, h http.HandlerFunc) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{ln: ln, port: ln.Addr().(*net.TCPAddr).Port, handler: h}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.hits.Add(1)
		o.lastReq.Store(r)
		if o.handler != nil {
			o.handler(w, r)
			return
		}
		fmt.Fprintf(w, "%d", o.port)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return o
}

// testGateway runs the proxy handler on a real listener.
type testGateway struct {
	rt    *Runtime
	proxy *Proxy
	addr  string
}

func startGateway(t *testing.T, cfg *Config) *testGateway {
	t.Helper()
	return startGatewayWith(t, cfg, nil)
}

// startGatewayWith is startGateway with setup (when not nil) applied to
// the runtime before the first compile.
func startGatewayWith(t *testing.T, cfg *Config, setup func(*Runtime)) *testGateway {
	t.Helper()
	g := &testGateway{rt: NewRuntime(), proxy: NewProxy()}
	if setup != nil {
		setup(g.rt)
	}
	g.proxy.Logf = t.Logf
	g.proxy.Publish(g.rt.Compile(cfg, nil))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g.addr = ln.Addr().String()
	srv := NewServer(g.proxy.Handler)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Shutdown(); g.rt.Close() })
	return g
}

func get(t *testing.T, url string, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func upstreamOf(ports ...int) *Upstream {
	u := &Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass"}
	for _, p := range ports {
		u.Nodes = append(u.Nodes, Node{Host: "127.0.0.1", Port: p, Weight: 1})
	}
	return u
}

func TestProxyRoundRobinEqualWeights(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/hello"}, Status: 1, Upstream: upstreamOf(a.port, b.port)}
	g := startGateway(t, cfg)
	counts := map[string]int{}
	for i := 0; i < 12; i++ {
		code, body, _ := get(t, "http://"+g.addr+"/hello", nil)
		if code != 200 {
			t.Fatalf("status %d body %q", code, body)
		}
		counts[body]++
	}
	if counts[fmt.Sprint(a.port)] != 6 || counts[fmt.Sprint(b.port)] != 6 {
		t.Fatalf("want 6/6, got %v", counts)
	}
}

func TestProxyForwardedHeaders(t *testing.T) {
	a := startOrigin(t, nil)
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/*"}, Status: 1, Upstream: upstreamOf(a.port)}
	g := startGateway(t, cfg)
	code, _, _ := get(t, "http://"+g.addr+"/a/../b//c%2Fd?x=1", map[string]string{
		"Host": "localhost", "X-Forwarded-For": "1.2.3.4", "X-Forwarded-Proto": "https",
		"Connection": "keep-alive, X-Drop", "X-Drop": "yes", "X-Keep": "yes",
	})
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	r := a.lastReq.Load()
	check := func(name, want string) {
		t.Helper()
		if got := r.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("X-Forwarded-For", "1.2.3.4, 127.0.0.1")
	check("X-Real-Ip", "127.0.0.1")
	check("X-Forwarded-Proto", "http")
	check("X-Forwarded-Host", "localhost")
	check("X-Forwarded-Port", strings.Split(g.addr, ":")[1])
	check("X-Drop", "")
	check("X-Keep", "yes")
	if r.Host != "localhost" {
		t.Errorf("Host = %q", r.Host)
	}
	if r.RequestURI != "/a/../b//c%2Fd?x=1" {
		t.Errorf("request target %q, want it byte for byte", r.RequestURI)
	}
}

func TestProxyRetryToLiveNode(t *testing.T) {
	a := startOrigin(t, nil)
	dead := deadPort(t)
	cfg := NewConfig()
	u := upstreamOf(dead, a.port)
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/x"}, Status: 1, Upstream: u}
	g := startGateway(t, cfg)
	for i := 0; i < 6; i++ {
		code, body, h := get(t, "http://"+g.addr+"/x", nil)
		if code != 200 || body != fmt.Sprint(a.port) || h.Get("X-APISIX-Upstream-Status") != "" {
			t.Fatalf("try %d: %d %q %v", i, code, body, h)
		}
	}
}

func TestProxyAllDead502(t *testing.T) {
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/x"}, Status: 1, Upstream: upstreamOf(deadPort(t), deadPort(t))}
	g := startGateway(t, cfg)
	code, _, h := get(t, "http://"+g.addr+"/x", nil)
	if code != 502 || h.Get("X-APISIX-Upstream-Status") != "502, 502" {
		t.Fatalf("got %d %q", code, h.Get("X-APISIX-Upstream-Status"))
	}
}

func TestProxyTimeout504(t *testing.T) {
	slow := startOrigin(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(800 * time.Millisecond) })
	cfg := NewConfig()
	u := upstreamOf(slow.port)
	u.Timeout = &Timeout{Connect: time.Second, Send: time.Second, Read: 200 * time.Millisecond}
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/x"}, Status: 1, Upstream: u}
	g := startGateway(t, cfg)
	code, _, h := get(t, "http://"+g.addr+"/x", nil)
	if code != 504 || h.Get("X-APISIX-Upstream-Status") != "504" {
		t.Fatalf("got %d %q", code, h.Get("X-APISIX-Upstream-Status"))
	}
}

func TestProxyLargeAndChunkedBodies(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	a := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Header().Set("Content-Length", fmt.Sprint(len(big)))
			io.WriteString(w, big)
		case "/chunked":
			for i := 0; i < 100; i++ {
				io.WriteString(w, strings.Repeat("y", 1000))
				w.(http.Flusher).Flush()
			}
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %v", len(b), r.TransferEncoding)
		}
	})
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/*"}, Status: 1, Upstream: upstreamOf(a.port)}
	g := startGateway(t, cfg)
	for i := 0; i < 3; i++ {
		code, body, _ := get(t, "http://"+g.addr+"/big", nil)
		if code != 200 || len(body) != len(big) {
			t.Fatalf("big: %d len %d", code, len(body))
		}
		code, body, _ = get(t, "http://"+g.addr+"/chunked", nil)
		if code != 200 || len(body) != 100000 {
			t.Fatalf("chunked: %d len %d", code, len(body))
		}
	}
	// Upload: a large body with Content-Length, and a chunked one.
	resp, err := http.Post("http://"+g.addr+"/echo", "text/plain", strings.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprintf("%d []", len(big)) {
		t.Fatalf("upload: %q", b)
	}
	resp, err = http.Post("http://"+g.addr+"/echo", "text/plain", io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != fmt.Sprintf("%d [chunked]", len(big)) {
		t.Fatalf("chunked upload: %q", b)
	}
}

func deadPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return p
}

var _ = fasthttp.StatusOK
