package core

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// varKind selects how a request variable is read.
type varKind uint8

const (
	varInvalid varKind = iota
	varURI
	varRequestURI
	varHost
	varServerName
	varQueryString
	varRemoteAddr
	varRemotePort
	varServerAddr
	varServerPort
	varRequestMethod
	varScheme
	varHostname
	varArg
	varHTTP
	varCookie
	varConsumer
)

var simpleVars = map[string]varKind{
	"uri":            varURI,
	"request_uri":    varRequestURI,
	"host":           varHost,
	"server_name":    varServerName,
	"query_string":   varQueryString,
	"args":           varQueryString,
	"remote_addr":    varRemoteAddr,
	"remote_port":    varRemotePort,
	"server_addr":    varServerAddr,
	"server_port":    varServerPort,
	"request_method": varRequestMethod,
	"scheme":         varScheme,
	"hostname":       varHostname,
	"consumer_name":  varConsumer,
}

// Var is a compiled nginx-style request variable such as `uri`,
// `arg_page`, `http_x_user` or `cookie_session`. It is a small value type;
// reading it allocates nothing.
type Var struct {
	kind varKind
	// name is the query argument, header (in canonical form) or cookie name.
	name string
}

// ParseVar compiles an nginx variable name (without the leading `$`).
func ParseVar(name string) (Var, error) {
	if k, ok := simpleVars[name]; ok {
		return Var{kind: k}, nil
	}
	switch {
	case strings.HasPrefix(name, "arg_") && len(name) > 4:
		return Var{kind: varArg, name: name[4:]}, nil
	case strings.HasPrefix(name, "http_") && len(name) > 5:
		// nginx exposes header X-User-Id as $http_x_user_id.
		h := strings.ReplaceAll(name[5:], "_", "-")
		return Var{kind: varHTTP, name: string(fasthttp.AppendNormalizedHeaderKeyBytes(nil, []byte(h)))}, nil
	case strings.HasPrefix(name, "cookie_") && len(name) > 7:
		return Var{kind: varCookie, name: name[7:]}, nil
	}
	return Var{}, fmt.Errorf("unknown variable %q", name)
}

// HeaderVar returns the variable that reads a request header; `-` and `_`
// are treated alike and case does not matter, as APISIX's chash hash_on=header.
func HeaderVar(name string) Var {
	h := strings.ReplaceAll(name, "_", "-")
	return Var{kind: varHTTP, name: string(fasthttp.AppendNormalizedHeaderKeyBytes(nil, []byte(h)))}
}

// CookieVar returns the variable that reads a cookie (case-sensitive name).
func CookieVar(name string) Var { return Var{kind: varCookie, name: name} }

// ConsumerVar returns the variable holding the authenticated consumer name.
// No authentication plugin exists yet, so it is never set.
func ConsumerVar() Var { return Var{kind: varConsumer} }

// RemoteAddrVar returns the client address variable (the chash fallback).
func RemoteAddrVar() Var { return Var{kind: varRemoteAddr} }

// Value appends the variable's value for the request to buf and returns the
// value. The result may alias the request or buf, and is valid until either
// changes. ok is false when the variable is not set (Lua nil).
func (v Var) Value(ctx *fasthttp.RequestCtx, buf []byte) (val []byte, ok bool) {
	switch v.kind {
	case varURI:
		return ctx.Path(), true
	case varRequestURI:
		return ctx.RequestURI(), true
	case varHost, varServerName:
		h := ctx.Request.Header.Host()
		return AppendLowerHost(buf, h), true
	case varQueryString:
		return ctx.URI().QueryString(), true
	case varRemoteAddr:
		return AppendIP(buf, ctx.RemoteAddr()), true
	case varRemotePort:
		if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
			return strconv.AppendInt(buf, int64(a.Port), 10), true
		}
		return nil, false
	case varServerAddr:
		return AppendIP(buf, ctx.LocalAddr()), true
	case varServerPort:
		if a, ok := ctx.LocalAddr().(*net.TCPAddr); ok {
			return strconv.AppendInt(buf, int64(a.Port), 10), true
		}
		return nil, false
	case varRequestMethod:
		return ctx.Method(), true
	case varScheme:
		if ctx.IsTLS() {
			return strHTTPS, true
		}
		return strHTTP, true
	case varHostname:
		return hostnameBytes, true
	case varArg:
		b := ctx.QueryArgs().Peek(v.name)
		if b == nil {
			return nil, false
		}
		return b, true
	case varHTTP:
		b := ctx.Request.Header.Peek(v.name)
		if b == nil {
			return nil, false
		}
		return b, true
	case varCookie:
		b := ctx.Request.Header.Cookie(v.name)
		if b == nil {
			return nil, false
		}
		return b, true
	}
	return nil, false
}

// AppendLowerHost appends host without its port, lower-cased, to dst.
func AppendLowerHost(dst, host []byte) []byte {
	end := len(host)
	if end > 0 && host[0] == '[' {
		// IPv6 literal: keep up to the closing bracket.
		for i := 0; i < len(host); i++ {
			if host[i] == ']' {
				end = i + 1
				break
			}
		}
	} else {
		for i := len(host) - 1; i >= 0; i-- {
			c := host[i]
			if c == ':' {
				end = i
				break
			}
			if c < '0' || c > '9' {
				break
			}
		}
	}
	// nginx's $host drops a trailing dot ("foo.com." is "foo.com").
	if end > 1 && host[end-1] == '.' {
		end--
	}
	for _, c := range host[:end] {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// AppendIP appends the IP of a TCP address in its textual form.
func AppendIP(dst []byte, addr net.Addr) []byte {
	a, ok := addr.(*net.TCPAddr)
	if !ok {
		return dst
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return dst
	}
	return ip.Unmap().AppendTo(dst)
}

var hostnameBytes = func() []byte {
	h, _ := os.Hostname()
	return []byte(h)
}()
