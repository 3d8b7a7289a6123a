package core

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

// routeProps are the properties of APISIX's route schema
// (apisix/schema_def.lua _M.route). Some are refused later as unsupported.
var routeProps = append(slices.Clone(metadataProps),
	"uri", "uris", "priority", "methods", "host", "hosts", "remote_addr", "remote_addrs",
	"timeout", "vars", "filter_func", "script", "script_id", "plugins", "plugin_config_id",
	"upstream", "service_id", "upstream_id", "enable_websocket", "status")

// serviceProps are the properties of APISIX's service schema (_M.service).
var serviceProps = append(slices.Clone(metadataProps),
	"plugins", "upstream", "upstream_id", "script", "enable_websocket", "hosts")

var uriRule = strRule{minLen: 1, maxLen: 4096}

// ParseRoute validates an APISIX route object (the JSON value as stored,
// which may include "id", "create_time" and "update_time") and returns the
// model with defaults filled (status 1, priority 0).
//
// Every failure is a *ValidationError worded as APISIX words it. Features
// this gateway does not have (plugins, plugin_config_id, filter_func,
// script) are refused rather than ignored; an empty `plugins` object is
// accepted.
func ParseRoute(body []byte) (*Route, error) {
	v, verr := decodeJSON(body)
	if verr != nil {
		return nil, verr
	}
	r, verr := parseRoute(v)
	if verr != nil {
		return nil, verr
	}
	return r, nil
}

// ParseService validates an APISIX service object and returns the model.
// Like ParseRoute it refuses non-empty plugins and script.
func ParseService(body []byte) (*Service, error) {
	v, verr := decodeJSON(body)
	if verr != nil {
		return nil, verr
	}
	s, verr := parseService(v)
	if verr != nil {
		return nil, verr
	}
	return s, nil
}

func parseRoute(v any) (*Route, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	// APISIX checks these two pairs before the schema (apisix/admin/routes.lua).
	if o.has("host") && o.has("hosts") {
		return nil, bare("only one of host or hosts is allowed")
	}
	if o.has("remote_addr") && o.has("remote_addrs") {
		return nil, bare("only one of remote_addr or remote_addrs is allowed")
	}

	r := &Route{Status: 1}
	md := parseMetadata(o)
	r.ID, r.Name, r.Desc, r.Labels = md.id, md.name, md.desc, md.labels
	if s, ok := field(o, "uri", uriRule.parse); ok {
		r.URIs = []string{s}
	}
	if l, ok := field(o, "uris", parseURIs); ok {
		r.URIs = l
	}
	r.Priority, _ = field(o, "priority", anyNumber.integer)
	r.Methods, _ = field(o, "methods", parseMethods)
	if h, ok := field(o, "host", hostRule.parse); ok {
		r.Hosts = []string{strings.ToLower(h)}
	}
	if l, ok := field(o, "hosts", parseHosts); ok {
		r.Hosts = l
	}
	if p, ok := field(o, "remote_addr", parseRemoteAddr); ok {
		r.RemoteAddrs = []netip.Prefix{p}
	}
	if l, ok := field(o, "remote_addrs", parseRemoteAddrs); ok {
		r.RemoteAddrs = l
	}
	r.Timeout, _ = field(o, "timeout", parseTimeout)
	vars, hasVars := field(o, "vars", asArray)
	plugins, _ := field(o, "plugins", asObject)
	r.Upstream, _ = field(o, "upstream", parseUpstream)
	r.UpstreamID, _ = field(o, "upstream_id", parseID)
	r.ServiceID, _ = field(o, "service_id", parseID)
	r.EnableWebsocket, _ = field(o, "enable_websocket", asBool)
	r.Status = fieldOr(o, "status", parseStatus, r.Status)
	o.closed(routeProps)
	if o.err != nil {
		return nil, o.err
	}

	switch {
	case o.has("uri") && o.has("uris"):
		return nil, invalid("only one of uri or uris is allowed")
	case !o.has("uri") && !o.has("uris"):
		return nil, invalid("value should match only one schema, but matches none")
	}
	if split, ok := plugins["traffic-split"]; ok {
		ws, err := parseTrafficSplit(split)
		if err != nil {
			return nil, err.inProperty("traffic-split").inProperty("plugins")
		}
		r.Split = ws
		plugins = maps.Clone(plugins)
		delete(plugins, "traffic-split")
	}
	if err := refuseUnsupported(o, plugins, "plugin_config_id", "filter_func", "script", "script_id"); err != nil {
		return nil, err
	}
	if r.Upstream == nil && r.UpstreamID == "" && r.ServiceID == "" {
		return nil, invalid("route must have one of upstream, upstream_id or service_id")
	}
	if hasVars {
		e, err := ParseExpr(numbersToFloat(vars))
		if err != nil {
			return nil, bare("failed to validate the 'vars' expression: %v", err)
		}
		r.Vars = e
	}
	return r, nil
}

func parseService(v any) (*Service, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	s := &Service{}
	md := parseMetadata(o)
	s.ID, s.Name, s.Desc, s.Labels = md.id, md.name, md.desc, md.labels
	plugins, _ := field(o, "plugins", asObject)
	s.Upstream, _ = field(o, "upstream", parseUpstream)
	s.UpstreamID, _ = field(o, "upstream_id", parseID)
	s.EnableWebsocket, _ = field(o, "enable_websocket", asBool)
	s.Hosts, _ = field(o, "hosts", parseHosts)
	o.closed(serviceProps)
	if o.err != nil {
		return nil, o.err
	}
	if err := refuseUnsupported(o, plugins, "script"); err != nil {
		return nil, err
	}
	return s, nil
}

