package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// server serves the API, the feed and the pages.
type server struct {
	store   *Store
	log     *slog.Logger
	baseURL string   // from --base-url; "" means derive it from each request
	exec    notifier // the in-process executor; nil when none runs
	mux     *http.ServeMux

	localRunnerID int64 // the in-process pool's runner row; its jobs are never "lost"
	feeds         feedCache

	web *webUI // the pages (web.go)
}

// notifier is what the server tells its in-process executor.
type notifier interface {
	wake()              // a job may have become claimable
	cancel(jobID int64) // a running job was asked to cancel
}

// maxBody caps request bodies; a log chunk (1 MiB, base64) is the largest.
const maxBody = 2 << 20

// maxLogChunk is the most one log request may carry, decoded.
const maxLogChunk = 1 << 20

func newServer(store *Store, logger *slog.Logger, baseURL string) *server {
	s := &server{store: store, log: logger, baseURL: strings.TrimSuffix(baseURL, "/"), mux: http.NewServeMux()}
	s.routes()
	return s
}

func (s *server) routes() {
	// The lifecycle API (../shared/spec/actions-workflow-api.md).
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", s.wrap(s.handleJobCancel))
	s.mux.HandleFunc("POST /api/v1/runs/{id}/rerun", s.wrap(s.handleRunRerun))
	s.mux.HandleFunc("POST /api/v1/runs/{id}/cancel", s.wrap(s.handleRunCancel))

	// Triggers.
	s.mux.HandleFunc("POST /api/v1/repos/{owner}/{repo}/actions/events/push", s.wrap(s.handlePush))
	s.mux.HandleFunc("POST /api/v1/repos/{owner}/{repo}/actions/workflows/{workflow_file}/dispatches", s.wrap(s.handleDispatch))

	// Reading.
	s.mux.HandleFunc("GET /api/v1/repos/{owner}/{repo}/actions/runs", s.wrap(s.handleRunList))
	s.mux.HandleFunc("GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}", s.wrap(s.handleRunGet))
	s.mux.HandleFunc("GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/jobs", s.wrap(s.handleRunJobs))
	s.mux.HandleFunc("GET /api/v1/repos/{owner}/{repo}/actions/jobs/{job_id}/logs", s.wrap(s.handleJobLogs))
	s.mux.HandleFunc("GET /{owner}/{repo}/actions.atom", s.wrap(s.handleFeed))

	// The runner protocol.
	s.mux.HandleFunc("POST /api/v1/runners/heartbeat", s.wrap(s.handleHeartbeat))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/cancel-check", s.wrap(s.handleJobCancelCheck))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/logs", s.wrap(s.handleJobLogAppend))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/steps/{step_id}/status", s.wrap(s.handleStepStatus))
	s.mux.HandleFunc("POST /api/v1/jobs/{id}/status", s.wrap(s.handleJobStatus))
	s.mux.HandleFunc("/api/v1/jobs/{id}/git/{path...}", s.wrap(s.handleJobGit))

	// The pages.
	s.webRoutes()
}

// ServeHTTP logs each request and makes every error under /api/ JSON,
// including the mux's own 404 and 405.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r.Body = http.MaxBytesReader(sw, r.Body, maxBody)
	if _, pattern := s.mux.Handler(r); pattern == "" && strings.HasPrefix(r.URL.Path, "/api/") {
		s.apiNoRoute(sw, r)
	} else {
		s.mux.ServeHTTP(sw, r)
	}
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "dur", time.Since(start).Round(time.Microsecond))
}

// apiNoRoute answers an /api/ request no route matched, in JSON: 405 with
// the Allow header when the path has routes under other methods, else 404.
func (s *server) apiNoRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPatch, http.MethodPost, http.MethodPut} {
		probe := *r
		probe.Method = m
		if _, pattern := s.mux.Handler(&probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found"})
		return
	}
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"message": "method not allowed"})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets live pages stream through the logging wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// wrap turns a handler that returns an error into an http.HandlerFunc.
func (s *server) wrap(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.error(w, r, err)
		}
	}
}

