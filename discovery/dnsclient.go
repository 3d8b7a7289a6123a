package discovery

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

// exchanger sends one DNS query and returns the answer that settles it.
type exchanger interface {
	exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error)
}

// dnsClient asks a list of servers in order: the first that gives a
// usable answer (NOERROR or NXDOMAIN) settles the query; a server that
// times out, cannot be reached, refuses or fails (SERVFAIL and other
// rcodes) makes the client ask the next one. It falls back to TCP when a
// UDP answer is truncated.
type dnsClient struct {
	servers []string
	udp     *dns.Client
	tcp     *dns.Client
}

func newDNSClient(servers []string, timeout time.Duration) *dnsClient {
	return &dnsClient{
		servers: servers,
		udp:     &dns.Client{Net: "udp", Timeout: timeout, UDPSize: 1232},
		tcp:     &dns.Client{Net: "tcp", Timeout: timeout},
	}
}

// rcodeError is an answer that says nothing about the name: REFUSED,
// SERVFAIL, NOTIMP and the like.
type rcodeError struct {
	server string
	rcode  int
}

func (e *rcodeError) Error() string {
	return fmt.Sprintf("server %s answered %s", e.server, dns.RcodeToString[e.rcode])
}

// serverError is a server that could not be asked. Its message names the
// cause without the socket's local port, so that a lasting outage logs one
// line rather than one per retry.
type serverError struct {
	server string
	err    error
}

func (e *serverError) Error() string {
	var ne net.Error
	switch {
	case errors.Is(e.err, syscall.ECONNREFUSED):
		return "server " + e.server + ": connection refused"
	case errors.As(e.err, &ne) && ne.Timeout():
		return "server " + e.server + ": timeout"
	}
	return "server " + e.server + ": " + e.err.Error()
}

func (e *serverError) Unwrap() error { return e.err }

func (c *dnsClient) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(1232, false)
	var errs []error
	for _, server := range c.servers {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		resp, _, err := c.udp.ExchangeContext(ctx, m, server)
		if err == nil && resp.Truncated {
			resp, _, err = c.tcp.ExchangeContext(ctx, m, server)
		}
		if err != nil {
			errs = append(errs, &serverError{server: server, err: err})
			continue
		}
		if resp.Rcode != dns.RcodeSuccess && resp.Rcode != dns.RcodeNameError {
			errs = append(errs, &rcodeError{server: server, rcode: resp.Rcode})
			continue
		}
		return resp, nil
	}
	if len(errs) == 0 {
		return nil, errors.New("no DNS server configured")
	}
	return nil, joinErrors(errs...)
}

// systemConfig reads a resolv.conf file: its name servers, timeout,
// search list and ndots.
func systemConfig(path string) (servers []string, timeout time.Duration, cc *dns.ClientConfig, err error) {
	cc, err = dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("cannot read %s: %w", path, err)
	}
	if len(cc.Servers) == 0 {
		return nil, 0, nil, fmt.Errorf("%s names no nameserver", path)
	}
	servers = make([]string, len(cc.Servers))
	for i, s := range cc.Servers {
		servers[i] = net.JoinHostPort(s, cc.Port)
	}
	return servers, time.Duration(cc.Timeout) * time.Second, cc, nil
}

// ParseServers checks a list of DNS servers, "host:port" or "host" (port
// 53), and returns them as "host:port".
func ParseServers(list []string) ([]string, error) {
	out := make([]string, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		host, port, err := net.SplitHostPort(s)
		if err != nil {
			host, port = strings.Trim(s, "[]"), "53"
		}
		if _, err := netip.ParseAddr(host); err != nil {
			return nil, fmt.Errorf("DNS server %q: want an IP address with an optional port", s)
		}
		if p, err := parsePort(port); err != nil || p == 0 {
			return nil, fmt.Errorf("DNS server %q: invalid port", s)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// hostsFile answers names from a hosts file (/etc/hosts) before DNS, as
// the system resolver, Kong and APISIX do. The file is read again when its
// modification time changes.
type hostsFile struct {
	path string

	mu    sync.Mutex
	mtime time.Time
	names map[string][]netip.Addr
}

// lookup returns the addresses the file gives name (lower-cased, without
// the final dot), or nil.
func (h *hostsFile) lookup(name string) []netip.Addr {
	if h == nil || h.path == "" {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	fi, err := os.Stat(h.path)
	if err != nil {
		h.names, h.mtime = nil, time.Time{}
		return nil
	}
	if !fi.ModTime().Equal(h.mtime) {
		h.names = readHosts(h.path)
		h.mtime = fi.ModTime()
	}
	return h.names[strings.ToLower(strings.TrimSuffix(name, "."))]
}

func readHosts(path string) map[string][]netip.Addr {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	names := map[string][]netip.Addr{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		a, err := netip.ParseAddr(fields[0])
		if err != nil {
			continue
		}
		a = a.WithZone("")
		for _, n := range fields[1:] {
			n = strings.ToLower(strings.TrimSuffix(n, "."))
			names[n] = append(names[n], a)
		}
	}
	return names
}

// joinErrors joins errors on one line (errors.Join puts each on its own,
// which splits log lines).
func joinErrors(errs ...error) error {
	var list multiError
	for _, err := range errs {
		if err != nil {
			list = append(list, err)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return list
}

type multiError []error

func (m multiError) Error() string {
	var b strings.Builder
	for i, err := range m {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}

func (m multiError) Unwrap() []error { return m }
