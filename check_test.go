package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheck: a clean database exits 0; each stuck state is reported and
// exits 1; bad input exits 2.
func TestCheck(t *testing.T) {
	ts := newTestServer(t)
	st := ts.store
	db := st.Path()
	ts.finishedRun(ts.pub)
	code, stdout, stderr := cliRun(t, db, "", "check")
	if code != 0 || !strings.Contains(stdout, "is ok") {
		t.Fatalf("check of a clean database: exit %d, %q %q; want 0", code, stdout, stderr)
	}
	// A run left open with all its jobs done.
	open := ts.finishedRun(ts.pub)
	st.DBForTest().Exec("UPDATE runs SET status = 'running' WHERE id = ?", open.ID)
	// A running job whose runner went silent.
	run, jobs := ts.newRun(ts.pub)
	if cj := ts.heartbeat(); cj == nil || cj.JobID != jobs[0].ID {
		t.Fatal("no claim")
	}
	ts.clock.Add(5 * time.Minute)
	// A queued job nobody can take.
	st.DBForTest().Exec(`UPDATE jobs SET runs_on = '["gpu"]' WHERE id = ?`, jobs[1].ID)
	code, stdout, stderr = cliRun(t, db, "", "check")
	for _, want := range []string{
		"run " + itoa(open.ID) + " (repository 1, #2) is running but all its jobs are completed",
		"job " + itoa(jobs[0].ID) + " (run " + itoa(run.ID) + ") is running on runner r1, silent for",
		"job " + itoa(jobs[1].ID) + " (run " + itoa(run.ID) + ") is queued for runs-on [gpu], which no registered runner has",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("check's report lacks %q:\n%s", want, stdout)
		}
	}
	if code != 1 || !strings.Contains(stderr, "3 problems") {
		t.Fatalf("check of a stuck database: exit %d, %q; want 1 and 3 problems", code, stderr)
	}
	for _, args := range [][]string{{"check", "--bogus"}, {"check", "extra"}} {
		if code, _, _ := cliRun(t, db, "", args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if code, _, _ := cliRun(t, filepath.Join(t.TempDir(), "missing.db"), "", "check"); code != 2 {
		t.Errorf("check of a missing file: exit %d, want 2", code)
	}
	// An ill-made run: one with no jobs.
	st.DBForTest().Exec("DELETE FROM jobs WHERE run_id = ?", open.ID)
	rep, err := st.Check(context.Background(), true)
	if err != nil || !strings.Contains(strings.Join(rep.Problems, "\n"), "has no jobs: it was half-made") {
		t.Fatalf("check of a run without jobs = %v, %v", rep, err)
	}
}

func itoa(n int64) string { return webItoa(n) }
