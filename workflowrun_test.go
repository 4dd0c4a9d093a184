package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"shithub-actions/internal/git"
	"shithub-actions/internal/store"
)

// TestWorkflowRunPayloadShape: github.event.workflow_run of a workflow_run
// run has every GitHub field of the REST dialect's run (runJSON), with the
// same values as GET .../actions/runs/{id} gives for the triggering run,
// and the triggering run's repository as the API has it. The store builds
// the payload without the root's types; this keeps the two in step.
func TestWorkflowRunPayloadShape(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	after := commitFiles(t, ts.git, map[string]string{".shithub/workflows/after.yml": "name: After\non:\n  workflow_run:\n    workflows: [CI]\n    types: [requested]\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n"})
	var pushed runsJSON
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["bob"]),
		body: fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, ts.sha, after)}, 201, &pushed)
	if len(pushed.WorkflowRuns) != 1 || pushed.WorkflowRuns[0].Name != "CI" {
		t.Fatalf("push ran %+v, want CI alone", pushed.WorkflowRuns)
	}
	if n, err := ts.store.FireWorkflowRuns(ctx); n != 1 || err != nil {
		t.Fatalf("FireWorkflowRuns = %d, %v; want 1", n, err)
	}
	runs, _, err := ts.store.ListRuns(ctx, ts.pub.ID, store.RunFilter{Event: "workflow_run"}, 1, 10)
	if err != nil || len(runs) != 1 {
		t.Fatalf("workflow_run runs = %v, %v", runs, err)
	}
	got, _ := runs[0].EventPayload["workflow_run"].(map[string]any)
	res := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d", pushed.WorkflowRuns[0].ID)}, 200, nil)
	var api map[string]any
	if err := json.Unmarshal(res.body, &api); err != nil {
		t.Fatal(err)
	}
	own := []string{"run_index", "parent_run_id", "repo_id", "workflow_file", "workflow_name", "head_ref", "started_at", "completed_at"}
	moving := []string{"status", "conclusion", "updated_at"} // the payload has them as of the activity
	for key, want := range api {
		if slices.Contains(own, key) {
			continue
		}
		g, ok := got[key]
		if !ok {
			t.Errorf("workflow_run lacks %q", key)
			continue
		}
		if slices.Contains(moving, key) {
			continue
		}
		if a, b := jsonOf(t, g), jsonOf(t, want); a != b {
			t.Errorf("workflow_run.%s = %s, API says %s", key, a, b)
		}
	}
	if got["status"] != "queued" || got["conclusion"] != nil {
		t.Errorf("requested: status %v, conclusion %v", got["status"], got["conclusion"])
	}
	var repo map[string]any
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/pub"}, 200, &repo)
	if a, b := jsonOf(t, runs[0].EventPayload["repository"]), jsonOf(t, repo); a != b {
		t.Errorf("repository = %s, API says %s", a, b)
	}
	if runs[0].HeadSHA != after || runs[0].WorkflowFile != git.WorkflowDir+"after.yml" {
		t.Errorf("run of %s at %s, want after.yml at %s", runs[0].WorkflowFile, runs[0].HeadSHA, after)
	}
}

// jsonOf is v as canonical JSON (maps sorted by key).
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var x any
	if err := json.Unmarshal(b, &x); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(x)
	return string(b)
}

// TestFireWorkflowRunsLoop: serve's loop starts the workflow_run run as
// soon as the triggering run's activity commits, with no poll to wait for.
func TestFireWorkflowRunsLoop(t *testing.T) {
	ts := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ts.srv.fireWorkflowRuns(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	after := commitFiles(t, ts.git, map[string]string{".shithub/workflows/after.yml": "name: After\non:\n  workflow_run:\n    workflows: [CI]\n    types: [requested]\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n"})
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/pub/actions/events/push", auth: bearer(ts.tokens["bob"]),
		body: fmt.Sprintf(`{"ref":"refs/heads/main","before":%q,"after":%q}`, ts.sha, after)}, 201, nil)
	// The loop wakes on the commit; the deadline only bounds a broken loop.
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, _, err := ts.store.ListRuns(context.Background(), ts.pub.ID, store.RunFilter{Event: "workflow_run"}, 1, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) == 1 && runs[0].WorkflowName == "After" {
			return
		}
		if len(runs) > 1 || time.Now().After(deadline) {
			t.Fatalf("workflow_run runs = %d, want After once", len(runs))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
