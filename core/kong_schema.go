package core

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"
)

// This file holds a small engine for Kong's entity schemas
// (kong/db/schema): typed fields with defaults, ranges, enums and custom
// validators, checked against a decoded JSON object. It produces the
// normalized entity (every field present, defaults filled, null where Kong
// stores null) and Kong's error contract: a `fields` tree mirroring the
// input, with entity-level messages under "@entity".
//
// Numbers are carried as json.Number throughout, so that integers survive
// unchanged and the stored JSON is exactly what Kong would return.

// Kong error codes (kong/db/errors.lua) and their names.
const (
	KongSchemaViolation     = 2
	KongPrimaryKeyViolation = 3
	KongForeignKeyViolation = 4
	KongUniqueViolation     = 5
	KongNotFound            = 6
	KongOperationNotAllowed = 12
)

var kongErrorNames = map[int]string{
	KongSchemaViolation:     "schema violation",
	KongPrimaryKeyViolation: "primary key violation",
	KongForeignKeyViolation: "foreign key violation",
	KongUniqueViolation:     "unique constraint violation",
	KongNotFound:            "not found",
	KongOperationNotAllowed: "operation unsupported",
}

// KongError is Kong's DAO error: the body of a 4xx answer of Kong's Admin
// API, `{code, name, message, fields}`.
type KongError struct {
	Code    int            `json:"code"`
	Name    string         `json:"name"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields"`
}

// Error implements error.
func (e *KongError) Error() string { return e.Message }

// Status is the HTTP status Kong answers with for the error's code.
func (e *KongError) Status() int {
	switch e.Code {
	case KongUniqueViolation:
		return 409
	case KongNotFound:
		return 404
	case KongOperationNotAllowed:
		return 405
	}
	return 400
}

// NewKongError returns an error of the given code with Kong's name for it.
func NewKongError(code int, message string, fields map[string]any) *KongError {
	if fields == nil {
		fields = map[string]any{}
	}
	return &KongError{Code: code, Name: kongErrorNames[code], Message: message, Fields: fields}
}

// KongSchemaError builds a schema violation from a fields tree, worded as
// Kong words it: "schema violation (name: required field missing)", or
// "2 schema violations (a: ...; b.c: ...)". Entity-level messages
// ("@entity") come first, then the fields in sorted order, nested names
// joined with dots.
func KongSchemaError(fields map[string]any) *KongError {
	var parts []string
	if ent, ok := fields["@entity"].([]any); ok {
		for _, m := range ent {
			parts = append(parts, fmt.Sprint(m))
		}
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if k == "@entity" && prefix == "" {
					continue
				}
				walk(joinField(prefix, k), x[k])
			}
		case []any:
			for i, e := range x {
				if e != nil {
					walk(prefix+"."+strconv.Itoa(i+1), e)
				}
			}
		default:
			parts = append(parts, prefix+": "+fmt.Sprint(x))
		}
	}
	walk("", fields)
	msg := "schema violation"
	switch len(parts) {
	case 0:
	case 1:
		msg = "schema violation (" + parts[0] + ")"
	default:
		msg = strconv.Itoa(len(parts)) + " schema violations (" + strings.Join(parts, "; ") + ")"
	}
	return NewKongError(KongSchemaViolation, msg, fields)
}

