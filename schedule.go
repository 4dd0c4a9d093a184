// The scheduler: on.schedule workflows start runs on their repository's
// default branch, checked once a minute.

package main

import (
	"context"
	"errors"
	"path"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// schedule checks, every minute, which schedules are due and starts their
// runs. A minute the server was down is not made up for.
func (s *server) schedule(ctx context.Context) {
	sc := &scheduler{store: s.store, cache: map[int64]scheduleCache{}}
	for {
		now := s.store.Now()
		next := now.Truncate(time.Minute).Add(time.Minute)
		select {
		case <-ctx.Done():
			return
		case <-time.After(next.Sub(now)):
		}
		n, err := sc.tick(ctx)
		if err != nil {
			s.log.Error("starting scheduled runs", "err", err)
		}
		if n > 0 {
			s.log.Info("started scheduled runs", "count", n)
			s.Wake()
		}
	}
}

// fireWorkflowRuns starts the workflow_run runs that runs' activities call
// for (Store.FireWorkflowRuns): as soon as a transaction that recorded one
// commits, and every half minute for those git could not be read for.
func (s *server) fireWorkflowRuns(ctx context.Context) {
	retry := time.NewTicker(30 * time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.store.WorkflowRunWake():
		case <-retry.C:
		}
		n, err := s.store.FireWorkflowRuns(ctx)
		if err != nil {
			s.log.Error("starting workflow_run runs", "err", err)
		}
		if n > 0 {
			s.log.Info("started workflow_run runs", "count", n)
			s.Wake()
		}
	}
}

// fetchCalls fetches, every second, the reusable workflows from
// --actions-url that runs made by the post-receive hook (a process that
// knows no --actions-url) call, and so makes those calls.
func (s *server) fetchCalls(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := s.store.FetchPendingCalls(ctx)
		if err != nil {
			s.log.Error("fetching called workflows", "err", err)
		}
		if n > 0 {
			s.Wake()
		}
	}
}

// scheduler remembers each repository's schedules by the commit they were
// read at, so an unchanged default branch costs one rev-parse a minute.
// Only the scheduler's goroutine uses it: no lock.
type scheduler struct {
	store *store.Store
	cache map[int64]scheduleCache // by repository id
}

type scheduleCache struct {
	sha     string
	entries []scheduleEntry
}

type scheduleEntry struct {
	file    string // repository path
	content []byte
	wf      *workflow.Workflow
}

// tick starts the runs of every schedule that matches the current minute
// (the Store's clock, in UTC) and returns how many it started.
func (sc *scheduler) tick(ctx context.Context) (int, error) {
	minute := sc.store.Now().UTC().Truncate(time.Minute)
	repos, err := sc.store.AllRepos(ctx)
	if err != nil {
		return 0, err
	}
	started := 0
	var errs []error
	for _, repo := range repos {
		entries, sha, err := sc.schedules(ctx, repo)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, e := range entries {
			for _, cs := range e.wf.Schedules {
				if !cs.Matches(minute) {
					continue
				}
				ok, err := sc.store.FireSchedule(ctx, repo, e.file, cs.String(), minute, store.RunSpec{
					RepoID: repo.ID, File: e.file, Content: e.content, Workflow: e.wf,
					HeadSHA: sha, HeadRef: "refs/heads/" + repo.DefaultBranch, Event: "schedule", ActorID: repo.OwnerID,
					Payload: map[string]any{"schedule": cs.String(), "repository": store.RepoPayload(repo)},
				})
				if err != nil {
					errs = append(errs, err)
				} else if ok {
					started++
				}
			}
		}
	}
	return started, errors.Join(errs...)
}

// schedules returns the parsed workflows with a schedule at the tip of the
// repository's default branch, and that commit.
func (sc *scheduler) schedules(ctx context.Context, repo *store.Repo) ([]scheduleEntry, string, error) {
	g := git.Repo{Dir: repo.GitDir}
	sha, err := g.Resolve(ctx, "refs/heads/"+repo.DefaultBranch)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, "", nil // no such branch yet
	}
	if err != nil {
		return nil, "", err
	}
	if c, ok := sc.cache[repo.ID]; ok && c.sha == sha {
		return c.entries, sha, nil
	}
	files, err := g.WorkflowFiles(ctx, sha)
	if err != nil {
		return nil, "", err
	}
	var entries []scheduleEntry
	for _, f := range files {
		content, err := g.ReadFile(ctx, sha, f)
		if err != nil {
			return nil, "", err
		}
		// A file that does not parse has no schedule we could trust; its
		// problems are reported when it is pushed.
		if wf, err := workflow.Parse(path.Base(f), content); err == nil && len(wf.Schedules) > 0 {
			entries = append(entries, scheduleEntry{f, content, wf})
		}
	}
	sc.cache[repo.ID] = scheduleCache{sha, entries}
	return entries, sha, nil
}
