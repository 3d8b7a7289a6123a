package core

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strings"
	"testing"

	"github.com/edgeway/gateway/internal/testpki"
)

// mustSSL parses an SSL object for pair with the given SNIs.
func mustSSL(t testing.TB, id, typ string, pair testpki.Pair, status int, snis ...string) *SSL {
	t.Helper()
	quoted := make([]string, len(snis))
	for i, s := range snis {
		quoted[i] = `"` + s + `"`
	}
	body := `{"type":"` + typ + `","cert":"` + jsonString(pair.Cert) + `","key":"` + jsonString(pair.Key) + `","status":` +
		string(rune('0'+status))
	if len(snis) > 0 {
		body += `,"snis":[` + strings.Join(quoted, ",") + `]`
	}
	s, err := ParseSSL([]byte(body + "}"))
	if err != nil {
		t.Fatalf("ssl %s: %v", id, err)
	}
	s.ID = id
	return s
}

func TestCertIndexLookup(t *testing.T) {
	ca := testpki.NewCA("index CA")
	ssls := map[string]*SSL{
		"exact":    mustSSL(t, "exact", "server", ca.Issue(false, "a.test"), 1, "a.test"),
		"wild":     mustSSL(t, "wild", "server", ca.Issue(false, "*.b.test"), 1, "*.b.test"),
		"wild2":    mustSSL(t, "wild2", "server", ca.Issue(false, "*.c.b.test"), 1, "*.c.b.test"),
		"x":        mustSSL(t, "x", "server", ca.Issue(false, "x.b.test"), 1, "x.b.test"),
		"off":      mustSSL(t, "off", "server", ca.Issue(false, "d.test"), 0, "d.test"),
		"client":   mustSSL(t, "client", "client", ca.Issue(true, "e.test"), 1),
		"a-second": mustSSL(t, "a-second", "server", ca.Issue(false, "a.test"), 1, "a.test"),
	}
	x := buildCertIndex(ssls, baseServerTLS())
	f := func(name, want string) {
		t.Helper()
		got := x.Lookup(name)
		switch {
		case want == "" && got != nil:
			t.Fatalf("%q: got a certificate, want none", name)
		case want != "" && got == nil:
			t.Fatalf("%q: no certificate, want %s", name, want)
		case want != "" && got.Certificates[0].Leaf != ssls[want].pairs[0].Leaf:
			t.Fatalf("%q: got %v, want SSL %s", name, got.Certificates[0].Leaf.DNSNames, want)
		}
	}
	f("a.test", "a-second") // two SSLs claim a.test: the smaller id wins
	f("A.Test.", "a-second")
	f("x.b.test", "x")    // exact beats wildcard
	f("y.b.test", "wild") // wildcard
	f("y.z.b.test", "wild")
	f("y.c.b.test", "wild2") // the longest wildcard wins
	f("b.test", "")          // *.b.test does not match b.test
	f("d.test", "")          // disabled
	f("e.test", "")          // client certificates are never served
	f("", "")
	f("other.test", "")
	if x.Len() != 4 {
		t.Fatalf("Len %d, want 4", x.Len())
	}
	var nilIndex *CertIndex
	if nilIndex.Lookup("a.test") != nil || nilIndex.Len() != 0 {
		t.Fatal("a nil index must find nothing")
	}
}

func TestProtocolRange(t *testing.T) {
	f := func(protocols []string, minV, maxV uint16) {
		t.Helper()
		if a, b := protocolRange(protocols); a != minV || b != maxV {
			t.Fatalf("%v: %x-%x, want %x-%x", protocols, a, b, minV, maxV)
		}
	}
	f(nil, tls.VersionTLS12, tls.VersionTLS13)
	f([]string{"TLSv1.1", "TLSv1.2"}, tls.VersionTLS12, tls.VersionTLS12)
	f([]string{"TLSv1.3"}, tls.VersionTLS13, tls.VersionTLS13)
	f([]string{"TLSv1.3", "TLSv1.2"}, tls.VersionTLS12, tls.VersionTLS13)
}

