package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rawRequest is one request as a raw origin parsed it off the wire.
type rawRequest struct {
	Method, Target, Proto string
	// Header holds the header lines as received (without the line ends).
	Header []string
	Body   []byte
	// Bad is non-empty when the origin's strict parser found the request
	// malformed or ambiguous (a gateway must never forward such a thing).
	Bad string
	// Truncated means the connection ended inside the body: the origin
	// never got a complete request.
	Truncated bool
}

// Get returns the first value of a header (case-insensitive name).
func (r *rawRequest) Get(name string) string {
	for _, l := range r.Header {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// rawOrigin is a TCP server with its own strict HTTP/1.1 request parser:
// it records every request it parses, including anything that would have
// been smuggled behind another, and answers through respond.
type rawOrigin struct {
	Addr  string
	ln    net.Listener
	mu    sync.Mutex
	reqs  []rawRequest
	conns atomic.Int64
	// respond answers one request on c. It returns false to close the
	// connection. nil answers 200 with "METHOD target" as the body.
	respond func(c net.Conn, r *rawRequest) bool

	wg     sync.WaitGroup
	closed atomic.Bool
	cmu    sync.Mutex
	open   map[net.Conn]bool
}

func startRawOrigin(t testing.TB, respond func(c net.Conn, r *rawRequest) bool) *rawOrigin {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &rawOrigin{Addr: ln.Addr().String(), ln: ln, respond: respond, open: map[net.Conn]bool{}}
	go o.serve()
	t.Cleanup(o.close)
	return o
}

func (o *rawOrigin) close() {
	o.closed.Store(true)
	o.ln.Close()
	o.cmu.Lock()
	for c := range o.open {
		c.Close()
	}
	o.cmu.Unlock()
	o.wg.Wait()
}

func (o *rawOrigin) serve() {
	for {
		c, err := o.ln.Accept()
		if err != nil {
			return
		}
		o.conns.Add(1)
		o.cmu.Lock()
		if o.closed.Load() {
			o.cmu.Unlock()
			c.Close()
			return
		}
		o.open[c] = true
		o.wg.Add(1)
		o.cmu.Unlock()
		go func() {
			defer o.wg.Done()
			defer func() {
				o.cmu.Lock()
				delete(o.open, c)
				o.cmu.Unlock()
				c.Close()
			}()
			br := bufio.NewReader(c)
			for {
				r, err := readRawRequest(br)
				if err != nil {
					return
				}
				o.mu.Lock()
				o.reqs = append(o.reqs, *r)
				o.mu.Unlock()
				respond := o.respond
				if respond == nil {
					respond = answerOK
				}
				if r.Truncated || !respond(c, r) || r.Bad != "" {
					return
				}
			}
		}()
	}
}

// requests returns a copy of what the origin parsed so far.
func (o *rawOrigin) requests() []rawRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]rawRequest(nil), o.reqs...)
}

// targets lists "METHOD target" of every request parsed, with a mark on
// malformed ones.
func (o *rawOrigin) targets() []string {
	var out []string
	for _, r := range o.requests() {
		s := r.Method + " " + r.Target
		if r.Bad != "" {
			s += " [BAD: " + r.Bad + "]"
		}
		if r.Truncated {
			s += " [TRUNCATED]"
		}
		out = append(out, s)
	}
	return out
}

// waitTargets waits until the origin parsed n requests (or timeout
// passes) and returns targets: the origin may record a request the gateway
// cut off only once it sees the connection close.
func (o *rawOrigin) waitTargets(n int, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for len(o.requests()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return o.targets()
}

// answerOK answers 200 with "METHOD target" as the body.
func answerOK(c net.Conn, r *rawRequest) bool {
	body := r.Method + " " + r.Target
	_, err := fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	return err == nil
}

var errRawEOF = errors.New("connection closed")

// readLineCRLF reads one line that must end in CRLF; a bare LF or a CR
// elsewhere in the line marks the request bad.
func readLineCRLF(br *bufio.Reader, bad *string) (string, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		if line == "" {
			return "", errRawEOF
		}
		return "", err
	}
	if !strings.HasSuffix(line, "\r\n") {
		*bad = "line not ended by CRLF"
		return strings.TrimSuffix(line, "\n"), nil
	}
	line = line[:len(line)-2]
	if strings.ContainsAny(line, "\r\x00") {
		*bad = "bare CR or NUL in a line"
	}
	return line, nil
}

