package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
)

// Defaults of the etcd backend.
const (
	// DefaultEtcdPrefix is APISIX's default etcd prefix (etcd.prefix in
	// its config.yaml).
	DefaultEtcdPrefix = "/apisix"
	// DefaultEtcdRequestTimeout bounds every single etcd call (one page of
	// a List counts as one call), so that a write fails fast with
	// ErrUnavailable while etcd is unreachable.
	DefaultEtcdRequestTimeout = 2 * time.Second
	// EtcdMaxBackoff caps the wait between two attempts to reach etcd
	// again: gRPC's connection back-off and the re-opening of a watch.
	// gRPC's own default grows to two minutes, which would keep a gateway
	// stale long after etcd is back.
	EtcdMaxBackoff = time.Second
	// etcdProbeInterval is how often the connection is checked.
	etcdProbeInterval = time.Second
	// etcdPageSize is how many keys one List request reads.
	etcdPageSize = 1000
)

// apisixRoot is the root of the keys the Store interface speaks; the etcd
// backend maps it to its configured prefix.
const apisixRoot = "/apisix"

// initDirValue is what `apisix init` stores in the directory keys it
// creates ("/apisix/routes/" -> "init_dir"); List and Watch skip them.
const initDirValue = "init_dir"

// EtcdOptions configures OpenEtcd.
type EtcdOptions struct {
	// Endpoints are etcd's client URLs, e.g. "http://127.0.0.1:2379".
	// Required.
	Endpoints []string
	// Prefix replaces "/apisix" in every key ("/apisix/routes/1" is stored
	// at Prefix+"/routes/1"). Default DefaultEtcdPrefix. A trailing slash
	// is ignored.
	Prefix string
	// RequestTimeout bounds each etcd call. Default
	// DefaultEtcdRequestTimeout.
	RequestTimeout time.Duration
	// Logf logs connection changes and skipped keys; nil discards.
	Logf func(format string, args ...any)
}

// Etcd is the Store of a fleet: every gateway of the fleet opens the same
// etcd, with APISIX's key layout, so APISIX's own tools (and etcdctl) can
// read and write the configuration too.
//
// Revisions are etcd's: CreateRevision and ModRevision are the key's
// create_revision and mod_revision, and Revision is etcd's store
// revision. They are shared with every other key in the etcd cluster, so
// they grow in steps larger than one when other prefixes are written.
//
// Etcd is safe for concurrent use. What blocks and for how long: every call
// to etcd is bounded by RequestTimeout (a List by RequestTimeout per page
// of 1000 keys); while etcd is unreachable calls wait for it that long and
// then fail with an error wrapping ErrUnavailable. A write that times out
// this way may or may not have been applied. Watch never blocks. Close
// waits for the watchers to stop.
//
// The connection is checked every second in the background; Connected
// reports the outcome, and reconnection attempts are at most EtcdMaxBackoff
// apart.
//
// An Etcd must not be copied.
type Etcd struct {
	cli       *clientv3.Client
	prefix    string // e.g. "/apisix"; no trailing slash
	root      string // prefix + "/": the range List and Watch cover
	endpoints string // for messages
	timeout   time.Duration
	logf      func(format string, args ...any)

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the probe and the watchers

	closed    atomic.Bool
	connected atomic.Bool
	probed    atomic.Bool // the probe has run at least once
	closeOnce sync.Once
}

// OpenEtcd connects to etcd. It does not wait for etcd to answer: a
// gateway may start while etcd is down, and calls fail with ErrUnavailable
// until it is up. The caller must Close the store.
func OpenEtcd(o EtcdOptions) (*Etcd, error) {
	if len(o.Endpoints) == 0 {
		return nil, errors.New("store: cannot open etcd: no endpoints")
	}
	for _, ep := range o.Endpoints {
		if !strings.HasPrefix(ep, "http://") && !strings.HasPrefix(ep, "https://") {
			return nil, fmt.Errorf("store: cannot open etcd: endpoint %q must start with http:// or https://", ep)
		}
	}
	prefix := strings.TrimRight(o.Prefix, "/")
	if o.Prefix == "" {
		prefix = DefaultEtcdPrefix
	}
	if !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("store: cannot open etcd: prefix %q must start with /", o.Prefix)
	}
	timeout := o.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultEtcdRequestTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	cli, err := clientv3.New(clientv3.Config{
		Endpoints: o.Endpoints,
		Context:   ctx,
		// etcd's server refuses pings closer than 5 s apart
		// (--grpc-keepalive-min-time). A silent peer is dropped after
		// 5 + 3 s; a refused or reset connection is seen at once.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   EtcdMaxBackoff,
			},
			MinConnectTimeout: 3 * time.Second,
		})},
		// The client's own logs (retries while etcd is down) would repeat
		// what the probe logs once per change.
		Logger: zap.NewNop(),
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("store: cannot open etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	e := &Etcd{
		cli:       cli,
		prefix:    prefix,
		root:      prefix + "/",
		endpoints: strings.Join(o.Endpoints, ","),
		timeout:   timeout,
		logf:      o.Logf,
		ctx:       ctx,
		cancel:    cancel,
	}
	e.wg.Add(1)
	go e.probe()
	return e, nil
}

