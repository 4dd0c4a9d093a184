// Triggers: the runs a push, a pull request, a workflow_dispatch or a
// schedule starts.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/workflow"
)

var RefRE = regexp.MustCompile(`^refs/(heads|tags)/[^\x00-\x20~^:?*\[\\]+$`)

// pushResult is what a push started: its runs; created is false when this
// push was recorded before and its runs are returned again. Disabled lists
// the workflow files whose push trigger matched but that are disabled, so
// started nothing.
type pushResult struct {
	Runs     []*Run
	Created  bool
	Disabled []string
}

// triggerPush starts the runs a push calls for: every workflow at the
// pushed commit whose push trigger matches the ref and changed files, and
// every workflow that does not parse (as a failed run), except disabled
// workflows.
func TriggerPush(ctx context.Context, st *Store, repo *Repo, actor *User, ref, before, after string) (*pushResult, error) {
	switch {
	case !RefRE.MatchString(ref):
		return nil, apperr.Invalidf("ref must be a full branch or tag ref, like refs/heads/main")
	case !git.SHARE.MatchString(after):
		return nil, apperr.Invalidf("after must be a 40-character commit sha")
	case before != "" && !git.SHARE.MatchString(before):
		return nil, apperr.Invalidf("before must be a 40-character commit sha")
	}
	if after == git.ZeroSHA { // a deleted ref runs nothing
		return &pushResult{Runs: []*Run{}, Created: true}, nil
	}
	g := git.Repo{Dir: repo.GitDir}
	commit, err := g.Commit(ctx, after)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, apperr.Invalidf("commit %s is not in the repository", after)
	} else if err != nil {
		return nil, err
	}
	files, err := g.WorkflowFiles(ctx, after)
	if err != nil {
		return nil, err
	}
	disabled, err := st.disabledWorkflows(ctx, repo.ID)
	if err != nil {
		return nil, err
	}
	res := &pushResult{}
	var changed []string // computed once, when a workflow first needs it
	diffed := false
	var specs []RunSpec
	for _, f := range files {
		content, err := g.ReadFile(ctx, after, f)
		if err != nil {
			return nil, err
		}
		wf, errs := workflow.Check(path.Base(f), content)
		perr := workflow.ParseErr(errs)
		if len(content) > workflow.MaxBytes {
			content = content[:workflow.MaxBytes+1] // enough for a re-run to fail the same way
		}
		if perr == nil {
			if wf.Push == nil {
				continue
			}
			if !diffed {
				if changed, err = g.ChangedFiles(ctx, before, after); err != nil {
					return nil, err
				}
				diffed = true
			}
			if !wf.Push.Matches(ref, changed) {
				continue
			}
		}
		if disabled[f] {
			res.Disabled = append(res.Disabled, f)
			continue
		}
		specs = append(specs, RunSpec{
			RepoID: repo.ID, File: f, Content: content, Workflow: wf, ParseErr: perr,
			HeadSHA: after, HeadRef: ref, Event: "push", ActorID: actor.ID,
			Title: git.Subject(commit.Message), HeadCommit: commit,
			Payload: map[string]any{"ref": ref, "before": before, "after": after, "repository": RepoPayload(repo),
				"sender": map[string]any{"login": actor.Name}, "pusher": map[string]any{"name": actor.Name}},
		})
	}
	res.Runs, res.Created, err = st.CreateRuns(ctx, &pushKey{RepoID: repo.ID, Ref: ref, After: after}, specs)
	if err != nil {
		return nil, err
	}
	if !res.Created {
		res.Disabled = nil // the runs were decided when the push was first delivered
	}
	return res, nil
}

