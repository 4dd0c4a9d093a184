// Command bench is shithub-actions' load tool. It builds the server (or
// takes -bin), fills a fresh database with -runs runs of a realistic shape
// (through the hidden `shithub-actions dev fill`, so it need not know the
// schema), starts `serve`, and measures:
//
//   - single: each read endpoint alone, one request at a time (p50, p99);
//   - concurrent: each of the runs list, the Actions tab, the feed and one
//     run under -conns clients at once (req/s, p50, p99);
//   - mixed: everything at once: feed readers with and without ETag, API
//     clients listing runs with filters, dispatch/cancel and re-run/cancel
//     storms, 8 jobs streaming logs through the runner protocol, and admin
//     CLI writes (users, tokens, backups, prune --dry-run) on the same file.
//
// It prints req/s and p50/p99 per endpoint, errors (5xx, "database is
// locked" anywhere), log MB/s ingested, and serve's RSS. -short is the CI
// mode: a small database and short phases, a minute at most.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type config struct {
	bin      string
	dir      string
	runs     int
	conns    int
	single   int
	phase    time.Duration
	mixed    time.Duration
	phases   string
	keep     bool
	reuse    bool
	streams  int
	chunkKiB int
}

func main() {
	var c config
	short := flag.Bool("short", false, "CI mode: 2,000 runs and short phases, under a minute")
	flag.StringVar(&c.bin, "bin", "", "shithub-actions binary (default: build ../ into the work directory)")
	flag.StringVar(&c.dir, "dir", "", "work directory (default: a new temporary one)")
	flag.IntVar(&c.runs, "runs", 10_000, "runs in the database before the load starts")
	flag.IntVar(&c.conns, "conns", 16, "concurrent clients in the concurrent phase")
	flag.IntVar(&c.single, "single", 200, "requests per endpoint in the single phase")
	flag.DurationVar(&c.phase, "phase", 10*time.Second, "length of each concurrent measurement")
	flag.DurationVar(&c.mixed, "mixed", 30*time.Second, "length of the mixed phase")
	flag.StringVar(&c.phases, "phases", "single,concurrent,mixed", "phases to run")
	flag.BoolVar(&c.keep, "keep", false, "keep the work directory")
	flag.BoolVar(&c.reuse, "reuse", false, "reuse -dir's filled database and tokens (from a -keep run) instead of filling one")
	flag.IntVar(&c.streams, "streams", 8, "jobs streaming logs at once in the mixed phase")
	flag.IntVar(&c.chunkKiB, "chunk-kib", 64, "size of each log chunk")
	flag.Parse()
	if *short {
		c.runs, c.single, c.phase, c.mixed = 2000, 30, 2*time.Second, 10*time.Second
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// env is a prepared database and a running server.
type env struct {
	c       config
	dir     string
	db      string
	bin     string
	base    string
	token   string
	rtoken  string
	serve   *exec.Cmd
	serveLg *bytes.Buffer
	client  *http.Client
	newest  int64 // the newest run's id and index after the fill
	newIdx  int64
	total   int // runs in the repository, for the deep pages
	jobID   int64
	rss     atomic.Int64 // the most serve's RSS was seen at, bytes
	locked  atomic.Int64 // "database is locked" seen
	errs5xx atomic.Int64 // 5xx answers seen, in every phase
}

func run(c config) error {
	e := &env{c: c}
	var err error
	if e.dir = c.dir; e.dir == "" {
		if e.dir, err = os.MkdirTemp("", "shithub-bench-"); err != nil {
			return err
		}
		if !c.keep {
			defer os.RemoveAll(e.dir)
		}
	}
	if err := e.setUp(); err != nil {
		return err
	}
	defer e.stop()
	stopRSS := e.watchRSS()
	defer stopRSS()
	for _, p := range strings.Split(c.phases, ",") {
		switch p {
		case "single":
			e.single()
		case "concurrent":
			e.concurrent()
		case "mixed":
			if err := e.mixedPhase(); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown phase %q", p)
		}
	}
	if n := strings.Count(e.serveLg.String(), "database is locked"); n > 0 {
		e.locked.Add(int64(n))
	}
	fmt.Printf("\nserve: max RSS %.1f MiB; 5xx answers: %d; \"database is locked\": %d\n", float64(e.rss.Load())/(1<<20),
		e.errs5xx.Load(), e.locked.Load())
	if e.errs5xx.Load() > 0 || e.locked.Load() > 0 {
		return fmt.Errorf("the goal is zero 5xx answers and zero \"database is locked\"")
	}
	return nil
}

// ---- setting up ----

const benchWorkflow = `name: Bench
on: [push, workflow_dispatch]
jobs:
  stream:
    runs-on: ubuntu-latest
    steps:
      - run: echo one
      - run: echo two
`

func (e *env) cli(args ...string) (string, error) {
	cmd := exec.Command(e.bin, append([]string{"--db", e.db}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if strings.Contains(errb.String(), "database is locked") {
		e.locked.Add(1)
	}
	if err != nil {
		return out.String(), fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), nil
}

func sh(dir string, args ...string) error {
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (e *env) setUp() error {
	e.db = filepath.Join(e.dir, "bench.db")
	e.bin = e.c.bin
	envFile := filepath.Join(e.dir, "bench.env")
	if e.bin == "" {
		e.bin = filepath.Join(e.dir, "shithub-actions")
		start := time.Now()
		if err := sh("..", "go", "build", "-o", e.bin, "."); err != nil {
			return err
		}
		fmt.Printf("built %s in %s\n", e.bin, time.Since(start).Round(time.Millisecond))
	}
	if e.c.reuse {
		b, err := os.ReadFile(envFile)
		if err != nil {
			return fmt.Errorf("-reuse: %v", err)
		}
		f := strings.Fields(string(b))
		if len(f) != 3 {
			return fmt.Errorf("-reuse: %s is not TOKEN RUNNER-TOKEN RUNS", envFile)
		}
		e.token, e.rtoken = f[0], f[1]
		e.c.runs, _ = strconv.Atoi(f[2])
		fmt.Printf("reusing %s: %d runs\n", e.db, e.c.runs)
		return e.startServe()
	}
	src := filepath.Join(e.dir, "src")
	os.MkdirAll(filepath.Join(src, ".shithub", "workflows"), 0o755)
	os.WriteFile(filepath.Join(src, ".shithub", "workflows", "bench.yml"), []byte(benchWorkflow), 0o644)
	for _, a := range [][]string{{"git", "init", "-q", "-b", "main"}, {"git", "add", "-A"},
		{"git", "-c", "user.name=b", "-c", "user.email=b@example.com", "commit", "-qm", "bench"}} {
		if err := sh(src, a...); err != nil {
			return err
		}
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if _, err := e.cli("user", "create", u); err != nil {
			return err
		}
	}
	if _, err := e.cli("repo", "create", "alice/pub", "--git", src); err != nil {
		return err
	}
	out, err := e.cli("token", "create", "alice", "--scopes", "repo:read,repo:write")
	if err != nil {
		return err
	}
	e.token = lastLine(out)
	if out, err = e.cli("runner", "register", "bench", "--labels", "ubuntu-latest"); err != nil {
		return err
	}
	e.rtoken = lastLine(out)
	start := time.Now()
	if _, err := e.cli("dev", "fill", "--repo", "alice/pub", "--runs", strconv.Itoa(e.c.runs), "--actors", "alice,bob,carol"); err != nil {
		return err
	}
	fi, _ := os.Stat(e.db)
	fmt.Printf("filled %d runs in %s (%.0f MiB)\n", e.c.runs, time.Since(start).Round(time.Millisecond), float64(fi.Size())/(1<<20))
	if err := os.WriteFile(envFile, []byte(fmt.Sprintf("%s %s %d\n", e.token, e.rtoken, e.c.runs)), 0o600); err != nil {
		return err
	}
	return e.startServe()
}

func (e *env) startServe() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr := ln.Addr().String()
	ln.Close()
	e.base = "http://" + addr
	e.serveLg = &bytes.Buffer{}
	e.serve = exec.Command(e.bin, "--db", e.db, "serve", "--addr", addr, "--runners", "0")
	e.serve.Stdout, e.serve.Stderr = io.Discard, &lockedWriter{w: e.serveLg}
	if err := e.serve.Start(); err != nil {
		return err
	}
	e.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	for i := 0; ; i++ {
		// Any answer will do: a server older than /healthz says 404.
		if res, err := e.client.Get(e.base + "/healthz"); err == nil {
			res.Body.Close()
			break
		}
		if i > 200 {
			return fmt.Errorf("serve did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var list struct {
		Total int `json:"total_count"`
		Runs  []struct {
			ID       int64 `json:"id"`
			RunIndex int64 `json:"run_index"`
		} `json:"workflow_runs"`
	}
	if err := e.getJSON("/api/v1/repos/alice/pub/actions/runs?per_page=1", &list); err != nil || len(list.Runs) == 0 {
		return fmt.Errorf("listing runs: %v", err)
	}
	e.newest, e.newIdx, e.total = list.Runs[0].ID, list.Runs[0].RunIndex, list.Total
	var jobs struct {
		Jobs []struct {
			ID int64 `json:"id"`
		} `json:"jobs"`
	}
	if err := e.getJSON(fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/jobs", e.newest), &jobs); err != nil || len(jobs.Jobs) == 0 {
		return fmt.Errorf("listing jobs: %v", err)
	}
	e.jobID = jobs.Jobs[0].ID
	return nil
}

func (e *env) stop() {
	if e.serve != nil && e.serve.Process != nil {
		e.serve.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { e.serve.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			e.serve.Process.Kill()
		}
	}
}

type lockedWriter struct {
	mu sync.Mutex // guards w
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// serve logs every request: keep only what is not a plain request line.
	if bytes.Contains(p, []byte("msg=request ")) {
		return len(p), nil
	}
	return l.w.Write(p)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// watchRSS samples serve's resident set size twice a second.
func (e *env) watchRSS() func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", e.serve.Process.Pid))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
					if kb*1024 > e.rss.Load() {
						e.rss.Store(kb * 1024)
					}
				}
			}
		}
	}()
	return func() { close(done) }
}

// ---- requests and their figures ----

// stats collects one endpoint's latencies and errors.
type stats struct {
	mu       sync.Mutex // guards the rest
	lat      []time.Duration
	status5x int
	other    int // unexpected statuses below 500, and transport errors
	bytes    int64
}

type table struct {
	mu    sync.Mutex // guards byKey and order
	byKey map[string]*stats
	order []string
}

func newTable() *table { return &table{byKey: map[string]*stats{}} }

func (t *table) get(name string) *stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.byKey[name]
	if s == nil {
		s = &stats{}
		t.byKey[name] = s
		t.order = append(t.order, name)
	}
	return s
}

func (s *stats) add(d time.Duration, code int, ok bool, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat = append(s.lat, d)
	s.bytes += n
	switch {
	case code >= 500:
		s.status5x++
	case !ok:
		s.other++
	}
}

func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func (t *table) print(title string, d time.Duration) {
	fmt.Printf("\n%s\n%-34s %9s %10s %10s %8s %6s %6s\n", title, "endpoint", "req/s", "p50", "p99", "n", "5xx", "other")
	for _, name := range t.order {
		s := t.byKey[name]
		s.mu.Lock()
		lat := append([]time.Duration(nil), s.lat...)
		s.mu.Unlock()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		rate := "-"
		if d > 0 {
			rate = fmt.Sprintf("%.0f", float64(len(lat))/d.Seconds())
		}
		fmt.Printf("%-34s %9s %10s %10s %8d %6d %6d\n", name, rate, fmtDur(pct(lat, 0.5)), fmtDur(pct(lat, 0.99)), len(lat), s.status5x, s.other)
	}
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%dµs", d.Microseconds())
}

// req is one request: its method, path, body, headers, and the statuses
// that count as success.
type req struct {
	method, path string
	body         []byte
	auth         string
	etag         string
	ok           []int
}

// do sends r and records it under s; it returns the status, the body and
// the ETag.
func (e *env) do(s *stats, r req) (int, []byte, string) {
	hr, _ := http.NewRequest(r.method, e.base+r.path, bytes.NewReader(r.body))
	if r.auth != "" {
		hr.Header.Set("Authorization", "Bearer "+r.auth)
	}
	if r.etag != "" {
		hr.Header.Set("If-None-Match", r.etag)
	}
	start := time.Now()
	res, err := e.client.Do(hr)
	if err != nil {
		s.add(time.Since(start), 0, false, 0)
		return 0, nil, ""
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	d := time.Since(start)
	ok := len(r.ok) == 0 && res.StatusCode < 400
	for _, c := range r.ok {
		ok = ok || c == res.StatusCode
	}
	if bytes.Contains(body, []byte("database is locked")) {
		e.locked.Add(1)
	}
	if res.StatusCode >= 500 {
		e.errs5xx.Add(1)
		fmt.Fprintf(os.Stderr, "bench: %s %s: %s: %.200s\n", r.method, r.path, res.Status, body)
	}
	s.add(d, res.StatusCode, ok, 0)
	return res.StatusCode, body, res.Header.Get("ETag")
}

func (e *env) getJSON(path string, v any) error {
	res, err := e.client.Get(e.base + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(v)
}

// readEndpoints are the read paths the issue measures.
func (e *env) readEndpoints() []struct {
	name string
	r    req
} {
	api := "/api/v1/repos/alice/pub/actions"
	return []struct {
		name string
		r    req
	}{
		{"runs list per_page=50", req{method: "GET", path: api + "/runs?per_page=50"}},
		{"runs list ?branch=main", req{method: "GET", path: api + "/runs?per_page=50&branch=main"}},
		{"runs list ?workflow_file&status", req{method: "GET", path: api + "/runs?workflow_file=ci.yml&status=completed"}},
		{"runs list page 20", req{method: "GET", path: api + "/runs?per_page=50&page=20"}},
		{"runs list middle page", req{method: "GET", path: fmt.Sprintf("%s/runs?per_page=50&page=%d", api, max(1, e.total/50/2))}},
		{"runs list ?workflow_file middle page", req{method: "GET", path: fmt.Sprintf("%s/runs?per_page=50&workflow_file=ci.yml&page=%d", api, max(1, e.total*7/10/50/2))}},
		{"actions tab", req{method: "GET", path: "/alice/pub/actions"}},
		{"actions tab middle page", req{method: "GET", path: fmt.Sprintf("/alice/pub/actions?page=%d", max(1, e.total/25/2))}},
		{"actions tab ?workflow&branch", req{method: "GET", path: "/alice/pub/actions?workflow=ci.yml&branch=main"}},
		{"actions tab ?workflow (chart, flaky)", req{method: "GET", path: "/alice/pub/actions?workflow=ci.yml"}},
		{"actions tab ?workflow&status", req{method: "GET", path: "/alice/pub/actions?workflow=nightly.yml&status=failure"}},
		{"badge", req{method: "GET", path: "/alice/pub/actions/workflows/ci.yml/badge.svg"}},
		{"run (API)", req{method: "GET", path: fmt.Sprintf("%s/runs/%d", api, e.newest)}},
		{"run page", req{method: "GET", path: fmt.Sprintf("/alice/pub/actions/runs/%d", e.newIdx)}},
		{"feed", req{method: "GET", path: "/alice/pub/actions.atom"}},
	}
}

// single: each endpoint alone, one request at a time.
func (e *env) single() {
	t := newTable()
	for _, ep := range e.readEndpoints() {
		s := t.get(ep.name)
		for range 5 { // warm up
			e.do(&stats{}, ep.r)
		}
		for i := range e.c.single {
			r := ep.r
			if strings.Contains(r.path, "/runs?") {
				// A new query each time: the list's answer cache would
				// otherwise serve all but the first.
				r.path += fmt.Sprintf("&nocache=%d", i)
			}
			e.do(s, r)
		}
	}
	t.print(fmt.Sprintf("single: one request at a time, %d runs (API lists uncached)", e.total), 0)
}

// hammer runs fn from n clients for d.
func hammer(n int, d time.Duration, fn func(rng *rand.Rand)) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			for time.Now().Before(deadline) {
				fn(rng)
			}
		}()
	}
	wg.Wait()
}

