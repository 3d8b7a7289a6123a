package core

import (
	"bytes"
	"errors"
	"net"
	"time"

	"github.com/valyala/fasthttp"
)

// Limits are the protections of the proxy listener against hostile or
// broken clients. A zero field disables that limit, except where noted.
//
// Some limits are settings of the fasthttp server, read by fasthttp per
// connection without synchronisation: they apply to servers configured
// after the change (ConfigureServer), so changing them needs a restart.
// The others are read by the handler from an atomic pointer on every
// request and take effect at once after Proxy.SetLimits (the config file
// reload). Each field says which.
type Limits struct {
	// HeaderTimeout bounds the time from a connection's first byte (on a
	// keep-alive connection, the next request's first byte) to the end of
	// the request header: a slow client gets 408 and the connection is
	// closed (nginx's client_header_timeout). A connection that sends
	// nothing at all is closed after it too. Default 60 s. Restart.
	HeaderTimeout time.Duration
	// BodyTimeout bounds the time between two reads of a streamed request
	// body, and the time to read a body of up to 64 KiB (nginx's
	// client_body_timeout). Default 60 s. Reloadable.
	BodyTimeout time.Duration
	// SendTimeout bounds the time between two writes of the response to
	// the client; a client that stops reading is disconnected (nginx's
	// send_timeout). Default 60 s. Reloadable.
	SendTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request (nginx's keepalive_timeout); zero means the header
	// timeout (fasthttp's rule). Default 60 s. Restart.
	IdleTimeout time.Duration
	// MaxConns caps the client connections served at once by one
	// listener; a connection beyond it is answered 503 and closed. The
	// cap bounds the memory client connections can take (23–35 KiB each,
	// see docs/security.md). Zero is fasthttp's default, 262,144.
	// Default 10,000. Restart.
	MaxConns int
	// MaxConnsPerIP caps the connections of one client address; beyond it
	// a connection is answered 429 and closed. Default 0 (no cap: clients
	// behind one NAT share an address). It is enforced by the listener:
	// pass it to NewListener. Restart.
	MaxConnsPerIP int
	// MaxHeaderBytes bounds the request line and header together; a larger
	// one is answered 431. It is also the size of each connection's read
	// buffer. Default 16 KiB. Restart.
	MaxHeaderBytes int
	// MaxHeaderCount bounds the number of header fields (431).
	// Default 100. Reloadable.
	MaxHeaderCount int
	// MaxURIBytes bounds the request-target (414). Default 8 KiB.
	// Reloadable.
	MaxURIBytes int
	// MaxBodyBytes bounds the request body (413): upfront by its
	// Content-Length, and while streaming a chunked body. Default 0, no
	// limit, as APISIX's client_max_body_size 0 (bodies are streamed, so
	// a large one costs the gateway no memory). Reloadable.
	MaxBodyBytes int64
}

// DefaultLimits returns the defaults documented on Limits.
func DefaultLimits() Limits {
	return Limits{
		HeaderTimeout:  60 * time.Second,
		BodyTimeout:    60 * time.Second,
		SendTimeout:    60 * time.Second,
		IdleTimeout:    60 * time.Second,
		MaxConns:       10000,
		MaxHeaderBytes: 16 << 10,
		MaxHeaderCount: 100,
		MaxURIBytes:    8 << 10,
	}
}

// minHeaderBytes is the smallest read buffer accepted: fasthttp needs room
// for a request line and a few headers.
const minHeaderBytes = 1 << 10

var defaultLimits = DefaultLimits()

// SetLimits makes l the limits new requests are checked against. The
// restart-only fields take effect on servers configured afterwards.
func (p *Proxy) SetLimits(l Limits) {
	p.limits.Store(&l)
}

// Limits returns the limits in force.
func (p *Proxy) Limits() Limits { return *p.lim() }

func (p *Proxy) lim() *Limits {
	if l := p.limits.Load(); l != nil {
		return l
	}
	return &defaultLimits
}

// ConfigureServer applies the proxy's limits to srv (a server made by
// NewServer) and installs the hooks that enforce the reloadable ones.
// Call it before srv serves.
func (p *Proxy) ConfigureServer(srv *fasthttp.Server) {
	applyLimits(srv, p.lim())
	srv.HeaderReceived = p.headerReceived
	srv.ExpectHandler = p.expectContinue
}

// applyLimits sets the restart-only limits on srv.
func applyLimits(srv *fasthttp.Server, l *Limits) {
	srv.ReadTimeout = l.HeaderTimeout
	srv.IdleTimeout = l.IdleTimeout
	srv.WriteTimeout = l.SendTimeout
	srv.Concurrency = l.MaxConns
	srv.ReadBufferSize = max(l.MaxHeaderBytes, minHeaderBytes)
	if l.MaxHeaderBytes <= 0 {
		srv.ReadBufferSize = defaultLimits.MaxHeaderBytes
	}
	srv.ErrorHandler = parseErrorHandler
	// fasthttp's parse errors would otherwise log raw request bytes, which
	// carry clients' cookies and credentials: SecureErrorLogMessage covers
	// most branches, the logger the rest.
	srv.SecureErrorLogMessage = true
	srv.Logger = RedactingLogger{}
}

// headerReceived runs once the request header is read, before any body
// byte: it starts the body timeout (replacing the header timeout) and sets
// the response's write timeout. A request without a body keeps the header
// timeout's deadline, as nothing more is read for it (a deadline and two
// clock reads fewer per such request); the next request sets its own.
func (p *Proxy) headerReceived(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	l := p.lim()
	// -2: neither Content-Length nor chunked, which for a request means
	// no body (RFC 9112 section 6.3; fasthttp reads none).
	if cl := h.ContentLength(); cl == 0 || cl == -2 {
		return fasthttp.RequestConfig{WriteTimeout: l.SendTimeout}
	}
	bodyTimeout := l.BodyTimeout
	if bodyTimeout <= 0 {
		// fasthttp reads a zero as "keep the header timeout's deadline".
		bodyTimeout = noTimeout
	}
	return fasthttp.RequestConfig{ReadTimeout: bodyTimeout, WriteTimeout: l.SendTimeout}
}

// noTimeout stands for a disabled timeout where fasthttp needs a duration.
const noTimeout = 10 * 365 * 24 * time.Hour

// expectContinue decides, for a request with Expect: 100-continue, whether
// the client may send its body: not when the request will be refused.
func (p *Proxy) expectContinue(ctx *fasthttp.RequestCtx) int {
	if status := p.lim().checkRequest(ctx); status != 0 {
		return status
	}
	return fasthttp.StatusContinue
}

// parseErrorHandler answers a request fasthttp could not read.
func parseErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusBadRequest
	var small *fasthttp.ErrSmallBuffer
	var ne net.Error
	switch {
	case errors.As(err, &small):
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.As(err, &ne) && ne.Timeout():
		status = fasthttp.StatusRequestTimeout
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status = fasthttp.StatusRequestEntityTooLarge
	}
	refuse(ctx, status)
}

