// Package dnsmasq runs a real DNS server (Debian's dnsmasq) on a free
// loopback port for tests, with the records a test gives it. Tests that
// use it are skipped, with a message saying so, when dnsmasq is not
// installed (.ci/run installs it).
package dnsmasq

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgeway/gateway/internal/testport"
	"github.com/miekg/dns"
)

// Config describes the server's records.
type Config struct {
	// Zone, when set, makes the server authoritative for that zone: it
	// answers names it knows with the AA bit, and names it does not know
	// with an authoritative NXDOMAIN (or NODATA). Without a zone, dnsmasq
	// answers REFUSED for anything it does not know.
	Zone string
	// TTL is the TTL of every record, in seconds (default 1).
	TTL int
	// Records are dnsmasq configuration lines, e.g.
	// "srv-host=_http._tcp.web.test,a.web.test,8001,10,3" or
	// "host-record=a.web.test,127.0.0.1".
	Records []string
	// Hosts is the content of an additional hosts file ("127.0.0.2
	// web.test" lines), which SetHosts replaces without a restart.
	Hosts string
}

// Server is one running dnsmasq.
type Server struct {
	// Addr is "127.0.0.1:port", for UDP and TCP.
	Addr string

	t     testing.TB
	bin   string
	dir   string
	port  int
	cfg   Config
	cmd   *exec.Cmd
	done  chan struct{}
	hosts string
}

// Start starts dnsmasq with cfg, or skips the test when dnsmasq is not
// installed. It is stopped when the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	bin, err := exec.LookPath("dnsmasq")
	if err != nil {
		if _, err := os.Stat("/usr/sbin/dnsmasq"); err != nil {
			t.Skip("dnsmasq is not installed (apt-get install dnsmasq-base); .ci/run installs it")
		}
		bin = "/usr/sbin/dnsmasq"
	}
	if cfg.TTL == 0 {
		cfg.TTL = 1
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir(), cfg: cfg}
	s.hosts = filepath.Join(s.dir, "hosts")
	s.writeFile("hosts", cfg.Hosts)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		s.port = freePort(t)
		s.Addr = fmt.Sprintf("127.0.0.1:%d", s.port)
		if lastErr = s.start(); lastErr == nil {
			t.Cleanup(s.Stop)
			return s
		}
	}
	t.Fatalf("cannot start dnsmasq: %v", lastErr)
	return nil
}

func (s *Server) writeFile(name, content string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *Server) start() error {
	conf := strings.Join(s.cfg.Records, "\n") + "\n"
	s.writeFile("dnsmasq.conf", conf)
	args := []string{
		"--no-resolv", "--no-hosts", "--keep-in-foreground", "--bind-interfaces",
		"--listen-address=127.0.0.1", fmt.Sprintf("--port=%d", s.port),
		"--conf-file=" + filepath.Join(s.dir, "dnsmasq.conf"), "--addn-hosts=" + s.hosts,
		"--pid-file", "--log-facility=" + filepath.Join(s.dir, "log"),
		fmt.Sprintf("--local-ttl=%d", s.cfg.TTL), fmt.Sprintf("--auth-ttl=%d", s.cfg.TTL),
		// No cache: a restarted or reloaded server answers from its files.
		"--cache-size=0",
	}
	if s.cfg.Zone != "" {
		args = append(args, "--auth-zone="+s.cfg.Zone, "--auth-server=ns."+s.cfg.Zone+",127.0.0.1")
	}
	if os.Geteuid() == 0 {
		// Stay root: the temporary files are not readable by nobody,
		// and SIGHUP re-reads the hosts file.
		args = append(args, "--user=root")
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	// Ready once it answers anything.
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("ready.check.", dns.TypeA)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		select {
		case <-done:
			return fmt.Errorf("dnsmasq exited at start (port %d taken?)", s.port)
		default:
		}
		if _, _, err := c.Exchange(m, s.Addr); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("dnsmasq did not answer on %s", s.Addr)
}

// Stop kills the server (as a crash would) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Restart starts the server again on the same port with records (nil
// keeps the current ones).
func (s *Server) Restart(records []string) {
	s.t.Helper()
	s.Stop()
	if records != nil {
		s.cfg.Records = records
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = s.start(); err == nil {
			return
		}
	}
	s.t.Fatalf("cannot restart dnsmasq on %s: %v", s.Addr, err)
}

// SetHosts replaces the additional hosts file and makes the server read
// it again (SIGHUP).
func (s *Server) SetHosts(content string) {
	s.t.Helper()
	s.writeFile("hosts", content)
	if s.cmd != nil {
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			s.t.Fatal(err)
		}
	}
}

// freePort returns a loopback port that was free for both UDP and TCP a
// moment ago, below the ephemeral range: while a test has the server
// stopped, the gateway's queries to it use ephemeral source ports, which
// must not take the server's port before it restarts.
func freePort(t testing.TB) int { return testport.FreeUDPAndTCP(t) }
