package store

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// openTest opens a store in dir (a fresh temp dir when empty) and closes it
// when the test ends.
func openTest(t *testing.T, dir string) *Bolt {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	s, err := OpenBolt(dir)
	if err != nil {
		t.Fatalf("OpenBolt: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustPut(t *testing.T, s Store, key, value string, expectRev int64) KV {
	t.Helper()
	kv, _, err := s.Put(context.Background(), key, []byte(value), expectRev)
	if err != nil {
		t.Fatalf("Put(%q, rev %d): %v", key, expectRev, err)
	}
	return kv
}

func mustGet(t *testing.T, s Store, key string) KV {
	t.Helper()
	kv, err := s.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func mustRevision(t *testing.T, s Store) int64 {
	t.Helper()
	rev, err := s.Revision(context.Background())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

func checkKV(t *testing.T, got KV, key, value string, create, mod int64) {
	t.Helper()
	want := KV{Key: key, Value: []byte(value), CreateRevision: create, ModRevision: mod}
	if got.Key != want.Key || string(got.Value) != value || got.CreateRevision != create || got.ModRevision != mod {
		t.Fatalf("got %s, want %s", fmtKV(got), fmtKV(want))
	}
}

func fmtKV(kv KV) string {
	return fmt.Sprintf("{%s=%q create=%d mod=%d}", kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision)
}

func TestPutGetDelete(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, "")
	if rev := mustRevision(t, s); rev != 0 {
		t.Fatalf("new store at revision %d, want 0", rev)
	}
	if _, err := s.Get(ctx, "/apisix/routes/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}

	kv, created, err := s.Put(ctx, "/apisix/routes/1", []byte(`{"uri":"/a"}`), AnyRevision)
	if err != nil || !created {
		t.Fatalf("first Put: created=%v err=%v, want created", created, err)
	}
	checkKV(t, kv, "/apisix/routes/1", `{"uri":"/a"}`, 1, 1)
	checkKV(t, mustGet(t, s, "/apisix/routes/1"), "/apisix/routes/1", `{"uri":"/a"}`, 1, 1)

	kv, created, err = s.Put(ctx, "/apisix/routes/1", []byte(`{"uri":"/b"}`), AnyRevision)
	if err != nil || created {
		t.Fatalf("second Put: created=%v err=%v, want replaced", created, err)
	}
	checkKV(t, kv, "/apisix/routes/1", `{"uri":"/b"}`, 1, 2)

	mustPut(t, s, "/apisix/upstreams/1", `{}`, AnyRevision)
	del, delRev, err := s.Delete(ctx, "/apisix/routes/1", AnyRevision)
	if err != nil || delRev != 4 {
		t.Fatalf("Delete: revision %d, err %v; want revision 4", delRev, err)
	}
	checkKV(t, del, "/apisix/routes/1", `{"uri":"/b"}`, 1, 2) // the last value and its revisions
	if rev := mustRevision(t, s); rev != 4 {
		t.Fatalf("revision %d after 4 writes", rev)
	}
	if _, err := s.Get(ctx, "/apisix/routes/1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if _, _, err := s.Delete(ctx, "/apisix/routes/1", AnyRevision); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}

	// Created again: a new create revision.
	kv, created, err = s.Put(ctx, "/apisix/routes/1", []byte(`{}`), AnyRevision)
	if err != nil || !created {
		t.Fatalf("Put after Delete: created=%v err=%v", created, err)
	}
	checkKV(t, kv, "/apisix/routes/1", `{}`, 5, 5)
}

func TestValuesAreCopied(t *testing.T) {
	s := openTest(t, "")
	buf := []byte(`{"v":1}`)
	kv, _, err := s.Put(context.Background(), "/k", buf, AnyRevision)
	if err != nil {
		t.Fatal(err)
	}
	copy(buf, `XXXXXXX`)
	if string(kv.Value) != `{"v":1}` {
		t.Fatalf("returned KV aliases the caller's buffer: %q", kv.Value)
	}
	got := mustGet(t, s, "/k")
	if string(got.Value) != `{"v":1}` {
		t.Fatalf("stored value changed with the caller's buffer: %q", got.Value)
	}
	// An empty value is stored and read back as empty, not as missing.
	mustPut(t, s, "/empty", "", AnyRevision)
	if got := mustGet(t, s, "/empty"); len(got.Value) != 0 || got.Value == nil {
		t.Fatalf("empty value read back as %#v", got.Value)
	}
}

func TestPutConditions(t *testing.T) {
	const key = "/apisix/upstreams/1"
	// The key is written at revision 1 and rewritten at revision 2 before
	// each case (unless absent is set), so its ModRevision is 2.
	tests := []struct {
		name        string
		absent      bool
		expectRev   int64
		wantErr     error
		wantCreated bool
	}{
		{name: "any on existing", expectRev: AnyRevision},
		{name: "any on absent", absent: true, expectRev: AnyRevision, wantCreated: true},
		{name: "create-only on absent", absent: true, expectRev: 0, wantCreated: true},
		{name: "create-only on existing", expectRev: 0, wantErr: ErrConflict},
		{name: "mod rev matches", expectRev: 2},
		{name: "mod rev stale", expectRev: 1, wantErr: ErrConflict},
		{name: "mod rev ahead", expectRev: 3, wantErr: ErrConflict},
		{name: "mod rev on absent", absent: true, expectRev: 2, wantErr: ErrConflict},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, "")
			ctx := context.Background()
			if tt.absent {
				mustPut(t, s, "/other", "1", AnyRevision)
				mustPut(t, s, "/other", "2", AnyRevision)
			} else {
				mustPut(t, s, key, "old", AnyRevision)
				mustPut(t, s, key, "old", AnyRevision)
			}
			kv, created, err := s.Put(ctx, key, []byte("new"), tt.expectRev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Put err = %v, want %v", err, tt.wantErr)
			}
			rev := mustRevision(t, s)
			if tt.wantErr != nil {
				if rev != 2 {
					t.Fatalf("failed Put moved the revision to %d", rev)
				}
				return
			}
			if created != tt.wantCreated {
				t.Fatalf("created = %v, want %v", created, tt.wantCreated)
			}
			wantCreate := int64(1)
			if tt.wantCreated {
				wantCreate = 3
			}
			checkKV(t, kv, key, "new", wantCreate, 3)
			checkKV(t, mustGet(t, s, key), key, "new", wantCreate, 3)
		})
	}
}

func TestDeleteConditions(t *testing.T) {
	const key = "/apisix/routes/1"
	tests := []struct {
		name      string
		absent    bool
		expectRev int64
		wantErr   error
	}{
		{name: "any", expectRev: AnyRevision},
		{name: "zero means any", expectRev: 0},
		{name: "mod rev matches", expectRev: 2},
		{name: "mod rev stale", expectRev: 1, wantErr: ErrConflict},
		{name: "absent", absent: true, expectRev: AnyRevision, wantErr: ErrNotFound},
		{name: "absent with rev", absent: true, expectRev: 2, wantErr: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openTest(t, "")
			if !tt.absent {
				mustPut(t, s, key, "a", AnyRevision)
				mustPut(t, s, key, "b", AnyRevision)
			} else {
				mustPut(t, s, "/other", "a", AnyRevision)
				mustPut(t, s, "/other", "b", AnyRevision)
			}
			kv, _, err := s.Delete(context.Background(), key, tt.expectRev)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Delete err = %v, want %v", err, tt.wantErr)
			}
			rev := mustRevision(t, s)
			if tt.wantErr != nil {
				if rev != 2 {
					t.Fatalf("failed Delete moved the revision to %d", rev)
				}
				return
			}
			checkKV(t, kv, key, "b", 1, 2)
			if rev != 3 {
				t.Fatalf("revision after Delete = %d, want 3", rev)
			}
		})
	}
}

