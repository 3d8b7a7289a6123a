package pool

// FlushAndAwait writes out BW, then waits until the connection has input
// (the upstream's response) or its read deadline passes, without reading.
// It returns the error of the write; a failed wait is left to the read
// that follows, which meets the same condition (a passed deadline, a
// reset) and reports it as usual.
//
// Why: Go's netpoller reads a socket before waiting on it. Right after a
// request is sent the response cannot be there yet, so reading at once
// costs a system call that finds nothing (EAGAIN) on nearly every request.
// Here the connection's poller state is armed (RawConn.Read resets it)
// before the request is written, inside the RawConn callback, so the
// response's arrival is always signalled: data can only come after the
// request. Set the read deadline first: it bounds the wait.
//
// On a TLS connection, or when a response's bytes are already buffered,
// it only flushes: TLS may hold records of its own, and buffered input
// needs no wait.
func (c *Conn) FlushAndAwait() error {
	if c.awaitFn == nil || c.BR.Buffered() > 0 {
		return c.BW.Flush()
	}
	c.awaitStep, c.awaitErr = 0, nil
	_ = c.raw.Read(c.awaitFn)
	return c.awaitErr
}

// await is the RawConn.Read callback of FlushAndAwait: the first call
// flushes the request and asks to wait (false) unless the write failed;
// the next, made once the socket is readable, ends the wait.
func (c *Conn) await(uintptr) bool {
	if c.awaitStep > 0 {
		return true
	}
	c.awaitStep = 1
	if err := c.BW.Flush(); err != nil {
		c.awaitErr = err
		return true
	}
	return false
}
