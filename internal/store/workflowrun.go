// workflow_run: a run's activity (requested, in_progress, completed)
// starts the default branch's workflows that listen for its workflow.
//
// The activity is recorded in the transaction that changes the run
// (noteRunActivity, from InsertRun and rollup), at most once per run and
// type. Reading the default branch takes git processes, which a write
// transaction must not wait for, so the runs it triggers are made
// afterwards, by FireWorkflowRuns, in the transaction that marks the
// activity done: an activity is never lost to a crash (it stays pending
// and is fired when the server is back) and never fires twice (also with
// several servers on one database).

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// WorkflowRunChainLimit is GitHub's: workflow_run chains no more than
// three levels. After A (any event) runs B (workflow_run), B runs C and C
// runs D, D starts nothing.
const WorkflowRunChainLimit = 3

// noteRunActivity records that run runID went through a workflow_run
// activity type, with its status and conclusion then. A type seen before
// for the run is not recorded again: a run whose only started job was put
// back in the queue is not in progress twice.
func (s *Store) noteRunActivity(tx *sql.Tx, runID int64, action, status, conclusion string, now int64) error {
	res, err := tx.Exec(`INSERT INTO workflow_run_events (run_id, action, status, conclusion, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, runID, action, status, conclusion, now)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	s.onCommit = append(s.onCommit, func() {
		select {
		case s.workflowRunWake <- struct{}{}:
		default: // one wake-up pending is enough
		}
	})
	return nil
}

// WorkflowRunWake is signalled when a recorded activity has committed:
// FireWorkflowRuns has work.
func (s *Store) WorkflowRunWake() <-chan struct{} { return s.workflowRunWake }

// runActivity is a row of workflow_run_events.
type runActivity struct {
	id, runID                  int64
	action, status, conclusion string
}

// sqlPendingActivities is a hot query (EXPLAIN QUERY PLAN checked in the
// tests): the loop asks it at every wake-up.
const sqlPendingActivities = `SELECT id, run_id, action, status, conclusion FROM workflow_run_events
		WHERE done = 0 AND id > ? ORDER BY id LIMIT 100`

// FireWorkflowRuns starts the runs that recorded activities call for,
// oldest first, and reports how many it started. An activity whose
// repository cannot be read now (git fails) stays pending and is tried at
// the next call; the error says why.
func (s *Store) FireWorkflowRuns(ctx context.Context) (int, error) {
	started := 0
	var errs []error
	for after := int64(0); ; {
		acts, err := s.pendingActivities(ctx, after)
		if err != nil {
			return started, errors.Join(append(errs, err)...)
		}
		if len(acts) == 0 {
			return started, errors.Join(errs...)
		}
		after = acts[len(acts)-1].id
		n, err := s.fireActivities(ctx, acts)
		started += n
		if err != nil {
			errs = append(errs, err)
		}
	}
}

// pendingActivities is a page of the activities not fired yet, after id.
func (s *Store) pendingActivities(ctx context.Context, after int64) ([]runActivity, error) {
	rows, err := s.rd.QueryContext(ctx, sqlPendingActivities, after)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var acts []runActivity
	for rows.Next() {
		var a runActivity
		if err := rows.Scan(&a.id, &a.runID, &a.action, &a.status, &a.conclusion); err != nil {
			return nil, err
		}
		acts = append(acts, a)
	}
	return acts, rows.Err()
}

// fireActivities starts the runs of some activities, each in the
// transaction that marks it done.
func (s *Store) fireActivities(ctx context.Context, acts []runActivity) (int, error) {
	started := 0
	var errs []error
	for _, a := range acts {
		specs, err := s.workflowRunSpecs(ctx, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("workflow_run of run %d (%s): %w", a.runID, a.action, err))
			continue
		}
		err = s.WithTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.Exec("UPDATE workflow_run_events SET done = 1 WHERE id = ? AND done = 0", a.id)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return err // fired already, by another server
			}
			for _, sp := range specs {
				if _, err := s.InsertRun(tx, sp); errors.Is(err, apperr.ErrConflict) {
					continue // disabled since it was read
				} else if err != nil {
					return err
				}
				started++
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return started, errors.Join(errs...)
}

// workflowRunSpecs reads the runs an activity triggers: the workflows of
// the default branch's head whose on.workflow_run names the run's
// workflow, has the activity among its types and matches the run's head
// branch; none past the chain limit. A workflow of the default branch that
// does not parse is skipped (its push run already says why).
func (s *Store) workflowRunSpecs(ctx context.Context, a runActivity) ([]RunSpec, error) {
	run, err := s.RunByID(ctx, a.runID)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, nil // removed by retention meanwhile
	}
	if err != nil {
		return nil, err
	}
	depth, err := s.workflowRunDepth(ctx, run)
	if err != nil {
		return nil, err
	}
	if depth >= WorkflowRunChainLimit {
		return nil, nil
	}
	repo, err := s.RepoByID(ctx, run.RepoID)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// The default branch as scheduled runs have it.
	g := git.Repo{Dir: repo.GitDir}
	branch := repo.DefaultBranch
	sha, err := g.Resolve(ctx, "refs/heads/"+branch)
	if errors.Is(err, apperr.ErrNotFound) {
		return nil, nil // no commit on the default branch
	}
	if err != nil {
		return nil, err
	}
	files, err := g.WorkflowFiles(ctx, sha)
	if err != nil {
		return nil, err
	}
	disabled, err := s.disabledWorkflows(ctx, repo.ID)
	if err != nil {
		return nil, err
	}
	headBranch := runHeadBranch(run)
	var specs []RunSpec
	var commit *git.Commit
	var payload map[string]any
	for _, f := range files {
		content, err := g.ReadFile(ctx, sha, f)
		if err != nil {
			return nil, err
		}
		wf, errs := workflow.Check(path.Base(f), content)
		if workflow.ParseErr(errs) != nil || wf.WorkflowRun == nil || disabled[f] {
			continue
		}
		// GitHub names a workflow without `name:` by its path.
		if !wf.WorkflowRun.Matches(run.WorkflowName, a.action, headBranch) &&
			!wf.WorkflowRun.Matches(run.WorkflowFile, a.action, headBranch) {
			continue
		}
		if commit == nil {
			if commit, err = g.Commit(ctx, sha); err != nil {
				return nil, err
			}
			if payload, err = s.workflowRunPayload(ctx, repo, run, a); err != nil {
				return nil, err
			}
		}
		specs = append(specs, RunSpec{
			RepoID: repo.ID, File: f, Content: content, Workflow: wf,
			HeadSHA: sha, HeadRef: "refs/heads/" + branch, Event: "workflow_run", ActorID: run.ActorID,
			HeadCommit: commit, Payload: payload,
		})
	}
	return specs, nil
}

// workflowRunDepth is how many workflow_run links lead to run: 0 for a run
// of any other event. A link whose run retention removed ends the walk.
func (s *Store) workflowRunDepth(ctx context.Context, run *Run) (int, error) {
	depth := 0
	for run.Event == "workflow_run" && depth < WorkflowRunChainLimit {
		depth++
		wr, _ := run.EventPayload["workflow_run"].(map[string]any)
		id, ok := jsonInt(wr["id"])
		if !ok {
			break
		}
		up, err := s.RunByID(ctx, id)
		if errors.Is(err, apperr.ErrNotFound) {
			break
		}
		if err != nil {
			return 0, err
		}
		run = up
	}
	return depth, nil
}

// jsonInt reads a JSON number decoded into an any.
func jsonInt(v any) (int64, bool) {
	switch n := v.(type) {
	case float64:
		return int64(n), n == float64(int64(n))
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	case int64:
		return n, true
	}
	return 0, false
}

// runHeadBranch is GitHub's head_branch of a run: a pull request's head
// branch, else the branch or tag name of its ref.
func runHeadBranch(run *Run) string {
	if pr, ok := run.EventPayload["pull_request"].(map[string]any); ok {
		if h, ok := pr["head"].(map[string]any); ok {
			if ref, ok := h["ref"].(string); ok && ref != "" {
				return ref
			}
		}
	}
	return workflow.RefName(run.HeadRef)
}

// workflowRunPayload is github.event of a workflow_run run: the action,
// the triggering run as GitHub's workflow_run object (the fields of the
// REST dialect's run, ghapi.go's runJSON, which TestWorkflowRunPayloadShape
// keeps in step) with its status at the activity, its workflow, the
// repository and the sender.
func (s *Store) workflowRunPayload(ctx context.Context, repo *Repo, run *Run, a runActivity) (map[string]any, error) {
	w, err := s.workflowByID(ctx, repo.ID, run.WorkflowID)
	if err != nil && !errors.Is(err, apperr.ErrNotFound) {
		return nil, err
	}
	base := s.serverURL
	apiRepo := base + "/api/v1/repos/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name)
	tab := base + "/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/actions"
	stamp := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(time.RFC3339)
	}
	user := func(id int64, login string) map[string]any {
		return map[string]any{"login": login, "id": id, "node_id": fmt.Sprintf("U_%d", id), "avatar_url": "",
			"url": base + "/api/v1/users/" + url.PathEscape(login), "html_url": base + "/", "type": "User", "site_admin": false}
	}
	visibility := "public"
	if repo.Private {
		visibility = "private"
	}
	repoObj := map[string]any{
		"id": repo.ID, "node_id": fmt.Sprintf("R_%d", repo.ID), "name": repo.Name, "full_name": repo.FullName(),
		"private": repo.Private, "visibility": visibility, "owner": user(repo.OwnerID, repo.Owner),
		"html_url": tab, "description": nil, "fork": false, "archived": false, "url": apiRepo,
		"default_branch": repo.DefaultBranch,
	}
	status := a.status
	if status == protocol.StatusRunning {
		status = "in_progress"
	}
	var conclusion any
	if a.conclusion != "" {
		conclusion = a.conclusion
	}
	title := run.Title
	if title == "" {
		title = run.WorkflowName
	}
	runURL := fmt.Sprintf("%s/actions/runs/%d", apiRepo, run.ID)
	var prev any
	if run.ParentRunID != 0 {
		prev = fmt.Sprintf("%s/actions/runs/%d", apiRepo, run.ParentRunID)
	}
	var headCommit any
	if run.HeadCommit != nil {
		headCommit = run.HeadCommit
	}
	actor := user(run.ActorID, run.Actor)
	wr := map[string]any{
		"id": run.ID, "name": run.WorkflowName, "node_id": fmt.Sprintf("WFR_%d", run.ID),
		"head_branch": runHeadBranch(run), "head_sha": run.HeadSHA, "path": run.WorkflowFile,
		"display_title": title, "run_number": run.RunIndex, "run_attempt": run.RunAttempt, "event": run.Event,
		"status": status, "conclusion": conclusion, "workflow_id": run.WorkflowID,
		"check_suite_id": run.ID, "check_suite_node_id": fmt.Sprintf("CS_%d", run.ID),
		"url": runURL, "html_url": fmt.Sprintf("%s/runs/%d", tab, run.RunIndex),
		"pull_requests": []any{}, "referenced_workflows": []any{},
		"created_at": stamp(run.CreatedAt), "updated_at": stamp(run.UpdatedAt), "run_started_at": stamp(run.CreatedAt),
		"actor": actor, "triggering_actor": actor,
		"jobs_url": runURL + "/jobs", "logs_url": runURL + "/logs",
		"check_suite_url": fmt.Sprintf("%s/check-suites/%d", apiRepo, run.ID), "artifacts_url": runURL + "/artifacts",
		"cancel_url": runURL + "/cancel", "rerun_url": runURL + "/rerun", "previous_attempt_url": prev,
		"workflow_url": fmt.Sprintf("%s/actions/workflows/%d", apiRepo, run.WorkflowID),
		"head_commit":  headCommit, "repository": repoObj, "head_repository": repoObj,
	}
	wfObj := map[string]any{"id": run.WorkflowID, "node_id": fmt.Sprintf("W_%d", run.WorkflowID),
		"name": run.WorkflowName, "path": run.WorkflowFile, "state": WorkflowActive,
		"url":       fmt.Sprintf("%s/actions/workflows/%d", apiRepo, run.WorkflowID),
		"html_url":  tab + "?workflow=" + url.QueryEscape(git.WorkflowName(run.WorkflowFile)),
		"badge_url": tab + "/workflows/" + url.PathEscape(git.WorkflowName(run.WorkflowFile)) + "/badge.svg"}
	if w != nil {
		wfObj["name"], wfObj["state"] = w.Name, w.State
		wfObj["created_at"], wfObj["updated_at"] = stamp(w.CreatedAt), stamp(w.UpdatedAt)
	}
	// Through JSON, as a stored payload reads back: github.event is the
	// same whether the run was just made or loaded.
	var out map[string]any
	b, err := json.Marshal(map[string]any{"action": a.action, "workflow_run": wr, "workflow": wfObj,
		"repository": repoObj, "sender": actor})
	if err != nil {
		return nil, err
	}
	return out, json.Unmarshal(b, &out)
}
