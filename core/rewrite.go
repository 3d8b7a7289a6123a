package core

import (
	"sort"

	"github.com/valyala/fasthttp"
)

// rewriteRule is a PathRewrite compiled for the hot path. It is immutable.
type rewriteRule struct {
	base     []byte
	prefixes []string // longest first
	strip    bool
	v1       bool
}

// compileRewrite returns nil when r leaves every request target as it is
// (no strip, base "/"), so that such routes keep byte-for-byte forwarding.
func compileRewrite(r *PathRewrite) *rewriteRule {
	if r == nil {
		return nil
	}
	base := r.Base
	if base == "" {
		base = "/"
	}
	if base == "/" && (!r.Strip || len(r.StripPrefixes) == 0) {
		// Kong's join is the identity here: "/" + path without its "/",
		// or, for a path-less route, "/" + the path minus "/".
		return nil
	}
	rr := &rewriteRule{base: []byte(base), strip: r.Strip, v1: r.V1}
	prefixes := append([]string(nil), r.StripPrefixes...)
	if len(prefixes) == 0 {
		prefixes = []string{"/"}
	}
	sort.SliceStable(prefixes, func(i, j int) bool { return len(prefixes[i]) > len(prefixes[j]) })
	rr.prefixes = prefixes
	return rr
}

// appendTarget appends the upstream request target for a request whose
// normalized path is path and whose raw query string is query. The path
// parts taken from the request are percent-encoded where RFC 3986 requires
// it (path is decoded). It does not allocate when dst has room.
func (r *rewriteRule) appendTarget(dst, path, query []byte) []byte {
	if len(path) == 0 {
		path = strSlash
	}
	var postfix []byte
	if r.strip {
		// Fast path: one prefix. The router matched the path on one of
		// them; Kong strips the longest one that matches.
		postfix = path[1:]
		for _, p := range r.prefixes {
			if hasPrefix(path, p) {
				postfix = path[len(p):]
				break
			}
		}
	}
	if r.v1 {
		dst = r.joinV1(dst, path, postfix)
	} else {
		dst = r.joinV0(dst, path, postfix)
	}
	if len(query) > 0 {
		dst = append(dst, '?')
		dst = append(dst, query...)
	}
	return dst
}

// joinV0 is Kong's path_handling "v0" (kong/router/utils.lua
// get_upstream_uri_v0), which joins base and postfix with one slash.
func (r *rewriteRule) joinV0(dst, path, postfix []byte) []byte {
	base := r.base
	if base[len(base)-1] == '/' {
		if !r.strip {
			dst = append(dst, base...)
			return appendEscapedPath(dst, path[1:])
		}
		switch {
		case len(postfix) == 0:
			if len(base) == 1 || path[len(path)-1] == '/' {
				return append(dst, base...)
			}
			return append(dst, base[:len(base)-1]...)
		case postfix[0] == '/':
			dst = append(dst, base[:len(base)-1]...)
			return appendEscapedPath(dst, postfix)
		default:
			dst = append(dst, base...)
			return appendEscapedPath(dst, postfix)
		}
	}
	if !r.strip {
		dst = append(dst, base...)
		if len(path) == 1 {
			return dst
		}
		return appendEscapedPath(dst, path)
	}
	switch {
	case len(postfix) == 0:
		dst = append(dst, base...)
		if len(path) > 1 && path[len(path)-1] == '/' {
			dst = append(dst, '/')
		}
		return dst
	case postfix[0] == '/':
		dst = append(dst, base...)
		return appendEscapedPath(dst, postfix)
	default:
		dst = append(dst, base...)
		dst = append(dst, '/')
		return appendEscapedPath(dst, postfix)
	}
}

// joinV1 is Kong's deprecated path_handling "v1": base and postfix are
// concatenated, dropping one slash when both have one at the seam.
func (r *rewriteRule) joinV1(dst, path, postfix []byte) []byte {
	base := r.base
	if !r.strip {
		dst = append(dst, base...)
		return appendEscapedPath(dst, path[1:])
	}
	if base[len(base)-1] == '/' && len(postfix) > 0 && postfix[0] == '/' {
		dst = append(dst, base[:len(base)-1]...)
	} else {
		dst = append(dst, base...)
	}
	return appendEscapedPath(dst, postfix)
}

// pathSafe marks the bytes kept as they are in a path: RFC 3986 unreserved
// characters, sub-delims, ':', '@' and '/'.
var pathSafe = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~!$&'()*+,;=:@/" {
		t[c] = true
	}
	return t
}()

// appendEscapedPath appends a decoded path, percent-encoding what may not
// appear in a request target's path (including '%', '?' and '#').
func appendEscapedPath(dst, p []byte) []byte {
	const hex = "0123456789ABCDEF"
	for _, c := range p {
		if pathSafe[c] {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}

// rewriteTarget replaces the request target sent upstream with the one
// the route's rewrite rule builds. The client's request as parsed (path,
// query) is not changed; only the header's request-target is.
func (r *rewriteRule) rewriteTarget(ctx *fasthttp.RequestCtx, st *reqState) {
	u := ctx.URI()
	st.uri = r.appendTarget(st.uri[:0], u.Path(), u.QueryString())
	ctx.Request.Header.SetRequestURIBytes(st.uri)
}
