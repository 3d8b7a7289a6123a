package core

import (
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/edgeway/gateway/discovery"
)

// SupportedBalancers lists the upstream `type` values this gateway accepts.
// APISIX itself accepts any string here and fails at request time; this
// gateway refuses an unknown type when it is written. Packages that add a
// balancer add its name here at init time; the map is read-only afterwards.
var SupportedBalancers = map[string]bool{"roundrobin": true, "chash": true, "least_conn": true, "ewma": true}

// SupportedSchemes lists the upstream `scheme` values this gateway accepts
// among those APISIX knows (http, https, grpc, grpcs, tcp, udp, tls, kafka).
// The others are refused with a message saying why. Read-only after init.
var SupportedSchemes = map[string]bool{"http": true, "https": true}

// upstreamProps are the properties of APISIX's upstream schema
// (apisix/schema_def.lua upstream_schema) plus our retry_on_statuses.
var upstreamProps = append(slices.Clone(metadataProps),
	"type", "scheme", "nodes", "retries", "retry_timeout", "timeout", "pass_host", "upstream_host",
	"hash_on", "key", "keepalive_pool", "tls", "checks", "retry_on_statuses",
	"discovery_type", "service_name", "discovery_args")

// knownSchemes is APISIX's scheme enum, with the reason this gateway does
// not serve each one it does not support.
var knownSchemes = map[string]string{
	"http":  "",
	"https": "",
	"grpc":  "needs HTTP/2",
	"grpcs": "needs HTTP/2",
	"tcp":   "stream proxying",
	"udp":   "stream proxying",
	"tls":   "stream proxying",
	"kafka": "Kafka protocol",
}

var (
	passHostRule = strRule{enum: []string{"pass", "node", "rewrite"}}
	hashOnRule   = strRule{enum: []string{"vars", "header", "cookie", "consumer", "vars_combinations"}}
	certRule     = strRule{minLen: 128, maxLen: 64 * 1024}
	keyRule      = strRule{minLen: 64, maxLen: 64 * 1024}

	// hashVarsPattern is APISIX's upstream_hash_vars_schema pattern, widened
	// with http_* and cookie_*, which our Var supports.
	hashVarsPattern = newPattern(`^((uri|server_name|server_addr|request_uri|remote_port|remote_addr|query_string|host|hostname|mqtt_client_id)|arg_[0-9a-zA-z_-]+|http_[0-9a-zA-Z_-]+|cookie_[0-9a-zA-Z_-]+)$`)
	// hashHeaderPattern is APISIX's upstream_hash_header_schema pattern (also
	// used for cookie names).
	hashHeaderPattern = newPattern(`^[a-zA-Z0-9-_]+$`)
	// varRefPattern finds `$name` and `${name}` (also `${name ?? default}`)
	// in a vars_combinations key, as apisix/core/utils.lua resolve_var.
	varRefPattern = regexp.MustCompile(`\$(?:\{\s*([^}]+?)\s*\}|([\w.]+))`)
	// nodeHostPattern is a node host without port or brackets.
	nodeHostPattern = regexp.MustCompile(`^[0-9a-zA-Z-._]+$`)
)

// errIPv6Brackets is APISIX's message for an IPv6 node host without
// brackets; APISIX reports it ahead of any schema failure.
const errIPv6Brackets = "IPv6 address must be enclosed with '[' and ']'"

