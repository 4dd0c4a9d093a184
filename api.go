// The REST API and the runner protocol: handlers and their wire types.

package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
)

// ---- the lifecycle API ----

// cancelResponse is the specification's answer to a cancel, field for field.
type cancelResponse struct {
	JobID         int64  `json:"job_id"`
	RunID         int64  `json:"run_id"`
	RepoID        int64  `json:"repo_id"`
	ChangedJobs   int    `json:"changed_jobs"`
	RunCompleted  bool   `json:"run_completed"`
	RunConclusion string `json:"run_conclusion"`
}

// writableRun loads a run the user may write. A run that does not exist, or
// that the user may not see or may not write, is the same 404: ids are
// global and must not be enumerable.
func (s *server) writableRun(r *http.Request, user *store.User, runID int64) (*store.Run, *store.Repo, error) {
	run, err := s.store.RunByID(r.Context(), runID)
	if err != nil {
		return nil, nil, err
	}
	repo, err := s.store.RepoByID(r.Context(), run.RepoID)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.store.Permission(r.Context(), repo, user)
	if err != nil {
		return nil, nil, err
	}
	if p < store.PermWrite {
		return nil, nil, apperr.ErrNotFound
	}
	return run, repo, nil
}

// handleJobCancel serves POST /api/v1/jobs/{id}/cancel.
func (s *server) handleJobCancel(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	job, err := s.store.JobByID(r.Context(), id)
	if err != nil {
		return err
	}
	run, _, err := s.writableRun(r, user, job.RunID)
	if err != nil {
		return err
	}
	return s.Cancel(w, r, run, job.ID)
}

// handleRunCancel serves POST /api/v1/runs/{id}/cancel.
func (s *server) handleRunCancel(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	run, _, err := s.writableRun(r, user, id)
	if err != nil {
		return err
	}
	return s.Cancel(w, r, run, 0)
}

// cancel cancels one job of run (every job when jobID is 0), tells the
// executor of the running ones at once, and answers 202.
func (s *server) Cancel(w http.ResponseWriter, r *http.Request, run *store.Run, jobID int64) error {
	res, err := s.cancelJobs(r.Context(), run.ID, jobID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, cancelResponse{
		JobID: jobID, RunID: run.ID, RepoID: run.RepoID, ChangedJobs: res.ChangedJobs,
		RunCompleted: res.RunCompleted, RunConclusion: res.RunConclusion,
	})
	return nil
}

// rerunResponse is the specification's answer to a re-run, field for field.
type rerunResponse struct {
	RunID        int64  `json:"run_id"`
	RunIndex     int64  `json:"run_index"`
	ParentRunID  int64  `json:"parent_run_id"`
	RepoID       int64  `json:"repo_id"`
	WorkflowFile string `json:"workflow_file"`
	HeadSHA      string `json:"head_sha"`
}

// handleRunRerun serves POST /api/v1/runs/{id}/rerun.
func (s *server) handleRunRerun(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	run, _, err := s.writableRun(r, user, id)
	if err != nil {
		return err
	}
	nr, err := s.rerun(r.Context(), run, user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rerunResponse{
		RunID: nr.ID, RunIndex: nr.RunIndex, ParentRunID: nr.ParentRunID, RepoID: nr.RepoID,
		WorkflowFile: nr.WorkflowFile, HeadSHA: nr.HeadSHA,
	})
	return nil
}

// ---- triggers ----

