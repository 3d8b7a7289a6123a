package store

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Watch streams every change under the prefix with revision > afterRev, in
// revision order, until ctx is done or the store is closed; then the
// channel closes.
//
// It is one etcd watch over the whole prefix, as APISIX's is. The etcd
// client re-establishes a broken stream by itself and resumes from the
// revision after the last event it delivered; should the watch end anyway
// (etcd lost its leader, a member was removed), Watch opens it again from
// that same revision, at most EtcdMaxBackoff later. Events already
// delivered are never delivered again, so a reconnection neither misses
// nor repeats a change.
//
// When etcd has compacted the revisions the watch needs (afterRev is too
// old, or etcd compacted them while this gateway was cut off), Watch sends
// what it holds, then one response with Compacted set (Revision is etcd's
// revision then), and closes the channel: the caller must List again.
//
// Events of one etcd transaction share a revision. Responses merge
// whatever arrived while the reader was busy, so a slow reader gets big
// batches rather than a growing backlog of small ones; the queue is
// unbounded. APISIX's directory keys ("init_dir") are skipped; deletes
// carry only the key and the delete's revision. Event values are shared
// and must not be modified. Watch itself never blocks.
func (e *Etcd) Watch(ctx context.Context, afterRev int64) <-chan WatchResponse {
	if afterRev < 0 {
		return single(WatchResponse{Err: fmt.Errorf("store: cannot watch: invalid revision %d", afterRev)})
	}
	if e.closed.Load() {
		return single(WatchResponse{Err: ErrClosed})
	}
	out := make(chan WatchResponse)
	e.wg.Add(1)
	go e.watch(ctx, afterRev, out)
	return out
}

// watch runs one Watch: it reads etcd's responses into pending and hands
// pending to out whenever the reader is ready.
func (e *Etcd) watch(ctx context.Context, after int64, out chan<- WatchResponse) {
	defer e.wg.Done()
	defer close(out)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(e.ctx, cancel)()

	var (
		last    = after // the revision of the last event queued
		pending WatchResponse
		final   *WatchResponse // a Compacted response, sent after pending
		wch     clientv3.WatchChan
		stop    context.CancelFunc = func() {}
		retry   <-chan time.Time   // set while waiting to re-open the watch
		wait    = 100 * time.Millisecond
		ended   int // consecutive ends without an event in between
	)
	open := func() {
		// WithRequireLeader: a member cut off from its cluster ends the
		// watch instead of keeping it silent; we re-open it elsewhere.
		wctx, c := context.WithCancel(clientv3.WithRequireLeader(ctx))
		stop = c
		wch = e.cli.Watch(wctx, e.root, clientv3.WithPrefix(), clientv3.WithRev(last+1))
	}
	open()
	defer func() { stop() }()
	for {
		var send chan<- WatchResponse
		switch {
		case len(pending.Events) > 0:
			send = out
		case final != nil:
			select {
			case out <- *final:
			case <-ctx.Done():
			}
			return
		}
		select {
		case resp, ok := <-wch:
			if ok && resp.CompactRevision == 0 && resp.Err() == nil {
				last = e.queue(&pending, resp.Events, last)
				wait, ended = 100*time.Millisecond, 0
				continue
			}
			stop()
			wch = nil
			if ctx.Err() != nil {
				return
			}
			if ok && resp.CompactRevision != 0 {
				e.log("store: etcd watch from revision %d: compacted at %d, listing again", last+1, resp.CompactRevision)
				final = &WatchResponse{Compacted: true, Revision: resp.Header.Revision}
				continue
			}
			// Log the first end, then every 30th in a row (while etcd has
			// no leader the watch ends about once a second).
			if ok && ended%30 == 0 {
				e.log("store: etcd watch ended: %v; resuming from revision %d", resp.Err(), last+1)
			}
			ended++
			retry = time.After(wait)
			wait = min(2*wait, EtcdMaxBackoff)
		case <-retry:
			retry = nil
			open()
		case send <- pending:
			pending = WatchResponse{}
		case <-ctx.Done():
			return
		}
	}
}

// queue appends the events newer than last to pending and returns the
// revision of the last one. Events at or below last were delivered
// already (a resumed stream may repeat them) and are dropped. The events
// of one etcd transaction share a revision and always arrive in one
// response, so comparing with the last revision of earlier responses is
// exact.
func (e *Etcd) queue(pending *WatchResponse, events []*clientv3.Event, last int64) int64 {
	done := last
	for _, ev := range events {
		kv := ev.Kv
		if kv.ModRevision <= done {
			continue
		}
		last = max(last, kv.ModRevision)
		key := apisixRoot + string(kv.Key[len(e.prefix):])
		var out Event
		switch {
		case ev.Type == mvccpb.PUT && isInitDir(kv.Key, kv.Value):
			continue
		case ev.Type == mvccpb.PUT:
			// The client does not reuse a response's bytes: share them.
			out = Event{Type: EventPut, KV: KV{Key: key, Value: kv.Value, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}}
		case ev.Type == mvccpb.DELETE:
			out = Event{Type: EventDelete, KV: KV{Key: key, ModRevision: kv.ModRevision}}
		default:
			continue
		}
		out.Revision = kv.ModRevision
		pending.Events = append(pending.Events, out)
		pending.Revision = kv.ModRevision
	}
	return last
}
