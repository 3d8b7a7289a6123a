package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// How one DNS answer settles its question.
type answerKind uint8

const (
	// positive: records of the type asked for.
	positive answerKind = iota
	// negative: the name has no such records (NODATA) or does not exist
	// (NXDOMAIN), said with authority: the AA bit, or an SOA record in the
	// authority section (a recursive resolver's negative answer, RFC 2308).
	negative
	// failed: no server could be asked, every server refused or failed,
	// or the answer was empty without authority. It says nothing about
	// the name.
	failed
)

type answer struct {
	kind  answerKind
	rrs   []dns.RR
	extra []dns.RR
	// ttl is the smallest TTL of the answer section (positive), or the
	// negative-caching TTL (negative).
	ttl      time.Duration
	nxdomain bool
	err      error
}

// hostsTTL is how often a name found in the hosts file is looked at again.
const hostsTTL = 5 * time.Second

// resolver looks up one query again and again. It remembers, between
// lookups, where the last good answer came from and the last good
// addresses of each family, so that a failure of one part of a lookup
// never drops what that part gave before. It is used by one goroutine.
type resolver struct {
	ex    exchanger
	hosts *hostsFile
	// negTTL is the negative TTL of an authoritative empty answer without
	// an SOA record.
	negTTL time.Duration

	name     string
	port     int
	addrOnly bool
	ip       netip.Addr

	// lastFromSRV: the last good node set came from SRV records; a failed
	// SRV query then keeps it rather than falling back to A/AAAA.
	lastFromSRV bool
	// lastAddrs are the last good A and AAAA addresses of name.
	lastAddrs [2][]netip.Addr
}

var addrTypes = [2]uint16{dns.TypeA, dns.TypeAAAA}

// lookup runs one lookup: the hosts file, then (unless addrOnly) SRV, then
// A and AAAA.
func (r *resolver) lookup(ctx context.Context) Result {
	if r.ip.IsValid() {
		return Result{Nodes: []Node{{Host: r.ip.String(), Port: r.port, Weight: 1}}, TTL: time.Hour}
	}
	if addrs := r.hosts.lookup(r.name); len(addrs) > 0 {
		return Result{Nodes: r.addrNodes(addrs), TTL: hostsTTL}
	}
	srvNegative := true
	var srvErr error
	if !r.addrOnly {
		srv := r.ask(ctx, r.name, dns.TypeSRV)
		switch srv.kind {
		case positive:
			res := r.fromSRV(ctx, srv)
			if res.Err == nil {
				r.lastFromSRV = true
				r.lastAddrs = [2][]netip.Addr{}
			}
			return res
		case negative:
			if srv.nxdomain {
				r.forget()
				return Result{TTL: srv.ttl, Empty: "NXDOMAIN for " + r.name}
			}
		case failed:
			if r.lastFromSRV {
				return Result{Err: srv.err}
			}
			srvNegative, srvErr = false, srv.err
		}
	}
	return r.fromAddrs(ctx, srvNegative, srvErr)
}

func (r *resolver) forget() {
	r.lastFromSRV = false
	r.lastAddrs = [2][]netip.Addr{}
}

