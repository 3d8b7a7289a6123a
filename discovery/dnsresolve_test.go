package discovery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// fakeDNS answers from a table "name TYPE" → answer; a missing entry is a
// timeout.
type fakeDNS struct {
	answers map[string]func() (*dns.Msg, error)
	asked   []string
}

func (f *fakeDNS) exchange(_ context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := strings.TrimSuffix(name, ".") + " " + dns.TypeToString[qtype]
	f.asked = append(f.asked, q)
	if a := f.answers[q]; a != nil {
		return a()
	}
	return nil, errors.New("i/o timeout")
}

func (f *fakeDNS) set(q string, m *dns.Msg, err error) {
	if f.answers == nil {
		f.answers = map[string]func() (*dns.Msg, error){}
	}
	f.answers[q] = func() (*dns.Msg, error) { return m, err }
}

// reply builds an answer: rcode, the AA bit, then records prefixed "an:",
// "ns:" or "ex:" for their section.
func reply(t *testing.T, rcode int, aa bool, records ...string) *dns.Msg {
	t.Helper()
	m := &dns.Msg{}
	m.Rcode, m.Authoritative = rcode, aa
	for _, r := range records {
		sec, text, _ := strings.Cut(r, ":")
		rr, err := dns.NewRR(text)
		if err != nil {
			t.Fatal(err)
		}
		switch sec {
		case "an":
			m.Answer = append(m.Answer, rr)
		case "ns":
			m.Ns = append(m.Ns, rr)
		case "ex":
			m.Extra = append(m.Extra, rr)
		}
	}
	return m
}

const soa = "ns:test. 30 IN SOA ns.test. hostmaster.test. 1 1200 180 1209600 7"

func nodesString(nodes []Node) string {
	sortNodes(nodes)
	var b strings.Builder
	for i, n := range nodes {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d/w%d/p%d", n.Host, n.Port, n.Weight, n.Priority)
	}
	return b.String()
}

func TestResolverLookup(t *testing.T) {
	refused := reply(t, dns.RcodeRefused, false)
	f := func(name string, addrOnly bool, setup func(f *fakeDNS), want string, wantTTL time.Duration) {
		t.Helper()
		fd := &fakeDNS{}
		setup(fd)
		r := &resolver{ex: fd, negTTL: 30 * time.Second, name: name, port: 80, addrOnly: addrOnly}
		res := r.lookup(context.Background())
		got := ""
		switch {
		case res.Err != nil:
			got = "error"
		case len(res.Nodes) == 0:
			got = "empty: " + res.Empty
		default:
			got = nodesString(res.Nodes)
		}
		if got != want {
			t.Fatalf("%s: got %q (err %v), want %q; asked %v", name, got, res.Err, want, fd.asked)
		}
		if wantTTL != 0 && res.TTL != wantTTL {
			t.Fatalf("%s: TTL %v, want %v", name, res.TTL, wantTTL)
		}
	}

	// SRV with addresses in the additional section: port, weight,
	// priority from the records; weight 0 counts as 1; the TTL is the
	// smallest.
	f("_http._tcp.web.test", false, func(d *fakeDNS) {
		d.set("_http._tcp.web.test SRV", reply(t, 0, true,
			"an:_http._tcp.web.test. 20 IN SRV 10 3 8001 a.web.test.",
			"an:_http._tcp.web.test. 20 IN SRV 10 0 8002 b.web.test.",
			"an:_http._tcp.web.test. 20 IN SRV 20 1 8003 c.web.test.",
			"ex:a.web.test. 5 IN A 10.0.0.1",
			"ex:b.web.test. 9 IN A 10.0.0.2",
			"ex:c.web.test. 9 IN AAAA 2001:db8::3"), nil)
	}, "10.0.0.1:8001/w3/p-10 10.0.0.2:8002/w1/p-10 2001:db8::3:8003/w1/p-20", 5*time.Second)

	// SRV without additional records: targets are resolved; a target's
	// refused AAAA does not matter when its A answered.
	f("_http._tcp.web.test", false, func(d *fakeDNS) {
		d.set("_http._tcp.web.test SRV", reply(t, 0, true, "an:_http._tcp.web.test. 20 IN SRV 1 1 8001 a.web.test."), nil)
		d.set("a.web.test A", reply(t, 0, true, "an:a.web.test. 3 IN A 10.0.0.1"), nil)
		d.set("a.web.test AAAA", refused, nil)
	}, "10.0.0.1:8001/w1/p-1", 3*time.Second)

	// A target that cannot be resolved at all fails the lookup.
	f("_http._tcp.web.test", false, func(d *fakeDNS) {
		d.set("_http._tcp.web.test SRV", reply(t, 0, true, "an:_http._tcp.web.test. 20 IN SRV 1 1 8001 a.web.test."), nil)
	}, "error", 0)

	// SRV NXDOMAIN with authority: the name does not exist, no A query.
	f("gone.test", false, func(d *fakeDNS) {
		d.set("gone.test SRV", reply(t, dns.RcodeNameError, true, soa), nil)
	}, "empty: NXDOMAIN for gone.test", 7*time.Second)

	// SRV NODATA, then A records (AAAA NODATA): nodes on the default port.
	f("web.test", false, func(d *fakeDNS) {
		d.set("web.test SRV", reply(t, 0, true, soa), nil)
		d.set("web.test A", reply(t, 0, true, "an:web.test. 4 IN A 10.0.0.2", "an:web.test. 4 IN A 10.0.0.1"), nil)
		d.set("web.test AAAA", reply(t, 0, true, soa), nil)
	}, "10.0.0.1:80/w1/p0 10.0.0.2:80/w1/p0", 4*time.Second)

	// dnsmasq without authority: SRV and AAAA refused, A answered.
	f("web.test", false, func(d *fakeDNS) {
		d.set("web.test SRV", refused, nil)
		d.set("web.test A", reply(t, 0, false, "an:web.test. 4 IN A 10.0.0.1"), nil)
		d.set("web.test AAAA", refused, nil)
	}, "10.0.0.1:80/w1/p0", 0)

	// Everything refused: a failure, never an empty set.
	f("web.test", false, func(d *fakeDNS) {
		d.set("web.test SRV", refused, nil)
		d.set("web.test A", refused, nil)
		d.set("web.test AAAA", refused, nil)
	}, "error", 0)

	// NODATA for A and AAAA, but SRV failed: cannot tell, a failure.
	f("web.test", false, func(d *fakeDNS) {
		d.set("web.test SRV", reply(t, dns.RcodeServerFailure, false), nil)
		d.set("web.test A", reply(t, 0, true, soa), nil)
		d.set("web.test AAAA", reply(t, 0, true, soa), nil)
	}, "error", 0)

	// An empty answer without AA or SOA is not a negative answer.
	f("web.test", true, func(d *fakeDNS) {
		d.set("web.test A", reply(t, 0, false), nil)
		d.set("web.test AAAA", reply(t, 0, false), nil)
	}, "error", 0)

	// A recursive resolver's negative answer (no AA, an SOA): empty.
	f("web.test", true, func(d *fakeDNS) {
		d.set("web.test A", reply(t, dns.RcodeNameError, false, soa), nil)
		d.set("web.test AAAA", reply(t, dns.RcodeNameError, false, soa), nil)
	}, "empty: NXDOMAIN for web.test", 7*time.Second)

	// Address-only (a static node's host name): no SRV query; a CNAME
	// chain is followed and its TTL counts.
	f("orders.test", true, func(d *fakeDNS) {
		d.set("orders.test A", reply(t, 0, false, "an:orders.test. 2 IN CNAME lb.test.", "an:lb.test. 60 IN A 10.0.0.9"), nil)
		d.set("orders.test AAAA", reply(t, 0, false, soa), nil)
	}, "10.0.0.9:80/w1/p0", 2*time.Second)
}

