package core

import (
	"errors"

	"github.com/edgeway/gateway/pool"
	"github.com/valyala/fasthttp"
)

// errUpstreamHeader reports an upstream response header that must not be
// relayed.
var errUpstreamHeader = errors.New("core: upstream sent an invalid header field name")

// checkResponseHeader refuses what fasthttp's response parser lets
// through but a client must never receive: a field name holding a space
// (fasthttp keeps it and only marks the connection for closing). nginx
// answers such a response with 502 "upstream sent invalid header"; the
// caller does the same, and discards the connection.
func checkResponseHeader(h *fasthttp.ResponseHeader) error {
	if !h.ConnectionClose() {
		// Fast path: fasthttp marks the connection for closing whenever it
		// accepted a name with a space.
		return nil
	}
	for k := range h.All() {
		for _, c := range k {
			if c == ' ' || c == '\t' {
				return errUpstreamHeader
			}
		}
	}
	return nil
}

// responseDone reports whether c, having carried a response with a body
// of cl bytes read in full, may be reused: the upstream did not ask to
// close, and sent nothing past the body. Bytes past it are in the read
// buffer when the body fit there (fast path: no system call); a larger
// body was read past the buffer, so the socket is peeked (pool.Conn.Quiet).
func responseDone(c *pool.Conn, cl int, upstreamClose bool) bool {
	if upstreamClose || c.BR.Buffered() > 0 {
		return false
	}
	return cl < pool.ReadBufferSize || c.Quiet()
}
