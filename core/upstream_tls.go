package core

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/edgeway/gateway/pool"
)

// connSpec is what the connections to every node of one upstream have in
// common: scheme, keepalive_pool settings and, for https, the TLS identity
// (client certificate, verification, CA certificates) and how the SNI is
// chosen. It is computed once per compiled upstream.
type connSpec struct {
	scheme string
	kp     KeepalivePool
	// identity tells TLS identities apart in pool keys ("" for http).
	identity string
	// tls builds the TLS template of a new pool group; nil for http.
	tls func() pool.Options
	// clientSSL is the SSL object named by tls.client_cert_id, if any: a
	// change to it recompiles the upstream.
	clientSSL *SSL
	passHost  string
	// rewriteSNI is the SNI of pass_host=rewrite (upstream_host without
	// its port).
	rewriteSNI string
}

// upstreamConnSpec computes the connSpec of u; ssls are the SSL objects of
// the configuration being compiled (for tls.client_cert_id).
func upstreamConnSpec(u *Upstream, scheme string, kp KeepalivePool, ssls map[string]*SSL) connSpec {
	spec := connSpec{scheme: scheme, kp: kp, passHost: u.PassHost}
	if scheme != "https" {
		return spec
	}
	if u.PassHost == "rewrite" {
		spec.rewriteSNI = string(hostOnly([]byte(u.UpstreamHost)))
	}
	t := u.TLS
	if t == nil {
		t = &UpstreamTLS{}
	}
	// The identity covers everything that makes connections incompatible.
	h := sha256.New()
	fmt.Fprintf(h, "verify=%t\x00", t.Verify)
	if t.Verify {
		for _, ca := range t.CACerts {
			fmt.Fprintf(h, "ca=%s\x00", ca)
		}
	}
	certPEM, keyPEM := t.ClientCert, t.ClientKey
	var certErr error
	if t.ClientCertID != "" {
		s := ssls[t.ClientCertID]
		spec.clientSSL = s
		switch {
		case s == nil:
			certErr = fmt.Errorf("tls.client_cert_id %s names no SSL object", t.ClientCertID)
		case s.Type != "client":
			certErr = fmt.Errorf("tls.client_cert_id %s names an SSL object of type %s, not client", t.ClientCertID, s.Type)
		default:
			certPEM, keyPEM = s.Cert, s.Key
		}
		fmt.Fprintf(h, "ssl=%s\x00", t.ClientCertID)
	}
	fmt.Fprintf(h, "cert=%s\x00key=%s\x00", certPEM, keyPEM)
	spec.identity = hex.EncodeToString(h.Sum(nil)[:12])

	verify, caCerts := t.Verify, t.CACerts
	spec.tls = func() pool.Options {
		cfg := &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"http/1.1"},
			// Resumption makes the new connections of requests:1 or a
			// short idle_timeout cheaper.
			ClientSessionCache: tls.NewLRUClientSessionCache(64),
			// APISIX (nginx proxy_ssl_verify off) does not verify unless
			// tls.verify is set.
			InsecureSkipVerify: !verify, //nolint:gosec // opt-in, as APISIX.
		}
		opts := pool.Options{TLS: cfg, TLSError: certErr}
		if verify && len(caCerts) > 0 {
			roots := x509.NewCertPool()
			for _, ca := range caCerts {
				certs, err := parseCertificates(ca)
				if err != nil {
					opts.TLSError = fmt.Errorf("tls.ca_certs: %w", err)
				}
				for _, c := range certs {
					roots.AddCert(c)
				}
			}
			cfg.RootCAs = roots
		}
		if certPEM != "" && opts.TLSError == nil {
			pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
			if err != nil {
				opts.TLSError = fmt.Errorf("client certificate: %w", err)
			} else {
				cfg.Certificates = []tls.Certificate{pair}
			}
		}
		return opts
	}
	return spec
}

// poolKey identifies a pool group: connections may be shared when the
// scheme, address, TLS identity and pool settings are the same (the SNI is
// chosen inside the group).
func poolKey(spec *connSpec, addr string) string {
	key := spec.scheme + "://" + addr + "|" + strconv.Itoa(spec.kp.Size) + "|" +
		strconv.FormatInt(int64(spec.kp.IdleTimeout), 10) + "|" + strconv.Itoa(spec.kp.Requests)
	if spec.identity != "" {
		key += "|tls=" + spec.identity
	}
	return key
}

// attachPool fills ref's pool, group and meter for node n at addr of the
// upstream named upstreamKey.
//
// The SNI is the host sent upstream: with pass_host=node the node's host,
// with rewrite the upstream_host, and with pass (the default) the client's
// Host, which is only known per request; then ref.group picks the pool per
// request and ref.pool serves requests without a Host.
func (rt *Runtime) attachPool(ref *nodeRef, spec *connSpec, upstreamKey string, n Node, addr string, used *usedKeys) {
	key := poolKey(spec, addr)
	ref.poolKey = key
	used.pools[key]++
	g := rt.Pools.Group(key, func() pool.Options {
		opts := pool.Options{}
		if spec.tls != nil {
			opts = spec.tls()
		}
		opts.Addr = addr
		opts.MaxIdle, opts.IdleTimeout, opts.MaxRequests = spec.kp.Size, spec.kp.IdleTimeout, spec.kp.Requests
		return opts
	})
	ref.meter = rt.meter(ref.stateKey, upstreamKey, addr)
	switch {
	case spec.scheme != "https":
		ref.pool = g.PoolFor("")
	case spec.passHost == "rewrite":
		ref.pool = g.PoolFor(spec.rewriteSNI)
	case spec.passHost == "node":
		ref.pool = g.PoolFor(sniHost(n))
	default:
		ref.pool = g.PoolFor(sniHost(n))
		ref.group = g
	}
}

// sniHost is the SNI for node n: its host name when its address was
// resolved from one.
func sniHost(n Node) string {
	if n.Domain != "" {
		return n.Domain
	}
	return n.Host
}

// poolFor returns the pool for a request whose Host header is host.
func (r *nodeRef) poolFor(host []byte) *pool.Pool {
	if r.group == nil || len(host) == 0 {
		return r.pool
	}
	return r.group.Pool(hostOnly(host))
}

// hostOnly strips the port and IPv6 brackets from a Host value, without
// allocating.
func hostOnly(host []byte) []byte {
	if len(host) > 0 && host[0] == '[' {
		for i := 1; i < len(host); i++ {
			if host[i] == ']' {
				return host[1:i]
			}
		}
		return host
	}
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			return host[:i]
		}
	}
	return host
}
