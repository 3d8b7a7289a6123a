package declarative

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgeway/gateway/store"
)

func TestWatcherReloadsAndKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "apisix.yaml")
	// Writes replace the file atomically (as deploy tools do): a
	// truncate-then-write could be read half-written by the 10 ms poll,
	// which would be a second, unrelated broken edit.
	write := func(s string) {
		t.Helper()
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write("routes:\n  - {id: a, uri: /a, upstream: {nodes: {\"127.0.0.1:1\": 1}}}\n#END\n")
	m := store.NewMemory()
	defer m.Close()
	var mu sync.Mutex
	var logs []string
	applied := make(chan int64, 10)
	w := &Watcher{Path: file, Store: m, Interval: 10 * time.Millisecond,
		Logf: func(f string, a ...any) {
			mu.Lock()
			logs = append(logs, strings.TrimSpace(sprintf(f, a...)))
			mu.Unlock()
		},
		OnApplied: func(rev int64) { applied <- rev },
	}
	if _, err := w.Load(); err != nil {
		t.Fatal(err)
	}
	<-applied
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)

	keys := func() string {
		kvs, _, _ := m.List(context.Background(), "/apisix/")
		var ks []string
		for _, kv := range kvs {
			ks = append(ks, kv.Key)
		}
		return strings.Join(ks, ",")
	}
	write("routes:\n  - {id: b, uri: /b, upstream: {nodes: {\"127.0.0.1:1\": 1}}}\n#END\n")
	select {
	case <-applied:
	case <-time.After(5 * time.Second):
		t.Fatal("change not applied")
	}
	if got := keys(); got != "/apisix/routes/b" {
		t.Fatalf("after change: %s", got)
	}
	failures := reloadsFailed.Get()
	// A broken edit: the last good configuration stays.
	write("routes:\n  - {id: c, uri: 5, upstream_id: x}\n#END\n")
	deadline := time.Now().Add(5 * time.Second)
	for reloadsFailed.Get() == failures && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if reloadsFailed.Get() != failures+1 || lastReloadOK.Load() != 0 {
		t.Fatalf("failure not counted")
	}
	if got := keys(); got != "/apisix/routes/b" {
		t.Fatalf("after a broken edit: %s", got)
	}
	mu.Lock()
	joined := strings.Join(logs, "\n")
	mu.Unlock()
	if !strings.Contains(joined, file+":2:18: route c: invalid configuration") || !strings.Contains(joined, "keeping the last good configuration") {
		t.Fatalf("logs:\n%s", joined)
	}
	// An incomplete write (no #END yet) is not applied either.
	write("routes:\n  - {id: d, uri: /d, upstream: {nodes: {\"127.0.0.1:1\": 1}}}\n")
	time.Sleep(50 * time.Millisecond)
	if got := keys(); got != "/apisix/routes/b" {
		t.Fatalf("after an incomplete write: %s", got)
	}
	write("routes:\n  - {id: d, uri: /d, upstream: {nodes: {\"127.0.0.1:1\": 1}}}\n#END\n")
	select {
	case <-applied:
	case <-time.After(5 * time.Second):
		t.Fatal("fixed file not applied")
	}
	if got := keys(); got != "/apisix/routes/d" || lastReloadOK.Load() != 1 {
		t.Fatalf("after the fix: %s", got)
	}
}

// TestWatcherStatSkipsUnchangedFile checks when the watcher reads the file
// again: not while its stat is the one last read and old enough, but after
// an edit of the same size (the modification time moves), a replacement
// (another file), or while the last modification is too recent to trust
// the timestamp.
func TestWatcherStatSkipsUnchangedFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "apisix.yaml")
	body := "routes:\n  - {id: a, uri: /a, upstream: {nodes: {\"127.0.0.1:1\": 1}}}\n#END\n"
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	if err := os.Chtimes(file, past, past); err != nil {
		t.Fatal(err)
	}
	w := &Watcher{Path: file, Store: store.NewMemory()}
	defer w.Store.Close()
	if _, err := w.Load(); err != nil {
		t.Fatal(err)
	}
	stat := func() os.FileInfo {
		t.Helper()
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		return fi
	}
	if !w.unchanged(stat()) {
		t.Fatal("an untouched file, modified a minute before it was read, is read again")
	}
	// The same size, another modification time.
	later := past.Add(time.Second)
	if err := os.Chtimes(file, later, later); err != nil {
		t.Fatal(err)
	}
	if w.unchanged(stat()) {
		t.Fatal("a file whose modification time moved is not read again")
	}
	// Another file of the same size and time in its place.
	other := filepath.Join(dir, "new.yaml")
	if err := os.WriteFile(other, []byte(strings.Replace(body, "/a", "/b", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(other, past, past); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(other, file); err != nil {
		t.Fatal(err)
	}
	if w.unchanged(stat()) {
		t.Fatal("a replaced file is not read again")
	}
	// A file modified just before it was read: its stat is not trusted.
	if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Load(); err != nil {
		t.Fatal(err)
	}
	if w.unchanged(stat()) {
		t.Fatal("a file modified within the racy window is trusted by its stat")
	}
}
