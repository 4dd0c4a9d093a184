//go:build docker

// Tests against a real docker engine: go test -tags docker ./...
// Without an engine they skip, unless CI=true, where they fail.

package executor

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
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/protocol"
)

// newDockerExecutor is an executor on the real engine with its own
// instance. Its WorkDir is the default, the shared temporary directory, as
// in production: nothing of a job may be reachable there.
func newDockerExecutor(tb testing.TB, src JobSource) *Executor {
	tb.Helper()
	ex := New(Config{
		Instance:     randomInstance("dockertest"),
		Images:       map[string]string{"busybox": dockertest.Image},
		Pull:         "never",
		Memory:       "256m",
		CancelPoll:   100 * time.Millisecond,
		PollInterval: time.Hour, // the tests wake the workers
	}, src, runnerTestLogger())
	tb.Cleanup(func() { ex.RemoveStale(context.Background()) })
	return ex
}

// leftovers lists what an instance left on the engine: its containers,
// networks and volumes, running or not.
func leftovers(tb testing.TB, instance string) []string {
	tb.Helper()
	filter := "label=" + LabelInstance + "=" + instance
	var left []string
	for _, ls := range [][]string{{"ps", "-a", "-q"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
		out, err := exec.Command("docker", append(ls, "--filter", filter)...).Output()
		if err != nil {
			tb.Fatalf("docker %s: %v", ls, err)
		}
		for _, id := range strings.Fields(string(out)) {
			left = append(left, ls[0]+" "+id)
		}
	}
	return left
}

func dockerJob(id int64, scripts ...string) *protocol.Job {
	job := testJob(id, scripts...)
	job.RunsOn = []string{"busybox"}
	return job
}

func TestDockerEngine(t *testing.T) {
	dockertest.BuildImage(t)

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
		if !strings.Contains(setup, "Image: "+dockertest.Image) || !strings.Contains(setup, "sh -e {0}") {
			t.Errorf("Set up job log:\n%s", setup)
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left on the engine: %v", l)
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
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left on the engine: %v", l)
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
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left on the engine: %v", l)
		}
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
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left on the engine after cancel: %v", l)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		job := dockerJob(9105, "sleep 600", "echo never")
		src := newFakeSource()
		ex := newDockerExecutor(t, src)
		ex.jobTimeout = func(*protocol.Job) time.Duration { return 3 * time.Second }
		ex.runJob(job)

		if got := src.jobConclusion(9105); got != "timed_out" {
			t.Fatalf("job = %q, want timed_out", got)
		}
		if got := src.stepStatuses(stepID(job, 3)); !slices.Equal(got, []string{"skipped"}) {
			t.Errorf("next step statuses = %q", got)
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left on the engine after timeout: %v", l)
		}
	})

	t.Run("removeStale", func(t *testing.T) {
		t.Parallel()
		ex := newDockerExecutor(t, newFakeSource())
		// What a process killed mid-job leaves: a network, a volume, a
		// container using both, and a staged checkout.
		label := LabelInstance + "=" + ex.cfg.Instance
		name := ex.namePrefix() + "9106"
		for _, args := range [][]string{
			{"network", "create", "--label", label, name},
			{"volume", "create", "--label", label, name},
			{"run", "-d", "--label", label, "--label", LabelJob + "=9106", "--network", name, "-v", name + ":/workspace",
				"--entrypoint", "tail", dockertest.Image, "-f", "/dev/null"},
		} {
			if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
				t.Fatalf("docker %s: %v\n%s", args, err, out)
			}
		}
		stage, err := os.MkdirTemp(ex.cfg.WorkDir, name+"-")
		if err != nil {
			t.Fatal(err)
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 3 {
			t.Fatalf("made %v, want a container, a network and a volume", l)
		}
		if err := ex.RemoveStale(context.Background()); err != nil {
			t.Fatal(err)
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left after removeStale: %v", l)
		}
		if _, err := os.Stat(stage); !os.IsNotExist(err) {
			t.Errorf("staged checkout %s left after removeStale: %v", stage, err)
		}
	})

	t.Run("pool", func(t *testing.T) {
		t.Parallel()
		// Pairs made ahead by a process that was then killed: the next
		// process with the instance removes them at its start.
		ex := newDockerExecutor(t, newFakeSource())
		for range 2 {
			if err := ex.pool.fill(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 4 {
			t.Fatalf("the pool made %v, want two networks and two volumes", l)
		}
		next := New(ex.cfg, newFakeSource(), runnerTestLogger())
		if err := next.RemoveStale(context.Background()); err != nil {
			t.Fatal(err)
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left after removeStale: %v", l)
		}

		// A pair the pool no longer knows of (its job could not remove
		// it) is swept; one it holds ready is not. A job on a pooled pair
		// leaves nothing.
		src := newFakeSource()
		ex = newDockerExecutor(t, src)
		for range 2 {
			if err := ex.pool.fill(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		orphan, _ := ex.pool.take(context.Background(), nil)
		ex.pool.forget(orphan.name)
		if n, err := ex.sweepOrphans(context.Background()); err != nil || n != 2 {
			t.Errorf("sweepOrphans = %d, %v; want the orphan's network and volume", n, err)
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 2 || slices.ContainsFunc(l, func(s string) bool { return strings.Contains(s, orphan.name) }) {
			t.Errorf("after the sweep: %v, want the ready pair only", l)
		}
		job := dockerJob(9107, "echo pooled")
		ex.runJob(job)
		if got := src.jobConclusion(9107); got != "success" {
			t.Fatalf("job conclusion = %q; set-up log %q", got, src.log(t, stepID(job, 0)))
		}
		if !strings.Contains(src.log(t, stepID(job, 0)), ex.namePrefix()+"pool-") {
			t.Errorf("the job did not run on the pooled pair: %q", src.log(t, stepID(job, 0)))
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left after a job on a pooled pair: %v", l)
		}

		// Containers started ahead: one the pool forgot, and one renamed
		// to a job that no worker runs (it ended while the engine was
		// away), are swept with their pairs.
		ex.pool.want = &warmKey{image: dockertest.Image, toolCache: ex.repoToolCache(job)}
		for range 2 {
			if err := ex.pool.fill(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		a, _ := ex.pool.take(context.Background(), ex.pool.want)
		b, _ := ex.pool.take(context.Background(), ex.pool.want)
		if a.warm == nil || b.warm == nil {
			t.Fatalf("no containers started ahead: %+v %+v", a, b)
		}
		if out, err := exec.Command("docker", "rename", b.name, ex.namePrefix()+"9108").CombinedOutput(); err != nil {
			t.Fatalf("docker rename: %v: %s", err, out)
		}
		ex.pool.forget(a.name)
		ex.pool.forget(b.name)
		if n, err := ex.sweepOrphans(context.Background()); err != nil || n != 6 {
			t.Errorf("sweepOrphans = %d, %v; want 2 containers, 2 networks, 2 volumes", n, err)
		}
		if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
			t.Errorf("left after the sweep: %v", l)
		}
		for _, w := range []*warmContainer{a.warm, b.warm} {
			os.RemoveAll(w.privDir) // its job's, had one taken it (not the sweep's)
		}
	})
}

// asLocalUser runs a command as a local user other than the server's:
// nobody when the tests run as root, else the tests' own (unprivileged)
// user, who is not root either.
func asLocalUser(args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		return exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", "--"}, args...)...)
	}
	return exec.Command(args[0], args[1:]...)
}

// TestDockerIsolation checks what a job cannot do to the host or to other
// jobs: a setuid shell it writes is nowhere another local user can reach,
// it runs with no new privileges and only jobCapabilities, and two jobs
// running at once cannot reach each other over the network.
func TestDockerIsolation(t *testing.T) {
	dockertest.BuildImage(t)
	mark := "suid-" + randomInstance("x")
	src := newFakeSource()
	ex := newDockerExecutor(t, src)

	// Job A: a setuid copy of sh in the workspace and in /tmp, a listener,
	// its address and its capabilities; then it waits to be cancelled.
	a := dockerJob(9601, fmt.Sprintf(`cp /bin/busybox /workspace/%[1]s && chmod 4755 /workspace/%[1]s
cp /bin/busybox /tmp/%[1]s && chmod 4755 /tmp/%[1]s
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status
(while true; do echo hello | nc -l -p 8080; done) >/dev/null 2>&1 &
echo "ip=$(hostname -i)"
sleep 600`, mark))
	aDone := make(chan struct{})
	go func() { defer close(aDone); ex.runJob(a) }()
	var ip string
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		log := src.log(t, stepID(a, 2))
		if _, rest, ok := strings.Cut(log, "ip="); ok && strings.Contains(rest, "\n") {
			ip, _, _ = strings.Cut(rest, "\n")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("job A never got going; Set up job log:\n%s\nstep log:\n%s", src.log(t, stepID(a, 0)), log)
		}
	}
	log := src.log(t, stepID(a, 2))
	if want := fmt.Sprintf("CapEff:\t%016x\nNoNewPrivs:\t1\n", capMask(t, jobCapabilities)); !strings.Contains(log, want) {
		t.Errorf("job A's capabilities:\n%s\nwant:\n%s", log, want)
	}

	// The setuid file exists: as root, in the job's volume...
	name := ex.namePrefix() + "9601"
	if mp, err := exec.Command("docker", "volume", "inspect", "-f", "{{.Mountpoint}}", name).Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(mp)), mark)
		if fi, err := os.Stat(p); os.Geteuid() == 0 && (err != nil || fi.Mode()&os.ModeSetuid == 0) {
			t.Errorf("root finds no setuid %s: %v %v", p, fi, err)
		}
	}
	// ...but no other local user can find it anywhere. A control file in
	// the shared temporary directory shows the search sees what it can.
	if id, err := asLocalUser("id", "-u").Output(); err != nil || os.Geteuid() == 0 && strings.TrimSpace(string(id)) != "65534" {
		t.Fatalf("cannot act as another local user: %q, %v", id, err)
	}
	control := filepath.Join(os.TempDir(), mark+"-control")
	if err := os.WriteFile(control, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(control)
	find := asLocalUser("find", "/", "(", "-path", "/proc", "-o", "-path", "/sys", "-o", "-path", "/dev", ")", "-prune",
		"-o", "-name", mark+"*", "-print")
	out, err := find.Output()
	if ee := (*exec.ExitError)(nil); err != nil && !errors.As(err, &ee) { // unreadable directories make find exit 1
		t.Fatalf("find: %v", err)
	}
	found := strings.Fields(string(out))
	if !slices.Contains(found, control) {
		t.Fatalf("the search as another user does not find %s: %q", control, found)
	}
	if found = slices.DeleteFunc(found, func(p string) bool { return p == control }); len(found) != 0 {
		t.Errorf("a local user reaches the job's setuid files:\n%s", strings.Join(found, "\n"))
	}

	// Job B, running at the same time, cannot reach job A; a container on
	// A's own network can (the listener is up).
	b := dockerJob(9602, fmt.Sprintf("if echo | timeout 5 nc %s 8080; then echo REACHED; else echo BLOCKED; fi", ip))
	ex.runJob(b)
	if got := src.log(t, stepID(b, 2)); !strings.Contains(got, "BLOCKED") {
		t.Errorf("job B reached job A at %s:8080: %q", ip, got)
	}
	nets, err := exec.Command("docker", "inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", name).Output()
	if err != nil {
		t.Fatal(err)
	}
	net, _, _ := strings.Cut(string(nets), " ")
	probe, err := exec.Command("docker", "run", "--rm", "--network", net, "--entrypoint", "sh", dockertest.Image, "-c",
		"echo | timeout 5 nc "+ip+" 8080").CombinedOutput()
	if err != nil || !strings.Contains(string(probe), "hello") {
		t.Errorf("a container on job A's network %s cannot reach it either (%v: %q): the check above proves nothing", net, err, probe)
	}

	ex.Cancel(a.JobID)
	<-aDone
	if got := src.jobConclusion(a.JobID); got != "cancelled" {
		t.Errorf("job A = %q, want cancelled", got)
	}
	if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
		t.Errorf("left on the engine: %v", l)
	}
}

