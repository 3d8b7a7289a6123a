package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"
)

// hangGuard only turns a hang into a readable failure; no test asserts a
// duration with it.
const hangGuard = 30 * time.Second

// recv returns the next response, failing if the channel closes.
func recv(t *testing.T, ch <-chan WatchResponse) WatchResponse {
	t.Helper()
	select {
	case resp, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return resp
	case <-time.After(hangGuard):
		t.Fatal("no watch response")
	}
	panic("unreachable")
}

// recvEvents reads responses until n events have arrived.
func recvEvents(t *testing.T, ch <-chan WatchResponse, n int) []Event {
	t.Helper()
	var evs []Event
	for len(evs) < n {
		resp := recv(t, ch)
		if resp.Err != nil || resp.Compacted || len(resp.Events) == 0 {
			t.Fatalf("unexpected response %+v", resp)
		}
		if resp.Revision != resp.Events[len(resp.Events)-1].Revision {
			t.Fatalf("response revision %d, last event %d", resp.Revision, resp.Events[len(resp.Events)-1].Revision)
		}
		evs = append(evs, resp.Events...)
	}
	if len(evs) != n {
		t.Fatalf("got %d events, want %d", len(evs), n)
	}
	return evs
}

// waitClosed drains ch until it closes.
func waitClosed(t *testing.T, ch <-chan WatchResponse) {
	t.Helper()
	timeout := time.After(hangGuard)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("watch channel not closed")
		}
	}
}

// checkEvent compares one event; value "" means a delete.
func checkEvent(t *testing.T, ev Event, rev int64, key, value string) {
	t.Helper()
	if ev.Revision != rev || ev.KV.Key != key || ev.KV.ModRevision != rev {
		t.Fatalf("event %+v, want %s at revision %d", ev, key, rev)
	}
	if value == "" {
		if ev.Type != EventDelete || ev.KV.Value != nil || ev.KV.CreateRevision != 0 {
			t.Fatalf("event %+v, want a delete", ev)
		}
		return
	}
	if ev.Type != EventPut || string(ev.KV.Value) != value {
		t.Fatalf("event %v %s=%q, want PUT %q", ev.Type, ev.KV.Key, ev.KV.Value, value)
	}
}

func TestWatchEvents(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	ch := s.Watch(ctx, 0)
	mustPut(t, s, "/apisix/routes/1", "a", AnyRevision)
	mustPut(t, s, "/apisix/routes/1", "b", AnyRevision)
	if _, _, err := s.Delete(ctx, "/apisix/routes/1", AnyRevision); err != nil {
		t.Fatal(err)
	}
	// Failed writes and ids make no events.
	if _, _, err := s.Put(ctx, "/apisix/routes/2", []byte("x"), 9); !errors.Is(err, ErrConflict) {
		t.Fatal(err)
	}
	if _, err := s.NextID(ctx); err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "/apisix/routes/2", "c", 0)

	evs := recvEvents(t, ch, 4)
	checkEvent(t, evs[0], 1, "/apisix/routes/1", "a")
	checkEvent(t, evs[1], 2, "/apisix/routes/1", "b")
	checkEvent(t, evs[2], 3, "/apisix/routes/1", "")
	checkEvent(t, evs[3], 4, "/apisix/routes/2", "c")
	if evs[1].KV.CreateRevision != 1 || evs[3].KV.CreateRevision != 4 {
		t.Fatalf("create revisions %d, %d", evs[1].KV.CreateRevision, evs[3].KV.CreateRevision)
	}
}

