package core

import (
	"bufio"
	"bytes"
	"net"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"
)

// headerSink keeps the serialized header observable so that the compiler
// cannot drop the work.
var headerSink atomic.Int64

// benchRequestHeader is a realistic client request: a browser-like GET
// that already went through one proxy (X-Forwarded-For, Forwarded), asks
// for keep-alive and names a hop-by-hop header in Connection.
const benchRequestHeader = "GET /api/v1/users/42/orders?limit=20&sort=desc HTTP/1.1\r\n" +
	"Host: api.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: application/json, text/plain, */*\r\n" +
	"Accept-Language: en-GB,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.c2lnbmF0dXJl\r\n" +
	"Cookie: theme=dark; sid=s3cr3t; region=eu\r\n" +
	"X-Request-Id: 8f14e45f-ceea-467e-a9f0-5b3c1d2e4f60\r\n" +
	"X-Forwarded-For: 203.0.113.7\r\n" +
	"Forwarded: for=203.0.113.7;proto=https\r\n" +
	"Keep-Alive: timeout=5\r\n" +
	"Connection: keep-alive, X-Debug-Trace\r\n" +
	"X-Debug-Trace: 1\r\n" +
	"TE: trailers\r\n" +
	"\r\n"

// benchResponseHeader is a typical upstream response header with
// hop-by-hop fields for cleanResponseHeader to drop.
const benchResponseHeader = "HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: 1024\r\n" +
	"Cache-Control: no-store\r\n" +
	"Vary: Accept-Encoding\r\n" +
	"Set-Cookie: sid=s3cr3t; Path=/; HttpOnly\r\n" +
	"X-Request-Id: 8f14e45f-ceea-467e-a9f0-5b3c1d2e4f60\r\n" +
	"Keep-Alive: timeout=60\r\n" +
	"Connection: keep-alive\r\n" +
	"\r\n"

func parseBenchRequest(tb testing.TB) *fasthttp.RequestHeader {
	tb.Helper()
	var h fasthttp.RequestHeader
	if err := h.Read(bufio.NewReader(bytes.NewReader([]byte(benchRequestHeader)))); err != nil {
		tb.Fatal(err)
	}
	return &h
}

func parseBenchResponse(tb testing.TB) *fasthttp.ResponseHeader {
	tb.Helper()
	var h fasthttp.ResponseHeader
	if err := h.Read(bufio.NewReader(bytes.NewReader([]byte(benchResponseHeader)))); err != nil {
		tb.Fatal(err)
	}
	return &h
}

// rewriteOnce restores the client's header from tmpl and runs what the
// proxy does to it before a try: the forwarded headers and hop-by-hop
// removal (prepareRequest), Host per pass_host=pass, and serialization of
// the upstream request header (appendUpstreamHeader). It returns the
// serialized header.
func rewriteOnce(p *Proxy, ctx *fasthttp.RequestCtx, st *reqState, tmpl *fasthttp.RequestHeader) []byte {
	tmpl.CopyTo(&ctx.Request.Header)
	if _, ok := p.prepareRequest(ctx, st); !ok {
		panic("BUG: prepareRequest refused a body-less request")
	}
	st.hdr = appendUpstreamHeader(st.hdr[:0], &ctx.Request.Header)
	return st.hdr
}

func newBenchCtx() *fasthttp.RequestCtx {
	ctx := new(fasthttp.RequestCtx)
	ctx.Init2(nil, nil, false)
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(198, 51, 100, 23), Port: 51234})
	return ctx
}

// TestHeaderRewriteBenchmarkInput checks that the benchmark's request is
// rewritten as the proxy must (so the benchmark measures the real work).
func TestHeaderRewriteBenchmarkInput(t *testing.T) {
	tmpl := parseBenchRequest(t)
	st := statePool.Get().(*reqState)
	defer statePool.Put(st)
	out := string(rewriteOnce(NewProxy(), newBenchCtx(), st, tmpl))
	for _, want := range []string{
		"GET /api/v1/users/42/orders?limit=20&sort=desc HTTP/1.1\r\n",
		"X-Forwarded-For: 203.0.113.7, 198.51.100.23\r\n",
		"X-Real-Ip: 198.51.100.23\r\n",
		"X-Forwarded-Proto: http\r\n",
		"X-Forwarded-Host: api.example.com\r\n",
		"Authorization: Bearer ",
	} {
		if !bytes.Contains([]byte(out), []byte(want)) {
			t.Errorf("upstream header lacks %q:\n%s", want, out)
		}
	}
	for _, gone := range []string{"Keep-Alive:", "X-Debug-Trace:", "Te:", "TE:", "Forwarded: for", "Connection: keep-alive, X-Debug-Trace"} {
		if bytes.Contains([]byte(out), []byte(gone)) {
			t.Errorf("upstream header still has %q:\n%s", gone, out)
		}
	}
}

// BenchmarkHeaderRewrite measures the per-request header work of the
// proxy on a realistic 15-line request, from GOMAXPROCS goroutines.
// "restore" copies the parsed client header back in place: the baseline
// the other cases pay (subtract it). "request" adds the forwarded headers
// (X-Real-IP, X-Forwarded-For, -Proto, -Host, -Port), Forwarded and
// hop-by-hop removal (including a header named in Connection), then the
// serialization of the upstream request header. "response" restores an
// upstream response header and drops its hop-by-hop fields
// (cleanResponseHeader).
//
//	go test -run '^$' -bench HeaderRewrite -benchmem ./core/
func BenchmarkHeaderRewrite(b *testing.B) {
	reqTmpl := parseBenchRequest(b)
	respTmpl := parseBenchResponse(b)
	b.Run("restore", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var h fasthttp.RequestHeader
			n := 0
			for pb.Next() {
				reqTmpl.CopyTo(&h)
				n += len(h.Host())
			}
			headerSink.Add(int64(n))
		})
	})
	b.Run("request", func(b *testing.B) {
		p := NewProxy()
		b.ReportAllocs()
		b.SetBytes(int64(len(benchRequestHeader)))
		b.RunParallel(func(pb *testing.PB) {
			ctx := newBenchCtx()
			st := statePool.Get().(*reqState)
			n := 0
			for pb.Next() {
				n += len(rewriteOnce(p, ctx, st, reqTmpl))
			}
			statePool.Put(st)
			headerSink.Add(int64(n))
		})
	})
	b.Run("response", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var h fasthttp.ResponseHeader
			n := 0
			for pb.Next() {
				respTmpl.CopyTo(&h)
				if cleanResponseHeader(&h) {
					n++
				}
				n += h.ContentLength()
			}
			headerSink.Add(int64(n))
		})
	})
}
