//go:build docker

// Fault tests on a real engine: serve killed at random moments under load,
// and the engine going away mid-job. CI runs them in their own step:
// go test -tags docker -run DockerFault.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
)

const faultWorkflow = `name: Fault
on: [push, workflow_dispatch]
jobs:
  a:
    runs-on: busybox
    steps:
      - run: echo a; sleep 0.2
  b:
    needs: a
    runs-on: busybox
    steps:
      - run: echo b
`

// faultSeeds is how many times the kill test repeats: SHITHUB_FAULT_SEEDS,
// else 20 in CI and 3 elsewhere.
func faultSeeds() int {
	if n, err := strconv.Atoi(os.Getenv("SHITHUB_FAULT_SEEDS")); err == nil && n > 0 {
		return n
	}
	if os.Getenv("CI") == "true" {
		return 20
	}
	return 3
}

// quietCall sends a request and tolerates any failure: the load goes on
// while serve dies.
func (e *e2e) quietCall(client *http.Client, method, path, body string) (int, string) {
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.tok)
	res, err := client.Do(req)
	if err != nil {
		return 0, ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// openRuns lists the ids of runs not completed, and of completed ones.
func (e *e2e) runIDs() (open, done []int64) {
	e.t.Helper()
	st, err := openStore(e.db, store.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	defer st.Close()
	rows, err := st.DBForTest().Query("SELECT id, status FROM runs")
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var status string
		rows.Scan(&id, &status)
		if status == protocol.StatusCompleted {
			done = append(done, id)
		} else {
			open = append(open, id)
		}
	}
	return open, done
}

// TestDockerFaultKill SIGKILLs serve at a random moment while a load runs:
// pushes through the git hook, dispatches, cancels, re-runs, the jobs' log
// appends, a backup. After a restart every run completes, `check` is clean,
// every run has all its jobs, and no container is left. It repeats with
// faultSeeds() seeds.
func TestDockerFaultKill(t *testing.T) {
	e := newE2E(t, map[string]string{"fault.yml": faultWorkflow})
	client := &http.Client{Timeout: 3 * time.Second}
	for seed := 1; seed <= faultSeeds(); seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 13))
		var stop atomic.Bool
		var wg sync.WaitGroup
		loop := func(every time.Duration, fn func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop.Load() {
					fn()
					time.Sleep(every)
				}
			}()
		}
		var pushes atomic.Int64
		loop(500*time.Millisecond, func() { // a commit pushed through the hook
			n := pushes.Add(1)
			os.WriteFile(filepath.Join(e.work, "README"), []byte(fmt.Sprintf("seed %d push %d\n", seed, n)), 0o644)
			exec.Command("git", "-C", e.work, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "load").Run()
			exec.Command("git", "-C", e.work, "push", "-q", "-f", e.git, "HEAD:refs/heads/main").Run()
		})
		loop(400*time.Millisecond, func() {
			e.quietCall(client, "POST", "/api/v1/repos/alice/hello/actions/workflows/fault.yml/dispatches", `{"ref":"main"}`)
		})
		var mu sync.Mutex // guards lrng
		lrng := rand.New(rand.NewPCG(uint64(seed), 17))
		pick := func(ids []int64) int64 {
			mu.Lock()
			defer mu.Unlock()
			if len(ids) == 0 {
				return 0
			}
			return ids[lrng.IntN(len(ids))]
		}
		loop(150*time.Millisecond, func() {
			var runs runsJSON
			code, body := e.quietCall(client, "GET", "/api/v1/repos/alice/hello/actions/runs?per_page=50", "")
			if code != 200 {
				return
			}
			var open, done []int64
			if err := jsonUnmarshal(body, &runs); err == nil {
				for _, r := range runs.WorkflowRuns {
					if r.Status == protocol.StatusCompleted {
						done = append(done, r.ID)
					} else {
						open = append(open, r.ID)
					}
				}
			}
			if id := pick(open); id != 0 {
				e.quietCall(client, "POST", fmt.Sprintf("/api/v1/runs/%d/cancel", id), "")
			}
			if id := pick(done); id != 0 && id%4 == int64(seed%4) {
				e.quietCall(client, "POST", fmt.Sprintf("/api/v1/runs/%d/rerun", id), "")
			}
		})
		backup := filepath.Join(e.dir, fmt.Sprintf("backup-%d.db", seed))
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(rng.IntN(800)) * time.Millisecond)
			e.selfCmd("backup", backup).Run()
		}()

		time.Sleep(time.Duration(200+rng.IntN(1800)) * time.Millisecond)
		e.stop(syscall.SIGKILL)
		stop.Store(true)
		wg.Wait()
		e.start()

		// Everything completes by itself.
		deadline := time.Now().Add(120 * time.Second)
		for {
			open, _ := e.runIDs()
			if len(open) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("seed %d: runs %v still open 2 minutes after the restart; serve log:\n%s", seed, open, e.log())
			}
			time.Sleep(200 * time.Millisecond)
		}
		if out, err := e.selfCmd("check").CombinedOutput(); err != nil {
			t.Fatalf("seed %d: check after the restart: %v\n%s", seed, err, out)
		}
		st, err := openStore(e.db, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var halves int
		st.DBForTest().QueryRow(`SELECT COUNT(*) FROM (SELECT r.id FROM runs r LEFT JOIN jobs j ON j.run_id = r.id
			GROUP BY r.id HAVING COUNT(j.id) != 2)`).Scan(&halves)
		st.Close()
		if halves != 0 {
			t.Fatalf("seed %d: %d runs do not have both their jobs", seed, halves)
		}
		if _, err := os.Stat(backup); err == nil {
			if out, err := e.selfCmd("--db", backup, "check", "--quick").CombinedOutput(); err != nil && !strings.Contains(string(out), "is queued") &&
				!strings.Contains(string(out), "is running") {
				t.Fatalf("seed %d: the backup taken under load: %v\n%s", seed, err, out)
			}
		}
		// A container (or a network and volume made ahead) whose `docker
		// run` (or create) was in flight when serve died can appear after
		// the restart's clean-up; the sweep removes it within sweepEvery, so
		// wait that long and a little more. The live server keeps a network
		// and a volume ready for its next job, with that job's container
		// started on them (pool.go): those, and nothing else, may stay;
		// stopped, it removes them too.
		instance := "label=" + executor.LabelInstance + "=" + e.instance()
		list := func(filters ...string) []string {
			var left []string
			for _, ls := range [][]string{{"ps", "-a", "-q"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
				args := append(ls, "--filter", instance)
				for _, f := range filters {
					args = append(args, "--filter", f)
				}
				out, _ := exec.Command("docker", args...).Output()
				left = append(left, strings.Fields(string(out))...)
			}
			return left
		}
		var left, pooled, before []string
		for deadline := time.Now().Add(executor.SweepEvery + 5*time.Second); time.Now().Before(deadline); {
			left, pooled = list(), list("label="+executor.LabelPool)
			// The same few pooled names twice, a pool's refill apart.
			if len(left) == len(pooled) && len(pooled) <= 6 && slices.Equal(left, before) {
				break
			}
			before = left
			time.Sleep(1500 * time.Millisecond)
		}
		if len(left) != len(pooled) || len(pooled) > 6 {
			t.Fatalf("seed %d: containers, networks or volumes left after every run completed: %v (%d of them pooled; 2 entries of a container, a network and a volume are the live server's)", seed, left, len(pooled))
		}
		e.stop(syscall.SIGTERM)
		if left := list(); len(left) > 0 {
			t.Fatalf("seed %d: left after serve stopped: %v", seed, left)
		}
		e.start()
		_, done := e.runIDs()
		t.Logf("seed %d: killed under load after %d pushes; %d runs, all complete, check clean, no containers", seed, pushes.Load(), len(done))
	}
}

