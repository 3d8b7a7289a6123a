package declarative

import (
	"encoding/json"
	"fmt"
	"hash/crc32"
	"regexp"
	"strconv"
	"strings"

	"github.com/edgeway/gateway/core"
)

// APISIX Ingress Controller resources (apisix.apache.org/v2) loaded without
// a cluster, translated as the controller translates them
// (internal/adc/translator/apisix{route,upstream}.go): an ApisixUpstream
// becomes an upstream `<namespace>_<name>`; each http rule of an
// ApisixRoute becomes a route `<namespace>_<route>_<rule>` whose upstream
// is the rule's first upstream, and, when the rule names several, an
// APISIX traffic-split over all of them by their weights (default 100).
//
// Only what needs no cluster is accepted: upstreams with externalNodes
// (Domain names, or Service names resolved through a v1 Service of type
// ExternalName in the same file). backends (Kubernetes Services and their
// endpoints), discovery, subsets, TLS secrets, plugins, authentication and
// stream rules are refused with a message.

const apisixV2 = "apisix.apache.org/v2"

// apisixID is APISIX's id pattern.
var apisixID = regexp.MustCompile(`^[a-zA-Z0-9-_.]+$`)

// resourceID returns name as an APISIX id, or its CRC32 (as the controller
// names its objects) when it is too long or has other characters.
func resourceID(name string) string {
	if len(name) <= 64 && apisixID.MatchString(name) {
		return name
	}
	return fmt.Sprintf("%08x", crc32.ChecksumIEEE([]byte(name)))
}

// resource is one Kubernetes document.
type resource struct {
	p          path
	kind       string
	name, ns   string
	spec       map[string]any
	upstreamID string // the translated upstream's id (ApisixUpstream)
}

func loadIngress(d *doc) {
	var upstreams, routes []*resource
	byName := map[string]*resource{} // "ns/name" of ApisixUpstreams
	externalNames := map[string]string{}
	for i, v := range d.values {
		p := path{i}
		if v == nil {
			continue
		}
		m, ok := asMap(v)
		if !ok {
			d.fail(p, "a document must be a Kubernetes resource (an object with apiVersion and kind)")
			continue
		}
		api, _ := asString(m["apiVersion"])
		kind, _ := asString(m["kind"])
		md, _ := asMap(m["metadata"])
		name, _ := asString(md["name"])
		ns, _ := asString(md["namespace"])
		if ns == "" {
			ns = "default"
		}
		if name == "" {
			d.fail(p.with("metadata"), "%s: metadata.name is required", kind)
			continue
		}
		spec, _ := asMap(m["spec"])
		r := &resource{p: p, kind: kind, name: name, ns: ns, spec: spec}
		switch {
		case api == apisixV2 && kind == "ApisixUpstream":
			upstreams = append(upstreams, r)
			byName[ns+"/"+name] = r
		case api == apisixV2 && kind == "ApisixRoute":
			routes = append(routes, r)
		case api == "v1" && kind == "Service":
			if t, _ := asString(spec["type"]); t == "ExternalName" {
				if en, _ := asString(spec["externalName"]); en != "" {
					externalNames[ns+"/"+name] = en
				}
			}
		default:
			d.fail(p.with("kind"), "%s %s is not supported in a standalone file (ApisixUpstream and ApisixRoute of %s are)", api, kind, apisixV2)
		}
	}
	for _, r := range upstreams {
		translateApisixUpstream(d, r, externalNames)
	}
	for _, r := range routes {
		translateApisixRoute(d, r, byName)
	}
}

// checkKeys fails for keys of m not in known (a misspelt field must not
// pass unnoticed) and for known ones this gateway refuses (reason given).
func checkKeys(d *doc, p path, m map[string]any, known []string, refused map[string]string) bool {
	ok := true
	for _, k := range sortedKeys(m) {
		if reason, bad := refused[k]; bad {
			d.fail(p.with(k), "%s is not supported: %s", k, reason)
			ok = false
			continue
		}
		found := false
		for _, kk := range known {
			if k == kk {
				found = true
				break
			}
		}
		if !found {
			d.fail(p.with(k), "unknown field %q", k)
			ok = false
		}
	}
	return ok
}

