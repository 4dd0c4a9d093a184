// The run/job state machine: creating runs, claiming jobs, step and job
// transitions, cancel, re-run, the roll-up of a run's conclusion, and
// reaping jobs nobody will finish.

package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/expr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/logtext"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// runSpec is what a new run is made from.
type RunSpec struct {
	RepoID      int64
	File        string // repository path, .shithub/workflows/x.yml
	Content     []byte
	Workflow    *workflow.Workflow // parsed Content; nil when parsing failed
	ParseErr    error
	HeadSHA     string
	HeadRef     string
	Event       string
	Inputs      map[string]string
	Payload     map[string]any // github.event
	ActorID     int64
	ParentRunID int64
	Attempt     int64
	PushID      int64
	Title       string               // display_title: the commit's subject for a push, else the workflow's name
	HeadCommit  *git.Commit          // nil: unknown
	Calls       map[string]*CallFile // the reusable workflows it calls (ResolveCalls); nil: not read yet
	CallsFrom   int64                // a re-run: call what this run called
}

// bumpRepo marks a change to a repository's runs for the feed's validators.
func (s *Store) BumpRepo(tx *sql.Tx, repoID int64, now int64) error {
	_, err := tx.Exec("UPDATE repos SET runs_version = runs_version + 1, runs_updated_at = ? WHERE id = ?", now, repoID)
	return err
}