// ParseUpstream validates an APISIX upstream object and returns the model
// with defaults filled: type roundrobin, scheme http, pass_host pass,
// hash_on vars, node ports 80 (http) or 443 (https), node priority 0, and
// every default of keepalive_pool and checks when those are given.
// Retries stays nil when absent. The object form of `nodes` is sorted by key.
//
// retry_on_statuses is an extension of ours and opt-in: an array of unique
// integers 500-599, retried on another node; absent means none, as APISIX.
//
// Service discovery: service_name with discovery_type (and optionally
// discovery_args) replaces nodes; exactly one of the two is required. The
// type must be one package discovery registers ("dns"), and the service
// name must suit it.
//
// Every failure is a *ValidationError. A discovery type not registered, a
// type not in SupportedBalancers and a scheme not in SupportedSchemes are
// refused.
func ParseUpstream(body []byte) (*Upstream, error) {
	v, verr := decodeJSON(body)
	if verr != nil {
		return nil, verr
	}
	u, verr := parseUpstream(v)
	if verr != nil {
		return nil, verr
	}
	return u, nil
}

// parseUpstream validates a decoded upstream, standalone or inline.
func parseUpstream(v any) (*Upstream, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	if hasBareIPv6Node(o.m["nodes"]) {
		return nil, &ValidationError{Msg: errIPv6Brackets}
	}

	u := &Upstream{Type: "roundrobin", Scheme: "http", PassHost: "pass", HashOn: "vars"}
	md := parseMetadata(o)
	u.ID, u.Name, u.Desc, u.Labels = md.id, md.name, md.desc, md.labels
	u.Type = fieldOr(o, "type", parseBalancerType, u.Type)
	u.Scheme = fieldOr(o, "scheme", parseScheme, u.Scheme)
	u.Nodes, _ = field(o, "nodes", func(v any) ([]Node, *ValidationError) { return parseNodes(v, u.Scheme) })
	if n, ok := field(o, "retries", atLeast(0).integer); ok {
		u.Retries = &n
	}
	u.RetryTimeout, _ = field(o, "retry_timeout", atLeast(0).seconds)
	u.Timeout, _ = field(o, "timeout", parseTimeout)
	u.PassHost = fieldOr(o, "pass_host", passHostRule.parse, u.PassHost)
	u.UpstreamHost, _ = field(o, "upstream_host", hostRule.parse)
	u.HashOn = fieldOr(o, "hash_on", hashOnRule.parse, u.HashOn)
	key, hasKey := field(o, "key", anyString.parse)
	u.KeepalivePool, _ = field(o, "keepalive_pool", parseKeepalivePool)
	u.TLS, _ = field(o, "tls", parseUpstreamTLS)
	u.Checks, _ = field(o, "checks", parseChecks)
	u.RetryOnStatuses, _ = field(o, "retry_on_statuses", parseRetryOnStatuses)
	u.DiscoveryType, _ = field(o, "discovery_type", parseDiscoveryType)
	u.ServiceName, _ = field(o, "service_name", nameRule.parse)
	u.DiscoveryArgs, _ = field(o, "discovery_args", parseDiscoveryArgs)
	// APISIX's oneOf: nodes, or service_name with discovery_type.
	discovered := o.has("service_name") || o.has("discovery_type") || o.has("discovery_args")
	switch {
	case o.has("nodes") && discovered:
		o.check(invalid("only one of nodes and service_name may be set: static nodes, or a service to discover (service_name with discovery_type)"))
	case discovered:
		o.require("service_name", "discovery_type")
	default:
		o.require("nodes")
	}
	o.closed(upstreamProps)
	if o.err != nil {
		return nil, o.err
	}
	if u.DiscoveryType != "" {
		if err := discovery.CheckService(u.DiscoveryType, u.ServiceName, u.DiscoveryArgs); err != nil {
			return nil, invalid("%v", err).inProperty("service_name")
		}
	}

	// The checks APISIX makes after the schema (apisix/upstream.lua
	// check_upstream_conf).
	if u.PassHost == "rewrite" && u.UpstreamHost == "" {
		return nil, bare("`upstream_host` can't be empty when `pass_host` is `rewrite`")
	}
	if u.Type == "chash" {
		if u.HashOn != "consumer" && !hasKey {
			return nil, bare("missing key")
		}
		if err := checkHashKey(u.HashOn, key); err != nil {
			return nil, err.inProperty("key")
		}
	}
	u.Key = key
	return u, nil
}

