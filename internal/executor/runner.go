// The executor: claims jobs from a job source and runs them in Docker
// containers, one container per job and a docker exec per step, with
// cancel, timeouts, log streaming and drain.

package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/protocol"
)

// Labels of a job's container, network and volume; removeStale and the
// tests select them by these.
const (
	LabelInstance = "shithub-actions.instance"
	labelRun      = "shithub-actions.run"
	LabelJob      = "shithub-actions.job"
)

const (
	// stepLogChunk is the largest log chunk sent to the source.
	stepLogChunk = 64 << 10
	// stepLogFlushEvery bounds how long output waits before it is sent.
	stepLogFlushEvery = 250 * time.Millisecond
	// maxRetryDelay caps the backoff between retries of a source call.
	maxRetryDelay = 10 * time.Second
	// execKillDelay is how long after `docker stop -t GRACE` a docker exec
	// client that is still running gets killed: a backstop for an engine
	// that did not stop the container.
	execKillDelay = 10 * time.Second
	// drainReportGrace is how long drain lets cancelled jobs report before
	// it gives up on the source.
	drainReportGrace = 15 * time.Second
	// jobCleanupTimeout bounds docker rm and the like at the end of a job.
	jobCleanupTimeout = time.Minute
)

// executorConfig configures an executor; zero fields take the defaults of
// withDefaults.
type Config struct {
	Workers      int               // jobs run at once (default 2)
	Labels       []string          // runs-on labels this executor claims (default: the keys of Images)
	Images       map[string]string // runs-on label → image (default: defaultImages)
	Pull         string            // docker run --pull: "missing" (default) or "never"
	Memory       string            // docker run --memory (default "2g")
	CPUs         string            // docker run --cpus (default "1")
	PidsLimit    int               // docker run --pids-limit (default 1024)
	StopGrace    time.Duration     // docker stop -t, rounded up to seconds (default 10s)
	Instance     string            // labels and names this process's containers (default: random)
	Docker       string            // the docker binary (default "docker")
	DockerEnv    []string          // extra environment for every docker invocation
	AddHosts     []string          // docker run --add-host HOST:IP entries: how jobs reach the server (jobaddr.go)
	WorkDir      string            // where checkouts are staged, each in a fresh 0700 directory, before docker cp (default os.TempDir())
	AllowImages  []string          // globs a job's own container image must match (default: any); see imageAllowed
	CancelPoll   time.Duration     // how often a running job asks cancelRequested (default 500ms)
	PollInterval time.Duration     // how often an idle worker claims when not woken (default 2s)
	Ready        int               // networks and volumes made ahead for the next jobs, each for one job (pool.go; default 1, negative for none)

	// The actions runtime (actions.go).
	DataDir      string       // actions are fetched into DataDir/actions
	ActionsURL   string       // where OWNER/REPO actions come from (default https://github.com)
	AllowActions []string     // --allow-actions patterns; empty allows every action
	NodeDir      string       // a Node.js distribution mounted read-only into job containers; "" for none
	JobURL       string       // scheme://host[:port] job containers reach the server at; "" for none
	Actions      *actionStore // built from DataDir and ActionsURL when nil
}

// DefaultImages are the runs-on labels a runner takes without --image.
// The ubuntu ones are act's "medium" images (catthehacker/ubuntu:act-*),
// which act offers first and from whose recipe Gitea's runner-images are
// built: Ubuntu with git, curl, wget, jq, Node.js on the PATH, Python,
// build-essential and the docker CLI, made for running workflows. Plain
// ubuntu:24.04 has none of these, so a real workflow fails in its first
// step. The price is the pull (act puts it at about 500 MB); README's
// "Images" says how to map a smaller image.
func DefaultImages() map[string]string {
	return map[string]string{
		"ubuntu-latest": "catthehacker/ubuntu:act-latest",
		"ubuntu-24.04":  "catthehacker/ubuntu:act-24.04",
		"ubuntu-22.04":  "catthehacker/ubuntu:act-22.04",
		"debian-latest": "debian:bookworm",
	}
}

// withDefaults returns c with every unset field set to its default.
func (c Config) WithDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if len(c.Images) == 0 {
		c.Images = DefaultImages()
	}
	if len(c.Labels) == 0 {
		c.Labels = slices.Sorted(maps.Keys(c.Images))
	}
	if c.Pull == "" {
		c.Pull = "missing"
	}
	if c.Memory == "" {
		c.Memory = "2g"
	}
	if c.CPUs == "" {
		c.CPUs = "1"
	}
	if c.PidsLimit <= 0 {
		c.PidsLimit = 1024
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 10 * time.Second
	}
	if c.Instance == "" {
		c.Instance = randomInstance("local")
	}
	if c.Docker == "" {
		c.Docker = "docker"
	}
	if c.WorkDir == "" {
		c.WorkDir = os.TempDir()
	}
	if c.CancelPoll <= 0 {
		c.CancelPoll = 500 * time.Millisecond
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
	if c.Ready == 0 {
		// One: each idle network holds one of the engine's address pools
		// (31 by default), which every user of the engine shares.
		c.Ready = 1
	}
	return c
}

// randomInstance is prefix and 12 random hex digits: an instance id.
func randomInstance(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails on Linux; a zero id would still work
	return prefix + "-" + hex.EncodeToString(b)
}

// executor runs claimed jobs in docker containers, cfg.Workers at a time.
type Executor struct {
	cfg    Config
	src    JobSource
	log    *slog.Logger
	docker DockerCLI
	wakeCh chan struct{} // buffered: wake never blocks

	// jobTimeout is a job's whole time budget; a func so tests can use
	// milliseconds where a workflow can only say minutes.
	jobTimeout func(*protocol.Job) time.Duration
	// retryFor is how long a source call retries an error not marked
	// permanent before the executor gives up on it.
	retryFor time.Duration
	// cancelTimeout bounds the steps that run after a cancel or a timeout.
	cancelTimeout time.Duration
	// minute is a step's timeout-minutes unit; tests shorten it.
	minute time.Duration
	// actions fetches uses: actions (actions.go); nil when cfg has no DataDir.
	actions *actionStore
	// pool holds networks and volumes made ahead (pool.go); nil when
	// cfg.Ready is negative. Run keeps it full.
	pool *resourcePool
	// cache is what set-up need not ask the engine twice (setupcache.go).
	cache setupCache

	workers sync.WaitGroup

	mu         sync.Mutex // guards jobs, started, drainPhase, stopClaims
	jobs       map[int64]*execJob
	started    bool
	drainPhase int                // drainNone, drainStopClaims, drainCancel or drainGiveUp
	stopClaims context.CancelFunc // ends the workers' claim loop; set by run
}

