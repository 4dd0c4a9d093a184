package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

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
	if j := ts.job(jobs[0].ID); j.Status != protocol.StatusRunning || !j.CancelRequested {
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
	ts.jobStatus(jobs[0].ID, protocol.ConclusionCancelled, 200)
	if r := ts.run(run.ID); r.Status != protocol.StatusCompleted || r.Conclusion != protocol.ConclusionCancelled {
		t.Errorf("run after cancel = %s/%s, want completed/cancelled", r.Status, r.Conclusion)
	}
	if j := ts.job(jobs[1].ID); j.Conclusion != protocol.ConclusionSkipped {
		t.Errorf("dependent job conclusion = %q, want skipped", j.Conclusion)
	}
	// A completed job: 202, nothing changes.
	if got := cancel(build); got.ChangedJobs != 0 || got.RunCompleted {
		t.Errorf("cancel completed = %+v, want changed_jobs 0", got)
	}

	// Whole-run cancel of a queued run completes it at once.
	run2, _ := ts.newRun(ts.pub)
	got = cancel(fmt.Sprintf("/api/v1/runs/%d/cancel", run2.ID))
	if want := (cancelResponse{JobID: 0, RunID: run2.ID, RepoID: ts.pub.ID, ChangedJobs: 2, RunCompleted: true, RunConclusion: protocol.ConclusionCancelled}); got != want {
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
		ts.jobStatus(id, protocol.ConclusionSuccess, 200)
		break
	}
	if j := ts.heartbeat(); j == nil || j.JobKey != "test" {
		t.Errorf("after a build succeeded, heartbeat claimed %+v, want a test job", j)
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
				if r := ts.run(run.ID); r.Status != protocol.StatusRunning {
					t.Errorf("run with one job left = %s, want running", r.Status)
				}
				ts.jobStatus(jobs[1].ID, tt.test, 200)
			} else if j := ts.job(jobs[1].ID); j.Conclusion != protocol.ConclusionSkipped {
				t.Errorf("dependent of a %s job = %q, want skipped", tt.build, j.Conclusion)
			}
			if r := ts.run(run.ID); r.Status != protocol.StatusCompleted || r.Conclusion != tt.run || r.CompletedAt.IsZero() {
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
	content, err := ts.store.RunContent(context.Background(), second.RunID)
	if err != nil || string(content) != testWorkflow {
		t.Errorf("re-run's workflow content changed: %q, %v", content, err)
	}
}

// TestRestartAndReap: jobs a previous process left running fail with a
// reason in their log; jobs past their timeout are ended.
func TestRestartAndReap(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	local, err := ts.store.LocalRunner(ctx, []string{"ubuntu-latest"})
	if err != nil {
		t.Fatal(err)
	}
	run, jobs := ts.newRun(ts.pub)
	if j, err := ts.store.ClaimJob(ctx, local, local.Labels); err != nil || j == nil {
		t.Fatalf("local claim = %v, %v", j, err)
	}
	ids, err := ts.store.FailRunnerJobs(ctx, local.ID, "interrupted: the server restarted")
	if err != nil || !slices.Equal(ids, []int64{jobs[0].ID}) {
		t.Fatalf("failRunnerJobs = %v, %v; want [%d]", ids, err, jobs[0].ID)
	}
	if r := ts.run(run.ID); r.Status != protocol.StatusCompleted || r.Conclusion != protocol.ConclusionFailure {
		t.Errorf("run after restart = %s/%s, want completed/failure", r.Status, r.Conclusion)
	}
	res := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", jobs[0].ID), "")
	if !strings.Contains(string(res.body), "interrupted: the server restarted") {
		t.Errorf("log = %q, want the restart reason", res.body)
	}

	// A remote runner's job past its timeout, and one whose runner went quiet.
	run2, jobs2 := ts.newRun(ts.pub)
	run3, _ := ts.newRun(ts.pub)
	ts.heartbeat()
	ts.clock.Add(3 * time.Minute)
	if n, err := ts.store.ReapJobs(ctx, local.ID, time.Minute, 2*time.Minute); err != nil || n != 1 {
		t.Errorf("reapJobs after 3 minutes of silence = %d, %v; want 1", n, err)
	}
	if j := ts.job(jobs2[0].ID); j.Conclusion != protocol.ConclusionFailure {
		t.Errorf("job of a lost runner = %q, want failure", j.Conclusion)
	}
	_ = run2
	j := ts.heartbeat() // r1 is back; it takes run3's build
	ts.clock.Add(362 * time.Minute)
	ts.do(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel-check", j.JobID), auth: bearer(ts.rtoken)}) // alive
	if n, err := ts.store.ReapJobs(ctx, local.ID, time.Minute, 2*time.Minute); err != nil || n != 1 {
		t.Errorf("reapJobs past the timeout = %d, %v; want 1", n, err)
	}
	if r := ts.run(run3.ID); r.Conclusion != protocol.ConclusionTimedOut {
		t.Errorf("run past its timeout = %q, want timed_out", r.Conclusion)
	}
}

// gpuWorkflow has one job only a runner with the gpu label can take.
const gpuWorkflow = `name: GPU
on: push
jobs:
  train:
    runs-on: [gpu]
    steps:
      - run: nvidia-smi
  after:
    needs: train
    runs-on: ubuntu-latest
    steps:
      - run: echo done
`

// newRunOf makes a push run of a workflow's content on repo in the Store.
func (ts *testServer) newRunOf(repo *store.Repo, content string) (*store.Run, []*store.Job) {
	ts.t.Helper()
	wf, err := workflow.Parse("x.yml", []byte(content))
	if err != nil {
		ts.t.Fatal(err)
	}
	runs, _, err := ts.store.CreateRuns(context.Background(), nil, []store.RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/x.yml", Content: []byte(content), Workflow: wf,
		HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	jobs, err := ts.store.RunJobs(context.Background(), runs[0].ID)
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0], jobs
}

// TestHeartbeatNarrowsLabels: a runner registered with ubuntu-latest that
// claims gpu in its heartbeat gets no gpu job; one registered with gpu does.
func TestHeartbeatNarrowsLabels(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	_, jobs := ts.newRunOf(ts.pub, gpuWorkflow)
	for _, body := range []string{`{"labels":["ubuntu-latest","gpu"],"capacity":1}`, `{"labels":["gpu"],"capacity":1}`} {
		ts.want(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: bearer(ts.rtoken), body: body}, http.StatusNoContent, nil)
	}
	_, gpuToken, err := ts.store.CreateRunner(context.Background(), "gpu-box", []string{"gpu", "ubuntu-latest"})
	if err != nil {
		t.Fatal(err)
	}
	var got protocol.Job
	ts.want(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: bearer(gpuToken), body: `{"labels":["gpu"],"capacity":1}`}, http.StatusOK, &got)
	if got.JobID != jobs[0].ID {
		t.Errorf("gpu-box claimed job %d, want %d", got.JobID, jobs[0].ID)
	}
	for _, tc := range []struct{ registered, asked, want []string }{
		{[]string{"a", "b"}, nil, []string{"a", "b"}},
		{[]string{"a", "b"}, []string{}, []string{}},
		{[]string{"a", "b"}, []string{"b", "c", "b"}, []string{"b"}},
		{nil, []string{"a"}, []string{}},
	} {
		if got := store.NarrowLabels(tc.registered, tc.asked); !slices.Equal(got, tc.want) {
			t.Errorf("narrowLabels(%q, %q) = %q, want %q", tc.registered, tc.asked, got, tc.want)
		}
	}
}

