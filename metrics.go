// Metrics in Prometheus' text exposition format, written by hand: the
// counters and histograms the server keeps in memory, the gauges read from
// the database at scrape time, and GET /metrics.

package main

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/protocol"
)

// Bucket bounds, in seconds.
var (
	httpBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	txBuckets     = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5}
	jobBuckets    = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600}
	cancelBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60}
)

// histogram is a cumulative histogram; its owner's lock guards it.
type histogram struct {
	bounds []float64
	counts []uint64 // counts[i]: observations ≤ bounds[i] and > bounds[i-1]; the last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // the first bound ≥ v
	h.counts[i]++
	h.sum += v
	h.n++
}

// metrics is what the process counts. Database gauges are read at scrape
// time instead (queued jobs, runner ages, file sizes).
type metrics struct {
	start time.Time

	logBytes     atomic.Int64 // log bytes stored
	dbBusy       atomic.Int64 // write transactions that failed with SQLITE_BUSY or SQLITE_LOCKED
	dbFull       atomic.Int64 // write transactions that failed with SQLITE_FULL
	prunedRuns   atomic.Int64
	prunedLogs   atomic.Int64 // runs whose logs were removed
	prunedBytes  atomic.Int64
	healthFailed atomic.Int64

	mu          sync.Mutex // guards everything below
	requests    map[reqKey]uint64
	reqLatency  map[string]*histogram // by route pattern
	writeWait   *histogram            // waiting for the write connection and lock
	writeTx     *histogram            // a write transaction, begin to commit
	jobDur      map[string]*histogram // by conclusion
	runDur      map[string]*histogram // by conclusion
	cancelLat   *histogram
	cancelAsked map[int64]time.Time // running jobs asked to cancel, and when
}

type reqKey struct {
	route string
	code  int
}

func newMetrics() *metrics {
	return &metrics{
		start: time.Now(), requests: map[reqKey]uint64{}, reqLatency: map[string]*histogram{},
		writeWait: newHistogram(txBuckets), writeTx: newHistogram(txBuckets),
		jobDur: map[string]*histogram{}, runDur: map[string]*histogram{},
		cancelLat: newHistogram(cancelBuckets), cancelAsked: map[int64]time.Time{},
	}
}

// request counts one HTTP request by its route pattern ("" when no route
// matched) and status.
func (m *metrics) request(pattern string, code int, d time.Duration) {
	if pattern == "" {
		pattern = "unmatched"
	}
	m.mu.Lock()
	m.requests[reqKey{pattern, code}]++
	h := m.reqLatency[pattern]
	if h == nil {
		h = newHistogram(httpBuckets)
		m.reqLatency[pattern] = h
	}
	h.observe(d.Seconds())
	m.mu.Unlock()
}

func (m *metrics) writeTxDone(wait, held time.Duration) {
	m.mu.Lock()
	m.writeWait.observe(wait.Seconds())
	m.writeTx.observe(held.Seconds())
	m.mu.Unlock()
}

// maxCancelsTracked bounds cancelAsked; a cancel past it goes unmeasured.
const maxCancelsTracked = 10_000

// cancelRequested notes when running jobs were asked to cancel, so their
// end measures the cancel's latency.
func (m *metrics) cancelRequested(jobIDs []int64) {
	if len(jobIDs) == 0 {
		return
	}
	now := time.Now()
	m.mu.Lock()
	for _, id := range jobIDs {
		if len(m.cancelAsked) < maxCancelsTracked {
			m.cancelAsked[id] = now
		}
	}
	m.mu.Unlock()
}

// jobDone observes a job's run time (from its start; 0 for one that never
// started) and, for one asked to cancel, the cancel's latency.
func (m *metrics) jobDone(jobID int64, conclusion string, started, ended time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if asked, ok := m.cancelAsked[jobID]; ok {
		delete(m.cancelAsked, jobID)
		m.cancelLat.observe(time.Since(asked).Seconds())
	}
	if started.IsZero() {
		return
	}
	h := m.jobDur[conclusion]
	if h == nil {
		h = newHistogram(jobBuckets)
		m.jobDur[conclusion] = h
	}
	h.observe(max(0, ended.Sub(started).Seconds()))
}

// runDone observes a run's time from creation to completion.
func (m *metrics) runDone(conclusion string, created, ended time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.runDur[conclusion]
	if h == nil {
		h = newHistogram(jobBuckets)
		m.runDur[conclusion] = h
	}
	h.observe(max(0, ended.Sub(created).Seconds()))
}

// ---- the exposition format ----

// promWriter writes the text format (version 0.0.4): a HELP and TYPE line
// per family, then its samples.
type promWriter struct {
	w   *bufio.Writer
	err error
}

