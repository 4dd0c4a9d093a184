package main

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"shithub-actions/internal/store"

	"modernc.org/sqlite"
)

// recordingDriver is modernc's driver, recording the text of every query
// while on.
type recordingDriver struct {
	sqlite.Driver
	mu      sync.Mutex // guards on and queries
	on      bool
	queries map[string]bool
}

var planRecorder = &recordingDriver{queries: map[string]bool{}}

func init() { sql.Register("sqlite-recording", planRecorder) }

func (d *recordingDriver) record(q string) {
	d.mu.Lock()
	if d.on {
		d.queries[q] = true
	}
	d.mu.Unlock()
}

func (d *recordingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return &recordingConn{c, d}, nil
}

// recordingConn forwards everything modernc's connection does.
type recordingConn struct {
	driver.Conn
	d *recordingDriver
}

func (c *recordingConn) Prepare(q string) (driver.Stmt, error) {
	c.d.record(q)
	return c.Conn.Prepare(q)
}

func (c *recordingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	c.d.record(q)
	return c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
}

func (c *recordingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.d.record(q)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *recordingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.d.record(q)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *recordingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *recordingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *recordingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

var (
	// A table with history, as a query names it, and its alias.
	historyTableRE = regexp.MustCompile(`(?i)\b(?:FROM|JOIN)\s+(runs|jobs|steps|log_chunks)\b(?:\s+(?:AS\s+)?([a-z]\w*))?`)
	scanRE         = regexp.MustCompile(`^SCAN (\w+)`)
)

// historyScans returns the plan lines of q that scan a table with history
// (runs, jobs, steps, log_chunks) whole.
func historyScans(t *testing.T, db *sql.DB, q string) (bad, plan []string) {
	t.Helper()
	history := map[string]bool{"runs": true, "jobs": true, "steps": true, "log_chunks": true}
	names := map[string]bool{}
	for _, m := range historyTableRE.FindAllStringSubmatch(q, -1) {
		names[m[1]] = true
		if a := strings.ToLower(m[2]); a != "" && !map[string]bool{"where": true, "join": true, "on": true, "order": true, "group": true,
			"limit": true, "left": true, "inner": true, "using": true}[a] {
			names[a] = true
		}
	}
	// Plans do not depend on the values bound (no STAT4): NULLs will do.
	rows, err := db.Query("EXPLAIN QUERY PLAN "+q, make([]any, countParams(q))...)
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN %s: %v", q, err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
		if m := scanRE.FindStringSubmatch(detail); m != nil && (names[m[1]] || history[m[1]]) {
			bad = append(bad, detail)
		}
		// An aggregate whose search is bounded only by the repository (and
		// a filter) walks all of that history, as does sorting the matches.
		if m := searchRE.FindStringSubmatch(detail); m != nil && (names[m[1]] || history[m[1]]) &&
			aggregateRE.MatchString(q) && !cappedRE.MatchString(q) && !perParentRE.MatchString(detail) {
			bad = append(bad, detail+" (an aggregate over the repository's history)")
		}
		if strings.HasPrefix(detail, "USE TEMP B-TREE FOR ORDER BY") && len(names) > 0 && strings.Contains(q, "LIMIT") {
			bad = append(bad, detail+" (sorts every match to keep a few)")
		}
	}
	return bad, plan
}

var (
	searchRE    = regexp.MustCompile(`^SEARCH (\w+)`)
	aggregateRE = regexp.MustCompile(`(?i)\b(COUNT|SUM|MAX|MIN|GROUP BY)\b`)
	// A search bounded by one run, job or step (or one row) is bounded
	// whatever the history; one bounded only by the repository and a
	// filter column is not.
	perParentRE = regexp.MustCompile(`[ (](run_id|job_id|step_id|rowid|id)=`)
	cappedRE    = regexp.MustCompile(`(?is)COUNT\(\*\) FROM \(SELECT .* LIMIT \?\)`) // a count that stops at a cap
)

// TestPlanCheckCatches: the check flags what it is for, as the tab's old
// queries did.
func TestPlanCheckCatches(t *testing.T) {
	ts := newTestServer(t)
	for _, q := range []string{
		"SELECT workflow_file, workflow_name FROM runs WHERE id IN (SELECT MAX(id) FROM runs WHERE repo_id = ? GROUP BY workflow_file) ORDER BY workflow_name, workflow_file",
		"SELECT substr(head_ref, 12) FROM runs WHERE repo_id = ? AND substr(head_ref, 1, 11) = 'refs/heads/' GROUP BY head_ref ORDER BY MAX(id) DESC LIMIT ?",
		"SELECT COUNT(*) FROM runs r WHERE r.repo_id = ? AND r.event = ?",
		"SELECT id FROM runs WHERE event = ?",
		"SELECT c.data FROM log_chunks c WHERE c.data = ?",
		"SELECT COUNT(*) FROM runs r JOIN users u ON u.id = r.actor_id WHERE r.repo_id = ? AND r.event = ?",
	} {
		if bad, plan := historyScans(t, ts.store.DBForTest(), q); len(bad) == 0 {
			t.Errorf("not flagged: %s\nplan: %s", q, strings.Join(plan, " | "))
		}
	}
}

