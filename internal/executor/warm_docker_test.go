//go:build docker

package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
)

// TestDockerWarmContainer: on the real engine, a job that takes the
// container the pool started ahead runs in a container that is the one it
// would have made (same limits, capabilities, mounts, hosts; its own
// network and volume), fresh (nothing of the previous job in it), with
// its checkout and its .curlrc; a cancel stops it; and nothing is left
// once the pool stops.
func TestDockerWarmContainer(t *testing.T) {
	dockertest.BuildImage(t)
	src := newFakeSource()
	ex := newDockerExecutor(t, src)
	ex.cfg.JobURL = "http://shithub.localhost:8080"
	ex.cfg.AddHosts = []string{"shithub.localhost:172.17.0.1"}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		ex.pool.run(ctx)
	}()
	defer func() {
		cancel()
		<-stopped
	}()

	// What a container is made of, without its names.
	type shape struct {
		CapAdd, CapDrop, SecurityOpt, ExtraHosts []string
		Memory, NanoCpus                         int64
		PidsLimit                                int64
		Init                                     bool
		Mounts                                   []string // destination:mode:type
		Networks                                 int
		Entrypoint                               []string
		WorkingDir                               string
	}
	inspect := func(name string) (shape, map[string]string) {
		out, err := exec.Command("docker", "inspect", name).Output()
		if err != nil {
			t.Fatalf("docker inspect %s: %v", name, err)
		}
		var in []struct {
			HostConfig struct {
				CapAdd, CapDrop, SecurityOpt, ExtraHosts []string
				Memory, NanoCpus                         int64
				PidsLimit                                *int64
				Init                                     *bool
			}
			Config struct {
				Entrypoint []string
				WorkingDir string
				Labels     map[string]string
			}
			Mounts []struct {
				Destination, Mode, Type string
				RW                      bool
			}
			NetworkSettings struct{ Networks map[string]any }
		}
		if err := json.Unmarshal(out, &in); err != nil || len(in) != 1 {
			t.Fatalf("docker inspect %s: %v", name, err)
		}
		c := in[0]
		s := shape{CapAdd: c.HostConfig.CapAdd, CapDrop: c.HostConfig.CapDrop, SecurityOpt: c.HostConfig.SecurityOpt,
			ExtraHosts: c.HostConfig.ExtraHosts, Memory: c.HostConfig.Memory, NanoCpus: c.HostConfig.NanoCpus,
			Networks: len(c.NetworkSettings.Networks), Entrypoint: c.Config.Entrypoint, WorkingDir: c.Config.WorkingDir}
		if c.HostConfig.PidsLimit != nil {
			s.PidsLimit = *c.HostConfig.PidsLimit
		}
		if c.HostConfig.Init != nil {
			s.Init = *c.HostConfig.Init
		}
		for _, m := range c.Mounts {
			s.Mounts = append(s.Mounts, fmt.Sprintf("%s:%s:%v", m.Destination, m.Type, m.RW))
		}
		slices.Sort(s.Mounts) // docker lists them in no set order
		return s, c.Config.Labels
	}
	// Each job leaves a mark in /tmp (where only the step files' _shithub
	// directory should be), shows what it sees, and waits for the test to
	// look at its container.
	script := `echo "mark: $(ls /tmp)"
touch /tmp/left-by-$GITHUB_JOB_ID_FOR_TEST
cat README
cat /__shithub/net/.curlrc
grep -E '^(CapEff|NoNewPrivs):' /proc/self/status
echo looked-at-me
sleep 3`
	runJob := func(id int64) (shape, map[string]string, string, string) {
		job := dockerJob(id, script)
		job.Env = map[string]string{"GITHUB_JOB_ID_FOR_TEST": fmt.Sprint(id)}
		done := make(chan struct{})
		go func() { defer close(done); ex.runJob(job) }()
		for deadline := time.Now().Add(time.Minute); !strings.Contains(src.log(t, stepID(job, 2)), "looked-at-me"); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("job %d never got going; Set up job log:\n%s", id, src.log(t, stepID(job, 0)))
			}
		}
		s, labels := inspect(ex.namePrefix() + fmt.Sprint(id))
		<-done
		if got := src.jobConclusion(id); got != "success" {
			t.Fatalf("job %d = %q; Set up job log:\n%s", id, got, src.log(t, stepID(job, 0)))
		}
		return s, labels, src.log(t, stepID(job, 0)), src.log(t, stepID(job, 2))
	}

	cold, _, coldSetup, coldLog := runJob(9801)
	if strings.Contains(coldSetup, "started ahead") {
		t.Fatalf("the first job found a container started ahead:\n%s", coldSetup)
	}
	waitUntil(t, "a container started ahead", func() bool {
		ex.pool.mu.Lock()
		defer ex.pool.mu.Unlock()
		return len(ex.pool.ready) == 1 && ex.pool.ready[0].warm != nil
	})
	warm, labels, warmSetup, warmLog := runJob(9802)
	if !strings.Contains(warmSetup, "started ahead") {
		t.Fatalf("the second job made its own container:\n%s", warmSetup)
	}
	if labels[LabelPool] != "1" || labels[LabelInstance] != ex.cfg.Instance {
		t.Errorf("the warm container's labels: %v", labels)
	}
	if !reflect.DeepEqual(cold, warm) {
		t.Errorf("the container started ahead differs from the one the job made:\n got %+v\nwant %+v", warm, cold)
	}
	for _, want := range []string{"mark: _shithub\n", "alice/demo@0123456789abcdef", "resolve = shithub.localhost:8080:172.17.0.1", "NoNewPrivs:\t1", "looked-at-me"} {
		if !strings.Contains(coldLog, want) || !strings.Contains(warmLog, want) {
			t.Errorf("%q missing from a job's log:\ncold:\n%s\nwarm:\n%s", want, coldLog, warmLog)
		}
	}
	if a, b := between(coldLog, "CapEff:", "\n"), between(warmLog, "CapEff:", "\n"); a == "" || a != b {
		t.Errorf("capabilities: cold %q, warm %q", a, b)
	}

	// A job in a container started ahead is cancelled as any other.
	waitUntil(t, "a container started ahead", func() bool {
		ex.pool.mu.Lock()
		defer ex.pool.mu.Unlock()
		return len(ex.pool.ready) == 1 && ex.pool.ready[0].warm != nil
	})
	job := dockerJob(9803, "echo started\nsleep 600")
	d := cancelOnce(t, ex, src, job)
	t.Logf("cancel of a job in a container started ahead: %v to its status", d)
	if got := src.jobConclusion(9803); got != "cancelled" {
		t.Errorf("job = %q, want cancelled", got)
	}
	if setup := src.log(t, stepID(job, 0)); !strings.Contains(setup, "started ahead") {
		t.Errorf("the cancelled job made its own container:\n%s", setup)
	}

	cancel()
	<-stopped
	if l := leftovers(t, ex.cfg.Instance); len(l) != 0 {
		t.Errorf("left on the engine after the pool stopped: %v", l)
	}
}

// between is the text after the first from in s, up to to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, to)
	return v
}
