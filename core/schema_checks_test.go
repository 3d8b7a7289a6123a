package core

import (
	"reflect"
	"testing"
	"time"
)

func defaultActive() *ActiveCheck {
	return &ActiveCheck{
		Type: "http", Timeout: time.Second, Concurrency: 10, HTTPPath: "/", HTTPSVerifyCertificate: true,
		Healthy: ActiveHealthy{Interval: time.Second, HTTPStatuses: []int{200, 302}, Successes: 2},
		Unhealthy: ActiveUnhealthy{Interval: time.Second, HTTPStatuses: []int{429, 404, 500, 501, 502, 503, 504, 505},
			HTTPFailures: 5, TCPFailures: 2, Timeouts: 3},
	}
}

func defaultPassive() *PassiveCheck {
	return &PassiveCheck{
		Type: "http",
		Healthy: PassiveHealthy{HTTPStatuses: []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
			300, 301, 302, 303, 304, 305, 306, 307, 308}, Successes: 5},
		Unhealthy: PassiveUnhealthy{HTTPStatuses: []int{429, 500, 503}, HTTPFailures: 5, TCPFailures: 2, Timeouts: 7},
	}
}

// checksValidCases lists valid `checks` objects (put into an upstream)
// with the model they must produce.
func checksValidCases(f func(checks string, want *HealthChecks)) {
	f(`{"active":{}}`, &HealthChecks{Active: defaultActive()})
	f(`{"active":{},"passive":{}}`, &HealthChecks{Active: defaultActive(), Passive: defaultPassive()})
	f(`{"active":{"healthy":{},"unhealthy":{}},"passive":{"healthy":{},"unhealthy":{}}}`,
		&HealthChecks{Active: defaultActive(), Passive: defaultPassive()})

	a := defaultActive()
	a.Type, a.Timeout, a.Concurrency, a.Host, a.Port = "https", 1500*time.Millisecond, 3, "probe.local", 8443
	a.HTTPPath, a.HTTPSVerifyCertificate, a.ReqHeaders = "/status", false, []string{"User-Agent: probe", "X-A: 1"}
	a.Healthy = ActiveHealthy{Interval: 2 * time.Second, HTTPStatuses: []int{200}, Successes: 1}
	a.Unhealthy = ActiveUnhealthy{Interval: 3 * time.Second, HTTPStatuses: []int{500}, HTTPFailures: 254, TCPFailures: 1, Timeouts: 9}
	f(`{"active":{"type":"https","timeout":1.5,"concurrency":3,"host":"probe.local","port":8443,"http_method":"GET",
		"http_path":"/status","http_req_body":"","https_verify_certificate":false,"req_headers":["User-Agent: probe","X-A: 1"],
		"healthy":{"interval":2,"http_statuses":[200],"successes":1},
		"unhealthy":{"interval":3,"http_statuses":[500],"http_failures":254,"tcp_failures":1,"timeouts":9}}}`,
		&HealthChecks{Active: a})

	p := defaultPassive()
	p.Type = "tcp"
	p.Healthy = PassiveHealthy{HTTPStatuses: []int{200, 599}, Successes: 0}
	p.Unhealthy = PassiveUnhealthy{HTTPStatuses: []int{502}, HTTPFailures: 0, TCPFailures: 1, Timeouts: 0}
	f(`{"active":{"type":"tcp"},"passive":{"type":"tcp","healthy":{"http_statuses":[200,599],"successes":0},
		"unhealthy":{"http_statuses":[502],"http_failures":0,"tcp_failures":1,"timeouts":0}}}`,
		&HealthChecks{Active: func() *ActiveCheck { a := defaultActive(); a.Type = "tcp"; return a }(), Passive: p})

	// Partial sub-objects keep the defaults of the fields they omit.
	a2 := defaultActive()
	a2.Healthy.Successes = 7
	a2.Unhealthy.TCPFailures = 4
	f(`{"active":{"healthy":{"successes":7},"unhealthy":{"tcp_failures":4}}}`, &HealthChecks{Active: a2})
}

func TestParseChecksValid(t *testing.T) {
	f := func(checks string, want *HealthChecks) {
		t.Helper()
		body := `{"nodes":{},"checks":` + checks + `}`
		u, err := ParseUpstream([]byte(body))
		if err != nil {
			t.Fatalf("body %s: unexpected error %q", body, err)
		}
		if !reflect.DeepEqual(u.Checks, want) {
			t.Fatalf("body %s:\n got %+v %+v\nwant %+v %+v", body, u.Checks.Active, u.Checks.Passive, want.Active, want.Passive)
		}
	}
	checksValidCases(f)
}

