// GitHub's REST dialect (API version 2022-11-28) for the Actions resources
// this product has: the JSON shapes of users, repositories, workflows, runs
// and jobs; the query syntax of the runs list; GitHub's paths for the
// repository, workflows, jobs, logs (302 to a short-lived signed URL),
// cancel and the three re-runs. They share the product's handlers, Store and
// permission rules; the spec's own endpoints keep their own answers.

package main

import (
	"archive/zip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// ---- JSON shapes (https://docs.github.com/en/rest/actions, 2022-11-28) ----

// ghUser is GitHub's simple-user, as far as this product has users.
type ghUser struct {
	Login     string `json:"login"`
	ID        int64  `json:"id"`
	NodeID    string `json:"node_id"`
	AvatarURL string `json:"avatar_url"`
	URL       string `json:"url"`
	HTMLURL   string `json:"html_url"`
	Type      string `json:"type"`
	SiteAdmin bool   `json:"site_admin"`
}

// ghRepo is a minimal repository: the fields GitHub clients read.
type ghRepo struct {
	ID            int64   `json:"id"`
	NodeID        string  `json:"node_id"`
	Name          string  `json:"name"`
	FullName      string  `json:"full_name"`
	Private       bool    `json:"private"`
	Visibility    string  `json:"visibility"`
	Owner         ghUser  `json:"owner"`
	HTMLURL       string  `json:"html_url"`
	Description   *string `json:"description"`
	Fork          bool    `json:"fork"`
	Archived      bool    `json:"archived"`
	URL           string  `json:"url"`
	DefaultBranch string  `json:"default_branch"`
}

// runJSON is GitHub's workflow-run, with the product's own fields
// (run_index, parent_run_id, repo_id, workflow_file, …) beside it. A re-run
// here is a new run linked by parent_run_id; run_attempt counts the links
// and previous_attempt_url names the parent.
type runJSON struct {
	ID                  int64       `json:"id"`
	Name                string      `json:"name"`
	NodeID              string      `json:"node_id"`
	HeadBranch          *string     `json:"head_branch"`
	HeadSHA             string      `json:"head_sha"`
	Path                string      `json:"path"`
	DisplayTitle        string      `json:"display_title"`
	RunNumber           int64       `json:"run_number"`
	RunAttempt          int64       `json:"run_attempt"`
	Event               string      `json:"event"`
	Status              string      `json:"status"`
	Conclusion          *string     `json:"conclusion"`
	WorkflowID          int64       `json:"workflow_id"`
	URL                 string      `json:"url"`
	HTMLURL             string      `json:"html_url"`
	PullRequests        []struct{}  `json:"pull_requests"`
	ReferencedWorkflows []struct{}  `json:"referenced_workflows"`
	CreatedAt           *time.Time  `json:"created_at"`
	UpdatedAt           *time.Time  `json:"updated_at"`
	RunStartedAt        *time.Time  `json:"run_started_at"`
	Actor               ghUser      `json:"actor"`
	TriggeringActor     ghUser      `json:"triggering_actor"`
	JobsURL             string      `json:"jobs_url"`
	LogsURL             string      `json:"logs_url"`
	CheckSuiteURL       string      `json:"check_suite_url"`
	ArtifactsURL        string      `json:"artifacts_url"`
	CancelURL           string      `json:"cancel_url"`
	RerunURL            string      `json:"rerun_url"`
	PreviousAttemptURL  *string     `json:"previous_attempt_url"`
	WorkflowURL         string      `json:"workflow_url"`
	HeadCommit          *git.Commit `json:"head_commit"`
	Repository          *ghRepo     `json:"repository"`
	HeadRepository      *ghRepo     `json:"head_repository"`

	// The product's own fields.
	RunIndex     int64      `json:"run_index"`
	ParentRunID  *int64     `json:"parent_run_id"`
	RepoID       int64      `json:"repo_id"`
	WorkflowFile string     `json:"workflow_file"`
	WorkflowName string     `json:"workflow_name"`
	HeadRef      string     `json:"head_ref"`
	StartedAt    *time.Time `json:"started_at"`
	CompletedAt  *time.Time `json:"completed_at"`
}

// stepJSON is a step of GitHub's job.
type stepJSON struct {
	ID          int64      `json:"id"`
	Number      int        `json:"number"`
	Name        string     `json:"name"`
	Status      string     `json:"status"`
	Conclusion  *string    `json:"conclusion"`
	StartedAt   *time.Time `json:"started_at"`
	CompletedAt *time.Time `json:"completed_at"`

	// The product's own field.
	Summary string `json:"summary,omitempty"` // the step's $GITHUB_STEP_SUMMARY, Markdown
}

// jobJSON is GitHub's job, with the product's own fields beside it.
type jobJSON struct {
	ID              int64      `json:"id"`
	RunID           int64      `json:"run_id"`
	RunURL          string     `json:"run_url"`
	RunAttempt      int64      `json:"run_attempt"`
	NodeID          string     `json:"node_id"`
	HeadSHA         string     `json:"head_sha"`
	HeadBranch      *string    `json:"head_branch"`
	URL             string     `json:"url"`
	HTMLURL         string     `json:"html_url"`
	Status          string     `json:"status"`
	Conclusion      *string    `json:"conclusion"`
	CreatedAt       *time.Time `json:"created_at"`
	StartedAt       *time.Time `json:"started_at"`
	CompletedAt     *time.Time `json:"completed_at"`
	Name            string     `json:"name"`
	Steps           []stepJSON `json:"steps"`
	CheckRunURL     string     `json:"check_run_url"`
	Labels          []string   `json:"labels"`
	RunnerID        *int64     `json:"runner_id"`
	RunnerName      *string    `json:"runner_name"`
	RunnerGroupID   *int64     `json:"runner_group_id"`
	RunnerGroupName *string    `json:"runner_group_name"`
	WorkflowName    string     `json:"workflow_name"`

	// The product's own fields.
	JobKey          string                `json:"job_key"`  // unique in the run: base_key, or base_key#n for matrix leg n
	BaseKey         string                `json:"base_key"` // the job's id in the workflow
	RunsOn          []string              `json:"runs_on"`
	Needs           []string              `json:"needs"`
	CancelRequested bool                  `json:"cancel_requested"`
	Matrix          map[string]any        `json:"matrix,omitempty"` // a leg's matrix values
	Outputs         map[string]string     `json:"outputs"`
	ContinueOnError bool                  `json:"continue_on_error"`
	Environment     *workflow.Environment `json:"environment,omitempty"`
	Annotations     []protocol.Annotation `json:"annotations"`
}

// workflowJSON is GitHub's workflow.
type workflowJSON struct {
	ID        int64      `json:"id"`
	NodeID    string     `json:"node_id"`
	Name      string     `json:"name"`
	Path      string     `json:"path"`
	State     string     `json:"state"`
	CreatedAt *time.Time `json:"created_at"`
	UpdatedAt *time.Time `json:"updated_at"`
	URL       string     `json:"url"`
	HTMLURL   string     `json:"html_url"`
	BadgeURL  string     `json:"badge_url"`
}

// ghStatus is a status as GitHub says it: running is in_progress.
func ghStatus(status string) string {
	if status == protocol.StatusRunning {
		return "in_progress"
	}
	return status
}

// ghConclusion is null until there is a conclusion.
func ghConclusion(c string) *string {
	if c == "" {
		return nil
	}
	return &c
}

// headBranch is GitHub's head_branch: the branch or tag name of a ref.
func headBranch(ref string) *string {
	if ref == "" {
		return nil
	}
	b := workflow.RefName(ref)
	return &b
}

// ghView renders one request's GitHub objects of one repository. The
// repository object (which costs a git call for its default branch) and
// runner names are made once per request.
type ghView struct {
	s       *server
	r       *http.Request
	base    string // absolute URL prefix
	api     string // the API's absolute URL, under the prefix the client used (apiBase)
	repo    *store.Repo
	repoObj *ghRepo
	runners map[int64]string
}

func (s *server) ghView(r *http.Request, repo *store.Repo) *ghView {
	return &ghView{s: s, r: r, base: s.base(r), api: s.apiBase(r), repo: repo, runners: map[int64]string{}}
}

// apiRepo is the repository's API URL.
func (v *ghView) apiRepo() string {
	return v.api + "/repos/" + url.PathEscape(v.repo.Owner) + "/" + url.PathEscape(v.repo.Name)
}

func (v *ghView) user(id int64, login string) ghUser {
	return ghUser{
		Login: login, ID: id, NodeID: fmt.Sprintf("U_%d", id), AvatarURL: "",
		URL: v.api + "/users/" + url.PathEscape(login), HTMLURL: v.base + "/", Type: "User",
	}
}

func (v *ghView) repository() *ghRepo {
	if v.repoObj == nil {
		visibility := "public"
		if v.repo.Private {
			visibility = "private"
		}
		v.repoObj = &ghRepo{
			ID: v.repo.ID, NodeID: fmt.Sprintf("R_%d", v.repo.ID), Name: v.repo.Name, FullName: v.repo.FullName(),
			Private: v.repo.Private, Visibility: visibility, Owner: v.user(v.repo.OwnerID, v.repo.Owner),
			HTMLURL: actionsTabURL(v.base, v.repo), URL: v.apiRepo(),
			DefaultBranch: v.s.heads.get(v.r.Context(), v.repo),
		}
	}
	return v.repoObj
}

// headCache keeps each repository's default branch (git's HEAD) for a
// while: asking git is a process per API answer, which would cap the API's
// reads at a few hundred a second.
type headCache struct {
	mu      sync.Mutex // guards entries
	entries map[int64]headEntry
}

type headEntry struct {
	branch string
	at     time.Time
}

// headTTL is how long a default branch is taken as known.
const headTTL = 30 * time.Second

func (c *headCache) get(ctx context.Context, repo *store.Repo) string {
	c.mu.Lock()
	e, ok := c.entries[repo.ID]
	c.mu.Unlock()
	if ok && time.Since(e.at) < headTTL {
		return e.branch
	}
	branch := git.Repo{Dir: repo.GitDir}.DefaultBranch(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= 4096 {
		c.entries = map[int64]headEntry{}
	}
	c.entries[repo.ID] = headEntry{branch, time.Now()}
	return branch
}

func (v *ghView) runURL(id int64) string { return fmt.Sprintf("%s/actions/runs/%d", v.apiRepo(), id) }

func (v *ghView) run(run *store.Run) runJSON {
	var parent *int64
	var prev *string
	if run.ParentRunID != 0 {
		parent = &run.ParentRunID
		p := v.runURL(run.ParentRunID)
		prev = &p
	}
	title := run.Title
	if title == "" {
		title = run.WorkflowName
	}
	u := v.runURL(run.ID)
	actor := v.user(run.ActorID, run.Actor)
	repo := v.repository()
	return runJSON{
		ID: run.ID, Name: run.WorkflowName, NodeID: fmt.Sprintf("WFR_%d", run.ID), HeadBranch: headBranch(run.HeadRef),
		HeadSHA: run.HeadSHA, Path: run.WorkflowFile, DisplayTitle: title, RunNumber: run.RunIndex, RunAttempt: run.RunAttempt,
		Event: run.Event, Status: ghStatus(run.Status), Conclusion: ghConclusion(run.Conclusion), WorkflowID: run.WorkflowID,
		URL: u, HTMLURL: runPage(v.base, v.repo, run.RunIndex), PullRequests: []struct{}{}, ReferencedWorkflows: []struct{}{},
		CreatedAt: timePtr(run.CreatedAt), UpdatedAt: timePtr(run.UpdatedAt), RunStartedAt: timePtr(run.CreatedAt),
		Actor: actor, TriggeringActor: actor,
		JobsURL: u + "/jobs", LogsURL: u + "/logs", CheckSuiteURL: fmt.Sprintf("%s/check-suites/%d", v.apiRepo(), run.ID),
		ArtifactsURL: u + "/artifacts", CancelURL: u + "/cancel", RerunURL: u + "/rerun", PreviousAttemptURL: prev,
		WorkflowURL: fmt.Sprintf("%s/actions/workflows/%d", v.apiRepo(), run.WorkflowID),
		HeadCommit:  run.HeadCommit, Repository: repo, HeadRepository: repo,
		RunIndex: run.RunIndex, ParentRunID: parent, RepoID: run.RepoID, WorkflowFile: run.WorkflowFile,
		WorkflowName: run.WorkflowName, HeadRef: run.HeadRef,
		StartedAt: timePtr(run.StartedAt), CompletedAt: timePtr(run.CompletedAt),
	}
}

type runsJSON struct {
	TotalCount   int       `json:"total_count"`
	WorkflowRuns []runJSON `json:"workflow_runs"`
	// DisabledWorkflows names, for a push, the workflows whose trigger
	// matched but that are disabled, so started nothing.
	DisabledWorkflows []string `json:"disabled_workflows,omitempty"`
}

func (v *ghView) runs(runs []*store.Run, total int) runsJSON {
	out := runsJSON{TotalCount: total, WorkflowRuns: []runJSON{}}
	for _, run := range runs {
		out.WorkflowRuns = append(out.WorkflowRuns, v.run(run))
	}
	return out
}

func (v *ghView) job(run *store.Run, j *store.Job) (jobJSON, error) {
	out := jobJSON{
		ID: j.ID, RunID: run.ID, RunURL: v.runURL(run.ID), RunAttempt: run.RunAttempt, NodeID: fmt.Sprintf("J_%d", j.ID),
		HeadSHA: run.HeadSHA, HeadBranch: headBranch(run.HeadRef), URL: fmt.Sprintf("%s/actions/jobs/%d", v.apiRepo(), j.ID),
		HTMLURL: runPage(v.base, v.repo, run.RunIndex), Status: ghStatus(j.Status), Conclusion: ghConclusion(j.Conclusion),
		CreatedAt: timePtr(j.CreatedAt), StartedAt: timePtr(j.StartedAt), CompletedAt: timePtr(j.CompletedAt),
		Name: j.Name, Steps: []stepJSON{}, CheckRunURL: fmt.Sprintf("%s/check-runs/%d", v.apiRepo(), j.ID),
		Labels: store.NonNil(j.RunsOn), WorkflowName: run.WorkflowName,
		JobKey: j.JobKey, BaseKey: j.BaseKey, RunsOn: store.NonNil(j.RunsOn), Needs: store.NonNil(j.Needs), CancelRequested: j.CancelRequested,
		Outputs: store.NonNilMap(j.Outputs), ContinueOnError: j.ContinueOnError, Environment: j.Environment,
	}
	if m, ok := j.Contexts["matrix"].(map[string]any); ok && j.Leg > 0 {
		out.Matrix = m
	}
	anns, err := v.s.store.JobAnnotations(v.r.Context(), j.ID)
	if err != nil {
		return jobJSON{}, err
	}
	out.Annotations = append([]protocol.Annotation{}, anns...)
	// GitHub's started_at is never null: a job not yet started shows when
	// it was queued.
	if out.StartedAt == nil {
		out.StartedAt = out.CreatedAt
	}
	if j.RunnerID != 0 {
		name, ok := v.runners[j.RunnerID]
		if !ok {
			var err error
			if name, err = v.s.store.RunnerName(v.r.Context(), j.RunnerID); err != nil {
				return jobJSON{}, err
			}
			v.runners[j.RunnerID] = name
		}
		id := j.RunnerID
		out.RunnerID, out.RunnerName = &id, &name
	}
	for _, st := range j.Steps {
		out.Steps = append(out.Steps, stepJSON{ID: st.ID, Number: st.Number, Name: st.Name, Status: ghStatus(st.Status),
			Conclusion: ghConclusion(st.Conclusion), StartedAt: timePtr(st.StartedAt), CompletedAt: timePtr(st.CompletedAt),
			Summary: st.Summary})
	}
	return out, nil
}

func (v *ghView) workflow(w *store.WorkflowRow) workflowJSON {
	file := path.Base(w.Path)
	return workflowJSON{
		ID: w.ID, NodeID: fmt.Sprintf("W_%d", w.ID), Name: w.Name, Path: w.Path, State: w.State,
		CreatedAt: timePtr(w.CreatedAt), UpdatedAt: timePtr(w.UpdatedAt),
		URL:      fmt.Sprintf("%s/actions/workflows/%d", v.apiRepo(), w.ID),
		HTMLURL:  actionsTabURL(v.base, v.repo) + "?workflow=" + url.QueryEscape(w.Path),
		BadgeURL: actionsTabURL(v.base, v.repo) + "/workflows/" + url.PathEscape(file) + "/badge.svg",
	}
}

// ---- the runs list: GitHub's query parameters ----

// ghSearchLimit is how many runs a list with GitHub's search filters
// reaches, as on GitHub: "up to 1,000 results for each search when using
// actor, branch, check_suite_id, created, event, head_sha, status".
const ghSearchLimit = 1000

// ghStatuses are GitHub's values of status=; the others it takes are
// conclusions.
var ghStatuses = map[string]string{
	"queued": protocol.StatusQueued, "in_progress": protocol.StatusRunning, "running": protocol.StatusRunning, "completed": protocol.StatusCompleted,
	"requested": "requested", "waiting": "waiting", "pending": "pending",
}

var ghConclusions = map[string]bool{
	"success": true, "failure": true, "neutral": true, "cancelled": true, "skipped": true,
	"timed_out": true, "action_required": true, "stale": true,
}

// ghPage reads page and per_page as GitHub's lists take them: per_page
// defaults to 30, and over 100 is 100.
func ghPage(q url.Values) (page, perPage int, err error) {
	if page, err = queryInt(q.Get("page"), 1, 1, 1<<20, "page"); err != nil {
		return 0, 0, err
	}
	if perPage, err = queryInt(q.Get("per_page"), 30, 1, 1<<30, "per_page"); err != nil {
		return 0, 0, err
	}
	return page, min(perPage, 100), nil
}

// runListQuery reads the runs list's query: GitHub's filters and the
// product's own (workflow_file, conclusion), page and per_page (over 100 is
// 100, as on GitHub).
func runListQuery(q url.Values) (f store.RunFilter, page, perPage int, err error) {
	if page, perPage, err = ghPage(q); err != nil {
		return
	}
	f = store.RunFilter{
		WorkflowFile: q.Get("workflow_file"), Branch: q.Get("branch"), Actor: q.Get("actor"),
		Event: q.Get("event"), Conclusion: q.Get("conclusion"), HeadSHA: q.Get("head_sha"),
	}
	if st := q.Get("status"); st != "" {
		if v, ok := ghStatuses[st]; ok {
			f.Status = v
		} else if ghConclusions[st] {
			f.Conclusion = st
		} else {
			err = apperr.Malformedf("status must be a status (queued, in_progress, completed, …) or a conclusion (success, failure, cancelled, …), not %q", st)
			return
		}
	}
	if c := q.Get("created"); c != "" {
		if f.CreatedFrom, f.CreatedTo, err = parseCreated(c); err != nil {
			return
		}
	}
	if v := q.Get("exclude_pull_requests"); v != "" {
		if _, perr := strconv.ParseBool(v); perr != nil {
			err = apperr.Malformedf("exclude_pull_requests must be true or false")
			return
		}
	}
	if v := q.Get("check_suite_id"); v != "" {
		if _, perr := strconv.ParseInt(v, 10, 64); perr != nil {
			err = apperr.Malformedf("check_suite_id must be a whole number")
			return
		}
	}
	for _, k := range []string{"actor", "branch", "check_suite_id", "conclusion", "created", "event", "head_sha", "status"} {
		if q.Get(k) != "" {
			f.Cap = ghSearchLimit
		}
	}
	return
}

// parseCreated reads GitHub's date query syntax for created=: DATE, >DATE,
// >=DATE, <DATE, <=DATE, DATE..DATE (either side may be *). A DATE is
// YYYY-MM-DD (a whole day, UTC) or an ISO 8601 time to the second, with an
// offset or UTC. The answer is a range of Unix milliseconds, from inclusive
// and to exclusive; 0 leaves a side open.
func parseCreated(s string) (from, to int64, err error) {
	bad := apperr.Malformedf("created must be a date or range in GitHub's syntax (2024-01-31, >=2024-01-01, 2024-01-01..2024-01-31, 2024-01-01T10:00:00Z..*), not %q", s)
	// bound parses one DATE into the span of time it names, [start, end).
	bound := func(v string) (start, end int64, ok bool) {
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return t.UnixMilli(), t.AddDate(0, 0, 1).UnixMilli(), true
		}
		for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04Z07:00", "2006-01-02T15:04"} {
			if t, err := time.Parse(layout, v); err == nil {
				step := time.Second
				if !strings.Contains(layout, ":05") {
					step = time.Minute
				}
				return t.UnixMilli(), t.Add(step).UnixMilli(), true
			}
		}
		return 0, 0, false
	}
	if a, b, ok := strings.Cut(s, ".."); ok {
		if a != "*" {
			var okA bool
			if from, _, okA = bound(a); !okA {
				return 0, 0, bad
			}
		}
		if b != "*" {
			var okB bool
			if _, to, okB = bound(b); !okB {
				return 0, 0, bad
			}
		}
		if a == "*" && b == "*" {
			return 0, 0, nil
		}
		if to != 0 && from >= to {
			return 0, 0, bad
		}
		return from, to, nil
	}
	for _, op := range []string{">=", "<=", ">", "<", ""} {
		v, ok := strings.CutPrefix(s, op)
		if !ok {
			continue
		}
		start, end, ok := bound(v)
		if !ok {
			return 0, 0, bad
		}
		switch op {
		case ">=":
			return start, 0, nil
		case ">":
			return end, 0, nil
		case "<=":
			return 0, end, nil
		case "<":
			return 0, start, nil
		}
		return start, end, nil
	}
	return 0, 0, bad
}

