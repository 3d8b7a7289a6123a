package health

import (
	"github.com/edgeway/gateway/core"
)

// statusSet is a bit set of HTTP statuses 0-1023, for lookups without a
// map on the request path.
type statusSet [16]uint64

func newStatusSet(statuses []int) statusSet {
	var s statusSet
	for _, st := range statuses {
		if st >= 0 && st < 1024 {
			s[st>>6] |= 1 << (uint(st) & 63)
		}
	}
	return s
}

func (s *statusSet) has(st int) bool {
	return st >= 0 && st < 1024 && s[st>>6]&(1<<(uint(st)&63)) != 0
}

// The passive defaults of lua-resty-healthcheck (the same as APISIX's
// schema). They apply to the reports made before a retry when an upstream
// has active checks only: APISIX reports those whenever a checker exists.
var (
	defaultPassiveHealthy   = []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308}
	defaultPassiveUnhealthy = []int{429, 500, 503}
	defaultPassiveLimits    = Thresholds{Success: 5, HTTPFailure: 5, TCPFailure: 2, TimeoutFailure: 7}
)

// Passive receives the tries of one compiled upstream (it implements
// core.PassiveHealth). It is built when the snapshot is compiled and is
// immutable afterwards: the request path indexes its targets by node index
// and reports with a CAS on the target's word.
type Passive struct {
	// targets[i] is the target of Balancer.Nodes[i].
	targets   []*Target
	limits    Thresholds
	healthy   statusSet
	unhealthy statusSet
	// final is set when checks.passive is configured: only then is the
	// status sent to the client reported (APISIX's log-phase report).
	final bool
}

func newPassive(hc *core.HealthChecks, targets []*Target) *Passive {
	p := &Passive{targets: targets, limits: defaultPassiveLimits}
	healthy, unhealthy := defaultPassiveHealthy, defaultPassiveUnhealthy
	if pc := hc.Passive; pc != nil {
		p.final = true
		p.limits = Thresholds{
			Success:        pc.Healthy.Successes,
			HTTPFailure:    pc.Unhealthy.HTTPFailures,
			TCPFailure:     pc.Unhealthy.TCPFailures,
			TimeoutFailure: pc.Unhealthy.Timeouts,
		}
		healthy, unhealthy = pc.Healthy.HTTPStatuses, pc.Unhealthy.HTTPStatuses
	}
	p.healthy, p.unhealthy = newStatusSet(healthy), newStatusSet(unhealthy)
	return p
}

// TryFailed reports a try that is about to be retried: a timeout (504) as
// a timeout, any other failure as a TCP failure, a response by its status.
func (p *Passive) TryFailed(i int, status int, failed bool) {
	t := p.targets[i]
	if failed {
		if status == 504 {
			t.report(TimeoutFailure, p.limits[TimeoutFailure])
		} else {
			t.report(TCPFailure, p.limits[TCPFailure])
		}
		return
	}
	p.reportStatus(t, status)
}

// Final reports the status sent to the client, when passive checks are
// configured.
func (p *Passive) Final(i int, status int) {
	if p.final {
		p.reportStatus(p.targets[i], status)
	}
}

// reportStatus is lua-resty-healthcheck's report_http_status: a status in
// the healthy list is a success, one in the unhealthy list an HTTP failure,
// any other is ignored.
func (p *Passive) reportStatus(t *Target, status int) {
	switch {
	case p.healthy.has(status):
		t.report(Success, p.limits[Success])
	case p.unhealthy.has(status):
		t.report(HTTPFailure, p.limits[HTTPFailure])
	}
}

var _ core.PassiveHealth = (*Passive)(nil)