// handlePush serves POST /api/v1/repos/{owner}/{repo}/actions/events/push.
// A push delivered again answers 200 with the runs it made the first time.
func (s *server) handlePush(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	repo, err := s.repoFor(r, user, store.PermWrite)
	if err != nil {
		return err
	}
	if user.Job != nil {
		// GitHub's loop rule: a push made with a GITHUB_TOKEN starts no run.
		return apperr.Forbiddenf("a push made with a GITHUB_TOKEN starts no runs")
	}
	var body struct {
		Ref    string `json:"ref"`
		Before string `json:"before"`
		After  string `json:"after"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	res, err := store.TriggerPush(r.Context(), s.store, repo, user, body.Ref, body.Before, body.After)
	if err != nil {
		return err
	}
	if res.Created {
		s.Wake()
	}
	code := http.StatusCreated
	if !res.Created {
		code = http.StatusOK
	}
	out := s.ghView(r, repo).runs(res.Runs, len(res.Runs))
	out.DisabledWorkflows = res.Disabled
	writeJSON(w, code, out)
	return nil
}

// handlePullRequest serves POST /api/v1/repos/{owner}/{repo}/actions/events/pull_request
// {"action","number","head_sha","head_ref","base_ref","base_sha","title"}:
// 201 with the runs it started (none is still 201).
func (s *server) handlePullRequest(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	repo, err := s.repoFor(r, user, store.PermWrite)
	if err != nil {
		return err
	}
	var body store.PrEvent
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	runs, err := store.TriggerPullRequest(r.Context(), s.store, repo, user, body)
	if err != nil {
		return err
	}
	if len(runs) > 0 {
		s.Wake()
	}
	writeJSON(w, http.StatusCreated, s.ghView(r, repo).runs(runs, len(runs)))
	return nil
}

// handleDispatch serves
// POST /api/v1/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches,
// where workflow_id is a workflow's id or file name: 204, or with
// return_run_details 200 and GitHub's workflow_run_id, run_url and html_url.
func (s *server) handleDispatch(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	repo, err := s.repoFor(r, user, store.PermWrite)
	if err != nil {
		return err
	}
	var body struct {
		Ref              string         `json:"ref"`
		Inputs           map[string]any `json:"inputs"`
		ReturnRunDetails bool           `json:"return_run_details"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	file := r.PathValue("workflow_id")
	if _, err := strconv.ParseInt(file, 10, 64); err == nil {
		wf, err := s.store.FindWorkflow(r.Context(), repo, file)
		if err != nil {
			return err
		}
		file = path.Base(wf.Path)
	}
	run, err := store.TriggerDispatch(r.Context(), s.store, repo, user, file, body.Ref, body.Inputs)
	if err != nil {
		return err
	}
	s.Wake()
	if !body.ReturnRunDetails {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	v := s.ghView(r, repo)
	writeJSON(w, http.StatusOK, map[string]any{
		"workflow_run_id": run.ID, "run_url": v.runURL(run.ID), "html_url": runPage(v.base, repo, run.RunIndex),
	})
	return nil
}

// ---- reading ----

// handleRunList serves GET /api/v1/repos/{owner}/{repo}/actions/runs.
func (s *server) handleRunList(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	return s.listRuns(w, r, repo, 0)
}

// runFromPath loads the path's run of a readable repository.
func (s *server) runFromPath(r *http.Request) (*store.Repo, *store.Run, error) {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return nil, nil, err
	}
	run, err := s.pathRun(r, repo)
	return repo, run, err
}

// pathRun loads the path's {run_id} if it is a run of repo; a run of any
// other repository is not found, as ids are global.
func (s *server) pathRun(r *http.Request, repo *store.Repo) (*store.Run, error) {
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, err
	}
	run, err := s.store.RunByID(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if run.RepoID != repo.ID {
		return nil, apperr.ErrNotFound
	}
	return run, nil
}

// handleRunGet serves GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}.
func (s *server) handleRunGet(w http.ResponseWriter, r *http.Request) error {
	repo, run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.ghView(r, repo).run(run))
	return nil
}

// serveJobLog answers with a job's whole log as text, streamed a page of
// chunks at a time: memory does not grow with the log. A log is anything a
// job printed: it must never be taken for a page.
func (s *server) serveJobLog(w http.ResponseWriter, r *http.Request, jobID int64) error {
	steps, err := s.store.JobSteps(r.Context(), jobID)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "no-store")
	if err := writeJobLog(r.Context(), w, s.store, steps); err != nil {
		// The answer has begun: all that is left is to cut it short.
		s.log.Warn("streaming a job log", "job", jobID, "err", err)
	}
	return nil
}

