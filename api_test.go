package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// testServer is a server on a temporary database with a fixed clock and a
// cast: alice owns alice/pub (public) and alice/priv (private); bob may
// write both, carol may read both, dave is an outsider.
type testServer struct {
	t      *testing.T
	store  *Store
	srv    *server
	clock  *testClock
	users  map[string]*User
	tokens map[string]string // user (or "user:read") → PAT
	pub    *Repo
	priv   *Repo
	runner *Runner
	rtoken string // runner token of runner
	git    string // a real git repository holding a workflow; both repos use it
	sha    string // its main commit
}

// testClock is an injectable clock that tests move by hand.
type testClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testWorkflow has two jobs, the second needing the first, and both
// triggers.
const testWorkflow = `name: CI
on:
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [low, high]
        default: low
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo building
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo testing
`

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	st, err := openStore(filepath.Join(t.TempDir(), "test.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &testClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	st.now = clock.Now
	ts := &testServer{
		t: t, store: st, clock: clock,
		srv:   newServer(st, slog.New(slog.NewTextHandler(io.Discard, nil)), "https://ci.example"),
		users: map[string]*User{}, tokens: map[string]string{},
	}
	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		u, err := st.createUser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ts.users[name] = u
		_, secret, err := st.createToken(ctx, u, "", []string{scopeRead, scopeWrite}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[name] = secret
		_, secret, err = st.createToken(ctx, u, "", []string{scopeRead}, 0)
		if err != nil {
			t.Fatal(err)
		}
		ts.tokens[name+":read"] = secret
	}
	ts.git, ts.sha = newGitRepo(t, map[string]string{".shithub/workflows/ci.yml": testWorkflow, "README": "hi\n"})
	if ts.pub, err = st.createRepo(ctx, ts.users["alice"], "pub", filepath.Join(ts.git, ".git"), false); err != nil {
		t.Fatal(err)
	}
	if ts.priv, err = st.createRepo(ctx, ts.users["alice"], "priv", filepath.Join(ts.git, ".git"), true); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Repo{ts.pub, ts.priv} {
		if err := st.grant(ctx, r, ts.users["bob"], permWrite); err != nil {
			t.Fatal(err)
		}
		if err := st.grant(ctx, r, ts.users["carol"], permRead); err != nil {
			t.Fatal(err)
		}
	}
	if ts.runner, ts.rtoken, err = st.createRunner(ctx, "r1", []string{"ubuntu-latest"}); err != nil {
		t.Fatal(err)
	}
	return ts
}

// newGitRepo makes a git repository with one commit of files on main and
// returns its path and the commit.
func newGitRepo(t testing.TB, files map[string]string) (string, string) {
	t.Helper()
	dir := t.TempDir()
	gitCmd(t, dir, "init", "-q", "-b", "main")
	return dir, commitFiles(t, dir, files)
}

func commitFiles(t testing.TB, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gitCmd(t, dir, "add", "-A")
	gitCmd(t, dir, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "-m", "commit")
	return strings.TrimSpace(gitCmd(t, dir, "rev-parse", "HEAD"))
}

func gitCmd(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir,
		"GIT_AUTHOR_DATE=2026-11-23T12:00:00Z", "GIT_COMMITTER_DATE=2026-11-23T12:00:00Z") // stable shas for golden files
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// newRun makes a push run of the test workflow on repo directly in the
// Store and returns it with its jobs (build, then test).
func (ts *testServer) newRun(repo *Repo) (*Run, []*Job) {
	ts.t.Helper()
	ctx := context.Background()
	wf, err := parseWorkflow("ci.yml", []byte(testWorkflow))
	if err != nil {
		ts.t.Fatal(err)
	}
	runs, _, err := ts.store.createRuns(ctx, nil, []runSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/ci.yml", Content: []byte(testWorkflow), Workflow: wf,
		HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	jobs, err := ts.store.runJobs(ctx, runs[0].ID)
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0], jobs
}

// request is one HTTP exchange with the server.
type request struct {
	method, path string
	auth         string // the Authorization header, verbatim
	body         string
	header       map[string]string
}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func (ts *testServer) do(rq request) response {
	ts.t.Helper()
	req := httptest.NewRequest(rq.method, rq.path, strings.NewReader(rq.body))
	if rq.auth != "" {
		req.Header.Set("Authorization", rq.auth)
	}
	for k, v := range rq.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	ts.srv.ServeHTTP(rec, req)
	return response{rec.Code, rec.Header(), rec.Body.Bytes()}
}

func bearer(tok string) string { return "Bearer " + tok }

// want checks a response's status and decodes its JSON body into v (when
// not nil).
func (ts *testServer) want(rq request, code int, v any) response {
	ts.t.Helper()
	res := ts.do(rq)
	if res.code != code {
		ts.t.Fatalf("%s %s: status = %d, want %d; body %s", rq.method, rq.path, res.code, code, res.body)
	}
	if v != nil {
		if err := json.Unmarshal(res.body, v); err != nil {
			ts.t.Fatalf("%s %s: decoding %s: %v", rq.method, rq.path, res.body, err)
		}
	}
	return res
}

// runner API helpers, as a runner would call them.
func (ts *testServer) heartbeat() *claimedJob {
	ts.t.Helper()
	res := ts.do(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: bearer(ts.rtoken), body: `{"labels":["ubuntu-latest"],"capacity":1}`})
	switch res.code {
	case http.StatusNoContent:
		return nil
	case http.StatusOK:
		var j claimedJob
		if err := json.Unmarshal(res.body, &j); err != nil {
			ts.t.Fatal(err)
		}
		return &j
	}
	ts.t.Fatalf("POST /api/v1/runners/heartbeat: status = %d; body %s", res.code, res.body)
	return nil
}

