package core

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/edgeway/gateway/store"
	"github.com/valyala/fasthttp"
)

// TestManagerIncrementalAndCompaction drives a manager over a large
// configuration: route writes are applied incrementally, the route index
// is rebuilt in the background once enough routes changed, and every
// write is served (read your writes) throughout.
func TestManagerIncrementalAndCompaction(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	put := func(key, value string) int64 {
		t.Helper()
		kv, _, err := st.Put(ctx, key, []byte(value), store.AnyRevision)
		if err != nil {
			t.Fatal(err)
		}
		return kv.ModRevision
	}
	put("/apisix/upstreams/u", `{"nodes":{"127.0.0.1:18001":1}}`)
	var kvs []store.KV
	for i := 0; i < 2100; i++ {
		kvs = append(kvs, store.KV{Key: fmt.Sprintf("/apisix/routes/r%d", i),
			Value: []byte(fmt.Sprintf(`{"uri":"/r/%d","upstream_id":"u"}`, i))})
	}
	kvs = append(kvs, store.KV{Key: "/apisix/upstreams/u", Value: []byte(`{"nodes":{"127.0.0.1:18001":1}}`)})
	if _, _, err := st.Replace(kvs); err != nil {
		t.Fatal(err)
	}
	rt := NewRuntime()
	defer rt.Close()
	m := &Manager{Store: st, Runtime: rt, Proxy: NewProxy()}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	match := func(path string) *RouteEntry {
		var c fasthttp.RequestCtx
		c.Request.SetRequestURI(path)
		c.Init2(nil, nil, false)
		c.SetRemoteAddr(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
		return m.Proxy.Snapshot().Routes.Match(&c, make([]byte, 0, 512))
	}
	for i := 0; i < 3*compactAfter; i++ {
		// Alternate: move an existing route to a new uri, add a route,
		// delete one.
		var rev int64
		switch i % 3 {
		case 0:
			rev = put(fmt.Sprintf("/apisix/routes/r%d", i), fmt.Sprintf(`{"uri":"/moved/%d","upstream_id":"u"}`, i))
		case 1:
			rev = put(fmt.Sprintf("/apisix/routes/n%d", i), fmt.Sprintf(`{"uri":"/new/%d*","upstream":{"nodes":{"127.0.0.1:18002":1}}}`, i))
		case 2:
			_, r, err := st.Delete(ctx, fmt.Sprintf("/apisix/routes/r%d", i), store.AnyRevision)
			if err != nil {
				t.Fatal(err)
			}
			rev = r
		}
		wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
		if err := m.WaitRevision(wctx, rev); err != nil {
			t.Fatal(err)
		}
		wcancel()
		switch i % 3 {
		case 0:
			if e := match(fmt.Sprintf("/moved/%d", i)); e == nil || e.Route.ID != fmt.Sprint("r", i) {
				t.Fatalf("write %d: moved route not served: %s", i, describeEntry(e))
			}
			if e := match(fmt.Sprintf("/r/%d", i)); e != nil {
				t.Fatalf("write %d: old uri still served by %s", i, describeEntry(e))
			}
		case 1:
			if e := match(fmt.Sprintf("/new/%d/x", i)); e == nil || e.Upstream.Nodes[0].Addr != "127.0.0.1:18002" {
				t.Fatalf("write %d: new route not served: %s", i, describeEntry(e))
			}
		case 2:
			if e := match(fmt.Sprintf("/r/%d", i)); e != nil {
				t.Fatalf("write %d: deleted route still served by %s", i, describeEntry(e))
			}
		}
	}
	if m.Updates.Load() == 0 {
		t.Fatal("no write was applied incrementally")
	}
	// The background rebuild happens while writes go on; wait for one.
	deadline := time.Now().Add(10 * time.Second)
	for m.Compactions.Load() == 0 && time.Now().Before(deadline) {
		// A compaction result is installed by the goroutine following the
		// store; a write wakes it.
		put("/apisix/routes/nudge", `{"uri":"/nudge","upstream_id":"u"}`)
		time.Sleep(50 * time.Millisecond)
	}
	if m.Compactions.Load() == 0 {
		t.Fatal("the route index was never rebuilt in the background")
	}
	if e := match("/r/1"); e == nil || e.Route.ID != "r1" {
		t.Fatalf("after compaction /r/1 is served by %s", describeEntry(e))
	}
	if p := m.Proxy.Snapshot().Routes.Pending(); p >= 3*compactAfter {
		t.Fatalf("%d routes still pending after compaction", p)
	}
	t.Logf("%d full compiles, %d incremental updates, %d compactions", m.Compiles.Load(), m.Updates.Load(), m.Compactions.Load())
}