// error is the one place an error becomes a response: the domain's codes
// map to their status (httpStatus); anything else is logged and the client
// hears only "internal error".
func (s *server) error(w http.ResponseWriter, r *http.Request, err error) {
	code, msg := httpStatus(errorCode(err)), errorMessage(err)
	if code >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="shithub-actions"`)
	}
	if s.web != nil && isPageRequest(r) {
		s.webError(w, r, code, msg)
		return
	}
	writeJSON(w, code, map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// decodeJSON reads a request body into v, strictly: unknown fields and
// trailing data are errors a client should hear about.
func decodeJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return malformedf("request body must be a JSON object")
		}
		return malformedf("invalid JSON body: %v", err)
	}
	if dec.More() {
		return malformedf("invalid JSON body: trailing data")
	}
	return nil
}

// pathID parses a numeric path value; anything else is not found, as an
// id that does not exist would be.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

// base is the absolute URL prefix links are made from.
func (s *server) base(r *http.Request) string {
	if s.baseURL != "" {
		return s.baseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// ---- JSON shapes ----

type runJSON struct {
	ID           int64      `json:"id"`
	RunIndex     int64      `json:"run_index"`
	RunAttempt   int64      `json:"run_attempt"`
	ParentRunID  *int64     `json:"parent_run_id"`
	RepoID       int64      `json:"repo_id"`
	WorkflowFile string     `json:"workflow_file"`
	WorkflowName string     `json:"workflow_name"`
	HeadSHA      string     `json:"head_sha"`
	HeadRef      string     `json:"head_ref"`
	Event        string     `json:"event"`
	Status       string     `json:"status"`
	Conclusion   string     `json:"conclusion"`
	Actor        string     `json:"actor"`
	CreatedAt    *time.Time `json:"created_at"`
	StartedAt    *time.Time `json:"started_at"`
	CompletedAt  *time.Time `json:"completed_at"`
	UpdatedAt    *time.Time `json:"updated_at"`
	HTMLURL      string     `json:"html_url"`
}

// timePtr renders a time as RFC 3339 UTC at second precision, nil for
// unset.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC().Truncate(time.Second)
	return &t
}

// actionsTabURL is repo's Actions tab under base ("" gives a path).
func actionsTabURL(base string, repo *Repo) string {
	return base + "/" + url.PathEscape(repo.Owner) + "/" + url.PathEscape(repo.Name) + "/actions"
}

// runPage is the page of run number idx of repo under base.
func runPage(base string, repo *Repo, idx int64) string {
	return fmt.Sprintf("%s/runs/%d", actionsTabURL(base, repo), idx)
}

func (s *server) runJSON(r *http.Request, repo *Repo, run *Run) runJSON {
	var parent *int64
	if run.ParentRunID != 0 {
		parent = &run.ParentRunID
	}
	return runJSON{
		ID: run.ID, RunIndex: run.RunIndex, RunAttempt: run.RunAttempt, ParentRunID: parent, RepoID: run.RepoID,
		WorkflowFile: run.WorkflowFile, WorkflowName: run.WorkflowName, HeadSHA: run.HeadSHA, HeadRef: run.HeadRef,
		Event: run.Event, Status: run.Status, Conclusion: run.Conclusion, Actor: run.Actor,
		CreatedAt: timePtr(run.CreatedAt), StartedAt: timePtr(run.StartedAt), CompletedAt: timePtr(run.CompletedAt),
		UpdatedAt: timePtr(run.UpdatedAt), HTMLURL: runPage(s.base(r), repo, run.RunIndex),
	}
}

type stepJSON struct {
	ID          int64      `json:"id"`
	Number      int        `json:"number"`
	Name        string     `json:"name"`
	Status      string     `json:"status"`
	Conclusion  string     `json:"conclusion"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`
}

type jobJSON struct {
	ID              int64      `json:"id"`
	RunID           int64      `json:"run_id"`
	JobKey          string     `json:"job_key"`
	Name            string     `json:"name"`
	RunsOn          []string   `json:"runs_on"`
	Needs           []string   `json:"needs"`
	Status          string     `json:"status"`
	Conclusion      string     `json:"conclusion"`
	CancelRequested bool       `json:"cancel_requested"`
	StartedAt       *time.Time `json:"started_at"`
	CompletedAt     *time.Time `json:"completed_at"`
	Steps           []stepJSON `json:"steps"`
}

func toJobJSON(j *Job) jobJSON {
	out := jobJSON{
		ID: j.ID, RunID: j.RunID, JobKey: j.JobKey, Name: j.Name, RunsOn: nonNil(j.RunsOn), Needs: nonNil(j.Needs),
		Status: j.Status, Conclusion: j.Conclusion, CancelRequested: j.CancelRequested,
		StartedAt: timePtr(j.StartedAt), CompletedAt: timePtr(j.CompletedAt), Steps: []stepJSON{},
	}
	for _, st := range j.Steps {
		out.Steps = append(out.Steps, stepJSON{ID: st.ID, Number: st.Number, Name: st.Name, Status: st.Status,
			Conclusion: st.Conclusion, StartedAt: timePtr(st.StartedAt), CompletedAt: timePtr(st.CompletedAt)})
	}
	return out
}

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
func (s *server) writableRun(r *http.Request, user *User, runID int64) (*Run, *Repo, error) {
	run, err := s.store.runByID(r.Context(), runID)
	if err != nil {
		return nil, nil, err
	}
	repo, err := s.store.repoByID(r.Context(), run.RepoID)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.store.permission(r.Context(), repo, user)
	if err != nil {
		return nil, nil, err
	}
	if p < permWrite {
		return nil, nil, errNotFound
	}
	return run, repo, nil
}

// handleJobCancel serves POST /api/v1/jobs/{id}/cancel.
func (s *server) handleJobCancel(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, scopeWrite)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	job, err := s.store.jobByID(r.Context(), id)
	if err != nil {
		return err
	}
	run, _, err := s.writableRun(r, user, job.RunID)
	if err != nil {
		return err
	}
	return s.cancel(w, r, run, job.ID)
}

// handleRunCancel serves POST /api/v1/runs/{id}/cancel.
func (s *server) handleRunCancel(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, scopeWrite)
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
	return s.cancel(w, r, run, 0)
}

// cancel cancels one job of run (every job when jobID is 0), tells the
// executor of the running ones at once, and answers 202.
func (s *server) cancel(w http.ResponseWriter, r *http.Request, run *Run, jobID int64) error {
	res, err := s.cancelJobs(r, run.ID, jobID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, cancelResponse{
		JobID: jobID, RunID: run.ID, RepoID: run.RepoID, ChangedJobs: res.ChangedJobs,
		RunCompleted: res.RunCompleted, RunConclusion: res.RunConclusion,
	})
	return nil
}

// cancelJobs is the one code path of a cancel, for the API and the pages.
func (s *server) cancelJobs(r *http.Request, runID, jobID int64) (*cancelResult, error) {
	res, err := s.store.cancelJobs(r.Context(), runID, jobID)
	if err != nil {
		return nil, err
	}
	if s.exec != nil {
		for _, id := range res.Running {
			s.exec.cancel(id)
		}
	}
	return res, nil
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
	user, err := s.requireUser(r, scopeWrite)
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
	nr, err := s.rerun(r, run, user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, rerunResponse{
		RunID: nr.ID, RunIndex: nr.RunIndex, ParentRunID: nr.ParentRunID, RepoID: nr.RepoID,
		WorkflowFile: nr.WorkflowFile, HeadSHA: nr.HeadSHA,
	})
	return nil
}

// rerun is the one code path of a re-run, for the API and the pages.
func (s *server) rerun(r *http.Request, run *Run, user *User) (*Run, error) {
	nr, err := s.store.rerun(r.Context(), run, user)
	if err == nil {
		s.wake()
	}
	return nr, err
}

func (s *server) wake() {
	if s.exec != nil {
		s.exec.wake()
	}
}

// ---- triggers ----

// repoFor loads the repository named in the path and checks that user may
// act on it at level p. A repository the user may not read is not found.
func (s *server) repoFor(r *http.Request, user *User, p perm) (*Repo, error) {
	repo, got, err := s.readablePathRepo(r, user)
	if err != nil {
		return nil, err
	}
	if got < p {
		return nil, forbiddenf("%s permission on %s required", p, repo.FullName())
	}
	return repo, nil
}

// readablePathRepo loads the repository named in the path with user's
// permission on it; one the user may not read is not found.
func (s *server) readablePathRepo(r *http.Request, user *User) (*Repo, perm, error) {
	repo, err := s.store.repoByName(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
	if err != nil {
		return nil, permNone, err
	}
	p, err := s.store.permission(r.Context(), repo, user)
	if err != nil {
		return nil, permNone, err
	}
	if p < permRead {
		return nil, permNone, errNotFound
	}
	return repo, p, nil
}

type runsJSON struct {
	TotalCount   int       `json:"total_count"`
	WorkflowRuns []runJSON `json:"workflow_runs"`
}

func (s *server) runsJSON(r *http.Request, repo *Repo, runs []*Run, total int) runsJSON {
	out := runsJSON{TotalCount: total, WorkflowRuns: []runJSON{}}
	for _, run := range runs {
		out.WorkflowRuns = append(out.WorkflowRuns, s.runJSON(r, repo, run))
	}
	return out
}

// handlePush serves POST /api/v1/repos/{owner}/{repo}/actions/events/push.
// A push delivered again answers 200 with the runs it made the first time.
func (s *server) handlePush(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, scopeWrite)
	if err != nil {
		return err
	}
	repo, err := s.repoFor(r, user, permWrite)
	if err != nil {
		return err
	}
	var body struct {
		Ref    string `json:"ref"`
		Before string `json:"before"`
		After  string `json:"after"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	runs, created, err := triggerPush(r.Context(), s.store, repo, user, body.Ref, body.Before, body.After)
	if err != nil {
		return err
	}
	if created {
		s.wake()
	}
	code := http.StatusCreated
	if !created {
		code = http.StatusOK
	}
	writeJSON(w, code, s.runsJSON(r, repo, runs, len(runs)))
	return nil
}

