package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/git"
	"shithub-actions/internal/hostfile"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// runnerOptions is a parsed `runner` command line.
type runnerOptions struct {
	server        string
	token         string
	cfg           executor.Config
	shutdownGrace time.Duration
}

// executorFlags defines the flags that shape an executor, for `serve` and
// `runner` alike, on cfg. check validates them after parsing and fills in
// cfg.Images; it returns the message of a usageError, or "".
func executorFlags(fs *flag.FlagSet, cfg *executor.Config, shutdownGrace *time.Duration) (check func() string) {
	images := executor.DefaultImages()
	fs.Func("image", "`LABEL=IMAGE`: run runs-on LABEL jobs in IMAGE (repeatable; adds to or replaces the defaults)", func(v string) error {
		label, image, ok := strings.Cut(v, "=")
		if !ok || label == "" || image == "" {
			return fmt.Errorf("want LABEL=IMAGE, got %q", v)
		}
		images[label] = image
		return nil
	})
	fs.StringVar(&cfg.Pull, "pull", "missing", "image pull policy: missing or never")
	fs.Func("allow-images", "`PATTERN,...`: globs a job's own container image must match (default: any image)", func(v string) error {
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				return fmt.Errorf("empty pattern in %q", v)
			}
			cfg.AllowImages = append(cfg.AllowImages, p)
		}
		return nil
	})
	fs.StringVar(&cfg.Memory, "memory", "2g", "memory limit of a job container")
	fs.StringVar(&cfg.CPUs, "cpus", "1", "CPU limit of a job container")
	fs.IntVar(&cfg.PidsLimit, "pids-limit", 1024, "process limit of a job container")
	fs.DurationVar(&cfg.StopGrace, "stop-grace", 10*time.Second, "how long docker stop waits before it kills a cancelled job")
	fs.DurationVar(shutdownGrace, "shutdown-grace", 30*time.Second, "on SIGTERM, how long running jobs may go on before they are cancelled")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "`DIR` for fetched actions and caches (default: the database's path + .d)")
	fs.StringVar(&cfg.ActionsURL, "actions-url", executor.DefaultActionsURL, "where OWNER/REPO actions not on this server come from: https://HOST or file:///DIR of mirrors")
	fs.StringVar(&cfg.NodeDir, "node", "", "`DIR` of a Node.js distribution (DIR/bin/node) mounted read-only into job containers to run JavaScript actions")
	ready := fs.Int("ready", 1, "`N` job networks and volumes made ahead, each with the next job's container started on it once a job has shown its image (0: none; each idles in a process of its own)")
	allow := fs.String("allow-actions", "", "comma-separated `PATTERNS` (OWNER/REPO[@REF], OWNER/*, docker://IMAGE) of the actions jobs may use (default: any)")
	return func() string {
		var err error
		if cfg.AllowActions, err = workflow.ParseAllowActions(*allow); err != nil {
			return err.Error()
		}
		if err := executor.CheckActionsURL(cfg.ActionsURL); err != nil {
			return err.Error()
		}
		if cfg.NodeDir != "" {
			abs, err := filepath.Abs(cfg.NodeDir)
			if err != nil {
				return err.Error()
			}
			if fi, err := os.Stat(filepath.Join(abs, "bin", "node")); err != nil || fi.IsDir() {
				return fmt.Sprintf("--node %s: no bin/node in it", cfg.NodeDir)
			}
			cfg.NodeDir = abs
		}
		cfg.Images = images
		switch {
		case cfg.Pull != "missing" && cfg.Pull != "never":
			return fmt.Sprintf("--pull must be missing or never, not %q", cfg.Pull)
		case cfg.PidsLimit < 1:
			return "--pids-limit must be at least 1"
		case cfg.StopGrace < 0 || *shutdownGrace < 0:
			return "--stop-grace and --shutdown-grace must not be negative"
		case *ready < 0:
			return "--ready must not be negative"
		}
		cfg.Ready = *ready
		if cfg.Ready == 0 {
			cfg.Ready = -1 // the executor's "none"; its 0 means the default
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
	fs.StringVar(&o.token, "token", "", "runner `token` (visible in ps: prefer --token-file or $SHITHUB_RUNNER_TOKEN)")
	tokenFile := fs.String("token-file", "", "`FILE` holding the runner token")
	fs.StringVar(&labels, "labels", "", "comma-separated runs-on `labels` to take (default: the labels of the images)")
	fs.IntVar(&o.cfg.Workers, "capacity", 2, "jobs run at once")
	check := executorFlags(fs, &o.cfg, &o.shutdownGrace)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, apperr.Usagef("runner: %s", err.Error())
	}
	if fs.NArg() > 0 {
		return o, apperr.Usagef("runner: unexpected argument %q", fs.Arg(0))
	}
	tok, err := secretOption("token", o.token, *tokenFile, "SHITHUB_RUNNER_TOKEN", getenv, stderr)
	if err != nil {
		return o, apperr.Usagef("runner: %s", err.Error())
	}
	o.token = tok
	switch {
	case o.server == "":
		return o, apperr.Usagef("runner: --server is required")
	case o.token == "":
		return o, apperr.Usagef("runner: --token-file (or SHITHUB_RUNNER_TOKEN) is required")
	case o.cfg.Workers < 1:
		return o, apperr.Usagef("runner: --capacity must be at least 1")
	}
	if msg := check(); msg != "" {
		return o, apperr.Usagef("runner: %s", msg)
	}
	if u, err := url.Parse(o.server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return o, apperr.Usagef("runner: --server must be an http or https URL, not %q", o.server)
	}
	for l := range strings.SplitSeq(labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			o.cfg.Labels = append(o.cfg.Labels, l)
		}
	}
	if o.cfg.DataDir == "" {
		o.cfg.DataDir = "shithub-actions-runner.d"
	}
	if o.cfg.JobURL == "" {
		o.cfg.JobURL = strings.TrimRight(o.server, "/")
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
	if err := hostfile.MkdirPrivate(o.cfg.DataDir); err != nil {
		return fmt.Errorf("the data directory: %w", err)
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	src := executor.NewRemoteSource(o.server, o.token, o.cfg.Workers, logger)
	ex := executor.New(o.cfg, src, logger)
	if err := ex.DockerOK(ctx); err != nil {
		logger.Warn("jobs will fail until the docker engine answers", "err", err)
	} else if err := ex.RemoveStale(ctx); err != nil {
		logger.Warn("cannot clean up after a previous runner", "err", err)
	}
	fmt.Fprintf(stdout, "runner %s: taking jobs from %s with labels %s, %d at a time\n",
		ex.Config().Instance, o.server, strings.Join(ex.Config().Labels, ","), ex.Config().Workers)

	drain := startPool(ctx, ex)
	<-ctx.Done()
	logger.Info("runner stopping", "shutdown_grace", o.shutdownGrace)
	drain(o.shutdownGrace)
	return nil
}

// startPool runs ex's workers, and its sweep of leftover containers, on
// ctx: the pool of `runner`, and serve's own. drain stops claiming, lets
// running jobs go on for up to grace, cancels the rest, and returns once
// every worker has stopped; cancelling ctx alone only stops claiming.
func startPool(ctx context.Context, ex *executor.Executor) (drain func(grace time.Duration)) {
	stopped := make(chan struct{})
	go ex.SweepLoop(ctx)
	go func() {
		ex.Run(ctx)
		close(stopped)
	}()
	return func(grace time.Duration) {
		ex.Drain(grace)
		<-stopped
	}
}

// localSource is the runner protocol in-process: the server's own pool
// works through the same Store methods the HTTP handlers call, as its
// runner row.
type localSource struct {
	store  *store.Store
	runner *store.Runner
	wake   func() // a job ended: the jobs that need it may be claimable
	jobURL string // the server's URL as the pool's jobs reach it (jobaddr.go); "" leaves it out
}

func (l *localSource) Claim(ctx context.Context, labels []string) (*protocol.Job, error) {
	cj, err := l.store.ClaimJob(ctx, l.runner, labels)
	if cj != nil {
		setJobURLs(cj, l.jobURL)
	}
	return cj, err
}

func (l *localSource) AppendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error {
	return l.store.AppendLog(ctx, l.runner.ID, jobID, stepID, seq, data)
}

func (l *localSource) SetStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error {
	return l.store.SetStepStatus(ctx, l.runner.ID, jobID, stepID, status, conclusion)
}

// setJobStatus completes the job. Storing outputs, annotations and
// summaries is the server half of issue 9 (jobs.outputs, the annotations
// table, steps.summary); until those Store methods land the in-process
// pool reports them nowhere, and a remote runner's reach the API.
func (l *localSource) SetJobStatus(ctx context.Context, jobID int64, status, conclusion string, outputs map[string]string, envURL string) error {
	err := l.store.CompleteJobWith(ctx, l.runner.ID, jobID, status, conclusion, outputs, envURL)
	if err == nil && l.wake != nil {
		l.wake()
	}
	return err
}

func (l *localSource) AddAnnotation(ctx context.Context, jobID int64, a protocol.Annotation) error {
	_, err := l.store.AddAnnotation(ctx, l.runner.ID, jobID, a)
	return err
}

func (l *localSource) SetStepSummary(ctx context.Context, jobID, stepID int64, markdown string) error {
	return l.store.SetStepSummary(ctx, l.runner.ID, jobID, stepID, markdown)
}

func (l *localSource) CancelRequested(ctx context.Context, jobID int64) (bool, error) {
	j, err := l.store.HeldJob(ctx, l.runner.ID, jobID)
	if err != nil {
		return false, err
	}
	return j.CancelRequested, nil
}

// checkout fetches from the repositories' own directories: objects are
// copied, so the checkout borrows nothing from the host. Another
// repository is one the job may reach (reach.go), judged from the job's
// run in the database, with spec's token.
func (l *localSource) Checkout(ctx context.Context, job *protocol.Job, dir string, spec executor.CheckoutSpec) error {
	var from *store.RepoReach
	resolve := func(ctx context.Context, name string) (executor.GitRemote, error) {
		if name == "" || strings.EqualFold(name, job.Repo) {
			repo, err := l.store.RepoByID(ctx, job.RepoID)
			if err != nil {
				return executor.GitRemote{}, err
			}
			return executor.GitRemote{URL: repo.GitDir, File: true}, nil
		}
		if from == nil {
			r, err := l.store.JobReach(ctx, job.JobID, spec.Token)
			if err != nil {
				return executor.GitRemote{}, err
			}
			from = &r
		}
		owner, repo, _ := strings.Cut(name, "/")
		r, err := l.store.ReachRepo(ctx, *from, owner, repo)
		if err != nil {
			return executor.GitRemote{}, err
		}
		return executor.GitRemote{URL: r.GitDir, File: true}, nil
	}
	server := executor.JobServerURL(job, "")
	return executor.GitCheckout(ctx, job, dir, spec, resolve, func(err error) error {
		var ge *git.Error
		if errors.As(err, &ge) && ge.Exited() {
			return executor.MarkPermanent(err) // the repository is right here: no retry helps
		}
		return err
	}, func(repo string) string { return executor.CheckoutOrigin(server, repo) })
}
