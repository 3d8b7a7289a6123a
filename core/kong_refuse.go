package core

import (
	"strings"

	json "github.com/goccy/go-json"
)

// PickerRegistered reports whether the compiler has a picker for an
// upstream type (roundrobin, chash, least_conn, ewma).
func PickerRegistered(typ string) bool {
	_, ok := pickers[typ]
	return ok
}

// kongAlgorithms maps Kong's algorithm names onto upstream types.
var kongAlgorithms = map[string]string{
	"round-robin":        "roundrobin",
	"consistent-hashing": "chash",
	"least-connections":  "least_conn",
	"latency":            "ewma",
}

// KongUnsupported reports, as a schema violation, what of a normalized
// Kong entity this gateway cannot honour: it refuses rather than ignores.
// It returns nil when everything can be served.
func KongUnsupported(kind Kind, obj map[string]any) *KongError {
	errs := map[string]any{}
	nonEmpty := func(name string) bool {
		switch x := obj[name].(type) {
		case nil:
			return false
		case []any:
			return len(x) > 0
		case map[string]any:
			return len(x) > 0
		}
		return true
	}
	switch kind {
	case KindKongServices:
		if p, _ := obj["protocol"].(string); p != "http" && p != "https" {
			errs["protocol"] = "protocol '" + p + "' is not supported by this gateway (http and https are)"
		}
		for _, f := range []string{"client_certificate", "tls_verify_depth", "ca_certificates"} {
			if nonEmpty(f) {
				errs[f] = "upstream TLS verification and client certificates are not supported by this gateway yet"
			}
		}
		if obj["tls_verify"] == true {
			errs["tls_verify"] = "upstream TLS verification is not supported by this gateway yet"
		}
	case KindKongRoutes:
		for _, p := range stringList(obj["protocols"]) {
			if p != "http" && p != "https" {
				errs["protocols"] = "protocol '" + p + "' is not supported by this gateway (http and https are)"
			}
		}
		if !containsStr(stringList(obj["protocols"]), "http") {
			errs["protocols"] = "routes must accept 'http': this gateway cannot restrict a route to https"
		}
		var pathErrs []any
		bad := false
		for _, p := range stringList(obj["paths"]) {
			if strings.HasPrefix(p, "~") {
				pathErrs, bad = append(pathErrs, "regex paths are not supported by this gateway"), true
			} else {
				pathErrs = append(pathErrs, nil)
			}
		}
		if bad {
			errs["paths"] = pathErrs
		}
		for _, h := range stringList(obj["hosts"]) {
			if strings.HasSuffix(h, ".*") {
				errs["hosts"] = "wildcard hosts ending in '.*' are not supported by this gateway"
			} else if _, _, hasPort, _, _ := splitKongHost(strings.Replace(h, "*", "w", 1)); hasPort {
				errs["hosts"] = "hosts with a port are not supported by this gateway"
			}
		}
		for _, m := range stringList(obj["methods"]) {
			if MethodBit([]byte(m)) == 0 {
				errs["methods"] = "method '" + m + "' is not supported by this gateway"
			}
		}
		for _, f := range []string{"headers", "snis", "sources", "destinations"} {
			if nonEmpty(f) {
				errs[f] = "matching on '" + f + "' is not supported by this gateway"
			}
		}
	case KindKongUpstreams:
		alg, _ := obj["algorithm"].(string)
		if typ := kongAlgorithms[alg]; !PickerRegistered(typ) {
			errs["algorithm"] = "algorithm '" + alg + "' is not available in this build (no '" + typ + "' balancer)"
		}
		if alg == "consistent-hashing" {
			on, _ := obj["hash_on"].(string)
			fb, _ := obj["hash_fallback"].(string)
			if on == "uri_capture" {
				errs["hash_on"] = "'uri_capture' needs regex paths, which this gateway does not support"
			}
			if fb != "none" && fb != "ip" {
				errs["hash_fallback"] = "'" + fb + "' cannot be expressed by this gateway's consistent hashing, which falls back to the client IP (use none or ip)"
			}
			if on == "query_arg" {
				if q, _ := obj["hash_on_query_arg"].(string); q != "" && !hashVarsPattern.re.MatchString("arg_"+q) {
					errs["hash_on_query_arg"] = "query argument names must match [0-9a-zA-Z_-]+"
				}
			}
			if h, _ := obj["hash_on_header"].(string); on == "header" && !hashHeaderPattern.re.MatchString(h) {
				errs["hash_on_header"] = "header names must match [a-zA-Z0-9-_]+"
			}
			if c, _ := obj["hash_on_cookie"].(string); on == "cookie" && !hashHeaderPattern.re.MatchString(c) {
				errs["hash_on_cookie"] = "cookie names must match [a-zA-Z0-9-_]+"
			}
		}
		if nonEmpty("client_certificate") {
			errs["client_certificate"] = "client certificates towards targets are not supported by this gateway yet"
		}
		if obj["use_srv_name"] == true {
			errs["use_srv_name"] = "SRV records are not supported by this gateway"
		}
		if hc, ok := obj["healthchecks"].(map[string]any); ok {
			hcErrs := map[string]any{}
			if t, _ := hc["threshold"].(json.Number); t != "" && t != "0" {
				hcErrs["threshold"] = "an upstream health threshold is not supported by this gateway (use 0)"
			}
			if a, ok := hc["active"].(map[string]any); ok {
				aErrs := map[string]any{}
				if t, _ := a["type"].(string); t == "grpc" || t == "grpcs" {
					aErrs["type"] = "gRPC health checks are not supported by this gateway"
				}
				if a["https_sni"] != nil {
					aErrs["https_sni"] = "a probe SNI is not supported by this gateway"
				}
				if len(aErrs) > 0 {
					hcErrs["active"] = aErrs
				}
			}
			if len(hcErrs) > 0 {
				errs["healthchecks"] = hcErrs
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return KongSchemaError(errs)
}