func TestInvalidWrites(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	f := func(name string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: no error", name)
		}
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: contract error %v for an invalid argument", name, err)
		}
	}
	_, _, err := s.Put(ctx, "", []byte("x"), AnyRevision)
	f("empty key", err)
	_, _, err = s.Put(ctx, "/k", []byte("x"), -2)
	f("put rev -2", err)
	_, _, err = s.Delete(ctx, "/k", -7)
	f("delete rev -7", err)
	_, _, err = s.Put(ctx, string(make([]byte, 40000)), []byte("x"), AnyRevision)
	f("huge key", err)
	if rev := mustRevision(t, s); rev != 0 {
		t.Fatalf("invalid writes moved the revision to %d", rev)
	}
}

func TestCancelledContextWritesNothing(t *testing.T) {
	s := openTest(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.Put(ctx, "/k", []byte("x"), AnyRevision); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled ctx: %v", err)
	}
	if _, err := s.NextID(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("NextID with cancelled ctx: %v", err)
	}
	if _, err := s.Get(ctx, "/k"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with cancelled ctx: %v", err)
	}
	if _, err := s.Get(context.Background(), "/k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancelled Put was written: %v", err)
	}
}

func TestRevisionsPersistAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustPut(t, s, "/apisix/routes/1", "a", AnyRevision)
	mustPut(t, s, "/apisix/routes/2", "b", AnyRevision)
	mustPut(t, s, "/apisix/routes/1", "c", AnyRevision)
	if _, _, err := s.Delete(context.Background(), "/apisix/routes/2", AnyRevision); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openTest(t, dir)
	if rev := mustRevision(t, s); rev != 4 {
		t.Fatalf("revision after reopen = %d, want 4", rev)
	}
	checkKV(t, mustGet(t, s, "/apisix/routes/1"), "/apisix/routes/1", "c", 1, 3)
	// The next write continues from 4, even though the last write was a delete.
	kv := mustPut(t, s, "/apisix/routes/2", "d", 0)
	checkKV(t, kv, "/apisix/routes/2", "d", 5, 5)
	// A CAS against a revision from before the restart still works.
	kv = mustPut(t, s, "/apisix/routes/1", "e", 3)
	checkKV(t, kv, "/apisix/routes/1", "e", 1, 6)
}

