package pool

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/testpki"
)

// server is a TCP listener on 127.0.0.1 that keeps the connections it
// accepts (reading and discarding what they send) and counts them.
type server struct {
	ln       net.Listener
	accepted atomic.Int64
	mu       sync.Mutex
	conns    []net.Conn
}

func newServer(t *testing.T, tlsCfg *tls.Config) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	s := &server{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			s.mu.Lock()
			s.conns = append(s.conns, c)
			s.mu.Unlock()
			go func() {
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.closeAll()
	})
	return s
}

func (s *server) addr() string { return s.ln.Addr().String() }

// waitAccepted waits until the server has accepted n connections.
func (s *server) waitAccepted(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); s.accepted.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("accepted %d connections, want %d", s.accepted.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// closeAll closes every accepted connection (the upstream going away).
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}

func nowNano() int64 { return time.Now().UnixNano() }

func mustAcquire(t *testing.T, p *Pool, m *Meter, now int64, flags int) *Conn {
	t.Helper()
	c, err := p.Acquire(m, now, time.Second, flags)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAcquireReusesWarmConnection(t *testing.T) {
	s := newServer(t, nil)
	p := New(Options{Addr: s.addr(), IdleTimeout: time.Minute})
	defer p.Close()
	var m Meter
	now := nowNano()
	c1 := mustAcquire(t, p, &m, now, 0)
	if c1.Reused {
		t.Fatal("a dialed connection is marked reused")
	}
	c1.Release(true, now)
	c2 := mustAcquire(t, p, &m, now, 0)
	if c2 != c1 || !c2.Reused {
		t.Fatalf("got %p (reused %v), want the warm %p", c2, c2.Reused, c1)
	}
	c2.Release(true, now)
	// Fresh always dials.
	c3 := mustAcquire(t, p, &m, now, Fresh)
	if c3 == c1 || c3.Reused {
		t.Fatal("Fresh returned the idle connection")
	}
	c3.Release(false, 0)
	if m.Opened.Load() != 2 || m.Reused.Load() != 1 || m.Closed.Load() != 1 {
		t.Fatalf("meter opened %d reused %d closed %d, want 2 1 1", m.Opened.Load(), m.Reused.Load(), m.Closed.Load())
	}
	st := p.Stats()
	if st.Opened != 2 || st.Reused != 1 || st.Closed != 1 || st.Idle != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestMaxRequestsRetiresConnection(t *testing.T) {
	s := newServer(t, nil)
	p := New(Options{Addr: s.addr(), IdleTimeout: time.Minute, MaxRequests: 3})
	defer p.Close()
	now := nowNano()
	for i := 0; i < 9; i++ {
		c := mustAcquire(t, p, nil, now, 0)
		c.Release(true, now)
	}
	// 9 requests at 3 per connection: each is closed after its third.
	if st := p.Stats(); st.Opened != 3 || st.Reused != 6 || st.Closed != 3 || st.Idle != 0 {
		t.Fatalf("stats %+v, want 3 opened, 6 reused, 3 closed, 0 idle", st)
	}
}

// TestMaxIdleCapsIdleNotConcurrency is nginx's keepalive N: a burst opens
// as many connections as it needs; the surplus is closed when released.
func TestMaxIdleCapsIdleNotConcurrency(t *testing.T) {
	s := newServer(t, nil)
	p := New(Options{Addr: s.addr(), IdleTimeout: time.Minute, MaxIdle: 2})
	defer p.Close()
	now := nowNano()
	var held []*Conn
	for i := 0; i < 5; i++ {
		held = append(held, mustAcquire(t, p, nil, now, 0))
	}
	for _, c := range held {
		c.Release(true, now)
	}
	if st := p.Stats(); st.Opened != 5 || st.Closed != 3 || st.Idle != 2 {
		t.Fatalf("stats %+v, want 5 opened, 3 closed, 2 idle", st)
	}
}

func TestIdleTimeout(t *testing.T) {
	s := newServer(t, nil)
	// Zero: closed as soon as idle.
	p0 := New(Options{Addr: s.addr(), IdleTimeout: 0})
	now := nowNano()
	c := mustAcquire(t, p0, nil, now, 0)
	c.Release(true, now)
	if st := p0.Stats(); st.Closed != 1 || st.Idle != 0 {
		t.Fatalf("idle_timeout 0: stats %+v", st)
	}

	p := New(Options{Addr: s.addr(), IdleTimeout: time.Second})
	defer p.Close()
	c = mustAcquire(t, p, nil, now, 0)
	c.Release(true, now)
	// Acquire after the timeout discards it and dials.
	c2 := mustAcquire(t, p, nil, now+int64(2*time.Second), 0)
	if c2 == c || c2.Reused {
		t.Fatal("a connection idle beyond idle_timeout was reused")
	}
	c2.Release(true, now)
	// The sweeper closes expired ones.
	p.sweep(now + int64(500*time.Millisecond))
	if p.Stats().Idle != 1 {
		t.Fatal("the sweeper closed a connection before its idle_timeout")
	}
	p.sweep(now + int64(1500*time.Millisecond))
	if st := p.Stats(); st.Idle != 0 || st.Closed != 2 {
		t.Fatalf("after the sweep: stats %+v", st)
	}
}

// TestStaleConnectionDetected: an idle connection the upstream closed is
// not handed out (after 100 ms of idleness, or at once with Check).
func TestStaleConnectionDetected(t *testing.T) {
	s := newServer(t, nil)
	p := New(Options{Addr: s.addr(), IdleTimeout: time.Minute})
	defer p.Close()
	now := nowNano()
	c := mustAcquire(t, p, nil, now, 0)
	c.Release(true, now)
	s.waitAccepted(t, 1)
	s.closeAll()
	time.Sleep(20 * time.Millisecond) // let the FIN arrive

	// Idle for 1 ms without Check: no peek, the stale one comes back (the
	// proxy then detects the failure on use and retries on a fresh one).
	if c2 := mustAcquire(t, p, nil, now+int64(time.Millisecond), 0); c2 != c {
		t.Fatal("expected the unchecked idle connection")
	} else {
		c2.Release(true, now)
	}
	// With Check, the peek sees the close.
	c3 := mustAcquire(t, p, nil, now+int64(time.Millisecond), Check)
	if c3 == c {
		t.Fatal("Check handed out a connection the upstream closed")
	}
	c3.Release(true, now)
	s.waitAccepted(t, 2)
	s.closeAll()
	time.Sleep(20 * time.Millisecond)
	// Idle for more than 100 ms: always peeked.
	c4 := mustAcquire(t, p, nil, now+int64(200*time.Millisecond), 0)
	if c4 == c3 {
		t.Fatal("a connection idle for 200 ms and closed by the upstream was reused")
	}
	c4.Release(false, 0)
	s.waitAccepted(t, 3)
}

func TestClosedPool(t *testing.T) {
	s := newServer(t, nil)
	p := New(Options{Addr: s.addr(), IdleTimeout: time.Minute})
	now := nowNano()
	c := mustAcquire(t, p, nil, now, 0)
	c.Release(true, now)
	inUse := mustAcquire(t, p, nil, now, Fresh)
	p.Close()
	if !p.Closed() || p.Stats().Idle != 0 {
		t.Fatal("Close left idle connections")
	}
	// In flight when closed: closed on release. A closed pool still dials.
	inUse.Release(true, now)
	c2 := mustAcquire(t, p, nil, now, 0)
	c2.Release(true, now)
	if st := p.Stats(); st.Idle != 0 || st.Closed != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestDialErrors(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	var m Meter
	p := New(Options{Addr: dead})
	_, err := p.Acquire(&m, nowNano(), time.Second, 0)
	var de *DialError
	if !errors.As(err, &de) || de.TLS || m.DialErrors.Load() != 1 {
		t.Fatalf("err %v, dial errors %d", err, m.DialErrors.Load())
	}

	cfgErr := errors.New("no such certificate")
	p = New(Options{Addr: dead, TLS: &tls.Config{ServerName: "x.test"}, TLSError: cfgErr})
	_, err = p.Acquire(&m, nowNano(), time.Second, 0)
	if !errors.As(err, &de) || !de.TLS || !errors.Is(err, cfgErr) || m.TLSFailures.Load() != 1 {
		t.Fatalf("err %v, TLS failures %d", err, m.TLSFailures.Load())
	}
	if want := "pool: TLS handshake with " + dead + " (SNI x.test) failed: no such certificate"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
}

func TestTLSHandshakeAndVerification(t *testing.T) {
	ca := testpki.NewCA("up CA")
	cert := ca.Issue(false, "up.test").TLS()
	var sawSNI atomic.Value
	s := newServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		sawSNI.Store(h.ServerName)
		return nil, nil
	}})
	roots := ca.Pool
	now := nowNano()

	var m Meter
	ok := New(Options{Addr: s.addr(), IdleTimeout: time.Minute, TLS: &tls.Config{ServerName: "up.test", RootCAs: roots}})
	defer ok.Close()
	c := mustAcquire(t, ok, &m, now, 0)
	if _, isTLS := c.Conn.(*tls.Conn); !isTLS {
		t.Fatal("not a TLS connection")
	}
	// The handshake completes on a write; the server reads in the
	// background, so a write is enough to make it send its SNI.
	if sni, _ := sawSNI.Load().(string); sni != "up.test" {
		t.Fatalf("server saw SNI %q", sni)
	}
	c.Release(true, now)
	if m.TLSHandshakes.Load() != 1 || m.TLSFailures.Load() != 0 {
		t.Fatalf("handshakes %d failures %d", m.TLSHandshakes.Load(), m.TLSFailures.Load())
	}

	// Verification against other roots fails, as a TLS dial error.
	otherRoots := testpki.NewCA("other CA").Pool
	bad := New(Options{Addr: s.addr(), TLS: &tls.Config{ServerName: "up.test", RootCAs: otherRoots}})
	_, err := bad.Acquire(&m, now, time.Second, 0)
	var de *DialError
	if !errors.As(err, &de) || !de.TLS || de.SNI != "up.test" || m.TLSFailures.Load() != 1 {
		t.Fatalf("wrong CA: err %v", err)
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("wrong CA: error %v does not wrap x509.UnknownAuthorityError", err)
	}
	// A wrong name fails too.
	wrongName := New(Options{Addr: s.addr(), TLS: &tls.Config{ServerName: "other.test", RootCAs: roots}})
	if _, err := wrongName.Acquire(&m, now, time.Second, 0); !errors.As(err, &de) || !de.TLS {
		t.Fatalf("wrong name: err %v", err)
	}
}

// TestExpiredReadDeadlineKeepsIdleConnection: a connection whose last
// request set a read deadline shorter than its idle time (an upstream with
// timeout.read 1 s and the default 60 s idle_timeout) is still reused when
// its deadline passed while it sat idle: the liveness peek must not take
// the expired deadline for a dead connection.
func TestExpiredReadDeadlineKeepsIdleConnection(t *testing.T) {
	s := newServer(t, nil)
	p := New(Options{Addr: s.addr(), IdleTimeout: time.Minute})
	defer p.Close()
	now := time.Now()
	c := mustAcquire(t, p, nil, now.UnixNano(), 0)
	if err := c.SetReadTimeout(now, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	c.Release(true, now.UnixNano())
	time.Sleep(50 * time.Millisecond) // the deadline passes while idle
	c2 := mustAcquire(t, p, nil, time.Now().UnixNano(), Check)
	if c2 != c {
		t.Fatal("an open idle connection was discarded because its read deadline had passed")
	}
	// The deadline in force is cleared: the next timeout is set afresh.
	if err := c2.SetReadTimeout(time.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	c2.Release(true, time.Now().UnixNano())
	if st := p.Stats(); st.Opened != 1 {
		t.Fatalf("stats %+v, want one connection opened", st)
	}
}