func (p *promWriter) family(name, typ, help string) {
	fmt.Fprintf(p.w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// labelValue escapes a label value: backslash, double quote and newline.
func labelValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// labels renders {k="v",...} from alternating keys and values.
func labels(kv ...string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i] + `="` + labelValue(kv[i+1]) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

func promFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

func (p *promWriter) sample(name, lbls string, v float64) {
	fmt.Fprintf(p.w, "%s%s %s\n", name, lbls, promFloat(v))
}

// histogram writes h's _bucket, _sum and _count samples; kv are its other
// labels.
func (p *promWriter) histogram(name string, h *histogram, kv ...string) {
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		p.sample(name+"_bucket", labels(append(slices.Clone(kv), "le", promFloat(b))...), float64(cum))
	}
	cum += h.counts[len(h.bounds)]
	p.sample(name+"_bucket", labels(append(slices.Clone(kv), "le", "+Inf")...), float64(cum))
	p.sample(name+"_sum", labels(kv...), h.sum)
	p.sample(name+"_count", labels(kv...), float64(h.n))
}

// writeMetrics writes every family. Database gauges come from quick,
// indexed queries; a failing one is left out and counted in
// shithub_scrape_errors.
func (s *server) writeMetrics(ctx context.Context, out io.Writer) error {
	m := s.store.metrics
	p := &promWriter{w: bufio.NewWriter(out)}
	scrapeErrors := 0

	// From the database.
	jobs, err := s.store.openJobCounts(ctx)
	if err != nil {
		scrapeErrors++
	}
	p.family("shithub_jobs", "gauge", "Jobs queued or running, by status and runs-on labels.")
	for _, j := range jobs {
		p.sample("shithub_jobs", labels("status", j.status, "labels", j.labels), float64(j.n))
	}
	runners, err := s.store.runnerAges(ctx)
	if err != nil {
		scrapeErrors++
	}
	p.family("shithub_runner_last_seen_age_seconds", "gauge", "Seconds since each runner was last heard from (-1: never).")
	for _, r := range runners {
		p.sample("shithub_runner_last_seen_age_seconds", labels("runner", r.name), r.age)
	}
	files, err := s.store.fileStats(ctx)
	if err != nil {
		scrapeErrors++
	}
	p.family("shithub_db_bytes", "gauge", "Size of the database's files (db, wal) and its free pages (free).")
	for _, f := range files {
		p.sample("shithub_db_bytes", labels("file", f.name), float64(f.bytes))
	}

	// From the process.
	p.family("shithub_log_bytes_total", "counter", "Job log bytes stored.")
	p.sample("shithub_log_bytes_total", "", float64(m.logBytes.Load()))
	p.family("shithub_db_busy_total", "counter", "Write transactions that failed because the database was busy or locked.")
	p.sample("shithub_db_busy_total", "", float64(m.dbBusy.Load()))
	p.family("shithub_db_full_total", "counter", "Write transactions refused because the disk was full.")
	p.sample("shithub_db_full_total", "", float64(m.dbFull.Load()))
	p.family("shithub_feed_cache_requests_total", "counter", "Feed renders asked of the cache, by result.")
	p.sample("shithub_feed_cache_requests_total", labels("result", "hit"), float64(s.feeds.hits.Load()))
	p.sample("shithub_feed_cache_requests_total", labels("result", "miss"), float64(s.feeds.misses.Load()))
	p.family("shithub_pruned_total", "counter", "What retention removed: runs, and runs whose logs it removed.")
	p.sample("shithub_pruned_total", labels("what", "runs"), float64(m.prunedRuns.Load()))
	p.sample("shithub_pruned_total", labels("what", "logs"), float64(m.prunedLogs.Load()))
	p.family("shithub_pruned_log_bytes_total", "counter", "Log bytes retention removed.")
	p.sample("shithub_pruned_log_bytes_total", "", float64(m.prunedBytes.Load()))
	p.family("shithub_health_failures_total", "counter", "/healthz answers that were not ok.")
	p.sample("shithub_health_failures_total", "", float64(m.healthFailed.Load()))
	p.family("shithub_start_time_seconds", "gauge", "When the process started, in Unix seconds.")
	p.sample("shithub_start_time_seconds", "", float64(m.start.UnixMilli())/1000)
	if rss, ok := residentBytes(); ok {
		p.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.")
		p.sample("process_resident_memory_bytes", "", float64(rss))
	}

	m.mu.Lock()
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].route != keys[j].route {
			return keys[i].route < keys[j].route
		}
		return keys[i].code < keys[j].code
	})
	p.family("shithub_http_requests_total", "counter", "HTTP requests by route pattern and status.")
	for _, k := range keys {
		p.sample("shithub_http_requests_total", labels("route", k.route, "code", strconv.Itoa(k.code)), float64(m.requests[k]))
	}
	p.family("shithub_http_request_duration_seconds", "histogram", "HTTP request latency by route pattern.")
	for _, route := range sortedKeys(m.reqLatency) {
		p.histogram("shithub_http_request_duration_seconds", m.reqLatency[route], "route", route)
	}
	p.family("shithub_db_write_wait_seconds", "histogram", "Time a write waited for the write connection and lock.")
	p.histogram("shithub_db_write_wait_seconds", m.writeWait)
	p.family("shithub_db_write_tx_seconds", "histogram", "Time a write transaction held the write lock.")
	p.histogram("shithub_db_write_tx_seconds", m.writeTx)
	p.family("shithub_job_duration_seconds", "histogram", "Job run time, start to end, by conclusion.")
	for _, c := range sortedKeys(m.jobDur) {
		p.histogram("shithub_job_duration_seconds", m.jobDur[c], "conclusion", c)
	}
	p.family("shithub_run_duration_seconds", "histogram", "Run time, creation to completion, by conclusion.")
	for _, c := range sortedKeys(m.runDur) {
		p.histogram("shithub_run_duration_seconds", m.runDur[c], "conclusion", c)
	}
	p.family("shithub_cancel_latency_seconds", "histogram", "From a running job's cancel request to the job's end.")
	p.histogram("shithub_cancel_latency_seconds", m.cancelLat)
	m.mu.Unlock()

	p.family("shithub_scrape_errors", "gauge", "Database gauges this scrape could not read.")
	p.sample("shithub_scrape_errors", "", float64(scrapeErrors))
	return p.w.Flush()
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