// handleDispatch serves
// POST /api/v1/repos/{owner}/{repo}/actions/workflows/{workflow_file}/dispatches.
func (s *server) handleDispatch(w http.ResponseWriter, r *http.Request) error {
	user, err := s.requireUser(r, scopeWrite)
	if err != nil {
		return err
	}
	repo, err := s.repoFor(r, user, permWrite)
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
	run, err := triggerDispatch(r.Context(), s.store, repo, user, r.PathValue("workflow_file"), body.Ref, body.Inputs)
	if err != nil {
		return err
	}
	s.wake()
	if !body.ReturnRunDetails {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, s.runJSON(r, repo, run))
	return nil
}

// ---- reading ----

// readableRepo authenticates an optional PAT (which must carry repo:read
// when present) and loads the path's repository if the caller may read it.
func (s *server) readableRepo(r *http.Request) (*Repo, *User, error) {
	user, tok, err := s.authUser(r)
	if err != nil {
		return nil, nil, err
	}
	if tok != nil && !tok.hasScope(scopeRead) {
		return nil, nil, errLacksScope(scopeRead)
	}
	repo, err := s.repoFor(r, user, permRead)
	return repo, user, err
}

// handleRunList serves GET /api/v1/repos/{owner}/{repo}/actions/runs.
func (s *server) handleRunList(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := queryInt(q.Get("page"), 1, 1, 1<<20, "page")
	if err != nil {
		return err
	}
	perPage, err := queryInt(q.Get("per_page"), 30, 1, 100, "per_page")
	if err != nil {
		return err
	}
	f := runFilter{
		WorkflowFile: q.Get("workflow_file"), Branch: q.Get("branch"), Actor: q.Get("actor"),
		Event: q.Get("event"), Status: q.Get("status"), Conclusion: q.Get("conclusion"),
	}
	runs, total, err := s.store.listRuns(r.Context(), repo.ID, f, page, perPage)
	if err != nil {
		return err
	}
	if link := linkHeader(s.base(r)+r.URL.Path, q, page, perPage, total); link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, http.StatusOK, s.runsJSON(r, repo, runs, total))
	return nil
}