// Config is the configuration the executor runs with, its defaults filled in.
func (ex *Executor) Config() Config { return ex.cfg }

// drain phases: each also implies the ones before it.
const (
	drainNone       = iota
	drainStopClaims // no new claims
	drainCancel     // running jobs are cancelled
	drainGiveUp     // source calls of running jobs give up
)

func New(cfg Config, src JobSource, logger *slog.Logger) *Executor {
	cfg = cfg.WithDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	actions := cfg.Actions
	if actions == nil && cfg.DataDir != "" {
		var err error
		if actions, err = NewActionStore(filepath.Join(cfg.DataDir, "actions"), cfg.ActionsURL); err != nil {
			logger.Warn("no actions: bad --actions-url", "err", err)
		}
	}
	ex := &Executor{
		actions:    actions,
		cfg:        cfg,
		src:        src,
		log:        logger.With("instance", cfg.Instance),
		docker:     DockerCLI{Bin: cfg.Docker, Env: cfg.DockerEnv},
		wakeCh:     make(chan struct{}, cfg.Workers),
		jobTimeout: protocol.DefaultJobTimeout,
		retryFor:   time.Minute,
		jobs:       map[int64]*execJob{},

		cancelTimeout: defaultCancelTimeout,
		minute:        time.Minute,
	}
	if cfg.Ready > 0 {
		ex.pool = newResourcePool(ex, cfg.Ready)
	}
	return ex
}

// run starts the workers and returns once they have all stopped: after ctx
// is done (or drain began) and their running jobs have ended. Cancelling ctx
// only stops claiming; call drain to bound how long running jobs may go on.
// run is meant to be called once.
func (ex *Executor) Run(ctx context.Context) {
	ex.mu.Lock()
	if ex.started || ex.drainPhase != drainNone {
		ex.mu.Unlock()
		return
	}
	ex.started = true
	claimCtx, stop := context.WithCancel(ctx)
	ex.stopClaims = stop
	// Added under mu, before drain can set drainPhase and Wait.
	ex.workers.Add(ex.cfg.Workers)
	ex.mu.Unlock()
	defer stop()
	poolDone := make(chan struct{})
	if ex.pool != nil {
		// Until claiming stops; the pairs no job took are removed then.
		go func() {
			defer close(poolDone)
			ex.pool.run(claimCtx)
		}()
	} else {
		close(poolDone)
	}
	for n := range ex.cfg.Workers {
		go ex.worker(claimCtx, n)
	}
	ex.workers.Wait()
	<-poolDone
}

// worker claims and runs jobs until ctx is done.
func (ex *Executor) worker(ctx context.Context, n int) {
	defer ex.workers.Done()
	log := ex.log.With("worker", n)
	for ctx.Err() == nil {
		if ex.claimAndRun(ctx, log) {
			continue
		}
		select {
		case <-ctx.Done():
		case <-ex.wakeCh:
		case <-time.After(ex.cfg.PollInterval):
		}
	}
}

// claimAndRun claims one job and runs it to its end, reporting whether there
// was one. It recovers any panic, so one bad job never ends a worker.
func (ex *Executor) claimAndRun(ctx context.Context, log *slog.Logger) (found bool) {
	var job *protocol.Job
	defer func() {
		if r := recover(); r != nil {
			log.Error("worker recovered from a panic", "panic", r, "stack", string(debug.Stack()))
			found = job != nil
		}
	}()
	claimStart := time.Now()
	job, err := ex.src.Claim(ctx, ex.cfg.Labels)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("claim failed", "err", err)
		}
		return false
	}
	if job == nil {
		return false
	}
	// More jobs may be queued behind this one: let another idle worker look.
	ex.Wake()
	ex.runClaimed(job, time.Since(claimStart))
	return true
}

// wake tells an idle worker to claim now; it never blocks.
func (ex *Executor) Wake() {
	select {
	case ex.wakeCh <- struct{}{}:
	default: // enough wake-ups are pending already
	}
}

// cancel cancels a job this executor is running; otherwise it does nothing.
func (ex *Executor) Cancel(jobID int64) {
	ex.mu.Lock()
	j := ex.jobs[jobID]
	ex.mu.Unlock()
	if j != nil {
		j.abort(protocol.ConclusionCancelled)
	}
}

// drain stops claiming, lets running jobs go on for up to grace, cancels
// those still running, and returns when every worker has stopped.
func (ex *Executor) Drain(grace time.Duration) {
	ex.setDrainPhase(drainStopClaims)
	done := make(chan struct{})
	go func() {
		ex.workers.Wait()
		close(done)
	}()
	if waitClosed(done, grace) {
		return
	}
	ex.log.Info("drain: cancelling the jobs still running", "grace", grace)
	ex.setDrainPhase(drainCancel)
	if waitClosed(done, ex.cfg.StopGrace+drainReportGrace) {
		return
	}
	ex.log.Warn("drain: giving up reporting the last jobs")
	ex.setDrainPhase(drainGiveUp)
	<-done
}

// setDrainPhase moves drain on and applies the phase to the running jobs;
// startJob applies it to jobs claimed later.
func (ex *Executor) setDrainPhase(phase int) {
	ex.mu.Lock()
	ex.drainPhase = max(ex.drainPhase, phase)
	if ex.stopClaims != nil {
		ex.stopClaims()
	}
	jobs := slices.Collect(maps.Values(ex.jobs))
	ex.mu.Unlock()
	for _, j := range jobs {
		j.applyDrain(phase)
	}
}

// waitClosed waits for ch to close, for at most d.
func waitClosed(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	}
}

// dockerOK checks that the docker engine answers.
func (ex *Executor) DockerOK(ctx context.Context) error {
	if _, _, err := ex.docker.Output(ctx, "version"); err != nil {
		return fmt.Errorf("docker engine unreachable: %w", err)
	}
	return nil
}

