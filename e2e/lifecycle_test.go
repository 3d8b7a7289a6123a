package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPersistenceAcrossKill9 writes through the Admin API, kills the
// process without warning, restarts it on the same data dir and checks
// every acknowledged write is served.
func TestPersistenceAcrossKill9(t *testing.T) {
	a := startOrigin(t, nil)
	dir := t.TempDir()
	g := startGateway(t, dir)
	g.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1}}`, a.Addr), 201)
	for i := 0; i < 20; i++ {
		g.mustDo("PUT", fmt.Sprintf("/apisix/admin/routes/r%d", i), fmt.Sprintf(`{"uri":"/r%d","upstream_id":"u"}`, i), 201)
	}
	g.mustDo("DELETE", "/apisix/admin/routes/r0", "", 200)
	g.kill()

	g2 := startGateway(t, dir)
	for i := 1; i < 20; i++ {
		if code, body, _ := g2.get(fmt.Sprintf("/r%d", i)); code != 200 || body != port(a) {
			t.Fatalf("after kill -9, /r%d: %d %q", i, code, body)
		}
	}
	if code, _, _ := g2.get("/r0"); code != 404 {
		t.Fatalf("a deleted route came back: %d", code)
	}
	r := g2.mustDo("GET", "/apisix/admin/routes", "", 200)
	if total := r.JSON(t)["total"].(float64); total != 19 {
		t.Fatalf("after restart the store lists %v routes, want 19", total)
	}
}

// TestReadYourWrites sends a request right after each admin write.
func TestReadYourWrites(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	g := startGateway(t, "")
	for i := 0; i < 50; i++ {
		target := a
		if i%2 == 1 {
			target = b
		}
		g.mustDo("PUT", "/apisix/admin/routes/flip", fmt.Sprintf(`{"uri":"/flip","upstream":{"nodes":{"%s":1}}}`, target.Addr), []int{201, 200}[min(i, 1)])
		if code, body, _ := g.get("/flip"); code != 200 || body != port(target) {
			t.Fatalf("write %d: right after the 2xx the gateway served %d %q, want %q", i, code, body, port(target))
		}
	}
	g.mustDo("DELETE", "/apisix/admin/routes/flip", "", 200)
	if code, _, _ := g.get("/flip"); code != 404 {
		t.Fatalf("right after DELETE: %d", code)
	}
}

// TestConfigWritesDuringLoad streams admin writes while clients send
// requests: no request may fail.
func TestConfigWritesDuringLoad(t *testing.T) {
	a, b := startOrigin(t, nil), startOrigin(t, nil)
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":1,"%s":1}}`, a.Addr, b.Addr), 201)
	g.mustDo("PUT", "/apisix/admin/routes/hot", `{"uri":"/hot","upstream_id":"u"}`, 201)

	var ok, failed atomic.Int64
	stopLoad := runLoad(8, func(int) {
		resp, err := proxyClient.Get("http://" + g.proxy + "/hot")
		if err != nil {
			failed.Add(1)
			return
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			ok.Add(1)
		} else {
			failed.Add(1)
		}
	})
	for i := 0; i < 100; i++ {
		w := 1 + i%3
		g.mustDo("PUT", "/apisix/admin/upstreams/u", fmt.Sprintf(`{"nodes":{"%s":%d,"%s":1},"desc":"v%d"}`, a.Addr, w, b.Addr, i), 200)
		g.mustDo("PUT", fmt.Sprintf("/apisix/admin/routes/extra%d", i), `{"uri":"/extra","upstream_id":"u"}`, 201)
	}
	stopLoad()
	if failed.Load() != 0 || ok.Load() == 0 {
		t.Fatalf("%d requests failed, %d succeeded during 200 config writes", failed.Load(), ok.Load())
	}
	t.Logf("%d requests served during 200 config writes, none failed", ok.Load())
}

// TestSIGTERMDrains starts slow requests, sends SIGTERM, and checks they
// all complete and the process exits 0.
func TestSIGTERMDrains(t *testing.T) {
	slow := startOrigin(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(700 * time.Millisecond)
		fmt.Fprint(w, "done")
	})
	g := startGateway(t, "")
	g.mustDo("PUT", "/apisix/admin/routes/s", fmt.Sprintf(`{"uri":"/s","upstream":{"nodes":{"%s":1}}}`, slow.Addr), 201)
	var wg sync.WaitGroup
	results := make(chan string, 5)
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get("http://" + g.proxy + "/s")
			if err != nil {
				results <- err.Error()
				return
			}
			defer resp.Body.Close()
			buf := make([]byte, 16)
			n, _ := resp.Body.Read(buf)
			results <- fmt.Sprintf("%d %s", resp.StatusCode, buf[:n])
		}()
	}
	time.Sleep(200 * time.Millisecond)
	if code := g.terminate(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	wg.Wait()
	close(results)
	for r := range results {
		if r != "200 done" {
			t.Fatalf("an in-flight request did not complete: %s", r)
		}
	}
}

// TestConfigFile sets the flags from a YAML file, with the command line
// winning.
func TestConfigFile(t *testing.T) {
	a := startOrigin(t, nil)
	dir := t.TempDir()
	proxyAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	controlAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := filepath.Join(dir, "config.yaml")
	tlsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	os.WriteFile(cfg, []byte(fmt.Sprintf("listen: %s\nlisten_tls: %s\nadmin_listen: 127.0.0.1:1\ndata-dir: %s\nadmin-key: filekey\ncontrol-listen: %s\n",
		proxyAddr, tlsAddr, filepath.Join(dir, "data"), controlAddr)), 0o600)
	g := &gateway{t: t, proxy: proxyAddr, admin: adminAddr, tls: tlsAddr, control: controlAddr, key: "filekey",
		args: []string{"-c", cfg, "-admin-listen", adminAddr}}
	g.start()
	t.Cleanup(g.kill)
	g.mustDo("PUT", "/apisix/admin/routes/1", fmt.Sprintf(`{"uri":"/f","upstream":{"nodes":{"%s":1}}}`, a.Addr), 201)
	if code, _, _ := g.get("/f"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "gateway.db")); err != nil {
		t.Fatalf("data-dir from the file not used: %v", err)
	}
	if code, body := g.controlGet("/v1/healthcheck", ""); code != 200 {
		t.Fatalf("control-listen from the file not used: %d %s", code, body)
	}
	out, err := runBinary(t, "-c", cfg, "-bogus")
	if err == nil || !strings.Contains(out, "bogus") {
		t.Fatalf("unknown flag accepted: %s", out)
	}
	os.WriteFile(cfg, []byte("nonsense_setting: 1\n"), 0o600)
	out, err = runBinary(t, "-c", cfg)
	if err == nil || !strings.Contains(out, "nonsense_setting") {
		t.Fatalf("unknown setting accepted: %s", out)
	}
}
