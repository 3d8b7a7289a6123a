package testpki

import (
	"crypto/x509"
	"testing"
)

func TestIssuedCertificatesVerifyAgainstTheirCA(t *testing.T) {
	ca, other := NewCA("test CA"), NewCA("other CA")
	server := ca.Issue(false, "a.test", "127.0.0.1").TLS()
	leaf, err := x509.ParseCertificate(server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a.test", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool, DNSName: name}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: other.Pool, DNSName: "a.test"}); err == nil {
		t.Fatal("verified against another CA")
	}
	client, _ := x509.ParseCertificate(ca.Issue(true, "client").TLS().Certificate[0])
	if _, err := client.Verify(x509.VerifyOptions{Roots: ca.Pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("client certificate: %v", err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: ca.Pool}); err == nil {
		t.Fatal("a client certificate verified for server auth")
	}
}