// refuse answers with a gateway error page and closes the connection: a
// refused request may have left bytes on it that must not be read as the
// next request.
func refuse(ctx *fasthttp.RequestCtx, status int) int {
	writeError(ctx, status, nil)
	ctx.SetConnectionClose()
	return status
}

func init() {
	for _, s := range []int{405, 408, 413, 414, 431, 505} {
		line := fasthttp.AppendUint(nil, s)
		line = append(line, ' ')
		line = append(line, fasthttp.StatusMessage(s)...)
		errorPages[s] = []byte("<html>\r\n<head><title>" + string(line) + "</title></head>\r\n<body>\r\n<center><h1>" +
			string(line) + "</h1></center>\r\n<hr><center>edgeway</center>\r\n</body>\r\n</html>\r\n")
	}
}

// checkRequest applies the edge rules to a request fasthttp has parsed. It
// returns 0 when the request may be served, else the status to refuse it
// with. fasthttp itself refuses duplicate Content-Length, unsupported
// transfer codings, NUL and bare CR bytes, invalid methods and targets and
// more (see docs/security.md); this adds what it lets through. It neither
// locks nor allocates.
func (l *Limits) checkRequest(ctx *fasthttp.RequestCtx) int {
	h := &ctx.Request.Header
	if status := l.checkRawHeaders(h.RawHeaders()); status != 0 {
		return status
	}
	uri := h.RequestURI()
	if l.MaxURIBytes > 0 && len(uri) > l.MaxURIBytes {
		return fasthttp.StatusRequestURITooLong
	}
	if proto := h.Protocol(); len(proto) != 8 || proto[5] != '1' {
		// fasthttp accepts any HTTP/d.d; only HTTP/1.x is spoken here.
		return fasthttp.StatusHTTPVersionNotSupported
	}
	switch m := h.Method(); string(m) {
	case fasthttp.MethodConnect, fasthttp.MethodTrace:
		// As nginx: a reverse proxy neither tunnels nor echoes requests.
		return fasthttp.StatusMethodNotAllowed
	}
	if uri[0] != '/' {
		// Slow path: absolute-form or asterisk-form.
		if status := originForm(h); status != 0 {
			return status
		}
	}
	if l.MaxBodyBytes > 0 && int64(h.ContentLength()) > l.MaxBodyBytes {
		return fasthttp.StatusRequestEntityTooLarge
	}
	return 0
}

