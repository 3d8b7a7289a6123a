// Package testorigin is an allocation-free HTTP/1.1 origin for tests that
// count allocations: it answers every request on a connection with the
// same canned response, so that the allocations measured in the test's
// process are the gateway's own.
package testorigin

import (
	"bytes"
	"crypto/tls"
	"net"
	"testing"
)

// Canned starts an origin on a free 127.0.0.1 port that answers each
// request (a header ending in an empty line; bodies are not expected)
// with response, speaking TLS with cfg when cfg is non-nil. It stops when
// the test ends.
func Canned(t testing.TB, response string, cfg *tls.Config) *net.TCPAddr {
	t.Helper()
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	t.Cleanup(func() { ln.Close() })
	resp := []byte(response)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c, resp)
		}
	}()
	return addr
}

// serve answers the requests of one connection until it ends.
func serve(c net.Conn, resp []byte) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	n := 0
	for {
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
		for {
			end := bytes.Index(buf[:n], []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
			n = copy(buf, buf[end+4:n])
		}
	}
}
