package core

import (
	"io"
	"net"
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

// NewListener wraps the proxy listener so that connections closed by the
// gateway while the client still sends close gracefully (see lingerTime).
// It costs one small allocation per connection, none per request.
func NewListener(ln net.Listener) net.Listener {
	return &edgeListener{Listener: ln, lingering: make(chan struct{}, maxLingering)}
}

type edgeListener struct {
	net.Listener
	lingering chan struct{}
}

// Accept returns the next connection, wrapped when it is TCP.
func (l *edgeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		return &edgeConn{TCPConn: tc, l: l}, nil
	}
	return c, nil
}

// edgeConn is a client TCP connection with a lingering Close. Every other
// method is the TCPConn's (fasthttp's keep-alive settings included).
type edgeConn struct {
	*net.TCPConn
	l      *edgeListener
	closed atomic.Bool
}

// Close closes the connection, lingering when input is pending.
func (c *edgeConn) Close() error {
	if c.closed.Swap(true) || !c.pending() {
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
	_ = c.TCPConn.SetReadDeadline(time.Now().Add(lingerTime))
	_, _ = io.CopyN(io.Discard, c.TCPConn, lingerBytes)
	_ = c.TCPConn.Close()
}

// pending reports whether unread input waits in the socket: a
// non-blocking MSG_PEEK.
func (c *edgeConn) pending() bool {
	rc, err := c.TCPConn.SyscallConn()
	if err != nil {
		return false
	}
	// A read deadline in the past (a timed-out client) would fail the
	// raw read before the peek.
	_ = c.TCPConn.SetReadDeadline(time.Time{})
	var n int
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true
	})
	return err == nil && perr == nil && n > 0
}
