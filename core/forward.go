package core

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/edgeway/gateway/lb"
	"github.com/edgeway/gateway/pool"
	"github.com/valyala/fasthttp"
)

// maxBufferedResponse is the largest response body read into memory before
// it is sent to the client; larger, chunked and close-delimited bodies are
// streamed, so a response of any size holds only a copy buffer.
const maxBufferedResponse = 64 << 10

// outcome is the result of one try.
type outcome struct {
	// status is the upstream's status, or 502/504 for a failed try.
	status int
	// done means the response is set on the client context: the request
	// is answered and no retry may follow.
	done bool
	// sent means (part of) the request reached the upstream.
	sent bool
}

// errClientBody marks a failure to read the client's request body.
var errClientBody = errors.New("core: cannot read the client's request body")

// forward runs one try of the request on node n, starting at now. A try on
// a pooled connection that the upstream had closed is repeated once on a
// freshly dialed connection to the same node, when that cannot replay a
// request the upstream acted on.
func (p *Proxy) forward(ctx *fasthttp.RequestCtx, st *reqState, b *Balancer, n *lb.Node, to Timeout, body *reqBody, now time.Time) outcome {
	ref := &b.refs[n.Index]
	pl := ref.poolFor(ctx.Request.Header.Host())
	// A request that could not be replayed on a fresh connection gets an
	// idle connection only after a liveness peek.
	flags := 0
	if !isIdempotent(ctx.Method()) || !body.replayable {
		flags = pool.Check
	}
	for ; ; flags |= pool.Fresh {
		c, err := pl.Acquire(ref.meter, now.UnixNano(), to.Connect, flags)
		if err != nil {
			b.picker.Done(n, 0, true)
			p.logf("upstream %s node %s: %v", b.Key, n.Addr, err)
			var de *pool.DialError
			if errors.As(err, &de) && de.Timeout {
				return outcome{status: fasthttp.StatusGatewayTimeout}
			}
			return outcome{status: fasthttp.StatusBadGateway}
		}
		out, stale := p.exchange(ctx, st, b, n, ref, c, to, body, now)
		if !stale {
			return out
		}
		// Only a reused connection can be stale, and the next one is
		// freshly dialed, so this loops at most once.
		now = time.Now()
	}
}

// exchange writes the request on c and reads the response header. stale
// reports a reused connection that failed before the upstream could have
// acted on the request; the caller then tries once more on a fresh one, and
// the pick stays open (Done is not called).
func (p *Proxy) exchange(ctx *fasthttp.RequestCtx, st *reqState, b *Balancer, n *lb.Node, ref *nodeRef,
	c *pool.Conn, to Timeout, body *reqBody, now time.Time) (out outcome, stale bool) {
	h := &ctx.Request.Header
	switch b.passHost {
	case passHostNode:
		h.SetHostBytes(ref.hostHeader)
	case passHostRewrite:
		h.SetHostBytes(b.upstreamHost)
	default:
		if len(h.Host()) == 0 {
			h.SetHostBytes(ref.hostHeader)
		}
	}
	st.hdr = appendUpstreamHeader(st.hdr[:0], h)

	_ = c.SetWriteTimeout(now, to.Send)
	_, err := c.BW.Write(st.hdr)
	if err == nil && len(body.buffered) > 0 {
		_, err = c.BW.Write(body.buffered)
	}
	if err == nil && body.stream != nil {
		err = copyRequestBody(c, body, to.Send)
	}
	if err == nil {
		// The read timeout bounds the wait for the response, which
		// FlushAndAwait does without an empty read.
		_ = c.SetReadTimeout(now, to.Read)
		err = c.FlushAndAwait()
	}
	if err != nil {
		c.Release(false, 0)
		if errors.Is(err, errClientBody) {
			// The client's fault (a broken, slow or oversized body): the
			// node is not blamed, and the client connection is closed.
			b.picker.Done(n, 0, false)
			status := refuse(ctx, st.cbody.failStatus())
			return outcome{status: status, done: true, sent: true}, false
		}
		if c.Reused && body.replayable {
			// The upstream closed the idle connection: it cannot have
			// acted on a request it did not fully receive.
			return outcome{}, true
		}
		b.picker.Done(n, 0, true)
		p.logf("upstream %s node %s: cannot send request: %v", b.Key, n.Addr, err)
		return outcome{status: statusFor(err), sent: true}, false
	}

	resp := &ctx.Response
	resp.Reset()
	if err = readResponseHeader(&resp.Header, c.BR); err != nil {
		c.Release(false, 0)
		if err == io.EOF && c.Reused && body.replayable && isIdempotent(ctx.Method()) {
			// Closed before any response byte on a reused connection: the
			// keep-alive race. Replaying is safe for an idempotent request.
			return outcome{}, true
		}
		b.picker.Done(n, time.Since(now), true)
		p.logf("upstream %s node %s: cannot read response header: %v", b.Key, n.Addr, c.Cause(err))
		return outcome{status: statusFor(err), sent: true}, false
	}
	status := resp.StatusCode()
	upstreamClose := cleanResponseHeader(&resp.Header)

	// A status the upstream is retried on counts as a failed try for the
	// picker: a node that answers 503 quickly must not look fast.
	failed := b.retryStatus(status)
	if ctx.IsHead() || status < 200 || status == fasthttp.StatusNoContent || status == fasthttp.StatusNotModified {
		c.Release(!upstreamClose && c.BR.Buffered() == 0, now.UnixNano())
		b.picker.Done(n, b.since(now), failed)
		return outcome{status: status, done: true, sent: true}, false
	}
	cl := resp.Header.ContentLength()
	if cl >= 0 && cl <= maxBufferedResponse {
		if err = resp.ReadBody(c.BR, 0); err != nil {
			c.Release(false, 0)
			b.picker.Done(n, time.Since(now), true)
			p.logf("upstream %s node %s: cannot read response body: %v", b.Key, n.Addr, err)
			resp.Reset()
			return outcome{status: statusFor(err), sent: true}, false
		}
		// The release time is the try's start: idle timeouts are seconds,
		// a request microseconds, and a clock read is saved.
		c.Release(responseDone(c, cl, upstreamClose), now.UnixNano())
		b.picker.Done(n, b.since(now), failed)
		return outcome{status: status, done: true, sent: true}, false
	}
	// A streamed body's pace is the client's: the picker gets the latency
	// of the response header.
	s := acquireBodyStream()
	s.init(p, b, n, c, cl, upstreamClose, to.Read, b.since(now), failed)
	s.client, s.sendTimeout = ctx.Conn(), p.lim().SendTimeout
	if cl < 0 {
		cl = -1
	}
	resp.SetBodyStream(s, cl)
	return outcome{status: status, done: true, sent: true}, false
}