// TestResolverKeepsLastGood: a failed part of a lookup never drops what it
// gave before.
func TestResolverKeepsLastGood(t *testing.T) {
	d := &fakeDNS{}
	r := &resolver{ex: d, negTTL: time.Second, name: "web.test", port: 80}
	ctx := context.Background()

	// From SRV; then SRV fails while A answers: the SRV nodes stay (a
	// failure), rather than switching to the A records.
	d.set("web.test SRV", reply(t, 0, true, "an:web.test. 5 IN SRV 1 1 8001 a.test.", "ex:a.test. 5 IN A 10.0.0.1"), nil)
	if res := r.lookup(ctx); res.Err != nil || nodesString(res.Nodes) != "10.0.0.1:8001/w1/p-1" {
		t.Fatalf("first lookup: %+v", res)
	}
	d.set("web.test SRV", reply(t, dns.RcodeServerFailure, false), nil)
	d.set("web.test A", reply(t, 0, true, "an:web.test. 5 IN A 10.0.0.7"), nil)
	if res := r.lookup(ctx); res.Err == nil {
		t.Fatalf("SRV failure after SRV nodes: %+v, want an error", res)
	}

	// Now the name has no SRV (authoritative NODATA): A and AAAA.
	d.set("web.test SRV", reply(t, 0, true, soa), nil)
	d.set("web.test AAAA", reply(t, 0, true, "an:web.test. 5 IN AAAA 2001:db8::7"), nil)
	if res := r.lookup(ctx); res.Err != nil || nodesString(res.Nodes) != "10.0.0.7:80/w1/p0 2001:db8::7:80/w1/p0" {
		t.Fatalf("A and AAAA: %+v", res)
	}
	// AAAA times out: the last AAAA addresses stay with the fresh A ones.
	delete(d.answers, "web.test AAAA")
	d.set("web.test A", reply(t, 0, true, "an:web.test. 5 IN A 10.0.0.8"), nil)
	if res := r.lookup(ctx); res.Err != nil || nodesString(res.Nodes) != "10.0.0.8:80/w1/p0 2001:db8::7:80/w1/p0" {
		t.Fatalf("AAAA timeout: %+v", res)
	}
	// AAAA NODATA with authority: the v6 address goes.
	d.set("web.test AAAA", reply(t, 0, true, soa), nil)
	if res := r.lookup(ctx); res.Err != nil || nodesString(res.Nodes) != "10.0.0.8:80/w1/p0" {
		t.Fatalf("AAAA NODATA: %+v", res)
	}
}

