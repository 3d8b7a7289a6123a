package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/gateway/store/etcdtest"
)

// These tests run against a real etcd (Debian's etcd-server), started per
// test on free loopback ports; they skip when the binary is missing.

// openEtcdTest opens a store on endpoint with prefix ("" = default) and
// closes it when the test ends.
func openEtcdTest(t *testing.T, endpoint, prefix string) *Etcd {
	t.Helper()
	return openEtcdOptions(t, EtcdOptions{Endpoints: []string{endpoint}, Prefix: prefix})
}

func openEtcdOptions(t *testing.T, o EtcdOptions) *Etcd {
	t.Helper()
	o.Logf = t.Logf
	e, err := OpenEtcd(o)
	if err != nil {
		t.Fatalf("OpenEtcd: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// eventually polls cond until it holds, failing after hangGuard.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, hangGuard)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEtcdPutGetDelete(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openEtcdTest(t, srv.Endpoint, "")
	ctx := context.Background()

	kv, created, err := s.Put(ctx, "/apisix/routes/1", []byte(`{"uri":"/a"}`), AnyRevision)
	if err != nil || !created {
		t.Fatalf("first Put: created=%v err=%v", created, err)
	}
	if kv.CreateRevision != kv.ModRevision || kv.CreateRevision <= 0 {
		t.Fatalf("new key revisions: %s", fmtKV(kv))
	}
	checkKV(t, mustGet(t, s, "/apisix/routes/1"), "/apisix/routes/1", `{"uri":"/a"}`, kv.CreateRevision, kv.ModRevision)

	kv2, created, err := s.Put(ctx, "/apisix/routes/1", []byte(`{"uri":"/b"}`), AnyRevision)
	if err != nil || created {
		t.Fatalf("second Put: created=%v err=%v", created, err)
	}
	if kv2.CreateRevision != kv.CreateRevision || kv2.ModRevision <= kv.ModRevision {
		t.Fatalf("replace revisions: %s after %s", fmtKV(kv2), fmtKV(kv))
	}
	if rev := mustRevision(t, s); rev != kv2.ModRevision {
		t.Fatalf("Revision %d, want %d", rev, kv2.ModRevision)
	}
	// etcdctl sees APISIX's layout.
	if out := srv.Ctl("get", "/apisix/routes/1", "--print-value-only"); strings.TrimSpace(out) != `{"uri":"/b"}` {
		t.Fatalf("etcdctl get: %q", out)
	}

	prev, rev, err := s.Delete(ctx, "/apisix/routes/1", AnyRevision)
	if err != nil {
		t.Fatal(err)
	}
	checkKV(t, prev, "/apisix/routes/1", `{"uri":"/b"}`, kv.CreateRevision, kv2.ModRevision)
	if rev != kv2.ModRevision+1 || mustRevision(t, s) != rev {
		t.Fatalf("delete revision %d, want %d", rev, kv2.ModRevision+1)
	}
	if _, err := s.Get(ctx, "/apisix/routes/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete: %v", err)
	}
	if _, _, err := s.Delete(ctx, "/apisix/routes/1", AnyRevision); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if !s.Connected() {
		t.Fatal("Connected is false after successful calls")
	}
}

func TestEtcdConditions(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openEtcdTest(t, srv.Endpoint, "")
	ctx := context.Background()
	const k = "/apisix/upstreams/u"

	if _, _, err := s.Put(ctx, k, []byte("1"), 5); !errors.Is(err, ErrConflict) {
		t.Fatalf("Put expecting rev 5 on a missing key: %v", err)
	}
	kv, created, err := s.Put(ctx, k, []byte("1"), 0)
	if err != nil || !created {
		t.Fatalf("create-only Put: %v %v", created, err)
	}
	if _, _, err := s.Put(ctx, k, []byte("2"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create-only Put on an existing key: %v", err)
	}
	if _, _, err := s.Put(ctx, k, []byte("2"), kv.ModRevision+100); !errors.Is(err, ErrConflict) {
		t.Fatalf("Put with a wrong revision: %v", err)
	}
	kv2, created, err := s.Put(ctx, k, []byte("2"), kv.ModRevision)
	if err != nil || created {
		t.Fatalf("Put with the right revision: %v %v", created, err)
	}
	if _, _, err := s.Delete(ctx, k, kv.ModRevision); !errors.Is(err, ErrConflict) {
		t.Fatalf("Delete with a stale revision: %v", err)
	}
	if _, _, err := s.Delete(ctx, "/apisix/upstreams/none", 7); !errors.Is(err, ErrNotFound) {
		t.Fatalf("conditional Delete of a missing key: %v", err)
	}
	if _, _, err := s.Delete(ctx, k, kv2.ModRevision); err != nil {
		t.Fatalf("Delete with the right revision: %v", err)
	}
	for _, bad := range []string{"", "/other/x", "/apisix/", "apisix/routes/1"} {
		if _, _, err := s.Put(ctx, bad, []byte("x"), AnyRevision); err == nil {
			t.Errorf("Put(%q) accepted", bad)
		}
	}
}

// TestEtcdNoLostUpdate runs read-modify-write loops from two stores (two
// gateways) on one key: every increment must survive.
func TestEtcdNoLostUpdate(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b := openEtcdTest(t, srv.Endpoint, ""), openEtcdTest(t, srv.Endpoint, "")
	ctx := context.Background()
	const k, perWriter = "/apisix/upstreams/counter", 100
	mustPut(t, a, k, "0", 0)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for _, s := range []Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < perWriter; {
				kv, err := s.Get(ctx, k)
				if err != nil {
					errs <- err
					return
				}
				n, _ := strconv.Atoi(string(kv.Value))
				_, _, err = s.Put(ctx, k, []byte(strconv.Itoa(n+1)), kv.ModRevision)
				if errors.Is(err, ErrConflict) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				i++
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := string(mustGet(t, b, k).Value); got != strconv.Itoa(4*perWriter) {
		t.Fatalf("counter %s, want %d", got, 4*perWriter)
	}
}

func TestEtcdPrefixAndInitDir(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openEtcdTest(t, srv.Endpoint, "/edge/")
	if s.Prefix() != "/edge" {
		t.Fatalf("prefix %q", s.Prefix())
	}
	// What `apisix init` writes, a neighbour prefix, and two objects.
	srv.Ctl("put", "/edge/routes/", "init_dir")
	srv.Ctl("put", "/edgex/routes/1", "{}")
	srv.Ctl("put", "/apisix/routes/1", "{}")
	srv.Ctl("put", "/edge/routes/2", `{"uri":"/2"}`)
	mustPut(t, s, "/apisix/routes/1", `{"uri":"/1"}`, 0)
	if out := srv.Ctl("get", "/edge/routes/1", "--print-value-only"); strings.TrimSpace(out) != `{"uri":"/1"}` {
		t.Fatalf("etcdctl get /edge/routes/1: %q", out)
	}
	kvs, rev, err := s.List(context.Background(), "/apisix/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key+"="+string(kv.Value))
	}
	want := []string{`/apisix/routes/1={"uri":"/1"}`, `/apisix/routes/2={"uri":"/2"}`}
	if !slices.Equal(keys, want) {
		t.Fatalf("List: %q, want %q", keys, want)
	}
	if rev != mustRevision(t, s) {
		t.Fatalf("List revision %d, store %d", rev, mustRevision(t, s))
	}
	routes, _, err := s.List(context.Background(), "/apisix/routes/2")
	if err != nil || len(routes) != 1 {
		t.Fatalf("List of one prefix: %v %v", routes, err)
	}

	ch := s.Watch(context.Background(), rev)
	srv.Ctl("put", "/edge/upstreams/", "init_dir")
	srv.Ctl("put", "/edgex/upstreams/1", "{}")
	srv.Ctl("put", "/edge/upstreams/1", "{}")
	evs := recvEvents(t, ch, 1)
	checkEvent(t, evs[0], rev+3, "/apisix/upstreams/1", "{}")
}

func TestEtcdListPages(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openEtcdTest(t, srv.Endpoint, "")
	const n = 2*etcdPageSize + 17
	var keys []string
	for i := 0; i < n; i++ {
		keys = append(keys, fmt.Sprintf("/apisix/routes/%05d", i))
	}
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				mustPut(t, s, keys[i], "v", AnyRevision)
			}
		}()
	}
	wg.Wait()
	kvs, rev, err := s.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(kvs) != n || rev != mustRevision(t, s) {
		t.Fatalf("listed %d keys at %d, want %d at %d", len(kvs), rev, n, mustRevision(t, s))
	}
	for i, kv := range kvs {
		if kv.Key != keys[i] {
			t.Fatalf("key %d: %s, want %s", i, kv.Key, keys[i])
		}
	}
}