// removeStale removes the containers, networks, volumes and staged
// checkouts a previous process with this instance id left behind (it
// crashed, or was killed mid-job). Containers go first: a network or a
// volume in use cannot be removed.
func (ex *Executor) RemoveStale(ctx context.Context) error {
	filter := "label=" + LabelInstance + "=" + ex.cfg.Instance
	for _, kind := range []struct {
		what   string
		ls, rm []string
	}{
		{"containers", []string{"ps", "-a", "-q", "--filter", filter}, []string{"rm", "-f"}},
		{"networks", []string{"network", "ls", "-q", "--filter", filter}, []string{"network", "rm"}},
		{"volumes", []string{"volume", "ls", "-q", "--filter", filter}, []string{"volume", "rm", "-f"}},
	} {
		out, _, err := ex.docker.Output(ctx, kind.ls...)
		if err != nil {
			return fmt.Errorf("list stale %s: %w", kind.what, err)
		}
		if ids := strings.Fields(out); len(ids) > 0 {
			if _, _, err := ex.docker.Output(ctx, append(kind.rm, ids...)...); err != nil {
				return fmt.Errorf("remove stale %s: %w", kind.what, err)
			}
			ex.log.Info("removed stale "+kind.what, "count", len(ids))
		}
	}
	entries, err := os.ReadDir(ex.cfg.WorkDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list stale checkouts: %w", err)
	}
	prefix := ex.namePrefix()
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		id, _, _ := strings.Cut(rest, "-") // JOBID-RANDOM, from os.MkdirTemp, or pool-HEX-files-RANDOM (pool.go)
		if _, err := strconv.ParseUint(id, 10, 64); !ok || (err != nil && id != "pool") || !e.IsDir() {
			continue // another instance's, or not ours at all
		}
		if err := os.RemoveAll(filepath.Join(ex.cfg.WorkDir, e.Name())); err != nil {
			ex.log.Warn("cannot remove a stale checkout", "err", err)
		}
	}
	return nil
}

// namePrefix starts the names of this instance's containers, networks,
// volumes and staged checkouts, which go on with the job id.
func (ex *Executor) namePrefix() string {
	inst := []byte(ex.cfg.Instance)
	for i, c := range inst {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			inst[i] = '-' // docker container names allow only [a-zA-Z0-9_.-]
		}
	}
	return "shithub-actions-" + string(inst) + "-"
}

// call runs one source call, retrying errors not marked permanent with
// backoff until ctx is done or ex.retryFor has passed. Retried log chunks
// keep their seq, so a resend is a no-op on the server.
func (ex *Executor) call(ctx context.Context, what string, fn func(context.Context) error) error {
	err := retryWithBackoff(ctx, 100*time.Millisecond, maxRetryDelay, ex.retryFor,
		func(attempt int, err error) {
			ex.log.Warn("source call failed; retrying", "call", what, "attempt", attempt, "err", err)
		},
		func() error { return fn(ctx) })
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// retryWithBackoff calls fn until it succeeds, fails with a permanent error,
// ctx is done or budget (when not zero) has passed. The wait between
// attempts starts at delay and doubles up to maxDelay; onRetry hears of
// every failure that is retried.
func retryWithBackoff(ctx context.Context, delay, maxDelay, budget time.Duration,
	onRetry func(attempt int, err error), fn func() error) error {
	deadline := time.Now().Add(budget)
	var lastErr error
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			if lastErr == nil {
				return err
			}
			// The last real failure says more than ctx's error.
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
		}
		if isPermanent(err) || budget > 0 && time.Now().After(deadline) {
			return err
		}
		lastErr = err
		onRetry(attempt, err)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-t.C:
		}
		delay = min(2*delay, maxDelay)
	}
}

// execJob is one job being run: its contexts, its container, network and
// workspace volume, and how far its steps have got.
type execJob struct {
	ex   *Executor
	job  *protocol.Job
	log  *slog.Logger
	name string // of the container, of its network and of its workspace volume

	// reportCtx carries source calls. It outlives run's ctx, so a job
	// cancelled at shutdown still reports; drain ends it as a last resort.
	reportCtx context.Context
	giveUp    context.CancelFunc
	// ctx carries checkout, the container's creation and cancel polling;
	// abort ends it.
	ctx      context.Context
	stopWork context.CancelFunc
	// execCtx carries docker exec. Killing a docker exec client does not
	// stop the process in the container, so cancelling is done by stopping
	// the container; execCtx ends only as a backstop.
	execCtx  context.Context
	killExec context.CancelFunc

	timer *time.Timer // the job's timeout
	clock *startClock // times the job's start (startclock.go)

	// Only the job's goroutine touches these.
	stage      string         // the checkout on the host, in a 0700 directory, until docker cp has copied it
	res        string         // the name of the job's network and volume: its own name, or a pooled pair's
	pooled     bool           // res is a pair the pool made ahead (pool.go)
	warm       *warmContainer // the job's container is one the pool started ahead (nil: the job made its own)
	refillOnce sync.Once      // the pool is asked for the next job's resources once (refill)
	loaderGone chan struct{}  // closed once loadCheckout's container is removed; nil when none was tried
	network    string         // the job's own network ("" until created): services and the job container share it
	gateway    string         // the job network's gateway: the host as the job sees it
	next       int            // index of the first step not yet completed
	inProgress bool           // Steps[next] has been set running
	st         jobState       // what the steps share (stepexec.go)
	services   []string       // service containers started (or attempted)
	// What set-up attempted, so cleanUp removes it by name even when the
	// docker command that made it was killed mid-way.
	volumeAttempted, networkAttempted, createAttempted bool
	toolCacheAttempted                                 bool            // an untrusted job's own tool cache volume
	posts                                              []postStep      // actions' post scripts, in the order registered (actions.go)
	copied                                             map[string]bool // action directories copied into the container
	filesSeq                                           int64           // numbers the file directories of composite steps and docker action runs
	tokenMasked                                        bool            // the runtime token is in the masks
	builtImages                                        map[string]bool // action images the job built for itself, removed at its end
	privDir                                            string          // the job's 0700 directory of Docker actions' file commands ("" until one runs)
	node                                               *jobNode        // the Node.js JavaScript actions run with, once found (actionnode.go)

	mu      sync.Mutex // guards the fields below, and is stopCond's lock
	reason  string     // why the job is aborted: "", conclusionCancelled or conclusionTimedOut
	started bool       // the container is up, so aborting stops it
	ending  bool       // the steps are over; aborting no longer changes anything
	// A cancel stops the container (the only sure way to end every process
	// of a step at once); a step that runs after it starts it again.
	stopping     int        // docker stops in flight
	stopped      bool       // the container was stopped and not started again
	stopGen      int        // counts stops, so a restart knows it was not overtaken
	stopCond     *sync.Cond // signalled when stopping drops
	forced       bool       // the time for steps after a cancel is up: no more steps
	forceTimer   *time.Timer
	keepOnCancel bool               // the running step's if still holds after a cancel (always())
	stepKill     context.CancelFunc // kills the running step's docker exec client
	stepTimedOut bool               // the running step's timeout-minutes passed
	stepGen      int                // counts steps run, for the step timer
}

