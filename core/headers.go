package core

import (
	"bytes"
	"io"
	"net"

	"github.com/valyala/fasthttp"
)

// maxReplayBody is the largest request body kept in memory, which makes the
// request replayable on another node. Larger bodies (and chunked ones)
// stream to the upstream and are never replayed once sending started.
const maxReplayBody = 64 << 10

// reqBody describes the client's request body for the tries.
type reqBody struct {
	// buffered is the whole body when it is held in memory.
	buffered []byte
	// stream is the client body stream when it is not.
	stream io.Reader
	// length is the body length, or -1 for a chunked body of unknown length.
	length int
	// replayable is true while the body can be sent again.
	replayable bool
	// sent is set once a streamed body started to be consumed.
	sent bool
}

// prepareRequest rewrites the client's request headers for the upstream
// (forwarded headers, hop-by-hop removal) and decides how its body is sent.
// It returns false when the client's body cannot be read.
func (p *Proxy) prepareRequest(ctx *fasthttp.RequestCtx, st *reqState) (reqBody, bool) {
	h := &ctx.Request.Header

	// X-Forwarded-Host and -Port describe what the client asked for, so
	// they are taken before pass_host may replace Host.
	present := scanHeaderNames(h.RawHeaders())
	host := h.Host()
	setForwarded(h, present, nameXForwardedHost, host)
	st.buf = appendForwardedPort(st.buf[:0], host, ctx.LocalAddr())
	setForwarded(h, present, nameXForwardedPort, st.buf)
	if ctx.IsTLS() {
		setForwarded(h, present, nameXForwardedProto, strHTTPS)
	} else {
		setForwarded(h, present, nameXForwardedProto, strHTTP)
	}

	// X-Forwarded-For: the client's list (all its headers, joined) plus the
	// peer address, as nginx's $proxy_add_x_forwarded_for.
	st.xff = st.xff[:0]
	if present&hasXForwardedFor != 0 {
		for _, v := range h.PeekAll(fasthttp.HeaderXForwardedFor) {
			st.xff = append(st.xff, v...)
			st.xff = append(st.xff, strCommaSpace...)
		}
	}
	st.buf = AppendIP(st.buf[:0], ctx.RemoteAddr())
	st.xff = append(st.xff, st.buf...)
	setForwarded(h, present, nameXForwardedFor, st.xff)
	setForwarded(h, present, nameXRealIP, st.buf)
	if present&hasForwarded != 0 {
		h.DelBytes(strForwarded)
	}

	removeHopByHop(h, present)

	var body reqBody
	if !ctx.Request.IsBodyStream() {
		body.buffered = ctx.Request.Body()
		body.length = len(body.buffered)
		body.replayable = true
		return body, true
	}
	cl := h.ContentLength()
	if cl >= 0 && cl <= maxReplayBody {
		// Small body: read it now so that it can be replayed.
		body.buffered = ctx.Request.Body()
		if len(body.buffered) != cl {
			return body, false
		}
		body.length = cl
		body.replayable = true
		return body, true
	}
	body.stream = st.cbody.init(ctx, p.lim(), cl)
	body.length = cl
	if cl < 0 {
		body.length = -1
	}
	body.replayable = true // until the first byte is consumed
	return body, true
}

// removeHopByHop drops the headers that describe the client connection,
// including any named in its Connection header; present says which of
// them the client sent (scanHeaderNames). The Connection: close flag is
// kept by the server for the client side (it reads it before the handler
// runs); the upstream connection stays keep-alive.
func removeHopByHop(h *fasthttp.RequestHeader, present headerNames) {
	dropHopByHop(h, present, nameKeepAlive, nameProxyConnection, nameTE, nameTrailer, nameUpgrade, nameExpect)
}

// hopByHopHeader is what dropHopByHop needs of a request or response
// header.
type hopByHopHeader interface {
	PeekBytes(key []byte) []byte
	DelBytes(key []byte)
	ResetConnectionClose()
}

// dropHopByHop deletes from h the Connection field and every field it
// names, resets the connection-close flag, and deletes each of names that
// present holds.
func dropHopByHop[H hopByHopHeader](h H, present headerNames, names ...headerName) {
	if present&hasConnection != 0 {
		if v := h.PeekBytes(strConnection); len(v) > 0 {
			delConnectionTokens(v, h.DelBytes)
			h.DelBytes(strConnection)
		}
	}
	h.ResetConnectionClose()
	for _, n := range names {
		if present&n.bit != 0 {
			h.DelBytes(n.name)
		}
	}
}

// setForwarded makes value the only field named n: the client's own
// fields of that name, all of them, are dropped first when present says
// there are any.
func setForwarded(h *fasthttp.RequestHeader, present headerNames, n headerName, value []byte) {
	if present&n.bit != 0 {
		h.DelBytes(n.name)
	}
	// SetCanonical: the names are constants in fasthttp's canonical form.
	h.SetCanonical(n.name, value)
}

// delConnectionTokens calls del for each field named in a Connection
// header's value.
func delConnectionTokens(v []byte, del func([]byte)) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		if tok = bytes.TrimSpace(tok); len(tok) > 0 {
			del(tok)
		}
	}
}

// appendForwardedPort appends the port of the Host header, else the port
// the client connected to.
func appendForwardedPort(dst, host []byte, local net.Addr) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host[i:], ']') < 0 && i+1 < len(host) {
		return append(dst, host[i+1:]...)
	}
	if a, ok := local.(*net.TCPAddr); ok {
		return fasthttp.AppendUint(dst, a.Port)
	}
	return dst
}

// cleanResponseHeader drops hop-by-hop headers from an upstream response
// and reports whether the upstream asked to close the connection.
func cleanResponseHeader(h *fasthttp.ResponseHeader) (upstreamClose bool) {
	upstreamClose = h.ConnectionClose()
	var present headerNames
	for k := range h.All() {
		present |= nameBit(k)
	}
	dropHopByHop(h, present, nameKeepAlive, nameProxyConnection, nameTrailer, nameUpgrade, nameTransferEncoding)
	h.SetProtocol(strHTTP11)
	return upstreamClose
}
