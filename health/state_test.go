package health

import (
	"testing"

	"github.com/edgeway/gateway/lb"
)

func ctr(s, h, t, to uint8) Counters {
	return Counters{Success: s, HTTPFailure: h, TCPFailure: t, TimeoutFailure: to}
}

// TestApplyRules walks every rule of APISIX's state machine (reference
// apisix.md §3, lua-resty-healthcheck incr_counter).
func TestApplyRules(t *testing.T) {
	f := func(name string, st State, c Counters, k Kind, limit int, wantSt State, wantC Counters) {
		t.Helper()
		w := makeWord(st, c)
		nw, changed := apply(w, k, limit)
		if gotSt, gotC := wordState(nw), wordCounters(nw); gotSt != wantSt || gotC != wantC {
			t.Errorf("%s: %v%+v + %v(limit %d) = %v%+v, want %v%+v", name, st, c, k, limit, gotSt, gotC, wantSt, wantC)
		}
		if changed != (nw != w) {
			t.Errorf("%s: changed=%v but word %x -> %x", name, changed, w, nw)
		}
	}
	// A Healthy target ignores successes; an Unhealthy one ignores failures.
	f("healthy ignores success", Healthy, ctr(3, 0, 0, 0), Success, 2, Healthy, ctr(3, 0, 0, 0))
	f("unhealthy ignores http failure", Unhealthy, ctr(0, 5, 1, 0), HTTPFailure, 5, Unhealthy, ctr(0, 5, 1, 0))
	f("unhealthy ignores tcp failure", Unhealthy, ctr(0, 0, 2, 0), TCPFailure, 2, Unhealthy, ctr(0, 0, 2, 0))
	f("unhealthy ignores timeout", Unhealthy, ctr(0, 0, 0, 3), TimeoutFailure, 3, Unhealthy, ctr(0, 0, 0, 3))

	// A failure below its threshold on a healthy target: mostly_healthy;
	// it clears the success counter only.
	f("healthy, first failure", Healthy, ctr(2, 0, 0, 0), HTTPFailure, 5, MostlyHealthy, ctr(0, 1, 0, 0))
	f("healthy, first tcp failure", Healthy, ctr(0, 0, 0, 0), TCPFailure, 2, MostlyHealthy, ctr(0, 0, 1, 0))
	f("healthy, first timeout", Healthy, ctr(0, 0, 0, 0), TimeoutFailure, 3, MostlyHealthy, ctr(0, 0, 0, 1))
	// Failure counters are independent: a tcp failure keeps the http one.
	f("failure counters independent", MostlyHealthy, ctr(0, 2, 0, 1), TCPFailure, 2, MostlyHealthy, ctr(0, 2, 1, 1))
	// Reaching a threshold flips to unhealthy; counters are kept.
	f("tcp threshold flips", MostlyHealthy, ctr(0, 0, 1, 0), TCPFailure, 2, Unhealthy, ctr(0, 0, 2, 0))
	f("http threshold flips", MostlyHealthy, ctr(0, 4, 0, 0), HTTPFailure, 5, Unhealthy, ctr(0, 5, 0, 0))
	f("timeout threshold flips", MostlyHealthy, ctr(0, 0, 0, 2), TimeoutFailure, 3, Unhealthy, ctr(0, 0, 0, 3))
	f("threshold 1 flips from healthy", Healthy, ctr(0, 0, 0, 0), HTTPFailure, 1, Unhealthy, ctr(0, 1, 0, 0))
	f("threshold counts only its kind", MostlyHealthy, ctr(0, 1, 1, 0), TimeoutFailure, 2, MostlyHealthy, ctr(0, 1, 1, 1))

	// A success below its threshold on an unhealthy target:
	// mostly_unhealthy; it clears every failure counter.
	f("unhealthy, first success", Unhealthy, ctr(0, 1, 2, 1), Success, 2, MostlyUnhealthy, ctr(1, 0, 0, 0))
	f("mostly_unhealthy, success reaches", MostlyUnhealthy, ctr(1, 0, 0, 0), Success, 2, Healthy, ctr(2, 0, 0, 0))
	f("success threshold 1 flips from unhealthy", Unhealthy, ctr(0, 0, 2, 0), Success, 1, Healthy, ctr(1, 0, 0, 0))
	// Below the threshold the mostly_* states stay.
	f("mostly_unhealthy, failure below", MostlyUnhealthy, ctr(1, 0, 0, 0), HTTPFailure, 5, MostlyUnhealthy, ctr(0, 1, 0, 0))
	f("mostly_healthy, success below", MostlyHealthy, ctr(0, 1, 0, 0), Success, 2, MostlyHealthy, ctr(1, 0, 0, 0))
	f("mostly_healthy, success reaches", MostlyHealthy, ctr(1, 3, 0, 0), Success, 2, Healthy, ctr(2, 0, 0, 0))
	f("mostly_unhealthy, failure reaches", MostlyUnhealthy, ctr(2, 0, 1, 0), TCPFailure, 2, Unhealthy, ctr(0, 0, 2, 0))

	// A threshold of 0 disables the kind.
	f("limit 0 success", Unhealthy, ctr(0, 0, 2, 0), Success, 0, Unhealthy, ctr(0, 0, 2, 0))
	f("limit 0 failure", Healthy, ctr(0, 0, 0, 0), HTTPFailure, 0, Healthy, ctr(0, 0, 0, 0))

	// Counters saturate at 255 rather than overflow into the next one.
	f("saturates", MostlyHealthy, ctr(0, 255, 0, 0), HTTPFailure, 300, MostlyHealthy, ctr(0, 255, 0, 0))
}

