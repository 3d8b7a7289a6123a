package store

import (
	"context"
	"fmt"
	"sync"
)

// Watch streams every change with revision > afterRev, in revision order,
// until ctx is done or the store is closed; then the channel closes.
//
// Each response carries all the events queued for the watcher since the
// previous one (at least one). Changes made before Watch was called are
// replayed from an in-memory history of the last DefaultHistorySize events;
// when afterRev is older than that history (always the case for a revision
// from before the store was opened), Watch sends one response with
// Compacted set and closes the channel: the caller must List again and
// watch from the revision List returns. afterRev may be ahead of the
// store; events start once the store passes it. A negative afterRev gets
// one response with Err set.
//
// Delivery: the store never waits for a watcher. Every watcher has its own
// queue, unbounded, so a slow reader loses nothing but makes the queue grow
// (each queued event costs an Event and shares its Value with the
// history); readers should keep up. Event values are shared and must not
// be modified. Watch itself never blocks. It is safe for concurrent use.
func (b *Bolt) Watch(ctx context.Context, afterRev int64) <-chan WatchResponse {
	if afterRev < 0 {
		return single(WatchResponse{Err: fmt.Errorf("store: cannot watch: invalid revision %d", afterRev)})
	}
	w := newWatcher(ctx, afterRev)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return single(WatchResponse{Err: ErrClosed})
	}
	// Under b.mu no event is published: the replay and the live events
	// that follow it meet without a gap or an overlap.
	replay, ok := b.hist.since(afterRev)
	if !ok {
		rev := b.hist.last
		b.mu.Unlock()
		return single(WatchResponse{Compacted: true, Revision: rev})
	}
	w.queue = replay
	b.watchers[w] = struct{}{}
	b.wg.Add(1) // before Close's Wait: Close sets closed under b.mu first
	b.mu.Unlock()

	go func() {
		defer b.wg.Done()
		w.run(b.quit, func() { b.removeWatcher(w) })
	}()
	return w.out
}

// single returns a closed channel holding only resp.
func single(resp WatchResponse) <-chan WatchResponse {
	ch := make(chan WatchResponse, 1)
	ch <- resp
	close(ch)
	return ch
}

// publish records committed events, in revision order, in the history and
// queues them for every watcher. Called by writeLoop only.
func (b *Bolt) publish(events []Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ev := range events {
		b.hist.add(ev)
	}
	for w := range b.watchers {
		w.push(events)
	}
}

func (b *Bolt) removeWatcher(w *watcher) {
	b.mu.Lock()
	delete(b.watchers, w)
	b.mu.Unlock()
}

// watcher is one Watch call, on either store: an unbounded queue drained
// by its own goroutine into out.
type watcher struct {
	ctx   context.Context
	after int64 // only events with a greater revision are queued
	wake  chan struct{}
	out   chan WatchResponse

	mu    sync.Mutex
	queue []Event
}

func newWatcher(ctx context.Context, after int64) *watcher {
	return &watcher{ctx: ctx, after: after, wake: make(chan struct{}, 1), out: make(chan WatchResponse)}
}

// push queues the events newer than w.after. It never blocks.
func (w *watcher) push(events []Event) {
	w.mu.Lock()
	for _, ev := range events {
		if ev.Revision > w.after {
			w.queue = append(w.queue, ev)
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (w *watcher) take() []Event {
	w.mu.Lock()
	q := w.queue
	w.queue = nil
	w.mu.Unlock()
	return q
}

// run sends the queued events, a response per batch, until the watch's
// context is done or quit (the store's) is closed; it then calls remove
// and closes out.
func (w *watcher) run(quit <-chan struct{}, remove func()) {
	defer close(w.out)
	defer remove()
	for {
		evs := w.take()
		if len(evs) == 0 {
			select {
			case <-w.wake:
				continue
			case <-w.ctx.Done():
				return
			case <-quit:
				return
			}
		}
		resp := WatchResponse{Events: evs, Revision: evs[len(evs)-1].Revision}
		select {
		case w.out <- resp:
		case <-w.ctx.Done():
			return
		case <-quit:
			return
		}
	}
}

// history is a ring of the latest events. Every revision makes exactly one
// event, so revision r sits at ring[r % len(ring)]. Guarded by Bolt.mu.
type history struct {
	ring  []Event
	first int64 // oldest revision held; first > last when empty
	last  int64 // latest published revision
}

// newHistory starts empty at revision rev: nothing before rev+1 can be replayed.
func newHistory(size int, rev int64) history {
	if size < 1 {
		panic("BUG: history size must be positive")
	}
	return history{ring: make([]Event, size), first: rev + 1, last: rev}
}

func (h *history) add(ev Event) {
	if ev.Revision != h.last+1 {
		panic(fmt.Sprintf("BUG: event revision %d published after %d", ev.Revision, h.last))
	}
	n := int64(len(h.ring))
	h.ring[ev.Revision%n] = ev
	h.last = ev.Revision
	if h.last-h.first+1 > n {
		h.first = h.last - n + 1
	}
}

// since returns a copy of the events after rev; ok is false when some of
// them are no longer held.
func (h *history) since(rev int64) (events []Event, ok bool) {
	if rev >= h.last {
		return nil, true
	}
	if rev+1 < h.first {
		return nil, false
	}
	n := int64(len(h.ring))
	events = make([]Event, 0, h.last-rev)
	for r := rev + 1; r <= h.last; r++ {
		events = append(events, h.ring[r%n])
	}
	return events, true
}
