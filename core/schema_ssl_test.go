package core

import (
	"reflect"
	"strings"
	"testing"
)

// sslValidCases feeds f valid SSL bodies and the model each must give
// (pairs aside: they are checked by count).
func sslValidCases(f func(body string, want *SSL, pairs int)) {
	pki := fixedPKI()
	sc, sk := jsonString(pki.Server.Cert), jsonString(pki.Server.Key)
	cc, ck := jsonString(pki.Client.Cert), jsonString(pki.Client.Key)
	base := func(fn func(s *SSL)) *SSL {
		s := &SSL{Type: "server", Status: 1, Cert: pki.Server.Cert, Key: pki.Server.Key}
		fn(s)
		return s
	}
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"A.test"}`, base(func(s *SSL) { s.SNIs = []string{"a.test"} }), 1)
	f(`{"cert":"`+sc+`","key":"`+sk+`","snis":["a.test","*.B.test"],"labels":{"env":"prod"},"status":0}`, base(func(s *SSL) {
		s.SNIs, s.Labels, s.Status = []string{"a.test", "*.b.test"}, map[string]string{"env": "prod"}, 0
	}), 1)
	f(`{"cert":"`+sc+`","key":"`+sk+`","snis":["a.test"],"certs":["`+cc+`"],"keys":["`+ck+`"],"ssl_protocols":["TLSv1.3"]}`, base(func(s *SSL) {
		s.SNIs, s.Certs, s.Keys, s.Protocols = []string{"a.test"}, []string{pki.Client.Cert}, []string{pki.Client.Key}, []string{"TLSv1.3"}
	}), 2)
	f(`{"id":"c1","type":"client","cert":"`+cc+`","key":"`+ck+`","validity_start":1,"validity_end":2,"create_time":1,"update_time":2}`,
		&SSL{ID: "c1", Type: "client", Status: 1, Cert: pki.Client.Cert, Key: pki.Client.Key, ValidityStart: 1, ValidityEnd: 2}, 1)
}

func sslErrorCases(f func(body, wantErr string)) {
	pki := fixedPKI()
	sc, sk := jsonString(pki.Server.Cert), jsonString(pki.Server.Key)
	cc, ok := jsonString(pki.Client.Cert), jsonString(pki.Other.Key)
	f(`"x"`, `wrong type: expected object, got string`)
	f(`{"key":"`+sk+`","sni":"a.test"}`, `property "cert" is required`)
	f(`{"cert":"`+sc+`","sni":"a.test"}`, `property "key" is required`)
	f(`{"cert":"`+sc+`","key":"`+sk+`"}`, `value should match only one schema, but matches none: property "sni" or "snis" is required for a server certificate`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","snis":["a.test"]}`, `value should match only one schema, but matches both schemas 1 and 2`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","snis":[]}`, `property "snis" validation failed: expect array to have at least 1 items`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a test"}`, `property "sni" validation failed: failed to match pattern "^\\*?[0-9a-zA-Z-._]+$" with "a test"`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","type":"peer"}`, `property "type" validation failed: matches none of the enum values`)
	f(`{"cert":"short","key":"`+sk+`","sni":"a.test"}`, `property "cert" validation failed: string too short, expected at least 128, got 5`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","status":2}`, `property "status" validation failed: matches none of the enum values`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","client":{"ca":"x"}}`, `property "client" validation failed: verifying client certificates on the HTTPS listener is not supported by this gateway yet`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","ssl_protocols":["TLSv1.1"]}`, `ssl_protocols: this gateway speaks TLSv1.2 and TLSv1.3 only`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","ssl_protocols":["SSLv3"]}`, `property "ssl_protocols" validation failed: failed to validate item 1: matches none of the enum values`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","private":1}`, `additional properties forbidden, found private`)
	f(`{"cert":"`+sc+`","key":"`+ok+`","sni":"a.test"}`, `the key does not match the certificate: tls: private key does not match public key`)
	f(`{"cert":"`+strings.Repeat("x", 128)+`","key":"`+sk+`","sni":"a.test"}`, `failed to parse cert: no PEM certificate found`)
	f(`{"cert":"`+sc+`","key":"`+strings.Repeat("x", 128)+`","sni":"a.test"}`, `failed to parse key: no PEM private key found`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","certs":["`+cc+`"]}`, `mismatched number of certs and keys`)
	f(`{"cert":"`+sc+`","key":"`+sk+`","sni":"a.test","certs":["`+cc+`"],"keys":["`+ok+`"]}`,
		`failed to handle cert-key pair[1]: the key does not match the certificate: tls: private key does not match public key`)
}

func TestParseSSLValid(t *testing.T) {
	sslValidCases(func(body string, want *SSL, pairs int) {
		t.Helper()
		got, err := ParseSSL([]byte(body))
		if err != nil {
			t.Fatalf("body %.80s...: unexpected error %q", body, err)
		}
		if len(got.pairs) != pairs || len(got.Certificates()) != pairs {
			t.Fatalf("body %.80s...: %d key pairs, want %d", body, len(got.pairs), pairs)
		}
		got.pairs = nil
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %.80s...:\n got %+v\nwant %+v", body, got, want)
		}
	})
}

func TestParseSSLErrors(t *testing.T) {
	sslErrorCases(func(body, wantErr string) {
		t.Helper()
		s, err := ParseSSL([]byte(body))
		checkValidationError(t, body, err, wantErr)
		if s != nil {
			t.Fatalf("body %s: non-nil SSL with an error", body)
		}
	})
}

func FuzzParseSSL(f *testing.F) {
	sslValidCases(func(body string, _ *SSL, _ int) { f.Add([]byte(body)) })
	sslErrorCases(func(body, _ string) { f.Add([]byte(body)) })
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := ParseSSL(body)
		if err != nil {
			checkFuzzError(t, s == nil, err)
			return
		}
		if s.Type != "server" && s.Type != "client" {
			t.Fatalf("type %q", s.Type)
		}
		if len(s.pairs) == 0 || len(s.Certs) != len(s.Keys) && s.Type == "server" {
			t.Fatalf("%d pairs, %d certs, %d keys", len(s.pairs), len(s.Certs), len(s.Keys))
		}
		if s.Type == "server" && len(s.SNIs) == 0 {
			t.Fatalf("server SSL without SNIs")
		}
		for _, n := range s.SNIs {
			if n == "" || n != strings.ToLower(n) {
				t.Fatalf("sni %q", n)
			}
		}
	})
}