// readRawRequest parses one request strictly (RFC 9112), recording what
// is wrong with it rather than refusing it, so that a test sees exactly
// what reached the origin.
func readRawRequest(br *bufio.Reader) (*rawRequest, error) {
	r := &rawRequest{}
	line, err := readLineCRLF(br, &r.Bad)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(line, " ")
	if len(parts) != 3 || parts[2] != "HTTP/1.1" {
		r.Bad = "malformed request line " + strconv.Quote(line)
	}
	if len(parts) > 0 {
		r.Method = parts[0]
	}
	if len(parts) > 1 {
		r.Target = parts[1]
	}
	if len(parts) > 2 {
		r.Proto = parts[2]
	}
	var cls, tes []string
	for {
		l, err := readLineCRLF(br, &r.Bad)
		if err != nil {
			return nil, err
		}
		if l == "" {
			break
		}
		if l[0] == ' ' || l[0] == '\t' {
			r.Bad = "obsolete line folding"
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			r.Bad = "malformed header line " + strconv.Quote(l)
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(k) {
		case "content-length":
			cls = append(cls, v)
		case "transfer-encoding":
			tes = append(tes, v)
		}
		r.Header = append(r.Header, l)
	}
	switch {
	case len(tes) > 0 && len(cls) > 0:
		r.Bad = "both Content-Length and Transfer-Encoding"
	case len(cls) > 1:
		r.Bad = "several Content-Length headers"
	case len(tes) > 1 || (len(tes) == 1 && !strings.EqualFold(tes[0], "chunked")):
		r.Bad = "Transfer-Encoding other than one chunked"
	}
	switch {
	case len(tes) > 0:
		// RFC 9112 §6.3: Transfer-Encoding overrides Content-Length.
		for {
			l, err := readLineCRLF(br, &r.Bad)
			if err != nil {
				r.Truncated = true
				return r, nil
			}
			size, err := strconv.ParseUint(strings.TrimSpace(strings.SplitN(l, ";", 2)[0]), 16, 40)
			if err != nil {
				r.Bad = "bad chunk size " + strconv.Quote(l)
				return r, nil
			}
			if size == 0 {
				for {
					l, err := readLineCRLF(br, &r.Bad)
					if err != nil {
						r.Truncated = true
					}
					if err != nil || l == "" {
						break
					}
				}
				break
			}
			chunk := make([]byte, size)
			if _, err := io.ReadFull(br, chunk); err != nil {
				r.Truncated = true
				return r, nil
			}
			r.Body = append(r.Body, chunk...)
			if l, _ := readLineCRLF(br, &r.Bad); l != "" {
				r.Bad = "chunk not followed by CRLF"
			}
		}
	case len(cls) > 0:
		n, err := strconv.ParseUint(cls[0], 10, 40)
		if err != nil {
			r.Bad = "bad Content-Length " + strconv.Quote(cls[0])
			return r, nil
		}
		r.Body = make([]byte, n)
		if _, err := io.ReadFull(br, r.Body); err != nil {
			r.Truncated = true
		}
	}
	return r, nil
}

// rawReply is one response read by rawExchange.
type rawReply struct {
	Status int
	Header http.Header
	Body   string
}

// rawExchange writes payload on a fresh connection to addr and reads
// responses until the server closes the connection or quiet passes with
// nothing to read. closed reports that the server closed the connection.
func rawExchange(t testing.TB, addr, payload string, quiet time.Duration) (replies []rawReply, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, payload); err != nil {
		t.Fatal(err)
	}
	return readReplies(c, quiet)
}

// readReplies reads responses on c (see rawExchange).
func readReplies(c net.Conn, quiet time.Duration) (replies []rawReply, closed bool) {
	br := bufio.NewReader(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(quiet))
		if _, err := br.Peek(1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return replies, false
			}
			return replies, true
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return append(replies, rawReply{Status: -1, Body: err.Error()}), true
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		replies = append(replies, rawReply{Status: resp.StatusCode, Header: resp.Header, Body: string(b)})
		if err != nil {
			return replies, true
		}
	}
}

// statuses lists the status codes of replies.
func statuses(rs []rawReply) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}

func eqStrings(a, b []string) bool {
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

// short formats v for a test message, cut to a readable length.
func short(v any) string {
	s := fmt.Sprintf("%q", v)
	if len(s) > 300 {
		s = s[:300] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

// crlf turns "\n" into "\r\n" for readable raw requests.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
