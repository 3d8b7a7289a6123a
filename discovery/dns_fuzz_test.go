package discovery

import (
	"strconv"
	"testing"
)

// FuzzParseDNSService: a service_name either fails or splits into a DNS
// name and a port that put back together parse the same.
func FuzzParseDNSService(f *testing.F) {
	for _, s := range []string{"web.test", "web.test:8080", "_http._tcp.my-svc.my-ns.svc.cluster.local",
		"web.service.consul.", "a:0", "a:65536", "[::1]:80", "10.0.0.1:80", ":", "a..b", "-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, port, err := ParseDNSService(s)
		if err != nil {
			return
		}
		if port < 0 || port > 65535 || name == "" || len(name) > 253 || !dnsNamePattern.MatchString(name) {
			t.Fatalf("%q: accepted name %q port %d", s, name, port)
		}
		again := name
		if port != 0 {
			again += ":" + strconv.Itoa(port)
		}
		n2, p2, err := ParseDNSService(again)
		if err != nil || n2 != name || p2 != port {
			t.Fatalf("%q → %q %d → %q: %q %d %v", s, name, port, again, n2, p2, err)
		}
	})
}
