package core

import (
	"encoding/json"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

func exprCtx(uri string, hdr ...string) *fasthttp.RequestCtx {
	var ctx fasthttp.RequestCtx
	ctx.Request.SetRequestURI(uri)
	ctx.Request.Header.SetHost("Example.COM:8080")
	for i := 0; i+1 < len(hdr); i += 2 {
		ctx.Request.Header.Set(hdr[i], hdr[i+1])
	}
	ctx.Init2(nil, nil, false)
	ctx.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 4321})
	return &ctx
}

func TestExprEval(t *testing.T) {
	f := func(rule, uri string, want bool, hdr ...string) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(rule), &v); err != nil {
			t.Fatalf("bad rule %s: %v", rule, err)
		}
		e, err := ParseExpr(v)
		if err != nil {
			t.Fatalf("ParseExpr(%s): %v", rule, err)
		}
		if got := e.Eval(exprCtx(uri, hdr...), make([]byte, 0, 64)); got != want {
			t.Fatalf("%s on %s = %v, want %v", rule, uri, got, want)
		}
	}
	f(`[["arg_k","==","v"]]`, "/?k=v", true)
	f(`[["arg_k","==","v"]]`, "/?k=x", false)
	f(`[["arg_k","==","v"]]`, "/", false)
	f(`[["arg_k","~=","v"]]`, "/", true) // nil ~= "v"
	f(`[["arg_k","v"]]`, "/?k=v", true)  // two-element form means ==
	f(`[["arg_n","==",5]]`, "/?n=5.0", true)
	f(`[["arg_n","==",5]]`, "/?n=0x5", true)
	f(`[["arg_n",">",5]]`, "/?n=6", true)
	f(`[["arg_n",">",5]]`, "/?n=abc", false)
	f(`[["arg_n","<=","10"]]`, "/?n=10", true)
	f(`[["arg_k","==",["a"]]]`, "/?k=", false) // a string never equals a table
	f(`[["arg_k","in",["a","b"]]]`, "/?k=b", true)
	f(`[["arg_k","in",["a","b"]]]`, "/?k=c", false)
	f(`[["http_x_user","~~","^ad"]]`, "/", true, "X-User", "admin")
	f(`[["http_x_user","~*","^AD"]]`, "/", true, "X-User", "admin")
	f(`[["cookie_s","==","1"]]`, "/", true, "Cookie", "s=1; t=2")
	f(`[["host","==","example.com"]]`, "/", true)
	f(`[["remote_addr","ipmatch",["10.0.0.0/8"]]]`, "/", true)
	f(`[["remote_addr","ipmatch","192.168.0.0/16"]]`, "/", false)
	f(`[["arg_k","!","==","v"]]`, "/?k=x", true)
	f(`["OR",["arg_a","==","1"],["arg_b","==","1"]]`, "/?b=1", true)
	f(`["!OR",["arg_a","==","1"],["arg_b","==","1"]]`, "/?b=1", false)
	f(`["AND",["arg_a","==","1"],["arg_b","==","1"]]`, "/?a=1&b=1", true)
	f(`[["arg_a","==","1"],["OR",["arg_b","==","1"],["arg_c","==","1"]]]`, "/?a=1&c=1", true)
	f(`[]`, "/", true)
}

func TestExprParseErrors(t *testing.T) {
	f := func(rule, want string) {
		t.Helper()
		var v any
		if err := json.Unmarshal([]byte(rule), &v); err != nil {
			t.Fatal(err)
		}
		_, err := ParseExpr(v)
		if err == nil || err.Error() != want {
			t.Fatalf("ParseExpr(%s) error %v, want %q", rule, err, want)
		}
	}
	f(`["arg_k","==","v"]`, "rule should be wrapped inside brackets")
	f(`[["arg_k","bad","v"]]`, "invalid operator 'bad'")
	f(`[["arg_k","x","==","v"]]`, "bad 'not' expression")
	f(`["OR",["arg_a","==","1"]]`, "rule too short")
	f(`[["nope","==","1"]]`, `unknown variable "nope"`)
}

func TestLuaToNumber(t *testing.T) {
	f := func(in string, want float64, ok bool) {
		t.Helper()
		got, gotOK := luaToNumber([]byte(in), true)
		if gotOK != ok || (ok && got != want) {
			t.Fatalf("luaToNumber(%q) = %v, %v; want %v, %v", in, got, gotOK, want, ok)
		}
	}
	f("12", 12, true)
	f(" 1.5 ", 1.5, true)
	f("-3", -3, true)
	f(".5", 0.5, true)
	f("1e3", 1000, true)
	f("0x10", 16, true)
	f("abc", 0, false)
	f("beef", 0, false)
	f("1e", 0, false)
	f("", 0, false)
	f("inf", 0, false)
}
