package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// DBFile is the name of the database file OpenBolt uses inside its directory.
const DBFile = "gateway.db"

// Defaults of the bbolt backend.
const (
	// DefaultLockTimeout bounds how long OpenBolt waits for the file lock
	// held by another process before it gives up with ErrLocked.
	DefaultLockTimeout = time.Second
	// DefaultHistorySize is how many of the latest events the backend keeps
	// in memory so that Watch can replay from an older revision.
	DefaultHistorySize = 10000
)

// ErrLocked is returned (wrapped) by OpenBolt when another process, most
// likely another gateway, holds the database file.
var ErrLocked = errors.New("store: database is locked by another process")

// On-disk layout. Three buckets:
//
//	kv:   key -> value, the raw JSON bytes ("/apisix/routes/1" -> {...})
//	revs: key -> create revision, mod revision (two big-endian uint64)
//	meta: "format" -> 1, "revision" -> store revision, "id" -> last POST id
//
// kv and revs always hold the same set of keys.
var (
	bucketKV   = []byte("kv")
	bucketRevs = []byte("revs")
	bucketMeta = []byte("meta")

	metaFormat   = []byte("format")
	metaRevision = []byte("revision")
	metaID       = []byte("id")
)

// formatVersion is the layout described above; OpenBolt refuses any other.
const formatVersion = 1

// Bolt is the embedded Store backed by a single bbolt file. It is the
// default backend of a single gateway.
//
// Bolt is safe for concurrent use. What blocks and for how long:
//
//   - Get, List and Revision read a consistent snapshot and never wait for
//     writers; they can only stall briefly while the file is re-mapped as
//     it grows.
//   - Put, Delete and NextID go through one writer goroutine that commits
//     the writes queued meanwhile (up to 128) in one transaction and
//     one fsync round. They return once their write is durable, so they
//     block for the commit in progress plus their own: typically a few
//     milliseconds, bounded by the disk.
//   - Watch never blocks, and writers never wait for watchers: every
//     watcher has an unbounded queue (see Watch).
//   - Close waits for the commit in progress and for open reads.
//
// A commit that fails (disk full, I/O error) fails its writes, and every
// later write fails with an error wrapping ErrUnavailable until the store
// is reopened; reads and watches keep working.
//
// A Bolt must not be copied.
type Bolt struct {
	db   *bolt.DB
	path string

	reqs   chan *writeReq // unbuffered; read only by writeLoop
	quit   chan struct{}  // closed by Close
	wg     sync.WaitGroup // writeLoop and watcher goroutines
	failed error          // set after a failed commit; owned by writeLoop

	mu       sync.Mutex // guards the fields below
	closed   bool
	hist     history
	watchers map[*watcher]struct{}

	closeOnce sync.Once
	closeErr  error
}

// boltOptions are the knobs tests turn; OpenBolt uses the defaults.
type boltOptions struct {
	lockTimeout time.Duration
	historySize int
	maxSize     int // bbolt's MaxSize: lets tests make a commit fail
}

// OpenBolt opens (creating if needed) the store in dir/gateway.db. dir is
// created with mode 0700 and the file with 0600. bbolt locks the file: if
// another process holds it, OpenBolt fails after DefaultLockTimeout with an
// error wrapping ErrLocked.
//
// Every committed write is fsynced. The caller must Close the store.
func OpenBolt(dir string) (*Bolt, error) {
	return openBolt(dir, boltOptions{lockTimeout: DefaultLockTimeout, historySize: DefaultHistorySize})
}

func openBolt(dir string, o boltOptions) (*Bolt, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: cannot create data dir: %w", err)
	}
	path := filepath.Join(dir, DBFile)
	// NoSync stays false: bbolt fsyncs the data and then the meta page on
	// every commit, which is what makes an acknowledged write durable.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout, MaxSize: o.maxSize})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("store: cannot open %s (is another gateway using this data dir?): %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("store: cannot open %s: %w", path, err)
	}
	var rev int64
	err = db.Update(func(tx *bolt.Tx) error {
		var err error
		rev, err = initLayout(tx)
		return err
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: cannot open %s: %w", path, err)
	}
	b := &Bolt{
		db:       db,
		path:     path,
		reqs:     make(chan *writeReq),
		quit:     make(chan struct{}),
		hist:     newHistory(o.historySize, rev),
		watchers: make(map[*watcher]struct{}),
	}
	b.wg.Add(1)
	go b.writeLoop()
	return b, nil
}

// initLayout creates the buckets of a new file, checks the format of an
// existing one, and returns the store revision.
func initLayout(tx *bolt.Tx) (int64, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		if tx.Bucket(bucketKV) != nil || tx.Bucket(bucketRevs) != nil {
			return 0, errors.New("kv bucket without meta bucket: not a gateway store")
		}
		for _, name := range [][]byte{bucketKV, bucketRevs, bucketMeta} {
			if _, err := tx.CreateBucket(name); err != nil {
				return 0, err
			}
		}
		meta = tx.Bucket(bucketMeta)
		if err := meta.Put(metaFormat, putUint64(formatVersion)); err != nil {
			return 0, err
		}
		return 0, nil
	}
	if v := getUint64(meta.Get(metaFormat)); v != formatVersion {
		return 0, fmt.Errorf("unsupported store format %d (want %d)", v, formatVersion)
	}
	if tx.Bucket(bucketKV) == nil || tx.Bucket(bucketRevs) == nil {
		return 0, errors.New("missing kv or revs bucket")
	}
	return int64(getUint64(meta.Get(metaRevision))), nil
}

