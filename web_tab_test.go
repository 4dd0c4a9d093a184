package main

import (
	"context"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/store"
)

const webFlakyWorkflow = `name: Flaky
on: push
jobs:
  unit:
    name: Unit
    runs-on: ubuntu-latest
    steps:
      - run: make test
`

// webFinish has the runner take the next job, of run, and end it with
// conclusion after d; it returns the run as it is then.
func (e *webEnv) webFinish(run *store.Run, conclusion string, d time.Duration) *store.Run {
	e.t.Helper()
	j := e.webClaim()
	if j.RunID != run.ID {
		e.t.Fatalf("claimed a job of run %d, want %d", j.RunID, run.ID)
	}
	e.tick(d)
	if err := e.st.CompleteJob(context.Background(), e.runner.ID, j.JobID, "completed", conclusion); err != nil {
		e.t.Fatal(err)
	}
	r, err := e.st.RunByID(context.Background(), run.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// webRerun re-runs a completed run as alice.
func (e *webEnv) webRerun(run *store.Run) *store.Run {
	e.t.Helper()
	r, err := e.st.Rerun(context.Background(), run, e.alice)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// webTabScenario is alice/hello with Flaky (flaky.yml): #1 failed, #2 its
// re-run passed (Unit is flaky once), #3 passed, #4 was cancelled, #5 is
// running; and Lint (lint.yml), passed once and then disabled. The
// private alice/secret has a flaky.yml of its own whose Unit was flaky
// three times.
func webTabScenario(t *testing.T) *webEnv {
	e := newWebTestServer(t)
	ctx := context.Background()
	r1 := e.webFinish(e.webMakeRun(e.pub, "flaky.yml", webFlakyWorkflow, "main", webSHA1), "failure", 2*time.Minute)
	e.tick(time.Minute)
	e.webFinish(e.webRerun(r1), "success", 3*time.Minute)
	e.tick(time.Minute)
	e.webFinish(e.webMakeRun(e.pub, "flaky.yml", webFlakyWorkflow, "main", webSHA2), "success", 90*time.Second)
	e.tick(time.Minute)
	e.webFinish(e.webMakeRun(e.pub, "flaky.yml", webFlakyWorkflow, "feature", webSHA2), "cancelled", 30*time.Second)
	e.tick(time.Minute)
	lint := e.webFinish(e.webMakeRun(e.pub, "lint.yml", webTestSingleJob, "main", webSHA2), "success", 20*time.Second)
	if err := e.st.SetWorkflowState(ctx, e.pub.ID, lint.WorkflowID, store.WorkflowDisabled); err != nil {
		t.Fatal(err)
	}
	e.tick(time.Minute)
	e.webMakeRun(e.pub, "flaky.yml", webFlakyWorkflow, "main", webSHA2)
	e.webClaim()
	e.tick(time.Minute)
	// alice/secret: three fail-then-pass re-runs, and no run of it running.
	for range 3 {
		s := e.webFinish(e.webMakeRun(e.priv, "flaky.yml", webFlakyWorkflow, "main", webSHA1), "failure", time.Minute)
		e.webFinish(e.webRerun(s), "success", time.Minute)
	}
	e.tick(5 * time.Minute)
	return e
}

var webBarRE = regexp.MustCompile(`<rect class="bar b-([a-z_]+)"`)

func webBars(body string) []string {
	var out []string
	for _, m := range webBarRE.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestWebActionsTabWorkflowView(t *testing.T) {
	e := webTabScenario(t)
	w := e.do("GET", "/alice/hello/actions?workflow=flaky.yml", nil)
	webExpect(t, w, 200,
		`<h1>Flaky</h1>`,
		`<a href="/alice/hello/actions?workflow=flaky.yml" title="flaky.yml" aria-current="page">`,
		`<span class="wf-name">Lint</span> <span class="tag tag-disabled">disabled</span>`,
		`<img class="badge" src="/alice/hello/actions/workflows/flaky.yml/badge.svg"`,
		`<span class="tag tag-flaky" title="Failed, then passed on a re-run of the same commit">flaky</span> <strong>Unit</strong> <span class="muted">failed, then passed on a re-run 1 time</span>`,
		`Duration of the last 5 runs, oldest to newest; the tallest took 12m 0s.`,
		`<input type="hidden" name="workflow" value="flaky.yml">`,
		`<a href="/login?next=%2Falice%2Fhello%2Factions%3Fworkflow%3Dflaky.yml">Sign in</a> to cancel or re-run workflows.`,
	)
	body := w.Body.String()
	if got, want := strings.Join(webBars(body), " "), "failure success success cancelled running"; got != want {
		t.Errorf("bars = %s, want %s", got, want)
	}
	if strings.Count(body, `class="title" href=`) != 5 {
		t.Errorf("want the 5 runs of Flaky listed")
	}
	golden(t, "web/actions-workflow.html", webNormalize(body))

	// The workflow without flaky jobs, disabled.
	w = e.do("GET", "/alice/hello/actions?workflow=lint.yml&branch=main", nil)
	webExpect(t, w, 200, `<h1>Lint</h1>`, `No job failed and then passed on a re-run of the same commit.`,
		`This workflow is disabled`, `<a href="/alice/hello/actions?branch=main&amp;workflow=flaky.yml" title="flaky.yml">`)
	if n := len(webBars(w.Body.String())); n != 1 {
		t.Errorf("Lint's chart has %d bars, want 1", n)
	}
	// The sidebar keeps the branch and status filters in its links.
	w = e.do("GET", "/alice/hello/actions?branch=main&status=success", nil)
	webExpect(t, w, 200, `<a href="/alice/hello/actions?branch=main&amp;status=success&amp;workflow=lint.yml" title="lint.yml">`,
		`<a href="/alice/hello/actions?branch=main&amp;status=success" aria-current="page">`)
	webLacks(t, w, `<figure class="chart"`, `<div class="flaky"`)
}

// TestWebActionsTabChartCap: the chart draws the last 50 runs, the
// newest at the right.
func TestWebActionsTabChartCap(t *testing.T) {
	e := newWebTestServer(t)
	for i := range 53 {
		c := "success"
		if i == 52 {
			c = "failure"
		}
		e.webFinish(e.webMakeRun(e.pub, "flaky.yml", webFlakyWorkflow, "main", webSHA1), c, time.Duration(i+1)*time.Second)
		e.tick(time.Minute)
	}
	w := e.do("GET", "/alice/hello/actions?workflow=flaky.yml", nil)
	webExpect(t, w, 200, `Duration of the last 50 runs`, `the tallest took 53s`, `<a href="/alice/hello/actions/runs/4"><rect class="bar b-success" x="1" `,
		`<a href="/alice/hello/actions/runs/53"><rect class="bar b-failure" x="491" y="2.0" width="8" height="58.0"><title>#53 · Failure · 53s · main</title>`)
	if bars := webBars(w.Body.String()); len(bars) != 50 {
		t.Errorf("%d bars, want 50", len(bars))
	}
	webLacks(t, w, `/alice/hello/actions/runs/3"><rect`)
}

func TestWebActionsTabSignInHint(t *testing.T) {
	e := webTabScenario(t)
	hint := `to cancel or re-run workflows.`
	webExpect(t, e.do("GET", "/alice/hello/actions", nil), 200, hint)
	cookie, _ := e.webSignIn(e.bob)
	webLacks(t, e.do("GET", "/alice/hello/actions", nil, webCookie(cookie)), hint, "Sign in</a>")
	// No runs: nothing to cancel or re-run.
	e2 := newWebTestServer(t)
	webLacks(t, e2.do("GET", "/alice/hello/actions", nil), hint)
}

// TestWebActionsTabAttacker: what the query string says reaches SQL only
// as bound values, and one repository's history never shows on another's
// tab.
func TestWebActionsTabAttacker(t *testing.T) {
	e := webTabScenario(t)
	for _, target := range []string{
		"/alice/hello/actions?workflow=" + url.QueryEscape("' OR 1=1 --"),
		"/alice/hello/actions?workflow=" + url.QueryEscape("flaky.yml' OR '1'='1"),
		"/alice/hello/actions?workflow=" + url.QueryEscape("../../secret/.shithub/workflows/flaky.yml"),
		"/alice/hello/actions?workflow=" + url.QueryEscape("%"),
		"/alice/hello/actions?branch=" + url.QueryEscape("%"),
	} {
		w := e.do("GET", target, nil)
		webExpect(t, w, 200, `No workflow runs match these filters.`)
		webLacks(t, w, `<figure class="chart"`, `class="tag tag-flaky"`)
	}
	// A branch filter narrows the list, not the workflow's history.
	w := e.do("GET", "/alice/hello/actions?workflow=flaky.yml&branch="+url.QueryEscape("main' OR '1'='1"), nil)
	webExpect(t, w, 200, `No workflow runs match these filters.`, `<h1>Flaky</h1>`)
	if n := len(webBars(w.Body.String())); n != 5 {
		t.Errorf("%d bars, want 5", n)
	}
	// alice/hello's flaky.yml shows its own history, not alice/secret's
	// (Unit flaky 3 times there, once here), to anyone, signed in or not.
	cookie, _ := e.webSignIn(e.alice)
	for _, opts := range [][]webOpt{nil, {webCookie(cookie)}} {
		w := e.do("GET", "/alice/hello/actions?workflow=flaky.yml", nil, opts...)
		webExpect(t, w, 200, `failed, then passed on a re-run 1 time<`)
		if n := len(webBars(w.Body.String())); n != 5 {
			t.Errorf("%d bars, want hello's 5", n)
		}
	}
	w = e.do("GET", "/alice/secret/actions?workflow=flaky.yml", nil, webCookie(cookie))
	webExpect(t, w, 200, `failed, then passed on a re-run 3 times<`)
	if n := len(webBars(w.Body.String())); n != 6 {
		t.Errorf("%d bars, want secret's 6", n)
	}
	// The private repository's tab, chart and flaky jobs are not there for
	// a stranger.
	carol, _ := e.webSignIn(e.carol)
	for _, opts := range [][]webOpt{nil, {webCookie(carol)}} {
		w := e.do("GET", "/alice/secret/actions?workflow=flaky.yml", nil, opts...)
		webExpect(t, w, 404)
		webLacks(t, w, "Unit", `<figure class="chart"`)
	}
}
