// Package pool keeps upstream connections: one Pool per (scheme, node
// address, SNI, TLS identity, pool settings), with APISIX's keepalive_pool
// semantics (at most Size idle connections, idle ones closed after
// IdleTimeout, a connection retired after Requests requests).
//
// The proxy in package core writes requests and reads responses on a Conn
// itself, with fasthttp's header codec, so that it controls per-try
// timeouts, knows whether a request was sent, and streams bodies. The pool
// never retries: core owns retries.
package pool

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// Buffer sizes of pooled connections. The read buffer bounds the size of an
// upstream's response header (nginx's proxy_buffer_size plays that role).
const (
	ReadBufferSize  = 16 << 10
	WriteBufferSize = 8 << 10
)

// peekAfter is how long a connection may sit idle before Acquire checks,
// with a non-blocking peek, that the upstream has not closed it. Under load
// connections are reused within microseconds and skip the check.
const peekAfter = 100 * time.Millisecond

// Options configure a Pool. The zero value of each field means the APISIX
// default noted on it.
type Options struct {
	// Addr is the "host:port" to dial.
	Addr string
	// TLS, when non-nil, makes the pool speak TLS with this configuration
	// (ServerName is the SNI).
	TLS *tls.Config
	// MaxIdle caps idle connections (keepalive_pool.size). Default 320.
	MaxIdle int
	// IdleTimeout closes connections idle longer than this
	// (keepalive_pool.idle_timeout). Zero closes them as soon as they are
	// idle, as APISIX does for idle_timeout 0.
	IdleTimeout time.Duration
	// MaxRequests retires a connection after this many requests
	// (keepalive_pool.requests). Default 1000.
	MaxRequests int
}

// Stats are a pool's lifetime counters.
type Stats struct {
	Opened, Reused, Closed, DialErrors, TLSHandshakes, TLSFailures uint64
	Idle                                                           int64
}

// Pool holds the idle connections to one upstream address. It is safe for
// concurrent use; Acquire and Release neither lock nor allocate when an idle
// connection is available.
type Pool struct {
	opts Options
	idle *idleStack

	closed atomic.Bool

	opened, reused, closedN, dialErrors, tlsHandshakes, tlsFailures atomic.Uint64
}

// New returns a pool for opts.
func New(opts Options) *Pool {
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = 320
	}
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = 1000
	}
	return &Pool{opts: opts, idle: newIdleStack(opts.MaxIdle)}
}

// Options returns the pool's settings.
func (p *Pool) Options() Options { return p.opts }

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		Opened: p.opened.Load(), Reused: p.reused.Load(), Closed: p.closedN.Load(),
		DialErrors: p.dialErrors.Load(), TLSHandshakes: p.tlsHandshakes.Load(), TLSFailures: p.tlsFailures.Load(),
		Idle: p.idle.count.Load(),
	}
}

// Conn is one upstream connection. It is used by one request at a time,
// between Acquire and Release.
type Conn struct {
	net.Conn
	// BR and BW buffer the connection; they are owned by the current user.
	BR *bufio.Reader
	BW *bufio.Writer
	// Reused is true when the connection came from the idle pool.
	Reused bool

	pool      *Pool
	raw       syscall.RawConn
	peekFn    func(fd uintptr) bool
	peekState int8
	requests  int
	idleSince int64
}

// DialError wraps a failure to connect (or to complete the TLS handshake):
// nothing was sent, so the request may always be retried elsewhere.
type DialError struct {
	Addr    string
	Err     error
	Timeout bool
	TLS     bool
}

