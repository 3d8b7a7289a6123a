package core

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// up returns an upstream with every default filled, changed by fn.
func up(fn func(u *Upstream)) *Upstream {
	u := &Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass", HashOn: "vars", Nodes: []Node{}}
	if fn != nil {
		fn(u)
	}
	return u
}

func intPtr(n int) *int { return &n }

var (
	testCert = "-----BEGIN CERTIFICATE-----\\n" + strings.Repeat("A", 128) + "\\n-----END CERTIFICATE-----"
	testKey  = "-----BEGIN PRIVATE KEY-----\\n" + strings.Repeat("B", 64) + "\\n-----END PRIVATE KEY-----"
)

func upstreamValidCases(f func(body string, want *Upstream)) {
	f(`{"nodes":{}}`, up(nil))
	// Service discovery instead of nodes.
	f(`{"service_name":"web.test","discovery_type":"dns"}`, up(func(u *Upstream) {
		u.Nodes, u.DiscoveryType, u.ServiceName = nil, "dns", "web.test"
	}))
	f(`{"service_name":"_http._tcp.web.test:8080","discovery_type":"dns","discovery_args":{"group_name":"g","namespace_id":"n"}}`, up(func(u *Upstream) {
		u.Nodes, u.DiscoveryType, u.ServiceName = nil, "dns", "_http._tcp.web.test:8080"
		u.DiscoveryArgs = map[string]string{"group_name": "g", "namespace_id": "n"}
	}))
	f(`{"service_name":"web.test","discovery_type":"dns","discovery_args":{}}`, up(func(u *Upstream) {
		u.Nodes, u.DiscoveryType, u.ServiceName = nil, "dns", "web.test"
	}))
	f(`{"nodes":[]}`, up(nil))
	f(`{"nodes":{"127.0.0.1:1980":1}}`, up(func(u *Upstream) { u.Nodes = []Node{{Host: "127.0.0.1", Port: 1980, Weight: 1}} }))
	// The object form is sorted by key; a key without port gets the
	// scheme's port; weight 0 is kept.
	f(`{"nodes":{"b.com:1":1,"a.com":2,"[::1]:3":0,"[::2]":4,"c.com":0}}`, up(func(u *Upstream) {
		u.Nodes = []Node{
			{Host: "::1", Port: 3, Weight: 0},
			{Host: "::2", Port: 80, Weight: 4},
			{Host: "a.com", Port: 80, Weight: 2},
			{Host: "b.com", Port: 1, Weight: 1},
			{Host: "c.com", Port: 80, Weight: 0},
		}
	}))
	f(`{"scheme":"https","nodes":{"a.com":1,"[::1]":1,"b.com:8443":1}}`, up(func(u *Upstream) {
		u.Scheme = "https"
		u.Nodes = []Node{{Host: "::1", Port: 443, Weight: 1}, {Host: "a.com", Port: 443, Weight: 1}, {Host: "b.com", Port: 8443, Weight: 1}}
	}))
	// The array form keeps its order.
	f(`{"nodes":[{"host":"b","weight":0},{"host":"[::1]","port":8080,"weight":1,"priority":-1,"metadata":{"zone":"x","n":1}},{"host":"a","port":1,"weight":9,"priority":2,"metadata":{}}]}`,
		up(func(u *Upstream) {
			u.Nodes = []Node{
				{Host: "b", Port: 80, Weight: 0},
				{Host: "::1", Port: 8080, Weight: 1, Priority: -1, Metadata: map[string]any{"zone": "x", "n": numberOf("1")}},
				{Host: "a", Port: 1, Weight: 9, Priority: 2},
			}
		}))
	f(`{"scheme":"https","nodes":[{"host":"a","weight":1}]}`, up(func(u *Upstream) {
		u.Scheme = "https"
		u.Nodes = []Node{{Host: "a", Port: 443, Weight: 1}}
	}))
	f(`{"id":7,"name":"u","desc":"d","labels":{"k":"v"},"create_time":1,"update_time":2,"nodes":{}}`, up(func(u *Upstream) {
		u.ID, u.Name, u.Desc, u.Labels = "7", "u", "d", map[string]string{"k": "v"}
	}))
	f(`{"nodes":{},"retries":0,"retry_timeout":0.15,"timeout":{"connect":1,"send":2,"read":0.001}}`, up(func(u *Upstream) {
		u.Retries = intPtr(0)
		u.RetryTimeout = 150 * time.Millisecond
		u.Timeout = &Timeout{Connect: time.Second, Send: 2 * time.Second, Read: time.Millisecond}
	}))
	f(`{"nodes":{},"retries":3,"retry_timeout":0}`, up(func(u *Upstream) { u.Retries = intPtr(3) }))
	for _, typ := range []string{"roundrobin", "least_conn", "ewma"} {
		f(`{"nodes":{},"type":"`+typ+`"}`, up(func(u *Upstream) { u.Type = typ }))
	}
	f(`{"nodes":{},"pass_host":"node"}`, up(func(u *Upstream) { u.PassHost = "node" }))
	f(`{"nodes":{},"pass_host":"rewrite","upstream_host":"Test.com"}`, up(func(u *Upstream) {
		u.PassHost, u.UpstreamHost = "rewrite", "Test.com"
	}))
	// chash keys.
	for _, key := range []string{"remote_addr", "uri", "server_name", "server_addr", "request_uri", "remote_port",
		"query_string", "host", "hostname", "arg_device_id", "http_x_user", "cookie_sid"} {
		f(`{"nodes":{},"type":"chash","key":"`+key+`"}`, up(func(u *Upstream) { u.Type, u.Key = "chash", key }))
	}
	f(`{"nodes":{},"type":"chash","hash_on":"header","key":"X-Session_id"}`, up(func(u *Upstream) {
		u.Type, u.HashOn, u.Key = "chash", "header", "X-Session_id"
	}))
	f(`{"nodes":{},"type":"chash","hash_on":"cookie","key":"sid"}`, up(func(u *Upstream) {
		u.Type, u.HashOn, u.Key = "chash", "cookie", "sid"
	}))
	f(`{"nodes":{},"type":"chash","hash_on":"consumer"}`, up(func(u *Upstream) { u.Type, u.HashOn = "chash", "consumer" }))
	f(`{"nodes":{},"type":"chash","hash_on":"vars_combinations","key":"$http_a-${arg_b}-${cookie_c ?? x}-\\$nope"}`,
		up(func(u *Upstream) {
			u.Type, u.HashOn, u.Key = "chash", "vars_combinations", `$http_a-${arg_b}-${cookie_c ?? x}-\$nope`
		}))
	// key is kept but not checked for other balancers.
	f(`{"nodes":{},"hash_on":"header","key":"anything at all"}`, up(func(u *Upstream) { u.HashOn, u.Key = "header", "anything at all" }))
	f(`{"nodes":{},"keepalive_pool":{}}`, up(func(u *Upstream) {
		u.KeepalivePool = &KeepalivePool{Size: 320, IdleTimeout: 60 * time.Second, Requests: 1000}
	}))
	f(`{"nodes":{},"keepalive_pool":{"size":1,"idle_timeout":0,"requests":5}}`, up(func(u *Upstream) {
		u.KeepalivePool = &KeepalivePool{Size: 1, IdleTimeout: 0, Requests: 5}
	}))
	f(`{"nodes":{},"keepalive_pool":{"idle_timeout":0.5}}`, up(func(u *Upstream) {
		u.KeepalivePool = &KeepalivePool{Size: 320, IdleTimeout: 500 * time.Millisecond, Requests: 1000}
	}))
	f(`{"nodes":{},"tls":{}}`, up(func(u *Upstream) { u.TLS = &UpstreamTLS{} }))
	f(`{"nodes":{},"tls":{"client_cert_id":1,"verify":true}}`, up(func(u *Upstream) { u.TLS = &UpstreamTLS{ClientCertID: "1", Verify: true} }))
	pki := fixedPKI()
	f(`{"nodes":{},"scheme":"https","tls":{"client_cert":"`+jsonString(pki.Client.Cert)+`","client_key":"`+jsonString(pki.Client.Key)+
		`","ca_certs":["`+jsonString(pki.CA.PEM)+`"]}}`,
		up(func(u *Upstream) {
			u.Scheme = "https"
			u.TLS = &UpstreamTLS{ClientCert: pki.Client.Cert, ClientKey: pki.Client.Key, CACerts: []string{pki.CA.PEM}}
		}))
	f(`{"nodes":{},"retry_on_statuses":[502,503,504]}`, up(func(u *Upstream) { u.RetryOnStatuses = []int{502, 503, 504} }))
	f(`{"nodes":{},"retry_on_statuses":[]}`, up(nil))
}

