package core

import (
	"errors"
	"io"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// errBodyTooLarge ends a streamed request body that outgrew MaxBodyBytes.
var errBodyTooLarge = errors.New("core: request body exceeds the limit")

// clientBody reads a streamed request body (larger than 64 KiB, or
// chunked) on its way to the upstream. It re-arms the body timeout before
// every read (nginx's client_body_timeout is between two reads), enforces
// MaxBodyBytes on bodies whose length was not known upfront, and remembers
// whether the body was read to its end: if not, the client connection
// must be closed, or the rest of the body would be read as the next
// request. It lives in the pooled reqState, so it costs no allocation.
type clientBody struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
	limit   int64
	// length is the Content-Length, or -1 for a chunked body.
	length int64
	n      int64
	eof    bool
	// status is why reading failed: 408, 413 or 400 (0 while it did not).
	status int
}

// init starts reading ctx's body stream under l and returns the reader.
func (b *clientBody) init(ctx *fasthttp.RequestCtx, l *Limits, length int) io.Reader {
	*b = clientBody{r: ctx.RequestBodyStream(), conn: ctx.Conn(), timeout: l.BodyTimeout,
		limit: l.MaxBodyBytes, length: int64(length)}
	return b
}

// Read reads from the client's body stream.
func (b *clientBody) Read(p []byte) (int, error) {
	if b.timeout > 0 && b.conn != nil {
		_ = b.conn.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		b.status = fasthttp.StatusRequestEntityTooLarge
		return n - int(b.n-b.limit), errBodyTooLarge
	}
	if b.length >= 0 && b.n >= b.length {
		b.eof = true
	}
	if err == io.EOF && b.length < 0 && clientEnded(b.conn) {
		// fasthttp reports a chunked body cut at a chunk boundary by the
		// client closing as a plain io.EOF, as if it had ended: forwarding
		// that end would hand the upstream a complete, shortened body.
		err = io.ErrUnexpectedEOF
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		b.status = fasthttp.StatusBadRequest
		if isTimeoutErr(err) {
			b.status = fasthttp.StatusRequestTimeout
		}
	}
	return n, err
}

// failStatus is the status to answer a request whose body could not be
// read.
func (b *clientBody) failStatus() int {
	if b.status == 0 {
		return fasthttp.StatusBadRequest
	}
	return b.status
}

// finishBody makes sure no byte of the request's body is read as the next
// request on the connection. A body the handler did not consume (a 404, a
// 503, an upstream that failed before the body was sent) is read and
// dropped when it is small, as nginx discards the body of a request it
// answers without it; otherwise the connection is closed.
//
// A chunked body always ends its connection: fasthttp's decoder takes a
// bare LF as the end of the trailer section, where a stricter front proxy
// would still be reading trailer lines, so bytes after it must never be
// parsed as a request (RawHeaders covers the header; fasthttp gives no
// view of the trailer's bytes).
func finishBody(ctx *fasthttp.RequestCtx, cb *clientBody) {
	if !ctx.Request.IsBodyStream() || ctx.Response.ConnectionClose() {
		return
	}
	// Slow path: a request with a body.
	cl := ctx.Request.Header.ContentLength()
	if cl < 0 {
		ctx.SetConnectionClose()
		return
	}
	if cb.eof || (cl <= maxReplayBody && len(ctx.Request.Body()) == cl) {
		return
	}
	ctx.SetConnectionClose()
}

// clientEnded reports whether the client has ended its stream: a read on
// the connection, or under TLS on the connection beneath, found the end.
// The proxy listeners' connections report it (edgeConn and the TLS
// listener's connections, whose end may be a close_notify the TCP
// connection never shows); on others this returns false.
func clientEnded(c net.Conn) bool {
	for c != nil {
		if r, ok := c.(interface{ ReadEOF() bool }); ok && r.ReadEOF() {
			return true
		}
		nc, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return false
		}
		c = nc.NetConn()
	}
	return false
}
