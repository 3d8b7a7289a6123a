package core

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
)

// SSL is a validated APISIX SSL object (apisix/schema_def.lua `ssl`): a
// certificate and its key, for the HTTPS listener (type server, selected
// by the client's SNI) or for mTLS towards upstreams (type client, named
// by an upstream's tls.client_cert_id). Values are immutable once parsed.
type SSL struct {
	ID     string
	Labels map[string]string

	// Type is server (the default) or client.
	Type string
	// SNIs holds `sni` or `snis`, lower-cased; a leading `*.` marks a
	// wildcard that matches any name ending in the rest (`*.foo.com`
	// matches a.foo.com and a.b.foo.com, not foo.com).
	SNIs []string
	// Cert and Key are the PEM texts; Certs and Keys are extra pairs (for
	// example an ECDSA certificate next to an RSA one).
	Cert, Key   string
	Certs, Keys []string
	// Status is 1 (enabled, the default) or 0: a disabled server SSL is
	// never presented.
	Status int
	// Protocols holds ssl_protocols (TLSv1.1, TLSv1.2, TLSv1.3); empty means
	// TLS 1.2 and 1.3. This gateway never speaks TLS 1.1.
	Protocols []string
	// ValidityStart and ValidityEnd are kept only to be echoed.
	ValidityStart, ValidityEnd int64

	// pairs are the parsed certificates: Cert/Key first, then Certs/Keys.
	pairs []tls.Certificate
}

// Certificates returns the parsed key pairs (Cert/Key first). The caller
// must not modify them.
func (s *SSL) Certificates() []tls.Certificate { return s.pairs }

var sslProps = append(slices.Clone(metadataProps),
	"type", "cert", "key", "sni", "snis", "certs", "keys", "client", "status", "ssl_protocols",
	"validity_start", "validity_end")

var (
	// sniRule is APISIX's host_def: an optional leading `*` then name
	// characters.
	sniRule      = strRule{pat: newPattern(`^\*?[0-9a-zA-Z-._]+$`)}
	sslTypeRule  = strRule{enum: []string{"server", "client"}}
	protocolRule = strRule{enum: []string{"TLSv1.1", "TLSv1.2", "TLSv1.3"}}
	sslCertRule  = strRule{minLen: 128, maxLen: 64 * 1024}
)

// ParseSSL validates an APISIX SSL object: the schema, then, as APISIX's
// check_ssl_conf, every certificate and key (they must parse, and unlike
// APISIX, each key must match its certificate), and as many certs as keys.
// `client` (verifying the certificates of the gateway's own clients) is
// refused: this gateway does not implement it yet.
func ParseSSL(body []byte) (*SSL, error) {
	v, verr := decodeJSON(body)
	if verr != nil {
		return nil, verr
	}
	s, verr := parseSSL(v)
	if verr != nil {
		return nil, verr
	}
	return s, nil
}

