package health

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// ProbeSpec is one active probe, as APISIX sends it: a TCP connect, then
// for https a TLS handshake, then `GET <Path> HTTP/1.1` with
// `Connection: close`, the configured headers and `Host`, reading only the
// status line. Timeout bounds each socket operation (connect, handshake,
// write, read), as in lua-resty-healthcheck.
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

var errBadStatusLine = errors.New("health: no status line in the first 512 bytes")

var probeBufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 512)
	return &b
}}

// Probe is the real ProbeFunc: it talks to the target over the network.
func Probe(ctx context.Context, s *ProbeSpec) ProbeResult {
	d := net.Dialer{Timeout: s.Timeout}
	c, err := d.DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return ProbeResult{Err: err}
	}
	defer c.Close()
	// Give up at once when ctx ends (the manager is closing).
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if s.Type == "tcp" {
		return ProbeResult{}
	}
	if s.Type == "https" {
		cfg := &tls.Config{InsecureSkipVerify: !s.VerifyCertificate, MinVersion: tls.VersionTLS12} //nolint:gosec // https_verify_certificate: false asks for it.
		if host := hostOnly(s.Host); host != "" {
			cfg.ServerName = host
		}
		tc := tls.Client(c, cfg)
		_ = c.SetDeadline(time.Now().Add(s.Timeout))
		if err := tc.HandshakeContext(ctx); err != nil {
			return ProbeResult{Err: err}
		}
		c = tc
	}
	bp := probeBufPool.Get().(*[]byte)
	defer probeBufPool.Put(bp)
	req := append((*bp)[:0], "GET "...)
	req = append(req, s.Path...)
	req = append(req, " HTTP/1.1\r\nConnection: close\r\n"...)
	req = append(req, s.Headers...)
	req = append(req, "Host: "...)
	req = append(req, s.Host...)
	req = append(req, "\r\nUser-Agent: edgeway-health-check\r\n\r\n"...)
	_ = c.SetWriteDeadline(time.Now().Add(s.Timeout))
	if _, err := c.Write(req); err != nil {
		return ProbeResult{Err: err}
	}
	_ = c.SetReadDeadline(time.Now().Add(s.Timeout))
	line := req[:0]
	for {
		if len(line) == cap(line) {
			// No line end within the buffer: not an HTTP status line.
			return ProbeResult{}
		}
		n, err := c.Read(line[len(line):cap(line)])
		line = line[:len(line)+n]
		if i := indexByte(line, '\n'); i >= 0 {
			*bp = line
			return ProbeResult{Status: parseStatusLine(line[:i])}
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return ProbeResult{Err: err}
		}
	}
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

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// hostOnly strips a port from a Host value and returns "" for an IP.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
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
