//go:build docker

// Tests against a real docker engine: go test -tags docker ./...
// Without an engine they skip, unless CI=true, where they fail.

package main

import (
	"context"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const testImage = "shithub-test-busybox:latest"

// busyboxApplets are linked in the test image; the executor needs sh, tail,
// mktemp, cat and rm, the tests the rest.
var busyboxApplets = []string{"sh", "tail", "mktemp", "cat", "rm", "chown",
	"echo", "sleep", "pwd", "mkdir", "env", "false", "true", "ls", "printf", "seq",
	"find", "sha256sum", "httpd", "wget", "grep"}

// requireEngine skips the test without a docker engine, or fails it under CI.
func requireEngine(tb testing.TB) {
	tb.Helper()
	out, err := exec.Command("docker", "version").CombinedOutput()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("CI=true but the docker engine does not answer: %v\n%s", err, out)
	}
	tb.Skipf("no docker engine: %v", err)
}

// buildTestImage imports a one-binary image from the host's static busybox,
// so the tests need no registry. Importing again is harmless.
func buildTestImage(tb testing.TB) {
	tb.Helper()
	requireEngine(tb)
	const busybox = "/bin/busybox"
	f, err := elf.Open(busybox)
	if err != nil {
		tb.Fatalf("need a static busybox (Debian: busybox-static): %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			tb.Fatalf("%s is dynamically linked; install busybox-static", busybox)
		}
	}
	f.Close()

	root := tb.TempDir()
	for _, d := range []string{"bin", "tmp", "workspace"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	data, err := os.ReadFile(busybox)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		tb.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			tb.Fatal(err)
		}
	}
	tarCmd := exec.Command("tar", "-C", root, "-c", ".")
	importCmd := exec.Command("docker", "import", "--change", "ENV PATH=/bin", "-", testImage)
	pipe, err := tarCmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	importCmd.Stdin = pipe
	if err := tarCmd.Start(); err != nil {
		tb.Fatal(err)
	}
	if out, err := importCmd.CombinedOutput(); err != nil {
		tb.Fatalf("docker import: %v\n%s", err, out)
	}
	if err := tarCmd.Wait(); err != nil {
		tb.Fatalf("tar: %v", err)
	}
}

// newDockerExecutor is an executor on the real engine with its own instance.
func newDockerExecutor(tb testing.TB, src jobSource) *executor {
	tb.Helper()
	ex := newExecutor(executorConfig{
		Instance:     randomInstance("dockertest"),
		Images:       map[string]string{"busybox": testImage},
		Pull:         "never",
		Memory:       "256m",
		WorkDir:      tb.TempDir(),
		CancelPoll:   100 * time.Millisecond,
		PollInterval: time.Hour, // the tests wake the workers
	}, src, runnerTestLogger())
	tb.Cleanup(func() { ex.removeStale(context.Background()) })
	return ex
}

func dockerJob(id int64, scripts ...string) *claimedJob {
	job := testJob(id, scripts...)
	job.RunsOn = []string{"busybox"}
	return job
}

// containersOf lists the containers, running or not, of a job.
func containersOf(tb testing.TB, jobID int64) []string {
	tb.Helper()
	out, err := exec.Command("docker", "ps", "-a", "-q", "--filter", fmt.Sprintf("label=%s=%d", labelJob, jobID)).Output()
	if err != nil {
		tb.Fatalf("docker ps: %v", err)
	}
	return strings.Fields(string(out))
}

