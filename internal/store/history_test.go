package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

const flakyWorkflow = `name: Flaky
on: push
jobs:
  unit:
    name: Unit
    runs-on: ubuntu-latest
    steps:
      - run: make test
  lint:
    name: Lint
    runs-on: ubuntu-latest
    steps:
      - run: make lint
`

// flakyRun makes a run of flakyWorkflow on repo at sha, as event with
// payload (a push when event is "").
func (ts *testStore) flakyRun(repo *Repo, sha, event string, payload map[string]any) *Run {
	ts.t.Helper()
	wf, err := workflow.Parse("flaky.yml", []byte(flakyWorkflow))
	if err != nil {
		ts.t.Fatal(err)
	}
	if event == "" {
		event = "push"
	}
	runs, _, err := ts.CreateRuns(context.Background(), nil, []RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/flaky.yml", Content: []byte(flakyWorkflow), Workflow: wf,
		HeadSHA: sha, HeadRef: "refs/heads/main", Event: event, Payload: payload, ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0]
}

// finishAll has r1 run every claimable job of run with the conclusion
// ends names for its key (success when missing), and returns the run.
func (ts *testStore) finishAll(run *Run, ends map[string]string) *Run {
	ts.t.Helper()
	for {
		j := ts.heartbeat()
		if j == nil {
			break
		}
		if j.RunID != run.ID {
			ts.t.Fatalf("claimed a job of run %d, want %d", j.RunID, run.ID)
		}
		c := ends[ts.job(j.JobID).JobKey]
		if c == "" {
			c = protocol.ConclusionSuccess
		}
		ts.finishJob(j.JobID, c, nil)
	}
	r := ts.run(run.ID)
	if r.Status != protocol.StatusCompleted {
		ts.t.Fatalf("run %d is %s", r.ID, r.Status)
	}
	return r
}

// flakyOf renders a workflow's flaky jobs as "Name=N" joined by spaces.
func (ts *testStore) flakyOf(repo *Repo, wfID int64) string {
	ts.t.Helper()
	jobs, err := ts.FlakyJobs(context.Background(), repo.ID, wfID, 100)
	if err != nil {
		ts.t.Fatal(err)
	}
	var out []string
	for _, j := range jobs {
		out = append(out, fmt.Sprintf("%s=%d", j.Name, j.Events))
	}
	return strings.Join(out, " ")
}

var (
	fail    = map[string]string{"unit": protocol.ConclusionFailure}
	timeout = map[string]string{"unit": protocol.ConclusionTimedOut}
	cancel  = map[string]string{"unit": protocol.ConclusionCancelled}
	pass    = map[string]string{}
)

