// Package e2e holds black-box tests: they build the real gateway binary,
// start it with real origin servers on 127.0.0.1, and talk to it over
// HTTP only.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/testport"
)

// binary is the gateway built once for the whole test run.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gateway-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "gateway")
	build := exec.Command("go", "build", "-o", binary, "../cmd/gateway")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cannot build the gateway:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// gateway is one running gateway process.
type gateway struct {
	t        *testing.T
	cmd      *exec.Cmd
	dataDir  string
	proxy    string // host:port
	admin    string // host:port
	tls      string // host:port of the HTTPS listener; "" when disabled
	control  string // host:port of the control API
	key      string
	args     []string
	logMu    sync.Mutex
	log      bytes.Buffer
	exited   chan struct{}
	exitCode atomic.Int32
}

// freePort returns a port that was free a moment ago, below the
// ephemeral range (see testport).
func freePort(t testing.TB) int { return testport.Free(t) }

// startGateway starts the binary on free ports with a fresh data dir (or
// the given one) and waits until both listeners answer.
func startGateway(t *testing.T, dataDir string, extra ...string) *gateway {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	g := &gateway{t: t, dataDir: dataDir,
		proxy: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		admin: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		// Every gateway gets its own control port: the default 9090 would
		// collide between gateways running side by side.
		control: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
	}
	g.args = append([]string{"-listen", g.proxy, "-admin-listen", g.admin, "-control-listen", g.control,
		"-data-dir", dataDir}, extra...)
	hasTLS := false
	for i, a := range extra {
		if a == "-admin-key" && i+1 < len(extra) {
			g.key = extra[i+1]
		}
		if a == "-listen-tls" && i+1 < len(extra) {
			hasTLS, g.tls = true, extra[i+1]
		}
	}
	if !hasTLS {
		// Never the default 0.0.0.0:9443: gateways of parallel test runs
		// would collide there.
		g.tls = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		g.args = append(g.args, "-listen-tls", g.tls)
	}
	g.start()
	t.Cleanup(g.kill)
	return g
}

func (g *gateway) start() {
	g.t.Helper()
	g.spawn()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-g.exited:
			g.t.Fatalf("gateway exited early (code %d):\n%s", g.exitCode.Load(), g.logs())
		default:
		}
		if listening(g.proxy) && listening(g.admin) && (g.tls == "" || listening(g.tls)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Fatalf("gateway did not start:\n%s", g.logs())
}

// spawn starts the binary with g.args, its output collected in g.log and
// its exit recorded in g.exitCode and g.exited; it does not wait for the
// listeners.
func (g *gateway) spawn() {
	g.t.Helper()
	g.cmd = exec.Command(binary, g.args...)
	pr, pw := io.Pipe()
	g.cmd.Stdout, g.cmd.Stderr = pw, pw
	g.exited = make(chan struct{})
	if err := g.cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			g.logMu.Lock()
			g.log.WriteString(sc.Text() + "\n")
			g.logMu.Unlock()
		}
	}()
	go func() {
		err := g.cmd.Wait()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		g.exitCode.Store(int32(code))
		pw.Close()
		close(g.exited)
	}()
}

func (g *gateway) logs() string {
	g.logMu.Lock()
	defer g.logMu.Unlock()
	return g.log.String()
}

// kill stops the process with SIGKILL (no drain) if it still runs.
func (g *gateway) kill() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
	default:
		g.cmd.Process.Signal(syscall.SIGKILL)
		<-g.exited
	}
	if g.t.Failed() {
		g.t.Logf("gateway log:\n%s", g.logs())
	}
}

// terminate sends SIGTERM and waits for the exit code.
func (g *gateway) terminate(timeout time.Duration) int {
	g.t.Helper()
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
		return int(g.exitCode.Load())
	case <-time.After(timeout):
		g.t.Fatalf("gateway did not exit within %v after SIGTERM:\n%s", timeout, g.logs())
		return -1
	}
}

// adminResp is one Admin API answer.
type adminResp struct {
	Status int
	Body   []byte
	Header http.Header
}

// JSON decodes the body into a generic value.
func (r adminResp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("admin answered non-JSON %q: %v", r.Body, err)
	}
	return v
}

