package broker

import (
	"fmt"
	"sync"
)

// appRoutes maps /app/ destinations to their handlers.
type appRoutes struct {
	mu     sync.RWMutex
	routes map[string]*appRoute // guarded by mu
}

type appRoute struct {
	handle func(*Message) error
	policy *resolvedPolicy
}

// HandleApp registers h for the /app/ destination dest, replacing any
// earlier handler; a nil h removes it. dest is exact: there are no wildcards
// in app destinations. It panics if dest is not a valid /app/ destination,
// which is a programming error.
//
// Publish to dest calls h synchronously on the publisher's goroutine, with
// no broker lock held, after the ReadOnly check and after filling m.ID,
// m.Kind and m.Published; it returns h's error unchanged. h may be called
// concurrently by several publishers, may call any Broker method, and
// should not block for long: it holds up its publisher. m is shared with
// the caller of Publish and must not be modified. Safe for concurrent use;
// a Publish running while h is replaced may call either handler.
func (b *Broker) HandleApp(dest string, h func(m *Message) error) {
	kind, _, err := splitDestination(dest)
	if err == nil && kind != KindApp {
		err = fmt.Errorf("%w %q: want %s", ErrInvalidDestination, dest, appPrefix)
	}
	if err != nil {
		panic("broker: HandleApp: " + err.Error())
	}
	b.apps.mu.Lock()
	defer b.apps.mu.Unlock()
	if h == nil {
		delete(b.apps.routes, dest)
		return
	}
	if b.apps.routes == nil {
		b.apps.routes = make(map[string]*appRoute)
	}
	b.apps.routes[dest] = &appRoute{handle: h, policy: b.resolvePolicy(dest)}
}

func (b *Broker) publishApp(m *Message) error {
	b.apps.mu.RLock()
	r := b.apps.routes[m.Destination]
	b.apps.mu.RUnlock()
	if r == nil {
		return fmt.Errorf("%w %q: no handler registered", ErrUnknownDestination, m.Destination)
	}
	if err := r.policy.checkWritable(m); err != nil {
		return err
	}
	b.stamp(m)
	if err := r.handle(m); err != nil {
		return err
	}
	b.shardFor(m.Destination).counts.published[KindApp].Add(1)
	return nil
}