// runJob runs one claimed job to its end, whatever happens: the job always
// gets a terminal status, its container is removed and its workspace
// deleted. A panic is logged and completes the job as failure.
func (ex *Executor) runJob(job *protocol.Job) { ex.runClaimed(job, 0) }

// runClaimed is runJob of a job whose claim took claimTook.
func (ex *Executor) runClaimed(job *protocol.Job, claimTook time.Duration) {
	j := ex.startJob(job)
	j.clock = newStartClock(claimTook)
	defer ex.endJob(j)
	defer func() {
		if r := recover(); r != nil {
			j.log.Error("job panicked; completing it as failure", "panic", r, "stack", string(debug.Stack()))
			if j.next < len(j.job.Steps) {
				first := protocol.ConclusionSkipped
				if j.inProgress {
					first = protocol.ConclusionFailure
				}
				j.endStep(j.next, first)
				j.completeRest(j.next, protocol.ConclusionSkipped)
			}
			j.finish(protocol.ConclusionFailure)
		}
	}()
	j.finish(j.execute())
}

// startJob registers the job so cancel and drain find it, and starts its
// timeout and its cancel polling.
func (ex *Executor) startJob(job *protocol.Job) *execJob {
	j := &execJob{
		ex:   ex,
		job:  job,
		log:  ex.log.With("job", job.JobID, "run", job.RunID),
		name: ex.namePrefix() + strconv.FormatInt(job.JobID, 10),
	}
	j.reportCtx, j.giveUp = context.WithCancel(context.Background())
	j.ctx, j.stopWork = context.WithCancel(j.reportCtx)
	j.execCtx, j.killExec = context.WithCancel(context.Background())
	j.stopCond = sync.NewCond(&j.mu)
	j.initState()
	j.log.Info("job claimed", "repo", job.Repo, "sha", job.HeadSHA, "job_name", job.JobName)

	ex.mu.Lock()
	ex.jobs[job.JobID] = j
	phase := ex.drainPhase
	ex.mu.Unlock()
	j.applyDrain(phase) // claimed while drain was going on

	j.timer = time.AfterFunc(ex.jobTimeout(job), func() { j.abort(protocol.ConclusionTimedOut) })
	go j.pollCancel()
	return j
}

func (ex *Executor) endJob(j *execJob) {
	j.timer.Stop()
	j.mu.Lock()
	if j.forceTimer != nil {
		j.forceTimer.Stop()
	}
	j.mu.Unlock()
	j.stopWork()
	j.killExec()
	j.giveUp()
	ex.mu.Lock()
	delete(ex.jobs, j.job.JobID)
	ex.mu.Unlock()
}

func (j *execJob) applyDrain(phase int) {
	if phase >= drainCancel {
		j.abort(protocol.ConclusionCancelled)
	}
	if phase >= drainGiveUp {
		j.giveUp()
	}
}

// pollCancel asks the source every CancelPoll whether the job was cancelled,
// until the job is aborted or over.
func (j *execJob) pollCancel() {
	defer func() {
		if r := recover(); r != nil {
			j.log.Error("cancel polling panicked; it stops", "panic", r, "stack", string(debug.Stack()))
		}
	}()
	t := time.NewTicker(j.ex.cfg.CancelPoll)
	defer t.Stop()
	for {
		select {
		case <-j.ctx.Done():
			return
		case <-t.C:
		}
		yes, err := j.ex.src.CancelRequested(j.ctx, j.job.JobID)
		switch {
		case err != nil && j.ctx.Err() == nil && apperr.Permanent(apperr.CodeOf(err)):
			// The server says this runner does not hold the job any more.
			j.log.Warn("cancel check refused; stopping the job", "err", err)
			j.abort(protocol.ConclusionCancelled)
			return
		case err != nil:
			if j.ctx.Err() == nil {
				j.log.Warn("cancel check failed", "err", err)
			}
		case yes:
			j.abort(protocol.ConclusionCancelled)
			return
		}
	}
}

// abort stops the job for reason (conclusionCancelled or
// conclusionTimedOut): the first reason wins. It stops the container at
// once, so the running step ends without waiting for a poll, unless that
// step's condition still holds after a cancel (if: always()), which GitHub
// lets finish. The steps that run after an abort get cancelTimeout in all.
func (j *execJob) abort(reason string) {
	j.mu.Lock()
	if j.reason != "" || j.ending {
		j.mu.Unlock()
		return
	}
	j.reason = reason
	keep := j.keepOnCancel
	j.forceTimer = time.AfterFunc(j.ex.cancelTimeout, j.force)
	j.mu.Unlock()

	j.log.Info("aborting the job", "reason", reason)
	j.stopWork()
	if !keep {
		j.stopContainerAsync()
	}
}

func (j *execJob) abortReason() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.reason
}

// force ends the steps after an abort: their time is up.
func (j *execJob) force() {
	j.mu.Lock()
	if j.ending {
		j.mu.Unlock()
		return
	}
	j.forced = true
	j.mu.Unlock()
	j.log.Info("the steps after the abort ran out of time")
	j.stopContainerAsync()
}

func (j *execJob) isForced() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.forced
}

// stopContainerAsync stops the job container in the background, which
// ends the running step's processes, and arms the backstop that kills the
// step's docker exec client should the engine not stop it.
func (j *execJob) stopContainerAsync() {
	j.mu.Lock()
	if !j.started || j.ending {
		j.mu.Unlock()
		return
	}
	j.stopping++
	j.stopped = true
	j.stopGen++
	kill := j.stepKill
	j.mu.Unlock()
	if kill != nil {
		time.AfterFunc(j.ex.cfg.StopGrace+execKillDelay, kill)
	}
	go func() {
		defer func() {
			j.mu.Lock()
			j.stopping--
			j.stopCond.Broadcast()
			j.mu.Unlock()
		}()
		j.stopContainer()
	}()
}

// waitStopsLocked waits for the docker stops in flight; j.mu is held.
func (j *execJob) waitStopsLocked() {
	for j.stopping > 0 {
		j.stopCond.Wait()
	}
}

