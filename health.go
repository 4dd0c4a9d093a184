// GET /healthz: whether the database answers a read and a write in time.

package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"database/sql"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/metrics"
	"shithub-actions/internal/store"
)

// healthTimeout is how long /healthz waits for the database's answers.
const healthTimeout = time.Second

// healthProbe shares one write probe among concurrent health checks, so
// a stuck database is not handed a queue of probes.
type healthProbe struct {
	mu       sync.Mutex    // guards inFlight
	inFlight chan struct{} // closed when the running write probe ends; nil when none runs
	err      error         // the running probe's result, set before inFlight closes
}

// write starts a write probe unless one is running and returns the
// channel its end closes, with a function reading its result.
func (h *healthProbe) write(st *store.Store) (<-chan struct{}, func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight == nil {
		done := make(chan struct{})
		h.inFlight = done
		go func() {
			err := st.WithTx(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('health', ?)
					ON CONFLICT (key) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano))
				return err
			})
			h.mu.Lock()
			h.err = err
			h.inFlight = nil
			h.mu.Unlock()
			close(done)
		}()
	}
	done := h.inFlight
	return done, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.err
	}
}

// handleHealth serves GET /healthz: 200 "ok" when the database answers a
// read and a write within a second, else 503 with the reason. A write
// probe that outlives the request finishes on its own; it is never
// cancelled half-way.
func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	fail := func(reason string) {
		s.store.Metrics().HealthFailed.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(reason + "\n"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		fail("database read failed: " + errText(err))
		return
	}
	done, result := s.health.write(s.store)
	select {
	case <-done:
		if err := result(); err != nil {
			fail("database write failed: " + errText(err))
			return
		}
	case <-ctx.Done():
		fail("database write did not finish within " + healthTimeout.String())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// errText is an error's text for an operator: the domain's message when
// there is one, else the cause.
func errText(err error) string {
	if ae, ok := err.(*apperr.Error); ok && ae.Msg != "" {
		return ae.Msg
	}
	return err.Error()
}

// writeMetrics writes every family. Database gauges come from quick,
// indexed queries; a failing one is left out and counted in
// shithub_scrape_errors.
func (s *server) writeMetrics(ctx context.Context, out io.Writer) error {
	m := s.store.Metrics()
	p := &metrics.Writer{W: bufio.NewWriter(out)}
	scrapeErrors := 0

	// From the database.
	jobs, err := s.store.OpenJobCounts(ctx)
	if err != nil {
		scrapeErrors++
	}
	p.Family("shithub_jobs", "gauge", "Jobs queued or running, by status and runs-on labels.")
	for _, j := range jobs {
		p.Sample("shithub_jobs", metrics.Labels("status", j.Status, "labels", j.Labels), float64(j.N))
	}
	runners, err := s.store.RunnerAges(ctx)
	if err != nil {
		scrapeErrors++
	}
	p.Family("shithub_runner_last_seen_age_seconds", "gauge", "Seconds since each runner was last heard from (-1: never).")
	for _, r := range runners {
		p.Sample("shithub_runner_last_seen_age_seconds", metrics.Labels("runner", r.Name), r.Age)
	}
	files, err := s.store.FileStats(ctx)
	if err != nil {
		scrapeErrors++
	}
	p.Family("shithub_db_bytes", "gauge", "Size of the database's files (db, wal) and its free pages (free).")
	for _, f := range files {
		p.Sample("shithub_db_bytes", metrics.Labels("file", f.Name), float64(f.Bytes))
	}

	// From the process.
	p.Family("shithub_log_bytes_total", "counter", "Job log bytes stored.")
	p.Sample("shithub_log_bytes_total", "", float64(m.LogBytes.Load()))
	p.Family("shithub_db_busy_total", "counter", "Write transactions that failed because the database was busy or locked.")
	p.Sample("shithub_db_busy_total", "", float64(m.DbBusy.Load()))
	p.Family("shithub_db_full_total", "counter", "Write transactions refused because the disk was full.")
	p.Sample("shithub_db_full_total", "", float64(m.DbFull.Load()))
	p.Family("shithub_feed_cache_requests_total", "counter", "Feed renders asked of the cache, by result.")
	p.Sample("shithub_feed_cache_requests_total", metrics.Labels("result", "hit"), float64(s.feeds.hits.Load()))
	p.Sample("shithub_feed_cache_requests_total", metrics.Labels("result", "miss"), float64(s.feeds.misses.Load()))
	p.Family("shithub_pruned_total", "counter", "What retention removed: runs, and runs whose logs it removed.")
	p.Sample("shithub_pruned_total", metrics.Labels("what", "runs"), float64(m.PrunedRuns.Load()))
	p.Sample("shithub_pruned_total", metrics.Labels("what", "logs"), float64(m.PrunedLogs.Load()))
	p.Family("shithub_pruned_log_bytes_total", "counter", "Log bytes retention removed.")
	p.Sample("shithub_pruned_log_bytes_total", "", float64(m.PrunedBytes.Load()))
	p.Family("shithub_health_failures_total", "counter", "/healthz answers that were not ok.")
	p.Sample("shithub_health_failures_total", "", float64(m.HealthFailed.Load()))
	p.Family("shithub_start_time_seconds", "gauge", "When the process started, in Unix seconds.")
	p.Sample("shithub_start_time_seconds", "", float64(m.Start.UnixMilli())/1000)
	if rss, ok := residentBytes(); ok {
		p.Family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
		p.Sample("process_resident_memory_bytes", "", float64(rss))
	}

	m.Mu.Lock()
	keys := make([]metrics.ReqKey, 0, len(m.Requests))
	for k := range m.Requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Route != keys[j].Route {
			return keys[i].Route < keys[j].Route
		}
		return keys[i].Code < keys[j].Code
	})
	p.Family("shithub_http_requests_total", "counter", "HTTP requests by route pattern and status.")
	for _, k := range keys {
		p.Sample("shithub_http_requests_total", metrics.Labels("route", k.Route, "code", strconv.Itoa(k.Code)), float64(m.Requests[k]))
	}
	p.Family("shithub_http_request_duration_seconds", "histogram", "HTTP request latency by route pattern.")
	for _, route := range store.SortedKeys(m.ReqLatency) {
		p.Histogram("shithub_http_request_duration_seconds", m.ReqLatency[route], "route", route)
	}
	p.Family("shithub_db_write_wait_seconds", "histogram", "Time a write waited for the write connection and lock.")
	p.Histogram("shithub_db_write_wait_seconds", m.WriteWait)
	p.Family("shithub_db_write_tx_seconds", "histogram", "Time a write transaction held the write lock.")
	p.Histogram("shithub_db_write_tx_seconds", m.WriteTx)
	p.Family("shithub_job_duration_seconds", "histogram", "Job run time, start to end, by conclusion.")
	for _, c := range store.SortedKeys(m.JobDur) {
		p.Histogram("shithub_job_duration_seconds", m.JobDur[c], "conclusion", c)
	}
	p.Family("shithub_run_duration_seconds", "histogram", "Run time, creation to completion, by conclusion.")
	for _, c := range store.SortedKeys(m.RunDur) {
		p.Histogram("shithub_run_duration_seconds", m.RunDur[c], "conclusion", c)
	}
	p.Family("shithub_cancel_latency_seconds", "histogram", "From a running job's cancel request to the job's end.")
	p.Histogram("shithub_cancel_latency_seconds", m.CancelLat)
	m.Mu.Unlock()

	p.Family("shithub_scrape_errors", "gauge", "Database gauges this scrape could not read.")
	p.Sample("shithub_scrape_errors", "", float64(scrapeErrors))
	return p.W.Flush()
}

// residentBytes reads the process's resident set size (Linux only).
func residentBytes() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

// handleMetrics serves GET /metrics. With --metrics-token it wants that
// token as a bearer token; without, anyone who reaches the port may read it.
func (s *server) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	if s.metricsToken != "" {
		got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if subtle.ConstantTimeCompare([]byte(got), []byte(s.metricsToken)) != 1 {
			return &apperr.Error{Code: apperr.Unauthenticated, Msg: "metrics need the --metrics-token as a bearer token"}
		}
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	return s.writeMetrics(r.Context(), w)
}