// fromAddrs builds the node set from the A and AAAA records of name. A
// family whose query failed contributes its last good addresses when the
// other family answered; when neither answered, the lookup fails (the
// caller keeps the last good nodes). The set is empty only when every
// query made, SRV included, was answered negatively with authority.
func (r *resolver) fromAddrs(ctx context.Context, srvNegative bool, srvErr error) Result {
	var ans [2]answer
	for i, t := range addrTypes {
		ans[i] = r.ask(ctx, r.name, t)
	}
	if ans[0].kind == positive || ans[1].kind == positive {
		var addrs []netip.Addr
		ttl := time.Duration(-1)
		for i, a := range ans {
			switch a.kind {
			case positive:
				r.lastAddrs[i] = addrsOf(a.rrs)
				ttl = minTTL(ttl, a.ttl)
			case negative:
				r.lastAddrs[i] = nil
			}
			addrs = append(addrs, r.lastAddrs[i]...)
		}
		r.lastFromSRV = false
		return Result{Nodes: r.addrNodes(addrs), TTL: ttl}
	}
	if ans[0].kind == negative && ans[1].kind == negative && srvNegative {
		r.forget()
		why := "no A or AAAA record for " + r.name
		if ans[0].nxdomain || ans[1].nxdomain {
			why = "NXDOMAIN for " + r.name
		}
		return Result{TTL: min(ans[0].ttl, ans[1].ttl), Empty: why}
	}
	var errs []error
	if srvErr != nil {
		errs = append(errs, srvErr)
	}
	for _, a := range ans {
		if a.kind == failed {
			errs = append(errs, a.err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("no A or AAAA record, and no authoritative answer to SRV"))
	}
	return Result{Err: joinErrors(errs...)}
}

// fromSRV builds the node set from SRV records: every address of every
// target, with the record's port, its weight (0 counts as 1, as Kong) and
// its priority negated (SRV prefers low priorities, upstream nodes high
// ones). Target addresses come from the additional section when the
// server sent them, else from A and AAAA queries. A target that cannot be
// resolved fails the lookup; one that has no address is left out.
func (r *resolver) fromSRV(ctx context.Context, srv answer) Result {
	ttl := srv.ttl
	type targetAddrs struct {
		addrs []netip.Addr
	}
	resolved := map[string]targetAddrs{}
	var nodes []Node
	seen := map[netip.AddrPort]bool{}
	for _, rr := range srv.rrs {
		s := rr.(*dns.SRV)
		if s.Target == "." {
			// RFC 2782: the service is decidedly not available here.
			continue
		}
		target := strings.ToLower(s.Target)
		t, ok := resolved[target]
		if !ok {
			addrs, tttl, err := r.targetAddrs(ctx, target, srv.extra)
			if err != nil {
				return Result{Err: fmt.Errorf("SRV target %s: %w", strings.TrimSuffix(s.Target, "."), err)}
			}
			ttl = minTTL(ttl, tttl)
			t = targetAddrs{addrs}
			resolved[target] = t
		}
		for _, a := range t.addrs {
			ap := netip.AddrPortFrom(a, s.Port)
			if seen[ap] {
				continue
			}
			seen[ap] = true
			nodes = append(nodes, Node{Host: a.String(), Port: int(s.Port), Weight: max(int(s.Weight), 1), Priority: -int(s.Priority)})
		}
	}
	if len(nodes) == 0 {
		return Result{TTL: ttl, Empty: "the SRV records of " + r.name + " name no target with an address"}
	}
	return Result{Nodes: nodes, TTL: ttl}
}

// targetAddrs returns the addresses of an SRV target and their TTL (-1
// when none was queried).
func (r *resolver) targetAddrs(ctx context.Context, target string, extra []dns.RR) ([]netip.Addr, time.Duration, error) {
	var addrs []netip.Addr
	ttl := time.Duration(-1)
	for _, rr := range extra {
		h := rr.Header()
		if !strings.EqualFold(h.Name, target) || (h.Rrtype != dns.TypeA && h.Rrtype != dns.TypeAAAA) {
			continue
		}
		addrs = append(addrs, addrsOf([]dns.RR{rr})...)
		ttl = minTTL(ttl, time.Duration(h.Ttl)*time.Second)
	}
	if len(addrs) > 0 {
		return addrs, ttl, nil
	}
	if h := r.hosts.lookup(target); len(h) > 0 {
		return h, hostsTTL, nil
	}
	var errs []error
	answered := false
	for _, t := range addrTypes {
		a := r.ask(ctx, target, t)
		switch a.kind {
		case positive:
			addrs = append(addrs, addrsOf(a.rrs)...)
			ttl = minTTL(ttl, a.ttl)
			answered = true
		case negative:
			answered = true
		default:
			errs = append(errs, a.err)
		}
	}
	if len(addrs) == 0 && (!answered || len(errs) > 0) {
		return nil, 0, joinErrors(errs...)
	}
	return addrs, ttl, nil
}

// ask sends one query and classifies the answer.
func (r *resolver) ask(ctx context.Context, name string, qtype uint16) answer {
	what := dns.TypeToString[qtype] + " " + strings.TrimSuffix(name, ".")
	resp, err := r.ex.exchange(ctx, name, qtype)
	if err != nil {
		return answer{kind: failed, err: fmt.Errorf("%s: %w", what, err)}
	}
	var rrs []dns.RR
	ttl := time.Duration(-1)
	for _, rr := range resp.Answer {
		// CNAMEs are followed by the server; their TTLs bound the answer.
		ttl = minTTL(ttl, time.Duration(rr.Header().Ttl)*time.Second)
		if rr.Header().Rrtype == qtype {
			rrs = append(rrs, rr)
		}
	}
	if len(rrs) > 0 {
		return answer{kind: positive, rrs: rrs, extra: resp.Extra, ttl: ttl}
	}
	var soa *dns.SOA
	for _, rr := range resp.Ns {
		if s, ok := rr.(*dns.SOA); ok {
			soa = s
		}
	}
	if !resp.Authoritative && soa == nil {
		return answer{kind: failed, err: fmt.Errorf("%s: empty %s answer without authority (no AA bit, no SOA)",
			what, dns.RcodeToString[resp.Rcode])}
	}
	neg := r.negTTL
	if soa != nil {
		// RFC 2308 §5: the smaller of the SOA's TTL and its MINIMUM.
		neg = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
	}
	return answer{kind: negative, ttl: neg, nxdomain: resp.Rcode == dns.RcodeNameError}
}

// addrNodes turns addresses into nodes on the query's port.
func (r *resolver) addrNodes(addrs []netip.Addr) []Node {
	nodes := make([]Node, 0, len(addrs))
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		if seen[a] {
			continue
		}
		seen[a] = true
		nodes = append(nodes, Node{Host: a.String(), Port: r.port, Weight: 1})
	}
	return nodes
}

func addrsOf(rrs []dns.RR) []netip.Addr {
	var out []netip.Addr
	for _, rr := range rrs {
		var ip []byte
		switch x := rr.(type) {
		case *dns.A:
			ip = x.A.To4()
		case *dns.AAAA:
			ip = x.AAAA.To16()
		}
		if a, ok := netip.AddrFromSlice(ip); ok {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// minTTL returns the smaller of two TTLs, a negative one meaning "none
// yet".
func minTTL(a, b time.Duration) time.Duration {
	switch {
	case a < 0:
		return b
	case b < 0:
		return a
	}
	return min(a, b)
}