var upstreamSpecKeys = []string{"ingressClassName", "externalNodes", "loadbalancer", "scheme", "retries", "timeout",
	"healthCheck", "passHost", "upstreamHost"}

var upstreamRefused = map[string]string{
	"discovery":         "ApisixUpstream discovery is not translated yet (an APISIX upstream with discovery_type dns is served; see docs/discovery.md)",
	"tlsSecret":         "TLS secrets need a Kubernetes cluster (client certificates to upstreams are not supported yet)",
	"portLevelSettings": "port-level settings apply to Kubernetes Service backends, which need a cluster",
	"subsets":           "subsets select Kubernetes pods, which need a cluster",
}

func translateApisixUpstream(d *doc, r *resource, externalNames map[string]string) {
	sp := r.p.with("spec")
	if r.spec == nil {
		d.fail(r.p, "ApisixUpstream %s/%s has no spec", r.ns, r.name)
		return
	}
	if !checkKeys(d, sp, r.spec, upstreamSpecKeys, upstreamRefused) {
		return
	}
	fullName := r.ns + "_" + r.name
	id := resourceID(fullName)
	u := map[string]any{"id": id, "name": fullName}
	scheme, _ := asString(r.spec["scheme"])
	if scheme == "" {
		scheme = "http"
	}
	u["scheme"] = scheme
	if lb, ok := asMap(r.spec["loadbalancer"]); ok {
		if !checkKeys(d, sp.with("loadbalancer"), lb, []string{"type", "hashOn", "key"}, nil) {
			return
		}
		if t, ok := asString(lb["type"]); ok {
			u["type"] = t
		}
		if h, ok := asString(lb["hashOn"]); ok {
			u["hash_on"] = h
		}
		if k, ok := asString(lb["key"]); ok {
			u["key"] = k
		}
	}
	if v, ok := r.spec["retries"]; ok {
		u["retries"] = v
	}
	if t, ok := asMap(r.spec["timeout"]); ok {
		to, err := timeoutObject(t)
		if err != nil {
			d.fail(sp.with("timeout"), "%v", err)
			return
		}
		u["timeout"] = to
	}
	if ph, ok := asString(r.spec["passHost"]); ok {
		u["pass_host"] = ph
	}
	if uh, ok := asString(r.spec["upstreamHost"]); ok {
		u["upstream_host"] = uh
	}
	if hc, ok := asMap(r.spec["healthCheck"]); ok {
		checks, err := healthCheck(hc)
		if err != nil {
			d.fail(sp.with("healthCheck"), "%v", err)
			return
		}
		u["checks"] = checks
	}
	nodesList, _ := asList(r.spec["externalNodes"])
	if len(nodesList) == 0 {
		d.fail(sp, "ApisixUpstream %s/%s has no externalNodes: without a Kubernetes cluster, nodes must be listed there", r.ns, r.name)
		return
	}
	defPort := 80
	if scheme == "https" || scheme == "grpcs" {
		defPort = 443
	}
	var nodes []any
	for i, e := range nodesList {
		np := sp.with("externalNodes", i)
		n, ok := asMap(e)
		if !ok {
			d.fail(np, "an external node must be an object")
			return
		}
		if !checkKeys(d, np, n, []string{"type", "name", "weight", "port"}, nil) {
			return
		}
		host, _ := asString(n["name"])
		switch t, _ := asString(n["type"]); t {
		case "", "Domain":
		case "Service":
			en, ok := externalNames[r.ns+"/"+host]
			if !ok {
				d.fail(np, "external node of type Service %q: no v1 Service of type ExternalName with that name in namespace %s in this file", host, r.ns)
				return
			}
			host = en
		default:
			d.fail(np.with("type"), "external node type %q is not Domain or Service", t)
			return
		}
		if host == "" {
			d.fail(np, "an external node needs a name")
			return
		}
		node := map[string]any{"host": host, "weight": json.Number("100"), "port": json.Number(strconv.Itoa(defPort))}
		if w, ok := n["weight"]; ok {
			node["weight"] = w
		}
		if p, ok := n["port"]; ok {
			node["port"] = p
		}
		nodes = append(nodes, node)
	}
	u["nodes"] = nodes
	value := marshal(u)
	parsed, err := core.ParseUpstream(value)
	if err != nil {
		d.fail(sp, "ApisixUpstream %s/%s: %s", r.ns, r.name, core.AdminMessage(err))
		return
	}
	if !core.PickerRegistered(parsed.Type) {
		d.fail(sp.with("loadbalancer"), "ApisixUpstream %s/%s: balancer type %s is not available in this build", r.ns, r.name, parsed.Type)
		return
	}
	r.upstreamID = id
	d.put(core.Key(core.KindUpstreams, id), value)
	d.res.Counts["upstreams"]++
}

