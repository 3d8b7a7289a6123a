package store

import (
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// maxBatch caps how many queued writes one transaction commits.
const maxBatch = 128

type opKind uint8

const (
	opPut opKind = iota + 1
	opDelete
	opNextID
)

// writeReq is one write handed to writeLoop.
type writeReq struct {
	ctx    context.Context
	op     opKind
	key    []byte
	value  []byte // the store's own copy; events share it with watchers
	expect int64
	res    chan writeRes // capacity 1; writeLoop sends exactly once
}

type writeRes struct {
	kv      KV
	rev     int64 // the revision of a delete
	created bool
	id      uint64
	err     error
}

// Put writes value under key; see Store.Put for expectRev. The returned KV
// holds a copy of value. Put returns once the write is fsynced (or failed);
// see Bolt for how long that takes.
//
// Cancellation: if ctx ends before the writer has taken the write, Put
// returns ctx.Err() and nothing is written. Once taken, the write is
// committed and Put waits for it, so every result is definite.
func (b *Bolt) Put(ctx context.Context, key string, value []byte, expectRev int64) (KV, bool, error) {
	if err := checkWrite(key, expectRev); err != nil {
		return KV{}, false, fmt.Errorf("store: cannot put %q: %w", key, err)
	}
	if len(value) > bolt.MaxValueSize {
		return KV{}, false, fmt.Errorf("store: cannot put %q: value of %d bytes is too large", key, len(value))
	}
	res, err := b.do(ctx, &writeReq{op: opPut, key: []byte(key), value: append([]byte{}, value...), expect: expectRev})
	if err != nil {
		return KV{}, false, err
	}
	res.kv.Value = append([]byte{}, value...)
	return res.kv, res.created, nil
}

// Delete removes key and returns it with its last value and revisions,
// and the revision of the delete.
// expectRev > 0 makes the delete conditional on the key's ModRevision
// (ErrConflict otherwise); AnyRevision and 0 delete unconditionally. A
// missing key gives ErrNotFound, whatever expectRev is. Blocking and
// cancellation are as for Put.
func (b *Bolt) Delete(ctx context.Context, key string, expectRev int64) (KV, int64, error) {
	if err := checkWrite(key, expectRev); err != nil {
		return KV{}, 0, fmt.Errorf("store: cannot delete %q: %w", key, err)
	}
	res, err := b.do(ctx, &writeReq{op: opDelete, key: []byte(key), expect: expectRev})
	return res.kv, res.rev, err
}

// NextID returns a fresh id for a POST-created object: a persisted counter
// starting at 1, zero-padded to 20 digits like APISIX ("00000000000000000046").
// Ids are unique across restarts. Taking an id does not advance the store
// revision and makes no event. Blocking and cancellation are as for Put.
func (b *Bolt) NextID(ctx context.Context) (string, error) {
	res, err := b.do(ctx, &writeReq{op: opNextID})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%020d", res.id), nil
}

func checkWrite(key string, expectRev int64) error {
	switch {
	case key == "":
		return fmt.Errorf("empty key")
	case len(key) > bolt.MaxKeySize:
		return fmt.Errorf("key of %d bytes is too long", len(key))
	case expectRev < AnyRevision:
		return fmt.Errorf("invalid expected revision %d", expectRev)
	}
	return nil
}

// do hands r to writeLoop and waits for its result.
func (b *Bolt) do(ctx context.Context, r *writeReq) (writeRes, error) {
	// select picks among ready cases at random: check first so that a
	// cancelled ctx never writes.
	if err := ctx.Err(); err != nil {
		return writeRes{}, err
	}
	r.ctx = ctx
	r.res = make(chan writeRes, 1)
	select {
	case b.reqs <- r:
	case <-ctx.Done():
		return writeRes{}, ctx.Err()
	case <-b.quit:
		return writeRes{}, ErrClosed
	}
	// writeLoop owns r now and always answers, even during Close.
	res := <-r.res
	return res, res.err
}

// writeLoop is the only writer. Serialising writes here gives revisions in
// commit order, publishes events in that same order, and lets concurrent
// writers share one transaction (group commit).
func (b *Bolt) writeLoop() {
	defer b.wg.Done()
	batch := make([]*writeReq, 0, maxBatch)
	for {
		// Prefer quit: otherwise a steady stream of writers could keep
		// Close waiting.
		select {
		case <-b.quit:
			return
		default:
		}
		select {
		case <-b.quit:
			return
		case r := <-b.reqs:
			batch = append(batch[:0], r)
		}
		// Take the writers already waiting: they share this commit.
	fill:
		for len(batch) < maxBatch {
			select {
			case r := <-b.reqs:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		b.commit(batch)
		clear(batch)
	}
}

// commit applies batch in one transaction, publishes its events once the
// commit is durable, and answers every request.
//
// A failed commit is fatal for writing: every later write gets b.failed,
// which wraps ErrUnavailable, until the store is reopened. After a failed
// write or fsync the kernel may already have dropped the dirty pages, so a
// retry that succeeds can still lose data, and the revision on disk is no
// longer known for sure.
func (b *Bolt) commit(batch []*writeReq) {
	res := make([]writeRes, len(batch))
	defer func() {
		for i, r := range batch {
			r.res <- res[i]
		}
	}()
	if b.failed != nil {
		for i := range res {
			res[i].err = b.failed
		}
		return
	}
	var events []Event
	err := b.db.Update(func(tx *bolt.Tx) error {
		w := txWriter{kv: tx.Bucket(bucketKV), revs: tx.Bucket(bucketRevs), meta: tx.Bucket(bucketMeta)}
		start := int64(getUint64(w.meta.Get(metaRevision)))
		rev := start
		for i, r := range batch {
			if err := r.ctx.Err(); err != nil {
				res[i].err = err
				continue
			}
			ev, err := w.apply(r, rev+1, &res[i])
			if err != nil {
				// Not a contract failure: give up the whole batch.
				return fmt.Errorf("%s %q: %w", r.op, r.key, err)
			}
			if ev.Type != 0 {
				rev++
				events = append(events, ev)
			}
		}
		if rev == start {
			return nil
		}
		return w.meta.Put(metaRevision, putUint64(uint64(rev)))
	})
	if err != nil {
		// Whatever each op concluded, none of them is known to be written.
		b.failed = fmt.Errorf("store: cannot write after a failed commit (%w): %w", err, ErrUnavailable)
		err = fmt.Errorf("store: cannot commit: %w", err)
		for i := range res {
			res[i] = writeRes{err: err}
		}
		return
	}
	if len(events) > 0 {
		b.publish(events)
	}
}

// txWriter applies single writes inside one read-write transaction.
type txWriter struct {
	kv, revs, meta *bolt.Bucket
}

// apply performs r at revision rev, storing the caller's answer in res. It
// returns the event the write made (zero Type when it made none) and an
// error only when the transaction must be abandoned.
func (w txWriter) apply(r *writeReq, rev int64, res *writeRes) (Event, error) {
	switch r.op {
	case opPut:
		return w.put(r, rev, res)
	case opDelete:
		return w.delete(r, rev, res)
	case opNextID:
		id := getUint64(w.meta.Get(metaID)) + 1
		res.id = id
		return Event{}, w.meta.Put(metaID, putUint64(id))
	}
	panic(fmt.Sprintf("BUG: unknown write op %d", r.op))
}

func (w txWriter) put(r *writeReq, rev int64, res *writeRes) (Event, error) {
	create, mod, exists, err := w.revisions(r.key)
	if err != nil {
		return Event{}, err
	}
	switch {
	case r.expect == AnyRevision:
	case r.expect == 0 && exists, r.expect > 0 && (!exists || mod != r.expect):
		res.err = ErrConflict
		return Event{}, nil
	}
	if !exists {
		create = rev
	}
	if err := w.kv.Put(r.key, r.value); err != nil {
		return Event{}, err
	}
	if err := w.revs.Put(r.key, encodeRevs(create, rev)); err != nil {
		return Event{}, err
	}
	kv := KV{Key: string(r.key), Value: r.value, CreateRevision: create, ModRevision: rev}
	res.kv, res.created = kv, !exists
	return Event{Type: EventPut, KV: kv, Revision: rev}, nil
}

func (w txWriter) delete(r *writeReq, rev int64, res *writeRes) (Event, error) {
	create, mod, exists, err := w.revisions(r.key)
	if err != nil {
		return Event{}, err
	}
	switch {
	case !exists:
		res.err = ErrNotFound
		return Event{}, nil
	case r.expect > 0 && mod != r.expect:
		res.err = ErrConflict
		return Event{}, nil
	}
	key := string(r.key)
	res.kv = KV{Key: key, Value: append([]byte{}, w.kv.Get(r.key)...), CreateRevision: create, ModRevision: mod}
	res.rev = rev
	if err := w.kv.Delete(r.key); err != nil {
		return Event{}, err
	}
	if err := w.revs.Delete(r.key); err != nil {
		return Event{}, err
	}
	return Event{Type: EventDelete, KV: KV{Key: key, ModRevision: rev}, Revision: rev}, nil
}

func (w txWriter) revisions(key []byte) (create, mod int64, exists bool, err error) {
	v := w.revs.Get(key)
	if v == nil {
		return 0, 0, false, nil
	}
	create, mod, err = decodeRevs(v)
	return create, mod, err == nil, err
}

func (op opKind) String() string {
	switch op {
	case opPut:
		return "put"
	case opDelete:
		return "delete"
	case opNextID:
		return "next id"
	}
	return fmt.Sprintf("op(%d)", uint8(op))
}
