package core

import "bytes"

// headerNames is a set of the header fields the proxy rewrites or drops,
// found by one pass over a header so that each absent one costs nothing
// (fasthttp's Del and Peek each copy and normalize the name, then scan
// every field).
type headerNames uint16

const (
	hasConnection headerNames = 1 << iota
	hasKeepAlive
	hasProxyConnection
	hasTE
	hasTrailer
	hasUpgrade
	hasExpect
	hasTransferEncoding
	hasForwarded
	hasXForwardedFor
	hasXRealIP
	hasXForwardedHost
	hasXForwardedPort
	hasXForwardedProto

	// allHeaderNames stands for a header that could not be scanned.
	allHeaderNames headerNames = 1<<iota - 1
)

// headerName is a field name with its bit.
type headerName struct {
	name []byte
	bit  headerNames
}

// The fields with a bit: the hop-by-hop ones, for dropHopByHop, and the
// forwarded ones.
var (
	nameKeepAlive        = headerName{strKeepAlive, hasKeepAlive}
	nameProxyConnection  = headerName{strProxyConnection, hasProxyConnection}
	nameTE               = headerName{strTE, hasTE}
	nameTrailer          = headerName{strTrailer, hasTrailer}
	nameUpgrade          = headerName{strUpgrade, hasUpgrade}
	nameExpect           = headerName{strExpect, hasExpect}
	nameTransferEncoding = headerName{strTransferEncoding, hasTransferEncoding}

	// The forwarded fields, for setForwarded.
	nameXForwardedFor   = headerName{strXForwardedFor, hasXForwardedFor}
	nameXRealIP         = headerName{strXRealIP, hasXRealIP}
	nameXForwardedHost  = headerName{strXForwardedHost, hasXForwardedHost}
	nameXForwardedPort  = headerName{strXForwardedPort, hasXForwardedPort}
	nameXForwardedProto = headerName{strXForwardedProto, hasXForwardedProto}
)

// nameBit returns the bit of a field name (any case), or 0. Most names
// are told apart by their length alone.
func nameBit(name []byte) headerNames {
	is := func(known []byte, bit headerNames) headerNames {
		if bytes.EqualFold(name, known) {
			return bit
		}
		return 0
	}
	switch len(name) {
	case 2:
		return is(strTE, hasTE)
	case 6:
		return is(strExpect, hasExpect)
	case 7:
		return is(strTrailer, hasTrailer) | is(strUpgrade, hasUpgrade)
	case 9:
		return is(strForwarded, hasForwarded) | is(strXRealIP, hasXRealIP)
	case 10:
		return is(strConnection, hasConnection) | is(strKeepAlive, hasKeepAlive)
	case 15:
		return is(strXForwardedFor, hasXForwardedFor)
	case 16:
		return is(strProxyConnection, hasProxyConnection) | is(strXForwardedHost, hasXForwardedHost) |
			is(strXForwardedPort, hasXForwardedPort)
	case 17:
		return is(strTransferEncoding, hasTransferEncoding) | is(strXForwardedProto, hasXForwardedProto)
	}
	return 0
}

// scanHeaderNames returns the names of the set present in raw, the
// request's header fields as received (fasthttp's RawHeaders: "Name:
// value" lines, CRLF or LF ended). An empty raw (a header built rather than
// parsed) reports every name, so that callers fall back to looking.
func scanHeaderNames(raw []byte) headerNames {
	if len(raw) == 0 {
		return allHeaderNames
	}
	var set headerNames
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue // blank or a folded continuation
		}
		if i := bytes.IndexByte(line, ':'); i > 0 {
			set |= nameBit(bytes.TrimRight(line[:i], " \t"))
		}
	}
	return set
}