// ensureRunning starts the job container again if a cancel or a step
// timeout stopped it, before a step that still runs.
func (j *execJob) ensureRunning() error {
	j.mu.Lock()
	j.waitStopsLocked()
	need, forced, gen := j.stopped, j.forced, j.stopGen
	j.mu.Unlock()
	if forced {
		return errors.New("the job was cancelled and the time for its remaining steps is up")
	}
	if !need {
		return nil
	}
	ctx, cancel := context.WithTimeout(j.reportCtx, jobCleanupTimeout)
	defer cancel()
	if _, _, err := j.ex.docker.Output(ctx, "start", j.name); err != nil {
		return fmt.Errorf("start the job container again: %w", err)
	}
	j.mu.Lock()
	if j.stopGen == gen {
		j.stopped = false
	}
	j.mu.Unlock()
	return nil
}

// stopContainer runs docker stop.
func (j *execJob) stopContainer() {
	grace := j.ex.cfg.StopGrace
	ctx, cancel := context.WithTimeout(context.Background(), grace+jobCleanupTimeout)
	defer cancel()
	secs := strconv.Itoa(int((grace + time.Second - 1) / time.Second))
	if _, _, err := j.ex.docker.Output(ctx, "stop", "-t", secs, j.name); err != nil {
		j.log.Warn("cannot stop the job container", "err", err)
	}
}

// execute runs the set-up and the steps and returns the job's conclusion.
func (j *execJob) execute() string {
	steps := j.job.Steps
	first := 0
	if len(steps) > 0 && steps[0].Kind == "setup" {
		first = 1
		j.beginStep(0)
	}
	lines, err := j.setUp()
	j.clock.mark("at_setup_done")
	if err != nil {
		j.refill()
		reason := j.abortReason()
		j.log.Warn("job set-up failed", "err", err, "abort", reason)
		if first == 1 {
			text, c := setupFailureText(err), protocol.ConclusionFailure
			if reason != "" {
				text, c = abortText(reason), protocol.ConclusionCancelled
			}
			j.writeLog(steps[0].ID, text)
			j.endStep(0, c)
		}
		if reason != "" {
			return j.abortRest(first, reason)
		}
		j.completeRest(first, protocol.ConclusionSkipped)
		return protocol.ConclusionFailure
	}
	if first == 1 {
		j.writeLog(steps[0].ID, strings.Join(lines, "\n"))
		j.endStep(0, protocol.ConclusionSuccess)
	}
	return j.runSteps(first)
}

// abortRest completes the steps from index from after an abort and returns
// the job's conclusion: a cancelled job's steps are cancelled, a timed-out
// job's skipped.
func (j *execJob) abortRest(from int, reason string) string {
	rest := protocol.ConclusionCancelled
	if reason == protocol.ConclusionTimedOut {
		rest = protocol.ConclusionSkipped
	}
	j.completeRest(from, rest)
	return reason
}

func abortText(reason string) string {
	if reason == protocol.ConclusionTimedOut {
		return "Error: The job has exceeded its maximum execution time."
	}
	return "The job was cancelled."
}

// setupError is a set-up failure: what failed, and why.
type setupError struct {
	what string
	err  error
}

func (e *setupError) Error() string { return e.what + ": " + e.err.Error() }
func (e *setupError) Unwrap() error { return e.err }

// setupFailureText is the Set up job log of a failure: docker's own message
// first, as docker printed it, then what the executor was doing.
func setupFailureText(err error) string {
	var se *setupError
	if !errors.As(err, &se) {
		return "Error: " + err.Error()
	}
	var de *dockerError
	if errors.As(se.err, &de) && de.stderr != "" {
		return fmt.Sprintf("%s\nError: %s (docker %s: %v).", de.stderr, se.what, de.cmd, de.err)
	}
	return fmt.Sprintf("Error: %s: %v.", se.what, se.err)
}