// parseBalancerType checks `type` against SupportedBalancers.
func parseBalancerType(v any) (string, *ValidationError) {
	s, err := anyString.parse(v)
	if err != nil {
		return "", err
	}
	if !SupportedBalancers[s] {
		names := slices.Sorted(maps.Keys(SupportedBalancers))
		return "", invalid("balancer type %s is not supported; expected one of %s", luaQuote(s), strings.Join(names, ", "))
	}
	return s, nil
}

// parseDiscoveryType checks `discovery_type` against the registries package
// discovery registers.
func parseDiscoveryType(v any) (string, *ValidationError) {
	s, err := anyString.parse(v)
	if err != nil {
		return "", err
	}
	if err := discovery.CheckType(s); err != nil {
		return "", invalid("%v", err)
	}
	return s, nil
}

// parseDiscoveryArgs checks `discovery_args`: an object of strings (APISIX
// defines namespace_id and group_name, for Nacos). Empty means none.
func parseDiscoveryArgs(v any) (map[string]string, *ValidationError) {
	m, err := asObject(v)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	args := make(map[string]string, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		s, err := anyString.parse(m[k])
		if err != nil {
			return nil, err.inProperty(k)
		}
		args[k] = s
	}
	return args, nil
}

// parseScheme checks `scheme` against APISIX's enum, then SupportedSchemes.
func parseScheme(v any) (string, *ValidationError) {
	s, _ := v.(string)
	reason, known := knownSchemes[s]
	if !known {
		// APISIX's schema gives scheme no type, only the enum.
		return "", errNotInEnum
	}
	if !SupportedSchemes[s] {
		if reason == "" {
			return "", invalid("scheme %s is not supported by this gateway", luaQuote(s))
		}
		return "", invalid("scheme %s is not supported by this gateway (%s)", luaQuote(s), reason)
	}
	return s, nil
}

// defaultPort is the node port implied by the scheme (fill_node_info).
func defaultPort(scheme string) int {
	if scheme == "https" || scheme == "grpcs" {
		return 443
	}
	return 80
}

// hasBareIPv6Node reports whether a nodes value names an IPv6 address
// without brackets: an array item's host, or an object key.
func hasBareIPv6Node(v any) bool {
	switch x := v.(type) {
	case []any:
		for _, it := range x {
			m, _ := it.(map[string]any)
			if h, ok := m["host"].(string); ok && isIPv6(h) {
				return true
			}
		}
	case map[string]any:
		for k := range x {
			if strings.HasPrefix(k, "[") || strings.Count(k, ":") < 2 {
				continue
			}
			if isIPv6(k) {
				return true
			}
			if i := strings.LastIndexByte(k, ':'); isIPv6(k[:i]) {
				return true
			}
		}
	}
	return false
}

func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

// parseNodes checks `nodes` in either form: an object {"host:port": weight}
// or an array of {host, port?, weight, priority?, metadata?}. A missing
// port is the scheme's default. An empty object or array is valid.
func parseNodes(v any, scheme string) ([]Node, *ValidationError) {
	switch x := v.(type) {
	case map[string]any:
		return parseNodeMap(x, defaultPort(scheme))
	case []any:
		nodes, err := arrayOf(x, 0, func(v any) (Node, *ValidationError) { return parseNode(v, defaultPort(scheme)) })
		if err != nil {
			return nil, err
		}
		return nodes, nil
	}
	return nil, invalid("wrong type: expected one of object, array, got %s", jsonType(v))
}

// parseNodeMap checks the object form, in key order.
func parseNodeMap(m map[string]any, port int) ([]Node, *ValidationError) {
	keys := slices.Sorted(maps.Keys(m))
	nodes := make([]Node, 0, len(keys))
	for _, k := range keys {
		w, err := atLeast(0).integer(m[k])
		if err != nil {
			return nil, err.inKey(k)
		}
		host, p, err := splitNodeAddr(k, port)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, Node{Host: host, Port: p, Weight: w})
	}
	return nodes, nil
}

