package core

// Byte-slice literals used on the hot path, kept in one place so header
// names are spelled once and never converted per request.
var (
	strHTTP  = []byte("http")
	strSlash = []byte("/")
	strHTTPS = []byte("https")

	// The forwarded names are in fasthttp's canonical form (as it
	// normalizes a received name), so that Header.SetCanonical replaces a
	// client's own field of that name instead of adding a second one.
	strXForwardedFor   = []byte("X-Forwarded-For")
	strXRealIP         = []byte("X-Real-Ip")
	strXForwardedProto = []byte("X-Forwarded-Proto")
	strXForwardedHost  = []byte("X-Forwarded-Host")
	strXForwardedPort  = []byte("X-Forwarded-Port")
	strForwarded       = []byte("Forwarded")
	strUpstreamStatus  = []byte("X-APISIX-Upstream-Status")
	strSetCookie       = []byte("Set-Cookie")
	strCommaSpace      = []byte(", ")

	strConnection           = []byte("Connection")
	strKeepAlive            = []byte("Keep-Alive")
	strProxyConnection      = []byte("Proxy-Connection")
	strTE                   = []byte("TE")
	strTrailer              = []byte("Trailer")
	strTransferEncoding     = []byte("Transfer-Encoding")
	strUpgrade              = []byte("Upgrade")
	strExpect               = []byte("Expect")
	strHTTP11               = []byte("HTTP/1.1")
	strContentTypeTextPlain = []byte("text/plain; charset=utf-8")
	strContentTypeHTML      = []byte("text/html; charset=utf-8")
)