func TestDockerEngine(t *testing.T) {
	buildTestImage(t)

	t.Run("success", func(t *testing.T) {
		t.Parallel()
		job := dockerJob(9101,
			"echo hello\necho to-stderr >&2\npwd\ncat README\necho \"FOO=$FOO\"\nmkdir -p sub",
			"pwd\ncat\necho after-cat\necho \"PATH=$PATH\"")
		job.Env = map[string]string{"FOO": "bar baz\nsecond line"}
		job.Steps[3].WorkingDirectory = "sub"
		job.Steps[3].Env = map[string]string{"PATH": "/bin:/nowhere"}
		src := newFakeSource()
		ex := newDockerExecutor(t, src)
		ex.runJob(job)

		if got := src.jobConclusion(9101); got != "success" {
			t.Fatalf("job = %q, want success; Set up job log:\n%s", got, src.log(t, stepID(job, 0)))
		}
		want := "hello\nto-stderr\n/workspace\nalice/demo@0123456789abcdef0123456789abcdef01234567\nFOO=bar baz\nsecond line\n"
		if got := src.log(t, stepID(job, 2)); got != want {
			t.Errorf("step log:\n got %q\nwant %q", got, want)
		}
		// cat gets /dev/null, not the rest of the script.
		if got, want := src.log(t, stepID(job, 3)), "/workspace/sub\nafter-cat\nPATH=/bin:/nowhere\n"; got != want {
			t.Errorf("step log:\n got %q\nwant %q", got, want)
		}
		setup := src.log(t, stepID(job, 0))
		// busybox's sh answers `command -v sh` with "sh" (an applet), not a path.
		if !strings.Contains(setup, "Image: "+testImage) || !strings.Contains(setup, "sh -e {0}") {
			t.Errorf("Set up job log:\n%s", setup)
		}
		if c := containersOf(t, 9101); len(c) != 0 {
			t.Errorf("containers left: %v", c)
		}
	})

	t.Run("failing step", func(t *testing.T) {
		t.Parallel()
		job := dockerJob(9102, "echo one", "echo two\nfalse\necho not-reached", "echo never")
		src := newFakeSource()
		ex := newDockerExecutor(t, src)
		ex.runJob(job)

		if got := src.jobConclusion(9102); got != "failure" {
			t.Fatalf("job = %q, want failure", got)
		}
		want := [][]string{{"running", "success"}, {"running", "success"}, {"running", "success"}, {"running", "failure"}, {"skipped"}}
		for i, w := range want {
			if got := src.stepStatuses(stepID(job, i)); !slices.Equal(got, w) {
				t.Errorf("step %d statuses = %q, want %q", i, got, w)
			}
		}
		if got := src.log(t, stepID(job, 3)); got != "two\n##[error]Process completed with exit code 1.\n" {
			t.Errorf("failed step log = %q", got)
		}
	})

	t.Run("missing image", func(t *testing.T) {
		t.Parallel()
		job := dockerJob(9103, "echo never")
		job.Image = "shithub-test-no-such-image:latest"
		src := newFakeSource()
		ex := newDockerExecutor(t, src)
		ex.runJob(job)

		if got := src.jobConclusion(9103); got != "failure" {
			t.Fatalf("job = %q, want failure", got)
		}
		log := src.log(t, stepID(job, 0))
		first, _, _ := strings.Cut(log, "\n")
		if !strings.Contains(first, "shithub-test-no-such-image") || strings.HasPrefix(first, "Error: start") {
			t.Errorf("first line of the Set up job log is not docker's message:\n%s", log)
		}
		t.Logf("Set up job log:\n%s", log)
	})

	t.Run("cancel", func(t *testing.T) {
		t.Parallel()
		job := dockerJob(9104, "echo started\nsleep 600", "echo never")
		src := newFakeSource()
		ex := newDockerExecutor(t, src)
		latency := cancelOnce(t, ex, src, job)
		t.Logf("cancel: %v from cancel() to setJobStatus(cancelled)", latency)

		if got := src.jobConclusion(9104); got != "cancelled" {
			t.Fatalf("job = %q, want cancelled", got)
		}
		if got := src.stepStatuses(stepID(job, 2)); !slices.Equal(got, []string{"running", "cancelled"}) {
			t.Errorf("running step statuses = %q", got)
		}
		// Skipped, as on GitHub: its if (success()) is false after a cancel.
		if got := src.stepStatuses(stepID(job, 3)); !slices.Equal(got, []string{"skipped"}) {
			t.Errorf("next step statuses = %q", got)
		}
		if c := containersOf(t, 9104); len(c) != 0 {
			t.Errorf("containers left after cancel: %v", c)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		job := dockerJob(9105, "sleep 600", "echo never")
		src := newFakeSource()
		ex := newDockerExecutor(t, src)
		ex.jobTimeout = func(*claimedJob) time.Duration { return 3 * time.Second }
		ex.runJob(job)

		if got := src.jobConclusion(9105); got != "timed_out" {
			t.Fatalf("job = %q, want timed_out", got)
		}
		if got := src.stepStatuses(stepID(job, 3)); !slices.Equal(got, []string{"skipped"}) {
			t.Errorf("next step statuses = %q", got)
		}
		if c := containersOf(t, 9105); len(c) != 0 {
			t.Errorf("containers left after timeout: %v", c)
		}
	})

	t.Run("removeStale", func(t *testing.T) {
		t.Parallel()
		ex := newDockerExecutor(t, newFakeSource())
		out, err := exec.Command("docker", "run", "-d", "--label", labelInstance+"="+ex.cfg.Instance,
			"--label", labelJob+"=9106", "--entrypoint", "tail", testImage, "-f", "/dev/null").CombinedOutput()
		if err != nil {
			t.Fatalf("docker run: %v\n%s", err, out)
		}
		if err := ex.removeStale(context.Background()); err != nil {
			t.Fatal(err)
		}
		if c := containersOf(t, 9106); len(c) != 0 {
			t.Errorf("containers left after removeStale: %v", c)
		}
	})
}

// cancelOnce runs job, whose first run step prints "started" and then
// sleeps, cancels it once the output arrived, and returns the time from
// cancel() to setJobStatus.
func cancelOnce(tb testing.TB, ex *executor, src *fakeSource, job *claimedJob) time.Duration {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		ex.runJob(job)
	}()
	step := stepID(job, 2)
	for deadline := time.Now().Add(time.Minute); !strings.Contains(src.log(tb, step), "started"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatalf("the step never started; Set up job log:\n%s", src.log(tb, stepID(job, 0)))
		}
	}
	start := time.Now()
	ex.cancel(job.JobID)
	<-done
	src.mu.Lock()
	defer src.mu.Unlock()
	return src.jobAt[job.JobID].Sub(start)
}

