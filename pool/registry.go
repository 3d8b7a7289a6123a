package pool

import (
	"sync"
	"time"
)

// Registry shares pool groups between configuration snapshots: a snapshot
// asks for the group of a key, and an unchanged node keeps its warm
// connections across edits. It also runs the one sweeper goroutine that
// closes expired idle connections of every pool.
//
// Registry methods lock; they are called when a snapshot is compiled (and
// by metrics), never per request.
type Registry struct {
	mu     sync.Mutex
	groups map[string]*Group
	stop   chan struct{}
	done   chan struct{}
}

// NewRegistry starts a registry whose sweeper runs every interval.
func NewRegistry(interval time.Duration) *Registry {
	r := &Registry{groups: map[string]*Group{}, stop: make(chan struct{}), done: make(chan struct{})}
	go r.sweepLoop(interval)
	return r
}

// Group returns the group for key, creating it with the options opts
// returns when absent (opts is not called otherwise).
// Callers must build key from everything that makes connections
// incompatible except the SNI: scheme, address, TLS identity (client
// certificate, verification, CA certificates) and the pool settings.
func (r *Registry) Group(key string, opts func() Options) *Group {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g, ok := r.groups[key]; ok {
		return g
	}
	g := newGroup(key, opts())
	r.groups[key] = g
	return g
}

// Retain closes and forgets every group whose key is not in keep.
// In-flight requests on a forgotten pool finish normally; their
// connections are closed on release.
func (r *Registry) Retain(keep map[string]bool) {
	r.RetainFunc(func(key string) bool { return keep[key] })
}

// RetainFunc is Retain with the keys to keep given by a function.
func (r *Registry) RetainFunc(keep func(key string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, g := range r.groups {
		if !keep(k) {
			g.close()
			delete(r.groups, k)
		}
	}
}

// Forget closes and forgets the groups of keys (those a configuration
// stopped using between two full retains, such as the nodes a service
// registry removed). In-flight requests finish as with Retain.
func (r *Registry) Forget(keys ...string) {
	if len(keys) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range keys {
		if g, ok := r.groups[k]; ok {
			g.close()
			delete(r.groups, k)
		}
	}
}

// Each calls f for every group (for metrics). f must not call the registry.
func (r *Registry) Each(f func(g *Group)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.groups {
		f(g)
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
			groups := make([]*Group, 0, len(r.groups))
			for _, g := range r.groups {
				groups = append(groups, g)
			}
			r.mu.Unlock()
			for _, g := range groups {
				g.sweep(now.UnixNano())
			}
		}
	}
}
