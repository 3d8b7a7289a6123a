// Command gateway is an API gateway that speaks APISIX's Admin API and
// balances HTTP traffic over upstream nodes.
//
//	gateway -listen 0.0.0.0:9080 -listen-tls 0.0.0.0:9443 -admin-listen 127.0.0.1:9180 -data-dir ./data
//	        [-admin-key KEY] [-control-listen 127.0.0.1:9090] [-c config.yaml]
//	gateway ... -etcd http://h1:2379,http://h2:2379 [-etcd-prefix /apisix]
//	gateway ... -dns-servers 10.0.0.10:53,10.0.0.11:53   DNS discovery and host-name nodes
//	gateway -standalone FILE [...]   serve FILE (read-only Admin API), re-applied when it changes
//	gateway validate FILE            check FILE without starting; exit status 1 on any problem
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/edgeway/gateway/admin"
	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/declarative"
	"github.com/edgeway/gateway/discovery"
	"github.com/edgeway/gateway/health"
	"github.com/edgeway/gateway/store"
	"github.com/valyala/fasthttp"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "validate" {
		return runValidate(args[1:], os.Stdout, os.Stderr)
	}
	o, err := parseOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 2
	}
	if o.Standalone != "" && o.Etcd != "" {
		fmt.Fprintln(os.Stderr, "gateway: -standalone and -etcd exclude each other: the file is the whole configuration")
		return 2
	}
	if o.AdminKey == "" && !isLoopbackAddr(o.AdminListen) {
		fmt.Fprintf(os.Stderr, "gateway: refusing to start: the admin listener %s is not a loopback address and no -admin-key is set\n", o.AdminListen)
		return 2
	}
	if err := serve(o, args); err != nil {
		log.Printf("gateway: %v", err)
		return 1
	}
	return 0
}

// serve runs the gateway until SIGTERM or SIGINT, then drains. SIGHUP
// re-reads the config file (reload.go). args are the command line, read
// again on reload.
func serve(o *options, args []string) error {
	var st store.Store
	var watcher *declarative.Watcher
	where := ""
	if o.Standalone != "" {
		mem, w, err := openStandalone(o.Standalone)
		if err != nil {
			return err
		}
		st, watcher, where = mem, w, "standalone file "+o.Standalone
	} else {
		s, w, err := openStore(o)
		if err != nil {
			return err
		}
		st, where = s, w
	}
	defer st.Close()

	rt := core.NewRuntime()
	defer rt.Close()
	rt.Logf = log.Printf
	dns, err := newDNS(o)
	if err != nil {
		return err
	}
	if dns != nil {
		defer dns.Close()
		rt.Discovery = discovery.Set{"dns": dns}
	}
	proxy := core.NewProxy()
	proxy.Logf = log.Printf
	proxy.SetLimits(o.limits())
	// Health checkers follow every published snapshot; the compiler
	// attaches passive checks to each upstream that has checks.
	hm := health.NewManager(health.Options{Logf: log.Printf})
	defer hm.Close()
	rt.Health = hm
	mgr := &core.Manager{Store: st, Runtime: rt, Proxy: proxy, Logf: log.Printf, OnPublish: hm.Sync}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	// SIGHUP is caught from the start (its default ends the process) and
	// handled once serving.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	// Start ready: the proxy listener opens only once the stored
	// configuration is compiled and published. While the store is
	// unreachable (etcd down) the gateway waits rather than serve an empty
	// configuration.
	if stopped, err := startManager(ctx, mgr, where, sig); err != nil || stopped {
		return err
	}
	if watcher != nil {
		go watcher.Run(ctx)
	}

	var servers []namedServer // drained together on SIGTERM
	if o.ControlListen != "" {
		cln, err := net.Listen("tcp", o.ControlListen)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", o.ControlListen, err)
		}
		ctl := &admin.Control{Manager: mgr, Health: hm}
		csrv := &fasthttp.Server{Handler: ctl.Handler(), Name: "edgeway", ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second,
			SecureErrorLogMessage: true, Logger: core.RedactingLogger{}}
		cln = core.NewListener(cln, 0)
		go serveOn(csrv, cln, "control")
		servers = append(servers, namedServer{"control", csrv, cln})
		log.Printf("gateway: control API listening on http://%s/v1/healthcheck", shownAddr(o.ControlListen, cln))
	}

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.Listen, err)
	}
	// The proxy listeners: client limits, lingering close, per-address cap.
	ln = core.NewListener(ln, o.MaxClientConnsPerIP)
	srv := core.NewServer(proxy.Handler)
	proxy.ConfigureServer(srv)
	go serveOn(srv, ln, "proxy")
	servers = append(servers, namedServer{"proxy", srv, ln})
	var tln net.Listener
	if o.ListenTLS != "" {
		tln, err = net.Listen("tcp", o.ListenTLS)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", o.ListenTLS, err)
		}
		// TLS on top of the edge listener, which sees the TCP connection.
		tln = core.NewListener(tln, o.MaxClientConnsPerIP)
		tlsSrv := core.NewServer(proxy.Handler)
		proxy.ConfigureServer(tlsSrv)
		go serveOn(tlsSrv, core.NewTLSListener(tln, proxy.TLSConfig()), "HTTPS proxy")
		servers = append(servers, namedServer{"HTTPS proxy", tlsSrv, tln})
	}

	api := &admin.API{Store: st, Manager: mgr, Key: o.AdminKey, Logf: log.Printf, ReadOnly: watcher != nil, Health: hm}
	aln, err := net.Listen("tcp", o.AdminListen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.AdminListen, err)
	}
	asrv := &fasthttp.Server{
		Handler:               api.Handler(),
		Name:                  "edgeway",
		MaxRequestBodySize:    8 << 20,
		ReadTimeout:           30 * time.Second,
		WriteTimeout:          30 * time.Second,
		IdleTimeout:           60 * time.Second,
		NoDefaultServerHeader: false,
		// Parse errors must not log raw requests: they carry the key.
		SecureErrorLogMessage: true,
		Logger:                core.RedactingLogger{},
	}
	aln = core.NewListener(aln, 0)
	go serveOn(asrv, aln, "admin")
	servers = append(servers, namedServer{"admin", asrv, aln})

	log.Printf("gateway: proxy listening on http://%s", shownAddr(o.Listen, ln))
	if tln != nil {
		log.Printf("gateway: HTTPS proxy listening on https://%s (certificates: the SSL objects, by SNI)", shownAddr(o.ListenTLS, tln))
	}
	log.Printf("gateway: Admin API listening on http://%s/apisix/admin (metrics on /metrics)", shownAddr(o.AdminListen, aln))
	if watcher != nil {
		log.Printf("gateway: standalone mode: serving %s, watched for changes; the Admin API is read-only", o.Standalone)
	} else {
		log.Printf("gateway: configuration store %s (revision %d, %d routes)", where, mgr.Config().Revision, len(mgr.Config().Routes))
	}

	rl := &reloader{args: args, cur: o, proxy: proxy, api: api}
	s := rl.waitForStop(sig, hup)
	o = rl.cur
	log.Printf("gateway: %v: draining in-flight requests (up to %v)", s, o.DrainTimeout)
	dctx, dcancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	defer dcancel()
	drain(dctx, servers...)
	log.Printf("gateway: stopped")
	return nil
}

