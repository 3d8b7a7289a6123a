package store

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestMemoryReplaceAndWatch(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := m.Watch(ctx, 1)

	rev, changed, err := m.Replace([]KV{{Key: "/apisix/routes/1", Value: []byte(`{"a":1}`)}, {Key: "/apisix/routes/2", Value: []byte(`{}`)}})
	if err != nil || !changed || rev != 2 {
		t.Fatalf("replace: rev %d changed %v err %v", rev, changed, err)
	}
	resp := <-ch
	if len(resp.Events) != 2 || resp.Revision != 2 {
		t.Fatalf("first response %+v", resp)
	}
	// Same content: nothing changes.
	if rev, changed, _ := m.Replace([]KV{{Key: "/apisix/routes/2", Value: []byte(`{}`)}, {Key: "/apisix/routes/1", Value: []byte(`{"a":1}`)}}); changed || rev != 2 {
		t.Fatalf("identical replace changed the store (rev %d)", rev)
	}
	// One change, one delete, in one revision.
	m.Replace([]KV{{Key: "/apisix/routes/1", Value: []byte(`{"a":2}`)}})
	resp = <-ch
	if len(resp.Events) != 2 || resp.Revision != 3 {
		t.Fatalf("second response %+v", resp)
	}
	types := map[string]EventType{}
	for _, ev := range resp.Events {
		types[ev.KV.Key] = ev.Type
	}
	if types["/apisix/routes/1"] != EventPut || types["/apisix/routes/2"] != EventDelete {
		t.Fatalf("events %+v", resp.Events)
	}
	kv, err := m.Get(ctx, "/apisix/routes/1")
	if err != nil || string(kv.Value) != `{"a":2}` || kv.CreateRevision != 2 || kv.ModRevision != 3 {
		t.Fatalf("get %+v %v", kv, err)
	}
	kvs, lrev, _ := m.List(ctx, "/apisix/")
	if len(kvs) != 1 || lrev != 3 {
		t.Fatalf("list %+v rev %d", kvs, lrev)
	}
	// Replay from an old revision.
	replay := m.Watch(ctx, 1)
	resp = <-replay
	if resp.Events[0].Revision != 2 {
		t.Fatalf("replay starts at %d", resp.Events[0].Revision)
	}
}

func TestMemoryCASAndIDs(t *testing.T) {
	m := NewMemory()
	ctx := context.Background()
	kv, created, err := m.Put(ctx, "/k", []byte("1"), 0)
	if err != nil || !created {
		t.Fatal(err)
	}
	if _, _, err := m.Put(ctx, "/k", []byte("2"), 0); !errors.Is(err, ErrConflict) {
		t.Fatalf("create over existing: %v", err)
	}
	if _, _, err := m.Put(ctx, "/k", []byte("2"), kv.ModRevision+5); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale CAS: %v", err)
	}
	if _, _, err := m.Put(ctx, "/k", []byte("2"), kv.ModRevision); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Delete(ctx, "/nope", AnyRevision); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	id1, _ := m.NextID(ctx)
	id2, _ := m.NextID(ctx)
	if id1 != "00000000000000000001" || id2 != "00000000000000000002" {
		t.Fatalf("ids %s %s", id1, id2)
	}
	m.Close()
	if _, err := m.Get(ctx, "/k"); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestMemoryCompaction(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	for i := 0; i < memHistory+10; i++ {
		m.Replace([]KV{{Key: "/k", Value: []byte(fmt.Sprint(i))}})
	}
	resp := <-m.Watch(context.Background(), 1)
	if !resp.Compacted {
		t.Fatalf("old revision not reported compacted: %+v", resp)
	}
	rev, _ := m.Revision(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ch := m.Watch(ctx, rev-1)
	if resp := <-ch; len(resp.Events) != 1 || resp.Revision != rev {
		t.Fatalf("recent replay %+v", resp)
	}
}
