package store

import (
	"context"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
	"slices"
	"strings"
	"testing"
)

// startRun makes a run of the workflow text src on alice/pub, as a push.
func (ts *testStore) startRun(src string) *Run {
	ts.t.Helper()
	wf, errs := workflow.Check("wf.yml", []byte(src))
	if errs != nil {
		ts.t.Fatalf("checkWorkflow: %v", errs)
	}
	runs, _, err := ts.CreateRuns(context.Background(), nil, []RunSpec{{
		RepoID: ts.pub.ID, File: ".shithub/workflows/wf.yml", Content: []byte(src), Workflow: wf,
		HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0]
}

// jobMap returns a run's jobs by job_key.
func (ts *testStore) jobMap(runID int64) map[string]*Job {
	ts.t.Helper()
	jobs, err := ts.RunJobs(context.Background(), runID)
	if err != nil {
		ts.t.Fatal(err)
	}
	out := map[string]*Job{}
	for _, j := range jobs {
		out[j.JobKey] = j
	}
	return out
}

// states renders a run's jobs as "key=status/conclusion" sorted, "+" marking
// a claimable one.
func (ts *testStore) states(runID int64) string {
	ts.t.Helper()
	var out []string
	for k, j := range ts.jobMap(runID) {
		var ready bool
		ts.db.QueryRow("SELECT ready FROM jobs WHERE id = ?", j.ID).Scan(&ready)
		s := k + "=" + Describe(j.Status, j.Conclusion)
		if ready && j.Status == protocol.StatusQueued {
			s += "+"
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func (ts *testStore) claimAll() []*protocol.Job {
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

func (ts *testStore) finishJob(id int64, conclusion string, outputs map[string]string) {
	ts.t.Helper()
	if err := ts.CompleteJobWith(context.Background(), ts.runner.ID, id, "completed", conclusion, outputs, ""); err != nil {
		ts.t.Fatalf("completing job %d: %v", id, err)
	}
}

func TestMatrixLegsAndNeeds(t *testing.T) {
	ts := newTestStore(t)
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
	ts := newTestStore(t)
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
	ts := newTestStore(t)
	run := ts.startRun("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    continue-on-error: ${{ github.event_name == 'push' }}\n    steps: [{run: x}]\n")
	c := ts.heartbeat()
	ts.finishJob(c.JobID, "failure", nil)
	if r := ts.run(run.ID); r.Conclusion != "success" {
		t.Errorf("run conclusion = %q, want success: the failing job has continue-on-error", r.Conclusion)
	}
}

func TestFailFastAndMaxParallel(t *testing.T) {
	ts := newTestStore(t)
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
	ts := newTestStore(t)
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
	log := ts.jobLog(ts.jobMap(run.ID)["bad"].ID)
	if !strings.Contains(log, "wf.yml:") || !strings.Contains(log, "jobs.bad.strategy") {
		t.Errorf("bad's log = %q, want the file, line and key", log)
	}
}

func TestConcurrencyGroups(t *testing.T) {
	ts := newTestStore(t)
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
	ts := newTestStore(t)
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