func TestParseDNSService(t *testing.T) {
	f := func(s, name string, port int, ok bool) {
		t.Helper()
		n, p, err := ParseDNSService(s)
		if (err == nil) != ok || n != name || p != port {
			t.Fatalf("%q: got %q %d %v", s, n, p, err)
		}
	}
	f("web.test", "web.test", 0, true)
	f("web.test:8080", "web.test", 8080, true)
	f("_http._tcp.my-svc.my-ns.svc.cluster.local", "_http._tcp.my-svc.my-ns.svc.cluster.local", 0, true)
	f("web.service.consul.", "web.service.consul.", 0, true)
	f("web.test:0", "", 0, false)
	f("web.test:65536", "", 0, false)
	f("web.test:", "", 0, false)
	f("", "", 0, false)
	f("web test", "", 0, false)
	f("-web.test", "", 0, false)
	f("a..b", "", 0, false)
	f(strings.Repeat("a", 64)+".test", "", 0, false)
}

func TestCheckTypes(t *testing.T) {
	if err := CheckType("dns"); err != nil {
		t.Fatal(err)
	}
	if err := CheckService("dns", "web.test:80", nil); err != nil {
		t.Fatal(err)
	}
	if err := CheckService("dns", "web.test:x", nil); err == nil {
		t.Fatal("a bad port passed")
	}
	err := CheckType("consul")
	if err == nil || err.Error() != `discovery type "consul" is not supported by this gateway yet; supported: dns` {
		t.Fatalf("consul: %v", err)
	}
	err = CheckType("etcd")
	if err == nil || err.Error() != `unknown discovery type "etcd"; supported: dns` {
		t.Fatalf("etcd: %v", err)
	}
}

func TestParseServers(t *testing.T) {
	got, err := ParseServers([]string{"127.0.0.1:5353", " 10.0.0.1", "[::1]:53", ""})
	if err != nil || strings.Join(got, ",") != "127.0.0.1:5353,10.0.0.1:53,[::1]:53" {
		t.Fatalf("got %v %v", got, err)
	}
	for _, bad := range []string{"dns.example:53", "127.0.0.1:0", "127.0.0.1:x"} {
		if _, err := ParseServers([]string{bad}); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

// TestSearchList: with resolv.conf's search list (Kubernetes' ndots 5), a
// short name tries each candidate in turn: a candidate that does not exist
// passes to the next, a failed one fails the lookup.
func TestSearchList(t *testing.T) {
	nx := func(t *testing.T) *dns.Msg { return reply(t, dns.RcodeNameError, true, soa) }
	f := func(setup func(d *fakeDNS), want string) {
		t.Helper()
		fd := &fakeDNS{}
		for _, n := range []string{"my-svc.my-ns.svc.cluster.local", "my-svc.my-ns.cluster.local", "my-svc.my-ns"} {
			for _, typ := range []string{"SRV", "A", "AAAA"} {
				fd.set(n+" "+typ, nx(t), nil)
			}
		}
		setup(fd)
		d := newDNS(fd, nil, time.Second, DefaultSchedule, nil)
		d.search, d.ndots = []string{"svc.cluster.local", "cluster.local"}, 5
		defer d.Close()
		w := d.Watch(Query{Service: "my-svc.my-ns:8080", DefaultPort: 80}, func(State) {})
		defer w.Stop()
		st := watchUntil(t, w, "search list", func(s State) bool { return !s.Checked.IsZero() })
		got := nodesString(st.Nodes)
		switch {
		case st.Err != nil:
			got = "error"
		case !st.Known:
			got = "unknown"
		case len(st.Nodes) == 0:
			got = "empty: " + st.Empty
		}
		if got != want {
			t.Fatalf("got %q, want %q (%+v)", got, want, st)
		}
	}
	// The second candidate exists.
	f(func(d *fakeDNS) {
		d.set("my-svc.my-ns.cluster.local SRV", reply(t, 0, true, soa), nil)
		d.set("my-svc.my-ns.cluster.local A", reply(t, 0, true, "an:my-svc.my-ns.cluster.local. 5 IN A 10.0.0.5"), nil)
		d.set("my-svc.my-ns.cluster.local AAAA", reply(t, 0, true, soa), nil)
	}, "10.0.0.5:8080/w1/p0")
	// The first candidate fails: no skipping to the second.
	f(func(d *fakeDNS) {
		delete(d.answers, "my-svc.my-ns.svc.cluster.local SRV")
		delete(d.answers, "my-svc.my-ns.svc.cluster.local A")
		delete(d.answers, "my-svc.my-ns.svc.cluster.local AAAA")
		d.set("my-svc.my-ns.cluster.local A", reply(t, 0, true, "an:my-svc.my-ns.cluster.local. 5 IN A 10.0.0.5"), nil)
	}, "error")
	// No candidate exists.
	f(func(d *fakeDNS) {}, "empty: no candidate of the search list has an address or SRV record for my-svc.my-ns")
}