func TestStateUp(t *testing.T) {
	for s, up := range map[State]bool{Healthy: true, MostlyHealthy: true, MostlyUnhealthy: false, Unhealthy: false} {
		if s.Up() != up {
			t.Errorf("%v.Up() = %v", s, s.Up())
		}
	}
	if Healthy.String() != "healthy" || MostlyUnhealthy.String() != "mostly_unhealthy" {
		t.Fatal("state names")
	}
}

// TestCountersKeptOnFlip replays APISIX's /v1/healthcheck example: a node
// that went down shows tcp_failure 2, and the first success afterwards
// clears it.
func TestCountersKeptOnFlip(t *testing.T) {
	var n lb.NodeState
	tg := &Target{}
	tg.setNodes([]*lb.NodeState{&n})
	tg.report(TCPFailure, 2)
	if tg.State() != MostlyHealthy || n.Down() {
		t.Fatalf("after one tcp failure: %v down=%v", tg.State(), n.Down())
	}
	tg.report(TCPFailure, 2)
	if tg.State() != Unhealthy || !n.Down() || tg.Counters() != ctr(0, 0, 2, 0) {
		t.Fatalf("after two: %v %+v down=%v", tg.State(), tg.Counters(), n.Down())
	}
	tg.report(TCPFailure, 2) // ignored while unhealthy
	if tg.Counters() != ctr(0, 0, 2, 0) {
		t.Fatalf("unhealthy counted a failure: %+v", tg.Counters())
	}
	tg.report(Success, 2)
	if tg.State() != MostlyUnhealthy || !n.Down() || tg.Counters() != ctr(1, 0, 0, 0) {
		t.Fatalf("after a success: %v %+v down=%v", tg.State(), tg.Counters(), n.Down())
	}
	tg.report(Success, 2)
	if tg.State() != Healthy || n.Down() || tg.Counters() != ctr(2, 0, 0, 0) {
		t.Fatalf("after two successes: %v %+v down=%v", tg.State(), tg.Counters(), n.Down())
	}
}

func TestDetachedTargetIgnoresReportsAndReleasesNodes(t *testing.T) {
	var n lb.NodeState
	tg := &Target{}
	tg.setNodes([]*lb.NodeState{&n})
	tg.report(HTTPFailure, 1)
	if !n.Down() {
		t.Fatal("not down")
	}
	tg.detach()
	tg.publish()
	if n.Down() {
		t.Fatal("a detached target holds its node down")
	}
	tg.report(HTTPFailure, 1)
	tg.report(Success, 1)
	if n.Down() || tg.State() != Unhealthy {
		t.Fatalf("detached target changed: %v down=%v", tg.State(), n.Down())
	}
}

func TestParseStatusLine(t *testing.T) {
	for line, want := range map[string]int{
		"HTTP/1.1 200 OK":        200,
		"HTTP/1.0 503":           503,
		"HTTP/2.0   404 Not":     404,
		"HTTP/1.1 200\r":         200,
		"HTTP/11.22 302 Found":   302,
		"http/1.1 200 OK":        0,
		"HTTP/1.1200 OK":         0,
		"HTTP/1 200 OK":          0,
		"SSH-2.0-OpenSSH_9.2p1":  0,
		"HTTP/1.1 abc":           0,
		"":                       0,
		"HTTP/1.1 2000000 Big":   2000,
		"HTTP/1.1 99 Continue?!": 99,
	} {
		if got := parseStatusLine([]byte(line)); got != want {
			t.Errorf("parseStatusLine(%q) = %d, want %d", line, got, want)
		}
	}
}
