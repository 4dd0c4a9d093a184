package compat

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v92/github"
)

// binary is the server, built once from the parent directory by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "compat-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "shithub-actions")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the server: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const ciWorkflow = `name: CI
on:
  push:
    branches: [main]
  workflow_dispatch:
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: echo building
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo testing
`

const otherWorkflow = `name: Other
on:
  push:
  workflow_dispatch:
jobs:
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: echo linting
`

// env is one server on a temporary database, a repository alice/hello
// whose post-receive hook starts runs, and a clone to push from.
type env struct {
	t      *testing.T
	dir    string
	db     string
	base   string // http://127.0.0.1:PORT
	token  string // alice's PAT
	runner string // a runner token
	work   string // the clone
	gh     *github.Client
	client *http.Client // trusts the server's certificate when it serves HTTPS
	logs   *syncBuffer  // the server's log
}

// syncBuffer is a buffer the server's output is copied into while tests
// read it.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func (e *env) cli(args ...string) string {
	e.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "SHITHUB_ACTIONS_DB="+e.db)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("shithub-actions %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *env) git(dir string, args ...string) string {
	e.t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+e.dir,
		"GIT_AUTHOR_NAME=Alice", "GIT_AUTHOR_EMAIL=alice@example.com",
		"GIT_COMMITTER_NAME=Alice", "GIT_COMMITTER_EMAIL=alice@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// commit writes files into the clone, commits them and pushes the branch;
// the hook starts the runs. It returns the commit's sha and what the hook
// printed.
func (e *env) commit(branch, msg string, files map[string]string) (string, string) {
	e.t.Helper()
	for name, content := range files {
		p := filepath.Join(e.work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	e.git(e.work, "add", "-A")
	e.git(e.work, "commit", "-q", "--allow-empty", "-m", msg)
	out := e.git(e.work, "push", "-q", "origin", "HEAD:refs/heads/"+branch)
	return strings.TrimSpace(e.git(e.work, "rev-parse", "HEAD")), out
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with serve's extra flags; with tlsCfg the server
// serves HTTPS (the flags name its certificate), reached as scheme://addr
// by clients trusting tlsCfg's roots.
func newEnvWith(t *testing.T, srvTLS *serverTLS) *env {
	e := &env{t: t, dir: t.TempDir(), client: http.DefaultClient}
	e.db = filepath.Join(e.dir, "ci.db")
	e.git(e.dir, "init", "-q", "--bare", "-b", "main", "hello.git")
	e.cli("user", "create", "alice")
	out := e.cli("repo", "create", "alice/hello", "--git", filepath.Join(e.dir, "hello.git"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if hook := exec.Command("sh", "-c", lines[len(lines)-1]); true {
		if out, err := hook.CombinedOutput(); err != nil {
			t.Fatalf("installing the hook: %v\n%s", err, out)
		}
	}
	e.token = lastLine(e.cli("token", "create", "alice", "--scopes", "repo:read,repo:write"))
	e.runner = lastLine(e.cli("runner", "register", "r1", "--labels", "ubuntu-latest"))
	e.git(e.dir, "clone", "-q", "hello.git", "work")
	e.work = filepath.Join(e.dir, "work")

	addr := freePort(t)
	e.base = "http://" + addr
	args := []string{"serve", "--runners", "0", "--addr", addr}
	if srvTLS != nil {
		e.base = "https://" + addr
		e.client = srvTLS.client
		args = append(args, "--tls-cert", srvTLS.certFile, "--tls-key", srvTLS.keyFile)
	}
	srv := exec.Command(binary, args...)
	srv.Env = append(os.Environ(), "SHITHUB_ACTIONS_DB="+e.db)
	logs := &syncBuffer{}
	e.logs = logs
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { srv.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; {
		if res, err := e.client.Get(e.base + "/api/v1/repos/alice/hello"); err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The one change a GitHub script needs: the base URL.
	api, uploads := e.base+"/api/v1/", e.base+"/api/uploads/"
	gh, err := github.NewClient(github.WithAuthToken(e.token), github.WithURLs(&api, &uploads))
	if err != nil {
		t.Fatal(err)
	}
	e.gh = gh
	return e
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// ---- the runner protocol, as a remote runner speaks it ----

type claimed struct {
	JobID   int64  `json:"job_id"`
	RunID   int64  `json:"run_id"`
	JobKey  string `json:"job_key"`
	HeadSHA string `json:"head_sha"`
	Steps   []struct {
		ID     int64  `json:"id"`
		Number int    `json:"number"`
		Name   string `json:"name"`
	} `json:"steps"`
}

func (e *env) runnerPost(path, body string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.runner)
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// claim takes the next claimable job; nil when there is none.
func (e *env) claim() *claimed {
	e.t.Helper()
	code, body := e.runnerPost("/api/v1/runners/heartbeat", `{"labels":["ubuntu-latest"],"capacity":1}`)
	if code == http.StatusNoContent {
		return nil
	}
	if code != http.StatusOK {
		e.t.Fatalf("heartbeat: %d %s", code, body)
	}
	var c claimed
	if err := json.Unmarshal(body, &c); err != nil {
		e.t.Fatal(err)
	}
	return &c
}

// finish runs a claimed job to the end: every step runs and logs a line,
// and the job ends with conclusion.
func (e *env) finish(c *claimed, conclusion string) {
	e.t.Helper()
	for i, st := range c.Steps {
		stepConclusion := "success"
		if conclusion != "success" && i == len(c.Steps)-1 {
			stepConclusion = "failure"
		}
		for _, call := range []struct{ path, body string }{
			{fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", c.JobID, st.ID), `{"status":"running"}`},
			{fmt.Sprintf("/api/v1/jobs/%d/logs", c.JobID), fmt.Sprintf(`{"step_id":%d,"seq":1,"data":%q}`, st.ID,
				base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("hello from %s step %d\n", c.JobKey, st.Number))))},
			{fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", c.JobID, st.ID), fmt.Sprintf(`{"status":"completed","conclusion":%q}`, stepConclusion)},
		} {
			if code, body := e.runnerPost(call.path, call.body); code >= 300 {
				e.t.Fatalf("POST %s: %d %s", call.path, code, body)
			}
		}
	}
	if code, body := e.runnerPost(fmt.Sprintf("/api/v1/jobs/%d/status", c.JobID), fmt.Sprintf(`{"status":"completed","conclusion":%q}`, conclusion)); code != 200 {
		e.t.Fatalf("job status: %d %s", code, body)
	}
}

// get fetches a URL with no token, as a browser or curl -L would the
// target of a logs redirect.
func get(t *testing.T, u string) []byte {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, res.StatusCode, b)
	}
	return b
}

// TestGoGitHub drives the server with go-github as a GitHub user's script
// would, with no change but the base URL.
func TestGoGitHub(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	acts := e.gh.Actions
	const owner, repo = "alice", "hello"

	sha1, _ := e.commit("main", "First commit\n\nwith a body", map[string]string{
		".shithub/workflows/ci.yml": ciWorkflow, ".shithub/workflows/other.yml": otherWorkflow})
	sha2, _ := e.commit("main", "Second commit", map[string]string{"README": "hello\n"})
	e.commit("dev", "On dev", map[string]string{"DEV": "dev\n"})

	// The repository, as PyGithub's get_repo and go-github's Repositories.Get read it.
	r, _, err := e.gh.Repositories.Get(ctx, owner, repo)
	if err != nil || r.GetFullName() != "alice/hello" || r.GetDefaultBranch() != "main" || r.GetOwner().GetLogin() != "alice" || r.GetPrivate() {
		t.Fatalf("Repositories.Get = %+v, %v", r, err)
	}

	// Every run, two to a page, by the Link header.
	var all []*github.WorkflowRun
	opts := &github.ListWorkflowRunsOptions{ListOptions: github.ListOptions{PerPage: 2}}
	pages := 0
	for {
		runs, resp, err := acts.ListRepositoryWorkflowRuns(ctx, owner, repo, opts)
		if err != nil {
			t.Fatalf("ListRepositoryWorkflowRuns page %d: %v", opts.Page, err)
		}
		if runs.GetTotalCount() != 5 {
			t.Errorf("total_count = %d, want 5", runs.GetTotalCount())
		}
		all = append(all, runs.WorkflowRuns...)
		pages++
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	if len(all) != 5 || pages != 3 {
		t.Fatalf("paginated %d runs in %d pages, want 5 in 3", len(all), pages)
	}
	for i, run := range all {
		if want := 5 - i; run.GetRunNumber() != want {
			t.Errorf("run %d: run_number %d, want %d (newest first)", i, run.GetRunNumber(), want)
		}
	}
	byNumber := map[int]*github.WorkflowRun{}
	for _, run := range all {
		byNumber[run.GetRunNumber()] = run
	}
	run1 := byNumber[1]
	if run1.GetName() != "CI" || run1.GetPath() != ".shithub/workflows/ci.yml" || run1.GetHeadBranch() != "main" ||
		run1.GetHeadSHA() != sha1 || run1.GetStatus() != "queued" || run1.Conclusion != nil || run1.GetEvent() != "push" ||
		run1.GetActor().GetLogin() != "alice" || run1.GetTriggeringActor().GetLogin() != "alice" || run1.GetRunAttempt() != 1 ||
		run1.GetDisplayTitle() != "First commit" || run1.GetHeadCommit().GetMessage() != "First commit\n\nwith a body" ||
		run1.GetRepository().GetFullName() != "alice/hello" || run1.GetWorkflowID() == 0 || run1.RunStartedAt == nil ||
		!strings.HasSuffix(run1.GetJobsURL(), fmt.Sprintf("/actions/runs/%d/jobs", run1.GetID())) || run1.PreviousAttemptURL != nil {
		t.Errorf("run #1 = %s", github.Stringify(run1))
	}

	// Filters.
	today := time.Now().UTC().Format("2006-01-02")
	for _, tt := range []struct {
		name string
		opts github.ListWorkflowRunsOptions
		want []int // run numbers
	}{
		{"branch", github.ListWorkflowRunsOptions{Branch: "dev"}, []int{5}},
		{"event", github.ListWorkflowRunsOptions{Event: "push"}, []int{5, 4, 3, 2, 1}},
		{"event none", github.ListWorkflowRunsOptions{Event: "workflow_dispatch"}, nil},
		{"status", github.ListWorkflowRunsOptions{Status: "queued"}, []int{5, 4, 3, 2, 1}},
		{"status as conclusion", github.ListWorkflowRunsOptions{Status: "failure"}, nil},
		{"head_sha", github.ListWorkflowRunsOptions{HeadSHA: sha2}, []int{4, 3}},
		{"created", github.ListWorkflowRunsOptions{Created: ">=" + today}, []int{5, 4, 3, 2, 1}},
		{"created range", github.ListWorkflowRunsOptions{Created: "2000-01-01..2000-12-31"}, nil},
		{"actor", github.ListWorkflowRunsOptions{Actor: "alice", ExcludePullRequests: true, CheckSuiteID: 7}, []int{5, 4, 3, 2, 1}},
	} {
		runs, _, err := acts.ListRepositoryWorkflowRuns(ctx, owner, repo, &tt.opts)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var got []int
		for _, run := range runs.WorkflowRuns {
			got = append(got, run.GetRunNumber())
		}
		if !slices.Equal(got, tt.want) || runs.GetTotalCount() != len(tt.want) {
			t.Errorf("%s: runs %v (total %d), want %v", tt.name, got, runs.GetTotalCount(), tt.want)
		}
	}
	ciRuns, _, err := acts.ListWorkflowRunsByFileName(ctx, owner, repo, "ci.yml", nil)
	if err != nil || ciRuns.GetTotalCount() != 2 {
		t.Errorf("ListWorkflowRunsByFileName(ci.yml) = %v, %v; want 2 runs", ciRuns.GetTotalCount(), err)
	}

	// Cancel a queued run; a completed one cannot be cancelled.
	run2 := byNumber[2]
	_, err = acts.CancelWorkflowRunByID(ctx, owner, repo, run2.GetID())
	var accepted *github.AcceptedError
	if !errors.As(err, &accepted) {
		t.Fatalf("CancelWorkflowRunByID = %v, want GitHub's 202 (AcceptedError)", err)
	}
	if got, _, _ := acts.GetWorkflowRunByID(ctx, owner, repo, run2.GetID()); got.GetStatus() != "completed" || got.GetConclusion() != "cancelled" {
		t.Errorf("cancelled run = %s", github.Stringify(got))
	}
	_, err = acts.CancelWorkflowRunByID(ctx, owner, repo, run2.GetID())
	var ghErr *github.ErrorResponse
	if !errors.As(err, &ghErr) || ghErr.Response.StatusCode != http.StatusConflict {
		t.Errorf("cancelling a completed run = %v, want 409", err)
	}
	// The other queued runs go too, so that the runner below claims only
	// run #1's jobs and their re-runs.
	for _, n := range []int{3, 4, 5} {
		if _, err := acts.CancelWorkflowRunByID(ctx, owner, repo, byNumber[n].GetID()); !errors.As(err, &accepted) {
			t.Fatalf("cancelling run #%d: %v", n, err)
		}
	}

	// A runner runs run #1: build succeeds, test fails.
	build := e.claim()
	if build == nil || build.RunID != run1.GetID() || build.JobKey != "build" {
		t.Fatalf("first claim = %+v, want run #1's build", build)
	}
	e.finish(build, "success")
	test := e.claim()
	if test == nil || test.RunID != run1.GetID() || test.JobKey != "test" {
		t.Fatalf("second claim = %+v, want run #1's test", test)
	}
	e.finish(test, "failure")

	got, _, err := acts.GetWorkflowRunByID(ctx, owner, repo, run1.GetID())
	if err != nil || got.GetStatus() != "completed" || got.GetConclusion() != "failure" {
		t.Fatalf("GetWorkflowRunByID = %s, %v; want completed failure", github.Stringify(got), err)
	}
	jobs, _, err := acts.ListWorkflowJobs(ctx, owner, repo, run1.GetID(), nil)
	if err != nil || jobs.GetTotalCount() != 2 {
		t.Fatalf("ListWorkflowJobs = %v, %v", jobs, err)
	}
	j0 := jobs.Jobs[0]
	if j0.GetName() != "build" || j0.GetConclusion() != "success" || j0.GetRunnerName() != "r1" || !slices.Equal(j0.Labels, []string{"ubuntu-latest"}) ||
		j0.GetHeadSHA() != sha1 || j0.GetWorkflowName() != "CI" || j0.GetRunAttempt() != 1 || len(j0.Steps) != 2 || j0.Steps[1].GetConclusion() != "success" {
		t.Errorf("build job = %s", github.Stringify(j0))
	}
	job, _, err := acts.GetWorkflowJobByID(ctx, owner, repo, test.JobID)
	if err != nil || job.GetConclusion() != "failure" || job.GetRunID() != run1.GetID() {
		t.Errorf("GetWorkflowJobByID = %s, %v", github.Stringify(job), err)
	}

	// Logs: a redirect to a URL that works without a token.
	u, _, err := acts.GetWorkflowJobLogs(ctx, owner, repo, build.JobID, 1)
	if err != nil {
		t.Fatalf("GetWorkflowJobLogs: %v", err)
	}
	if log := string(get(t, u.String())); !strings.Contains(log, "hello from build step 2") || !strings.Contains(log, "##[group]") {
		t.Errorf("job log = %q", log)
	}
	u, _, err = acts.GetWorkflowRunLogs(ctx, owner, repo, run1.GetID(), 1)
	if err != nil {
		t.Fatalf("GetWorkflowRunLogs: %v", err)
	}
	zb := get(t, u.String())
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatalf("run logs are not a zip: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if !slices.Contains(names, "0_build.txt") || !slices.Contains(names, "1_test.txt") || !slices.Contains(names, "test/2_Run echo testing.txt") {
		t.Errorf("zip holds %v", names)
	}

	// Re-run the failed jobs: test runs again, build keeps its result and log.
	if _, err := acts.RerunFailedJobsByID(ctx, owner, repo, run1.GetID()); err != nil {
		t.Fatalf("RerunFailedJobsByID: %v", err)
	}
	latest := func() *github.WorkflowRun {
		runs, _, err := acts.ListRepositoryWorkflowRuns(ctx, owner, repo, &github.ListWorkflowRunsOptions{ListOptions: github.ListOptions{PerPage: 1}})
		if err != nil || len(runs.WorkflowRuns) != 1 {
			t.Fatalf("newest run: %v", err)
		}
		return runs.WorkflowRuns[0]
	}
	rerun := latest()
	if rerun.GetRunAttempt() != 2 || rerun.GetPreviousAttemptURL() != run1.GetURL() || rerun.GetHeadSHA() != sha1 || rerun.GetStatus() == "completed" {
		t.Errorf("re-run of failed jobs = %s", github.Stringify(rerun))
	}
	rjobs, _, err := acts.ListWorkflowJobs(ctx, owner, repo, rerun.GetID(), nil)
	if err != nil || len(rjobs.Jobs) != 2 || rjobs.Jobs[0].GetConclusion() != "success" || rjobs.Jobs[1].GetStatus() != "queued" {
		t.Fatalf("re-run's jobs = %s, %v; want build success (kept), test queued", github.Stringify(rjobs), err)
	}
	u, _, err = acts.GetWorkflowJobLogs(ctx, owner, repo, rjobs.Jobs[0].GetID(), 1)
	if err != nil || !strings.Contains(string(get(t, u.String())), "hello from build step 2") {
		t.Errorf("kept build job's log: %v", err)
	}
	allJobs, _, err := acts.ListWorkflowJobs(ctx, owner, repo, rerun.GetID(), &github.ListWorkflowJobsOptions{Filter: "all"})
	if err != nil || allJobs.GetTotalCount() != 4 {
		t.Errorf("jobs of every attempt = %v, %v; want 4", allJobs.GetTotalCount(), err)
	}
	first, _, err := acts.GetWorkflowRunAttempt(ctx, owner, repo, rerun.GetID(), 1, nil)
	if err != nil || first.GetID() != run1.GetID() {
		t.Errorf("attempt 1 of the re-run = %v, %v; want run %d", first.GetID(), err, run1.GetID())
	}
	again := e.claim()
	if again == nil || again.RunID != rerun.GetID() || again.JobKey != "test" {
		t.Fatalf("claim after re-run = %+v, want the re-run's test", again)
	}
	e.finish(again, "success")
	if got, _, _ := acts.GetWorkflowRunByID(ctx, owner, repo, rerun.GetID()); got.GetConclusion() != "success" {
		t.Errorf("re-run = %s, want success", github.Stringify(got))
	}

	// Re-run one job (and the jobs that need it), then the whole run.
	if _, err := acts.RerunJobByID(ctx, owner, repo, build.JobID); err != nil {
		t.Fatalf("RerunJobByID: %v", err)
	}
	jr := latest()
	jrJobs, _, _ := acts.ListWorkflowJobs(ctx, owner, repo, jr.GetID(), nil)
	if jr.GetRunAttempt() != 2 || len(jrJobs.Jobs) != 2 || jrJobs.Jobs[0].GetStatus() != "queued" || jrJobs.Jobs[1].GetStatus() != "queued" {
		t.Errorf("job re-run = %s with jobs %s", github.Stringify(jr), github.Stringify(jrJobs))
	}
	if _, err := acts.RerunWorkflowByID(ctx, owner, repo, rerun.GetID()); err != nil {
		t.Fatalf("RerunWorkflowByID: %v", err)
	}
	if full := latest(); full.GetRunAttempt() != 3 || full.GetPreviousAttemptURL() != rerun.GetURL() {
		t.Errorf("re-run of the re-run = %s, want attempt 3", github.Stringify(full))
	}

	// Workflows: list, get by file and by id, disable, enable.
	wfs, _, err := acts.ListWorkflows(ctx, owner, repo, nil)
	if err != nil || wfs.GetTotalCount() != 2 || wfs.Workflows[0].GetName() != "CI" || wfs.Workflows[1].GetName() != "Other" || wfs.Workflows[0].GetState() != "active" {
		t.Fatalf("ListWorkflows = %s, %v", github.Stringify(wfs), err)
	}
	other, _, err := acts.GetWorkflowByFileName(ctx, owner, repo, "other.yml")
	if err != nil || other.GetPath() != ".shithub/workflows/other.yml" {
		t.Fatalf("GetWorkflowByFileName = %s, %v", github.Stringify(other), err)
	}
	if byID, _, err := acts.GetWorkflowByID(ctx, owner, repo, other.GetID()); err != nil || byID.GetName() != "Other" {
		t.Errorf("GetWorkflowByID = %s, %v", github.Stringify(byID), err)
	}
	if _, err := acts.DisableWorkflowByFileName(ctx, owner, repo, "other.yml"); err != nil {
		t.Fatalf("DisableWorkflowByFileName: %v", err)
	}
	if w, _, _ := acts.GetWorkflowByID(ctx, owner, repo, other.GetID()); w.GetState() != "disabled_manually" {
		t.Errorf("disabled workflow's state = %q", w.GetState())
	}
	_, hookOut := e.commit("main", "Third commit", map[string]string{"README": "more\n"})
	if !strings.Contains(hookOut, "other.yml is disabled") {
		t.Errorf("push with a disabled workflow printed %q, want it to say so", hookOut)
	}
	if runs, _, _ := acts.ListWorkflowRunsByID(ctx, owner, repo, other.GetID(), nil); runs.GetTotalCount() != 3 {
		t.Errorf("Other's runs after a push while disabled = %d, want still 3", runs.GetTotalCount())
	}
	_, _, err = acts.CreateWorkflowDispatchEventByFileName(ctx, owner, repo, "other.yml", github.CreateWorkflowDispatchEventRequest{Ref: "main"})
	if !errors.As(err, &ghErr) || ghErr.Response.StatusCode != http.StatusConflict || !strings.Contains(ghErr.Message, "disabled") {
		t.Errorf("dispatching a disabled workflow = %v, want 409 saying it is disabled", err)
	}
	if _, err := acts.EnableWorkflowByID(ctx, owner, repo, other.GetID()); err != nil {
		t.Fatalf("EnableWorkflowByID: %v", err)
	}

	// Dispatch, with and without the run's details.
	if _, _, err := acts.CreateWorkflowDispatchEventByID(ctx, owner, repo, other.GetID(), github.CreateWorkflowDispatchEventRequest{Ref: "main"}); err != nil {
		t.Errorf("CreateWorkflowDispatchEventByID: %v", err)
	}
	details, _, err := acts.CreateWorkflowDispatchEventByFileName(ctx, owner, repo, "ci.yml",
		github.CreateWorkflowDispatchEventRequest{Ref: "main", ReturnRunDetails: github.Ptr(true)})
	if err != nil || details.GetWorkflowRunID() == 0 || details.GetRunURL() == "" || details.GetHTMLURL() == "" {
		t.Fatalf("dispatch with return_run_details = %s, %v", github.Stringify(details), err)
	}
	d, _, err := acts.GetWorkflowRunByID(ctx, owner, repo, details.GetWorkflowRunID())
	if err != nil || d.GetEvent() != "workflow_dispatch" || d.GetURL() != details.GetRunURL() || d.GetDisplayTitle() != "CI" {
		t.Errorf("dispatched run = %s, %v", github.Stringify(d), err)
	}
	if runs, _, _ := acts.ListRepositoryWorkflowRuns(ctx, owner, repo, &github.ListWorkflowRunsOptions{Event: "workflow_dispatch"}); runs.GetTotalCount() != 2 {
		t.Errorf("dispatched runs = %d, want 2", runs.GetTotalCount())
	}
}
