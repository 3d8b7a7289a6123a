package core

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"time"
)

// CertIndex finds the server certificate for a TLS client's SNI among the
// enabled SSL objects of type server, as APISIX's radixtree_sni router: an
// exact name first, then wildcards from the longest suffix to the shortest.
// It is built when a snapshot is compiled and is immutable afterwards;
// certificates change by publishing a new snapshot, without a restart.
type CertIndex struct {
	exact map[string]*tls.Config
	// wild is keyed by the suffix after the `*`, e.g. ".foo.com".
	wild map[string]*tls.Config
}

// buildCertIndex indexes the server SSLs of ssls. When two SSLs claim the
// same name, the one with the smaller id wins, so the choice does not
// depend on map order. base is the listener's configuration each entry's
// configuration is derived from.
func buildCertIndex(ssls map[string]*SSL, base *tls.Config) *CertIndex {
	x := &CertIndex{exact: map[string]*tls.Config{}, wild: map[string]*tls.Config{}}
	ids := make([]string, 0, len(ssls))
	for id := range ssls {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		s := ssls[id]
		if s.Type != "server" || s.Status == 0 || len(s.pairs) == 0 {
			continue
		}
		cfg := base.Clone()
		cfg.GetConfigForClient = nil
		cfg.Certificates = s.pairs
		cfg.MinVersion, cfg.MaxVersion = protocolRange(s.Protocols)
		for _, name := range s.SNIs {
			m, key := x.exact, name
			if len(name) > 1 && name[0] == '*' {
				m, key = x.wild, name[1:]
			}
			if _, taken := m[key]; !taken {
				m[key] = cfg
			}
		}
	}
	return x
}

// protocolRange maps ssl_protocols to TLS versions; TLS 1.1 is never
// offered.
func protocolRange(protocols []string) (minV, maxV uint16) {
	if len(protocols) == 0 {
		return tls.VersionTLS12, tls.VersionTLS13
	}
	minV, maxV = tls.VersionTLS13, tls.VersionTLS12
	if slices.Contains(protocols, "TLSv1.2") {
		minV = tls.VersionTLS12
	}
	if slices.Contains(protocols, "TLSv1.3") {
		maxV = tls.VersionTLS13
	}
	return minV, maxV
}

// Lookup returns the configuration of the SSL serving name, or nil.
func (x *CertIndex) Lookup(name string) *tls.Config {
	if x == nil || name == "" {
		return nil
	}
	var buf [253]byte
	name = lowerName(name, buf[:0])
	if c, ok := x.exact[name]; ok {
		return c
	}
	// Longest wildcard first: "a.b.foo.com" tries ".b.foo.com", then
	// ".foo.com", then ".com".
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if c, ok := x.wild[name[i:]]; ok {
				return c
			}
		}
	}
	return nil
}

// Len returns the number of names indexed.
func (x *CertIndex) Len() int {
	if x == nil {
		return 0
	}
	return len(x.exact) + len(x.wild)
}

// lowerName lower-cases name and drops a trailing dot, using buf when it
// has to change the name.
func lowerName(name string, buf []byte) string {
	if n := len(name); n > 0 && name[n-1] == '.' {
		name = name[:n-1]
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			if len(name) > cap(buf) {
				buf = make([]byte, 0, len(name))
			}
			b := append(buf[:0], name...)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return name
}

// serverCipherSuites are the TLS 1.2 suites offered: ECDHE with AEAD only
// (TLS 1.3 suites are not configurable and all sound).
var serverCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// baseServerTLS is what every SSL's listener configuration starts from.
func baseServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		CipherSuites: serverCipherSuites,
		// fasthttp speaks HTTP/1.1 only.
		NextProtos: []string{"http/1.1"},
	}
}

// TLSConfig returns the configuration of the HTTPS listener: TLS 1.2+, the
// certificate chosen per handshake by the client's SNI among the SSL
// objects of the snapshot being served (read through its atomic pointer,
// so that a change to the SSL objects applies to the next handshake).
// A handshake whose SNI no SSL object serves, or that has no SNI, fails
// with an error naming the SNI (which the fasthttp server logs).
func (p *Proxy) TLSConfig() *tls.Config {
	cfg := baseServerTLS()
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if c := p.snap.Load().Certs.Lookup(hello.ServerName); c != nil {
			return c, nil
		}
		// Slow path: the handshake fails.
		return nil, fmt.Errorf("core: no SSL object serves SNI %q", hello.ServerName)
	}
	return cfg
}

// HandshakeTimeout bounds the TLS handshake of a client connection on the
// HTTPS listener.
const HandshakeTimeout = 10 * time.Second

// NewTLSListener returns a listener whose connections speak TLS with cfg
// (from Proxy.TLSConfig). The handshake runs on a connection's first read,
// within HandshakeTimeout, so that a client that never completes it does
// not hold a server goroutine.
func NewTLSListener(inner net.Listener, cfg *tls.Config) net.Listener {
	return &tlsListener{Listener: inner, cfg: cfg}
}

type tlsListener struct {
	net.Listener
	cfg *tls.Config
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handshakeConn{Conn: tls.Server(c, l.cfg)}, nil
}

// handshakeConn is a server TLS connection that completes its handshake,
// under a deadline, on the first read. Like tls.Conn it is what fasthttp's
// RequestCtx.IsTLS recognises (X-Forwarded-Proto: https).
type handshakeConn struct {
	*tls.Conn
	shaken bool
	// eof records that a read found the client's end of stream (its
	// close_notify, or the TCP end): see clientEnded.
	eof bool
}

func (c *handshakeConn) Read(b []byte) (int, error) {
	if !c.shaken {
		c.shaken = true
		ctx, cancel := context.WithTimeout(context.Background(), HandshakeTimeout)
		err := c.HandshakeContext(ctx)
		cancel()
		if err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(b)
	if err == io.EOF {
		c.eof = true
	}
	return n, err
}

// ReadEOF reports whether the client has ended its stream. Like Read, it
// is for the connection's serving goroutine.
func (c *handshakeConn) ReadEOF() bool { return c.eof }