// TestReadPathPlans runs every read path the issue names (the runs list
// with each filter, the Actions tab with its choices, the badge, the run
// page and its live answer, the feed) against a filled database, records
// each query they make, and checks with EXPLAIN QUERY PLAN that none scans
// runs, jobs, steps or log_chunks whole.
func TestReadPathPlans(t *testing.T) {
	old := store.SqliteDriver
	store.SqliteDriver = "sqlite-recording"
	ts := newTestServer(t)
	store.SqliteDriver = old
	if code, out, errOut := cliRun(t, ts.store.Path(), "", "dev", "fill", "--repo", "alice/pub", "--runs", "3000", "--logs-for", "50",
		"--actors", "alice,bob"); code != 0 {
		t.Fatalf("dev fill: exit %d: %s %s", code, out, errOut)
	}
	var newest int64
	ts.store.DBForTest().QueryRow("SELECT MAX(run_index) FROM runs WHERE repo_id = ?", ts.pub.ID).Scan(&newest)
	run, err := ts.store.RunByIndex(context.Background(), ts.pub.ID, newest)
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := ts.store.RunJobs(context.Background(), run.ID)
	api := "/api/v1/repos/alice/pub/actions"
	paths := []string{
		api + "/runs?per_page=50", api + "/runs?page=3&per_page=50", api + "/runs?workflow_file=ci.yml",
		api + "/runs?branch=main", api + "/runs?actor=bob", api + "/runs?event=push", api + "/runs?status=completed",
		api + "/runs?conclusion=failure", api + "/runs?workflow_file=ci.yml&branch=main",
		api + "/runs?page=55&per_page=50", api + "/runs?workflow_file=ci.yml&page=60", api + "/runs?branch=main&page=30",
		fmt.Sprintf("%s/runs/%d", api, run.ID), fmt.Sprintf("%s/runs/%d/jobs", api, run.ID), fmt.Sprintf("%s/jobs/%d/logs", api, jobs[0].ID),
		"/alice/pub/actions", "/alice/pub/actions?page=2", "/alice/pub/actions?workflow=ci.yml", "/alice/pub/actions?branch=main",
		"/alice/pub/actions?status=failure", "/alice/pub/actions?status=running",
		"/alice/pub/actions?page=100", "/alice/pub/actions?workflow=ci.yml&page=50",
		"/alice/pub/actions?workflow=nightly.yml&branch=main&status=success", "/alice/pub/actions?workflow=release.yml&status=failure",
		"/alice/pub/actions/workflows/ci.yml/badge.svg", "/alice/pub/actions/workflows/ci.yml/badge.svg?branch=feature-3",
		fmt.Sprintf("/alice/pub/actions/runs/%d", newest), fmt.Sprintf("/alice/pub/actions/runs/%d/live", newest),
		fmt.Sprintf("/alice/pub/actions/runs/%d/jobs/%d/log", newest, jobs[0].ID),
		"/alice/pub/actions.atom",
	}
	planRecorder.mu.Lock()
	planRecorder.on, planRecorder.queries = true, map[string]bool{}
	planRecorder.mu.Unlock()
	for _, p := range paths {
		for _, auth := range []string{"", bearer(ts.tokens["alice"])} {
			if res := ts.do(request{method: "GET", path: p, auth: auth}); res.code != 200 && res.code != http.StatusFound {
				t.Fatalf("GET %s: status = %d, want 200: %.200s", p, res.code, res.body)
			}
		}
	}
	planRecorder.mu.Lock()
	planRecorder.on = false
	var queries []string
	for q := range planRecorder.queries {
		queries = append(queries, q)
	}
	planRecorder.mu.Unlock()
	sort.Strings(queries)
	if len(queries) < 10 {
		t.Fatalf("recorded only %d queries", len(queries))
	}
	for _, q := range queries {
		bad, plan := historyScans(t, ts.store.DBForTest(), q)
		if testing.Verbose() && strings.Contains(q, "run_") {
			t.Logf("%s\n\tplan: %s", q, strings.Join(plan, " | "))
		}
		if len(bad) > 0 {
			t.Errorf("a read path scans a table with history:\n%s\nplan: %s", q, strings.Join(plan, " | "))
		}
	}
	t.Logf("%d queries checked", len(queries))
	// A filter with no kept count is counted up to the cap.
	if res := ts.do(request{method: "GET", path: "/alice/pub/actions?branch=main"}); !strings.Contains(string(res.body), "1000+ workflow runs match the filters") {
		t.Errorf("the tab filtered by a busy branch does not say 1000+ runs")
	}
}

// countParams counts the ? parameters of q outside string literals.
func countParams(q string) int {
	n, quoted := 0, false
	for _, c := range q {
		switch {
		case c == '\'':
			quoted = !quoted
		case c == '?' && !quoted:
			n++
		}
	}
	return n
}
