package declarative

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/edgeway/gateway/store"
)

// Reload metrics, in the process-wide set that /metrics writes.
var (
	reloadsOK     = metrics.NewCounter(`gateway_config_file_reloads_total{result="success"}`)
	reloadsFailed = metrics.NewCounter(`gateway_config_file_reloads_total{result="failure"}`)
	lastReloadOK  atomic.Int64
	lastProblems  atomic.Int64
	_             = metrics.NewGauge(`gateway_config_file_last_reload_successful`, func() float64 {
		return float64(lastReloadOK.Load())
	})
	_ = metrics.NewGauge(`gateway_config_file_problems`, func() float64 { return float64(lastProblems.Load()) })
)

// Watcher keeps a Memory store equal to a configuration file: it loads the
// file, then polls it every Interval, as APISIX re-reads its standalone
// file every second. Each poll is a stat; the file is read and hashed only
// when its identity, size or modification time moved, or when it was
// modified less than racyWindow before it was last read (so that a
// same-size edit within one timestamp tick is not missed). Each change is
// applied atomically with Store.Replace. A file that does not load keeps
// the last good configuration serving; the problems are logged with their
// positions and counted in gateway_config_file_reloads_total{result="failure"}.
// Load and Run must not be called concurrently.
type Watcher struct {
	Path  string
	Store *store.Memory
	// Interval between two looks at the file; default 1 s.
	Interval time.Duration
	// Logf logs reloads and problems; nil discards.
	Logf func(format string, args ...any)
	// OnApplied, when set, is called after each successful apply with the
	// store revision (tests use it).
	OnApplied func(rev int64)

	lastSum  [32]byte    // content of the last file looked at
	lastInfo os.FileInfo // its stat, taken just before it was read
	lastRead time.Time   // when that stat was taken
}

// racyWindow is how recent a modification must be, relative to the last
// read, for the file to be read again even though its stat looks the same
// (file systems with coarse timestamps may not move the modification time
// for an edit that follows another closely).
const racyWindow = 2 * time.Second

// unchanged reports whether fi is the file last read, untouched since.
func (w *Watcher) unchanged(fi os.FileInfo) bool {
	l := w.lastInfo
	return l != nil && os.SameFile(l, fi) && l.Size() == fi.Size() && l.ModTime().Equal(fi.ModTime()) &&
		w.lastRead.Sub(fi.ModTime()) > racyWindow
}

// read stats and reads the file, remembering the stat.
func (w *Watcher) read() ([]byte, error) {
	now := time.Now()
	fi, err := os.Stat(w.Path)
	if err != nil {
		w.lastInfo = nil
		return nil, err
	}
	data, err := os.ReadFile(w.Path)
	if err != nil {
		w.lastInfo = nil
		return nil, err
	}
	w.lastInfo, w.lastRead = fi, now
	return data, nil
}

// Load applies the file once. It returns an error (listing the problems)
// when the file cannot be read or does not load; the store then keeps
// what it held.
func (w *Watcher) Load() (*Result, error) {
	data, err := w.read()
	if err != nil {
		reloadsFailed.Inc()
		lastReloadOK.Store(0)
		return nil, fmt.Errorf("cannot read %s: %w", w.Path, err)
	}
	w.lastSum = sha256.Sum256(data)
	return w.apply(data)
}

func (w *Watcher) apply(data []byte) (*Result, error) {
	res := Load(data)
	for _, p := range res.Problems {
		w.logf("standalone: %s:%s", w.Path, p)
	}
	if !res.OK() {
		reloadsFailed.Inc()
		lastReloadOK.Store(0)
		lastProblems.Store(int64(len(res.Problems)))
		return res, fmt.Errorf("%s: %w", w.Path, res.Err())
	}
	rev, changed, err := w.Store.Replace(res.KVs)
	if err != nil {
		reloadsFailed.Inc()
		lastReloadOK.Store(0)
		return res, err
	}
	reloadsOK.Inc()
	lastReloadOK.Store(1)
	lastProblems.Store(0)
	if changed {
		w.logf("standalone: %s applied (%s; revision %d)", w.Path, res.Summary(), rev)
	}
	if w.OnApplied != nil {
		w.OnApplied(rev)
	}
	return res, nil
}

// Run polls the file until ctx ends. A change of content is loaded and,
// when good, applied; the same bad content is reported once.
func (w *Watcher) Run(ctx context.Context) {
	iv := w.Interval
	if iv <= 0 {
		iv = time.Second
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if fi, err := os.Stat(w.Path); err == nil && w.unchanged(fi) {
			continue
		}
		data, err := w.read()
		if err != nil {
			// A file being replaced may be briefly absent: say it once.
			if w.lastSum != ([32]byte{}) {
				w.logf("standalone: cannot read %s: %v; keeping the last good configuration", w.Path, err)
				reloadsFailed.Inc()
				lastReloadOK.Store(0)
				w.lastSum = [32]byte{}
			}
			continue
		}
		sum := sha256.Sum256(data)
		if sum == w.lastSum {
			continue
		}
		w.lastSum = sum
		if _, err := w.apply(data); err != nil {
			w.logf("standalone: %s not applied; keeping the last good configuration", w.Path)
		}
	}
}

func (w *Watcher) logf(format string, args ...any) {
	if w.Logf != nil {
		w.Logf(format, args...)
	}
}
