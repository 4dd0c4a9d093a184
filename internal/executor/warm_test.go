package executor

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/workflow"
)

// warmTest is an executor whose pool runs on the fake engine, with the
// job's image there (so containers can be started ahead) and a resolve
// list (so they have a .curlrc directory).
type warmTest struct {
	ex    *Executor
	fe    fakeEngine
	src   *fakeSource
	image string
	stop  func() // stops the pool and waits for it to have removed what no job took
}

func newWarmTest(t *testing.T) *warmTest {
	t.Helper()
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	ex.cfg.JobURL = "http://shithub.localhost:8080"
	ex.cfg.AddHosts = []string{"shithub.localhost:172.17.0.1"}
	w := &warmTest{ex: ex, fe: fe, src: src, image: ex.cfg.Images["ubuntu-latest"]}
	w.setImage(t, w.image, "sha256:1111")
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ex.pool.run(ctx)
	}()
	w.stop = func() {
		cancel()
		<-stopped
	}
	t.Cleanup(w.stop)
	return w
}

// setImage makes image mean id, for the engine's image inspect and for
// the containers it starts from then on.
func (w *warmTest) setImage(t *testing.T, image, id string) {
	w.fe.set(t, "image-"+fakeImageFile(image), id)
	w.fe.set(t, "image-id", id)
}

func (w *warmTest) ready() []pooledPair {
	w.ex.pool.mu.Lock()
	defer w.ex.pool.mu.Unlock()
	return slices.Clone(w.ex.pool.ready)
}

// waitWarm waits for an entry warm for image, and returns it.
func (w *warmTest) waitWarm(t *testing.T, image string) pooledPair {
	t.Helper()
	var got pooledPair
	waitUntil(t, "a container started ahead for "+image, func() bool {
		for _, p := range w.ready() {
			if p.warm != nil && p.warm.key.image == image {
				got = p
				return true
			}
		}
		return false
	})
	return got
}

func (w *warmTest) called(t *testing.T, args ...string) bool {
	return slices.ContainsFunc(w.fe.calls(t), func(c dockerCall) bool { return slices.Equal(c.Args, args) })
}

