package harness

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func FreeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(fmt.Sprintf("harness: cannot find a free port: %v", err))
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitTCP waits until addr accepts connections, p exits, or timeout.
func WaitTCP(addr string, p *Proc, timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for time.Now().Before(end) {
		if p != nil && p.Exited() {
			return fmt.Errorf("harness: %s exited before listening on %s:\n%s", p.Name, addr, p.Tail(20))
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	name := "process"
	if p != nil {
		name = p.Name
	}
	return fmt.Errorf("harness: %s not listening on %s after %v", name, addr, timeout)
}

// StartOrigins runs the allocation-free origin (loadtest/origin) on the
// given addresses, pinned to cpus.
func StartOrigins(dir, bin, cpus string, size int, addrs ...string) (*Proc, error) {
	p, err := Start(dir, "origin", cpus, nil, bin, "-listen", strings.Join(addrs, ","), "-size", strconv.Itoa(size))
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if err := WaitTCP(a, p, 10*time.Second); err != nil {
			p.Stop()
			return nil, err
		}
	}
	return p, nil
}

// GatewayOptions describes a gateway process.
type GatewayOptions struct {
	Bin        string // the gateway binary (bin/gateway)
	Dir        string // work directory: logs, and the data directory
	Name       string // log name, default "gateway"
	CPUs       string // taskset -c value
	GOMAXPROCS int    // 0 leaves it unset
	Standalone string // a standalone file; empty for the embedded store
	Ready      time.Duration
}

// Gateway is a running gateway.
type Gateway struct {
	*Proc
	Proxy string // proxy listener, 127.0.0.1:port
	Admin string // admin listener
}

// StartGateway starts a gateway on free loopback ports (HTTPS and control listeners
// off) and waits until its proxy listener accepts: the gateway opens it
// only once its configuration is compiled.
func StartGateway(o GatewayOptions) (*Gateway, error) {
	if o.Name == "" {
		o.Name = "gateway"
	}
	if o.Ready == 0 {
		o.Ready = 2 * time.Minute
	}
	g := &Gateway{Proxy: FreeAddr(), Admin: FreeAddr()}
	argv := []string{o.Bin, "-listen", g.Proxy, "-admin-listen", g.Admin, "-listen-tls", "", "-control-listen", ""}
	if o.Standalone != "" {
		argv = append(argv, "-standalone", o.Standalone)
	} else {
		argv = append(argv, "-data-dir", filepath.Join(o.Dir, o.Name+"-data"))
	}
	var env []string
	if o.GOMAXPROCS > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(o.GOMAXPROCS))
	}
	p, err := Start(o.Dir, o.Name, o.CPUs, env, argv...)
	if err != nil {
		return nil, err
	}
	g.Proc = p
	if err := WaitTCP(g.Proxy, p, o.Ready); err != nil {
		p.Stop()
		return nil, err
	}
	if err := WaitTCP(g.Admin, p, 10*time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	return g, nil
}

// adminClient is shared by the Admin API helpers; it keeps connections
// alive so that concurrent writers do not exhaust ephemeral ports.
var adminClient = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512},
}

// Put writes an Admin API object (path under /apisix/admin/) and checks
// the answer is 2xx.
func (g *Gateway) Put(path, body string) error {
	return AdminPut(g.Admin, path, body)
}

// AdminPut is Gateway.Put for an admin address.
func AdminPut(admin, path, body string) error {
	req, err := http.NewRequest("PUT", "http://"+admin+"/apisix/admin/"+strings.TrimPrefix(path, "/"), bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := adminClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("harness: PUT %s: %d %s", path, resp.StatusCode, b)
	}
	return nil
}

// PutMany writes n Admin API objects from workers goroutines at once
// (the store batches concurrent writes into one fsync) and returns the
// first error. obj returns the path and body of object i.
func PutMany(admin string, n, workers int, obj func(i int) (path, body string)) error {
	next := make(chan int)
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := range next {
				path, body := obj(i)
				if err := AdminPut(admin, path, body); err != nil {
					errc <- err
					// Drain so the feeder never blocks.
					for range next {
					}
					return
				}
			}
			errc <- nil
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var first error
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}
