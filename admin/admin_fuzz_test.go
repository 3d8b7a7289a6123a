package admin

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/store"
	"github.com/valyala/fasthttp"
)

// newTestAPI runs the Admin API over a real bbolt store in a temp dir.
func newTestAPI(tb testing.TB) (*API, fasthttp.RequestHandler, store.Store) {
	tb.Helper()
	st, err := store.OpenBolt(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	rt := core.NewRuntime()
	ctx, cancel := context.WithCancel(context.Background())
	m := &core.Manager{Store: st, Runtime: rt, Proxy: core.NewProxy()}
	if err := m.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cancel(); st.Close(); rt.Close() })
	a := &API{Store: st, Manager: m, Logf: func(string, ...any) {}}
	return a, a.Handler(), st
}

// call runs one admin request in-process and returns status and body.
func call(h fasthttp.RequestHandler, method, path string, body []byte) (int, []byte) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod(method)
	ctx.Request.SetRequestURI(path)
	ctx.Request.SetBody(body)
	ctx.Init2(nil, nil, false)
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1234})
	h(&ctx)
	return ctx.Response.StatusCode(), append([]byte(nil), ctx.Response.Body()...)
}

// FuzzAdminWrite sends arbitrary bodies to every write endpoint. The
// handler must never panic or answer 5xx, and a refused write (4xx) must
// leave the store exactly as it was.
func FuzzAdminWrite(f *testing.F) {
	seeds := []string{
		`{"uri":"/a","upstream":{"nodes":{"127.0.0.1:80":1}}}`,
		`{"nodes":{"127.0.0.1:80":1},"type":"roundrobin"}`,
		`{"upstream_id":"1","hosts":["a.com"]}`,
		`{"nodes":null}`, `{"uri":1}`, `[]`, `"x"`, `null`, `{`, `{"a":{"b":[1,2,{"c":null}]}}`,
		`{"uri":"/x","upstream":{"nodes":[{"host":"::1","port":80,"weight":1}]}}`,
	}
	for i, s := range seeds {
		for _, m := range []uint8{0, 1, 2, 3} {
			f.Add(m, uint8(i%3), "1", "", []byte(s))
		}
	}
	f.Add(uint8(2), uint8(1), "1", "nodes", []byte(`{"127.0.0.1:81":2}`))
	f.Add(uint8(2), uint8(0), "1", "upstream/nodes", []byte(`{"127.0.0.1:81":2}`))
	_, h, st := newTestAPI(f)
	call(h, "PUT", "/apisix/admin/upstreams/1", []byte(`{"nodes":{"127.0.0.1:80":1}}`))
	call(h, "PUT", "/apisix/admin/routes/1", []byte(`{"uri":"/a","upstream_id":"1"}`))
	call(h, "PUT", "/apisix/admin/services/1", []byte(`{"upstream_id":"1"}`))

	methods := []string{"PUT", "POST", "PATCH", "DELETE"}
	kinds := []string{"routes", "upstreams", "services"}
	f.Fuzz(func(t *testing.T, m, k uint8, id, sub string, body []byte) {
		method := methods[int(m)%len(methods)]
		path := "/apisix/admin/" + kinds[int(k)%len(kinds)]
		if id != "" {
			path += "/" + id
			if sub != "" {
				path += "/" + sub
			}
		}
		before, _ := st.Revision(context.Background())
		start := time.Now()
		status, resp := call(h, method, path, body)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("%s %s %q took %v", method, path, body, d)
		}
		if status >= 500 {
			t.Fatalf("%s %s %q: status %d %s", method, path, body, status, resp)
		}
		after, _ := st.Revision(context.Background())
		if status >= 400 && after != before {
			t.Fatalf("%s %s %q: refused with %d but the store moved from revision %d to %d", method, path, body, status, before, after)
		}
	})
}
