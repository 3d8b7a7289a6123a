package core

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// checkValidationError fails unless err is a *ValidationError with the
// message want (as Error returns it).
func checkValidationError(t *testing.T, body string, err error, want string) *ValidationError {
	t.Helper()
	if err == nil {
		t.Fatalf("body %s: no error, want %q", body, want)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("body %s: error %T %q is not a *ValidationError", body, err, err)
	}
	if ve.Error() != want {
		t.Fatalf("body %s:\n got error %q\nwant error %q", body, ve.Error(), want)
	}
	return ve
}

func TestFormatNumber(t *testing.T) {
	f := func(v float64, want string) {
		t.Helper()
		if got := formatNumber(v); got != want {
			t.Fatalf("formatNumber(%v) = %q, want %q", v, got, want)
		}
	}
	// Lua's tostring ("%.14g").
	f(-1, "-1")
	f(0, "0")
	f(0.5, "0.5")
	f(-0.15, "-0.15")
	f(70000, "70000")
	f(1e14, "1e+14")
	f(1e20, "1e+20")
	f(123456789012.5, "123456789012.5")
}

func TestLuaQuote(t *testing.T) {
	f := func(s, want string) {
		t.Helper()
		if got := luaQuote(s); got != want {
			t.Fatalf("luaQuote(%q) = %s, want %s", s, got, want)
		}
	}
	f(``, `""`)
	f(`retries`, `"retries"`)
	f(`^\*?[a]+$`, `"^\\*?[a]+$"`)
	f(`say "hi"`, `"say \"hi\""`)
	f("a\nb\r\x00", `"a\nb\r\0"`)
	f("é", `"é"`)
}

func TestVarRefs(t *testing.T) {
	f := func(tpl string, want ...string) {
		t.Helper()
		if got := varRefs(tpl); !reflect.DeepEqual(got, want) {
			t.Fatalf("varRefs(%q) = %q, want %q", tpl, got, want)
		}
	}
	f(`plain`)
	f(`$remote_addr`, "remote_addr")
	f(`$http_a-$arg_b`, "http_a", "arg_b")
	f(`${http_a}x${ arg_b }`, "http_a", "arg_b")
	f(`${cookie_c ?? none}`, "cookie_c")
	f(`\$not_a_var $uri`, "uri")
	f(`$`)
}

// TestEmptyContainers checks APISIX's quirk: `{}` and `[]` are the same
// empty Lua table, so each passes where the other is expected.
func TestEmptyContainers(t *testing.T) {
	u, err := ParseUpstream([]byte(`{"nodes":{},"labels":[],"keepalive_pool":[],"checks":{"active":[]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if u.Labels != nil || u.KeepalivePool == nil || u.Checks.Active == nil {
		t.Fatalf("got %+v", u)
	}
	body := `{"nodes":{},"retry_on_statuses":{"a":1}}`
	_, err = ParseUpstream([]byte(body))
	checkValidationError(t, body, err, `property "retry_on_statuses" validation failed: wrong type: expected array, got object`)
}

func TestSeconds(t *testing.T) {
	f := func(v string, want time.Duration) {
		t.Helper()
		got, err := atLeast(0).seconds(numberOf(v))
		if err != nil || got != want {
			t.Fatalf("seconds(%s) = %v, %v; want %v", v, got, err, want)
		}
	}
	f("0", 0)
	f("0.001", time.Millisecond)
	f("0.15", 150*time.Millisecond)
	f("1e-12", 1) // positive never becomes zero
	f("60", time.Minute)
	f("9223372036", 9223372036*time.Second)
}