func (ts *testServer) jobStatus(id int64, conclusion string, code int) {
	ts.t.Helper()
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/status", id), auth: bearer(ts.rtoken),
		body: `{"status":"completed","conclusion":"` + conclusion + `"}`}, code, nil)
}

func (ts *testServer) run(id int64) *Run {
	ts.t.Helper()
	r, err := ts.store.runByID(context.Background(), id)
	if err != nil {
		ts.t.Fatal(err)
	}
	return r
}

func (ts *testServer) job(id int64) *Job {
	ts.t.Helper()
	j, err := ts.store.jobByID(context.Background(), id)
	if err != nil {
		ts.t.Fatal(err)
	}
	return j
}

// jsonKeys returns the sorted top-level keys of a JSON object.
func jsonKeys(t *testing.T, b []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestSpecCancelResponse checks the specification's cancel example field by
// field: names, types and meaning.
func TestSpecCancelResponse(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	run, jobs := ts.newRun(ts.pub)
	res := ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs[0].ID), auth: bearer(ts.tokens["bob"])}, http.StatusAccepted, nil)
	if got, want := jsonKeys(t, res.body), []string{"changed_jobs", "job_id", "repo_id", "run_completed", "run_conclusion", "run_id"}; !slices.Equal(got, want) {
		t.Errorf("cancel response keys = %v, want %v", got, want)
	}
	var got map[string]any
	json.Unmarshal(res.body, &got)
	// Cancelling the queued first job skips the second, which completes the run.
	want := map[string]any{
		"job_id": float64(jobs[0].ID), "run_id": float64(run.ID), "repo_id": float64(ts.pub.ID),
		"changed_jobs": float64(2), "run_completed": true, "run_conclusion": "cancelled",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("cancel response %s = %#v, want %#v", k, got[k], v)
		}
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
}

// TestSpecRerunResponse checks the specification's re-run example field by
// field.
func TestSpecRerunResponse(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	run, jobs := ts.newRun(ts.pub)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), auth: bearer(ts.tokens["alice"])}, http.StatusAccepted, nil)
	_ = jobs
	res := ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", run.ID), auth: bearer(ts.tokens["bob"])}, http.StatusCreated, nil)
	if got, want := jsonKeys(t, res.body), []string{"head_sha", "parent_run_id", "repo_id", "run_id", "run_index", "workflow_file"}; !slices.Equal(got, want) {
		t.Errorf("rerun response keys = %v, want %v", got, want)
	}
	var got rerunResponse
	json.Unmarshal(res.body, &got)
	want := rerunResponse{RunID: run.ID + 1, RunIndex: run.RunIndex + 1, ParentRunID: run.ID, RepoID: ts.pub.ID,
		WorkflowFile: ".shithub/workflows/ci.yml", HeadSHA: ts.sha}
	if got != want {
		t.Errorf("rerun response = %+v, want %+v", got, want)
	}
	nr := ts.run(got.RunID)
	if nr.Status != statusQueued || nr.RunAttempt != 2 || nr.Actor != "bob" || nr.Event != "push" || nr.HeadRef != "refs/heads/main" {
		t.Errorf("new run = status %s attempt %d actor %s event %s ref %s, want queued 2 bob push refs/heads/main",
			nr.Status, nr.RunAttempt, nr.Actor, nr.Event, nr.HeadRef)
	}
	newJobs, _ := ts.store.runJobs(context.Background(), nr.ID)
	if len(newJobs) != 2 || newJobs[0].Status != statusQueued || newJobs[1].Status != statusQueued {
		t.Errorf("new run's jobs = %d, want 2 queued", len(newJobs))
	}
}

