package core

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// strictOrigin is a raw TCP origin with a strict HTTP/1.1 parser. It
// records every complete request it parses, marking any it finds
// malformed or ambiguous, and answers each with a small 200.
type strictOrigin struct {
	port int
	mu   sync.Mutex
	seen []string // "METHOD target", with " BAD" when malformed
}

func startStrictOrigin(tb testing.TB) *strictOrigin {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	o := &strictOrigin{port: ln.Addr().(*net.TCPAddr).Port}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go o.serve(c)
		}
	}()
	return o
}

func (o *strictOrigin) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, bad, err := strictRead(br)
		if err != nil {
			return // the connection ended inside a request: none recorded
		}
		if bad {
			req += " BAD"
		}
		o.mu.Lock()
		o.seen = append(o.seen, req)
		o.mu.Unlock()
		if bad {
			return
		}
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
			return
		}
	}
}

// take returns and forgets what the origin recorded.
func (o *strictOrigin) take() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	s := o.seen
	o.seen = nil
	return s
}

var errIncomplete = errors.New("incomplete request")

// strictRead reads one request; bad reports a framing or syntax problem
// (RFC 9112) that a gateway must never let through.
func strictRead(br *bufio.Reader) (req string, bad bool, err error) {
	req, bad, _, err = readRequest(br, false)
	return req, bad, err
}

// readRequest reads one request. With client set it reads as the
// reference for what a client meant: it also takes what RFC 9112 lets a
// server accept and the gateway does (empty lines before the request, a
// bare LF ending the request line, HTTP/1.0 without Host, absolute-form,
// blanks after a chunk size), and reports an absolute-form target in the
// origin-form the gateway forwards.
func readRequest(br *bufio.Reader, client bool) (req string, bad, chunked bool, err error) {
	inTrailer := false
	line := func() (string, error) {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", errIncomplete
		}
		if !strings.HasSuffix(l, "\r\n") {
			// The gateway takes a bare LF in the trailer section (and
			// then closes the connection).
			if !(client && inTrailer) {
				bad = true
			}
			return strings.TrimSuffix(l, "\n"), nil
		}
		l = l[:len(l)-2]
		if strings.ContainsAny(l, "\r\x00") {
			bad = true
		}
		return l, nil
	}
	var first string
	for {
		l, err := br.ReadString('\n')
		if err != nil {
			return "", false, false, errIncomplete
		}
		if client && (l == "\r\n" || l == "\n") {
			continue // empty lines before a request
		}
		first = strings.TrimSuffix(l, "\n")
		if !strings.HasSuffix(first, "\r") && !client {
			bad = true
		}
		first = strings.TrimSuffix(first, "\r")
		if strings.ContainsAny(first, "\r\x00") {
			bad = true
		}
		break
	}
	parts := strings.Split(first, " ")
	http10 := client && len(parts) == 3 && parts[2] == "HTTP/1.0"
	// A client may send any HTTP/1.x (RFC 9110 §2.5); the gateway speaks 1.1.
	http1x := client && len(parts) == 3 && len(parts[2]) == 8 && strings.HasPrefix(parts[2], "HTTP/1.") &&
		parts[2][7] >= '0' && parts[2][7] <= '9'
	if len(parts) != 3 || (parts[2] != "HTTP/1.1" && !http1x) || len(parts[1]) == 0 {
		bad = true
	}
	req = first
	if len(parts) >= 2 {
		target := parts[1]
		if client && (strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://")) {
			rest := target[strings.Index(target, "//")+2:]
			if i := strings.IndexAny(rest, "/?"); i >= 0 && rest[i] == '/' {
				target = rest[i:]
			} else if i >= 0 {
				target = "/" + rest[i:]
			} else {
				target = "/"
			}
		}
		if target == "" || target[0] != '/' {
			bad = true
		}
		req = parts[0] + " " + target
	}
	var cl, te []string
	hosts := 0
	for {
		l, err := line()
		if err != nil {
			return "", false, false, err
		}
		if l == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") || l[0] == ' ' || l[0] == '\t' {
			bad = true
		}
		v = strings.Trim(v, " \t")
		switch strings.ToLower(k) {
		case "content-length":
			cl = append(cl, v)
		case "transfer-encoding":
			te = append(te, v)
		case "host":
			hosts++
		}
	}
	if (hosts != 1 && !(http10 && hosts == 0)) || len(cl) > 1 || (len(cl) > 0 && len(te) > 0) || len(te) > 1 || (len(te) == 1 && !strings.EqualFold(te[0], "chunked")) {
		bad = true
	}
	switch {
	case len(te) > 0:
		chunked = true
		for {
			l, err := line()
			if err != nil {
				return "", false, false, err
			}
			sizeText := strings.SplitN(l, ";", 2)[0]
			if client {
				sizeText = strings.TrimRight(sizeText, " \t")
			}
			size, perr := strconv.ParseUint(sizeText, 16, 31)
			if perr != nil {
				return req, true, chunked, nil
			}
			if size == 0 {
				inTrailer = true
				for {
					l, err := line()
					if err != nil {
						return "", false, false, err
					}
					if l == "" {
						return req, bad, chunked, nil
					}
				}
			}
			if _, err := io.CopyN(io.Discard, br, int64(size)); err != nil {
				return "", false, false, errIncomplete
			}
			if l, err := line(); err != nil || l != "" {
				return req, true, chunked, nil
			}
		}
	case len(cl) > 0:
		n, perr := strconv.ParseUint(cl[0], 10, 31)
		if perr != nil {
			return req, true, chunked, nil
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return "", false, false, errIncomplete
		}
	}
	return req, bad, chunked, nil
}

