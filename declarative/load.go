// Package declarative loads a whole gateway configuration from one file,
// for standalone mode (`gateway -standalone FILE`) and `gateway validate`.
//
// Three formats are recognised by their content:
//
//   - APISIX standalone (conf/apisix.yaml): top-level lists `routes`,
//     `upstreams`, `services` and `ssls` of APISIX objects. A YAML file must
//     end with a `#END` line, or it is incomplete; JSON needs no marker.
//   - APISIX Ingress CRDs: multi-document YAML of `apisix.apache.org/v2`
//     ApisixUpstream and ApisixRoute resources, translated as the ingress
//     controller translates them.
//   - Kong declarative configuration (`_format_version: "3.0"`): services
//     with nested routes, upstreams with nested targets.
//
// Loading yields store key-values in the gateway's own layout (APISIX
// objects under /apisix/<kind>/<id>, Kong entities under
// /apisix/kong_<kind>/<id>), validated by the same code as the Admin APIs,
// so that a file is accepted exactly when its objects would be. A file
// with any problem yields none: it is all or nothing.
package declarative

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/edgeway/gateway/store"
	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Format names a recognised file format.
type Format string

// The recognised formats.
const (
	FormatAPISIX  Format = "apisix"
	FormatIngress Format = "apisix-ingress"
	FormatKong    Format = "kong"
)

// Problem is one thing wrong (or, for a warning, worth saying) in a file.
// Line and Column are 1-based, 0 when unknown.
type Problem struct {
	Line, Column int
	Msg          string
	Warning      bool
}