// TestWatchConcurrentWriters runs 8 writers of 500 writes each, with one
// watcher reading along and one that reads nothing until the writers are
// done. Both must see every revision once, in order, and the events must
// rebuild exactly the state List returns.
func TestWatchConcurrentWriters(t *testing.T) {
	const writers, writes = 8, 500
	s := openTest(t, "")
	ctx := context.Background()
	mustPut(t, s, "/apisix/routes/before", "x", AnyRevision)
	start := mustRevision(t, s)
	eager := s.Watch(ctx, start)
	slow := s.Watch(ctx, start)

	var committed sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for w := range writers {
		committed.Go(func() {
			n := 0
			for i := range writes {
				key := fmt.Sprintf("/apisix/routes/%d-%d", w, i%20)
				var err error
				if i%7 == 6 {
					_, _, err = s.Delete(ctx, key, AnyRevision)
				} else {
					_, _, err = s.Put(ctx, key, fmt.Appendf(nil, `{"w":%d,"i":%d}`, w, i), AnyRevision)
				}
				switch {
				case err == nil:
					n++
				case !errors.Is(err, ErrNotFound):
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
			mu.Lock()
			total += n
			mu.Unlock()
		})
	}

	// The eager reader lags now and then, and stops at the marker key
	// written after the writers are done.
	eagerDone := make(chan []Event)
	go func() {
		var evs []Event
		for resp := range eager {
			evs = append(evs, resp.Events...)
			if len(evs)%97 == 0 {
				time.Sleep(time.Millisecond)
			}
			if evs[len(evs)-1].KV.Key == "/apisix/routes/after" {
				break
			}
		}
		eagerDone <- evs
	}()

	committed.Wait()
	end := mustRevision(t, s)
	if end-start != int64(total) {
		t.Fatalf("revision moved by %d for %d successful writes", end-start, total)
	}
	// The writers finished without anyone reading the slow watcher.
	slowEvs := recvEvents(t, slow, total)

	mustPut(t, s, "/apisix/routes/after", "y", AnyRevision)
	var eagerEvs []Event
	select {
	case eagerEvs = <-eagerDone:
	case <-time.After(hangGuard):
		t.Fatal("eager watcher did not finish")
	}
	if len(eagerEvs) != total+1 {
		t.Fatalf("eager watcher got %d events, want %d", len(eagerEvs), total+1)
	}

	kvs, listRev, err := s.List(ctx, "/apisix/routes/")
	if err != nil {
		t.Fatal(err)
	}
	for name, evs := range map[string][]Event{"eager": eagerEvs, "slow": slowEvs} {
		state := map[string]string{"/apisix/routes/before": "x"}
		lastI := map[string]int{}
		for i, ev := range evs[:total] {
			if want := start + int64(i) + 1; ev.Revision != want {
				t.Fatalf("%s watcher: event %d has revision %d, want %d", name, i, ev.Revision, want)
			}
			switch ev.Type {
			case EventPut:
				state[ev.KV.Key] = string(ev.KV.Value)
				var w, j int
				if _, err := fmt.Sscanf(string(ev.KV.Value), `{"w":%d,"i":%d}`, &w, &j); err != nil {
					t.Fatal(err)
				}
				// Each writer's own writes arrive in the order it made them.
				if prev, ok := lastI[fmt.Sprint(w)]; ok && j <= prev {
					t.Fatalf("%s watcher: writer %d write %d after %d", name, w, j, prev)
				}
				lastI[fmt.Sprint(w)] = j
			case EventDelete:
				delete(state, ev.KV.Key)
			}
		}
		state["/apisix/routes/after"] = "y"
		listed := map[string]string{}
		for _, kv := range kvs {
			listed[kv.Key] = string(kv.Value)
		}
		if !maps.Equal(state, listed) {
			t.Fatalf("%s watcher: state rebuilt from events differs from List at %d", name, listRev)
		}
	}
}

func TestWatchReplaysFromOlderRevision(t *testing.T) {
	s := openTest(t, "")
	ctx := context.Background()
	mustPut(t, s, "/apisix/routes/1", "a", AnyRevision)
	_, rev, err := s.List(ctx, "/apisix/")
	if err != nil {
		t.Fatal(err)
	}
	// Changes between List and Watch must not be missed.
	mustPut(t, s, "/apisix/routes/2", "b", AnyRevision)
	if _, _, err := s.Delete(ctx, "/apisix/routes/1", AnyRevision); err != nil {
		t.Fatal(err)
	}
	ch := s.Watch(ctx, rev)
	mustPut(t, s, "/apisix/routes/3", "c", AnyRevision)
	evs := recvEvents(t, ch, 3)
	checkEvent(t, evs[0], 2, "/apisix/routes/2", "b")
	checkEvent(t, evs[1], 3, "/apisix/routes/1", "")
	checkEvent(t, evs[2], 4, "/apisix/routes/3", "c")

	// From 0, everything since the store was created.
	evs = recvEvents(t, s.Watch(ctx, 0), 4)
	checkEvent(t, evs[0], 1, "/apisix/routes/1", "a")
	checkEvent(t, evs[3], 4, "/apisix/routes/3", "c")
}

func TestWatchFromFutureRevision(t *testing.T) {
	s := openTest(t, "")
	ch := s.Watch(context.Background(), 2)
	mustPut(t, s, "/k", "1", AnyRevision)
	mustPut(t, s, "/k", "2", AnyRevision)
	mustPut(t, s, "/k", "3", AnyRevision)
	evs := recvEvents(t, ch, 1)
	checkEvent(t, evs[0], 3, "/k", "3")
}

func TestWatchCompacted(t *testing.T) {
	f := func(t *testing.T, s *Bolt, afterRev, wantRev int64) {
		t.Helper()
		ch := s.Watch(context.Background(), afterRev)
		resp := recv(t, ch)
		if !resp.Compacted || resp.Err != nil || len(resp.Events) != 0 || resp.Revision != wantRev {
			t.Fatalf("Watch(%d) = %+v, want Compacted at %d", afterRev, resp, wantRev)
		}
		waitClosed(t, ch)
	}

	t.Run("older than the history", func(t *testing.T) {
		s, err := openBolt(t.TempDir(), boltOptions{lockTimeout: time.Second, historySize: 16})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		for i := range 20 {
			mustPut(t, s, "/k", fmt.Sprint(i), AnyRevision)
		}
		f(t, s, 3, 20)
		f(t, s, 0, 20)
		// 4 is the oldest start still held: revisions 5..20.
		evs := recvEvents(t, s.Watch(context.Background(), 4), 16)
		checkEvent(t, evs[0], 5, "/k", "4")
		checkEvent(t, evs[15], 20, "/k", "19")
	})

	t.Run("from before the store was opened", func(t *testing.T) {
		dir := t.TempDir()
		s := openTest(t, dir)
		for i := range 5 {
			mustPut(t, s, "/k", fmt.Sprint(i), AnyRevision)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = openTest(t, dir)
		f(t, s, 4, 5)
		ch := s.Watch(context.Background(), 5) // the current revision is fine
		mustPut(t, s, "/k", "x", AnyRevision)
		checkEvent(t, recvEvents(t, ch, 1)[0], 6, "/k", "x")
	})
}

func TestWatchStopsOnCancel(t *testing.T) {
	s := openTest(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	idle := s.Watch(ctx, 0)
	backlog := s.Watch(ctx, 0)
	mustPut(t, s, "/k", "1", AnyRevision)
	mustPut(t, s, "/k", "2", AnyRevision)
	// idle reads its events and waits; backlog never reads.
	recvEvents(t, idle, 2)
	cancel()
	waitClosed(t, idle)
	waitClosed(t, backlog)
	// The store forgets them and keeps working.
	mustPut(t, s, "/k", "3", AnyRevision)
	s.mu.Lock()
	n := len(s.watchers)
	s.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d watchers left after cancel", n)
	}
}

func TestWatchEndsOnClose(t *testing.T) {
	s := openTest(t, "")
	ch := s.Watch(context.Background(), 0)
	mustPut(t, s, "/k", "1", AnyRevision)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Close waits for the watcher goroutines: the channel is closed now,
	// possibly after the undelivered event was dropped.
	for resp := range ch {
		if resp.Err != nil || resp.Compacted {
			t.Fatalf("unexpected response %+v", resp)
		}
	}
}

func TestWatchNegativeRevision(t *testing.T) {
	s := openTest(t, "")
	ch := s.Watch(context.Background(), -1)
	if resp := recv(t, ch); resp.Err == nil {
		t.Fatalf("Watch(-1) = %+v, want an error", resp)
	}
	waitClosed(t, ch)
}

func TestHistoryRing(t *testing.T) {
	h := newHistory(4, 10)
	f := func(after int64, wantOK bool, want ...int64) {
		t.Helper()
		evs, ok := h.since(after)
		var got []int64
		for _, ev := range evs {
			got = append(got, ev.Revision)
		}
		if ok != wantOK || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("since(%d) = %v %v, want %v %v", after, got, ok, want, wantOK)
		}
	}
	f(10, true)
	f(9, false)
	f(12, true) // ahead of the store
	for r := int64(11); r <= 16; r++ {
		h.add(Event{Type: EventPut, Revision: r})
	}
	f(16, true)
	f(15, true, 16)
	f(12, true, 13, 14, 15, 16)
	f(11, false)
	f(0, false)
}

// TestCloseWhileBusy closes the store under writers and watchers: every
// write ends with a result (nil or ErrClosed), every watch channel closes,
// and every acknowledged write is on disk.
func TestCloseWhileBusy(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	ctx := context.Background()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked []string
	)
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				key := fmt.Sprintf("/k/%d-%d", w, i)
				_, _, err := s.Put(ctx, key, []byte("v"), AnyRevision)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked = append(acked, key)
				mu.Unlock()
			}
		})
	}
	for range 4 {
		ch := s.Watch(ctx, 0)
		wg.Go(func() {
			for range ch {
			}
		})
	}
	for mustRevision(t, s) < 50 {
		time.Sleep(time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()

	s = openTest(t, dir)
	for _, key := range acked {
		if _, err := s.Get(ctx, key); err != nil {
			t.Fatalf("acknowledged %s: %v", key, err)
		}
	}
}