// Path returns the path of the database file.
func (b *Bolt) Path() string { return b.path }

// Get returns key; ErrNotFound when absent. It reads a snapshot and does
// not wait for writers.
func (b *Bolt) Get(ctx context.Context, key string) (KV, error) {
	if err := ctx.Err(); err != nil {
		return KV{}, err
	}
	var kv KV
	err := b.view(func(tx *bolt.Tx) error {
		var (
			ok  bool
			err error
		)
		kv, ok, err = getKV(tx, []byte(key))
		if err == nil && !ok {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return KV{}, b.readErr("get "+key, err)
	}
	return kv, nil
}

// List returns every key starting with prefix, sorted by key, and the
// revision of the snapshot it read. An empty prefix lists everything. Like
// etcd, a key equal to prefix is included. It does not wait for writers.
func (b *Bolt) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	var (
		kvs []KV
		rev int64
	)
	p := []byte(prefix)
	err := b.view(func(tx *bolt.Tx) error {
		rev = int64(getUint64(tx.Bucket(bucketMeta).Get(metaRevision)))
		// kv and revs hold the same keys, so two cursors walk in step.
		vc := tx.Bucket(bucketKV).Cursor()
		rc := tx.Bucket(bucketRevs).Cursor()
		k, v := vc.Seek(p)
		rk, r := rc.Seek(p)
		for ; k != nil && bytes.HasPrefix(k, p); k, v = vc.Next() {
			if !bytes.Equal(k, rk) {
				return fmt.Errorf("revs bucket out of step with kv at %q", k)
			}
			kv, err := makeKV(k, v, r)
			if err != nil {
				return err
			}
			kvs = append(kvs, kv)
			rk, r = rc.Next()
		}
		return nil
	})
	if err != nil {
		return nil, 0, b.readErr("list "+prefix, err)
	}
	return kvs, rev, nil
}

// Revision returns the revision of the last committed write (0 for a new
// store). It does not wait for writers.
func (b *Bolt) Revision(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	var rev int64
	err := b.view(func(tx *bolt.Tx) error {
		rev = int64(getUint64(tx.Bucket(bucketMeta).Get(metaRevision)))
		return nil
	})
	if err != nil {
		return 0, b.readErr("read revision", err)
	}
	return rev, nil
}

// Close stops the watchers (their channels close), waits for the commit in
// progress, fails queued writes with ErrClosed and closes the file. Calls
// after the first return ErrClosed.
func (b *Bolt) Close() error {
	err := ErrClosed
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		close(b.quit)
		b.wg.Wait()
		if cerr := b.db.Close(); cerr != nil {
			b.closeErr = fmt.Errorf("store: cannot close %s: %w", b.path, cerr)
		}
		err = b.closeErr
	})
	return err
}

func (b *Bolt) view(fn func(tx *bolt.Tx) error) error {
	select {
	case <-b.quit:
		return ErrClosed
	default:
	}
	return b.db.View(fn)
}

// readErr passes contract errors through and gives others context.
func (b *Bolt) readErr(what string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrClosed):
		return err
	case errors.Is(err, bolterrors.ErrDatabaseNotOpen):
		return ErrClosed
	}
	return fmt.Errorf("store: cannot %s: %w", what, err)
}

// getKV reads key inside tx; ok is false when the key is absent.
func getKV(tx *bolt.Tx, key []byte) (kv KV, ok bool, err error) {
	r := tx.Bucket(bucketRevs).Get(key)
	if r == nil {
		return KV{}, false, nil
	}
	kv, err = makeKV(key, tx.Bucket(bucketKV).Get(key), r)
	return kv, err == nil, err
}

// makeKV copies bytes that are only valid inside the transaction.
func makeKV(k, v, revs []byte) (KV, error) {
	create, mod, err := decodeRevs(revs)
	if err != nil {
		return KV{}, fmt.Errorf("key %q: %w", k, err)
	}
	return KV{Key: string(k), Value: append([]byte{}, v...), CreateRevision: create, ModRevision: mod}, nil
}

func encodeRevs(create, mod int64) []byte {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(create))
	binary.BigEndian.PutUint64(b[8:], uint64(mod))
	return b[:]
}

// decodeRevs fails on a record of the wrong size: a damaged file, not a bug.
func decodeRevs(b []byte) (create, mod int64, err error) {
	if len(b) != 16 {
		return 0, 0, fmt.Errorf("revision record of %d bytes, want 16", len(b))
	}
	return int64(binary.BigEndian.Uint64(b[:8])), int64(binary.BigEndian.Uint64(b[8:])), nil
}

func putUint64(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

// getUint64 decodes a meta counter; a missing one is 0.
func getUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

var _ Store = (*Bolt)(nil)