func parseSSL(v any) (*SSL, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	s := &SSL{Type: "server", Status: 1}
	md := parseMetadata(o)
	s.ID, s.Labels = md.id, md.labels
	s.Type = fieldOr(o, "type", sslTypeRule.parse, s.Type)
	s.Cert, _ = field(o, "cert", sslCertRule.parse)
	s.Key, _ = field(o, "key", keyRule.parse)
	sni, hasSNI := field(o, "sni", sniRule.parse)
	snis, hasSNIs := field(o, "snis", func(v any) ([]string, *ValidationError) { return arrayOf(v, 1, sniRule.parse) })
	s.Certs, _ = field(o, "certs", func(v any) ([]string, *ValidationError) { return arrayOf(v, 0, sslCertRule.parse) })
	s.Keys, _ = field(o, "keys", func(v any) ([]string, *ValidationError) { return arrayOf(v, 0, keyRule.parse) })
	s.Status = fieldOr(o, "status", parseStatus, s.Status)
	s.Protocols, _ = field(o, "ssl_protocols", func(v any) ([]string, *ValidationError) {
		l, err := uniqueArrayOf(v, 0, protocolRule.parse)
		if err == nil && len(l) > 3 {
			err = invalid("expect array to have at most 3 items")
		}
		return l, err
	})
	s.ValidityStart = int64(fieldOr(o, "validity_start", anyNumber.integer, 0))
	s.ValidityEnd = int64(fieldOr(o, "validity_end", anyNumber.integer, 0))
	if o.has("client") {
		o.fail("client", invalid("verifying client certificates on the HTTPS listener is not supported by this gateway yet"))
	}
	o.require("cert", "key")
	if s.Type == "server" && o.err == nil {
		switch {
		case !hasSNI && !hasSNIs:
			o.check(invalid(`value should match only one schema, but matches none: property "sni" or "snis" is required for a server certificate`))
		case hasSNI && hasSNIs:
			o.check(invalid("value should match only one schema, but matches both schemas 1 and 2"))
		}
	}
	o.closed(sslProps)
	if o.err != nil {
		return nil, o.err
	}
	if hasSNI {
		snis = []string{sni}
	}
	for _, n := range snis {
		s.SNIs = append(s.SNIs, strings.ToLower(n))
	}
	if len(s.Protocols) > 0 && !slices.Contains(s.Protocols, "TLSv1.2") && !slices.Contains(s.Protocols, "TLSv1.3") {
		return nil, bare("ssl_protocols: this gateway speaks TLSv1.2 and TLSv1.3 only")
	}

	// The checks APISIX makes after the schema (apisix/ssl.lua check_ssl_conf).
	pair, verr := loadKeyPair(s.Cert, s.Key)
	if verr != nil {
		return nil, verr
	}
	s.pairs = append(s.pairs, pair)
	if s.Type == "client" {
		return s, nil
	}
	if len(s.Certs) != len(s.Keys) {
		return nil, bare("mismatched number of certs and keys")
	}
	for i := range s.Certs {
		pair, verr := loadKeyPair(s.Certs[i], s.Keys[i])
		if verr != nil {
			return nil, bare("failed to handle cert-key pair[%d]: %s", i+1, verr.Msg)
		}
		s.pairs = append(s.pairs, pair)
	}
	return s, nil
}

// loadKeyPair parses a PEM certificate (chain) and its PEM private key, and
// checks that they match. Failures are bare messages worded as APISIX's
// ("failed to parse cert: ...", "failed to parse key: ...").
func loadKeyPair(certPEM, keyPEM string) (tls.Certificate, *ValidationError) {
	if _, err := parseCertificates(certPEM); err != nil {
		return tls.Certificate{}, bare("failed to parse cert: %v", err)
	}
	if err := checkPrivateKey(keyPEM); err != nil {
		return tls.Certificate{}, bare("failed to parse key: %v", err)
	}
	pair, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return tls.Certificate{}, bare("the key does not match the certificate: %v", err)
	}
	return pair, nil
}

// parseCertificates parses every CERTIFICATE block of a PEM text; there
// must be at least one, and nothing else but whitespace.
func parseCertificates(text string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := []byte(text)
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, errorString("unexpected PEM block " + block.Type + " (want CERTIFICATE)")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errorString("no PEM certificate found")
	}
	if len(strings.TrimSpace(string(rest))) > 0 {
		return nil, errorString("unexpected data after the last PEM block")
	}
	return certs, nil
}

// checkPrivateKey parses the first PEM block of text as a private key
// (PKCS #1, PKCS #8 or SEC 1).
func checkPrivateKey(text string) error {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return errorString("no PEM private key found")
	}
	if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
		return errorString("unexpected PEM block " + block.Type + " (want a PRIVATE KEY)")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	if _, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return nil
	}
	return errorString("the " + block.Type + " block is not a PKCS #1, PKCS #8 or SEC 1 private key")
}

type errorString string

func (e errorString) Error() string { return string(e) }
