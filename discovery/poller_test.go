package discovery

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func TestScheduleNext(t *testing.T) {
	s := DefaultSchedule
	fail := Result{Err: errors.New("timeout")}
	f := func(r Result, failures int, want time.Duration) {
		t.Helper()
		if got := s.Next(r, failures); got != want {
			t.Fatalf("Next(%+v, %d) = %v, want %v", r, failures, got, want)
		}
	}
	f(Result{TTL: 0}, 0, time.Second) // floor
	f(Result{TTL: 30 * time.Second}, 0, 30*time.Second)
	f(Result{TTL: 24 * time.Hour}, 0, time.Minute) // ceiling
	f(Result{TTL: 2 * time.Second, Empty: "NXDOMAIN"}, 0, 2*time.Second)
	f(fail, 1, time.Second)
	f(fail, 2, 2*time.Second)
	f(fail, 3, 4*time.Second)
	f(fail, 4, 8*time.Second)
	f(fail, 5, 15*time.Second)
	f(fail, 50, 15*time.Second)
}

// scripted is a lookup that returns results in turn (the last one
// forever) and records when it ran, relative to start.
type scripted struct {
	mu      sync.Mutex
	start   time.Time
	results []Result
	at      []time.Duration
}

func (s *scripted) lookup(context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.at = append(s.at, time.Since(s.start))
	r := s.results[min(len(s.at)-1, len(s.results)-1)]
	return r
}

func (s *scripted) times() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.at...)
}

// TestPollerSchedule runs a lookup loop on the fake clock: re-resolution
// on the TTL within the floor and the ceiling, back-off on failures, reset
// after a success; notifications only when the node set changes; the last
// good nodes kept through failures.
func TestPollerSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := []Node{{Host: "10.0.0.1", Port: 80, Weight: 1}}
		ab := []Node{{Host: "10.0.0.1", Port: 80, Weight: 1}, {Host: "10.0.0.2", Port: 80, Weight: 1}}
		fail := Result{Err: errors.New("server 127.0.0.1:53 answered REFUSED")}
		s := &scripted{start: time.Now(), results: []Result{
			{Nodes: a, TTL: 0},                 // at 0 → next after the 1 s floor
			{Nodes: a, TTL: 10 * time.Second},  // at 1 s, unchanged → 10 s
			{Nodes: ab, TTL: time.Hour},        // at 11 s → the 60 s ceiling
			fail, fail, fail, fail, fail, fail, // at 71, 72, 74, 78, 86, 101 s
			{Nodes: ab, TTL: 5 * time.Second},                                  // at 116 s → 5 s
			{Nodes: nil, TTL: 3 * time.Second, Empty: "NXDOMAIN for web.test"}, // at 121 s
		}}
		var logs []string
		h := newHub(DefaultSchedule, func(format string, args ...any) { logs = append(logs, format) })
		var mu sync.Mutex
		var seen []State
		w := h.watch("k", "dns web.test", func() lookupFunc { return s.lookup }, func(st State) {
			mu.Lock()
			seen = append(seen, st)
			mu.Unlock()
		})

		synctest.Wait()
		if st := w.State(); !st.Known || len(st.Nodes) != 1 {
			t.Fatalf("after the first lookup: %+v", st)
		}
		time.Sleep(80 * time.Second) // at 80 s: failures at 71, 72, 74, 78
		synctest.Wait()
		st := w.State()
		if st.Err == nil || len(st.Nodes) != 2 || st.Failures != 4 || !st.Known {
			t.Fatalf("during failures: %+v", st)
		}
		time.Sleep(45 * time.Second) // at 125 s
		synctest.Wait()
		st = w.State()
		if st.Err != nil || len(st.Nodes) != 0 || st.Empty != "NXDOMAIN for web.test" || st.LastErr == nil {
			t.Fatalf("after the authoritative empty answer: %+v", st)
		}
		w.Stop()
		synctest.Wait()

		want := []time.Duration{0, 1, 11, 71, 72, 74, 78, 86, 101, 116, 121, 124}
		got := s.times()
		if len(got) != len(want) {
			t.Fatalf("lookups at %v, want %v s", got, want)
		}
		for i := range want {
			if got[i] != want[i]*time.Second {
				t.Fatalf("lookups at %v, want %v s", got, want)
			}
		}
		// Notified: the first lookup, the change to two nodes, the empty
		// set. Not for the unchanged answer nor for the failures.
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 3 || len(seen[0].Nodes) != 1 || len(seen[1].Nodes) != 2 || len(seen[2].Nodes) != 0 {
			t.Fatalf("notifications: %+v", seen)
		}
		// One log line when the failure starts (not per retry), one at
		// recovery, one for the empty answer.
		if len(logs) != 3 {
			t.Fatalf("logs: %q", logs)
		}
	})
}

// TestHubShares: watches of one query share one lookup loop, which ends
// with the last Stop; a later watch starts a new one.
func TestHubShares(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &scripted{start: time.Now(), results: []Result{{Nodes: []Node{{Host: "10.0.0.1", Port: 80, Weight: 1}}, TTL: 10 * time.Second}}}
		h := newHub(DefaultSchedule, nil)
		starts := 0
		mk := func() lookupFunc { starts++; return s.lookup }
		w1 := h.watch("k", "k", mk, func(State) {})
		synctest.Wait()
		w2 := h.watch("k", "k", mk, func(State) {})
		if st := w2.State(); !st.Known {
			t.Fatalf("a joining watch does not see the known state: %+v", st)
		}
		time.Sleep(25 * time.Second)
		w1.Stop()
		w1.Stop()
		time.Sleep(10 * time.Second)
		w2.Stop()
		synctest.Wait()
		if n := len(s.times()); starts != 1 || n != 4 {
			t.Fatalf("%d loops, %d lookups; want 1 loop, 4 lookups (0, 10, 20, 30 s)", starts, n)
		}
		w3 := h.watch("k", "k", mk, func(State) {})
		synctest.Wait()
		if starts != 2 {
			t.Fatalf("a watch after the last Stop did not start a loop")
		}
		h.close()
		w3.Stop()
	})
}
