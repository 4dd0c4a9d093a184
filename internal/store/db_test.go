package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"shithub-actions/internal/protocol"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestCreatedAtMonotonic: a clock that steps back does not give a new run
// a created_at before the newest run's, so the run-number order of the
// unfiltered list and the created_at order of the filtered ones and the
// feed stay the same.
func TestCreatedAtMonotonic(t *testing.T) {
	ts := newTestStore(t)
	r1, _ := ts.newRun(ts.pub)
	ts.clock.Add(-time.Hour)
	r2, _ := ts.newRun(ts.pub)
	if r2.RunIndex != r1.RunIndex+1 || r2.CreatedAt.Before(r1.CreatedAt) {
		t.Errorf("run #%d created %v after run #%d created %v: want the next number, not earlier", r2.RunIndex, r2.CreatedAt, r1.RunIndex, r1.CreatedAt)
	}
	runs, _, err := ts.ListRuns(context.Background(), ts.pub.ID, RunFilter{Event: r1.Event}, 1, 10)
	if err != nil || len(runs) != 2 || runs[0].ID != r2.ID {
		t.Errorf("filtered list = %d runs (%v), want run #%d first", len(runs), err, r2.RunIndex)
	}
}

// checkCounts fails t when a kept count (run_blocks, run_facets and the
// rest) does not match the runs it counts, by check's own comparison
// (TestCheckKeptCounts shows that it catches each table's drift).
func checkCounts(t *testing.T, st *Store) {
	t.Helper()
	var problems []string
	if err := st.CheckKeptCounts(context.Background(), func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}); err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("kept counts differ from the runs:\n%s", strings.Join(problems, "\n"))
	}
}

// TestListRunsDeepPages: every page of the unfiltered list and of a
// workflow's list, found through run_blocks (pageStart), is the page
// OFFSET would give, also with gaps that retention leaves anywhere, across
// block boundaries, and with runs created in the same millisecond.
func TestListRunsDeepPages(t *testing.T) {
	ts := newTestStore(t)
	st := ts.Store
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(3, 4))
	files := []string{".shithub/workflows/a.yml", ".shithub/workflows/b.yml", ".shithub/workflows/c.yml"}
	for range 5 {
		insertTestRuns(t, st, ts.pub, ts.users["alice"], 500, rng, files, []string{"main", "dev"})
		ts.clock.Add(time.Minute)
	}
	insertTestRuns(t, st, ts.priv, ts.users["alice"], 30, rng, files, []string{"main"}) // another repository's blocks
	// Gaps: a tenth of the runs, at random, and all of block 1 but one run.
	if _, err := st.wdb.Exec(`DELETE FROM runs WHERE repo_id = ? AND (abs(random()) % 10 = 0 OR (run_index BETWEEN 1024 AND 2047 AND run_index != 1500))`,
		ts.pub.ID); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st)

	var wfB int64
	if err := st.db.QueryRow("SELECT id FROM workflows WHERE repo_id = ? AND path = ?", ts.pub.ID, files[1]).Scan(&wfB); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    RunFilter
		cond string // the reference query's filter
	}{
		{"all", RunFilter{}, ""},
		{"workflow file", RunFilter{WorkflowFile: "b.yml"}, fmt.Sprintf(" AND workflow_id = %d", wfB)},
		{"workflow id", RunFilter{WorkflowID: wfB}, fmt.Sprintf(" AND workflow_id = %d", wfB)},
	} {
		var want []int64
		rows, err := st.db.Query("SELECT id FROM runs WHERE repo_id = ?"+tc.cond+" ORDER BY created_at DESC, id DESC", ts.pub.ID)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id int64
			rows.Scan(&id)
			want = append(want, id)
		}
		rows.Close()
		for _, perPage := range []int{1, 7, 50, 100} {
			pages := (len(want)+perPage-1)/perPage + 1
			for page := 1; page <= pages; page++ {
				if perPage == 1 && page%37 != 1 && page < pages-2 {
					continue // a sample of the single-run pages
				}
				runs, total, err := st.ListRuns(ctx, ts.pub.ID, tc.f, page, perPage)
				if err != nil {
					t.Fatalf("%s: listRuns(page %d, per_page %d): %v", tc.name, page, perPage, err)
				}
				if total != len(want) {
					t.Fatalf("%s: total = %d, want %d", tc.name, total, len(want))
				}
				lo := min(len(want), (page-1)*perPage)
				got := make([]int64, 0, len(runs))
				for _, r := range runs {
					got = append(got, r.ID)
				}
				if exp := want[lo:min(len(want), lo+perPage)]; !slices.Equal(got, exp) {
					t.Fatalf("%s: page %d of %d per page = %v, want %v", tc.name, page, perPage, got, exp)
				}
			}
		}
	}
	// A workflow file with no workflow lists nothing.
	if runs, total, err := st.ListRuns(ctx, ts.pub.ID, RunFilter{WorkflowFile: "nope.yml"}, 2, 10); err != nil || total != 0 || len(runs) != 0 {
		t.Errorf("listRuns(nope.yml) = %d runs, total %d, %v; want none", len(runs), total, err)
	}
}