// Prefix returns the etcd prefix that stands for "/apisix".
func (e *Etcd) Prefix() string { return e.prefix }

// Endpoints returns the etcd endpoints, comma-separated.
func (e *Etcd) Endpoints() string { return e.endpoints }

// Connected reports whether the last call to etcd (or the background
// check, which runs every second) succeeded. It is false until etcd first
// answers.
func (e *Etcd) Connected() bool { return e.connected.Load() }

// Get returns key; ErrNotFound when absent.
func (e *Etcd) Get(ctx context.Context, key string) (KV, error) {
	k, err := e.etcdKey(key)
	if err != nil {
		return KV{}, fmt.Errorf("store: cannot get %q: %w", key, err)
	}
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	resp, err := e.cli.Get(cctx, k)
	if err != nil {
		return KV{}, e.fail(ctx, "get "+key, err)
	}
	e.ok()
	if len(resp.Kvs) == 0 {
		return KV{}, ErrNotFound
	}
	return e.kv(resp.Kvs[0].Key, resp.Kvs[0].Value, resp.Kvs[0].CreateRevision, resp.Kvs[0].ModRevision), nil
}

// List returns every key under prefix ("/apisix/..."; "" or "/apisix"
// mean everything), sorted by key, read at one etcd revision, which it
// returns. APISIX's directory keys ("/apisix/routes/" -> "init_dir") are
// left out. Keys are read in pages of 1000, each bounded by the request
// timeout; if etcd compacts the revision in the middle, List starts over.
func (e *Etcd) List(ctx context.Context, prefix string) ([]KV, int64, error) {
	start := e.root
	if prefix != "" && prefix != apisixRoot && prefix != apisixRoot+"/" {
		k, err := e.etcdKey(prefix)
		if err != nil {
			return nil, 0, fmt.Errorf("store: cannot list %q: %w", prefix, err)
		}
		start = k
	}
	for attempt := 0; ; attempt++ {
		kvs, rev, err := e.list(ctx, start)
		if errors.Is(err, rpctypes.ErrCompacted) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, 0, e.fail(ctx, "list "+prefix, err)
		}
		e.ok()
		return kvs, rev, nil
	}
}