// listRuns answers a runs list of repo narrowed by f0 (a workflow) and the
// request's query, with GitHub's Link header.
func (s *server) listRuns(w http.ResponseWriter, r *http.Request, repo *store.Repo, workflowID int64) error {
	q := r.URL.Query()
	f, page, perPage, err := runListQuery(q)
	if err != nil {
		return err
	}
	f.WorkflowID = workflowID
	v := s.ghView(r, repo)
	// The answer depends on the request and on the repository object every
	// run carries (its default branch comes from git), not on who asks.
	key := fmt.Sprintf("%d\x00%s\x00%s\x00%s", repo.ID, v.base+r.URL.Path, q.Encode(), v.repository().DefaultBranch)
	now := s.store.Now()
	e, ok := s.lists.get(key, repo.RunsVersion, now)
	if !ok {
		runs, total, err := s.store.ListRuns(r.Context(), repo.ID, f, page, perPage)
		if err != nil {
			return err
		}
		body, err := jsonBody(v.runs(runs, total))
		if err != nil {
			return err
		}
		e = listEntry{version: repo.RunsVersion, made: now, body: body,
			link: linkHeader(v.base+r.URL.Path, q, page, perPage, total)}
		s.lists.put(key, e)
	}
	if e.link != "" {
		w.Header().Set("Link", e.link)
	}
	writeJSONBody(w, http.StatusOK, e.body)
	return nil
}

