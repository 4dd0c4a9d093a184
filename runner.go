package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// claimedJob is what a heartbeat hands a runner: everything it needs to run
// one job, so that a remote runner never reads the database.
type claimedJob struct {
	JobID          int64             `json:"job_id"`
	RunID          int64             `json:"run_id"`
	RepoID         int64             `json:"repo_id"`
	Repo           string            `json:"repo"` // owner/name
	HeadSHA        string            `json:"head_sha"`
	HeadRef        string            `json:"head_ref"`
	Event          string            `json:"event"`
	WorkflowName   string            `json:"workflow_name"`
	WorkflowFile   string            `json:"workflow_file"`
	JobKey         string            `json:"job_key"`
	JobName        string            `json:"job_name"`
	RunsOn         []string          `json:"runs_on"`
	Image          string            `json:"image"` // the job's container image; "" means map runs_on to an image
	Env            map[string]string `json:"env"`   // workflow env, job env and the CI variables, merged
	TimeoutMinutes int               `json:"timeout_minutes"`
	Steps          []claimedStep     `json:"steps"`
}

// claimedStep is one step of a claimedJob, in order. Steps[0] is always the
// "Set up job" step (kind "setup"): the executor writes what it prepares, and
// why preparing failed, into its log, so a failure is the first lines of the
// job's log as on GitHub.
type claimedStep struct {
	ID               int64             `json:"id"`
	Number           int               `json:"number"`
	Kind             string            `json:"kind"` // setup, run or checkout
	Name             string            `json:"name"`
	Run              string            `json:"run"`
	Uses             string            `json:"uses"`
	Env              map[string]string `json:"env"`
	WorkingDirectory string            `json:"working_directory"`
}

// jobSource is the runner protocol as the executor sees it. The server
// implements it in-process on the Store; a remote runner implements it over
// HTTP. Every method is idempotent where the protocol is (logs by seq).
type jobSource interface {
	// claim takes the oldest claimable job whose runs-on labels are all in
	// labels; it returns nil, nil when there is none.
	claim(ctx context.Context, labels []string) (*claimedJob, error)
	// appendLog stores one chunk of a step's log; a repeated seq is a no-op.
	appendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error
	// setStepStatus moves a step to "running", or to "completed" with a
	// conclusion (success, failure, cancelled, skipped).
	setStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error
	// setJobStatus completes a job (status "completed") with a conclusion
	// (success, failure, cancelled, timed_out).
	setJobStatus(ctx context.Context, jobID int64, status, conclusion string) error
	// cancelRequested reports whether a cancel was requested for the job.
	cancelRequested(ctx context.Context, jobID int64) (bool, error)
	// checkout makes dir (which exists and is empty) a git working tree of
	// the job's repository, detached at job.HeadSHA.
	checkout(ctx context.Context, job *claimedJob, dir string) error
}

// markPermanent marks a jobSource error that retrying cannot fix (a broken
// answer, a job with no commit) in the domain's vocabulary. Errors that
// already carry a code (the Store's refusals, a server's 4xx) need no mark.
func markPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &appError{Code: codeInvalid, Msg: err.Error(), Err: err}
}

// isPermanent reports whether retrying err is pointless: its code says so
// (stopRetrying), or the call's context is over.
func isPermanent(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || stopRetrying(errorCode(err))
}

// Container labels; removeStale and the tests select containers by them.
const (
	labelInstance = "shithub-actions.instance"
	labelRun      = "shithub-actions.run"
	labelJob      = "shithub-actions.job"
)

const (
	// containerWorkspace is where the job's workspace is mounted.
	containerWorkspace = "/workspace"
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
type executorConfig struct {
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
	WorkDir      string            // parent of the job workspaces (default os.TempDir())
	CancelPoll   time.Duration     // how often a running job asks cancelRequested (default 500ms)
	PollInterval time.Duration     // how often an idle worker claims when not woken (default 2s)
}

func defaultImages() map[string]string {
	return map[string]string{
		"ubuntu-latest": "ubuntu:24.04",
		"ubuntu-24.04":  "ubuntu:24.04",
		"ubuntu-22.04":  "ubuntu:22.04",
		"debian-latest": "debian:bookworm",
	}
}

// withDefaults returns c with every unset field set to its default.
func (c executorConfig) withDefaults() executorConfig {
	if c.Workers <= 0 {
		c.Workers = 2
	}
	if len(c.Images) == 0 {
		c.Images = defaultImages()
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
	return c
}

// randomInstance is prefix and 12 random hex digits: an instance id.
func randomInstance(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b) // never fails on Linux; a zero id would still work
	return prefix + "-" + hex.EncodeToString(b)
}

// executor runs claimed jobs in docker containers, cfg.Workers at a time.
type executor struct {
	cfg    executorConfig
	src    jobSource
	log    *slog.Logger
	docker dockerCLI
	wakeCh chan struct{} // buffered: wake never blocks

	// jobTimeout is a job's whole time budget; a func so tests can use
	// milliseconds where a workflow can only say minutes.
	jobTimeout func(*claimedJob) time.Duration
	// retryFor is how long a source call retries an error not marked
	// permanent before the executor gives up on it.
	retryFor time.Duration

	workers sync.WaitGroup

	mu         sync.Mutex // guards jobs, started, drainPhase, stopClaims
	jobs       map[int64]*execJob
	started    bool
	drainPhase int                // drainNone, drainStopClaims, drainCancel or drainGiveUp
	stopClaims context.CancelFunc // ends the workers' claim loop; set by run
}

// drain phases: each also implies the ones before it.
const (
	drainNone       = iota
	drainStopClaims // no new claims
	drainCancel     // running jobs are cancelled
	drainGiveUp     // source calls of running jobs give up
)

func newExecutor(cfg executorConfig, src jobSource, logger *slog.Logger) *executor {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.Default()
	}
	return &executor{
		cfg:        cfg,
		src:        src,
		log:        logger.With("instance", cfg.Instance),
		docker:     dockerCLI{bin: cfg.Docker, env: cfg.DockerEnv},
		wakeCh:     make(chan struct{}, cfg.Workers),
		jobTimeout: defaultJobTimeout,
		retryFor:   time.Minute,
		jobs:       map[int64]*execJob{},
	}
}

