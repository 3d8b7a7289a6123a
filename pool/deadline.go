package pool

import "time"

// DeadlineSlack is the share of a timeout by which a deadline already in
// force may fall short of a fresh one and still be kept: re-arming a
// deadline costs a clock read and a timer update in the runtime, and on a
// busy connection the deadline moves by microseconds per request. With
// 1/64, a 60 s timeout fires at the earliest after 59.06 s.
const DeadlineSlack = 64

// KeepDeadline reports whether a deadline in force, cur (Unix nanoseconds;
// 0 for none), may stand for a wanted one, want, which is left away from
// now: cur is not later than want, still in the future, and earlier by at
// most 1/DeadlineSlack of left. Both the upstream connections here and the
// gateway's client connections use this rule.
func KeepDeadline(cur, want int64, left time.Duration) bool {
	early := time.Duration(want - cur)
	return cur != 0 && cur <= want && early < left && early <= left/DeadlineSlack
}

// SetReadTimeout sets the read deadline to now+d, unless the deadline in
// force is at most d/64 earlier than that (then it is kept). d ≤ 0 clears
// the deadline.
func (c *Conn) SetReadTimeout(now time.Time, d time.Duration) error {
	target, ok := nextDeadline(&c.rdl, now, d)
	if !ok {
		return nil
	}
	return c.Conn.SetReadDeadline(target)
}

// SetWriteTimeout is SetReadTimeout for the write deadline.
func (c *Conn) SetWriteTimeout(now time.Time, d time.Duration) error {
	target, ok := nextDeadline(&c.wdl, now, d)
	if !ok {
		return nil
	}
	return c.Conn.SetWriteDeadline(target)
}

// nextDeadline returns the deadline to set for now+d, and false when the
// one in force (*cur) may stay. It records the new one in *cur.
func nextDeadline(cur *int64, now time.Time, d time.Duration) (time.Time, bool) {
	if d <= 0 {
		*cur = 0
		return time.Time{}, true
	}
	target := now.Add(d)
	t := target.UnixNano()
	if KeepDeadline(*cur, t, d) {
		return target, false
	}
	*cur = t
	return target, true
}
