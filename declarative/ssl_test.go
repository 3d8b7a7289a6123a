package declarative

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/edgeway/gateway/internal/testpki"
)

func TestLoadAPISIXSSLs(t *testing.T) {
	ca := testpki.NewCA("test CA")
	srv, cli := ca.Issue(false, "a.test"), ca.Issue(true, "client")
	sc, sk, cc, ck := srv.Cert, srv.Key, cli.Cert, cli.Key
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
