package core

import (
	"github.com/edgeway/gateway/lb"
	"github.com/valyala/fasthttp"
)

// hashKey is an upstream's chash key (`hash_on` and `key`) compiled for the
// hot path: a list of literal and variable parts whose values are hashed
// one after the other, which gives the hash of their concatenation without
// building it. Reading it allocates nothing.
type hashKey struct {
	parts []keyPart
}

// keyPart is a literal or a variable of a key.
type keyPart struct {
	lit   string
	v     Var
	isVar bool
	// def is the value of an unset `${var ?? def}`.
	def string
}

// compileHashKey compiles an upstream's hash_on and key (already validated):
//
//   - vars: the variable named by key (`remote_addr`, `uri`, `arg_x`, ...);
//   - header: the request header key (case and `-`/`_` do not matter);
//   - cookie: the cookie key (case-sensitive);
//   - consumer: the authenticated consumer (none exist yet: always unset);
//   - vars_combinations: key is a template such as `$http_a-$arg_b`;
//     unset variables count as "".
//
// The key is missing when its variable is unset or, for a template, when no
// variable of it is set (or it has none); the request's remote_addr is
// hashed instead, as APISIX.
func compileHashKey(hashOn, key string) *hashKey {
	k := &hashKey{}
	single := func(v Var) { k.parts = []keyPart{{v: v, isVar: true}} }
	switch hashOn {
	case "", "vars":
		if v, err := ParseVar(key); err == nil {
			single(v)
		}
	case "header":
		single(HeaderVar(key))
	case "cookie":
		single(CookieVar(key))
	case "consumer":
		single(ConsumerVar())
	case "vars_combinations":
		k.parts = compileKeyTemplate(key)
	}
	return k
}

// compileKeyTemplate splits a vars_combinations template into parts:
// `$name`, `${name}` and `${name ?? default}` are variables, `\$name` is
// literal text (APISIX's resolve_var).
func compileKeyTemplate(tpl string) []keyPart {
	var parts []keyPart
	lit := func(s string) {
		if s != "" {
			parts = append(parts, keyPart{lit: s})
		}
	}
	at := 0
	for _, m := range varRefPattern.FindAllStringSubmatchIndex(tpl, -1) {
		if m[0] > 0 && tpl[m[0]-1] == '\\' {
			continue
		}
		lit(tpl[at:m[0]])
		at = m[1]
		var name, def string
		if m[2] >= 0 {
			name, def = splitDefault(tpl[m[2]:m[3]])
		} else {
			name = tpl[m[4]:m[5]]
		}
		v, err := ParseVar(name)
		if err != nil {
			// Validation refuses unknown variables; one that slipped
			// through is never set.
			continue
		}
		parts = append(parts, keyPart{v: v, isVar: true, def: def})
	}
	lit(tpl[at:])
	return parts
}

// splitDefault splits `name ?? default` (spaces around either are dropped).
func splitDefault(s string) (name, def string) {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '?' && s[i+1] == '?' {
			return trimSpace(s[:i]), trimSpace(s[i+2:])
		}
	}
	return trimSpace(s), ""
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// sum returns the hash of the request's key (lb.KeyHash), using buf as
// scratch space.
func (k *hashKey) sum(ctx *fasthttp.RequestCtx, buf []byte) uint64 {
	h := lb.NewKeyHash()
	resolved := 0
	for i := range k.parts {
		p := &k.parts[i]
		if !p.isVar {
			h = h.AddString(p.lit)
			continue
		}
		if val, ok := p.v.Value(ctx, buf[:0]); ok {
			h = h.Add(val)
			resolved++
		} else {
			h = h.AddString(p.def)
		}
	}
	if resolved > 0 {
		return h.Sum64()
	}
	// Missing key: APISIX's "chash_key fetch is nil, use default chash_key
	// remote_addr".
	return lb.NewKeyHash().Add(AppendIP(buf[:0], ctx.RemoteAddr())).Sum64()
}
