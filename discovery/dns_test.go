package discovery

import (
	"strings"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/dnsmasq"
)

// watchUntil waits (real time) until the watch's state satisfies ok.
func watchUntil(t *testing.T, w Watch, what string, ok func(State) bool) State {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := w.State()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %+v", what, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newTestDNS(t *testing.T, addr string) *DNS {
	t.Helper()
	d, err := NewDNS(DNSOptions{Servers: []string{addr}, HostsFile: "-", Timeout: 300 * time.Millisecond, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

// TestDNSAgainstDnsmasqAuthoritative: SRV, A and NXDOMAIN answers of a
// real authoritative server; a dead server keeps the last good nodes.
func TestDNSAgainstDnsmasqAuthoritative(t *testing.T) {
	srv := dnsmasq.Start(t, dnsmasq.Config{Zone: "test", Records: []string{
		"srv-host=_http._tcp.web.test,a.web.test,8001,10,3",
		"srv-host=_http._tcp.web.test,b.web.test,8002,20,1",
		"host-record=a.web.test,127.0.0.1",
		"host-record=b.web.test,127.0.0.2,::1",
		"host-record=v4.test,127.0.0.3",
	}})
	d := newTestDNS(t, srv.Addr)

	w := d.Watch(Query{Service: "_http._tcp.web.test", DefaultPort: 80}, func(State) {})
	defer w.Stop()
	st := watchUntil(t, w, "SRV", func(s State) bool { return s.Known })
	if got := nodesString(st.Nodes); got != "127.0.0.1:8001/w3/p-10 127.0.0.2:8002/w1/p-20 ::1:8002/w1/p-20" {
		t.Fatalf("SRV nodes %s", got)
	}

	// A only (AAAA is NODATA); the port from the name.
	w2 := d.Watch(Query{Service: "v4.test:9000", DefaultPort: 80}, func(State) {})
	defer w2.Stop()
	st = watchUntil(t, w2, "A", func(s State) bool { return s.Known })
	if got := nodesString(st.Nodes); got != "127.0.0.3:9000/w1/p0" {
		t.Fatalf("A nodes %s", got)
	}

	w3 := d.Watch(Query{Service: "gone.test", DefaultPort: 80}, func(State) {})
	defer w3.Stop()
	st = watchUntil(t, w3, "NXDOMAIN", func(s State) bool { return s.Known })
	if len(st.Nodes) != 0 || st.Empty != "NXDOMAIN for gone.test" {
		t.Fatalf("NXDOMAIN: %+v", st)
	}

	// The server dies: lookups fail, the nodes stay.
	srv.Stop()
	st = watchUntil(t, w, "dead server", func(s State) bool { return s.Err != nil })
	if len(st.Nodes) != 3 || !st.Known {
		t.Fatalf("the last good nodes were not kept: %+v", st)
	}
	// It comes back with one target fewer: picked up.
	srv.Restart([]string{"srv-host=_http._tcp.web.test,a.web.test,8001,10,3", "host-record=a.web.test,127.0.0.1"})
	st = watchUntil(t, w, "restored server", func(s State) bool { return s.Err == nil && len(s.Nodes) == 1 })
	if st.LastErr == nil || st.Failures == 0 {
		t.Fatalf("the outage left no trace: %+v", st)
	}
}

// TestDNSAgainstDnsmasqRefusing: without authority dnsmasq refuses what it
// does not know, which is never taken as an empty answer.
func TestDNSAgainstDnsmasqRefusing(t *testing.T) {
	srv := dnsmasq.Start(t, dnsmasq.Config{Records: []string{"host-record=v4.test,127.0.0.3"}, Hosts: "127.0.0.4 h.test\n"})
	d := newTestDNS(t, srv.Addr)

	// SRV and AAAA are refused, A answers: the A nodes.
	w := d.Watch(Query{Service: "v4.test", DefaultPort: 80}, func(State) {})
	defer w.Stop()
	st := watchUntil(t, w, "A", func(s State) bool { return s.Known })
	if got := nodesString(st.Nodes); got != "127.0.0.3:80/w1/p0" {
		t.Fatalf("nodes %s", got)
	}

	// A name dnsmasq does not know: REFUSED, a failure, not "no nodes".
	w2 := d.Watch(Query{Service: "nope.test", DefaultPort: 80}, func(State) {})
	defer w2.Stop()
	st = watchUntil(t, w2, "unknown", func(s State) bool { return !s.Checked.IsZero() })
	if st.Known || st.Err == nil || !strings.Contains(st.Err.Error(), "REFUSED") {
		t.Fatalf("unknown name: %+v", st)
	}

	// A host name of a static node, from dnsmasq's hosts file, follows a
	// reload.
	w3 := d.Watch(Query{Service: "h.test", DefaultPort: 8080, AddressOnly: true}, func(State) {})
	defer w3.Stop()
	st = watchUntil(t, w3, "hosts", func(s State) bool { return s.Known })
	if got := nodesString(st.Nodes); got != "127.0.0.4:8080/w1/p0" {
		t.Fatalf("nodes %s", got)
	}
	srv.SetHosts("127.0.0.4 h.test\n127.0.0.5 h.test\n")
	watchUntil(t, w3, "reloaded hosts", func(s State) bool { return len(s.Nodes) == 2 })
}