// writeJobLog writes a job's steps and their logs in GitHub's grouped form.
func writeJobLog(ctx context.Context, w io.Writer, st *store.Store, steps []*store.Step) error {
	for _, step := range steps {
		if _, err := fmt.Fprintf(w, "##[group]%s\n", step.Name); err != nil {
			return err
		}
		var last byte = '\n'
		err := st.EachLogChunk(ctx, step.ID, 0, func(c store.LogChunk) error {
			if len(c.Data) > 0 {
				last = c.Data[len(c.Data)-1]
			}
			_, err := w.Write(c.Data)
			return err
		})
		if err != nil {
			return err
		}
		if last != '\n' {
			io.WriteString(w, "\n")
		}
		if _, err := io.WriteString(w, "##[endgroup]\n"); err != nil {
			return err
		}
	}
	return nil
}

// ---- the runner protocol ----

// handleHeartbeat serves POST /api/v1/runners/heartbeat: 200 with a claimed
// job, or 204 when none fits.
func (s *server) handleHeartbeat(w http.ResponseWriter, r *http.Request) error {
	rn, err := s.requireRunner(r)
	if err != nil {
		return err
	}
	var body struct {
		Labels   []string `json:"labels"`
		Capacity *int     `json:"capacity"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Capacity != nil && *body.Capacity < 0 {
		return apperr.Malformedf("capacity must not be negative")
	}
	labels := store.NarrowLabels(rn.Labels, body.Labels)
	if body.Capacity != nil && *body.Capacity == 0 {
		if err := s.store.TouchRunner(r.Context(), rn.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	job, err := s.store.ClaimJob(r.Context(), rn, labels)
	if err != nil {
		return err
	}
	if job == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	setJobURLs(job, s.remoteJobURL(r))
	writeJSON(w, http.StatusOK, job)
	return nil
}

// handleJobCancelCheck serves POST /api/v1/jobs/{id}/cancel-check.
func (s *server) handleJobCancelCheck(w http.ResponseWriter, r *http.Request) error {
	rn, id, err := s.runnerJob(r)
	if err != nil {
		return err
	}
	requested, err := s.store.CancelCheck(r.Context(), rn.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"cancel_requested": requested})
	return nil
}

// runnerJob authenticates a runner token and reads the path's job {id}:
// what every runner-protocol handler about one job starts with.
func (s *server) runnerJob(r *http.Request) (*store.Runner, int64, error) {
	rn, err := s.requireRunner(r)
	if err != nil {
		return nil, 0, err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return nil, 0, err
	}
	return rn, id, nil
}

// handleJobLogAppend serves POST /api/v1/jobs/{id}/logs.
func (s *server) handleJobLogAppend(w http.ResponseWriter, r *http.Request) error {
	rn, id, err := s.runnerJob(r)
	if err != nil {
		return err
	}
	var body struct {
		StepID int64  `json:"step_id"`
		Seq    int64  `json:"seq"`
		Data   string `json:"data"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Seq < 1 {
		return apperr.Malformedf("seq must be 1 or more")
	}
	data, err := base64.StdEncoding.DecodeString(body.Data)
	if err != nil {
		return apperr.Malformedf("data must be base64: %v", err)
	}
	if len(data) > maxLogChunk {
		return apperr.Malformedf("a log chunk may carry at most %d bytes", maxLogChunk)
	}
	if err := s.store.AppendLog(r.Context(), rn.ID, id, body.StepID, body.Seq, data); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"step_id": body.StepID, "seq": body.Seq})
	return nil
}

type statusBody struct {
	Status     string            `json:"status"`
	Conclusion string            `json:"conclusion"`
	Outputs    map[string]string `json:"outputs,omitempty"` // a job's outputs (job status only)
	// EnvironmentURL is the job's environment url evaluated at its end
	// (job status only).
	EnvironmentURL string `json:"environment_url,omitempty"`
}

