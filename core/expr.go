package core

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// Expr is a compiled lua-resty-expr condition list, as used by a route's
// `vars`. Items are ANDed unless the list starts with "OR", "AND", "!OR" or
// "!AND". An Expr is immutable and safe for concurrent use; evaluating it
// allocates nothing.
type Expr struct {
	logic logicOp
	items []exprItem
}

type logicOp uint8

const (
	logicAND logicOp = iota
	logicOR
	logicNotAND
	logicNotOR
)

type cmpOp uint8

const (
	opEQ cmpOp = iota
	opNE
	opGT
	opGE
	opLT
	opLE
	opRegex
	opRegexI
	opIn
	opHas
	opIPMatch
)

var cmpOps = map[string]cmpOp{
	"==": opEQ, "~=": opNE, ">": opGT, ">=": opGE, "<": opLT, "<=": opLE,
	"~~": opRegex, "~*": opRegexI, "in": opIn, "has": opHas, "ipmatch": opIPMatch,
}

type exprItem struct {
	sub *Expr // a nested logic list; the fields below are then unused

	v       Var
	op      cmpOp
	reverse bool

	// The right-hand value. isNum marks a JSON number (compared numerically);
	// isNull marks JSON null (Lua nil).
	str    []byte
	num    float64
	isNum  bool
	isNull bool
	isList bool // a JSON array: a string never equals it (Lua table)
	list   []exprValue
	re     *regexp.Regexp
	nets   []netip.Prefix
}

type exprValue struct {
	str   []byte
	num   float64
	isNum bool
}

// ParseExpr compiles a decoded JSON `vars` value (a []any). An empty list
// compiles to nil, which always matches.
func ParseExpr(rule any) (*Expr, error) {
	list, ok := rule.([]any)
	if !ok {
		return nil, errors.New("rule should be wrapped inside brackets")
	}
	if len(list) == 0 {
		return nil, nil
	}
	if _, isList := list[0].([]any); !isList {
		s, _ := list[0].(string)
		if _, ok := logicOpOf(s); !ok {
			return nil, errors.New("rule should be wrapped inside brackets")
		}
	}
	e, err := compileRules(list)
	if err != nil {
		return nil, err
	}
	if e.sub != nil {
		return e.sub, nil
	}
	// A single comparison at top level cannot happen (checked above), but
	// keep the shape uniform.
	return &Expr{items: []exprItem{e}}, nil
}

func logicOpOf(s string) (logicOp, bool) {
	switch strings.ToUpper(s) {
	case "AND":
		return logicAND, true
	case "OR":
		return logicOR, true
	case "!AND":
		return logicNotAND, true
	case "!OR":
		return logicNotOR, true
	}
	return 0, false
}

// compileRules compiles one list: a list of lists (AND), a logic list, or a
// single comparison.
func compileRules(rules []any) (exprItem, error) {
	if len(rules) == 0 {
		return exprItem{}, errors.New("rule too short")
	}
	if _, isList := rules[0].([]any); isList {
		e := &Expr{logic: logicAND}
		for _, r := range rules {
			sub, ok := r.([]any)
			if !ok {
				return exprItem{}, errors.New("invalid expression")
			}
			it, err := compileRules(sub)
			if err != nil {
				return exprItem{}, err
			}
			e.items = append(e.items, it)
		}
		return exprItem{sub: e}, nil
	}
	if s, ok := rules[0].(string); ok {
		if lop, ok := logicOpOf(s); ok {
			if len(rules) <= 2 {
				return exprItem{}, errors.New("rule too short")
			}
			e := &Expr{logic: lop}
			for _, r := range rules[1:] {
				sub, ok := r.([]any)
				if !ok {
					return exprItem{}, errors.New("invalid expression")
				}
				it, err := compileRules(sub)
				if err != nil {
					return exprItem{}, err
				}
				e.items = append(e.items, it)
			}
			return exprItem{sub: e}, nil
		}
	}
	return compileComparison(rules)
}

func compileComparison(expr []any) (exprItem, error) {
	var l, opv, r any
	var it exprItem
	hasR := false
	switch len(expr) {
	case 4:
		if s, _ := expr[1].(string); s != "!" {
			return it, errors.New("bad 'not' expression")
		}
		it.reverse = true
		l, opv, r, hasR = expr[0], expr[2], expr[3], true
	case 3:
		l, opv, r, hasR = expr[0], expr[1], expr[2], true
	case 2:
		l, opv = expr[0], expr[1]
	default:
		return it, errors.New("invalid expression")
	}
	name, ok := l.(string)
	if !ok || name == "" {
		return it, errors.New("invalid expression")
	}
	opName, _ := opv.(string)
	op, known := cmpOps[strings.ToLower(opName)]
	if !hasR || (r == nil && !known) {
		// lua-resty-expr compatibility: [var, value] means [var, "==", value].
		if opv == nil {
			return it, errors.New("invalid expression")
		}
		r, op, known = opv, opEQ, true
	}
	if !known {
		return it, fmt.Errorf("invalid operator '%s'", strings.ToLower(opName))
	}
	v, err := ParseVar(strings.TrimPrefix(name, "$"))
	if err != nil {
		return it, err
	}
	it.v, it.op = v, op
	switch val := r.(type) {
	case nil:
		it.isNull = true
	case string:
		it.str = []byte(val)
	case float64:
		it.num, it.isNum = val, true
		it.str = []byte(strconv.FormatFloat(val, 'f', -1, 64))
	case bool:
		it.str = []byte(strconv.FormatBool(val))
	case []any:
		it.isList = true
		for _, x := range val {
			switch xv := x.(type) {
			case string:
				it.list = append(it.list, exprValue{str: []byte(xv)})
			case float64:
				it.list = append(it.list, exprValue{num: xv, isNum: true})
			}
		}
	}
	switch op {
	case opRegex, opRegexI:
		s, ok := r.(string)
		if !ok {
			return it, errors.New("regex operand must be a string")
		}
		if op == opRegexI {
			s = "(?i)" + s
		}
		re, err := regexp.Compile(s)
		if err != nil {
			return it, fmt.Errorf("invalid regex %q: %v", s, err)
		}
		it.re = re
	case opIn:
		if _, ok := r.([]any); !ok {
			return it, errors.New("operator 'in' needs an array operand")
		}
	case opIPMatch:
		var items []any
		switch x := r.(type) {
		case string:
			items = []any{x}
		case []any:
			items = x
		default:
			return it, errors.New("operator 'ipmatch' needs an IP, CIDR or an array of them")
		}
		for _, x := range items {
			s, _ := x.(string)
			p, err := ParsePrefix(s)
			if err != nil {
				return it, err
			}
			it.nets = append(it.nets, p)
		}
	}
	return it, nil
}

