package core

import (
	"time"

	"github.com/valyala/fasthttp"
)

// NewServer returns the fasthttp server for the proxy listener, configured
// for relaying: request bodies stream (so an upload of any size holds only
// a copy buffer), multipart bodies are not parsed, and the server adds no
// Server, Date or Content-Type of its own to relayed responses.
func NewServer(h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:                       h,
		Name:                          "",
		NoDefaultServerHeader:         true,
		NoDefaultDate:                 true,
		NoDefaultContentType:          true,
		DisablePreParseMultipartForm:  true,
		StreamRequestBody:             true,
		MaxRequestBodySize:            maxReplayBody,
		ReadBufferSize:                16 << 10,
		WriteBufferSize:               16 << 10,
		IdleTimeout:                   60 * time.Second,
		CloseOnShutdown:               true,
		DisableHeaderNamesNormalizing: false,
		TCPKeepalive:                  true,
	}
}
