// The pool of ready job resources: a few networks and workspace volumes
// created ahead of the jobs that will take them, so a job's set-up does
// not wait for `docker network create`, and on each, once a job has shown
// which image and tool cache the next one is likely to want, that job's
// container already started (a warm container): a job that matches takes
// it and runs its first step as soon as its checkout is copied in. Each
// entry is given to one job only, and removed with that job: nothing is
// shared between jobs or used twice, and no job's code ever runs in a
// container before the job that took it.

package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
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

// poolMakeTimeout bounds the making of one entry. Its docker commands are
// not cut short when the pool stops: a docker run killed mid-way can leave
// a container the engine makes after the clean-up looked for it.
const poolMakeTimeout = 30 * time.Second

// poolWaitMax bounds how long a job waits in take for the entry being
// made for it: about what starting its own container takes on a busy
// machine. It is not a poll: the entry's completion ends the wait.
const poolWaitMax = 5 * time.Second

// poolRemoveTimeout bounds the removal of a pair no job took, so that a
// hung engine cannot hold up a shutdown; what is left is removed at the
// next start (RemoveStale).
const poolRemoveTimeout = 10 * time.Second

// pooledPair is a network and a volume of the same name, made for one job,
// and, when warm is not nil, a job container of that name on them.
type pooledPair struct {
	name    string
	gateway string         // the network's gateway: the host as the job sees it
	warm    *warmContainer // nil: the job makes its container
}

// warmKey is what a job container made ahead must match to serve a job:
// its image and the tool cache volume mounted in it. The rest of its
// command line is the executor's configuration (containerArgs), the same
// for every job that has no container settings of its own.
type warmKey struct {
	image     string // as the job names it (chooseImage)
	toolCache string // the repository's tool cache volume
}

// warmContainer is a job container the pool started ahead, idle (tail -f
// /dev/null) and with nothing of any job's in it.
type warmContainer struct {
	key     warmKey
	id      string // as docker run -d printed it
	imageID string // the image it runs, by ID: a job takes it only while its image name still means that
	shell   string // its default shell (lookupShell), looked up before any job's code ran in it
	privDir string // the 0700 host directory of its .curlrc, the job's once taken; "" when none
}

// resourcePool keeps up to size pairs ready. Its names are known (known)
// from the moment a pair is about to be made until the job that took it
// has removed it, or the pool itself has; the sweep leaves known names
// alone and removes other pooled resources of this instance.
type resourcePool struct {
	ex      *Executor
	size    int
	kick    chan struct{} // buffered: a job asked for a pair
	waitMax time.Duration // poolWaitMax; tests lengthen it

	mu       sync.Mutex // guards the fields below
	ready    []pooledPair
	known    map[string]bool
	want     *warmKey      // what the last job that could take a warm container asked for; nil: make pairs only
	filling  *warmKey      // what the entry being made is warm for; nil when none is, or it is a bare pair
	fillDone chan struct{} // closed when the entry being made is ready, or failed; nil when none is being made
	waiting  int           // jobs waiting in take for the entry being made
	closed   bool

	failing bool // the last fill failed; only run touches it
}

func newResourcePool(ex *Executor, size int) *resourcePool {
	return &resourcePool{ex: ex, size: size, kick: make(chan struct{}, 1), known: map[string]bool{}, waitMax: poolWaitMax}
}

