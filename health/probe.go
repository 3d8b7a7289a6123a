package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http/httputil"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ProbeSpec is one active probe, as APISIX sends it: a TCP connect, then
// for https a TLS handshake, then `GET <Path> HTTP/1.1` with the configured
// headers and `Host`. Timeout bounds each socket operation (connect,
// handshake, write, read), as in lua-resty-healthcheck.
//
// With Conns set, http and https probes keep their connection alive between
// probes of the same target (as Envoy's health checker does by default)
// instead of sending `Connection: close` and reading only the status line
// as APISIX does: a probe then costs a write and a read rather than a TCP
// (and TLS) handshake. A failure on a reused connection before any response
// byte is retried once on a fresh connection, so a server closing idle
// connections causes no false failure.
type ProbeSpec struct {
	// Type is http, https or tcp.
	Type string
	// Addr is the address dialed, "ip:port".
	Addr string
	// Path is the request target (http_path).
	Path string
	// Host is the Host header, and the SNI for https when it is a name.
	Host string
	// Headers are extra header lines, each ending in CRLF (req_headers).
	Headers []byte
	Timeout time.Duration
	// VerifyCertificate checks the upstream's certificate for https.
	VerifyCertificate bool
	// Conns, when set, keeps the target's connection between probes.
	Conns *ConnCache
}

// ProbeResult is what a probe saw: an error (connect, TLS, write or read
// failure), or the status of the response (0 when the status line could
// not be parsed). For type tcp a nil error is a success.
type ProbeResult struct {
	Status int
	Err    error
}

// ProbeFunc runs one probe. It must return by about 4 × spec.Timeout and
// give up when ctx ends.
type ProbeFunc func(ctx context.Context, spec *ProbeSpec) ProbeResult

// ConnCache holds a target's idle probe connection between two probes.
// Only one probe of a target runs at a time; Close may be called from
// anywhere.
type ConnCache struct {
	p      atomic.Pointer[probeConn]
	closed atomic.Bool
}

type probeConn struct {
	net.Conn
	br *bufio.Reader
	// reusable is set by a complete keep-alive exchange.
	reusable bool
	// key is what the connection was opened for (type, address, SNI);
	// a probe with another key does not use it.
	key string
}

func (cc *ConnCache) take(key string) *probeConn {
	pc := cc.p.Swap(nil)
	if pc != nil && pc.key != key {
		pc.Close()
		return nil
	}
	return pc
}

func (cc *ConnCache) put(pc *probeConn) {
	if old := cc.p.Swap(pc); old != nil {
		old.Close()
	}
	if cc.closed.Load() {
		cc.Close()
	}
}

// Close closes the idle connection and keeps later ones from being kept.
func (cc *ConnCache) Close() {
	cc.closed.Store(true)
	cc.Drop()
}

// Drop closes the idle connection, if any.
func (cc *ConnCache) Drop() {
	if pc := cc.p.Swap(nil); pc != nil {
		pc.Close()
	}
}

// maxProbeBody is the largest response body read to keep a connection;
// a larger one closes it.
const maxProbeBody = 64 << 10

var probeBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// Probe is the real ProbeFunc: it talks to the target over the network.
func Probe(ctx context.Context, s *ProbeSpec) ProbeResult {
	if s.Type == "tcp" {
		d := net.Dialer{Timeout: s.Timeout}
		c, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return ProbeResult{Err: err}
		}
		c.Close()
		return ProbeResult{}
	}
	if s.Conns == nil {
		pc, err := dialProbe(ctx, s)
		if err != nil {
			return ProbeResult{Err: err}
		}
		defer pc.Close()
		return exchange(ctx, s, pc, false)
	}
	key := s.Type + "|" + s.Addr + "|" + hostOnly(s.Host)
	for {
		pc := s.Conns.take(key)
		reused := pc != nil
		if pc == nil {
			var err error
			if pc, err = dialProbe(ctx, s); err != nil {
				return ProbeResult{Err: err}
			}
			pc.key = key
		}
		res := exchange(ctx, s, pc, true)
		if res.Err == errStale && reused {
			pc.Close()
			continue // once: the next connection is fresh
		}
		if res.Err == nil && res.Status != 0 && pc.reusable {
			pc.reusable = false
			s.Conns.put(pc)
		} else {
			pc.Close()
		}
		if res.Err == errStale {
			res.Err = io.ErrUnexpectedEOF
		}
		return res
	}
}

