package core

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestScanHeaderNames(t *testing.T) {
	raw := "Host: a\r\nx-forwarded-for: 1.2.3.4\r\nKEEP-ALIVE: 5\r\nTe : trailers\r\n" +
		"X-Note: Connection: close\r\n\tFolded: continuation\r\nX-TE: no\r\n\r\n"
	got := scanHeaderNames([]byte(raw))
	want := hasXForwardedFor | hasKeepAlive | hasTE
	if got != want {
		t.Fatalf("scanHeaderNames = %014b, want %014b", got, want)
	}
	if got := scanHeaderNames(nil); got != allHeaderNames {
		t.Fatalf("an empty raw header reported %014b, want every name", got)
	}
	for _, n := range []string{"Connection", "keep-alive", "Proxy-Connection", "te", "Trailer", "upgrade",
		"Expect", "transfer-encoding", "forwarded", "X-FORWARDED-FOR", "x-real-ip", "X-Forwarded-Host",
		"x-forwarded-port", "X-Forwarded-Proto"} {
		if nameBit([]byte(n)) == 0 {
			t.Errorf("nameBit(%q) = 0", n)
		}
	}
	for _, n := range []string{"", "Connections", "X-Request-Id", "TEE", "Upgrades", "X-Forwarded-Prot"} {
		if b := nameBit([]byte(n)); b != 0 {
			t.Errorf("nameBit(%q) = %b, want 0", n, b)
		}
	}
}

// TestClientForwardedHeadersReplacedInAnyCase sends the forwarded and
// hop-by-hop fields in lower case: the upstream gets one of each forwarded
// field, the gateway's, and none of the hop-by-hop ones; the upstream's own
// hop-by-hop fields, in any case, do not reach the client.
func TestClientForwardedHeadersReplacedInAnyCase(t *testing.T) {
	a := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["keep-alive"] = []string{"timeout=5"}
		h["proxy-connection"] = []string{"keep-alive"}
		h["connection"] = []string{"x-secret"}
		h["x-secret"] = []string{"internal"}
		h["upgrade"] = []string{"h2c"}
		h["X-Kept"] = []string{"yes"}
		io.WriteString(w, "ok")
	})
	cfg := NewConfig()
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/*"}, Status: 1, Upstream: upstreamOf(a.port)}
	g := startGateway(t, cfg)

	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /x HTTP/1.1\r\nHost: example.com\r\n"+
		"x-real-ip: 6.6.6.6\r\nx-forwarded-host: evil.example\r\nx-forwarded-proto: https\r\n"+
		"x-forwarded-port: 1\r\nx-forwarded-for: 9.9.9.9\r\nX-Forwarded-For: 8.8.8.8\r\n"+
		"forwarded: for=6.6.6.6\r\nkeep-alive: 300\r\nproxy-connection: keep-alive\r\nte: trailers\r\n"+
		"upgrade: websocket\r\nconnection: x-hop\r\nx-hop: 1\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	r := a.lastReq.Load()
	want := map[string][]string{
		"X-Real-Ip":         {"127.0.0.1"},
		"X-Forwarded-Host":  {"example.com"},
		"X-Forwarded-Proto": {"http"},
		"X-Forwarded-Port":  {strings.Split(g.addr, ":")[1]},
		"X-Forwarded-For":   {"9.9.9.9, 8.8.8.8, 127.0.0.1"},
	}
	for k, v := range want {
		if !slices.Equal(r.Header[k], v) {
			t.Errorf("upstream got %s %q, want %q", k, r.Header[k], v)
		}
	}
	for _, k := range []string{"Forwarded", "Keep-Alive", "Proxy-Connection", "Te", "Upgrade", "X-Hop"} {
		if v, ok := r.Header[k]; ok {
			t.Errorf("upstream got hop-by-hop %s %q", k, v)
		}
	}
	for _, k := range []string{"Keep-Alive", "Proxy-Connection", "X-Secret", "Upgrade"} {
		if v, ok := resp.Header[k]; ok {
			t.Errorf("client got the upstream's hop-by-hop %s %q", k, v)
		}
	}
	if resp.Header.Get("X-Kept") != "yes" {
		t.Errorf("client lost X-Kept: %v", resp.Header)
	}
}