func TestEtcdNextID(t *testing.T) {
	srv := etcdtest.Start(t)
	a, b := openEtcdTest(t, srv.Endpoint, ""), openEtcdTest(t, srv.Endpoint, "")
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range []Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				id, err := s.NextID(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[id] || len(id) != 20 {
					t.Errorf("id %q repeated or not 20 digits", id)
				}
				seen[id] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Like APISIX: the id is the revision of the write to gen_id.
	id, err := a.NextID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.ParseInt(id, 10, 64); n != mustRevision(t, a) {
		t.Fatalf("id %s, revision %d", id, mustRevision(t, a))
	}
	if v := mustGet(t, a, "/apisix/gen_id"); string(v.Value) != "1" {
		t.Fatalf("gen_id holds %q", v.Value)
	}
}

func TestEtcdWatchEvents(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openEtcdTest(t, srv.Endpoint, "")
	ctx := context.Background()
	kv0 := mustPut(t, s, "/apisix/routes/0", "before", AnyRevision)
	ch := s.Watch(ctx, kv0.ModRevision)
	kv1 := mustPut(t, s, "/apisix/routes/1", "a", AnyRevision)
	kv2 := mustPut(t, s, "/apisix/routes/1", "b", AnyRevision)
	_, drev, err := s.Delete(ctx, "/apisix/routes/0", AnyRevision)
	if err != nil {
		t.Fatal(err)
	}
	// One etcd transaction: two events with the same revision.
	out, err := srv.TryCtl("\nput /apisix/routes/x x\nput /apisix/routes/y y\n\n\n", "txn")
	if err != nil {
		t.Fatalf("etcdctl txn: %v %s", err, out)
	}
	evs := recvEvents(t, ch, 5)
	checkEvent(t, evs[0], kv1.ModRevision, "/apisix/routes/1", "a")
	if evs[0].KV.CreateRevision != kv1.CreateRevision {
		t.Fatalf("create revision %d, want %d", evs[0].KV.CreateRevision, kv1.CreateRevision)
	}
	checkEvent(t, evs[1], kv2.ModRevision, "/apisix/routes/1", "b")
	checkEvent(t, evs[2], drev, "/apisix/routes/0", "")
	checkEvent(t, evs[3], drev+1, "/apisix/routes/x", "x")
	checkEvent(t, evs[4], drev+1, "/apisix/routes/y", "y")

	// A watch from an older revision replays what followed it.
	replay := recvEvents(t, s.Watch(ctx, kv1.ModRevision), 4)
	checkEvent(t, replay[0], kv2.ModRevision, "/apisix/routes/1", "b")
}

func TestEtcdWatchCompacted(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openEtcdTest(t, srv.Endpoint, "")
	old := mustPut(t, s, "/apisix/routes/1", "a", AnyRevision)
	last := mustPut(t, s, "/apisix/routes/1", "b", AnyRevision)
	srv.Ctl("compact", strconv.FormatInt(last.ModRevision, 10))
	ch := s.Watch(context.Background(), old.ModRevision-1)
	resp := recv(t, ch)
	if !resp.Compacted || len(resp.Events) != 0 {
		t.Fatalf("watch from a compacted revision: %+v", resp)
	}
	waitClosed(t, ch)
	// A watch from the compaction point on works.
	ch = s.Watch(context.Background(), last.ModRevision)
	kv := mustPut(t, s, "/apisix/routes/1", "c", AnyRevision)
	checkEvent(t, recvEvents(t, ch, 1)[0], kv.ModRevision, "/apisix/routes/1", "c")
}

// TestEtcdWatchResumesAfterCut cuts the watcher's connection while
// another client writes, many times: every change arrives once, in order.
func TestEtcdWatchResumesAfterCut(t *testing.T) {
	srv := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, srv)
	w := openEtcdTest(t, proxy.Endpoint, "")
	writer := openEtcdTest(t, srv.Endpoint, "")
	start := mustRevision(t, writer)
	ch := w.Watch(context.Background(), start)

	var want []string
	var evs []Event
	for round := 0; round < 3; round++ {
		for i := 0; i < 20; i++ {
			v := fmt.Sprintf("r%d-%d", round, i)
			mustPut(t, writer, fmt.Sprintf("/apisix/routes/%d", i%3), v, AnyRevision)
			want = append(want, v)
		}
		// The watch is live: it delivers everything so far...
		evs = append(evs, recvEvents(t, ch, len(want)-len(evs))...)
		proxy.Cut()
		eventually(t, "watcher sees the cut", func() bool { return !w.Connected() })
		// ...and what is written while it is cut off arrives after it
		// reconnects.
		for i := 0; i < 20; i++ {
			v := fmt.Sprintf("c%d-%d", round, i)
			mustPut(t, writer, fmt.Sprintf("/apisix/routes/%d", i%3), v, AnyRevision)
			want = append(want, v)
		}
		if round == 0 {
			if _, _, err := w.Put(context.Background(), "/apisix/routes/x", []byte("x"), AnyRevision); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Put while cut off: %v, want ErrUnavailable", err)
			}
		}
		proxy.Restore()
		eventually(t, "reconnected", w.Connected)
	}
	evs = append(evs, recvEvents(t, ch, len(want)-len(evs))...)
	prev := start
	for i, ev := range evs {
		if string(ev.KV.Value) != want[i] || ev.Revision <= prev {
			t.Fatalf("event %d: %q at %d (previous %d), want %q", i, ev.KV.Value, ev.Revision, prev, want[i])
		}
		prev = ev.Revision
	}
	// Nothing more (no repeats) is pending: the next event is a new write.
	kv := mustPut(t, writer, "/apisix/routes/end", "end", AnyRevision)
	checkEvent(t, recvEvents(t, ch, 1)[0], kv.ModRevision, "/apisix/routes/end", "end")
}

