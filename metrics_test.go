package main

import (
	"bufio"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promSample is one parsed sample line.
type promSample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	promNameRE  = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	promLabelRE = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

// parseProm parses Prometheus' text exposition format (0.0.4) strictly:
// every sample belongs to a family declared by a TYPE line before it, names
// and label names are valid, label values use only the three escapes, each
// family is declared once, and histograms' buckets are cumulative and end
// in +Inf equal to _count.
func parseProm(text string) (map[string]string, []promSample, error) {
	types := map[string]string{}
	helps := map[string]bool{}
	var samples []promSample
	sc := bufio.NewScanner(strings.NewReader(text))
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		if l == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(l, "# "); ok {
			f := strings.SplitN(rest, " ", 3)
			if len(f) < 2 {
				continue // a comment
			}
			switch f[0] {
			case "HELP":
				if helps[f[1]] {
					return nil, nil, fmt.Errorf("line %d: second HELP for %s", line, f[1])
				}
				helps[f[1]] = true
			case "TYPE":
				if len(f) != 3 || !promNameRE.MatchString(f[1]) {
					return nil, nil, fmt.Errorf("line %d: bad TYPE line %q", line, l)
				}
				if _, dup := types[f[1]]; dup {
					return nil, nil, fmt.Errorf("line %d: second TYPE for %s", line, f[1])
				}
				switch f[2] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					return nil, nil, fmt.Errorf("line %d: unknown type %q", line, f[2])
				}
				types[f[1]] = f[2]
			}
			continue
		}
		s, err := parsePromSample(l)
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %v: %q", line, err, l)
		}
		fam := s.name
		if _, ok := types[fam]; !ok {
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if base, ok := strings.CutSuffix(s.name, suf); ok && types[base] == "histogram" {
					fam = base
				}
			}
		}
		typ, ok := types[fam]
		if !ok {
			return nil, nil, fmt.Errorf("line %d: sample %s before its TYPE", line, s.name)
		}
		if typ == "histogram" && fam == s.name {
			return nil, nil, fmt.Errorf("line %d: histogram %s has a bare sample", line, s.name)
		}
		if typ == "counter" && s.value < 0 {
			return nil, nil, fmt.Errorf("line %d: negative counter", line)
		}
		samples = append(samples, s)
	}
	// Histograms: per label set, cumulative buckets ending in +Inf = _count.
	type series struct {
		last, inf float64
		seenInf   bool
	}
	hs := map[string]*series{}
	counts := map[string]float64{}
	key := func(s promSample) string {
		var parts []string
		for k, v := range s.labels {
			if k != "le" {
				parts = append(parts, k+"="+v)
			}
		}
		sortStrings(parts)
		return strings.Join(parts, ",")
	}
	for _, s := range samples {
		if base, ok := strings.CutSuffix(s.name, "_bucket"); ok && types[base] == "histogram" {
			k := base + "|" + key(s)
			h := hs[k]
			if h == nil {
				h = &series{}
				hs[k] = h
			}
			if s.value < h.last {
				return nil, nil, fmt.Errorf("%s{%s}: buckets not cumulative", base, key(s))
			}
			h.last = s.value
			if s.labels["le"] == "+Inf" {
				h.inf, h.seenInf = s.value, true
			}
		}
		if base, ok := strings.CutSuffix(s.name, "_count"); ok && types[base] == "histogram" {
			counts[base+"|"+key(s)] = s.value
		}
	}
	for k, h := range hs {
		if !h.seenInf || h.inf != counts[k] {
			return nil, nil, fmt.Errorf("%s: +Inf bucket %v, _count %v", k, h.inf, counts[k])
		}
	}
	return types, samples, sc.Err()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func parsePromSample(l string) (promSample, error) {
	s := promSample{labels: map[string]string{}}
	i := strings.IndexAny(l, "{ ")
	if i < 0 {
		return s, fmt.Errorf("no value")
	}
	s.name = l[:i]
	if !promNameRE.MatchString(s.name) {
		return s, fmt.Errorf("bad metric name")
	}
	rest := l[i:]
	if rest[0] == '{' {
		rest = rest[1:]
		for {
			if strings.HasPrefix(rest, "}") {
				rest = rest[1:]
				break
			}
			eq := strings.IndexByte(rest, '=')
			if eq < 0 || !promLabelRE.MatchString(rest[:eq]) || len(rest) < eq+2 || rest[eq+1] != '"' {
				return s, fmt.Errorf("bad label")
			}
			name := rest[:eq]
			rest = rest[eq+2:]
			var v strings.Builder
			for {
				if rest == "" {
					return s, fmt.Errorf("unterminated label value")
				}
				c := rest[0]
				rest = rest[1:]
				if c == '"' {
					break
				}
				if c == '\\' {
					if rest == "" {
						return s, fmt.Errorf("bad escape")
					}
					switch rest[0] {
					case '\\':
						v.WriteByte('\\')
					case '"':
						v.WriteByte('"')
					case 'n':
						v.WriteByte('\n')
					default:
						return s, fmt.Errorf("bad escape \\%c", rest[0])
					}
					rest = rest[1:]
					continue
				}
				if c == '\n' {
					return s, fmt.Errorf("raw newline in a label value")
				}
				v.WriteByte(c)
			}
			if _, dup := s.labels[name]; dup {
				return s, fmt.Errorf("label %s twice", name)
			}
			s.labels[name] = v.String()
			if strings.HasPrefix(rest, ",") {
				rest = rest[1:]
			}
		}
	}
	f := strings.Fields(rest)
	if len(f) < 1 || len(f) > 2 {
		return s, fmt.Errorf("want a value and an optional timestamp")
	}
	switch f[0] {
	case "+Inf":
		s.value = math.Inf(1)
	case "-Inf":
		s.value = math.Inf(-1)
	case "NaN":
		s.value = math.NaN()
	default:
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return s, fmt.Errorf("bad value %q", f[0])
		}
		s.value = v
	}
	return s, nil
}

