package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/store"
)

// The queries the kept tables replaced, as they were: the reference the
// kept tables must agree with.
func oldWorkflows(t *testing.T, st *store.Store, repoID int64) []store.WebWorkflow {
	t.Helper()
	rows, err := st.DBForTest().Query(`SELECT workflow_file, workflow_name FROM runs
		WHERE id IN (SELECT MAX(id) FROM runs WHERE repo_id = ? GROUP BY workflow_file)
		ORDER BY workflow_name, workflow_file`, repoID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []store.WebWorkflow
	for rows.Next() {
		var w store.WebWorkflow
		rows.Scan(&w.File, &w.Name)
		out = append(out, w)
	}
	return out
}

func oldBranches(t *testing.T, st *store.Store, repoID int64) []string {
	t.Helper()
	var out []string
	rows, err := st.DBForTest().Query(`SELECT substr(head_ref, 12) FROM runs
		WHERE repo_id = ? AND substr(head_ref, 1, 11) = 'refs/heads/'
		GROUP BY head_ref ORDER BY MAX(id) DESC LIMIT 1000`, repoID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b string
		rows.Scan(&b)
		out = append(out, b)
	}
	return out
}

// checkKept compares every kept answer with the query it replaced.
func checkKept(t *testing.T, st *store.Store, repoID int64, files, branches []string) {
	t.Helper()
	ctx := context.Background()
	got, err := st.WebWorkflows(ctx, repoID)
	if err != nil {
		t.Fatal(err)
	}
	if want := oldWorkflows(t, st, repoID); !slices.Equal(got, want) {
		t.Fatalf("webWorkflows = %v, want %v", got, want)
	}
	gotB, err := st.WebBranches(ctx, repoID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if want := oldBranches(t, st, repoID); !slices.Equal(gotB, want) {
		t.Fatalf("webBranches = %v, want %v", gotB, want)
	}
	checkCounts(t, st) // every kept count (per workflow, branch, workflow and branch) against the runs
	for _, f := range append(files, "") {
		for _, b := range append(branches, "") {
			if f == "" {
				continue
			}
			var wantID int64
			q := "SELECT id FROM runs WHERE repo_id = ? AND workflow_file = ?"
			args := []any{repoID, f}
			if b != "" {
				q += " AND head_ref = ?"
				args = append(args, "refs/heads/"+b)
			}
			err = st.DBForTest().QueryRow(q+" ORDER BY created_at DESC, id DESC LIMIT 1", args...).Scan(&wantID)
			run, gotErr := st.LatestRunOf(ctx, repoID, f, b)
			switch {
			case errors.Is(err, sql.ErrNoRows):
				if !errors.Is(gotErr, apperr.ErrNotFound) {
					t.Fatalf("latestRunOf(%q, %q) = %v, %v; want not found", f, b, run, gotErr)
				}
			case gotErr != nil || run.ID != wantID:
				t.Fatalf("latestRunOf(%q, %q) = %v, %v; want run %d", f, b, run, gotErr, wantID)
			}
		}
	}
}

// insertTestRuns adds n completed runs of random workflows and branches,
// created at the store's clock.
func insertTestRuns(t *testing.T, st *store.Store, repo *store.Repo, actor *store.User, n int, rng *rand.Rand, files, branches []string) []int64 {
	t.Helper()
	var ids []int64
	err := st.WithTx(context.Background(), func(tx *sql.Tx) error {
		for range n {
			ref := "refs/heads/" + branches[rng.IntN(len(branches))]
			if rng.IntN(8) == 0 {
				ref = "refs/tags/v1"
			}
			id, err := st.InsertRun(tx, store.RunSpec{RepoID: repo.ID, File: files[rng.IntN(len(files))], Content: []byte("x"),
				ParseErr: errors.New("broken"), HeadSHA: strings.Repeat("a", 40), HeadRef: ref, Event: "push", ActorID: actor.ID})
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestKeptTables: the kept workflow, branch and newest-run tables agree
// with the scans they replaced as runs come and go.
func TestKeptTables(t *testing.T) {
	ts := newTestServer(t)
	st := ts.store
	rng := rand.New(rand.NewPCG(1, 2))
	files := []string{".shithub/workflows/a.yml", ".shithub/workflows/b.yml", ".shithub/workflows/c.yml"}
	branches := []string{"main", "dev", "feature/x", "fix"}
	for round := range 6 {
		insertTestRuns(t, st, ts.pub, ts.users["alice"], 40, rng, files, branches)
		checkKept(t, st, ts.pub.ID, files, branches)
		ts.clock.Add(24 * time.Hour)
		// Remove the older half, as retention would.
		p := &store.Pruner{S: st}
		if err := p.Runs(context.Background(), ts.clock.Now().Add(-time.Duration(rng.IntN(48))*time.Hour)); err != nil {
			t.Fatal(err)
		}
		checkKept(t, st, ts.pub.ID, files, branches)
		t.Logf("round %d: pruned %d runs", round, p.Rep.Runs)
	}
	// Everything gone: no choices left.
	if err := (&store.Pruner{S: st}).Runs(context.Background(), ts.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkKept(t, st, ts.pub.ID, files, branches)
	if w, _ := st.WebWorkflows(context.Background(), ts.pub.ID); len(w) != 0 {
		t.Fatalf("webWorkflows after pruning everything = %v, want none", w)
	}
}

// TestKeptWorkflowNames: the tab names a workflow as its newest run does
// (a file that stopped parsing by its file name there, while the workflow
// keeps its last parsed name for the API), a re-run counts, deleting the
// newest run moves the newest back, and a workflow whose runs are all gone
// leaves the tab and the badge but keeps its row, as GitHub keeps workflows.
func TestKeptWorkflowNames(t *testing.T) {
	ts := newTestServer(t)
	st := ts.store
	ctx := context.Background()
	const file = ".shithub/workflows/x.yml"
	files, branches := []string{file}, []string{"main", "dev"}
	step := func(what string, tabName, apiName string, count int64) {
		t.Helper()
		checkKept(t, st, ts.pub.ID, files, branches)
		tab, err := st.WebWorkflows(ctx, ts.pub.ID)
		var want []store.WebWorkflow
		if tabName != "" {
			want = []store.WebWorkflow{{File: file, Name: tabName}}
		}
		if err != nil || !slices.Equal(tab, want) {
			t.Fatalf("%s: webWorkflows = %v, %v; want %v", what, tab, err, want)
		}
		w, err := st.WorkflowByPath(ctx, ts.pub.ID, file)
		if err != nil || w.Name != apiName || w.RunCount != count {
			t.Fatalf("%s: workflow = %+v, %v; want named %q with %d runs", what, w, err, apiName, count)
		}
	}
	first, _ := ts.newRunOf(ts.pub, "name: Alpha\non: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: 'true'\n")
	step("a run", "Alpha", "Alpha", 1)
	if err := st.SyncWorkflows(ctx, ts.pub.ID, []store.WorkflowFile{{Path: file, Name: "Default", Parsed: true}}); err != nil {
		t.Fatal(err)
	}
	step("the default branch renames it", "Alpha", "Default", 1)
	var broken int64
	if err := st.WithTx(ctx, func(tx *sql.Tx) (err error) {
		broken, err = st.InsertRun(tx, store.RunSpec{RepoID: ts.pub.ID, File: file, Content: []byte("x"), ParseErr: errors.New("broken"),
			HeadSHA: ts.sha, HeadRef: "refs/heads/dev", Event: "push", ActorID: ts.users["alice"].ID})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	step("a run of a broken file", "x.yml", "Default", 2)
	again, err := st.Rerun(ctx, ts.run(broken), ts.users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	step("a re-run", "x.yml", "Default", 3)
	for _, id := range []int64{again.ID, broken} { // newest first: not retention's order
		if _, err := st.WriteDBForTest().Exec("DELETE FROM runs WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	step("the newest runs deleted", "Alpha", "Default", 1)
	ts.want(request{method: "GET", path: "/alice/pub/actions/workflows/x.yml/badge.svg"}, 200, nil)
	if _, err := st.WriteDBForTest().Exec("DELETE FROM runs WHERE id = ?", first.ID); err != nil {
		t.Fatal(err)
	}
	step("every run deleted", "", "Default", 0)
	ts.want(request{method: "GET", path: "/alice/pub/actions/workflows/x.yml/badge.svg"}, 404, nil)
	var last sql.NullInt64
	st.DBForTest().QueryRow("SELECT last_run_id FROM workflows WHERE repo_id = ? AND path = ?", ts.pub.ID, file).Scan(&last)
	if last.Valid {
		t.Fatalf("last_run_id with no runs = %d, want NULL", last.Int64)
	}
}

// TestMigrateFromVersion1 opens a file the version-1 schema made, with
// runs in it: it gains incremental auto-vacuum (one VACUUM) and the kept
// tables, filled from its history.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(schemaSQL + "; PRAGMA user_version = 1;"); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := old.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec("INSERT INTO users (id, name, created_at) VALUES (1, 'alice', 0)")
	exec("INSERT INTO repos (id, owner_id, name, git_dir, created_at) VALUES (1, 1, 'pub', '/x', 0), (2, 1, 'other', '/y', 0)")
	rng := rand.New(rand.NewPCG(3, 4))
	files := []string{".shithub/workflows/a.yml", ".shithub/workflows/b.yml"}
	branches := []string{"main", "dev", "x"}
	for i := range 300 {
		repo := 1 + i%2
		exec(`INSERT INTO runs (uuid, repo_id, run_index, workflow_file, workflow_name, workflow_content, head_sha, head_ref, event,
			actor_id, status, conclusion, created_at, updated_at) VALUES (?, ?, ?, ?, ?, '', 'sha', ?, 'push', 1, 'completed', 'success', ?, ?)`,
			fmt.Sprint(i), repo, i+1, files[rng.IntN(2)], fmt.Sprintf("Name %d", i%3), "refs/heads/"+branches[rng.IntN(3)], i, i)
	}
	var mode int
	old.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	if mode != 0 {
		t.Fatalf("the old file's auto_vacuum = %d, want 0 (none)", mode)
	}
	old.Close()

	st, err := openStore(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var version int
	st.DBForTest().QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	st.DBForTest().QueryRow("PRAGMA user_version").Scan(&version)
	if mode != 2 || version != len(store.Migrations)+1 {
		t.Fatalf("after opening: auto_vacuum = %d, user_version = %d; want 2 (incremental), %d", mode, version, len(store.Migrations)+1)
	}
	for _, repo := range []int64{1, 2} {
		checkKept(t, st, repo, files, branches)
	}
	checkCounts(t, st)
	rep, err := st.Check(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Problems { // these runs have no jobs: that is all check may say
		if !strings.Contains(p, "has no jobs") {
			t.Fatalf("check after migrating: %s", p)
		}
	}
	// A fresh file starts incremental, without a VACUUM.
	fresh, err := openStore(filepath.Join(t.TempDir(), "new.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	fresh.DBForTest().QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	if mode != 2 {
		t.Fatalf("a new file's auto_vacuum = %d, want 2", mode)
	}
}

// finishedRun makes a run of the test workflow whose two jobs ran on the
// test runner, each step logging a line, and completed.
func (ts *testServer) finishedRun(repo *store.Repo) *store.Run {
	ts.t.Helper()
	run, _ := ts.newRun(repo)
	for range 2 {
		cj := ts.heartbeat()
		if cj == nil {
			ts.t.Fatal("no job to claim")
		}
		for i, st := range cj.Steps {
			ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/logs", cj.JobID), auth: bearer(ts.rtoken),
				body: fmt.Sprintf(`{"step_id":%d,"seq":1,"data":"c3RlcCBvdXRwdXQK"}`, st.ID)}, 202, nil) // "step output\n"
			_ = i
		}
		ts.jobStatus(cj.JobID, "success", 200)
	}
	return ts.run(run.ID)
}

func TestPrune(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	st := ts.store
	old := ts.finishedRun(ts.pub)
	ts.clock.Add(100 * 24 * time.Hour)
	child, err := st.Rerun(ctx, old, ts.users["alice"])
	if err != nil {
		t.Fatal(err)
	}
	recent := ts.finishedRun(ts.pub) // claims the child's jobs first
	_ = recent
	recent = ts.finishedRun(ts.pub)
	jobs, _ := st.RunJobs(ctx, old.ID)
	logPath := fmt.Sprintf("/alice/pub/actions/runs/%d/jobs/%d/log", old.RunIndex, jobs[0].ID) // the raw log
	if res := ts.want(request{method: "GET", path: logPath}, 200, nil); !strings.Contains(string(res.body), "step output") {
		t.Fatalf("GET %s before pruning = %q, want the log", logPath, res.body)
	}

	// A dry run says what would go and removes nothing.
	keep := store.Retention{Logs: 90 * 24 * time.Hour}
	rep, err := st.Prune(ctx, keep, store.PruneOpts{Dry: true})
	if err != nil || rep.LogRuns != 1 || rep.LogSteps != 5 || rep.LogBytes != 5*12 {
		t.Fatalf("dry prune = %+v, %v; want the logs of 1 run, 5 steps, 60 bytes", rep, err)
	}
	if res := ts.want(request{method: "GET", path: logPath}, 200, nil); !strings.Contains(string(res.body), "step output") {
		t.Fatalf("GET %s after a dry run = %q, want the log still", logPath, res.body)
	}
	rep, err = st.Prune(ctx, keep, store.PruneOpts{})
	if err != nil || rep.LogRuns != 1 || rep.LogSteps != 5 {
		t.Fatalf("prune = %+v, %v; want the logs of 1 run, 5 steps", rep, err)
	}
	res := ts.want(request{method: "GET", path: logPath}, 200, nil)
	if body := string(res.body); strings.Contains(body, "step output") || !strings.Contains(body, "log removed after 90 days") {
		t.Fatalf("GET %s after pruning = %q, want the removal line instead of the log", logPath, body)
	}
	page := ts.do(request{method: "GET", path: fmt.Sprintf("/alice/pub/actions/runs/%d", old.RunIndex)})
	if page.code != 200 || !strings.Contains(string(page.body), "log removed after 90 days") {
		t.Fatalf("the pruned run's page: status %d, want 200 with the removal line", page.code)
	}
	if res := ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/jobs", recent.ID)}, 200, nil); res.code != 200 {
		t.Fatal("recent run's jobs")
	}
	if again, _ := st.Prune(ctx, keep, store.PruneOpts{}); !again.Empty() {
		t.Fatalf("a second prune = %+v, want nothing left to do", again)
	}

	// Runs: the old one goes; its re-run stays, with no parent.
	ts.clock.Add(300 * 24 * time.Hour)
	etag := ts.want(request{method: "GET", path: "/alice/pub/actions.atom"}, 200, nil).header.Get("ETag")
	rep, err = st.Prune(ctx, store.Retention{Runs: 365 * 24 * time.Hour}, store.PruneOpts{KeepPages: true})
	if err != nil || rep.Runs != 1 {
		t.Fatalf("prune runs = %+v, %v; want 1 run", rep, err)
	}
	if _, err := st.RunByID(ctx, old.ID); !errors.Is(err, apperr.ErrNotFound) {
		t.Fatalf("the pruned run: %v, want not found", err)
	}
	if c := ts.run(child.ID); c.ParentRunID != 0 {
		t.Fatalf("the re-run's parent = %d, want none", c.ParentRunID)
	}
	feed := ts.want(request{method: "GET", path: "/alice/pub/actions.atom"}, 200, nil)
	if feed.header.Get("ETag") == etag || strings.Contains(string(feed.body), old.UUID) {
		t.Fatal("the feed did not change when its run was pruned")
	}
	ts.want(request{method: "GET", path: "/alice/pub/actions/workflows/ci.yml/badge.svg"}, 200, nil)
	ts.want(request{method: "GET", path: fmt.Sprintf("/alice/pub/actions/runs/%d", child.RunIndex)}, 200, nil)
	var n int
	st.DBForTest().QueryRow("SELECT COUNT(*) FROM jobs WHERE run_id = ?", old.ID).Scan(&n)
	if n != 0 {
		t.Fatalf("the pruned run left %d jobs", n)
	}
	if rep, err := st.Check(ctx, false); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("check after pruning = %+v, %v", rep, err)
	}
	// The freed pages go back to the filesystem.
	if err := (&store.Pruner{S: st}).Release(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var free int
	st.DBForTest().QueryRow("PRAGMA freelist_count").Scan(&free)
	if free != 0 {
		t.Fatalf("freelist_count after releasing = %d, want 0", free)
	}
}

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"90d", 90 * 24 * time.Hour, true}, {"0", 0, true}, {"36h", 36 * time.Hour, true}, {"1d", 24 * time.Hour, true},
		{"", 0, false}, {"-1d", 0, false}, {"d", 0, false}, {"0d", 0, false}, {"-5h", 0, false}, {"ten days", 0, false},
	} {
		got, err := store.ParseAge(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseAge(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// TestPruneCLI runs prune on a file whose runs are a year old.
func TestPruneCLI(t *testing.T) {
	db := filepath.Join(t.TempDir(), "p.db")
	st, err := openStore(db, store.Options{Now: func() time.Time { return time.Now().Add(-400 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := st.CreateUser(context.Background(), "alice")
	repo, _ := st.CreateRepo(context.Background(), alice, "pub", "/x", false)
	insertTestRuns(t, st, repo, alice, 30, rand.New(rand.NewPCG(5, 6)), []string{".shithub/workflows/a.yml"}, []string{"main"})
	st.Close()
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"prune"}, 2, "give --logs-older-than"},
		{[]string{"prune", "--runs-older-than", "soon"}, 2, "bad age"},
		{[]string{"prune", "--dry-run", "--vacuum"}, 2, "do not go together"},
		{[]string{"prune", "--runs-older-than", "365d", "--dry-run"}, 0, "would remove 30 runs"},
		{[]string{"prune", "--logs-older-than", "90d", "--dry-run"}, 0, "would remove the logs of 30 runs"},
		{[]string{"prune", "--runs-older-than", "500d"}, 0, "removed 0 runs"},
		{[]string{"prune", "--runs-older-than", "365d", "--vacuum"}, 0, "removed 30 runs"},
		{[]string{"prune", "--runs-older-than", "365d"}, 0, "removed 0 runs"},
	} {
		code, stdout, stderr := cliRun(t, db, "", tc.args...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.out) {
			t.Errorf("%v: exit %d, %q %q; want %d with %q", tc.args, code, stdout, stderr, tc.code, tc.out)
		}
	}
}

// TestAnalyze: the statistics are made one index at a time, and with them
// the planner takes the selective index for a branch and workflow filter.
func TestAnalyze(t *testing.T) {
	ts := newTestServer(t)
	if code, out, errOut := cliRun(t, ts.store.Path(), "", "dev", "fill", "--repo", "alice/pub", "--runs", "3000", "--logs-for", "0"); code != 0 {
		t.Fatalf("dev fill: %s %s", out, errOut)
	}
	n, err := ts.store.Analyze(context.Background(), 0)
	if err != nil || n < 10 {
		t.Fatalf("analyze = %d, %v; want every index", n, err)
	}
	var stats int
	ts.store.DBForTest().QueryRow("SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = 'runs'").Scan(&stats)
	if stats == 0 {
		t.Fatal("no statistics for runs")
	}
	rows, err := ts.store.DBForTest().Query(`EXPLAIN QUERY PLAN SELECT 1 FROM runs r WHERE r.repo_id = ? AND r.head_ref = ?
		AND r.workflow_id = ? ORDER BY r.created_at DESC, r.id DESC LIMIT 10`, ts.pub.ID, "refs/heads/feature-3", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var a, b, c int
		var d string
		rows.Scan(&a, &b, &c, &d)
		plan = append(plan, d)
	}
	if !strings.Contains(strings.Join(plan, " | "), "runs_repo_ref") {
		t.Fatalf("plan for a branch and workflow filter = %v, want the branch index", plan)
	}
}

// TestMigrateFromVersion7 opens a file of schema version 7, whose kept
// run_workflows duplicated workflows, with a history in it (and deletes
// in any order): run_workflows folds into workflows, run_heads is keyed by
// workflow, and every kept answer agrees with the runs, before and after
// more runs come and go.
func TestMigrateFromVersion7(t *testing.T) {
	const v7 = 6 // migrations[:6] make schema version 7, the last before run_workflows folded
	path := filepath.Join(t.TempDir(), "v7.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(db *sql.DB, q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%.80s: %v", q, err)
		}
	}
	exec(old, schemaSQL)
	for _, m := range store.Migrations[:v7] {
		exec(old, m)
	}
	exec(old, fmt.Sprintf("PRAGMA user_version = %d", v7+1))
	exec(old, "INSERT INTO users (id, name, created_at) VALUES (1, 'alice', 0)")
	exec(old, "INSERT INTO repos (id, owner_id, name, git_dir, created_at) VALUES (1, 1, 'pub', '/x', 0), (2, 1, 'other', '/y', 0)")
	files := []string{".shithub/workflows/a.yml", ".shithub/workflows/b.yml", ".shithub/workflows/idle.yml"}
	for _, repo := range []int{1, 2} {
		for _, f := range files {
			exec(old, "INSERT INTO workflows (repo_id, path, name, created_at, updated_at) VALUES (?, ?, 'W', 0, 0)", repo, f)
		}
	}
	branches := []string{"main", "dev", "x"}
	rng := rand.New(rand.NewPCG(5, 6))
	insert := func(db *sql.DB, n, from int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			repo, f := 1+i%2, files[rng.IntN(2)] // idle.yml never runs
			exec(db, `INSERT INTO runs (uuid, repo_id, run_index, workflow_file, workflow_name, workflow_content, head_sha, head_ref, event,
				actor_id, status, conclusion, created_at, updated_at, workflow_id) VALUES (?, ?, ?, ?, ?, '', 'sha', ?, 'push', 1, 'completed',
				'success', ?, ?, (SELECT id FROM workflows WHERE repo_id = ? AND path = ?))`,
				fmt.Sprint(i), repo, i+1, f, fmt.Sprintf("Name %d", i%3), "refs/heads/"+branches[rng.IntN(3)], i, i, repo, f)
		}
	}
	// Deletes anywhere in the history, the newest included.
	remove := func(db *sql.DB, n int) {
		t.Helper()
		exec(db, "DELETE FROM runs WHERE id IN (SELECT id FROM runs ORDER BY id DESC LIMIT 2)")
		for range n {
			exec(db, "DELETE FROM runs WHERE id = (SELECT id FROM runs ORDER BY random() LIMIT 1)")
		}
	}
	insert(old, 300, 0)
	remove(old, 40)
	old.Close()

	st, err := openStore(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var version, gone int
	st.DBForTest().QueryRow("PRAGMA user_version").Scan(&version)
	if version != len(store.Migrations)+1 {
		t.Fatalf("user_version = %d, want %d", version, len(store.Migrations)+1)
	}
	st.DBForTest().QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name IN ('run_workflows', 'run_heads_old', 'runs_count_insert',
		'runs_count_delete')`).Scan(&gone)
	if gone != 0 {
		t.Fatalf("%d of run_workflows, run_heads_old and the runs_count triggers are left, want none", gone)
	}
	check := func(when string) {
		t.Helper()
		for _, repo := range []int64{1, 2} {
			checkKept(t, st, repo, files, branches)
			w, err := st.WorkflowByPath(context.Background(), repo, files[2])
			if err != nil || w.RunCount != 0 {
				t.Fatalf("%s: idle.yml of repo %d = %+v, %v; want a row with no runs", when, repo, w, err)
			}
		}
	}
	check("after migrating")
	insert(st.WriteDBForTest(), 100, 1000)
	remove(st.WriteDBForTest(), 40)
	check("after more runs and deletes")
}

// bigLogs gives a run's first two steps long logs in many chunks, as
// runners write them (24 of 64 KiB, and 300 of 1 KiB), and returns every
// step's log of the run.
func bigLogs(t *testing.T, st *store.Store, runID int64) map[int64][]byte {
	t.Helper()
	ctx := context.Background()
	jobs, err := st.RunJobs(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	logs := map[int64][]byte{}
	i := 0
	for _, j := range jobs {
		for _, step := range j.Steps {
			chunks, size := 0, 0
			switch i {
			case 0:
				chunks, size = 24, 64<<10
			case 1:
				chunks, size = 300, 1<<10
			}
			i++
			if chunks > 0 {
				err := st.WithTx(ctx, func(tx *sql.Tx) error {
					if _, err := tx.Exec("DELETE FROM log_chunks WHERE step_id = ?", step.ID); err != nil {
						return err
					}
					for k := 1; k <= chunks; k++ {
						data := bytes.Repeat([]byte(fmt.Sprintf("step %d, chunk %d\n", step.ID, k)), size)[:size]
						if _, err := tx.Exec("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, ?, ?)", step.ID, k, data); err != nil {
							return err
						}
					}
					_, err := tx.Exec("UPDATE steps SET log_size = ? WHERE id = ?", chunks*size, step.ID)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			logs[step.ID] = readLog(t, st, step.ID)
		}
	}
	return logs
}

func readLog(t *testing.T, st *store.Store, stepID int64) []byte {
	t.Helper()
	var out []byte
	if err := st.EachLogChunk(context.Background(), stepID, 0, func(c store.LogChunk) error {
		out = append(out, c.Data...)
		return nil
	}); err != nil {
		t.Fatalf("reading step %d's log: %v", stepID, err)
	}
	return out
}

// checkLogs checks what a reader sees of each log between two of
// retention's transactions: the log's beginning (maybe all of it, maybe
// none), with log_size its size, or the removal line; or, its run gone,
// nothing at all.
func checkLogs(t *testing.T, st *store.Store, logs map[int64][]byte, marker string) {
	t.Helper()
	for id, orig := range logs {
		var size int64
		err := st.DBForTest().QueryRow("SELECT log_size FROM steps WHERE id = ?", id).Scan(&size)
		if errors.Is(err, sql.ErrNoRows) {
			var n int
			st.DBForTest().QueryRow("SELECT COUNT(*) FROM log_chunks WHERE step_id = ?", id).Scan(&n)
			if n != 0 {
				t.Fatalf("step %d is gone, but %d chunks of its log are left", id, n)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got := readLog(t, st, id)
		if string(got) != marker && !bytes.HasPrefix(orig, got) {
			t.Fatalf("step %d's log reads as %d bytes that are not the beginning of its %d bytes", id, len(got), len(orig))
		}
		if size != int64(len(got)) {
			t.Fatalf("step %d: log_size = %d, but its chunks hold %d bytes", id, size, len(got))
		}
	}
}

// TestPruneLogGroups: a long log goes over several transactions, from its
// end, so that a reader in between sees its beginning; the last one leaves
// the removal line and marks the run.
func TestPruneLogGroups(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	st := ts.store
	run := ts.finishedRun(ts.pub)
	logs := bigLogs(t, st, run.ID)
	var total int64
	for _, l := range logs {
		total += int64(len(l))
	}
	jobs, _ := st.RunJobs(ctx, run.ID)
	logPath := fmt.Sprintf("/alice/pub/actions/runs/%d/jobs/%d/log", run.RunIndex, jobs[0].ID)
	ts.clock.Add(100 * 24 * time.Hour)
	keep := 90 * 24 * time.Hour
	marker := store.PrunedLogLine(keep)
	txs := 0
	p := &store.Pruner{S: st, Budget: time.Nanosecond, AfterTx: func(bool) {
		txs++
		checkLogs(t, st, logs, marker)
		ts.want(request{method: "GET", path: logPath}, 200, nil)
	}}
	if err := p.Logs(ctx, ts.clock.Now().Add(-keep), keep); err != nil {
		t.Fatal(err)
	}
	if txs < 24*64/(store.PruneGroupBytes>>10) {
		t.Fatalf("the logs went in %d transactions, want the 1.5 MiB one alone to take %d or more", txs, 24*64/(store.PruneGroupBytes>>10))
	}
	if p.Rep.LogRuns != 1 || p.Rep.LogSteps != len(logs) || p.Rep.LogBytes != total {
		t.Fatalf("report = %+v; want 1 run, %d steps, %d bytes", p.Rep, len(logs), total)
	}
	for id := range logs {
		var size int64
		var truncated bool
		st.DBForTest().QueryRow("SELECT log_size, log_truncated FROM steps WHERE id = ?", id).Scan(&size, &truncated)
		if got := readLog(t, st, id); string(got) != marker || size != int64(len(marker)) || truncated {
			t.Fatalf("step %d after pruning: %q, log_size %d, truncated %v; want %q, %d, false", id, got, size, truncated, marker, len(marker))
		}
	}
	var pruned sql.NullInt64
	st.DBForTest().QueryRow("SELECT logs_pruned_at FROM runs WHERE id = ?", run.ID).Scan(&pruned)
	if !pruned.Valid {
		t.Fatal("the run is not marked as pruned")
	}
	if res := ts.want(request{method: "GET", path: logPath}, 200, nil); !strings.Contains(string(res.body), "log removed after 90 days") {
		t.Fatalf("GET %s = %q, want the removal line", logPath, res.body)
	}
}

// pruneDump is what retention changes in a database, to compare two.
func pruneDump(t *testing.T, st *store.Store) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{
		"SELECT id, parent_run_id, logs_pruned_at FROM runs ORDER BY id",
		"SELECT id, run_id FROM jobs ORDER BY id",
		"SELECT id, job_id, log_size, log_truncated FROM steps ORDER BY id",
		"SELECT step_id, seq, data FROM log_chunks ORDER BY step_id, seq",
		"SELECT id FROM pushes ORDER BY id",
		"SELECT * FROM run_branches ORDER BY 1, 2",
		"SELECT * FROM run_heads ORDER BY 1, 2",
		"SELECT id, run_count, last_run_id FROM workflows ORDER BY id",
		"SELECT * FROM run_blocks ORDER BY 1, 2, 3",
		"SELECT * FROM run_facets ORDER BY 1, 2, 3",
	} {
		rows, err := st.DBForTest().Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				if data, ok := v.([]byte); ok {
					vals[i] = fmt.Sprintf("%x", sha256.Sum256(data))
				}
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

// TestPruneResumed: a prune stopped between any two of its transactions
// (its context cancelled, or the process killed) and started again ends
// with the database as one that ran through, and its reports add up to
// that one's.
func TestPruneResumed(t *testing.T) {
	day := 24 * time.Hour
	// Two runs with long logs, 400 and 200 days old, and a new one.
	setup := func() (*testServer, map[int64][]byte) {
		ts := newTestServer(t)
		logs := bigLogs(t, ts.store, ts.finishedRun(ts.pub).ID)
		ts.clock.Add(200 * day)
		maps.Copy(logs, bigLogs(t, ts.store, ts.finishedRun(ts.pub).ID))
		ts.clock.Add(200 * day)
		ts.finishedRun(ts.pub)
		return ts, logs
	}
	for _, tc := range []struct {
		name  string
		keep  store.Retention
		every int // cancel after this many transactions
	}{
		{"logs, every transaction", store.Retention{Logs: 90 * day}, 1},
		{"logs, every 7", store.Retention{Logs: 90 * day}, 7},
		{"runs, every transaction", store.Retention{Runs: 365 * day}, 1},
		{"runs, every 5", store.Retention{Runs: 365 * day}, 5},
		{"both, every 3", store.Retention{Logs: 90 * day, Runs: 365 * day}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			ref, _ := setup()
			want, err := ref.store.Prune(ctx, tc.keep, store.PruneOpts{})
			if err != nil {
				t.Fatal(err)
			}
			if want.LogRuns+want.Runs == 0 {
				t.Fatalf("prune = %+v, want something removed", want)
			}
			ts, logs := setup()
			var got store.PruneReport
			stops := 0
			for {
				ctx, cancel := context.WithCancel(context.Background())
				n := 0
				p := &store.Pruner{S: ts.store, Budget: time.Nanosecond, AfterTx: func(more bool) {
					checkLogs(t, ts.store, logs, store.PrunedLogLine(tc.keep.Logs))
					if n++; n >= tc.every && more { // between two of a pass's transactions
						cancel()
					}
				}}
				err := p.Prune(ctx, tc.keep)
				cancel()
				got.Add(p.Rep)
				if err == nil {
					break
				}
				if !errors.Is(err, context.Canceled) {
					t.Fatal(err)
				}
				if stops++; stops > 1000 {
					t.Fatalf("stopped %d times, the prune does not get on: %+v", stops, got)
				}
			}
			if stops < 2 {
				t.Fatalf("the prune stopped %d times, want several", stops)
			}
			if got.LogRuns != want.LogRuns || got.LogSteps != want.LogSteps || got.LogBytes != want.LogBytes ||
				got.Runs != want.Runs || got.Pushes != want.Pushes {
				t.Fatalf("resumed %d times, the reports add up to %+v; want %+v", stops, got, want)
			}
			if a, b := pruneDump(t, ts.store), pruneDump(t, ref.store); a != b {
				t.Fatalf("resumed %d times, the database differs from one pruned at once:\n%s\nwant\n%s", stops, a, b)
			}
			if rep, err := ts.store.Check(ctx, false); err != nil || len(rep.Problems) != 0 {
				t.Fatalf("check after the resumed prune = %+v, %v", rep, err)
			}
		})
	}
}
