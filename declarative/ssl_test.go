package declarative

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

// selfSignedPEM returns a certificate for name and its key, generated for
// the test (never written to disk).
func selfSignedPEM(t *testing.T, name string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(k)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
}

func TestLoadAPISIXSSLs(t *testing.T) {
	sc, sk := selfSignedPEM(t, "a.test")
	cc, ck := selfSignedPEM(t, "client")
	doc := func(ssls []map[string]any, clientCertID string) []byte {
		b, _ := json.Marshal(map[string]any{
			"ssls": ssls,
			"upstreams": []any{map[string]any{"id": "u", "scheme": "https", "nodes": map[string]int{"127.0.0.1:8443": 1},
				"tls": map[string]any{"client_cert_id": clientCertID}}},
			"routes": []any{map[string]any{"id": "r", "uri": "/", "upstream_id": "u"}},
		})
		return b
	}
	server := map[string]any{"id": "s", "sni": "a.test", "cert": sc, "key": sk}
	client := map[string]any{"id": "c", "type": "client", "cert": cc, "key": ck}

	r := Load(doc([]map[string]any{server, client}, "c"))
	if !r.OK() {
		t.Fatalf("problems: %v", r.Problems)
	}
	cfg := served(t, r)
	if len(cfg.SSLs) != 2 || cfg.SSLs["s"].SNIs[0] != "a.test" || cfg.SSLs["c"].Type != "client" {
		t.Fatalf("served SSLs: %+v", cfg.SSLs)
	}

	f := func(ssls []map[string]any, certID, want string) {
		t.Helper()
		r := Load(doc(ssls, certID))
		if r.OK() {
			t.Fatalf("accepted, want a problem containing %q", want)
		}
		for _, p := range r.Problems {
			if strings.Contains(p.Msg, want) {
				return
			}
		}
		t.Fatalf("problems %v, want one containing %q", r.Problems, want)
	}
	f([]map[string]any{server, client}, "s", "upstream u: ssl s is of type server, not client (wrong ssl type)")
	f([]map[string]any{server}, "c", "upstream u: ssl c does not exist")
	bad := map[string]any{"id": "s", "sni": "a.test", "cert": sc, "key": ck}
	f([]map[string]any{bad, client}, "c", "ssl s: the key does not match the certificate")
}