// triggerDispatch starts a workflow_dispatch run of one workflow file at a
// ref (a branch or tag name, or a full ref).
func TriggerDispatch(ctx context.Context, st *Store, repo *Repo, actor *User, file, ref string, inputs map[string]any) (*Run, error) {
	if !workflow.IsFile(git.WorkflowDir + file) {
		return nil, apperr.NotFoundf("workflow not found")
	}
	if ref == "" {
		return nil, apperr.Invalidf("ref is required")
	}
	g := git.Repo{Dir: repo.GitDir}
	full := ref
	if !strings.HasPrefix(ref, "refs/") {
		full = "refs/heads/" + ref
		if _, err := g.Resolve(ctx, full); errors.Is(err, apperr.ErrNotFound) {
			full = "refs/tags/" + ref
		} else if err != nil {
			return nil, err
		}
	}
	sha, err := g.Resolve(ctx, full)
	if errors.Is(err, apperr.ErrNotFound) || err == nil && !RefRE.MatchString(full) {
		return nil, apperr.Invalidf("no branch or tag %q", ref)
	}
	if err != nil {
		return nil, err
	}
	// The file of the directory the ref's workflows come from.
	dir, files, err := g.WorkflowDirAt(ctx, sha)
	if err != nil {
		return nil, err
	}
	path := dir + file
	if !slices.Contains(files, path) {
		return nil, apperr.NotFoundf("workflow not found")
	}
	content, err := g.ReadFile(ctx, sha, path)
	if err != nil {
		return nil, err
	}
	wf, err := workflow.Parse(file, content)
	if err != nil {
		return nil, apperr.Invalidf("%v", err)
	}
	if wf.Dispatch == nil {
		return nil, apperr.Invalidf("workflow %s has no workflow_dispatch trigger", file)
	}
	resolved, err := wf.Dispatch.Resolve(inputs)
	if err != nil {
		return nil, apperr.Invalidf("%v", err)
	}
	if w, err := st.WorkflowByPath(ctx, repo.ID, path); err == nil && w.State != WorkflowActive {
		return nil, apperr.Conflictf("workflow %s is disabled: enable it to start runs", file)
	} else if err != nil && !errors.Is(err, apperr.ErrNotFound) {
		return nil, err
	}
	commit, err := g.Commit(ctx, sha)
	if err != nil {
		return nil, err
	}
	runs, _, err := st.CreateRuns(ctx, nil, []RunSpec{{
		RepoID: repo.ID, File: path, Content: content, Workflow: wf,
		HeadSHA: sha, HeadRef: full, Event: "workflow_dispatch", Inputs: resolved, ActorID: actor.ID,
		Title: wf.Name, HeadCommit: commit,
		Payload: map[string]any{"ref": full, "inputs": stringMapAny(resolved), "workflow": path,
			"repository": RepoPayload(repo), "sender": map[string]any{"login": actor.Name}},
	}})
	if err != nil {
		return nil, err
	}
	return runs[0], nil
}

// repoPayload is the `repository` object of an event payload.
func RepoPayload(repo *Repo) map[string]any {
	return map[string]any{"name": repo.Name, "full_name": repo.FullName(), "private": repo.Private,
		"owner": map[string]any{"login": repo.Owner}, "default_branch": repo.DefaultBranch}
}

// prEvent is the body of POST .../actions/events/pull_request: what a forge
// tells us of a pull request.
type PrEvent struct {
	Action  string `json:"action"`
	Number  int64  `json:"number"`
	HeadSHA string `json:"head_sha"`
	HeadRef string `json:"head_ref"`
	BaseRef string `json:"base_ref"`
	BaseSHA string `json:"base_sha"`
	Title   string `json:"title"`
}

