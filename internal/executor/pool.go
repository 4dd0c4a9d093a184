// The pool of ready job resources: a few networks and workspace volumes
// created ahead of the jobs that will take them, so a job's set-up does
// not wait for `docker network create` (the slowest of its calls after the
// container's start). Each pair is given to one job only, and removed with
// that job: nothing is shared between jobs or used twice.

package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// LabelPool marks a pooled network or volume, which no job's label names
// until a job takes it (labels cannot change): the sweep removes those the
// pool no longer knows of.
const LabelPool = "shithub-actions.pool"

// poolRetryDelay is how long the pool waits after the engine refused to
// make a pair before it tries again.
const poolRetryDelay = 5 * time.Second

// poolRemoveTimeout bounds the removal of a pair no job took, so that a
// hung engine cannot hold up a shutdown; what is left is removed at the
// next start (RemoveStale).
const poolRemoveTimeout = 10 * time.Second

// pooledPair is a network and a volume of the same name, made for one job.
type pooledPair struct {
	name    string
	gateway string // the network's gateway: the host as the job sees it
}

// resourcePool keeps up to size pairs ready. Its names are known (known)
// from the moment a pair is about to be made until the job that took it
// has removed it, or the pool itself has; the sweep leaves known names
// alone and removes other pooled resources of this instance.
type resourcePool struct {
	ex   *Executor
	size int
	kick chan struct{} // buffered: a job asked for a pair

	mu     sync.Mutex // guards ready, known, closed
	ready  []pooledPair
	known  map[string]bool
	closed bool

	failing bool // the last fill failed; only run touches it
}

func newResourcePool(ex *Executor, size int) *resourcePool {
	return &resourcePool{ex: ex, size: size, kick: make(chan struct{}, 1), known: map[string]bool{}}
}

// take hands a ready pair to a job, or reports there is none; it never
// waits for one to be made.
func (p *resourcePool) take() (pooledPair, bool) {
	if p == nil {
		return pooledPair{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ready) == 0 {
		p.poke()
		return pooledPair{}, false
	}
	pair := p.ready[0]
	p.ready = p.ready[1:]
	p.poke()
	return pair, true
}

// forget drops name once its job has removed it (or failed to: the sweep
// removes what is left).
func (p *resourcePool) forget(name string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	delete(p.known, name)
	p.mu.Unlock()
}

// isKnown reports whether the pool made name and it is ready or in a job.
func (p *resourcePool) isKnown(name string) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.known[name]
}

func (p *resourcePool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run keeps the pool full from the first job's claim until ctx is done
// (an executor that runs no job makes nothing), then removes the pairs no
// job took. A pair the engine refuses to make is tried again after
// poolRetryDelay; meanwhile jobs make their own.
func (p *resourcePool) run(ctx context.Context) {
	defer p.drain()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		for ctx.Err() == nil && p.missing() > 0 {
			err := p.fill(ctx)
			if err == nil {
				p.failing = false
				continue
			}
			if ctx.Err() == nil && !p.failing { // once an outage, not every retry
				p.ex.log.Warn("cannot make a network and volume ahead for the next jobs; they make their own", "err", err)
			}
			p.failing = true
			t := time.NewTimer(poolRetryDelay)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
	}
}

func (p *resourcePool) missing() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.size - len(p.ready)
}

// fill makes one pair, its network and volume at once.
func (p *resourcePool) fill(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			p.ex.log.Error("the pool panicked making a pair", "panic", r, "stack", string(debug.Stack()))
			err = errors.New("panic")
		}
	}()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := p.ex.namePrefix() + "pool-" + hex.EncodeToString(b)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.known[name] = true // before docker makes it: the sweep must not take it for an orphan
	p.mu.Unlock()
	labels := []string{"--label", LabelInstance + "=" + p.ex.cfg.Instance, "--label", LabelPool + "=1"}
	var gateway string
	errs := parallel(
		func() error {
			_, _, err := p.ex.docker.Output(ctx, append(append([]string{"network", "create"}, labels...), name)...)
			if err == nil {
				gateway, err = networkGateway(ctx, p.ex.docker, name)
			}
			return err
		},
		func() error {
			_, _, err := p.ex.docker.Output(ctx, append(append([]string{"volume", "create"}, labels...), name)...)
			return err
		},
	)
	if err := errors.Join(errs...); err != nil {
		p.remove(name)
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		go p.remove(name)
		return nil
	}
	p.ready = append(p.ready, pooledPair{name: name, gateway: gateway})
	return nil
}

// drain removes the pairs no job took; later pairs are removed as they
// are made.
func (p *resourcePool) drain() {
	p.mu.Lock()
	p.closed = true
	left := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, pair := range left {
		p.remove(pair.name)
	}
}

// remove removes a pair no job has used, by name; whatever is left (the
// engine was away) is the sweep's, or the next start's (RemoveStale).
func (p *resourcePool) remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), poolRemoveTimeout)
	defer cancel()
	p.ex.docker.Output(ctx, "network", "rm", name)
	p.ex.docker.Output(ctx, "volume", "rm", "-f", name)
	p.forget(name)
}

// networkGateway is the gateway of a network: the host as its containers
// see it.
func networkGateway(ctx context.Context, d DockerCLI, network string) (string, error) {
	gw, _, err := d.Output(ctx, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", network)
	gw, _, _ = strings.Cut(gw, " ")
	return gw, err
}

// firstError is the first of errs that is not nil.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// parallel runs fns at once and returns their errors, in fns' order, once
// all have returned. A panic in one is re-raised on the caller's
// goroutine, as if fns had run there.
func parallel(fns ...func() error) []error {
	errs := make([]error, len(fns))
	panics := make([]any, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			errs[i] = fn()
		}()
	}
	wg.Wait()
	for _, p := range panics {
		if p != nil {
			panic(p)
		}
	}
	return errs
}
