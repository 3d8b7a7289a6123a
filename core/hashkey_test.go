package core

import (
	"net"
	"testing"

	"github.com/edgeway/gateway/lb"
	"github.com/valyala/fasthttp"
)

// keyCtx builds a request from a URI, header pairs and a client IP.
func keyCtx(uri, ip string, hdr ...string) *fasthttp.RequestCtx {
	ctx := &fasthttp.RequestCtx{}
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("Example.com:8080")
	for i := 0; i+1 < len(hdr); i += 2 {
		ctx.Request.Header.Set(hdr[i], hdr[i+1])
	}
	ctx.Init2(nil, nil, false)
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.ParseIP(ip), Port: 4000})
	return ctx
}

func hashOf(s string) uint64 { return lb.NewKeyHash().AddString(s).Sum64() }

func TestHashKey(t *testing.T) {
	for _, tc := range []struct {
		hashOn, key string
		ctx         *fasthttp.RequestCtx
		want        string // the key hashed
	}{
		{"vars", "remote_addr", keyCtx("/a", "10.0.0.9"), "10.0.0.9"},
		{"vars", "uri", keyCtx("/a/b?x=1", "10.0.0.9"), "/a/b"},
		{"vars", "request_uri", keyCtx("/a/b?x=1", "10.0.0.9"), "/a/b?x=1"},
		{"vars", "host", keyCtx("/", "10.0.0.9"), "example.com"},
		{"vars", "query_string", keyCtx("/?x=1&y=2", "10.0.0.9"), "x=1&y=2"},
		{"vars", "arg_device_id", keyCtx("/?device_id=42", "10.0.0.9"), "42"},
		{"vars", "arg_device_id", keyCtx("/?other=42", "10.0.0.9"), "10.0.0.9"},
		{"vars", "http_x_user", keyCtx("/", "10.0.0.9", "X-User", "bob"), "bob"},
		{"vars", "cookie_sid", keyCtx("/", "10.0.0.9", "Cookie", "a=1; sid=xyz"), "xyz"},
		{"header", "custom_header", keyCtx("/", "10.0.0.9", "Custom-Header", "v1"), "v1"},
		{"header", "X-Sessionid", keyCtx("/", "10.0.0.9", "x-sessionid", "chash_val_1"), "chash_val_1"},
		{"header", "custom_header", keyCtx("/", "10.0.0.9"), "10.0.0.9"},
		{"cookie", "custom-cookie", keyCtx("/", "10.0.0.9", "Cookie", "custom-cookie=c1"), "c1"},
		{"cookie", "custom-cookie", keyCtx("/", "10.0.0.9", "Cookie", "Custom-Cookie=c1"), "10.0.0.9"},
		{"consumer", "", keyCtx("/", "10.0.0.9"), "10.0.0.9"},
		{"vars_combinations", "$http_custom_header-$http_custom_header_second",
			keyCtx("/", "10.0.0.9", "Custom-Header", "a", "Custom-Header-Second", "b"), "a-b"},
		{"vars_combinations", "$http_custom_header-$http_custom_header_second",
			keyCtx("/", "10.0.0.9", "Custom-Header-Second", "b"), "-b"},
		{"vars_combinations", "$http_custom_header-$http_custom_header_second", keyCtx("/", "10.0.0.9"), "10.0.0.9"},
		{"vars_combinations", "${arg_a}:${arg_b ?? none}", keyCtx("/?a=1", "10.0.0.9"), "1:none"},
		{"vars_combinations", `\$arg_a/$arg_b`, keyCtx("/?a=1&b=2", "10.0.0.9"), `\$arg_a/2`},
		{"vars_combinations", "no variables", keyCtx("/", "10.0.0.9"), "10.0.0.9"},
		{"vars_combinations", "$remote_addr$uri", keyCtx("/p", "2001:db8::1"), "2001:db8::1/p"},
	} {
		k := compileHashKey(tc.hashOn, tc.key)
		if got, want := k.sum(tc.ctx, make([]byte, 0, 64)), hashOf(tc.want); got != want {
			t.Errorf("hash_on %s key %q: hash differs from the hash of %q", tc.hashOn, tc.key, tc.want)
		}
	}
}

func TestRetryStatusSet(t *testing.T) {
	rt := NewRuntime()
	defer rt.Close()
	b := buildBalancer("u", &Upstream{RetryOnStatuses: []int{500, 503, 563, 564, 599}}, nil, rt, newUsedKeys())
	for s := 400; s < 700; s++ {
		want := s == 500 || s == 503 || s == 563 || s == 564 || s == 599
		if got := b.retryStatus(s); got != want {
			t.Errorf("retryStatus(%d) = %v", s, got)
		}
	}
}