// setUp prepares the job's volume, network and container and copies the
// checkout in, and returns the lines for the Set up job log. The checkout is
// made on the host in a fresh 0700 directory and copied into the job's own
// volume with docker cp, so nothing the job writes ever lands in a place
// other local users of the host can reach. What does not depend on each
// other runs at once: the checkout beside the network, volume and tool
// cache (a network and volume made ahead by the pool when one is ready),
// and the copy beside the lookup of the container's shell.
func (j *execJob) setUp() (lines []string, err error) {
	ex := j.ex
	image, why, err := j.chooseImage()
	if err != nil {
		return nil, &setupError{"choose the job's image", err}
	}

	// The checkout runs beside everything up to the copy, the only part
	// that needs it; j.stage is the job goroutine's again once it is done.
	var checkoutErr error // set before checkedOut is closed
	checkedOut := make(chan struct{})
	go func() {
		defer close(checkedOut)
		defer func() {
			if r := recover(); r != nil {
				j.log.Error("checkout panicked", "panic", r, "stack", string(debug.Stack()))
				checkoutErr = &setupError{"check out " + j.job.Repo, fmt.Errorf("panic: %v", r)}
			}
		}()
		t := time.Now()
		defer j.clock.since("checkout", t)
		err := ex.call(j.ctx, "checkout", func(ctx context.Context) error {
			if err := j.newStage(); err != nil { // afresh for every attempt
				return MarkPermanent(err)
			}
			return ex.src.Checkout(ctx, j.job, j.stage, DefaultCheckout)
		})
		if err != nil {
			checkoutErr = &setupError{"check out " + j.job.Repo, err}
		}
	}()
	waitCheckout := func() error {
		<-checkedOut
		return checkoutErr
	}
	defer waitCheckout()
	// A failed checkout is what a failed set-up reports first: what failed
	// beside it may only have been cut short by it.
	fail := func(err error) ([]string, error) {
		if cerr := waitCheckout(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}

	// The job's own container settings decide, before the pool is asked,
	// whether a container made ahead can be the job's; their error is
	// reported where it always was, after the services.
	extra, extraErr := j.containerExtraArgs()
	errs := parallel(
		func() error { return j.makeNetworkAndVolume(j.warmKey(image, extra, extraErr)) },
		func() error {
			t := time.Now()
			defer j.clock.since("toolcache", t)
			if err := j.ensureToolCache(); err != nil {
				return &setupError{"create the job's tool cache volume", err}
			}
			return nil
		},
	)
	if err := firstError(errs); err != nil {
		return fail(err)
	}
	lines = append(lines, fmt.Sprintf("Checked out %s at %s", j.job.Repo, j.job.HeadSHA))
	lines = append(lines, fmt.Sprintf("Workspace: volume %s, mounted at %s", j.res, protocol.Workspace))
	lines = append(lines, fmt.Sprintf("Network: %s (gateway %s)", j.network, j.gateway))
	lines = append(lines, fmt.Sprintf("Image: %s (%s)", image, why))

	svcLines, err := j.startServices()
	lines = append(lines, svcLines...)
	if err != nil {
		if cerr := waitCheckout(); cerr != nil {
			return nil, cerr
		}
		return lines, err
	}
	if extraErr != nil {
		if cerr := waitCheckout(); cerr != nil {
			return nil, cerr
		}
		return lines, &setupError{"prepare the job container", extraErr}
	}
	var id, warnings string
	loaded := false
	if j.warm != nil {
		id = j.warm.id
	} else {
		// docker run -d: the container is made and started in one call,
		// while the checkout goes into the volume through a container that
		// is never started (loadCheckout).
		t := time.Now()
		j.clock.mark("at_docker_run")
		j.createAttempted = true
		errs = parallel(func() (err error) {
			id, warnings, err = ex.docker.Output(j.ctx, runDetached(j.createArgs(image, extra))...)
			if err != nil {
				return &setupError{"create the job container from image " + image, err}
			}
			j.clock.since("docker_run", t)
			return nil
		}, func() error {
			loaded = j.loadCheckout(image, waitCheckout)
			return nil
		})
		if err := firstError(errs); err != nil {
			return fail(err)
		}
	}
	if warnings != "" {
		lines = append(lines, warnings)
	}
	j.mu.Lock()
	j.started = true
	aborted := j.reason != ""
	j.mu.Unlock()
	if aborted {
		return fail(&setupError{"start the job container", context.Canceled})
	}
	if err := j.seedToolCache(image); err != nil {
		return fail(&setupError{"copy the repository's tool cache for this pull request's job", err})
	}
	if j.job.Untrusted {
		lines = append(lines, fmt.Sprintf("Tool cache: a copy of this repository's, for this job only (volume %s)", j.toolCacheVolume()))
	} else {
		lines = append(lines, fmt.Sprintf("Tool cache: this repository's (volume %s)", j.toolCacheVolume()))
	}
	// Without the loader, docker cp writes into the volume through the job's
	// container (the engine, as root) beside the shell's lookup: none of
	// the job's own code runs before the first step, which waits for both.
	var shell string
	errs = parallel(func() error {
		if err := waitCheckout(); err != nil || loaded {
			return err
		}
		t := time.Now()
		defer j.clock.since("copy", t)
		if _, _, err := ex.docker.Output(j.ctx, "cp", j.stage+"/.", j.name+":"+protocol.Workspace); err != nil {
			return &setupError{"copy the checkout into the workspace volume", err}
		}
		return nil
	}, func() (err error) {
		if j.warm != nil {
			shell = j.warm.shell // looked up when the pool made it
			return nil
		}
		if err := waitCheckout(); err != nil {
			return nil // reported by the copy; nothing runs in the container
		}
		t := time.Now()
		defer j.clock.since("shell", t)
		shell, err = j.defaultShell(len(extra) == 0)
		return err
	})
	if err := firstError(errs); err != nil {
		return nil, err
	}
	j.removeStage()
	if j.warm != nil {
		lines = append(lines, fmt.Sprintf("Container: %s (%.12s), started ahead for this image and tool cache", j.name, id))
	} else {
		lines = append(lines, fmt.Sprintf("Container: %s (%.12s)", j.name, id))
	}
	j.st.defaultShell, _, _ = strings.Cut(shell, "\n")
	if j.st.defaultShell == "" {
		j.st.defaultShell = "sh"
	}
	def, _ := resolveShell("", j.st.defaultShell, j.st.jobContainer, "{0}")
	lines = append(lines, "Shell: "+strings.Join(def.argv, " "))
	if jc, ok := j.st.contexts["job"].(map[string]any); ok {
		jc["container"] = map[string]any{"id": strings.TrimSpace(id), "network": j.network}
	}
	return lines, nil
}

// loadCheckout copies the checkout into the job's volume through a
// container made for that alone, while the job's container starts: created
// from the job's image (--pull=never: it is not pulled twice), on no
// network, with only the volume mounted, and never started, as seedToolCache
// does; docker cp writes through the engine, as root. It reports whether
// the checkout is in; when not (the image is still being pulled, the
// checkout failed), setUp copies into the job's container instead. The
// loader is removed in the background; removeRest waits for that.
func (j *execJob) loadCheckout(image string, waitCheckout func() error) bool {
	name := j.name + "-checkout"
	args := append(append([]string{"create", "--name", name}, j.labelArgs()...),
		"--network", "none", "--pull=never", "-v", j.res+":"+protocol.Workspace, "--entrypoint", "true", "--", image)
	t := time.Now()
	_, _, err := j.ex.docker.Output(j.ctx, args...)
	defer func() {
		gone := make(chan struct{})
		j.loaderGone = gone
		go func() {
			defer close(gone)
			ctx, cancel := context.WithTimeout(context.Background(), jobCleanupTimeout)
			defer cancel()
			j.remove(ctx, err == nil, "checkout loader container", "rm", "-f", name)
		}()
	}()
	if err != nil {
		return false
	}
	if waitCheckout() != nil {
		return false
	}
	if _, _, err := j.ex.docker.Output(j.ctx, "cp", j.stage+"/.", name+":"+protocol.Workspace); err != nil {
		j.log.Warn("cannot copy the checkout in through a loader; copying into the job container", "err", err)
		return false
	}
	j.clock.since("load_checkout", t)
	return true
}

// runDetached turns createArgs' `docker create ...` into `docker run -d
// ...`, the same container made and started by one call.
func runDetached(create []string) []string {
	return append([]string{"run", "-d"}, create[1:]...)
}

// makeNetworkAndVolume gives the job its own network and workspace volume:
// a pair the pool made ahead when one is ready (with the job's container
// already started on it when one was made for key), else both made now, at
// once, named and labelled as its container is. Either way the pair is
// this job's alone and goes with it (removeRest).
func (j *execJob) makeNetworkAndVolume(key *warmKey) error {
	t := time.Now()
	if pair, ok := j.ex.pool.take(j.ctx, key); ok {
		j.res, j.pooled = pair.name, true
		j.volumeAttempted, j.networkAttempted = true, true
		j.network, j.gateway = pair.name, pair.gateway
		j.clock.since("pool_take", t)
		if pair.warm != nil {
			t := time.Now()
			j.adoptWarm(pair)
			j.clock.since("warm_adopt", t)
		}
		return nil
	}
	j.res = j.name
	j.volumeAttempted, j.networkAttempted = true, true
	errs := parallel(
		func() error {
			if _, _, err := j.ex.docker.Output(j.ctx, j.resourceArgs("volume", "create")...); err != nil {
				return &setupError{"create the job's workspace volume", err}
			}
			return nil
		},
		func() error {
			if _, _, err := j.ex.docker.Output(j.ctx, j.resourceArgs("network", "create")...); err != nil {
				return &setupError{"create the job's network", err}
			}
			j.network = j.res
			gw, err := networkGateway(j.ctx, j.ex.docker, j.network)
			if err != nil {
				return &setupError{"inspect the job's network", err}
			}
			j.gateway = gw
			return nil
		},
	)
	j.clock.since("network_volume", t)
	return firstError(errs)
}

// warmKey is what a container made ahead must match to serve this job, or
// nil when none may: the job's container has settings of its own (extra,
// or an error in them), or it is a pull request's job, whose tool cache is
// a copy made at its start (seedToolCache).
func (j *execJob) warmKey(image string, extra []string, extraErr error) *warmKey {
	if j.ex.pool == nil || j.job.Untrusted || len(extra) > 0 || extraErr != nil {
		return nil
	}
	return &warmKey{image: image, toolCache: j.toolCacheVolume()}
}

// adoptWarm makes the container the pool started on pair the job's: it is
// renamed to the job's name, so everything after addresses it as a
// container the job made, while the engine is asked whether it still runs
// and whether its image name still means the image it runs (a pull or a
// tag since may have moved it). When it cannot serve it is removed, and
// the job makes its own on the pair.
func (j *execJob) adoptWarm(pair pooledPair) {
	w, d := pair.warm, j.ex.docker
	var imageID, running string
	j.createAttempted = true // from here the job's clean-up removes it by the job's name
	errs := parallel(func() (err error) {
		imageID, _, err = d.Output(j.ctx, "image", "inspect", "-f", "{{.Id}}", w.key.image)
		return err
	}, func() (err error) {
		running, _, err = d.Output(j.ctx, "container", "inspect", "-f", "{{.State.Running}}", w.id)
		return err
	}, func() error {
		_, _, err := d.Output(j.ctx, "rename", pair.name, j.name)
		return err
	})
	why := ""
	switch err := errors.Join(errs...); {
	case err != nil:
		why = err.Error()
	case imageID != w.imageID:
		why = "its image name now means another image"
	case running != "true":
		why = "it is not running"
	}
	if why != "" {
		j.log.Info("the container started ahead cannot serve this job; it starts its own", "why", why)
		// By both names: the rename may or may not have happened.
		j.ex.pool.removeWarm(w, pair.name, j.name)
		return
	}
	j.warm = w
	j.privDir = w.privDir // its .curlrc: the job's now, and goes with it
	j.mu.Lock()
	j.started = true // a cancel stops it
	j.mu.Unlock()
}

// newStage makes j.stage a new empty directory for the checkout, removing
// the one of a failed attempt. os.MkdirTemp makes it 0700 under a name no
// one can guess beforehand, even in a shared WorkDir such as /tmp.
func (j *execJob) newStage() error {
	j.removeStage()
	dir, err := os.MkdirTemp(j.ex.cfg.WorkDir, j.name+"-")
	if err != nil {
		return err
	}
	j.stage = dir
	return nil
}

// removeStage deletes the checkout on the host. Only the executor's own git
// wrote there, so this never runs anything of the job's.
func (j *execJob) removeStage() {
	if j.stage == "" {
		return
	}
	if err := os.RemoveAll(j.stage); err != nil {
		j.log.Warn("cannot remove the staged checkout", "err", err)
	}
	j.stage = ""
}

// chooseImage picks the job's image: its own container image, else the image
// of the first runs-on label this executor maps.
func (j *execJob) chooseImage() (image, why string, err error) {
	own := j.job.Image
	if c := j.job.Container; c != nil && c.Image != "" {
		own = c.Image
	}
	if own != "" {
		if err := j.checkImage("the job's container image", own); err != nil {
			return "", "", err
		}
		return own, "the job's container image", nil
	}
	for _, label := range j.job.RunsOn {
		if image, ok := j.ex.cfg.Images[label]; ok {
			return image, "runs-on " + label, nil
		}
	}
	return "", "", fmt.Errorf("no image for runs-on %q: this executor maps %s",
		j.job.RunsOn, strings.Join(slices.Sorted(maps.Keys(j.ex.cfg.Images)), ", "))
}

func (j *execJob) beginStep(i int) {
	j.report("set step running", func(ctx context.Context) error {
		return j.ex.src.SetStepStatus(ctx, j.job.JobID, j.job.Steps[i].ID, "running", "")
	})
	j.inProgress = true
}

func (j *execJob) endStep(i int, conclusion string) {
	j.report("complete step", func(ctx context.Context) error {
		return j.ex.src.SetStepStatus(ctx, j.job.JobID, j.job.Steps[i].ID, "completed", conclusion)
	})
	j.next, j.inProgress = i+1, false
	if !j.isSetupStep(j.job.Steps[i].ID) {
		j.refill()
	}
}

// refill asks the pool to make the next job's resources ahead, once the
// job's first step has shown output or ended (or its set-up failed): then,
// not while the job starts, whose docker calls the pool's would slow.
func (j *execJob) refill() {
	j.refillOnce.Do(j.ex.pool.refill)
}

// completeRest completes the steps from index from, which never ran.
func (j *execJob) completeRest(from int, conclusion string) {
	for i := from; i < len(j.job.Steps); i++ {
		j.endStep(i, conclusion)
	}
}

// report makes a source call for the job, logging a failure: the job goes on
// whether or not the server heard.
func (j *execJob) report(what string, fn func(context.Context) error) {
	if err := j.ex.call(j.reportCtx, what, fn); err != nil {
		j.log.Warn("source call failed", "err", err)
	}
}

// writeLog writes text as a step's whole log.
func (j *execJob) writeLog(stepID int64, text string) {
	l := j.newStepLog(stepID)
	l.linef("%s", j.st.masks.Mask(text))
	l.close()
}

// finish cleans up after the steps and completes the job.
func (j *execJob) finish(conclusion string) {
	j.refill() // a job with no step, or cancelled before one ran
	// The job's outputs, while its container can still answer hashFiles.
	outputs, envURL := j.jobOutputs(), j.environmentURL()
	j.mu.Lock()
	j.ending = true
	j.waitStopsLocked() // docker stop before docker rm
	started := j.started
	j.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), jobCleanupTimeout)
	defer cancel()
	j.removeContainers(ctx, started)
	j.report("complete job", func(ctx context.Context) error {
		return j.ex.src.SetJobStatus(ctx, j.job.JobID, "completed", conclusion, outputs, envURL)
	})
	j.removeRest(ctx, started)
	j.log.Info("job completed", "conclusion", conclusion)
}

