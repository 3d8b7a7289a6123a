package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// upstreamFault is an origin that misbehaves in one way, and what the
// client must see: a status (502/504 while no header was sent), or a
// body cut short after the header.
type upstreamFault struct {
	name      string
	respond   func(c net.Conn, r *rawRequest) bool
	status    int
	truncated bool
}

func send(c net.Conn, s string) bool {
	_, err := io.WriteString(c, s)
	return err == nil
}

func resetConn(c net.Conn) bool {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	return false
}

var bigBody = strings.Repeat("b", 100<<10) // streamed: above 64 KiB

var upstreamFaults = []upstreamFault{
	{"reset before answering", func(c net.Conn, _ *rawRequest) bool { return resetConn(c) }, 502, false},
	{"malformed status line", func(c net.Conn, _ *rawRequest) bool {
		return send(c, "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok")
	}, 502, false},
	{"not HTTP at all", func(c net.Conn, _ *rawRequest) bool { return send(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n") }, 502, false},
	{"malformed header", func(c net.Conn, _ *rawRequest) bool {
		return send(c, "HTTP/1.1 200 OK\r\nX Evil: 1\r\nContent-Length: 2\r\n\r\nok")
	}, 502, false},
	{"NUL in a header", func(c net.Conn, _ *rawRequest) bool {
		return send(c, "HTTP/1.1 200 OK\r\nX-A: a\x00b\r\nContent-Length: 2\r\n\r\nok")
	}, 502, false},
	{"stall before the header", func(c net.Conn, _ *rawRequest) bool { time.Sleep(3 * time.Second); return false }, 504, false},
	{"reset mid-body", func(c net.Conn, _ *rawRequest) bool {
		send(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
		time.Sleep(50 * time.Millisecond)
		return resetConn(c)
	}, 502, false},
	{"fewer bytes than declared", func(c net.Conn, _ *rawRequest) bool {
		send(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
		return false
	}, 502, false},
	{"stall mid-body", func(c net.Conn, _ *rawRequest) bool {
		send(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
		time.Sleep(3 * time.Second)
		return false
	}, 504, false},
	{"reset mid-body, streamed", func(c net.Conn, _ *rawRequest) bool {
		send(c, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"+bigBody)
		time.Sleep(50 * time.Millisecond)
		return resetConn(c)
	}, 200, true},
	{"fewer bytes than declared, streamed", func(c net.Conn, _ *rawRequest) bool {
		send(c, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"+bigBody)
		return false
	}, 200, true},
	{"stall mid-body, streamed", func(c net.Conn, _ *rawRequest) bool {
		send(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
		time.Sleep(3 * time.Second)
		return false
	}, 200, true},
	{"malformed chunk, streamed", func(c net.Conn, _ *rawRequest) bool {
		return send(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	}, 200, true},
	// More bytes than declared: the client gets the declared body, and the
	// extra bytes must not become the answer to the next request.
	{"more bytes than declared", func(c net.Conn, r *rawRequest) bool {
		return send(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen")
	}, 200, false},
	{"more bytes than declared, streamed", func(c net.Conn, r *rawRequest) bool {
		return send(c, "HTTP/1.1 200 OK\r\nContent-Length: 102400\r\n\r\n"+bigBody+"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstolen")
	}, 200, false},
}

// TestUpstreamFaultsBlackBox sends requests to origins that misbehave on
// purpose while other clients use a healthy route: each faulty answer
// becomes a prompt, well-formed failure, the faulty connection is never
// reused, and the healthy traffic never fails.
func TestUpstreamFaultsBlackBox(t *testing.T) {
	healthy := startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/healthy", fmt.Sprintf(`{"uri":"/healthy","upstream":{"nodes":{"%s":1}}}`, healthy.Addr), 201)
	origins := make([]*rawOrigin, len(upstreamFaults))
	for i, f := range upstreamFaults {
		origins[i] = startRawOrigin(t, f.respond)
		g.mustDo("PUT", fmt.Sprintf("/apisix/admin/routes/f%d", i), fmt.Sprintf(`{"uri":"/f%d","upstream":{"nodes":{"%s":1},
			"timeout":{"connect":1,"send":1,"read":0.5}}}`, i, origins[i].Addr), 201)
	}

	var ok, failed atomic.Int64
	stopLoad := runLoad(4, func(int) {
		resp, err := proxyClient.Get("http://" + g.proxy + "/healthy")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if err == nil && resp.StatusCode == 200 {
			ok.Add(1)
		} else {
			failed.Add(1)
		}
	})

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i, f := range upstreamFaults {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			for try := 0; try < 2; try++ {
				start := time.Now()
				resp, err := client.Get(fmt.Sprintf("http://%s/f%d", g.proxy, i))
				if err != nil {
					t.Fatalf("try %d: no answer: %v", try, err)
				}
				body, berr := io.ReadAll(resp.Body)
				resp.Body.Close()
				took := time.Since(start)
				if resp.StatusCode != f.status || (berr != nil) != f.truncated {
					t.Errorf("try %d: %d %q (body error %v); want %d, truncated %v", try, resp.StatusCode, short(string(body)), berr, f.status, f.truncated)
				}
				if strings.Contains(string(body), "stolen") {
					t.Errorf("try %d: the client got bytes the upstream sent after its response", try)
				}
				if took > 2*time.Second {
					t.Errorf("try %d: the answer took %v (read timeout 0.5 s)", try, took)
				}
			}
			// Two tries, two connections: a faulty one is never reused.
			if n := origins[i].conns.Load(); n != 2 {
				t.Errorf("the origin saw %d connections for 2 requests, want 2 (none reused)", n)
			}
		})
	}
	t.Cleanup(func() {
		stopLoad()
		if failed.Load() != 0 || ok.Load() == 0 {
			t.Errorf("healthy route during the faults: %d failed, %d served", failed.Load(), ok.Load())
		}
		t.Logf("healthy route during the faults: %d served, none failed", ok.Load())
	})
}