// referenceRequests parses the client's bytes as the requests the client
// meant, up to the first one that is malformed, ambiguous or incomplete:
// a gateway may forward these (or fewer), and nothing else.
func referenceRequests(data []byte) []string {
	br := bufio.NewReader(bytes.NewReader(data))
	var out []string
	for {
		req, bad, chunked, err := readRequest(br, true)
		if err != nil || bad {
			return out
		}
		out = append(out, req)
		if chunked {
			return out // the gateway closes the connection after it
		}
	}
}

// fuzzConn is a client connection made of the fuzz input: reads return it
// and then EOF, writes are collected.
type fuzzConn struct {
	in  *bytes.Reader
	out bytes.Buffer
	eof bool
}

func (c *fuzzConn) Read(p []byte) (int, error) {
	n, err := c.in.Read(p)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// ReadEOF reports the end of the input, as the proxy listener's
// connections do.
func (c *fuzzConn) ReadEOF() bool { return c.eof }

func (c *fuzzConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *fuzzConn) Close() error                     { return nil }
func (c *fuzzConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9080} }
func (c *fuzzConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5555} }
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzProxyRequest serves arbitrary client bytes (one connection) with the
// proxy's real server settings and handler, in front of a strict origin.
// Invariants: no panic; the origin parses only well-formed requests, and
// only requests the client meant, in order: those a strict reference
// parser reads from the input before anything ambiguous (nothing smuggled
// inside another request's bytes); the client gets a well-formed stream
// of responses and nothing else.
func FuzzProxyRequest(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n0\r\nT: 1\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 40\r\n\r\nhello",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nContent-Length: 5\r\n\r\nhello",
		"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nX: 1\n\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nContent Length: 5\r\n\r\nhello",
		"POST /nope HTTP/1.1\r\nHost: none\r\nContent-Length: 9000\r\n\r\n" + strings.Repeat("x", 8192) + "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n",
		"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
		"GET http://a/abs?q HTTP/1.1\r\nHost: b\r\n\r\n",
		"HEAD /h HTTP/1.1\r\nHost: a\r\n\r\nGET /g HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /old HTTP/1.0\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"\x16\x03\x01\x00\x05hello",
	} {
		f.Add([]byte(s))
	}
	o := startStrictOrigin(f)
	cfg := NewConfig()
	u := upstreamOf(o.port)
	zero := 0
	u.Retries = &zero
	u.Timeout = &Timeout{Connect: time.Second, Send: time.Second, Read: time.Second}
	cfg.Routes["1"] = &Route{ID: "1", URIs: []string{"/*"}, Hosts: []string{"a"}, Status: 1, Upstream: u}
	rt := NewRuntime()
	f.Cleanup(rt.Close)
	p := NewProxy()
	p.Publish(rt.Compile(cfg, nil))
	l := DefaultLimits()
	l.MaxBodyBytes = 1 << 20
	p.SetLimits(l)

	var forwarded []string // what the handler let through, in order
	var methods []string   // the method of each handled request
	srv := NewServer(func(ctx *fasthttp.RequestCtx) {
		p.Handler(ctx)
		methods = append(methods, string(ctx.Method()))
		if ctx.Response.StatusCode() == 200 {
			forwarded = append(forwarded, string(ctx.Method())+" "+string(ctx.Request.Header.RequestURI()))
		}
	})
	p.ConfigureServer(srv)
	srv.Logger = quietLogger{}

	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 12<<10 {
			// Larger inputs find nothing new and make minimizing slow (fasthttp
			// quotes whole header blocks into some errors).
			return
		}
		forwarded, methods = forwarded[:0], methods[:0]
		o.take()
		c := &fuzzConn{in: bytes.NewReader(data)}
		_ = srv.ServeConn(c)

		// What the origin parsed must be requests the client meant, in
		// order: a subsequence of the reference parse of the input.
		seen := o.take()
		meant := referenceRequests(data)
		j := 0
		for _, s := range seen {
			if strings.HasSuffix(s, " BAD") {
				t.Fatalf("the origin got a malformed request %q from %q", s, data)
			}
			for j < len(meant) && meant[j] != s {
				j++
			}
			if j == len(meant) {
				t.Fatalf("the origin got %q, not a request the client meant (%q; forwarded %q), from %q", s, meant, forwarded, data)
			}
			j++
		}

		br := bufio.NewReader(&c.out)
		for i := 0; ; {
			if _, err := br.Peek(1); err == io.EOF {
				break
			}
			req := &http.Request{Method: "GET"}
			if i < len(methods) {
				req.Method = methods[i]
			}
			resp, err := http.ReadResponse(br, req)
			if err != nil {
				t.Fatalf("malformed response stream %q: %v (input %q)", c.out.Bytes(), err, data)
			}
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				t.Fatalf("malformed response body in %q: %v (input %q)", c.out.Bytes(), err, data)
			}
			resp.Body.Close()
			if resp.StatusCode >= 200 {
				i++
			}
		}
	})
}

// quietLogger drops fasthttp's per-connection error logs (every malformed
// input logs one).
type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
