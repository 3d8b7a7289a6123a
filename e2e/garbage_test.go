package e2e

import (
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestGarbageOnTheProxyPort sends bytes that are not HTTP (a TLS hello, an
// HTTP/2 preface, an SSH banner, random bytes, NULs, a flood of CRLFs) on
// 300 connections at once: each is refused (a 4xx or 5xx, or just closed)
// within the header timeout, the origin sees nothing, and the gateway goes
// on serving.
func TestGarbageOnTheProxyPort(t *testing.T) {
	o := startRawOrigin(t, nil)
	g := startGateway(t, "", "-client-header-timeout", "1s")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)

	rng := rand.New(rand.NewSource(10))
	random := func(n int) string {
		b := make([]byte, n)
		rng.Read(b)
		return string(b)
	}
	payloads := []string{
		"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + random(500), // TLS ClientHello
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00\x00",
		"SSH-2.0-OpenSSH_9.6\r\n",
		strings.Repeat("\x00", 4096),
		strings.Repeat("\r\n", 20000),
		"GET / HTTP/1.1\r\n" + random(3000),
		"GET /" + random(100) + " HTTP/1.1\r\nHost: a\r\n\r\n",
		strings.Repeat("A", 40000),
	}
	for i := 0; i < 30; i++ {
		payloads = append(payloads, random(1+rng.Intn(20000)))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for round := 0; round < 8; round++ {
		for i, p := range payloads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				replies, closed := rawExchange(t, g.proxy, p, 3*time.Second)
				mu.Lock()
				defer mu.Unlock()
				if !closed {
					t.Errorf("payload %d: the connection is still open 3 s later (header timeout 1 s)", i)
				}
				for _, r := range replies {
					if r.Status < 400 && r.Status != 100 {
						t.Errorf("payload %d %s: answered %d", i, short(p), r.Status)
					}
				}
			}()
		}
	}
	wg.Wait()
	if got := o.targets(); len(got) != 0 {
		t.Errorf("garbage reached the origin as %s", short(got))
	}
	for i := 0; i < 10; i++ {
		if code, body, _ := g.get("/after"); code != 200 || body != "GET /after" {
			t.Fatalf("after the garbage: %d %q", code, body)
		}
	}
}
