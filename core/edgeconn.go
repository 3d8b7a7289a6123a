package core

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Lingering close, as nginx's lingering_close: when the gateway closes a
// connection on which the client is still sending (the rest of a body it
// refused, a request that met the connection cap), closing at once makes
// the kernel answer the unread bytes with a reset, and the client may lose
// the response it was about to read. The connection is instead half-closed
// and its input read and dropped for a bounded time.
const (
	// lingerTime bounds how long a closed connection's input is drained.
	lingerTime = 2 * time.Second
	// lingerBytes bounds how much of it is read.
	lingerBytes = 4 << 20
	// maxLingering bounds the connections lingering at once; beyond it a
	// connection is closed at once.
	maxLingering = 1024
)

// NewListener wraps a listener of the gateway so that connections closed
// by the gateway while the client still sends close gracefully (see
// lingerTime), so that CloseUnused can end the connections that never sent
// a byte, and so that one client address holds at most maxConnsPerIP
// connections (0: no cap; beyond it a connection is answered 429 and
// closed). It costs one small allocation per connection, none per request.
//
// The per-address cap is here rather than fasthttp's MaxConnsPerIP, whose
// wrapper would hide the connection from the handler (see ReadEOF).
func NewListener(ln net.Listener, maxConnsPerIP int) net.Listener {
	return &edgeListener{Listener: ln, lingering: make(chan struct{}, maxLingering),
		conns: map[*edgeConn]struct{}{}, maxPerIP: maxConnsPerIP, perIP: map[netip.Addr]int{}}
}

type edgeListener struct {
	net.Listener
	lingering chan struct{}
	maxPerIP  int

	mu    sync.Mutex
	conns map[*edgeConn]struct{}
	perIP map[netip.Addr]int
}

// tooManyFromIP is the whole answer to a connection over the per-address cap.
const tooManyFromIP = "HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nContent-Type: text/plain\r\n" +
	"Content-Length: 49\r\n\r\ntoo many connections from your address, try later"

// CloseUnused closes the connections of ln (made by NewListener) on which
// the client has not sent a byte yet. It is for shutdown: fasthttp counts
// such a connection as busy (reading its first request) until the header
// timeout, so it would hold a drain; nginx closes them at once as well.
func CloseUnused(ln net.Listener) {
	l, ok := ln.(*edgeListener)
	if !ok {
		return
	}
	var unused []*edgeConn
	l.mu.Lock()
	for c := range l.conns {
		if !c.used.Load() {
			unused = append(unused, c)
		}
	}
	l.mu.Unlock()
	for _, c := range unused {
		_ = c.Close()
	}
}

// Accept returns the next connection, wrapped when it is TCP; one over
// the per-address cap is refused here and the next one is waited for.
func (l *edgeListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc, ok := c.(*net.TCPConn)
		if !ok {
			return c, nil
		}
		ec := &edgeConn{TCPConn: tc, l: l, fd: -1}
		if rc, err := tc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { ec.fd = int(fd) })
		}
		if ap, err := netip.ParseAddrPort(tc.RemoteAddr().String()); err == nil {
			ec.ip = ap.Addr().Unmap()
		}
		l.mu.Lock()
		if l.maxPerIP > 0 && ec.ip.IsValid() && l.perIP[ec.ip] >= l.maxPerIP {
			l.mu.Unlock()
			// Slow path: refused. The write fits the socket buffer of a
			// fresh connection, so it does not block the accept loop.
			_ = tc.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(tc, tooManyFromIP)
			ec.counted = false
			_ = ec.Close()
			continue
		}
		l.conns[ec] = struct{}{}
		if l.maxPerIP > 0 && ec.ip.IsValid() {
			l.perIP[ec.ip]++
			ec.counted = true
		}
		l.mu.Unlock()
		return ec, nil
	}
}

// edgeConn is a client TCP connection with a lingering Close and deadlines
// re-armed only when they move (edgeconn_deadline.go). Every other method
// is the TCPConn's (fasthttp's keep-alive settings included).
type edgeConn struct {
	*net.TCPConn
	l *edgeListener
	// fd is the socket, for a peek that takes no lock (-1: unknown).
	fd      int
	ip      netip.Addr
	counted bool // in the listener's per-address count
	reading atomic.Int32
	// used is set once the client has sent a byte, eof once a read found
	// the client's end of the stream.
	used   atomic.Bool
	eof    atomic.Bool
	closed atomic.Bool
	// rdl and wdl are the read and write deadlines in force.
	rdl, wdl clientDeadline
}

// Read reads from the connection, noting that a read is in progress, that
// the client has sent something, and that it has ended its stream.
func (c *edgeConn) Read(p []byte) (int, error) {
	c.reading.Add(1)
	n, err := c.TCPConn.Read(p)
	c.reading.Add(-1)
	if n > 0 && !c.used.Load() {
		c.used.Store(true)
	}
	if err == io.EOF {
		c.eof.Store(true)
	}
	return n, err
}

// ReadEOF reports whether the client has ended its side of the
// connection (a read returned io.EOF).
func (c *edgeConn) ReadEOF() bool { return c.eof.Load() }

// Close closes the connection, lingering when input is pending. It never
// blocks: fasthttp closes idle connections from its shutdown loop, under a
// lock, while their goroutines are parked in Read. Such a connection (a
// read in progress) is closed at once, which also ends that read.
func (c *edgeConn) Close() error {
	if c.closed.Swap(true) {
		return c.TCPConn.Close()
	}
	c.l.mu.Lock()
	delete(c.l.conns, c)
	if c.counted {
		if n := c.l.perIP[c.ip] - 1; n > 0 {
			c.l.perIP[c.ip] = n
		} else {
			delete(c.l.perIP, c.ip)
		}
	}
	c.l.mu.Unlock()
	if c.reading.Load() > 0 || !c.pending() {
		return c.TCPConn.Close()
	}
	select {
	case c.l.lingering <- struct{}{}:
		go c.linger()
		return nil
	default:
		return c.TCPConn.Close()
	}
}

// linger half-closes the connection (the client reads the end of the
// response), drops its input until the client closes or the bounds are
// reached, then closes it.
func (c *edgeConn) linger() {
	defer func() { <-c.l.lingering }()
	_ = c.TCPConn.CloseWrite()
	c.rdl.forget()
	_ = c.TCPConn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.TCPConn, lingerBytes)
	_ = c.TCPConn.Close()
}

// pending reports whether unread input waits in the socket: a
// non-blocking MSG_PEEK straight on the descriptor (the connection's own
// raw read would wait for the read lock of a parked Read). The descriptor
// is valid: only Close, once, closes it.
func (c *edgeConn) pending() bool {
	if c.fd < 0 {
		return false
	}
	var b [1]byte
	n, _, err := syscall.Recvfrom(c.fd, b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == nil && n > 0
}
