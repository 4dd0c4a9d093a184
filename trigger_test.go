package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

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
	got := push("refs/heads/main", git.ZeroSHA, ts.sha, 201)
	if len(got.WorkflowRuns) != 1 || got.WorkflowRuns[0].HeadSHA != ts.sha || got.WorkflowRuns[0].Actor.Login != "bob" || got.WorkflowRuns[0].Status != "queued" {
		t.Fatalf("push = %+v, want one queued run by bob", got)
	}
	// Delivered again: the same run, none new.
	again := push("refs/heads/main", git.ZeroSHA, ts.sha, 200)
	if len(again.WorkflowRuns) != 1 || again.WorkflowRuns[0].ID != got.WorkflowRuns[0].ID {
		t.Errorf("redelivered push = %+v, want run %d again", again, got.WorkflowRuns[0].ID)
	}
	// Another branch does not match branches: [main].
	if out := push("refs/heads/dev", git.ZeroSHA, ts.sha, 201); len(out.WorkflowRuns) != 0 {
		t.Errorf("push to dev made %d runs, want 0", len(out.WorkflowRuns))
	}
	// A workflow that does not parse makes a failed run with the error in its log.
	bad := commitFiles(t, ts.git, map[string]string{".shithub/workflows/bad.yml": "name: Bad\non: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    strategy: {}\n    stratgy: {}\n    steps: [{run: echo, shel: sh}]\n"})
	out := push("refs/heads/main", ts.sha, bad, 201)
	var badRun *runJSON
	for i, r := range out.WorkflowRuns {
		if r.WorkflowFile == ".shithub/workflows/bad.yml" {
			badRun = &out.WorkflowRuns[i]
		}
	}
	if badRun == nil || badRun.Status != "completed" || badRun.Conclusion == nil || *badRun.Conclusion != "failure" {
		t.Fatalf("push with a bad workflow = %+v, want a completed failed run of bad.yml", out)
	}
	var jobs struct{ Jobs []jobJSON }
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/jobs", badRun.ID)}, 200, &jobs)
	res := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", jobs.Jobs[0].ID), "")
	if !strings.Contains(string(res.body), "bad.yml:7:5: unknown key \"stratgy\" in job \"x\"\nbad.yml:8:25: unknown key \"shel\" in step 1 of job \"x\"\n") {
		t.Errorf("bad workflow's log = %q, want every problem with file, line and column", res.body)
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

func countRuns(t *testing.T, st *store.Store, repoID int64) int {
	t.Helper()
	_, n, err := st.ListRuns(context.Background(), repoID, store.RunFilter{}, 1, 1)
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
	var details struct {
		WorkflowRunID int64  `json:"workflow_run_id"`
		RunURL        string `json:"run_url"`
		HTMLURL       string `json:"html_url"`
	}
	res := ts.want(request{method: "POST", path: path("ci.yml"), auth: bearer(ts.tokens["bob"]), body: `{"ref":"main","inputs":{"level":"high"},"return_run_details":true}`}, 200, &details)
	if got, want := jsonKeys(t, res.body), []string{"html_url", "run_url", "workflow_run_id"}; !slices.Equal(got, want) {
		t.Errorf("dispatch details keys = %v, want %v", got, want)
	}
	r := ts.run(details.WorkflowRunID)
	if r.Event != "workflow_dispatch" || r.HeadRef != "refs/heads/main" || r.RunIndex != 3 || r.Inputs["level"] != "high" || r.Title != "CI" {
		t.Errorf("dispatched run = %+v", r)
	}
	if want := fmt.Sprintf("https://ci.example/api/v1/repos/alice/pub/actions/runs/%d", r.ID); details.RunURL != want {
		t.Errorf("run_url = %q, want %q", details.RunURL, want)
	}
	if want := "https://ci.example/alice/pub/actions/runs/3"; details.HTMLURL != want {
		t.Errorf("html_url = %q, want %q", details.HTMLURL, want)
	}
	// By the workflow's numeric id, as GitHub allows.
	ts.want(request{method: "POST", path: path(fmt.Sprint(r.WorkflowID)), auth: bearer(ts.tokens["bob"]), body: `{"ref":"main"}`}, 204, nil)
}

// TestPushHugeWorkflows: a push of workflows over the limits makes failed
// runs whose logs name the file and the limit, and stores no jobs or steps
// beyond that one failure, nor more than 512 KiB of the file.
func TestPushHugeWorkflows(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	bomb := "on: push\njobs:\n  j0: &j\n    runs-on: x\n    steps:\n      - &s {run: x}\n" + strings.Repeat("      - *s\n", 999)
	for i := 1; i < 1000; i++ {
		bomb += fmt.Sprintf("  j%d: *j\n", i)
	}
	sha := commitFiles(t, ts.git, map[string]string{
		".shithub/workflows/bomb.yml": bomb,
		".shithub/workflows/huge.yml": "on: push\n#" + strings.Repeat("x", workflow.MaxBytes) + "\n",
	})
	var out runsJSON
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["bob"]),
		body: fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, ts.sha, sha)}, 201, &out)
	want := map[string]string{
		".shithub/workflows/bomb.yml": "bomb.yml:1:1: YAML aliases expand this workflow from",
		".shithub/workflows/huge.yml": "huge.yml: the file is 524299 bytes; a workflow file may have at most 524288 (512 KiB)",
	}
	for _, r := range out.WorkflowRuns {
		msg, ok := want[r.WorkflowFile]
		if !ok {
			continue
		}
		delete(want, r.WorkflowFile)
		if r.Status != protocol.StatusCompleted || r.Conclusion == nil || *r.Conclusion != protocol.ConclusionFailure {
			t.Errorf("%s: run %s/%v, want completed/failure", r.WorkflowFile, r.Status, r.Conclusion)
		}
		var jobs struct{ Jobs []jobJSON }
		ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/jobs", r.ID)}, 200, &jobs)
		if len(jobs.Jobs) != 1 || len(jobs.Jobs[0].Steps) != 1 {
			t.Fatalf("%s: %d jobs stored, want only the parse failure", r.WorkflowFile, len(jobs.Jobs))
		}
		res := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", jobs.Jobs[0].ID), "")
		if !strings.Contains(string(res.body), msg) {
			t.Errorf("%s: log = %q, want %q", r.WorkflowFile, res.body, msg)
		}
		content, err := ts.store.RunContent(context.Background(), r.ID)
		if err != nil || len(content) > workflow.MaxBytes+1 {
			t.Errorf("%s: stored %d bytes of the file (%v), want at most %d", r.WorkflowFile, len(content), err, workflow.MaxBytes+1)
		}
	}
	if len(want) != 0 {
		t.Errorf("no runs for %v", want)
	}
	var steps int
	ts.store.DBForTest().QueryRow("SELECT COUNT(*) FROM steps").Scan(&steps)
	if steps > 10 {
		t.Errorf("%d steps stored", steps)
	}
}