// ---- the repository and workflows ----

// handleRepoGet serves GET /api/v1/repos/{owner}/{repo}: the repository,
// minimal, for clients that start there (PyGithub's get_repo).
func (s *server) handleRepoGet(w http.ResponseWriter, r *http.Request) error {
	repo, err := s.metadataRepo(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.ghView(r, repo).repository())
	return nil
}

// metadataRepo is readableRepo for a repository's metadata: a job's
// GITHUB_TOKEN reads its own repository's whatever its `permissions:` say
// (contents: write alone, even {}), as GitHub's token always has an
// implicit `metadata: read`. Any other repository is checked as
// readableRepo checks it, so the token reads no other private one.
func (s *server) metadataRepo(r *http.Request) (*store.Repo, error) {
	user, _, err := s.authUser(r)
	if err != nil {
		return nil, err
	}
	if user != nil && user.Job != nil {
		repo, err := s.store.RepoByName(r.Context(), r.PathValue("owner"), r.PathValue("repo"))
		if err == nil && repo.ID == user.Job.RepoID {
			return repo, nil
		}
	}
	repo, _, err := s.readableRepo(r)
	return repo, err
}

// handleUserGet serves GET /api/v1/users/{username}: the user object runs
// link to as actor.url. A user is no secret here, as on GitHub.
func (s *server) handleUserGet(w http.ResponseWriter, r *http.Request) error {
	u, err := s.store.UserByName(r.Context(), r.PathValue("username"))
	if err != nil {
		return err
	}
	v := &ghView{s: s, r: r, base: s.base(r), api: s.apiBase(r)}
	writeJSON(w, http.StatusOK, v.user(u.ID, u.Name))
	return nil
}