// madeOwn reports whether the job made its own container.
func (w *warmTest) madeOwn(t *testing.T, id int64) bool {
	name := w.ex.namePrefix() + itoa(id)
	return slices.ContainsFunc(w.fe.commands(t, "create"), func(c dockerCall) bool {
		i := slices.Index(c.Args, "--name")
		return i > 0 && c.Args[i+1] == name
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestWarmContainer: once a job has shown which image and tool cache it
// runs with, the pool starts the next job's container ahead, from the same
// command line a job makes (but for names and labels); the next such job
// takes it, renames it to its own name, copies its checkout in and runs
// its steps in it with no docker run and no shell lookup of its own, and
// removes it with its network, volume and .curlrc directory at its end.
func TestWarmContainer(t *testing.T) {
	t.Parallel()
	w := newWarmTest(t)
	ex, fe, src := w.ex, w.fe, w.src

	// Nothing is ready for the first job: it makes its own container.
	job := testJob(80, "echo hi")
	ex.runJob(job)
	if got := src.jobConclusion(80); got != "success" {
		t.Fatalf("first job: conclusion %q", got)
	}
	cold := jobCreate(t, fe, 80)
	entry := w.waitWarm(t, w.image)
	if !strings.HasPrefix(entry.name, ex.namePrefix()+"pool-") || entry.warm.imageID != "sha256:1111" || entry.warm.shell != "/usr/bin/bash" {
		t.Fatalf("warm entry = %+v, %+v", entry, entry.warm)
	}
	if fi, err := os.Stat(filepath.Join(entry.warm.privDir, "net", ".curlrc")); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("the warm container's .curlrc: %v", err)
	}
	// Its command line is the job's but for its name, labels, network,
	// volume and .curlrc directory.
	var warmRun []string
	for _, c := range fe.commands(t, "create") {
		if i := slices.Index(c.Args, "--name"); i > 0 && c.Args[i+1] == entry.name {
			warmRun = c.Args
		}
	}
	norm := func(args []string, name, priv string) []string {
		var out []string
		for i := 0; i < len(args); i++ {
			if args[i] == "--label" {
				i++
				continue
			}
			a := strings.ReplaceAll(args[i], priv, "PRIV")
			a = strings.ReplaceAll(a, name, "NAME")
			out = append(out, a)
		}
		return out
	}
	coldPriv := ""
	for _, a := range cold {
		if strings.HasSuffix(a, "/net:"+containerNet+":ro") {
			coldPriv = strings.TrimSuffix(a, "/net:"+containerNet+":ro")
		}
	}
	if coldPriv == "" {
		t.Fatalf("the job's container has no .curlrc mount: %q", cold)
	}
	if got, want := norm(warmRun, entry.name, entry.warm.privDir), norm(cold, ex.namePrefix()+"80", coldPriv); !slices.Equal(got, want) {
		t.Fatalf("warm container's command line\n%q\nwant the job's\n%q", got, want)
	}
	if !slices.Contains(warmRun, LabelPool+"=1") || slices.ContainsFunc(warmRun, func(a string) bool { return strings.HasPrefix(a, LabelJob+"=") }) {
		t.Errorf("warm container labels: %q", warmRun)
	}
	shellLookups := func() []string {
		var on []string
		for _, c := range fe.commands(t, "exec") {
			if slices.Contains(c.Args, "command -v bash || command -v sh") {
				on = append(on, c.Args[1])
			}
		}
		return on
	}
	lookupsBefore := len(shellLookups())

	// The second job takes it.
	job = testJob(81, "echo hi")
	ex.runJob(job)
	if got := src.jobConclusion(81); got != "success" {
		t.Fatalf("warm job: conclusion %q", got)
	}
	name := ex.namePrefix() + "81"
	if w.madeOwn(t, 81) {
		t.Error("the job made its own container beside the warm one")
	}
	if !w.called(t, "rename", entry.name, name) {
		t.Error("the warm container was not renamed to the job's name")
	}
	if n := len(shellLookups()); n != lookupsBefore {
		t.Errorf("the job looked its shell up again (%d lookups, %d before)", n, lookupsBefore)
	}
	if _, err := os.Stat(filepath.Join(fe.dir, "cp-"+name)); err != nil {
		t.Errorf("the checkout was not copied into the job's container: %v", err)
	}
	if got := src.log(t, stepID(job, 2)); !strings.Contains(got, "hi") {
		t.Errorf("step log = %q", got)
	}
	if got := src.log(t, stepID(job, 0)); !strings.Contains(got, "Container: "+name+" (c0ffeec0ffee), started ahead") {
		t.Errorf("Set up job log = %q", got)
	}
	for _, args := range [][]string{{"rm", "-f", "-v", name}, {"network", "rm", entry.name}, {"volume", "rm", "-f", entry.name}} {
		if !w.called(t, args...) {
			t.Errorf("not removed at the job's end: %q", args)
		}
	}
	if _, err := os.Stat(entry.warm.privDir); !os.IsNotExist(err) {
		t.Errorf("the warm container's .curlrc directory outlived the job: %v", err)
	}
	if ex.pool.isKnown(entry.name) {
		t.Error("the pool still knows the entry the job removed")
	}
	// The job's steps ran in its own (renamed) container only.
	for _, c := range fe.commands(t, "exec") {
		if c.Args[len(c.Args)-1] != "command -v bash || command -v sh" && slices.Contains(c.Args, entry.name) {
			t.Errorf("a step ran by the pool's name: %q", c.Args)
		}
	}

	// A new entry is made for the next job, never the same one.
	next := w.waitWarm(t, w.image)
	if next.name == entry.name {
		t.Fatal("the pool handed out an entry twice")
	}
}

// TestWarmContainerRefused: a container started ahead serves only a job it
// matches, and only while it still is what it was; otherwise the job makes
// its own, and the pool's container is removed (or left for its own kind
// of job).
func TestWarmContainerRefused(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// before the job runs; returns whether the warm container is
		// removed by the job (else it stays in the pool)
		prepare func(t *testing.T, w *warmTest, entry pooledPair) bool
		job     func(id int64) *protocol.Job
	}{
		{"image moved", func(t *testing.T, w *warmTest, e pooledPair) bool {
			w.fe.set(t, "image-"+fakeImageFile(w.image), "sha256:2222")
			return true
		}, nil},
		{"stopped", func(t *testing.T, w *warmTest, e pooledPair) bool {
			w.fe.set(t, "stopped-"+e.warm.id, "")
			return true
		}, nil},
		{"rename refused", func(t *testing.T, w *warmTest, e pooledPair) bool {
			w.fe.set(t, "rename-fail", "")
			return true
		}, nil},
		{"pull request", func(t *testing.T, w *warmTest, e pooledPair) bool {
			os.MkdirAll(filepath.Join(w.fe.dir, "fs", "from"), 0o755) // the repository's tool cache, which it gets a copy of
			return false
		},
			func(id int64) *protocol.Job { j := testJob(id, "echo hi"); j.Untrusted = true; return j }},
		{"container options", func(t *testing.T, w *warmTest, e pooledPair) bool { return false },
			func(id int64) *protocol.Job {
				j := testJob(id, "echo hi")
				j.Container = &workflow.ContainerSpec{Options: "--hostname x"}
				return j
			}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWarmTest(t)
			ex := w.ex
			ex.runJob(testJob(90, "echo hi")) // shows the pool what to start
			entry := w.waitWarm(t, w.image)
			removed := c.prepare(t, w, entry)
			id := int64(91 + i)
			job := testJob(id, "echo hi")
			if c.job != nil {
				job = c.job(id)
			}
			ex.runJob(job)
			if got := w.src.jobConclusion(id); got != "success" {
				t.Fatalf("conclusion %q; Set up job log:\n%s", got, w.src.log(t, stepID(job, 0)))
			}
			if !w.madeOwn(t, id) {
				t.Fatal("the job did not make its own container")
			}
			name := ex.namePrefix() + itoa(id)
			if removed {
				if !w.called(t, "rm", "-f", entry.name, name) {
					t.Error("the warm container was not removed")
				}
				if _, err := os.Stat(entry.warm.privDir); !os.IsNotExist(err) {
					t.Errorf("its .curlrc directory is left: %v", err)
				}
				// The job made its container on the pair it took.
				args := jobCreate(t, w.fe, id)
				if net := args[slices.Index(args, "--network")+1]; net != entry.name {
					t.Errorf("the job's network = %s, want the pair it took, %s", net, entry.name)
				}
			} else if w.called(t, "rename", entry.name, name) || w.called(t, "rm", "-f", entry.name) {
				t.Error("a job that may not take the warm container touched it")
			} else if r := w.ready(); len(r) != 1 || r[0].name != entry.name {
				t.Errorf("the warm container left the pool: %+v", r)
			}
		})
	}
}

