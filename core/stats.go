package core

import "sync/atomic"

// RouteStats counts a route's responses by status class (1xx..5xx). It is
// kept across snapshots, keyed by route, so counters are not reset by edits.
type RouteStats struct {
	ByClass [6]atomic.Uint64
}