// handleStepStatus serves POST /api/v1/jobs/{id}/steps/{step_id}/status.
func (s *server) handleStepStatus(w http.ResponseWriter, r *http.Request) error {
	rn, id, err := s.runnerJob(r)
	if err != nil {
		return err
	}
	stepID, err := pathID(r, "step_id")
	if err != nil {
		return err
	}
	var body statusBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.Outputs != nil || body.EnvironmentURL != "" {
		return apperr.Malformedf("a step status has no outputs or environment_url")
	}
	if err := s.store.SetStepStatus(r.Context(), rn.ID, id, stepID, body.Status, body.Conclusion); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleJobStatus serves POST /api/v1/jobs/{id}/status.
func (s *server) handleJobStatus(w http.ResponseWriter, r *http.Request) error {
	rn, id, err := s.runnerJob(r)
	if err != nil {
		return err
	}
	var body statusBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if err := s.store.CompleteJobWith(r.Context(), rn.ID, id, body.Status, body.Conclusion, body.Outputs, body.EnvironmentURL); err != nil {
		return err
	}
	// Jobs that needed this one may be claimable now.
	s.Wake()
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleJobAnnotation serves POST /api/v1/jobs/{id}/annotations: one
// ::error, ::warning or ::notice of a step. 202 with "kept" false when a
// cap dropped it.
func (s *server) handleJobAnnotation(w http.ResponseWriter, r *http.Request) error {
	rn, id, err := s.runnerJob(r)
	if err != nil {
		return err
	}
	var a protocol.Annotation
	if err := decodeJSON(r, &a); err != nil {
		return err
	}
	a.ID = 0
	kept, err := s.store.AddAnnotation(r.Context(), rn.ID, id, a)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]bool{"kept": kept})
	return nil
}