// queryInt parses an optional integer query parameter within [lo, hi].
func queryInt(v string, def, lo, hi int, name string) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, malformedf("%s must be a whole number from %d to %d", name, lo, hi)
	}
	return n, nil
}

// linkHeader builds GitHub's pagination Link header (RFC 8288).
func linkHeader(base string, q url.Values, page, perPage, total int) string {
	last := max(1, (total+perPage-1)/perPage)
	var links []string
	add := func(p int, rel string) {
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("page", strconv.Itoa(p))
		v.Set("per_page", strconv.Itoa(perPage))
		links = append(links, fmt.Sprintf(`<%s?%s>; rel="%s"`, base, v.Encode(), rel))
	}
	if page < last {
		add(page+1, "next")
		add(last, "last")
	}
	if page > 1 {
		add(1, "first")
		add(min(page-1, last), "prev")
	}
	return strings.Join(links, ", ")
}

// runFromPath loads the path's run of a readable repository.
func (s *server) runFromPath(r *http.Request) (*Repo, *Run, error) {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return nil, nil, err
	}
	id, err := pathID(r, "run_id")
	if err != nil {
		return nil, nil, err
	}
	run, err := s.store.runByID(r.Context(), id)
	if err != nil {
		return nil, nil, err
	}
	if run.RepoID != repo.ID {
		return nil, nil, errNotFound
	}
	return repo, run, nil
}