// handleWorkflowList serves GET /api/v1/repos/{owner}/{repo}/actions/workflows:
// the workflows of the default branch and every workflow that has runs.
func (s *server) handleWorkflowList(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, perPage, err := ghPage(q)
	if err != nil {
		return err
	}
	files, err := store.DefaultBranchWorkflows(r.Context(), git.Repo{Dir: repo.GitDir})
	if err != nil {
		return err
	}
	if err := s.store.SyncWorkflows(r.Context(), repo.ID, files); err != nil {
		return err
	}
	all, err := s.store.ListWorkflows(r.Context(), repo.ID)
	if err != nil {
		return err
	}
	v := s.ghView(r, repo)
	out := struct {
		TotalCount int            `json:"total_count"`
		Workflows  []workflowJSON `json:"workflows"`
	}{len(all), []workflowJSON{}}
	for _, wf := range pageOf(all, page, perPage) {
		out.Workflows = append(out.Workflows, v.workflow(wf))
	}
	if link := linkHeader(v.base+r.URL.Path, q, page, perPage, len(all)); link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// pageOf is page (from 1) of xs, perPage to a page.
func pageOf[T any](xs []T, page, perPage int) []T {
	lo := (page - 1) * perPage
	if lo >= len(xs) {
		return nil
	}
	return xs[lo:min(len(xs), lo+perPage)]
}

// workflowFromPath loads the path's {workflow_id} (an id or a file name) of
// a repository.
func (s *server) workflowFromPath(r *http.Request, repo *store.Repo) (*store.WorkflowRow, error) {
	return s.store.FindWorkflow(r.Context(), repo, r.PathValue("workflow_id"))
}

// handleWorkflowGet serves GET /api/v1/repos/{owner}/{repo}/actions/workflows/{workflow_id}.
func (s *server) handleWorkflowGet(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	wf, err := s.workflowFromPath(r, repo)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.ghView(r, repo).workflow(wf))
	return nil
}