func joinField(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// kType is a Kong schema field type.
type kType uint8

const (
	kString kType = iota
	kInteger
	kNumber
	kBoolean
	kArray
	kSet
	kRecord
	kMap
	kForeign
)

// kField is one field of a Kong schema.
type kField struct {
	name string
	typ  kType
	// elem describes array/set elements and map values.
	elem *kField
	// fields are a record's fields.
	fields []*kField
	// def is the default (nil: none; absent fields then store null).
	// Records without def get their nested defaults.
	def      any
	required bool
	// between is an inclusive numeric range when hasRange is set.
	lo, hi   float64
	hasRange bool
	oneOf    []string
	lenMin   int
	// startsWith is Kong's starts_with.
	startsWith string
	// check is a custom validator; it returns a message or "".
	check func(v any) string
	// noNullRecord: a record that may not be null (healthchecks).
	noNullRecord bool
}

// kSchema is an entity schema: its fields and the checks spanning several.
type kSchema struct {
	name   string
	fields []*kField
	// entity runs after the fields validated; it may add messages to
	// errs["@entity"] (via entityErr) and to field entries.
	entity func(obj map[string]any, errs map[string]any)
}

func (s *kSchema) field(name string) *kField {
	for _, f := range s.fields {
		if f.name == name {
			return f
		}
	}
	return nil
}

// process validates obj against s and returns the normalized object: every
// field present, defaults filled for absent ones, null for absent ones
// without a default. errs is nil when obj is valid.
func (s *kSchema) process(obj map[string]any) (map[string]any, map[string]any) {
	errs := map[string]any{}
	out := processRecord(s.fields, obj, errs)
	if len(errs) == 0 && s.entity != nil {
		s.entity(out, errs)
	}
	if len(errs) == 0 {
		return out, nil
	}
	return out, errs
}

// entityErr adds an entity-level message.
func entityErr(errs map[string]any, msg string) {
	l, _ := errs["@entity"].([]any)
	errs["@entity"] = append(l, msg)
}

func processRecord(fields []*kField, obj map[string]any, errs map[string]any) map[string]any {
	out := make(map[string]any, len(fields))
	for k := range obj {
		if !slices.ContainsFunc(fields, func(f *kField) bool { return f.name == k }) {
			errs[k] = "unknown field"
		}
	}
	for _, f := range fields {
		v, present := obj[f.name]
		if !present {
			v = f.defaultValue()
		}
		if v == nil {
			if f.typ == kRecord && f.noNullRecord {
				v = map[string]any{}
			} else {
				if f.required {
					errs[f.name] = "required field missing"
				}
				out[f.name] = nil
				continue
			}
		}
		nv, err := f.validate(v)
		if err != nil {
			errs[f.name] = err
			continue
		}
		out[f.name] = nv
	}
	return out
}

// defaultValue returns a fresh copy of the default, a record's nested
// defaults, or nil.
func (f *kField) defaultValue() any {
	if f.def != nil {
		return cloneJSON(f.def)
	}
	if f.typ == kRecord && f.noNullRecord {
		return map[string]any{}
	}
	return nil
}

// validate checks one non-null value and returns it normalized, or the
// error (a message string, or a nested tree for records, arrays and maps).
func (f *kField) validate(v any) (any, any) {
	switch f.typ {
	case kString:
		s, ok := v.(string)
		if !ok {
			return nil, "expected a string"
		}
		if f.lenMin > 0 && len(s) < f.lenMin {
			return nil, fmt.Sprintf("length must be at least %d", f.lenMin)
		}
		if f.startsWith != "" && !strings.HasPrefix(s, f.startsWith) {
			return nil, "should start with: " + f.startsWith
		}
		if f.oneOf != nil && !slices.Contains(f.oneOf, s) {
			return nil, "expected one of: " + strings.Join(f.oneOf, ", ")
		}
		if f.check != nil {
			if msg := f.check(s); msg != "" {
				return nil, msg
			}
		}
		return s, nil
	case kInteger, kNumber:
		n, ok := kongNumber(v)
		if !ok {
			if f.typ == kInteger {
				return nil, "expected an integer"
			}
			return nil, "expected a number"
		}
		x, _ := strconv.ParseFloat(string(n), 64)
		if f.typ == kInteger && (x != math.Trunc(x) || math.IsInf(x, 0)) {
			return nil, "expected an integer"
		}
		if f.hasRange && (x < f.lo || x > f.hi) {
			return nil, fmt.Sprintf("value should be between %s and %s", formatBound(f.lo), formatBound(f.hi))
		}
		if f.oneOf != nil && !slices.Contains(f.oneOf, string(n)) {
			return nil, "expected one of: " + strings.Join(f.oneOf, ", ")
		}
		if f.typ == kInteger {
			n = json.Number(strconv.FormatInt(int64(x), 10))
		}
		if f.check != nil {
			if msg := f.check(n); msg != "" {
				return nil, msg
			}
		}
		return n, nil
	case kBoolean:
		b, ok := v.(bool)
		if !ok {
			return nil, "expected a boolean"
		}
		return b, nil
	case kArray, kSet:
		l, ok := v.([]any)
		if !ok {
			if m, isMap := v.(map[string]any); isMap && len(m) == 0 {
				l = []any{} // an empty JSON object decodes like an empty array in Lua
			} else if f.typ == kSet {
				return nil, "expected a set"
			} else {
				return nil, "expected an array"
			}
		}
		out := make([]any, 0, len(l))
		elemErrs := make([]any, len(l))
		bad := false
		var seen map[string]bool
		if f.typ == kSet {
			seen = make(map[string]bool, len(l))
		}
		for i, e := range l {
			if e == nil {
				elemErrs[i], bad = "required field missing", true
				continue
			}
			ne, err := f.elem.validate(e)
			if err != nil {
				elemErrs[i], bad = err, true
				continue
			}
			if seen != nil {
				b, _ := json.Marshal(ne)
				if seen[string(b)] {
					continue // a set keeps one of each
				}
				seen[string(b)] = true
			}
			out = append(out, ne)
		}
		if bad {
			return nil, elemErrs
		}
		if f.lenMin > 0 && len(out) < f.lenMin {
			return nil, fmt.Sprintf("length must be at least %d", f.lenMin)
		}
		if f.check != nil {
			if msg := f.check(out); msg != "" {
				return nil, msg
			}
		}
		return out, nil
	case kRecord:
		m, ok := v.(map[string]any)
		if !ok {
			if l, isList := v.([]any); isList && len(l) == 0 {
				m = map[string]any{}
			} else {
				return nil, "expected a record"
			}
		}
		errs := map[string]any{}
		out := processRecord(f.fields, m, errs)
		if len(errs) > 0 {
			return nil, errs
		}
		return out, nil
	case kMap:
		m, ok := v.(map[string]any)
		if !ok {
			if l, isList := v.([]any); isList && len(l) == 0 {
				m = map[string]any{}
			} else {
				return nil, "expected a map"
			}
		}
		out := make(map[string]any, len(m))
		errs := map[string]any{}
		for k, e := range m {
			if f.check != nil {
				if msg := f.check(k); msg != "" {
					errs[k] = msg
					continue
				}
			}
			ne, err := f.elem.validate(e)
			if err != nil {
				errs[k] = err
				continue
			}
			out[k] = ne
		}
		if len(errs) > 0 {
			return nil, errs
		}
		return out, nil
	case kForeign:
		// A reference is stored as {"id": uuid}; a name is resolved by the
		// caller before validation.
		m, ok := v.(map[string]any)
		if !ok {
			return nil, "expected a record"
		}
		id, hasID := m["id"]
		errs := map[string]any{}
		for k := range m {
			if k != "id" && k != "name" {
				errs[k] = "unknown field"
			}
		}
		if !hasID || id == nil {
			errs["id"] = "required field missing"
		} else if s, isStr := id.(string); !isStr {
			errs["id"] = "expected a string"
		} else if !IsUUID(s) {
			errs["id"] = "expected a valid UUID"
		}
		if len(errs) > 0 {
			return nil, errs
		}
		return map[string]any{"id": id}, nil
	}
	return nil, "unknown type"
}

// kongNumber returns a JSON number from any of the number types decoders
// produce (json.Number, float64, int, int64, uint64).
func kongNumber(v any) (json.Number, bool) {
	switch x := v.(type) {
	case json.Number:
		if _, err := strconv.ParseFloat(string(x), 64); err != nil {
			return "", false
		}
		return x, true
	case float64:
		return json.Number(strconv.FormatFloat(x, 'f', -1, 64)), true
	case int:
		return json.Number(strconv.Itoa(x)), true
	case int64:
		return json.Number(strconv.FormatInt(x, 10)), true
	case uint64:
		return json.Number(strconv.FormatUint(x, 10)), true
	}
	return "", false
}

// cloneJSON deep-copies a decoded JSON value.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = cloneJSON(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = cloneJSON(e)
		}
		return c
	}
	return v
}