func (e *DialError) Error() string {
	if e.TLS {
		return fmt.Sprintf("pool: TLS handshake with %s failed: %v", e.Addr, e.Err)
	}
	return fmt.Sprintf("pool: cannot connect to %s: %v", e.Addr, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// Acquire returns an idle connection, or dials a new one within
// connectTimeout; with fresh set it always dials. now is the caller's clock
// reading (UnixNano).
func (p *Pool) Acquire(now int64, connectTimeout time.Duration, fresh bool) (*Conn, error) {
	// A closed pool still dials (a request of an older snapshot may be
	// finishing its retries); its connections are closed on release.
	for !fresh && !p.closed.Load() {
		c := p.idle.pop()
		if c == nil {
			break
		}
		idle := time.Duration(now - c.idleSince)
		if idle > p.opts.IdleTimeout || (idle > peekAfter && !c.alive()) {
			p.discard(c)
			continue
		}
		c.Reused = true
		c.requests++
		p.reused.Add(1)
		return c, nil
	}
	// Slow path: a new connection.
	c, err := p.dial(connectTimeout)
	if err != nil {
		return nil, err
	}
	c.requests = 1
	return c, nil
}

// Release ends the use of c. When reusable is false (the exchange did not
// complete cleanly, or either side asked to close) the connection is
// closed; otherwise it is kept idle unless it has served MaxRequests, the
// pool is full or IdleTimeout is zero.
func (p *Pool) Release(c *Conn, reusable bool, now int64) {
	if !reusable || c.requests >= p.opts.MaxRequests || p.opts.IdleTimeout <= 0 || p.closed.Load() {
		p.discard(c)
		return
	}
	c.idleSince = now
	if !p.idle.push(c) {
		p.discard(c)
		return
	}
	if p.closed.Load() {
		// Close raced with the push: drain what is left.
		p.drain()
	}
}

// Close closes the idle connections and stops pooling: connections in use
// and any dialed later are closed when released.
func (p *Pool) Close() {
	p.closed.Store(true)
	p.drain()
}

func (p *Pool) drain() {
	for c := p.idle.pop(); c != nil; c = p.idle.pop() {
		p.discard(c)
	}
}

// sweep closes connections idle for longer than IdleTimeout.
func (p *Pool) sweep(now int64) {
	limit := p.opts.IdleTimeout
	expired := func(c *Conn) bool { return time.Duration(now-c.idleSince) > limit }
	for i := range p.idle.slots {
		if c := p.idle.steal(i, expired); c != nil {
			p.discard(c)
		}
	}
}

func (p *Pool) discard(c *Conn) {
	p.closedN.Add(1)
	_ = c.Conn.Close()
}

func (p *Pool) dial(timeout time.Duration) (*Conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.Dial("tcp", p.opts.Addr)
	if err != nil {
		p.dialErrors.Add(1)
		return nil, &DialError{Addr: p.opts.Addr, Err: err, Timeout: isTimeout(err)}
	}
	c := &Conn{pool: p}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
		c.peekFn = c.peek
	}
	if p.opts.TLS != nil {
		p.tlsHandshakes.Add(1)
		tc := tls.Client(nc, p.opts.TLS)
		_ = tc.SetDeadline(time.Now().Add(timeout))
		if err := tc.Handshake(); err != nil {
			p.tlsFailures.Add(1)
			_ = nc.Close()
			return nil, &DialError{Addr: p.opts.Addr, Err: err, Timeout: isTimeout(err), TLS: true}
		}
		_ = tc.SetDeadline(time.Time{})
		nc = tc
	}
	c.Conn = nc
	c.BR = bufio.NewReaderSize(nc, ReadBufferSize)
	c.BW = bufio.NewWriterSize(nc, WriteBufferSize)
	p.opened.Add(1)
	return c, nil
}

// alive reports whether an idle connection is still usable: the upstream
// has neither closed it nor sent unsolicited bytes.
func (c *Conn) alive() bool {
	if c.raw == nil {
		return true
	}
	if c.BR.Buffered() > 0 {
		return false
	}
	c.peekState = 0
	if err := c.raw.Read(c.peekFn); err != nil {
		return false
	}
	return c.peekState == 0
}

// peek runs on the raw socket: a non-blocking MSG_PEEK read.
func (c *Conn) peek(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	switch {
	case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK:
		c.peekState = 0 // open and quiet
	case err != nil, n == 0:
		c.peekState = 1 // closed or broken
	default:
		c.peekState = 2 // unsolicited data
	}
	return true
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