// checkRawHeaders scans the header block as received, once: every line
// must end in CRLF (a bare LF could end the header early for one parser
// and not another), no line may be folded (obs-fold), no field name may
// hold a space, Transfer-Encoding may only be "chunked" and may not come
// with Content-Length, and the number of fields is bounded. raw is empty
// for a request that was not parsed from the wire (tests).
func (l *Limits) checkRawHeaders(raw []byte) int {
	fields, contentLength, transferEncoding := 0, 0, 0
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		if i <= 0 || raw[i-1] != '\r' {
			return fasthttp.StatusBadRequest
		}
		line := raw[:i-1]
		raw = raw[i+1:]
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fasthttp.StatusBadRequest
		}
		// One pass over the name (short: cheaper than IndexByte calls).
		colon := 0
		for colon < len(line) && line[colon] != ':' {
			if line[colon] == ' ' || line[colon] == '\t' {
				return fasthttp.StatusBadRequest
			}
			colon++
		}
		if colon == 0 || colon == len(line) {
			return fasthttp.StatusBadRequest
		}
		name := line[:colon]
		fields++
		switch len(name) {
		case len("content-length"):
			if equalFoldASCII(name, "content-length") {
				contentLength++
			}
		case len("transfer-encoding"):
			if equalFoldASCII(name, "transfer-encoding") {
				transferEncoding++
				if !equalFoldASCII(trimOWS(line[colon+1:]), "chunked") {
					return fasthttp.StatusBadRequest
				}
			}
		}
	}
	if transferEncoding > 0 && contentLength > 0 {
		return fasthttp.StatusBadRequest
	}
	if l.MaxHeaderCount > 0 && fields > l.MaxHeaderCount {
		return fasthttp.StatusRequestHeaderFieldsTooLarge
	}
	return 0
}

// originForm turns an absolute-form request-target into origin-form, with
// its authority as Host (RFC 9112 §3.2.2: the target's authority wins over
// the Host header), so that the route is matched, and the upstream is
// asked, for the same host. Other forms are refused.
func originForm(h *fasthttp.RequestHeader) int {
	uri := h.RequestURI()
	var rest []byte
	switch {
	case len(uri) > 7 && equalFoldASCII(uri[:7], "http://"):
		rest = uri[7:]
	case len(uri) > 8 && equalFoldASCII(uri[:8], "https://"):
		rest = uri[8:]
	default:
		// asterisk-form (nginx refuses it too) or anything else.
		return fasthttp.StatusBadRequest
	}
	end := len(rest)
	if i := bytes.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	authority := rest[:end]
	if len(authority) == 0 || bytes.IndexByte(authority, '@') >= 0 {
		return fasthttp.StatusBadRequest
	}
	h.SetHostBytes(authority)
	if end == len(rest) || rest[end] != '/' {
		// "http://host" or "http://host?q": the path is "/".
		h.SetRequestURIBytes(append([]byte{'/'}, rest[end:]...))
		return 0
	}
	// SetRequestURIBytes copies with memmove, so the overlap is safe.
	h.SetRequestURIBytes(rest[end:])
	return 0
}

// equalFoldASCII reports whether b equals lower (lower-case ASCII),
// ignoring ASCII case.
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
