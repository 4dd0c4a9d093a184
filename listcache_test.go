package main

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
)

// TestListCache: the runs list answers from its cache while the
// repository's runs are unchanged, and every change to a run (a new run, a
// job claimed, a job ended) shows at the next request; the Link header is
// kept with the body, and a different query is a different answer.
func TestListCache(t *testing.T) {
	ts := newTestServer(t)
	list := "/api/v1/repos/alice/pub/actions/runs?per_page=1"
	get := func() (runsJSON, response) {
		t.Helper()
		var out runsJSON
		res := ts.want(request{method: "GET", path: list}, http.StatusOK, &out)
		return out, res
	}
	run, jobs := ts.newRun(ts.pub)
	first, res1 := get()
	hits := ts.srv.lists.hits.Load()
	again, res2 := get()
	if ts.srv.lists.hits.Load() != hits+1 || !bytes.Equal(res1.body, res2.body) || again.TotalCount != first.TotalCount {
		t.Fatalf("GET %s twice: hits %d → %d, bodies equal %v; want one hit and the same answer", list, hits, ts.srv.lists.hits.Load(), bytes.Equal(res1.body, res2.body))
	}
	if first.WorkflowRuns[0].Status != protocol.StatusQueued {
		t.Fatalf("run status = %s, want queued", first.WorkflowRuns[0].Status)
	}

	// A claimed job makes the run in_progress: the cache must not hide it.
	c := ts.heartbeat()
	if c == nil || c.JobID != jobs[0].ID {
		t.Fatalf("heartbeat = %+v, want job %d", c, jobs[0].ID)
	}
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", jobs[0].ID, c.Steps[0].ID),
		auth: bearer(ts.rtoken), body: `{"status":"running"}`}, http.StatusOK, nil)
	if got, _ := get(); got.WorkflowRuns[0].Status != "in_progress" {
		t.Errorf("after a claim: run status = %s, want in_progress", got.WorkflowRuns[0].Status)
	}

	// A second run is a new first page and a new total; the Link header
	// follows the total.
	ts.newRun(ts.pub)
	got, res := get()
	if got.TotalCount != 2 || got.WorkflowRuns[0].ID == run.ID {
		t.Errorf("after a new run: total %d, first run %d; want 2 and the new run", got.TotalCount, got.WorkflowRuns[0].ID)
	}
	if res.header.Get("Link") == "" {
		t.Errorf("after a new run: no Link header for 2 runs at per_page=1")
	}
	hits = ts.srv.lists.hits.Load()
	if _, cached := get(); ts.srv.lists.hits.Load() != hits+1 || cached.header.Get("Link") != res.header.Get("Link") {
		t.Errorf("cached answer's Link = %q, want %q (from the cache)", cached.header.Get("Link"), res.header.Get("Link"))
	}

	// Another query is another entry.
	var other runsJSON
	ts.want(request{method: "GET", path: list + "&page=2"}, http.StatusOK, &other)
	if len(other.WorkflowRuns) != 1 || other.WorkflowRuns[0].ID != run.ID {
		t.Errorf("page 2 = %+v, want the first run", other.WorkflowRuns)
	}

	// An entry is used for listCacheTTL at most.
	hits = ts.srv.lists.hits.Load()
	ts.clock.Add(listCacheTTL)
	get()
	if ts.srv.lists.hits.Load() != hits {
		t.Errorf("an entry older than %v was used", listCacheTTL)
	}
}

func TestListCacheBounded(t *testing.T) {
	var c listCache
	now := time.Now()
	body := make([]byte, listCacheBytes/10)
	for i := range 40 {
		c.put(fmt.Sprint(i), listEntry{version: 1, made: now, body: body})
		if c.size > listCacheBytes {
			t.Fatalf("after %d entries: %d bytes cached, want at most %d", i+1, c.size, listCacheBytes)
		}
	}
	if _, ok := c.get("39", 1, now); !ok {
		t.Errorf("the newest entry is not there")
	}
	if _, ok := c.get("39", 2, now); ok {
		t.Errorf("an entry of version 1 answered for version 2")
	}
	c.put("39", listEntry{version: 0, made: now, body: body})
	if _, ok := c.get("39", 1, now); !ok {
		t.Errorf("an older version replaced a newer one")
	}
	c.put("huge", listEntry{version: 1, made: now, body: make([]byte, listCacheBytes)})
	if _, ok := c.get("huge", 1, now); ok {
		t.Errorf("an answer over an eighth of the cache was kept")
	}
}
