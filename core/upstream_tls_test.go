package core

import (
	"strings"
	"testing"
	"time"
)

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"a.test": "a.test", "a.test:8443": "a.test", "[::1]:443": "::1", "[::1]": "::1", "127.0.0.1:80": "127.0.0.1", "": "",
	} {
		if got := string(hostOnly([]byte(in))); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

// compileOne compiles cfg and returns the balancer of upstream id.
func compileOne(t *testing.T, rt *Runtime, cfg *Config, prev *Snapshot, id string) (*Snapshot, *Balancer) {
	t.Helper()
	s := rt.Compile(cfg, prev)
	b := s.Balancers[Key(KindUpstreams, id)]
	if b == nil {
		t.Fatalf("no balancer for upstream %s", id)
	}
	return s, b
}

func httpsUpstream(passHost string, tls *UpstreamTLS) *Upstream {
	u := upstreamOf(8443)
	u.Scheme, u.PassHost, u.TLS = "https", passHost, tls
	if passHost == "rewrite" {
		u.UpstreamHost = "rw.test:9443"
	}
	return u
}

func TestUpstreamSNIAndPoolKeys(t *testing.T) {
	pki := fixedPKI()
	rt := NewRuntime()
	defer rt.Close()
	cfg := NewConfig()
	cfg.Upstreams["pass"] = httpsUpstream("pass", nil)
	cfg.Upstreams["node"] = httpsUpstream("node", nil)
	cfg.Upstreams["rw"] = httpsUpstream("rewrite", nil)
	cfg.Upstreams["plain"] = upstreamOf(8443)
	cfg.Upstreams["mtls"] = httpsUpstream("pass", &UpstreamTLS{ClientCert: pki.Client.Cert, ClientKey: pki.Client.Key})
	cfg.Upstreams["byid"] = httpsUpstream("pass", &UpstreamTLS{ClientCertID: "c"})
	cfg.Upstreams["verify"] = httpsUpstream("pass", &UpstreamTLS{Verify: true, CACerts: []string{pki.CA.PEM}})
	s := rt.Compile(cfg, nil)
	ref := func(id string) *nodeRef { return &s.Balancers[Key(KindUpstreams, id)].refs[0] }

	if r := ref("pass"); r.group == nil || r.pool.SNI() != "127.0.0.1" ||
		r.poolFor([]byte("a.test:9080")).SNI() != "a.test" || r.poolFor(nil) != r.pool {
		t.Fatal("pass_host=pass: the SNI must be the client's Host, per request")
	}
	if r := ref("pass"); r.poolFor([]byte("a.test")) != r.poolFor([]byte("a.test:1")) || r.poolFor([]byte("b.test")) == r.poolFor([]byte("a.test")) {
		t.Fatal("one pool per SNI")
	}
	if r := ref("node"); r.group != nil || r.pool.SNI() != "127.0.0.1" {
		t.Fatal("pass_host=node: the SNI is the node's host")
	}
	if r := ref("rw"); r.group != nil || r.pool.SNI() != "rw.test" {
		t.Fatalf("pass_host=rewrite: SNI %q, want rw.test", r.pool.SNI())
	}
	if r := ref("plain"); r.group != nil || r.pool.SNI() != "" || r.pool.Options().TLS != nil {
		t.Fatal("http has no TLS")
	}
	// Same node, same settings, different TLS identities: separate groups.
	keys := map[string]string{}
	for _, id := range []string{"pass", "node", "rw", "plain", "mtls", "byid", "verify"} {
		keys[id] = ref(id).poolKey
	}
	if keys["pass"] != keys["node"] || keys["pass"] != keys["rw"] {
		t.Fatal("upstreams with the same node and TLS identity must share the pool group")
	}
	for _, id := range []string{"plain", "mtls", "byid", "verify"} {
		if keys[id] == keys["pass"] {
			t.Fatalf("upstream %s shares a pool group with a different TLS identity", id)
		}
	}
	if opts := ref("verify").pool.Options(); opts.TLS.InsecureSkipVerify || opts.TLS.RootCAs == nil {
		t.Fatal("verify with ca_certs must verify against them")
	}
	if opts := ref("pass").pool.Options(); !opts.TLS.InsecureSkipVerify {
		t.Fatal("without tls.verify the upstream is not verified (APISIX)")
	}
	if opts := ref("mtls").pool.Options(); len(opts.TLS.Certificates) != 1 || opts.TLSError != nil {
		t.Fatal("the client certificate is not configured")
	}
	// client_cert_id naming nothing: every dial fails with a clear error.
	if err := ref("byid").pool.Options().TLSError; err == nil || !strings.Contains(err.Error(), "client_cert_id c names no SSL object") {
		t.Fatalf("client_cert_id without an SSL object: %v", err)
	}
	if _, err := ref("byid").pool.Acquire(nil, time.Now().UnixNano(), time.Second, 0); err == nil {
		t.Fatal("a pool with a configuration error dialed")
	}

	// Creating the SSL object recompiles the upstream (its pointer is
	// unchanged) into a pool with the certificate; others are kept.
	cfg2 := &Config{Routes: cfg.Routes, Upstreams: cfg.Upstreams, Services: cfg.Services, SSLs: map[string]*SSL{
		"c": mustSSL(t, "c", "client", pki.Client, 1),
	}}
	s2, byid := compileOne(t, rt, cfg2, s, "byid")
	if byid == s.Balancers[Key(KindUpstreams, "byid")] || byid.refs[0].pool.Options().TLSError != nil ||
		len(byid.refs[0].pool.Options().TLS.Certificates) != 1 {
		t.Fatal("the upstream was not rebuilt with the new client SSL")
	}
	if s2.Balancers[Key(KindUpstreams, "pass")] != s.Balancers[Key(KindUpstreams, "pass")] {
		t.Fatal("an unrelated upstream was rebuilt")
	}
	// A server SSL under that id is refused at dial time.
	cfg3 := &Config{Routes: cfg.Routes, Upstreams: cfg.Upstreams, Services: cfg.Services, SSLs: map[string]*SSL{
		"c": mustSSL(t, "c", "server", pki.Server, 1, "a.test"),
	}}
	_, byid = compileOne(t, rt, cfg3, s2, "byid")
	if err := byid.refs[0].pool.Options().TLSError; err == nil || !strings.Contains(err.Error(), "of type server, not client") {
		t.Fatalf("a server SSL as client certificate: %v", err)
	}
}