// insertRun creates a run with its jobs and steps, all queued. A workflow
// that did not parse becomes a completed failed run whose one job's log is
// the parse error: never a silent skip.
func (s *Store) InsertRun(tx *sql.Tx, sp RunSpec) (int64, error) {
	// Called workflows are read before the transaction (CreateRuns,
	// FireSchedule); a caller that did not reads this server's here, and
	// leaves --actions-url's to serve.
	if err := s.resolveCalls(context.Background(), &sp, false); err != nil {
		return 0, err
	}
	now := s.NowMS()
	// The next run number, and a created_at never before the newest run's:
	// lists in run number order (listRuns) and in created_at order (the
	// feed, the filters) then agree even when the clock steps back.
	var idx, last int64
	err := tx.QueryRow("SELECT run_index, created_at FROM runs WHERE repo_id = ? ORDER BY run_index DESC LIMIT 1", sp.RepoID).Scan(&idx, &last)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	idx++
	now = max(now, last)
	name := path.Base(sp.File)
	status, conclusion := protocol.StatusQueued, ""
	var completed sql.NullInt64
	if sp.Workflow != nil {
		name = sp.Workflow.Name
	} else {
		status, conclusion = protocol.StatusCompleted, protocol.ConclusionFailure
		completed = sql.NullInt64{Int64: now, Valid: true}
	}
	if sp.Attempt == 0 {
		sp.Attempt = 1
	}
	if sp.Inputs == nil {
		sp.Inputs = map[string]string{}
	}
	wf, err := s.UpsertWorkflow(tx, sp.RepoID, sp.File, name, sp.Workflow != nil, now)
	if err != nil {
		return 0, err
	}
	if wf.State != WorkflowActive {
		return 0, apperr.Conflictf("workflow %s is disabled: enable it to start runs", path.Base(sp.File))
	}
	title := sp.Title
	if title == "" {
		title = name
	}
	var commit sql.NullString
	if sp.HeadCommit != nil {
		commit = sql.NullString{String: jsonText(sp.HeadCommit), Valid: true}
	}
	if sp.Payload == nil {
		sp.Payload = map[string]any{}
	}
	res, err := tx.Exec(`INSERT INTO runs (uuid, repo_id, run_index, run_attempt, parent_run_id, push_id, workflow_file,
		workflow_name, workflow_content, head_sha, head_ref, event, inputs, actor_id, status, conclusion,
		created_at, started_at, completed_at, updated_at, workflow_id, title, head_commit, event_payload)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		uuid.NewString(), sp.RepoID, idx, sp.Attempt, sql.NullInt64{Int64: sp.ParentRunID, Valid: sp.ParentRunID != 0},
		sql.NullInt64{Int64: sp.PushID, Valid: sp.PushID != 0}, sp.File, name, sp.Content, sp.HeadSHA, sp.HeadRef,
		sp.Event, jsonText(sp.Inputs), sp.ActorID, status, conclusion, now, completed, completed, now, wf.ID, title, commit,
		jsonText(sp.Payload))
	if err != nil {
		return 0, err
	}
	runID, err := res.LastInsertId()
	if err != nil {
		return 0, err
	}
	if err := s.BumpRepo(tx, sp.RepoID, now); err != nil {
		return 0, err
	}
	if err := s.noteRunActivity(tx, runID, "requested", protocol.StatusQueued, "", now); err != nil {
		return 0, err
	}
	if sp.Workflow == nil {
		if err := s.noteRunActivity(tx, runID, "completed", status, conclusion, now); err != nil {
			return 0, err
		}
		return runID, s.insertParseFailure(tx, runID, sp, now)
	}
	if err := insertCalls(tx, runID, &sp); err != nil {
		return 0, err
	}
	// One row per workflow job; activation (advance) evaluates it, and turns
	// a matrix job's row into its legs, once its needs are done.
	for _, wj := range sp.Workflow.Jobs {
		if err := insertJobRow(tx, runID, wj.Key, wj.Name, wj, wj.Needs, 0, now); err != nil {
			return 0, err
		}
	}
	if err := s.startRun(tx, runID, sp.Workflow, now); err != nil {
		return 0, err
	}
	return runID, nil
}

// startRun evaluates a new run's run-name and concurrency, and activates
// its first jobs unless its concurrency group makes it wait.
func (s *Store) startRun(tx *sql.Tx, runID int64, wf *workflow.Workflow, now int64) error {
	plan, err := s.loadPlan(tx, runID)
	if err != nil {
		return err
	}
	env := &expr.Env{Contexts: map[string]any{
		"github": s.githubContext(plan.run, plan.repo, ""), "inputs": stringMapAny(plan.run.Inputs), "vars": map[string]any{},
	}}
	if wf.RunName != "" {
		title, err := expr.Interpolate(wf.RunName, env)
		if err != nil {
			title = wf.RunName // shown as written rather than failing the run
		}
		if _, err := tx.Exec("UPDATE runs SET title = ? WHERE id = ?", title, runID); err != nil {
			return err
		}
	}
	if c := wf.Concurrency; c != nil {
		group, err := expr.Interpolate(c.Group, env)
		cancel := false
		if err == nil && c.CancelInProgress != "" {
			var v any
			if v, err = expr.EvalValue(c.CancelInProgress, env); err == nil {
				cancel = expr.Truthy(exprBoolish(v))
			}
		}
		if err != nil {
			return s.failRunJobs(tx, runID, fmt.Sprintf("%s: concurrency: %v", path.Base(plan.run.WorkflowFile), err), now)
		}
		if group != "" {
			if _, err := tx.Exec("UPDATE runs SET concurrency_group = ? WHERE id = ?", group, runID); err != nil {
				return err
			}
			admitted, err := s.enterGroup(tx, plan.repo.ID, runID, 0, group, cancel, now)
			if err != nil {
				return err
			}
			if !admitted {
				_, err := tx.Exec("UPDATE runs SET pending = 1 WHERE id = ?", runID)
				return err
			}
		}
	}
	if _, err := s.advance(tx, runID, now); err != nil {
		return err
	}
	_, _, err = s.rollup(tx, runID, now)
	return err
}

// failRunJobs fails every job of a new run with one reason.
func (s *Store) failRunJobs(tx *sql.Tx, runID int64, why string, now int64) error {
	jobs, err := runJobs(context.Background(), tx, runID)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if j.Status == protocol.StatusCompleted {
			continue
		}
		if _, err := s.failQueued(tx, j, why, now); err != nil {
			return err
		}
	}
	_, _, err = s.rollup(tx, runID, now)
	return err
}

func (s *Store) insertParseFailure(tx *sql.Tx, runID int64, sp RunSpec, now int64) error {
	res, err := tx.Exec(`INSERT INTO jobs (run_id, job_key, base_key, name, status, conclusion, activated, created_at, started_at, completed_at)
		VALUES (?, 'workflow', 'workflow', 'Parse workflow', 'completed', 'failure', 1, ?, ?, ?)`, runID, now, now, now)
	if err != nil {
		return err
	}
	jobID, err := res.LastInsertId()
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("invalid workflow file: %v\n", sp.ParseErr)
	res, err = tx.Exec(`INSERT INTO steps (job_id, number, kind, name, status, conclusion, started_at, completed_at, log_size)
		VALUES (?, 1, 'setup', 'Set up job', 'completed', 'failure', ?, ?, ?)`, jobID, now, now, len(msg))
	if err != nil {
		return err
	}
	stepID, err := res.LastInsertId()
	if err != nil {
		return err
	}
	_, err = tx.Exec("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, 1, ?)", stepID, []byte(msg))
	return err
}

// createRuns inserts runs for a push or a dispatch in one transaction. For a
// push, pushKey names it: a push already recorded returns its runs instead,
// with created false.
func (s *Store) CreateRuns(ctx context.Context, push *pushKey, specs []RunSpec) (runs []*Run, created bool, err error) {
	var ids []int64
	for i := range specs {
		if err := s.ResolveCalls(ctx, &specs[i]); err != nil {
			return nil, false, err
		}
	}
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		ids, created = nil, true
		var pushID int64
		if push != nil {
			err := tx.QueryRow(`INSERT INTO pushes (repo_id, ref, after_sha, created_at) VALUES (?, ?, ?, ?)
				ON CONFLICT DO NOTHING RETURNING id`, push.RepoID, push.Ref, push.After, s.NowMS()).Scan(&pushID)
			if errors.Is(err, sql.ErrNoRows) { // delivered before
				created = false
				rows, err := tx.Query(`SELECT r.id FROM runs r JOIN pushes p ON p.id = r.push_id
					WHERE p.repo_id = ? AND p.ref = ? AND p.after_sha = ? ORDER BY r.id`, push.RepoID, push.Ref, push.After)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var id int64
					if err := rows.Scan(&id); err != nil {
						return err
					}
					ids = append(ids, id)
				}
				return rows.Err()
			}
			if err != nil {
				return err
			}
		}
		for _, sp := range specs {
			sp.PushID = pushID
			id, err := s.InsertRun(tx, sp)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	runs = make([]*Run, 0, len(ids))
	for _, id := range ids {
		r, err := s.RunByID(ctx, id)
		if err != nil {
			return nil, false, err
		}
		runs = append(runs, r)
	}
	return runs, created, nil
}

type pushKey struct {
	RepoID int64
	Ref    string
	After  string
}

// rerun makes a new run from a completed run: the same commit, ref, event,
// inputs and workflow bytes, the next run_index and attempt.
func (s *Store) Rerun(ctx context.Context, src *Run, actor *User) (*Run, error) {
	return s.RerunSome(ctx, src, actor, nil)
}

// rerunSelect picks, from a completed run's jobs, the ones a partial re-run
// runs again; the others keep their results and logs.
type RerunSelect func(jobs []*Job) (map[string]bool, error)

// failedJobs selects the failed, timed-out and cancelled jobs of a run: what
// GitHub's "re-run failed jobs" runs again (with the jobs that need them).
func FailedJobs(jobs []*Job) (map[string]bool, error) {
	out := map[string]bool{}
	for _, j := range jobs {
		if j.Conclusion == protocol.ConclusionFailure || j.Conclusion == protocol.ConclusionTimedOut || j.Conclusion == protocol.ConclusionCancelled {
			out[j.JobKey] = true
		}
	}
	if len(out) == 0 {
		return nil, apperr.Conflictf("the run has no failed or cancelled jobs to re-run")
	}
	return out, nil
}

// oneJob selects one job of a run (with, as every selection, the jobs that
// need it).
func OneJob(jobID int64) RerunSelect {
	return func(jobs []*Job) (map[string]bool, error) {
		for _, j := range jobs {
			if j.ID == jobID {
				return map[string]bool{j.JobKey: true}, nil
			}
		}
		return nil, apperr.ErrNotFound
	}
}

// rerunSome makes a new run from a completed run, linked to it by
// parent_run_id with the next attempt number. With sel nil every job runs
// again. Otherwise the selected jobs and every job that transitively needs
// one run again, and the other jobs are copied into the new run completed,
// with their steps and logs, so the new run tells the whole story. A
// workflow that no longer parses runs again whole (and fails again).
func (s *Store) RerunSome(ctx context.Context, src *Run, actor *User, sel RerunSelect) (*Run, error) {
	var id int64
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		var status, title string
		var attempt int64
		var content []byte
		var commit sql.NullString
		if err := tx.QueryRow("SELECT status, run_attempt, workflow_content, title, head_commit FROM runs WHERE id = ?", src.ID).
			Scan(&status, &attempt, &content, &title, &commit); err != nil {
			return notFound(err)
		}
		if status != protocol.StatusCompleted {
			return apperr.Conflictf("run is not rerunnable")
		}
		wf, errs := workflow.Check(path.Base(src.WorkflowFile), content)
		perr := workflow.ParseErr(errs)
		var again map[string]bool
		var old []*Job
		if sel != nil {
			var err error
			if old, err = runJobs(ctx, tx, src.ID); err != nil {
				return err
			}
			if again, err = sel(old); err != nil {
				return err
			}
		}
		sp := RunSpec{
			RepoID: src.RepoID, File: src.WorkflowFile, Content: content, Workflow: wf, ParseErr: perr,
			HeadSHA: src.HeadSHA, HeadRef: src.HeadRef, Event: src.Event, Inputs: src.Inputs, Payload: src.EventPayload,
			ActorID: actor.ID, ParentRunID: src.ID, Attempt: attempt + 1, Title: title, CallsFrom: src.ID,
		}
		if commit.Valid {
			sp.HeadCommit = &git.Commit{}
			if err := decodeColumn("runs.head_commit", commit.String, sp.HeadCommit); err != nil {
				return err
			}
		}
		var err error
		if id, err = s.InsertRun(tx, sp); err != nil {
			return err
		}
		if sel == nil || wf == nil {
			return nil
		}
		return s.keepJobs(tx, id, old, again)
	})
	if err != nil {
		return nil, err
	}
	return s.RunByID(ctx, id)
}

// keepJobs makes a partial re-run of run newRun: the jobs in again and
// every job that needs one of them stay queued; every other job is replaced
// by its result in the previous attempt (old), steps and logs included.
// Queued jobs whose needs all succeeded become claimable.
func (s *Store) keepJobs(tx *sql.Tx, newRun int64, old []*Job, again map[string]bool) error {
	jobs, err := runJobs(context.Background(), tx, newRun)
	if err != nil {
		return err
	}
	// A job of a called workflow runs again with its whole call: the new
	// run makes the call's jobs when the calling job is ready.
	for k := range maps.Clone(again) {
		if top, _, ok := strings.Cut(k, "/"); ok {
			top, _, _ = strings.Cut(top, "#")
			again[top] = true
		}
	}
	for grew := true; grew; { // the jobs that need a re-run job run again too
		grew = false
		for _, j := range jobs {
			if !again[j.JobKey] && slices.ContainsFunc(j.Needs, func(n string) bool { return again[n] }) {
				again[j.JobKey], grew = true, true
			}
		}
	}
	prev := map[string]*Job{}
	for _, j := range old {
		prev[j.JobKey] = j
	}
	succeeded := map[string]bool{}
	for _, j := range jobs {
		p := prev[j.JobKey]
		if again[j.JobKey] || p == nil || p.Status != protocol.StatusCompleted {
			continue
		}
		if err := mustAffectOne(tx.Exec(`UPDATE jobs SET status = 'completed', conclusion = ?, ready = 0, runner_id = ?,
			started_at = ?, completed_at = ? WHERE id = ?`, p.Conclusion, sql.NullInt64{Int64: p.RunnerID, Valid: p.RunnerID != 0},
			msOrNull(p.StartedAt), msOrNull(p.CompletedAt), j.ID)); err != nil {
			return err
		}
		if _, err := tx.Exec("DELETE FROM steps WHERE job_id = ?", j.ID); err != nil {
			return err
		}
		steps, err := jobSteps(context.Background(), tx, p.ID)
		if err != nil {
			return err
		}
		for _, st := range steps {
			res, err := tx.Exec(`INSERT INTO steps (job_id, number, kind, name, run, uses, env, working_directory, status, conclusion,
				started_at, completed_at, log_size, log_truncated) SELECT ?, number, kind, name, run, uses, env, working_directory, status,
				conclusion, started_at, completed_at, log_size, log_truncated FROM steps WHERE id = ?`, j.ID, st.ID)
			if err != nil {
				return err
			}
			nid, err := res.LastInsertId()
			if err != nil {
				return err
			}
			if _, err := tx.Exec("INSERT INTO log_chunks (step_id, seq, data) SELECT ?, seq, data FROM log_chunks WHERE step_id = ?", nid, st.ID); err != nil {
				return err
			}
		}
		j.Status, j.Conclusion = protocol.StatusCompleted, p.Conclusion
		if p.Conclusion == protocol.ConclusionSuccess {
			succeeded[j.JobKey] = true
		}
	}
	for _, j := range jobs {
		// A calling job is never claimable; one not activated yet is
		// activated below, once its kept needs are done.
		if j.Status != protocol.StatusQueued || j.Call != "" || j.Waiting != "" || !j.Activated {
			continue
		}
		ready := !slices.ContainsFunc(j.Needs, func(n string) bool { return !succeeded[n] })
		if _, err := tx.Exec("UPDATE jobs SET ready = ? WHERE id = ?", ready, j.ID); err != nil {
			return err
		}
	}
	if _, err := s.advance(tx, newRun, s.NowMS()); err != nil {
		return err
	}
	// The run stays queued, as a new attempt is on GitHub, until one of the
	// jobs it runs again starts: at least one does, and the claim rolls up.
	return nil
}

// msOrNull stores a time as Unix milliseconds, the zero time as NULL.
func msOrNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: true}
}

// cancelResult is the lifecycle API's answer to a cancel.
type CancelResult struct {
	ChangedJobs   int
	RunCompleted  bool
	RunConclusion string
	Running       []int64 // jobs that got cancel_requested: the executor is told at once
}

// cancelJobs cancels jobs of one run (all of them when jobID is 0): queued
// jobs complete as cancelled, running jobs get cancel_requested for their
// runner to act on, and jobs that need the cancelled ones are activated
// (skipped unless their `if` asks for cancelled() or always()).
func (s *Store) CancelJobs(ctx context.Context, runID, jobID int64) (*CancelResult, error) {
	res := &CancelResult{}
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		now := s.NowMS()
		if jobID == 0 {
			// Jobs activated from now on see cancelled(); a run waiting for
			// its concurrency group stops waiting.
			if _, err := tx.Exec("UPDATE runs SET cancelled = 1, pending = 0 WHERE id = ? AND status != 'completed'", runID); err != nil {
				return err
			}
		}
		var err error
		res.ChangedJobs, res.Running, err = s.cancelInTx(tx, runID, jobID, now)
		if err != nil || res.ChangedJobs == 0 {
			return err
		}
		res.RunCompleted, res.RunConclusion, err = s.rollup(tx, runID, now)
		return err
	})
	return res, err
}

// cancelInTx is cancelJobs inside a transaction, without the roll-up.
func (s *Store) cancelInTx(tx *sql.Tx, runID, jobID int64, now int64) (int, []int64, error) {
	jobs, err := runJobs(context.Background(), tx, runID)
	if err != nil {
		return 0, nil, err
	}
	changed := 0
	var running []int64
	for _, j := range jobs {
		if jobID != 0 && j.ID != jobID {
			continue
		}
		switch j.Status {
		case protocol.StatusQueued:
			n, err := s.finishJob(tx, j, protocol.ConclusionCancelled, now)
			if err != nil {
				return 0, nil, err
			}
			changed += n
		case protocol.StatusRunning:
			if j.CancelRequested {
				continue
			}
			if _, err := tx.Exec("UPDATE jobs SET cancel_requested = 1 WHERE id = ? AND status = 'running'", j.ID); err != nil {
				return 0, nil, err
			}
			changed++
			running = append(running, j.ID)
		}
	}
	if changed > 0 {
		n, err := s.advance(tx, runID, now)
		if err != nil {
			return 0, nil, err
		}
		changed += n
	}
	return changed, running, nil
}

// finishJob completes a queued or running job with a conclusion: its open
// steps end (cancelled when the job was, else skipped), and what the end
// sets off among other rows follows (afterFinish). A job already completed
// is left alone (0). It returns how many jobs it completed. Dependents are
// activated by advance, which callers run once they are done.
func (s *Store) finishJob(tx *sql.Tx, j *Job, conclusion string, now int64) (int, error) {
	res, err := tx.Exec(`UPDATE jobs SET status = 'completed', conclusion = ?, completed_at = ?, ready = 0
		WHERE id = ? AND status != 'completed'`, conclusion, now, j.ID)
	if err != nil {
		return 0, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return 0, err
	}
	s.jobEnded(j, conclusion, now)
	if conclusion == protocol.ConclusionSuccess {
		if err := s.noteFlaky(tx, j, now); err != nil {
			return 0, err
		}
	}
	stepConclusion := protocol.ConclusionSkipped
	if conclusion == protocol.ConclusionCancelled {
		stepConclusion = protocol.ConclusionCancelled
	}
	// A step that was running when the job ended stops as the job did.
	if _, err := tx.Exec(`UPDATE steps SET status = 'completed', completed_at = ?,
		conclusion = CASE WHEN status = 'running' AND ? IN ('cancelled', 'timed_out') THEN 'cancelled'
			WHEN status = 'running' THEN 'failure' ELSE ? END
		WHERE job_id = ? AND status != 'completed'`, now, conclusion, stepConclusion, j.ID); err != nil {
		return 0, err
	}
	j.Status, j.Conclusion = protocol.StatusCompleted, conclusion
	if err := s.afterFinish(tx, j, conclusion, now); err != nil {
		return 1, err
	}
	if j.Call != "" && conclusion == protocol.ConclusionCancelled {
		if err := s.cancelCall(tx, j.ID, now); err != nil {
			return 1, err
		}
	}
	if j.CallID != 0 {
		return 1, s.endCall(tx, j.CallID, now)
	}
	return 1, nil
}

// runConclusion folds job results into the run's: failure or timed_out
// if any job has one, else cancelled if any job was, else success; a run
// whose jobs were all skipped is skipped.
func runConclusion(jobs []string) string {
	has := func(c string) bool { return slices.Contains(jobs, c) }
	switch {
	case has(protocol.ConclusionFailure):
		return protocol.ConclusionFailure
	case has(protocol.ConclusionTimedOut):
		return protocol.ConclusionTimedOut
	case has(protocol.ConclusionCancelled):
		return protocol.ConclusionCancelled
	case len(jobs) > 0 && !slices.ContainsFunc(jobs, func(c string) bool { return c != protocol.ConclusionSkipped }):
		return protocol.ConclusionSkipped
	}
	return protocol.ConclusionSuccess
}

// rollup completes the run when every job is terminal and reports whether
// this call did so, with the conclusion. It also moves a queued run to
// running when a job has started, and marks the change for the feed. A
// job's failure with continue-on-error does not fail the run. A completed
// run frees its concurrency group for the run waiting on it.
func (s *Store) rollup(tx *sql.Tx, runID int64, now int64) (bool, string, error) {
	var repoID, created int64
	var status, group string
	if err := tx.QueryRow("SELECT repo_id, status, concurrency_group, created_at FROM runs WHERE id = ?", runID).Scan(&repoID, &status, &group, &created); err != nil {
		return false, "", err
	}
	if err := s.BumpRepo(tx, repoID, now); err != nil {
		return false, "", err
	}
	if status == protocol.StatusCompleted {
		_, err := tx.Exec("UPDATE runs SET updated_at = ? WHERE id = ?", now, runID)
		return false, "", err
	}
	rows, err := tx.Query(`SELECT status, CASE WHEN continue_on_error AND conclusion IN ('failure', 'timed_out')
		THEN 'success' ELSE conclusion END FROM jobs WHERE run_id = ?`, runID)
	if err != nil {
		return false, "", err
	}
	var conclusions []string
	open, started := false, false
	for rows.Next() {
		var st, c string
		if err := rows.Scan(&st, &c); err != nil {
			rows.Close()
			return false, "", err
		}
		if st != protocol.StatusCompleted {
			open = true
		}
		if st != protocol.StatusQueued {
			started = true
		}
		conclusions = append(conclusions, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return false, "", err
	}
	if open {
		newStatus := protocol.StatusQueued
		if started {
			newStatus = protocol.StatusRunning
		}
		if status == protocol.StatusQueued && newStatus == protocol.StatusRunning {
			if err := s.noteRunActivity(tx, runID, "in_progress", newStatus, "", now); err != nil {
				return false, "", err
			}
		}
		_, err := tx.Exec("UPDATE runs SET status = ?, started_at = COALESCE(started_at, CASE WHEN ? = 'running' THEN ? END), updated_at = ? WHERE id = ?",
			newStatus, newStatus, now, now, runID)
		return false, "", err
	}
	c := runConclusion(conclusions)
	if err := mustAffectOne(tx.Exec(`UPDATE runs SET status = 'completed', conclusion = ?, completed_at = ?, updated_at = ?, pending = 0
		WHERE id = ? AND status != 'completed'`, c, now, now, runID)); err != nil {
		return false, "", err
	}
	if err := s.noteRunActivity(tx, runID, "completed", protocol.StatusCompleted, c, now); err != nil {
		return false, "", err
	}
	s.runEnded(c, created, now)
	if group != "" {
		if err := s.admitNext(tx, repoID, group, now); err != nil {
			return false, "", err
		}
	}
	return true, c, nil
}

// claimJob hands the oldest claimable job to a runner: queued, not
// cancel-requested, every label of its runs-on among the runner's, and ready
// (every job it needs succeeded). The single write connection makes the claim
// atomic: no job is claimed twice.
func (s *Store) ClaimJob(ctx context.Context, runner *Runner, labels []string) (*protocol.Job, error) {
	var claimed int64
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		now := s.NowMS()
		if _, err := tx.Exec("UPDATE runners SET last_seen_at = ? WHERE id = ?", now, runner.ID); err != nil {
			return err
		}
		var after int64
		for claimed == 0 {
			rows, err := tx.Query(`SELECT id, run_id, runs_on FROM jobs
				WHERE status = 'queued' AND ready = 1 AND cancel_requested = 0 AND id > ? ORDER BY id LIMIT 100`, after)
			if err != nil {
				return err
			}
			type cand struct {
				id, run int64
				runsOn  []string
			}
			var cands []cand
			for rows.Next() {
				var c cand
				var runsOn string
				if err := rows.Scan(&c.id, &c.run, &runsOn); err != nil {
					rows.Close()
					return err
				}
				if err := decodeColumn("jobs.runs_on", runsOn, &c.runsOn); err != nil {
					rows.Close()
					return err
				}
				cands = append(cands, c)
			}
			rows.Close()
			if len(cands) == 0 {
				return nil
			}
			for _, c := range cands {
				after = c.id
				if !labelsFit(c.runsOn, labels) {
					continue
				}
				if err := mustAffectOne(tx.Exec(`UPDATE jobs SET status = 'running', runner_id = ?, started_at = ?, claim_acked = 0
					WHERE id = ? AND status = 'queued'`, runner.ID, now, c.id)); err != nil {
					return err
				}
				if _, _, err := s.rollup(tx, c.run, now); err != nil {
					return err
				}
				// Its GITHUB_TOKEN and secrets. A secret that cannot be
				// decrypted fails the job, saying which.
				if err := s.IssueJobCredentials(ctx, tx, c.id, now); apperr.CodeOf(err) == apperr.Invalid {
					if err := s.failJob(tx, c.id, protocol.ConclusionFailure, err.Error(), now); err != nil {
						return err
					}
					continue
				} else if err != nil {
					return err
				}
				claimed = c.id
				break
			}
		}
		return nil
	})
	if err != nil || claimed == 0 {
		return nil, err
	}
	return s.claimedJob(ctx, claimed)
}

// narrowLabels is what a runner registered with labels may claim when its
// heartbeat names asked (nil: all of them): the labels in both. A heartbeat
// narrows the registration, never widens it.
func NarrowLabels(registered, asked []string) []string {
	if asked == nil {
		return registered
	}
	out := []string{}
	for _, l := range asked {
		if slices.Contains(registered, l) && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// labelsFit reports whether a runner with labels can take a job with runsOn.
func labelsFit(runsOn, labels []string) bool {
	for _, l := range runsOn {
		if !slices.Contains(labels, l) {
			return false
		}
	}
	return true
}

// claimedJob assembles what a runner needs to run a job: the values the
// server evaluated when the job became ready, and the workflow's raw text
// for its steps, which the executor evaluates.
func (s *Store) claimedJob(ctx context.Context, jobID int64) (*protocol.Job, error) {
	j, err := s.JobByID(ctx, jobID)
	if err != nil {
		return nil, err
	}
	run, err := s.RunByID(ctx, j.RunID)
	if err != nil {
		return nil, err
	}
	repo, err := s.RepoByID(ctx, run.RepoID)
	if err != nil {
		return nil, err
	}
	steps, err := jobSteps(ctx, s.db, j.ID)
	if err != nil {
		return nil, err
	}
	runContent, err := s.RunContent(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	// A job of a called workflow is written in that file.
	wfFile, content, key, err := s.jobWorkflow(ctx, s.db, j, run.WorkflowFile, runContent)
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	for k, v := range j.Env {
		env[k] = v
	}
	// The variables a GitHub Actions user's scripts read.
	for k, v := range map[string]string{
		"CI": "true", "SHITHUB_ACTIONS": "true", "GITHUB_ACTIONS": "true",
		"GITHUB_SHA": run.HeadSHA, "GITHUB_REF": run.HeadRef, "GITHUB_REF_NAME": workflow.RefName(run.HeadRef),
		"GITHUB_REPOSITORY": repo.FullName(), "GITHUB_REPOSITORY_OWNER": repo.Owner,
		"GITHUB_RUN_ID": fmt.Sprint(run.ID), "GITHUB_RUN_NUMBER": fmt.Sprint(run.RunIndex),
		"GITHUB_RUN_ATTEMPT": fmt.Sprint(run.RunAttempt), "GITHUB_WORKFLOW": run.WorkflowName,
		"GITHUB_JOB": key, "GITHUB_EVENT_NAME": run.Event, "GITHUB_ACTOR": run.Actor,
		"GITHUB_WORKSPACE": protocol.Workspace,
	} {
		env[k] = v
	}
	if j.CallID == 0 {
		for k, v := range run.Inputs {
			env["INPUT_"+strings.ToUpper(k)] = v
		}
	}
	ctxs := j.Contexts
	if len(ctxs) == 0 { // a job made before contexts were recorded
		ctxs = map[string]any{"github": s.githubContext(run, repo, j.BaseKey), "inputs": stringMapAny(run.Inputs),
			"matrix": map[string]any{}, "needs": map[string]any{}, "vars": map[string]any{}, "secrets": map[string]any{},
			"env": stringMapAny(j.Env)}
	}
	if _, ok := ctxs["matrix"]; !ok {
		ctxs["matrix"] = map[string]any{}
	}
	// The job's secrets, variables and GITHUB_TOKEN (jobtoken.go), issued
	// when it was claimed. A job claimed before they existed has none.
	delivered := false
	if d, err := s.JobDelivery(ctx, j.ID); err == nil {
		delivered = true
		ctxs["secrets"], ctxs["vars"] = stringMapAny(d.Secrets), stringMapAny(d.Vars)
		if gh, ok := ctxs["github"].(map[string]any); ok {
			gh["token"] = d.Token
		}
	} else if !errors.Is(err, apperr.ErrNotFound) {
		return nil, err
	}
	cj := &protocol.Job{
		JobID: j.ID, RunID: run.ID, RepoID: repo.ID, Repo: repo.FullName(),
		HeadSHA: run.HeadSHA, HeadRef: run.HeadRef, Event: run.Event,
		WorkflowName: run.WorkflowName, WorkflowFile: run.WorkflowFile,
		JobKey: key, JobName: j.Name, RunsOn: NonNil(j.RunsOn), Image: j.Image,
		Env: env, TimeoutMinutes: j.TimeoutMinutes,
		Contexts: ctxs, Container: j.Container, Services: nonNilServices(j.Services), Outputs: map[string]string{},
		Untrusted: isForkPullRequest(run.Event, run.EventPayload, repo.FullName()),
	}
	wf, _ := workflow.Parse(path.Base(wfFile), content)
	var wj *workflow.Job
	if wf != nil {
		cj.Defaults = wf.Defaults
		for _, x := range wf.Jobs {
			if x.Key == key {
				wj = x
			}
		}
	}
	if wj != nil && delivered {
		evalWithDelivery(cj, wf, wj)
	}
	if wj != nil {
		if wj.Defaults.Shell != "" {
			cj.Defaults.Shell = wj.Defaults.Shell
		}
		if wj.Defaults.WorkingDirectory != "" {
			cj.Defaults.WorkingDirectory = wj.Defaults.WorkingDirectory
		}
		for k, v := range wj.Outputs {
			cj.Outputs[k] = v
		}
		// An environment url reading steps is evaluated by the runner at
		// the job's end; the rest the server evaluated when the job became
		// ready (jobplan).
		if e := wj.Environment; e != nil && strings.Contains(e.URL, "steps.") {
			cj.EnvironmentURL = e.URL
		}
	}
	if cj.RuntimeToken, err = s.jobRuntimeToken(ctx, cj); err != nil {
		return nil, err
	}
	for _, st := range steps {
		cs := protocol.Step{
			ID: st.ID, Number: st.Number, Kind: st.Kind, Name: st.Name, Run: st.Run, Uses: st.Uses,
			Env: NonNilMap(st.Env), WorkingDirectory: st.WorkingDirectory, With: map[string]string{},
		}
		if i := st.Number - 2; st.Kind != "setup" && wj != nil && i >= 0 && i < len(wj.Steps) {
			ws := wj.Steps[i]
			cs.StepKey, cs.If, cs.Shell = ws.ID, ws.If, ws.Shell
			cs.ContinueOnError, cs.TimeoutMinutes = ws.ContinueOnError, ws.TimeoutMinutes
			for k, v := range ws.With {
				cs.With[k] = v
			}
		}
		cj.Steps = append(cj.Steps, cs)
	}
	return cj, nil
}

// heldJob loads a job that runner holds; any other job is apperr.ErrNotFound, so a
// runner learns nothing of jobs that are not its own.
func heldJob(ctx context.Context, q querier, runnerID, jobID int64) (*Job, error) {
	j, err := jobByID(ctx, q, jobID)
	if err != nil {
		return nil, err
	}
	if j.RunnerID != runnerID {
		return nil, apperr.ErrNotFound
	}
	return j, nil
}

// HeldJob loads a job that runner holds; any other job is
// apperr.ErrNotFound.
func (s *Store) HeldJob(ctx context.Context, runnerID, jobID int64) (*Job, error) {
	return heldJob(ctx, s.db, runnerID, jobID)
}

// cancelCheck answers a runner's cancel-check for a job it holds, and
// counts as a sign of life from the runner.
func (s *Store) CancelCheck(ctx context.Context, runnerID, jobID int64) (bool, error) {
	j, err := heldJob(ctx, s.db, runnerID, jobID)
	if err != nil {
		return false, err
	}
	return j.CancelRequested, s.TouchRunner(ctx, runnerID)
}

// ackClaim records that the runner holding a job got the claim: any status
// or log post from it says so. A claim never acknowledged goes back to the
// queue (requeueUnacked). Once acked, this changes no row.
func ackClaim(tx *sql.Tx, jobID int64) error {
	_, err := tx.Exec("UPDATE jobs SET claim_acked = 1 WHERE id = ? AND claim_acked = 0", jobID)
	return err
}

// requeueUnacked puts back in the queue the jobs a remote runner claimed
// more than within ago without acknowledging them: the heartbeat's answer
// never reached it (a proxy timed out, the connection broke), so nothing
// runs them. A late report from that runner finds the job no longer its
// own and is refused. The server's own pool, which cannot lose an answer,
// is left alone.
func (s *Store) RequeueUnacked(ctx context.Context, localRunnerID int64, within time.Duration) ([]int64, error) {
	var ids []int64
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		ids = nil
		now := s.NowMS()
		rows, err := tx.Query(`SELECT id, run_id FROM jobs WHERE status = 'running' AND claim_acked = 0
			AND runner_id != ? AND started_at < ?`, localRunnerID, now-within.Milliseconds())
		if err != nil {
			return err
		}
		var runs []int64
		for rows.Next() {
			var id, run int64
			if err := rows.Scan(&id, &run); err != nil {
				rows.Close()
				return err
			}
			ids, runs = append(ids, id), append(runs, run)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, id := range ids {
			if err := mustAffectOne(tx.Exec(`UPDATE jobs SET status = 'queued', runner_id = NULL, started_at = NULL
				WHERE id = ? AND status = 'running' AND claim_acked = 0`, id)); err != nil {
				return err
			}
			if _, _, err := s.rollup(tx, runs[i], now); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// failUnservable fails the jobs queued for longer than timeout that no
// runner can take: no registered, unrevoked runner (nor the server's own
// pool, poolRunnerID, 0 when it runs no jobs) has every label of their
// runs-on. Without this they would wait forever. The log says which labels
// are missing.
func (s *Store) FailUnservable(ctx context.Context, poolRunnerID int64, timeout time.Duration) ([]int64, error) {
	var ids []int64
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		ids = nil
		now := s.NowMS()
		rows, err := tx.Query("SELECT labels FROM runners WHERE revoked_at IS NULL AND (hash IS NOT NULL OR id = ?)", poolRunnerID)
		if err != nil {
			return err
		}
		var sets [][]string
		for rows.Next() {
			var text string
			var labels []string
			if err := rows.Scan(&text); err != nil {
				rows.Close()
				return err
			}
			if err := decodeColumn("runners.labels", text, &labels); err != nil {
				rows.Close()
				return err
			}
			sets = append(sets, labels)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.Query(`SELECT id, runs_on FROM jobs WHERE status = 'queued' AND ready = 1 AND created_at < ?`,
			now-timeout.Milliseconds())
		if err != nil {
			return err
		}
		var runsOn [][]string
		for rows.Next() {
			var id int64
			var text string
			var labels []string
			if err := rows.Scan(&id, &text); err != nil {
				rows.Close()
				return err
			}
			if err := decodeColumn("jobs.runs_on", text, &labels); err != nil {
				rows.Close()
				return err
			}
			if !slices.ContainsFunc(sets, func(set []string) bool { return labelsFit(labels, set) }) {
				ids, runsOn = append(ids, id), append(runsOn, labels)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i, id := range ids {
			why := fmt.Sprintf("no runner can take this job: none has all of its runs-on labels %s; it waited %v (--queue-timeout)",
				strings.Join(runsOn[i], ", "), timeout)
			if len(runsOn[i]) == 0 {
				why = fmt.Sprintf("no runner can take this job: none is registered; it waited %v (--queue-timeout)", timeout)
			}
			if err := s.failJob(tx, id, protocol.ConclusionFailure, why, now); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

// touchRunner records a sign of life, at most every ten seconds.
func (s *Store) TouchRunner(ctx context.Context, runnerID int64) error {
	now := s.NowMS()
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.Exec("UPDATE runners SET last_seen_at = ? WHERE id = ? AND COALESCE(last_seen_at, 0) < ?", now, runnerID, now-10_000)
		return err
	})
}

// appendLog stores one chunk of a step's log, masked with the job's secrets
// and token first (jobmask.go), so no value reaches the database. A (step,
// seq) seen before is a no-op, so a runner may resend after a lost answer;
// a resent chunk is not masked twice. Past the cap the chunk is cut and a
// marker ends the log.
func (s *Store) AppendLog(ctx context.Context, runnerID, jobID, stepID, seq int64, data []byte) error {
	m, err := s.masker(ctx, jobID)
	if err != nil {
		return err
	}
	var next *logtext.MaskWriter // the step's writer after this chunk, once stored
	locked := false
	defer func() {
		if locked {
			m.mu.Unlock()
		}
	}()
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		m.mu.Lock() // inside the transaction: see jobMasker
		locked = true
		j, err := heldJob(ctx, tx, runnerID, jobID)
		if err != nil {
			return err
		}
		if err := ackClaim(tx, j.ID); err != nil {
			return err
		}
		var size int64
		var truncated bool
		if err := tx.QueryRow("SELECT log_size, log_truncated FROM steps WHERE id = ? AND job_id = ?", stepID, j.ID).Scan(&size, &truncated); err != nil {
			return notFound(err)
		}
		if j.Status == protocol.StatusCompleted {
			return apperr.Conflictf("job is completed")
		}
		var dup int
		if err := tx.QueryRow("SELECT COUNT(*) FROM log_chunks WHERE step_id = ? AND seq = ?", stepID, seq).Scan(&dup); err != nil {
			return err
		}
		if dup > 0 || truncated {
			return nil
		}
		next = m.writer(stepID).Clone()
		data = next.Write(data)
		if size+int64(len(data)) > s.logCap {
			data = append(data[:s.logCap-size:s.logCap-size], fmt.Sprintf("\n##[warning]log truncated: a step's log keeps at most %d bytes\n", s.logCap)...)
			truncated = true
		}
		if _, err := tx.Exec("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, ?, ?)", stepID, seq, data); err != nil {
			return err
		}
		s.logStored(len(data))
		_, err = tx.Exec("UPDATE steps SET log_size = log_size + ?, log_truncated = ? WHERE id = ?", len(data), truncated, stepID)
		return err
	})
	if !locked {
		m.mu.Lock()
		locked = true
	}
	switch {
	case err == nil && next != nil:
		m.steps[stepID] = next
	case apperr.CodeOf(err) == apperr.Conflict || errors.Is(err, apperr.ErrNotFound):
		if len(m.steps) == 0 {
			s.dropMasker(jobID) // a job that is over, or not this runner's: keep nothing
		}
	}
	return err
}

// setStepStatus moves a step of a running job: queued → running →
// completed, or queued → completed. Repeating the state a step is in is a
// no-op; anything else is a conflict.
func (s *Store) SetStepStatus(ctx context.Context, runnerID, jobID, stepID int64, status, conclusion string) error {
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		j, err := heldJob(ctx, tx, runnerID, jobID)
		if err != nil {
			return err
		}
		if err := ackClaim(tx, j.ID); err != nil {
			return err
		}
		var cur, curC string
		if err := tx.QueryRow("SELECT status, conclusion FROM steps WHERE id = ? AND job_id = ?", stepID, j.ID).Scan(&cur, &curC); err != nil {
			return notFound(err)
		}
		if cur == status && curC == conclusion {
			return nil
		}
		now := s.NowMS()
		switch {
		case j.Status != protocol.StatusRunning:
			return apperr.Conflictf("job is %s", j.Status)
		case status == protocol.StatusRunning && conclusion == "" && cur == protocol.StatusQueued:
			_, err = tx.Exec("UPDATE steps SET status = 'running', started_at = ? WHERE id = ?", now, stepID)
		case status == protocol.StatusCompleted && validStepConclusion(conclusion) && cur != protocol.StatusCompleted:
			// What the masker holds back of the step's log is stored now.
			if m := s.LoadedMasker(j.ID); m != nil {
				m.mu.Lock()
				_, err := flushStepTail(tx, m, stepID)
				if err == nil {
					delete(m.steps, stepID)
				}
				m.mu.Unlock()
				if err != nil {
					return err
				}
			}
			_, err = tx.Exec("UPDATE steps SET status = 'completed', conclusion = ?, started_at = COALESCE(started_at, ?), completed_at = ? WHERE id = ?",
				conclusion, now, now, stepID)
		default:
			return apperr.Conflictf("illegal step transition from %s to %s", Describe(cur, curC), Describe(status, conclusion))
		}
		if err != nil {
			return err
		}
		return s.bumpRepoOfRun(tx, j.RunID, now)
	})
}

func Describe(status, conclusion string) string {
	if conclusion != "" {
		return status + "/" + conclusion
	}
	return status
}

func validStepConclusion(c string) bool {
	return slices.Contains([]string{protocol.ConclusionSuccess, protocol.ConclusionFailure, protocol.ConclusionCancelled, protocol.ConclusionSkipped}, c)
}

func (s *Store) bumpRepoOfRun(tx *sql.Tx, runID, now int64) error {
	if _, err := tx.Exec("UPDATE runs SET updated_at = ? WHERE id = ?", now, runID); err != nil {
		return err
	}
	_, err := tx.Exec("UPDATE repos SET runs_version = runs_version + 1, runs_updated_at = ? WHERE id = (SELECT repo_id FROM runs WHERE id = ?)", now, runID)
	return err
}

// completeJob ends a job its runner holds and rolls up the run in the same
// transaction. Reporting the same end twice is a no-op.
func (s *Store) CompleteJob(ctx context.Context, runnerID, jobID int64, status, conclusion string) error {
	return s.CompleteJobWith(ctx, runnerID, jobID, status, conclusion, nil, "")
}

// maxJobOutputs bounds what a job's outputs may hold in all (GitHub: 1 MB
// per job).
const maxJobOutputs = 1 << 20

// maxEnvironmentURL bounds an environment url a runner reports.
const MaxEnvironmentURL = 4096

// completeJobWith is completeJob with the job's outputs, which feed
// needs.<id>.outputs of the jobs that need it, and its environment's url
// when the runner evaluated it (it read the steps context).
func (s *Store) CompleteJobWith(ctx context.Context, runnerID, jobID int64, status, conclusion string, outputs map[string]string, envURL string) error {
	if len(envURL) > MaxEnvironmentURL {
		return apperr.Invalidf("environment_url may hold at most %d bytes", MaxEnvironmentURL)
	}
	size := 0
	for k, v := range outputs {
		size += len(k) + len(v)
	}
	if size > maxJobOutputs {
		return apperr.Invalidf("job outputs may hold at most %d bytes", maxJobOutputs)
	}
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		j, err := heldJob(ctx, tx, runnerID, jobID)
		if err != nil {
			return err
		}
		if err := ackClaim(tx, j.ID); err != nil {
			return err
		}
		if j.Status == status && j.Conclusion == conclusion {
			return nil
		}
		ok := status == protocol.StatusCompleted && j.Status == protocol.StatusRunning &&
			slices.Contains([]string{protocol.ConclusionSuccess, protocol.ConclusionFailure, protocol.ConclusionCancelled, protocol.ConclusionTimedOut}, conclusion)
		if !ok {
			return apperr.Conflictf("illegal job transition from %s to %s", Describe(j.Status, j.Conclusion), Describe(status, conclusion))
		}
		now := s.NowMS()
		if err := s.flushJobTails(tx, j.ID); err != nil {
			return err
		}
		if len(outputs) > 0 {
			if _, err := tx.Exec("UPDATE jobs SET outputs = ? WHERE id = ?", jsonText(outputs), j.ID); err != nil {
				return err
			}
		}
		if envURL != "" && j.Environment != nil {
			e := *j.Environment
			e.URL = envURL
			if _, err := tx.Exec("UPDATE jobs SET environment = ? WHERE id = ?", jsonText(e), j.ID); err != nil {
				return err
			}
		}
		if err := s.finishOne(tx, j, conclusion, now); err != nil {
			return err
		}
		_, _, err = s.rollup(tx, j.RunID, now)
		return err
	})
}

// finishOne is finishJob followed by activating the jobs it frees.
func (s *Store) finishOne(tx *sql.Tx, j *Job, conclusion string, now int64) error {
	if _, err := s.finishJob(tx, j, conclusion, now); err != nil {
		return err
	}
	_, err := s.advance(tx, j.RunID, now)
	return err
}

// failRunnerJobs completes every job a runner holds as failure with a line
// in its log saying why, and rolls up their runs. The server calls it at
// start-up for its own pool (jobs the previous process left running).
func (s *Store) FailRunnerJobs(ctx context.Context, runnerID int64, why string) ([]int64, error) {
	var ids []int64
	err := s.WithTx(ctx, func(tx *sql.Tx) (err error) {
		ids, err = s.failRunnerJobsTx(tx, runnerID, why, s.NowMS())
		return err
	})
	return ids, err
}

// failRunnerJobsTx is failRunnerJobs inside a transaction.
func (s *Store) failRunnerJobsTx(tx *sql.Tx, runnerID int64, why string, now int64) ([]int64, error) {
	var ids []int64
	rows, err := tx.Query("SELECT id FROM jobs WHERE status = 'running' AND runner_id = ?", runnerID)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := s.failJob(tx, id, protocol.ConclusionFailure, why, now); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// failJob ends a running job on the server's own authority (restart,
// runner lost, deadline): the reason goes to the log of the step that was
// running, or else of the first step, after what is there.
func (s *Store) failJob(tx *sql.Tx, jobID int64, conclusion, why string, now int64) error {
	j, err := jobByID(context.Background(), tx, jobID)
	if err != nil {
		return err
	}
	if err := s.flushJobTails(tx, jobID); err != nil {
		return err
	}
	if err := serverLog(tx, jobID, "\n##[error]"+why+"\n"); err != nil {
		return err
	}
	if err := s.finishOne(tx, j, conclusion, now); err != nil {
		return err
	}
	_, _, err = s.rollup(tx, j.RunID, now)
	return err
}

// reapJobs ends running jobs nobody will finish: past their timeout (plus
// grace, as the runner enforces it first) they are timed_out; held by a
// remote runner not heard from in lostAfter, they fail. This is what keeps a
// run from staying "running" forever when a runner dies.
func (s *Store) ReapJobs(ctx context.Context, localRunnerID int64, grace, lostAfter time.Duration) (int, error) {
	n := 0
	err := s.WithTx(ctx, func(tx *sql.Tx) error {
		now := s.NowMS()
		type victim struct {
			id              int64
			conclusion, why string
		}
		var victims []victim
		rows, err := tx.Query(`SELECT j.id, j.started_at + j.timeout_minutes * 60000 + ? < ?,
				j.runner_id != ? AND COALESCE(r.last_seen_at, 0) < ?
			FROM jobs j JOIN runners r ON r.id = j.runner_id WHERE j.status = 'running'`,
			grace.Milliseconds(), now, localRunnerID, now-lostAfter.Milliseconds())
		if err != nil {
			return err
		}
		for rows.Next() {
			var id int64
			var late, lost bool
			if err := rows.Scan(&id, &late, &lost); err != nil {
				rows.Close()
				return err
			}
			switch {
			case late:
				victims = append(victims, victim{id, protocol.ConclusionTimedOut, "the job exceeded its timeout and its runner did not stop it"})
			case lost:
				victims = append(victims, victim{id, protocol.ConclusionFailure, "the runner stopped reporting (lost)"})
			}
		}
		rows.Close()
		for _, v := range victims {
			if err := s.failJob(tx, v.id, v.conclusion, v.why, now); err != nil {
				return err
			}
		}
		n = len(victims)
		return nil
	})
	return n, err
}

// ---- the server's part: wake the executor, reap ----

// claimAckTimeout is how long a remote runner has to acknowledge a claim
// (its first status or log post) before the job goes back to the queue.
const ClaimAckTimeout = time.Minute

// attempts lists a run and the runs it re-ran, back to the first attempt,
// newest first: GitHub's attempts of one run.
func (s *Store) Attempts(ctx context.Context, run *Run) ([]*Run, error) {
	out := []*Run{run}
	for cur := run; cur.ParentRunID != 0 && len(out) < 1000; {
		p, err := s.RunByID(ctx, cur.ParentRunID)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		cur = p
	}
	return out, nil
}
