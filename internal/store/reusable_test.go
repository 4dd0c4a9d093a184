package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// gitRepo makes a git repository holding files in one commit on main and
// returns its git directory and the commit.
func gitRepo(t *testing.T, files map[string]string) (string, string) {
	t.Helper()
	work := t.TempDir()
	for name, content := range files {
		p := filepath.Join(work, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", work}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x",
			"GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "files")
	return filepath.Join(work, ".git"), git("rev-parse", "HEAD")
}

// callRepo is a repository of alice's with files, for calls.
func (ts *testStore) callRepo(name string, private bool, files map[string]string) (*Repo, string) {
	ts.t.Helper()
	dir, sha := gitRepo(ts.t.(*testing.T), files)
	r, err := ts.CreateRepo(context.Background(), ts.users["alice"], name, dir, private)
	if err != nil {
		ts.t.Fatal(err)
	}
	return r, sha
}

// runCaller makes a run of src as file ci.yml of repo at sha, for event
// (a "pull_request" from a fork when event is that).
func (ts *testStore) runCaller(repo *Repo, sha, src, event string) *Run {
	ts.t.Helper()
	wf, errs := workflow.Check("ci.yml", []byte(src))
	if errs != nil {
		ts.t.Fatalf("check: %v", errs)
	}
	ref := "refs/heads/main"
	if event == "pull_request" {
		ref = "refs/pull/1/merge"
	}
	runs, _, err := ts.CreateRuns(context.Background(), nil, []RunSpec{{
		RepoID: repo.ID, File: ".github/workflows/ci.yml", Content: []byte(src), Workflow: wf,
		HeadSHA: sha, HeadRef: ref, Event: event, ActorID: ts.users["alice"].ID,
	}})
	if err != nil {
		ts.t.Fatal(err)
	}
	return runs[0]
}

// allRows is every row of a run, calls included, by key.
func (ts *testStore) allRows(runID int64) map[string]*Job {
	ts.t.Helper()
	jobs, err := runJobs(context.Background(), ts.db, runID)
	if err != nil {
		ts.t.Fatal(err)
	}
	out := map[string]*Job{}
	for _, j := range jobs {
		out[j.JobKey] = j
	}
	return out
}

func (ts *testStore) claimKey(want string) *protocol.Job {
	ts.t.Helper()
	j := ts.heartbeat()
	if j == nil {
		ts.t.Fatalf("nothing to claim; want %s", want)
	}
	row := ts.job(j.JobID)
	if row.JobKey != want {
		ts.t.Fatalf("claimed %s, want %s", row.JobKey, want)
	}
	return j
}

const buildCalled = `name: Build
on:
  workflow_call:
    inputs:
      target: {type: string, required: true}
      debug: {type: boolean, default: false}
      level: {type: number, default: 2}
    secrets:
      token: {required: true}
    outputs:
      artifact:
        value: ${{ jobs.compile.outputs.path }}-${{ inputs.target }}
jobs:
  compile:
    name: Compile ${{ inputs.target }}
    runs-on: ubuntu-latest
    outputs:
      path: ${{ steps.x.outputs.path }}
    steps:
      - id: x
        run: echo ${{ secrets.token }} ${{ secrets.OTHER }}
  check:
    needs: compile
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ needs.compile.outputs.path }}
`

// TestReusableLocalCall: a calling job waits for its needs, evaluates its
// with from them, and becomes the called jobs ("build / Compile linux"),
// which see the call's inputs and only the secrets passed to them; the
// called workflow's output reaches the job that needs the call.
func TestReusableLocalCall(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/build.yml": buildCalled})
	for name, v := range map[string]string{"DEPLOY": "d-value", "OTHER": "o-value"} {
		if _, err := ts.SetSecret(ctx, SecretScope{RepoID: repo.ID}, name, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	run := ts.runCaller(repo, sha, `name: CI
on: push
jobs:
  prep:
    runs-on: ubuntu-latest
    outputs:
      t: ${{ steps.s.outputs.t }}
    steps:
      - id: s
        run: echo
  build:
    needs: prep
    uses: ./.github/workflows/build.yml
    with:
      target: ${{ needs.prep.outputs.t }}
      debug: true
    secrets:
      token: ${{ secrets.DEPLOY }}
  after:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ needs.build.outputs.artifact }}
`, "push")
	prep := ts.claimKey("prep")
	ts.finishJob(prep.JobID, "success", map[string]string{"t": "linux"})

	jobs := ts.jobMap(run.ID)
	if _, ok := jobs["build"]; ok {
		t.Errorf("the calling row is listed among the run's jobs")
	}
	if c := jobs["build/compile"]; c == nil || c.Name != "build / Compile linux" || jobs["build/check"].Name != "build / check" {
		t.Fatalf("called jobs: %v", slices.Sorted(mapKeysJob(jobs)))
	}
	compile := ts.claimKey("build/compile")
	inputs := compile.Contexts["inputs"].(map[string]any)
	if inputs["target"] != "linux" || inputs["debug"] != true || inputs["level"] != 2.0 {
		t.Errorf("inputs context %v", inputs)
	}
	gh := compile.Contexts["github"].(map[string]any)
	if gh["workflow"] != "CI" || gh["job"] != "compile" || compile.JobKey != "compile" || compile.Env["GITHUB_JOB"] != "compile" {
		t.Errorf("github.workflow %v, github.job %v, job key %s", gh["workflow"], gh["job"], compile.JobKey)
	}
	// The attacker's check: OTHER exists in the repository, the called
	// workflow names it, but the call did not pass it.
	d, err := ts.JobDelivery(ctx, compile.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, []string{"GITHUB_TOKEN", "TOKEN"}) || d.Secrets["TOKEN"] != "d-value" {
		t.Fatalf("called job's secrets %v", got)
	}
	if secrets := compile.Contexts["secrets"].(map[string]any); secrets["OTHER"] != nil || secrets["TOKEN"] != "d-value" {
		t.Fatalf("claim's secrets context %v", secrets)
	}
	ts.finishJob(compile.JobID, "success", map[string]string{"path": "/out"})
	check := ts.claimKey("build/check")
	if n := check.Contexts["needs"].(map[string]any)["compile"].(map[string]any); n["outputs"].(map[string]any)["path"] != "/out" {
		t.Errorf("needs inside the call: %v", n)
	}
	if ts.heartbeat() != nil {
		t.Fatal("the job after the call started before the call ended")
	}
	ts.finishJob(check.JobID, "success", nil)
	after := ts.claimKey("after")
	nb := after.Contexts["needs"].(map[string]any)["build"].(map[string]any)
	if nb["result"] != "success" || nb["outputs"].(map[string]any)["artifact"] != "/out-linux" {
		t.Fatalf("needs.build = %v", nb)
	}
	ts.finishJob(after.JobID, "success", nil)
	if r, _ := ts.RunByID(ctx, run.ID); r.Status != "completed" || r.Conclusion != "success" {
		t.Fatalf("run %s/%s", r.Status, r.Conclusion)
	}
}

func mapKeysJob(m map[string]*Job) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestReusableCallErrors: a call that does not fit the called workflow
// fails its calling job with the problem at file:line:col, and the run.
func TestReusableCallErrors(t *testing.T) {
	ts := newTestStore(t)
	repo, sha := ts.callRepo("app", false, map[string]string{
		".github/workflows/build.yml": buildCalled,
		".github/workflows/push.yml":  "on: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: x}]\n",
		".github/workflows/bad.yml":   "on: workflow_call\njobs: {}\n",
	})
	head := "on: push\njobs:\n  build:\n"
	tests := []struct {
		name, job, want string
	}{
		{"boolean given text", "    uses: ./.github/workflows/build.yml\n    with: {target: x, debug: 'yes'}\n    secrets: inherit\n",
			`ci.yml:5:30: jobs.build.with.debug: input "debug" must be a boolean, not "yes" (./.github/workflows/build.yml)`},
		{"number given text", "    uses: ./.github/workflows/build.yml\n    with:\n      target: x\n      level: ${{ 'high' }}\n    secrets: inherit\n",
			`ci.yml:7:14: jobs.build.with.level: input "level" must be a number, not "high"`},
		{"required input missing", "    uses: ./.github/workflows/build.yml\n    secrets: inherit\n",
			`ci.yml:4:11: jobs.build.uses: input "target" is required by the called workflow`},
		{"unknown input", "    uses: ./.github/workflows/build.yml\n    with: {target: x, nope: 1}\n    secrets: inherit\n",
			`ci.yml:5:29: jobs.build.with.nope: input "nope" is not defined in the called workflow`},
		{"required secret missing", "    uses: ./.github/workflows/build.yml\n    with: {target: x}\n",
			`ci.yml:4:11: jobs.build.uses: secret "token" is required by the called workflow`},
		{"unknown secret", "    uses: ./.github/workflows/build.yml\n    with: {target: x}\n    secrets: {token: a, other: b}\n",
			`ci.yml:6:32: jobs.build.secrets.other: secret "other" is not defined in the called workflow`},
		{"no such file", "    uses: ./.github/workflows/none.yml\n",
			`ci.yml:4:11: jobs.build.uses: reusable workflow ./.github/workflows/none.yml: no file .github/workflows/none.yml in alice/app`},
		{"not callable", "    uses: ./.github/workflows/push.yml\n",
			`ci.yml:4:11: jobs.build.uses: reusable workflow ./.github/workflows/push.yml has no on.workflow_call: it cannot be called`},
		{"invalid called file", "    uses: ./.github/workflows/bad.yml\n",
			`ci.yml:4:11: jobs.build.uses: reusable workflow ./.github/workflows/bad.yml is not valid:` + "\nbad.yml:2:7: jobs must not be empty"},
		{"remote ref unknown", "    uses: alice/app/.github/workflows/build.yml@v9\n",
			`ci.yml:4:11: jobs.build.uses: reusable workflow alice/app/.github/workflows/build.yml@v9: no ref v9 in alice/app`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := ts.runCaller(repo, sha, head+tt.job, "push")
			jobs := ts.jobMap(run.ID)
			b := jobs["build"]
			if b == nil || b.Conclusion != "failure" || len(jobs) != 1 {
				t.Fatalf("jobs %v", slices.Sorted(mapKeysJob(jobs)))
			}
			if log := ts.jobLog(b.ID); !strings.Contains(log, "##[error]"+tt.want) {
				t.Fatalf("log:\n%s\nwant:\n%s", log, tt.want)
			}
			if r, _ := ts.RunByID(context.Background(), run.ID); r.Conclusion != "failure" {
				t.Fatalf("run %s", r.Conclusion)
			}
		})
	}
}

const libCalled = `on:
  workflow_call:
    outputs:
      v: {value: "${{ jobs.a.outputs.v }}"}
jobs:
  a:
    runs-on: ubuntu-latest
    steps:
      - run: echo ${{ secrets.LIBSECRET }}
`

// TestReusableRemoteReach: OWNER/REPO/...@REF calls a workflow of another
// repository of this server by the reach rules of actions: a private one
// only when its owner opened it, and never from a fork's pull request (the
// attacker's case: the run fails without reading the file).
func TestReusableRemoteReach(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	lib, _ := ts.callRepo("lib", true, map[string]string{".github/workflows/w.yml": libCalled})
	pubLib, _ := ts.callRepo("publib", false, map[string]string{".github/workflows/w.yml": libCalled})
	app, sha := ts.callRepo("app", false, map[string]string{"README": "x"})
	call := func(repo *Repo, event string) *Job {
		src := "on: [push, pull_request]\njobs:\n  c:\n    uses: alice/" + repo.Name + "/.github/workflows/w.yml@main\n"
		run := ts.runCaller(app, sha, src, event)
		rows := ts.allRows(run.ID)
		return rows["c"]
	}
	// Not reachable: asked of --actions-url under the same name (here, a
	// process without it: left for serve), never read from this server.
	unread := func(c *Job) {
		t.Helper()
		var n int
		if err := ts.db.QueryRow("SELECT COUNT(*) FROM run_calls WHERE run_id = ? AND content IS NOT NULL", c.RunID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("the refused file was stored: %d, %v", n, err)
		}
		if c.Waiting != "fetch" || c.Call != "" {
			t.Fatalf("the call was made: %s %q", c.Waiting, c.Call)
		}
	}
	unread(call(lib, "push"))
	if err := ts.SetActionsAccess(ctx, lib.ID, AccessUser); err != nil {
		t.Fatal(err)
	}
	if c := call(lib, "push"); c.Status != "queued" || c.Call == "" {
		t.Fatalf("private, opened to the owner's repositories: %s/%s %q", c.Status, c.Conclusion, ts.jobLog(c.ID))
	}
	unread(call(lib, "pull_request"))
	if c := call(pubLib, "pull_request"); c.Call == "" {
		t.Fatalf("public from a fork's pull request: %s %q", c.Conclusion, ts.jobLog(c.ID))
	}
}

// TestReusableSecretsInherit: with `secrets: inherit` the called jobs see
// the caller's secrets; with none passed they see none but GITHUB_TOKEN.
func TestReusableSecretsInherit(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/w.yml": libCalled})
	if _, err := ts.SetSecret(ctx, SecretScope{RepoID: repo.ID}, "LIBSECRET", []byte("s3")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		secrets string
		want    []string
	}{
		{"    secrets: inherit\n", []string{"GITHUB_TOKEN", "LIBSECRET"}},
		{"", []string{"GITHUB_TOKEN"}},
	} {
		ts.runCaller(repo, sha, "on: push\njobs:\n  c:\n    uses: ./.github/workflows/w.yml\n"+tt.secrets, "push")
		j := ts.claimKey("c/a")
		d, err := ts.JobDelivery(ctx, j.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(mapKeys(d.Secrets)); !slices.Equal(got, tt.want) {
			t.Errorf("secrets %q: delivered %v, want %v", tt.secrets, got, tt.want)
		}
		ts.finishJob(j.JobID, "success", nil)
	}
}

// TestReusableMatrixOfCalls: a matrix on the calling job makes one call
// per leg, each with its matrix values, named "caller (leg) / job"; the
// needs of the next job see the legs' outputs.
func TestReusableMatrixOfCalls(t *testing.T) {
	ts := newTestStore(t)
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/build.yml": buildCalled})
	run := ts.runCaller(repo, sha, `on: push
jobs:
  build:
    strategy:
      matrix:
        os: [linux, mac]
    uses: ./.github/workflows/build.yml
    with:
      target: ${{ matrix.os }}
    secrets:
      token: x
  skipped:
    if: false
    uses: ./.github/workflows/build.yml
  last:
    needs: [build, skipped]
    if: always()
    runs-on: ubuntu-latest
    steps: [{run: echo}]
`, "push")
	jobs := ts.jobMap(run.ID)
	var names []string
	for _, j := range jobs {
		names = append(names, j.Name)
	}
	slices.Sort(names)
	want := []string{"build (linux) / Compile linux", "build (linux) / check", "build (mac) / Compile mac", "build (mac) / check", "last", "skipped"}
	if !slices.Equal(names, want) {
		t.Fatalf("names %q\nwant  %q", names, want)
	}
	if jobs["skipped"].Conclusion != "skipped" {
		t.Errorf("skipped call: %s", jobs["skipped"].Conclusion)
	}
	for range 4 {
		j := ts.heartbeat()
		if j == nil {
			t.Fatal("fewer called jobs than 4")
		}
		key := ts.job(j.JobID).JobKey
		if strings.HasSuffix(key, "compile") {
			if got := j.Contexts["inputs"].(map[string]any)["target"]; got != map[string]string{"build#1/compile": "linux", "build#2/compile": "mac"}[key] {
				t.Errorf("%s: target %v", key, got)
			}
		}
		ts.finishJob(j.JobID, "success", map[string]string{"path": key})
	}
	last := ts.claimKey("last")
	nb := last.Contexts["needs"].(map[string]any)["build"].(map[string]any)
	if nb["result"] != "success" || !strings.HasSuffix(nb["outputs"].(map[string]any)["artifact"].(string), "/compile-mac") {
		t.Fatalf("needs.build = %v", nb)
	}
}

// TestReusableNestingAndCycles: calls nest to GitHub's ten levels (the
// top-level workflow and nine called); the tenth called level, and a
// workflow that calls itself, fail their calling job.
func TestReusableNestingAndCycles(t *testing.T) {
	ts := newTestStore(t)
	files := map[string]string{
		".github/workflows/a.yml": "on: workflow_call\njobs:\n  b:\n    uses: ./.github/workflows/b.yml\n",
		".github/workflows/b.yml": "on: workflow_call\njobs:\n  a:\n    uses: ./.github/workflows/a.yml\n",
	}
	for i := 1; i <= 10; i++ {
		next := "    runs-on: ubuntu-latest\n    steps: [{run: x}]\n"
		if i < 10 {
			next = "    uses: ./.github/workflows/l" + string(rune('0'+i+1)) + ".yml\n"
			if i == 9 {
				next = "    uses: ./.github/workflows/l10.yml\n"
			}
		}
		name := "l" + string(rune('0'+i))
		if i == 10 {
			name = "l10"
		}
		files[".github/workflows/"+name+".yml"] = "on: workflow_call\njobs:\n  leaf:\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n  n:\n" + next
	}
	repo, sha := ts.callRepo("app", false, files)
	run := ts.runCaller(repo, sha, "on: push\njobs:\n  c:\n    uses: ./.github/workflows/l1.yml\n  loop:\n    uses: ./.github/workflows/a.yml\n", "push")
	rows := ts.allRows(run.ID)
	deep := "c" + strings.Repeat("/n", 8) // the call of l9 by l8: depth 9
	if rows[deep+"/leaf"] == nil {
		t.Fatalf("no job at the ninth level; rows %v", slices.Sorted(mapKeysJob(rows)))
	}
	tooDeep := rows[deep+"/n"]
	if tooDeep == nil || tooDeep.Conclusion != "failure" || !strings.Contains(ts.jobLog(tooDeep.ID), "l9.yml:7:11: jobs.n.uses: ./.github/workflows/l10.yml is nested too deep") {
		t.Fatalf("the tenth level: %+v %q", tooDeep, ts.jobLog(tooDeep.ID))
	}
	cyc := rows["loop/b/a"]
	if cyc == nil || cyc.Conclusion != "failure" || !strings.Contains(ts.jobLog(cyc.ID), "b.yml:4:11: jobs.a.uses: ./.github/workflows/a.yml calls itself: ci.yml -> a.yml -> b.yml -> a.yml") {
		t.Fatalf("the cycle: %v %q", slices.Sorted(mapKeysJob(rows)), ts.jobLog(cyc.ID))
	}
}

// TestReusablePermissionsNarrow: the calling job's permissions cap what
// the called jobs' tokens get, whatever the called workflow asks.
func TestReusablePermissionsNarrow(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/w.yml": `on: workflow_call
permissions: write-all
jobs:
  a:
    runs-on: ubuntu-latest
    steps: [{run: x}]
  b:
    permissions: {actions: write}
    runs-on: ubuntu-latest
    steps: [{run: x}]
`})
	ts.runCaller(repo, sha, "on: push\npermissions: {contents: write, actions: write}\njobs:\n  c:\n    permissions: {contents: write, actions: read}\n    uses: ./.github/workflows/w.yml\n  open:\n    uses: ./.github/workflows/w.yml\n", "push")
	want := map[string]TokenPerms{
		"c/a":    {Contents: "write", Actions: "read"},
		"c/b":    {Contents: "none", Actions: "read"},
		"open/a": {Contents: "write", Actions: "write"},
		"open/b": {Contents: "none", Actions: "write"},
	}
	for range want {
		j := ts.heartbeat()
		if j == nil {
			t.Fatal("fewer jobs than expected")
		}
		key := ts.job(j.JobID).JobKey
		d, err := ts.JobDelivery(ctx, j.JobID)
		if err != nil {
			t.Fatal(err)
		}
		if d.Perms != want[key] {
			t.Errorf("%s: perms %+v, want %+v", key, d.Perms, want[key])
		}
	}
}

// TestReusableConcurrency: a calling job's concurrency group holds its
// call: the second run's call makes its jobs only once the first's ended.
func TestReusableConcurrency(t *testing.T) {
	ts := newTestStore(t)
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/w.yml": libCalled})
	src := "on: push\njobs:\n  deploy:\n    concurrency: prod\n    uses: ./.github/workflows/w.yml\n"
	first := ts.runCaller(repo, sha, src, "push")
	second := ts.runCaller(repo, sha, src, "push")
	if rows := ts.allRows(second.ID); len(rows) != 1 || rows["deploy"].Waiting != "concurrency" {
		t.Fatalf("second run: %v", slices.Sorted(mapKeysJob(rows)))
	}
	j := ts.claimKey("deploy/a")
	if ts.job(j.JobID).RunID != first.ID {
		t.Fatal("claimed the second run's job")
	}
	if ts.heartbeat() != nil {
		t.Fatal("the second call started while the first held the group")
	}
	ts.finishJob(j.JobID, "success", map[string]string{"v": "1"})
	if r, _ := ts.RunByID(context.Background(), first.ID); r.Conclusion != "success" {
		t.Fatalf("first run %s", r.Conclusion)
	}
	j2 := ts.claimKey("deploy/a")
	if ts.job(j2.JobID).RunID != second.ID {
		t.Fatal("the second run's call did not start")
	}
}

// TestReusableCancel: cancelling a run cancels the called jobs, and the
// call ends with them.
func TestReusableCancel(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/build.yml": buildCalled})
	run := ts.runCaller(repo, sha, "on: push\njobs:\n  b:\n    uses: ./.github/workflows/build.yml\n    with: {target: x}\n    secrets: {token: t}\n", "push")
	ts.claimKey("b/compile")
	if _, err := ts.CancelJobs(ctx, run.ID, 0); err != nil {
		t.Fatal(err)
	}
	rows := ts.allRows(run.ID)
	if rows["b/check"].Conclusion != "cancelled" || rows["b"].Status != "completed" && rows["b/compile"].Status != "running" {
		t.Fatalf("after cancel: b %s/%s, b/check %s", rows["b"].Status, rows["b"].Conclusion, rows["b/check"].Conclusion)
	}
}

// TestOnlyCalledStartsNoRun: a push runs the workflows of the repository
// but not one whose only trigger is workflow_call.
func TestOnlyCalledStartsNoRun(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, sha := ts.callRepo("app", false, map[string]string{
		".shithub/workflows/ci.yml":       "on: push\njobs:\n  c:\n    uses: ./.shithub/workflows/called.yml\n",
		".shithub/workflows/called.yml":   libCalled,
		".shithub/workflows/anything.yml": "on: [push, workflow_call]\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n",
	})
	res, err := TriggerPush(ctx, ts.Store, repo, ts.users["alice"], "refs/heads/main", "", sha)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, r := range res.Runs {
		files = append(files, r.WorkflowFile)
	}
	slices.Sort(files)
	if !slices.Equal(files, []string{".shithub/workflows/anything.yml", ".shithub/workflows/ci.yml"}) {
		t.Fatalf("runs of %v", files)
	}
}

// TestReusableQueryPlans: what every end and claim of a called job asks
// uses an index, never a scan of jobs or run_calls.
func TestReusableQueryPlans(t *testing.T) {
	ts := newTestStore(t)
	for name, q := range map[string]string{"callJobs": sqlCallJobs, "callOpenJobs": sqlCallOpenJobs, "callFile": sqlCallFile, "pendingCalls": sqlPendingCalls} {
		args := []any{int64(1), "k"}[:strings.Count(q, "?")]

		p := ts.queryPlan(q, args...)
		// The pending calls' partial index holds only them: walking it is
		// no scan of the table.
		if strings.Contains(p, "SCAN ") && p != "SCAN run_calls USING INDEX run_calls_pending" {
			t.Errorf("%s: plan %q scans a table", name, p)
		}
		t.Logf("%s: %s", name, p)
	}
}

// TestReusableTokenPassed: a call passing the caller's GITHUB_TOKEN by
// name gives the called job its own token under that name; nothing of
// the stand-in reaches the job.
func TestReusableTokenPassed(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/build.yml": buildCalled})
	ts.runCaller(repo, sha, "on: push\njobs:\n  b:\n    uses: ./.github/workflows/build.yml\n    with: {target: x}\n    secrets:\n      token: Bearer ${{ secrets.GITHUB_TOKEN }}\n", "push")
	j := ts.claimKey("b/compile")
	d, err := ts.JobDelivery(ctx, j.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if d.Secrets["TOKEN"] != "Bearer "+d.Token || strings.Contains(d.Secrets["TOKEN"], "\x00") {
		t.Fatalf("TOKEN = %q, token %q", d.Secrets["TOKEN"], d.Token)
	}
	if s := j.Contexts["secrets"].(map[string]any); s["TOKEN"] != "Bearer "+d.Token {
		t.Fatalf("claim's secrets %v", s)
	}
}

// TestReusableActionsURL: a workflow not on this server comes through
// Options.FetchWorkflow (--actions-url), and so do its ./ calls, at the
// commit its ref resolved to; a private repository of this server a run
// may not reach is asked there under the same name, never read here.
func TestReusableActionsURL(t *testing.T) {
	type ask struct{ owner, repo, ref, file string }
	var asked []ask
	mirror := map[string]string{
		"acme/shared@v1:.github/workflows/s.yml":                              "on: workflow_call\njobs:\n  s:\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n  t:\n    uses: ./.github/workflows/t.yml\n",
		"acme/shared@" + strings.Repeat("c", 40) + ":.github/workflows/t.yml": libCalled,
	}
	fetch := func(ctx context.Context, owner, repo, ref, file string) ([]byte, string, string, error) {
		asked = append(asked, ask{owner, repo, ref, file})
		b, ok := mirror[owner+"/"+repo+"@"+ref+":"+file]
		if !ok {
			return nil, "", "", errors.New("not in the mirror")
		}
		return []byte(b), strings.Repeat("c", 40), "file:///mirror", nil
	}
	ts := newTestStoreWith(t, Options{FetchWorkflow: fetch})
	ts.callRepo("lib", true, map[string]string{".github/workflows/w.yml": libCalled})
	app, sha := ts.callRepo("app", false, map[string]string{"README": "x"})
	run := ts.runCaller(app, sha, "on: push\njobs:\n  c:\n    uses: acme/shared/.github/workflows/s.yml@v1\n", "push")
	rows := ts.allRows(run.ID)
	if rows["c/s"] == nil || rows["c/t/a"] == nil || rows["c/t/a"].Name != "c / t / a" {
		t.Fatalf("rows %v", slices.Sorted(mapKeysJob(rows)))
	}
	want := []ask{{"acme", "shared", "v1", ".github/workflows/s.yml"}, {"acme", "shared", strings.Repeat("c", 40), ".github/workflows/t.yml"}}
	if !slices.Equal(asked, want) {
		t.Fatalf("asked %v, want %v", asked, want)
	}
	asked = nil
	pr := ts.runCaller(app, sha, "on: pull_request\njobs:\n  c:\n    uses: alice/lib/.github/workflows/w.yml@main\n", "pull_request")
	c := ts.allRows(pr.ID)["c"]
	if c.Conclusion != "failure" || !strings.Contains(ts.jobLog(c.ID), "reusable workflow alice/lib/.github/workflows/w.yml@main: not in the mirror") {
		t.Fatalf("private from a fork's pull request: %s %q", c.Conclusion, ts.jobLog(c.ID))
	}
	if !slices.Equal(asked, []ask{{"alice", "lib", "main", ".github/workflows/w.yml"}}) {
		t.Fatalf("asked %v", asked)
	}
}

// TestReusableFetchPending: a run made by a process that has no
// --actions-url (the post-receive hook) leaves its calls of workflows not
// on this server to serve, which fetches them and makes the calls.
func TestReusableFetchPending(t *testing.T) {
	ts := newTestStore(t)
	app, sha := ts.callRepo("app", false, map[string]string{"README": "x"})
	run := ts.runCaller(app, sha, "on: push\njobs:\n  c:\n    strategy: {matrix: {n: [1, 2]}}\n    uses: acme/shared/.github/workflows/w.yml@v1\n  after:\n    needs: c\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n", "push")
	if rows := ts.allRows(run.ID); rows["c#1"].Waiting != "fetch" || rows["c#2"].Waiting != "fetch" || len(rows) != 3 {
		t.Fatalf("rows before the fetch: %v", slices.Sorted(mapKeysJob(rows)))
	}
	if ts.heartbeat() != nil {
		t.Fatal("a job is claimable before the call was made")
	}
	fetch := func(ctx context.Context, owner, repo, ref, file string) ([]byte, string, string, error) {
		return []byte(libCalled), strings.Repeat("d", 40), "mirror", nil
	}
	serve := ts.reopen(Options{FetchWorkflow: fetch})
	defer serve.Close()
	if n, err := serve.FetchPendingCalls(context.Background()); err != nil || n != 1 {
		t.Fatalf("fetched %d, %v", n, err)
	}
	rows := ts.allRows(run.ID)
	if rows["c#1/a"] == nil || rows["c#2/a"] == nil || rows["c#1/a"].Name != "c (1) / a" {
		t.Fatalf("rows after the fetch: %v", slices.Sorted(mapKeysJob(rows)))
	}
	for range 2 {
		j := ts.heartbeat()
		if j == nil {
			t.Fatal("a called job is not claimable")
		}
		ts.finishJob(j.JobID, "success", nil)
	}
	ts.claimKey("after")
	if n, err := serve.FetchPendingCalls(context.Background()); err != nil || n != 0 {
		t.Fatalf("fetched again: %d, %v", n, err)
	}
}

// TestReusableRerun: a re-run calls the same files, read when the first
// attempt was made, even after the repository moved on.
func TestReusableRerun(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/w.yml": libCalled})
	run := ts.runCaller(repo, sha, "on: push\njobs:\n  c:\n    uses: ./.github/workflows/w.yml\n  d:\n    runs-on: ubuntu-latest\n    steps: [{run: x}]\n", "push")
	for range 2 {
		j := ts.heartbeat()
		if ts.job(j.JobID).JobKey == "c/a" {
			ts.finishJob(j.JobID, "failure", nil)
		} else {
			ts.finishJob(j.JobID, "success", nil)
		}
	}
	if r, _ := ts.RunByID(ctx, run.ID); r.Conclusion != "failure" {
		t.Fatalf("first attempt %s", r.Conclusion)
	}
	if err := os.RemoveAll(filepath.Join(repo.GitDir, "objects")); err != nil { // nothing can be read from it any more
		t.Fatal(err)
	}
	src, _ := ts.RunByID(ctx, run.ID)
	again, err := ts.RerunSome(ctx, src, ts.users["alice"], FailedJobs)
	if err != nil {
		t.Fatal(err)
	}
	rows := ts.allRows(again.ID)
	if rows["c/a"] == nil || rows["d"].Conclusion != "success" {
		t.Fatalf("re-run rows %v", slices.Sorted(mapKeysJob(rows)))
	}
	j := ts.claimKey("c/a")
	ts.finishJob(j.JobID, "success", nil)
	if r, _ := ts.RunByID(ctx, again.ID); r.Conclusion != "success" {
		t.Fatalf("re-run %s", r.Conclusion)
	}
}

// TestReusableMaxParallel: a matrix of calls with max-parallel makes the
// next leg's jobs only when a leg's call ended.
func TestReusableMaxParallel(t *testing.T) {
	ts := newTestStore(t)
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/w.yml": libCalled})
	run := ts.runCaller(repo, sha, "on: push\njobs:\n  c:\n    strategy:\n      max-parallel: 1\n      matrix: {n: [1, 2, 3]}\n    uses: ./.github/workflows/w.yml\n", "push")
	for leg := 1; leg <= 3; leg++ {
		rows := ts.allRows(run.ID)
		var called []string
		for k := range rows {
			if strings.Contains(k, "/") {
				called = append(called, k)
			}
		}
		slices.Sort(called)
		if want := fmt.Sprintf("c#%d/a", leg); called[len(called)-1] != want || len(called) != leg {
			t.Fatalf("leg %d: called jobs %v", leg, called)
		}
		j := ts.claimKey(fmt.Sprintf("c#%d/a", leg))
		if ts.heartbeat() != nil {
			t.Fatal("two legs' jobs at once")
		}
		ts.finishJob(j.JobID, "success", nil)
	}
	if r, _ := ts.RunByID(context.Background(), run.ID); r.Conclusion != "success" {
		t.Fatalf("run %s", r.Conclusion)
	}
}

// TestReusableFailFast: a leg's failed call cancels the other legs'
// calls and their jobs, as fail-fast does for a matrix.
func TestReusableFailFast(t *testing.T) {
	ts := newTestStore(t)
	repo, sha := ts.callRepo("app", false, map[string]string{".github/workflows/w.yml": libCalled})
	run := ts.runCaller(repo, sha, "on: push\njobs:\n  c:\n    strategy:\n      matrix: {n: [1, 2, 3]}\n    uses: ./.github/workflows/w.yml\n", "push")
	first := ts.claimKey("c#1/a")
	second := ts.claimKey("c#2/a")
	ts.finishJob(first.JobID, "failure", nil)
	rows := ts.allRows(run.ID)
	if rows["c#3/a"].Conclusion != "cancelled" || rows["c#3"].Conclusion != "cancelled" || rows["c#1"].Conclusion != "failure" {
		t.Fatalf("after the failure: c#1 %s, c#3 %s, c#3/a %s", rows["c#1"].Conclusion, rows["c#3"].Conclusion, rows["c#3/a"].Conclusion)
	}
	if !rows["c#2/a"].CancelRequested {
		t.Fatal("the running job of another leg was not asked to stop")
	}
	ts.finishJob(second.JobID, "cancelled", nil)
	if r, _ := ts.RunByID(context.Background(), run.ID); r.Status != "completed" || r.Conclusion != "failure" {
		t.Fatalf("run %s/%s", r.Status, r.Conclusion)
	}
}
