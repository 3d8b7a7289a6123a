package admin

import (
	"strings"

	"github.com/goccy/go-json"
)

// mergePatch deep-merges patch into dst as APISIX's PATCH does: objects
// merge key by key, arrays and scalars replace, and null deletes.
func mergePatch(dst, patch map[string]any) map[string]any {
	for k, pv := range patch {
		if pv == nil {
			delete(dst, k)
			continue
		}
		pm, pIsObj := pv.(map[string]any)
		dm, dIsObj := dst[k].(map[string]any)
		if pIsObj && dIsObj {
			dst[k] = mergePatch(dm, pm)
			continue
		}
		dst[k] = pv
	}
	return dst
}

// patchPath replaces the subtree at the slash-separated path with val,
// creating missing intermediate objects. It returns an error message when
// an intermediate value is not an object.
func patchPath(obj map[string]any, path string, val any) string {
	parts := strings.Split(path, "/")
	cur := obj
	for i, p := range parts[:len(parts)-1] {
		next, exists := cur[p]
		if !exists || next == nil {
			m := map[string]any{}
			cur[p] = m
			cur = m
			continue
		}
		m, ok := next.(map[string]any)
		if !ok {
			return "invalid sub-path: /" + strings.Join(parts[:i+1], "/")
		}
		cur = m
	}
	last := parts[len(parts)-1]
	if val == nil {
		delete(cur, last)
	} else {
		cur[last] = val
	}
	return ""
}

// copyJSON deep-copies a decoded JSON value.
func copyJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(x))
		for k, e := range x {
			c[k] = copyJSON(e)
		}
		return c
	case []any:
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = copyJSON(e)
		}
		return c
	case json.Number, string, bool, nil, float64:
		return x
	}
	return v
}
