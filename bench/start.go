package main

// The start phase: how long a user waits for a job's first log line. It
// starts its own serve on a real Docker engine, twice: with --ready 1 (the
// default: the next job's network, volume and container made ahead) and
// with --ready 0 (everything made when the job comes). Each time it
// dispatches a one-step workflow (`run: echo first-line`) one at a time,
// and times dispatch → first log line and dispatch → run completed, each
// beside a bare `docker run --rm IMAGE echo first-line` of the same image,
// run just before it from an engine as quiet as the job finds it (serve
// has finished cleaning up and making ahead). It prints p50 and p99 of
// each, the ratio of the p50s, and the median of each part of set-up from
// serve's "job start" log lines.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// startImage is the image the start phase runs when -start-image is not
// given: the tests' busybox image, imported from the host's static busybox
// when missing (apt-get install busybox-static), as there is no registry.
const startImage = "shithub-test-busybox:latest"

const startWorkflow = `name: Start
on: workflow_dispatch
jobs:
  first:
    runs-on: busybox
    steps:
      - run: echo first-line
`

// startRun is one dispatch's figures.
type startRun struct {
	jobID           int64
	t0              time.Time
	firstLine, done time.Duration
	bareLine        time.Duration // the bare docker run's first line
	bareDone        time.Duration // the bare docker run's exit
}

func (e *env) startPhase() error {
	c := e.c
	if err := ensureStartImage(c.startImage); err != nil {
		return err
	}
	dir := filepath.Join(e.dir, "start")
	if err := os.MkdirAll(filepath.Join(dir, "src", ".shithub", "workflows"), 0o755); err != nil {
		return err
	}
	db := filepath.Join(dir, "start.db")
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"--db", db}, args...)...).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	src := filepath.Join(dir, "src")
	os.WriteFile(filepath.Join(src, ".shithub", "workflows", "start.yml"), []byte(startWorkflow), 0o644)
	for _, a := range [][]string{{"git", "init", "-q", "-b", "main"}, {"git", "add", "-A"},
		{"git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "start"}} {
		if err := sh(src, a...); err != nil {
			return err
		}
	}
	if _, err := cli("user", "create", "alice"); err != nil {
		return err
	}
	if _, err := cli("repo", "create", "alice/start", "--git", src); err != nil {
		return err
	}
	out, err := cli("token", "create", "alice", "--scopes", "repo:read,repo:write")
	if err != nil {
		return err
	}
	token := lastLine(out)

	// With the pool as serve has it by default, then with nothing made
	// ahead: the same jobs, the same image, the same bare docker runs.
	for _, ready := range []int{1, 0} {
		if err := e.startMeasure(dir, db, token, ready); err != nil {
			return err
		}
	}
	return nil
}