// TestAuthMatrix runs every kind of caller against a lifecycle endpoint.
func TestAuthMatrix(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	_, pubJobs := ts.newRun(ts.pub)
	_, privJobs := ts.newRun(ts.priv)
	_, expired, _ := ts.store.createToken(ctx, ts.users["bob"], "", []string{scopeWrite}, time.Hour)
	revokedTok, revoked, _ := ts.store.createToken(ctx, ts.users["bob"], "", []string{scopeWrite}, 0)
	if err := ts.store.revokeToken(ctx, revokedTok.ID); err != nil {
		t.Fatal(err)
	}
	ts.clock.Add(2 * time.Hour) // expires the first
	unknown := patPrefix + strings.Repeat("A", 32)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("bob:"+ts.tokens["bob"]))
	pub := fmt.Sprintf("/api/v1/jobs/%d/cancel", pubJobs[1].ID)
	priv := fmt.Sprintf("/api/v1/jobs/%d/cancel", privJobs[1].ID)
	tests := []struct {
		name, path, auth string
		code             int
		msg              string
	}{
		{"none", pub, "", 401, "authentication required"},
		{"malformed", pub, "Bearer nonsense", 401, "bad credentials"},
		{"unknown scheme", pub, "Digest abc", 401, "bad credentials"},
		{"unknown", pub, bearer(unknown), 401, "bad credentials"},
		{"expired", pub, bearer(expired), 401, "token expired"},
		{"revoked", pub, bearer(revoked), 401, "token revoked"},
		{"runner token", pub, bearer(ts.rtoken), 401, "bad credentials"},
		{"read-only scope", pub, bearer(ts.tokens["bob:read"]), 403, "repo:write"},
		{"reader without write", pub, bearer(ts.tokens["carol"]), 404, "not found"},
		{"outsider on public", pub, bearer(ts.tokens["dave"]), 404, "not found"},
		{"outsider on private", priv, bearer(ts.tokens["dave"]), 404, "not found"},
		{"unknown id", "/api/v1/jobs/999999/cancel", bearer(ts.tokens["bob"]), 404, "not found"},
		{"non-numeric id", "/api/v1/jobs/abc/cancel", bearer(ts.tokens["bob"]), 404, "not found"},
		{"writer, token scheme", pub, "token " + ts.tokens["bob"], 202, ""},
		{"writer, basic", priv, basic, 202, ""},
		{"owner", priv, bearer(ts.tokens["alice"]), 202, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := ts.do(request{method: "POST", path: tt.path, auth: tt.auth})
			if res.code != tt.code {
				t.Fatalf("POST %s: status = %d, want %d; body %s", tt.path, res.code, tt.code, res.body)
			}
			if tt.code >= 400 {
				var body struct{ Message string }
				if err := json.Unmarshal(res.body, &body); err != nil || !strings.Contains(body.Message, tt.msg) {
					t.Errorf("POST %s: body = %s, want message containing %q", tt.path, res.body, tt.msg)
				}
			}
			if tt.code == 401 && res.header.Get("WWW-Authenticate") == "" {
				t.Errorf("POST %s: 401 without WWW-Authenticate", tt.path)
			}
		})
	}
	// Another repository's job id through the read API is not found either.
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", privJobs[0].ID), auth: bearer(ts.tokens["bob"])}, 404, nil)
}

// TestCancel walks the cancel endpoint through its cases.
func TestCancel(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cancel := func(path string) cancelResponse {
		t.Helper()
		var res cancelResponse
		ts.want(request{method: "POST", path: path, auth: bearer(ts.tokens["bob"])}, http.StatusAccepted, &res)
		return res
	}
	run, jobs := ts.newRun(ts.pub)
	claimed := ts.heartbeat()
	if claimed == nil || claimed.JobID != jobs[0].ID {
		t.Fatalf("heartbeat claimed %+v, want job %d", claimed, jobs[0].ID)
	}
	build := fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs[0].ID)

	// A running job keeps running, flagged.
	got := cancel(build)
	if want := (cancelResponse{JobID: jobs[0].ID, RunID: run.ID, RepoID: ts.pub.ID, ChangedJobs: 1}); got != want {
		t.Errorf("cancel running = %+v, want %+v", got, want)
	}
	if j := ts.job(jobs[0].ID); j.Status != statusRunning || !j.CancelRequested {
		t.Errorf("running job after cancel: status %s cancel_requested %v, want running true", j.Status, j.CancelRequested)
	}
	// Repeating changes nothing.
	if got := cancel(build); got.ChangedJobs != 0 || got.RunCompleted || got.RunConclusion != "" {
		t.Errorf("repeated cancel = %+v, want changed_jobs 0", got)
	}
	// The runner sees the flag, stops, reports; dependents are skipped.
	var cc map[string]bool
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel-check", jobs[0].ID), auth: bearer(ts.rtoken)}, 200, &cc)
	if !cc["cancel_requested"] {
		t.Errorf("cancel-check = %v, want cancel_requested true", cc)
	}
	ts.jobStatus(jobs[0].ID, conclusionCancelled, 200)
	if r := ts.run(run.ID); r.Status != statusCompleted || r.Conclusion != conclusionCancelled {
		t.Errorf("run after cancel = %s/%s, want completed/cancelled", r.Status, r.Conclusion)
	}
	if j := ts.job(jobs[1].ID); j.Conclusion != conclusionSkipped {
		t.Errorf("dependent job conclusion = %q, want skipped", j.Conclusion)
	}
	// A completed job: 202, nothing changes.
	if got := cancel(build); got.ChangedJobs != 0 || got.RunCompleted {
		t.Errorf("cancel completed = %+v, want changed_jobs 0", got)
	}

	// Whole-run cancel of a queued run completes it at once.
	run2, _ := ts.newRun(ts.pub)
	got = cancel(fmt.Sprintf("/api/v1/runs/%d/cancel", run2.ID))
	if want := (cancelResponse{JobID: 0, RunID: run2.ID, RepoID: ts.pub.ID, ChangedJobs: 2, RunCompleted: true, RunConclusion: conclusionCancelled}); got != want {
		t.Errorf("run cancel = %+v, want %+v", got, want)
	}
}

// TestCancelConcurrent has many clients cancel one running job at once:
// exactly one of them changes it.
func TestCancelConcurrent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	_, jobs := ts.newRun(ts.pub)
	ts.heartbeat()
	const n = 32
	changed := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := ts.do(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs[0].ID), auth: bearer(ts.tokens["bob"])})
			if res.code != http.StatusAccepted {
				t.Errorf("cancel %d: status = %d, want 202; %s", i, res.code, res.body)
				return
			}
			var cr cancelResponse
			json.Unmarshal(res.body, &cr)
			changed[i] = cr.ChangedJobs
		}()
	}
	wg.Wait()
	ones := 0
	for _, c := range changed {
		ones += c
	}
	if ones != 1 {
		t.Errorf("sum of changed_jobs over %d concurrent cancels = %d, want 1", n, ones)
	}
}