// handleRunGet serves GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}.
func (s *server) handleRunGet(w http.ResponseWriter, r *http.Request) error {
	repo, run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.runJSON(r, repo, run))
	return nil
}

// handleRunJobs serves GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/jobs.
func (s *server) handleRunJobs(w http.ResponseWriter, r *http.Request) error {
	_, run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	jobs, err := s.store.runJobs(r.Context(), run.ID)
	if err != nil {
		return err
	}
	out := struct {
		TotalCount int       `json:"total_count"`
		Jobs       []jobJSON `json:"jobs"`
	}{len(jobs), []jobJSON{}}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, toJobJSON(j))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// handleJobLogs serves GET /api/v1/repos/{owner}/{repo}/actions/jobs/{job_id}/logs:
// the job's log as text, each step between ##[group]NAME and ##[endgroup].
func (s *server) handleJobLogs(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "job_id")
	if err != nil {
		return err
	}
	job, err := s.store.jobOf(r.Context(), repo.ID, 0, id)
	if err != nil {
		return err
	}
	return s.serveJobLog(w, r, job.ID)
}

// serveJobLog answers with a job's whole log as text. A log is anything a
// job printed: it must never be taken for a page.
func (s *server) serveJobLog(w http.ResponseWriter, r *http.Request, jobID int64) error {
	steps, err := jobSteps(r.Context(), s.store.db, jobID)
	if err != nil {
		return err
	}
	chunks, err := s.store.jobLogChunks(r.Context(), jobID)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cache-Control", "no-store")
	writeJobLog(w, steps, chunks)
	return nil
}