// handleWorkflowRuns serves GET /api/v1/repos/{owner}/{repo}/actions/workflows/{workflow_id}/runs.
func (s *server) handleWorkflowRuns(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	wf, err := s.workflowFromPath(r, repo)
	if err != nil {
		return err
	}
	return s.listRuns(w, r, repo, wf.ID)
}

// handleWorkflowEnable serves PUT /api/v1/repos/{owner}/{repo}/actions/workflows/{workflow_id}/enable.
func (s *server) handleWorkflowEnable(w http.ResponseWriter, r *http.Request) error {
	return s.setWorkflowState(w, r, store.WorkflowActive)
}

// handleWorkflowDisable serves PUT /api/v1/repos/{owner}/{repo}/actions/workflows/{workflow_id}/disable.
func (s *server) handleWorkflowDisable(w http.ResponseWriter, r *http.Request) error {
	return s.setWorkflowState(w, r, store.WorkflowDisabled)
}

func (s *server) setWorkflowState(w http.ResponseWriter, r *http.Request, state string) error {
	_, repo, err := s.writableRepo(r)
	if err != nil {
		return err
	}
	wf, err := s.workflowFromPath(r, repo)
	if err != nil {
		return err
	}
	if err := s.store.SetWorkflowState(r.Context(), repo.ID, wf.ID, state); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writableRepo authenticates a PAT with repo:write and loads the path's
// repository if the user may write it; one the user may not see or may not
// write is the same 404, as the lifecycle API's runs are.
func (s *server) writableRepo(r *http.Request) (*store.User, *store.Repo, error) {
	user, err := s.requireUser(r, store.ScopeWrite)
	if err != nil {
		return nil, nil, err
	}
	repo, p, err := s.readablePathRepo(r, user)
	if err != nil {
		return nil, nil, err
	}
	if p < store.PermWrite {
		return nil, nil, apperr.ErrNotFound
	}
	return user, repo, nil
}

// ---- jobs ----

// handleRunJobs serves GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/jobs.
// filter=latest (the default) lists this run's jobs; filter=all adds the
// jobs of its previous attempts (the runs it re-ran), newest attempt first.
func (s *server) handleRunJobs(w http.ResponseWriter, r *http.Request) error {
	repo, run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	runs := []*store.Run{run}
	switch r.URL.Query().Get("filter") {
	case "", "latest":
	case "all":
		if runs, err = s.store.Attempts(r.Context(), run); err != nil {
			return err
		}
	default:
		return apperr.Malformedf("filter must be latest or all")
	}
	return s.writeJobs(w, r, repo, runs)
}

// handleRunAttemptJobs serves
// GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/jobs.
func (s *server) handleRunAttemptJobs(w http.ResponseWriter, r *http.Request) error {
	repo, run, err := s.attemptFromPath(r)
	if err != nil {
		return err
	}
	return s.writeJobs(w, r, repo, []*store.Run{run})
}

// writeJobs answers with a page of the jobs of runs, with their steps.
func (s *server) writeJobs(w http.ResponseWriter, r *http.Request, repo *store.Repo, runs []*store.Run) error {
	q := r.URL.Query()
	page, perPage, err := ghPage(q)
	if err != nil {
		return err
	}
	type runJob struct {
		run *store.Run
		job *store.Job
	}
	var all []runJob
	for _, run := range runs {
		jobs, err := s.store.RunJobs(r.Context(), run.ID)
		if err != nil {
			return err
		}
		for _, j := range jobs {
			all = append(all, runJob{run, j})
		}
	}
	v := s.ghView(r, repo)
	out := struct {
		TotalCount int       `json:"total_count"`
		Jobs       []jobJSON `json:"jobs"`
	}{len(all), []jobJSON{}}
	for _, rj := range pageOf(all, page, perPage) {
		j, err := v.job(rj.run, rj.job)
		if err != nil {
			return err
		}
		out.Jobs = append(out.Jobs, j)
	}
	if link := linkHeader(v.base+r.URL.Path, q, page, perPage, len(all)); link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// jobFromPath loads the path's {job_id} of a readable repository, with its
// run.
func (s *server) jobFromPath(r *http.Request) (*store.Repo, *store.Run, *store.Job, error) {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return nil, nil, nil, err
	}
	id, err := pathID(r, "job_id")
	if err != nil {
		return nil, nil, nil, err
	}
	job, err := s.store.JobOf(r.Context(), repo.ID, 0, id)
	if err != nil {
		return nil, nil, nil, err
	}
	run, err := s.store.RunByID(r.Context(), job.RunID)
	if err != nil {
		return nil, nil, nil, err
	}
	return repo, run, job, nil
}

// handleJobGet serves GET /api/v1/repos/{owner}/{repo}/actions/jobs/{job_id}.
func (s *server) handleJobGet(w http.ResponseWriter, r *http.Request) error {
	repo, run, job, err := s.jobFromPath(r)
	if err != nil {
		return err
	}
	if job.Steps, err = s.store.JobSteps(r.Context(), job.ID); err != nil {
		return err
	}
	out, err := s.ghView(r, repo).job(run, job)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// ---- attempts ----

// attemptFromPath loads attempt {attempt_number} of the path's run: the run
// itself or the run it re-ran, and so on back. Later attempts are other
// runs, with their own ids (see the README).
func (s *server) attemptFromPath(r *http.Request) (*store.Repo, *store.Run, error) {
	repo, run, err := s.runFromPath(r)
	if err != nil {
		return nil, nil, err
	}
	n, err := pathID(r, "attempt_number")
	if err != nil {
		return nil, nil, err
	}
	runs, err := s.store.Attempts(r.Context(), run)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range runs {
		if a.RunAttempt == n {
			return repo, a, nil
		}
	}
	return nil, nil, apperr.NotFoundf("run %d has no attempt %d; a later attempt is a run of its own", run.ID, n)
}

// handleRunAttempt serves GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}.
func (s *server) handleRunAttempt(w http.ResponseWriter, r *http.Request) error {
	repo, run, err := s.attemptFromPath(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.ghView(r, repo).run(run))
	return nil
}

// ---- logs: 302 to a signed URL ----

// logLinkTTL is how long a signed log URL works: a minute, as GitHub's.
const logLinkTTL = time.Minute

// logSigner makes and checks the signed log download URLs. Its key is the
// key file's (Store.logSigningKey), derived once.
type logSigner struct {
	mu  sync.Mutex // guards key
	key []byte
}

func (s *server) logSignature(r *http.Request, kind string, id, expires int64) (string, error) {
	s.logs.mu.Lock()
	defer s.logs.mu.Unlock()
	if s.logs.key == nil {
		key, err := s.store.LogSigningKey(r.Context())
		if err != nil {
			return "", err
		}
		s.logs.key = key
	}
	m := hmac.New(sha256.New, s.logs.key)
	fmt.Fprintf(m, "%s\n%d\n%d", kind, id, expires)
	return hex.EncodeToString(m.Sum(nil)), nil
}

// redirectToLogs answers 302 with a signed URL for a job's log (kind "job")
// or a run's logs as a zip (kind "run"). The URL needs no token: whoever
// holds it may read the logs until it expires, as with GitHub's.
func (s *server) redirectToLogs(w http.ResponseWriter, r *http.Request, kind string, id int64) error {
	exp := s.store.Now().Add(logLinkTTL).Unix()
	sig, err := s.logSignature(r, kind, id, exp)
	if err != nil {
		return err
	}
	loc := fmt.Sprintf("%s/signed-logs/%s/%d?expires=%d&signature=%s", s.apiBase(r), kind, id, exp, sig)
	w.Header().Set("Location", loc)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusFound)
	return nil
}

// handleJobLogs serves GET /api/v1/repos/{owner}/{repo}/actions/jobs/{job_id}/logs:
// 302 to the job's log, text with each step between ##[group]NAME and
// ##[endgroup].
func (s *server) handleJobLogs(w http.ResponseWriter, r *http.Request) error {
	_, _, job, err := s.jobFromPath(r)
	if err != nil {
		return err
	}
	return s.redirectToLogs(w, r, "job", job.ID)
}

// handleRunLogs serves GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/logs:
// 302 to a zip of the run's job logs.
func (s *server) handleRunLogs(w http.ResponseWriter, r *http.Request) error {
	_, run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	return s.redirectToLogs(w, r, "run", run.ID)
}

// handleRunAttemptLogs serves
// GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/attempts/{attempt_number}/logs.
func (s *server) handleRunAttemptLogs(w http.ResponseWriter, r *http.Request) error {
	_, run, err := s.attemptFromPath(r)
	if err != nil {
		return err
	}
	return s.redirectToLogs(w, r, "run", run.ID)
}

// handleSignedLogs serves GET /api/v1/signed-logs/{kind}/{id}, the target of
// the logs redirects: no token, a signature and an expiry instead.
func (s *server) handleSignedLogs(w http.ResponseWriter, r *http.Request) error {
	kind := r.PathValue("kind")
	id, err := pathID(r, "id")
	if err != nil || kind != "job" && kind != "run" {
		return apperr.ErrNotFound
	}
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("expires"), 10, 64)
	if err != nil {
		return apperr.Forbiddenf("this log link is not valid")
	}
	want, err := s.logSignature(r, kind, id, exp)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(want), []byte(q.Get("signature"))) {
		return apperr.Forbiddenf("this log link is not valid")
	}
	if s.store.Now().Unix() >= exp {
		return apperr.Forbiddenf("this log link has expired: ask the API for a new one")
	}
	if kind == "job" {
		return s.serveJobLog(w, r, id)
	}
	return s.serveRunLogsZip(w, r, id)
}