// take hands a ready entry to a job, or reports there is none. key is
// what the job's container would be made of (nil when it has settings of
// its own, or must not share a tool cache volume): an entry warm for key
// goes first, else a bare pair. An entry warm for another key is no use
// to the job: it stays, and the pool makes its next ones for key. When
// the entry being made is warm for key, and no other job waits for it,
// take waits for it (at most poolWaitMax, or until ctx is done): it was
// begun before this job came, so it is ready sooner than a container the
// job would start now, which would also slow it down. take does not start
// making the next: the job asks for that (refill) once its first step is
// under way, so that the two do not compete for the engine while the job
// starts.
func (p *resourcePool) take(ctx context.Context, key *warmKey) (pooledPair, bool) {
	if p == nil {
		return pooledPair{}, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if key != nil {
		k := *key
		p.want = &k
	}
	takeFirst := func(match func(pooledPair) bool) (pooledPair, bool) {
		at := slices.IndexFunc(p.ready, match)
		if at < 0 {
			return pooledPair{}, false
		}
		pair := p.ready[at]
		p.ready = slices.Delete(p.ready, at, at+1)
		return pair, true
	}
	var waitUntil time.Time
	for {
		if key != nil {
			if pair, ok := takeFirst(func(pair pooledPair) bool { return pair.warm != nil && pair.warm.key == *key }); ok {
				return pair, true
			}
		}
		if key == nil || p.filling == nil || *p.filling != *key || p.waiting > 0 {
			break
		}
		if waitUntil.IsZero() {
			waitUntil = time.Now().Add(p.waitMax)
		}
		left := time.Until(waitUntil)
		if left <= 0 {
			break
		}
		done := p.fillDone
		p.waiting++
		p.mu.Unlock()
		t := time.NewTimer(left)
		select {
		case <-done:
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
		p.mu.Lock()
		p.waiting--
		if ctx.Err() != nil {
			break
		}
	}
	return takeFirst(func(pair pooledPair) bool { return pair.warm == nil })
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

// refill asks run to make what is missing.
func (p *resourcePool) refill() {
	if p != nil {
		p.poke()
	}
}

func (p *resourcePool) poke() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run keeps the pool full from the first job's first step until ctx is
// done (an executor that runs no job makes nothing), then removes the entries
// no job took. Entries warm for a key no longer wanted are removed and
// made again. An entry the engine refuses to make is tried again after
// poolRetryDelay; meanwhile jobs make their own.
func (p *resourcePool) run(ctx context.Context) {
	defer p.drain()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.kick:
		}
		for _, pair := range p.stale() {
			p.remove(pair)
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

// stale takes out of ready the entries warm for a key other than the
// wanted one, for run to remove.
func (p *resourcePool) stale() []pooledPair {
	p.mu.Lock()
	defer p.mu.Unlock()
	var gone []pooledPair
	p.ready = slices.DeleteFunc(p.ready, func(pair pooledPair) bool {
		if pair.warm != nil && (p.want == nil || pair.warm.key != *p.want) {
			gone = append(gone, pair)
			return true
		}
		return false
	})
	return gone
}

// fill makes one entry: its network and volume at once, and then, when a
// job has shown what it wants, its container.
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
	var want *warmKey
	if p.want != nil {
		k := *p.want
		want = &k
	}
	p.filling, p.fillDone = want, make(chan struct{})
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		close(p.fillDone)
		p.filling, p.fillDone = nil, nil
		p.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), poolMakeTimeout)
	defer cancel()
	labels := []string{"--label", LabelInstance + "=" + p.ex.cfg.Instance, "--label", LabelPool + "=1"}
	pair := pooledPair{name: name}
	errs := parallel(
		func() error {
			_, _, err := p.ex.docker.Output(ctx, append(append([]string{"network", "create"}, labels...), name)...)
			if err == nil {
				pair.gateway, err = networkGateway(ctx, p.ex.docker, name)
			}
			return err
		},
		func() error {
			_, _, err := p.ex.docker.Output(ctx, append(append([]string{"volume", "create"}, labels...), name)...)
			return err
		},
	)
	if err := errors.Join(errs...); err != nil {
		p.remove(pair)
		return err
	}
	if want != nil {
		warm, err := p.warm(ctx, name, labels, *want)
		if err != nil {
			// The pair is still good; the next job of that image makes its
			// own container, and its set-up log says why that fails, if it does.
			p.ex.log.Info("cannot start a job container ahead; the next job starts its own", "image", want.image, "err", err)
			p.mu.Lock()
			if p.want != nil && *p.want == *want {
				p.want = nil
			}
			p.mu.Unlock()
		}
		pair.warm = warm
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		go p.remove(pair)
		return nil
	}
	p.ready = append(p.ready, pair)
	return nil
}

// warm starts a job container for key on the pair name, from the same
// command line a job would use (containerArgs), but labelled as pooled,
// and looks up its image and shell. A failure removes what it made.
func (p *resourcePool) warm(ctx context.Context, name string, labels []string, key warmKey) (*warmContainer, error) {
	w := &warmContainer{key: key}
	if err := p.startWarm(ctx, w, name, labels); err != nil {
		p.removeWarm(w, name)
		return nil, err
	}
	return w, nil
}

// startWarm is warm's work, which fills in w as it goes.
func (p *resourcePool) startWarm(ctx context.Context, w *warmContainer, name string, labels []string) error {
	ex := p.ex
	// The repository's tool cache volume, as the job's set-up makes it:
	// labelled, so docker does not make it unlabelled for the container.
	if _, _, err := ex.docker.Output(ctx, "volume", "create", "--label", LabelToolCache+"="+ex.cfg.Instance, w.key.toolCache); err != nil {
		return err
	}
	var netDir string
	if resolve := localhostResolve(ex.cfg.AddHosts, ex.cfg.JobURL); len(resolve) > 0 {
		var err error
		if w.privDir, err = os.MkdirTemp(ex.cfg.WorkDir, name+"-files-"); err != nil {
			return err
		}
		if netDir, err = writeNetDir(w.privDir, resolve); err != nil {
			return err
		}
	}
	args := runDetached(ex.containerArgs(containerSpec{
		name: name, labels: labels, network: name, workspace: name,
		toolCache: w.key.toolCache, netDir: netDir, image: w.key.image,
	}))
	var err error
	if w.id, _, err = ex.docker.Output(ctx, args...); err != nil {
		return err
	}
	out, _, err := ex.docker.Output(ctx, "inspect", "-f", "{{.Image}}", name)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(out, "sha256:") {
		return fmt.Errorf("docker inspect: image %q is not an image ID", out)
	}
	w.imageID = out
	w.shell, err = ex.lookupShell(ctx, name, w.imageID)
	return err
}

// drain removes the entries no job took; later ones are removed as they
// are made.
func (p *resourcePool) drain() {
	p.mu.Lock()
	p.closed = true
	left := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, pair := range left {
		p.remove(pair)
	}
}

// remove removes an entry no job has used, container first; whatever is
// left (the engine was away) is the sweep's, or the next start's
// (RemoveStale).
func (p *resourcePool) remove(pair pooledPair) {
	if pair.warm != nil {
		p.removeWarm(pair.warm, pair.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), poolRemoveTimeout)
	defer cancel()
	p.ex.docker.Output(ctx, "network", "rm", pair.name)
	p.ex.docker.Output(ctx, "volume", "rm", "-f", pair.name)
	p.forget(pair.name)
}

// removeWarm removes a container started ahead, by names (its own, and
// the job's it may have been renamed to), and its .curlrc directory.
func (p *resourcePool) removeWarm(w *warmContainer, names ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), poolRemoveTimeout)
	defer cancel()
	p.ex.docker.Output(ctx, append([]string{"rm", "-f"}, names...)...)
	if w.privDir != "" {
		if err := os.RemoveAll(w.privDir); err != nil {
			p.ex.log.Warn("cannot remove a pooled container's directory", "err", err)
		}
	}
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