// removeContainers removes the job's container and its services, by
// name. It runs nothing inside the container: the job's own binaries
// (chown, rm) could be anything. A warning is logged only for what surely
// existed; the rest may never have been made.
func (j *execJob) removeContainers(ctx context.Context, started bool) {
	if j.createAttempted {
		// -v: the container's anonymous volumes (container: volumes) too;
		// the job's named volume goes in removeRest.
		j.remove(ctx, started, "container", "rm", "-f", "-v", j.name)
	}
	if len(j.services) > 0 { // before the network they are attached to
		j.remove(ctx, true, "service containers", append([]string{"rm", "-f", "-v"}, j.services...)...)
	}
}

// removeRest removes what outlives the containers: the job's network and
// volume, and the staged checkout. It runs after the job's status is
// reported, so a cancel is not kept waiting on it; a crash in between
// leaves them to removeStale.
func (j *execJob) removeRest(ctx context.Context, started bool) {
	if j.loaderGone != nil { // it holds the volume
		<-j.loaderGone
	}
	if j.networkAttempted {
		j.remove(ctx, j.network != "", "network", "network", "rm", j.res)
	}
	if j.volumeAttempted {
		j.remove(ctx, started || j.pooled, "volume", "volume", "rm", "-f", j.res)
	}
	if j.pooled {
		j.ex.pool.forget(j.res)
	}
	if j.toolCacheAttempted {
		j.remove(ctx, started, "tool cache volume", "volume", "rm", "-f", j.toolCacheVolume())
	}
	j.removeActionImages(ctx)
	j.removeStage()
	j.removeFilesDir()
}