// TestRunnerRevoke: a revoked runner's token gets 401 at once and the jobs
// it was running fail with "runner revoked".
func TestRunnerRevoke(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	run, _ := ts.newRun(ts.pub)
	j := ts.heartbeat()
	if j == nil {
		t.Fatal("no job claimed")
	}
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", j.JobID, j.Steps[0].ID), auth: bearer(ts.rtoken),
		body: `{"status":"running"}`}, http.StatusOK, nil)
	list, err := ts.store.ListRunners(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "r1" || list[0].RunningJobs != 1 || list[0].Revoked || list[0].LastSeen.IsZero() {
		t.Fatalf("listRunners = %+v, %v", list, err)
	}

	ids, err := ts.store.RevokeRunner(ctx, "r1")
	if err != nil || !slices.Equal(ids, []int64{j.JobID}) {
		t.Fatalf("revokeRunner = %v, %v; want [%d]", ids, err, j.JobID)
	}
	for _, path := range []string{"/api/v1/runners/heartbeat", fmt.Sprintf("/api/v1/jobs/%d/status", j.JobID),
		fmt.Sprintf("/api/v1/jobs/%d/cancel-check", j.JobID), fmt.Sprintf("/api/v1/jobs/%d/logs", j.JobID)} {
		res := ts.do(request{method: "POST", path: path, auth: bearer(ts.rtoken), body: `{}`})
		if res.code != http.StatusUnauthorized || !strings.Contains(string(res.body), "runner revoked") {
			t.Errorf("POST %s: status = %d, want 401 runner revoked; body %s", path, res.code, res.body)
		}
	}
	if r := ts.run(run.ID); r.Status != protocol.StatusCompleted || r.Conclusion != protocol.ConclusionFailure {
		t.Errorf("run = %s/%s, want completed/failure", r.Status, r.Conclusion)
	}
	res := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", j.JobID), "")
	if !strings.Contains(string(res.body), "##[error]runner revoked") {
		t.Errorf("log = %q, want the reason", res.body)
	}
	list, _ = ts.store.ListRunners(ctx)
	if len(list) != 1 || !list[0].Revoked || list[0].RunningJobs != 0 || list[0].RevokedAt.IsZero() {
		t.Errorf("listRunners after revoke = %+v", list)
	}
	if ids, err := ts.store.RevokeRunner(ctx, "r1"); err != nil || len(ids) != 0 {
		t.Errorf("revoking twice = %v, %v", ids, err)
	}
	if _, err := ts.store.RevokeRunner(ctx, "nope"); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("revoking an unknown runner = %v", err)
	}
	if _, err := ts.store.LocalRunner(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.store.RevokeRunner(ctx, store.LocalRunnerName); !errors.Is(err, apperr.ErrNotFound) {
		t.Errorf("revoking the server's own pool = %v", err)
	}
}