// percentiles returns the p50 and p99 of ds (nearest rank).
func percentiles(ds []time.Duration) (p50, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p int) time.Duration { return s[max(0, (p*len(s)+99)/100-1)] }
	return rank(50), rank(99)
}

// TestDockerLatency measures, without asserting any bound, the time from
// cancel() to setJobStatus(cancelled) of a job sleeping in `sleep 600`, and
// from a wake() for a queued job to its first step's first log chunk.
func TestDockerLatency(t *testing.T) {
	buildTestImage(t)
	const n = 20
	src := newFakeSource()
	ex := newDockerExecutor(t, src)

	var cancels []time.Duration
	for i := range n {
		cancels = append(cancels, cancelOnce(t, ex, src, dockerJob(int64(9200+i), "echo started\nsleep 600")))
	}
	p50, p99 := percentiles(cancels)
	t.Logf("cancel latency over %d jobs: p50 %v, p99 %v (all: %v)", n, p50.Round(time.Millisecond), p99.Round(time.Millisecond), roundAll(cancels))

	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		ex.run(ctx)
		close(stopped)
	}()
	var firsts []time.Duration
	for i := range n {
		job := dockerJob(int64(9300+i), "echo first")
		src.add(job)
		start := time.Now()
		ex.wake()
		waitUntil(t, "the job", func() bool { return src.jobConclusion(job.JobID) != "" })
		src.mu.Lock()
		at, ok := src.logAt[stepID(job, 2)]
		src.mu.Unlock()
		if !ok {
			t.Fatalf("job %d: no log; Set up job log:\n%s", job.JobID, src.log(t, stepID(job, 0)))
		}
		firsts = append(firsts, at.Sub(start))
	}
	stop()
	ex.drain(time.Minute)
	<-stopped
	p50, p99 = percentiles(firsts)
	t.Logf("queue to first log line over %d jobs: p50 %v, p99 %v (all: %v)", n, p50.Round(time.Millisecond), p99.Round(time.Millisecond), roundAll(firsts))
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// BenchmarkCancelLatency times cancel() to setJobStatus(cancelled) of a job
// sleeping in `sleep 600`; ns/op is that time, set-up excluded.
func BenchmarkCancelLatency(b *testing.B) {
	buildTestImage(b)
	src := newFakeSource()
	ex := newDockerExecutor(b, src)
	var all []time.Duration
	b.ResetTimer()
	b.StopTimer()
	for i := range b.N {
		job := dockerJob(int64(9400+i), "echo started\nsleep 600")
		d := cancelOnce(b, ex, src, job)
		all = append(all, d)
	}
	var total time.Duration
	for _, d := range all {
		total += d
	}
	p50, p99 := percentiles(all)
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
}

// TestDockerRemoteRunner runs `shithub-actions runner` against an in-memory
// server: heartbeat, git checkout over smart HTTP, a real container, logs.
func TestDockerRemoteRunner(t *testing.T) {
	buildTestImage(t)
	repo, first := runnerGitRepo(t)
	job := dockerJob(9500, "cat README\necho \"on $RUNNER_OS\"")
	job.HeadSHA = first
	job.Env = map[string]string{"RUNNER_OS": "Linux"}
	s := newProtocolServer(t, "runner-token", job)
	s.repo = repo

	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr strings.Builder
	errc := make(chan error, 1)
	go func() {
		errc <- cmdRunner(ctx, []string{"--server", s.srv.URL, "--token", "runner-token", "--labels", "busybox",
			"--image", "busybox=" + testImage, "--pull", "never", "--memory", "256m", "--capacity", "1"}, &stdout, &stderr)
	}()
	waitUntil(t, "the job's status", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.jobs[9500] != ""
	})
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("cmdRunner = %v\n%s", err, stderr.String())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.jobs[9500]; got != "success" {
		t.Fatalf("job = %q, want success\n%s", got, stderr.String())
	}
	var log strings.Builder
	for _, c := range s.logs[stepID(job, 2)] {
		log.WriteString(c.data)
	}
	if got := log.String(); got != "first\non Linux\n" {
		t.Errorf("step log = %q", got)
	}
	if !strings.Contains(stdout.String(), "runner runner-") {
		t.Errorf("stdout = %q", stdout.String())
	}
	if c := containersOf(t, 9500); len(c) != 0 {
		t.Errorf("containers left: %v", c)
	}
}
