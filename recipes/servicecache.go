package recipes

import (
	"context"
	"errors"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/go-zookeeper/zk"
)

// ErrNoInstances is returned by a Provider when no enabled instance is known.
var ErrNoInstances = errors.New("recipes: no enabled service instances")

// ServiceCache keeps the instances of one service in memory, watching the
// service's znode and each instance's, as curator-x-discovery's ServiceCache
// does.
type ServiceCache struct {
	d    *Discovery
	name string

	mu        sync.Mutex
	instances map[string]ServiceInstance // by znode name
	// dataWatch marks the instances whose data watch has not fired: their
	// cached data is still current.
	dataWatch map[string]bool
	loaded    bool
	changed   chan struct{}
	// dirWatch is set while a watch on the service's znode is pending, so
	// reloads do not pile up watches.
	dirWatch atomic.Bool

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// NewCache starts a cache of service name's instances.
func (d *Discovery) NewCache(name string) *ServiceCache {
	sc := &ServiceCache{
		d: d, name: name, instances: map[string]ServiceInstance{}, dataWatch: map[string]bool{}, changed: make(chan struct{}),
		stop: make(chan struct{}), done: make(chan struct{}),
	}
	go sc.run()
	return sc
}

// Instances returns the cached instances, sorted by id.
func (sc *ServiceCache) Instances() []ServiceInstance {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	out := make([]ServiceInstance, 0, len(sc.instances))
	for _, inst := range sc.instances {
		out = append(out, inst)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Changed returns a channel closed at the next change of the cached set.
func (sc *ServiceCache) Changed() <-chan struct{} {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	return sc.changed
}

// Ready waits until the cache has loaded once.
func (sc *ServiceCache) Ready(ctx context.Context) error {
	for {
		sc.mu.Lock()
		loaded, changed := sc.loaded, sc.changed
		sc.mu.Unlock()
		if loaded {
			return nil
		}
		select {
		case <-changed:
		case <-sc.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops the cache.
func (sc *ServiceCache) Close() {
	sc.stopOnce.Do(func() { close(sc.stop) })
	<-sc.done
}

// run reloads the service's instances on every watch event and connection
// change. Instances whose data watch has not fired are kept as read.
func (sc *ServiceCache) run() {
	defer close(sc.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-sc.stop:
		case <-sc.done:
		}
		cancel()
	}()
	kick := make(chan struct{}, 1)
	notify := func(ch <-chan zk.Event, child string) {
		go func() {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
			if child == "" {
				sc.dirWatch.Store(false)
			} else {
				sc.mu.Lock()
				delete(sc.dataWatch, child)
				sc.mu.Unlock()
			}
			select {
			case kick <- struct{}{}:
			default:
			}
		}()
	}
	dir := sc.d.servicePath(sc.name)
	var lastSession int64
	for {
		g, err := sc.c().session(ctx)
		if err != nil {
			return
		}
		if g.session != lastSession {
			// Watches of an expired session are gone: read everything again.
			sc.mu.Lock()
			sc.dataWatch = map[string]bool{}
			sc.mu.Unlock()
			sc.dirWatch.Store(false)
			lastSession = g.session
		}
		if err := sc.load(dir, notify); err != nil {
			if errors.Is(err, errRetry) {
				_ = settle(ctx, g)
				continue
			}
		}
		select {
		case <-kick:
		case <-g.lost:
		case <-ctx.Done():
			return
		}
	}
}

var errRetry = errors.New("recipes: retry")

func (sc *ServiceCache) c() *Client { return sc.d.c }

// load reads the children (with a watch) and every instance not being
// watched, and publishes the result.
func (sc *ServiceCache) load(dir string, notify func(<-chan zk.Event, string)) error {
	conn := sc.c().conn
	var children []string
	var ch <-chan zk.Event
	var err error
	if sc.dirWatch.Load() {
		children, _, err = conn.Children(dir)
	} else {
		children, _, ch, err = conn.ChildrenW(dir)
	}
	if errors.Is(err, zk.ErrNoNode) {
		// No instance yet: wait for the service's znode to appear.
		ok, _, ech, err := conn.ExistsW(dir)
		if err != nil {
			return errRetry
		}
		if ok {
			ech = closedEvent()
		}
		sc.dirWatch.Store(true)
		notify(ech, "")
		children = nil
	} else if err != nil {
		return errRetry
	} else if ch != nil {
		sc.dirWatch.Store(true)
		notify(ch, "")
	}
	next := make(map[string]ServiceInstance, len(children))
	for _, child := range children {
		sc.mu.Lock()
		inst, ok := sc.instances[child]
		current := ok && sc.dataWatch[child]
		sc.mu.Unlock()
		if current {
			next[child] = inst
			continue
		}
		data, _, dch, err := conn.GetW(join(dir, child))
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return errRetry
		}
		sc.mu.Lock()
		sc.dataWatch[child] = true
		sc.mu.Unlock()
		notify(dch, child)
		inst, err = decodeInstance(join(dir, child), data)
		if err != nil {
			sc.d.log.Warn("skip instance", "path", join(dir, child), "err", err)
			continue
		}
		next[child] = inst
	}
	sc.mu.Lock()
	sc.instances = next
	sc.loaded = true
	close(sc.changed)
	sc.changed = make(chan struct{})
	sc.mu.Unlock()
	return nil
}

// closedEvent is a watch channel that has fired already.
func closedEvent() <-chan zk.Event {
	ch := make(chan zk.Event)
	close(ch)
	return ch
}

// Strategy picks one instance from a non-empty list.
type Strategy interface {
	// Pick returns one of instances (never empty).
	Pick(instances []ServiceInstance) ServiceInstance
}

// RandomStrategy picks uniformly at random.
type RandomStrategy struct{}

// Pick implements Strategy.
func (RandomStrategy) Pick(instances []ServiceInstance) ServiceInstance {
	return instances[rand.IntN(len(instances))]
}

// RoundRobinStrategy picks the instances in turn (by id order). It is safe
// for concurrent use.
type RoundRobinStrategy struct{ next atomic.Uint64 }

// Pick implements Strategy.
func (r *RoundRobinStrategy) Pick(instances []ServiceInstance) ServiceInstance {
	return instances[(r.next.Add(1)-1)%uint64(len(instances))]
}

// Provider hands out one enabled instance of a service per call, from a
// ServiceCache, using a Strategy (curator-x-discovery's ServiceProvider).
type Provider struct {
	cache    *ServiceCache
	strategy Strategy
}

// NewProvider returns a Provider over cache; a nil strategy is round-robin.
func NewProvider(cache *ServiceCache, strategy Strategy) *Provider {
	if strategy == nil {
		strategy = &RoundRobinStrategy{}
	}
	return &Provider{cache: cache, strategy: strategy}
}

// Instance returns one enabled instance, or ErrNoInstances.
func (p *Provider) Instance() (ServiceInstance, error) {
	var enabled []ServiceInstance
	for _, inst := range p.cache.Instances() {
		if inst.Enabled {
			enabled = append(enabled, inst)
		}
	}
	if len(enabled) == 0 {
		return ServiceInstance{}, ErrNoInstances
	}
	return p.strategy.Pick(enabled), nil
}
