package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
)

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
	if nr.Status != protocol.StatusQueued || nr.RunAttempt != 2 || nr.Actor != "bob" || nr.Event != "push" || nr.HeadRef != "refs/heads/main" {
		t.Errorf("new run = status %s attempt %d actor %s event %s ref %s, want queued 2 bob push refs/heads/main",
			nr.Status, nr.RunAttempt, nr.Actor, nr.Event, nr.HeadRef)
	}
	newJobs, _ := ts.store.RunJobs(context.Background(), nr.ID)
	if len(newJobs) != 2 || newJobs[0].Status != protocol.StatusQueued || newJobs[1].Status != protocol.StatusQueued {
		t.Errorf("new run's jobs = %d, want 2 queued", len(newJobs))
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
	ts := newTestServerWith(t, store.Options{LogCap: 64})
	run, jobs := ts.newRun(ts.pub)
	j := ts.heartbeat()
	if len(j.Steps) != 3 || j.Steps[0].Kind != "setup" || j.Steps[1].Kind != "checkout" || j.Steps[2].Run != "echo building" {
		t.Fatalf("claimed steps = %+v, want setup, checkout, run", j.Steps)
	}
	if j.Env["GITHUB_SHA"] != ts.sha || j.Env["GITHUB_REPOSITORY"] != "alice/pub" || j.TimeoutMinutes != 360 {
		t.Errorf("claimed env/timeout = %v/%d", j.Env, j.TimeoutMinutes)
	}
	other, otherTok, _ := ts.store.CreateRunner(context.Background(), "r2", nil)
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
	if r := ts.run(run.ID); r.Status != protocol.StatusCompleted || r.Conclusion != protocol.ConclusionFailure {
		t.Errorf("run = %s/%s, want completed/failure", r.Status, r.Conclusion)
	}
	res := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", j.JobID), "")
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
	if r0.HTMLURL != "https://ci.example/alice/pub/actions/runs/3" || r0.Actor.Login != "alice" || r0.WorkflowName != "CI" || r0.CreatedAt == nil || r0.StartedAt != nil {
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
		{"/api/v1/repos/alice/pub/actions/runs?per_page=101", "", 200, 5},
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