// serveRunLogsZip answers with a zip of a run's logs laid out as GitHub's:
// N_JOB.txt for each job's whole log, and JOB/M_STEP.txt for each step.
func (s *server) serveRunLogsZip(w http.ResponseWriter, r *http.Request, runID int64) error {
	run, err := s.store.RunByID(r.Context(), runID)
	if err != nil {
		return err
	}
	jobs, err := s.store.RunJobs(r.Context(), run.ID)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/zip")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="logs_%d.zip"`, run.ID))
	h.Set("Cache-Control", "no-store")
	zw := zip.NewWriter(w)
	for i, j := range jobs {
		modified := j.CompletedAt
		if modified.IsZero() {
			modified = s.store.Now()
		}
		f, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%d_%s.txt", i, zipName(j.Name)), Method: zip.Deflate, Modified: modified})
		if err != nil {
			return err
		}
		if err := writeJobLog(r.Context(), f, s.store, j.Steps); err != nil {
			return err
		}
		for _, st := range j.Steps {
			f, err := zw.CreateHeader(&zip.FileHeader{Name: fmt.Sprintf("%s/%d_%s.txt", zipName(j.Name), st.Number, zipName(st.Name)),
				Method: zip.Deflate, Modified: modified})
			if err != nil {
				return err
			}
			// Streamed a page of chunks at a time, as the raw log is.
			err = s.store.EachLogChunk(r.Context(), st.ID, 0, func(c store.LogChunk) error {
				_, err := f.Write(c.Data)
				return err
			})
			if err != nil {
				return err
			}
		}
	}
	return zw.Close()
}

