package admin

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"sort"
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"
)

// Kong's Admin API takes every write body as JSON, as
// application/x-www-form-urlencoded or as multipart/form-data
// (kong/api/arguments.lua, arguments_decoder.lua). Form keys nest with dots
// or brackets (`healthchecks.active.http_path=/status`,
// `healthchecks[active][healthy][interval]=5`), arrays are `paths[]=/a`,
// `paths[1]=/a` or a repeated key; values stay strings until
// core.InferKong types them against the entity's schema.

// Limits of the form decoder: Kong's max_post_args, and a nesting depth.
const (
	maxFormArgs  = 1000
	maxFormDepth = 16
	// maxFormIndex bounds `paths[N]`: a larger N is an input error, not a
	// request to build a huge array.
	maxFormIndex = 1000
)

// errCannotParseJSON is answered with Kong's message, "Cannot parse JSON body".
var errCannotParseJSON = errors.New("admin: cannot parse JSON body")

// kongBody decodes a Kong write body into an object. An empty body is an
// empty object.
func kongBody(ctx *fasthttp.RequestCtx) (map[string]any, error) {
	ct := string(ctx.Request.Header.ContentType())
	mt, params, _ := mime.ParseMediaType(ct)
	body := ctx.PostBody()
	switch mt {
	case "application/x-www-form-urlencoded":
		var pairs [][2]string
		for k, v := range ctx.PostArgs().All() {
			pairs = append(pairs, [2]string{string(k), string(v)})
		}
		return DecodeKongForm(pairs)
	case "multipart/form-data":
		if params["boundary"] == "" {
			return nil, errors.New("multipart body without a boundary")
		}
		form, err := ctx.MultipartForm()
		if err != nil {
			return nil, err
		}
		var pairs [][2]string
		for _, k := range sortedKeys(form.Value) {
			for _, v := range form.Value[k] {
				pairs = append(pairs, [2]string{k, v})
			}
		}
		for k, files := range form.File {
			for _, fh := range files {
				f, err := fh.Open()
				if err != nil {
					return nil, err
				}
				b, err := io.ReadAll(io.LimitReader(f, MaxBodySize))
				f.Close()
				if err != nil {
					return nil, err
				}
				pairs = append(pairs, [2]string{k, string(b)})
			}
		}
		return DecodeKongForm(pairs)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	v, err := decodeJSON(body)
	if err != nil {
		return nil, errCannotParseJSON
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errCannotParseJSON
	}
	return obj, nil
}

// formArray collects the items of an array while a form is decoded: items
// given with an index, then those appended with `[]` or a repeated key.
type formArray struct {
	indexed  map[int]any
	appended []any
}

// DecodeKongForm decodes form pairs (in the order they were sent) into a
// nested object of strings, arrays and objects. It fails on more than 1000
// pairs, keys nested deeper than 16 levels and array indexes above 1000.
func DecodeKongForm(pairs [][2]string) (map[string]any, error) {
	if len(pairs) > maxFormArgs {
		return nil, errors.New("too many arguments (the limit is 1000)")
	}
	root := map[string]any{}
	for _, p := range pairs {
		path, err := splitFormKey(p[0])
		if err != nil {
			return nil, err
		}
		// The first segment always names a field.
		v, err := putForm(root[path[0]], path[1:], p[1])
		if err != nil {
			return nil, err
		}
		root[path[0]] = v
	}
	return finishForm(root).(map[string]any), nil
}

// splitFormKey splits a key into segments: names separated by dots, and
// the contents of brackets (which may hold dots). "" is an append, a number
// an index. A key that starts or ends with a dot is one plain name.
func splitFormKey(key string) ([]string, error) {
	if key == "" || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") || !strings.ContainsAny(key, ".[") {
		return []string{key}, nil
	}
	var segs []string
	var cur strings.Builder
	for i := 0; i < len(key); i++ {
		switch c := key[i]; c {
		case '.':
			if cur.Len() > 0 {
				segs = append(segs, cur.String())
				cur.Reset()
			}
		case '[':
			end := strings.IndexByte(key[i:], ']')
			if end < 0 || (i == 0 && cur.Len() == 0) {
				cur.WriteByte(c)
				continue
			}
			if cur.Len() > 0 {
				segs = append(segs, cur.String())
				cur.Reset()
			}
			segs = append(segs, key[i+1:i+end])
			i += end
		default:
			cur.WriteByte(c)
		}
	}
	if cur.Len() > 0 {
		segs = append(segs, cur.String())
	}
	if len(segs) == 0 {
		return []string{key}, nil
	}
	if len(segs) > maxFormDepth {
		return nil, errors.New("argument " + strconv.Quote(key) + " is nested too deeply")
	}
	return segs, nil
}

// formIndex returns the array index a segment names (1-based, as Kong),
// or -1 for an append; ok is false for a map key.
func formIndex(seg string) (int, bool, error) {
	if seg == "" {
		return -1, true, nil
	}
	n, err := strconv.Atoi(seg)
	if err != nil {
		return 0, false, nil
	}
	if n < 0 || n > maxFormIndex {
		return 0, true, errors.New("array index " + seg + " is out of range (0-1000)")
	}
	return n, true, nil
}

// putForm stores value at path under node (nil, a string, a map or a
// *formArray) and returns the node that replaces it.
func putForm(node any, path []string, value string) (any, error) {
	if len(path) == 0 {
		return combineForm(node, value), nil
	}
	seg := path[0]
	idx, isIndex, err := formIndex(seg)
	if err != nil {
		return nil, err
	}
	if isIndex {
		arr, ok := node.(*formArray)
		if !ok {
			arr = &formArray{indexed: map[int]any{}}
			if s, isStr := node.(string); isStr {
				arr.appended = append(arr.appended, s)
			}
		}
		if idx < 0 {
			v, err := putForm(nil, path[1:], value)
			if err != nil {
				return nil, err
			}
			arr.appended = append(arr.appended, v)
			return arr, nil
		}
		v, err := putForm(arr.indexed[idx], path[1:], value)
		if err != nil {
			return nil, err
		}
		arr.indexed[idx] = v
		return arr, nil
	}
	m, ok := node.(map[string]any)
	if !ok {
		m = map[string]any{}
	}
	v, err := putForm(m[seg], path[1:], value)
	if err != nil {
		return nil, err
	}
	m[seg] = v
	return m, nil
}

// combineForm merges a repeated value: the first is kept as a scalar, a
// second turns it into an array (Kong's combine_arg).
func combineForm(existing any, value string) any {
	switch x := existing.(type) {
	case nil:
		return value
	case *formArray:
		x.appended = append(x.appended, value)
		return x
	case string:
		return &formArray{indexed: map[int]any{}, appended: []any{x, value}}
	}
	return value
}

// finishForm turns the *formArray collectors into []any.
func finishForm(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = finishForm(e)
		}
		return x
	case *formArray:
		idx := make([]int, 0, len(x.indexed))
		for i := range x.indexed {
			idx = append(idx, i)
		}
		sort.Ints(idx)
		out := make([]any, 0, len(idx)+len(x.appended))
		for _, i := range idx {
			out = append(out, finishForm(x.indexed[i]))
		}
		for _, e := range x.appended {
			out = append(out, finishForm(e))
		}
		return out
	}
	return v
}
