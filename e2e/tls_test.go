package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/testpki"
)

// sniOrigin is an HTTPS origin that answers with the SNI, the Host and the
// client certificate's common name it saw, and checks that no connection
// carries requests for two server names.
func sniOrigin(t *testing.T, cert tls.Certificate, clientAuth *tls.Config) (*countingOrigin, *sync.Map) {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	if clientAuth != nil {
		cfg.ClientAuth, cfg.ClientCAs = clientAuth.ClientAuth, clientAuth.ClientCAs
	}
	var conns sync.Map // remote address -> SNI
	o := startCountingOrigin(t, cfg, func(w http.ResponseWriter, r *http.Request) {
		sni := r.TLS.ServerName
		if prev, loaded := conns.LoadOrStore(r.RemoteAddr, sni); loaded && prev != sni {
			t.Errorf("one upstream connection carried SNI %q then %q", prev, sni)
		}
		cn := ""
		if len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		fmt.Fprintf(w, "sni=%s host=%s client=%s", sni, r.Host, cn)
	})
	return o, &conns
}

// TestHTTPSUpstream: scheme https with and without verification, the SNI
// per pass_host, one pool per SNI, and a wrong CA.
func TestHTTPSUpstream(t *testing.T) {
	ca, other := testpki.NewCA("test CA"), testpki.NewCA("other CA")
	o, _ := sniOrigin(t, ca.Issue(false, "origin.test", "127.0.0.1").TLS(), nil)
	g := startGateway(t, "")
	route := func(id, extra string) {
		g.mustDo("PUT", "/apisix/admin/routes/"+id, fmt.Sprintf(`{"uri":"/%s","upstream":{"scheme":"https","nodes":{"%s":1}%s}}`,
			id, o.Addr, extra), 201)
	}
	route("off", "")
	route("node", `,"pass_host":"node"`)
	route("rw", `,"pass_host":"rewrite","upstream_host":"origin.test","tls":{"verify":true,"ca_certs":[`+js(ca.PEM)+`]}`)
	route("ip", `,"pass_host":"node","tls":{"verify":true,"ca_certs":[`+js(ca.PEM)+`]}`)
	route("wrongca", `,"pass_host":"rewrite","upstream_host":"origin.test","tls":{"verify":true,"ca_certs":[`+js(other.PEM)+`]}`)
	route("sysroots", `,"pass_host":"rewrite","upstream_host":"origin.test","tls":{"verify":true}`)
	route("wrongname", `,"pass_host":"rewrite","upstream_host":"nope.test","tls":{"verify":true,"ca_certs":[`+js(ca.PEM)+`]}`)

	f := func(path, host, want string) {
		t.Helper()
		if body := mustGet(t, g, path, "Host", host); body != want {
			t.Errorf("%s with Host %s: %q, want %q", path, host, body, want)
		}
	}
	// Verification off (APISIX's default): any certificate; SNI = the
	// client's Host without its port.
	f("/off", "svc.test:9080", "sni=svc.test host=svc.test:9080 client=")
	// pass_host=node with an IP node: no SNI (RFC 6066 forbids IPs).
	f("/node", "svc.test", fmt.Sprintf("sni= host=127.0.0.1:%d client=", o.Port))
	// Verified against tls.ca_certs, for the upstream_host name...
	f("/rw", "svc.test", "sni=origin.test host=origin.test client=")
	// ...or for the node's IP address.
	f("/ip", "svc.test", fmt.Sprintf("sni= host=127.0.0.1:%d client=", o.Port))

	for _, path := range []string{"/wrongca", "/sysroots", "/wrongname"} {
		if code, _, _ := g.get(path); code != 502 {
			t.Errorf("%s: %d, want 502", path, code)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("upstream /apisix/routes/wrongca node %s: pool: TLS handshake with %s (SNI origin.test) failed: tls: failed to verify certificate: x509: certificate signed by unknown authority", o.Addr, o.Addr),
		fmt.Sprintf("upstream /apisix/routes/wrongname node %s: pool: TLS handshake with %s (SNI nope.test) failed: tls: failed to verify certificate: x509: certificate is valid for origin.test, not nope.test", o.Addr, o.Addr),
	} {
		g.waitLog(want)
	}
	l := fmt.Sprintf(`{upstream="/apisix/routes/wrongca",node="%s"}`, o.Addr)
	if n := g.metric("gateway_upstream_tls_handshake_failures_total" + l); n != 1 {
		t.Errorf("TLS failures on /wrongca: %v, want 1", n)
	}
}

// TestHTTPSUpstreamPoolPerSNI: with pass_host=pass, requests for two
// hosts never share a TLS connection, and each host's connection is
// reused.
func TestHTTPSUpstreamPoolPerSNI(t *testing.T) {
	ca := testpki.NewCA("test CA")
	o, _ := sniOrigin(t, ca.Issue(false, "origin.test").TLS(), nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/r", fmt.Sprintf(`{"uri":"/r","upstream":{"scheme":"https","nodes":{"%s":1}}}`, o.Addr), 201)
	for i := 0; i < 20; i++ {
		host := []string{"a.test", "b.test"}[i%2]
		if body := mustGet(t, g, "/r", "Host", host); body != "sni="+host+" host="+host+" client=" {
			t.Fatalf("request %d: %q", i, body)
		}
	}
	if got := o.accepted.Load(); got != 2 {
		t.Fatalf("two hosts alternating over 20 requests opened %d TLS connections, want 2", got)
	}
	l := fmt.Sprintf(`{upstream="/apisix/routes/r",node="%s"}`, o.Addr)
	if hs, reused := g.metric("gateway_upstream_tls_handshakes_total"+l), g.metric("gateway_upstream_connections_reused_total"+l); hs != 2 || reused != 18 {
		t.Fatalf("metrics: %v handshakes, %v reused; want 2 and 18", hs, reused)
	}
}

// TestUpstreamMTLS: an origin that requires a client certificate gets
// one from tls.client_cert/client_key or from an SSL object of type
// client; without one the client gets a 502 and the log says why.
func TestUpstreamMTLS(t *testing.T) {
	ca := testpki.NewCA("test CA")
	o, _ := sniOrigin(t, ca.Issue(false, "origin.test").TLS(),
		&tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.Pool})
	inline, byID := ca.Issue(true, "client-inline"), ca.Issue(true, "client-ssl")
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/ssls/c1", `{"type":"client","cert":`+js(byID.Cert)+`,"key":`+js(byID.Key)+`}`, 201)
	up := func(tlsField string) string {
		return fmt.Sprintf(`{"scheme":"https","nodes":{"%s":1},"tls":%s}`, o.Addr, tlsField)
	}
	g.mustDo("PUT", "/apisix/admin/upstreams/inline", up(`{"client_cert":`+js(inline.Cert)+`,"client_key":`+js(inline.Key)+`}`), 201)
	g.mustDo("PUT", "/apisix/admin/upstreams/byid", up(`{"client_cert_id":"c1"}`), 201)
	g.mustDo("PUT", "/apisix/admin/upstreams/none", up(`{}`), 201)
	for _, id := range []string{"inline", "byid", "none"} {
		g.mustDo("PUT", "/apisix/admin/routes/"+id, `{"uri":"/`+id+`","upstream_id":"`+id+`"}`, 201)
	}
	if body := mustGet(t, g, "/inline", "Host", "x.test"); !strings.HasSuffix(body, "client=client-inline") {
		t.Errorf("inline client certificate: %q", body)
	}
	if body := mustGet(t, g, "/byid", "Host", "x.test"); !strings.HasSuffix(body, "client=client-ssl") {
		t.Errorf("client_cert_id: %q", body)
	}
	if code, _, _ := g.get("/none", "Host", "x.test"); code != 502 {
		t.Errorf("no client certificate: %d, want 502", code)
	}
	g.waitLog("upstream /apisix/upstreams/none node " + o.Addr + ": cannot read response header: remote error: tls: certificate required")

	// Rotating the SSL object's certificate applies to new connections.
	rotated := ca.Issue(true, "client-rotated")
	g.mustDo("PUT", "/apisix/admin/ssls/c1", `{"type":"client","cert":`+js(rotated.Cert)+`,"key":`+js(rotated.Key)+`}`, 200)
	if body := mustGet(t, g, "/byid", "Host", "x.test"); !strings.HasSuffix(body, "client=client-rotated") {
		t.Errorf("after rotating the client SSL: %q", body)
	}
	// An SSL object in use cannot go away or change type.
	r := g.mustDo("DELETE", "/apisix/admin/ssls/c1", "", 400)
	if !strings.Contains(string(r.Body), "can not delete this ssl, upstream [byid] is still using it now") {
		t.Errorf("delete: %s", r.Body)
	}
	r = g.mustDo("PUT", "/apisix/admin/ssls/c1", `{"sni":"x.test","cert":`+js(rotated.Cert)+`,"key":`+js(rotated.Key)+`}`, 400)
	if !strings.Contains(string(r.Body), "can not change the type of this ssl to server") {
		t.Errorf("type change: %s", r.Body)
	}
}

// tlsClient returns an HTTP client for the gateway's HTTPS listener that
// presents sni and trusts ca.
func tlsClient(ca *testpki.CA, sni string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{ServerName: sni, RootCAs: ca.Pool}, ForceAttemptHTTP2: false}}
}

