package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/edgeway/gateway/store"
)

// genRoute is generated route i of a large configuration, shaped like the
// router benchmark's (core/router_timing_test.go): even routes exact, odd
// ones prefix; one in ten bound to an exact host, one in ten to a
// wildcard host; all on the upstream "web".
type genRoute struct {
	ID         string   `json:"id"`
	URI        string   `json:"uri"`
	Hosts      []string `json:"hosts,omitempty"`
	UpstreamID string   `json:"upstream_id"`
	CreateTime int64    `json:"create_time,omitempty"`
	UpdateTime int64    `json:"update_time,omitempty"`
}

func route(i int) genRoute {
	r := genRoute{ID: fmt.Sprintf("g%d", i), URI: fmt.Sprintf("/api/v%d/svc%d/res%d", i%4, i/64, i), UpstreamID: "web"}
	if i%2 == 1 {
		r.URI += "/*"
	}
	switch i % 10 {
	case 1:
		r.Hosts = []string{fmt.Sprintf("h%d.example.com", i%100)}
	case 6:
		r.Hosts = []string{fmt.Sprintf("*.w%d.example.com", i%20)}
	}
	return r
}

// middleURI is a host-less exact uri from the middle of n generated
// routes: what the "many routes" runs request besides /hello.
func middleURI(n int) string {
	i := n/2 + 2
	for route(i).Hosts != nil || i%2 == 1 {
		i++
	}
	return route(i).URI
}

type upstreamJSON struct {
	ID    string         `json:"id"`
	Type  string         `json:"type"`
	Nodes map[string]int `json:"nodes"`
}

// writeStandalone writes an APISIX standalone JSON file: the upstream
// "web" over nodes, the route /hello on it, and n generated routes.
func writeStandalone(path string, nodes []string, n int) error {
	var cfg struct {
		Upstreams []upstreamJSON `json:"upstreams"`
		Routes    []genRoute     `json:"routes"`
	}
	cfg.Upstreams = []upstreamJSON{{ID: "web", Type: "roundrobin", Nodes: nodeMap(nodes)}}
	cfg.Routes = append(cfg.Routes, genRoute{ID: "hello", URI: "/hello", UpstreamID: "web"})
	for i := 0; i < n; i++ {
		cfg.Routes = append(cfg.Routes, route(i))
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func nodeMap(nodes []string) map[string]int {
	m := map[string]int{}
	for _, a := range nodes {
		m[a] = 1
	}
	return m
}

// prepopulate writes the upstream "web", the route /hello and n generated
// routes straight into an embedded store in dataDir, with the values the
// Admin API would store, before the gateway opens it. Loading 100,000
// routes through the Admin API takes minutes (each coalesced batch of
// writes recompiles the whole snapshot); this takes seconds, and the
// gateway then loads them as it would after a restart.
func prepopulate(dataDir string, nodes []string, n int) error {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return err
	}
	st, err := store.OpenBolt(dataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	now := time.Now().Unix()
	up, _ := json.Marshal(map[string]any{"id": "web", "type": "roundrobin", "nodes": nodeMap(nodes),
		"create_time": now, "update_time": now})
	if _, _, err := st.Put(ctx, "/apisix/upstreams/web", up, store.AnyRevision); err != nil {
		return err
	}
	hello, _ := json.Marshal(genRoute{ID: "hello", URI: "/hello", UpstreamID: "web", CreateTime: now, UpdateTime: now})
	if _, _, err := st.Put(ctx, "/apisix/routes/hello", hello, store.AnyRevision); err != nil {
		return err
	}
	// Concurrent writers: the store commits up to 128 queued writes per
	// transaction (one fsync).
	const workers = 256
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				r := route(i)
				r.CreateTime, r.UpdateTime = now, now
				v, _ := json.Marshal(r)
				if _, _, err := st.Put(ctx, "/apisix/routes/"+r.ID, v, store.AnyRevision); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
