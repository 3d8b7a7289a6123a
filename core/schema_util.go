package core

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	json "github.com/goccy/go-json"
)

// This file holds the building blocks of the APISIX schema checks in
// schema_route.go, schema_upstream.go and schema_checks.go: decoding, JSON
// type checks, and messages worded as APISIX's lua jsonschema words them.
//
// Values are decoded into map[string]any / []any with numbers kept as
// json.Number, then validated property by property. Within one object the
// properties are checked in the order the parse function lists them (APISIX
// walks a Lua hash, so its order is unspecified), then the required ones,
// then the unknown ones (sorted), then the rules that span several
// properties. The first failure wins.

// ValidationError is returned for every invalid input to ParseRoute,
// ParseService and ParseUpstream.
//
// Error returns Msg, without the "invalid configuration: " prefix APISIX puts
// in front of schema failures; AdminMessage returns the complete error_msg
// text APISIX's Admin API would send.
type ValidationError struct {
	// Msg names the failing field, e.g.
	// `property "retries" validation failed: expected -1 to be at least 0`.
	Msg string
	// Bare marks messages that APISIX sends as they are, without the
	// "invalid configuration: " prefix: for example `missing key`,
	// `only one of host or hosts is allowed`, `failed to validate the
	// 'vars' expression: ...` and `invalid request body: ...`.
	Bare bool
}

// Error implements error. It returns Msg.
func (e *ValidationError) Error() string { return e.Msg }

// AdminMessage returns the error_msg of APISIX's 400 answer: Msg, prefixed
// with "invalid configuration: " unless Bare is set.
func (e *ValidationError) AdminMessage() string {
	if e.Bare {
		return e.Msg
	}
	return "invalid configuration: " + e.Msg
}

// invalid returns a schema failure (AdminMessage adds the prefix).
func invalid(format string, args ...any) *ValidationError {
	return &ValidationError{Msg: fmt.Sprintf(format, args...)}
}

// bare returns a failure that APISIX reports without the prefix.
func bare(format string, args ...any) *ValidationError {
	return &ValidationError{Msg: fmt.Sprintf(format, args...), Bare: true}
}

// inProperty nests e under an object property. The result is always a
// schema failure, even when e was bare.
func (e *ValidationError) inProperty(name string) *ValidationError {
	return &ValidationError{Msg: "property " + luaQuote(name) + " validation failed: " + e.Msg}
}

// inItem nests e under the array item at index i (printed 1-based, as Lua).
func (e *ValidationError) inItem(i int) *ValidationError {
	return &ValidationError{Msg: fmt.Sprintf("failed to validate item %d: %s", i+1, e.Msg)}
}

// inKey nests e under a key of a free-form object (labels, object-form
// nodes), worded as lua jsonschema words a patternProperties failure.
func (e *ValidationError) inKey(key string) *ValidationError {
	return &ValidationError{Msg: "failed to validate " + key + ` (matching ".*"): ` + e.Msg}
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number.
func decodeJSON(body []byte) (any, *ValidationError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, bare("invalid request body: %v", err)
	}
	var extra any
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, bare("invalid request body: unexpected data after the top-level value")
	}
	return v, nil
}

// luaQuote quotes s the way Lua's string.format("%q") does for the texts
// APISIX puts in messages (property names, patterns, values).
func luaQuote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// formatNumber prints a number as Lua's tostring does ("%.14g"): -1, 0.5,
// 70000, 1e+20.
func formatNumber(f float64) string {
	return strconv.FormatFloat(f, 'g', 14, 64)
}

// jsonType names the JSON type of a decoded value. APISIX would say "table"
// for objects and arrays and "userdata" for null; the JSON names are clearer.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number, float64:
		return "number"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return fmt.Sprintf("%T", v)
}

func wrongType(want string, v any) *ValidationError {
	return invalid("wrong type: expected %s, got %s", want, jsonType(v))
}

// asObject checks for a JSON object. As in APISIX (where `{}` and `[]`
// decode to the same empty Lua table), an empty array passes as an empty
// object.
func asObject(v any) (map[string]any, *ValidationError) {
	switch x := v.(type) {
	case map[string]any:
		return x, nil
	case []any:
		if len(x) == 0 {
			return map[string]any{}, nil
		}
	}
	return nil, wrongType("object", v)
}

// asArray checks for a JSON array; an empty object passes as an empty array
// (see asObject).
func asArray(v any) ([]any, *ValidationError) {
	switch x := v.(type) {
	case []any:
		return x, nil
	case map[string]any:
		if len(x) == 0 {
			return []any{}, nil
		}
	}
	return nil, wrongType("array", v)
}