// value is the sum of the samples of name whose labels include want.
func promValue(samples []promSample, name string, want ...string) float64 {
	var sum float64
	for _, s := range samples {
		if s.name != name {
			continue
		}
		ok := true
		for i := 0; i+1 < len(want); i += 2 {
			if s.labels[want[i]] != want[i+1] {
				ok = false
			}
		}
		if ok {
			sum += s.value
		}
	}
	return sum
}

func (ts *testServer) scrape() []promSample {
	ts.t.Helper()
	res := ts.want(request{method: "GET", path: "/metrics"}, 200, nil)
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		ts.t.Fatalf("GET /metrics: Content-Type = %q", ct)
	}
	types, samples, err := parseProm(string(res.body))
	if err != nil {
		ts.t.Fatalf("GET /metrics does not parse: %v\n%s", err, res.body)
	}
	for name, typ := range map[string]string{
		"shithub_jobs": "gauge", "shithub_job_duration_seconds": "histogram", "shithub_run_duration_seconds": "histogram",
		"shithub_cancel_latency_seconds": "histogram", "shithub_log_bytes_total": "counter",
		"shithub_http_requests_total": "counter", "shithub_http_request_duration_seconds": "histogram",
		"shithub_db_busy_total": "counter", "shithub_db_write_tx_seconds": "histogram", "shithub_db_write_wait_seconds": "histogram",
		"shithub_feed_cache_requests_total": "counter", "shithub_runner_last_seen_age_seconds": "gauge",
		"shithub_db_bytes": "gauge", "shithub_pruned_total": "counter",
	} {
		if types[name] != typ {
			ts.t.Errorf("GET /metrics: %s is %q, want a %s", name, types[name], typ)
		}
	}
	return samples
}

