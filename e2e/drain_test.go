package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMUnderLoad sends SIGTERM while keep-alive clients hammer the
// gateway, slow requests and slow streamed responses are in flight and
// idle keep-alive connections are open: the listener stops accepting, the
// idle connections are closed at once, every request already sent
// completes in full, no client gets a failed response, and the process
// exits 0 as soon as the slow requests are done, not at the drain timeout.
func TestSIGTERMUnderLoad(t *testing.T) {
	o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			time.Sleep(2 * time.Second)
			fmt.Fprint(w, "done")
		case "/stream":
			for i := 0; i < 20; i++ {
				fmt.Fprint(w, strings.Repeat("s", 1000))
				w.(http.Flusher).Flush()
				time.Sleep(100 * time.Millisecond)
			}
		default:
			fmt.Fprint(w, "fast")
		}
	})
	g := startGateway(t, "", "-drain-timeout", "20s")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)

	// Keep-alive load. A request the gateway never accepted (its listener
	// closed) fails to connect: that is the drain working. Anything else
	// (an error status, a cut body, a reset after sending) is a failure.
	var served, refused atomic.Int64
	var failures sync.Map
	clients := make([]*http.Client, 8)
	for w := range clients {
		clients[w] = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	}
	stopLoad := runLoad(len(clients), func(w int) {
		resp, err := clients[w].Get("http://" + g.proxy + "/fast")
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				refused.Add(1)
				time.Sleep(10 * time.Millisecond)
				return
			}
			failures.Store(err.Error(), true)
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(b) != "fast" {
			failures.Store(fmt.Sprintf("%d %q %v", resp.StatusCode, b, err), true)
			return
		}
		served.Add(1)
	})

	// Idle keep-alive connections, and the slow requests.
	var idle []net.Conn
	for i := 0; i < 20; i++ {
		c, err := net.Dial("tcp", g.proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /fast HTTP/1.1\r\nHost: a\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		idle = append(idle, c)
	}
	results := make(chan string, 20)
	var inflight sync.WaitGroup
	for i := 0; i < 10; i++ {
		path := "/slow"
		if i%3 == 0 {
			path = "/stream"
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			resp, err := http.Get("http://" + g.proxy + path)
			if err != nil {
				results <- path + ": " + err.Error()
				return
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case err != nil:
				results <- fmt.Sprintf("%s: body cut after %d bytes: %v", path, len(b), err)
			case path == "/slow" && string(b) != "done", path == "/stream" && len(b) != 20000:
				results <- fmt.Sprintf("%s: %d %q", path, resp.StatusCode, short(string(b)))
			default:
				results <- "ok"
			}
		}()
	}
	// Connections that have sent nothing yet: fasthttp counts one as busy
	// reading its first request until the header timeout, so it would
	// hold the drain (and, on the admin listener drained first, keep the
	// proxy accepting).
	for _, addr := range []string{g.admin, g.proxy} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(300 * time.Millisecond)

	term := time.Now()
	g.cmd.Process.Signal(syscall.SIGTERM)
	// The idle connections are closed promptly.
	var idleClosed sync.WaitGroup
	var idleSlow atomic.Int64
	for _, c := range idle {
		idleClosed.Add(1)
		go func() {
			defer idleClosed.Done()
			c.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				idleSlow.Add(1)
			}
		}()
	}
	// The listener stops accepting.
	refusedAt := time.Duration(-1)
	for time.Since(term) < 2*time.Second {
		c, err := net.DialTimeout("tcp", g.proxy, 100*time.Millisecond)
		if err != nil {
			refusedAt = time.Since(term)
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case <-g.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("no exit 15 s after SIGTERM:\n%s", g.logs())
	}
	exitAfter := time.Since(term)
	stopLoad()
	inflight.Wait()
	idleClosed.Wait()
	close(results)

	if code := g.exitCode.Load(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	for r := range results {
		if r != "ok" {
			t.Errorf("an in-flight request did not complete: %s", r)
		}
	}
	failures.Range(func(k, _ any) bool {
		t.Errorf("a client request failed during the drain: %s", k)
		return true
	})
	if idleSlow.Load() != 0 {
		t.Errorf("%d idle keep-alive connections still open 1.5 s after SIGTERM", idleSlow.Load())
	}
	if refusedAt < 0 {
		t.Errorf("the proxy listener still accepted 2 s after SIGTERM")
	}
	if exitAfter > 4*time.Second {
		t.Errorf("exit %v after SIGTERM: the drain waited for more than the in-flight requests", exitAfter)
	}
	t.Logf("SIGTERM: listener closed within %v, exit 0 after %v; %d requests served under load, %d refused after the listener closed",
		refusedAt.Round(time.Millisecond), exitAfter.Round(time.Millisecond), served.Load(), refused.Load())
}

// TestDrainTimeout checks the drain gives up at -drain-timeout: a request
// slower than it does not keep the process alive, and the exit is still 0.
func TestDrainTimeout(t *testing.T) {
	o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(10 * time.Second)
	})
	g := startGateway(t, "", "-drain-timeout", "1s")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	go http.Get("http://" + g.proxy + "/very-slow")
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	if code := g.terminate(5 * time.Second); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("exit %v after SIGTERM with -drain-timeout 1s", d)
	}
	if !strings.Contains(g.logs(), "drain ended by the drain timeout") {
		t.Errorf("the log does not say the drain timed out:\n%s", g.logs())
	}
}