func asBool(v any) (bool, *ValidationError) {
	b, ok := v.(bool)
	if !ok {
		return false, wrongType("boolean", v)
	}
	return b, nil
}

func asString(v any) (string, *ValidationError) {
	s, ok := v.(string)
	if !ok {
		return "", wrongType("string", v)
	}
	return s, nil
}

// toFloat returns the value of a JSON number. isNum is false for other
// types; err is set for a literal too large for a float64.
func toFloat(v any) (f float64, isNum bool, err *ValidationError) {
	switch x := v.(type) {
	case json.Number:
		f, perr := strconv.ParseFloat(string(x), 64)
		if perr != nil {
			return 0, true, invalid("number %s is out of range", string(x))
		}
		return f, true, nil
	case float64:
		return x, true, nil
	}
	return 0, false, nil
}

// maxSafeInteger bounds every integer property: larger values cannot be
// told apart in a float64 (nor in APISIX's Lua numbers).
const maxSafeInteger = 1<<53 - 1

// maxSeconds is the largest number of seconds a time.Duration holds.
const maxSeconds = math.MaxInt64 / int64(time.Second)

// numRule is the range of a number or integer property (APISIX minimum,
// exclusiveMinimum, maximum). The zero value admits any number.
type numRule struct {
	min, max       float64
	hasMin, hasMax bool
	// exclusive makes min exclusive (APISIX exclusiveMinimum).
	exclusive bool
}

var anyNumber numRule

func atLeast(min float64) numRule     { return numRule{min: min, hasMin: true} }
func greaterThan(min float64) numRule { return numRule{min: min, hasMin: true, exclusive: true} }
func between(min, max float64) numRule {
	return numRule{min: min, max: max, hasMin: true, hasMax: true}
}

func (r numRule) check(f float64) *ValidationError {
	if r.hasMin {
		if r.exclusive && f <= r.min {
			return invalid("expected %s to be greater than %s", formatNumber(f), formatBound(r.min))
		}
		if !r.exclusive && f < r.min {
			return invalid("expected %s to be at least %s", formatNumber(f), formatBound(r.min))
		}
	}
	if r.hasMax && f > r.max {
		return invalid("expected %s to be at most %s", formatNumber(f), formatBound(r.max))
	}
	return nil
}

// formatBound prints a range bound; all of ours are integers, printed in
// full (APISIX's are small enough for formatNumber to agree).
func formatBound(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) <= maxSafeInteger {
		return strconv.FormatInt(int64(f), 10)
	}
	return formatNumber(f)
}

// number parses a JSON number within the range.
func (r numRule) number(v any) (float64, *ValidationError) {
	f, isNum, err := toFloat(v)
	if !isNum {
		return 0, wrongType("number", v)
	}
	if err != nil {
		return 0, err
	}
	return f, r.check(f)
}

// integer parses a JSON number with no fractional part (1.0 is an integer,
// as in Lua) within the range and within ±(2^53-1).
func (r numRule) integer(v any) (int, *ValidationError) {
	f, isNum, err := toFloat(v)
	if !isNum {
		return 0, wrongType("integer", v)
	}
	if err != nil {
		return 0, err
	}
	if f != math.Trunc(f) {
		return 0, wrongType("integer", v)
	}
	if err := r.check(f); err != nil {
		return 0, err
	}
	if err := between(-maxSafeInteger, maxSafeInteger).check(f); err != nil {
		return 0, err
	}
	return int(f), nil
}

// seconds parses a number of seconds within the range into a Duration,
// rounded to the nanosecond. A positive value never rounds down to zero.
func (r numRule) seconds(v any) (time.Duration, *ValidationError) {
	f, err := r.number(v)
	if err != nil {
		return 0, err
	}
	if f > float64(maxSeconds) {
		return 0, invalid("expected %s to be at most %d", formatNumber(f), maxSeconds)
	}
	if f < -float64(maxSeconds) {
		return 0, invalid("expected %s to be at least -%d", formatNumber(f), maxSeconds)
	}
	d := time.Duration(math.Round(f * float64(time.Second)))
	if d == 0 && f > 0 {
		d = 1
	}
	return d, nil
}

// pattern is a regular expression from APISIX's schema, printed in
// messages as written there. Go's RE2 and PCRE agree on every pattern used
// here, except that PCRE's `$` also matches before a final newline, which
// RE2 (rightly, here) does not.
type pattern struct {
	src string
	re  *regexp.Regexp
}

func newPattern(src string) *pattern { return &pattern{src: src, re: regexp.MustCompile(src)} }