func (j *execJob) remove(ctx context.Context, existed bool, what string, args ...string) {
	if _, _, err := j.ex.docker.Output(ctx, args...); err != nil && existed {
		j.log.Warn("cannot remove the job's "+what, "err", err)
	}
}

// stepLog streams one step's output to the source in chunks of at most
// stepLogChunk bytes, sent when a chunk is full or stepLogFlushEvery after
// the first unsent byte, numbered by seq from 1. Output after a quiet
// spell of stepLogFlushEvery (a step's first line above all) is sent at
// once: batching is for busy output, not for the line a user waits for.
type stepLog struct {
	j      *execJob
	stepID int64

	sendMu sync.Mutex // held while cutting and sending, so chunks go out in seq order

	mu       sync.Mutex // guards buf, seq, cutAt, timer, panicked
	buf      []byte
	seq      int64
	cutAt    time.Time   // when the last chunk was cut for sending
	timer    *time.Timer // the pending time flush; nil when none is armed
	panicked any         // a panic of appendLog, re-raised by close on the job's goroutine
}

func (j *execJob) newStepLog(stepID int64) *stepLog {
	return &stepLog{j: j, stepID: stepID}
}

func (l *stepLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	if l.seq == 0 && len(l.buf) == 0 && !l.j.isSetupStep(l.stepID) {
		l.j.clock.mark("at_first_output")
	}
	quiet := l.timer == nil && len(l.buf) == 0 && time.Since(l.cutAt) >= stepLogFlushEvery
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= stepLogChunk
	if !quiet {
		l.armLocked()
	}
	l.mu.Unlock()
	if quiet || full {
		l.flush(!quiet)
	}
	return len(p), nil
}

func (l *stepLog) linef(format string, args ...any) {
	fmt.Fprintf(l, format+"\n", args...)
}

// armLocked starts the time flush when there is unsent output and none is
// pending. l.mu is held.
func (l *stepLog) armLocked() {
	if l.timer == nil && len(l.buf) > 0 {
		l.timer = time.AfterFunc(stepLogFlushEvery, func() {
			l.mu.Lock()
			l.timer = nil
			l.mu.Unlock()
			l.flush(false)
		})
	}
}

// flush sends the buffered output: only whole chunks when fullOnly.
func (l *stepLog) flush(fullOnly bool) {
	l.sendMu.Lock()
	defer l.sendMu.Unlock()
	for {
		l.mu.Lock()
		n := min(len(l.buf), stepLogChunk)
		if n == 0 || fullOnly && n < stepLogChunk {
			l.armLocked() // for the tail of a size flush
			l.mu.Unlock()
			return
		}
		data := l.buf[:n:n]
		l.buf = slices.Clone(l.buf[n:])
		l.cutAt = time.Now()
		l.seq++
		seq := l.seq
		l.mu.Unlock()
		l.send(seq, data)
	}
}

// send hands one chunk to the source. It recovers a panic of the source, as
// it may run on a goroutine of os/exec or of a timer, and leaves it to close.
func (l *stepLog) send(seq int64, data []byte) {
	defer func() {
		if r := recover(); r != nil {
			l.j.log.Error("appendLog panicked", "panic", r, "stack", string(debug.Stack()))
			l.mu.Lock()
			if l.panicked == nil {
				l.panicked = r
			}
			l.mu.Unlock()
		}
	}()
	j := l.j
	err := j.ex.call(j.reportCtx, "append log", func(ctx context.Context) error {
		return j.ex.src.AppendLog(ctx, j.job.JobID, l.stepID, seq, data)
	})
	if err != nil {
		j.log.Warn("dropping a log chunk", "step", l.stepID, "seq", seq, "bytes", len(data), "err", err)
	} else if !j.isSetupStep(l.stepID) {
		j.clock.firstLog(j.log)
		j.refill()
	}
}

// close sends what is left; the step's output has ended.
func (l *stepLog) close() {
	l.flush(false)
	l.mu.Lock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	p := l.panicked
	l.mu.Unlock()
	if p != nil {
		panic(p)
	}
}