// appendUpstreamHeader serializes the request header for the upstream with
// an HTTP/1.1 request line and the client's request-target byte for byte.
func appendUpstreamHeader(dst []byte, h *fasthttp.RequestHeader) []byte {
	start := len(dst)
	dst = h.AppendBytes(dst)
	if h.IsHTTP11() {
		return dst
	}
	// Slow path: an HTTP/1.0 client; the upstream still gets HTTP/1.1.
	line := bytes.IndexByte(dst[start:], '\n')
	proto := bytes.LastIndexByte(dst[start:start+line], ' ')
	rest := append([]byte(nil), dst[start+line-1:]...)
	dst = append(dst[:start+proto+1], strHTTP11...)
	return append(dst, rest...)
}

// readResponseHeader reads the final response header, skipping 1xx
// interim responses (101 is final).
func readResponseHeader(h *fasthttp.ResponseHeader, r *bufio.Reader) error {
	for i := 0; i < 16; i++ {
		if err := h.Read(r); err != nil {
			return err
		}
		if s := h.StatusCode(); s >= 200 || s == fasthttp.StatusSwitchingProtocols {
			return checkResponseHeader(h)
		}
	}
	return errors.New("core: too many interim responses")
}

// copyRequestBody streams the client's body to the upstream, re-arming
// the send timeout for every write (nginx's proxy_send_timeout is between
// two writes).
func copyRequestBody(c *pool.Conn, body *reqBody, sendTimeout time.Duration) error {
	body.sent = true
	body.replayable = false
	bp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bp)
	buf := *bp
	chunked := body.length < 0
	remaining := body.length
	for chunked || remaining > 0 {
		want := len(buf)
		if !chunked && remaining < want {
			want = remaining
		}
		nr, rerr := body.stream.Read(buf[:want])
		if nr > 0 {
			_ = c.SetWriteTimeout(time.Now(), sendTimeout)
			var werr error
			if chunked {
				werr = writeChunk(c, buf[:nr])
			} else {
				_, werr = c.BW.Write(buf[:nr])
				remaining -= nr
			}
			if werr != nil {
				return werr
			}
		}
		if rerr == io.EOF {
			if !chunked && remaining > 0 {
				return errClientBody
			}
			break
		}
		if rerr != nil {
			return errClientBody
		}
	}
	if chunked {
		if _, err := c.BW.WriteString("0\r\n\r\n"); err != nil {
			return err
		}
	}
	return nil
}

func writeChunk(c *pool.Conn, data []byte) error {
	var hex [16]byte
	b := appendHex(hex[:0], uint64(len(data)))
	b = append(b, '\r', '\n')
	if _, err := c.BW.Write(b); err != nil {
		return err
	}
	if _, err := c.BW.Write(data); err != nil {
		return err
	}
	_, err := c.BW.WriteString("\r\n")
	return err
}

func appendHex(dst []byte, v uint64) []byte {
	const digits = "0123456789abcdef"
	if v == 0 {
		return append(dst, '0')
	}
	var tmp [16]byte
	i := len(tmp)
	for v > 0 {
		i--
		tmp[i] = digits[v&15]
		v >>= 4
	}
	return append(dst, tmp[i:]...)
}

var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// statusFor maps a try's error to the status nginx would log for it.
func statusFor(err error) int {
	if isTimeoutErr(err) {
		return fasthttp.StatusGatewayTimeout
	}
	return fasthttp.StatusBadGateway
}

func isTimeoutErr(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (p *Proxy) logf(format string, args ...any) {
	if p.Logf != nil {
		p.Logf(format, args...)
	}
}