// TestMetrics scrapes /metrics, parses it, and checks that the series move
// when things happen.
func TestMetrics(t *testing.T) {
	ts := newTestServer(t)
	before := ts.scrape()
	if v := promValue(before, "shithub_jobs", "status", "queued"); v != 0 {
		t.Fatalf("queued jobs before any run = %v", v)
	}
	run, jobs := ts.newRun(ts.pub)
	m := ts.scrape()
	if v := promValue(m, "shithub_jobs", "status", "queued", "labels", "ubuntu-latest"); v != 2 {
		t.Fatalf("queued ubuntu-latest jobs = %v, want 2", v)
	}
	cj := ts.heartbeat()
	ts.clock.Add(3 * time.Second)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/logs", cj.JobID), auth: bearer(ts.rtoken),
		body: fmt.Sprintf(`{"step_id":%d,"seq":1,"data":"aGVsbG8K"}`, cj.Steps[0].ID)}, 202, nil) // "hello\n"
	m = ts.scrape()
	if v := promValue(m, "shithub_jobs", "status", "running"); v != 1 {
		t.Fatalf("running jobs = %v, want 1", v)
	}
	if v := promValue(m, "shithub_log_bytes_total"); v != 6 {
		t.Fatalf("log bytes = %v, want 6", v)
	}
	if v := promValue(m, "shithub_runner_last_seen_age_seconds", "runner", "r1"); v != 3 {
		t.Fatalf("r1's last-seen age = %v, want 3", v)
	}
	// Cancel the running job; its runner reports it cancelled.
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs[0].ID), auth: bearer(ts.tokens["alice"])}, 202, nil)
	ts.clock.Add(2 * time.Second)
	ts.jobStatus(cj.JobID, "cancelled", 200)
	m = ts.scrape()
	if v := promValue(m, "shithub_cancel_latency_seconds_count"); v != 1 {
		t.Fatalf("cancel latency count = %v, want 1", v)
	}
	if v := promValue(m, "shithub_job_duration_seconds_count", "conclusion", "cancelled"); v != 1 {
		t.Fatalf("cancelled job durations = %v, want 1", v)
	}
	if v := promValue(m, "shithub_job_duration_seconds_sum", "conclusion", "cancelled"); v != 5 {
		t.Fatalf("cancelled job duration sum = %v, want 5 (seconds on the test clock)", v)
	}
	if v := promValue(m, "shithub_run_duration_seconds_count", "conclusion", "cancelled"); v != 1 {
		t.Fatalf("run %d: cancelled run durations = %v, want 1", run.ID, v)
	}
	if v := promValue(m, "shithub_jobs", "status", "queued"); v != 0 {
		t.Fatalf("queued jobs after the cancel = %v, want 0", v)
	}
	// Requests, by route pattern and status; the feed cache.
	ts.want(request{method: "GET", path: "/alice/pub/actions.atom"}, 200, nil)
	ts.want(request{method: "GET", path: "/alice/pub/actions.atom"}, 200, nil)
	ts.do(request{method: "GET", path: "/alice/nope/actions.atom"})
	m = ts.scrape()
	feedRoute := "GET /{owner}/{repo}/actions.atom"
	if v := promValue(m, "shithub_http_requests_total", "route", feedRoute, "code", "200"); v != 2 {
		t.Fatalf("feed 200s = %v, want 2", v)
	}
	if v := promValue(m, "shithub_http_requests_total", "route", feedRoute, "code", "404"); v != 1 {
		t.Fatalf("feed 404s = %v, want 1", v)
	}
	if v := promValue(m, "shithub_http_request_duration_seconds_count", "route", feedRoute); v != 3 {
		t.Fatalf("feed latency count = %v, want 3", v)
	}
	if h, miss := promValue(m, "shithub_feed_cache_requests_total", "result", "hit"), promValue(m, "shithub_feed_cache_requests_total", "result", "miss"); h != 1 || miss != 1 {
		t.Fatalf("feed cache hits, misses = %v, %v; want 1, 1", h, miss)
	}
	if v := promValue(m, "shithub_db_write_tx_seconds_count"); v <= promValue(before, "shithub_db_write_tx_seconds_count") {
		t.Fatal("write transactions did not count")
	}
	if v := promValue(m, "shithub_db_bytes", "file", "db"); v <= 0 {
		t.Fatalf("db size = %v", v)
	}

	// With a token, /metrics wants it.
	ts.srv.metricsToken = "s3cret"
	ts.want(request{method: "GET", path: "/metrics"}, 401, nil)
	ts.want(request{method: "GET", path: "/metrics", auth: "Bearer wrong"}, 401, nil)
	ts.want(request{method: "GET", path: "/metrics", auth: "Bearer s3cret"}, 200, nil)
}

// TestPromParser: the parser the metrics test trusts rejects what it should.
func TestPromParser(t *testing.T) {
	good := "# HELP a_total x\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n\"} 1\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n"
	if _, _, err := parseProm(good); err != nil {
		t.Fatalf("good text: %v", err)
	}
	for _, bad := range []string{
		"a 1\n",                                // no TYPE
		"# TYPE a counter\na{x=\"\\t\"} 1\n",   // bad escape
		"# TYPE a counter\na{1x=\"y\"} 1\n",    // bad label name
		"# TYPE a counter\na one\n",            // bad value
		"# TYPE a counter\n# TYPE a counter\n", // declared twice
		"# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n", // not cumulative
		"# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n",                          // no +Inf
		"# TYPE a counter\na{x=\"y} 1\n",                                                 // unterminated
	} {
		if _, _, err := parseProm(bad); err == nil {
			t.Errorf("parseProm(%q) accepted it", bad)
		}
	}
}
