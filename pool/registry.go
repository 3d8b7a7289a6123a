package pool

import (
	"sync"
	"time"
)

// Registry shares pools between configuration snapshots: a snapshot asks
// for the pool of a key, and an unchanged node keeps its warm connections
// across edits. It also runs the one sweeper goroutine that closes expired
// idle connections of every pool.
//
// Registry methods lock; they are called when a snapshot is compiled, never
// per request.
type Registry struct {
	mu    sync.Mutex
	pools map[string]*Pool
	stop  chan struct{}
	done  chan struct{}
}

// NewRegistry starts a registry whose sweeper runs every interval.
func NewRegistry(interval time.Duration) *Registry {
	r := &Registry{pools: map[string]*Pool{}, stop: make(chan struct{}), done: make(chan struct{})}
	go r.sweepLoop(interval)
	return r
}

// Get returns the pool for key, creating it with opts when absent. Callers
// must build key from everything that makes connections incompatible:
// scheme, address, SNI, TLS identity and the pool settings.
func (r *Registry) Get(key string, opts Options) *Pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p, ok := r.pools[key]; ok {
		return p
	}
	p := New(opts)
	r.pools[key] = p
	return p
}

// Retain closes and forgets every pool whose key is not in keep.
// In-flight requests on a forgotten pool finish normally; their
// connections are closed on release.
func (r *Registry) Retain(keep map[string]bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, p := range r.pools {
		if !keep[k] {
			p.Close()
			delete(r.pools, k)
		}
	}
}

// Each calls f for every pool (for metrics). f must not call the registry.
func (r *Registry) Each(f func(key string, p *Pool)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, p := range r.pools {
		f(k, p)
	}
}

// Close stops the sweeper and closes every pool.
func (r *Registry) Close() {
	close(r.stop)
	<-r.done
	r.Retain(nil)
}

func (r *Registry) sweepLoop(interval time.Duration) {
	defer close(r.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-t.C:
			r.mu.Lock()
			pools := make([]*Pool, 0, len(r.pools))
			for _, p := range r.pools {
				pools = append(pools, p)
			}
			r.mu.Unlock()
			for _, p := range pools {
				p.sweep(now.UnixNano())
			}
		}
	}
}