// dockerProxy stands between serve's docker CLI and the engine's socket,
// so a test can make the engine vanish (every connection cut, new ones
// refused) and come back, without stopping the machine's real engine.
type dockerProxy struct {
	path, target string
	mu           sync.Mutex // guards ln and conns
	ln           net.Listener
	conns        map[net.Conn]bool
}

func newDockerProxy(t *testing.T, path string) *dockerProxy {
	target := "/var/run/docker.sock"
	if h, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://"); ok {
		target = h
	}
	p := &dockerProxy{path: path, target: target, conns: map[net.Conn]bool{}}
	p.up(t)
	t.Cleanup(p.down)
	return p
}

func (p *dockerProxy) up(t *testing.T) {
	os.Remove(p.path)
	ln, err := net.Listen("unix", p.path)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *dockerProxy) serve(c net.Conn) {
	up, err := net.Dial("unix", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[c], p.conns[up] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); done <- struct{}{} }()
	go func() { io.Copy(c, up); done <- struct{}{} }()
	<-done
	c.Close()
	up.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// down makes the engine vanish: the socket goes, open streams break.
func (p *dockerProxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	os.Remove(p.path)
}

const faultLong = `name: Long
on: push
jobs:
  long:
    runs-on: busybox
    steps:
      - run: echo started; sleep 60
`

