//go:build !race

package pool

import (
	"crypto/tls"
	"testing"
	"time"
)

// TestHotPathAllocations: reusing a warm connection and finding the pool of
// a known SNI allocate nothing.
func TestHotPathAllocations(t *testing.T) {
	s := newServer(t, nil)
	g := newGroup("k", Options{Addr: s.addr(), IdleTimeout: time.Minute})
	tg := newGroup("t", Options{Addr: s.addr(), TLS: &tls.Config{}})
	sni := []byte("known.test")
	tg.Pool(sni)
	var m Meter
	p := g.PoolFor("")
	now := nowNano()
	c := mustAcquire(t, p, &m, now, 0)
	c.Release(true, now)
	run := func() {
		c, err := g.Pool(nil).Acquire(&m, now, time.Second, Check)
		if err != nil {
			t.Fatal(err)
		}
		c.Release(true, now)
		if tg.Pool(sni) == nil {
			t.Fatal("no pool")
		}
	}
	if n := testing.AllocsPerRun(1000, run); n != 0 {
		t.Fatalf("%.1f allocations per acquire/release", n)
	}
}