func TestFlakyJobsCounted(t *testing.T) {
	t.Parallel()
	fork := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "mallory/pub"}}}}
	same := map[string]any{"pull_request": map[string]any{"head": map[string]any{"repo": map[string]any{"full_name": "alice/pub"}}}}
	for _, tc := range []struct {
		name    string
		event   string
		payload map[string]any
		// attempts: the first run's jobs' ends, then each re-run's (of the
		// newest attempt), all at one commit.
		attempts []map[string]string
		failed   bool // re-run the failed jobs only, not all
		// other: a run at another commit after the attempts.
		other map[string]string
		want  string
	}{
		{name: "a fail then a pass on a re-run counts once", attempts: []map[string]string{fail, pass}, want: "Unit=1"},
		{name: "re-running the failed jobs only", attempts: []map[string]string{fail, pass}, failed: true, want: "Unit=1"},
		{name: "timed out then passed", attempts: []map[string]string{timeout, pass}, want: "Unit=1"},
		{name: "failed twice then passed: once", attempts: []map[string]string{fail, fail, pass}, want: "Unit=1"},
		{name: "failed, passed, failed, passed: twice", attempts: []map[string]string{fail, pass, fail, pass}, want: "Unit=2"},
		{name: "a pass then a pass is not flaky", attempts: []map[string]string{pass, pass}, want: ""},
		{name: "a pass then a fail is not flaky", attempts: []map[string]string{pass, fail}, want: ""},
		{name: "cancelled then passed is not flaky", attempts: []map[string]string{cancel, pass}, want: ""},
		{name: "another commit passing is not a re-run", attempts: []map[string]string{fail}, other: pass, want: ""},
		{name: "a fork's pull request never counts", event: "pull_request", payload: fork, attempts: []map[string]string{fail, pass}, want: ""},
		{name: "a pull request from the repository itself counts", event: "pull_request", payload: same, attempts: []map[string]string{fail, pass}, want: "Unit=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestStore(t)
			ctx := context.Background()
			run := ts.finishAll(ts.flakyRun(ts.pub, ts.sha, tc.event, tc.payload), tc.attempts[0])
			for _, ends := range tc.attempts[1:] {
				var err error
				if tc.failed {
					run, err = ts.RerunSome(ctx, run, ts.users["bob"], FailedJobs)
				} else {
					run, err = ts.Rerun(ctx, run, ts.users["bob"])
				}
				if err != nil {
					t.Fatal(err)
				}
				run = ts.finishAll(run, ends)
			}
			if tc.other != nil {
				ts.finishAll(ts.flakyRun(ts.pub, strings.Repeat("b", 40), "", nil), tc.other)
			}
			if got := ts.flakyOf(ts.pub, run.WorkflowID); got != tc.want {
				t.Errorf("flaky jobs = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestFlakyJobsRepositories: one repository's flaky counts never show in
// another's, even for a workflow of the same file, or asked by its id.
func TestFlakyJobsRepositories(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t)
	ctx := context.Background()
	priv := ts.finishAll(ts.flakyRun(ts.priv, ts.sha, "", nil), fail)
	priv, err := ts.Rerun(ctx, priv, ts.users["bob"])
	if err != nil {
		t.Fatal(err)
	}
	priv = ts.finishAll(priv, pass)
	pub := ts.finishAll(ts.flakyRun(ts.pub, ts.sha, "", nil), pass)
	if got := ts.flakyOf(ts.priv, priv.WorkflowID); got != "Unit=1" {
		t.Fatalf("priv's flaky jobs = %q", got)
	}
	if pub.WorkflowID == priv.WorkflowID {
		t.Fatal("two repositories share a workflow row")
	}
	if got := ts.flakyOf(ts.pub, pub.WorkflowID); got != "" {
		t.Errorf("pub's flaky jobs = %q, want none", got)
	}
	if got := ts.flakyOf(ts.pub, priv.WorkflowID); got != "" {
		t.Errorf("pub asking for priv's workflow id = %q, want none", got)
	}
}

// TestFlakyJobsWindowAndRetention: the tab counts the last 30 days, and
// retention removes the days before them.
func TestFlakyJobsWindowAndRetention(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t)
	ctx := context.Background()
	flaky := func() *Run {
		r := ts.finishAll(ts.flakyRun(ts.pub, ts.sha, "", nil), fail)
		r, err := ts.Rerun(ctx, r, ts.users["bob"])
		if err != nil {
			t.Fatal(err)
		}
		return ts.finishAll(r, pass)
	}
	run := flaky()
	ts.clock.Add(10 * 24 * time.Hour)
	flaky()
	rows := func() int {
		var n int
		ts.db.QueryRow("SELECT COUNT(*) FROM flaky_jobs").Scan(&n)
		return n
	}
	if got := ts.flakyOf(ts.pub, run.WorkflowID); got != "Unit=2" || rows() != 2 {
		t.Fatalf("after two days with one each: %q, %d rows", got, rows())
	}
	ts.clock.Add(25 * 24 * time.Hour) // the first is 35 days old, the second 25
	if got := ts.flakyOf(ts.pub, run.WorkflowID); got != "Unit=1" {
		t.Errorf("35 and 25 days on: %q, want Unit=1", got)
	}
	if _, err := ts.Prune(ctx, Retention{}, PruneOpts{}); err != nil {
		t.Fatal(err)
	}
	if rows() != 1 {
		t.Errorf("after retention: %d rows, want 1 (the day out of the window goes)", rows())
	}
	if _, err := ts.Prune(ctx, Retention{Runs: 7 * 24 * time.Hour}, PruneOpts{}); err != nil {
		t.Fatal(err)
	}
	if got := ts.flakyOf(ts.pub, run.WorkflowID); got != "" || rows() != 0 {
		t.Errorf("after keeping a week of runs: %q, %d rows; want none", got, rows())
	}
}

func TestWorkflowHistory(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t)
	ctx := context.Background()
	var idx []int64
	for i := range 7 {
		ts.clock.Add(time.Minute)
		r := ts.finishAll(ts.flakyRun(ts.pub, ts.sha, "", nil), map[string]string{"unit": []string{"success", "failure"}[i%2]})
		idx = append(idx, r.RunIndex)
		ts.finishedRun(ts.pub) // another workflow's run between each
	}
	wfID := ts.run(1).WorkflowID
	got, err := ts.WorkflowHistory(ctx, ts.pub.ID, wfID, 5)
	if err != nil {
		t.Fatal(err)
	}
	var gotIdx []int64
	for _, p := range got {
		gotIdx = append(gotIdx, p.Index)
		if p.StartedAt.IsZero() || p.EndedAt.IsZero() || p.Status != protocol.StatusCompleted {
			t.Errorf("run %d: %+v", p.Index, p)
		}
	}
	if !slices.Equal(gotIdx, idx[2:]) {
		t.Errorf("history = %v, want the newest 5 of %v, oldest first", gotIdx, idx)
	}
	if n := len(got); got[n-1].Conclusion != protocol.ConclusionSuccess || got[n-2].Conclusion != protocol.ConclusionFailure {
		t.Errorf("the newest two conclusions = %q, %q; want success after failure", got[n-2].Conclusion, got[n-1].Conclusion)
	}
	if other, err := ts.WorkflowHistory(ctx, ts.priv.ID, wfID, 5); err != nil || len(other) != 0 {
		t.Errorf("another repository's view of the workflow: %v, %v", other, err)
	}
}

// TestHistoryPlans: the chart and the flaky counts are read through
// indexes, and noting a flaky job looks its earlier attempt up by key.
func TestHistoryPlans(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t)
	for _, q := range []string{sqlWorkflowHistory, sqlFlakyJobs,
		`SELECT r.workflow_id FROM runs r JOIN jobs p ON p.run_id = r.parent_run_id AND p.job_key = ?
			JOIN repos rp ON rp.id = r.repo_id JOIN users u ON u.id = rp.owner_id WHERE r.id = ?`,
		"DELETE FROM flaky_jobs WHERE day < ?"} {
		plan := ts.queryPlan(q, 1, 2, 3)
		if strings.Contains(plan, "SCAN") || strings.Contains(plan, "TEMP B-TREE FOR ORDER BY") && strings.Contains(q, "runs") {
			t.Errorf("%s\nplan: %s", q, plan)
		}
	}
}