// splitNodeAddr splits an object-form node key: "host", "host:port",
// "[ipv6]" or "[ipv6]:port".
func splitNodeAddr(addr string, port int) (string, int, *ValidationError) {
	host, portStr, hasPort := addr, "", false
	if strings.HasPrefix(addr, "[") {
		end := strings.IndexByte(addr, ']')
		if end < 0 || !isIPv6(addr[1:end]) {
			return "", 0, invalid("invalid node address %s", luaQuote(addr))
		}
		host = addr[1:end]
		switch rest := addr[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			portStr, hasPort = rest[1:], true
		default:
			return "", 0, invalid("invalid node address %s", luaQuote(addr))
		}
	} else {
		host, portStr, hasPort = strings.Cut(addr, ":")
		if !nodeHostPattern.MatchString(host) {
			return "", 0, invalid("invalid node address %s", luaQuote(addr))
		}
	}
	if !hasPort {
		return host, port, nil
	}
	p, err := strconv.Atoi(portStr)
	if err != nil || portStr[0] < '0' || portStr[0] > '9' {
		return "", 0, invalid("invalid node address %s", luaQuote(addr))
	}
	if p < 1 || p > 65535 {
		return "", 0, invalid("invalid port %d in node address %s", p, luaQuote(addr))
	}
	return host, p, nil
}

var nodeProps = []string{"host", "port", "weight", "priority", "metadata"}

// parseNode checks one array-form node.
func parseNode(v any, port int) (Node, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return Node{}, err
	}
	n := Node{Port: port}
	n.Host, _ = field(o, "host", parseNodeHost)
	n.Port = fieldOr(o, "port", between(1, 65535).integer, n.Port)
	n.Weight, _ = field(o, "weight", atLeast(0).integer)
	n.Priority, _ = field(o, "priority", anyNumber.integer)
	n.Metadata, _ = field(o, "metadata", func(v any) (map[string]any, *ValidationError) {
		m, err := asObject(v)
		if len(m) == 0 {
			m = nil
		}
		return m, err
	})
	o.require("host", "weight")
	o.closed(nodeProps)
	if o.err != nil {
		return Node{}, o.err
	}
	return n, nil
}

// parseNodeHost checks an array-form node host (APISIX's host pattern) and
// returns it without brackets. A port or a wildcard is refused: APISIX would
// accept them and fail to connect.
func parseNodeHost(v any) (string, *ValidationError) {
	h, err := hostRule.parse(v)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(h, "[") {
		if !strings.HasSuffix(h, "]") || !isIPv6(h[1:len(h)-1]) {
			return "", invalid("invalid IPv6 address %s", luaQuote(h))
		}
		return h[1 : len(h)-1], nil
	}
	if !nodeHostPattern.MatchString(h) {
		return "", invalid("invalid node host %s (give the port in \"port\")", luaQuote(h))
	}
	return h, nil
}

// checkHashKey checks a chash `key` for its hash_on (APISIX
// get_chash_key_schema), and that our Var can read every variable it names.
func checkHashKey(hashOn, key string) *ValidationError {
	switch hashOn {
	case "vars":
		if err := hashVarsPattern.check(key); err != nil {
			return err
		}
		if _, err := ParseVar(key); err != nil {
			return invalid("variable %s is not supported by this gateway", luaQuote(key))
		}
	case "header", "cookie":
		return hashHeaderPattern.check(key)
	case "vars_combinations":
		for _, name := range varRefs(key) {
			if _, err := ParseVar(name); err != nil {
				return invalid("%v", err)
			}
		}
	}
	return nil
}

