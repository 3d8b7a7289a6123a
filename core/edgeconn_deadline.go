package core

import (
	"sync/atomic"
	"time"

	"github.com/edgeway/gateway/pool"
)

// A client deadline already in force is kept when it falls short of a
// newly asked one by at most 1/64 of the time left (pool.KeepDeadline, the
// upstream connections' rule). fasthttp sets up to four deadlines per
// request (idle, header, body, send), each now plus a timeout of typically
// 60 s; re-arming one costs a timer update under a runtime lock, keeping it
// a clock read. A 60 s timeout fires at the earliest after 59.06 s.

// clientDeadline caches the deadline in force in one direction of a client
// connection, as Unix nanoseconds (0: none). It is set and read by the
// connection's serving goroutine; the atomics make a stray concurrent call
// (shutdown, lingering close) safe, not ordered.
type clientDeadline struct{ unixNano atomic.Int64 }

// keep reports whether the deadline in force may stand for t: it is not
// later than t, still in the future, and earlier by at most 1/64 of the
// time left until t. Otherwise it records t and returns false (the caller
// then arms t). The time left is read from the monotonic clock alone
// (time.Until on a t made from time.Now), half the cost of time.Now.
func (d *clientDeadline) keep(t time.Time) bool {
	if t.IsZero() {
		d.unixNano.Store(0)
		return false
	}
	want := t.UnixNano()
	// The clock is read only when the cheap conditions hold.
	if cur := d.unixNano.Load(); cur != 0 && cur <= want && pool.KeepDeadline(cur, want, time.Until(t)) {
		return true
	}
	d.unixNano.Store(want)
	return false
}

// forget drops the cached deadline, so that the next one asked is armed.
func (d *clientDeadline) forget() { d.unixNano.Store(0) }

// SetReadDeadline arms t unless the read deadline in force is close
// enough (see clientDeadline.keep).
func (c *edgeConn) SetReadDeadline(t time.Time) error {
	if c.rdl.keep(t) {
		return nil
	}
	return c.TCPConn.SetReadDeadline(t)
}

// SetWriteDeadline is SetReadDeadline for the write deadline.
func (c *edgeConn) SetWriteDeadline(t time.Time) error {
	if c.wdl.keep(t) {
		return nil
	}
	return c.TCPConn.SetWriteDeadline(t)
}

// SetDeadline sets both deadlines.
func (c *edgeConn) SetDeadline(t time.Time) error {
	c.rdl.forget()
	c.wdl.forget()
	return c.TCPConn.SetDeadline(t)
}
