package core

import (
	"math"
	"slices"
	"strconv"

	json "github.com/goccy/go-json"
)

// The parts of APISIX's schemas (apisix/schema_def.lua) that routes,
// services and upstreams share: ids, metadata, hosts and timeouts.

// Schemas shared by several resources (apisix/schema_def.lua).
var (
	idPattern   = newPattern(`^[a-zA-Z0-9-_.]+$`)
	hostPattern = newPattern(`^\*$|^\*?[0-9a-zA-Z-._\[\]:]+$`)

	hostRule  = strRule{pat: hostPattern}
	nameRule  = strRule{minLen: 1, maxLen: 256}
	descRule  = strRule{maxLen: 256}
	labelRule = strRule{minLen: 1, maxLen: 256, pat: newPattern(`^\S+$`)}
	// methodRule is APISIX's method_schema.
	methodRule = strRule{enum: MethodNames[:]}
)

// parseID checks an APISIX id: a string of 1-64 characters from
// [a-zA-Z0-9-_.], or an integer ≥ 1, which is returned in decimal.
func parseID(v any) (string, *ValidationError) {
	switch v.(type) {
	case string:
		return strRule{minLen: 1, maxLen: 64, pat: idPattern}.parse(v)
	case json.Number, float64:
		f, _, err := toFloat(v)
		if err != nil {
			return "", err
		}
		if f != math.Trunc(f) {
			break
		}
		if err := between(1, maxSafeInteger).check(f); err != nil {
			return "", err
		}
		return strconv.FormatInt(int64(f), 10), nil
	}
	return "", invalid("wrong type: expected one of string, integer, got %s", jsonType(v))
}

// parseLabels checks `labels`: string keys to values of 1-256
// non-space characters.
func parseLabels(v any) (map[string]string, *ValidationError) {
	m, err := asObject(v)
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make(map[string]string, len(m))
	for _, k := range keys {
		s, err := labelRule.parse(m[k])
		if err != nil {
			return nil, err.inKey(k)
		}
		out[k] = s
	}
	return out, nil
}

// metadata is the part every resource shares.
type metadata struct {
	id, name, desc string
	labels         map[string]string
}

// metadataProps are the property names parseMetadata reads.
var metadataProps = []string{"id", "name", "desc", "labels", "create_time", "update_time"}

// parseMetadata reads id, name, desc, labels, and checks the server-managed
// create_time and update_time (integers, otherwise ignored).
func parseMetadata(o *object) metadata {
	var md metadata
	md.id, _ = field(o, "id", parseID)
	md.name, _ = field(o, "name", nameRule.parse)
	md.desc, _ = field(o, "desc", descRule.parse)
	md.labels, _ = field(o, "labels", parseLabels)
	field(o, "create_time", anyNumber.integer)
	field(o, "update_time", anyNumber.integer)
	return md
}

// parseTimeout checks a `timeout` object: connect, send and read, all
// required, each a number of seconds > 0.
func parseTimeout(v any) (*Timeout, *ValidationError) {
	o, err := newObject(v)
	if err != nil {
		return nil, err
	}
	var t Timeout
	t.Connect, _ = field(o, "connect", greaterThan(0).seconds)
	t.Send, _ = field(o, "send", greaterThan(0).seconds)
	t.Read, _ = field(o, "read", greaterThan(0).seconds)
	o.require("connect", "send", "read")
	o.closed([]string{"connect", "send", "read"})
	if o.err != nil {
		return nil, o.err
	}
	return &t, nil
}