// TestEtcdWatchCompactedWhileCut compacts etcd while the watcher is cut
// off: on reconnection it gets Compacted and can list again.
func TestEtcdWatchCompactedWhileCut(t *testing.T) {
	srv := etcdtest.Start(t)
	proxy := etcdtest.NewProxy(t, srv)
	w := openEtcdTest(t, proxy.Endpoint, "")
	writer := openEtcdTest(t, srv.Endpoint, "")
	kv := mustPut(t, writer, "/apisix/routes/1", "a", AnyRevision)
	ch := w.Watch(context.Background(), kv.ModRevision)
	first := mustPut(t, writer, "/apisix/routes/1", "b", AnyRevision)
	checkEvent(t, recvEvents(t, ch, 1)[0], first.ModRevision, "/apisix/routes/1", "b")

	proxy.Cut()
	for i := 0; i < 5; i++ {
		kv = mustPut(t, writer, "/apisix/routes/1", fmt.Sprintf("c%d", i), AnyRevision)
	}
	srv.Ctl("compact", strconv.FormatInt(kv.ModRevision, 10))
	proxy.Restore()
	resp := recv(t, ch)
	if !resp.Compacted {
		t.Fatalf("after compaction while cut off: %+v", resp)
	}
	waitClosed(t, ch)
	kvs, _, err := w.List(context.Background(), "")
	if err != nil || len(kvs) != 1 || string(kvs[0].Value) != "c4" {
		t.Fatalf("List after compaction: %v %v", kvs, err)
	}
}

