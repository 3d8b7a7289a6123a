package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Environment variables that turn this test binary into a helper process.
const (
	envCrashDir = "STORE_TEST_CRASH_DIR" // TestHelperCrashWriter writes here until killed
	envLockDir  = "STORE_TEST_LOCK_DIR"  // TestHelperSecondOpen opens here once
)

// helper re-executes the test binary running only the named test, with
// env set.
func helper(t *testing.T, test, env string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	return cmd
}

// crashValue is the value the crash writer stores under key.
func crashValue(key string) string {
	return fmt.Sprintf(`{"key":%q,"pad":"%s"}`, key, strings.Repeat("x", 300))
}

// TestHelperCrashWriter is the child of TestDurableAfterKill: concurrent
// writers Put keys and take ids, printing each one acknowledged.
func TestHelperCrashWriter(t *testing.T) {
	dir := os.Getenv(envCrashDir)
	if dir == "" {
		t.Skip("helper process for TestDurableAfterKill")
	}
	s, err := OpenBolt(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "open: %v\n", err)
		os.Exit(2)
	}
	ctx := context.Background()
	done := make(chan struct{})
	for g := range 4 {
		go func() {
			for i := 0; i < 1_000_000; i++ {
				key := fmt.Sprintf("/apisix/routes/%d-%d", g, i)
				if _, _, err := s.Put(ctx, key, []byte(crashValue(key)), AnyRevision); err != nil {
					fmt.Fprintf(os.Stderr, "put: %v\n", err)
					os.Exit(2)
				}
				// One write(2) per line: lines from goroutines do not mix.
				fmt.Fprintf(os.Stdout, "put %s\n", key)
			}
			done <- struct{}{}
		}()
	}
	go func() {
		for {
			id, err := s.NextID(ctx)
			if err != nil {
				fmt.Fprintf(os.Stderr, "next id: %v\n", err)
				os.Exit(2)
			}
			fmt.Fprintf(os.Stdout, "id %s\n", id)
		}
	}()
	<-done
	fmt.Fprintln(os.Stderr, "writer finished before it was killed")
	os.Exit(3)
}

// TestDurableAfterKill SIGKILLs a process in the middle of a stream of Puts
// and checks that every Put it acknowledged survived, with its value.
func TestDurableAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	dir := t.TempDir()
	cmd := helper(t, "TestHelperCrashWriter", envCrashDir+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	const killAfter = 500
	var (
		puts   []string
		maxID  string
		killed bool
	)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		// Lines printed before the kill are acknowledgements too: read
		// until EOF.
		switch kind, arg, _ := strings.Cut(sc.Text(), " "); kind {
		case "put":
			puts = append(puts, arg)
		case "id":
			maxID = max(maxID, arg) // fixed width: string order is numeric order
		}
		if !killed && len(puts) >= killAfter {
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !killed || !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("writer was not killed mid-stream: %v, %d puts acknowledged\n%s", err, len(puts), stderr.String())
	}
	t.Logf("killed after %d acknowledged puts, last id %s", len(puts), maxID)

	s := openTest(t, dir)
	ctx := context.Background()
	for _, key := range puts {
		kv, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("acknowledged %s lost: %v", key, err)
		}
		if string(kv.Value) != crashValue(key) || kv.ModRevision == 0 || kv.CreateRevision != kv.ModRevision {
			t.Fatalf("acknowledged %s damaged: %s", key, fmtKV(kv))
		}
	}
	if rev := mustRevision(t, s); rev < int64(len(puts)) {
		t.Fatalf("revision %d after %d acknowledged puts", rev, len(puts))
	}
	if id, err := s.NextID(ctx); err != nil || id <= maxID {
		t.Fatalf("NextID after crash = %q, %v; last acknowledged %q", id, err, maxID)
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("database inconsistent after kill: %v", err)
	}
}

// TestHelperSecondOpen is the child of TestSecondOpenFails.
func TestHelperSecondOpen(t *testing.T) {
	dir := os.Getenv(envLockDir)
	if dir == "" {
		t.Skip("helper process for TestSecondOpenFails")
	}
	s, err := OpenBolt(dir)
	if err == nil {
		_ = s.Close()
		fmt.Println("opened")
		os.Exit(0)
	}
	fmt.Printf("locked=%v %v\n", errors.Is(err, ErrLocked), err)
	os.Exit(0)
}

// TestSecondOpenFails checks that a second store on a data dir in use
// fails with ErrLocked instead of waiting for the lock forever.
func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	s := openTest(t, dir)
	mustPut(t, s, "/k", "v", AnyRevision)

	// The brief asks for a failure "within a couple of seconds"; the bound
	// is loose so that a loaded machine does not fail it.
	const within = 5 * time.Second

	t.Run("same process", func(t *testing.T) {
		start := time.Now()
		s2, err := OpenBolt(dir)
		if err == nil {
			_ = s2.Close()
			t.Fatal("second OpenBolt succeeded")
		}
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
			t.Fatalf("second OpenBolt: %v, want ErrLocked naming the path", err)
		}
		if d := time.Since(start); d > within {
			t.Fatalf("second OpenBolt took %v", d)
		}
		t.Logf("%v after %v", err, time.Since(start).Round(time.Millisecond))
	})

	t.Run("another process", func(t *testing.T) {
		if testing.Short() {
			t.Skip("spawns a process")
		}
		start := time.Now()
		out, err := helper(t, "TestHelperSecondOpen", envLockDir+"="+dir).Output()
		if err != nil {
			t.Fatalf("helper: %v\n%s", err, out)
		}
		if !strings.HasPrefix(string(out), "locked=true ") {
			t.Fatalf("second gateway: %s", out)
		}
		if d := time.Since(start); d > within {
			t.Fatalf("second gateway took %v to fail", d)
		}
	})

	// The first store is unharmed.
	checkKV(t, mustGet(t, s, "/k"), "/k", "v", 1, 1)
}