func defaultJobTimeout(job *claimedJob) time.Duration {
	m := job.TimeoutMinutes
	if m <= 0 {
		m = 360
	}
	return time.Duration(m) * time.Minute
}

// run starts the workers and returns once they have all stopped: after ctx
// is done (or drain began) and their running jobs have ended. Cancelling ctx
// only stops claiming; call drain to bound how long running jobs may go on.
// run is meant to be called once.
func (ex *executor) run(ctx context.Context) {
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
	for n := range ex.cfg.Workers {
		go ex.worker(claimCtx, n)
	}
	ex.workers.Wait()
}

// worker claims and runs jobs until ctx is done.
func (ex *executor) worker(ctx context.Context, n int) {
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
func (ex *executor) claimAndRun(ctx context.Context, log *slog.Logger) (found bool) {
	var job *claimedJob
	defer func() {
		if r := recover(); r != nil {
			log.Error("worker recovered from a panic", "panic", r, "stack", string(debug.Stack()))
			found = job != nil
		}
	}()
	job, err := ex.src.claim(ctx, ex.cfg.Labels)
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
	ex.wake()
	ex.runJob(job)
	return true
}

// wake tells an idle worker to claim now; it never blocks.
func (ex *executor) wake() {
	select {
	case ex.wakeCh <- struct{}{}:
	default: // enough wake-ups are pending already
	}
}

// cancel cancels a job this executor is running; otherwise it does nothing.
func (ex *executor) cancel(jobID int64) {
	ex.mu.Lock()
	j := ex.jobs[jobID]
	ex.mu.Unlock()
	if j != nil {
		j.abort(conclusionCancelled)
	}
}

// drain stops claiming, lets running jobs go on for up to grace, cancels
// those still running, and returns when every worker has stopped.
func (ex *executor) drain(grace time.Duration) {
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
func (ex *executor) setDrainPhase(phase int) {
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
func (ex *executor) dockerOK(ctx context.Context) error {
	if _, _, err := ex.docker.output(ctx, "version"); err != nil {
		return fmt.Errorf("docker engine unreachable: %w", err)
	}
	return nil
}

// removeStale removes the containers and workspaces a previous process with
// this instance id left behind (it crashed, or was killed mid-job).
func (ex *executor) removeStale(ctx context.Context) error {
	out, _, err := ex.docker.output(ctx, "ps", "-a", "-q", "--filter", "label="+labelInstance+"="+ex.cfg.Instance)
	if err != nil {
		return fmt.Errorf("list stale containers: %w", err)
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if _, _, err := ex.docker.output(ctx, append([]string{"rm", "-f"}, ids...)...); err != nil {
			return fmt.Errorf("remove stale containers: %w", err)
		}
		ex.log.Info("removed stale containers", "count", len(ids))
	}
	entries, err := os.ReadDir(ex.cfg.WorkDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("list stale workspaces: %w", err)
	}
	prefix := ex.namePrefix()
	for _, e := range entries {
		id, ok := strings.CutPrefix(e.Name(), prefix)
		if _, err := strconv.ParseUint(id, 10, 64); !ok || err != nil {
			continue // another instance's, or not ours at all
		}
		if err := os.RemoveAll(filepath.Join(ex.cfg.WorkDir, e.Name())); err != nil {
			ex.log.Warn("cannot remove a stale workspace", "err", err)
		}
	}
	return nil
}

// namePrefix starts the names of this instance's containers and workspaces,
// which end in the job id.
func (ex *executor) namePrefix() string {
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
func (ex *executor) call(ctx context.Context, what string, fn func(context.Context) error) error {
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

// execJob is one job being run: its contexts, its container, and how far
// its steps have got.
type execJob struct {
	ex   *executor
	job  *claimedJob
	log  *slog.Logger
	name string // of the container and of the workspace directory

	// reportCtx carries source calls. It outlives run's ctx, so a job
	// cancelled at shutdown still reports; drain ends it as a last resort.
	reportCtx context.Context
	giveUp    context.CancelFunc
	// ctx carries checkout, docker run and cancel polling; abort ends it.
	ctx      context.Context
	stopWork context.CancelFunc
	// execCtx carries docker exec. Killing a docker exec client does not
	// stop the process in the container, so cancelling is done by stopping
	// the container; execCtx ends only as a backstop.
	execCtx  context.Context
	killExec context.CancelFunc

	timer *time.Timer    // the job's timeout
	stops sync.WaitGroup // docker stop in flight

	// Only the job's goroutine touches these.
	dir          string // the workspace on the host
	shell        string // bash or sh, with its path in the container
	runAttempted bool   // docker run was started, so there may be a container to remove
	next         int    // index of the first step not yet completed
	inProgress   bool   // Steps[next] has been set running

	mu      sync.Mutex // guards reason, started, ending
	reason  string     // why the job is aborted: "", conclusionCancelled or conclusionTimedOut
	started bool       // the container is up, so aborting stops it
	ending  bool       // the steps are over; aborting no longer changes anything
}

// runJob runs one claimed job to its end, whatever happens: the job always
// gets a terminal status, its container is removed and its workspace
// deleted. A panic is logged and completes the job as failure.
func (ex *executor) runJob(job *claimedJob) {
	j := ex.startJob(job)
	defer ex.endJob(j)
	defer func() {
		if r := recover(); r != nil {
			j.log.Error("job panicked; completing it as failure", "panic", r, "stack", string(debug.Stack()))
			if j.next < len(j.job.Steps) {
				first := conclusionSkipped
				if j.inProgress {
					first = conclusionFailure
				}
				j.endStep(j.next, first)
				j.completeRest(j.next, conclusionSkipped)
			}
			j.finish(conclusionFailure)
		}
	}()
	j.finish(j.execute())
}

// startJob registers the job so cancel and drain find it, and starts its
// timeout and its cancel polling.
func (ex *executor) startJob(job *claimedJob) *execJob {
	j := &execJob{
		ex:   ex,
		job:  job,
		log:  ex.log.With("job", job.JobID, "run", job.RunID),
		name: ex.namePrefix() + strconv.FormatInt(job.JobID, 10),
	}
	j.reportCtx, j.giveUp = context.WithCancel(context.Background())
	j.ctx, j.stopWork = context.WithCancel(j.reportCtx)
	j.execCtx, j.killExec = context.WithCancel(context.Background())
	j.log.Info("job claimed", "repo", job.Repo, "sha", job.HeadSHA, "job_name", job.JobName)

	ex.mu.Lock()
	ex.jobs[job.JobID] = j
	phase := ex.drainPhase
	ex.mu.Unlock()
	j.applyDrain(phase) // claimed while drain was going on

	j.timer = time.AfterFunc(ex.jobTimeout(job), func() { j.abort(conclusionTimedOut) })
	go j.pollCancel()
	return j
}

func (ex *executor) endJob(j *execJob) {
	j.timer.Stop()
	j.stopWork()
	j.killExec()
	j.giveUp()
	ex.mu.Lock()
	delete(ex.jobs, j.job.JobID)
	ex.mu.Unlock()
}

func (j *execJob) applyDrain(phase int) {
	if phase >= drainCancel {
		j.abort(conclusionCancelled)
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
		yes, err := j.ex.src.cancelRequested(j.ctx, j.job.JobID)
		switch {
		case err != nil && j.ctx.Err() == nil && stopRetrying(errorCode(err)):
			// The server says this runner does not hold the job any more.
			j.log.Warn("cancel check refused; stopping the job", "err", err)
			j.abort(conclusionCancelled)
			return
		case err != nil:
			if j.ctx.Err() == nil {
				j.log.Warn("cancel check failed", "err", err)
			}
		case yes:
			j.abort(conclusionCancelled)
			return
		}
	}
}

// abort stops the job for reason (conclusionCancelled or
// conclusionTimedOut): the first reason wins. It stops the container at
// once, so the running step ends without waiting for a poll.
func (j *execJob) abort(reason string) {
	j.mu.Lock()
	if j.reason != "" || j.ending {
		j.mu.Unlock()
		return
	}
	j.reason = reason
	started := j.started
	if started {
		j.stops.Add(1) // under mu: finish sets ending before it Waits
	}
	j.mu.Unlock()

	j.log.Info("aborting the job", "reason", reason)
	j.stopWork()
	time.AfterFunc(j.ex.cfg.StopGrace+execKillDelay, j.killExec)
	if started {
		go j.stopContainer()
	}
}

func (j *execJob) abortReason() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.reason
}

// stopContainer runs docker stop; the caller has done j.stops.Add(1).
func (j *execJob) stopContainer() {
	defer j.stops.Done()
	grace := j.ex.cfg.StopGrace
	ctx, cancel := context.WithTimeout(context.Background(), grace+jobCleanupTimeout)
	defer cancel()
	secs := strconv.Itoa(int((grace + time.Second - 1) / time.Second))
	if _, _, err := j.ex.docker.output(ctx, "stop", "-t", secs, j.name); err != nil {
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
	if err != nil {
		reason := j.abortReason()
		j.log.Warn("job set-up failed", "err", err, "abort", reason)
		if first == 1 {
			text, c := setupFailureText(err), conclusionFailure
			if reason != "" {
				text, c = abortText(reason), conclusionCancelled
			}
			j.writeLog(steps[0].ID, text)
			j.endStep(0, c)
		}
		if reason != "" {
			return j.abortRest(first, reason)
		}
		j.completeRest(first, conclusionSkipped)
		return conclusionFailure
	}
	if first == 1 {
		j.writeLog(steps[0].ID, strings.Join(lines, "\n"))
		j.endStep(0, conclusionSuccess)
	}

	for i := first; i < len(steps); i++ {
		if reason := j.abortReason(); reason != "" {
			return j.abortRest(i, reason)
		}
		j.beginStep(i)
		c := j.runStep(&steps[i])
		j.endStep(i, c)
		switch c {
		case conclusionCancelled:
			return j.abortRest(i+1, j.abortReason())
		case conclusionFailure:
			j.completeRest(i+1, conclusionSkipped)
			return conclusionFailure
		}
	}
	return conclusionSuccess
}

// abortRest completes the steps from index from after an abort and returns
// the job's conclusion: a cancelled job's steps are cancelled, a timed-out
// job's skipped.
func (j *execJob) abortRest(from int, reason string) string {
	rest := conclusionCancelled
	if reason == conclusionTimedOut {
		rest = conclusionSkipped
	}
	j.completeRest(from, rest)
	return reason
}

func abortText(reason string) string {
	if reason == conclusionTimedOut {
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

// setUp prepares the workspace, the checkout and the container, and returns
// the lines for the Set up job log.
func (j *execJob) setUp() (lines []string, err error) {
	ex := j.ex
	image, why, err := j.chooseImage()
	if err != nil {
		return nil, &setupError{"choose the job's image", err}
	}

	j.dir = filepath.Join(ex.cfg.WorkDir, j.name)
	if err := j.emptyWorkspace(); err != nil {
		return nil, &setupError{"prepare the workspace", err}
	}
	lines = append(lines, fmt.Sprintf("Workspace: %s, mounted at %s", j.dir, containerWorkspace))

	attempts := 0
	err = ex.call(j.ctx, "checkout", func(ctx context.Context) error {
		if attempts++; attempts > 1 {
			if err := j.emptyWorkspace(); err != nil {
				return err
			}
		}
		return ex.src.checkout(ctx, j.job, j.dir)
	})
	if err != nil {
		return nil, &setupError{"check out " + j.job.Repo, err}
	}
	lines = append(lines, fmt.Sprintf("Checked out %s at %s", j.job.Repo, j.job.HeadSHA))
	lines = append(lines, fmt.Sprintf("Image: %s (%s)", image, why))

	j.runAttempted = true
	id, warnings, err := ex.docker.output(j.ctx, j.runArgs(image)...)
	if err != nil {
		return nil, &setupError{"start the job container from image " + image, err}
	}
	if warnings != "" {
		lines = append(lines, warnings)
	}
	j.mu.Lock()
	j.started = true
	aborted := j.reason != ""
	j.mu.Unlock()
	if aborted {
		return nil, &setupError{"start the job container", context.Canceled}
	}
	lines = append(lines, fmt.Sprintf("Container: %s (%.12s)", j.name, id))

	// Run steps with bash where the image has it, as GitHub does, else sh.
	shell, _, err := ex.docker.output(j.ctx, "exec", j.name, "sh", "-c", "command -v bash || command -v sh")
	if err != nil {
		return nil, &setupError{"find a shell in the job container", err}
	}
	j.shell, _, _ = strings.Cut(shell, "\n")
	if j.shell == "" {
		j.shell = "sh"
	}
	lines = append(lines, "Shell: "+j.shell+" -e {0}")
	return lines, nil
}

// emptyWorkspace makes j.dir an empty directory. What is there already is
// left by a crashed process or by a failed checkout attempt.
func (j *execJob) emptyWorkspace() error {
	if err := os.RemoveAll(j.dir); err != nil {
		return err
	}
	return os.MkdirAll(j.dir, 0o755)
}

// chooseImage picks the job's image: its own container image, else the image
// of the first runs-on label this executor maps.
func (j *execJob) chooseImage() (image, why string, err error) {
	if j.job.Image != "" {
		return j.job.Image, "the job's container image", nil
	}
	for _, label := range j.job.RunsOn {
		if image, ok := j.ex.cfg.Images[label]; ok {
			return image, "runs-on " + label, nil
		}
	}
	return "", "", fmt.Errorf("no image for runs-on %q: this executor maps %s",
		j.job.RunsOn, strings.Join(slices.Sorted(maps.Keys(j.ex.cfg.Images)), ", "))
}

// runArgs is the docker run command line of the job's container. The
// container only idles (tail -f /dev/null under docker's init, which
// forwards docker stop's SIGTERM at once); steps run in it with docker exec.
func (j *execJob) runArgs(image string) []string {
	cfg := j.ex.cfg
	return []string{"run", "-d", "--init",
		"--name", j.name,
		"--label", labelInstance + "=" + cfg.Instance,
		"--label", labelRun + "=" + strconv.FormatInt(j.job.RunID, 10),
		"--label", labelJob + "=" + strconv.FormatInt(j.job.JobID, 10),
		"--memory", cfg.Memory,
		"--cpus", cfg.CPUs,
		"--pids-limit", strconv.Itoa(cfg.PidsLimit),
		"--pull=" + cfg.Pull,
		"-v", j.dir + ":" + containerWorkspace,
		"-w", containerWorkspace,
		"--entrypoint", "tail", // the image's own entrypoint would get our command as arguments
		"--", // an image named like a flag (from a workflow) stays an image
		image, "-f", "/dev/null",
	}
}

// runStep runs one step after Set up job and returns its conclusion.
func (j *execJob) runStep(step *claimedStep) string {
	switch step.Kind {
	case "checkout":
		j.writeLog(step.ID, fmt.Sprintf("Checked out %s at %s into %s", j.job.Repo, j.job.HeadSHA, containerWorkspace))
		return conclusionSuccess
	case "run":
		return j.runScript(step)
	default:
		j.writeLog(step.ID, fmt.Sprintf("Error: this executor cannot run a step of kind %q (uses: %q).", step.Kind, step.Uses))
		return conclusionFailure
	}
}

// Step scripts reach the container on the docker exec client's stdin. The
// env values travel in the client's environment under alias names
// (SHITHUB_ENV_<NAME>, listed in SHITHUB_ENVNAMES), never in any argv, and
// stepBootstrap exports them under their real names. The alias keeps
// values such as LD_PRELOAD, PATH, HOME or DOCKER_CONFIG from acting on the
// docker client on the host.
const (
	envAliasPrefix = "SHITHUB_ENV_"
	envAliasList   = "SHITHUB_ENVNAMES"
)

// stepBootstrap runs as `sh -c stepBootstrap SHELL` in the container: it
// saves the script from stdin to a file and runs `SHELL -e FILE` with stdin
// from /dev/null, so a command in the script that reads stdin cannot eat
// the rest of the script. The script's stderr joins its stdout in the
// container, as docker exec would carry them apart and lose their order.
// The exports happen in a subshell, after mktemp and cat, so a step's own
// PATH cannot break the bootstrap.
const stepBootstrap = `__shithub_f=$(mktemp) && cat >"$__shithub_f" || exit 1
(
for __shithub_n in $` + envAliasList + `; do
	eval "export $__shithub_n=\"\$` + envAliasPrefix + `$__shithub_n\"; unset ` + envAliasPrefix + `$__shithub_n"
done
unset ` + envAliasList + ` __shithub_n
exec "$0" -e "$__shithub_f"
) </dev/null 2>&1
__shithub_s=$?
rm -f "$__shithub_f"
exit $__shithub_s`

// runScript runs a run step with docker exec, streaming its output.
func (j *execJob) runScript(step *claimedStep) string {
	out := j.newStepLog(step.ID)
	env := make(map[string]string, len(j.job.Env)+len(step.Env))
	maps.Copy(env, j.job.Env)
	maps.Copy(env, step.Env) // the step's env wins
	args := []string{"exec", "-i"}
	var clientEnv, names []string
	for _, name := range slices.Sorted(maps.Keys(env)) {
		if !validEnvName(name) {
			out.linef("Warning: not setting %q: an environment variable name is letters, digits and _, not starting with a digit.", name)
			continue
		}
		names = append(names, name)
		args = append(args, "-e", envAliasPrefix+name)
		clientEnv = append(clientEnv, envAliasPrefix+name+"="+env[name])
	}
	if len(names) > 0 {
		args = append(args, "-e", envAliasList)
		clientEnv = append(clientEnv, envAliasList+"="+strings.Join(names, " "))
	}
	args = append(args, "-w", containerDir(step.WorkingDirectory), j.name, "sh", "-c", stepBootstrap, j.shell)

	cmd := j.ex.docker.command(j.execCtx, clientEnv, args...)
	cmd.Stdin = strings.NewReader(step.Run)
	// One writer for both: os/exec then gives the client a single pipe, so
	// docker's own messages (a missing working directory) land in order.
	cmd.Stdout = out
	cmd.Stderr = out
	err := cmd.Run()
	c := conclusionFailure
	switch code := processExitCode(err); {
	case j.abortReason() != "":
		c = conclusionCancelled
	case err == nil:
		c = conclusionSuccess
	case code >= 0:
		out.linef("Error: Process completed with exit code %d.", code)
	default:
		out.linef("Error: %v", fmt.Errorf("docker exec: %w", err))
	}
	out.close()
	return c
}

// containerDir is a step's working-directory inside the container.
func containerDir(wd string) string {
	if path.IsAbs(wd) {
		return path.Clean(wd)
	}
	return path.Join(containerWorkspace, wd)
}

// validEnvName reports whether name can be exported by a POSIX shell.
func validEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (j *execJob) beginStep(i int) {
	j.report("set step running", func(ctx context.Context) error {
		return j.ex.src.setStepStatus(ctx, j.job.JobID, j.job.Steps[i].ID, "running", "")
	})
	j.inProgress = true
}

func (j *execJob) endStep(i int, conclusion string) {
	j.report("complete step", func(ctx context.Context) error {
		return j.ex.src.setStepStatus(ctx, j.job.JobID, j.job.Steps[i].ID, "completed", conclusion)
	})
	j.next, j.inProgress = i+1, false
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
	l.linef("%s", text)
	l.close()
}

// finish cleans up after the steps and completes the job.
func (j *execJob) finish(conclusion string) {
	j.mu.Lock()
	j.ending = true
	started, aborted := j.started, j.reason != ""
	j.mu.Unlock()
	j.stops.Wait() // docker stop before docker rm

	ctx, cancel := context.WithTimeout(context.Background(), jobCleanupTimeout)
	defer cancel()
	if started && !aborted && os.Geteuid() != 0 {
		// Files the job wrote as root in the bind mount would outlive
		// os.RemoveAll below; hand them back to us while the container runs.
		owner := fmt.Sprintf("%d:%d", os.Geteuid(), os.Getegid())
		if _, _, err := j.ex.docker.output(ctx, "exec", j.name, "chown", "-R", owner, containerWorkspace); err != nil {
			j.log.Warn("cannot chown the workspace", "err", err)
		}
	}
	if j.runAttempted {
		// By name: a docker run killed mid-way may still have created it.
		if _, _, err := j.ex.docker.output(ctx, "rm", "-f", j.name); err != nil && started {
			j.log.Warn("cannot remove the job container", "err", err)
		}
	}
	if j.dir != "" {
		if err := os.RemoveAll(j.dir); err != nil {
			j.log.Warn("cannot remove the workspace", "err", err)
		}
	}
	j.report("complete job", func(ctx context.Context) error {
		return j.ex.src.setJobStatus(ctx, j.job.JobID, "completed", conclusion)
	})
	j.log.Info("job completed", "conclusion", conclusion)
}

// stepLog streams one step's output to the source in chunks of at most
// stepLogChunk bytes, sent when a chunk is full or stepLogFlushEvery after
// the first unsent byte, numbered by seq from 1.
type stepLog struct {
	j      *execJob
	stepID int64

	sendMu sync.Mutex // held while cutting and sending, so chunks go out in seq order

	mu       sync.Mutex // guards buf, seq, timer, panicked
	buf      []byte
	seq      int64
	timer    *time.Timer // the pending time flush; nil when none is armed
	panicked any         // a panic of appendLog, re-raised by close on the job's goroutine
}

func (j *execJob) newStepLog(stepID int64) *stepLog {
	return &stepLog{j: j, stepID: stepID}
}

func (l *stepLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.buf = append(l.buf, p...)
	full := len(l.buf) >= stepLogChunk
	l.armLocked()
	l.mu.Unlock()
	if full {
		l.flush(true)
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
		return j.ex.src.appendLog(ctx, j.job.JobID, l.stepID, seq, data)
	})
	if err != nil {
		j.log.Warn("dropping a log chunk", "step", l.stepID, "seq", seq, "bytes", len(data), "err", err)
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

// remoteSource is the runner protocol over HTTP: a runner process on another
// machine claims and reports jobs through a server's API with its runner
// token. 5xx answers and connection errors are retried with backoff until
// the call's ctx is done; other failures are returned as permanent.
type remoteSource struct {
	server   string // base URL, without a trailing slash
	token    string
	capacity int // sent with every heartbeat: the jobs this runner runs at once
	client   *http.Client
	log      *slog.Logger
	git      string // the git binary

	minBackoff, maxBackoff time.Duration
}

func newRemoteSource(server, token string, capacity int, logger *slog.Logger) *remoteSource {
	if logger == nil {
		logger = slog.Default()
	}
	return &remoteSource{
		server:     strings.TrimRight(server, "/"),
		token:      token,
		capacity:   capacity,
		client:     &http.Client{Timeout: time.Minute},
		log:        logger,
		git:        "git",
		minBackoff: 200 * time.Millisecond,
		maxBackoff: maxRetryDelay,
	}
}

// post sends body as JSON to the server and decodes a 200 answer into out
// (when out is not nil), retrying 5xx answers and connection errors. It
// returns the status of the answer.
func (r *remoteSource) post(ctx context.Context, path string, body, out any) (int, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, markPermanent(fmt.Errorf("encode %s: %w", path, err))
		}
	}
	var status int
	err := retryWithBackoff(ctx, r.minBackoff, r.maxBackoff, 0,
		func(attempt int, err error) {
			r.log.Warn("server unavailable; retrying", "path", path, "attempt", attempt, "err", err)
		},
		func() (err error) {
			status, err = r.postOnce(ctx, path, payload, out)
			return err
		})
	return status, err
}

// postOnce makes one request; a returned error not marked permanent is
// worth retrying.
func (r *remoteSource) postOnce(ctx context.Context, path string, payload []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.server+path, bytes.NewReader(payload))
	if err != nil {
		return 0, markPermanent(fmt.Errorf("POST %s: %w", path, err))
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("POST %s: read the answer: %w", path, err)
	}
	switch {
	case resp.StatusCode >= 300:
		// The server's answer, back in the domain's words: 5xx and 503 are
		// worth a retry, the rest are final (stopRetrying).
		return resp.StatusCode, &appError{Code: codeFromStatus(resp.StatusCode), Msg: fmt.Sprintf("POST %s: %d %s: %s",
			path, resp.StatusCode, http.StatusText(resp.StatusCode), remoteErrorMessage(data))}
	case resp.StatusCode == http.StatusOK && out != nil:
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, markPermanent(fmt.Errorf("POST %s: decode the answer: %w", path, err))
		}
	}
	return resp.StatusCode, nil
}

// errorMessage is the message of a {"message": ...} error body, or the body.
func remoteErrorMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	return strings.TrimSpace(string(body))
}

func (r *remoteSource) claim(ctx context.Context, labels []string) (*claimedJob, error) {
	body := struct {
		Labels   []string `json:"labels"`
		Capacity int      `json:"capacity"`
	}{labels, r.capacity}
	var job claimedJob
	status, err := r.post(ctx, "/api/v1/runners/heartbeat", body, &job)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	if status != http.StatusOK {
		return nil, nil // 204: nothing for us
	}
	return &job, nil
}

func (r *remoteSource) appendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error {
	body := struct {
		StepID int64  `json:"step_id"`
		Seq    int64  `json:"seq"`
		Data   []byte `json:"data"` // base64
	}{stepID, seq, data}
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/logs", jobID), body, nil)
	return err
}

type remoteStatusBody struct {
	Status     string `json:"status"`
	Conclusion string `json:"conclusion,omitempty"`
}

func (r *remoteSource) setStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error {
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", jobID, stepID), remoteStatusBody{status, conclusion}, nil)
	return err
}

func (r *remoteSource) setJobStatus(ctx context.Context, jobID int64, status, conclusion string) error {
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/status", jobID), remoteStatusBody{status, conclusion}, nil)
	return err
}

func (r *remoteSource) cancelRequested(ctx context.Context, jobID int64) (bool, error) {
	var out struct {
		CancelRequested bool `json:"cancel_requested"`
	}
	if _, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/cancel-check", jobID), nil, &out); err != nil {
		return false, err
	}
	return out.CancelRequested, nil
}

// checkout fetches the job's commit from the server's read-only git endpoint
// for the job. The token reaches git through its environment
// (GIT_CONFIG_COUNT), never its command line.
func (r *remoteSource) checkout(ctx context.Context, job *claimedJob, dir string) error {
	if job.HeadSHA == "" {
		return markPermanent(errors.New("checkout: the job has no head sha"))
	}
	repoURL := fmt.Sprintf("%s/api/v1/jobs/%d/git/", r.server, job.JobID)
	for _, args := range r.checkoutCommands(dir, repoURL, job.HeadSHA) {
		if err := r.runGit(ctx, args); err != nil {
			return err
		}
	}
	return nil
}

// checkoutCommands are the git command lines of a checkout.
func (r *remoteSource) checkoutCommands(dir, repoURL, sha string) [][]string {
	return [][]string{
		{"init", "-q", dir},
		{"-C", dir, "fetch", "-q", "--no-tags", repoURL, sha},
		{"-C", dir, "checkout", "-q", "--detach", "FETCH_HEAD"},
	}
}

// gitEnv hands git the runner token as a header through its environment.
func (r *remoteSource) gitEnv() []string {
	return []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Bearer " + r.token,
	}
}

func (r *remoteSource) runGit(ctx context.Context, args []string) error {
	_, err := runGit(ctx, r.git, r.gitEnv(), args...)
	var ge *gitError
	if errors.As(err, &ge) && !gitTransient(ge.stderr) {
		return markPermanent(err)
	}
	return err
}

// gitTransient reports whether git's stderr tells of a failure worth a retry:
// the server answering 5xx or not answering at all.
func gitTransient(stderr string) bool {
	for _, s := range []string{
		"returned error: 5", "Failed to connect", "Could not resolve host",
		"Connection refused", "Connection reset", "timed out",
		"Empty reply from server", "early EOF",
	} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// runnerOptions is a parsed `runner` command line.
type runnerOptions struct {
	server        string
	token         string
	cfg           executorConfig
	shutdownGrace time.Duration
}

// executorFlags defines the flags that shape an executor, for `serve` and
// `runner` alike, on cfg. check validates them after parsing and fills in
// cfg.Images; it returns the message of a usageError, or "".
func executorFlags(fs *flag.FlagSet, cfg *executorConfig, shutdownGrace *time.Duration) (check func() string) {
	images := defaultImages()
	fs.Func("image", "`LABEL=IMAGE`: run runs-on LABEL jobs in IMAGE (repeatable; adds to or replaces the defaults)", func(v string) error {
		label, image, ok := strings.Cut(v, "=")
		if !ok || label == "" || image == "" {
			return fmt.Errorf("want LABEL=IMAGE, got %q", v)
		}
		images[label] = image
		return nil
	})
	fs.StringVar(&cfg.Pull, "pull", "missing", "image pull policy: missing or never")
	fs.StringVar(&cfg.Memory, "memory", "2g", "memory limit of a job container")
	fs.StringVar(&cfg.CPUs, "cpus", "1", "CPU limit of a job container")
	fs.IntVar(&cfg.PidsLimit, "pids-limit", 1024, "process limit of a job container")
	fs.DurationVar(&cfg.StopGrace, "stop-grace", 10*time.Second, "how long docker stop waits before it kills a cancelled job")
	fs.DurationVar(shutdownGrace, "shutdown-grace", 30*time.Second, "on SIGTERM, how long running jobs may go on before they are cancelled")
	return func() string {
		cfg.Images = images
		switch {
		case cfg.Pull != "missing" && cfg.Pull != "never":
			return fmt.Sprintf("--pull must be missing or never, not %q", cfg.Pull)
		case cfg.PidsLimit < 1:
			return "--pids-limit must be at least 1"
		case cfg.StopGrace < 0 || *shutdownGrace < 0:
			return "--stop-grace and --shutdown-grace must not be negative"
		}
		return ""
	}
}

// parseRunnerArgs parses the `runner` command line; getenv supplies
// SHITHUB_RUNNER_TOKEN. A bad command line is a usageError.
func parseRunnerArgs(args []string, getenv func(string) string, stderr io.Writer) (runnerOptions, error) {
	var o runnerOptions
	fs := flag.NewFlagSet("runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var labels string
	fs.StringVar(&o.server, "server", "", "`URL` of the shithub-actions server")
	fs.StringVar(&o.token, "token", "", "runner `token` (default $SHITHUB_RUNNER_TOKEN)")
	fs.StringVar(&labels, "labels", "", "comma-separated runs-on `labels` to take (default: the labels of the images)")
	fs.IntVar(&o.cfg.Workers, "capacity", 2, "jobs run at once")
	check := executorFlags(fs, &o.cfg, &o.shutdownGrace)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, usageError{"runner: " + err.Error()}
	}
	if fs.NArg() > 0 {
		return o, usageError{fmt.Sprintf("runner: unexpected argument %q", fs.Arg(0))}
	}
	if o.token == "" {
		o.token = getenv("SHITHUB_RUNNER_TOKEN")
	}
	switch {
	case o.server == "":
		return o, usageError{"runner: --server is required"}
	case o.token == "":
		return o, usageError{"runner: --token (or SHITHUB_RUNNER_TOKEN) is required"}
	case o.cfg.Workers < 1:
		return o, usageError{"runner: --capacity must be at least 1"}
	}
	if msg := check(); msg != "" {
		return o, usageError{"runner: " + msg}
	}
	if u, err := url.Parse(o.server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, usageError{fmt.Sprintf("runner: --server must be an http or https URL, not %q", o.server)}
	}
	for l := range strings.SplitSeq(labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			o.cfg.Labels = append(o.cfg.Labels, l)
		}
	}
	o.cfg.Instance = runnerInstance(o.server, o.token)
	o.cfg.PollInterval = time.Second
	return o, nil
}

// runnerInstance is a remote runner's instance id. It is derived from the
// server URL and the token, so it is the same after a restart, and the
// restarted runner's removeStale removes what a crashed one left behind;
// the token stays secret, as only a hash prefix shows. Run one runner
// process per token and docker engine.
func runnerInstance(server, token string) string {
	sum := sha256.Sum256([]byte(strings.TrimRight(server, "/") + "\n" + token))
	return "runner-" + hex.EncodeToString(sum[:6])
}

// cmdRunner is `shithub-actions runner`: it runs jobs of a remote server
// until ctx is done, then drains.
func cmdRunner(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseRunnerArgs(args, os.Getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	src := newRemoteSource(o.server, o.token, o.cfg.Workers, logger)
	ex := newExecutor(o.cfg, src, logger)
	if err := ex.dockerOK(ctx); err != nil {
		logger.Warn("jobs will fail until the docker engine answers", "err", err)
	} else if err := ex.removeStale(ctx); err != nil {
		logger.Warn("cannot clean up after a previous runner", "err", err)
	}
	fmt.Fprintf(stdout, "runner %s: taking jobs from %s with labels %s, %d at a time\n",
		ex.cfg.Instance, o.server, strings.Join(ex.cfg.Labels, ","), ex.cfg.Workers)

	stopped := make(chan struct{})
	go func() {
		ex.run(ctx)
		close(stopped)
	}()
	<-ctx.Done()
	logger.Info("runner stopping", "shutdown_grace", o.shutdownGrace)
	ex.drain(o.shutdownGrace)
	<-stopped
	return nil
}

// localSource is the runner protocol in-process: the server's own pool
// works through the same Store methods the HTTP handlers call, as its
// runner row.
type localSource struct {
	store  *Store
	runner *Runner
	wake   func() // a job ended: the jobs that need it may be claimable
}

func (l *localSource) claim(ctx context.Context, labels []string) (*claimedJob, error) {
	return l.store.claimJob(ctx, l.runner, labels)
}

func (l *localSource) appendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error {
	return l.store.appendLog(ctx, l.runner.ID, jobID, stepID, seq, data)
}

func (l *localSource) setStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error {
	return l.store.setStepStatus(ctx, l.runner.ID, jobID, stepID, status, conclusion)
}

func (l *localSource) setJobStatus(ctx context.Context, jobID int64, status, conclusion string) error {
	err := l.store.completeJob(ctx, l.runner.ID, jobID, status, conclusion)
	if err == nil && l.wake != nil {
		l.wake()
	}
	return err
}

func (l *localSource) cancelRequested(ctx context.Context, jobID int64) (bool, error) {
	j, err := heldJob(ctx, l.store.db, l.runner.ID, jobID)
	if err != nil {
		return false, err
	}
	return j.CancelRequested, nil
}

func (l *localSource) checkout(ctx context.Context, job *claimedJob, dir string) error {
	repo, err := l.store.repoByID(ctx, job.RepoID)
	if err != nil {
		return err
	}
	return gitRepo{dir: repo.GitDir}.checkout(ctx, job.HeadSHA, dir)
}
