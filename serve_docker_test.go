//go:build docker

// End-to-end tests of `serve` and `runner` as real processes on a real
// docker engine: go test -tags docker -run Docker ./...

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
)

// e2eWorkflow: a job that succeeds with known output, one that fails
// between two steps, one that sleeps until cancelled.
const e2eWorkflow = `name: E2E
on: push
env:
  GREETING: hello
jobs:
  ok:
    runs-on: busybox
    steps:
      - uses: actions/checkout@v4
      - run: |
          echo "$GREETING from $GITHUB_REPOSITORY at $GITHUB_SHA"
          cat README
        env:
          SECRET_VALUE: not-in-argv
      - run: echo "secret=$SECRET_VALUE"
        env:
          SECRET_VALUE: not-in-argv
  bad:
    runs-on: busybox
    steps:
      - run: echo before; false
      - run: echo never
  after-bad:
    needs: bad
    runs-on: busybox
    steps:
      - run: echo never
`

const e2eSleep = `name: Sleep
on: push
jobs:
  sleep:
    runs-on: busybox
    steps:
      - run: echo sleeping; sleep 600
`

// e2e is a database, a git repository and a serve process.
type e2e struct {
	t      *testing.T
	dir    string
	db     string
	git    string // bare repository alice/hello
	work   string // a clone to push from
	tok    string
	base   string
	serve  *exec.Cmd
	logf   *os.File
	exe    string
	nextID int

	// serveArgs are added to serve's command line; listenAll binds serve on
	// every address (jobs reach it at jobURL), not only loopback.
	serveArgs []string
	listenAll bool
	jobURL    string

	pooled map[int64][]string // job id → "network NAME", "volume NAME" of pooled pairs seen (resources)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// selfCmd runs the test binary as shithub-actions.
func (e *e2e) selfCmd(args ...string) *exec.Cmd {
	cmd := exec.Command(e.exe, append([]string{"--db", e.db}, args...)...)
	cmd.Env = append(os.Environ(), "SHITHUB_ACTIONS_TEST_MAIN=1")
	return cmd
}

func (e *e2e) cli(args ...string) string {
	e.t.Helper()
	out, err := e.selfCmd(args...).Output()
	if err != nil {
		e.t.Fatalf("shithub-actions %v: %v", args, err)
	}
	return string(out)
}

func newE2E(t *testing.T, workflows map[string]string) *e2e {
	t.Helper()
	return newE2EWith(t, workflows, nil)
}

// newE2EWith is newE2E with configure called on the harness before serve
// starts.
func newE2EWith(t *testing.T, workflows map[string]string, configure func(*e2e)) *e2e {
	t.Helper()
	dockertest.BuildImage(t)
	exe, _ := os.Executable()
	e := &e2e{t: t, dir: t.TempDir(), exe: exe}
	if configure != nil {
		configure(e)
	}
	e.db = filepath.Join(e.dir, "e2e.db")
	e.git = filepath.Join(e.dir, "hello.git")
	gitCmd(t, e.dir, "init", "-q", "--bare", "-b", "main", e.git)
	e.cli("user", "create", "alice")
	e.cli("repo", "create", "alice/hello", "--git", e.git)
	out := strings.TrimSpace(e.cli("token", "create", "alice", "--scopes", "repo:read,repo:write"))
	e.tok = out[strings.LastIndex(out, "\n")+1:]
	// The hook, with the test binary standing in for shithub-actions.
	hook := fmt.Sprintf("#!/bin/sh\nSHITHUB_ACTIONS_TEST_MAIN=1 exec %s --db %s hook post-receive --repo alice/hello\n", exe, e.db)
	if err := os.WriteFile(filepath.Join(e.git, "hooks", "post-receive"), []byte(hook), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{"README": "readme line\n"}
	for name, wf := range workflows {
		files[".shithub/workflows/"+name] = wf
	}
	e.work, _ = newGitRepo(t, files)
	e.start()
	t.Cleanup(func() {
		e.stop(syscall.SIGKILL)
		// Whatever a test left, by this server's label; twice, as a network
		// or volume the killed server's pool was making can appear after
		// the first pass (the engine finishes what it was asked).
		// A killed serve's docker CLI children (a pool pair being made, a
		// container being removed) outlive it, each in a process group of
		// its own; what they make would appear after the sweep below, so
		// wait until none is left.
		id := e.instance()
		if id != "" {
			waitDockerCalls(executorNamePrefix(id))
			for pass := range 2 {
				if pass > 0 {
					time.Sleep(2 * time.Second)
				}
				for _, kind := range [][]string{{"ps", "-a", "-q", "rm", "-f"}, {"network", "ls", "-q", "network", "rm"}, {"volume", "ls", "-q", "volume", "rm", "-f"}} {
					ls, rm := kind[:3:3], kind[3:] // a capacity of its own: appending to ls must not write over rm
					out, _ := exec.Command("docker", append(ls, "--filter", "label="+executor.LabelInstance+"="+id)...).Output()
					if ids := strings.Fields(string(out)); len(ids) > 0 {
						exec.Command("docker", append(rm, ids...)...).Run()
					}
				}
			}
		}
	})
	return e
}

func (e *e2e) start() {
	e.t.Helper()
	addr := freeAddr(e.t)
	e.base = "http://" + addr
	listen := addr
	if e.listenAll {
		_, port, _ := net.SplitHostPort(addr)
		listen = "0.0.0.0:" + port
		e.jobURL = "http://" + dockerBridgeIP(e.t) + ":" + port
	}
	var err error
	e.logf, err = os.OpenFile(filepath.Join(e.dir, "serve.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	args := []string{"serve", "--addr", listen, "--image", "busybox=" + dockertest.Image, "--pull", "never",
		"--memory", "256m", "--stop-grace", "10s", "--shutdown-grace", "2s"}
	if e.jobURL != "" {
		args = append(args, "--job-url", e.jobURL)
	}
	e.serve = e.selfCmd(append(args, e.serveArgs...)...)
	e.serve.Stdout, e.serve.Stderr = e.logf, e.logf
	if err := e.serve.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.waitUp()
}

// waitUp waits until serve answers.
func (e *e2e) waitUp() {
	e.t.Helper()
	for range 200 {
		if res, err := http.Get(e.base + "/alice/hello/actions.atom"); err == nil {
			res.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("serve did not come up; log:\n%s", e.log())
}

func (e *e2e) stop(sig syscall.Signal) {
	if e.serve == nil || e.serve.Process == nil {
		return
	}
	e.serve.Process.Signal(sig)
	e.serve.Wait()
	e.serve = nil
	e.logf.Close()
}

func (e *e2e) log() string {
	b, _ := os.ReadFile(filepath.Join(e.dir, "serve.log"))
	return string(b)
}

// executorNamePrefix is how the names of an instance's containers,
// networks and volumes begin.
func executorNamePrefix(instance string) string { return "shithub-actions-" + instance + "-" }

// waitDockerCalls waits, a minute at most, until no process on the host
// has prefix in its command line: the docker CLI calls a killed serve left
// running have ended.
func waitDockerCalls(prefix string) {
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		found := false
		cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, f := range cmdlines {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(prefix)) {
				found = true
				break
			}
		}
		if !found {
			return
		}
	}
}

func (e *e2e) instance() string {
	st, err := openStore(e.db, store.Options{})
	if err != nil {
		return ""
	}
	defer st.Close()
	id, _ := st.InstanceID(context.Background())
	return id
}

// api calls the API with alice's token and decodes the JSON answer.
func (e *e2e) api(method, path string, v any) int {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if v != nil {
		if s, ok := v.(*string); ok {
			*s = string(body)
		} else if err := json.Unmarshal(body, v); err != nil {
			e.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, body, err)
		}
	}
	return res.StatusCode
}

func (e *e2e) push() string {
	e.t.Helper()
	e.nextID++
	sha := commitFiles(e.t, e.work, map[string]string{"README": fmt.Sprintf("readme line %d\n", e.nextID)})
	gitCmd(e.t, e.work, "push", "-q", "-f", e.git, "HEAD:refs/heads/main")
	return sha
}

func (e *e2e) jobs(runIndex int) []jobJSON {
	e.t.Helper()
	var runs runsJSON
	e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
	for _, r := range runs.WorkflowRuns {
		if r.RunIndex == int64(runIndex) {
			var out struct{ Jobs []jobJSON }
			e.api("GET", fmt.Sprintf("/api/v1/repos/alice/hello/actions/runs/%d/jobs", r.ID), &out)
			return out.Jobs
		}
	}
	e.t.Fatalf("no run #%d", runIndex)
	return nil
}

// waitRun waits for run #idx to complete and returns it.
func (e *e2e) waitRun(idx int, within time.Duration) runJSON {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var runs runsJSON
		e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
		for _, r := range runs.WorkflowRuns {
			if r.RunIndex == int64(idx) && r.Status == protocol.StatusCompleted {
				return r
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.t.Fatalf("run #%d not completed within %v; serve log:\n%s", idx, within, e.log())
	return runJSON{}
}

// waitStep waits until a job's step is running.
func (e *e2e) waitStep(idx int, jobKey string, step int, within time.Duration) jobJSON {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, j := range e.jobs(idx) {
			if j.JobKey == jobKey && len(j.Steps) >= step && j.Steps[step-1].Status == "in_progress" {
				return j
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("run #%d job %s step %d not running within %v; serve log:\n%s", idx, jobKey, step, within, e.log())
	return jobJSON{}
}

// resources lists the containers, networks and volumes of a job. The
// network and volume go just after the job's status is reported, so a
// check that all are gone waits a little (noResources).
//
// A job's network and volume may have been made ahead of it by the pool,
// with no job's label: while its container exists they are found through
// it, and remembered, so that a later call still looks for them.
func (e *e2e) resources(jobID int64) []string {
	left := e.listed(jobID, []string{"ps", "-a", "-q"}, []string{"network", "ls", "-q"}, []string{"volume", "ls", "-q"})
	for _, c := range left {
		id, ok := strings.CutPrefix(c, "ps ")
		if !ok {
			continue
		}
		out, err := exec.Command("docker", "inspect", "-f",
			`{{range $k, $v := .NetworkSettings.Networks}}network={{$k}} {{end}}{{range .Mounts}}{{if eq .Destination "/workspace"}}volume={{.Name}}{{end}}{{end}}`, id).Output()
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(out)) {
			if kind, name, _ := strings.Cut(f, "="); strings.Contains(name, "-pool-") {
				if e.pooled == nil {
					e.pooled = map[int64][]string{}
				}
				if !slices.Contains(e.pooled[jobID], kind+" "+name) {
					e.pooled[jobID] = append(e.pooled[jobID], kind+" "+name)
				}
			}
		}
	}
	for _, r := range e.pooled[jobID] {
		kind, name, _ := strings.Cut(r, " ")
		if exec.Command("docker", kind, "inspect", name).Run() == nil {
			left = append(left, r)
		}
	}
	return left
}

// noResources waits up to 10 s for a job's resources to be gone and
// returns what is left.
func (e *e2e) noResources(jobID int64) []string {
	e.t.Helper()
	var left []string
	for range 100 {
		if left = e.resources(jobID); len(left) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return left
}

// jobContainers lists a job's containers, running or not.
func (e *e2e) jobContainers(jobID int64) []string {
	return e.listed(jobID, []string{"ps", "-a", "-q"})
}

func (e *e2e) listed(jobID int64, lists ...[]string) []string {
	e.t.Helper()
	var left []string
	for _, ls := range lists {
		out, err := exec.Command("docker", append(ls, "--filter", "label="+executor.LabelInstance+"="+e.instance(),
			"--filter", fmt.Sprintf("label=%s=%d", executor.LabelJob, jobID))...).Output()
		if err != nil {
			e.t.Fatal(err)
		}
		for _, id := range strings.Fields(string(out)) {
			left = append(left, ls[0]+" "+id)
		}
	}
	return left
}

func (e *e2e) jobLog(jobID int64) string {
	e.t.Helper()
	var s string
	e.api("GET", fmt.Sprintf("/api/v1/repos/alice/hello/actions/jobs/%d/logs", jobID), &s)
	return s
}

// TestDockerServe pushes a real commit into a repository whose hook starts
// runs on a real serve process, and checks what the jobs did.
func TestDockerServe(t *testing.T) {
	e := newE2E(t, map[string]string{"e2e.yml": e2eWorkflow})
	sha := e.push()
	run := e.waitRun(1, 60*time.Second)
	if str(run.Conclusion) != protocol.ConclusionFailure || run.HeadSHA != sha {
		t.Errorf("run = %s at %s, want failure (one job fails) at %s", str(run.Conclusion), run.HeadSHA, sha)
	}
	byKey := map[string]jobJSON{}
	for _, j := range e.jobs(1) {
		byKey[j.JobKey] = j
	}
	ok, bad, after := byKey["ok"], byKey["bad"], byKey["after-bad"]
	if str(ok.Conclusion) != protocol.ConclusionSuccess || str(bad.Conclusion) != protocol.ConclusionFailure || str(after.Conclusion) != protocol.ConclusionSkipped {
		t.Errorf("jobs = ok %s, bad %s, after-bad %s; want success, failure, skipped", str(ok.Conclusion), str(bad.Conclusion), str(after.Conclusion))
	}
	log := e.jobLog(ok.ID)
	for _, want := range []string{"hello from alice/hello at " + sha, "readme line 1", "secret=not-in-argv", "##[group]Run actions/checkout@v4"} {
		if !strings.Contains(log, want) {
			t.Errorf("ok job's log lacks %q:\n%s", want, log)
		}
	}
	if steps := bad.Steps; len(steps) != 3 || str(steps[1].Conclusion) != protocol.ConclusionFailure || str(steps[2].Conclusion) != protocol.ConclusionSkipped {
		t.Errorf("bad job's steps = %+v, want setup, failure, skipped", steps)
	}
	if log := e.jobLog(bad.ID); !strings.Contains(log, "\nbefore\n") || strings.Contains(log, "\nnever\n") {
		t.Errorf("bad job's log = %q, want 'before' and not 'never'", log)
	}
	for _, j := range []jobJSON{ok, bad} {
		if c := e.noResources(j.ID); len(c) != 0 {
			t.Errorf("job %s left containers %v", j.JobKey, c)
		}
	}
}

// measureCancels pushes n commits whose Sleep workflow runs `sleep 600`,
// cancels each running job through the API, and returns the times from
// the 202 to the job completed as cancelled with its container gone (its
// network and volume go just after; that they go is checked, not timed).
func (e *e2e) measureCancels(n int, sleepRun func(push int) int) []time.Duration {
	e.t.Helper()
	var lat []time.Duration
	for i := 1; i <= n; i++ {
		e.push()
		idx := sleepRun(i)
		j := e.waitStep(idx, "sleep", 2, 60*time.Second)
		var res cancelResponse
		if code := e.api("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", j.ID), &res); code != http.StatusAccepted || res.ChangedJobs != 1 {
			e.t.Fatalf("cancel: %d %+v, want 202 changed_jobs 1", code, res)
		}
		start := time.Now()
		for {
			jobs := e.jobs(idx)
			if jobs[0].Status == protocol.StatusCompleted && len(e.jobContainers(j.ID)) == 0 {
				lat = append(lat, time.Since(start))
				if str(jobs[0].Conclusion) != protocol.ConclusionCancelled || str(jobs[0].Steps[1].Conclusion) != protocol.ConclusionCancelled {
					e.t.Errorf("cancelled job = %s, step %s; want cancelled, cancelled", str(jobs[0].Conclusion), str(jobs[0].Steps[1].Conclusion))
				}
				if c := e.noResources(j.ID); len(c) != 0 {
					e.t.Errorf("cancelled job left %v", c)
				}
				break
			}
			if time.Since(start) > 30*time.Second {
				e.t.Fatalf("job %d not cancelled within 30 s; log:\n%s", j.ID, e.log())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if r := e.waitRun(idx, 5*time.Second); str(r.Conclusion) != protocol.ConclusionCancelled {
			e.t.Errorf("run #%d = %s, want cancelled", idx, str(r.Conclusion))
		}
	}
	return lat
}

// TestDockerServeCancel cancels a running `sleep 600` through the API 20
// times; the latency is measured and logged, not asserted.
func TestDockerServeCancel(t *testing.T) {
	e := newE2E(t, map[string]string{"sleep.yml": e2eSleep})
	lat := e.measureCancels(20, func(i int) int { return i })
	p50, p99 := dockertest.Percentiles(lat)
	t.Logf("cancel through serve, 202 to completed/cancelled with the container gone, %d cancels: p50 %v, p99 %v (all: %v)",
		len(lat), p50.Round(time.Millisecond), p99.Round(time.Millisecond), dockertest.RoundAll(lat))
}

// TestDockerServeRestart kills serve with SIGKILL while a job runs and
// starts it again: the job fails as interrupted, its run completes, its
// container is gone.
func TestDockerServeRestart(t *testing.T) {
	e := newE2E(t, map[string]string{"sleep.yml": e2eSleep})
	e.push()
	j := e.waitStep(1, "sleep", 2, 60*time.Second)
	if c := e.resources(j.ID); len(c) != 3 {
		t.Fatalf("running job has %v, want a container, a network and a volume", c)
	}
	e.stop(syscall.SIGKILL)
	e.start()
	run := e.waitRun(1, 10*time.Second)
	if str(run.Conclusion) != protocol.ConclusionFailure {
		t.Errorf("run after restart = %s, want failure", str(run.Conclusion))
	}
	if log := e.jobLog(j.ID); !strings.Contains(log, "interrupted: the server restarted") {
		t.Errorf("log after restart lacks the reason:\n%s", log)
	}
	if c := e.noResources(j.ID); len(c) != 0 {
		t.Errorf("the killed server's container %v is still there", c)
	}
	// SIGTERM with a job running: it is cancelled after the grace, and
	// the container goes.
	e.push()
	j = e.waitStep(2, "sleep", 2, 60*time.Second)
	e.stop(syscall.SIGTERM)
	e.start()
	if run := e.waitRun(2, 10*time.Second); str(run.Conclusion) != protocol.ConclusionCancelled {
		t.Errorf("run after SIGTERM = %s, want cancelled", str(run.Conclusion))
	}
	if c := e.noResources(j.ID); len(c) != 0 {
		t.Errorf("SIGTERM left container %v", c)
	}
}

// TestDockerServeRemoteRunner runs jobs on a remote runner process (serve
// runs none itself) and cancels through it; the latency is logged.
func TestDockerServeRemoteRunner(t *testing.T) {
	e := newE2E(t, map[string]string{"sleep.yml": e2eSleep, "e2e.yml": e2eWorkflow})
	// Serve without a pool; the runner does the work.
	e.stop(syscall.SIGTERM)
	addr := freeAddr(t)
	e.base = "http://" + addr
	logf, _ := os.Create(filepath.Join(e.dir, "serve.log"))
	e.logf = logf
	e.serve = e.selfCmd("serve", "--addr", addr, "--runners", "0")
	e.serve.Stdout, e.serve.Stderr = logf, logf
	if err := e.serve.Start(); err != nil {
		t.Fatal(err)
	}
	e.waitUp()
	out := strings.TrimSpace(e.cli("runner", "register", "box", "--labels", "busybox"))
	rtok := out[strings.LastIndex(out, "\n")+1:]
	runner := exec.Command(e.exe, "runner", "--server", e.base, "--labels", "busybox", "--capacity", "2",
		"--image", "busybox="+dockertest.Image, "--pull", "never", "--memory", "256m")
	runner.Env = append(os.Environ(), "SHITHUB_ACTIONS_TEST_MAIN=1", "SHITHUB_RUNNER_TOKEN="+rtok)
	rlog, _ := os.Create(filepath.Join(e.dir, "runner.log"))
	runner.Stdout, runner.Stderr = rlog, rlog
	if err := runner.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		runner.Process.Signal(syscall.SIGTERM)
		runner.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(rlog.Name())
			t.Logf("runner log:\n%s", b)
		}
	}()
	// Each push makes an E2E and a Sleep run; find the Sleep one's index.
	sleepRun := func(push int) int {
		for range 100 {
			var runs runsJSON
			e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
			for _, r := range runs.WorkflowRuns {
				if r.WorkflowName == "Sleep" && r.RunIndex > int64(2*(push-1)) {
					return int(r.RunIndex)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("push %d made no Sleep run", push)
		return 0
	}
	lat := e.measureCancels(10, sleepRun)
	p50, p99 := dockertest.Percentiles(lat)
	t.Logf("cancel through a remote runner, 202 to completed/cancelled with the container gone, %d cancels: p50 %v, p99 %v (all: %v)",
		len(lat), p50.Round(time.Millisecond), p99.Round(time.Millisecond), dockertest.RoundAll(lat))
	// The E2E run of the last push ran on the runner too.
	var runs runsJSON
	e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=1&workflow_file=e2e.yml", &runs)
	other := int(runs.WorkflowRuns[0].RunIndex)
	if r := e.waitRun(other, 60*time.Second); str(r.Conclusion) != protocol.ConclusionFailure {
		t.Errorf("E2E run on the remote runner = %s, want failure (its bad job fails)", str(r.Conclusion))
	}
	for _, jb := range e.jobs(other) {
		if jb.JobKey == "ok" {
			if log := e.jobLog(jb.ID); !strings.Contains(log, "readme line 10") {
				t.Errorf("remote job's log lacks the checkout's README:\n%s", log)
			}
		}
	}
}

// dockerBridgeIP is the host's address on the docker0 bridge: job
// containers, on networks of their own, reach the host there.
func dockerBridgeIP(t *testing.T) string {
	t.Helper()
	iface, err := net.InterfaceByName("docker0")
	if err != nil {
		t.Fatalf("no docker0 bridge on this host, so job containers cannot reach serve: %v", err)
	}
	addrs, _ := iface.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("docker0 has no IPv4 address (%v)", addrs)
	return ""
}