func (p *pattern) check(s string) *ValidationError {
	if !p.re.MatchString(s) {
		return invalid("failed to match pattern %s with %s", luaQuote(p.src), luaQuote(s))
	}
	return nil
}

// strRule is a string property: length bounds in characters (maxLen 0 means
// none), an optional pattern and an optional enum, checked in that order.
type strRule struct {
	minLen, maxLen int
	pat            *pattern
	enum           []string
}

var anyString strRule

func (r strRule) parse(v any) (string, *ValidationError) {
	s, ok := v.(string)
	if !ok {
		return "", wrongType("string", v)
	}
	if r.minLen > 0 || r.maxLen > 0 {
		n := utf8.RuneCountInString(s)
		if n < r.minLen {
			return "", invalid("string too short, expected at least %d, got %d", r.minLen, n)
		}
		if r.maxLen > 0 && n > r.maxLen {
			return "", invalid("string too long, expected at most %d, got %d", r.maxLen, n)
		}
	}
	if r.pat != nil {
		if err := r.pat.check(s); err != nil {
			return "", err
		}
	}
	if r.enum != nil && !slices.Contains(r.enum, s) {
		return "", errNotInEnum
	}
	return s, nil
}

var errNotInEnum = invalid("matches none of the enum values")

// arrayOf parses an array with at least minItems items, each parsed by item.
func arrayOf[T any](v any, minItems int, item func(any) (T, *ValidationError)) ([]T, *ValidationError) {
	a, err := asArray(v)
	if err != nil {
		return nil, err
	}
	if len(a) < minItems {
		return nil, invalid("expect array to have at least %d items", minItems)
	}
	out := make([]T, 0, len(a))
	for i, x := range a {
		t, err := item(x)
		if err != nil {
			return nil, err.inItem(i)
		}
		out = append(out, t)
	}
	return out, nil
}

// unique reports the first repeated item (APISIX uniqueItems), 1-based.
func unique[T comparable](items []T) *ValidationError {
	seen := make(map[T]int, len(items))
	for i, x := range items {
		if j, ok := seen[x]; ok {
			return invalid("expected unique items but items %d and %d are equal", j+1, i+1)
		}
		seen[x] = i
	}
	return nil
}

// uniqueArrayOf is arrayOf followed by a uniqueItems check.
func uniqueArrayOf[T comparable](v any, minItems int, item func(any) (T, *ValidationError)) ([]T, *ValidationError) {
	out, err := arrayOf(v, minItems, item)
	if err != nil {
		return nil, err
	}
	if err := unique(out); err != nil {
		return nil, err
	}
	return out, nil
}

// object walks the properties of one JSON object and keeps the first
// failure. Once a failure is recorded, further property reads are skipped.
type object struct {
	m   map[string]any
	err *ValidationError
}

func newObject(v any) (*object, *ValidationError) {
	m, err := asObject(v)
	if err != nil {
		return nil, err
	}
	return &object{m: m}, nil
}

// has reports whether the property is present (JSON null counts as present).
func (o *object) has(name string) bool {
	_, ok := o.m[name]
	return ok
}

// fail records err as the failure of the named property, unless a failure
// is already recorded.
func (o *object) fail(name string, err *ValidationError) {
	if o.err == nil && err != nil {
		o.err = err.inProperty(name)
	}
}

// check records err as the failure of the whole object, unless a failure is
// already recorded.
func (o *object) check(err *ValidationError) {
	if o.err == nil && err != nil {
		o.err = err
	}
}

// require fails for the first of names that is absent.
func (o *object) require(names ...string) {
	for _, name := range names {
		if o.err == nil && !o.has(name) {
			o.err = invalid("property %s is required", luaQuote(name))
		}
	}
}

// closed fails for the first property (in sorted order) not in known
// (APISIX additionalProperties: false).
func (o *object) closed(known []string) {
	if o.err != nil {
		return
	}
	var extra []string
	for k := range o.m {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		o.err = invalid("additional properties forbidden, found %s", extra[0])
	}
}

// field parses a present property with parse; ok is false when the
// property is absent, invalid, or a failure was recorded before.
func field[T any](o *object, name string, parse func(any) (T, *ValidationError)) (t T, ok bool) {
	if o.err != nil {
		return t, false
	}
	v, present := o.m[name]
	if !present {
		return t, false
	}
	t, err := parse(v)
	if err != nil {
		o.fail(name, err)
		var zero T
		return zero, false
	}
	return t, true
}

// fieldOr is field with a default for an absent or invalid property.
func fieldOr[T any](o *object, name string, parse func(any) (T, *ValidationError), def T) T {
	if t, ok := field(o, name, parse); ok {
		return t
	}
	return def
}
