package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// TestBackup copies a database while writes go on: the copy is whole,
// opens as a database, and names its runs; an existing file is never
// overwritten.
func TestBackup(t *testing.T) {
	ts := newTestServer(t)
	dir := t.TempDir()
	var stop atomic.Bool
	var made atomic.Int64
	var wg sync.WaitGroup
	wf, err := workflow.Parse("ci.yml", []byte(testWorkflow))
	if err != nil {
		t.Fatal(err)
	}
	var writeErr error
	wg.Add(1)
	go func() { // a writer that does not pause for the backup
		defer wg.Done()
		for !stop.Load() {
			_, _, err := ts.store.CreateRuns(context.Background(), nil, []store.RunSpec{{
				RepoID: ts.pub.ID, File: ".shithub/workflows/ci.yml", Content: []byte(testWorkflow), Workflow: wf,
				HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
			}})
			if err != nil {
				writeErr = err
				stop.Store(true)
				return
			}
			made.Add(1)
		}
	}()
	for made.Load() < 5 && !stop.Load() {
		time.Sleep(time.Millisecond) // let the writer get going
	}
	dest := filepath.Join(dir, "copy.db")
	code, stdout, stderr := cliRun(t, ts.store.Path(), "", "backup", dest)
	stop.Store(true)
	wg.Wait()
	if writeErr != nil {
		t.Fatalf("the writer: %v", writeErr)
	}
	if code != 0 || !strings.Contains(stdout, "integrity_check ok") {
		t.Fatalf("backup: exit %d, %q %q; want 0", code, stdout, stderr)
	}
	copyStore, err := openStore(dest, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer copyStore.Close()
	rep, err := copyStore.Check(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	// Every run in the copy has all its jobs: a snapshot, never half a run.
	for _, p := range rep.Problems {
		if !strings.Contains(p, "no registered runner") { // the copy's queued jobs are fine
			t.Errorf("the copy: %s", p)
		}
	}
	var runs, jobs int
	copyStore.DBForTest().QueryRow("SELECT COUNT(*) FROM runs").Scan(&runs)
	copyStore.DBForTest().QueryRow("SELECT COUNT(*) FROM jobs").Scan(&jobs)
	if runs == 0 || jobs != 2*runs || !strings.Contains(stdout, " runs,") {
		t.Fatalf("the copy has %d runs and %d jobs; want 2 jobs a run; said %q", runs, jobs, stdout)
	}
	// No overwriting, and nothing left behind.
	code, _, stderr = cliRun(t, ts.store.Path(), "", "backup", dest)
	if code != 2 || !strings.Contains(stderr, "never overwrites") {
		t.Fatalf("backup onto an existing file: exit %d, %q; want 2", code, stderr)
	}
	code, _, stderr = cliRun(t, ts.store.Path(), "", "backup")
	if code != 2 {
		t.Fatalf("backup without FILE: exit %d, %q; want 2", code, stderr)
	}
	code, _, _ = cliRun(t, ts.store.Path(), "", "backup", filepath.Join(dir, "no", "such", "dir.db"))
	if code != 2 {
		t.Fatalf("backup into a missing directory: exit %d, want 2", code)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "partial") {
			t.Errorf("a partial copy was left behind: %s", e.Name())
		}
	}
}