// servedCert completes a handshake with the HTTPS listener for sni and
// returns the names of the certificate it served.
func servedCert(g *gateway, ca *testpki.CA, sni string) ([]string, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", g.tls, &tls.Config{ServerName: sni, RootCAs: ca.Pool})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].DNSNames, nil
}

// TestHTTPSListener: the listener picks the SSL object by SNI (exact beats
// wildcard), swaps certificates without a restart, fails handshakes no
// SSL object serves, and tells the upstream the scheme was https.
func TestHTTPSListener(t *testing.T) {
	ca := testpki.NewCA("test CA")
	echo := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", r.Header.Get("X-Forwarded-Proto"), r.Host)
	})
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/r", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, echo.Addr), 201)
	a, wild, x := ca.Issue(false, "a.test"), ca.Issue(false, "*.b.test"), ca.Issue(false, "x.b.test")
	g.mustDo("PUT", "/apisix/admin/ssls/a", `{"sni":"a.test","cert":`+js(a.Cert)+`,"key":`+js(a.Key)+`}`, 201)
	g.mustDo("PUT", "/apisix/admin/ssls/wild", `{"snis":["*.b.test"],"cert":`+js(wild.Cert)+`,"key":`+js(wild.Key)+`}`, 201)
	g.mustDo("PUT", "/apisix/admin/ssls/x", `{"snis":["x.b.test"],"cert":`+js(x.Cert)+`,"key":`+js(x.Key)+`}`, 201)

	check := func(sni, want string) {
		t.Helper()
		names, err := servedCert(g, ca, sni)
		if err != nil {
			t.Fatalf("SNI %s: %v", sni, err)
		}
		if names[0] != want {
			t.Fatalf("SNI %s: served %v, want %s", sni, names, want)
		}
	}
	check("a.test", "a.test")
	check("y.b.test", "*.b.test")
	check("x.b.test", "x.b.test") // exact beats wildcard
	if _, err := servedCert(g, ca, "c.test"); err == nil {
		t.Fatal("handshake succeeded for an SNI no SSL object serves")
	}
	g.waitLog(`no SSL object serves SNI "c.test"`)

	// Requests over HTTPS reach the upstream with X-Forwarded-Proto https.
	resp, err := tlsClient(ca, "a.test").Get("https://" + g.tls + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "https ") {
		t.Fatalf("over HTTPS: %d %q", resp.StatusCode, body)
	}
	if resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatal("not TLS 1.2+")
	}
	// TLS 1.1 is refused.
	if _, err := tls.Dial("tcp", g.tls, &tls.Config{ServerName: "a.test", RootCAs: ca.Pool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}

	// Rotation without restart: the next handshake gets the new certificate.
	rotated := ca.Issue(false, "a.test", "rotated.a.test")
	g.mustDo("PUT", "/apisix/admin/ssls/a", `{"sni":"a.test","cert":`+js(rotated.Cert)+`,"key":`+js(rotated.Key)+`}`, 200)
	if names, err := servedCert(g, ca, "a.test"); err != nil || len(names) != 2 || names[1] != "rotated.a.test" {
		t.Fatalf("after rotation: %v %v", names, err)
	}
	// A PATCH of the names keeps the stored key.
	g.mustDo("PATCH", "/apisix/admin/ssls/a", `{"sni":"rotated.a.test"}`, 200)
	check("rotated.a.test", "a.test")
	if _, err := servedCert(g, ca, "a.test"); err == nil {
		t.Fatal("a.test still served after the SSL object moved to another name")
	}
	// Disabled, then deleted: no longer served.
	g.mustDo("PATCH", "/apisix/admin/ssls/x", `{"status":0}`, 200)
	check("x.b.test", "*.b.test")
	g.mustDo("DELETE", "/apisix/admin/ssls/wild", "", 200)
	if _, err := servedCert(g, ca, "x.b.test"); err == nil {
		t.Fatal("a deleted SSL object is still served")
	}
}