// triggerPullRequest starts the runs a pull request event calls for: every
// workflow whose on.pull_request (read at the head commit) or
// on.pull_request_target (read at the base commit) matches the action, the
// base branch and the changed files. Workflows that do not parse give
// failed runs, as for a push.
func TriggerPullRequest(ctx context.Context, st *Store, repo *Repo, actor *User, ev PrEvent) ([]*Run, error) {
	ev.HeadRef = strings.TrimPrefix(ev.HeadRef, "refs/heads/")
	ev.BaseRef = strings.TrimPrefix(ev.BaseRef, "refs/heads/")
	switch {
	case !slices.Contains(workflow.PullRequestTypes, ev.Action):
		return nil, apperr.Invalidf("action must be a pull_request activity type, like opened or synchronize")
	case ev.Number < 1:
		return nil, apperr.Invalidf("number must be a positive pull request number")
	case !git.SHARE.MatchString(ev.HeadSHA) || ev.HeadSHA == git.ZeroSHA:
		return nil, apperr.Invalidf("head_sha must be a 40-character commit sha")
	case ev.BaseSHA != "" && !git.SHARE.MatchString(ev.BaseSHA):
		return nil, apperr.Invalidf("base_sha must be a 40-character commit sha")
	case ev.HeadRef == "" || !RefRE.MatchString("refs/heads/"+ev.HeadRef):
		return nil, apperr.Invalidf("head_ref must be a branch name")
	case ev.BaseRef == "" || !RefRE.MatchString("refs/heads/"+ev.BaseRef):
		return nil, apperr.Invalidf("base_ref must be a branch name")
	case len(ev.Title) > 1024:
		return nil, apperr.Invalidf("title is too long")
	}
	g := git.Repo{Dir: repo.GitDir}
	if _, err := g.Resolve(ctx, ev.HeadSHA); errors.Is(err, apperr.ErrNotFound) {
		return nil, apperr.Invalidf("commit %s is not in the repository", ev.HeadSHA)
	} else if err != nil {
		return nil, err
	}
	baseSHA := ev.BaseSHA
	if baseSHA == "" {
		sha, err := g.Resolve(ctx, "refs/heads/"+ev.BaseRef)
		if err != nil && !errors.Is(err, apperr.ErrNotFound) {
			return nil, err
		}
		baseSHA = sha
	} else if _, err := g.Resolve(ctx, baseSHA); errors.Is(err, apperr.ErrNotFound) {
		return nil, apperr.Invalidf("commit %s is not in the repository", baseSHA)
	} else if err != nil {
		return nil, err
	}
	changed, err := g.PrChangedFiles(ctx, baseSHA, ev.HeadSHA)
	if err != nil {
		return nil, err
	}
	payload := func(event string) map[string]any {
		return map[string]any{
			"action": ev.Action, "number": ev.Number,
			"pull_request": map[string]any{
				"number": ev.Number, "title": ev.Title,
				"head": map[string]any{"ref": ev.HeadRef, "sha": ev.HeadSHA},
				"base": map[string]any{"ref": ev.BaseRef, "sha": baseSHA},
			},
			"repository": RepoPayload(repo), "sender": map[string]any{"login": actor.Name},
		}
	}
	var specs []RunSpec
	// pull_request runs the head's workflows on the head commit;
	// pull_request_target runs the base's on the base commit.
	for _, event := range []string{"pull_request", "pull_request_target"} {
		sha, ref := ev.HeadSHA, fmt.Sprintf("refs/pull/%d/merge", ev.Number)
		if event == "pull_request_target" {
			if baseSHA == "" {
				continue
			}
			sha, ref = baseSHA, "refs/heads/"+ev.BaseRef
		}
		files, err := g.WorkflowFiles(ctx, sha)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			content, err := g.ReadFile(ctx, sha, f)
			if err != nil {
				return nil, err
			}
			wf, errs := workflow.Check(path.Base(f), content)
			if wf != nil {
				t := wf.PullRequest
				if event == "pull_request_target" {
					t = wf.PullRequestTarget
				}
				if !t.Matches(ev.Action, ev.BaseRef, changed) {
					continue
				}
			} else if event == "pull_request_target" {
				continue // a broken file is reported once, for pull_request
			}
			specs = append(specs, RunSpec{
				RepoID: repo.ID, File: f, Content: content, Workflow: wf, ParseErr: workflow.ParseErr(errs),
				HeadSHA: sha, HeadRef: ref, Event: event, ActorID: actor.ID, Payload: payload(event),
			})
		}
	}
	runs, _, err := st.CreateRuns(ctx, nil, specs)
	return runs, err
}

// fireSchedule records that a schedule fired in a minute and starts its
// run, in one transaction: a schedule fires at most once per minute, also
// across restarts and several servers on one database.
func (s *Store) FireSchedule(ctx context.Context, repo *Repo, file, cron string, minute time.Time, sp RunSpec) (bool, error) {
	if err := s.ResolveCalls(ctx, &sp); err != nil { // before the transaction: git and --actions-url
		return false, err
	}
	fired := false
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.Exec(`INSERT INTO schedule_fires (repo_id, workflow_file, cron, last_minute) VALUES (?, ?, ?, ?)
			ON CONFLICT (repo_id, workflow_file, cron) DO UPDATE SET last_minute = excluded.last_minute
			WHERE last_minute < excluded.last_minute`, repo.ID, file, cron, minute.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		fired = true
		_, err = s.InsertRun(tx, sp)
		return err
	})
	return fired, err
}

// allRepos lists every repository, for the scheduler.
func (s *Store) AllRepos(ctx context.Context) ([]*Repo, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+repoCols+" ORDER BY r.id")
	return ScanAll(rows, err, scanRepo)
}
