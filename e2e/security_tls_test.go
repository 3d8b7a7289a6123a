package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/testpki"
)

// TestHTTPSListenerLimits checks the HTTPS listener has the proxy
// listener's protections: smuggling forms are refused, a chunked body the
// client ends with close_notify never reaches the origin whole, and a slow
// header meets the header timeout.
func TestHTTPSListenerLimits(t *testing.T) {
	ca := testpki.NewCA("test CA")
	o := startRawOrigin(t, nil)
	g := startGateway(t, "", "-client-header-timeout", "1s")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	cert := ca.Issue(false, "a.test")
	g.mustDo("PUT", "/apisix/admin/ssls/a", `{"sni":"a.test","cert":`+js(cert.Cert)+`,"key":`+js(cert.Key)+`}`, 201)
	dial := func() *tls.Conn {
		t.Helper()
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.tls, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}

	c := dial()
	io.WriteString(c, "POST /a HTTP/1.1\r\nHost: a.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a.test\r\n\r\n")
	replies, closed := readReplies(c, 2*time.Second)
	c.Close()
	if !eqInts(statuses(replies), []int{400}) || !closed {
		t.Errorf("CL.TE over TLS: %v (closed %v), want 400 and a close", statuses(replies), closed)
	}

	c = dial()
	io.WriteString(c, "POST /cut HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	c.CloseWrite() // close_notify; the TCP connection stays open
	replies, _ = readReplies(c, 2*time.Second)
	c.Close()
	if len(replies) > 0 && replies[0].Status < 400 {
		t.Errorf("a chunked body ended by close_notify: the client got %v", statuses(replies))
	}

	c = dial()
	io.WriteString(c, "GET /slow HTTP/1.1\r\nHost: a.test\r\nX-Slow: ")
	replies, closed = readReplies(c, 3*time.Second)
	c.Close()
	if !closed || len(replies) != 1 || replies[0].Status != 408 {
		t.Errorf("a slow header over TLS: %v (closed %v), want 408 and a close", statuses(replies), closed)
	}

	time.Sleep(100 * time.Millisecond)
	for _, r := range o.requests() {
		if !r.Truncated {
			t.Errorf("the origin received %s %s whole", r.Method, r.Target)
		}
	}
	if got := strings.Join(o.targets(), ","); strings.Contains(got, "smuggled") {
		t.Errorf("the origin received %s", got)
	}
}