// zipName makes a job or step name safe as one zip path element.
func zipName(s string) string {
	s = strings.Map(func(c rune) rune {
		if c < 0x20 || strings.ContainsRune(`/\:*?"<>|`, c) {
			return '_'
		}
		return c
	}, s)
	if s == "" || s == "." || s == ".." {
		s = "_"
	}
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// ---- cancel and re-run, GitHub's way ----

// ghRunFromPath loads the path's run of a repository the caller may write;
// what the caller may not see or may not write is the same 404.
func (s *server) ghRunFromPath(r *http.Request) (*store.User, *store.Run, error) {
	user, repo, err := s.writableRepo(r)
	if err != nil {
		return nil, nil, err
	}
	run, err := s.pathRun(r, repo)
	return user, run, err
}

// handleGHRunCancel serves POST /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/cancel
// and …/force-cancel: 202 {}, or 409 for a completed run, as GitHub. Both
// are the spec's cancel (s.cancelJobs): running jobs' containers stop within
// a second whatever the workflow says, so there is nothing more to force.
func (s *server) handleGHRunCancel(w http.ResponseWriter, r *http.Request) error {
	_, run, err := s.ghRunFromPath(r)
	if err != nil {
		return err
	}
	if run.Status == protocol.StatusCompleted {
		return apperr.Conflictf("cannot cancel a workflow run that is completed")
	}
	if _, err := s.cancelJobs(r.Context(), run.ID, 0); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, struct{}{})
	return nil
}

// readRerunBody accepts GitHub's optional re-run body,
// {"enable_debug_logging": bool}; debug logging has no meaning here.
func readRerunBody(r *http.Request) error {
	if r.ContentLength == 0 {
		return nil
	}
	var body struct {
		EnableDebugLogging bool `json:"enable_debug_logging"`
	}
	return decodeJSON(r, &body)
}