// concurrent: the throughput figures, one endpoint at a time.
func (e *env) concurrent() {
	t := newTable()
	_, _, etag := e.do(&stats{}, req{method: "GET", path: "/alice/pub/actions.atom"})
	eps := []struct {
		name string
		r    req
	}{
		{"runs list per_page=50", req{method: "GET", path: "/api/v1/repos/alice/pub/actions/runs?per_page=50"}},
		{"actions tab", req{method: "GET", path: "/alice/pub/actions"}},
		{"feed (cached)", req{method: "GET", path: "/alice/pub/actions.atom"}},
		{"feed (ETag, 304)", req{method: "GET", path: "/alice/pub/actions.atom", etag: etag, ok: []int{304}}},
		{"run (API)", req{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d", e.newest)}},
	}
	for _, ep := range eps {
		s := t.get(ep.name)
		start := time.Now()
		hammer(e.c.conns, e.c.phase, func(*rand.Rand) { e.do(s, ep.r) })
		t.print(fmt.Sprintf("concurrent: %s, %d clients, %s, %d runs", ep.name, e.c.conns, e.c.phase, e.c.runs), time.Since(start))
		t = newTable()
	}
}

// ---- the mixed phase ----

func (e *env) mixedPhase() error {
	t := newTable()
	ctx, cancel := context.WithTimeout(context.Background(), e.c.mixed)
	defer cancel()
	api := "/api/v1/repos/alice/pub/actions"
	var wg sync.WaitGroup
	var logBytes atomic.Int64
	loop := func(n int, fn func(rng *rand.Rand)) {
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(len(t.order))))
				for ctx.Err() == nil {
					fn(rng)
				}
			}()
		}
	}
	_, _, etag := e.do(&stats{}, req{method: "GET", path: "/alice/pub/actions.atom"})
	loop(2, func(*rand.Rand) { e.do(t.get("feed"), req{method: "GET", path: "/alice/pub/actions.atom"}) })
	loop(2, func(*rand.Rand) {
		e.do(t.get("feed with ETag"), req{method: "GET", path: "/alice/pub/actions.atom", etag: etag, ok: []int{200, 304}})
	})
	filters := []string{"", "&branch=main", "&workflow_file=ci.yml", "&actor=bob", "&status=completed", "&conclusion=failure",
		"&event=push", "&branch=feature-3&workflow_file=ci.yml"}
	loop(4, func(rng *rand.Rand) {
		q := fmt.Sprintf("?per_page=50&page=%d%s", 1+rng.IntN(5), filters[rng.IntN(len(filters))])
		e.do(t.get("runs list (filters)"), req{method: "GET", path: api + "/runs" + q})
	})
	tabFilters := []string{"", "?workflow=ci.yml", "?branch=main", "?status=failure", "?page=3"}
	loop(2, func(rng *rand.Rand) {
		e.do(t.get("actions tab (filters)"), req{method: "GET", path: "/alice/pub/actions" + tabFilters[rng.IntN(len(tabFilters))]})
	})
	loop(1, func(rng *rand.Rand) {
		e.do(t.get("run page"), req{method: "GET", path: fmt.Sprintf("/alice/pub/actions/runs/%d", e.newIdx-int64(rng.IntN(100)))})
		e.do(t.get("badge"), req{method: "GET", path: "/alice/pub/actions/workflows/ci.yml/badge.svg?branch=main"})
	})
	// Dispatch then cancel: the cancel storm.
	loop(1, func(rng *rand.Rand) {
		code, body, _ := e.do(t.get("dispatch"), req{method: "POST", path: api + "/workflows/bench.yml/dispatches", auth: e.token,
			body: []byte(`{"ref":"main","return_run_details":true}`)})
		var run struct {
			ID int64 `json:"id"`
		}
		if code == 200 && json.Unmarshal(body, &run) == nil && rng.IntN(2) == 0 {
			e.do(t.get("cancel run"), req{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), auth: e.token,
				ok: []int{200, 202, 409}}) // 409: it completed first
		}
	})
	// Re-run an old run, then cancel the re-run: the re-run storm.
	loop(1, func(rng *rand.Rand) {
		id := 1 + rng.Int64N(e.newest)
		code, body, _ := e.do(t.get("rerun"), req{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/rerun", id), auth: e.token,
			ok: []int{201, 404, 409}})
		var nr struct {
			RunID int64 `json:"run_id"`
		}
		if code == 201 && json.Unmarshal(body, &nr) == nil {
			e.do(t.get("cancel run"), req{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", nr.RunID), auth: e.token,
				ok: []int{200, 202, 409}})
		}
	})
	// Jobs streaming logs.
	chunk := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("building the thing, line after line ...\n"), e.c.chunkKiB*1024/40))
	raw := int64(len(chunk) / 4 * 3)
	loop(e.c.streams, func(rng *rand.Rand) {
		code, body, _ := e.do(t.get("runner heartbeat"), req{method: "POST", path: "/api/v1/runners/heartbeat", auth: e.rtoken,
			body: []byte(`{"labels":["ubuntu-latest"],"capacity":1}`), ok: []int{200, 204}})
		if code != 200 {
			time.Sleep(100 * time.Millisecond)
			return
		}
		var job struct {
			JobID int64 `json:"job_id"`
			Steps []struct {
				ID int64 `json:"id"`
			} `json:"steps"`
		}
		if json.Unmarshal(body, &job) != nil || len(job.Steps) == 0 {
			return
		}
		conclusion := "success"
	steps:
		for _, st := range job.Steps {
			e.do(t.get("step status"), req{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", job.JobID, st.ID), auth: e.rtoken,
				body: []byte(`{"status":"running"}`), ok: []int{200, 409}})
			for seq := 1; seq <= 10 && ctx.Err() == nil; seq++ {
				code, _, _ := e.do(t.get("log chunk"), req{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/logs", job.JobID), auth: e.rtoken,
					body: []byte(fmt.Sprintf(`{"step_id":%d,"seq":%d,"data":"%s"}`, st.ID, seq, chunk)), ok: []int{202, 409}})
				if code == 202 {
					logBytes.Add(raw)
				}
				if seq%5 == 0 {
					_, b, _ := e.do(t.get("cancel-check"), req{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel-check", job.JobID),
						auth: e.rtoken, ok: []int{200, 404}})
					if bytes.Contains(b, []byte(`"cancel_requested": true`)) {
						conclusion = "cancelled"
						break steps
					}
				}
			}
			e.do(t.get("step status"), req{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", job.JobID, st.ID), auth: e.rtoken,
				body: []byte(`{"status":"completed","conclusion":"success"}`), ok: []int{200, 409}})
		}
		e.do(t.get("job status"), req{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/status", job.JobID), auth: e.rtoken,
			body: []byte(`{"status":"completed","conclusion":"` + conclusion + `"}`), ok: []int{200, 409}})
	})
	// Admin commands on the same file.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tag := strconv.FormatInt(time.Now().Unix()%100000, 36) // names unique across -reuse runs
		for i := 0; ctx.Err() == nil; i++ {
			var args []string
			switch i % 4 {
			case 0:
				args = []string{"user", "create", fmt.Sprintf("u%s-%d", tag, i)}
			case 1:
				args = []string{"token", "create", "bob", "--scopes", "repo:read"}
			case 2:
				args = []string{"prune", "--logs-older-than", "90d", "--dry-run"}
			case 3:
				if i%16 == 3 {
					args = []string{"backup", filepath.Join(e.dir, fmt.Sprintf("backup-%d.db", i))}
				} else {
					args = []string{"runner", "register", fmt.Sprintf("r%s-%d", tag, i), "--labels", "gpu"}
				}
			}
			start := time.Now()
			_, err := e.cli(args...)
			t.get("cli "+args[0]).add(time.Since(start), 0, err == nil, 0)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}()
	start := time.Now()
	wg.Wait()
	d := time.Since(start)
	t.print(fmt.Sprintf("mixed: everything at once for %s, %d runs to start with", e.c.mixed, e.c.runs), d)
	fmt.Printf("logs ingested: %.1f MB/s (%d streams, %d KiB chunks)\n", float64(logBytes.Load())/1e6/d.Seconds(), e.c.streams, e.c.chunkKiB)
	// Backups taken under load must be whole.
	matches, _ := filepath.Glob(filepath.Join(e.dir, "backup-*.db"))
	for _, m := range matches {
		if _, err := exec.Command(e.bin, "--db", m, "check", "--quick").Output(); err != nil {
			return fmt.Errorf("a backup taken under load fails check: %s: %v", m, err)
		}
	}
	return nil
}