// TestHeartbeatConcurrent has many runners claim at once: each job goes to
// exactly one, and a job waits for the jobs it needs.
func TestHeartbeatConcurrent(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	const runs = 10
	for range runs {
		ts.newRun(ts.pub)
	}
	var mu sync.Mutex // guards claimed
	claimed := map[int64]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := ts.heartbeat()
				if j == nil {
					return
				}
				mu.Lock()
				claimed[j.JobID]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != runs {
		t.Errorf("claimed %d distinct jobs, want %d (only the build jobs: test needs build)", len(claimed), runs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %d claimed %d times, want 1", id, n)
		}
		if j := ts.job(id); j.JobKey != "build" {
			t.Errorf("claimed job %d is %q, want build", id, j.JobKey)
		}
	}
	// Finishing a build makes its test claimable.
	for id := range claimed {
		ts.jobStatus(id, conclusionSuccess, 200)
		break
	}
	if j := ts.heartbeat(); j == nil || j.JobKey != "test" {
		t.Errorf("after a build succeeded, heartbeat claimed %+v, want a test job", j)
	}
}

// TestRunnerLabels: a runner takes only jobs whose runs-on labels it has.
func TestRunnerLabels(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.newRun(ts.pub)
	res := ts.do(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: bearer(ts.rtoken), body: `{"labels":["arm64"],"capacity":1}`})
	if res.code != http.StatusNoContent {
		t.Errorf("heartbeat with labels [arm64]: status = %d, want 204", res.code)
	}
	res = ts.do(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: bearer(ts.rtoken), body: `{"capacity":0}`})
	if res.code != http.StatusNoContent {
		t.Errorf("heartbeat with capacity 0: status = %d, want 204", res.code)
	}
	// Without labels in the heartbeat, the registered ones count.
	res = ts.do(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: bearer(ts.rtoken), body: `{"capacity":1}`})
	if res.code != http.StatusOK {
		t.Errorf("heartbeat with registered labels: status = %d, want 200", res.code)
	}
}