// TestSSLAdmin: SSL objects are validated on write and their keys never
// appear in a response.
func TestSSLAdmin(t *testing.T) {
	ca := testpki.NewCA("test CA")
	a, b := ca.Issue(false, "a.test"), ca.Issue(false, "b.test")
	client := ca.Issue(true, "client")
	g := startGateway(t, "")
	noKey := func(what string, r adminResp) {
		t.Helper()
		if strings.Contains(string(r.Body), "PRIVATE KEY") {
			t.Errorf("%s echoes a private key: %s", what, r.Body)
		}
		v := r.JSON(t)
		values := []any{v["value"]}
		if list, ok := v["list"].([]any); ok {
			values = nil
			for _, it := range list {
				values = append(values, it.(map[string]any)["value"])
			}
		}
		for _, val := range values {
			obj := val.(map[string]any)
			_, hasKey := obj["key"]
			_, hasKeys := obj["keys"]
			tlsObj, _ := obj["tls"].(map[string]any)
			_, hasClientKey := tlsObj["client_key"]
			if hasKey || hasKeys || hasClientKey {
				t.Errorf("%s echoes a key field: %s", what, r.Body)
			}
		}
	}
	noKey("PUT", g.mustDo("PUT", "/apisix/admin/ssls/1", `{"snis":["a.test"],"cert":`+js(a.Cert)+`,"key":`+js(a.Key)+
		`,"certs":[`+js(b.Cert)+`],"keys":[`+js(b.Key)+`]}`, 201))
	noKey("GET", g.mustDo("GET", "/apisix/admin/ssls/1", "", 200))
	noKey("list", g.mustDo("GET", "/apisix/admin/ssls", "", 200))
	noKey("PATCH", g.mustDo("PATCH", "/apisix/admin/ssls/1", `{"labels":{"env":"test"}}`, 200))
	r := g.mustDo("POST", "/apisix/admin/ssls", `{"type":"client","cert":`+js(client.Cert)+`,"key":`+js(client.Key)+`}`, 201)
	noKey("POST", r)
	clientID := r.JSON(t)["value"].(map[string]any)["id"].(string)
	if !strings.Contains(string(g.mustDo("GET", "/apisix/admin/ssls/1", "", 200).Body), `"cert":`) {
		t.Error("GET must still show the certificate")
	}

	refused := func(path, body, want string) {
		t.Helper()
		r := g.mustDo("PUT", path, body, 400)
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("PUT %s: %s, want %q", path, r.Body, want)
		}
	}
	refused("/apisix/admin/ssls/2", `{"sni":"a.test","cert":`+js(a.Cert)+`,"key":`+js(b.Key)+`}`,
		"the key does not match the certificate: tls: private key does not match public key")
	refused("/apisix/admin/ssls/2", `{"sni":"a.test","cert":`+js(strings.Replace(a.Cert, "M", "N", 3))+`,"key":`+js(a.Key)+`}`,
		"failed to parse cert")
	refused("/apisix/admin/ssls/2", `{"cert":`+js(a.Cert)+`,"key":`+js(a.Key)+`}`, `property \"sni\" or \"snis\" is required`)
	refused("/apisix/admin/ssls/2", `{"sni":"a.test","cert":`+js(a.Cert)+`,"key":`+js(a.Key)+`,"certs":[`+js(b.Cert)+`]}`,
		"mismatched number of certs and keys")
	up := `{"scheme":"https","nodes":{"127.0.0.1:1":1},"tls":`
	refused("/apisix/admin/upstreams/u", up+`{"client_cert_id":"1"}}`, "failed to fetch ssl info by ssl id [1], wrong ssl type")
	refused("/apisix/admin/upstreams/u", up+`{"client_cert_id":"404"}}`, "failed to fetch ssl info by ssl id [404], response code: 404")
	refused("/apisix/admin/routes/r", `{"uri":"/","upstream":`+up+`{"client_cert_id":"1"}}}`, "wrong ssl type")
	refused("/apisix/admin/upstreams/u", up+`{"client_cert":`+js(client.Cert)+`,"client_key":`+js(a.Key)+`}}`,
		"the key does not match the certificate")
	refused("/apisix/admin/upstreams/u", up+`{"verify":true,"ca_certs":["-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"]}}`,
		"failed to parse cert")
	refused("/apisix/admin/upstreams/g", `{"scheme":"grpc","nodes":{"127.0.0.1:1":1}}`, "needs HTTP/2")
	refused("/apisix/admin/upstreams/g", `{"scheme":"grpcs","nodes":{"127.0.0.1:1":1}}`, "needs HTTP/2")

	// An upstream's inline client key is not echoed either.
	r = g.mustDo("PUT", "/apisix/admin/upstreams/u", up+`{"client_cert":`+js(client.Cert)+`,"client_key":`+js(client.Key)+`}}`, 201)
	noKey("upstream PUT", r)
	noKey("upstream GET", g.mustDo("GET", "/apisix/admin/upstreams/u", "", 200))
	g.mustDo("PUT", "/apisix/admin/upstreams/byid", up+`{"client_cert_id":"`+clientID+`"}}`, 201)
}
