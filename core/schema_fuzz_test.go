package core

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// seedBodies collects the bodies of the table tests as fuzz seeds.
func seedBodies() []string {
	var seeds []string
	add := func(body string) { seeds = append(seeds, body) }
	routeValidCases(func(body string, _ *Route) { add(body) })
	routeErrorCases(func(body, _ string) { add(body) })
	serviceValidCases(func(body string, _ *Service) { add(body) })
	serviceErrorCases(func(body, _ string) { add(body) })
	upstreamValidCases(func(body string, _ *Upstream) { add(body) })
	upstreamErrorCases(func(body, _ string) { add(body) })
	checksValidCases(func(c string, _ *HealthChecks) { add(`{"nodes":{},"checks":` + c + `}`) })
	checksErrorCases(func(c, _ string) { add(`{"nodes":{},"checks":` + c + `}`) })
	return seeds
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range seedBodies() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRoute(body)
		if err != nil {
			checkFuzzError(t, r == nil, err)
			return
		}
		if len(r.URIs) == 0 {
			t.Fatalf("no URIs")
		}
		if r.Status != 0 && r.Status != 1 {
			t.Fatalf("status %d", r.Status)
		}
		if r.Upstream == nil && r.UpstreamID == "" && r.ServiceID == "" {
			t.Fatalf("no upstream")
		}
		for _, h := range r.Hosts {
			if h == "" || h != strings.ToLower(h) {
				t.Fatalf("host %q", h)
			}
		}
		for _, p := range r.RemoteAddrs {
			if !p.IsValid() {
				t.Fatalf("remote addr %v", p)
			}
		}
		checkFuzzTimeout(t, r.Timeout)
		if r.Upstream != nil {
			checkFuzzUpstream(t, r.Upstream)
		}
		r2, err := ParseRoute(body)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		r.Vars, r2.Vars = nil, nil // regexps are not comparable
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("two parses differ:\n%+v\n%+v", r, r2)
		}
	})
}

func FuzzParseUpstream(f *testing.F) {
	for _, s := range seedBodies() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := ParseUpstream(body)
		if err != nil {
			checkFuzzError(t, u == nil, err)
			return
		}
		checkFuzzUpstream(t, u)
		u2, err := ParseUpstream(body)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		if !reflect.DeepEqual(u, u2) {
			t.Fatalf("two parses differ:\n%+v\n%+v", u, u2)
		}
	})
}

func checkFuzzError(t *testing.T, nilResult bool, err error) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Msg == "" {
		t.Fatalf("error %T %q is not a non-empty *ValidationError", err, err)
	}
	if !nilResult {
		t.Fatalf("non-nil result with error %q", err)
	}
}

func checkFuzzTimeout(t *testing.T, to *Timeout) {
	t.Helper()
	if to != nil && (to.Connect <= 0 || to.Send <= 0 || to.Read <= 0) {
		t.Fatalf("timeout %+v", *to)
	}
}

// checkFuzzUpstream checks the invariants of a valid upstream.
func checkFuzzUpstream(t *testing.T, u *Upstream) {
	t.Helper()
	if !SupportedBalancers[u.Type] || !SupportedSchemes[u.Scheme] {
		t.Fatalf("type %q scheme %q", u.Type, u.Scheme)
	}
	if !slices.Contains([]string{"pass", "node", "rewrite"}, u.PassHost) {
		t.Fatalf("pass_host %q", u.PassHost)
	}
	if u.PassHost == "rewrite" && u.UpstreamHost == "" {
		t.Fatalf("rewrite without upstream_host")
	}
	if !slices.Contains([]string{"vars", "header", "cookie", "consumer", "vars_combinations"}, u.HashOn) {
		t.Fatalf("hash_on %q", u.HashOn)
	}
	if u.Type == "chash" && u.HashOn == "vars" {
		if _, err := ParseVar(u.Key); err != nil {
			t.Fatalf("chash key %q: %v", u.Key, err)
		}
	}
	for _, n := range u.Nodes {
		if n.Port < 1 || n.Port > 65535 || n.Weight < 0 || n.Host == "" || strings.ContainsAny(n.Host, "[]") {
			t.Fatalf("node %+v", n)
		}
		if strings.Contains(n.Host, ":") && !isIPv6(n.Host) {
			t.Fatalf("node host %q", n.Host)
		}
	}
	if u.Retries != nil && *u.Retries < 0 {
		t.Fatalf("retries %d", *u.Retries)
	}
	if u.RetryTimeout < 0 {
		t.Fatalf("retry_timeout %v", u.RetryTimeout)
	}
	checkFuzzTimeout(t, u.Timeout)
	if p := u.KeepalivePool; p != nil && (p.Size < 1 || p.Requests < 1 || p.IdleTimeout < 0) {
		t.Fatalf("keepalive_pool %+v", *p)
	}
	if tls := u.TLS; tls != nil && (tls.ClientCert == "") != (tls.ClientKey == "") {
		t.Fatalf("tls cert without key")
	}
	for _, s := range u.RetryOnStatuses {
		if s < 500 || s > 599 {
			t.Fatalf("retry_on_statuses %v", u.RetryOnStatuses)
		}
	}
	if c := u.Checks; c != nil {
		checkFuzzChecks(t, c)
	}
}

func checkFuzzChecks(t *testing.T, c *HealthChecks) {
	t.Helper()
	statuses := func(l []int) {
		t.Helper()
		if len(l) == 0 {
			t.Fatalf("no statuses")
		}
		for _, s := range l {
			if s < 200 || s > 599 {
				t.Fatalf("status %d", s)
			}
		}
	}
	in := func(n, lo, hi int) {
		t.Helper()
		if n < lo || n > hi {
			t.Fatalf("threshold %d not in %d-%d", n, lo, hi)
		}
	}
	a := c.Active
	if a == nil {
		t.Fatalf("checks without active")
	}
	if a.Timeout <= 0 || a.Concurrency < 1 || a.Port < 0 || a.Port > 65535 ||
		a.Healthy.Interval < 1e9 || a.Unhealthy.Interval < 1e9 {
		t.Fatalf("active %+v", *a)
	}
	statuses(a.Healthy.HTTPStatuses)
	statuses(a.Unhealthy.HTTPStatuses)
	in(a.Healthy.Successes, 1, 254)
	in(a.Unhealthy.HTTPFailures, 1, 254)
	in(a.Unhealthy.TCPFailures, 1, 254)
	in(a.Unhealthy.Timeouts, 1, 254)
	if p := c.Passive; p != nil {
		statuses(p.Healthy.HTTPStatuses)
		statuses(p.Unhealthy.HTTPStatuses)
		in(p.Healthy.Successes, 0, 254)
		in(p.Unhealthy.HTTPFailures, 0, 254)
		in(p.Unhealthy.TCPFailures, 0, 254)
		in(p.Unhealthy.Timeouts, 0, 254)
	}
}
