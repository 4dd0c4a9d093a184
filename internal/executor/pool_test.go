package executor

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestResourcePool: the pool makes pairs ahead, labelled with the instance
// and as pooled; a job takes one and removes it at its end; no pair serves
// two jobs; stopping the pool removes the pairs no job took. (The fake
// engine names no image here, so no container can be started ahead:
// TestWarmContainer has those.)
func TestResourcePool(t *testing.T) {
	t.Parallel()
	src := newFakeSource()
	ex, fe := newTestExecutor(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ex.pool.run(ctx)
	}()
	ready := func() int {
		ex.pool.mu.Lock()
		defer ex.pool.mu.Unlock()
		return len(ex.pool.ready)
	}
	ex.pool.size = 2
	if _, ok := ex.pool.take(context.Background(), nil); ok {
		t.Fatal("a pair before any was asked for")
	}
	ex.pool.refill() // as the first job's set-up ends
	waitUntil(t, "two ready pairs", func() bool { return ready() == 2 })
	for _, c := range fe.commands(t, "network") {
		if c.Args[1] == "create" && (!slices.Contains(c.Args, LabelInstance+"=test") || !slices.Contains(c.Args, LabelPool+"=1")) {
			t.Errorf("pooled network not labelled as this instance's and pooled: %q", c.Args)
		}
	}

	var used []string
	for k := range 3 {
		job := testJob(int64(70+k), "echo hi")
		ex.runJob(job)
		if got := src.jobConclusion(job.JobID); got != "success" {
			t.Fatalf("job %d conclusion = %q", k, got)
		}
		args := jobCreate(t, fe, job.JobID)
		res := args[slices.Index(args, "--network")+1]
		if !strings.HasPrefix(res, ex.namePrefix()+"pool-") || !slices.Contains(args, res+":/workspace") {
			t.Fatalf("job %d: network %q, args %q: want a pooled pair for network and volume", k, res, args)
		}
		if slices.Contains(used, res) {
			t.Fatalf("job %d got pair %s, which job %d had", k, res, slices.Index(used, res))
		}
		used = append(used, res)
		if ex.pool.isKnown(res) {
			t.Errorf("job %d: the pool still knows %s after the job removed it", k, res)
		}
		removed := func(args ...string) bool {
			return slices.ContainsFunc(fe.calls(t), func(c dockerCall) bool { return slices.Equal(c.Args, args) })
		}
		if !removed("network", "rm", res) || !removed("volume", "rm", "-f", res) {
			t.Errorf("job %d: pair %s not removed", k, res)
		}
		waitUntil(t, "the pool refilled", func() bool { return ready() == 2 })
	}
	// Each container the pool tried to start ahead (its image ID cannot be
	// read here) was removed, and its pair kept bare.
	tried := 0
	for _, c := range fe.commands(t, "create") {
		if i := slices.Index(c.Args, "--name"); i > 0 && strings.Contains(c.Args[i+1], "-pool-") {
			tried++
			if !slices.ContainsFunc(fe.calls(t), func(r dockerCall) bool { return slices.Equal(r.Args, []string{"rm", "-f", c.Args[i+1]}) }) {
				t.Errorf("the failed container %s was not removed", c.Args[i+1])
			}
		}
	}
	if tried == 0 {
		t.Error("the pool never tried to start a container ahead")
	}

	ex.pool.mu.Lock()
	left := []string{ex.pool.ready[0].name, ex.pool.ready[1].name}
	ex.pool.mu.Unlock()
	cancel()
	<-stopped
	for _, name := range left {
		if !slices.ContainsFunc(fe.calls(t), func(c dockerCall) bool { return slices.Equal(c.Args, []string{"network", "rm", name}) }) ||
			!slices.ContainsFunc(fe.calls(t), func(c dockerCall) bool { return slices.Equal(c.Args, []string{"volume", "rm", "-f", name}) }) {
			t.Errorf("pair %s left after the pool stopped", name)
		}
		if ex.pool.isKnown(name) {
			t.Errorf("the stopped pool still knows %s", name)
		}
	}
	if _, ok := ex.pool.take(context.Background(), nil); ok {
		t.Error("a stopped pool handed out a pair")
	}
}

// TestSweepPooled: the sweep removes pooled containers, networks and
// volumes the pool does not know of (their job could not remove them),
// and containers started ahead that bear the name of a job no worker runs;
// it leaves those the pool knows, a running job's, and names it does not
// make, alone.
func TestSweepPooled(t *testing.T) {
	t.Parallel()
	ex, fe := newTestExecutor(t, newFakeSource())
	p := ex.namePrefix() + "pool-"
	ex.pool.mu.Lock()
	ex.pool.known[p+"live"] = true
	ex.pool.mu.Unlock()
	ex.mu.Lock()
	ex.jobs[8] = &execJob{}
	ex.mu.Unlock()
	fe.set(t, "network-ls-output", p+"live\n"+p+"orphan\nsomeone-elses\n")
	fe.set(t, "volume-ls-output", p+"orphan\n")
	// Containers started ahead: one ready (known), one the pool forgot,
	// one a running job took (renamed to its name), one a job that ended
	// could not remove, and another instance's name.
	fe.set(t, "ps-pool-output", "c1 "+p+"live\nc2 "+p+"orphan\nc3 "+ex.namePrefix()+"8\nc4 "+ex.namePrefix()+"9\nc5 someone-elses-9\n")
	n, err := ex.sweepOrphans(context.Background())
	if err != nil || n != 4 {
		t.Fatalf("sweepOrphans = %d, %v; want 4 removed", n, err)
	}
	var rms [][]string
	for _, c := range fe.calls(t) {
		if len(c.Args) > 1 && (c.Args[1] == "rm" || c.Args[0] == "rm") {
			rms = append(rms, c.Args)
		}
	}
	want := [][]string{{"rm", "-f", "c2", "c4"}, {"network", "rm", p + "orphan"}, {"volume", "rm", "-f", p + "orphan"}}
	if !slices.EqualFunc(rms, want, slices.Equal) {
		t.Errorf("removals = %q, want %q", rms, want)
	}
	for _, c := range fe.commands(t, "network") {
		if c.Args[1] == "ls" && slices.Contains(c.Args, "label="+LabelPool) && !slices.Contains(c.Args, "label="+LabelInstance+"=test") {
			t.Errorf("pooled networks listed without this instance's filter: %q", c.Args)
		}
	}
}

// jobCreate is the job container's docker run (as "create") of job id.
func jobCreate(t *testing.T, fe fakeEngine, id int64) []string {
	t.Helper()
	name := "shithub-actions-test-" + strconv.FormatInt(id, 10)
	for _, c := range fe.commands(t, "create") {
		if i := slices.Index(c.Args, "--name"); i > 0 && c.Args[i+1] == name {
			return c.Args
		}
	}
	t.Fatalf("no container made for job %d", id)
	return nil
}
