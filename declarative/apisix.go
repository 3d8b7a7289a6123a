package declarative

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/edgeway/gateway/core"
)

// apisixUnsupported are the other top-level lists of APISIX's standalone
// file; a non-empty one is refused rather than ignored.
var apisixUnsupported = map[string]bool{
	"consumers": true, "credentials": true, "global_rules": true, "plugin_configs": true,
	"plugin_metadata": true, "plugins": true, "protos": true, "stream_routes": true,
	"consumer_groups": true, "secrets": true,
}

// endsWithEND reports whether the last non-blank line is "#END".
func endsWithEND(src []byte) bool {
	lines := bytes.Split(bytes.TrimRight(src, " \t\r\n"), []byte("\n"))
	return len(lines) > 0 && string(bytes.TrimSpace(lines[len(lines)-1])) == "#END"
}

// propertyRe finds the property a schema message is about.
var propertyRe = regexp.MustCompile(`^property "([^"]+)" validation failed: `)

// propertyPath points at the (nested) property a validation message
// names, as deep as the object has it.
func propertyPath(p path, obj map[string]any, msg string) path {
	for {
		m := propertyRe.FindStringSubmatch(msg)
		if m == nil {
			return p
		}
		v, ok := obj[m[1]]
		if !ok {
			return p
		}
		p = p.with(m[1])
		msg = msg[len(m[0]):]
		if obj, ok = v.(map[string]any); !ok {
			return p
		}
	}
}

// pickerAvailable refuses an upstream whose balancer type this build does
// not have (the schema knows all four APISIX types).
func pickerAvailable(u *core.Upstream) error {
	if u != nil && !core.PickerRegistered(u.Type) {
		return fmt.Errorf("balancer type %s is not available in this build", u.Type)
	}
	return nil
}

// apisixItem is one validated object of the file.
type apisixItem struct {
	kind  core.Kind
	id    string
	p     path
	obj   map[string]any
	route *core.Route
	svc   *core.Service
	up    *core.Upstream
	ssl   *core.SSL
}

// loadAPISIX loads APISIX's standalone format (apisix/core/config_yaml.lua):
// objects keep their shapes, `id` inline (an object without one gets its
// 1-based position in its list).
func loadAPISIX(d *doc) {
	if !d.isJSON && !endsWithEND(d.src) {
		d.fail(nil, "the file does not end with a #END line: it is incomplete (APISIX ignores such a file, as it may still be being written)")
		return
	}
	if len(d.values) != 1 {
		d.fail(path{1}, "an APISIX standalone file holds one YAML document")
		return
	}
	top, ok := asMap(d.values[0])
	if !ok {
		d.fail(path{0}, "expected an object with routes, upstreams, services and ssls")
		return
	}
	var items []*apisixItem
	ids := map[core.Kind]map[string]bool{}
	for _, key := range sortedKeys(top) {
		p := path{0, key}
		v := top[key]
		var kind core.Kind
		switch {
		case key == "routes":
			kind = core.KindRoutes
		case key == "upstreams":
			kind = core.KindUpstreams
		case key == "services":
			kind = core.KindServices
		case key == "ssls":
			kind = core.KindSSLs
		case strings.HasSuffix(key, "_conf_version"):
			continue
		case apisixUnsupported[key]:
			if l, _ := asList(v); len(l) > 0 {
				d.fail(p, "%s are not supported by this gateway", key)
			}
			continue
		default:
			d.fail(p, "unknown top-level key %q (expected routes, upstreams, services, ssls)", key)
			continue
		}
		if v == nil {
			continue
		}
		list, ok := asList(v)
		if !ok {
			d.fail(p, "%s must be a list", key)
			continue
		}
		ids[kind] = map[string]bool{}
		for i, e := range list {
			ip := p.with(i)
			obj, ok := asMap(e)
			if !ok {
				d.fail(ip, "a %s must be an object", kind.Singular())
				continue
			}
			id := strconv.Itoa(i + 1)
			if raw, has := obj["id"]; has {
				switch x := raw.(type) {
				case string:
					id = x
				default:
					if n, ok := asInt(x); ok {
						id = strconv.Itoa(n)
					} else {
						d.fail(ip.with("id"), "id must be a string or an integer")
						continue
					}
				}
			}
			if ids[kind][id] {
				d.fail(ip, "duplicate %s id %q", kind.Singular(), id)
				continue
			}
			ids[kind][id] = true
			obj["id"] = id
			items = append(items, &apisixItem{kind: kind, id: id, p: ip, obj: obj})
		}
	}
	for _, it := range items {
		value := marshal(it.obj)
		var err error
		switch it.kind {
		case core.KindRoutes:
			if it.route, err = core.ParseRoute(value); err == nil {
				err = pickerAvailable(it.route.Upstream)
			}
		case core.KindUpstreams:
			if it.up, err = core.ParseUpstream(value); err == nil {
				err = pickerAvailable(it.up)
			}
		case core.KindServices:
			if it.svc, err = core.ParseService(value); err == nil {
				err = pickerAvailable(it.svc.Upstream)
			}
		case core.KindSSLs:
			it.ssl, err = core.ParseSSL(value)
		}
		if err != nil {
			d.fail(propertyPath(it.p, it.obj, err.Error()), "%s %s: %s", it.kind.Singular(), it.id, core.AdminMessage(err))
			continue
		}
		d.put(core.Key(it.kind, it.id), value)
		d.res.Counts[string(it.kind)]++
	}
	// References, as the Admin API checks them when an object is written.
	ref := func(it *apisixItem, field string, kind core.Kind, id string) {
		if id != "" && !ids[kind][id] {
			d.fail(it.p.with(field), "%s %s: %s %s does not exist", it.kind.Singular(), it.id, kind.Singular(), id)
		}
	}
	// An upstream's tls.client_cert_id must name an SSL of type client.
	sslTypes := map[string]string{}
	for _, it := range items {
		if it.ssl != nil {
			sslTypes[it.id] = it.ssl.Type
		}
	}
	clientCert := func(it *apisixItem, field string, u *core.Upstream) {
		if u == nil || u.TLS == nil || u.TLS.ClientCertID == "" {
			return
		}
		switch id := u.TLS.ClientCertID; sslTypes[id] {
		case "client":
		case "":
			d.fail(it.p.with(field), "%s %s: ssl %s does not exist", it.kind.Singular(), it.id, id)
		default:
			d.fail(it.p.with(field), "%s %s: ssl %s is of type %s, not client (wrong ssl type)", it.kind.Singular(), it.id, id, sslTypes[id])
		}
	}
	for _, it := range items {
		switch {
		case it.route != nil:
			ref(it, "upstream_id", core.KindUpstreams, it.route.UpstreamID)
			ref(it, "service_id", core.KindServices, it.route.ServiceID)
			for _, w := range it.route.Split {
				ref(it, "plugins", core.KindUpstreams, w.UpstreamID)
			}
			clientCert(it, "upstream", it.route.Upstream)
		case it.svc != nil:
			ref(it, "upstream_id", core.KindUpstreams, it.svc.UpstreamID)
			clientCert(it, "upstream", it.svc.Upstream)
		case it.up != nil:
			clientCert(it, "tls", it.up)
		}
	}
}