// TestClaimAck: a claim whose answer never reached the runner goes back to
// the queue after a minute; one the runner acknowledged stays.
func TestClaimAck(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	local, err := ts.store.LocalRunner(ctx, []string{"ubuntu-latest"})
	if err != nil {
		t.Fatal(err)
	}
	ts.srv.localRunnerID = local.ID
	run, jobs := ts.newRun(ts.pub)
	lost := ts.heartbeat() // its answer is "lost": the runner never reports
	ts.clock.Add(store.ClaimAckTimeout - time.Second)
	ts.srv.reapOnce(ctx)
	if j := ts.job(lost.JobID); j.Status != protocol.StatusRunning {
		t.Fatalf("job %d after %v unacknowledged = %s, want still running", j.ID, store.ClaimAckTimeout-time.Second, j.Status)
	}
	ts.clock.Add(2 * time.Second)
	ts.srv.reapOnce(ctx)
	if j := ts.job(lost.JobID); j.Status != protocol.StatusQueued || j.RunnerID != 0 || !j.StartedAt.IsZero() {
		t.Fatalf("job after %v unacknowledged = %s on runner %d, want queued again", store.ClaimAckTimeout+time.Second, j.Status, j.RunnerID)
	}
	if r := ts.run(run.ID); r.Status != protocol.StatusQueued {
		t.Errorf("run = %s, want queued again", r.Status)
	}
	// The runner's late report is refused: the job is not its own now.
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", lost.JobID, lost.Steps[0].ID), auth: bearer(ts.rtoken),
		body: `{"status":"running"}`}, http.StatusNotFound, nil)

	// Claimed again, and acknowledged by a log post: it stays.
	again := ts.heartbeat()
	if again == nil || again.JobID != jobs[0].ID {
		t.Fatalf("claimed again: %+v", again)
	}
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/logs", again.JobID), auth: bearer(ts.rtoken),
		body: fmt.Sprintf(`{"step_id":%d,"seq":1,"data":"aGk="}`, again.Steps[0].ID)}, http.StatusAccepted, nil)
	ts.clock.Add(10 * store.ClaimAckTimeout)
	ts.do(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel-check", again.JobID), auth: bearer(ts.rtoken)}) // alive
	ts.srv.reapOnce(ctx)
	if j := ts.job(again.JobID); j.Status != protocol.StatusRunning {
		t.Errorf("acknowledged job = %s, want running", j.Status)
	}
	// The server's own pool is never requeued.
	ts.newRun(ts.priv)
	own, err := ts.store.ClaimJob(ctx, local, local.Labels)
	if err != nil || own == nil {
		t.Fatalf("local claim: %v, %v", own, err)
	}
	ts.clock.Add(2 * store.ClaimAckTimeout)
	ts.srv.reapOnce(ctx)
	if j := ts.job(own.JobID); j.Status != protocol.StatusRunning {
		t.Errorf("the pool's unacknowledged job = %s, want running", j.Status)
	}
}

