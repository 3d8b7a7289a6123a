package core

import (
	"github.com/valyala/fasthttp"
)

// NewServer returns the fasthttp server for the proxy listener, configured
// for relaying: request bodies stream (so an upload of any size holds only
// a copy buffer), multipart bodies are not parsed, and the server adds no
// Server, Date or Content-Type of its own to relayed responses. It has the
// default limits (DefaultLimits); Proxy.ConfigureServer applies others.
func NewServer(h fasthttp.RequestHandler) *fasthttp.Server {
	s := &fasthttp.Server{
		Handler:                       h,
		Name:                          "",
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		DisablePreParseMultipartForm:  true,
		StreamRequestBody:             true,
		MaxRequestBodySize:            maxReplayBody,
		WriteBufferSize:               16 << 10,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		TCPKeepalive:                  true,
	}
	applyLimits(s, &defaultLimits)
	return s
}
