package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNSOptions configure DNS discovery. The zero value uses the system's
// name servers.
type DNSOptions struct {
	// Servers are the name servers ("host:port"), asked in order. Empty
	// means those of ResolvConf, whose search list then applies too.
	Servers []string
	// ResolvConf is read when Servers is empty; default /etc/resolv.conf.
	ResolvConf string
	// HostsFile answers names before DNS; default /etc/hosts, "-" for
	// none.
	HostsFile string
	// Timeout bounds one query to one server; default 2 s (or the
	// resolv.conf timeout).
	Timeout time.Duration
	// Schedule decides when names are looked up again; the zero value
	// means DefaultSchedule.
	Schedule Schedule
	// NegativeTTL is the TTL of an authoritative empty answer that
	// carries no SOA record; default 30 s (clamped by the schedule).
	NegativeTTL time.Duration
	// Logf logs failures, recoveries and empty answers; nil discards.
	Logf func(format string, args ...any)
}

// DNS is the "dns" discoverer: a service_name "name" or "name:port" is
// looked up as SRV records first (each target's addresses become nodes
// with the record's port, weight and priority), then as A and AAAA
// records (each address a node on the name's port, or the scheme's
// default port). Host names of static nodes are looked up as A and AAAA
// only (Query.AddressOnly). With explicit Servers names are absolute; with
// the system's resolv.conf its search list and ndots apply, as in the C
// library: the candidates are tried in turn, the first with nodes wins,
// and a failed candidate fails the lookup (it never skips to the next).
//
// Every name is re-resolved in the background on its TTL (see Schedule);
// the watches of one name share one lookup loop. On failure — a timeout,
// an unreachable server, REFUSED, SERVFAIL, or an empty answer without
// authority — the last good node set stays. Only an authoritative
// NXDOMAIN or NODATA empties it.
type DNS struct {
	servers []string
	// search and ndots are resolv.conf's, when its servers are used.
	search []string
	ndots  int
	ex     exchanger
	hosts  *hostsFile
	negTTL time.Duration
	hub    *hub
}

// NewDNS returns a DNS discoverer. Close it to stop its lookups.
func NewDNS(o DNSOptions) (*DNS, error) {
	servers, timeout := o.Servers, o.Timeout
	var search []string
	ndots := 1
	if len(servers) == 0 {
		path := o.ResolvConf
		if path == "" {
			path = "/etc/resolv.conf"
		}
		s, t, cc, err := systemConfig(path)
		if err != nil {
			return nil, fmt.Errorf("discovery: cannot find the system's name servers: %w", err)
		}
		servers, search, ndots = s, cc.Search, cc.Ndots
		if timeout == 0 {
			timeout = t
		}
	} else {
		var err error
		if servers, err = ParseServers(servers); err != nil {
			return nil, fmt.Errorf("discovery: %w", err)
		}
	}
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	hosts := &hostsFile{path: o.HostsFile}
	switch o.HostsFile {
	case "":
		hosts.path = "/etc/hosts"
	case "-":
		hosts = nil
	}
	sched := o.Schedule
	if sched == (Schedule{}) {
		sched = DefaultSchedule
	}
	neg := o.NegativeTTL
	if neg <= 0 {
		neg = 30 * time.Second
	}
	d := newDNS(newDNSClient(servers, timeout), hosts, neg, sched, o.Logf)
	d.servers, d.search, d.ndots = servers, search, ndots
	return d, nil
}

// Servers returns the name servers asked, in order.
func (d *DNS) Servers() []string { return d.servers }

func newDNS(ex exchanger, hosts *hostsFile, negTTL time.Duration, sched Schedule, logf func(string, ...any)) *DNS {
	return &DNS{ex: ex, hosts: hosts, negTTL: negTTL, hub: newHub(sched, logf)}
}

