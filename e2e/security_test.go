package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// smuggleCase is one raw exchange: what the client sends on one
// connection, the statuses it must get back, whether the gateway must
// close the connection, and exactly the requests the origin must parse.
type smuggleCase struct {
	name string
	// send builds the bytes for the case's own host.
	send   func(host string) string
	want   []int
	closed bool
	origin []string
}

// smuggleCases are the request smuggling forms and their neighbours that
// must keep working. Every refusal closes the connection.
var smuggleCases = []smuggleCase{
	// Framing conflicts: the classic CL.TE and TE.CL desyncs.
	{"CL.TE", raw("POST /a HTTP/1.1\nHost: HOST\nContent-Length: 6\nTransfer-Encoding: chunked\n\n0\n\nGET /smuggled HTTP/1.1\nHost: HOST\n\n"),
		[]int{400}, true, nil},
	{"TE.CL", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\nContent-Length: 40\n\n0\n\nGET /smuggled HTTP/1.1\nHost: HOST\n\n"),
		[]int{400}, true, nil},
	{"duplicate Content-Length", raw("POST /a HTTP/1.1\nHost: HOST\nContent-Length: 5\nContent-Length: 5\n\nhello"), []int{400}, true, nil},
	{"conflicting Content-Length", raw("POST /a HTTP/1.1\nHost: HOST\nContent-Length: 5\nContent-Length: 44\n\nhelloGET /smuggled HTTP/1.1\nHost: HOST\n\n"),
		[]int{400}, true, nil},
	{"Content-Length list", raw("POST /a HTTP/1.1\nHost: HOST\nContent-Length: 5, 5\n\nhello"), []int{400}, true, nil},
	{"Content-Length sign", raw("POST /a HTTP/1.1\nHost: HOST\nContent-Length: +5\n\nhello"), []int{400}, true, nil},
	{"Transfer-Encoding identity", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: identity\nContent-Length: 5\n\nhello"), []int{400}, true, nil},
	{"Transfer-Encoding gzip, chunked", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: gzip, chunked\n\n0\n\n"), []int{400}, true, nil},
	{"Transfer-Encoding twice", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\nTransfer-Encoding: chunked\n\n0\n\n"), []int{400}, true, nil},
	{"Transfer-Encoding space before colon", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding : chunked\n\n0\n\n"), []int{400}, true, nil},
	{"Transfer-Encoding on HTTP/1.0", raw("POST /a HTTP/1.0\nHost: HOST\nTransfer-Encoding: chunked\n\n0\n\n"), []int{400}, true, nil},
	{"Transfer-Encoding folded", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding:\n chunked\nContent-Length: 3\n\n0\n\n"), []int{400}, true, nil},
	{"obsolete line folding", raw("GET /a HTTP/1.1\nHost: HOST\nX-A: b\n c\n\n"), []int{400}, true, nil},
	{"space in a field name", raw("POST /a HTTP/1.1\nHost: HOST\nContent Length: 5\n\nhello"), []int{400}, true, nil},
	// Chunk sizes.
	{"chunk size not hex", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\n\nzz\nhello\n0\n\n"), []int{400}, true, nil},
	{"chunk size 0x", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\n\n0x5\nhello\n0\n\n"), []int{400}, true, nil},
	{"chunk size overflow", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\n\nffffffffffffffffff1\nhello\n0\n\n"), []int{400}, true, nil},
	{"chunk size negative", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\n\n-5\nhello\n0\n\n"), []int{400}, true, nil},
	{"chunk shorter than its size", raw("POST /a HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\n\n3\nhello\n0\n\n"), []int{400}, true, nil},
	// Bare CR, bare LF, NUL (written raw: no CRLF conversion).
	{"bare LF ends the header early", raw("GET /a HTTP/1.1\r\nHost: HOST\r\nX: 1\n\nGET /smuggled HTTP/1.1\r\nHost: HOST\r\n\r\n"), []int{400}, true, nil},
	{"bare LF line", raw("GET /a HTTP/1.1\r\nHost: HOST\nX-B: 1\r\n\r\n"), []int{400}, true, nil},
	{"bare CR in a value", raw("GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: b\rc\r\n\r\n"), []int{400}, true, nil},
	{"bare CR ends the request line", raw("GET /a HTTP/1.1\rHost: HOST\r\n\r\n"), []int{400}, true, nil},
	{"NUL in a value", raw("GET /a HTTP/1.1\r\nHost: HOST\r\nX-A: b\x00c\r\n\r\n"), []int{400}, true, nil},
	{"NUL in the target", raw("GET /a\x00b HTTP/1.1\r\nHost: HOST\r\n\r\n"), []int{400}, true, nil},
	// Request lines.
	{"invalid method", raw("G(T /a HTTP/1.1\nHost: HOST\n\n"), []int{400}, true, nil},
	{"CONNECT", raw("CONNECT HOST:443 HTTP/1.1\nHost: HOST\n\n"), []int{405}, true, nil},
	{"TRACE", raw("TRACE /a HTTP/1.1\nHost: HOST\n\n"), []int{405}, true, nil},
	{"asterisk-form", raw("OPTIONS * HTTP/1.1\nHost: HOST\n\n"), []int{400}, true, nil},
	{"target without slash", raw("GET a HTTP/1.1\nHost: HOST\n\n"), []int{400}, true, nil},
	{"space in the target", raw("GET /a b HTTP/1.1\nHost: HOST\n\n"), []int{400}, true, nil},
	{"HTTP/2.0 over HTTP/1", raw("GET /a HTTP/2.0\nHost: HOST\n\n"), []int{505}, true, nil},
	{"two Host headers", raw("GET /a HTTP/1.1\nHost: HOST\nHost: other\n\n"), []int{400}, true, nil},
	{"no Host on HTTP/1.1", raw("GET /a HTTP/1.1\nX: 1\n\n"), []int{400}, true, nil},
	// A body the gateway did not need (no route) is drained when small,
	// or the connection closed: either way it is never a request.
	{"body of a 404 hides a request", func(host string) string {
		// The smuggled request starts right after fasthttp's 8 KiB
		// prefetch of the body.
		body := strings.Repeat("x", 8192) + "GET /smuggled HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
		body += strings.Repeat("y", 20000-len(body))
		return "POST /nope HTTP/1.1\r\nHost: nowhere.test\r\nContent-Length: 20000\r\n\r\n" + body +
			"GET /after HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	}, []int{404, 200}, false, []string{"GET /after"}},
	{"chunked body of a 404 hides a request", raw("POST /nope HTTP/1.1\nHost: nowhere.test\nTransfer-Encoding: chunked\n\n23\nGET /smuggled HTTP/1.1\nHost: HOST\n\n\n0\n\n"),
		[]int{404}, true, nil},
	// What must keep working.
	{"plain GET", raw("GET /ok HTTP/1.1\nHost: HOST\n\n"), []int{200}, false, []string{"GET /ok"}},
	{"pipelined GETs", raw("GET /1 HTTP/1.1\nHost: HOST\n\nGET /2 HTTP/1.1\nHost: HOST\n\n"), []int{200, 200}, false, []string{"GET /1", "GET /2"}},
	// A chunked body ends its connection: fasthttp reads a bare LF as the
	// end of the trailer section, which a stricter front proxy would not.
	{"chunked with extension and trailer", raw("POST /c HTTP/1.1\nHost: HOST\nTransfer-Encoding: chunked\n\n5;ext=1\nhello\n0\nX-T: 1\n\nGET /next HTTP/1.1\nHost: HOST\n\n"),
		[]int{200}, true, []string{"POST /c"}},
	{"bare LF ends the trailer", raw("POST /c HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\nGET /smuggled HTTP/1.1\r\nHost: HOST\r\n\r\n"),
		[]int{200}, true, []string{"POST /c"}},
	{"GET with a body", func(host string) string {
		body := "GET /smuggled HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
		return fmt.Sprintf("GET /b HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\n%s", host, len(body), body)
	},
		[]int{200}, false, []string{"GET /b"}},
	{"Expect: 100-continue", raw("POST /e HTTP/1.1\nHost: HOST\nExpect: 100-continue\nContent-Length: 5\n\nhello"), []int{100, 200}, false, []string{"POST /e"}},
	{"absolute-form becomes origin-form", raw("GET http://HOST/abs?q=1 HTTP/1.1\nHost: HOST\n\n"), []int{200}, false, []string{"GET /abs?q=1"}},
	{"absolute-form names another host", raw("GET http://nowhere.test/abs HTTP/1.1\nHost: HOST\n\n"), []int{404}, false, nil},
	{"HTTP/1.0", raw("GET /old HTTP/1.0\nHost: HOST\n\n"), []int{200}, true, []string{"GET /old"}},
	// Never a complete header: the header timeout ends it.
	{"header of bare LFs", func(host string) string { return "GET /a HTTP/1.1\nHost: " + host + "\n\n" }, []int{408}, true, nil},
}

// raw builds a case's bytes from a template: HOST becomes the case's host,
// and a template without any CR has its LFs turned into CRLFs.
func raw(template string) func(host string) string {
	return func(host string) string {
		s := strings.ReplaceAll(template, "HOST", host)
		if !strings.Contains(template, "\r") {
			s = crlf(s)
		}
		return s
	}
}

// TestRequestSmuggling sends each smuggling form on a raw socket and checks
// the origin (a raw TCP server with a strict parser) sees exactly the
// requests the client meant: none for every ambiguous request.
func TestRequestSmuggling(t *testing.T) {
	g := startGateway(t, "", "-client-header-timeout", "1s")
	origins := make([]*rawOrigin, len(smuggleCases))
	for i := range smuggleCases {
		origins[i] = startRawOrigin(t, nil)
		g.mustDo("PUT", fmt.Sprintf("/apisix/admin/routes/c%d", i),
			fmt.Sprintf(`{"uri":"/*","hosts":["c%d.test"],"upstream":{"nodes":{"%s":1}}}`, i, origins[i].Addr), 201)
	}
	for i, c := range smuggleCases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			replies, closed := rawExchange(t, g.proxy, c.send(fmt.Sprintf("c%d.test", i)), 1500*time.Millisecond)
			got := origins[i].targets()
			if !eqInts(statuses(replies), c.want) || closed != c.closed || !eqStrings(got, c.origin) {
				t.Errorf("client got %v (closed %v), origin parsed %s; want %v (closed %v), origin %q",
					statuses(replies), closed, short(got), c.want, c.closed, c.origin)
			}
			for _, r := range origins[i].requests() {
				if r.Bad != "" {
					t.Errorf("the origin received a malformed request: %s", r.Bad)
				}
			}
		})
	}
}

func eqInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestRequestLimits checks each size limit answers its status, closes the
// connection, and never reaches the origin; and that requests just under
// the limits pass.
func TestRequestLimits(t *testing.T) {
	o := startRawOrigin(t, nil)
	g := startGateway(t, "", "-max-header-bytes", "4KiB", "-max-header-count", "20", "-max-uri-bytes", "1KiB", "-max-body-bytes", "100KiB")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)

	headers := func(n int) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "X-H%d: v\r\n", i)
		}
		return b.String()
	}
	chunked := func(n int) string {
		var b strings.Builder
		for sent := 0; sent < n; sent += 8192 {
			fmt.Fprintf(&b, "2000\r\n%s\r\n", strings.Repeat("c", 8192))
		}
		return b.String() + "0\r\n\r\n"
	}
	cases := []struct {
		name   string
		send   string
		want   int
		origin []string
	}{
		{"URI at the limit", "GET /" + strings.Repeat("u", 1023) + " HTTP/1.1\r\nHost: a\r\n\r\n", 200, []string{"GET /" + strings.Repeat("u", 1023)}},
		{"URI over the limit", "GET /" + strings.Repeat("u", 1024) + " HTTP/1.1\r\nHost: a\r\n\r\n", 414, nil},
		{"header over the buffer", "GET /h HTTP/1.1\r\nHost: a\r\nX-Big: " + strings.Repeat("b", 4096) + "\r\n\r\n", 431, nil},
		{"20 fields", "GET /n HTTP/1.1\r\nHost: a\r\n" + headers(19) + "\r\n", 200, []string{"GET /n"}},
		{"21 fields", "GET /n HTTP/1.1\r\nHost: a\r\n" + headers(20) + "\r\n", 431, nil},
		{"body at the limit", "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 102400\r\n\r\n" + strings.Repeat("b", 102400), 200, []string{"POST /b"}},
		{"Content-Length over the limit", "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 102401\r\n\r\n" + strings.Repeat("b", 102401), 413, nil},
		{"Expect: 100-continue over the limit", "POST /b HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 102401\r\n\r\n", 413, nil},
		// A chunked body has no length upfront: it is cut off where it
		// outgrows the limit, and the origin never gets a whole request.
		{"chunked over the limit", "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(200<<10), 413, []string{"POST /c [TRUNCATED]"}},
	}
	for _, c := range cases {
		before := len(o.targets())
		replies, closed := rawExchange(t, g.proxy, c.send, 500*time.Millisecond)
		got := o.waitTargets(before+len(c.origin), 2*time.Second)[before:]
		if len(replies) != 1 || replies[0].Status != c.want || closed != (c.want != 200) || !eqStrings(got, c.origin) {
			t.Errorf("%s: client got %v (closed %v), origin %s; want %d, origin %s", c.name, statuses(replies), closed, short(got), c.want, short(c.origin))
		}
	}
	if code, _, _ := g.get("/still-fine"); code != 200 {
		t.Fatalf("after the refusals: %d", code)
	}
}

// TestRefusedBodyIsNotReset sends a 4 MiB upload to a path without a
// route: the client must read the 404 and a clean end of the connection.
// The gateway half-closes and drains what the client still sends (lingering
// close); closing at once would answer the rest of the upload with a TCP
// reset, which fails the client's write and, on a lossy network or some
// client stacks, loses the answer itself.
func TestRefusedBodyIsNotReset(t *testing.T) {
	g := startGateway(t, "")
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", g.proxy)
		if err != nil {
			t.Fatal(err)
		}
		// Like most clients, send the whole request before reading (the
		// write may fail once the gateway has answered; that is fine).
		const size = 4 << 20
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n", size)
		_, werr := io.CopyN(c, zeros{}, size)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("try %d: the client lost the answer: %v", i, err)
		}
		body, err := io.ReadAll(resp.Body)
		if resp.StatusCode != 404 || err != nil || !strings.Contains(string(body), "404 Route Not Found") {
			t.Fatalf("try %d: %d %q %v", i, resp.StatusCode, body, err)
		}
		// The connection ends with a FIN after the answer, not a reset.
		_, rerr := br.ReadByte()
		c.Close()
		if werr != nil || rerr != io.EOF {
			t.Fatalf("try %d: the upload failed with %v and the connection ended with %v, want a clean close", i, werr, rerr)
		}
	}
}

// TestTruncatedBodies sends bodies the client cuts short by closing its
// side of the connection: the origin must never receive them as complete
// requests. (fasthttp reports a chunked body cut at a chunk boundary as a
// normal end; the gateway catches it from the connection's end of stream.)
func TestTruncatedBodies(t *testing.T) {
	o := startRawOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), 201)
	for _, c := range []struct{ name, send string }{
		{"chunked, cut after a chunk", "POST /c1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
		{"chunked, cut after the last chunk's size", "POST /c2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"},
		{"chunked, cut inside a chunk", "POST /c3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + "10000\r\n" + strings.Repeat("c", 70000)},
		{"large Content-Length, cut", "POST /l HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n" + strings.Repeat("l", 100000)},
		{"small Content-Length, cut", "POST /s HTTP/1.1\r\nHost: a\r\nContent-Length: 30000\r\n\r\n" + strings.Repeat("s", 10000)},
	} {
		conn, err := net.Dial("tcp", g.proxy)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(conn, c.send)
		conn.(*net.TCPConn).CloseWrite()
		replies, _ := readReplies(conn, 3*time.Second)
		conn.Close()
		time.Sleep(100 * time.Millisecond) // let the origin see the end of a cut request
		for _, r := range o.requests() {
			if !r.Truncated {
				t.Errorf("%s: the origin received a complete request %s %s (%d body bytes); the client got %v",
					c.name, r.Method, r.Target, len(r.Body), statuses(replies))
			}
		}
		if len(replies) > 0 && replies[0].Status < 400 {
			t.Errorf("%s: the client got %v", c.name, statuses(replies))
		}
	}
}

// TestConnectionCapPerIP checks -max-client-conns-per-ip: one address gets
// at most that many connections; more are answered 429 and closed.
func TestConnectionCapPerIP(t *testing.T) {
	g := startGateway(t, "", "-max-client-conns-per-ip", "5")
	// The harness's readiness probes count until the gateway has seen them
	// close.
	time.Sleep(300 * time.Millisecond)
	var held []net.Conn
	for i := 0; i < 5; i++ {
		c, err := net.Dial("tcp", g.proxy)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	time.Sleep(50 * time.Millisecond)
	c, err := net.Dial("tcp", g.proxy)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(b), "HTTP/1.1 429") {
		t.Fatalf("the 6th connection from one address got %q, want a 429", b)
	}
	held[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		// The gateway frees the slot once it has seen the close.
		replies, _ := rawExchange(t, g.proxy, "GET /nothing HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", time.Second)
		if eqInts(statuses(replies), []int{404}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a slot freed by a closed connection was not reused: %v", statuses(replies))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
