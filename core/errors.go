package core

import (
	"github.com/valyala/fasthttp"
)

// notFoundBody is APISIX's body for a request no route matches.
var notFoundBody = []byte(`{"error_msg":"404 Route Not Found"}` + "\n")

// errorPages are nginx-style bodies for the statuses the gateway generates.
var errorPages = map[int][]byte{}

func init() {
	for _, s := range []int{400, 404, 500, 502, 503, 504} {
		line := fasthttp.AppendUint(nil, s)
		line = append(line, ' ')
		line = append(line, fasthttp.StatusMessage(s)...)
		page := "<html>\r\n<head><title>" + string(line) + "</title></head>\r\n<body>\r\n<center><h1>" +
			string(line) + "</h1></center>\r\n<hr><center>edgeway</center>\r\n</body>\r\n</html>\r\n"
		errorPages[s] = []byte(page)
	}
}

// writeNotFound answers a request that no route matches, as APISIX.
func writeNotFound(ctx *fasthttp.RequestCtx) int {
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(fasthttp.StatusNotFound)
	ctx.Response.Header.SetContentTypeBytes(strContentTypeTextPlain)
	ctx.Response.SetBodyRaw(notFoundBody)
	return fasthttp.StatusNotFound
}

// writeError answers with a gateway-generated status. upstreamStatus, when
// non-empty, is the chain of upstream statuses (X-APISIX-Upstream-Status).
func writeError(ctx *fasthttp.RequestCtx, status int, upstreamStatus []byte) int {
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(status)
	if len(upstreamStatus) > 0 {
		ctx.Response.Header.SetBytesKV(strUpstreamStatus, upstreamStatus)
	}
	if page, ok := errorPages[status]; ok {
		ctx.Response.Header.SetContentTypeBytes(strContentTypeHTML)
		ctx.Response.SetBodyRaw(page)
	}
	if status == fasthttp.StatusBadRequest {
		ctx.SetConnectionClose()
	}
	return status
}
