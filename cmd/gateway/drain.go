package main

import (
	"context"
	"log"
	"net"
	"sync"
	"time"

	"github.com/edgeway/gateway/core"
	"github.com/valyala/fasthttp"
)

// namedServer is a listener's server, named for the log.
type namedServer struct {
	name string
	srv  *fasthttp.Server
	// ln is the listener it serves (made by core.NewListener).
	ln net.Listener
}

// drain shuts every server down at once: each stops accepting at once,
// closes its idle keep-alive connections and the connections that never
// sent a byte, and waits for its in-flight requests (answered with
// Connection: close) until ctx ends. Shutting them down one after the
// other would keep the later listeners accepting while the earlier ones
// drain.
func drain(ctx context.Context, servers ...namedServer) {
	var wg sync.WaitGroup
	for _, s := range servers {
		done := make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			defer close(done)
			if err := s.srv.ShutdownWithContext(ctx); err != nil {
				log.Printf("gateway: %s drain ended by the drain timeout: %v", s.name, err)
			}
		}()
		go func() {
			// fasthttp takes a connection waiting for its first request for
			// a busy one (until the header timeout): close those, as
			// fasthttp itself closes idle keep-alive ones, every 100 ms
			// (a connection accepted just before the listener closed
			// included).
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for {
				core.CloseUnused(s.ln)
				select {
				case <-done:
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Wait()
}