// TestQueueTimeout: a job no runner has the labels for fails after
// --queue-timeout, naming the labels; one a runner could take waits on.
func TestQueueTimeout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	gpuRun, gpuJobs := ts.newRunOf(ts.pub, gpuWorkflow)
	_, okJobs := ts.newRun(ts.pub)
	ts.clock.Add(defaultQueueTimeout - time.Minute)
	ts.srv.reapOnce(ctx)
	if j := ts.job(gpuJobs[0].ID); j.Status != protocol.StatusQueued {
		t.Fatalf("job before the queue timeout = %s", j.Status)
	}
	ts.clock.Add(2 * time.Minute)
	ts.srv.reapOnce(ctx)
	if j := ts.job(gpuJobs[0].ID); j.Status != protocol.StatusCompleted || j.Conclusion != protocol.ConclusionFailure {
		t.Errorf("gpu job after the queue timeout = %s/%s, want completed/failure", j.Status, j.Conclusion)
	}
	if r := ts.run(gpuRun.ID); r.Status != protocol.StatusCompleted || r.Conclusion != protocol.ConclusionFailure {
		t.Errorf("gpu run = %s/%s, want completed/failure", r.Status, r.Conclusion)
	}
	if j := ts.job(gpuJobs[1].ID); j.Conclusion != protocol.ConclusionSkipped {
		t.Errorf("the job needing it = %s, want skipped", j.Conclusion)
	}
	res := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", gpuJobs[0].ID), "")
	if !strings.Contains(string(res.body), "none has all of its runs-on labels gpu; it waited 24h0m0s") {
		t.Errorf("log = %q, want the labels named", res.body)
	}
	// r1 has ubuntu-latest: its job waits, however long.
	if j := ts.job(okJobs[0].ID); j.Status != protocol.StatusQueued {
		t.Errorf("a job r1 can take = %s, want queued", j.Status)
	}
	// Once r1 is revoked, no one can take it.
	if _, err := ts.store.RevokeRunner(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	ts.srv.reapOnce(ctx)
	if j := ts.job(okJobs[0].ID); j.Conclusion != protocol.ConclusionFailure {
		t.Errorf("a job only a revoked runner could take = %s/%s, want failure", j.Status, j.Conclusion)
	}
}

// TestNoDatabaseLocked writes from the server and from a second Store on
// the same file (as the admin commands do) at once: nothing fails.
func TestNoDatabaseLocked(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	var path string
	if err := ts.store.DBForTest().QueryRow("PRAGMA database_list").Scan(new(int), new(string), &path); err != nil {
		t.Fatal(err)
	}
	other, err := openStore(path, store.Options{})
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
				if _, err := other.CreateUser(context.Background(), fmt.Sprintf("u%d-%d", i, k)); err != nil {
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