// openStore opens etcd when -etcd is given, else the embedded store; where
// describes it for the log.
func openStore(o *options) (st store.Store, where string, err error) {
	if o.Etcd == "" {
		b, err := store.OpenBolt(o.DataDir)
		if err != nil {
			return nil, "", err
		}
		return b, o.DataDir, nil
	}
	var eps []string
	for _, ep := range strings.Split(o.Etcd, ",") {
		if ep = strings.TrimSpace(ep); ep != "" {
			eps = append(eps, ep)
		}
	}
	e, err := store.OpenEtcd(store.EtcdOptions{Endpoints: eps, Prefix: o.EtcdPrefix, Logf: log.Printf})
	if err != nil {
		return nil, "", err
	}
	return e, fmt.Sprintf("etcd %s (prefix %s)", e.Endpoints(), e.Prefix()), nil
}

// newDNS starts DNS discovery on -dns-servers, or on the system's name
// servers. Without -dns-servers, a system without resolv.conf runs
// without it (logged): host names of nodes are then resolved when
// connections are dialed, and dns upstreams answer 503.
func newDNS(o *options) (*discovery.DNS, error) {
	var servers []string
	if o.DNSServers != "" {
		servers = strings.Split(o.DNSServers, ",")
		if len(servers) > 0 {
			var err error
			if servers, err = discovery.ParseServers(servers); err != nil {
				return nil, fmt.Errorf("-dns-servers: %w", err)
			}
		}
	}
	d, err := discovery.NewDNS(discovery.DNSOptions{Servers: servers, Logf: log.Printf})
	if err != nil && len(servers) == 0 {
		log.Printf("gateway: DNS discovery is off: %v", err)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	log.Printf("gateway: DNS discovery asks %s", strings.Join(d.Servers(), ", "))
	return d, nil
}

// startRetry is the pause between two attempts to load the configuration
// from an unreachable store.
const startRetry = time.Second

// startManager loads the configuration, retrying for as long as the store
// is unavailable (etcd down) and logging that it waits. Other errors are
// final. stopped is true when a signal ended the wait.
func startManager(ctx context.Context, mgr *core.Manager, where string, sig <-chan os.Signal) (stopped bool, err error) {
	began := time.Now()
	for attempt := 0; ; attempt++ {
		err := mgr.Start(ctx)
		if err == nil {
			if attempt > 0 {
				log.Printf("gateway: configuration store %s answered after %v", where, time.Since(began).Round(time.Millisecond))
			}
			return false, nil
		}
		if !errors.Is(err, store.ErrUnavailable) {
			return false, fmt.Errorf("cannot load the configuration: %w", err)
		}
		// Every attempt for the first ten, then every tenth.
		if attempt < 10 || attempt%10 == 0 {
			log.Printf("gateway: waiting for the configuration store %s before opening the proxy listener (%v so far): %v",
				where, time.Since(began).Round(time.Second), err)
		}
		select {
		case <-time.After(startRetry):
		case s := <-sig:
			log.Printf("gateway: %v while waiting for the configuration store: stopped", s)
			return true, nil
		}
	}
}

func serveOn(srv *fasthttp.Server, ln net.Listener, name string) {
	if err := srv.Serve(ln); err != nil {
		log.Printf("gateway: %s listener stopped: %v", name, err)
	}
}

// shownAddr is the address to print for a listener: the configured host
// (0.0.0.0 stays 0.0.0.0 rather than Go's "[::]") with the bound port.
func shownAddr(configured string, ln net.Listener) string {
	host, _, err := net.SplitHostPort(configured)
	_, port, err2 := net.SplitHostPort(ln.Addr().String())
	if err != nil || err2 != nil {
		return ln.Addr().String()
	}
	return net.JoinHostPort(host, port)
}

// isLoopbackAddr reports whether host:port names a loopback interface.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
