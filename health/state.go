// Package health checks upstream nodes the way APISIX does (its
// healthcheck_manager over api7's lua-resty-healthcheck): active probes on
// two intervals, passive counting of the proxy's tries, four consecutive
// counters and four states per target.
//
// The package owns every probe goroutine. It publishes a node's health by
// setting lb.NodeState down or up, an atomic the pickers read; the request
// path only reports try outcomes to a Passive attached to the compiled
// Balancer, which updates a target's packed state word with a CAS (no lock,
// no allocation). Target state is keyed by upstream and address, so an edit
// that keeps a node keeps its state and counters.
package health

// State is one of APISIX's four target states. Healthy and MostlyHealthy
// count as up for routing; MostlyUnhealthy and Unhealthy count as down.
type State uint8

// The states, in the order of lua-resty-healthcheck's internal values.
const (
	Healthy State = iota
	MostlyHealthy
	MostlyUnhealthy
	Unhealthy
)

var stateNames = [...]string{"healthy", "mostly_healthy", "mostly_unhealthy", "unhealthy"}

// String returns the name APISIX shows ("healthy", "mostly_healthy", ...).
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Up reports whether the state lets the node take traffic.
func (s State) Up() bool { return s == Healthy || s == MostlyHealthy }

// Kind is what a report says about a target.
type Kind uint8

// The four kinds of report, one per counter.
const (
	Success Kind = iota
	HTTPFailure
	TCPFailure
	TimeoutFailure
)

var kindNames = [...]string{"success", "http_failure", "tcp_failure", "timeout_failure"}

func (k Kind) String() string { return kindNames[k] }

// Counters are a target's four consecutive counters (8 bits each in
// lua-resty-healthcheck; they never exceed the threshold that flips the
// state, at most 254).
type Counters struct {
	Success        uint8
	HTTPFailure    uint8
	TCPFailure     uint8
	TimeoutFailure uint8
}

// Thresholds are the counts that flip a target's state, per kind. 0
// disables that kind: its reports are ignored (passive thresholds may be 0).
type Thresholds [4]int

// The state word packs a target's state and counters into one uint64 so
// that a report is a single CAS:
//
//	bits  0-7   state
//	bits  8-15  success
//	bits 16-23  http_failure
//	bits 24-31  tcp_failure
//	bits 32-39  timeout_failure
//	bit  63     detached: the target no longer exists; reports are ignored
const (
	counterShift = 8
	detachedBit  = uint64(1) << 63
	stateMask    = uint64(0xff)
	failureMask  = uint64(0xffffff) << 16 // http, tcp and timeout counters
	successMask  = uint64(0xff) << 8
)

func wordState(w uint64) State { return State(w & stateMask) }

func wordCounter(w uint64, k Kind) uint8 {
	return uint8(w >> (counterShift + 8*uint(k)))
}

func wordCounters(w uint64) Counters {
	return Counters{
		Success:        wordCounter(w, Success),
		HTTPFailure:    wordCounter(w, HTTPFailure),
		TCPFailure:     wordCounter(w, TCPFailure),
		TimeoutFailure: wordCounter(w, TimeoutFailure),
	}
}

func makeWord(s State, c Counters) uint64 {
	return uint64(s) | uint64(c.Success)<<8 | uint64(c.HTTPFailure)<<16 |
		uint64(c.TCPFailure)<<24 | uint64(c.TimeoutFailure)<<32
}

// apply returns the word after a report of kind k whose threshold is limit,
// following lua-resty-healthcheck's incr_counter:
//
//   - a threshold of 0 disables the kind: nothing changes;
//   - a Healthy target ignores successes, an Unhealthy one ignores failures;
//   - otherwise the kind's counter is incremented; a success clears the
//     three failure counters, a failure clears only the success counter
//     (failure counters are independent of each other);
//   - a counter reaching its threshold flips the state to Healthy (success)
//     or Unhealthy (failure); below it, a failure turns Healthy into
//     MostlyHealthy and a success turns Unhealthy into MostlyUnhealthy;
//   - counters are not zeroed on a flip.
//
// changed is false when the word is unchanged.
func apply(w uint64, k Kind, limit int) (nw uint64, changed bool) {
	if limit <= 0 || w&detachedBit != 0 {
		return w, false
	}
	st := wordState(w)
	success := k == Success
	if success && st == Healthy || !success && st == Unhealthy {
		return w, false
	}
	shift := counterShift + 8*uint(k)
	ctr := uint64(wordCounter(w, k))
	if ctr < 255 {
		ctr++
	}
	nw = w&^(uint64(0xff)<<shift) | ctr<<shift
	if success {
		nw &^= failureMask
	} else {
		nw &^= successMask
	}
	ns := st
	switch {
	case int(ctr) >= limit && success:
		ns = Healthy
	case int(ctr) >= limit:
		ns = Unhealthy
	case st == Healthy && !success:
		ns = MostlyHealthy
	case st == Unhealthy && success:
		ns = MostlyUnhealthy
	}
	nw = nw&^stateMask | uint64(ns)
	return nw, nw != w
}