// parseTrafficSplit checks the one form of APISIX's traffic-split plugin
// this gateway serves, the one the ingress controller emits: a single rule
// without `match`, whose weighted_upstreams name stored upstreams by
// upstream_id (or, without one, the route's own upstream), each with a
// weight ≥ 0 (default 1, as the plugin's schema).
func parseTrafficSplit(v any) ([]WeightedUpstream, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	rules, _ := field(o, "rules", func(v any) ([]any, *ValidationError) { return asArray(v) })
	o.require("rules")
	o.closed([]string{"rules"})
	if o.err != nil {
		return nil, o.err
	}
	if len(rules) != 1 {
		return nil, invalid("property \"rules\" validation failed: only one rule is supported by this gateway")
	}
	ro, err := newObject(rules[0])
	if err != nil {
		return nil, err.inItem(0).inProperty("rules")
	}
	if m, ok := ro.m["match"]; ok {
		if l, _ := m.([]any); len(l) > 0 {
			return nil, invalid("match conditions are not supported by this gateway")
		}
	}
	ws, _ := field(ro, "weighted_upstreams", func(v any) ([]WeightedUpstream, *ValidationError) {
		return arrayOf(v, 1, parseWeightedUpstream)
	})
	ro.require("weighted_upstreams")
	ro.closed([]string{"match", "weighted_upstreams"})
	if ro.err != nil {
		return nil, ro.err.inItem(0).inProperty("rules")
	}
	return ws, nil
}

func parseWeightedUpstream(v any) (WeightedUpstream, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return WeightedUpstream{}, err
	}
	var w WeightedUpstream
	w.UpstreamID, _ = field(o, "upstream_id", parseID)
	w.Weight = fieldOr(o, "weight", atLeast(0).integer, 1)
	if o.has("upstream") {
		o.fail("upstream", invalid("inline upstreams are not supported by this gateway; use upstream_id"))
	}
	o.closed([]string{"upstream_id", "weight", "upstream"})
	return w, o.err
}

// refuseUnsupported fails for a non-empty plugins object, naming the
// plugins, and for the first of the other properties that is present.
func refuseUnsupported(o *object, plugins map[string]any, others ...string) *ValidationError {
	if len(plugins) > 0 {
		names := make([]string, 0, len(plugins))
		for name := range plugins {
			names = append(names, name)
		}
		slices.Sort(names)
		return bare("plugins are not supported by this gateway: %s", strings.Join(names, ", "))
	}
	for _, name := range others {
		if o.has(name) {
			return bare("%s is not supported by this gateway", name)
		}
	}
	return nil
}

// parseURIs checks `uris`: at least one unique string.
func parseURIs(v any) ([]string, *ValidationError) {
	return uniqueArrayOf(v, 1, asString)
}

// parseMethods checks `methods` (unique names from MethodNames) and returns
// the set; an empty array means any method.
func parseMethods(v any) (MethodSet, *ValidationError) {
	names, err := uniqueArrayOf(v, 0, methodRule.parse)
	if err != nil {
		return 0, err
	}
	var set MethodSet
	for _, m := range names {
		set |= MethodBit([]byte(m))
	}
	return set, nil
}

// parseStatus checks `status`: the integer 1 or 0.
func parseStatus(v any) (int, *ValidationError) {
	n, err := anyNumber.integer(v)
	if err != nil {
		return 0, err
	}
	if n != 0 && n != 1 {
		return 0, errNotInEnum
	}
	return n, nil
}

// remoteAddrString checks one remote address (an IP or a CIDR) and returns
// it unparsed, so that uniqueness is judged on the text as APISIX does.
func remoteAddrString(v any) (string, *ValidationError) {
	s, err := asString(v)
	if err != nil {
		return "", err
	}
	if _, perr := ParsePrefix(s); perr != nil {
		return "", invalid("%v", perr)
	}
	if strings.Contains(s, "%") {
		// ParsePrefix drops an IPv6 zone; APISIX refuses one.
		return "", invalid("invalid IP %s", luaQuote(s))
	}
	return s, nil
}

func parseRemoteAddr(v any) (netip.Prefix, *ValidationError) {
	s, err := remoteAddrString(v)
	if err != nil {
		return netip.Prefix{}, err
	}
	p, _ := ParsePrefix(s)
	return p, nil
}

// parseRemoteAddrs checks `remote_addrs`: at least one unique IP or CIDR.
func parseRemoteAddrs(v any) ([]netip.Prefix, *ValidationError) {
	addrs, err := uniqueArrayOf(v, 1, remoteAddrString)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, len(addrs))
	for i, s := range addrs {
		out[i], _ = ParsePrefix(s)
	}
	return out, nil
}

// parseHosts checks a `hosts` array (at least one unique host) and returns
// the hosts lower-cased.
func parseHosts(v any) ([]string, *ValidationError) {
	hosts, err := uniqueArrayOf(v, 1, hostRule.parse)
	if err != nil {
		return nil, err
	}
	for i, h := range hosts {
		hosts[i] = strings.ToLower(h)
	}
	return hosts, nil
}

// numbersToFloat returns a copy of a decoded value with every json.Number
// turned into a float64, the form ParseExpr expects.
func numbersToFloat(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := strconv.ParseFloat(string(x), 64)
		return f
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = numbersToFloat(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = numbersToFloat(e)
		}
		return out
	}
	return v
}
