package core

import (
	"bufio"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/edgeway/gateway/lb"
	"github.com/edgeway/gateway/pool"
)

// bodyStream relays a large, chunked or close-delimited upstream response
// body to the client. fasthttp's server reads it while writing the response
// and closes it when done (or when the client goes away); closing releases
// the upstream connection and the pick. It holds one upstream connection
// and no body bytes of its own.
type bodyStream struct {
	p  *Proxy
	b  *Balancer
	n  *lb.Node
	c  *pool.Conn
	br *bufio.Reader

	// remaining is the number of body bytes left for a Content-Length body;
	// -1 means chunked, -2 means delimited by the connection closing.
	remaining int64
	chunkLeft int64
	eof       bool
	err       error

	upstreamClose bool
	readTimeout   time.Duration
	// rtt is the response header's latency, reported to the picker; failed
	// marks a status the picker counts as a failure.
	rtt    time.Duration
	failed bool

	// client, when set, is the client connection: its write deadline is
	// re-armed with sendTimeout before each chunk is relayed, so a client
	// that stops reading is dropped but a long download is not.
	client      net.Conn
	sendTimeout time.Duration
}

var bodyStreamPool = sync.Pool{New: func() any { return &bodyStream{} }}

func acquireBodyStream() *bodyStream { return bodyStreamPool.Get().(*bodyStream) }

func (s *bodyStream) init(p *Proxy, b *Balancer, n *lb.Node, c *pool.Conn, cl int,
	upstreamClose bool, readTimeout, rtt time.Duration, failed bool) {
	*s = bodyStream{p: p, b: b, n: n, c: c, br: c.BR, remaining: int64(cl),
		upstreamClose: upstreamClose, readTimeout: readTimeout, rtt: rtt, failed: failed}
}

var (
	errBadChunk   = errors.New("core: malformed chunked body from upstream")
	errShortBody  = errors.New("core: upstream closed the connection before the end of the body")
	errChunkLimit = errors.New("core: chunk size line too long")
)

// Read reads body bytes, decoding chunked transfer coding. The read
// timeout is re-armed for every read (nginx's proxy_read_timeout is the
// time between two reads).
func (s *bodyStream) Read(p []byte) (int, error) {
	if s.eof {
		return 0, io.EOF
	}
	if s.err != nil {
		return 0, s.err
	}
	now := time.Now()
	_ = s.c.SetReadTimeout(now, s.readTimeout)
	if s.client != nil && s.sendTimeout > 0 {
		_ = s.client.SetWriteDeadline(now.Add(s.sendTimeout))
	}
	var n int
	var err error
	switch {
	case s.remaining >= 0:
		if s.remaining == 0 {
			s.eof = true
			return 0, io.EOF
		}
		if int64(len(p)) > s.remaining {
			p = p[:s.remaining]
		}
		n, err = s.br.Read(p)
		s.remaining -= int64(n)
		if err == io.EOF && s.remaining > 0 {
			err = errShortBody
		}
		if err == nil && s.remaining == 0 {
			s.eof = true
		}
	case s.remaining == -1:
		n, err = s.readChunked(p)
	default:
		n, err = s.br.Read(p)
		if err == io.EOF {
			s.eof = true
		}
	}
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func (s *bodyStream) readChunked(p []byte) (int, error) {
	if s.chunkLeft == 0 {
		size, err := s.readChunkSize()
		if err != nil {
			return 0, err
		}
		if size == 0 {
			if err := s.skipTrailer(); err != nil {
				return 0, err
			}
			s.eof = true
			return 0, io.EOF
		}
		s.chunkLeft = size
	}
	if int64(len(p)) > s.chunkLeft {
		p = p[:s.chunkLeft]
	}
	n, err := s.br.Read(p)
	s.chunkLeft -= int64(n)
	if err == io.EOF {
		return n, errShortBody
	}
	if err == nil && s.chunkLeft == 0 {
		err = s.expectCRLF()
	}
	return n, err
}

func (s *bodyStream) readChunkSize() (int64, error) {
	line, err := s.br.ReadSlice('\n')
	if err != nil {
		if err == bufio.ErrBufferFull {
			return 0, errChunkLimit
		}
		if err == io.EOF {
			return 0, errShortBody
		}
		return 0, err
	}
	var size int64
	digits := 0
	for _, c := range line {
		var d int64
		switch {
		case c >= '0' && c <= '9':
			d = int64(c - '0')
		case c >= 'a' && c <= 'f':
			d = int64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = int64(c-'A') + 10
		default:
			if digits == 0 || (c != ';' && c != '\r' && c != ' ' && c != '\t') {
				return 0, errBadChunk
			}
			if len(line) < 2 || line[len(line)-2] != '\r' {
				return 0, errBadChunk
			}
			return size, nil
		}
		digits++
		if digits > 15 {
			return 0, errBadChunk
		}
		size = size<<4 | d
	}
	return 0, errBadChunk
}

func (s *bodyStream) expectCRLF() error {
	b, err := s.br.Peek(2)
	if err != nil {
		if err == io.EOF {
			return errShortBody
		}
		return err
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errBadChunk
	}
	_, _ = s.br.Discard(2)
	return nil
}

// skipTrailer discards trailer fields up to the empty line ending the body.
func (s *bodyStream) skipTrailer() error {
	for i := 0; i < 64; i++ {
		line, err := s.br.ReadSlice('\n')
		if err != nil {
			if err == io.EOF {
				return errShortBody
			}
			return err
		}
		if len(line) == 2 && line[0] == '\r' {
			return nil
		}
	}
	return errBadChunk
}

// CloseWithError is called by fasthttp when it is done with the body,
// with the error that ended writing it (nil on success).
func (s *bodyStream) CloseWithError(werr error) error {
	// Quiet peeks at the socket: a Content-Length body is read straight
	// into the caller's buffer, so bytes the upstream sent past it would
	// still be in the kernel, unseen by Buffered.
	reusable := s.eof && s.err == nil && werr == nil && !s.upstreamClose && s.remaining != -2 && s.br.Buffered() == 0 &&
		s.c.Quiet()
	end := time.Now()
	if reusable {
		s.c.Release(true, end.UnixNano())
	} else {
		s.c.Release(false, 0)
		if s.err != nil {
			s.p.logf("upstream %s node %s: response body aborted: %v", s.b.Key, s.n.Addr, s.err)
		}
	}
	s.b.picker.Done(s.n, s.rtt, s.failed || s.err != nil)
	*s = bodyStream{}
	bodyStreamPool.Put(s)
	return nil
}