// TestRunnerProtocol covers logs, step and job transitions, and who may
// touch a job.
func TestRunnerProtocol(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.store.logCap = 64
	run, jobs := ts.newRun(ts.pub)
	j := ts.heartbeat()
	if len(j.Steps) != 3 || j.Steps[0].Kind != "setup" || j.Steps[1].Kind != "checkout" || j.Steps[2].Run != "echo building" {
		t.Fatalf("claimed steps = %+v, want setup, checkout, run", j.Steps)
	}
	if j.Env["GITHUB_SHA"] != ts.sha || j.Env["GITHUB_REPOSITORY"] != "alice/pub" || j.TimeoutMinutes != 360 {
		t.Errorf("claimed env/timeout = %v/%d", j.Env, j.TimeoutMinutes)
	}
	other, otherTok, _ := ts.store.createRunner(context.Background(), "r2", nil)
	_ = other
	step := j.Steps[2].ID
	logPath := fmt.Sprintf("/api/v1/jobs/%d/logs", j.JobID)
	chunk := func(seq int, data string) string {
		return fmt.Sprintf(`{"step_id":%d,"seq":%d,"data":%q}`, step, seq, base64.StdEncoding.EncodeToString([]byte(data)))
	}
	stepPath := fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", j.JobID, step)
	tests := []struct {
		name, path, auth, body string
		code                   int
	}{
		{"step running", stepPath, bearer(ts.rtoken), `{"status":"running"}`, 200},
		{"step running again", stepPath, bearer(ts.rtoken), `{"status":"running"}`, 200},
		{"log 1", logPath, bearer(ts.rtoken), chunk(1, "hello\n"), 202},
		{"log 1 resent", logPath, bearer(ts.rtoken), chunk(1, "DUPLICATE\n"), 202},
		{"log 2", logPath, bearer(ts.rtoken), chunk(2, "world\n"), 202},
		{"log seq 0", logPath, bearer(ts.rtoken), chunk(0, "x"), 400},
		{"log not base64", logPath, bearer(ts.rtoken), fmt.Sprintf(`{"step_id":%d,"seq":9,"data":"***"}`, step), 400},
		{"log unknown field", logPath, bearer(ts.rtoken), `{"step_id":1,"seq":1,"data":"","x":1}`, 400},
		{"log other step", logPath, bearer(ts.rtoken), fmt.Sprintf(`{"step_id":%d,"seq":1,"data":""}`, 999999), 404},
		{"log over cap", logPath, bearer(ts.rtoken), chunk(3, strings.Repeat("z", 100)), 202},
		{"log after cap", logPath, bearer(ts.rtoken), chunk(4, "lost\n"), 202},
		{"other runner's log", logPath, bearer(otherTok), chunk(5, "x"), 404},
		{"other runner's cancel-check", fmt.Sprintf("/api/v1/jobs/%d/cancel-check", j.JobID), bearer(otherTok), "", 404},
		{"PAT on runner API", logPath, bearer(ts.tokens["alice"]), chunk(6, "x"), 401},
		{"step bad conclusion", stepPath, bearer(ts.rtoken), `{"status":"completed","conclusion":"great"}`, 409},
		{"step done", stepPath, bearer(ts.rtoken), `{"status":"completed","conclusion":"success"}`, 200},
		{"step done again", stepPath, bearer(ts.rtoken), `{"status":"completed","conclusion":"success"}`, 200},
		{"step back to running", stepPath, bearer(ts.rtoken), `{"status":"running"}`, 409},
		{"job bad conclusion", fmt.Sprintf("/api/v1/jobs/%d/status", j.JobID), bearer(ts.rtoken), `{"status":"completed","conclusion":"skipped"}`, 409},
		{"job back to queued", fmt.Sprintf("/api/v1/jobs/%d/status", j.JobID), bearer(ts.rtoken), `{"status":"queued"}`, 409},
		{"job of another runner", fmt.Sprintf("/api/v1/jobs/%d/status", jobs[1].ID), bearer(ts.rtoken), `{"status":"completed","conclusion":"success"}`, 404},
		{"job failure", fmt.Sprintf("/api/v1/jobs/%d/status", j.JobID), bearer(ts.rtoken), `{"status":"completed","conclusion":"failure"}`, 200},
		{"job failure again", fmt.Sprintf("/api/v1/jobs/%d/status", j.JobID), bearer(ts.rtoken), `{"status":"completed","conclusion":"failure"}`, 200},
		{"job success after failure", fmt.Sprintf("/api/v1/jobs/%d/status", j.JobID), bearer(ts.rtoken), `{"status":"completed","conclusion":"success"}`, 409},
		{"log after completion", logPath, bearer(ts.rtoken), chunk(7, "late\n"), 409},
	}
	for _, tt := range tests {
		res := ts.do(request{method: "POST", path: tt.path, auth: tt.auth, body: tt.body})
		if res.code != tt.code {
			t.Errorf("%s: POST %s: status = %d, want %d; body %s", tt.name, tt.path, res.code, tt.code, res.body)
		}
	}
	// A chunk over 1 MiB is refused.
	big := fmt.Sprintf(`{"step_id":%d,"seq":50,"data":%q}`, step, base64.StdEncoding.EncodeToString(make([]byte, maxLogChunk+1)))
	if res := ts.do(request{method: "POST", path: logPath, auth: bearer(ts.rtoken), body: big}); res.code != http.StatusBadRequest {
		t.Errorf("POST %s with a chunk over 1 MiB: status = %d, want 400", logPath, res.code)
	}
	// The job failed: the dependent is skipped and the run failed.
	if r := ts.run(run.ID); r.Status != statusCompleted || r.Conclusion != conclusionFailure {
		t.Errorf("run = %s/%s, want completed/failure", r.Status, r.Conclusion)
	}
	res := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", j.JobID)}, 200, nil)
	log := string(res.body)
	for _, want := range []string{"##[group]Set up job\n##[endgroup]\n", "##[group]Run echo building\nhello\nworld\nzzz", "log truncated", "##[endgroup]\n"} {
		if !strings.Contains(log, want) {
			t.Errorf("job log lacks %q:\n%s", want, log)
		}
	}
	for _, notWant := range []string{"DUPLICATE", "lost", "late"} {
		if strings.Contains(log, notWant) {
			t.Errorf("job log has %q:\n%s", notWant, log)
		}
	}
	if ct := res.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("log Content-Type = %q", ct)
	}
}

// TestRollup checks how job conclusions fold into the run's.
func TestRollup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		jobs []string
		want string
	}{
		{[]string{"success"}, "success"},
		{[]string{"success", "success"}, "success"},
		{[]string{"success", "skipped"}, "success"},
		{[]string{"skipped", "skipped"}, "skipped"},
		{[]string{"success", "cancelled"}, "cancelled"},
		{[]string{"cancelled", "skipped"}, "cancelled"},
		{[]string{"cancelled", "failure"}, "failure"},
		{[]string{"timed_out", "cancelled"}, "timed_out"},
		{[]string{"timed_out", "failure"}, "failure"},
		{[]string{"success", "timed_out", "skipped"}, "timed_out"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.jobs, ","), func(t *testing.T) {
			if got := runConclusion(tt.jobs); got != tt.want {
				t.Errorf("runConclusion(%v) = %q, want %q", tt.jobs, got, tt.want)
			}
		})
	}
}

// TestRollupThroughRunner drives whole runs through the runner API.
func TestRollupThroughRunner(t *testing.T) {
	t.Parallel()
	tests := []struct {
		build, test string // "" : not reported (skipped or cancelled by the server)
		run         string
	}{
		{"success", "success", "success"},
		{"success", "failure", "failure"},
		{"failure", "", "failure"},
		{"timed_out", "", "timed_out"},
		{"cancelled", "", "cancelled"},
		{"success", "cancelled", "cancelled"},
	}
	for _, tt := range tests {
		t.Run(tt.build+"+"+tt.test, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			run, jobs := ts.newRun(ts.pub)
			ts.heartbeat()
			ts.jobStatus(jobs[0].ID, tt.build, 200)
			if tt.test != "" {
				if j := ts.heartbeat(); j == nil || j.JobID != jobs[1].ID {
					t.Fatalf("heartbeat after build = %+v, want job %d", j, jobs[1].ID)
				}
				if r := ts.run(run.ID); r.Status != statusRunning {
					t.Errorf("run with one job left = %s, want running", r.Status)
				}
				ts.jobStatus(jobs[1].ID, tt.test, 200)
			} else if j := ts.job(jobs[1].ID); j.Conclusion != conclusionSkipped {
				t.Errorf("dependent of a %s job = %q, want skipped", tt.build, j.Conclusion)
			}
			if r := ts.run(run.ID); r.Status != statusCompleted || r.Conclusion != tt.run || r.CompletedAt.IsZero() {
				t.Errorf("run = %s/%s, want completed/%s", r.Status, r.Conclusion, tt.run)
			}
		})
	}
}

