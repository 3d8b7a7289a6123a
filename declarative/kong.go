package declarative

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/edgeway/gateway/core"
)

// Kong's declarative configuration (kong.yml, `_format_version: "3.0"`):
// services (with nested routes), routes (naming their service), upstreams
// (with nested targets) and targets (naming their upstream). Entities are
// validated by the same Kong schemas as the Admin API and stored as Kong
// entities; entities without an id get one derived from their name (or
// their place in the file), so that reloading an unchanged file changes
// nothing.

var kongTopKeys = map[string]bool{
	"_format_version": true, "_transform": true, "_comment": true, "_info": true, "_workspace": true,
	"services": true, "routes": true, "upstreams": true, "targets": true,
}

// kongUnsupportedTop are other entity lists of Kong's format: refused
// when not empty.
var kongUnsupportedTop = map[string]string{
	"consumers": "consumers", "plugins": "plugins", "certificates": "certificates", "ca_certificates": "CA certificates",
	"snis": "SNIs", "vaults": "vaults", "keys": "keys", "key_sets": "key sets", "filter_chains": "filter chains",
	"parameters": "parameters", "acls": "ACLs", "basicauth_credentials": "credentials", "keyauth_credentials": "credentials",
	"jwt_secrets": "credentials", "hmacauth_credentials": "credentials", "oauth2_credentials": "credentials",
	"mtls_auth_credentials": "credentials",
}

// kongEntity is one entity of the file.
type kongEntity struct {
	kind  core.Kind
	p     path
	obj   map[string]any
	label string // for messages: the name, or the kind and position
}