// startMeasure runs serve --ready ready on db and measures its jobs.
func (e *env) startMeasure(dir, db, token string, ready int) error {
	c := e.c
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	base := "http://" + addr
	logPath := filepath.Join(dir, fmt.Sprintf("serve-ready-%d.log", ready))
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	serve := exec.Command(e.bin, "--db", db, "serve", "--addr", addr, "--runners", "2",
		"--image", "busybox="+c.startImage, "--pull", "never", "--ready", strconv.Itoa(ready))
	serve.Stdout, serve.Stderr = logf, logf
	if err := serve.Start(); err != nil {
		return err
	}
	defer func() {
		serve.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { serve.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			serve.Process.Kill()
		}
	}()
	client := &http.Client{Timeout: 30 * time.Second}
	for i := 0; ; i++ {
		if res, err := client.Get(base + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		if i > 200 {
			return fmt.Errorf("start: serve did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	api := func(method, path string, body any, out any) error {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, base+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
		}
		if out == nil {
			return nil
		}
		if s, ok := out.(*string); ok {
			*s = string(b)
			return nil
		}
		return json.Unmarshal(b, out)
	}

	load0 := loadAvg()
	fmt.Printf("\nstart: %d jobs after %d warm-ups; serve --runners 2 --pull never --ready %d, image %s; load average %s\n",
		c.startJobs, c.startWarm, ready, c.startImage, load0)
	var runs []startRun
	for i := range c.startWarm + c.startJobs {
		var r startRun
		var err error
		if r.bareLine, r.bareDone, err = bareDockerRun(c.startImage); err != nil {
			return err
		}
		if err := dispatchOne(api, &r); err != nil {
			return fmt.Errorf("start: %w\nserve's log: %s", err, logPath)
		}
		// The next bare docker run starts from a quiet engine, as the
		// next job does: once serve has cleaned up after this job and
		// made what it makes ahead.
		waitQuiet(serve.Process.Pid)
		if i >= c.startWarm {
			runs = append(runs, r)
		}
	}
	// The last job's "job start" line may still be on its way.
	time.Sleep(200 * time.Millisecond)

	col := func(f func(startRun) time.Duration) []time.Duration {
		var d []time.Duration
		for _, r := range runs {
			d = append(d, f(r))
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d
	}
	first, done := col(func(r startRun) time.Duration { return r.firstLine }), col(func(r startRun) time.Duration { return r.done })
	bareLine, bareDone := col(func(r startRun) time.Duration { return r.bareLine }), col(func(r startRun) time.Duration { return r.bareDone })
	fmt.Printf("%-40s %10s %10s\n", "", "p50", "p99")
	for _, row := range []struct {
		name string
		d    []time.Duration
	}{
		{"dispatch → first log line", first},
		{"dispatch → run completed", done},
		{"docker run --rm IMAGE echo: exit", bareDone},
		{"docker run --rm IMAGE echo: first line", bareLine},
	} {
		fmt.Printf("%-40s %10s %10s\n", row.name, fmtDur(pct(row.d, 0.5)), fmtDur(pct(row.d, 0.99)))
	}
	ratio := float64(pct(first, 0.5)) / float64(pct(bareDone, 0.5))
	fmt.Printf("ratio: first log line p50 / docker run --rm p50 = %.2f (goal ≤ 1.5); run completed p50 / docker run --rm p50 = %.2f\n",
		ratio, float64(pct(done, 0.5))/float64(pct(bareDone, 0.5)))
	fmt.Printf("load average at the end: %s\n", loadAvg())
	return printStartBreakdown(logPath, runs)
}

// dispatchOne dispatches the start workflow and waits for its first log
// line and for its run to complete, polling every 5ms.
func dispatchOne(api func(method, path string, body, out any) error, r *startRun) error {
	const poll = 5 * time.Millisecond
	var disp struct {
		RunID int64 `json:"workflow_run_id"`
	}
	r.t0 = time.Now()
	if err := api("POST", "/api/v1/repos/alice/start/actions/workflows/start.yml/dispatches",
		map[string]any{"ref": "main", "return_run_details": true}, &disp); err != nil {
		return err
	}
	deadline := r.t0.Add(2 * time.Minute)
	for r.jobID == 0 {
		var jobs struct {
			Jobs []struct {
				ID int64 `json:"id"`
			} `json:"jobs"`
		}
		if err := api("GET", fmt.Sprintf("/api/v1/repos/alice/start/actions/runs/%d/jobs", disp.RunID), nil, &jobs); err != nil {
			return err
		}
		if len(jobs.Jobs) > 0 {
			r.jobID = jobs.Jobs[0].ID
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the run has no job")
		}
		time.Sleep(poll)
	}
	for r.firstLine == 0 {
		var log string
		// The log of a job that has not started yet may be an error: poll on.
		if err := api("GET", fmt.Sprintf("/api/v1/repos/alice/start/actions/jobs/%d/logs", r.jobID), nil, &log); err == nil && hasFirstLine(log) {
			r.firstLine = time.Since(r.t0)
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("job %d: no first-line in its log after 2 minutes", r.jobID)
		}
		time.Sleep(poll)
	}
	for {
		var run struct {
			Status     string `json:"status"`
			Conclusion string `json:"conclusion"`
		}
		if err := api("GET", fmt.Sprintf("/api/v1/repos/alice/start/actions/runs/%d", disp.RunID), nil, &run); err != nil {
			return err
		}
		if run.Status == "completed" {
			r.done = time.Since(r.t0)
			if run.Conclusion != "success" {
				return fmt.Errorf("run %d concluded %s", disp.RunID, run.Conclusion)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("run %d not completed after 2 minutes", disp.RunID)
		}
		time.Sleep(poll)
	}
}

// hasFirstLine reports whether a job's log has the step's output line,
// not only the line naming its command.
func hasFirstLine(log string) bool {
	for _, l := range strings.Split(log, "\n") {
		l = strings.TrimRight(l, "\r")
		if (l == "first-line" || strings.HasSuffix(l, " first-line")) && !strings.Contains(l, "echo") {
			return true
		}
	}
	return false
}

// bareDockerRun times `docker run --rm IMAGE echo first-line`: to the line
// on its stdout, and to its exit.
func bareDockerRun(image string) (line, done time.Duration, err error) {
	cmd := exec.Command("docker", "run", "--rm", image, "echo", "first-line")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line == 0 && sc.Text() == "first-line" {
			line = time.Since(t0)
		}
	}
	if err := cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("docker run --rm %s: %v: %s", image, err, stderr.String())
	}
	return line, time.Since(t0), nil
}

// printStartBreakdown prints the median of each part of set-up over the
// measured jobs, from serve's "job start" lines (key=value, milliseconds),
// and dispatch → claim from their claimed_at_ms.
func printStartBreakdown(logPath string, runs []startRun) error {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	t0 := map[int64]time.Time{}
	for _, r := range runs {
		t0[r.jobID] = r.t0
	}
	var order []string
	vals := map[string][]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, `msg="job start"`) {
			continue
		}
		kv := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		id, _ := strconv.ParseInt(kv["job"], 10, 64)
		start, ok := t0[id]
		if !ok {
			continue // a warm-up
		}
		add := func(k string, v float64) {
			if _, seen := vals[k]; !seen {
				order = append(order, k)
			}
			vals[k] = append(vals[k], v)
		}
		if at, err := strconv.ParseInt(kv["claimed_at_ms"], 10, 64); err == nil {
			add("dispatch_to_claimed", float64(at-start.UnixMilli()))
		}
		for _, f := range strings.Fields(line) {
			k, v, _ := strings.Cut(f, "=")
			if k == "claimed_at_ms" || k == "job" || k == "run" || k == "worker" {
				continue
			}
			if x, err := strconv.ParseFloat(v, 64); err == nil {
				add(k, x)
			}
		}
	}
	if len(order) == 0 {
		fmt.Println("set-up breakdown: serve logged no \"job start\" lines")
		return nil
	}
	fmt.Printf("set-up breakdown, median ms over %d jobs (serve's \"job start\" lines; at_* are times since the claim):\n ", len(vals[order[0]]))
	for _, k := range order {
		v := slices.Clone(vals[k])
		slices.Sort(v)
		fmt.Printf(" %s=%.0f", k, v[len(v)/2])
	}
	fmt.Println()
	return nil
}