// writeJobLog writes a job's steps and their logs in GitHub's grouped form.
func writeJobLog(w io.Writer, steps []*Step, chunks []logChunk) {
	byStep := map[int64][][]byte{}
	for _, c := range chunks {
		byStep[c.StepID] = append(byStep[c.StepID], c.Data)
	}
	for _, st := range steps {
		fmt.Fprintf(w, "##[group]%s\n", st.Name)
		var last byte = '\n'
		for _, d := range byStep[st.ID] {
			w.Write(d)
			if len(d) > 0 {
				last = d[len(d)-1]
			}
		}
		if last != '\n' {
			io.WriteString(w, "\n")
		}
		io.WriteString(w, "##[endgroup]\n")
	}
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
		return malformedf("capacity must not be negative")
	}
	labels := body.Labels
	if labels == nil {
		labels = rn.Labels
	}
	if body.Capacity != nil && *body.Capacity == 0 {
		if err := s.store.touchRunner(r.Context(), rn.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	job, err := s.store.claimJob(r.Context(), rn, labels)
	if err != nil {
		return err
	}
	if job == nil {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

// handleJobCancelCheck serves POST /api/v1/jobs/{id}/cancel-check.
func (s *server) handleJobCancelCheck(w http.ResponseWriter, r *http.Request) error {
	rn, err := s.requireRunner(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	requested, err := s.store.cancelCheck(r.Context(), rn.ID, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"cancel_requested": requested})
	return nil
}

// handleJobLogAppend serves POST /api/v1/jobs/{id}/logs.
func (s *server) handleJobLogAppend(w http.ResponseWriter, r *http.Request) error {
	rn, err := s.requireRunner(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
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
		return malformedf("seq must be 1 or more")
	}
	data, err := base64.StdEncoding.DecodeString(body.Data)
	if err != nil {
		return malformedf("data must be base64: %v", err)
	}
	if len(data) > maxLogChunk {
		return malformedf("a log chunk may carry at most %d bytes", maxLogChunk)
	}
	if err := s.store.appendLog(r.Context(), rn.ID, id, body.StepID, body.Seq, data); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"step_id": body.StepID, "seq": body.Seq})
	return nil
}

type statusBody struct {
	Status     string `json:"status"`
	Conclusion string `json:"conclusion"`
}

// handleStepStatus serves POST /api/v1/jobs/{id}/steps/{step_id}/status.
func (s *server) handleStepStatus(w http.ResponseWriter, r *http.Request) error {
	rn, err := s.requireRunner(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
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
	if err := s.store.setStepStatus(r.Context(), rn.ID, id, stepID, body.Status, body.Conclusion); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleJobStatus serves POST /api/v1/jobs/{id}/status.
func (s *server) handleJobStatus(w http.ResponseWriter, r *http.Request) error {
	rn, err := s.requireRunner(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	var body statusBody
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	if err := s.store.completeJob(r.Context(), rn.ID, id, body.Status, body.Conclusion); err != nil {
		return err
	}
	// Jobs that needed this one may be claimable now.
	s.wake()
	writeJSON(w, http.StatusOK, body)
	return nil
}

// handleJobGit serves /api/v1/jobs/{id}/git/{path...}: the job's repository,
// read-only over git's smart HTTP protocol, to the runner holding the job,
// so a remote runner can check out the commit. Fetching any sha is allowed:
// the job's commit need not be a branch tip any more.
func (s *server) handleJobGit(w http.ResponseWriter, r *http.Request) error {
	rn, err := s.requireRunner(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	job, err := heldJob(r.Context(), s.store.db, rn.ID, id)
	if err != nil {
		return err
	}
	if job.Status != statusRunning {
		return errNotFound
	}
	run, err := s.store.runByID(r.Context(), job.RunID)
	if err != nil {
		return err
	}
	repo, err := s.store.repoByID(r.Context(), run.RepoID)
	if err != nil {
		return err
	}
	p := r.PathValue("path")
	if !(r.Method == http.MethodGet && p == "info/refs" && r.URL.Query().Get("service") == "git-upload-pack") &&
		!(r.Method == http.MethodPost && p == "git-upload-pack") {
		return errNotFound
	}
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return err
	}
	h := &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Root: fmt.Sprintf("/api/v1/jobs/%d/git", id),
		Env: []string{
			"GIT_PROJECT_ROOT=" + repo.GitDir,
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
