package main

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// benchServer is a server on a fresh database with one public repository
// (alice/pub) and a runner, for benchmarks.
func benchServer(b *testing.B) (*server, *store.Repo, *store.User, string, string) {
	b.Helper()
	st, err := openStore(filepath.Join(b.TempDir(), "bench.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ctx := context.Background()
	alice, _ := st.CreateUser(ctx, "alice")
	_, pat, _ := st.CreateToken(ctx, alice, "", []string{store.ScopeWrite}, 0)
	repo, err := st.CreateRepo(ctx, alice, "pub", b.TempDir(), false)
	if err != nil {
		b.Fatal(err)
	}
	_, rtok, _ := st.CreateRunner(ctx, "r1", []string{"ubuntu-latest"})
	return newServer(st, slog.New(slog.NewTextHandler(io.Discard, nil)), ""), repo, alice, pat, rtok
}

// fillRuns inserts n completed runs straight into the table: the feed reads
// only runs, and going through insertRun would spend minutes on jobs.
func fillRuns(b *testing.B, st *store.Store, repo *store.Repo, actor *store.User, n int) {
	b.Helper()
	err := st.WithTx(context.Background(), func(tx *sql.Tx) error {
		stmt, err := tx.Prepare(`INSERT INTO runs (uuid, repo_id, run_index, workflow_file, workflow_name, workflow_content,
			head_sha, head_ref, event, actor_id, status, conclusion, created_at, completed_at, updated_at)
			VALUES (?, ?, ?, '.shithub/workflows/ci.yml', 'CI', '', ?, 'refs/heads/main', 'push', ?, 'completed', 'success', ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
		for i := range n {
			ts := t0 + int64(i)*1000
			if _, err := stmt.Exec(uuid.NewString(), repo.ID, i+1, fmt.Sprintf("%040x", i), actor.ID, ts, ts, ts); err != nil {
				return err
			}
		}
		return st.BumpRepo(tx, repo.ID, t0+int64(n)*1000)
	})
	if err != nil {
		b.Fatal(err)
	}
}

func serveParallel(b *testing.B, h http.Handler, newReq func() *http.Request, code int) {
	b.Helper()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, newReq())
			if rec.Code != code {
				b.Errorf("status = %d, want %d", rec.Code, code)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkFeed serves the feed (50 entries) of a repository of 100,000
// runs. Goal: 5,000 req/s on 2 cores.
func BenchmarkFeed(b *testing.B) {
	srv, repo, alice, _, _ := benchServer(b)
	fillRuns(b, srv.store, repo, alice, 100_000)
	serveParallel(b, srv, func() *http.Request { return httptest.NewRequest("GET", "/alice/pub/actions.atom", nil) }, 200)
}

// BenchmarkFeed304 answers a feed reader whose copy is current. Goal:
// 20,000 req/s on 2 cores.
func BenchmarkFeed304(b *testing.B) {
	srv, repo, alice, _, _ := benchServer(b)
	fillRuns(b, srv.store, repo, alice, 100_000)
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest("GET", "/alice/pub/actions.atom", nil))
	etag := rec.Header().Get("ETag")
	serveParallel(b, srv, func() *http.Request {
		r := httptest.NewRequest("GET", "/alice/pub/actions.atom", nil)
		r.Header.Set("If-None-Match", etag)
		return r
	}, http.StatusNotModified)
}

// benchRuns makes n queued runs of a two-job workflow and returns the ids
// of their first jobs.
func benchRuns(b *testing.B, st *store.Store, repo *store.Repo, actor *store.User, n int) []int64 {
	b.Helper()
	wf, err := workflow.Parse("ci.yml", []byte(testWorkflow))
	if err != nil {
		b.Fatal(err)
	}
	specs := make([]store.RunSpec, n)
	for i := range specs {
		specs[i] = store.RunSpec{RepoID: repo.ID, File: ".shithub/workflows/ci.yml", Content: []byte(testWorkflow), Workflow: wf,
			HeadSHA: fmt.Sprintf("%040x", i), HeadRef: "refs/heads/main", Event: "push", ActorID: actor.ID}
	}
	if _, _, err := st.CreateRuns(context.Background(), nil, specs); err != nil {
		b.Fatal(err)
	}
	var ids []int64
	rows, err := st.DBForTest().Query("SELECT id FROM jobs WHERE job_key = 'build' ORDER BY id")
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}

// BenchmarkCancel cancels queued jobs through the API (each cancel also
// skips the job's dependent and completes the run). Goal: 1,000 req/s.
func BenchmarkCancel(b *testing.B) {
	srv, repo, alice, pat, _ := benchServer(b)
	ids := benchRuns(b, srv.store, repo, alice, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		r := httptest.NewRequest("POST", fmt.Sprintf("/api/v1/jobs/%d/cancel", ids[i]), nil)
		r.Header.Set("Authorization", "Bearer "+pat)
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, r)
		if rec.Code != http.StatusAccepted {
			b.Fatalf("status = %d, want 202: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

// BenchmarkHeartbeatClaim claims queued jobs through the runner API, from
// two runners at once.
func BenchmarkHeartbeatClaim(b *testing.B) {
	srv, repo, alice, _, rtok := benchServer(b)
	benchRuns(b, srv.store, repo, alice, b.N)
	serveParallel(b, srv, func() *http.Request {
		r := httptest.NewRequest("POST", "/api/v1/runners/heartbeat", strings.NewReader(`{"capacity":1}`))
		r.Header.Set("Authorization", "Bearer "+rtok)
		return r
	}, http.StatusOK)
}

// BenchmarkFeedUncached renders the feed on every request, as right after a
// run changed: the cost the cache saves.
func BenchmarkFeedUncached(b *testing.B) {
	srv, repo, alice, _, _ := benchServer(b)
	fillRuns(b, srv.store, repo, alice, 100_000)
	serveParallel(b, srv, func() *http.Request {
		srv.feeds.mu.Lock()
		srv.feeds.entries = nil
		srv.feeds.mu.Unlock()
		return httptest.NewRequest("GET", "/alice/pub/actions.atom", nil)
	}, 200)
}

// cpuTime is the process's user and system CPU time so far: on a shared
// machine it measures work where wall time measures the neighbours too.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFeedRender renders the feed of a repository of 100,000 runs
// without the cache and without HTTP, as the first request after a change
// does: "query" is the 50-run query, "write" building and writing the XML,
// "all" both. Goal: 250 µs for all. cpu-µs/op is CPU time per render,
// which a busy machine disturbs less than wall time.
func BenchmarkFeedRender(b *testing.B) {
	srv, repo, alice, _, _ := benchServer(b)
	fillRuns(b, srv.store, repo, alice, 100_000)
	ctx := context.Background()
	repo, _ = srv.store.RepoByID(ctx, repo.ID)
	runs, _ := srv.store.LatestRuns(ctx, repo.ID, feedSize)
	for _, part := range []string{"query", "write", "all"} {
		b.Run(part, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for range b.N {
				rs := runs
				if part != "write" {
					var err error
					if rs, err = srv.store.LatestRuns(ctx, repo.ID, feedSize); err != nil || len(rs) != feedSize {
						b.Fatal(err)
					}
				}
				if part != "query" {
					if err := writeFeed(io.Discard, buildFeed("https://ci.example", repo, rs)); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkRunPageRSS measures, without asserting any bound, how much a
// serve process's peak resident memory (VmHWM) grows while it answers the
// run page, and then the raw log, of a job with 3 steps of 16 MiB of log
// each: the rss-MB metrics. Linux only (/proc).
//
//	go test -run '^$' -bench BenchmarkRunPageRSS -benchtime 5x .
func BenchmarkRunPageRSS(b *testing.B) {
	dir := b.TempDir()
	db := filepath.Join(dir, "rss.db")
	st, err := openStore(db, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	alice, _ := st.CreateUser(ctx, "alice")
	repo, err := st.CreateRepo(ctx, alice, "pub", dir, false)
	if err != nil {
		b.Fatal(err)
	}
	const wf = "on: push\njobs:\n  big:\n    runs-on: x\n    steps:\n      - run: a\n      - run: b\n      - run: c\n"
	parsed, err := workflow.Parse("big.yml", []byte(wf))
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := st.CreateRuns(ctx, nil, []store.RunSpec{{RepoID: repo.ID, File: ".shithub/workflows/big.yml", Content: []byte(wf),
		Workflow: parsed, HeadSHA: strings.Repeat("a", 40), HeadRef: "refs/heads/main", Event: "push", ActorID: alice.ID}}); err != nil {
		b.Fatal(err)
	}
	rn, _, _ := st.CreateRunner(ctx, "r1", []string{"x"})
	job, err := st.ClaimJob(ctx, rn, rn.Labels)
	if err != nil || job == nil {
		b.Fatalf("claim: %v %v", job, err)
	}
	chunk := []byte(strings.Repeat("0123456789abcdef\x1b[1mbold\x1b[0m <&> line\n", 64<<10/30)[:64<<10])
	for _, step := range job.Steps[1:] {
		for seq := int64(1); seq <= 256; seq++ { // 16 MiB
			if err := st.AppendLog(ctx, rn.ID, job.JobID, step.ID, seq, chunk); err != nil {
				b.Fatal(err)
			}
		}
	}
	st.Close()

	exe, _ := os.Executable()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(exe, "--db", db, "serve", "--addr", addr, "--runners", "0")
	cmd.Env = append(os.Environ(), "SHITHUB_ACTIONS_TEST_MAIN=1")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	get := func(path string) int64 {
		for range 200 {
			res, err := http.Get("http://" + addr + path)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			n, _ := io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Fatalf("GET %s: %d", path, res.StatusCode)
			}
			return n
		}
		b.Fatalf("serve did not answer")
		return 0
	}
	status := func(field string) float64 {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
				return kb / 1024
			}
		}
		b.Fatalf("no %s", field)
		return 0
	}
	get("/alice/pub/actions") // warm up: templates, connections
	base := status("VmHWM")
	b.ResetTimer()
	var page int64
	for range b.N {
		page = get("/alice/pub/actions/runs/1")
	}
	b.StopTimer()
	pageHWM := status("VmHWM")
	raw := get(fmt.Sprintf("/alice/pub/actions/runs/1/jobs/%d/log", job.JobID))
	rawHWM := status("VmHWM")
	b.ReportMetric(pageHWM-base, "run-page-rss-MB")
	b.ReportMetric(rawHWM-base, "page+raw-log-rss-MB")
	b.Logf("serve VmHWM: %.1f MB before, %.1f MB after %d run pages of %d bytes, %.1f MB after the %d-byte raw log",
		base, pageHWM, b.N, page, rawHWM, raw)
}

// BenchmarkPrune measures retention's write transactions, which other
// writers wait behind: on a copy of a file of 5,000 runs (one every 3
// hours, 6 steps of 2 KiB of log each, every 100th with a 2 MiB log in 64
// KiB chunks), `prune --runs-older-than 365d` (2,080 runs) and
// `--logs-older-than 30d` (the logs of 4,760), freed pages handed back.
// It reports the transactions' p50, p99 and longest, and how long a
// writer alongside (one small transaction every 2 ms, as the API's)
// waited for its own, p99 and longest. Goal: p99 ≤ 5 ms, p50 about 2.
// go test -run X -bench Prune -benchtime 1x .
func BenchmarkPrune(b *testing.B) {
	ctx := context.Background()
	src := filepath.Join(b.TempDir(), "src.db")
	st, err := openStore(src, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	alice, _ := st.CreateUser(ctx, "alice")
	if _, err := st.CreateRepo(ctx, alice, "pub", b.TempDir(), false); err != nil {
		b.Fatal(err)
	}
	st.Close()
	var out, errOut strings.Builder
	if err := run(ctx, []string{"--db", src, "dev", "fill", "--repo", "alice/pub", "--runs", "5000", "--every", "3h",
		"--logs-for", "5000"}, strings.NewReader(""), &out, &errOut); err != nil {
		b.Fatalf("dev fill: %v %s", err, errOut.String())
	}
	st, err = openStore(src, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	err = st.WithTx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.Query(`SELECT MIN(s.id) FROM runs r JOIN jobs j ON j.run_id = r.id JOIN steps s ON s.job_id = j.id
			WHERE r.id % 100 = 0 AND s.log_size > 0 GROUP BY r.id`)
		ids, err := store.ScanAll(rows, err, func(r interface{ Scan(...any) error }) (id int64, err error) { return id, r.Scan(&id) })
		if err != nil {
			return err
		}
		chunk := bytes.Repeat([]byte("compiling package ... ok\n"), 64<<10/25+1)[:64<<10]
		for _, id := range ids {
			if _, err := tx.Exec("DELETE FROM log_chunks WHERE step_id = ?", id); err != nil {
				return err
			}
			for seq := 1; seq <= 32; seq++ {
				if _, err := tx.Exec("INSERT INTO log_chunks (step_id, seq, data) VALUES (?, ?, ?)", id, seq, chunk); err != nil {
					return err
				}
			}
			if _, err := tx.Exec("UPDATE steps SET log_size = ? WHERE id = ?", 32*len(chunk), id); err != nil {
				return err
			}
		}
		return nil
	})
	st.Close()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		keep store.Retention
	}{
		{"runs", store.Retention{Runs: 365 * 24 * time.Hour}},
		{"logs", store.Retention{Logs: 30 * 24 * time.Hour}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var all, writer store.PruneReport
			for range b.N {
				b.StopTimer()
				db := filepath.Join(b.TempDir(), "prune.db")
				if err := copySynced(db, src); err != nil {
					b.Fatal(err)
				}
				st, err := openStore(db, store.Options{})
				if err != nil {
					b.Fatal(err)
				}
				// Meanwhile a writer, as the API's are, every 2 ms.
				stop, done := make(chan struct{}), make(chan struct{})
				go func() {
					defer close(done)
					for {
						select {
						case <-stop:
							return
						case <-time.After(2 * time.Millisecond):
						}
						start := time.Now()
						if err := st.WithTx(ctx, func(tx *sql.Tx) error {
							_, err := tx.Exec("UPDATE users SET name = name WHERE id = 1")
							return err
						}); err != nil {
							b.Error(err)
							return
						}
						writer.Took = append(writer.Took, time.Since(start))
					}
				}()
				b.StartTimer()
				rep, err := st.Prune(ctx, bc.keep, store.PruneOpts{})
				b.StopTimer()
				close(stop)
				<-done
				st.Close()
				if err != nil || rep.Empty() {
					b.Fatalf("prune = %+v, %v", rep, err)
				}
				all.Took = append(all.Took, rep.Took...)
				all.Slow += rep.Slow
			}
			b.ReportMetric(float64(len(all.Took))/float64(b.N), "tx/op")
			b.ReportMetric(float64(all.Percentile(0.5).Microseconds()), "p50-µs")
			b.ReportMetric(float64(all.Percentile(0.99).Microseconds()), "p99-µs")
			b.ReportMetric(float64(all.Percentile(1).Microseconds()), "max-µs")
			b.ReportMetric(float64(all.Slow)/float64(b.N), "over5ms/op")
			b.ReportMetric(float64(writer.Percentile(0.99).Microseconds()), "writer-p99-µs")
			b.ReportMetric(float64(writer.Percentile(1).Microseconds()), "writer-max-µs")
		})
	}
}

// copySynced copies a file and syncs the copy: else the first fsync that
// follows, a checkpoint's, writes all of it out, and is measured.
func copySynced(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return errors.Join(out.Sync(), out.Close())
}

// BenchmarkRunPageAt1M renders the run page (job graph, numbered log
// lines, search and re-run forms) of a run with a matrix, needs and a
// "caller / job" group, 300 logged lines in each of four steps, in a
// repository of 1,000,000 runs (BENCH_RUNS to change it; filling takes a
// minute or two). Goal: under 10 ms a page.
//
//	go test -run '^$' -bench RunPageAt1M -benchtime 200x .
func BenchmarkRunPageAt1M(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("BENCH_RUNS")); err == nil {
		n = v
	}
	srv, repo, alice, _, _ := benchServer(b)
	st := srv.store
	fillRuns(b, st, repo, alice, n)
	ctx := context.Background()
	const wf = `name: Graph
on: push
jobs:
  build:
    strategy:
      matrix:
        go: ["1.22", "1.23", "1.24"]
    runs-on: ubuntu-latest
    steps:
      - run: make
  lint:
    runs-on: ubuntu-latest
    steps:
      - run: vet
  test:
    name: release / test
    needs: [build, lint]
    runs-on: ubuntu-latest
    steps:
      - run: make test
  deploy:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - run: ./deploy
`
	parsed, err := workflow.Parse("graph.yml", []byte(wf))
	if err != nil {
		b.Fatal(err)
	}
	runs, _, err := st.CreateRuns(ctx, nil, []store.RunSpec{{RepoID: repo.ID, File: ".shithub/workflows/graph.yml", Content: []byte(wf),
		Workflow: parsed, HeadSHA: strings.Repeat("b", 40), HeadRef: "refs/heads/main", Event: "push", ActorID: alice.ID}})
	if err != nil {
		b.Fatal(err)
	}
	rn, _, err := st.CreateRunner(ctx, "bench", []string{"ubuntu-latest"})
	if err != nil {
		b.Fatal(err)
	}
	var lines strings.Builder
	for i := range 300 {
		fmt.Fprintf(&lines, "\x1b[32mok\x1b[0m compiling unit %d of the bench\n", i)
		if i == 100 {
			lines.WriteString("##[group]Fetch modules\nfetch a\nfetch b\n##[endgroup]\n")
		}
	}
	for range 4 { // the three legs and lint, running with their logs
		j, err := st.ClaimJob(ctx, rn, rn.Labels)
		if err != nil || j == nil {
			b.Fatalf("claim: %v %v", j, err)
		}
		if err := st.SetStepStatus(ctx, rn.ID, j.JobID, j.Steps[1].ID, "running", ""); err != nil {
			b.Fatal(err)
		}
		if err := st.AppendLog(ctx, rn.ID, j.JobID, j.Steps[1].ID, 1, []byte(lines.String())); err != nil {
			b.Fatal(err)
		}
	}
	target := fmt.Sprintf("/alice/pub/actions/runs/%d", runs[0].RunIndex)
	b.ReportAllocs()
	// On a shared machine the wall time per page is mostly waiting for a
	// core: the process's CPU time per page is reported beside it.
	cpu := func() time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	c0, size := cpu(), 0
	for b.Loop() {
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `class="g-node"`) {
			b.Fatalf("GET %s: %d", target, rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(cpu()-c0)/float64(b.N)/1e6, "cpu-ms/op")
	b.ReportMetric(float64(size), "page-bytes")
}