// do sends an admin request with the gateway's key.
func (g *gateway) do(method, path, body string) adminResp {
	g.t.Helper()
	return g.doKey(method, path, body, g.key)
}

func (g *gateway) doKey(method, path, body, key string) adminResp {
	g.t.Helper()
	h := http.Header{}
	if key != "" {
		h.Set("X-API-KEY", key)
	}
	return g.adminRequest(method, path, body, h)
}

// adminRequest sends a request to the admin listener with header set.
func (g *gateway) adminRequest(method, path, body string, header http.Header) adminResp {
	g.t.Helper()
	req, err := http.NewRequest(method, "http://"+g.admin+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := adminClient.Do(req)
	if err != nil {
		g.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return adminResp{Status: resp.StatusCode, Body: b, Header: resp.Header}
}

// mustDo sends an admin request and fails unless the status is want.
func (g *gateway) mustDo(method, path, body string, want int) adminResp {
	g.t.Helper()
	r := g.do(method, path, body)
	if r.Status != want {
		g.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.Status, want, r.Body)
	}
	return r
}

var adminClient = &http.Client{Timeout: 20 * time.Second}

// proxyClient keeps connections alive across requests, like a real client.
var proxyClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
}

// get sends a proxied request and returns status, body and headers.
func (g *gateway) get(path string, hdr ...string) (int, string, http.Header) {
	g.t.Helper()
	return g.request("GET", path, "", hdr...)
}

func (g *gateway) request(method, path, body string, hdr ...string) (int, string, http.Header) {
	g.t.Helper()
	req, err := http.NewRequest(method, "http://"+g.proxy+path, strings.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if body == "" {
		req.Body = nil
		req.ContentLength = 0
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if strings.EqualFold(hdr[i], "Host") {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := proxyClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		g.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// origin is a real HTTP server on 127.0.0.1. By default it answers with
// its own port, which tells a test which node served a request.
type origin struct {
	Port  int
	Addr  string
	hits  atomic.Int64
	conns atomic.Int64
	last  atomic.Pointer[http.Request]
	srv   *http.Server
	ln    net.Listener
}

func startOrigin(t testing.TB, h http.HandlerFunc) *origin {
	t.Helper()
	return listenOrigin(t, "127.0.0.1:0", func(o *origin, w http.ResponseWriter, r *http.Request) {
		if h != nil {
			h(w, r)
			return
		}
		fmt.Fprint(w, o.Port)
	})
}

// listenOrigin starts an origin on addr that counts its requests and
// connections, keeps the last request and answers with respond.
func listenOrigin(t testing.TB, addr string, respond func(o *origin, w http.ResponseWriter, r *http.Request)) *origin {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	o := &origin{ln: ln, Port: ln.Addr().(*net.TCPAddr).Port, Addr: ln.Addr().String()}
	o.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			o.hits.Add(1)
			o.last.Store(r)
			respond(o, w, r)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				o.conns.Add(1)
			}
		},
	}
	go o.srv.Serve(ln)
	t.Cleanup(func() { o.srv.Close() })
	return o
}

// deadAddr returns a 127.0.0.1 address nothing listens on.
func deadAddr(t testing.TB) string {
	return fmt.Sprintf("127.0.0.1:%d", freePort(t))
}

// runBinary runs the gateway to completion (it is expected to exit by
// itself within 10 s) and returns its combined output.
func runBinary(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("gateway %v did not exit:\n%s", args, out.String())
		return "", nil
	}
}

// waitLog waits up to 5 s until the gateway's log contains want (the log
// is read asynchronously).
func (g *gateway) waitLog(want string) {
	g.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(g.logs(), want); {
		if time.Now().After(deadline) {
			g.t.Fatalf("the gateway log lacks %q:\n%s", want, g.logs())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runLoad calls request from workers goroutines (worker is 0 to
// workers-1), over and over, until the returned stop is called. stop waits
// for the calls in flight to return and may be called more than once.
func runLoad(workers int, request func(worker int)) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				default:
				}
				request(w)
			}
		})
	}
	return sync.OnceFunc(func() { close(quit); wg.Wait() })
}