// dialProbe connects to the target, with TLS for https.
func dialProbe(ctx context.Context, s *ProbeSpec) (*probeConn, error) {
	d := net.Dialer{Timeout: s.Timeout}
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return nil, err
	}
	if s.Type == "https" {
		cfg := &tls.Config{InsecureSkipVerify: !s.VerifyCertificate, MinVersion: tls.VersionTLS12} //nolint:gosec // https_verify_certificate: false asks for it.
		if host := hostOnly(s.Host); host != "" {
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		_ = c.SetDeadline(time.Now().Add(s.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, err
		}
		c = tc
	}
	return &probeConn{Conn: c, br: bufio.NewReaderSize(c, 2048)}, nil
}

// errStale marks a reused connection that failed before any response
// byte: the server had closed it while idle.
var errStale = errors.New("health: stale keep-alive connection")

// exchange sends the probe request on pc and reads the response: the
// status line only when the connection is not kept, the whole response
// (to reuse the connection) when it is.
func exchange(ctx context.Context, s *ProbeSpec, pc *probeConn, keep bool) ProbeResult {
	// Give up at once when ctx ends (the manager is closing).
	stop := context.AfterFunc(ctx, func() { _ = pc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	bp := probeBufPool.Get().(*[]byte)
	req := append((*bp)[:0], "GET "...)
	req = append(req, s.Path...)
	req = append(req, " HTTP/1.1\r\n"...)
	if !keep {
		req = append(req, "Connection: close\r\n"...)
	}
	req = append(req, s.Headers...)
	req = append(req, "Host: "...)
	req = append(req, s.Host...)
	req = append(req, "\r\nUser-Agent: edgeway-health-check\r\n\r\n"...)
	_ = pc.SetWriteDeadline(time.Now().Add(s.Timeout))
	_, err := pc.Write(req)
	*bp = req
	probeBufPool.Put(bp)
	if err != nil {
		return ProbeResult{Err: staleIf(err, keep)}
	}
	_ = pc.SetReadDeadline(time.Now().Add(s.Timeout))
	line, err := pc.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		// No line end within the buffer: not an HTTP status line.
		return ProbeResult{}
	}
	if err != nil {
		if len(line) == 0 {
			err = staleIf(err, keep)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return ProbeResult{Err: err}
	}
	status := parseStatusLine(line)
	if status == 0 || !keep {
		return ProbeResult{Status: status}
	}
	pc.reusable = readRest(pc, status, line)
	return ProbeResult{Status: status}
}

// staleIf turns an EOF or a reset on a kept connection into errStale.
func staleIf(err error, keep bool) error {
	if keep && (err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		return errStale
	}
	return err
}

// readRest reads the header and body of a response whose status line was
// read, and reports whether the connection may carry another probe.
func readRest(pc *probeConn, status int, statusLine []byte) bool {
	http10 := bytes.HasPrefix(statusLine, []byte("HTTP/1.0"))
	hdr, err := textproto.NewReader(pc.br).ReadMIMEHeader()
	if err != nil {
		return false
	}
	conn := strings.ToLower(hdr.Get("Connection"))
	if strings.Contains(conn, "close") || http10 && !strings.Contains(conn, "keep-alive") {
		return false
	}
	if status < 200 || status == 204 || status == 304 {
		return true
	}
	if te := hdr.Get("Transfer-Encoding"); te != "" {
		if !strings.EqualFold(te, "chunked") {
			return false
		}
		n, err := io.CopyN(io.Discard, httputil.NewChunkedReader(pc.br), maxProbeBody+1)
		if n > maxProbeBody || err != io.EOF {
			return false
		}
		// The chunked reader stops at the last chunk; the trailer ends
		// with an empty line.
		_, err = textproto.NewReader(pc.br).ReadMIMEHeader()
		return err == nil
	}
	cl := hdr.Get("Content-Length")
	if cl == "" {
		return false // delimited by the connection closing
	}
	n, err := strconv.ParseInt(cl, 10, 64)
	if err != nil || n < 0 || n > maxProbeBody {
		return false
	}
	_, err = io.CopyN(io.Discard, pc.br, n)
	return err == nil
}

// parseStatusLine returns the status of `HTTP/<d>.<d> <status> ...`, or 0
// when the line does not match (lua-resty-healthcheck's
// ^HTTP/\d+\.\d+\s+(\d+)).
func parseStatusLine(line []byte) int {
	const prefix = "HTTP/"
	if len(line) < len(prefix) || string(line[:len(prefix)]) != prefix {
		return 0
	}
	i := len(prefix)
	digits := func() bool {
		start := i
		for i < len(line) && line[i] >= '0' && line[i] <= '9' {
			i++
		}
		return i > start
	}
	if !digits() || i >= len(line) || line[i] != '.' {
		return 0
	}
	i++
	if !digits() {
		return 0
	}
	start := i
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i == start {
		return 0
	}
	status := 0
	start = i
	for i < len(line) && line[i] >= '0' && line[i] <= '9' && i-start < 4 {
		status = status*10 + int(line[i]-'0')
		i++
	}
	if i == start {
		return 0
	}
	return status
}

// hostOnly strips a port (and IPv6 brackets) from a Host value and
// returns "" for an IP.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if net.ParseIP(h) != nil {
		return ""
	}
	return h
}

// isTimeout reports whether err is a timeout.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &t) && t.Timeout()
}

// renderHeaders turns req_headers ("Name: value") into header lines.
func renderHeaders(hs []string) []byte {
	var b []byte
	for _, h := range hs {
		if h == "" {
			continue
		}
		b = append(b, h...)
		b = append(b, '\r', '\n')
	}
	return b
}

// probeAddr joins a host and port for dialing.
func probeAddr(host string, port int) string { return net.JoinHostPort(host, strconv.Itoa(port)) }
