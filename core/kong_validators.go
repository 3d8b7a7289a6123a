package core

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Validators of Kong's typedefs (kong/db/schema/typedefs.lua) used by the
// entity schemas in kong_entities.go.

var (
	kongNamePattern   = regexp.MustCompile(`^[\w.\-~]+$`)
	kongHostnameLabel = regexp.MustCompile(`^[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?$`)
	kongHeaderName    = regexp.MustCompile("^[!#$%&'*+\\-.^_`|~0-9A-Za-z]+$")
	kongPathChars     = regexp.MustCompile(`^/[\w.\-~/%:@!$&'()*+,;=]*$`)
	kongMethodPattern = regexp.MustCompile(`^[A-Z]+$`)
)

// validHostname reports whether s is a DNS name as Kong's normalize_ip
// accepts it (letters, digits, '-', '_' and dots).
func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !kongHostnameLabel.MatchString(l) {
			return false
		}
	}
	return true
}

// splitKongHost splits "host", "host:port", "[v6]" or "[v6]:port". isIP
// tells an address from a name; ok is false for anything else.
func splitKongHost(s string) (host string, port int, hasPort, isIP, ok bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", 0, false, false, false
		}
		a, err := netip.ParseAddr(s[1:end])
		if err != nil || !a.Is6() {
			return "", 0, false, false, false
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, 0, false, true, true
		}
		if rest[0] != ':' {
			return "", 0, false, false, false
		}
		p, err := strconv.Atoi(rest[1:])
		if err != nil || p < 0 || p > 65535 || rest[1] < '0' || rest[1] > '9' {
			return "", 0, false, false, false
		}
		return host, p, true, true, true
	}
	if strings.Count(s, ":") > 1 {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return "", 0, false, false, false
		}
		return a.String(), 0, false, true, true
	}
	host, ps, hasPort := strings.Cut(s, ":")
	if hasPort {
		p, err := strconv.Atoi(ps)
		if err != nil || p < 0 || p > 65535 || ps == "" || ps[0] < '0' || ps[0] > '9' {
			return "", 0, false, false, false
		}
		port = p
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return host, port, hasPort, true, true
	}
	if !validHostname(host) {
		return "", 0, false, false, false
	}
	return host, port, hasPort, false, true
}

func checkKongName(v any) string {
	s := v.(string)
	if !kongNamePattern.MatchString(s) {
		return "invalid value '" + s + "': it must only contain alphanumeric and '., -, _, ~' characters"
	}
	return ""
}

// checkKongHost is typedefs.host: a hostname or IP, no port.
func checkKongHost(v any) string {
	s := v.(string)
	_, _, hasPort, _, ok := splitKongHost(s)
	if !ok {
		return "invalid value: " + s
	}
	if hasPort {
		return "must not have a port"
	}
	return ""
}

// checkKongHostPort is typedefs.host_with_optional_port.
func checkKongHostPort(v any) string {
	s := v.(string)
	if _, _, _, _, ok := splitKongHost(s); !ok {
		return "invalid value: " + s
	}
	return ""
}

// checkKongPath is typedefs.path: starts with "/", RFC 3986 characters,
// proper percent-encoding, no empty segments.
func checkKongPath(v any) string {
	s := v.(string)
	if strings.Contains(s, "//") {
		return "must not have empty segments"
	}
	if !kongPathChars.MatchString(s) {
		return "invalid path: '" + s + "' (characters outside of the reserved list of RFC 3986 found)"
	}
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return "invalid url-encoded value: '" + s[i:min(i+3, len(s))] + "'"
		}
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// checkRouterPath is typedefs.router_path: "/..." or a "~/..." regex.
func checkRouterPath(v any) string {
	s := v.(string)
	if !strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "~/") {
		return "should start with: / (fixed path) or ~/ (regex path)"
	}
	if strings.HasPrefix(s, "~") {
		if _, err := regexp.Compile(s[1:]); err != nil {
			return "invalid regex: '" + s[1:] + "'"
		}
		return ""
	}
	if strings.Contains(s, "//") {
		return "must not have empty segments"
	}
	if msg := checkKongPath(s); msg != "" {
		return msg
	}
	return ""
}

// checkRouteHost is typedefs.hosts' element: a host, optional port, at most
// one wildcard at the leftmost or rightmost label.
func checkRouteHost(v any) string {
	s := v.(string)
	if strings.Count(s, "*") > 1 {
		return "invalid wildcard: must have at most one wildcard"
	}
	if strings.Contains(s, "*") && !strings.HasPrefix(s, "*.") && !strings.HasSuffix(s, ".*") {
		return "invalid wildcard: must be placed at leftmost or rightmost label"
	}
	h := strings.Replace(s, "*", "wildcard", 1)
	if _, _, _, _, ok := splitKongHost(h); !ok {
		return "invalid hostname: " + s
	}
	return ""
}

func checkHeaderName(v any) string {
	if s, _ := v.(string); !kongHeaderName.MatchString(s) {
		return "bad header name '" + s + "', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
	}
	return ""
}

func checkCookieName(v any) string {
	if s, _ := v.(string); !kongHeaderName.MatchString(s) {
		return "bad cookie name '" + s + "', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
	}
	return ""
}

func checkUUID(v any) string {
	if s, _ := v.(string); !IsUUID(s) {
		return "expected a valid UUID"
	}
	return ""
}

func checkMethod(v any) string {
	if s, _ := v.(string); !kongMethodPattern.MatchString(s) {
		return "invalid value: " + s
	}
	return ""
}