// ParsePrefix parses an IP or a CIDR into a prefix (an IP becomes /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("invalid CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid IP %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Eval reports whether the request satisfies the expression. A nil Expr
// always matches. buf is scratch space for computed variables.
func (e *Expr) Eval(ctx *fasthttp.RequestCtx, buf []byte) bool {
	if e == nil {
		return true
	}
	switch e.logic {
	case logicAND:
		return e.evalAND(ctx, buf)
	case logicOR:
		return e.evalOR(ctx, buf)
	case logicNotAND:
		return !e.evalAND(ctx, buf)
	default:
		return !e.evalOR(ctx, buf)
	}
}

func (e *Expr) evalAND(ctx *fasthttp.RequestCtx, buf []byte) bool {
	for i := range e.items {
		if !e.items[i].eval(ctx, buf) {
			return false
		}
	}
	return true
}

func (e *Expr) evalOR(ctx *fasthttp.RequestCtx, buf []byte) bool {
	for i := range e.items {
		if e.items[i].eval(ctx, buf) {
			return true
		}
	}
	return false
}

func (it *exprItem) eval(ctx *fasthttp.RequestCtx, buf []byte) bool {
	if it.sub != nil {
		return it.sub.Eval(ctx, buf)
	}
	val, ok := it.v.Value(ctx, buf[:0])
	return it.compare(val, ok) != it.reverse
}

// compare implements lua-resty-expr's compare_funcs; ok=false is Lua nil.
func (it *exprItem) compare(l []byte, ok bool) bool {
	switch it.op {
	case opEQ:
		if it.isList {
			return false
		}
		if it.isNum {
			n, nok := luaToNumber(l, ok)
			return nok && n == it.num
		}
		if it.isNull {
			return !ok
		}
		return ok && bytes.Equal(l, it.str)
	case opNE:
		if it.isList {
			return true
		}
		if it.isNum {
			n, nok := luaToNumber(l, ok)
			return !nok || n != it.num
		}
		if it.isNull {
			return ok
		}
		return !ok || !bytes.Equal(l, it.str)
	case opGT, opGE, opLT, opLE:
		n, nok := luaToNumber(l, ok)
		r := it.num
		if !it.isNum {
			var rok bool
			r, rok = luaToNumber(it.str, !it.isNull)
			if !rok {
				return false
			}
		}
		if !nok {
			return false
		}
		switch it.op {
		case opGT:
			return n > r
		case opGE:
			return n >= r
		case opLT:
			return n < r
		default:
			return n <= r
		}
	case opRegex, opRegexI:
		return ok && it.re.Match(l)
	case opIn:
		if !ok {
			return false
		}
		for i := range it.list {
			// Lua compares strings and numbers by type: "1" is not 1.
			if !it.list[i].isNum && bytes.Equal(l, it.list[i].str) {
				return true
			}
		}
		return false
	case opHas:
		// The left value is a single string here, never a Lua table, so
		// lua-resty-expr's has_element answers false.
		return false
	case opIPMatch:
		if !ok {
			return false
		}
		a, err := netip.ParseAddr(b2s(l))
		if err != nil {
			return false
		}
		a = a.Unmap()
		for _, p := range it.nets {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return false
}

// luaToNumber mirrors Lua's tonumber for the decimal and hex forms. It
// checks the syntax itself first: strconv's errors allocate, and this runs
// on the request path.
func luaToNumber(b []byte, ok bool) (float64, bool) {
	if !ok {
		return 0, false
	}
	s := strings.TrimSpace(b2s(b))
	neg := false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg = s[0] == '-'
		s = s[1:]
	}
	if len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		if len(s) > 18 || !allHex(s[2:]) {
			return 0, false
		}
		n, err := strconv.ParseUint(s[2:], 16, 64)
		if err != nil {
			return 0, false
		}
		if neg {
			return -float64(n), true
		}
		return float64(n), true
	}
	if !isDecimal(s) {
		return 0, false
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return len(s) > 0
}

// isDecimal accepts digits with an optional fraction and exponent
// ("12", "1.5", ".5", "1e3", "2.5E-3").
func isDecimal(s string) bool {
	i, digits := 0, 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, exp = i+1, exp+1
		}
		if exp == 0 || exp > 4 {
			return false
		}
	}
	return i == len(s)
}