// TestRerun: only completed runs; a re-run of a re-run links to its parent
// and counts attempts.
func TestRerun(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	run, _ := ts.newRun(ts.pub)
	var msg struct{ Message string }
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", run.ID), auth: bearer(ts.tokens["bob"])}, http.StatusConflict, &msg)
	if msg.Message != "run is not rerunnable" {
		t.Errorf("rerun of a queued run: message = %q, want %q", msg.Message, "run is not rerunnable")
	}
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), auth: bearer(ts.tokens["bob"])}, http.StatusAccepted, nil)
	var first, second rerunResponse
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", run.ID), auth: bearer(ts.tokens["bob"])}, http.StatusCreated, &first)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", first.RunID), auth: bearer(ts.tokens["bob"])}, http.StatusAccepted, nil)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", first.RunID), auth: bearer(ts.tokens["alice"])}, http.StatusCreated, &second)
	if second.ParentRunID != first.RunID || first.ParentRunID != run.ID {
		t.Errorf("parents = %d, %d; want %d, %d", first.ParentRunID, second.ParentRunID, run.ID, first.RunID)
	}
	if first.RunIndex != 2 || second.RunIndex != 3 {
		t.Errorf("run_index = %d, %d; want 2, 3", first.RunIndex, second.RunIndex)
	}
	if r := ts.run(second.RunID); r.RunAttempt != 3 {
		t.Errorf("re-run of a re-run: run_attempt = %d, want 3", r.RunAttempt)
	}
	// The workflow bytes travel with the run, whatever the repository holds now.
	commitFiles(t, ts.git, map[string]string{".shithub/workflows/ci.yml": "name: Changed\non: push\njobs: {}\n"})
	content, err := ts.store.runContent(context.Background(), second.RunID)
	if err != nil || string(content) != testWorkflow {
		t.Errorf("re-run's workflow content changed: %q, %v", content, err)
	}
}

// TestReadAPI covers listing, filters, pagination and visibility.
func TestReadAPI(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for range 5 {
		ts.newRun(ts.pub)
		ts.clock.Add(time.Second)
	}
	priv, _ := ts.newRun(ts.priv)
	var list runsJSON
	res := ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?per_page=2&page=2"}, 200, &list)
	if list.TotalCount != 5 || len(list.WorkflowRuns) != 2 || list.WorkflowRuns[0].RunIndex != 3 {
		t.Errorf("page 2 = total %d, %d runs, first #%d; want 5, 2, #3", list.TotalCount, len(list.WorkflowRuns), list.WorkflowRuns[0].RunIndex)
	}
	link := res.header.Get("Link")
	for _, rel := range []string{`rel="next"`, `rel="last"`, `rel="first"`, `rel="prev"`, "page=3"} {
		if !strings.Contains(link, rel) {
			t.Errorf("Link = %q, lacks %s", link, rel)
		}
	}
	r0 := list.WorkflowRuns[0]
	if r0.HTMLURL != "https://ci.example/alice/pub/actions/runs/3" || r0.Actor != "alice" || r0.WorkflowName != "CI" || r0.CreatedAt == nil || r0.StartedAt != nil {
		t.Errorf("run JSON = %+v", r0)
	}
	tests := []struct {
		path  string
		auth  string
		code  int
		total int
	}{
		{"/api/v1/repos/alice/pub/actions/runs?status=queued", "", 200, 5},
		{"/api/v1/repos/alice/pub/actions/runs?status=completed", "", 200, 0},
		{"/api/v1/repos/alice/pub/actions/runs?branch=main&event=push&actor=alice&workflow_file=ci.yml", "", 200, 5},
		{"/api/v1/repos/alice/pub/actions/runs?branch=dev", "", 200, 0},
		{"/api/v1/repos/alice/pub/actions/runs?per_page=101", "", 400, 0},
		{"/api/v1/repos/alice/pub/actions/runs?page=0", "", 400, 0},
		{"/api/v1/repos/alice/priv/actions/runs", "", 404, 0},
		{"/api/v1/repos/alice/priv/actions/runs", bearer(ts.tokens["dave"]), 404, 0},
		{"/api/v1/repos/alice/priv/actions/runs", bearer(ts.tokens["carol:read"]), 200, 1},
		{"/api/v1/repos/alice/nope/actions/runs", "", 404, 0},
		{fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d", priv.ID), bearer(ts.tokens["alice"]), 404, 0},
	}
	for _, tt := range tests {
		var l runsJSON
		res := ts.do(request{method: "GET", path: tt.path, auth: tt.auth})
		if res.code != tt.code {
			t.Errorf("GET %s: status = %d, want %d; %s", tt.path, res.code, tt.code, res.body)
			continue
		}
		if tt.code == 200 {
			json.Unmarshal(res.body, &l)
			if l.TotalCount != tt.total {
				t.Errorf("GET %s: total_count = %d, want %d", tt.path, l.TotalCount, tt.total)
			}
		}
	}
	var jobs struct {
		TotalCount int       `json:"total_count"`
		Jobs       []jobJSON `json:"jobs"`
	}
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/priv/actions/runs/%d/jobs", priv.ID), auth: bearer(ts.tokens["carol"])}, 200, &jobs)
	if jobs.TotalCount != 2 || jobs.Jobs[1].JobKey != "test" || !slices.Equal(jobs.Jobs[1].Needs, []string{"build"}) || len(jobs.Jobs[0].Steps) != 3 {
		t.Errorf("jobs = %+v", jobs)
	}
}

// TestJSONErrorsEverywhere: under /api/ even the mux's own 404 and 405 are
// JSON.
func TestJSONErrorsEverywhere(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	tests := []struct {
		method, path string
		code         int
	}{
		{"GET", "/api/v1/nothing", 404},
		{"GET", "/api/v1/jobs/1/cancel", 405},
		{"DELETE", "/api/v1/runs/1/rerun", 405},
	}
	for _, tt := range tests {
		res := ts.do(request{method: tt.method, path: tt.path})
		var body struct{ Message string }
		if res.code != tt.code || json.Unmarshal(res.body, &body) != nil || body.Message == "" {
			t.Errorf("%s %s: status = %d, body %s; want %d with a JSON message", tt.method, tt.path, res.code, res.body, tt.code)
		}
	}
	// An oversized body is refused, not read.
	res := ts.do(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["alice"]),
		body: `{"ref":"` + strings.Repeat("x", maxBody) + `"}`})
	if res.code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status = %d, want 413", res.code)
	}
}