// varRefs returns the variable names a vars_combinations key refers to:
// `$name`, `${name}` and `${name ?? default}`, but not `\$name`.
func varRefs(tpl string) []string {
	var names []string
	for _, m := range varRefPattern.FindAllStringSubmatchIndex(tpl, -1) {
		if m[0] > 0 && tpl[m[0]-1] == '\\' {
			continue
		}
		var name string
		if m[2] >= 0 {
			name, _, _ = strings.Cut(tpl[m[2]:m[3]], "??")
			name = strings.TrimSpace(name)
		} else {
			name = tpl[m[4]:m[5]]
		}
		names = append(names, name)
	}
	return names
}

var keepaliveProps = []string{"size", "idle_timeout", "requests"}

// parseKeepalivePool checks `keepalive_pool` and fills APISIX's defaults
// (size 320, idle_timeout 60 s, requests 1000).
func parseKeepalivePool(v any) (*KeepalivePool, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	p := DefaultKeepalivePool
	p.Size = fieldOr(o, "size", atLeast(1).integer, p.Size)
	p.IdleTimeout = fieldOr(o, "idle_timeout", atLeast(0).seconds, p.IdleTimeout)
	p.Requests = fieldOr(o, "requests", atLeast(1).integer, p.Requests)
	o.closed(keepaliveProps)
	if o.err != nil {
		return nil, o.err
	}
	return &p, nil
}

var tlsProps = []string{"client_cert_id", "client_cert", "client_key", "verify", "ca_certs"}

// parseUpstreamTLS checks `tls`: client_cert and client_key together (PEM
// texts of 128 and 64 to 64 Ki characters, which must parse and match, as
// APISIX's check_upstream_conf), or client_cert_id (whose SSL object the
// Admin API checks), verify, and ca_certs (PEM CA certificates, which must
// parse).
func parseUpstreamTLS(v any) (*UpstreamTLS, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	var t UpstreamTLS
	t.ClientCertID, _ = field(o, "client_cert_id", parseID)
	t.ClientCert, _ = field(o, "client_cert", certRule.parse)
	t.ClientKey, _ = field(o, "client_key", keyRule.parse)
	t.Verify, _ = field(o, "verify", asBool)
	t.CACerts, _ = field(o, "ca_certs", func(v any) ([]string, *ValidationError) {
		return arrayOf(v, 0, parsePEMText)
	})
	// APISIX's schema dependencies.
	switch {
	case o.has("client_cert") && !o.has("client_key"):
		o.check(invalid(`failed to validate dependent schema for "client_cert": property "client_key" is required`))
	case o.has("client_key") && !o.has("client_cert"):
		o.check(invalid(`failed to validate dependent schema for "client_key": property "client_cert" is required`))
	case o.has("client_cert_id") && o.has("client_cert") && o.has("client_key"):
		o.check(invalid(`failed to validate dependent schema for "client_cert_id": value wasn't supposed to match schema`))
	}
	o.closed(tlsProps)
	if o.err != nil {
		return nil, o.err
	}
	if t.ClientCert != "" {
		if _, err := loadKeyPair(t.ClientCert, t.ClientKey); err != nil {
			return nil, err
		}
	}
	return &t, nil
}

// parsePEMText checks a PEM text of CA certificates: every block must be
// a certificate that parses.
func parsePEMText(v any) (string, *ValidationError) {
	s, err := strRule{minLen: 1}.parse(v)
	if err != nil {
		return "", err
	}
	if !strings.Contains(s, "-----BEGIN ") {
		return "", invalid("expected PEM text (-----BEGIN ...)")
	}
	if _, err := parseCertificates(s); err != nil {
		return "", invalid("failed to parse cert: %v", err)
	}
	return s, nil
}

// parseRetryOnStatuses checks our `retry_on_statuses`: unique integers
// 500-599. An empty array means none.
func parseRetryOnStatuses(v any) ([]int, *ValidationError) {
	l, err := uniqueArrayOf(v, 0, between(500, 599).integer)
	if len(l) == 0 {
		l = nil
	}
	return l, err
}
