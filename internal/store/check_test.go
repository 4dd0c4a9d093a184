package store

import (
	"context"
	"strings"
	"testing"
)

// TestCheckKeptCounts: a kept count that no longer matches the runs (the
// file changed behind the program's back) is reported, each table's way.
func TestCheckKeptCounts(t *testing.T) {
	ts := newTestStore(t)
	st := ts.Store
	ts.finishedRun(ts.pub)
	ts.newRun(ts.pub)
	if rep, err := st.Check(context.Background(), true); err != nil || len(rep.Problems) != 0 {
		t.Fatalf("check of a clean database = %v, %v; want no problems", rep, err)
	}
	for _, tc := range []struct{ tamper, want string }{
		{"UPDATE workflows SET run_count = run_count + 1", "kept counts: workflows keeps"},
		{"UPDATE run_branches SET last_run_id = 0", "kept counts: run_branches keeps"},
		{"DELETE FROM run_heads", "kept counts: run_heads lacks"},
		{"UPDATE run_blocks SET runs = 7 WHERE workflow_id = 0", "kept counts: run_blocks keeps \"1 0 0\" with 7 runs"},
		{"UPDATE run_facets SET runs = runs - 1 WHERE facet = 'status' AND value = 'completed'", "kept counts: run_facets lacks \"1 status completed\" with 1 runs"},
	} {
		tx, err := st.wdb.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(tc.tamper); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		rep, err := st.Check(context.Background(), true)
		if err != nil || !strings.Contains(strings.Join(rep.Problems, "\n"), tc.want) {
			t.Errorf("after %s: check = %v, %v; want %q", tc.tamper, rep, err, tc.want)
		}
	}
}
