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
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/store"
)

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