// TestRunFacets: the kept counts of actors, events, statuses and
// conclusions follow runs as they are made, claimed, finished and removed,
// and a list with two filters walks the index of the narrower one.
func TestRunFacets(t *testing.T) {
	ts := newTestStore(t)
	st := ts.Store
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	insertTestRuns(t, st, ts.pub, ts.users["alice"], 200, rng, []string{".shithub/workflows/a.yml"}, []string{"main"})
	insertTestRuns(t, st, ts.pub, ts.users["bob"], 5, rng, []string{".shithub/workflows/a.yml"}, []string{"rare"})
	checkCounts(t, st)
	ts.newRun(ts.pub)
	ts.finishedRun(ts.pub) // queued, running, completed
	r, _ := ts.newRun(ts.pub)
	checkCounts(t, st)
	if _, err := st.CancelJobs(ctx, r.ID, 0); err != nil { // the cancel API
		t.Fatal(err)
	}
	checkCounts(t, st)
	if _, err := st.wdb.Exec("DELETE FROM runs WHERE repo_id = ? AND id % 3 = 0 AND id NOT IN (SELECT parent_run_id FROM runs WHERE parent_run_id IS NOT NULL)", ts.pub.ID); err != nil {
		t.Fatal(err)
	}
	checkCounts(t, st)

	for _, tc := range []struct {
		f    RunFilter
		want string
	}{
		{RunFilter{Actor: "alice", Branch: "rare"}, "branch"},
		{RunFilter{Actor: "bob", Branch: "main"}, "actor"},
		{RunFilter{Actor: "bob", Branch: "main", HeadSHA: "abc"}, "sha"},
		{RunFilter{Event: "push", Conclusion: protocol.ConclusionCancelled}, "conclusion"},
		{RunFilter{Event: "nothing", Conclusion: protocol.ConclusionFailure}, "event"},
		{RunFilter{WorkflowFile: "a.yml", Actor: "bob"}, "actor"},
		{RunFilter{Branch: "main"}, ""},
	} {
		if got, err := st.PickDriver(ctx, ts.pub.ID, tc.f); err != nil || got != tc.want {
			t.Errorf("pickDriver(%+v) = %q, %v; want %q", tc.f, got, err, tc.want)
		}
	}
}

// insertTestRuns adds n completed runs of random workflows and branches,
// created at the store's clock.
func insertTestRuns(t *testing.T, st *Store, repo *Repo, actor *User, n int, rng *rand.Rand, files, branches []string) []int64 {
	t.Helper()
	var ids []int64
	err := st.WithTx(context.Background(), func(tx *sql.Tx) error {
		for range n {
			ref := "refs/heads/" + branches[rng.IntN(len(branches))]
			if rng.IntN(8) == 0 {
				ref = "refs/tags/v1"
			}
			id, err := st.InsertRun(tx, RunSpec{RepoID: repo.ID, File: files[rng.IntN(len(files))], Content: []byte("x"),
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
