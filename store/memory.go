package store

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Memory is a Store held in memory: the configuration source of standalone
// mode, where a file is the whole configuration and Replace swaps it in
// atomically. It keeps the Store contract (revisions, CAS, ordered watch
// with replay), so the configuration manager and the Admin API's reads work
// on it unchanged. Nothing survives Close.
//
// All methods are safe for concurrent use; none blocks for long (Watch's
// delivery runs in its own goroutine per watcher).
type Memory struct {
	mu       sync.Mutex
	data     map[string]KV
	rev      int64
	ids      int64
	hist     []Event // the last memHistory events or so, in revision order
	base     int64   // every change after this revision is in hist
	watchers map[*watcher]struct{}
	closed   bool
	quit     chan struct{} // closed by Close: the watchers end
}

// memHistory is how many events a Memory keeps for watch replay.
const memHistory = 4096

// NewMemory returns an empty in-memory store at revision 1 (the revision
// of an empty configuration, as a fresh bolt store).
func NewMemory() *Memory {
	return &Memory{data: map[string]KV{}, rev: 1, base: 1, watchers: map[*watcher]struct{}{}, quit: make(chan struct{})}
}

// Replace makes kvs (keys with values) the whole content of the store in
// one revision: keys absent from kvs are deleted, changed values are
// written, identical ones are left alone. Watchers see one response with
// every change. It returns the store revision afterwards and whether
// anything changed.
func (m *Memory) Replace(kvs []KV) (rev int64, changed bool, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return m.rev, false, ErrClosed
	}
	want := make(map[string][]byte, len(kvs))
	for _, kv := range kvs {
		want[kv.Key] = kv.Value
	}
	next := m.rev + 1
	var events []Event
	keys := make([]string, 0, len(m.data))
	for k := range m.data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, keep := want[k]; !keep {
			delete(m.data, k)
			events = append(events, Event{Type: EventDelete, KV: KV{Key: k, ModRevision: next}, Revision: next})
		}
	}
	wantKeys := make([]string, 0, len(want))
	for k := range want {
		wantKeys = append(wantKeys, k)
	}
	sort.Strings(wantKeys)
	for _, k := range wantKeys {
		v := want[k]
		cur, exists := m.data[k]
		if exists && bytes.Equal(cur.Value, v) {
			continue
		}
		kv := KV{Key: k, Value: bytes.Clone(v), CreateRevision: next, ModRevision: next}
		if exists {
			kv.CreateRevision = cur.CreateRevision
		}
		m.data[k] = kv
		events = append(events, Event{Type: EventPut, KV: kv, Revision: next})
	}
	if len(events) == 0 {
		return m.rev, false, nil
	}
	m.rev = next
	m.publish(events)
	return m.rev, true, nil
}

// List implements Store.
func (m *Memory) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, 0, ErrClosed
	}
	var out []KV
	for k, kv := range m.data {
		if strings.HasPrefix(k, prefix) {
			kv.Value = bytes.Clone(kv.Value)
			out = append(out, kv)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, m.rev, nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) (KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return KV{}, ErrClosed
	}
	kv, ok := m.data[key]
	if !ok {
		return KV{}, ErrNotFound
	}
	kv.Value = bytes.Clone(kv.Value)
	return kv, nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, value []byte, expectRev int64) (KV, bool, error) {
	if err := checkWrite(key, expectRev); err != nil {
		return KV{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return KV{}, false, ErrClosed
	}
	cur, exists := m.data[key]
	switch {
	case expectRev == 0 && exists, expectRev > 0 && (!exists || cur.ModRevision != expectRev):
		return KV{}, false, ErrConflict
	}
	m.rev++
	kv := KV{Key: key, Value: bytes.Clone(value), CreateRevision: m.rev, ModRevision: m.rev}
	if exists {
		kv.CreateRevision = cur.CreateRevision
	}
	m.data[key] = kv
	m.publish([]Event{{Type: EventPut, KV: kv, Revision: m.rev}})
	kv.Value = bytes.Clone(value)
	return kv, !exists, nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string, expectRev int64) (KV, int64, error) {
	if err := checkWrite(key, expectRev); err != nil {
		return KV{}, 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return KV{}, 0, ErrClosed
	}
	cur, exists := m.data[key]
	if !exists {
		return KV{}, 0, ErrNotFound
	}
	if expectRev > 0 && cur.ModRevision != expectRev {
		return KV{}, 0, ErrConflict
	}
	m.rev++
	delete(m.data, key)
	m.publish([]Event{{Type: EventDelete, KV: KV{Key: key, ModRevision: m.rev}, Revision: m.rev}})
	return cur, m.rev, nil
}

// NextID implements Store.
func (m *Memory) NextID(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", ErrClosed
	}
	m.ids++
	return fmt.Sprintf("%020d", m.ids), nil
}

// Revision implements Store.
func (m *Memory) Revision(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	return m.rev, nil
}

// Close implements Store: watch channels close, later calls fail with
// ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	close(m.quit)
	m.watchers = nil
	return nil
}

// publish records events and queues them for every watcher. m.mu is held.
func (m *Memory) publish(events []Event) {
	m.hist = append(m.hist, events...)
	if len(m.hist) > memHistory {
		// Drop whole revisions: a Replace shares one among its events.
		cut := m.hist[len(m.hist)-memHistory-1].Revision
		i := sort.Search(len(m.hist), func(i int) bool { return m.hist[i].Revision > cut })
		m.base = cut
		m.hist = append(m.hist[:0:0], m.hist[i:]...)
	}
	for w := range m.watchers {
		w.push(events)
	}
}

// Watch implements Store. Changes after afterRev still in the history
// (the last 4096 events) are replayed first; an older afterRev gets one
// Compacted response.
func (m *Memory) Watch(ctx context.Context, afterRev int64) <-chan WatchResponse {
	if afterRev < 0 {
		return single(WatchResponse{Err: fmt.Errorf("store: cannot watch: invalid revision %d", afterRev)})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return single(WatchResponse{Err: ErrClosed})
	}
	if afterRev < m.base {
		return single(WatchResponse{Compacted: true, Revision: m.rev})
	}
	w := newWatcher(ctx, afterRev)
	w.push(m.hist)
	m.watchers[w] = struct{}{}
	go w.run(m.quit, func() { m.removeWatcher(w) })
	return w.out
}

func (m *Memory) removeWatcher(w *watcher) {
	m.mu.Lock()
	delete(m.watchers, w) // nil after Close: a no-op
	m.mu.Unlock()
}

var _ Store = (*Memory)(nil)
