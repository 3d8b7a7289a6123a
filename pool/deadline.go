package pool

import "time"

// timeoutSlack is the share of a timeout by which a deadline already in
// force may fall short of a fresh one and still be kept: re-arming a
// deadline costs a clock read and a timer update in the runtime, and on a
// busy connection the deadline moves by microseconds per request. With
// 1/64, a 60 s timeout fires at the earliest after 59.06 s.
const timeoutSlack = 64

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
	// Fast path: the deadline in force is close enough (never later).
	if *cur != 0 && *cur <= t && t-*cur <= int64(d/timeoutSlack) {
		return target, false
	}
	*cur = t
	return target, true
}