func (e *Etcd) list(ctx context.Context, start string) ([]KV, int64, error) {
	end := clientv3.GetPrefixRangeEnd(start)
	var (
		kvs []KV
		rev int64
	)
	for key := start; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(etcdPageSize)}
		if rev > 0 {
			// Later pages read the first page's revision: one snapshot.
			opts = append(opts, clientv3.WithRev(rev))
		}
		cctx, cancel := e.callCtx(ctx)
		resp, err := e.cli.Get(cctx, key, opts...)
		cancel()
		if err != nil {
			return nil, 0, err
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			if isInitDir(kv.Key, kv.Value) {
				continue
			}
			kvs = append(kvs, e.kv(kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision))
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return kvs, rev, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// Put writes value under key in one etcd transaction; see Store.Put for
// expectRev. The condition is checked by etcd: expectRev 0 compares the
// key's create_revision with 0 (absent), expectRev > 0 compares its
// mod_revision, so two gateways writing at once never both succeed on the
// same revision. created is decided in the same transaction (the put's
// previous value was absent). The returned KV holds a copy of value.
func (e *Etcd) Put(ctx context.Context, key string, value []byte, expectRev int64) (KV, bool, error) {
	k, err := e.etcdKey(key)
	if err == nil && expectRev < AnyRevision {
		err = fmt.Errorf("invalid expected revision %d", expectRev)
	}
	if err != nil {
		return KV{}, false, fmt.Errorf("store: cannot put %q: %w", key, err)
	}
	var cmps []clientv3.Cmp
	switch {
	case expectRev == 0:
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
	case expectRev > 0:
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", expectRev))
	}
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	resp, err := e.cli.Txn(cctx).If(cmps...).Then(clientv3.OpPut(k, string(value), clientv3.WithPrevKV())).Commit()
	if err != nil {
		return KV{}, false, e.fail(ctx, "put "+key, err)
	}
	e.ok()
	if !resp.Succeeded {
		return KV{}, false, ErrConflict
	}
	rev := resp.Header.Revision
	kv := KV{Key: key, Value: append([]byte{}, value...), CreateRevision: rev, ModRevision: rev}
	prev := resp.Responses[0].GetResponsePut().GetPrevKv()
	if prev != nil {
		kv.CreateRevision = prev.CreateRevision
	}
	return kv, prev == nil, nil
}

// Delete removes key in one etcd transaction and returns its last value and
// revisions, and the revision of the delete. expectRev > 0 makes the delete
// conditional on the key's mod_revision (ErrConflict otherwise);
// AnyRevision and 0 delete unconditionally. A missing key gives
// ErrNotFound, whatever expectRev is.
func (e *Etcd) Delete(ctx context.Context, key string, expectRev int64) (KV, int64, error) {
	k, err := e.etcdKey(key)
	if err == nil && expectRev < AnyRevision {
		err = fmt.Errorf("invalid expected revision %d", expectRev)
	}
	if err != nil {
		return KV{}, 0, fmt.Errorf("store: cannot delete %q: %w", key, err)
	}
	var cmps []clientv3.Cmp
	if expectRev > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", expectRev))
	}
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	resp, err := e.cli.Txn(cctx).If(cmps...).
		Then(clientv3.OpDelete(k, clientv3.WithPrevKV())).
		Else(clientv3.OpGet(k, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return KV{}, 0, e.fail(ctx, "delete "+key, err)
	}
	e.ok()
	if !resp.Succeeded {
		if resp.Responses[0].GetResponseRange().GetCount() > 0 {
			return KV{}, 0, ErrConflict
		}
		return KV{}, 0, ErrNotFound
	}
	del := resp.Responses[0].GetResponseDeleteRange()
	if del.GetDeleted() == 0 || len(del.PrevKvs) == 0 {
		return KV{}, 0, ErrNotFound
	}
	p := del.PrevKvs[0]
	return e.kv(p.Key, p.Value, p.CreateRevision, p.ModRevision), resp.Header.Revision, nil
}

// NextID returns a fresh id for a POST-created object the way APISIX makes
// one: it writes "1" to "/apisix/gen_id" and uses the etcd revision of that
// write, zero-padded to 20 digits ("00000000000000000046"). The id is
// therefore unique across every gateway and APISIX instance sharing the
// etcd cluster, and across restarts. Unlike the embedded store, taking an
// id advances the revision and makes a watch event for "/apisix/gen_id",
// which the configuration ignores.
func (e *Etcd) NextID(ctx context.Context) (string, error) {
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	resp, err := e.cli.Put(cctx, e.prefix+"/gen_id", "1")
	if err != nil {
		return "", e.fail(ctx, "take an id", err)
	}
	e.ok()
	return fmt.Sprintf("%020d", resp.Header.Revision), nil
}

// Revision returns etcd's current store revision.
func (e *Etcd) Revision(ctx context.Context) (int64, error) {
	cctx, cancel := e.callCtx(ctx)
	defer cancel()
	resp, err := e.cli.Get(cctx, e.prefix+"/gen_id", clientv3.WithCountOnly())
	if err != nil {
		return 0, e.fail(ctx, "read the revision", err)
	}
	e.ok()
	return resp.Header.Revision, nil
}

// Close stops the watchers (their channels close) and the connection. Calls
// after the first return ErrClosed.
func (e *Etcd) Close() error {
	err := ErrClosed
	e.closeOnce.Do(func() {
		e.closed.Store(true)
		e.cancel()
		e.wg.Wait()
		err = e.cli.Close()
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("store: cannot close the etcd client: %w", err)
		}
	})
	return err
}