// checksErrorCases lists invalid `checks` objects with the message of their
// error, without the leading `property "checks" validation failed: `.
func checksErrorCases(f func(checks, wantErr string)) {
	const none = `object matches none of the required: ["active"] or ["active","passive"]`
	f(`{}`, none)
	f(`{"passive":{"unhealthy":{"http_statuses":[502],"http_failures":1,"tcp_failures":1}}}`, none)
	f(`[1]`, `wrong type: expected object, got array`)
	f(`{"active":{},"extra":{}}`, `additional properties forbidden, found extra`)
	f(`{"active":1}`, `property "active" validation failed: wrong type: expected object, got number`)

	const act = `property "active" validation failed: `
	f(`{"active":{"type":"udp"}}`, act+`property "type" validation failed: matches none of the enum values`)
	f(`{"active":{"timeout":0}}`, act+`property "timeout" validation failed: expected 0 to be greater than 0`)
	f(`{"active":{"concurrency":0}}`, act+`property "concurrency" validation failed: expected 0 to be at least 1`)
	f(`{"active":{"host":"a b"}}`, act+`property "host" validation failed: failed to match pattern "^\\*$|^\\*?[0-9a-zA-Z-._\\[\\]:]+$" with "a b"`)
	f(`{"active":{"port":0}}`, act+`property "port" validation failed: expected 0 to be at least 1`)
	f(`{"active":{"port":65536}}`, act+`property "port" validation failed: expected 65536 to be at most 65535`)
	f(`{"active":{"http_method":"FETCH"}}`, act+`property "http_method" validation failed: matches none of the enum values`)
	f(`{"active":{"http_method":"POST"}}`, act+`property "http_method" validation failed: only GET is supported by this gateway`)
	f(`{"active":{"http_req_body":"x"}}`, act+`property "http_req_body" validation failed: a probe request body is not supported by this gateway`)
	f(`{"active":{"http_path":1}}`, act+`property "http_path" validation failed: wrong type: expected string, got number`)
	f(`{"active":{"https_verify_certificate":"no"}}`, act+`property "https_verify_certificate" validation failed: wrong type: expected boolean, got string`)
	f(`{"active":{"req_headers":[]}}`, act+`property "req_headers" validation failed: expect array to have at least 1 items`)
	f(`{"active":{"req_headers":[1]}}`, act+`property "req_headers" validation failed: failed to validate item 1: wrong type: expected string, got number`)
	f(`{"active":{"interval":1}}`, act+`additional properties forbidden, found interval`)

	const ah = act + `property "healthy" validation failed: `
	f(`{"active":{"healthy":{"interval":0}}}`, ah+`property "interval" validation failed: expected 0 to be at least 1`)
	f(`{"active":{"healthy":{"interval":1.5}}}`, ah+`property "interval" validation failed: wrong type: expected integer, got number`)
	f(`{"active":{"healthy":{"successes":0}}}`, ah+`property "successes" validation failed: expected 0 to be at least 1`)
	f(`{"active":{"healthy":{"successes":255}}}`, ah+`property "successes" validation failed: expected 255 to be at most 254`)
	f(`{"active":{"healthy":{"http_statuses":[]}}}`, ah+`property "http_statuses" validation failed: expect array to have at least 1 items`)
	f(`{"active":{"healthy":{"http_statuses":[199]}}}`, ah+`property "http_statuses" validation failed: failed to validate item 1: expected 199 to be at least 200`)
	f(`{"active":{"healthy":{"http_statuses":[200,600]}}}`, ah+`property "http_statuses" validation failed: failed to validate item 2: expected 600 to be at most 599`)
	f(`{"active":{"healthy":{"http_statuses":[200,200.0]}}}`, ah+`property "http_statuses" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"active":{"healthy":{"http_failures":1}}}`, ah+`additional properties forbidden, found http_failures`)

	const au = act + `property "unhealthy" validation failed: `
	f(`{"active":{"unhealthy":{"interval":0}}}`, au+`property "interval" validation failed: expected 0 to be at least 1`)
	f(`{"active":{"unhealthy":{"http_failures":0}}}`, au+`property "http_failures" validation failed: expected 0 to be at least 1`)
	f(`{"active":{"unhealthy":{"tcp_failures":255}}}`, au+`property "tcp_failures" validation failed: expected 255 to be at most 254`)
	f(`{"active":{"unhealthy":{"timeouts":-1}}}`, au+`property "timeouts" validation failed: expected -1 to be at least 1`)
	f(`{"active":{"unhealthy":{"http_statuses":"500"}}}`, au+`property "http_statuses" validation failed: wrong type: expected array, got string`)
	f(`{"active":{"unhealthy":{"successes":1}}}`, au+`additional properties forbidden, found successes`)

	const pas = `property "passive" validation failed: `
	f(`{"active":{},"passive":{"type":"grpc"}}`, pas+`property "type" validation failed: matches none of the enum values`)
	f(`{"active":{},"passive":{"healthy":{"successes":-1}}}`, pas+`property "healthy" validation failed: property "successes" validation failed: expected -1 to be at least 0`)
	f(`{"active":{},"passive":{"healthy":{"successes":255}}}`, pas+`property "healthy" validation failed: property "successes" validation failed: expected 255 to be at most 254`)
	f(`{"active":{},"passive":{"healthy":{"interval":1}}}`, pas+`property "healthy" validation failed: additional properties forbidden, found interval`)
	f(`{"active":{},"passive":{"unhealthy":{"http_failures":255}}}`, pas+`property "unhealthy" validation failed: property "http_failures" validation failed: expected 255 to be at most 254`)
	f(`{"active":{},"passive":{"unhealthy":{"http_statuses":[429,429]}}}`, pas+`property "unhealthy" validation failed: property "http_statuses" validation failed: expected unique items but items 1 and 2 are equal`)
	f(`{"active":{},"passive":{"unhealthy":{"timeouts":1.5}}}`, pas+`property "unhealthy" validation failed: property "timeouts" validation failed: wrong type: expected integer, got number`)
	f(`{"active":{},"passive":{"timeout":1}}`, pas+`additional properties forbidden, found timeout`)
}

func TestParseChecksErrors(t *testing.T) {
	f := func(checks, wantErr string) {
		t.Helper()
		body := `{"nodes":{},"checks":` + checks + `}`
		_, err := ParseUpstream([]byte(body))
		checkValidationError(t, body, err, `property "checks" validation failed: `+wantErr)
	}
	checksErrorCases(f)
}
