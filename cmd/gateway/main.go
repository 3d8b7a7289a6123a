// Command gateway is an API gateway that speaks APISIX's Admin API and
// balances HTTP traffic over upstream nodes.
//
//	gateway -listen 0.0.0.0:9080 -admin-listen 127.0.0.1:9180 -data-dir ./data [-admin-key KEY]
//	        [-control-listen 127.0.0.1:9090] [-c config.yaml]
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
	"syscall"
	"time"

	"github.com/edgeway/gateway/admin"
	"github.com/edgeway/gateway/core"
	"github.com/edgeway/gateway/health"
	"github.com/edgeway/gateway/store"
	"github.com/valyala/fasthttp"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	o, err := parseOptions(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		return 2
	}
	if o.AdminKey == "" && !isLoopbackAddr(o.AdminListen) {
		fmt.Fprintf(os.Stderr, "gateway: refusing to start: the admin listener %s is not a loopback address and no -admin-key is set\n", o.AdminListen)
		return 2
	}
	if err := serve(o); err != nil {
		log.Printf("gateway: %v", err)
		return 1
	}
	return 0
}

// serve runs the gateway until SIGTERM or SIGINT, then drains.
func serve(o *options) error {
	st, err := store.OpenBolt(o.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()

	rt := core.NewRuntime()
	defer rt.Close()
	proxy := core.NewProxy()
	proxy.Logf = log.Printf
	// Health checkers follow every published snapshot; the compiler
	// attaches passive checks to each upstream that has checks.
	hm := health.NewManager(health.Options{Logf: log.Printf})
	defer hm.Close()
	rt.Health = hm
	mgr := &core.Manager{Store: st, Runtime: rt, Proxy: proxy, Logf: log.Printf, OnPublish: hm.Sync}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Start ready: the proxy listener opens only once the stored
	// configuration is compiled and published.
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("cannot load the configuration: %w", err)
	}

	var csrv *fasthttp.Server
	if o.ControlListen != "" {
		cln, err := net.Listen("tcp", o.ControlListen)
		if err != nil {
			return fmt.Errorf("cannot listen on %s: %w", o.ControlListen, err)
		}
		ctl := &admin.Control{Manager: mgr, Health: hm}
		csrv = &fasthttp.Server{Handler: ctl.Handler(), Name: "edgeway", ReadTimeout: 30 * time.Second,
			WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
		go serveOn(csrv, cln, "control")
		log.Printf("gateway: control API listening on http://%s/v1/healthcheck", shownAddr(o.ControlListen, cln))
	}

	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", o.Listen, err)
	}
	srv := core.NewServer(proxy.Handler)
	go serveOn(srv, ln, "proxy")

	api := &admin.API{Store: st, Manager: mgr, Key: o.AdminKey, Logf: log.Printf, Health: hm}
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
	}
	go serveOn(asrv, aln, "admin")

	log.Printf("gateway: proxy listening on http://%s", shownAddr(o.Listen, ln))
	log.Printf("gateway: Admin API listening on http://%s/apisix/admin (metrics on /metrics)", shownAddr(o.AdminListen, aln))
	log.Printf("gateway: configuration store %s (revision %d, %d routes)", o.DataDir, mgr.Config().Revision, len(mgr.Config().Routes))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	log.Printf("gateway: %v: draining in-flight requests (up to %v)", s, o.DrainTimeout)
	dctx, dcancel := context.WithTimeout(context.Background(), o.DrainTimeout)
	defer dcancel()
	_ = asrv.ShutdownWithContext(dctx)
	if csrv != nil {
		_ = csrv.ShutdownWithContext(dctx)
	}
	if err := srv.ShutdownWithContext(dctx); err != nil {
		log.Printf("gateway: drain ended by timeout: %v", err)
	}
	log.Printf("gateway: stopped")
	return nil
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
