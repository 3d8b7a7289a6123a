package core

import (
	"net/url"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

// Kong's entity schemas (kong/db/schema/entities/{services,routes,
// upstreams,targets}.lua) with their defaults, as the Admin API and
// declarative files accept them. Normalize* validate an input object and
// return the entity Kong would store; the store keeps exactly that JSON
// (under /apisix/kong_<kind>/<id>) so that the Kong dialect echoes Kong's
// shapes, and the manager translates it into the model (kong.go).

// The Kong entity kinds, as store key segments.
const (
	KindKongServices  Kind = "kong_services"
	KindKongRoutes    Kind = "kong_routes"
	KindKongUpstreams Kind = "kong_upstreams"
	KindKongTargets   Kind = "kong_targets"
)

// kongProtocols is constants.PROTOCOLS.
var kongProtocols = []string{"grpc", "grpcs", "http", "https", "tcp", "tls", "tls_passthrough", "udp", "ws", "wss"}

// Common fields.
func kongID() *kField   { return kStr("id").validator(checkUUID) }
func kongTags() *kField { return kSetOf("tags", kStr("")) }
func kongTimestamp(n string) *kField {
	return &kField{name: n, typ: kInteger}
}

var statusElem = &kField{typ: kInteger, lo: 100, hi: 999, hasRange: true}

func statuses(name string, def ...int) *kField {
	d := make([]any, len(def))
	for i, s := range def {
		d[i] = num(s)
	}
	return kArr(name, statusElem).withDefault(d)
}

var kongServiceSchema = &kSchema{
	name: "services",
	fields: []*kField{
		kongID(),
		kongTimestamp("created_at"),
		kongTimestamp("updated_at"),
		kStr("name").validator(checkKongName),
		kInt("retries", 0, 32767).withDefault(num(5)),
		kStr("protocol").enum(kongProtocols...).req().withDefault("http"),
		kStr("host").req().validator(checkKongHost),
		kInt("port", 0, 65535).req().withDefault(num(80)),
		(&kField{name: "path", typ: kString, startsWith: "/"}).validator(checkKongPath),
		kInt("connect_timeout", 1, 1<<31-2).withDefault(num(60000)),
		kInt("write_timeout", 1, 1<<31-2).withDefault(num(60000)),
		kInt("read_timeout", 1, 1<<31-2).withDefault(num(60000)),
		kongTags(),
		{name: "client_certificate", typ: kForeign},
		kBool("tls_verify"),
		kInt("tls_verify_depth", 0, 64),
		kArr("ca_certificates", kStr("").validator(checkUUID)),
		kBool("enabled").req().withDefault(true),
	},
	entity: func(o map[string]any, errs map[string]any) {
		proto, _ := o["protocol"].(string)
		switch proto {
		case "tcp", "tls", "udp", "grpc", "grpcs":
			if o["path"] != nil {
				entityErr(errs, "failed conditional validation given value of field 'protocol'")
				errs["path"] = "value must be null"
			}
		}
		if proto != "https" && proto != "tls" {
			for _, f := range []string{"client_certificate", "tls_verify", "tls_verify_depth", "ca_certificates"} {
				if o[f] != nil {
					entityErr(errs, "failed conditional validation given value of field 'protocol'")
					errs[f] = "value must be null"
				}
			}
		}
	},
}

var kongRouteSchema = &kSchema{
	name: "routes",
	fields: []*kField{
		kongID(),
		kongTimestamp("created_at"),
		kongTimestamp("updated_at"),
		kStr("name").validator(checkKongName),
		(&kField{name: "protocols", typ: kSet, elem: kStr("").enum(kongProtocols...), lenMin: 1, required: true}).
			withDefault([]any{"http", "https"}),
		(&kField{name: "https_redirect_status_code", typ: kInteger, required: true}).
			enum("426", "301", "302", "307", "308").withDefault(num(426)),
		kBool("strip_path").req().withDefault(true),
		kBool("preserve_host").req().withDefault(false),
		kBool("request_buffering").req().withDefault(true),
		kBool("response_buffering").req().withDefault(true),
		kongTags(),
		{name: "service", typ: kForeign},
		kSetOf("snis", kStr("")),
		kArr("sources", &kField{typ: kRecord, fields: []*kField{kStr("ip"), kInt("port", 0, 65535)}}),
		kArr("destinations", &kField{typ: kRecord, fields: []*kField{kStr("ip"), kInt("port", 0, 65535)}}),
		kSetOf("methods", kStr("").validator(checkMethod)),
		kArr("hosts", kStr("").validator(checkRouteHost)),
		kArr("paths", kStr("").validator(checkRouterPath)),
		(&kField{name: "headers", typ: kMap, elem: kArr("", kStr(""))}).validator(checkHeaderName),
		kInt("regex_priority", -1<<53, 1<<53).withDefault(num(0)),
		kStr("path_handling").enum("v0", "v1").withDefault("v0"),
	},
	entity: func(o map[string]any, errs map[string]any) {
		protos := stringList(o["protocols"])
		has := func(f string) bool {
			switch x := o[f].(type) {
			case []any:
				return len(x) > 0
			case map[string]any:
				return len(x) > 0
			}
			return false
		}
		switch {
		case containsStr(protos, "https"):
			if !has("methods") && !has("hosts") && !has("headers") && !has("paths") && !has("snis") {
				entityErr(errs, "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'")
			}
		case containsStr(protos, "http"):
			if !has("methods") && !has("hosts") && !has("headers") && !has("paths") {
				entityErr(errs, "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' is 'http'")
			}
		}
		if has("snis") && !containsStr(protos, "https") && !containsStr(protos, "grpcs") && !containsStr(protos, "tls") && !containsStr(protos, "tls_passthrough") {
			entityErr(errs, "'snis' can only be set when 'protocols' is 'grpcs', 'https', 'tls' or 'tls_passthrough'")
		}
	},
}

// kongHashOn is the upstream hash_on / hash_fallback enum.
var kongHashOn = []string{"none", "consumer", "ip", "header", "cookie", "path", "query_arg", "uri_capture"}

var kongUpstreamSchema = &kSchema{
	name: "upstreams",
	fields: []*kField{
		kongID(),
		kongTimestamp("created_at"),
		kStr("name").req().validator(checkUpstreamName),
		kongTimestamp("updated_at"),
		kStr("algorithm").enum("consistent-hashing", "least-connections", "round-robin", "latency").withDefault("round-robin"),
		kStr("hash_on").enum(kongHashOn...).withDefault("none"),
		kStr("hash_fallback").enum(kongHashOn...).withDefault("none"),
		kStr("hash_on_header").validator(checkHeaderName),
		kStr("hash_fallback_header").validator(checkHeaderName),
		kStr("hash_on_cookie").validator(checkCookieName),
		(&kField{name: "hash_on_cookie_path", typ: kString, startsWith: "/"}).validator(checkKongPath).withDefault("/"),
		&kField{name: "hash_on_query_arg", typ: kString, lenMin: 1},
		&kField{name: "hash_fallback_query_arg", typ: kString, lenMin: 1},
		&kField{name: "hash_on_uri_capture", typ: kString, lenMin: 1},
		&kField{name: "hash_fallback_uri_capture", typ: kString, lenMin: 1},
		kInt("slots", 10, 1<<16).withDefault(num(10000)),
		kRec("healthchecks",
			kRec("active",
				kStr("type").enum("tcp", "http", "https", "grpc", "grpcs").withDefault("http"),
				kNum("timeout", 0, 65535).withDefault(num(1)),
				kInt("concurrency", 1, 1<<31).withDefault(num(10)),
				(&kField{name: "http_path", typ: kString, startsWith: "/"}).validator(checkKongPath).withDefault("/"),
				kStr("https_sni"),
				kBool("https_verify_certificate").withDefault(true),
				(&kField{name: "headers", typ: kMap, elem: kArr("", kStr(""))}).validator(checkHeaderName),
				kRec("healthy",
					kNum("interval", 0, 65535).withDefault(num(0)),
					statuses("http_statuses", 200, 302),
					kInt("successes", 0, 255).withDefault(num(0)),
				),
				kRec("unhealthy",
					kNum("interval", 0, 65535).withDefault(num(0)),
					statuses("http_statuses", 429, 404, 500, 501, 502, 503, 504, 505),
					kInt("tcp_failures", 0, 255).withDefault(num(0)),
					kInt("timeouts", 0, 255).withDefault(num(0)),
					kInt("http_failures", 0, 255).withDefault(num(0)),
				),
			),
			kRec("passive",
				kStr("type").enum("tcp", "http", "https", "grpc", "grpcs").withDefault("http"),
				kRec("healthy",
					statuses("http_statuses", 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 306, 307, 308),
					kInt("successes", 0, 255).withDefault(num(0)),
				),
				kRec("unhealthy",
					statuses("http_statuses", 429, 500, 503),
					kInt("tcp_failures", 0, 255).withDefault(num(0)),
					kInt("timeouts", 0, 255).withDefault(num(0)),
					kInt("http_failures", 0, 255).withDefault(num(0)),
				),
			),
			kNum("threshold", 0, 100).withDefault(num(0)),
		),
		kongTags(),
		kStr("host_header").validator(checkKongHostPort),
		{name: "client_certificate", typ: kForeign},
		kBool("use_srv_name").withDefault(false),
	},
	entity: checkUpstreamHashing,
}

func checkUpstreamName(v any) string {
	s := v.(string)
	_, _, hasPort, isIP, ok := splitKongHost(s)
	switch {
	case !ok:
		return "Invalid name ('" + s + "'); must be a valid hostname"
	case isIP:
		return "Invalid name ('" + s + "'); no ip addresses allowed"
	case hasPort:
		return "Invalid name ('" + s + "'); no port allowed"
	}
	return ""
}

// checkUpstreamHashing is the upstream schema's entity_checks.
func checkUpstreamHashing(o map[string]any, errs map[string]any) {
	on, _ := o["hash_on"].(string)
	fb, _ := o["hash_fallback"].(string)
	cond := func(ifField, thenField, msg string) {
		entityErr(errs, "failed conditional validation given value of field '"+ifField+"'")
		errs[thenField] = msg
	}
	// The field each hash mode needs, in the order of Kong's entity checks
	// (the order of its error messages).
	for _, c := range [...]struct{ ifField, mode, thenField string }{
		{"hash_on", "header", "hash_on_header"},
		{"hash_fallback", "header", "hash_fallback_header"},
		{"hash_on", "cookie", "hash_on_cookie"},
		{"hash_fallback", "cookie", "hash_on_cookie"},
		{"hash_on", "query_arg", "hash_on_query_arg"},
		{"hash_fallback", "query_arg", "hash_fallback_query_arg"},
		{"hash_on", "uri_capture", "hash_on_uri_capture"},
		{"hash_fallback", "uri_capture", "hash_fallback_uri_capture"},
	} {
		if mode, _ := o[c.ifField].(string); mode == c.mode && o[c.thenField] == nil {
			cond(c.ifField, c.thenField, "required field missing")
		}
	}
	allowed := map[string][]string{
		"none":     {"none"},
		"cookie":   {"none"},
		"consumer": {"none", "ip", "header", "cookie", "path", "query_arg", "uri_capture"},
		"ip":       {"none", "consumer", "header", "cookie", "path", "query_arg", "uri_capture"},
		"path":     {"none", "consumer", "header", "cookie", "query_arg", "ip", "uri_capture"},
	}
	if list, ok := allowed[on]; ok && !containsStr(list, fb) {
		cond("hash_on", "hash_fallback", "expected one of: "+strings.Join(list, ", "))
	}
	for _, pair := range [][2]string{
		{"hash_on_header", "hash_fallback_header"},
		{"hash_on_query_arg", "hash_fallback_query_arg"},
		{"hash_on_uri_capture", "hash_fallback_uri_capture"},
	} {
		a, b := o[pair[0]], o[pair[1]]
		if a != nil && b != nil && a == b {
			entityErr(errs, "values of these fields must be distinct: '"+pair[0]+"', '"+pair[1]+"'")
		}
	}
}

var kongTargetSchema = &kSchema{
	name: "targets",
	fields: []*kField{
		kongID(),
		{name: "created_at", typ: kNumber},
		{name: "updated_at", typ: kNumber},
		{name: "upstream", typ: kForeign, required: true},
		kStr("target").req().validator(checkTarget),
		kInt("weight", 0, 65535).withDefault(num(100)),
		kongTags(),
	},
}

func checkTarget(v any) string {
	s := v.(string)
	if _, _, _, _, ok := splitKongHost(s); !ok {
		return "Invalid target ('" + s + "'); not a valid hostname or ip address"
	}
	return ""
}

// NormalizeKongTarget returns a target "host:port" as Kong stores it: the
// port defaults to 8000 and IPv6 addresses are bracketed.
func NormalizeKongTarget(s string) (string, bool) {
	host, port, hasPort, _, ok := splitKongHost(s)
	if !ok {
		return "", false
	}
	if !hasPort {
		port = 8000
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(port), true
}

func kongSchemaOf(kind Kind) *kSchema {
	switch kind {
	case KindKongServices:
		return kongServiceSchema
	case KindKongRoutes:
		return kongRouteSchema
	case KindKongUpstreams:
		return kongUpstreamSchema
	case KindKongTargets:
		return kongTargetSchema
	}
	return nil
}

// ApplyKongShorthands rewrites Kong's shorthand fields of an input object
// in place, as Kong does before validation: a service's `url` becomes
// protocol, host, port and path; an upstream's `algorithm` least-connections
// or latency clears hash_on, and an explicit `hash_on` sets the algorithm
// (none → round-robin, anything else → consistent-hashing). It returns a
// schema error for an unparsable url.
func ApplyKongShorthands(kind Kind, obj map[string]any) *KongError {
	switch kind {
	case KindKongServices:
		raw, ok := obj["url"]
		if !ok {
			return nil
		}
		delete(obj, "url")
		s, isStr := raw.(string)
		if !isStr {
			return KongSchemaError(map[string]any{"url": "expected a string"})
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" && u.Scheme == "" {
			return KongSchemaError(map[string]any{"url": "invalid url: " + s})
		}
		proto := u.Scheme
		port := u.Port()
		if proto == "" {
			switch port {
			case "443":
				proto = "https"
			default:
				proto = "http"
			}
		}
		obj["protocol"] = proto
		if h := u.Hostname(); h != "" {
			obj["host"] = h
		} else {
			obj["host"] = nil
		}
		switch {
		case port != "":
			obj["port"] = json.Number(port)
		case proto == "https":
			obj["port"] = num(443)
		default:
			obj["port"] = num(80)
		}
		if u.EscapedPath() != "" {
			obj["path"] = u.EscapedPath()
		} else {
			obj["path"] = nil
		}
	case KindKongUpstreams:
		if a, ok := obj["algorithm"].(string); ok && (a == "least-connections" || a == "latency") {
			obj["hash_on"] = nil
		}
		if h, ok := obj["hash_on"]; ok {
			switch h {
			case nil:
				obj["hash_on"] = "none"
			case "none":
				obj["algorithm"] = "round-robin"
			default:
				obj["algorithm"] = "consistent-hashing"
			}
		}
	}
	return nil
}

// NormalizeKong validates an input object of a Kong kind (after
// ApplyKongShorthands) and returns the entity as Kong stores it, every
// field present. It does not look at other entities (uniqueness and
// references are the caller's), and it accepts what this gateway cannot
// serve; KongUnsupported reports that.
func NormalizeKong(kind Kind, obj map[string]any) (map[string]any, *KongError) {
	s := kongSchemaOf(kind)
	if s == nil {
		return nil, NewKongError(KongSchemaViolation, "unknown entity kind "+string(kind), nil)
	}
	out, errs := s.process(obj)
	if errs != nil {
		return nil, KongSchemaError(errs)
	}
	if kind == KindKongTargets {
		t, _ := NormalizeKongTarget(out["target"].(string))
		out["target"] = t
	}
	return out, nil
}

// InferKong converts the strings of a form-decoded object into the types
// the kind's schema expects, as Kong's arguments.infer does: "" becomes
// null, numbers and booleans are parsed, a scalar given for an array
// becomes a one-item array, and records and maps are walked. Values that
// do not parse are left as they are (validation then names them).
func InferKong(kind Kind, obj map[string]any) {
	s := kongSchemaOf(kind)
	if s == nil {
		return
	}
	for _, f := range s.fields {
		if v, ok := obj[f.name]; ok {
			obj[f.name] = inferValue(v, f)
		}
	}
	for k, v := range obj {
		if str, ok := v.(string); ok && str == "" && s.field(k) == nil {
			obj[k] = nil // shorthands such as url
		}
	}
}

func inferValue(v any, f *kField) any {
	if s, ok := v.(string); ok && s == "" {
		return nil
	}
	switch f.typ {
	case kInteger, kNumber:
		if s, ok := v.(string); ok {
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return json.Number(s)
			}
		}
	case kBoolean:
		switch v {
		case "true":
			return true
		case "false":
			return false
		}
	case kArray, kSet:
		l, ok := v.([]any)
		if !ok {
			if _, isMap := v.(map[string]any); isMap {
				return v
			}
			l = []any{v}
		}
		for i, e := range l {
			l[i] = inferValue(e, f.elem)
		}
		return l
	case kRecord:
		if m, ok := v.(map[string]any); ok {
			for _, sub := range f.fields {
				if e, ok := m[sub.name]; ok {
					m[sub.name] = inferValue(e, sub)
				}
			}
		}
	case kMap:
		if m, ok := v.(map[string]any); ok {
			for k, e := range m {
				m[k] = inferValue(e, f.elem)
			}
		}
	}
	return v
}

func stringList(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
