package runtime

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sagedeploy/sagedeploy/localsm/serving"
)

// instance is one serving instance of a variant: one running server per container (several
// for an inference pipeline), invoked in order.
type instance struct {
	id      string
	variant *variant
	chain   []serving.Instance

	// In-flight accounting for draining: a request counts itself in, then checks closed; a
	// drainer sets closed, then waits for the count to reach zero. Both sides use sequentially
	// consistent atomics, so no request slips past a drain.
	inflight  atomic.Int64
	closed    atomic.Bool
	drainOnce sync.Once
	drained   chan struct{}
}

func newInstance(id string, v *variant, chain []serving.Instance) *instance {
	return &instance{id: id, variant: v, chain: chain, drained: make(chan struct{})}
}

func (i *instance) acquire() bool {
	i.inflight.Add(1)
	if i.closed.Load() {
		i.release()
		return false
	}
	return true
}

func (i *instance) release() {
	if i.inflight.Add(-1) == 0 && i.closed.Load() {
		i.drainOnce.Do(func() { close(i.drained) })
	}
}

// drain stops new requests from reaching the instance (it must already be out of the routing
// table) and waits for those in flight, or for ctx.
func (i *instance) drain(ctx context.Context) {
	i.closed.Store(true)
	if i.inflight.Load() == 0 {
		i.drainOnce.Do(func() { close(i.drained) })
	}
	select {
	case <-i.drained:
	case <-ctx.Done():
	}
}

func (i *instance) alive() bool {
	for _, c := range i.chain {
		if !c.Alive() {
			return false
		}
	}
	return true
}

func (i *instance) stop(ctx context.Context) {
	for _, c := range i.chain {
		c.Stop(ctx)
	}
}

// instSet is the instances of one variant of one fleet, as a routing table saw them.
type instSet struct {
	variant *variant
	insts   []*instance
	rr      atomic.Uint32
}

// next picks an instance round-robin, skipping instances whose server has died.
func (s *instSet) next() *instance {
	n := uint32(len(s.insts))
	if n == 1 {
		return s.insts[0]
	}
	start := s.rr.Add(1)
	for k := range n {
		if inst := s.insts[(start+k)%n]; inst.alive() {
			return inst
		}
	}
	return s.insts[start%n]
}

// picker chooses an instance set at random in proportion to weights.
type picker struct {
	cum  []float64
	sets []*instSet
}

func (p *picker) add(s *instSet, w float64) {
	if w <= 0 {
		return
	}
	total := w
	if n := len(p.cum); n > 0 {
		total += p.cum[n-1]
	}
	p.cum = append(p.cum, total)
	p.sets = append(p.sets, s)
}

func (p *picker) pick() *instSet {
	switch len(p.sets) {
	case 0:
		return nil
	case 1:
		return p.sets[0]
	}
	r := rand.Float64() * p.cum[len(p.cum)-1]
	for i, c := range p.cum {
		if r < c {
			return p.sets[i]
		}
	}
	return p.sets[len(p.sets)-1]
}

// table is an immutable routing table, replaced atomically on every change: traffic by
// variant weight across every fleet in it (two during a blue/green shift), and by variant name
// for X-Amzn-SageMaker-Target-Variant.
type table struct {
	all      picker
	byName   map[string]*picker
	variants []string // names, for error messages
}

// share is a fleet and the fraction of traffic it gets.
type share struct {
	f    *fleet
	frac float64
}

func buildTable(shares ...share) *table {
	t := &table{byName: map[string]*picker{}}
	for _, s := range shares {
		if s.f == nil || s.frac <= 0 {
			continue
		}
		total := 0.0
		for _, v := range s.f.variants {
			total += v.weight
		}
		for _, v := range s.f.variants {
			set := &instSet{variant: v, insts: slices.Clone(v.instances)}
			// A serverless variant scaled to zero keeps its share: its next request starts it.
			if len(set.insts) == 0 && v.spec.Serverless == nil {
				continue
			}
			w := s.frac / float64(len(s.f.variants)) // all weights zero: split evenly
			if total > 0 {
				w = s.frac * v.weight / total
			}
			t.all.add(set, w)
			p := t.byName[v.name]
			if p == nil {
				p = &picker{}
				t.byName[v.name] = p
				t.variants = append(t.variants, v.name)
			}
			p.add(set, s.frac)
		}
	}
	return t
}