// numberOf returns a JSON number as the decoder keeps it.
func numberOf(s string) any {
	v, err := decodeJSON([]byte(s))
	if err != nil {
		panic(err)
	}
	return v
}

func TestParseUpstreamValid(t *testing.T) {
	f := func(body string, want *Upstream) {
		t.Helper()
		got, err := ParseUpstream([]byte(body))
		if err != nil {
			t.Fatalf("body %s: unexpected error %q", body, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("body %s:\n got %+v\nwant %+v", body, got, want)
		}
	}
	upstreamValidCases(f)
}

func upstreamErrorCases(f func(body, wantErr string)) {
	f(`[1]`, `wrong type: expected object, got array`)
	f(`{}`, `property "nodes" is required`)
	f(`{"type":"roundrobin"}`, `property "nodes" is required`)
	f(`{"nodes":{},"foo":1}`, `additional properties forbidden, found foo`)
	f(`{"nodes":{},"name":1}`, `property "name" validation failed: wrong type: expected string, got number`)
	f(`{"nodes":{},"id":"a/b"}`, `property "id" validation failed: failed to match pattern "^[a-zA-Z0-9-_.]+$" with "a/b"`)

	// retries, retry_timeout, timeout.
	f(`{"nodes":{},"retries":-1}`, `property "retries" validation failed: expected -1 to be at least 0`)
	f(`{"nodes":{},"retries":"1"}`, `property "retries" validation failed: wrong type: expected integer, got string`)
	f(`{"nodes":{},"retries":1.5}`, `property "retries" validation failed: wrong type: expected integer, got number`)
	f(`{"nodes":{},"retry_timeout":-1}`, `property "retry_timeout" validation failed: expected -1 to be at least 0`)
	f(`{"nodes":{},"retry_timeout":"1"}`, `property "retry_timeout" validation failed: wrong type: expected number, got string`)
	f(`{"nodes":{},"timeout":{"connect":1,"send":1}}`, `property "timeout" validation failed: property "read" is required`)
	f(`{"nodes":{},"timeout":{"connect":1,"send":1,"read":0}}`, `property "timeout" validation failed: property "read" validation failed: expected 0 to be greater than 0`)

	// nodes.
	f(`{"nodes":"127.0.0.1:80"}`, `property "nodes" validation failed: wrong type: expected one of object, array, got string`)
	f(`{"nodes":null}`, `property "nodes" validation failed: wrong type: expected one of object, array, got null`)
	f(`{"nodes":{"127.0.0.1:80":-1}}`, `property "nodes" validation failed: failed to validate 127.0.0.1:80 (matching ".*"): expected -1 to be at least 0`)
	f(`{"nodes":{"127.0.0.1:80":"1"}}`, `property "nodes" validation failed: failed to validate 127.0.0.1:80 (matching ".*"): wrong type: expected integer, got string`)
	f(`{"nodes":{"127.0.0.1:80":1.5}}`, `property "nodes" validation failed: failed to validate 127.0.0.1:80 (matching ".*"): wrong type: expected integer, got number`)
	f(`{"nodes":{"127.0.0.1:70000":1}}`, `property "nodes" validation failed: invalid port 70000 in node address "127.0.0.1:70000"`)
	f(`{"nodes":{"127.0.0.1:0":1}}`, `property "nodes" validation failed: invalid port 0 in node address "127.0.0.1:0"`)
	f(`{"nodes":{"127.0.0.1:":1}}`, `property "nodes" validation failed: invalid node address "127.0.0.1:"`)
	f(`{"nodes":{"127.0.0.1:+80":1}}`, `property "nodes" validation failed: invalid node address "127.0.0.1:+80"`)
	f(`{"nodes":{"a:b":1}}`, `property "nodes" validation failed: invalid node address "a:b"`)
	f(`{"nodes":{":80":1}}`, `property "nodes" validation failed: invalid node address ":80"`)
	f(`{"nodes":{"a b:80":1}}`, `property "nodes" validation failed: invalid node address "a b:80"`)
	f(`{"nodes":{"[::1":1}}`, `property "nodes" validation failed: invalid node address "[::1"`)
	f(`{"nodes":{"[1.2.3.4]:80":1}}`, `property "nodes" validation failed: invalid node address "[1.2.3.4]:80"`)
	f(`{"nodes":{"[::1]80":1}}`, `property "nodes" validation failed: invalid node address "[::1]80"`)
	f(`{"nodes":{"::1":1}}`, `IPv6 address must be enclosed with '[' and ']'`)
	f(`{"nodes":{"::1:80":1}}`, `IPv6 address must be enclosed with '[' and ']'`)
	f(`{"nodes":{"fe80::1:8080":1}}`, `IPv6 address must be enclosed with '[' and ']'`)
	f(`{"nodes":[{"host":"::1","port":80,"weight":1}]}`, `IPv6 address must be enclosed with '[' and ']'`)
	// The IPv6 check comes before any schema failure, as in APISIX.
	f(`{"retries":-1,"nodes":[{"host":"2001:db8::1","weight":1}]}`, `IPv6 address must be enclosed with '[' and ']'`)
	f(`{"nodes":[{"host":"a","port":70000,"weight":1}]}`, `property "nodes" validation failed: failed to validate item 1: property "port" validation failed: expected 70000 to be at most 65535`)
	f(`{"nodes":[{"host":"a","weight":1},{"host":"b"}]}`, `property "nodes" validation failed: failed to validate item 2: property "weight" is required`)
	f(`{"nodes":[{"weight":1}]}`, `property "nodes" validation failed: failed to validate item 1: property "host" is required`)
	f(`{"nodes":[{"host":"a","weight":-1}]}`, `property "nodes" validation failed: failed to validate item 1: property "weight" validation failed: expected -1 to be at least 0`)
	f(`{"nodes":[{"host":"a","weight":1,"priority":0.5}]}`, `property "nodes" validation failed: failed to validate item 1: property "priority" validation failed: wrong type: expected integer, got number`)
	f(`{"nodes":[{"host":"a","weight":1,"metadata":"x"}]}`, `property "nodes" validation failed: failed to validate item 1: property "metadata" validation failed: wrong type: expected object, got string`)
	f(`{"nodes":[{"host":"a","weight":1,"name":"x"}]}`, `property "nodes" validation failed: failed to validate item 1: additional properties forbidden, found name`)
	f(`{"nodes":[{"host":"a b","weight":1}]}`, `property "nodes" validation failed: failed to validate item 1: property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a b"`)
	f(`{"nodes":[{"host":"a:80","weight":1}]}`, `property "nodes" validation failed: failed to validate item 1: property "host" validation failed: invalid node host "a:80" (give the port in "port")`)
	f(`{"nodes":[{"host":"*.a","weight":1}]}`, `property "nodes" validation failed: failed to validate item 1: property "host" validation failed: invalid node host "*.a" (give the port in "port")`)
	f(`{"nodes":[{"host":"[::1","weight":1}]}`, `property "nodes" validation failed: failed to validate item 1: property "host" validation failed: invalid IPv6 address "[::1"`)
	f(`{"nodes":["a:80"]}`, `property "nodes" validation failed: failed to validate item 1: wrong type: expected object, got string`)

	// type and scheme.
	f(`{"nodes":{},"type":"foo"}`, `property "type" validation failed: balancer type "foo" is not supported; expected one of chash, ewma, least_conn, roundrobin`)
	f(`{"nodes":{},"type":1}`, `property "type" validation failed: wrong type: expected string, got number`)
	f(`{"nodes":{},"scheme":"grpc"}`, `property "scheme" validation failed: scheme "grpc" is not supported by this gateway (needs HTTP/2)`)
	f(`{"nodes":{},"scheme":"grpcs"}`, `property "scheme" validation failed: scheme "grpcs" is not supported by this gateway (needs HTTP/2)`)
	f(`{"nodes":{},"scheme":"tcp"}`, `property "scheme" validation failed: scheme "tcp" is not supported by this gateway (stream proxying)`)
	f(`{"nodes":{},"scheme":"kafka"}`, `property "scheme" validation failed: scheme "kafka" is not supported by this gateway (Kafka protocol)`)
	f(`{"nodes":{},"scheme":"ftp"}`, `property "scheme" validation failed: matches none of the enum values`)
	f(`{"nodes":{},"scheme":1}`, `property "scheme" validation failed: matches none of the enum values`)

	// pass_host, upstream_host.
	f(`{"nodes":{},"pass_host":"keep"}`, `property "pass_host" validation failed: matches none of the enum values`)
	f(`{"nodes":{},"pass_host":"rewrite"}`, "`upstream_host` can't be empty when `pass_host` is `rewrite`")
	f(`{"nodes":{},"pass_host":"rewrite","upstream_host":""}`, `property "upstream_host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with ""`)

	// chash.
	f(`{"nodes":{},"hash_on":"ip"}`, `property "hash_on" validation failed: matches none of the enum values`)
	f(`{"nodes":{},"type":"chash"}`, `missing key`)
	f(`{"nodes":{},"type":"chash","hash_on":"header"}`, `missing key`)
	f(`{"nodes":{},"type":"chash","key":1}`, `property "key" validation failed: wrong type: expected string, got number`)
	f(`{"nodes":{},"type":"chash","key":"not_support"}`, `property "key" validation failed: failed to match pattern "^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+|http_[0-9a-zA-Z_-]+|cookie_[0-9a-zA-Z_-]+)$" with "not_support"`)
	f(`{"nodes":{},"type":"chash","key":"mqtt_client_id"}`, `property "key" validation failed: variable "mqtt_client_id" is not supported by this gateway`)
	f(`{"nodes":{},"type":"chash","hash_on":"header","key":"$#^@"}`, `property "key" validation failed: failed to match pattern "^[a-zA-Z0-9-_]+$" with "$#^@"`)
	f(`{"nodes":{},"type":"chash","hash_on":"cookie","key":"a b"}`, `property "key" validation failed: failed to match pattern "^[a-zA-Z0-9-_]+$" with "a b"`)
	f(`{"nodes":{},"type":"chash","hash_on":"vars_combinations","key":"$http_a-$foo"}`, `property "key" validation failed: unknown variable "foo"`)
	f(`{"nodes":{},"type":"chash","hash_on":"vars_combinations","key":"${ nope ?? 1 }"}`, `property "key" validation failed: unknown variable "nope"`)

	// keepalive_pool.
	f(`{"nodes":{},"keepalive_pool":{"size":0}}`, `property "keepalive_pool" validation failed: property "size" validation failed: expected 0 to be at least 1`)
	f(`{"nodes":{},"keepalive_pool":{"idle_timeout":-1}}`, `property "keepalive_pool" validation failed: property "idle_timeout" validation failed: expected -1 to be at least 0`)
	f(`{"nodes":{},"keepalive_pool":{"requests":0}}`, `property "keepalive_pool" validation failed: property "requests" validation failed: expected 0 to be at least 1`)
	f(`{"nodes":{},"keepalive_pool":{"requests":1.5}}`, `property "keepalive_pool" validation failed: property "requests" validation failed: wrong type: expected integer, got number`)
	f(`{"nodes":{},"keepalive_pool":{"max":1}}`, `property "keepalive_pool" validation failed: additional properties forbidden, found max`)
	f(`{"nodes":{},"keepalive_pool":320}`, `property "keepalive_pool" validation failed: wrong type: expected object, got number`)

	// tls.
	f(`{"nodes":{},"tls":{"client_cert":"`+testCert+`"}}`, `property "tls" validation failed: failed to validate dependent schema for "client_cert": property "client_key" is required`)
	f(`{"nodes":{},"tls":{"client_key":"`+testKey+`"}}`, `property "tls" validation failed: failed to validate dependent schema for "client_key": property "client_cert" is required`)
	f(`{"nodes":{},"tls":{"client_cert_id":"1","client_cert":"`+testCert+`","client_key":"`+testKey+`"}}`, `property "tls" validation failed: failed to validate dependent schema for "client_cert_id": value wasn't supposed to match schema`)
	f(`{"nodes":{},"tls":{"client_cert":"short","client_key":"`+testKey+`"}}`, `property "tls" validation failed: property "client_cert" validation failed: string too short, expected at least 128, got 5`)
	f(`{"nodes":{},"tls":{"client_cert":"`+testCert+`","client_key":"short"}}`, `property "tls" validation failed: property "client_key" validation failed: string too short, expected at least 64, got 5`)
	f(`{"nodes":{},"tls":{"client_cert_id":0}}`, `property "tls" validation failed: property "client_cert_id" validation failed: expected 0 to be at least 1`)
	f(`{"nodes":{},"tls":{"verify":"true"}}`, `property "tls" validation failed: property "verify" validation failed: wrong type: expected boolean, got string`)
	f(`{"nodes":{},"tls":{"ca_certs":["x"]}}`, `property "tls" validation failed: property "ca_certs" validation failed: failed to validate item 1: expected PEM text (-----BEGIN ...)`)
	f(`{"nodes":{},"tls":{"ca_certs":[""]}}`, `property "tls" validation failed: property "ca_certs" validation failed: failed to validate item 1: string too short, expected at least 1, got 0`)
	f(`{"nodes":{},"tls":{"sni":"a"}}`, `property "tls" validation failed: additional properties forbidden, found sni`)
	// PEM texts must parse, and the key must match the certificate.
	pki := fixedPKI()
	cc, ok := jsonString(pki.Client.Cert), jsonString(pki.Other.Key)
	f(`{"nodes":{},"tls":{"client_cert":"`+testCert+`","client_key":"`+testKey+`"}}`, `property "tls" validation failed: failed to parse cert: x509: malformed certificate`)
	f(`{"nodes":{},"tls":{"client_cert":"`+cc+`","client_key":"`+testKey+`"}}`, `property "tls" validation failed: failed to parse key: the PRIVATE KEY block is not a PKCS #1, PKCS #8 or SEC 1 private key`)
	f(`{"nodes":{},"tls":{"client_cert":"`+cc+`","client_key":"`+cc+`"}}`, `property "tls" validation failed: failed to parse key: unexpected PEM block CERTIFICATE (want a PRIVATE KEY)`)
	f(`{"nodes":{},"tls":{"client_cert":"`+cc+`","client_key":"`+ok+`"}}`, `property "tls" validation failed: the key does not match the certificate: tls: private key does not match public key`)
	f(`{"nodes":{},"tls":{"ca_certs":["`+testCert+`"]}}`, `property "tls" validation failed: property "ca_certs" validation failed: failed to validate item 1: failed to parse cert: x509: malformed certificate`)
	f(`{"nodes":{},"tls":{"ca_certs":["`+ok+`"]}}`, `property "tls" validation failed: property "ca_certs" validation failed: failed to validate item 1: failed to parse cert: unexpected PEM block PRIVATE KEY (want CERTIFICATE)`)
	f(`{"nodes":{},"tls":{"ca_certs":["`+cc+`x"]}}`, `property "tls" validation failed: property "ca_certs" validation failed: failed to validate item 1: failed to parse cert: unexpected data after the last PEM block`)

	// retry_on_statuses.
	f(`{"nodes":{},"retry_on_statuses":[404]}`, `property "retry_on_statuses" validation failed: failed to validate item 1: expected 404 to be at least 500`)
	f(`{"nodes":{},"retry_on_statuses":[502,600]}`, `property "retry_on_statuses" validation failed: failed to validate item 2: expected 600 to be at most 599`)
	f(`{"nodes":{},"retry_on_statuses":[502,502]}`, `property "retry_on_statuses" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"nodes":{},"retry_on_statuses":502}`, `property "retry_on_statuses" validation failed: wrong type: expected array, got number`)

	// Service discovery: exactly one of nodes and service_name, a
	// registered type, a service name the type accepts.
	f(`{"nodes":{},"service_name":"svc","discovery_type":"dns"}`, `only one of nodes and service_name may be set: static nodes, or a service to discover (service_name with discovery_type)`)
	f(`{"nodes":{},"service_name":"svc"}`, `only one of nodes and service_name may be set: static nodes, or a service to discover (service_name with discovery_type)`)
	f(`{"service_name":"svc"}`, `property "discovery_type" is required`)
	f(`{"discovery_type":"dns"}`, `property "service_name" is required`)
	f(`{"discovery_args":{}}`, `property "service_name" is required`)
	f(`{"service_name":"svc","discovery_type":"consul"}`, `property "discovery_type" validation failed: discovery type "consul" is not supported by this gateway yet; supported: dns`)
	f(`{"service_name":"svc","discovery_type":"zookeeper"}`, `property "discovery_type" validation failed: unknown discovery type "zookeeper"; supported: dns`)
	f(`{"service_name":"svc","discovery_type":1}`, `property "discovery_type" validation failed: wrong type: expected string, got number`)
	f(`{"service_name":"","discovery_type":"dns"}`, `property "service_name" validation failed: string too short, expected at least 1, got 0`)
	f(`{"service_name":"web test","discovery_type":"dns"}`, `property "service_name" validation failed: service_name "web test" is not a DNS name (want "name" or "name:port")`)
	f(`{"service_name":"web.test:0","discovery_type":"dns"}`, `property "service_name" validation failed: invalid port in service_name "web.test:0"`)
	f(`{"service_name":"svc","discovery_type":"dns","discovery_args":{"namespace_id":1}}`, `property "discovery_args" validation failed: property "namespace_id" validation failed: wrong type: expected string, got number`)
	f(`{"service_name":"svc","discovery_type":"dns","discovery_args":[1]}`, `property "discovery_args" validation failed: wrong type: expected object, got array`)
}

func TestParseUpstreamErrors(t *testing.T) {
	f := func(body, wantErr string) {
		t.Helper()
		u, err := ParseUpstream([]byte(body))
		checkValidationError(t, body, err, wantErr)
		if u != nil {
			t.Fatalf("body %s: non-nil upstream with an error", body)
		}
	}
	upstreamErrorCases(f)
}

// TestSupportedKnobs checks that the exported maps steer the checks.
func TestSupportedKnobs(t *testing.T) {
	defer func(b, s map[string]bool) { SupportedBalancers, SupportedSchemes = b, s }(SupportedBalancers, SupportedSchemes)
	SupportedBalancers = map[string]bool{"roundrobin": true}
	SupportedSchemes = map[string]bool{"http": true, "https": true, "grpc": true}

	_, err := ParseUpstream([]byte(`{"nodes":{},"type":"ewma"}`))
	checkValidationError(t, "ewma", err, `property "type" validation failed: balancer type "ewma" is not supported; expected one of roundrobin`)
	u, err := ParseUpstream([]byte(`{"nodes":{"a":1},"scheme":"grpc"}`))
	if err != nil {
		t.Fatalf("grpc: %v", err)
	}
	if u.Scheme != "grpc" || u.Nodes[0].Port != 80 {
		t.Fatalf("grpc: got scheme %q port %d", u.Scheme, u.Nodes[0].Port)
	}
	_, err = ParseUpstream([]byte(`{"nodes":{},"scheme":"https"}`))
	if err != nil {
		t.Fatalf("https: %v", err)
	}
	SupportedSchemes = map[string]bool{"http": true}
	_, err = ParseUpstream([]byte(`{"nodes":{},"scheme":"https"}`))
	checkValidationError(t, "https", err, `property "scheme" validation failed: scheme "https" is not supported by this gateway`)
}

// TestDefaultsNotShared checks that filled-in defaults are fresh values.
func TestDefaultsNotShared(t *testing.T) {
	parse := func() *Upstream {
		u, err := ParseUpstream([]byte(`{"nodes":{},"keepalive_pool":{},"checks":{"active":{},"passive":{}}}`))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	a := parse()
	a.KeepalivePool.Size = 1
	a.Checks.Active.Healthy.HTTPStatuses[0] = 1
	a.Checks.Active.Unhealthy.HTTPStatuses[0] = 1
	a.Checks.Passive.Healthy.HTTPStatuses[0] = 1
	a.Checks.Passive.Unhealthy.HTTPStatuses[0] = 1
	b := parse()
	if fmt.Sprint(b.KeepalivePool, b.Checks.Active, b.Checks.Passive) == fmt.Sprint(a.KeepalivePool, a.Checks.Active, a.Checks.Passive) {
		t.Fatal("defaults are shared between parses")
	}
	if DefaultKeepalivePool.Size != 320 {
		t.Fatal("DefaultKeepalivePool was changed")
	}
}
