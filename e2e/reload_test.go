package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// waitLog waits until the gateway's log has n occurrences of s.
func waitLog(t *testing.T, g *gateway, s string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(g.logs(), s) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the log never said %q %d times:\n%s", s, n, g.logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReloadOnSIGHUP changes the config file under load and sends SIGHUP:
// the reloadable settings (a limit, the admin key) apply at once, a
// restart-only one is reported and kept, a broken file changes nothing,
// no request fails, and the admin key never reaches the log.
func TestReloadOnSIGHUP(t *testing.T) {
	o := startOrigin(t, nil)
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("max-uri-bytes: 1KiB\nadmin-key: first-key-123\nclient-header-timeout: 60s\n")
	g := startGateway(t, "", "-c", cfg)
	if r := g.doKey("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/*","upstream":{"nodes":{"%s":1}}}`, o.Addr), "first-key-123"); r.Status != 201 {
		t.Fatalf("admin with the first key: %d %s", r.Status, r.Body)
	}

	var served atomic.Int64
	var failures sync.Map
	stopLoad := runLoad(4, func(int) {
		resp, err := proxyClient.Get("http://" + g.proxy + "/load")
		if err != nil {
			failures.Store(err.Error(), true)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failures.Store(fmt.Sprint(resp.StatusCode), true)
			return
		}
		served.Add(1)
	})

	long := "/" + strings.Repeat("u", 2000)
	if code, _, _ := g.get(long); code != 414 {
		t.Fatalf("2000-byte URI with max-uri-bytes 1KiB: %d", code)
	}
	write("max-uri-bytes: 4KiB\nadmin-key: second-key-456\nclient-header-timeout: 5s\n")
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, g, "reload: applied", 1)
	if code, _, _ := g.get(long); code != 200 {
		t.Fatalf("after the reload to 4KiB: %d", code)
	}
	if r := g.doKey("GET", "/apisix/admin/routes", "", "first-key-123"); r.Status != 401 {
		t.Fatalf("the old admin key still works: %d", r.Status)
	}
	if r := g.doKey("GET", "/apisix/admin/routes", "", "second-key-456"); r.Status != 200 {
		t.Fatalf("the new admin key: %d", r.Status)
	}
	if !strings.Contains(g.logs(), "client-header-timeout=5s changed: it takes effect after a restart") {
		t.Errorf("a restart-only change was not reported:\n%s", g.logs())
	}

	write("max-uri-bytes: [not, a, size\n")
	g.cmd.Process.Signal(syscall.SIGHUP)
	waitLog(t, g, "the running settings are kept", 1)
	if code, _, _ := g.get(long); code != 200 {
		t.Fatalf("a broken file changed the limits: %d", code)
	}

	stopLoad()
	failures.Range(func(k, _ any) bool {
		t.Errorf("a request failed during the reloads: %s", k)
		return true
	})
	if served.Load() == 0 {
		t.Fatal("no load was served")
	}
	for _, secret := range []string{"first-key-123", "second-key-456"} {
		if strings.Contains(g.logs(), secret) {
			t.Errorf("the log shows the admin key %q:\n%s", secret, g.logs())
		}
	}
	t.Logf("%d requests served across two reloads, none failed", served.Load())
}

// TestAdminAuthFailuresNeverShowTheKey sends wrong keys in every place the
// key is read from, and a malformed request carrying the real key: every
// failure is counted in /metrics, and neither the real key nor the wrong
// ones appear in the log or in an answer.
func TestAdminAuthFailuresNeverShowTheKey(t *testing.T) {
	const key = "real-admin-key-7f3a9"
	g := startGateway(t, "", "-admin-key", key)
	base := "http://" + g.admin + "/apisix/admin/routes"
	tries := []*http.Request{}
	r, _ := http.NewRequest("GET", base, nil)
	r.Header.Set("X-API-KEY", "wrong-guess-header")
	tries = append(tries, r)
	r, _ = http.NewRequest("GET", base+"?api_key=wrong-guess-query", nil)
	tries = append(tries, r)
	r, _ = http.NewRequest("GET", base, nil)
	r.AddCookie(&http.Cookie{Name: "x_api_key", Value: "wrong-guess-cookie"})
	tries = append(tries, r)
	r, _ = http.NewRequest("GET", base, nil) // no key at all
	tries = append(tries, r)
	for _, req := range tries {
		resp, err := adminClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || strings.Contains(string(b), "wrong-guess") || strings.Contains(string(b), key) {
			t.Errorf("%s: %d %s", req.URL, resp.StatusCode, b)
		}
	}
	// Requests the servers cannot parse, carrying the real key: the parse
	// errors must not log the request's bytes.
	for _, bad := range []string{
		"GET /apisix/admin/routes HTTP/1.1\r\nHost: a\r\nX-API-KEY: " + key + "\r\nBad\x01Header: x\r\n\r\n",
		"GET /apisix/admin/routes\r\nHost: a\r\nX-API-KEY: " + key + "\r\n\r\n",
		"GET /apisix/admin/routes?api_key=" + key + " HTTP/9\r\nHost: a\r\n\r\n",
	} {
		rawExchange(t, g.admin, bad, time.Second)
		rawExchange(t, g.proxy, bad, time.Second)
	}
	if got := scrapeCounter(t, g, "gateway_admin_auth_failures_total"); got != 4 {
		t.Errorf("gateway_admin_auth_failures_total = %v, want 4", got)
	}
	logs := g.logs()
	if strings.Count(logs, "admin: refused") != 4 {
		t.Errorf("want 4 refusals logged:\n%s", logs)
	}
	for _, s := range []string{key, "wrong-guess"} {
		if strings.Contains(logs, s) {
			t.Errorf("the log shows %q:\n%s", s, logs)
		}
	}
}

// TestListenersDefaultToLoopback reads the defaults from gateway -h: the
// Admin API and the control API listen on loopback unless told otherwise.
func TestListenersDefaultToLoopback(t *testing.T) {
	out, _ := runBinary(t, "-h")
	for _, want := range []string{`-admin-listen string`, `(default "127.0.0.1:9180")`,
		`-control-listen string`, `(default "127.0.0.1:9090")`} {
		if !strings.Contains(out, want) {
			t.Errorf("gateway -h lacks %q:\n%s", want, out)
		}
	}
}
