package core

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/gateway/lb"
)

// outcomeRecorder is a picker that records every try outcome it is told
// of (Done's failed flag).
type outcomeRecorder struct {
	*lb.RoundRobin
	mu   sync.Mutex
	done []bool // failed, per Done
}

func (r *outcomeRecorder) Done(n *lb.Node, rtt time.Duration, failed bool) {
	r.mu.Lock()
	r.done = append(r.done, failed)
	r.mu.Unlock()
	r.RoundRobin.Done(n, rtt, failed)
}

// outcomes waits until n outcomes were recorded (or a second passed).
func (r *outcomeRecorder) outcomes(n int) []bool {
	deadline := time.Now().Add(time.Second)
	for {
		r.mu.Lock()
		got := append([]bool(nil), r.done...)
		r.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var recorders sync.Map // upstream pointer -> *recorder

func init() {
	RegisterPicker("test-recorder", func(u *Upstream, nodes []*lb.Node) lb.Picker {
		r := &outcomeRecorder{RoundRobin: lb.NewRoundRobin(nodes)}
		recorders.Store(u, r)
		return r
	})
}

// faultOrigin answers every request on a connection with respond, which
// writes whatever it likes; it counts connections.
func faultOrigin(t *testing.T, respond func(c net.Conn) bool) (port int, conns *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int64{}
	var open sync.Map
	t.Cleanup(func() {
		ln.Close()
		open.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			open.Store(c, true)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// GETs only: a request ends at the empty line.
					for {
						line, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if line == "\r\n" {
							break
						}
					}
					if !respond(c) {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, conns
}

func write(c net.Conn, s string) bool {
	_, err := io.WriteString(c, s)
	return err == nil
}

func reset(c net.Conn) bool {
	c.(*net.TCPConn).SetLinger(0)
	c.Close()
	return false
}

// TestUpstreamFaults sends one request to an upstream that misbehaves in
// one way, on both sides of the 64 KiB line between buffered and streamed
// bodies, and checks: the client's outcome (a 502/504 while no header was
// sent, a cut-short body after), that the picker is told the try failed
// (passive health sees it), and that the connection is not pooled.
func TestUpstreamFaults(t *testing.T) {
	big := strings.Repeat("b", 100<<10) // above maxBufferedResponse
	cases := []struct {
		name string
		// respond misbehaves; it returns false to close the connection.
		respond func(c net.Conn) bool
		// status is what the client gets; truncated means the header came
		// but the body was cut short (the client sees an error).
		status    int
		truncated bool
		failed    bool
		pooled    bool
	}{
		{"clean", func(c net.Conn) bool { return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") }, 200, false, false, true},
		{"clean streamed", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 102400\r\n\r\n"+big)
		}, 200, false, false, true},
		{"reset before the response", reset, 502, false, true, false},
		{"close before the response", func(c net.Conn) bool { return false }, 502, false, true, false},
		{"malformed status line", func(c net.Conn) bool { return write(c, "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nok") }, 502, false, true, false},
		{"not HTTP", func(c net.Conn) bool { return write(c, "SSH-2.0-OpenSSH_9.6\r\n\r\n") }, 502, false, true, false},
		{"header line without colon", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nBroken header\r\nContent-Length: 2\r\n\r\nok")
		}, 502, false, true, false},
		{"space in a header name", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nX Evil: 1\r\nContent-Length: 2\r\n\r\nok")
		}, 502, false, true, false},
		{"conflicting Content-Length", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")
		}, 502, false, true, false},
		{"header too large", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("h", 20<<10)+"\r\nContent-Length: 2\r\n\r\nok")
		}, 502, false, true, false},
		{"stall before the header", func(c net.Conn) bool { time.Sleep(2 * time.Second); return false }, 504, false, true, false},
		{"reset mid-body (buffered)", func(c net.Conn) bool {
			write(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
			time.Sleep(50 * time.Millisecond)
			return reset(c)
		}, 502, false, true, false},
		{"fewer bytes than declared (buffered)", func(c net.Conn) bool {
			write(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
			return false
		}, 502, false, true, false},
		{"stall mid-body (buffered)", func(c net.Conn) bool {
			write(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
			time.Sleep(2 * time.Second)
			return false
		}, 504, false, true, false},
		{"more bytes than declared (buffered)", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA")
		}, 200, false, false, false},
		{"more bytes than declared (40 KiB, buffered)", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 40960\r\n\r\n"+big[:40960]+"EXTRA")
		}, 200, false, false, false},
		{"body on a 204", func(c net.Conn) bool { return write(c, "HTTP/1.1 204 No Content\r\n\r\nEXTRA") }, 204, false, false, false},
		{"reset mid-body (streamed)", func(c net.Conn) bool {
			write(c, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"+big)
			time.Sleep(50 * time.Millisecond)
			return reset(c)
		}, 200, true, true, false},
		{"fewer bytes than declared (streamed)", func(c net.Conn) bool {
			write(c, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"+big)
			return false
		}, 200, true, true, false},
		{"stall mid-body (streamed)", func(c net.Conn) bool {
			write(c, "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"+big)
			time.Sleep(2 * time.Second)
			return false
		}, 200, true, true, false},
		{"more bytes than declared (streamed)", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nContent-Length: 102400\r\n\r\n"+big+"EXTRA")
		}, 200, false, false, false},
		{"malformed chunk (streamed)", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
		}, 200, true, true, false},
		{"reset mid-chunk (streamed)", func(c net.Conn) bool {
			write(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n10\r\nabc")
			time.Sleep(50 * time.Millisecond)
			return reset(c)
		}, 200, true, true, false},
		{"bytes after the last chunk (streamed)", func(c net.Conn) bool {
			return write(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n")
		}, 200, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			port, conns := faultOrigin(t, c.respond)
			u := upstreamOf(port)
			u.Type = "test-recorder"
			zero := 0
			u.Retries = &zero
			u.Timeout = &Timeout{Connect: time.Second, Send: time.Second, Read: 300 * time.Millisecond}
			cfg := NewConfig()
			cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/x"}, Status: 1, Upstream: u}
			g := startGateway(t, cfg)

			start := time.Now()
			resp, err := http.Get("http://" + g.addr + "/x")
			if err != nil {
				t.Fatalf("no response at all: %v", err)
			}
			_, berr := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || (berr != nil) != c.truncated {
				t.Errorf("client got %d (body error %v), want %d (truncated %v)", resp.StatusCode, berr, c.status, c.truncated)
			}
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Errorf("the client waited %v (read timeout 300 ms)", d)
			}
			r, _ := recorders.Load(u)
			if got := r.(*outcomeRecorder).outcomes(1); len(got) != 1 || got[0] != c.failed {
				t.Errorf("picker outcomes %v, want one with failed=%v", got, c.failed)
			}
			b := g.proxy.Snapshot().Entry("/apisix/routes/1").Upstream
			if idle := b.refs[0].pool.Stats().Idle; (idle == 1) != c.pooled {
				t.Errorf("%d idle connections after the try, want pooled=%v", idle, c.pooled)
			}
			// The gateway goes on: the next request opens a connection of
			// its own unless the last one was pooled.
			before := conns.Load()
			resp, err = http.Get("http://" + g.addr + "/x")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if opened := conns.Load() - before; (opened == 0) != c.pooled {
				t.Errorf("the next request opened %d connections, want pooled=%v", opened, c.pooled)
			}
		})
	}
}
