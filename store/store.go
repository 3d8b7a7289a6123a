// Package store keeps the gateway's configuration under APISIX's etcd key
// layout: "/apisix/routes/<id>", "/apisix/upstreams/<id>",
// "/apisix/services/<id>", "/apisix/ssls/<id>", each holding the JSON object
// bytes exactly as written.
//
// Store is shaped after etcd v3 so that an etcd backend can implement it
// one to one: every write advances a store-wide revision, each key carries
// the revision that created it and the revision of its last write, writes
// may be made conditional on the key's mod revision (compare-and-swap), and
// Watch streams changes from a given revision on.
//
// The store does not validate values; admin and core do.
//
// Contract errors (ErrNotFound, ErrConflict, ErrClosed, ErrUnavailable) are
// returned as they are, or wrapped; callers must test them with errors.Is.
package store

import (
	"context"
	"errors"
)

// KV is one stored key with its etcd-style revisions.
//
// A KV handed out by a Store is a copy owned by the caller, except for the
// Value of a KV inside an Event, which is shared by every watcher and must
// not be modified.
type KV struct {
	Key            string // e.g. "/apisix/routes/1"
	Value          []byte // JSON bytes exactly as written
	CreateRevision int64  // store revision when the key was created
	ModRevision    int64  // store revision of the last write
}

// EventType tells a Put from a Delete in an Event.
type EventType uint8

// Event types. The zero EventType is not used.
const (
	EventPut EventType = iota + 1
	EventDelete
)

// String returns "PUT" or "DELETE", as etcd names them.
func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	default:
		return "UNKNOWN"
	}
}

// Event is one change; Revision is the store revision that made it.
type Event struct {
	Type EventType
	// KV is the key after the change. For deletes only Key is set and
	// ModRevision is the delete's revision; Value is nil and
	// CreateRevision is 0.
	KV       KV
	Revision int64
}

// WatchResponse carries events in revision order. Compacted is set when the
// requested start revision is no longer available (the watcher must re-List).
//
// Revision is the revision of the last event in Events; in a Compacted
// response it is the store revision when the watch was refused. Err, when
// set, ends the watch: the channel is closed after that response.
type WatchResponse struct {
	Events    []Event
	Revision  int64
	Compacted bool
	Err       error
}

// Errors of the Store contract. They are returned as they are, or wrapped;
// test them with errors.Is.
var (
	ErrNotFound    = errors.New("store: key not found")
	ErrConflict    = errors.New("store: value changed before overwritten") // CAS failed
	ErrUnavailable = errors.New("store: unavailable")                      // backend down (etcd unreachable, failed disk)
	ErrClosed      = errors.New("store: closed")
)

// AnyRevision as expectRev means "write unconditionally".
const AnyRevision int64 = -1

// Store is the configuration store. Implementations are safe for concurrent
// use by multiple goroutines; each documents which methods block and for
// how long.
type Store interface {
	// List returns every key under prefix, sorted by key, and the revision the listing reflects.
	List(ctx context.Context, prefix string) ([]KV, int64, error)
	// Get returns one key; ErrNotFound when absent.
	Get(ctx context.Context, key string) (KV, error)
	// Put writes value. expectRev: AnyRevision = unconditional; 0 = only if the key does not exist;
	// >0 = only if the key's current ModRevision equals expectRev. Returns the new KV and whether it was created.
	// ErrConflict when the condition fails. The write is durable (fsynced) when Put returns nil.
	Put(ctx context.Context, key string, value []byte, expectRev int64) (kv KV, created bool, err error)
	// Delete removes key (same expectRev rules; 0 is not meaningful here, treat as AnyRevision). Returns the deleted KV
	// (with its last value and revisions) and the store revision of the delete itself, or ErrNotFound.
	Delete(ctx context.Context, key string, expectRev int64) (prev KV, rev int64, err error)
	// Watch streams every change with revision > afterRev until ctx is done (then the channel closes).
	// Events are delivered in revision order, none skipped, none duplicated, even with a slow reader.
	Watch(ctx context.Context, afterRev int64) <-chan WatchResponse
	// NextID returns a fresh id for POST-created objects: a persisted counter, formatted as APISIX does,
	// zero-padded to 20 digits (e.g. "00000000000000000046"). Unique across restarts.
	NextID(ctx context.Context) (string, error)
	// Revision returns the current store revision.
	Revision(ctx context.Context) (int64, error)
	// Close stops watchers (their channels close) and releases the backend.
	Close() error
}

// ConnState is implemented by backends that reach a server over the
// network (Etcd). Connected reports whether the server answered the last
// call or background check; it is safe for concurrent use and never
// blocks. A backend without it (the embedded Bolt) counts as connected.
type ConnState interface {
	Connected() bool
}

// Connected reports whether s reaches its backend: s.Connected() for a
// ConnState, true otherwise.
func Connected(s Store) bool {
	if c, ok := s.(ConnState); ok {
		return c.Connected()
	}
	return true
}

var _ ConnState = (*Etcd)(nil)