// IsUUID reports whether s is a UUID in its canonical text form.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// NewUUID returns a random version 4 UUID.
func NewUUID() string { return string(appendUUID(nil)) }

// Helpers to declare fields tersely.

func kStr(name string) *kField { return &kField{name: name, typ: kString} }
func kInt(name string, lo, hi float64) *kField {
	return &kField{name: name, typ: kInteger, lo: lo, hi: hi, hasRange: true}
}
func kNum(name string, lo, hi float64) *kField {
	return &kField{name: name, typ: kNumber, lo: lo, hi: hi, hasRange: true}
}
func kBool(name string) *kField { return &kField{name: name, typ: kBoolean} }
func kArr(name string, elem *kField) *kField {
	return &kField{name: name, typ: kArray, elem: elem}
}
func kSetOf(name string, elem *kField) *kField {
	return &kField{name: name, typ: kSet, elem: elem}
}
func kRec(name string, fields ...*kField) *kField {
	return &kField{name: name, typ: kRecord, fields: fields, noNullRecord: true}
}

func (f *kField) withDefault(v any) *kField { f.def = v; return f }
func (f *kField) req() *kField              { f.required = true; return f }
func (f *kField) enum(values ...string) *kField {
	f.oneOf = values
	return f
}
func (f *kField) validator(c func(any) string) *kField { f.check = c; return f }

// num is a json.Number default.
func num(n int) json.Number { return json.Number(strconv.Itoa(n)) }