func (p Problem) String() string {
	var b strings.Builder
	if p.Line > 0 {
		fmt.Fprintf(&b, "%d:%d: ", p.Line, p.Column)
	}
	if p.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Result is a loaded file.
type Result struct {
	Format Format
	// KVs is the configuration as store keys and values, sorted by key.
	// It is empty unless OK.
	KVs []store.KV
	// Problems lists errors and warnings in file order.
	Problems []Problem
	// Counts tells how many objects of each kind were loaded
	// ("routes": 2, ...).
	Counts map[string]int
}

// OK reports whether the file has no errors (warnings allowed).
func (r *Result) OK() bool {
	for _, p := range r.Problems {
		if !p.Warning {
			return false
		}
	}
	return true
}

// Err returns nil when OK, else an error listing the problems (file
// positions as "line:col").
func (r *Result) Err() error {
	if r.OK() {
		return nil
	}
	var msgs []string
	for _, p := range r.Problems {
		if !p.Warning {
			msgs = append(msgs, p.String())
		}
	}
	return errors.New(strings.Join(msgs, "; "))
}

// Summary describes what was loaded, e.g. "apisix: 2 routes, 1 upstream".
func (r *Result) Summary() string {
	kinds := make([]string, 0, len(r.Counts))
	for k := range r.Counts {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", r.Counts[k], k))
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing")
	}
	return string(r.Format) + ": " + strings.Join(parts, ", ")
}

// LoadFile reads and loads a file. The error is for a file that cannot be
// read; problems with its content are in the Result.
func LoadFile(path string) (*Result, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(data), nil
}

// Load recognises the format of data and loads it.
func Load(data []byte) *Result {
	d := &doc{src: data}
	r := &Result{Counts: map[string]int{}}
	d.res = r
	data, err := substituteEnv(data)
	if err != nil {
		d.fail(nil, "%v", err)
		return r
	}
	d.src = data
	if !d.parse() {
		return r
	}
	switch {
	case d.isIngress():
		r.Format = FormatIngress
		loadIngress(d)
	case d.topKey("_format_version"):
		r.Format = FormatKong
		loadKong(d)
	case d.topKey("routes") || d.topKey("upstreams") || d.topKey("services") || d.topKey("ssls"):
		r.Format = FormatAPISIX
		loadAPISIX(d)
	default:
		d.fail(nil, "unrecognised configuration: expected APISIX standalone (routes, upstreams, services, ssls), "+
			"APISIX Ingress resources (apiVersion: apisix.apache.org/v2) or Kong declarative configuration (_format_version)")
	}
	if !r.OK() {
		r.KVs = nil
		r.Counts = map[string]int{}
	}
	sort.Slice(r.KVs, func(i, j int) bool { return r.KVs[i].Key < r.KVs[j].Key })
	sort.SliceStable(r.Problems, func(i, j int) bool {
		a, b := r.Problems[i], r.Problems[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	return r
}

// envPattern is APISIX's `${{NAME}}` and `${{NAME:=default}}`.
var envPattern = regexp.MustCompile(`\$\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?::=\s*([^}]*?)\s*)?\}\}`)

// substituteEnv replaces environment references as APISIX does in its
// standalone file; an unset variable without a default is an error.
func substituteEnv(data []byte) ([]byte, error) {
	if !bytes.Contains(data, []byte("${{")) {
		return data, nil
	}
	var missing []string
	out := envPattern.ReplaceAllFunc(data, func(m []byte) []byte {
		sub := envPattern.FindSubmatch(m)
		if v, ok := os.LookupEnv(string(sub[1])); ok {
			return []byte(v)
		}
		if bytes.Contains(m, []byte(":=")) {
			return sub[2]
		}
		missing = append(missing, string(sub[1]))
		return m
	})
	if len(missing) > 0 {
		return nil, fmt.Errorf("environment variable %s is not set (and the reference has no default)", missing[0])
	}
	return out, nil
}

// doc is a parsed file: its documents as plain values (maps, slices,
// strings, json.Number, bools, nil) and its syntax tree for positions.
type doc struct {
	src    []byte
	isJSON bool
	file   *ast.File // nil when positions are unknown
	values []any     // one per document
	res    *Result
}

// path locates a value: string keys and int indexes from a document root;
// the first element is the document index.
type path []any

func (p path) with(elems ...any) path {
	out := make(path, 0, len(p)+len(elems))
	return append(append(out, p...), elems...)
}

// String renders a path as "routes[2].upstream".
func (p path) String() string {
	var b strings.Builder
	for _, e := range p[min(1, len(p)):] {
		switch x := e.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", x)
		case string:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(x)
		}
	}
	return b.String()
}

func (d *doc) parse() bool {
	trimmed := bytes.TrimSpace(d.src)
	d.isJSON = len(trimmed) > 0 && trimmed[0] == '{'
	f, err := parser.ParseBytes(d.src, 0)
	if err != nil {
		if d.isJSON {
			// Positions are lost, but JSON decoding still decides.
			f = nil
		} else {
			d.syntaxError(err)
			return false
		}
	}
	d.file = f
	if d.isJSON {
		dec := json.NewDecoder(bytes.NewReader(d.src))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			line, col := jsonErrorPosition(d.src, err)
			d.res.Problems = append(d.res.Problems, Problem{Line: line, Column: col, Msg: "invalid JSON: " + err.Error()})
			return false
		}
		if dec.More() {
			d.fail(nil, "invalid JSON: unexpected data after the top-level value")
			return false
		}
		d.values = []any{v}
		return true
	}
	for i, docNode := range f.Docs {
		if docNode.Body == nil {
			continue
		}
		var v any
		if err := yaml.NodeToValue(docNode.Body, &v); err != nil {
			d.syntaxError(err)
			return false
		}
		nv, err := plain(v)
		if err != nil {
			d.fail(path{i}, "%v", err)
			return false
		}
		for len(d.values) < i {
			d.values = append(d.values, nil)
		}
		d.values = append(d.values, nv)
	}
	return true
}

// syntaxError records a YAML error with its position.
func (d *doc) syntaxError(err error) {
	var ye yaml.Error
	if errors.As(err, &ye) && ye.GetToken() != nil {
		pos := ye.GetToken().Position
		d.res.Problems = append(d.res.Problems, Problem{Line: pos.Line, Column: pos.Column, Msg: "invalid YAML: " + ye.GetMessage()})
		return
	}
	d.res.Problems = append(d.res.Problems, Problem{Msg: "invalid YAML: " + err.Error()})
}

// jsonErrorPosition turns a decoder error's offset into line and column.
func jsonErrorPosition(src []byte, err error) (int, int) {
	var off int64
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	default:
		return 0, 0
	}
	off = min(off, int64(len(src)))
	line := 1 + bytes.Count(src[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(src[:off], '\n')
	return line, col
}

// plain converts decoded YAML into the JSON value space: numbers become
// json.Number, map keys must be strings.
func plain(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			pe, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[k] = pe
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, ok := k.(string)
			if !ok {
				ks = fmt.Sprint(k)
			}
			pe, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[ks] = pe
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			pe, err := plain(e)
			if err != nil {
				return nil, err
			}
			out[i] = pe
		}
		return out, nil
	case int:
		return json.Number(strconv.Itoa(x)), nil
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(x, 10)), nil
	case float64:
		if x != x || x > 1e308 || x < -1e308 {
			return nil, fmt.Errorf("number %v cannot be represented in JSON", x)
		}
		return json.Number(strconv.FormatFloat(x, 'g', -1, 64)), nil
	case string, bool, nil, json.Number:
		return x, nil
	}
	return fmt.Sprint(v), nil
}