// TestPushRealGit pushes commits of a real repository through the API and
// through git's post-receive hook.
func TestPushRealGit(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	push := func(ref, before, after string, code int) runsJSON {
		t.Helper()
		var out runsJSON
		ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["bob"]),
			body: fmt.Sprintf(`{"ref":%q,"before":%q,"after":%q}`, ref, before, after)}, code, &out)
		return out
	}
	got := push("refs/heads/main", zeroSHA, ts.sha, 201)
	if len(got.WorkflowRuns) != 1 || got.WorkflowRuns[0].HeadSHA != ts.sha || got.WorkflowRuns[0].Actor != "bob" || got.WorkflowRuns[0].Status != "queued" {
		t.Fatalf("push = %+v, want one queued run by bob", got)
	}
	// Delivered again: the same run, none new.
	again := push("refs/heads/main", zeroSHA, ts.sha, 200)
	if len(again.WorkflowRuns) != 1 || again.WorkflowRuns[0].ID != got.WorkflowRuns[0].ID {
		t.Errorf("redelivered push = %+v, want run %d again", again, got.WorkflowRuns[0].ID)
	}
	// Another branch does not match branches: [main].
	if out := push("refs/heads/dev", zeroSHA, ts.sha, 201); len(out.WorkflowRuns) != 0 {
		t.Errorf("push to dev made %d runs, want 0", len(out.WorkflowRuns))
	}
	// A workflow that does not parse makes a failed run with the error in its log.
	bad := commitFiles(t, ts.git, map[string]string{".shithub/workflows/bad.yml": "name: Bad\non: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    strategy: {}\n    steps: [{run: echo}]\n"})
	out := push("refs/heads/main", ts.sha, bad, 201)
	var badRun *runJSON
	for i, r := range out.WorkflowRuns {
		if r.WorkflowFile == ".shithub/workflows/bad.yml" {
			badRun = &out.WorkflowRuns[i]
		}
	}
	if badRun == nil || badRun.Status != "completed" || badRun.Conclusion != "failure" {
		t.Fatalf("push with a bad workflow = %+v, want a completed failed run of bad.yml", out)
	}
	var jobs struct{ Jobs []jobJSON }
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/jobs", badRun.ID)}, 200, &jobs)
	res := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", jobs.Jobs[0].ID)}, 200, nil)
	if !strings.Contains(string(res.body), `bad.yml:6: unknown key "strategy"`) {
		t.Errorf("bad workflow's log = %q, want the parse error with file and line", res.body)
	}
	// Bad input.
	for _, body := range []string{`{"ref":"main","after":"` + ts.sha + `"}`, `{"ref":"refs/heads/main","after":"xyz"}`,
		`{"ref":"refs/heads/main","after":"` + strings.Repeat("1", 40) + `"}`, `{"ref":"refs/heads/main"`, `[]`} {
		res := ts.do(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["bob"]), body: body})
		if res.code != 400 && res.code != 422 {
			t.Errorf("push %s: status = %d, want 400 or 422", body, res.code)
		}
	}
	if n := countRuns(t, ts.store, ts.pub.ID); n != 3 {
		t.Errorf("runs after bad input = %d, want 3", n)
	}
	// Readers may not push.
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["carol"]),
		body: fmt.Sprintf(`{"ref":"refs/heads/main","after":%q}`, ts.sha)}, 403, nil)
}

