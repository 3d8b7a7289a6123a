package lb

// Tried is a set of node indexes. Up to 128 nodes fit inline; larger
// upstreams use a slice that is kept across Reset so a pooled Request
// allocates it at most once.
type Tried struct {
	small [2]uint64
	big   []uint64
	// n counts members, so Len is O(1).
	n int
}

// Add puts index i in the set.
func (t *Tried) Add(i int) {
	w, bit := i>>6, uint64(1)<<(uint(i)&63)
	if w < len(t.small) {
		if t.small[w]&bit == 0 {
			t.small[w] |= bit
			t.n++
		}
		return
	}
	w -= len(t.small)
	if w >= len(t.big) {
		// Slow path: first time this Request meets a large upstream.
		nb := make([]uint64, w+1, max(w+1, 2*cap(t.big)))
		copy(nb, t.big)
		t.big = nb
	}
	if t.big[w]&bit == 0 {
		t.big[w] |= bit
		t.n++
	}
}

// Has reports whether index i is in the set.
func (t *Tried) Has(i int) bool {
	if t.n == 0 {
		return false
	}
	w, bit := i>>6, uint64(1)<<(uint(i)&63)
	if w < len(t.small) {
		return t.small[w]&bit != 0
	}
	w -= len(t.small)
	return w < len(t.big) && t.big[w]&bit != 0
}

// Len returns the number of members.
func (t *Tried) Len() int { return t.n }

// Reset empties the set, keeping its storage.
func (t *Tried) Reset() {
	if t.n == 0 {
		return
	}
	t.small = [2]uint64{}
	clear(t.big)
	t.n = 0
}
