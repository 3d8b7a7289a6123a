package pool

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// lineServer answers each line it reads with "echo: " and the line, after
// delay; it never answers a line "mute".
func lineServer(t *testing.T, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					if line == "mute\n" {
						continue
					}
					time.Sleep(delay)
					io.WriteString(c, "echo: "+line)
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestFlushAndAwait: the request is written and the wait ends once the
// answer arrived (it is then in the socket, not yet read), whether the
// answer is immediate or late; repeated exchanges on one connection never
// miss an answer; a silent upstream ends the wait at the read deadline.
func TestFlushAndAwait(t *testing.T) {
	for _, delay := range []time.Duration{0, 30 * time.Millisecond} {
		p := New(Options{Addr: lineServer(t, delay), IdleTimeout: time.Minute})
		c := mustAcquire(t, p, new(Meter), nowNano(), 0)
		if c.awaitFn == nil {
			t.Fatal("a plain TCP connection has no await callback")
		}
		for i := range 200 {
			if err := c.SetReadTimeout(time.Now(), 5*time.Second); err != nil {
				t.Fatal(err)
			}
			c.BW.WriteString("ping\n")
			start := time.Now()
			if err := c.FlushAndAwait(); err != nil {
				t.Fatalf("delay %v, exchange %d: %v", delay, i, err)
			}
			if waited := time.Since(start); waited < delay {
				t.Fatalf("delay %v: the wait ended after %v, before the answer", delay, waited)
			} else if waited > time.Second {
				// The answer came within delay: a wait until the 5 s
				// deadline is a missed wake-up.
				t.Fatalf("delay %v, exchange %d: waited %v for an answer sent after %v", delay, i, waited, delay)
			}
			line, err := c.BR.ReadString('\n')
			if line != "echo: ping\n" || err != nil {
				t.Fatalf("delay %v, exchange %d: read %q, %v", delay, i, line, err)
			}
			if delay > 0 && i == 2 {
				break // the late case needs only a few rounds
			}
		}
		c.Release(true, nowNano())
		p.Close()
	}

	p := New(Options{Addr: lineServer(t, 0), IdleTimeout: time.Minute})
	defer p.Close()
	c := mustAcquire(t, p, new(Meter), nowNano(), 0)
	c.SetReadTimeout(time.Now(), 100*time.Millisecond)
	c.BW.WriteString("mute\n")
	start := time.Now()
	if err := c.FlushAndAwait(); err != nil {
		t.Fatalf("a silent upstream: FlushAndAwait = %v, want nil (the read reports the timeout)", err)
	}
	if waited := time.Since(start); waited < 90*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("a silent upstream: waited %v, want the 100 ms read timeout", waited)
	}
	if _, err := c.BR.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a silent upstream: %v, want the deadline exceeded", err)
	}
	c.Release(false, 0)
}

// TestFlushAndAwaitWriteError: a request that cannot be written is
// reported as the write's error, at once.
func TestFlushAndAwaitWriteError(t *testing.T) {
	p := New(Options{Addr: lineServer(t, 0), IdleTimeout: time.Minute})
	defer p.Close()
	c := mustAcquire(t, p, new(Meter), nowNano(), 0)
	c.SetReadTimeout(time.Now(), 5*time.Second)
	c.SetWriteTimeout(time.Now(), 5*time.Second)
	c.Conn.(*net.TCPConn).CloseWrite()
	c.BW.WriteString(strings.Repeat("x", 100) + "\n")
	start := time.Now()
	err := c.FlushAndAwait()
	if err == nil || time.Since(start) > time.Second {
		t.Fatalf("write on a closed side: %v after %v, want an error at once", err, time.Since(start))
	}
	c.Release(false, 0)
}