// topKey reports whether the first document is an object with key.
func (d *doc) topKey(key string) bool {
	if len(d.values) == 0 {
		return false
	}
	m, ok := d.values[0].(map[string]any)
	if !ok {
		return false
	}
	_, has := m[key]
	return has
}

// isIngress reports whether any document is a Kubernetes resource.
func (d *doc) isIngress() bool {
	for _, v := range d.values {
		if m, ok := v.(map[string]any); ok {
			if _, has := m["apiVersion"]; has {
				return true
			}
			if _, has := m["kind"]; has {
				return true
			}
		}
	}
	return false
}

// fail records an error at p (nil: no position).
func (d *doc) fail(p path, format string, args ...any) {
	line, col := d.position(p)
	d.res.Problems = append(d.res.Problems, Problem{Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

// put adds a key-value to the result.
func (d *doc) put(key string, value []byte) {
	d.res.KVs = append(d.res.KVs, store.KV{Key: key, Value: value})
}

// position returns the line and column of the value at p, or of its
// nearest ancestor found in the syntax tree.
func (d *doc) position(p path) (int, int) {
	if d.file == nil || len(p) == 0 {
		return 0, 0
	}
	di, _ := p[0].(int)
	if di >= len(d.file.Docs) {
		return 0, 0
	}
	node := d.file.Docs[di].Body
	best := node
	for _, e := range p[1:] {
		node = child(node, e)
		if node == nil {
			break
		}
		best = node
	}
	return nodePosition(best)
}

// nodePosition is where a node starts: a mapping at its first key (the
// parser's token for a block mapping is its first ':').
func nodePosition(n ast.Node) (int, int) {
	n = unwrap(n)
	switch x := n.(type) {
	case *ast.MappingNode:
		if len(x.Values) > 0 && !x.IsFlowStyle {
			return nodePosition(x.Values[0])
		}
	case *ast.MappingValueNode:
		return nodePosition(x.Key)
	}
	if n == nil || n.GetToken() == nil {
		return 0, 0
	}
	pos := n.GetToken().Position
	return pos.Line, pos.Column
}

// child returns the node under n at a key or index, or nil.
func child(n ast.Node, e any) ast.Node {
	n = unwrap(n)
	switch x := n.(type) {
	case *ast.MappingNode:
		key, ok := e.(string)
		if !ok {
			return nil
		}
		for _, mv := range x.Values {
			if mapKey(mv) == key {
				return mv.Value
			}
		}
	case *ast.MappingValueNode:
		if key, ok := e.(string); ok && mapKey(x) == key {
			return x.Value
		}
	case *ast.SequenceNode:
		i, ok := e.(int)
		if ok && i >= 0 && i < len(x.Values) {
			return x.Values[i]
		}
	}
	return nil
}

func unwrap(n ast.Node) ast.Node {
	for {
		switch x := n.(type) {
		case *ast.AnchorNode:
			n = x.Value
		case *ast.TagNode:
			n = x.Value
		case *ast.DocumentNode:
			n = x.Body
		default:
			return n
		}
	}
}

func mapKey(mv *ast.MappingValueNode) string {
	k := unwrap(mv.Key)
	if s, ok := k.(*ast.StringNode); ok {
		return s.Value
	}
	if k == nil || k.GetToken() == nil {
		return ""
	}
	return k.GetToken().Value
}

// Helpers to read decoded values.

func asMap(v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	return m, ok
}

func asList(v any) ([]any, bool) {
	l, ok := v.([]any)
	return l, ok
}

func asString(v any) (string, bool) {
	s, ok := v.(string)
	return s, ok
}

// asInt reads an integer given as a number (or a numeric string).
func asInt(v any) (int, bool) {
	switch x := v.(type) {
	case json.Number:
		n, err := strconv.Atoi(string(x))
		return n, err == nil
	case string:
		n, err := strconv.Atoi(x)
		return n, err == nil
	}
	return 0, false
}

// marshal encodes a value with numbers exact (json.Number) and map keys
// sorted.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: declarative: cannot encode a decoded value: " + err.Error())
	}
	return b
}

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]any) []string {
	return slices.Sorted(maps.Keys(m))
}
