package core

import "time"

// The `checks` object of an upstream (apisix/schema_def.lua health_checker,
// health_checker_active, health_checker_passive). Every default of the
// schema is filled into the model, so that health code never needs to know
// them.

var (
	checkTypeRule = strRule{enum: []string{"http", "https", "tcp"}}
	httpStatus    = between(200, 599)
)

// Default status lists, returned fresh so no model shares a slice.
func defaultActiveHealthyStatuses() []int { return []int{200, 302} }
func defaultActiveUnhealthyStatuses() []int {
	return []int{429, 404, 500, 501, 502, 503, 504, 505}
}
func defaultPassiveHealthyStatuses() []int {
	return []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308}
}
func defaultPassiveUnhealthyStatuses() []int { return []int{429, 500, 503} }

var checksProps = []string{"active", "passive"}

// parseChecks checks `checks`. active is required, passive optional.
func parseChecks(v any) (*HealthChecks, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	var hc HealthChecks
	hc.Active, _ = field(o, "active", parseActiveCheck)
	hc.Passive, _ = field(o, "passive", parsePassiveCheck)
	o.closed(checksProps)
	if !o.has("active") {
		o.check(invalid(`object matches none of the required: ["active"] or ["active","passive"]`))
	}
	if o.err != nil {
		return nil, o.err
	}
	return &hc, nil
}

var activeProps = []string{
	"type", "timeout", "concurrency", "host", "port", "http_method", "http_path",
	"http_req_body", "https_verify_certificate", "req_headers", "healthy", "unhealthy",
}

// parseActiveCheck checks `checks.active` and fills its defaults: type
// http, timeout 1 s, concurrency 10, http_path "/", https_verify_certificate
// true, and those of healthy and unhealthy.
//
// APISIX gives timeout and concurrency no range; here timeout must be > 0
// and concurrency ≥ 1. http_method and http_req_body are checked but only
// their defaults (GET, no body) are supported.
func parseActiveCheck(v any) (*ActiveCheck, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	a := ActiveCheck{
		Type:                   "http",
		Timeout:                time.Second,
		Concurrency:            10,
		HTTPPath:               "/",
		HTTPSVerifyCertificate: true,
	}
	a.Type = fieldOr(o, "type", checkTypeRule.parse, a.Type)
	a.Timeout = fieldOr(o, "timeout", greaterThan(0).seconds, a.Timeout)
	a.Concurrency = fieldOr(o, "concurrency", atLeast(1).integer, a.Concurrency)
	a.Host, _ = field(o, "host", hostRule.parse)
	a.Port, _ = field(o, "port", between(1, 65535).integer)
	if m, ok := field(o, "http_method", methodRule.parse); ok && m != "GET" {
		o.fail("http_method", invalid("only GET is supported by this gateway"))
	}
	a.HTTPPath = fieldOr(o, "http_path", anyString.parse, a.HTTPPath)
	if b, ok := field(o, "http_req_body", anyString.parse); ok && b != "" {
		o.fail("http_req_body", invalid("a probe request body is not supported by this gateway"))
	}
	a.HTTPSVerifyCertificate = fieldOr(o, "https_verify_certificate", asBool, a.HTTPSVerifyCertificate)
	a.ReqHeaders, _ = field(o, "req_headers", func(v any) ([]string, *ValidationError) {
		return arrayOf(v, 1, asString)
	})
	a.Healthy = fieldOr(o, "healthy", parseActiveHealthy, ActiveHealthy{
		Interval: time.Second, HTTPStatuses: defaultActiveHealthyStatuses(), Successes: 2,
	})
	a.Unhealthy = fieldOr(o, "unhealthy", parseActiveUnhealthy, ActiveUnhealthy{
		Interval: time.Second, HTTPStatuses: defaultActiveUnhealthyStatuses(),
		HTTPFailures: 5, TCPFailures: 2, Timeouts: 3,
	})
	o.closed(activeProps)
	if o.err != nil {
		return nil, o.err
	}
	return &a, nil
}

