package store

import (
	"context"
	"os"
	"path/filepath"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
	"strings"
	"sync"
	"testing"
	"time"
)

// The store's own test helpers: the real Store on a temp file, with an
// injected clock, and a few users and repositories. Tests that drive HTTP
// live in the root, on its newTestServer.

// schemaSQL is the root's schema.sql (version 1; the root embeds it and
// hands it to Open).
var schemaSQL = func() string {
	b, err := os.ReadFile(filepath.Join("..", "..", "schema.sql"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// openStore opens the database at path as the root does.
func openStore(path string, o Options) (*Store, error) { return Open(path, schemaSQL, o) }

// testWorkflow has two jobs, the second needing the first, and both
// triggers (the root's test workflow).
const testWorkflow = `name: CI
on:
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      level:
        type: choice
        options: [low, high]
        default: low
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo building
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo testing
`

// fakeClock is a settable clock; its Now is passed as Options.Now.
type fakeClock struct {
	mu  sync.Mutex // guards now
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testStore is a Store on a temp file with users alice, bob, carol and
// dave; alice's repositories pub (public) and priv (private), which bob
// may write and carol read; and a runner r1 for ubuntu-latest.
type testStore struct {
	*Store
	t      testing.TB
	clock  *fakeClock
	users  map[string]*User
	pub    *Repo
	priv   *Repo
	runner *Runner
	sha    string // the head commit of test runs (no repository behind it)
}

func newTestStore(t testing.TB) *testStore { return newTestStoreWith(t, Options{}) }

// newTestStoreWith is newTestStore opened with o; the clock is the test's.
func newTestStoreWith(t testing.TB, o Options) *testStore {
	t.Helper()
	clock := &fakeClock{now: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	o.Now = clock.Now
	st, err := openStore(filepath.Join(t.TempDir(), "test.db"), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ts := &testStore{Store: st, t: t, clock: clock, users: map[string]*User{}, sha: strings.Repeat("a", 40)}
	ctx := context.Background()
	for _, name := range []string{"alice", "bob", "carol", "dave"} {
		u, err := st.CreateUser(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		ts.users[name] = u
	}
	if ts.pub, err = st.CreateRepo(ctx, ts.users["alice"], "pub", "/nonexistent/pub.git", false); err != nil {
		t.Fatal(err)
	}
	if ts.priv, err = st.CreateRepo(ctx, ts.users["alice"], "priv", "/nonexistent/priv.git", true); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*Repo{ts.pub, ts.priv} {
		if err := st.Grant(ctx, r, ts.users["bob"], PermWrite); err != nil {
			t.Fatal(err)
		}
		if err := st.Grant(ctx, r, ts.users["carol"], PermRead); err != nil {
			t.Fatal(err)
		}
	}
	if ts.runner, _, err = st.CreateRunner(ctx, "r1", []string{"ubuntu-latest"}); err != nil {
		t.Fatal(err)
	}
	return ts
}

// reopen is another Store on the same file, opened with o (a restart, or
// another process).
func (ts *testStore) reopen(o Options) *Store {
	ts.t.Helper()
	if o.Now == nil {
		o.Now = ts.clock.Now
	}
	st, err := openStore(ts.path, o)
	if err != nil {
		ts.t.Fatal(err)
	}
	ts.t.Cleanup(func() { st.Close() })
	return st
}

// newRun makes a push run of testWorkflow (as .shithub/workflows/ci.yml)
// on repo, by alice, and returns it with its jobs (build, then test).
func (ts *testStore) newRun(repo *Repo) (*Run, []*Job) {
	ts.t.Helper()
	return ts.pushRun(repo, "ci.yml", testWorkflow)
}

// newRunOf makes a push run of a workflow's content, as
// .shithub/workflows/x.yml, on repo.
func (ts *testStore) newRunOf(repo *Repo, content string) (*Run, []*Job) {
	ts.t.Helper()
	return ts.pushRun(repo, "x.yml", content)
}

func (ts *testStore) pushRun(repo *Repo, name, content string) (*Run, []*Job) {
	ts.t.Helper()
	ctx := context.Background()
	wf, err := workflow.Parse(name, []byte(content))
	if err != nil {
		ts.t.Fatal(err)
	}
	runs, _, err := ts.CreateRuns(ctx, nil, []RunSpec{{
		RepoID: repo.ID, File: ".shithub/workflows/" + name, Content: []byte(content), Workflow: wf,
		HeadSHA: ts.sha, HeadRef: "refs/heads/main", Event: "push", ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	jobs, err := ts.RunJobs(ctx, runs[0].ID)
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0], jobs
}

// run is run id as the store has it now.
func (ts *testStore) run(id int64) *Run {
	ts.t.Helper()
	r, err := ts.RunByID(context.Background(), id)
	if err != nil {
		ts.t.Fatal(err)
	}
	return r
}

// queryPlan is EXPLAIN QUERY PLAN of q with args, its details joined.
func (ts *testStore) queryPlan(q string, args ...any) string {
	ts.t.Helper()
	rows, err := ts.db.Query("EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		ts.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, notused int
		var detail string
		rows.Scan(&id, &parent, &notused, &detail)
		plan = append(plan, detail)
	}
	return strings.Join(plan, "; ")
}

// finishedRun makes a run of testWorkflow on repo and has r1 claim both
// jobs, log a line in each step and succeed, as a runner would through
// the protocol.
func (ts *testStore) finishedRun(repo *Repo) *Run {
	ts.t.Helper()
	ctx := context.Background()
	run, _ := ts.newRun(repo)
	for range 2 {
		cj, err := ts.ClaimJob(ctx, ts.runner, []string{"ubuntu-latest"})
		if err != nil || cj == nil {
			ts.t.Fatalf("no job to claim: %v", err)
		}
		for _, st := range cj.Steps {
			if err := ts.AppendLog(ctx, ts.runner.ID, cj.JobID, st.ID, 1, []byte("step output\n")); err != nil {
				ts.t.Fatal(err)
			}
		}
		if err := ts.CompleteJobWith(ctx, ts.runner.ID, cj.JobID, "completed", "success", nil, ""); err != nil {
			ts.t.Fatal(err)
		}
	}
	return ts.run(run.ID)
}

// heartbeat claims the next job r1 may run, as its heartbeat does; nil
// when there is none.
func (ts *testStore) heartbeat() *protocol.Job {
	ts.t.Helper()
	j, err := ts.ClaimJob(context.Background(), ts.runner, []string{"ubuntu-latest"})
	if err != nil {
		ts.t.Fatal(err)
	}
	return j
}

// job is job id as the store has it now.
func (ts *testStore) job(id int64) *Job {
	ts.t.Helper()
	j, err := ts.JobByID(context.Background(), id)
	if err != nil {
		ts.t.Fatal(err)
	}
	return j
}

// jobLog is a job's stored log, its steps' chunks in order.
func (ts *testStore) jobLog(jobID int64) string {
	ts.t.Helper()
	ctx := context.Background()
	steps, err := ts.JobSteps(ctx, jobID)
	if err != nil {
		ts.t.Fatal(err)
	}
	var b strings.Builder
	for _, st := range steps {
		if err := ts.EachLogChunk(ctx, st.ID, 0, func(c LogChunk) error { b.Write(c.Data); return nil }); err != nil {
			ts.t.Fatal(err)
		}
	}
	return b.String()
}

// claimWorkflow makes a push run of wf (as .shithub/workflows/deploy.yml)
// on repo and has r1 claim its first job.
func (ts *testStore) claimWorkflow(repo *Repo, wf string) *protocol.Job {
	ts.t.Helper()
	ts.pushRun(repo, "deploy.yml", wf)
	j := ts.heartbeat()
	if j == nil {
		ts.t.Fatal("heartbeat: no job")
	}
	return j
}