// declUUID derives a stable UUID (version 5 layout) from a key.
func declUUID(key string) string {
	h := sha1.Sum([]byte("edgeway/declarative/" + key))
	h[6] = h[6]&0x0f | 0x50
	h[8] = h[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

func loadKong(d *doc) {
	if len(d.values) != 1 {
		d.fail(path{1}, "a Kong declarative file holds one YAML document")
		return
	}
	top, ok := asMap(d.values[0])
	if !ok {
		d.fail(path{0}, "expected an object with _format_version")
		return
	}
	v, _ := asString(top["_format_version"])
	if v != "3.0" && v != "2.1" && !strings.HasPrefix(v, "3.") {
		d.fail(path{0, "_format_version"}, "_format_version %q is not supported (use \"3.0\")", v)
		return
	}
	for _, k := range sortedKeys(top) {
		if kongTopKeys[k] {
			continue
		}
		if what, ok := kongUnsupportedTop[k]; ok {
			if l, _ := asList(top[k]); len(l) > 0 {
				d.fail(path{0, k}, "%s are not supported by this gateway", what)
			}
			continue
		}
		d.fail(path{0, k}, "unknown top-level key %q", k)
	}
	if t, ok := top["_transform"].(bool); ok && !t {
		d.fail(path{0, "_transform"}, "_transform: false (pre-hashed credentials) is not supported")
	}

	var ents []*kongEntity
	serviceIDs := map[string]string{}  // name or id → id
	upstreamIDs := map[string]string{} // name or id → id
	add := func(kind core.Kind, p path, obj map[string]any, defaultKey string) *kongEntity {
		e := &kongEntity{kind: kind, p: p, obj: obj}
		name, _ := asString(obj["name"])
		if kind == core.KindKongTargets {
			name, _ = asString(obj["target"])
		}
		e.label = name
		if e.label == "" {
			e.label = strings.TrimPrefix(string(kind), "kong_") + " " + p.String()
		}
		if _, has := obj["id"]; !has {
			key := string(kind) + "/" + defaultKey
			if name != "" && kind != core.KindKongTargets {
				key = string(kind) + "/name/" + name
			}
			obj["id"] = declUUID(key)
		}
		ents = append(ents, e)
		return e
	}
	list := func(p path, v any) []map[string]any {
		if v == nil {
			return nil
		}
		l, ok := asList(v)
		if !ok {
			d.fail(p, "expected a list")
			return nil
		}
		out := make([]map[string]any, len(l))
		for i, e := range l {
			m, ok := asMap(e)
			if !ok {
				d.fail(p.with(i), "expected an object")
				continue
			}
			out[i] = m
		}
		return out
	}
	refuseNested := func(p path, obj map[string]any, field string) {
		if l, _ := asList(obj[field]); len(l) > 0 {
			d.fail(p.with(field), "%s are not supported by this gateway", field)
		}
		delete(obj, field)
	}

	// Collect, flattening nested entities.
	type pending struct {
		e     *kongEntity
		field string // "service" or "upstream"
		ref   any
	}
	var refs []pending
	for i, s := range list(path{0, "services"}, top["services"]) {
		if s == nil {
			continue
		}
		p := path{0, "services", i}
		nested := s["routes"]
		delete(s, "routes")
		refuseNested(p, s, "plugins")
		svc := add(core.KindKongServices, p, s, "index/"+strconv.Itoa(i))
		id, _ := svc.obj["id"].(string)
		if name, ok := asString(s["name"]); ok {
			serviceIDs[name] = id
		}
		serviceIDs[id] = id
		for j, r := range list(p.with("routes"), nested) {
			if r == nil {
				continue
			}
			rp := p.with("routes", j)
			refuseNested(rp, r, "plugins")
			r["service"] = map[string]any{"id": id}
			add(core.KindKongRoutes, rp, r, id+"/"+strconv.Itoa(j))
		}
	}
	for i, r := range list(path{0, "routes"}, top["routes"]) {
		if r == nil {
			continue
		}
		p := path{0, "routes", i}
		refuseNested(p, r, "plugins")
		ref, has := r["service"]
		delete(r, "service")
		e := add(core.KindKongRoutes, p, r, "index/"+strconv.Itoa(i))
		if has {
			refs = append(refs, pending{e: e, field: "service", ref: ref})
		}
	}
	for i, u := range list(path{0, "upstreams"}, top["upstreams"]) {
		if u == nil {
			continue
		}
		p := path{0, "upstreams", i}
		nested := u["targets"]
		delete(u, "targets")
		up := add(core.KindKongUpstreams, p, u, "index/"+strconv.Itoa(i))
		id, _ := up.obj["id"].(string)
		if name, ok := asString(u["name"]); ok {
			upstreamIDs[name] = id
		}
		upstreamIDs[id] = id
		for j, t := range list(p.with("targets"), nested) {
			if t == nil {
				continue
			}
			t["upstream"] = map[string]any{"id": id}
			tgt, _ := asString(t["target"])
			add(core.KindKongTargets, p.with("targets", j), t, id+"/"+tgt)
		}
	}
	for i, t := range list(path{0, "targets"}, top["targets"]) {
		if t == nil {
			continue
		}
		p := path{0, "targets", i}
		ref, has := t["upstream"]
		delete(t, "upstream")
		tgt, _ := asString(t["target"])
		e := add(core.KindKongTargets, p, t, fmt.Sprintf("%v/%s", ref, tgt))
		if has {
			refs = append(refs, pending{e: e, field: "upstream", ref: ref})
		} else {
			d.fail(p, "target %s: upstream is required", e.label)
		}
	}
	// Resolve references by name or id.
	for _, pr := range refs {
		var key string
		switch x := pr.ref.(type) {
		case string:
			key = x
		case map[string]any:
			if s, ok := asString(x["id"]); ok {
				key = s
			} else {
				key, _ = asString(x["name"])
			}
		}
		ids := serviceIDs
		if pr.field == "upstream" {
			ids = upstreamIDs
		}
		id, ok := ids[key]
		if !ok {
			d.fail(pr.e.p.with(pr.field), "%s: %s %q is not in this file", pr.e.label, pr.field, key)
			continue
		}
		pr.e.obj[pr.field] = map[string]any{"id": id}
	}

	// Validate with the Admin API's schemas, then the constraints across
	// entities.
	seenIDs := map[string]*kongEntity{}
	names := map[string]*kongEntity{}
	for _, e := range ents {
		obj := plainJSON(e.obj)
		if kerr := core.ApplyKongShorthands(e.kind, obj); kerr != nil {
			d.fail(e.p, "%s: %s", e.label, kerr.Message)
			continue
		}
		out, kerr := core.NormalizeKong(e.kind, obj)
		if kerr == nil {
			kerr = core.KongUnsupported(e.kind, out)
		}
		if kerr != nil {
			d.fail(fieldPath(e.p, e.obj, kerr.Fields), "%s: %s", e.label, kerr.Message)
			continue
		}
		unique := ""
		switch e.kind {
		case core.KindKongTargets:
			up, _ := out["upstream"].(map[string]any)
			unique = fmt.Sprintf("target %v %v", up["id"], out["target"])
		default:
			if n, ok := out["name"].(string); ok {
				unique = string(e.kind) + " name " + n
			}
		}
		if unique != "" {
			if prev := names[unique]; prev != nil {
				what := "name"
				if e.kind == core.KindKongTargets {
					what = "target in this upstream"
				}
				d.fail(e.p, "%s: duplicate %s (also at line %d)", e.label, what, lineOf(d, prev.p))
				continue
			}
			names[unique] = e
		}
		id, _ := out["id"].(string)
		if prev := seenIDs[string(e.kind)+"/"+id]; prev != nil {
			d.fail(e.p, "%s: duplicate id %s", e.label, id)
			continue
		}
		seenIDs[string(e.kind)+"/"+id] = e
		d.put(core.Key(e.kind, id), marshal(out))
		d.res.Counts[strings.TrimPrefix(string(e.kind), "kong_")]++
	}
}

// fieldPath points at the first field a Kong error names, when the entity
// has it in the file.
func fieldPath(p path, obj map[string]any, fields map[string]any) path {
	for _, k := range sortedKeys(fields) {
		if _, ok := obj[k]; ok && k != "@entity" {
			return p.with(k)
		}
	}
	return p
}

func lineOf(d *doc, p path) int {
	l, _ := d.position(p)
	return l
}

// plainJSON converts encoding/json numbers and nested values into the form
// core's Kong schemas expect (a deep copy).
func plainJSON(v map[string]any) map[string]any {
	b := marshal(v)
	var out map[string]any
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		panic("BUG: declarative: cannot decode what was encoded: " + err.Error())
	}
	return out
}
