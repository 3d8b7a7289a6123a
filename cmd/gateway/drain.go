package main

import (
	"context"
	"log"
	"sync"

	"github.com/valyala/fasthttp"
)

// namedServer is a listener's server, named for the log.
type namedServer struct {
	name string
	srv  *fasthttp.Server
}

// drain shuts every server down at once: each stops accepting at once,
// closes its idle keep-alive connections, and waits for its in-flight
// requests (answered with Connection: close) until ctx ends. Shutting them
// down one after the other would keep the later listeners accepting while
// the earlier ones drain.
func drain(ctx context.Context, servers ...namedServer) {
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.srv.ShutdownWithContext(ctx); err != nil {
				log.Printf("gateway: %s drain ended by the drain timeout: %v", s.name, err)
			}
		}()
	}
	wg.Wait()
}