// ---- the database's gauges ----

type jobCount struct {
	status, labels string
	n              int64
}

// openJobCounts counts queued and running jobs by runs-on, from the open
// jobs' partial index.
func (s *Store) openJobCounts(ctx context.Context) ([]jobCount, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT status, runs_on, COUNT(*) FROM jobs WHERE status != 'completed' GROUP BY status, runs_on")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byKey := map[[2]string]int64{}
	for rows.Next() {
		var st, runsOn string
		var n int64
		if err := rows.Scan(&st, &runsOn, &n); err != nil {
			return nil, err
		}
		var l []string
		if err := decodeColumn("jobs.runs_on", runsOn, &l); err != nil {
			return nil, err
		}
		byKey[[2]string{st, strings.Join(l, ",")}] += n
	}
	out := []jobCount{}
	for _, st := range []string{protocol.StatusQueued, protocol.StatusRunning} {
		keys := []string{}
		for k := range byKey {
			if k[0] == st {
				keys = append(keys, k[1])
			}
		}
		sort.Strings(keys)
		for _, l := range keys {
			out = append(out, jobCount{st, l, byKey[[2]string{st, l}]})
		}
		if len(keys) == 0 { // a zero sample, so a dashboard sees the series
			out = append(out, jobCount{st, "", 0})
		}
	}
	return out, rows.Err()
}

type runnerAge struct {
	name string
	age  float64
}

func (s *Store) runnerAges(ctx context.Context) ([]runnerAge, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, last_seen_at FROM runners ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := s.nowMS()
	var out []runnerAge
	for rows.Next() {
		var r runnerAge
		var seen *int64
		if err := rows.Scan(&r.name, &seen); err != nil {
			return nil, err
		}
		r.age = -1
		if seen != nil {
			r.age = float64(now-*seen) / 1000
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

type fileStat struct {
	name  string
	bytes int64
}

// fileStats sizes the database file, its WAL and its free pages.
func (s *Store) fileStats(ctx context.Context) ([]fileStat, error) {
	var pageSize, pages, free int64
	err := s.db.QueryRowContext(ctx, "SELECT page_size, page_count, freelist_count FROM pragma_page_size, pragma_page_count, pragma_freelist_count").
		Scan(&pageSize, &pages, &free)
	if err != nil {
		return nil, err
	}
	out := []fileStat{{"db", pageSize * pages}, {"free", pageSize * free}}
	if fi, err := os.Stat(s.path + "-wal"); err == nil {
		out = append(out, fileStat{"wal", fi.Size()})
	} else {
		out = append(out, fileStat{"wal", 0})
	}
	return out, nil
}

// ---- hooks in the state machine: each observes once its transaction commits ----

// jobEnded is finishJob's hook: a job completed.
func (s *Store) jobEnded(j *Job, conclusion string, now int64) {
	id, started := j.ID, j.StartedAt
	s.onCommit = append(s.onCommit, func() { s.metrics.jobDone(id, conclusion, started, time.UnixMilli(now)) })
}

// runEnded is rollup's hook: a run completed.
func (s *Store) runEnded(conclusion string, created, now int64) {
	s.onCommit = append(s.onCommit, func() { s.metrics.runDone(conclusion, time.UnixMilli(created), time.UnixMilli(now)) })
}

// logStored is appendLog's hook: n bytes of log were stored.
func (s *Store) logStored(n int) {
	s.onCommit = append(s.onCommit, func() { s.metrics.logBytes.Add(int64(n)) })
}