func countRuns(t *testing.T, st *Store, repoID int64) int {
	t.Helper()
	_, n, err := st.listRuns(context.Background(), repoID, runFilter{}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestDispatch covers workflow_dispatch.
func TestDispatch(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	commitFiles(t, ts.git, map[string]string{".shithub/workflows/push-only.yml": "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: echo}]\n"})
	path := func(file string) string {
		return "/api/v1/repos/alice/pub/actions/workflows/" + file + "/dispatches"
	}
	tests := []struct {
		name, file, body string
		code             int
	}{
		{"plain", "ci.yml", `{"ref":"main"}`, 204},
		{"full ref", "ci.yml", `{"ref":"refs/heads/main","inputs":{"level":"high"}}`, 204},
		{"unknown workflow", "nope.yml", `{"ref":"main"}`, 404},
		{"not a workflow name", "..%2Fx.yml", `{"ref":"main"}`, 404},
		{"no dispatch trigger", "push-only.yml", `{"ref":"main"}`, 422},
		{"bad choice", "ci.yml", `{"ref":"main","inputs":{"level":"extreme"}}`, 422},
		{"unknown input", "ci.yml", `{"ref":"main","inputs":{"color":"red"}}`, 422},
		{"unknown ref", "ci.yml", `{"ref":"nope"}`, 422},
		{"no ref", "ci.yml", `{}`, 422},
	}
	for _, tt := range tests {
		res := ts.do(request{method: "POST", path: path(tt.file), auth: bearer(ts.tokens["bob"]), body: tt.body})
		if res.code != tt.code {
			t.Errorf("%s: POST %s: status = %d, want %d; %s", tt.name, path(tt.file), res.code, tt.code, res.body)
		}
	}
	var run runJSON
	ts.want(request{method: "POST", path: path("ci.yml"), auth: bearer(ts.tokens["bob"]), body: `{"ref":"main","inputs":{"level":"high"},"return_run_details":true}`}, 200, &run)
	if run.Event != "workflow_dispatch" || run.HeadRef != "refs/heads/main" || run.RunIndex != 3 {
		t.Errorf("dispatched run = %+v", run)
	}
	r := ts.run(run.ID)
	if r.Inputs["level"] != "high" {
		t.Errorf("inputs = %v, want level=high", r.Inputs)
	}
}

// TestRestartAndReap: jobs a previous process left running fail with a
// reason in their log; jobs past their timeout are ended.
func TestRestartAndReap(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	local, err := ts.store.localRunner(ctx, []string{"ubuntu-latest"})
	if err != nil {
		t.Fatal(err)
	}
	run, jobs := ts.newRun(ts.pub)
	if j, err := ts.store.claimJob(ctx, local, local.Labels); err != nil || j == nil {
		t.Fatalf("local claim = %v, %v", j, err)
	}
	ids, err := ts.store.failRunnerJobs(ctx, local.ID, "interrupted: the server restarted")
	if err != nil || !slices.Equal(ids, []int64{jobs[0].ID}) {
		t.Fatalf("failRunnerJobs = %v, %v; want [%d]", ids, err, jobs[0].ID)
	}
	if r := ts.run(run.ID); r.Status != statusCompleted || r.Conclusion != conclusionFailure {
		t.Errorf("run after restart = %s/%s, want completed/failure", r.Status, r.Conclusion)
	}
	res := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", jobs[0].ID)}, 200, nil)
	if !strings.Contains(string(res.body), "interrupted: the server restarted") {
		t.Errorf("log = %q, want the restart reason", res.body)
	}

	// A remote runner's job past its timeout, and one whose runner went quiet.
	run2, jobs2 := ts.newRun(ts.pub)
	run3, _ := ts.newRun(ts.pub)
	ts.heartbeat()
	ts.clock.Add(3 * time.Minute)
	if n, err := ts.store.reapJobs(ctx, local.ID, time.Minute, 2*time.Minute); err != nil || n != 1 {
		t.Errorf("reapJobs after 3 minutes of silence = %d, %v; want 1", n, err)
	}
	if j := ts.job(jobs2[0].ID); j.Conclusion != conclusionFailure {
		t.Errorf("job of a lost runner = %q, want failure", j.Conclusion)
	}
	_ = run2
	j := ts.heartbeat() // r1 is back; it takes run3's build
	ts.clock.Add(362 * time.Minute)
	ts.do(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel-check", j.JobID), auth: bearer(ts.rtoken)}) // alive
	if n, err := ts.store.reapJobs(ctx, local.ID, time.Minute, 2*time.Minute); err != nil || n != 1 {
		t.Errorf("reapJobs past the timeout = %d, %v; want 1", n, err)
	}
	if r := ts.run(run3.ID); r.Conclusion != conclusionTimedOut {
		t.Errorf("run past its timeout = %q, want timed_out", r.Conclusion)
	}
}

// TestNoDatabaseLocked writes from the server and from a second Store on
// the same file (as the admin commands do) at once: nothing fails.
func TestNoDatabaseLocked(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var path string
	if err := ts.store.db.QueryRow("PRAGMA database_list").Scan(new(int), new(string), &path); err != nil {
		t.Fatal(err)
	}
	other, err := openStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for i := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for k := range 25 {
				if _, err := other.createUser(context.Background(), fmt.Sprintf("u%d-%d", i, k)); err != nil {
					errs <- err
				}
			}
		}()
		go func() {
			defer wg.Done()
			for range 25 {
				run, _ := ts.newRun(ts.pub)
				res := ts.do(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), auth: bearer(ts.tokens["bob"])})
				if res.code != 202 {
					errs <- fmt.Errorf("cancel: %d %s", res.code, res.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func init() {
	// Tests must not depend on the developer's git configuration.
	os.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	os.Setenv("GIT_CONFIG_GLOBAL", os.DevNull)
}