// TestDockerFaultEngineStops takes the engine away while a job runs: the
// job fails with a clear message, the server goes on answering, and jobs
// run again once the engine is back.
func TestDockerFaultEngineStops(t *testing.T) {
	dockertest.BuildImage(t)
	sock := filepath.Join(t.TempDir(), "docker.sock")
	proxy := newDockerProxy(t, sock)
	t.Setenv("DOCKER_HOST", "unix://"+sock) // serve and its docker CLI inherit it
	e := newE2E(t, map[string]string{"long.yml": faultLong})
	e.push()
	j := e.waitStep(1, "long", 2, 60*time.Second)
	proxy.down()
	run := e.waitRun(1, 60*time.Second)
	if str(run.Conclusion) != protocol.ConclusionFailure {
		t.Errorf("the run whose engine vanished = %s, want failure", str(run.Conclusion))
	}
	log := e.jobLog(j.ID)
	t.Logf("the job's log when the engine vanished:\n%s", log)
	if !strings.Contains(strings.ToLower(log), "docker") {
		t.Errorf("the job's log does not say the engine failed:\n%s", log)
	}
	// The server goes on: reads, writes, health.
	if code := e.api("GET", "/api/v1/repos/alice/hello/actions/runs", nil); code != 200 {
		t.Errorf("runs list with the engine gone: %d", code)
	}
	res, err := http.Get(e.base + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Errorf("/healthz with the engine gone: %v %v", res, err)
	}
	// A push while the engine is gone: its job may fail or wait, but the
	// run completes or stays queued, never stuck running.
	e.push()
	time.Sleep(2 * time.Second)
	proxy.up(t)
	// Once the engine is back, jobs run again.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var last runJSON
	for idx := 3; ctx.Err() == nil; idx++ {
		e.push()
		last = e.waitStepOrRun(idx, 60*time.Second)
		if last.Status == protocol.StatusRunning || str(last.Conclusion) == protocol.ConclusionSuccess {
			break
		}
	}
	if last.Status != protocol.StatusRunning && str(last.Conclusion) != protocol.ConclusionSuccess {
		t.Fatalf("no job ran after the engine came back; last run %+v; serve log:\n%s", last, e.log())
	}
	if !strings.Contains(e.jobLog(e.jobs(int(last.RunIndex))[0].ID), "started") {
		t.Errorf("the job after the engine came back did not start")
	}
	// The container the outage kept from being removed goes once the
	// engine answers again.
	var left []string
	for range 2 * int(executor.SweepEvery/time.Second) {
		if left = e.resources(j.ID); len(left) == 0 {
			break
		}
		time.Sleep(time.Second)
	}
	if len(left) > 0 {
		t.Errorf("what the job the outage failed ran in is still there: %v", left)
	}
}

// waitStepOrRun waits until run #idx is running its step or completed.
func (e *e2e) waitStepOrRun(idx int, within time.Duration) runJSON {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var runs runsJSON
		e.api("GET", "/api/v1/repos/alice/hello/actions/runs?per_page=100", &runs)
		for _, r := range runs.WorkflowRuns {
			if r.RunIndex != int64(idx) {
				continue
			}
			if r.Status == protocol.StatusCompleted {
				return r
			}
			for _, j := range e.jobs(idx) {
				if len(j.Steps) >= 2 && j.Steps[1].Status == protocol.StatusRunning {
					return r
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	e.t.Fatalf("run #%d neither ran nor completed within %s; serve log:\n%s", idx, within, e.log())
	return runJSON{}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