// capMask is the capability bit mask of names, as /proc/PID/status shows it.
func capMask(t *testing.T, names []string) uint64 {
	bits := map[string]uint{"CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3, "FSETID": 4, "KILL": 5,
		"SETGID": 6, "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_RAW": 13, "SYS_CHROOT": 18, "MKNOD": 27,
		"AUDIT_WRITE": 29, "SETFCAP": 31}
	var m uint64
	for _, n := range names {
		b, ok := bits[n]
		if !ok {
			t.Fatalf("capMask: unknown capability %s", n)
		}
		m |= 1 << b
	}
	return m
}

// cancelOnce runs job, whose first run step prints "started" and then
// sleeps, cancels it once the output arrived, and returns the time from
// cancel() to setJobStatus.
func cancelOnce(tb testing.TB, ex *Executor, src *fakeSource, job *protocol.Job) time.Duration {
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
	ex.Cancel(job.JobID)
	<-done
	src.mu.Lock()
	defer src.mu.Unlock()
	return src.jobAt[job.JobID].Sub(start)
}

// TestDockerLatency measures, without asserting any bound, the time from
// cancel() to setJobStatus(cancelled) of a job sleeping in `sleep 600`, and
// from a wake() for a queued job to its first step's first log chunk.
func TestDockerLatency(t *testing.T) {
	dockertest.BuildImage(t)
	const n = 20
	src := newFakeSource()
	ex := newDockerExecutor(t, src)

	var cancels []time.Duration
	for i := range n {
		cancels = append(cancels, cancelOnce(t, ex, src, dockerJob(int64(9200+i), "echo started\nsleep 600")))
	}
	p50, p99 := dockertest.Percentiles(cancels)
	t.Logf("cancel latency over %d jobs: p50 %v, p99 %v (all: %v)", n, p50.Round(time.Millisecond), p99.Round(time.Millisecond), dockertest.RoundAll(cancels))

	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		ex.Run(ctx)
		close(stopped)
	}()
	var firsts []time.Duration
	for i := range n {
		job := dockerJob(int64(9300+i), "echo first")
		src.add(job)
		start := time.Now()
		ex.Wake()
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
	ex.Drain(time.Minute)
	<-stopped
	p50, p99 = dockertest.Percentiles(firsts)
	t.Logf("queue to first log line over %d jobs: p50 %v, p99 %v (all: %v)", n, p50.Round(time.Millisecond), p99.Round(time.Millisecond), dockertest.RoundAll(firsts))
}

// BenchmarkCancelLatency times cancel() to setJobStatus(cancelled) of a job
// sleeping in `sleep 600`; ns/op is that time, set-up excluded.
func BenchmarkCancelLatency(b *testing.B) {
	dockertest.BuildImage(b)
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
	p50, p99 := dockertest.Percentiles(all)
	b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
	b.ReportMetric(float64(p50.Milliseconds()), "p50-ms")
	b.ReportMetric(float64(p99.Milliseconds()), "p99-ms")
}
