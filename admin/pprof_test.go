package admin

import (
	"bytes"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestPprofBehindKey checks that Go's profiler answers on the admin
// listener only with the admin key.
func TestPprofBehindKey(t *testing.T) {
	a, _, _ := newTestAPI(t)
	a.Key = "s3cret"
	h := a.Handler()
	get := func(key string) (int, []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.SetRequestURI("/debug/pprof/goroutine?debug=1")
		if key != "" {
			ctx.Request.Header.Set("X-API-KEY", key)
		}
		ctx.Init2(nil, nil, false)
		ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234})
		h(&ctx)
		return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
	}
	if code, _ := get(""); code != fasthttp.StatusUnauthorized {
		t.Fatalf("without the key: %d, want 401", code)
	}
	if code, _ := get("wrong"); code != fasthttp.StatusUnauthorized {
		t.Fatalf("with a wrong key: %d, want 401", code)
	}
	code, body := get("s3cret")
	if code != fasthttp.StatusOK || !bytes.Contains(body, []byte("goroutine profile")) {
		t.Fatalf("with the key: %d %.200s", code, body)
	}
}