// probe checks the connection every etcdProbeInterval, and at once when
// gRPC reports a change of the connection's state, with a linearizable read
// (which needs a leader, as writes do). Connected follows the outcome, and
// every change is logged.
func (e *Etcd) probe() {
	defer e.wg.Done()
	kick := make(chan struct{}, 1)
	e.wg.Add(1)
	go e.followState(kick)
	t := time.NewTicker(etcdProbeInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(e.ctx, min(e.timeout, etcdProbeInterval))
		_, err := e.cli.Get(ctx, e.prefix+"/gen_id", clientv3.WithCountOnly())
		cancel()
		if e.ctx.Err() != nil {
			return
		}
		if err == nil {
			e.ok()
		} else {
			e.down(err)
		}
		e.probed.Store(true)
		select {
		case <-t.C:
		case <-kick:
		case <-e.ctx.Done():
			return
		}
	}
}

// followState kicks the probe on every change of the gRPC connection's
// state, and records the store as disconnected as soon as every endpoint
// has failed.
func (e *Etcd) followState(kick chan<- struct{}) {
	defer e.wg.Done()
	conn := e.cli.ActiveConnection()
	for {
		st := conn.GetState()
		if st == connectivity.TransientFailure && e.probed.Load() {
			e.down(errors.New("no connection to any endpoint"))
		}
		select {
		case kick <- struct{}{}:
		default:
		}
		if !conn.WaitForStateChange(e.ctx, st) {
			return
		}
	}
}

// ok records a successful call.
func (e *Etcd) ok() {
	if !e.connected.Swap(true) {
		e.log("store: connected to etcd %s (prefix %s)", e.endpoints, e.prefix)
	}
}

// down records a failed call.
func (e *Etcd) down(err error) {
	if e.connected.Swap(false) || !e.probed.Load() {
		e.log("store: etcd %s is unreachable: %v (retrying at least every %v)", e.endpoints, err, EtcdMaxBackoff)
	}
}

// callCtx bounds one etcd call by the request timeout and Close.
func (e *Etcd) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	stop := context.AfterFunc(e.ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// fail turns an etcd error into the Store contract: ErrClosed after Close,
// the caller's own context error when the caller gave up, an error
// wrapping ErrUnavailable when etcd did not answer in time or has no
// leader, and a plain error for requests etcd refused (e.g. too large).
func (e *Etcd) fail(ctx context.Context, what string, err error) error {
	switch {
	case e.closed.Load():
		return ErrClosed
	case ctx.Err() != nil:
		return ctx.Err()
	}
	err = rpctypes.Error(err)
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		switch ee {
		case rpctypes.ErrRequestTooLarge, rpctypes.ErrTooManyOps, rpctypes.ErrKeyNotFound,
			rpctypes.ErrEmptyKey, rpctypes.ErrDuplicateKey, rpctypes.ErrCompacted:
			return fmt.Errorf("store: cannot %s: %w", what, err)
		}
	}
	e.down(err)
	// The deadline shows as context.DeadlineExceeded when it passed in
	// the client, and as an error from the server ("rpc error: code =
	// Unknown desc = context deadline exceeded") when it passed there,
	// e.g. while a member without a leader waited for one.
	if errors.Is(err, context.DeadlineExceeded) || strings.HasSuffix(err.Error(), context.DeadlineExceeded.Error()) {
		return fmt.Errorf("store: cannot %s: etcd %s did not answer within %v: %w", what, e.endpoints, e.timeout, ErrUnavailable)
	}
	return fmt.Errorf("store: cannot %s: etcd %s: %v: %w", what, e.endpoints, err, ErrUnavailable)
}

func (e *Etcd) log(format string, args ...any) {
	if e.logf != nil {
		e.logf(format, args...)
	}
}

// etcdKey maps "/apisix/..." to the configured prefix.
func (e *Etcd) etcdKey(key string) (string, error) {
	rest, ok := strings.CutPrefix(key, apisixRoot+"/")
	if !ok || rest == "" {
		return "", fmt.Errorf("key %q is not under %s/", key, apisixRoot)
	}
	return e.root + rest, nil
}

// kv builds a KV from an etcd key under the prefix, copying the bytes.
func (e *Etcd) kv(key, value []byte, create, mod int64) KV {
	return KV{
		Key:            apisixRoot + string(key[len(e.prefix):]),
		Value:          append([]byte{}, value...),
		CreateRevision: create,
		ModRevision:    mod,
	}
}

// isInitDir tells APISIX's directory keys ("/apisix/routes/" holding
// "init_dir") from configuration.
func isInitDir(key, value []byte) bool {
	return len(key) > 0 && key[len(key)-1] == '/' && string(value) == initDirValue
}

var _ Store = (*Etcd)(nil)
