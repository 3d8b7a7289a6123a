package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// raiseFDLimit lifts this process's open-file limit (the gateway started
// afterwards inherits it) so that n connections fit on both sides.
func raiseFDLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	want := lim
	want.Cur = max(n, lim.Cur)
	if want.Max < want.Cur {
		want.Max = want.Cur // root may raise the hard limit
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		want.Cur, want.Max = lim.Max, lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil || lim.Max < n {
			t.Skipf("needs %d open files, the hard limit is %d", n, lim.Max)
		}
	}
}

// timedGet sends one request on a fresh connection and returns how long
// the answer took.
func timedGet(url string) (time.Duration, error) {
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return 0, err
	}
	if resp.StatusCode != 200 {
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	return time.Since(start), nil
}

// latencies summarises durations as p50/p99/max.
func latencies(ds []time.Duration) string {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	if len(ds) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %v, p99 %v, max %v", ds[len(ds)/2].Round(10*time.Microsecond),
		ds[len(ds)*99/100].Round(10*time.Microsecond), ds[len(ds)-1].Round(10*time.Microsecond))
}

// TestSlowloris opens 2,000 connections that send a request header one
// byte at a time, and checks that a normal client is served all along
// (each request on a new connection, so the accept path is measured too),
// and that the header timeout closes every slow connection.
func TestSlowloris(t *testing.T) {
	const slow = 2000
	const headerTimeout = 4 * time.Second
	raiseFDLimit(t, 3*slow)
	o := startOrigin(t, nil)
	g := startGateway(t, "", "-client-header-timeout", headerTimeout.String())
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	url := "http://" + g.proxy + "/hello"

	var base []time.Duration
	for i := 0; i < 50; i++ {
		d, err := timedGet(url)
		if err != nil {
			t.Fatal(err)
		}
		base = append(base, d)
	}

	// The attack: every connection sends its first bytes, then one more
	// byte every 500 ms, never finishing the header.
	conns := make([]net.Conn, 0, slow)
	opened := time.Now()
	for i := 0; i < slow; i++ {
		c, err := net.Dial("tcp", g.proxy)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		defer c.Close()
		io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a\r\nX-Slow: ")
		conns = append(conns, c)
	}
	rssAttack := procStatusKB(t, g.cmd.Process.Pid, "VmRSS")
	stop := make(chan struct{})
	var dripper sync.WaitGroup
	dripper.Add(1)
	go func() {
		defer dripper.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(500 * time.Millisecond):
			}
			for _, c := range conns {
				c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
				c.Write([]byte("x"))
			}
		}
	}()

	var under []time.Duration
	for time.Since(opened) < headerTimeout-500*time.Millisecond {
		d, err := timedGet(url)
		if err != nil {
			t.Fatalf("a normal client failed under slowloris: %v", err)
		}
		under = append(under, d)
		time.Sleep(20 * time.Millisecond)
	}

	// Every slow connection must be answered 408 and closed once its
	// header timeout passes, however it keeps dripping.
	var closed, answered408 atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(opened.Add(headerTimeout + 6*time.Second))
			b, err := io.ReadAll(c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			closed.Add(1)
			if strings.HasPrefix(string(b), "HTTP/1.1 408") {
				answered408.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	dripper.Wait()
	t.Logf("normal client, one new connection per request: %s alone; %s under %d slowloris connections (%d requests)",
		latencies(base), latencies(under), slow, len(under))
	t.Logf("gateway RSS with %d slowloris connections: %d KiB; %d closed by the header timeout (%d with a 408)",
		slow, rssAttack, closed.Load(), answered408.Load())
	if closed.Load() != slow {
		t.Fatalf("%d of %d slowloris connections still open %v after the header timeout", slow-closed.Load(), slow, 6*time.Second)
	}
	if _, err := timedGet(url); err != nil {
		t.Fatalf("after the attack: %v", err)
	}
}

// TestConnectionCap fills -max-client-conns with idle keep-alive
// connections: the next connection is answered 503 and closed at once
// (no hang, no unbounded growth), and service resumes when connections go.
func TestConnectionCap(t *testing.T) {
	const capacity = 200
	raiseFDLimit(t, 4*capacity)
	o := startOrigin(t, nil)
	g := startGateway(t, "", "-max-client-conns", fmt.Sprint(capacity))
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	// The harness's readiness probes hold slots until the gateway has seen
	// them close.
	time.Sleep(300 * time.Millisecond)

	held := make([]net.Conn, 0, capacity)
	for len(held) < capacity {
		c, err := net.Dial("tcp", g.proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /hold HTTP/1.1\r\nHost: a\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("connection %d under the cap: %v", len(held), err)
		}
		io.Copy(io.Discard, resp.Body)
		held = append(held, c)
	}
	// Over the cap, with or without a request already sent.
	for _, send := range []string{"", "GET /over HTTP/1.1\r\nHost: a\r\n\r\n"} {
		c, err := net.Dial("tcp", g.proxy)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, send)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		c.Close()
		if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 503") {
			t.Fatalf("over the cap (request sent: %v): %q %v, want a 503 and a clean close", send != "", b, err)
		}
	}
	// Free ten slots: new connections are served again.
	for _, c := range held[:10] {
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := timedGet("http://" + g.proxy + "/again"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no service after connections were freed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestClientTimeouts checks the idle, body and send timeouts: each ends
// a connection that would otherwise be held forever.
func TestClientTimeouts(t *testing.T) {
	big := make(chan struct{})
	var originDone atomic.Value
	o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/endless":
			// Streams until the gateway stops reading.
			buf := make([]byte, 64<<10)
			var err error
			for err == nil {
				_, err = w.Write(buf)
			}
			originDone.Store(err.Error())
			close(big)
		case "/trickle":
			// 3 s of body, a chunk every 200 ms: longer than any timeout
			// here, but never silent for as long as one.
			for i := 0; i < 15; i++ {
				fmt.Fprintf(w, "%04d", i)
				w.(http.Flusher).Flush()
				time.Sleep(200 * time.Millisecond)
			}
		case "/upload":
			n, err := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d %v", n, err)
		default:
			fmt.Fprint(w, "ok")
		}
	})
	g := startGateway(t, "", "-client-idle-timeout", "1s", "-client-body-timeout", "1s", "-client-send-timeout", "1s")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)

	closedWithin := func(c net.Conn, d time.Duration) (string, bool) {
		c.SetReadDeadline(time.Now().Add(d))
		b, err := io.ReadAll(c)
		var ne net.Error
		return string(b), !(errors.As(err, &ne) && ne.Timeout())
	}

	t.Run("each", func(t *testing.T) {
		t.Run("idle", func(t *testing.T) {
			t.Parallel()
			c, _ := net.Dial("tcp", g.proxy)
			defer c.Close()
			io.WriteString(c, "GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
			start := time.Now()
			b, ok := closedWithin(c, 5*time.Second)
			if !ok || !strings.HasPrefix(b, "HTTP/1.1 200") {
				t.Fatalf("idle keep-alive connection not closed within 5 s: %q", b)
			}
			t.Logf("idle connection closed after %v", time.Since(start).Round(10*time.Millisecond))
		})
		for _, body := range []struct{ name, head, part string }{
			{"chunked body", "Transfer-Encoding: chunked", "400\r\n" + strings.Repeat("c", 1024) + "\r\n"},
			{"large body", "Content-Length: 1000000", strings.Repeat("l", 100000)},
			{"small body", "Content-Length: 30000", strings.Repeat("s", 10000)},
		} {
			t.Run("stalled "+body.name, func(t *testing.T) {
				t.Parallel()
				c, _ := net.Dial("tcp", g.proxy)
				defer c.Close()
				io.WriteString(c, "POST /upload HTTP/1.1\r\nHost: a\r\n"+body.head+"\r\n\r\n"+body.part)
				b, ok := closedWithin(c, 5*time.Second)
				if !ok || !(strings.HasPrefix(b, "HTTP/1.1 408") || strings.HasPrefix(b, "HTTP/1.1 400")) {
					t.Fatalf("stalled upload not ended within 5 s: %q", b)
				}
			})
		}
		// The body and send timeouts are between two reads or writes, not over
		// the whole body: slow but steady transfers outlive them.
		t.Run("steady slow download", func(t *testing.T) {
			t.Parallel()
			code, body, _ := g.get("/trickle")
			if code != 200 || len(body) != 60 {
				t.Fatalf("a 3 s download with a send timeout of 1 s: %d %q", code, body)
			}
		})
		t.Run("steady slow upload", func(t *testing.T) {
			t.Parallel()
			pr, pw := io.Pipe()
			go func() {
				for i := 0; i < 10; i++ {
					io.WriteString(pw, strings.Repeat("u", 1000))
					time.Sleep(300 * time.Millisecond)
				}
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", "http://"+g.proxy+"/upload", pr)
			resp, err := proxyClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != "10000 <nil>" {
				t.Fatalf("a 3 s chunked upload with a body timeout of 1 s: %d %q", resp.StatusCode, b)
			}
		})
		t.Run("client stops reading", func(t *testing.T) {
			t.Parallel()
			c, _ := net.Dial("tcp", g.proxy)
			defer c.Close()
			io.WriteString(c, "GET /endless HTTP/1.1\r\nHost: a\r\n\r\n")
			// Never read: the socket buffers fill, the gateway's write stalls.
			select {
			case <-big:
				t.Logf("the origin's write failed once the gateway gave up: %v", originDone.Load())
			case <-time.After(15 * time.Second):
				t.Fatal("the gateway still relays to a client that stopped reading 15 s ago")
			}
		})
	})
	if code, body, _ := g.get("/fine"); code != 200 || body != "ok" {
		t.Fatalf("after the timeouts: %d %q", code, body)
	}
}

// TestZeroTimeoutsDisable checks a body or send timeout of 0 means none: a
// slow upload (buffered and streamed) and a slow download outlive a 1 s
// header timeout, whose deadline must not carry over to the body.
func TestZeroTimeoutsDisable(t *testing.T) {
	o := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/trickle" {
			for i := 0; i < 10; i++ {
				fmt.Fprint(w, "t")
				w.(http.Flusher).Flush()
				time.Sleep(160 * time.Millisecond)
			}
			return
		}
		n, err := io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%d %v", n, err)
	})
	g := startGateway(t, "", "-client-header-timeout", "1s", "-client-body-timeout", "0", "-client-send-timeout", "0")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	var wg sync.WaitGroup
	for _, size := range []int{1000, 100000} { // buffered and streamed
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr, pw := io.Pipe()
			go func() {
				for i := 0; i < 10; i++ {
					io.WriteString(pw, strings.Repeat("u", size/10))
					time.Sleep(160 * time.Millisecond)
				}
				pw.Close()
			}()
			req, _ := http.NewRequest("POST", "http://"+g.proxy+"/upload", pr)
			req.ContentLength = int64(size)
			resp, err := proxyClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(b) != fmt.Sprintf("%d <nil>", size) {
				t.Errorf("a 1.6 s upload of %d bytes with no body timeout: %d %q", size, resp.StatusCode, b)
			}
		}()
	}
	if code, body, _ := g.get("/trickle"); code != 200 || body != "tttttttttt" {
		t.Errorf("a 1.6 s download with no send timeout: %d %q", code, body)
	}
	wg.Wait()
}