// ensureStartImage imports the busybox test image from the host's static
// busybox when it is the default image and is missing.
func ensureStartImage(image string) error {
	if exec.Command("docker", "image", "inspect", image).Run() == nil {
		return nil
	}
	if image != startImage {
		return fmt.Errorf("start: image %s is not there (--pull never)", image)
	}
	root, err := os.MkdirTemp("", "shithub-bench-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(root)
	for _, d := range []string{"bin", "tmp", "workspace"} {
		os.Mkdir(filepath.Join(root, d), 0o755)
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777)
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("start: need a static /bin/busybox (Debian: busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, a := range []string{"sh", "tail", "mktemp", "cat", "rm", "echo", "mkdir", "env", "true", "false", "ls"} {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	tar := exec.Command("tar", "-C", root, "-c", ".")
	imp := exec.Command("docker", "import", "--change", "ENV PATH=/bin", "-", image)
	pipe, err := tar.StdoutPipe()
	if err != nil {
		return err
	}
	imp.Stdin = pipe
	if err := tar.Start(); err != nil {
		return err
	}
	if out, err := imp.CombinedOutput(); err != nil {
		return fmt.Errorf("docker import: %v: %s", err, out)
	}
	return tar.Wait()
}

// loadAvg is /proc/loadavg's three load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

// waitQuiet waits until process pid has had no child process (a docker or
// git command) for 300ms in a row, or 30 s have passed.
func waitQuiet(pid int) {
	quietSince := time.Now()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if hasChild(pid) {
			quietSince = time.Now()
		} else if time.Since(quietSince) >= 300*time.Millisecond {
			return
		}
	}
}

// hasChild reports whether a process's parent is pid, from /proc.
func hasChild(pid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			return true
		}
	}
	return false
}