var ruleKeys = []string{"name", "priority", "timeout", "match", "upstreams", "websocket"}

var ruleRefused = map[string]string{
	"backends":           "Kubernetes Service backends need a cluster; list the nodes in an ApisixUpstream's externalNodes and name it in upstreams",
	"plugins":            "plugins are not supported by this gateway",
	"plugin_config_name": "plugins are not supported by this gateway",
	"authentication":     "authentication is not supported by this gateway",
}

// exprOps maps the CRD's expression operators onto APISIX's vars
// operators; a leading "!" negates.
var exprOps = map[string]string{
	"Equal": "==", "NotEqual": "~=", "GreaterThan": ">", "GreaterThanEqual": ">=",
	"LessThan": "<", "LessThanEqual": "<=", "RegexMatch": "~~", "RegexMatchCaseInsensitive": "~*",
	"RegexNotMatch": "!~~", "RegexNotMatchCaseInsensitive": "!~*", "In": "in", "NotIn": "!in",
}

func translateApisixRoute(d *doc, r *resource, upstreams map[string]*resource) {
	sp := r.p.with("spec")
	if r.spec == nil {
		d.fail(r.p, "ApisixRoute %s/%s has no spec", r.ns, r.name)
		return
	}
	if !checkKeys(d, sp, r.spec, []string{"ingressClassName", "http"},
		map[string]string{"stream": "stream (TCP/UDP) routes are not supported by this gateway"}) {
		return
	}
	rules, _ := asList(r.spec["http"])
	seen := map[string]bool{}
	for i, e := range rules {
		rp := sp.with("http", i)
		rule, ok := asMap(e)
		if !ok {
			d.fail(rp, "an http rule must be an object")
			continue
		}
		if !checkKeys(d, rp, rule, ruleKeys, ruleRefused) {
			continue
		}
		ruleName, _ := asString(rule["name"])
		if ruleName == "" {
			d.fail(rp, "an http rule needs a name")
			continue
		}
		if seen[ruleName] {
			d.fail(rp.with("name"), "duplicate rule name %q", ruleName)
			continue
		}
		seen[ruleName] = true
		fullName := r.ns + "_" + r.name + "_" + ruleName
		route := map[string]any{"id": resourceID(fullName), "name": fullName}
		match, ok := asMap(rule["match"])
		if !ok {
			d.fail(rp, "rule %s: match.paths is required", ruleName)
			continue
		}
		if !checkKeys(d, rp.with("match"), match, []string{"paths", "hosts", "methods", "remoteAddrs", "exprs"},
			map[string]string{"filter_func": "Lua filter functions are not supported by this gateway"}) {
			continue
		}
		if paths, _ := asList(match["paths"]); len(paths) > 0 {
			route["uris"] = paths
		} else {
			d.fail(rp.with("match"), "rule %s: match.paths is required", ruleName)
			continue
		}
		if v, ok := match["hosts"]; ok {
			route["hosts"] = v
		}
		if v, ok := match["methods"]; ok {
			route["methods"] = v
		}
		if v, ok := match["remoteAddrs"]; ok {
			route["remote_addrs"] = v
		}
		if exprs, ok := asList(match["exprs"]); ok && len(exprs) > 0 {
			vars, err := translateExprs(exprs)
			if err != nil {
				d.fail(rp.with("match", "exprs"), "rule %s: %v", ruleName, err)
				continue
			}
			route["vars"] = vars
		}
		if v, ok := rule["priority"]; ok {
			route["priority"] = v
		}
		if t, ok := asMap(rule["timeout"]); ok {
			to, err := timeoutObject(t)
			if err != nil {
				d.fail(rp.with("timeout"), "rule %s: %v", ruleName, err)
				continue
			}
			route["timeout"] = to
		}
		if ws, ok := rule["websocket"].(bool); ok && ws {
			route["enable_websocket"] = true
		}
		refs, _ := asList(rule["upstreams"])
		if len(refs) == 0 {
			d.fail(rp, "rule %s: upstreams is required (backends need a Kubernetes cluster)", ruleName)
			continue
		}
		var weighted []any
		bad := false
		for j, ref := range refs {
			up := rp.with("upstreams", j)
			m, ok := asMap(ref)
			if !ok {
				d.fail(up, "an upstream reference must be an object with a name")
				bad = true
				continue
			}
			name, _ := asString(m["name"])
			target := upstreams[r.ns+"/"+name]
			if target == nil {
				d.fail(up, "rule %s: ApisixUpstream %s/%s is not in this file (the controller would skip it silently)", ruleName, r.ns, name)
				bad = true
				continue
			}
			if target.upstreamID == "" {
				d.fail(up, "rule %s: ApisixUpstream %s/%s is invalid (see above)", ruleName, r.ns, name)
				bad = true
				continue
			}
			weight := any(json.Number("100"))
			if w, ok := m["weight"]; ok {
				weight = w
			}
			if j == 0 {
				route["upstream_id"] = target.upstreamID
				weighted = append(weighted, map[string]any{"weight": weight})
			} else {
				weighted = append(weighted, map[string]any{"upstream_id": target.upstreamID, "weight": weight})
			}
		}
		if bad {
			continue
		}
		if len(weighted) > 1 {
			route["plugins"] = map[string]any{"traffic-split": map[string]any{
				"rules": []any{map[string]any{"weighted_upstreams": weighted}},
			}}
		}
		value := marshal(route)
		if _, err := core.ParseRoute(value); err != nil {
			d.fail(rp, "ApisixRoute %s/%s rule %s: %s", r.ns, r.name, ruleName, core.AdminMessage(err))
			continue
		}
		d.put(core.Key(core.KindRoutes, route["id"].(string)), value)
		d.res.Counts["routes"]++
	}
}

