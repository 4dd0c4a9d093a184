package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
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

// states renders a run's jobs as "key=status/conclusion" sorted, "+" marking
// a claimable one.
func (ts *testServer) states(runID int64) string {
	ts.t.Helper()
	var out []string
	for k, j := range ts.jobMap(runID) {
		var ready bool
		ts.store.DBForTest().QueryRow("SELECT ready FROM jobs WHERE id = ?", j.ID).Scan(&ready)
		s := k + "=" + store.Describe(j.Status, j.Conclusion)
		if ready && j.Status == protocol.StatusQueued {
			s += "+"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

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

func (ts *testServer) finishJob(id int64, conclusion string, outputs map[string]string) {
	ts.t.Helper()
	body, _ := json.Marshal(statusBody{Status: "completed", Conclusion: conclusion, Outputs: outputs})
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/status", id), auth: bearer(ts.rtoken), body: string(body)}, 200, nil)
}

func TestMatrixLegsAndNeeds(t *testing.T) {
	ts := newTestServer(t)
	run := ts.startRun(`on: push
jobs:
  test:
    runs-on: ${{ matrix.os }}
    strategy:
      fail-fast: false
      matrix:
        os: [ubuntu-latest]
        go: ['1.22', '1.23']
        include:
          - go: '1.23'
            experimental: true
    outputs:
      v: ${{ steps.x.outputs.v }}
    steps:
      - id: x
        run: echo ${{ matrix.go }}
  report:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ needs.test.outputs.v }}
`)
	if got, want := ts.states(run.ID), "report=queued test#1=queued+ test#2=queued+"; got != want {
		t.Fatalf("jobs = %s, want %s", got, want)
	}
	jobs := ts.jobMap(run.ID)
	if jobs["test#1"].Name != "test (ubuntu-latest, 1.22)" || jobs["test#2"].Name != "test (ubuntu-latest, 1.23)" {
		t.Errorf("leg names = %q, %q", jobs["test#1"].Name, jobs["test#2"].Name)
	}
	claimed := ts.claimAll()
	if len(claimed) != 2 {
		t.Fatalf("claimed %d jobs, want the 2 legs", len(claimed))
	}
	c := claimed[1]
	m := c.Contexts["matrix"].(map[string]any)
	st := c.Contexts["strategy"].(map[string]any)
	if m["go"] != "1.23" || m["experimental"] != true || st["job-index"] != float64(1) || st["job-total"] != float64(2) || st["fail-fast"] != false {
		t.Errorf("leg 2 contexts: matrix %v strategy %v", m, st)
	}
	if !slices.Equal(c.RunsOn, []string{"ubuntu-latest"}) || c.JobKey != "test" || c.Outputs["v"] != "${{ steps.x.outputs.v }}" {
		t.Errorf("leg 2 claim: runs_on %v job_key %q outputs %v", c.RunsOn, c.JobKey, c.Outputs)
	}
	if s := c.Steps[1]; s.StepKey != "x" || s.Run != "echo ${{ matrix.go }}" || len(c.Steps) != 2 {
		t.Errorf("leg 2 step: %+v", s)
	}
	ts.finishJob(claimed[0].JobID, "success", map[string]string{"v": "first"})
	if got, want := ts.states(run.ID), "report=queued test#1=completed/success test#2=running"; got != want {
		t.Fatalf("after leg 1: jobs = %s, want %s (report waits for every leg)", got, want)
	}
	ts.clock.Add(1e9)
	ts.finishJob(claimed[1].JobID, "success", map[string]string{"v": "second"})
	r := ts.heartbeat()
	if r == nil || r.JobKey != "report" {
		t.Fatalf("report not claimable after both legs")
	}
	needs := r.Contexts["needs"].(map[string]any)["test"].(map[string]any)
	if needs["result"] != "success" || needs["outputs"].(map[string]any)["v"] != "second" {
		t.Errorf("needs.test = %v, want success with the last leg's output", needs)
	}
}

func TestJobIfAndResults(t *testing.T) {
	ts := newTestServer(t)
	run := ts.startRun(`on: push
jobs:
  a:
    runs-on: ubuntu-latest
    steps: [{run: x}]
  soft:
    runs-on: ubuntu-latest
    continue-on-error: true
    steps: [{run: x}]
  after-a:
    needs: a
    runs-on: ubuntu-latest
    steps: [{run: x}]
  on-failure:
    needs: a
    if: failure()
    runs-on: ubuntu-latest
    steps: [{run: x}]
  always:
    needs: [a, after-a]
    if: ${{ always() && needs.a.result == 'failure' && needs.after-a.result == 'skipped' }}
    runs-on: ubuntu-latest
    steps: [{run: x}]
  after-soft:
    needs: soft
    runs-on: ubuntu-latest
    steps: [{run: x}]
  never:
    if: github.ref == 'refs/heads/other'
    runs-on: ubuntu-latest
    steps: [{run: x}]
`)
	if got, want := ts.states(run.ID), "a=queued+ after-a=queued after-soft=queued always=queued never=completed/skipped on-failure=queued soft=queued+"; got != want {
		t.Fatalf("jobs = %s, want %s", got, want)
	}
	byKey := map[string]int64{}
	for _, c := range ts.claimAll() {
		byKey[c.JobKey] = c.JobID
	}
	ts.finishJob(byKey["a"], "failure", nil)
	ts.finishJob(byKey["soft"], "failure", nil)
	if got, want := ts.states(run.ID), "a=completed/failure after-a=completed/skipped after-soft=queued+ always=queued+ never=completed/skipped on-failure=queued+ soft=completed/failure"; got != want {
		t.Fatalf("after failures: jobs = %s, want %s", got, want)
	}
	for _, c := range ts.claimAll() {
		ts.finishJob(c.JobID, "success", nil)
	}
	// soft's failure does not fail the run; a's does.
	if r := ts.run(run.ID); r.Status != "completed" || r.Conclusion != "failure" {
		t.Errorf("run = %s/%s, want completed/failure", r.Status, r.Conclusion)
	}
}

func TestJobContinueOnErrorRun(t *testing.T) {
	ts := newTestServer(t)
	run := ts.startRun("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    continue-on-error: ${{ github.event_name == 'push' }}\n    steps: [{run: x}]\n")
	c := ts.heartbeat()
	ts.finishJob(c.JobID, "failure", nil)
	if r := ts.run(run.ID); r.Conclusion != "success" {
		t.Errorf("run conclusion = %q, want success: the failing job has continue-on-error", r.Conclusion)
	}
}

func TestFailFastAndMaxParallel(t *testing.T) {
	ts := newTestServer(t)
	run := ts.startRun(`on: push
jobs:
  t:
    runs-on: ubuntu-latest
    strategy:
      max-parallel: 2
      matrix:
        n: [1, 2, 3, 4]
    steps: [{run: x}]
`)
	if got, want := ts.states(run.ID), "t#1=queued+ t#2=queued+ t#3=queued t#4=queued"; got != want {
		t.Fatalf("jobs = %s, want %s (max-parallel 2)", got, want)
	}
	c1, c2 := ts.heartbeat(), ts.heartbeat()
	if ts.heartbeat() != nil {
		t.Fatal("a third leg was claimable with max-parallel 2")
	}
	ts.finishJob(c1.JobID, "success", nil)
	if got, want := ts.states(run.ID), "t#1=completed/success t#2=running t#3=queued+ t#4=queued"; got != want {
		t.Fatalf("after leg 1: jobs = %s, want %s", got, want)
	}
	// Leg 2 fails: fail-fast (the default) cancels the others.
	c3 := ts.heartbeat()
	ts.finishJob(c2.JobID, "failure", nil)
	if got, want := ts.states(run.ID), "t#1=completed/success t#2=completed/failure t#3=running t#4=completed/cancelled"; got != want {
		t.Fatalf("after leg 2 failed: jobs = %s, want %s", got, want)
	}
	if !ts.job(c3.JobID).CancelRequested {
		t.Error("running leg 3 was not asked to cancel")
	}
}

func TestDynamicMatrixFromNeeds(t *testing.T) {
	ts := newTestServer(t)
	run := ts.startRun(`on: push
jobs:
  plan:
    runs-on: ubuntu-latest
    outputs:
      list: ${{ steps.p.outputs.list }}
    steps: [{id: p, run: x}]
  build:
    needs: plan
    runs-on: ubuntu-latest
    strategy:
      matrix:
        target: ${{ fromJSON(needs.plan.outputs.list) }}
    steps: [{run: x}]
  bad:
    needs: plan
    runs-on: ubuntu-latest
    strategy:
      matrix: ${{ fromJSON(needs.plan.outputs.nothing) }}
    steps: [{run: x}]
`)
	c := ts.heartbeat()
	ts.finishJob(c.JobID, "success", map[string]string{"list": `["x", "y", "z"]`})
	if got, want := ts.states(run.ID), "bad=completed/failure build#1=queued+ build#2=queued+ build#3=queued+ plan=completed/success"; got != want {
		t.Fatalf("jobs = %s, want %s", got, want)
	}
	if n := ts.jobMap(run.ID)["build#3"].Name; n != "build (z)" {
		t.Errorf("leg 3 name = %q", n)
	}
	log := ts.follow(fmt.Sprintf("/api/v1/repos/alice/pub/actions/jobs/%d/logs", ts.jobMap(run.ID)["bad"].ID), "")
	if !strings.Contains(string(log.body), "wf.yml:") || !strings.Contains(string(log.body), "jobs.bad.strategy") {
		t.Errorf("bad's log = %q, want the file, line and key", log.body)
	}
}

func TestConcurrencyGroups(t *testing.T) {
	ts := newTestServer(t)
	const src = `on: push
concurrency: ci-${{ github.ref }}
jobs:
  a:
    runs-on: ubuntu-latest
    steps: [{run: x}]
`
	r1 := ts.startRun(src)
	c := ts.heartbeat()
	r2 := ts.startRun(src)
	r3 := ts.startRun(src)
	// r2 was pending and is replaced by r3.
	if got := ts.run(r2.ID); got.Status != "completed" || got.Conclusion != "cancelled" {
		t.Errorf("run 2 = %s/%s, want completed/cancelled (replaced)", got.Status, got.Conclusion)
	}
	if got, want := ts.states(r3.ID), "a=queued"; got != want {
		t.Errorf("run 3 jobs = %s, want %s (pending)", got, want)
	}
	if ts.heartbeat() != nil {
		t.Fatal("a pending run's job was claimable")
	}
	ts.finishJob(c.JobID, "success", nil)
	if got := ts.run(r1.ID); got.Conclusion != "success" {
		t.Errorf("run 1 = %s", got.Conclusion)
	}
	if got, want := ts.states(r3.ID), "a=queued+"; got != want {
		t.Errorf("run 3 jobs after run 1 = %s, want %s", got, want)
	}
	// cancel-in-progress: a newer run cancels the running one at once.
	c3 := ts.heartbeat()
	r4 := ts.startRun(strings.Replace(src, "concurrency: ci-${{ github.ref }}", "concurrency:\n  group: ci-${{ github.ref }}\n  cancel-in-progress: true", 1))
	if !ts.job(c3.JobID).CancelRequested {
		t.Error("running job of run 3 was not asked to cancel")
	}
	ts.finishJob(c3.JobID, "cancelled", nil)
	if got, want := ts.states(r4.ID), "a=queued+"; got != want {
		t.Errorf("run 4 jobs = %s, want %s", got, want)
	}
}

func TestJobConcurrency(t *testing.T) {
	ts := newTestServer(t)
	const src = "on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    concurrency: deploy\n    environment:\n      name: prod-${{ github.ref_name }}\n      url: https://x.example\n    steps: [{run: x}]\n"
	r1 := ts.startRun(src)
	r2 := ts.startRun(src)
	if got, want := ts.states(r1.ID)+" "+ts.states(r2.ID), "deploy=queued+ deploy=queued"; got != want {
		t.Fatalf("jobs = %s, want %s", got, want)
	}
	if e := ts.jobMap(r1.ID)["deploy"].Environment; e == nil || e.Name != "prod-main" || e.URL != "https://x.example" {
		t.Errorf("environment = %+v", e)
	}
	c := ts.heartbeat()
	ts.finishJob(c.JobID, "success", nil)
	if got, want := ts.states(r2.ID), "deploy=queued+"; got != want {
		t.Errorf("run 2 after run 1 = %s, want %s", got, want)
	}
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
