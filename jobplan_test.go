package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// startRun makes a run of the workflow text src on alice/pub, as a push.
func (ts *testServer) startRun(src string) *store.Run {
	ts.t.Helper()
	wf, errs := workflow.Check("wf.yml", []byte(src))
	if errs != nil {
		ts.t.Fatalf("checkWorkflow: %v", errs)
	}
	runs, _, err := ts.store.CreateRuns(context.Background(), nil, []store.RunSpec{{
		RepoID: ts.pub.ID, File: ".shithub/workflows/wf.yml", Content: []byte(src), Workflow: wf,
		HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0]
}

// jobMap returns a run's jobs by job_key.
func (ts *testServer) jobMap(runID int64) map[string]*store.Job {
	ts.t.Helper()
	jobs, err := ts.store.RunJobs(context.Background(), runID)
	if err != nil {
		ts.t.Fatal(err)
	}
	out := map[string]*store.Job{}
	for _, j := range jobs {
		out[j.JobKey] = j
	}
	return out
}

// claimAll claims every job the runner may run now.
func (ts *testServer) claimAll() []*protocol.Job {
	ts.t.Helper()
	var out []*protocol.Job
	for {
		j := ts.heartbeat()
		if j == nil {
			return out
		}
		out = append(out, j)
	}
}

// finishJob completes job id through the runner protocol.
func (ts *testServer) finishJob(id int64, conclusion string, outputs map[string]string) {
	ts.t.Helper()
	body, _ := json.Marshal(statusBody{Status: "completed", Conclusion: conclusion, Outputs: outputs})
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/status", id), auth: bearer(ts.rtoken), body: string(body)}, 200, nil)
}

func TestAnnotationsAndSummary(t *testing.T) {
	ts := newTestServer(t)
	run := ts.startRun("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n")
	c := ts.heartbeat()
	step := c.Steps[1].ID
	path := fmt.Sprintf("/api/v1/jobs/%d/annotations", c.JobID)
	for i := 0; i < 12; i++ {
		body := fmt.Sprintf(`{"step_id":%d,"level":"error","message":"m%d","file":"a.go","line":3,"col":4,"title":"T"}`, step, i)
		var out struct{ Kept bool }
		ts.want(request{method: "POST", path: path, auth: bearer(ts.rtoken), body: body}, 202, &out)
		if out.Kept != (i < 10) {
			t.Errorf("annotation %d kept = %v", i, out.Kept)
		}
	}
	ts.want(request{method: "POST", path: path, auth: bearer(ts.rtoken), body: fmt.Sprintf(`{"step_id":%d,"level":"fatal","message":"m"}`, step)}, 422, nil)
	ts.want(request{method: "POST", path: path, body: `{}`}, 401, nil)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/summary", c.JobID, step), auth: bearer(ts.rtoken), body: `{"markdown":"# Hi"}`}, 200, nil)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/summary", c.JobID, step), auth: bearer(ts.rtoken),
		body: `{"markdown":"` + strings.Repeat("x", store.MaxStepSummary+1) + `"}`}, 422, nil)
	ts.finishJob(c.JobID, "success", map[string]string{"o": "1"})
	var jobs struct{ Jobs []jobJSON }
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/jobs", run.ID)}, 200, &jobs)
	j := jobs.Jobs[0]
	if len(j.Annotations) != 11 || j.Annotations[0].Message != "m0" || j.Annotations[0].Line != 3 || j.Annotations[10].Title != "Annotations dropped" {
		t.Errorf("annotations = %+v, want 10 and a drop notice", j.Annotations)
	}
	if j.Steps[1].Summary != "# Hi" || j.Outputs["o"] != "1" {
		t.Errorf("summary %q outputs %v", j.Steps[1].Summary, j.Outputs)
	}
}

// TestEnvironmentURLFromSteps: an environment url reading steps reaches the
// runner unevaluated in the claim and is stored from the job's status; one
// that does not is evaluated by the server and not in the claim.
func TestEnvironmentURLFromSteps(t *testing.T) {
	ts := newTestServer(t)
	const src = "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    environment:\n      name: prod\n      url: ${{ steps.d.outputs.url }}\n    steps: [{id: d, run: x}]\n" +
		"  fixed:\n    runs-on: ubuntu-latest\n    environment:\n      name: docs\n      url: https://docs.example/${{ github.ref_name }}\n    steps: [{run: x}]\n"
	run := ts.startRun(src)
	claims := map[string]*protocol.Job{}
	for _, c := range ts.claimAll() {
		claims[c.JobKey] = c
	}
	if c := claims["deploy"]; c == nil || c.EnvironmentURL != "${{ steps.d.outputs.url }}" {
		t.Fatalf("deploy's claim environment_url = %+v", c)
	}
	if c := claims["fixed"]; c == nil || c.EnvironmentURL != "" {
		t.Fatalf("fixed's claim environment_url = %q, want none (evaluated by the server)", c.EnvironmentURL)
	}
	// A step status carries no url; a too long one is refused.
	step := fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", claims["deploy"].JobID, claims["deploy"].Steps[0].ID)
	ts.want(request{method: "POST", path: step, auth: bearer(ts.rtoken), body: `{"status":"running","environment_url":"https://x"}`}, 400, nil)
	status := fmt.Sprintf("/api/v1/jobs/%d/status", claims["deploy"].JobID)
	ts.want(request{method: "POST", path: status, auth: bearer(ts.rtoken),
		body: `{"status":"completed","conclusion":"success","environment_url":"https://` + strings.Repeat("x", store.MaxEnvironmentURL) + `"}`}, 422, nil)
	ts.want(request{method: "POST", path: status, auth: bearer(ts.rtoken),
		body: `{"status":"completed","conclusion":"success","environment_url":"https://prod.example/42"}`}, 200, nil)
	ts.finishJob(claims["fixed"].JobID, "success", nil)
	jobs := ts.jobMap(run.ID)
	if e := jobs["deploy"].Environment; e == nil || e.Name != "prod" || e.URL != "https://prod.example/42" {
		t.Errorf("deploy's environment = %+v", e)
	}
	if e := jobs["fixed"].Environment; e == nil || e.URL != "https://docs.example/main" {
		t.Errorf("fixed's environment = %+v", e)
	}
}
