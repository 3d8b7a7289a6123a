package health

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// rawServer answers every connection with reply (after reading the
// request) or, with reply "", never answers.
func rawServer(t *testing.T, reply string) (string, chan string) {
	t.Helper()
	ln := listen(t)
	reqs := make(chan string, 16)
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go func() {
				buf := make([]byte, 4096)
				n, _ := c.Read(buf)
				select {
				case reqs <- string(buf[:n]):
				default:
				}
				if reply != "" {
					c.Write([]byte(reply))
					c.Close()
				}
			}()
		}
	}()
	return ln.Addr().String(), reqs
}

func TestProbeHTTP(t *testing.T) {
	addr, reqs := rawServer(t, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
	res := Probe(context.Background(), &ProbeSpec{Type: "http", Addr: addr, Path: "/status?x=1", Host: "svc.example",
		Headers: []byte("X-A: 1\r\n"), Timeout: time.Second})
	if res.Err != nil || res.Status != 503 {
		t.Fatalf("result %+v", res)
	}
	req := <-reqs
	for _, want := range []string{"GET /status?x=1 HTTP/1.1\r\n", "\r\nConnection: close\r\n", "\r\nX-A: 1\r\n", "\r\nHost: svc.example\r\n"} {
		if !strings.Contains(req, want) {
			t.Errorf("probe request %q lacks %q", req, want)
		}
	}
}

func TestProbeOutcomes(t *testing.T) {
	refused := func() string {
		ln := listen(t)
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	hung, _ := rawServer(t, "")
	garbage, _ := rawServer(t, "SSH-2.0-OpenSSH\r\n")
	closed, _ := rawServer(t, "HTTP/1.1 2") // closes before the line ends
	cfg := &activeConfig{typ: "http", healthy: newStatusSet([]int{200}), unhealthy: newStatusSet([]int{500})}
	tcp := &activeConfig{typ: "tcp"}
	f := func(c *activeConfig, addr string, want Kind) {
		t.Helper()
		start := time.Now()
		res := Probe(context.Background(), &ProbeSpec{Type: c.typ, Addr: addr, Path: "/", Host: "h", Timeout: 300 * time.Millisecond})
		k, ok := c.classify(res)
		if !ok || k != want {
			t.Errorf("%s: %+v classified %v %v, want %v", addr, res, k, ok, want)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s: probe took %v", addr, d)
		}
	}
	f(cfg, refused, TCPFailure)
	f(cfg, hung, TimeoutFailure)
	f(cfg, garbage, HTTPFailure)
	f(cfg, closed, TCPFailure)
	f(tcp, hung, Success)
	f(tcp, refused, TCPFailure)
}

func TestProbeHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, r.Host)
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	spec := &ProbeSpec{Type: "https", Addr: addr, Path: "/", Host: "example.com", Timeout: time.Second}
	if res := Probe(context.Background(), spec); res.Err != nil || res.Status != 200 {
		t.Fatalf("without verification: %+v", res)
	}
	spec.VerifyCertificate = true
	if res := Probe(context.Background(), spec); res.Err == nil {
		t.Fatalf("verification passed for a self-signed certificate: %+v", res)
	}
}

func TestProbeGivesUpWithContext(t *testing.T) {
	hung, _ := rawServer(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	start := time.Now()
	res := Probe(ctx, &ProbeSpec{Type: "http", Addr: hung, Path: "/", Host: "h", Timeout: 5 * time.Second})
	if res.Err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("result %+v after %v", res, time.Since(start))
	}
}

// TestProbeKeepAlive: with a ConnCache, probes of a target share one
// connection; responses of any framing are read whole; a connection the
// server closed while idle is replaced without a failure.
func TestProbeKeepAlive(t *testing.T) {
	var conns atomic.Int64
	status := atomic.Int32{}
	status.Store(200)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.WriteHeader(int(status.Load()))
			w.Write([]byte("part one "))
			w.(http.Flusher).Flush()
			w.Write([]byte("part two"))
		case "/close":
			w.Header().Set("Connection", "close")
		default:
			w.WriteHeader(int(status.Load()))
			fmt.Fprint(w, "body")
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	var cache ConnCache
	defer cache.Close()
	probe := func(path string) ProbeResult {
		t.Helper()
		return Probe(context.Background(), &ProbeSpec{Type: "http", Addr: addr, Path: path, Host: "h", Timeout: time.Second, Conns: &cache})
	}
	for i, path := range []string{"/", "/chunked", "/", "/chunked", "/"} {
		if i == 2 {
			status.Store(503)
		}
		res := probe(path)
		if res.Err != nil || res.Status != int(status.Load()) {
			t.Fatalf("probe %d of %s: %+v", i, path, res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 keep-alive probes used %d connections", n)
	}
	// The server drops idle connections: the next probe redials at once.
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond)
	if res := probe("/"); res.Err != nil || res.Status != 503 {
		t.Fatalf("after the server closed the idle connection: %+v", res)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections after a redial", n)
	}
	// Connection: close is honoured.
	if res := probe("/close"); res.Err != nil || res.Status != 200 {
		t.Fatalf("/close: %+v", res)
	}
	probe("/")
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections after Connection: close", n)
	}
}

func TestProbeKeepAliveGarbageAndHTTPS(t *testing.T) {
	garbage, _ := rawServer(t, "SSH-2.0-OpenSSH\r\n")
	var cache ConnCache
	defer cache.Close()
	res := Probe(context.Background(), &ProbeSpec{Type: "http", Addr: garbage, Path: "/", Host: "h", Timeout: time.Second, Conns: &cache})
	if res.Err != nil || res.Status != 0 || cache.p.Load() != nil {
		t.Fatalf("garbage: %+v, kept %v", res, cache.p.Load() != nil)
	}
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	var tlsCache ConnCache
	defer tlsCache.Close()
	for i := 0; i < 3; i++ {
		res := Probe(context.Background(), &ProbeSpec{Type: "https", Addr: addr, Path: "/", Host: "example.com", Timeout: time.Second, Conns: &tlsCache})
		if res.Err != nil || res.Status != 200 {
			t.Fatalf("https probe %d: %+v", i, res)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("3 https probes used %d connections", n)
	}
}
