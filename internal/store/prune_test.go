package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"shithub-actions/internal/apperr"
	"slices"
	"strings"
	"testing"
	"time"
)

// The queries the kept tables replaced, as they were: the reference the
// kept tables must agree with.
func oldWorkflows(t *testing.T, st *Store, repoID int64) []WebWorkflow {
	t.Helper()
	rows, err := st.db.Query(`SELECT w.id, r.workflow_file, r.workflow_name, w.state != 'active', r.status, r.conclusion
		FROM runs r JOIN workflows w ON w.id = r.workflow_id
		WHERE r.id IN (SELECT MAX(id) FROM runs WHERE repo_id = ? GROUP BY workflow_file)
		ORDER BY r.workflow_name, r.workflow_file`, repoID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []WebWorkflow
	for rows.Next() {
		var w WebWorkflow
		rows.Scan(&w.ID, &w.File, &w.Name, &w.Disabled, &w.Status, &w.Conclusion)
		out = append(out, w)
	}
	return out
}

func oldBranches(t *testing.T, st *Store, repoID int64) []string {
	t.Helper()
	var out []string
	rows, err := st.db.Query(`SELECT substr(head_ref, 12) FROM runs
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
func checkKept(t *testing.T, st *Store, repoID int64, files, branches []string) {
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
			err = st.db.QueryRow(q+" ORDER BY created_at DESC, id DESC LIMIT 1", args...).Scan(&wantID)
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

// TestKeptTables: the kept workflow, branch and newest-run tables agree
// with the scans they replaced as runs come and go.
func TestKeptTables(t *testing.T) {
	ts := newTestStore(t)
	st := ts.Store
	rng := rand.New(rand.NewPCG(1, 2))
	files := []string{".shithub/workflows/a.yml", ".shithub/workflows/b.yml", ".shithub/workflows/c.yml"}
	branches := []string{"main", "dev", "feature/x", "fix"}
	for round := range 6 {
		insertTestRuns(t, st, ts.pub, ts.users["alice"], 40, rng, files, branches)
		checkKept(t, st, ts.pub.ID, files, branches)
		ts.clock.Add(24 * time.Hour)
		// Remove the older half, as retention would.
		p := &Pruner{S: st}
		if err := p.Runs(context.Background(), ts.clock.Now().Add(-time.Duration(rng.IntN(48))*time.Hour)); err != nil {
			t.Fatal(err)
		}
		checkKept(t, st, ts.pub.ID, files, branches)
		t.Logf("round %d: pruned %d runs", round, p.Rep.Runs)
	}
	// Everything gone: no choices left.
	if err := (&Pruner{S: st}).Runs(context.Background(), ts.clock.Now().Add(time.Hour)); err != nil {
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
	ts := newTestStore(t)
	st := ts.Store
	ctx := context.Background()
	const file = ".shithub/workflows/x.yml"
	files, branches := []string{file}, []string{"main", "dev"}
	step := func(what string, tabName, apiName string, count int64) {
		t.Helper()
		checkKept(t, st, ts.pub.ID, files, branches)
		tab, err := st.WebWorkflows(ctx, ts.pub.ID)
		var want []WebWorkflow
		if tabName != "" {
			want = []WebWorkflow{{File: file, Name: tabName}}
		}
		for i := range tab { // the name the tab shows is what this test follows
			tab[i] = WebWorkflow{File: tab[i].File, Name: tab[i].Name}
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
	if err := st.SyncWorkflows(ctx, ts.pub.ID, []WorkflowFile{{Path: file, Name: "Default", Parsed: true}}); err != nil {
		t.Fatal(err)
	}
	step("the default branch renames it", "Alpha", "Default", 1)
	var broken int64
	if err := st.WithTx(ctx, func(tx *sql.Tx) (err error) {
		broken, err = st.InsertRun(tx, RunSpec{RepoID: ts.pub.ID, File: file, Content: []byte("x"), ParseErr: errors.New("broken"),
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
		if _, err := st.wdb.Exec("DELETE FROM runs WHERE id = ?", id); err != nil {
			t.Fatal(err)
		}
	}
	step("the newest runs deleted", "Alpha", "Default", 1)
	if _, err := st.LatestRunOf(ctx, ts.pub.ID, file, ""); err != nil { // the badge's newest run
		t.Fatalf("the newest run of %s: %v", file, err)
	}
	if _, err := st.wdb.Exec("DELETE FROM runs WHERE id = ?", first.ID); err != nil {
		t.Fatal(err)
	}
	step("every run deleted", "", "Default", 0)
	if _, err := st.LatestRunOf(ctx, ts.pub.ID, file, ""); !errors.Is(err, apperr.ErrNotFound) { // no badge
		t.Fatalf("the newest run of %s with none: err = %v, want not found", file, err)
	}
	var last sql.NullInt64
	st.db.QueryRow("SELECT last_run_id FROM workflows WHERE repo_id = ? AND path = ?", ts.pub.ID, file).Scan(&last)
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

	st, err := openStore(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var version int
	st.db.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	st.db.QueryRow("PRAGMA user_version").Scan(&version)
	if mode != 2 || version != len(Migrations)+1 {
		t.Fatalf("after opening: auto_vacuum = %d, user_version = %d; want 2 (incremental), %d", mode, version, len(Migrations)+1)
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
	fresh, err := openStore(filepath.Join(t.TempDir(), "new.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	fresh.db.QueryRow("PRAGMA auto_vacuum").Scan(&mode)
	if mode != 2 {
		t.Fatalf("a new file's auto_vacuum = %d, want 2", mode)
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
	for _, m := range Migrations[:v7] {
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

	st, err := openStore(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var version, gone int
	st.db.QueryRow("PRAGMA user_version").Scan(&version)
	if version != len(Migrations)+1 {
		t.Fatalf("user_version = %d, want %d", version, len(Migrations)+1)
	}
	st.db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name IN ('run_workflows', 'run_heads_old', 'runs_count_insert',
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
	insert(st.wdb, 100, 1000)
	remove(st.wdb, 40)
	check("after more runs and deletes")
}