// rerunCreated answers GitHub's 201 {} to a re-run; Location names the new
// run, which here has an id of its own.
func (s *server) rerunCreated(w http.ResponseWriter, r *http.Request, nr *store.Run) {
	repo, err := s.store.RepoByID(r.Context(), nr.RepoID)
	if err == nil {
		w.Header().Set("Location", s.ghView(r, repo).runURL(nr.ID))
	}
	writeJSON(w, http.StatusCreated, struct{}{})
}

// handleGHRunRerun serves POST /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/rerun:
// the spec's re-run (s.rerun), answered GitHub's way.
func (s *server) handleGHRunRerun(w http.ResponseWriter, r *http.Request) error {
	return s.ghRerun(w, r, nil)
}

// handleGHRunRerunFailed serves POST /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/rerun-failed-jobs:
// a new attempt that runs the failed, timed-out and cancelled jobs again
// with the jobs that need them, and keeps the other jobs' results and logs.
func (s *server) handleGHRunRerunFailed(w http.ResponseWriter, r *http.Request) error {
	return s.ghRerun(w, r, store.FailedJobs)
}

func (s *server) ghRerun(w http.ResponseWriter, r *http.Request, sel store.RerunSelect) error {
	user, run, err := s.ghRunFromPath(r)
	if err != nil {
		return err
	}
	if err := readRerunBody(r); err != nil {
		return err
	}
	nr, err := s.rerunSome(r.Context(), run, user, sel)
	if err != nil {
		return err
	}
	s.rerunCreated(w, r, nr)
	return nil
}

// handleGHJobRerun serves POST /api/v1/repos/{owner}/{repo}/actions/jobs/{job_id}/rerun:
// a new attempt of the job's run that runs the job and the jobs that need
// it, and keeps the others' results.
func (s *server) handleGHJobRerun(w http.ResponseWriter, r *http.Request) error {
	user, repo, err := s.writableRepo(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "job_id")
	if err != nil {
		return err
	}
	job, err := s.store.JobOf(r.Context(), repo.ID, 0, id)
	if err != nil {
		return err
	}
	run, err := s.store.RunByID(r.Context(), job.RunID)
	if err != nil {
		return err
	}
	if err := readRerunBody(r); err != nil {
		return err
	}
	nr, err := s.rerunSome(r.Context(), run, user, store.OneJob(job.ID))
	if err != nil {
		return err
	}
	s.rerunCreated(w, r, nr)
	return nil
}

// ---- the API root and check-run annotations ----

// handleAPIRoot serves GET /api/v1/ and GET /api/v3/: the API's root, as
// GitHub's answers it, with a few of its URL templates. gh auth login
// checks a token here: a request with credentials must carry a good token
// (401 otherwise); one without is answered as GitHub does, anonymously.
// No X-OAuth-Scopes header is sent, which gh takes as "scopes unknown"
// rather than as missing ones: the scopes here are not GitHub's.
func (s *server) handleAPIRoot(w http.ResponseWriter, r *http.Request) error {
	if _, _, err := s.authUser(r); err != nil {
		return err
	}
	api := s.apiBase(r)
	writeJSON(w, http.StatusOK, map[string]string{
		"current_user_url":          api + "/user",
		"repository_url":            api + "/repos/{owner}/{repo}",
		"user_url":                  api + "/users/{user}",
		"workflow_runs_url":         api + "/repos/{owner}/{repo}/actions/runs",
		"workflows_url":             api + "/repos/{owner}/{repo}/actions/workflows",
		"graphql_url":               s.base(r) + "/api/graphql",
		"documentation_url":         s.base(r) + "/",
		"check_run_annotations_url": api + "/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations",
	})
	return nil
}

// ghAnnotation is GitHub's check-annotation.
type ghAnnotation struct {
	Path            string  `json:"path"`
	BlobHref        string  `json:"blob_href"`
	StartLine       int     `json:"start_line"`
	StartColumn     *int    `json:"start_column"`
	EndLine         int     `json:"end_line"`
	EndColumn       *int    `json:"end_column"`
	AnnotationLevel string  `json:"annotation_level"`
	Title           string  `json:"title"`
	Message         string  `json:"message"`
	RawDetails      *string `json:"raw_details"`
}

// ghAnnotationLevel is an annotation's level as GitHub names it: an error
// is a "failure".
func ghAnnotationLevel(level string) string {
	switch level {
	case "error":
		return "failure"
	case "warning":
		return "warning"
	}
	return "notice"
}

// handleCheckRunAnnotations serves
// GET /api/v1/repos/{owner}/{repo}/check-runs/{check_run_id}/annotations:
// a job's annotations (a job is its own check run: its check_run_url), in
// GitHub's shape, which gh run view shows. Readable as the job is.
func (s *server) handleCheckRunAnnotations(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "check_run_id")
	if err != nil {
		return err
	}
	job, err := s.store.JobOf(r.Context(), repo.ID, 0, id)
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
	anns, err := s.store.JobAnnotations(r.Context(), job.ID)
	if err != nil {
		return err
	}
	out := []ghAnnotation{}
	for _, a := range pageOf(anns, page, perPage) {
		g := ghAnnotation{Path: a.File, StartLine: a.Line, EndLine: a.EndLine, AnnotationLevel: ghAnnotationLevel(a.Level),
			Title: a.Title, Message: a.Message}
		if g.Path == "" {
			g.Path = ".github" // GitHub's path for an annotation that names no file
		}
		if g.StartLine == 0 {
			g.StartLine = 1
		}
		if g.EndLine < g.StartLine {
			g.EndLine = g.StartLine
		}
		// GitHub gives columns only for an annotation on one line.
		if a.Col > 0 && g.EndLine == g.StartLine {
			c := a.Col
			g.StartColumn = &c
			ec := max(a.EndColumn, c)
			g.EndColumn = &ec
		}
		out = append(out, g)
	}
	if link := linkHeader(s.base(r)+r.URL.Path, q, page, perPage, len(anns)); link != "" {
		w.Header().Set("Link", link)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
