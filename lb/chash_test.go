package lb

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// owner returns the index of the node c picks for hash h (no tried set).
func owner(c *CHash, h uint64) int {
	var r Request
	r.Hash = h
	return pickDone(c, &r)
}

func keyHash(i int) uint64 { return NewKeyHash().AddString(fmt.Sprintf("user-%d", i)).Sum64() }

func TestKeyHashStreaming(t *testing.T) {
	whole := NewKeyHash().AddString("alpha-beta").Sum64()
	parts := NewKeyHash().Add([]byte("alpha")).AddString("-").Add([]byte("beta")).Sum64()
	if whole != parts {
		t.Fatal("hashing in pieces differs from hashing whole")
	}
	// Fixed value: the hash must never change, or a fleet running two
	// versions would disagree about where keys go.
	if got := NewKeyHash().AddString("127.0.0.1").Sum64(); got != 0xcede3ba3b6417b22 {
		t.Fatalf("KeyHash(127.0.0.1) = %#x, want 0xcede3ba3b6417b22", got)
	}
}

// TestCHashOrderIndependent: the ring depends only on the node set, so
// every permutation of the nodes maps every key to the same node.
func TestCHashOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ns := nodes(1, 2, 3, 1, 5, 1, 1)
	ref := NewCHash(ns)
	for range 20 {
		c := NewCHash(shuffled(rng, ns))
		for k := range 2000 {
			if a, b := owner(ref, keyHash(k)), owner(c, keyHash(k)); a != b {
				t.Fatalf("key %d: node %d in one order, %d in another", k, a, b)
			}
		}
	}
}

// TestCHashDistribution: keys spread in proportion to weight.
func TestCHashDistribution(t *testing.T) {
	for _, weights := range [][]int{{1, 1}, {1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, {1, 2, 3}, {5, 1}, {100, 100, 200}} {
		ns := nodes(weights...)
		c := NewCHash(ns)
		const keys = 200000
		counts := make([]int, len(ns))
		for k := range keys {
			counts[owner(c, keyHash(k))]++
		}
		total := 0
		for _, w := range weights {
			total += w
		}
		for i, w := range weights {
			want := float64(keys) * float64(w) / float64(total)
			if dev := math.Abs(float64(counts[i])-want) / want; dev > 0.15 {
				t.Errorf("weights %v: node %d got %d keys, want about %.0f (%.0f%% off)", weights, i, counts[i], want, dev*100)
			}
		}
	}
}

func TestCHashGCD(t *testing.T) {
	a, b := NewCHash(nodes(2, 4)), NewCHash(nodes(1, 2))
	if len(a.hashes) != 3*pointsPerWeight || len(b.hashes) != len(a.hashes) {
		t.Fatalf("ring sizes %d and %d, want %d", len(a.hashes), len(b.hashes), 3*pointsPerWeight)
	}
}

// TestCHashAddNode: adding one node to N moves about 1/(N+1) of the keys,
// every one of them to the new node (weights equal, so the gcd is stable).
func TestCHashAddNode(t *testing.T) {
	const keys = 50000
	for _, n := range []int{1, 2, 3, 5, 10, 30} {
		weights := make([]int, n+1)
		for i := range weights {
			weights[i] = 1
		}
		all := nodes(weights...)
		before, after := NewCHash(all[:n]), NewCHash(all)
		moved, toNew := 0, 0
		for k := range keys {
			h := keyHash(k)
			a, b := owner(before, h), owner(after, h)
			if a != b {
				moved++
				if b == n {
					toNew++
				}
			}
		}
		frac, want := float64(moved)/keys, 1/float64(n+1)
		if math.Abs(frac-want) > 0.3*want {
			t.Errorf("%d→%d nodes: %.3f of keys moved, want about %.3f", n, n+1, frac, want)
		}
		if toNew != moved {
			t.Errorf("%d→%d nodes: %d of %d moved keys went elsewhere than the new node", n, n+1, moved-toNew, moved)
		}
	}
}

// TestCHashRemoveNode: removing a node moves only that node's keys, and
// they go where a retry would have sent them.
func TestCHashRemoveNode(t *testing.T) {
	all := nodes(1, 1, 1, 1, 1)
	full := NewCHash(all)
	without := NewCHash([]*Node{all[0], all[1], all[3], all[4]})
	for k := range 20000 {
		h := keyHash(k)
		a, b := owner(full, h), owner(without, h)
		if a != 2 && a != b {
			t.Fatalf("key %d moved from node %d to %d though node 2 was removed", k, a, b)
		}
		if a == 2 {
			r := Request{Hash: h}
			r.Tried.Add(2)
			if retry := pickDone(full, &r); retry != b {
				t.Fatalf("key %d: retry goes to %d, removal to %d", k, retry, b)
			}
		}
	}
}

func TestCHashRetryWalksTheRing(t *testing.T) {
	ns := nodes(1, 1, 1)
	c := NewCHash(ns)
	for k := range 100 {
		r := Request{Hash: keyHash(k)}
		first := c.Pick(&r)
		r.Tried.Add(first.Index)
		c.Done(first, 0, true)
		second := c.Pick(&r)
		if second == nil || second == first {
			t.Fatalf("key %d: retry got %v after %s", k, second, first.Addr)
		}
		c.Done(second, 0, true)
		// The retry is deterministic: the same again.
		r2 := Request{Hash: keyHash(k)}
		r2.Tried.Add(first.Index)
		if again := pickDone(c, &r2); again != second.Index {
			t.Fatalf("key %d: retry went to %d then %d", k, second.Index, again)
		}
	}
}

func TestCHashDownAndWeightZero(t *testing.T) {
	ns := nodes(1000, 1, 0)
	c := NewCHash(ns)
	ns[0].State.SetDown(true)
	for k := range 1000 {
		if got := owner(c, keyHash(k)); got != 1 {
			t.Fatalf("key %d: node %d, want 1 (0 is down, 2 has weight 0)", k, got)
		}
	}
	// A long run of unusable nodes ends in the node-list walk.
	weights := make([]int, 1000)
	for i := range weights {
		weights[i] = 1
	}
	big := nodes(weights...)
	for _, n := range big[1:] {
		n.State.SetDown(true)
	}
	c = NewCHash(big)
	for k := range 50 {
		if got := owner(c, keyHash(k)); got != 0 {
			t.Fatalf("key %d: node %d, want the one node up", k, got)
		}
	}
}

func TestCHashPointCap(t *testing.T) {
	c := NewCHash(nodes(1<<20, 1, 3))
	if len(c.hashes) > maxPoints+3 {
		t.Fatalf("ring of %d points, cap %d", len(c.hashes), maxPoints)
	}
	if owner(c, keyHash(1)) < 0 {
		t.Fatal("capped ring picks nothing")
	}
}
