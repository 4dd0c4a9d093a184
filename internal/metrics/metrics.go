// Metrics in Prometheus' text exposition format, written by hand: the
// counters and histograms the server keeps in memory, the gauges read from
// the database at scrape time, and GET /metrics.

package metrics

import (
	"bufio"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Bucket bounds, in seconds.
var (
	httpBuckets   = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	txBuckets     = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5}
	jobBuckets    = []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 21600}
	cancelBuckets = []float64{0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60}
)

// histogram is a cumulative histogram; its owner's lock guards it.
type Histogram struct {
	bounds []float64
	counts []uint64 // counts[i]: observations ≤ bounds[i] and > bounds[i-1]; the last is +Inf
	sum    float64
	n      uint64
}

func NewHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *Histogram) observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // the first bound ≥ v
	h.counts[i]++
	h.sum += v
	h.n++
}

// metrics is what the process counts. Database gauges are read at scrape
// time instead (queued jobs, runner ages, file sizes).
type Metrics struct {
	Start time.Time

	LogBytes     atomic.Int64 // log bytes stored
	DbBusy       atomic.Int64 // write transactions that failed with SQLITE_BUSY or SQLITE_LOCKED
	DbFull       atomic.Int64 // write transactions that failed with SQLITE_FULL
	PrunedRuns   atomic.Int64
	PrunedLogs   atomic.Int64 // runs whose logs were removed
	PrunedBytes  atomic.Int64
	HealthFailed atomic.Int64

	Mu          sync.Mutex // guards everything below
	Requests    map[ReqKey]uint64
	ReqLatency  map[string]*Histogram // by route pattern
	WriteWait   *Histogram            // waiting for the write connection and lock
	WriteTx     *Histogram            // a write transaction, begin to commit
	JobDur      map[string]*Histogram // by conclusion
	RunDur      map[string]*Histogram // by conclusion
	CancelLat   *Histogram
	cancelAsked map[int64]time.Time // running jobs asked to cancel, and when
}

type ReqKey struct {
	Route string
	Code  int
}

func New() *Metrics {
	return &Metrics{
		Start: time.Now(), Requests: map[ReqKey]uint64{}, ReqLatency: map[string]*Histogram{},
		WriteWait: NewHistogram(txBuckets), WriteTx: NewHistogram(txBuckets),
		JobDur: map[string]*Histogram{}, RunDur: map[string]*Histogram{},
		CancelLat: NewHistogram(cancelBuckets), cancelAsked: map[int64]time.Time{},
	}
}

// request counts one HTTP request by its route pattern ("" when no route
// matched) and status.
func (m *Metrics) Request(pattern string, code int, d time.Duration) {
	if pattern == "" {
		pattern = "unmatched"
	}
	m.Mu.Lock()
	m.Requests[ReqKey{pattern, code}]++
	h := m.ReqLatency[pattern]
	if h == nil {
		h = NewHistogram(httpBuckets)
		m.ReqLatency[pattern] = h
	}
	h.observe(d.Seconds())
	m.Mu.Unlock()
}

func (m *Metrics) WriteTxDone(wait, held time.Duration) {
	m.Mu.Lock()
	m.WriteWait.observe(wait.Seconds())
	m.WriteTx.observe(held.Seconds())
	m.Mu.Unlock()
}

// maxCancelsTracked bounds cancelAsked; a cancel past it goes unmeasured.
const maxCancelsTracked = 10_000

// cancelRequested notes when running jobs were asked to cancel, so their
// end measures the cancel's latency.
func (m *Metrics) CancelRequested(jobIDs []int64) {
	if len(jobIDs) == 0 {
		return
	}
	now := time.Now()
	m.Mu.Lock()
	for _, id := range jobIDs {
		if len(m.cancelAsked) < maxCancelsTracked {
			m.cancelAsked[id] = now
		}
	}
	m.Mu.Unlock()
}

// jobDone observes a job's run time (from its start; 0 for one that never
// started) and, for one asked to cancel, the cancel's latency.
func (m *Metrics) JobDone(jobID int64, conclusion string, started, ended time.Time) {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	if asked, ok := m.cancelAsked[jobID]; ok {
		delete(m.cancelAsked, jobID)
		m.CancelLat.observe(time.Since(asked).Seconds())
	}
	if started.IsZero() {
		return
	}
	h := m.JobDur[conclusion]
	if h == nil {
		h = NewHistogram(jobBuckets)
		m.JobDur[conclusion] = h
	}
	h.observe(max(0, ended.Sub(started).Seconds()))
}

// runDone observes a run's time from creation to completion.
func (m *Metrics) RunDone(conclusion string, created, ended time.Time) {
	m.Mu.Lock()
	defer m.Mu.Unlock()
	h := m.RunDur[conclusion]
	if h == nil {
		h = NewHistogram(jobBuckets)
		m.RunDur[conclusion] = h
	}
	h.observe(max(0, ended.Sub(created).Seconds()))
}

// ---- the exposition format ----

// promWriter writes the text format (version 0.0.4): a HELP and TYPE line
// per family, then its samples.
type Writer struct {
	W   *bufio.Writer
	err error
}

func (p *Writer) Family(name, typ, help string) {
	fmt.Fprintf(p.W, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

// labelValue escapes a label value: backslash, double quote and newline.
func labelValue(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// labels renders {k="v",...} from alternating keys and values.
func Labels(kv ...string) string {
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

func (p *Writer) Sample(name, lbls string, v float64) {
	fmt.Fprintf(p.W, "%s%s %s\n", name, lbls, promFloat(v))
}

// histogram writes h's _bucket, _sum and _count samples; kv are its other
// labels.
func (p *Writer) Histogram(name string, h *Histogram, kv ...string) {
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		p.Sample(name+"_bucket", Labels(append(slices.Clone(kv), "le", promFloat(b))...), float64(cum))
	}
	cum += h.counts[len(h.bounds)]
	p.Sample(name+"_bucket", Labels(append(slices.Clone(kv), "le", "+Inf")...), float64(cum))
	p.Sample(name+"_sum", Labels(kv...), h.sum)
	p.Sample(name+"_count", Labels(kv...), float64(h.n))
}

// ---- the database's gauges ----

// ---- hooks in the state machine: each observes once its transaction commits ----