func TestRevisionsMonotonicUnderConcurrency(t *testing.T) {
	s := openTest(t, "")
	const writers, writes = 8, 50
	var (
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			last := int64(0)
			for i := range writes {
				kv, _, err := s.Put(context.Background(), fmt.Sprintf("/apisix/routes/%d-%d", w, i), []byte("{}"), AnyRevision)
				if err != nil {
					t.Error(err)
					return
				}
				if kv.ModRevision <= last {
					t.Errorf("writer %d: revision %d after %d", w, kv.ModRevision, last)
				}
				last = kv.ModRevision
				mu.Lock()
				if seen[kv.ModRevision] {
					t.Errorf("revision %d handed out twice", kv.ModRevision)
				}
				seen[kv.ModRevision] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if rev := mustRevision(t, s); rev != writers*writes || len(seen) != writers*writes {
		t.Fatalf("revision %d, %d distinct, want %d", rev, len(seen), writers*writes)
	}
}

func TestNextID(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := context.Background()
	format := regexp.MustCompile(`^[0-9]{20}$`)

	id, err := s.NextID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id != "00000000000000000001" {
		t.Fatalf("first id %q", id)
	}
	rev := mustRevision(t, s)

	var (
		mu  sync.Mutex
		ids = map[string]bool{id: true}
		wg  sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for range 25 {
				id, err := s.NextID(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if ids[id] || !format.MatchString(id) {
					t.Errorf("bad or repeated id %q", id)
				}
				ids[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got := mustRevision(t, s); got != rev {
		t.Fatalf("NextID moved the revision from %d to %d", rev, got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, dir)
	id, err = s.NextID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ids[id] {
		t.Fatalf("id %q repeated after reopen", id)
	}
	if n, _ := strconv.Atoi(id); n != len(ids)+1 {
		t.Fatalf("id after reopen %q, want %d", id, len(ids)+1)
	}
}

func TestListSortedAndPrefixScoped(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	for _, k := range []string{
		"/apisix/routes/2", "/apisix/routes2/x", "/apisix/routes/10", "/apisix/routes",
		"/apisix/upstreams/1", "/apisix/routes/1", "/apisix/route/1",
	} {
		mustPut(t, s, k, `{"k":"`+k+`"}`, AnyRevision)
	}
	f := func(prefix string, want ...string) {
		t.Helper()
		kvs, rev, err := s.List(ctx, prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		var got []string
		for _, kv := range kvs {
			got = append(got, kv.Key)
			if string(kv.Value) != `{"k":"`+kv.Key+`"}` || kv.ModRevision == 0 || kv.CreateRevision != kv.ModRevision {
				t.Fatalf("List(%q): bad item %s", prefix, fmtKV(kv))
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("List(%q) = %q, want %q", prefix, got, want)
		}
		if rev != 7 {
			t.Fatalf("List(%q) at revision %d, want 7", prefix, rev)
		}
	}
	f("/apisix/routes/", "/apisix/routes/1", "/apisix/routes/10", "/apisix/routes/2")
	f("/apisix/upstreams/", "/apisix/upstreams/1")
	f("/apisix/ssls/")
	f("/apisix/routes", "/apisix/routes", "/apisix/routes/1", "/apisix/routes/10", "/apisix/routes/2", "/apisix/routes2/x")
	f("", "/apisix/route/1", "/apisix/routes", "/apisix/routes/1", "/apisix/routes/10", "/apisix/routes/2",
		"/apisix/routes2/x", "/apisix/upstreams/1")
}

func TestClosedStore(t *testing.T) {
	s := openTest(t, "")
	mustPut(t, s, "/k", "v", AnyRevision)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ctx := context.Background()
	f := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	_, err := s.Get(ctx, "/k")
	f("Get", err)
	_, _, err = s.List(ctx, "/")
	f("List", err)
	_, err = s.Revision(ctx)
	f("Revision", err)
	_, _, err = s.Put(ctx, "/k", []byte("w"), AnyRevision)
	f("Put", err)
	_, _, err = s.Delete(ctx, "/k", AnyRevision)
	f("Delete", err)
	_, err = s.NextID(ctx)
	f("NextID", err)
	f("second Close", s.Close())
	resp, ok := <-s.Watch(ctx, 0)
	if !ok {
		t.Fatal("Watch after Close: closed without a response")
	}
	f("Watch", resp.Err)
}

func TestFailedCommitStopsWrites(t *testing.T) {
	// bbolt refuses to grow the file past MaxSize: the commit fails.
	s, err := openBolt(t.TempDir(), boltOptions{lockTimeout: time.Second, historySize: 16, maxSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	mustPut(t, s, "/small", "v", AnyRevision)
	ch := s.Watch(ctx, 1)

	_, _, err = s.Put(ctx, "/big", make([]byte, 2<<20), AnyRevision)
	if err == nil {
		t.Fatal("Put past MaxSize succeeded")
	}
	// Later writes are refused, even those that would fit.
	_, _, err = s.Put(ctx, "/small", []byte("w"), AnyRevision)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Put after a failed commit: %v, want ErrUnavailable", err)
	}
	if _, err := s.NextID(ctx); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("NextID after a failed commit: %v, want ErrUnavailable", err)
	}
	// Reads still work and see nothing of the failed writes.
	checkKV(t, mustGet(t, s, "/small"), "/small", "v", 1, 1)
	if _, err := s.Get(ctx, "/big"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of the failed write: %v", err)
	}
	if rev := mustRevision(t, s); rev != 1 {
		t.Fatalf("revision %d after failed writes", rev)
	}
	select {
	case resp := <-ch:
		t.Fatalf("watcher got %+v from a failed write", resp)
	default:
	}
}

// TestFsyncStaysOn guards the durability settings: bbolt must fsync every
// commit and every growth of the file.
func TestFsyncStaysOn(t *testing.T) {
	s := openTest(t, "")
	if s.db.NoSync || s.db.NoGrowSync {
		t.Fatalf("fsync is off: NoSync=%v NoGrowSync=%v", s.db.NoSync, s.db.NoGrowSync)
	}
}
