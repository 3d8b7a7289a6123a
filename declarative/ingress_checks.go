package declarative

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// seconds reads a duration as the CRDs give it: a Go duration string
// ("5s", "1m30s") or a bare number of seconds.
func seconds(v any) (float64, error) {
	switch x := v.(type) {
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) {
			return 0, fmt.Errorf("invalid duration %v", x)
		}
		return f, nil
	case string:
		dur, err := time.ParseDuration(x)
		if err != nil || dur < 0 {
			return 0, fmt.Errorf("invalid duration %q (use a Go duration such as 5s)", x)
		}
		return dur.Seconds(), nil
	}
	return 0, fmt.Errorf("invalid duration %v", v)
}

func secondsNumber(f float64) json.Number {
	return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
}

// timeoutObject turns {connect, send, read} durations into APISIX's
// timeout in seconds; an unset phase is 60 s (the controller's default).
func timeoutObject(t map[string]any) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range sortedKeys(t) {
		if k != "connect" && k != "send" && k != "read" {
			return nil, fmt.Errorf("unknown timeout field %q", k)
		}
	}
	for _, k := range []string{"connect", "send", "read"} {
		out[k] = json.Number("60")
		if v, ok := t[k]; ok {
			s, err := seconds(v)
			if err != nil {
				return nil, fmt.Errorf("timeout.%s: %v", k, err)
			}
			out[k] = secondsNumber(s)
		}
	}
	return out, nil
}

// healthCheck translates the CRD's camelCase health check into APISIX's
// `checks` (durations to seconds; both spellings of the counters).
func healthCheck(hc map[string]any) (map[string]any, error) {
	out := map[string]any{}
	active, ok := asMap(hc["active"])
	if !ok {
		return nil, fmt.Errorf("healthCheck.active is required")
	}
	for _, k := range sortedKeys(hc) {
		if k != "active" && k != "passive" {
			return nil, fmt.Errorf("unknown healthCheck field %q", k)
		}
	}
	a, err := checkBlock(active, map[string]string{
		"type": "type", "timeout": "timeout", "concurrency": "concurrency", "host": "host", "port": "port",
		"httpPath": "http_path", "strictTLS": "https_verify_certificate", "requestHeaders": "req_headers",
	}, true)
	if err != nil {
		return nil, fmt.Errorf("active: %v", err)
	}
	out["active"] = a
	if passive, ok := asMap(hc["passive"]); ok {
		p, err := checkBlock(passive, map[string]string{"type": "type"}, false)
		if err != nil {
			return nil, fmt.Errorf("passive: %v", err)
		}
		out["passive"] = p
	}
	return out, nil
}

// checkBlock translates one active or passive block.
func checkBlock(m map[string]any, fields map[string]string, active bool) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch {
		case k == "healthy" || k == "unhealthy":
			sub, ok := asMap(v)
			if !ok {
				return nil, fmt.Errorf("%s must be an object", k)
			}
			s, err := checkCounters(sub, active)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", k, err)
			}
			out[k] = s
		case k == "timeout":
			s, err := seconds(v)
			if err != nil {
				return nil, fmt.Errorf("timeout: %v", err)
			}
			out["timeout"] = secondsNumber(s)
		case fields[k] != "":
			out[fields[k]] = v
		default:
			return nil, fmt.Errorf("unknown field %q", k)
		}
	}
	return out, nil
}

// checkCounters translates a healthy/unhealthy block.
func checkCounters(m map[string]any, active bool) (map[string]any, error) {
	names := map[string]string{
		"successes": "successes", "httpCodes": "http_statuses", "http_codes": "http_statuses",
		"httpFailures": "http_failures", "http_failures": "http_failures",
		"tcpFailures": "tcp_failures", "tcp_failures": "tcp_failures",
		"timeout": "timeouts", "timeouts": "timeouts",
	}
	out := map[string]any{}
	for _, k := range sortedKeys(m) {
		v := m[k]
		if k == "interval" && active {
			s, err := seconds(v)
			if err != nil {
				return nil, fmt.Errorf("interval: %v", err)
			}
			if s < 1 {
				return nil, fmt.Errorf("interval must be at least 1s")
			}
			out["interval"] = json.Number(strconv.Itoa(int(s)))
			continue
		}
		n, ok := names[k]
		if !ok {
			return nil, fmt.Errorf("unknown field %q", k)
		}
		out[n] = v
	}
	return out, nil
}
