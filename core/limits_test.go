package core

import (
	"bufio"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// parsedCtx returns a request context whose request was parsed from raw
// by fasthttp, as the server does (so that RawHeaders is set).
func parsedCtx(tb testing.TB, raw string) *fasthttp.RequestCtx {
	tb.Helper()
	ctx := &fasthttp.RequestCtx{}
	if err := ctx.Request.Header.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatalf("fasthttp refuses %q: %v", raw, err)
	}
	return ctx
}

func TestCheckRequest(t *testing.T) {
	l := DefaultLimits()
	l.MaxURIBytes = 32
	l.MaxHeaderCount = 4
	l.MaxBodyBytes = 100
	cases := []struct {
		name, raw string
		want      int
	}{
		{"plain", "GET /a HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"HTTP/1.0 without headers", "GET /a HTTP/1.0\r\n\r\n", 0},
		{"chunked", "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 0},
		{"chunked, any case and OWS", "POST /a HTTP/1.1\r\nHost: a\r\ntransfer-encoding:\tChunked \r\n\r\n", 0},
		{"Content-Length and Transfer-Encoding", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
		{"Transfer-Encoding then Content-Length", "POST /a HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: chunked\r\ncontent-length: 3\r\n\r\n", 400},
		{"Transfer-Encoding identity", "POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
		{"obs-fold", "GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n", 400},
		{"obs-fold with a tab", "GET /a HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n", 400},
		{"bare LF", "GET /a HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n", 400},
		{"space in a name", "GET /a HTTP/1.1\r\nHost: a\r\nX Y: 1\r\n\r\n", 400},
		{"4 fields", "GET /a HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 0},
		{"5 fields", "GET /a HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", 431},
		{"URI at the limit", "GET /" + strings.Repeat("u", 31) + " HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"URI over the limit", "GET /" + strings.Repeat("u", 32) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414},
		{"HTTP/2.0", "GET /a HTTP/2.0\r\nHost: a\r\n\r\n", 505},
		{"HTTP/1.9", "GET /a HTTP/1.9\r\nHost: a\r\n\r\n", 0},
		{"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405},
		{"TRACE", "TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405},
		{"asterisk", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"absolute-form with userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400},
		{"body at the limit", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n", 0},
		{"body over the limit", "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := l.checkRequest(parsedCtx(t, c.raw)); got != c.want {
				t.Fatalf("checkRequest = %d, want %d", got, c.want)
			}
		})
	}
}

// TestAbsoluteForm checks an absolute-form target becomes origin-form with
// its authority as Host, as RFC 9112 §3.2.2 has the server use it.
func TestAbsoluteForm(t *testing.T) {
	l := DefaultLimits()
	for _, c := range []struct{ target, host, uri string }{
		{"http://b.example/x/y?q=1", "b.example", "/x/y?q=1"},
		{"HTTPS://b.example:8443/x", "b.example:8443", "/x"},
		{"http://b.example", "b.example", "/"},
		{"http://b.example?q=1", "b.example", "/?q=1"},
		{"http://[::1]:80/x", "[::1]:80", "/x"},
	} {
		ctx := parsedCtx(t, "GET "+c.target+" HTTP/1.1\r\nHost: a.example\r\n\r\n")
		if got := l.checkRequest(ctx); got != 0 {
			t.Fatalf("%s: refused with %d", c.target, got)
		}
		h := &ctx.Request.Header
		if string(h.Host()) != c.host || string(h.RequestURI()) != c.uri {
			t.Errorf("%s: Host %q target %q; want %q %q", c.target, h.Host(), h.RequestURI(), c.host, c.uri)
		}
	}
}

// TestZeroLimitsDisable checks a zero limit means no limit.
func TestZeroLimitsDisable(t *testing.T) {
	var l Limits
	raw := "POST /" + strings.Repeat("u", 20000) + " HTTP/1.1\r\nHost: a\r\nContent-Length: 999999999\r\n" +
		strings.Repeat("X: 1\r\n", 500) + "\r\n"
	ctx := &fasthttp.RequestCtx{}
	if err := ctx.Request.Header.Read(bufio.NewReaderSize(strings.NewReader(raw), 64<<10)); err != nil {
		t.Fatal(err)
	}
	if got := l.checkRequest(ctx); got != 0 {
		t.Fatalf("zero limits refused with %d", got)
	}
}

func TestUpstreamHeaderNames(t *testing.T) {
	for _, c := range []struct {
		raw string
		bad bool
	}{
		{"HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false},
		{"HTTP/1.1 200 OK\r\nX A: 1\r\nContent-Length: 0\r\n\r\n", true},
	} {
		var h fasthttp.ResponseHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(c.raw))); err != nil {
			t.Fatal(err)
		}
		if err := checkResponseHeader(&h); (err != nil) != c.bad {
			t.Errorf("%q: %v", c.raw, err)
		}
	}
}

func TestRedactRequestBytes(t *testing.T) {
	for in, want := range map[string]string{
		`error when serving connection "127.0.0.1:1"<->"127.0.0.1:2": error when reading request headers: cannot find whitespace in the first line of request "GET /\r\nX-API-KEY: k\r\n\r\n": buffer size=30`: `error when serving connection "127.0.0.1:1"<->"127.0.0.1:2": error when reading request headers: cannot find whitespace in the first line of request [request bytes not logged]`,
		`error when serving connection "a"<->"b": read: connection reset by peer`:          `error when serving connection "a"<->"b": read: connection reset by peer`,
		`upstream /apisix/routes/1 node 1.2.3.4:80: cannot read response header: timeout`:  `upstream /apisix/routes/1 node 1.2.3.4:80: cannot read response header: timeout`,
		`error when serving connection "a"<->"b": core: no SSL object serves SNI "c.test"`: `error when serving connection "a"<->"b": core: no SSL object serves SNI "c.test"`,
	} {
		if got := redactRequestBytes(in); got != want {
			t.Errorf("redact(%q)\n = %q\nwant %q", in, got, want)
		}
	}
}

// TestHeaderReceivedBodyTimeout: a request with a body gets the body
// timeout; one without keeps the header timeout's deadline (ReadTimeout 0
// tells fasthttp to set none). Both get the send timeout.
func TestHeaderReceivedBodyTimeout(t *testing.T) {
	p := NewProxy()
	l := DefaultLimits()
	l.BodyTimeout, l.SendTimeout = 7*time.Second, 9*time.Second
	p.SetLimits(l)
	for _, tc := range []struct {
		req  string
		read time.Duration
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 0},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", 7 * time.Second},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", 7 * time.Second},
	} {
		var h fasthttp.RequestHeader
		if err := h.Read(bufio.NewReader(strings.NewReader(tc.req))); err != nil {
			t.Fatal(err)
		}
		c := p.headerReceived(&h)
		if c.ReadTimeout != tc.read || c.WriteTimeout != 9*time.Second {
			t.Errorf("%q: read timeout %v, write timeout %v; want %v, 9s", tc.req, c.ReadTimeout, c.WriteTimeout, tc.read)
		}
	}
}