// TestWarmContainerNewKey: a job of another image makes its own container;
// the pool then removes the one it had started for the old image and
// starts one for the new.
func TestWarmContainerNewKey(t *testing.T) {
	t.Parallel()
	w := newWarmTest(t)
	ex := w.ex
	ex.runJob(testJob(100, "echo hi"))
	old := w.waitWarm(t, w.image)

	job := testJob(101, "echo hi")
	job.Container = &workflow.ContainerSpec{Image: "node:20"}
	w.setImage(t, "node:20", "sha256:3333")
	ex.runJob(job)
	if got := w.src.jobConclusion(101); got != "success" || !w.madeOwn(t, 101) {
		t.Fatalf("conclusion %q, made its own container: %v", got, w.madeOwn(t, 101))
	}
	entry := w.waitWarm(t, "node:20")
	if r := w.ready(); len(r) != 1 {
		t.Fatalf("ready = %+v, want the new entry only", r)
	}
	waitUntil(t, "the old entry removed", func() bool {
		return w.called(t, "rm", "-f", old.name) && w.called(t, "network", "rm", old.name) && w.called(t, "volume", "rm", "-f", old.name)
	})
	if ex.pool.isKnown(old.name) {
		t.Error("the pool still knows the old entry")
	}
	job = testJob(102, "echo hi")
	job.Container = &workflow.ContainerSpec{Image: "node:20"}
	ex.runJob(job)
	if w.madeOwn(t, 102) || !w.called(t, "rename", entry.name, ex.namePrefix()+"102") {
		t.Error("the next node:20 job did not take the container started for it")
	}
}

