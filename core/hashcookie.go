package core

import (
	"math/rand/v2"

	"github.com/valyala/fasthttp"
)

// hashCookie is an Upstream.HashCookie compiled: Kong's consistent hashing
// on a cookie gives a client that has none a fresh random (UUID v4) value,
// hashes this request on it and sets it on the response so that the
// client's next requests land on the same node.
type hashCookie struct {
	name []byte
	// attrs is what follows the value in Set-Cookie: "; Path=/; SameSite=Lax; HttpOnly".
	attrs []byte
}

func compileHashCookie(u *Upstream) *hashCookie {
	if u.HashCookie == nil || u.HashOn != "cookie" || u.Key == "" {
		return nil
	}
	path := u.HashCookie.Path
	if path == "" {
		path = "/"
	}
	return &hashCookie{
		name:  []byte(u.Key),
		attrs: []byte("; Path=" + path + "; SameSite=Lax; HttpOnly"),
	}
}

// ensure gives the request the hash cookie when it has none: the value is
// added to the request's Cookie header (so the hash key is read from it,
// and the upstream sees the value the client will send from now on) and
// the Set-Cookie value is prepared in st.setCookie. It reports whether a
// cookie was issued.
func (c *hashCookie) ensure(ctx *fasthttp.RequestCtx, st *reqState) bool {
	h := &ctx.Request.Header
	if len(h.CookieBytes(c.name)) > 0 {
		return false
	}
	st.setCookie = append(st.setCookie[:0], c.name...)
	st.setCookie = append(st.setCookie, '=')
	start := len(st.setCookie)
	st.setCookie = appendUUID(st.setCookie)
	h.SetCookieBytesKV(c.name, st.setCookie[start:])
	st.setCookie = append(st.setCookie, c.attrs...)
	return true
}

// appendUUID appends a random version 4 UUID in its text form.
func appendUUID(dst []byte) []byte {
	const hex = "0123456789abcdef"
	var b [16]byte
	hi, lo := rand.Uint64(), rand.Uint64()
	for i := range 8 {
		b[i] = byte(hi >> (8 * i))
		b[8+i] = byte(lo >> (8 * i))
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	for i, x := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[x>>4], hex[x&15])
	}
	return dst
}
