package core

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/edgeway/gateway/pool"
)

func TestClientDeadlineKeep(t *testing.T) {
	var d clientDeadline
	now := time.Now()
	if d.keep(now.Add(time.Minute)) {
		t.Fatal("first deadline kept: nothing was armed")
	}
	if !d.keep(now.Add(time.Minute + 100*time.Millisecond)) {
		t.Fatal("a deadline 100 ms later (of 60 s) re-armed; want kept")
	}
	if d.keep(now.Add(time.Minute + 2*time.Second)) {
		t.Fatal("a deadline 2 s later (of 60 s, more than 1/64) kept")
	}
	if d.keep(now.Add(30 * time.Second)) {
		t.Fatal("an earlier deadline kept: the one in force would fire late")
	}
	if d.keep(time.Time{}) {
		t.Fatal("clearing the deadline kept the old one")
	}
	if d.keep(now.Add(30*time.Second + time.Millisecond)) {
		t.Fatal("kept a deadline after it was cleared")
	}

	// A deadline in force that has passed is never kept, however close.
	var past clientDeadline
	past.keep(now.Add(-time.Millisecond))
	if past.keep(now.Add(time.Microsecond)) {
		t.Fatal("kept a deadline that has passed")
	}
}

// TestKeptDeadlineStillFires checks that a read deadline asked again and
// again (as fasthttp does per request) still ends a read that waits, no
// later than the last one asked.
func TestKeptDeadlineStillFires(t *testing.T) {
	_, c, _ := edgePair(t)
	const timeout = 300 * time.Millisecond
	start := time.Now()
	var last time.Time
	for range 100 {
		last = time.Now().Add(timeout)
		if err := c.SetReadDeadline(last); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.Read(make([]byte, 1))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read returned %v, want the deadline exceeded", err)
	}
	if fired := time.Now(); fired.After(last.Add(100*time.Millisecond)) || fired.Sub(start) < timeout-timeout/pool.DeadlineSlack-5*time.Millisecond {
		t.Fatalf("deadline fired %v after the first was set; want about %v", fired.Sub(start), timeout)
	}

	// Cleared, the connection waits again (and a write deadline is
	// independent of the read one).
	if err := c.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetWriteDeadline(time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after a new deadline returned %v", err)
	}
}
