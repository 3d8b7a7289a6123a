// Command origin is a minimal, allocation-free HTTP origin for load tests:
// it answers every request with a fixed body and adds
// its own port as the X-Origin header so a load test can see the spread.
// With -say-addr the body is the origin's address, for tutorials.
//
//	origin -listen 127.0.0.1:1980,127.0.0.1:1981 -size 1024
package main

import (
	"flag"
	"log"
	"net"
	"strings"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:1980", "comma-separated addresses to serve on")
	size := flag.Int("size", 1024, "response body size in bytes")
	sayAddr := flag.Bool("say-addr", false, "answer with the origin's own address (\"origin 127.0.0.1:1980\") instead of a fixed body")
	flag.Parse()
	body := make([]byte, *size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	addrs := strings.Split(*listen, ",")
	done := make(chan error, len(addrs))
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			log.Fatalf("origin: %v", err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		portHeader := []byte(port)
		reply := body
		if *sayAddr {
			reply = []byte("origin " + ln.Addr().String() + "\n")
		}
		srv := &fasthttp.Server{
			Handler: func(ctx *fasthttp.RequestCtx) {
				ctx.Response.Header.SetBytesV("X-Origin", portHeader)
				ctx.SetContentType("text/plain")
				ctx.SetBody(reply)
			},
			NoDefaultDate: true,
		}
		log.Printf("origin: listening on %s (%d-byte body)", ln.Addr(), *size)
		go func() { done <- srv.Serve(ln) }()
	}
	log.Fatal(<-done)
}