// handleStepSummary serves POST /api/v1/jobs/{id}/steps/{step_id}/summary
// {"markdown"}: the step's $GITHUB_STEP_SUMMARY, replacing any before.
func (s *server) handleStepSummary(w http.ResponseWriter, r *http.Request) error {
	rn, id, err := s.runnerJob(r)
	if err != nil {
		return err
	}
	stepID, err := pathID(r, "step_id")
	if err != nil {
		return err
	}
	var body struct {
		Markdown string `json:"markdown"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if err := s.store.SetStepSummary(r.Context(), rn.ID, id, stepID, body.Markdown); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"size": len(body.Markdown)})
	return nil
}

// handleJobGit serves /api/v1/jobs/{id}/git/{path...}: the job's repository,
// read-only over git's smart HTTP protocol, to the runner holding the job,
// so a remote runner can check out the commit. Fetching any sha is allowed:
// the job's commit need not be a branch tip any more. Under
// .../git/OWNER/REPO/ it serves another repository of this server, for a
// checkout's repository input and submodules: one the job may reach
// (reach.go), judged from its run, never from what the runner says, with
// the checkout's token from the checkoutTokenHeader.
func (s *server) handleJobGit(w http.ResponseWriter, r *http.Request) error {
	rn, id, err := s.runnerJob(r)
	if err != nil {
		return err
	}
	job, err := s.store.HeldJob(r.Context(), rn.ID, id)
	if err != nil {
		return err
	}
	if job.Status != protocol.StatusRunning {
		return apperr.ErrNotFound
	}
	run, err := s.store.RunByID(r.Context(), job.RunID)
	if err != nil {
		return err
	}
	repo, err := s.store.RepoByID(r.Context(), run.RepoID)
	if err != nil {
		return err
	}
	root := fmt.Sprintf("/api/v1/jobs/%d/git", id)
	gitDir := repo.GitDir
	p := r.PathValue("path")
	if parts := strings.SplitN(p, "/", 3); len(parts) == 3 {
		from, err := s.store.RunReach(r.Context(), run, r.Header.Get(executor.CheckoutTokenHeader))
		if err != nil {
			return err
		}
		other, err := s.store.ReachRepo(r.Context(), from, parts[0], parts[1])
		if ae := (*apperr.Error)(nil); errors.As(err, &ae) && ae.Code != apperr.Internal {
			// In plain text, which git shows the runner as "remote: ...";
			// a refused token input as 403, since on a 401 git asks for a
			// password instead.
			code := apperr.HTTPStatus(ae.Code)
			if ae.Code == apperr.Unauthenticated {
				code = http.StatusForbidden
			}
			http.Error(w, ae.Msg, code)
			return nil
		}
		if err != nil {
			return err
		}
		gitDir = other.GitDir
		root += "/" + parts[0] + "/" + parts[1]
		p = parts[2]
	}
	if !(r.Method == http.MethodGet && p == "info/refs" && r.URL.Query().Get("service") == "git-upload-pack") &&
		!(r.Method == http.MethodPost && p == "git-upload-pack") {
		return apperr.ErrNotFound
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return err
	}
	h := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Root: root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + gitDir,
			"GIT_HTTP_EXPORT_ALL=1",
			"GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_0=uploadpack.allowAnySHA1InWant", "GIT_CONFIG_VALUE_0=true",
			"GIT_CONFIG_KEY_1=http.receivepack", "GIT_CONFIG_VALUE_1=false",
		},
		Stderr: io.Discard,
	}
	h.ServeHTTP(w, r)
	return nil
}

// cancelJobs is the one code path of a cancel, for the API and the pages.
func (s *server) cancelJobs(ctx context.Context, runID, jobID int64) (*store.CancelResult, error) {
	res, err := s.store.CancelJobs(ctx, runID, jobID)
	if err != nil {
		return nil, err
	}
	s.store.Metrics().CancelRequested(res.Running)
	if s.exec != nil {
		for _, id := range res.Running {
			s.exec.Cancel(id)
		}
	}
	return res, nil
}

// rerun is the one code path of a re-run, for the API and the pages.
func (s *server) rerun(ctx context.Context, run *store.Run, user *store.User) (*store.Run, error) {
	return s.rerunSome(ctx, run, user, nil)
}

// rerunSome is rerun of the selected jobs (and the jobs that need them):
// GitHub's re-run of failed jobs, and of one job.
func (s *server) rerunSome(ctx context.Context, run *store.Run, user *store.User, sel store.RerunSelect) (*store.Run, error) {
	nr, err := s.store.RerunSome(ctx, run, user, sel)
	if err == nil {
		s.Wake()
	}
	return nr, err
}

// accessRepo authenticates a request to the access endpoints: a PAT with
// scope whose user is an admin of the path's repository, as GitHub asks.
func (s *server) accessRepo(r *http.Request, scope string) (*store.Repo, error) {
	user, err := s.requireUser(r, scope)
	if err != nil {
		return nil, err
	}
	return s.repoFor(r, user, store.PermAdmin)
}

// handleAccessGet serves GET /api/v1/repos/{owner}/{repo}/actions/permissions/access:
// {"access_level"}, as GitHub's.
func (s *server) handleAccessGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.accessRepo(r, store.ScopeRead)
	if err != nil {
		return err
	}
	level, err := s.store.ActionsAccess(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"access_level": level})
	return nil
}

// handleAccessPut serves PUT /api/v1/repos/{owner}/{repo}/actions/permissions/access
// with {"access_level": "none"|"user"|"organization"}: 204.
func (s *server) handleAccessPut(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.accessRepo(r, store.ScopeWrite)
	if err != nil {
		return err
	}
	var body struct {
		AccessLevel *string `json:"access_level"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if body.AccessLevel == nil {
		return apperr.Invalidf("access_level is required: none, user or organization")
	}
	if err := s.store.SetActionsAccess(r.Context(), repo.ID, *body.AccessLevel); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