// TestEtcdOutage stops etcd: calls fail with ErrUnavailable, Connected
// turns false; after a restart everything works again, and the watch
// resumes by itself.
func TestEtcdOutage(t *testing.T) {
	srv := etcdtest.Start(t)
	s := openEtcdOptions(t, EtcdOptions{Endpoints: []string{srv.Endpoint}, RequestTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	kv := mustPut(t, s, "/apisix/routes/1", "a", AnyRevision)
	ch := s.Watch(ctx, kv.ModRevision)

	srv.Stop()
	for _, err := range []error{
		func() error { _, err := s.Get(ctx, "/apisix/routes/1"); return err }(),
		func() error { _, _, err := s.Put(ctx, "/apisix/routes/1", []byte("x"), AnyRevision); return err }(),
		func() error { _, _, err := s.List(ctx, ""); return err }(),
		func() error { _, err := s.NextID(ctx); return err }(),
	} {
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call while etcd is down: %v, want ErrUnavailable", err)
		}
	}
	if s.Connected() {
		t.Fatal("Connected while etcd is down")
	}
	// The caller's own deadline wins over the request timeout.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := s.Get(short, "/apisix/routes/1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with an expired caller deadline: %v", err)
	}

	srv.Restart()
	eventually(t, "reconnected", s.Connected)
	kv2 := mustPut(t, s, "/apisix/routes/1", "b", AnyRevision)
	checkEvent(t, recvEvents(t, ch, 1)[0], kv2.ModRevision, "/apisix/routes/1", "b")
}

// TestEtcdStartsWhileDown opens the store before etcd runs.
func TestEtcdStartsWhileDown(t *testing.T) {
	srv := etcdtest.Start(t)
	srv.Stop()
	s := openEtcdTest(t, srv.Endpoint, "")
	if _, _, err := s.List(context.Background(), ""); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("List before etcd runs: %v", err)
	}
	srv.Restart()
	eventually(t, "connected", s.Connected)
	mustPut(t, s, "/apisix/routes/1", "a", 0)
}

func TestEtcdClosed(t *testing.T) {
	srv := etcdtest.Start(t)
	s, err := OpenEtcd(EtcdOptions{Endpoints: []string{srv.Endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	ch := s.Watch(context.Background(), 0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	waitClosed(t, ch)
	if _, err := s.Get(context.Background(), "/apisix/routes/1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if _, _, err := s.Put(context.Background(), "/apisix/routes/1", nil, AnyRevision); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	if resp := recv(t, s.Watch(context.Background(), 0)); !errors.Is(resp.Err, ErrClosed) {
		t.Fatalf("Watch after Close: %+v", resp)
	}
	if err := s.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenEtcdRefusesBadOptions(t *testing.T) {
	for _, o := range []EtcdOptions{
		{},
		{Endpoints: []string{"127.0.0.1:2379"}},
		{Endpoints: []string{"http://127.0.0.1:2379"}, Prefix: "apisix"},
	} {
		if s, err := OpenEtcd(o); err == nil {
			s.Close()
			t.Errorf("OpenEtcd(%+v) accepted", o)
		}
	}
}