// translateExprs turns match.exprs into APISIX vars.
func translateExprs(exprs []any) ([]any, error) {
	var vars []any
	for i, e := range exprs {
		m, ok := asMap(e)
		if !ok {
			return nil, fmt.Errorf("exprs[%d] must be an object", i)
		}
		subj, _ := asMap(m["subject"])
		scope, _ := asString(subj["scope"])
		name, _ := asString(subj["name"])
		var v string
		switch scope {
		case "Header":
			v = "http_" + strings.ReplaceAll(strings.ToLower(name), "-", "_")
		case "Query":
			v = "arg_" + name
		case "Cookie":
			v = "cookie_" + name
		case "Path":
			v = "uri"
		case "Variable":
			v = name
		case "Body":
			return nil, fmt.Errorf("exprs[%d]: matching on the request body is not supported by this gateway", i)
		default:
			return nil, fmt.Errorf("exprs[%d]: unknown subject scope %q", i, scope)
		}
		if scope != "Path" && name == "" {
			return nil, fmt.Errorf("exprs[%d]: subject.name is required", i)
		}
		opName, _ := asString(m["op"])
		op, ok := exprOps[opName]
		if !ok {
			return nil, fmt.Errorf("exprs[%d]: unknown operator %q", i, opName)
		}
		item := []any{v}
		if strings.HasPrefix(op, "!") {
			item = append(item, "!")
			op = op[1:]
		}
		item = append(item, op)
		if op == "in" {
			set, ok := asList(m["set"])
			if !ok {
				return nil, fmt.Errorf("exprs[%d]: operator %s needs set", i, opName)
			}
			item = append(item, set)
		} else {
			val, ok := asString(m["value"])
			if !ok {
				return nil, fmt.Errorf("exprs[%d]: operator %s needs value", i, opName)
			}
			item = append(item, val)
		}
		vars = append(vars, item)
	}
	return vars, nil
}
