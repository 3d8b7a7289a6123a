// Package etcdtest runs a real, single-member etcd for tests: Debian's
// etcd-server binary on free loopback ports with a temporary data dir.
//
// Tests that call Start are skipped, with a message saying what to
// install, when the etcd or etcdctl binary is missing; CI (.ci/run)
// installs both, so there they run.
package etcdtest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/testport"
)

// Server is one etcd process. Its methods must be called from the test's
// goroutine (they may call t.Fatal).
type Server struct {
	// Endpoint is the client URL, e.g. "http://127.0.0.1:41234".
	Endpoint string
	// Dir is the data dir; it outlives Stop, so Restart keeps the data.
	Dir string

	t       testing.TB
	etcd    string
	etcdctl string
	args    []string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *bytes.Buffer
}

// Binaries returns the paths of etcd and etcdctl, or a message saying what
// is missing. $ETCD_BIN and $ETCDCTL_BIN override the search of $PATH.
func Binaries() (etcd, etcdctl, missing string) {
	find := func(env, name string) string {
		if p := os.Getenv(env); p != "" {
			return p
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		return ""
	}
	etcd, etcdctl = find("ETCD_BIN", "etcd"), find("ETCDCTL_BIN", "etcdctl")
	var miss []string
	if etcd == "" {
		miss = append(miss, "etcd (Debian package etcd-server)")
	}
	if etcdctl == "" {
		miss = append(miss, "etcdctl (Debian package etcd-client)")
	}
	if len(miss) > 0 {
		missing = "skipping: " + strings.Join(miss, " and ") + " not found in $PATH; `apt-get install etcd-server etcd-client` (.ci/run does)"
	}
	return etcd, etcdctl, missing
}

// Start starts a single-member etcd and waits until it serves requests.
// It is stopped when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartCluster(t, 1)[0]
}

// StartCluster starts an n-member etcd cluster on loopback and waits until
// every member serves requests (the cluster has a leader). The members are
// stopped when the test ends.
func StartCluster(t testing.TB, n int) []*Server {
	t.Helper()
	etcd, etcdctl, missing := Binaries()
	if missing != "" {
		t.Skip(missing)
	}
	// Another process may bind a chosen port first (see testport.Free): then
	// the cluster is started again on new ports.
	for attempt := 1; ; attempt++ {
		members := startMembers(t, n, etcd, etcdctl)
		var err error
		for _, s := range members {
			if err = s.waitReady(); err != nil {
				break
			}
		}
		if err == nil {
			for _, s := range members {
				t.Cleanup(s.Stop)
			}
			return members
		}
		for _, s := range members {
			s.Stop()
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatal(err)
		}
		t.Logf("etcdtest: a port was taken before etcd bound it; starting again on new ports (%v)", err)
	}
}

// startMembers spawns n members of a new cluster on fresh ports.
func startMembers(t testing.TB, n int, etcd, etcdctl string) []*Server {
	t.Helper()
	members := make([]*Server, n)
	peers := make([]string, n)
	var initial []string
	for i := range members {
		members[i] = &Server{
			Endpoint: fmt.Sprintf("http://127.0.0.1:%d", freePort(t)),
			Dir:      t.TempDir(),
			t:        t,
			etcd:     etcd,
			etcdctl:  etcdctl,
		}
		peers[i] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		initial = append(initial, fmt.Sprintf("m%d=%s", i, peers[i]))
	}
	for i, s := range members {
		s.args = []string{
			"--name", fmt.Sprintf("m%d", i),
			"--data-dir", s.Dir,
			"--listen-client-urls", s.Endpoint,
			"--advertise-client-urls", s.Endpoint,
			"--listen-peer-urls", peers[i],
			"--initial-advertise-peer-urls", peers[i],
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--logger", "zap",
			"--log-level", "error",
		}
		// Members find each other only once all run: start them all
		// before waiting for any.
		s.spawn()
	}
	return members
}

func (s *Server) spawn() {
	s.t.Helper()
	cmd := exec.Command(s.etcd, s.args...)
	buf := &bytes.Buffer{}
	s.mu.Lock()
	s.log = buf
	s.mu.Unlock()
	w := &lockedWriter{mu: &s.mu, b: buf}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("cannot start etcd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
}

func (s *Server) waitHealthy() {
	s.t.Helper()
	if err := s.waitReady(); err != nil {
		s.t.Fatal(err)
	}
}

// waitReady waits until etcd serves requests, and returns an error with
// its log when it exits first or takes more than 20 s.
func (s *Server) waitReady() error {
	s.mu.Lock()
	exited := s.exited
	s.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return fmt.Errorf("etcd exited early:\n%s", s.Log())
		default:
		}
		if s.healthy() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("etcd did not become healthy within 20s:\n%s", s.Log())
}

// healthy asks etcd's /health endpoint (true once it has a leader).
func (s *Server) healthy() bool {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(s.Endpoint + "/health")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode == 200 && bytes.Contains(b, []byte(`"true"`))
}

// Stop kills etcd (SIGKILL: an outage, not a shutdown) and waits for it to
// exit. The data dir stays for Restart. Stopping a stopped server does
// nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// Restart starts etcd again on the same ports and data dir and waits until
// it serves requests (a cluster member: until the cluster has a leader).
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.spawn()
	s.waitHealthy()
}

// Spawn starts a stopped member again without waiting for it.
func (s *Server) Spawn() {
	s.t.Helper()
	s.Stop()
	s.spawn()
}

// Ctl runs etcdctl against this server and returns its combined output,
// failing the test when it fails.
func (s *Server) Ctl(args ...string) string {
	s.t.Helper()
	out, err := s.TryCtl("", args...)
	if err != nil {
		s.t.Fatalf("etcdctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TryCtl runs etcdctl with stdin (when not empty) and returns its output
// and error.
func (s *Server) TryCtl(stdin string, args ...string) (string, error) {
	cmd := exec.Command(s.etcdctl, append([]string{"--endpoints", s.Endpoint, "--command-timeout", "5s"}, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Log returns what etcd printed (errors only).
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func freePort(t testing.TB) int { return testport.Free(t) }
