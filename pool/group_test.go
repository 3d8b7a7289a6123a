package pool

import (
	"crypto/tls"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestGroupPoolsPerSNI(t *testing.T) {
	g := newGroup("k", Options{Addr: "127.0.0.1:1", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, MaxIdle: 4})
	a := g.PoolFor("a.test")
	if g.Pool([]byte("a.test")) != a || g.PoolFor("a.test") != a {
		t.Fatal("the same SNI gave two pools")
	}
	b := g.Pool([]byte("b.test"))
	if b == a {
		t.Fatal("two SNIs share a pool")
	}
	if a.SNI() != "a.test" || b.SNI() != "b.test" || a.Options().MaxIdle != 4 {
		t.Fatalf("SNIs %q %q", a.SNI(), b.SNI())
	}
	if g.Options().TLS.ServerName != "" {
		t.Fatal("the group's template was modified")
	}
	n := 0
	g.Each(func(string, *Pool) { n++ })
	if n != 2 {
		t.Fatalf("%d pools, want 2", n)
	}

	plain := newGroup("p", Options{Addr: "127.0.0.1:1"})
	if plain.Pool([]byte("a.test")) != plain.PoolFor("") || plain.PoolFor("b").SNI() != "" {
		t.Fatal("a plain group must have one pool whatever the SNI")
	}
}

func TestGroupBoundsSNIs(t *testing.T) {
	g := newGroup("k", Options{Addr: "127.0.0.1:1", TLS: &tls.Config{}})
	for i := 0; i < MaxSNIs; i++ {
		if g.PoolFor("h" + strconv.Itoa(i)).Closed() {
			t.Fatalf("pool %d closed below the bound", i)
		}
	}
	extra := g.PoolFor("one-too-many")
	if !extra.Closed() || extra.SNI() != "one-too-many" || g.Overflows() != 1 {
		t.Fatal("past MaxSNIs a request must get an unpooled connection with its SNI")
	}
	if g.PoolFor("h0").Closed() {
		t.Fatal("a known SNI lost its pool")
	}
	g.close()
	if !g.PoolFor("h1").Closed() || !g.PoolFor("new").Closed() {
		t.Fatal("a closed group handed out an open pool")
	}
}

func TestGroupConcurrentFirstUse(t *testing.T) {
	g := newGroup("k", Options{Addr: "127.0.0.1:1", TLS: &tls.Config{}})
	var wg sync.WaitGroup
	got := make([]*Pool, 16)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i] = g.Pool([]byte("same.test"))
		}()
	}
	wg.Wait()
	for _, p := range got {
		if p != got[0] {
			t.Fatal("concurrent first use created two pools for one SNI")
		}
	}
}

func TestRegistryShareAndRetain(t *testing.T) {
	r := NewRegistry(time.Hour)
	defer r.Close()
	calls := 0
	opts := func() Options { calls++; return Options{Addr: "127.0.0.1:1"} }
	g1 := r.Group("a", opts)
	if r.Group("a", opts) != g1 || calls != 1 {
		t.Fatal("the registry did not share the group (or built its options twice)")
	}
	g2 := r.Group("b", opts)
	p1, p2 := g1.PoolFor(""), g2.PoolFor("")
	r.Retain(map[string]bool{"a": true})
	if p1.Closed() || !p2.Closed() {
		t.Fatal("Retain closed the wrong group")
	}
	n := 0
	r.Each(func(*Group) { n++ })
	if n != 1 || r.Group("b", opts) == g2 {
		t.Fatal("a forgotten group is still registered")
	}
}

func TestRegistrySweeps(t *testing.T) {
	s := newServer(t, nil)
	r := NewRegistry(10 * time.Millisecond)
	defer r.Close()
	p := r.Group("a", func() Options { return Options{Addr: s.addr(), IdleTimeout: 20 * time.Millisecond} }).PoolFor("")
	c := mustAcquire(t, p, nil, nowNano(), 0)
	c.Release(true, nowNano())
	for deadline := time.Now().Add(5 * time.Second); p.Stats().Idle != 0; {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper did not close an expired idle connection")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestGroupEvictsUnusedPerRequestPools: pools made for clients' Hosts go
// once unused for EvictAfter (making room under MaxSNIs); pinned pools and
// pools in use stay.
func TestGroupEvictsUnusedPerRequestPools(t *testing.T) {
	s := newServer(t, nil)
	g := newGroup("k", Options{Addr: s.addr(), TLS: &tls.Config{InsecureSkipVerify: true}, IdleTimeout: time.Hour})
	pinned := g.PoolFor("node.test")
	quiet := g.Pool([]byte("quiet.test"))
	busy := g.Pool([]byte("busy.test"))
	t0 := time.Now().UnixNano()
	g.sweep(t0) // first sight of each pool
	// busy is used between sweeps; quiet and pinned are not.
	step := int64(EvictAfter / 2)
	for i := 1; i <= 3; i++ {
		busy.opened.Add(1)
		g.sweep(t0 + int64(i)*step)
	}
	if got := g.Pool([]byte("quiet.test")); got == quiet || !quiet.Closed() {
		t.Fatal("an unused per-request pool was not evicted")
	}
	if g.PoolFor("node.test") != pinned || pinned.Closed() {
		t.Fatal("a pinned pool was evicted")
	}
	if g.Pool([]byte("busy.test")) != busy || busy.Closed() {
		t.Fatal("a pool in use was evicted")
	}
	// A pinned lookup of a per-request pool pins it.
	if g.PoolFor("busy.test") != busy || !busy.pinned.Load() {
		t.Fatal("PoolFor must pin an existing pool")
	}
}
