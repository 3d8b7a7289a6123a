package pool

import (
	"testing"
	"time"
)

func TestNextDeadline(t *testing.T) {
	base := time.Unix(1000, 0)
	var cur int64
	f := func(now time.Time, d time.Duration, wantSet bool) {
		t.Helper()
		if _, set := nextDeadline(&cur, now, d); set != wantSet {
			t.Fatalf("now %v d %v: set %v, want %v", now.Sub(base), d, set, wantSet)
		}
	}
	f(base, 64*time.Second, true)                            // first deadline
	f(base.Add(500*time.Millisecond), 64*time.Second, false) // within 1 s (64 s / 64)
	f(base.Add(time.Second), 64*time.Second, false)          // exactly the slack
	f(base.Add(1001*time.Millisecond), 64*time.Second, true) // beyond it: re-armed
	f(base, 64*time.Second, true)                            // a deadline earlier than in force is always set
	f(base, 32*time.Second, true)                            // shorter timeout: earlier deadline
	f(base, 0, true)                                         // cleared
	if cur != 0 {
		t.Fatal("clearing must forget the deadline")
	}
}
