package core

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// TestRouteTableMatchesFreshBuild changes random routes batch by batch and
// checks that the layered table (base + overlay) always answers what the
// reference matcher answers over the current routes.
func TestRouteTableMatchesFreshBuild(t *testing.T) {
	seeds := []uint64{1, 2, uint64(time.Now().UnixNano()), rand.Uint64()}
	iters := 150
	if testing.Short() {
		iters = 30
	}
	for _, seed := range seeds {
		g := routeGen{rand.New(rand.NewPCG(seed, 7))}
		for it := 0; it < iters; it++ {
			cur := map[string]*RouteEntry{}
			nextID := 0
			newEntry := func(key string) *RouteEntry {
				s := g.route(0)
				s.id = key
				e := s.entry(t)
				e.Key = key
				return e
			}
			for i := g.rnd.IntN(25); i > 0; i-- {
				key := fmt.Sprint("r", nextID)
				nextID++
				cur[key] = newEntry(key)
			}
			table := NewRouteTable(values(cur))
			for batch := 0; batch < 6; batch++ {
				changes := map[string]*RouteEntry{}
				for c := 1 + g.rnd.IntN(4); c > 0; c-- {
					keys := sortedEntryKeys(cur)
					switch op := g.rnd.IntN(3); {
					case op == 0 || len(keys) == 0: // add
						key := fmt.Sprint("r", nextID)
						nextID++
						cur[key] = newEntry(key)
						changes[key] = cur[key]
					case op == 1: // replace
						key := keys[g.rnd.IntN(len(keys))]
						cur[key] = newEntry(key)
						changes[key] = cur[key]
					default: // delete
						key := keys[g.rnd.IntN(len(keys))]
						delete(cur, key)
						changes[key] = nil
					}
				}
				table = table.With(changes)
				entries := values(cur)
				buf := make([]byte, 0, 512)
				for k := 0; k < 30; k++ {
					q := g.request()
					ctx := q.ctx(t)
					got, want := table.Match(ctx, buf), naiveMatch(entries, ctx)
					if got != want {
						t.Fatalf("seed %d iteration %d batch %d: %+v: got %s, want %s\nroutes:\n%s",
							seed, it, batch, q, describeEntry(got), describeEntry(want), describeEntries(entries))
					}
				}
			}
		}
	}
}

func values(m map[string]*RouteEntry) []*RouteEntry {
	keys := sortedEntryKeys(m)
	out := make([]*RouteEntry, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

func sortedEntryKeys(m map[string]*RouteEntry) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