// Watch implements Discoverer. A query whose service name does not parse
// (validation refuses such names) gets a watch that fails every lookup.
func (d *DNS) Watch(q Query, notify func(State)) Watch {
	name, port, err := ParseDNSService(q.Service)
	if port == 0 {
		port = q.DefaultPort
	}
	mode := "dns"
	if q.AddressOnly {
		mode = "dns-addr"
	}
	key := mode + "|" + strings.ToLower(name) + "|" + strconv.Itoa(port)
	return d.hub.watch(key, "dns "+q.Service, func() lookupFunc {
		if err != nil {
			return func(context.Context) Result { return Result{Err: err} }
		}
		r := &resolver{ex: d.ex, hosts: d.hosts, negTTL: d.negTTL, name: name, port: port, addrOnly: q.AddressOnly}
		if ip, err := netip.ParseAddr(name); err == nil {
			r.ip = ip
			return r.lookup
		}
		names := d.candidates(name)
		if len(names) == 1 {
			r.name = names[0]
			return r.lookup
		}
		s := &searchResolver{hosts: d.hosts, name: name, first: r}
		for _, n := range names {
			c := *r
			c.name = n
			s.rs = append(s.rs, &c)
		}
		return s.lookup
	}, notify)
}

// candidates returns the names to try for name: the search list applied
// as resolv.conf says (without a search list, name alone), without final
// dots.
func (d *DNS) candidates(name string) []string {
	if len(d.search) == 0 {
		return []string{strings.TrimSuffix(name, ".")}
	}
	cc := dns.ClientConfig{Search: d.search, Ndots: d.ndots}
	names := cc.NameList(name)
	for i, n := range names {
		names[i] = strings.TrimSuffix(n, ".")
	}
	return names
}

// searchResolver looks a name up through a search list: the hosts file for
// the name as given, then each candidate in turn. The first candidate with
// nodes wins; a candidate that does not exist (an authoritative empty
// answer) passes to the next; a failed one fails the lookup, so that a
// resolver outage never turns into the answer of a later candidate.
type searchResolver struct {
	hosts *hostsFile
	name  string
	first *resolver
	rs    []*resolver
}

func (s *searchResolver) lookup(ctx context.Context) Result {
	if addrs := s.hosts.lookup(s.name); len(addrs) > 0 {
		return Result{Nodes: s.first.addrNodes(addrs), TTL: hostsTTL}
	}
	var last Result
	ttl := time.Duration(-1)
	for _, r := range s.rs {
		last = r.lookup(ctx)
		if last.Err != nil || len(last.Nodes) > 0 {
			return last
		}
		ttl = minTTL(ttl, last.TTL)
	}
	last.TTL = ttl
	last.Empty = "no candidate of the search list has an address or SRV record for " + s.name
	return last
}

// Close stops every lookup loop and waits for them to end.
func (d *DNS) Close() { d.hub.close() }

var dnsNamePattern = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]{0,62})(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,62}))*\.?$`)

// ParseDNSService splits a dns service_name, "name" or "name:port", and
// checks it; port is 0 when absent.
func ParseDNSService(s string) (name string, port int, err error) {
	name = s
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		name = s[:i]
		if port, err = parsePort(s[i+1:]); err != nil || port == 0 {
			return "", 0, fmt.Errorf("invalid port in service_name %q", s)
		}
	}
	if len(name) == 0 || len(name) > 253 || !dnsNamePattern.MatchString(name) {
		return "", 0, fmt.Errorf("service_name %q is not a DNS name (want \"name\" or \"name:port\")", s)
	}
	return name, port, nil
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, errors.New("invalid port")
	}
	p := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("invalid port")
		}
		p = p*10 + int(s[i]-'0')
	}
	if p > 65535 {
		return 0, errors.New("invalid port")
	}
	return p, nil
}

func init() {
	Register("dns", TypeInfo{CheckService: func(service string, _ map[string]string) error {
		_, _, err := ParseDNSService(service)
		return err
	}})
}

var _ Discoverer = (*DNS)(nil)