// parseStatuses checks an http_statuses array: at least one unique
// integer 200-599.
func parseStatuses(v any) ([]int, *ValidationError) {
	return uniqueArrayOf(v, 1, httpStatus.integer)
}

// parseInterval checks a probe interval: an integer number of seconds ≥ 1.
func parseInterval(v any) (time.Duration, *ValidationError) {
	n, err := atLeast(1).integer(v)
	if err != nil {
		return 0, err
	}
	if int64(n) > maxSeconds {
		return 0, invalid("expected %d to be at most %d", n, maxSeconds)
	}
	return time.Duration(n) * time.Second, nil
}

func parseActiveHealthy(v any) (ActiveHealthy, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return ActiveHealthy{}, err
	}
	h := ActiveHealthy{
		Interval:     fieldOr(o, "interval", parseInterval, time.Second),
		HTTPStatuses: fieldOr(o, "http_statuses", parseStatuses, defaultActiveHealthyStatuses()),
		Successes:    fieldOr(o, "successes", between(1, 254).integer, 2),
	}
	o.closed([]string{"interval", "http_statuses", "successes"})
	return h, o.err
}

func parseActiveUnhealthy(v any) (ActiveUnhealthy, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return ActiveUnhealthy{}, err
	}
	h := ActiveUnhealthy{
		Interval:     fieldOr(o, "interval", parseInterval, time.Second),
		HTTPStatuses: fieldOr(o, "http_statuses", parseStatuses, defaultActiveUnhealthyStatuses()),
		HTTPFailures: fieldOr(o, "http_failures", between(1, 254).integer, 5),
		TCPFailures:  fieldOr(o, "tcp_failures", between(1, 254).integer, 2),
		Timeouts:     fieldOr(o, "timeouts", between(1, 254).integer, 3),
	}
	o.closed([]string{"interval", "http_statuses", "http_failures", "tcp_failures", "timeouts"})
	return h, o.err
}

// parsePassiveCheck checks `checks.passive` and fills its defaults. Its
// thresholds may be 0, which disables that counter.
func parsePassiveCheck(v any) (*PassiveCheck, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	p := PassiveCheck{
		Type: fieldOr(o, "type", checkTypeRule.parse, "http"),
		Healthy: fieldOr(o, "healthy", parsePassiveHealthy, PassiveHealthy{
			HTTPStatuses: defaultPassiveHealthyStatuses(), Successes: 5,
		}),
		Unhealthy: fieldOr(o, "unhealthy", parsePassiveUnhealthy, PassiveUnhealthy{
			HTTPStatuses: defaultPassiveUnhealthyStatuses(), HTTPFailures: 5, TCPFailures: 2, Timeouts: 7,
		}),
	}
	o.closed([]string{"type", "healthy", "unhealthy"})
	if o.err != nil {
		return nil, o.err
	}
	return &p, nil
}

func parsePassiveHealthy(v any) (PassiveHealthy, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return PassiveHealthy{}, err
	}
	h := PassiveHealthy{
		HTTPStatuses: fieldOr(o, "http_statuses", parseStatuses, defaultPassiveHealthyStatuses()),
		Successes:    fieldOr(o, "successes", between(0, 254).integer, 5),
	}
	o.closed([]string{"http_statuses", "successes"})
	return h, o.err
}

func parsePassiveUnhealthy(v any) (PassiveUnhealthy, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return PassiveUnhealthy{}, err
	}
	h := PassiveUnhealthy{
		HTTPStatuses: fieldOr(o, "http_statuses", parseStatuses, defaultPassiveUnhealthyStatuses()),
		HTTPFailures: fieldOr(o, "http_failures", between(0, 254).integer, 5),
		TCPFailures:  fieldOr(o, "tcp_failures", between(0, 254).integer, 2),
		Timeouts:     fieldOr(o, "timeouts", between(0, 254).integer, 7),
	}
	o.closed([]string{"http_statuses", "tcp_failures", "timeouts", "http_failures"})
	return h, o.err
}