// handshake runs a TLS handshake against the proxy's listener
// configuration over an in-memory pipe and returns the server's leaf.
func handshake(t *testing.T, p *Proxy, roots *x509.CertPool, sni string, maxV uint16) (*x509.Certificate, error) {
	t.Helper()
	cc, sc := net.Pipe()
	defer cc.Close()
	defer sc.Close()
	srv := tls.Server(sc, p.TLSConfig())
	done := make(chan error, 1)
	go func() { done <- srv.Handshake() }()
	cl := tls.Client(cc, &tls.Config{ServerName: sni, RootCAs: roots, MaxVersion: maxV})
	err := cl.Handshake()
	if err != nil {
		cc.Close()
		<-done
		return nil, err
	}
	if err := <-done; err != nil {
		return nil, err
	}
	return cl.ConnectionState().PeerCertificates[0], nil
}

func TestListenerCertificateSelectionAndRotation(t *testing.T) {
	ca := testpki.NewCA("listener CA")
	roots := ca.Pool
	rt := NewRuntime()
	defer rt.Close()
	p := NewProxy()

	// No SSL object: every handshake fails.
	if _, err := handshake(t, p, roots, "a.test", 0); err == nil {
		t.Fatal("handshake succeeded without any SSL object")
	}
	cfg := NewConfig()
	cfg.SSLs["1"] = mustSSL(t, "1", "server", ca.Issue(false, "a.test"), 1, "a.test")
	cfg.SSLs["2"] = mustSSL(t, "2", "server", ca.Issue(false, "*.b.test"), 1, "*.b.test")
	snap := rt.Compile(cfg, p.Snapshot())
	p.Publish(snap)
	for sni, want := range map[string]string{"a.test": "a.test", "x.b.test": "*.b.test"} {
		leaf, err := handshake(t, p, roots, sni, 0)
		if err != nil {
			t.Fatalf("SNI %s: %v", sni, err)
		}
		if leaf.DNSNames[0] != want {
			t.Fatalf("SNI %s: served %v, want %s", sni, leaf.DNSNames, want)
		}
	}
	if _, err := handshake(t, p, roots, "c.test", 0); err == nil {
		t.Fatal("handshake succeeded for an SNI no SSL serves")
	}

	// An unrelated edit keeps the index; a new certificate replaces it.
	cfg2 := &Config{Routes: map[string]*Route{}, Upstreams: cfg.Upstreams, Services: cfg.Services, SSLs: cfg.SSLs, Revision: 2}
	snap2 := rt.Compile(cfg2, snap)
	if snap2.Certs != snap.Certs {
		t.Fatal("an edit that left the SSL objects alone rebuilt the certificate index")
	}
	p.Publish(snap2)
	rotated := ca.Issue(false, "a.test", "rotated.test")
	cfg3 := &Config{Routes: cfg.Routes, Upstreams: cfg.Upstreams, Services: cfg.Services, SSLs: cloneMap(cfg.SSLs), Revision: 3}
	cfg3.SSLs["1"] = mustSSL(t, "1", "server", rotated, 1, "a.test")
	p.Publish(rt.Compile(cfg3, snap2))
	leaf, err := handshake(t, p, roots, "a.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(leaf.DNSNames) != 2 || leaf.DNSNames[1] != "rotated.test" {
		t.Fatalf("after rotation the listener serves %v", leaf.DNSNames)
	}

	// ssl_protocols restricts the versions.
	cfg4 := &Config{Routes: cfg.Routes, Upstreams: cfg.Upstreams, Services: cfg.Services, SSLs: cloneMap(cfg3.SSLs), Revision: 4}
	only13, err := ParseSSL([]byte(`{"cert":"` + jsonString(rotated.Cert) + `","key":"` + jsonString(rotated.Key) +
		`","sni":"a.test","ssl_protocols":["TLSv1.3"]}`))
	if err != nil {
		t.Fatal(err)
	}
	cfg4.SSLs["1"] = only13
	p.Publish(rt.Compile(cfg4, p.Snapshot()))
	if _, err := handshake(t, p, roots, "a.test", tls.VersionTLS12); err == nil {
		t.Fatal("a TLS 1.2 handshake succeeded with ssl_protocols [TLSv1.3]")
	}
	if _, err := handshake(t, p, roots, "a.test", 0); err != nil {
		t.Fatalf("TLS 1.3: %v", err)
	}
}