// TestWarmContainerCancel: a job in a container started ahead is cancelled
// as any other: its container is stopped by the job's name at once.
func TestWarmContainerCancel(t *testing.T) {
	t.Parallel()
	w := newWarmTest(t)
	ex := w.ex
	ex.runJob(testJob(110, "echo hi"))
	w.waitWarm(t, w.image)
	job := testJob(111, "echo started\nwait-stop", "echo never")
	done := startJob(ex, job)
	waitUntil(t, "the step's output", func() bool { return strings.Contains(w.src.log(t, stepID(job, 2)), "started") })
	start := time.Now()
	ex.Cancel(111)
	<-done
	t.Logf("%v from the cancel to the job's end", time.Since(start))
	if got := w.src.jobConclusion(111); got != "cancelled" {
		t.Fatalf("conclusion %q", got)
	}
	if w.madeOwn(t, 111) {
		t.Fatal("the job made its own container")
	}
	name := ex.namePrefix() + "111"
	stops := slices.ContainsFunc(w.fe.commands(t, "stop"), func(c dockerCall) bool { return c.Args[len(c.Args)-1] == name })
	if !stops {
		t.Error("the cancel did not stop the job's container by the job's name")
	}
}

// TestWarmContainerDrain: stopping the pool removes the containers it
// started ahead, with their pair and .curlrc directory.
func TestWarmContainerDrain(t *testing.T) {
	t.Parallel()
	w := newWarmTest(t)
	ex := w.ex
	ex.runJob(testJob(120, "echo hi"))
	entry := w.waitWarm(t, w.image)
	w.stop()
	for _, args := range [][]string{{"rm", "-f", entry.name}, {"network", "rm", entry.name}, {"volume", "rm", "-f", entry.name}} {
		if !w.called(t, args...) {
			t.Errorf("left after the pool stopped: %q", args)
		}
	}
	if _, err := os.Stat(entry.warm.privDir); !os.IsNotExist(err) {
		t.Errorf("the .curlrc directory is left: %v", err)
	}
	if ex.pool.isKnown(entry.name) {
		t.Error("the stopped pool still knows its entry")
	}
}

// TestWarmContainerWait: a job that comes while the pool is starting a
// container for it waits for that container rather than starting its own
// beside it; a second job does not wait for the same one; a job cancelled
// while it waits ends at once, and the container stays for the next job.
func TestWarmContainerWait(t *testing.T) {
	t.Parallel()
	w := newWarmTest(t)
	ex, fe, src := w.ex, w.fe, w.src
	ex.pool.waitMax = time.Hour // the wait ends when the container is ready, not by this bound
	fe.set(t, "warm-run-wait", "")
	ex.runJob(testJob(130, "echo hi")) // the pool now starts one, and is held
	filling := func() bool {
		ex.pool.mu.Lock()
		defer ex.pool.mu.Unlock()
		return ex.pool.filling != nil
	}
	waitUntil(t, "the pool starting a container", filling)

	// A job cancelled while it waits.
	job := testJob(131, "echo hi")
	done := startJob(ex, job)
	waitUntil(t, "the job waiting", func() bool {
		ex.pool.mu.Lock()
		defer ex.pool.mu.Unlock()
		return ex.pool.waiting == 1
	})
	ex.Cancel(131)
	<-done
	if got := src.jobConclusion(131); got != "cancelled" {
		t.Fatalf("the job cancelled while it waited: %q", got)
	}

	// Two jobs at once: one waits and takes the container; the other
	// starts its own at once.
	a, b := testJob(132, "echo hi"), testJob(133, "echo hi")
	doneA := startJob(ex, a)
	waitUntil(t, "a job waiting", func() bool {
		ex.pool.mu.Lock()
		defer ex.pool.mu.Unlock()
		return ex.pool.waiting == 1
	})
	ex.runJob(b)
	if got := src.jobConclusion(133); got != "success" || !w.madeOwn(t, 133) {
		t.Fatalf("the second job: %q, made its own container: %v", got, w.madeOwn(t, 133))
	}
	select {
	case <-doneA:
		t.Fatal("the waiting job did not wait")
	default:
	}
	fe.set(t, "warm-run-go", "")
	<-doneA
	if got := src.jobConclusion(132); got != "success" || w.madeOwn(t, 132) {
		t.Fatalf("the waiting job: %q, made its own container: %v", got, w.madeOwn(t, 132))
	}
	if !strings.Contains(src.log(t, stepID(a, 0)), "started ahead") {
		t.Errorf("the waiting job's Set up job log:\n%s", src.log(t, stepID(a, 0)))
	}
}
