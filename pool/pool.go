// Package pool keeps upstream connections: one Pool per (scheme, node
// address, SNI, TLS identity, pool settings), with APISIX's keepalive_pool
// semantics (at most MaxIdle idle connections, idle ones closed after
// IdleTimeout, a connection retired after MaxRequests requests).
//
// Pools come in Groups: a Group is every pool to one address with one TLS
// identity and one set of pool settings, one pool per SNI (a single pool
// for plain HTTP). The Registry shares groups between configuration
// snapshots, so that an unchanged node keeps its warm connections across
// edits, and runs the sweeper that closes expired idle connections.
//
// The proxy in package core writes requests and reads responses on a Conn
// itself, with fasthttp's header codec, so that it controls per-try
// timeouts, knows whether a request was sent, and streams bodies. The pool
// never retries: core owns retries.
package pool

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
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
// connections are reused within microseconds and skip the check, unless
// the caller asks for it with Check.
const peekAfter = 100 * time.Millisecond

// Defaults of Options (APISIX's keepalive_pool defaults).
const (
	DefaultMaxIdle     = 320
	DefaultMaxRequests = 1000
	// MaxIdleLimit bounds the idle stack of one pool (16 bytes a slot).
	MaxIdleLimit = 1 << 16
)

// Options configure a Pool. The zero value of each field means the APISIX
// default noted on it.
type Options struct {
	// Addr is the "host:port" to dial.
	Addr string
	// TLS, when non-nil, makes the pool speak TLS with this configuration;
	// its ServerName is the SNI (and the name verified when verification is
	// on). The pool neither copies nor modifies it.
	TLS *tls.Config
	// TLSError, when non-nil, is a configuration problem (for instance a
	// client certificate that cannot be loaded): every dial fails with it,
	// as a TLS failure, without connecting.
	TLSError error
	// MaxIdle caps idle connections (keepalive_pool.size); it never caps
	// connections in use. Default 320; values above MaxIdleLimit act as
	// MaxIdleLimit (the idle stack is allocated up front).
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

// Meter counts the connection events of one user of pools: core keeps one
// per upstream node, so that a pool shared by several upstreams still
// reports per upstream. A connection is charged to the meter of its latest
// Acquire; it is closed on that meter, even when the sweeper closes it.
// All fields are atomics; the zero value is ready to use.
type Meter struct {
	Opened, Reused, Closed, DialErrors, TLSHandshakes, TLSFailures atomic.Uint64
}

// nopMeter absorbs the counts of callers that pass no meter (tests).
var nopMeter Meter

// Pool holds the idle connections to one upstream address with one SNI.
// It is safe for concurrent use; Acquire and Release neither lock nor
// allocate when an idle connection is available.
type Pool struct {
	opts Options
	idle *idleStack

	closed atomic.Bool

	opened, reused, closedN, dialErrors, tlsHandshakes, tlsFailures atomic.Uint64

	// pinned pools are held by a compiled snapshot and never evicted from
	// their group.
	pinned atomic.Bool
	// sweptUses and quietSince belong to the sweeper: the use count at its
	// last pass, and since when it has not changed.
	sweptUses  uint64
	quietSince int64
}

// New returns a pool for opts.
func New(opts Options) *Pool {
	if opts.MaxIdle <= 0 {
		opts.MaxIdle = DefaultMaxIdle
	}
	opts.MaxIdle = min(opts.MaxIdle, MaxIdleLimit)
	if opts.MaxRequests <= 0 {
		opts.MaxRequests = DefaultMaxRequests
	}
	return &Pool{opts: opts, idle: newIdleStack(opts.MaxIdle)}
}

// Options returns the pool's settings.
func (p *Pool) Options() Options { return p.opts }

// SNI returns the server name the pool's TLS connections present, or "".
func (p *Pool) SNI() string {
	if p.opts.TLS == nil {
		return ""
	}
	return p.opts.TLS.ServerName
}

// Stats returns a snapshot of the pool's counters.
func (p *Pool) Stats() Stats {
	return Stats{
		Opened: p.opened.Load(), Reused: p.reused.Load(), Closed: p.closedN.Load(),
		DialErrors: p.dialErrors.Load(), TLSHandshakes: p.tlsHandshakes.Load(), TLSFailures: p.tlsFailures.Load(),
		Idle: p.idle.count.Load(),
	}
}

// Conn is one upstream connection. It is used by one request at a time,
// between Acquire and Release, and must not be used after Release.
type Conn struct {
	net.Conn
	// BR and BW buffer the connection; they are owned by the current user.
	BR *bufio.Reader
	BW *bufio.Writer
	// Reused is true when the connection came from the idle pool.
	Reused bool

	pool  *Pool
	meter *Meter
	rec   errRecorder
	// rdl and wdl are the read and write deadlines in force (UnixNano, 0
	// for none), set through SetReadTimeout and SetWriteTimeout.
	rdl, wdl  int64
	raw       syscall.RawConn
	peekFn    func(fd uintptr) bool
	peekState int8
	// awaitFn is await bound to c (nil on TLS connections); awaitStep and
	// awaitErr are FlushAndAwait's state.
	awaitFn   func(fd uintptr) bool
	awaitStep int8
	awaitErr  error
	requests  int
	// idleSince is the release time (UnixNano); the sweeper reads it while
	// the connection sits in the idle stack.
	idleSince atomic.Int64
}

// DialError wraps a failure to connect (or to complete the TLS handshake):
// nothing was sent, so the request may always be retried elsewhere.
type DialError struct {
	Addr string
	// SNI is the server name of a TLS connection ("" without TLS).
	SNI     string
	Err     error
	Timeout bool
	TLS     bool
}

func (e *DialError) Error() string {
	if e.TLS {
		sni := e.SNI
		if sni == "" {
			sni = "none"
		}
		return fmt.Sprintf("pool: TLS handshake with %s (SNI %s) failed: %v", e.Addr, sni, e.Err)
	}
	return fmt.Sprintf("pool: cannot connect to %s: %v", e.Addr, e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// Acquire flags.
const (
	// Fresh dials a new connection even when idle ones are available (the
	// retry after a stale connection).
	Fresh = 1 << iota
	// Check peeks at an idle connection before handing it out however
	// briefly it was idle, not only after 100 ms: for a request that could
	// not be replayed if the connection turned out to be closed.
	Check
)

// Acquire returns an idle connection, or dials a new one within
// connectTimeout (which bounds the TCP connect and the TLS handshake
// together). now is the caller's clock reading (UnixNano); flags combine
// Fresh and Check. Events are counted on m (nil counts nowhere).
//
// Every connection returned must be given back with exactly one
// Conn.Release.
func (p *Pool) Acquire(m *Meter, now int64, connectTimeout time.Duration, flags int) (*Conn, error) {
	if m == nil {
		m = &nopMeter
	}
	// A closed pool still dials (a request of an older snapshot may be
	// finishing its retries); its connections are closed on release.
	for flags&Fresh == 0 && !p.closed.Load() {
		// Fast path: the most recently released connection.
		c := p.idle.pop()
		if c == nil {
			break
		}
		idle := time.Duration(now - c.idleSince.Load())
		if idle > p.opts.IdleTimeout || ((idle > peekAfter || flags&Check != 0) && !c.alive()) {
			c.discard()
			continue
		}
		c.Reused = true
		c.requests++
		c.meter = m
		p.reused.Add(1)
		m.Reused.Add(1)
		return c, nil
	}
	// Slow path: a new connection.
	c, err := p.dial(m, connectTimeout)
	if err != nil {
		return nil, err
	}
	c.requests = 1
	return c, nil
}

// Release ends the use of c. When reusable is false (the exchange did not
// complete cleanly, or either side asked to close) the connection is
// closed; otherwise it goes back to its pool's idle stack unless it has
// served MaxRequests, the stack is full (keepalive_pool.size), IdleTimeout
// is zero or the pool is closed. now is the caller's clock (UnixNano).
func (c *Conn) Release(reusable bool, now int64) {
	p := c.pool
	if !reusable || c.requests >= p.opts.MaxRequests || p.opts.IdleTimeout <= 0 || p.closed.Load() {
		c.discard()
		return
	}
	c.idleSince.Store(now)
	if !p.idle.push(c) {
		c.discard()
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

// Closed reports whether Close was called.
func (p *Pool) Closed() bool { return p.closed.Load() }

func (p *Pool) drain() {
	for c := p.idle.pop(); c != nil; c = p.idle.pop() {
		c.discard()
	}
}

// sweep closes connections idle for longer than IdleTimeout.
func (p *Pool) sweep(now int64) {
	limit := p.opts.IdleTimeout
	expired := func(c *Conn) bool { return time.Duration(now-c.idleSince.Load()) > limit }
	for i := range p.idle.slots {
		if c := p.idle.steal(i, expired); c != nil {
			c.discard()
		}
	}
}

func (c *Conn) discard() {
	c.pool.closedN.Add(1)
	c.meter.Closed.Add(1)
	_ = c.Conn.Close()
}

func (p *Pool) dial(m *Meter, timeout time.Duration) (*Conn, error) {
	sni := p.SNI()
	if p.opts.TLSError != nil {
		p.tlsFailures.Add(1)
		m.TLSFailures.Add(1)
		return nil, &DialError{Addr: p.opts.Addr, SNI: sni, Err: p.opts.TLSError, TLS: true}
	}
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline}
	nc, err := d.Dial("tcp", p.opts.Addr)
	if err != nil {
		p.dialErrors.Add(1)
		m.DialErrors.Add(1)
		return nil, &DialError{Addr: p.opts.Addr, Err: err, Timeout: isTimeout(err)}
	}
	c := &Conn{pool: p, meter: m}
	if tc, ok := nc.(*net.TCPConn); ok {
		c.raw, _ = tc.SyscallConn()
		c.peekFn = c.peek
	}
	if p.opts.TLS != nil {
		p.tlsHandshakes.Add(1)
		m.TLSHandshakes.Add(1)
		tc := tls.Client(nc, p.opts.TLS)
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			p.tlsFailures.Add(1)
			m.TLSFailures.Add(1)
			_ = nc.Close()
			return nil, &DialError{Addr: p.opts.Addr, SNI: sni, Err: err, Timeout: isTimeout(err), TLS: true}
		}
		nc = tc
	}
	if c.raw != nil && p.opts.TLS == nil {
		c.awaitFn = c.await
	}
	c.Conn = nc
	c.rec.Conn = nc
	c.BR = bufio.NewReaderSize(&c.rec, ReadBufferSize)
	c.BW = bufio.NewWriterSize(nc, WriteBufferSize)
	p.opened.Add(1)
	m.Opened.Add(1)
	return c, nil
}

// errRecorder remembers the last read error of a connection: fasthttp's
// header reader reports any failure before the first byte as io.EOF, which
// hides, for instance, a TLS alert from an upstream that refused our client
// certificate after the handshake (TLS 1.3).
type errRecorder struct {
	net.Conn
	err error
}

func (r *errRecorder) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	if err != nil {
		r.err = err
	}
	return n, err
}

// Cause returns the read error behind err when err is the io.EOF that
// fasthttp reports for any failure before the first response byte, and
// err otherwise.
func (c *Conn) Cause(err error) error {
	if err == io.EOF && c.rec.err != nil {
		return c.rec.err
	}
	return err
}

// alive reports whether an idle connection is still usable: the upstream
// has neither closed it nor sent unsolicited bytes (for TLS, a close_notify
// alert counts as such).
func (c *Conn) alive() bool {
	if c.raw == nil {
		return true
	}
	if c.BR.Buffered() > 0 {
		return false
	}
	c.peekState = 0
	err := c.raw.Read(c.peekFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The last request's read deadline passed while the connection
		// sat idle; that says nothing about the connection. Clear it (the
		// next request sets its own) and look again.
		c.rdl = 0
		if c.Conn.SetReadDeadline(time.Time{}) != nil {
			return false
		}
		err = c.raw.Read(c.peekFn)
	}
	return err == nil && c.peekState == 0
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
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
