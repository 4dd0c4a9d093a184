package main

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// TestFeedGolden renders the feed of a repository whose names are hostile
// to XML, with a fixed clock.
func TestFeedGolden(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ctx := context.Background()
	evil, err := ts.store.CreateUser(ctx, "x-evil")
	if err != nil {
		t.Fatal(err)
	}
	wfText := "name: \"<b>&amp; \\\"quoted\\\" \\u0001bell\"\non: push\njobs:\n  a:\n    runs-on: x\n    steps: [{run: echo}]\n"
	wf, err := workflow.Parse("evil.yml", []byte(wfText))
	if err != nil {
		t.Fatal(err)
	}
	for i, ref := range []string{"refs/heads/main", "refs/heads/feat/<&'\">", "refs/tags/v1.0"} {
		ts.clock.Add(time.Minute)
		if _, _, err := ts.store.CreateRuns(ctx, nil, []store.RunSpec{{
			RepoID: ts.pub.ID, File: ".shithub/workflows/evil.yml", Content: []byte(wfText), Workflow: wf,
			HeadSHA: ts.sha, HeadRef: ref, Event: "push", ActorID: []int64{ts.users["alice"].ID, evil.ID, ts.users["bob"].ID}[i],
		}}); err != nil {
			t.Fatal(err)
		}
	}
	run, _ := ts.newRun(ts.pub)
	ts.clock.Add(time.Minute)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), auth: bearer(ts.tokens["bob"])}, 202, nil)

	res := ts.want(request{method: "GET", path: "/alice/pub/actions.atom"}, 200, nil)
	if ct := res.header.Get("Content-Type"); ct != "application/atom+xml; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	// UUIDs are random: name them by position so the golden file is stable.
	body := string(res.body)
	runs, _ := ts.store.LatestRuns(ctx, ts.pub.ID, feedSize)
	for i, r := range runs {
		body = strings.ReplaceAll(body, r.UUID, fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
	}
	golden(t, "feed.atom", []byte(body))
	var f atomFeed
	if err := xml.Unmarshal(res.body, &f); err != nil {
		t.Fatalf("feed is not well-formed: %v", err)
	}
	if len(f.Entries) != 4 || f.Entries[0].Title.Body != "CI #4 cancelled" {
		t.Errorf("entries = %d, first %q; want 4, \"CI #4 cancelled\"", len(f.Entries), f.Entries[0].Title.Body)
	}
}

// TestFeedVisibilityAndCaching covers who may read a feed and the
// conditional requests a feed reader sends.
func TestFeedVisibilityAndCaching(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	run, _ := ts.newRun(ts.priv)
	ts.newRun(ts.pub)
	basic := func(user, tok string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+tok))
	}
	tests := []struct {
		name, path, auth string
		code             int
	}{
		{"public, anonymous", "/alice/pub/actions.atom", "", 200},
		{"private, anonymous", "/alice/priv/actions.atom", "", 404},
		{"private, outsider", "/alice/priv/actions.atom", bearer(ts.tokens["dave"]), 404},
		{"private, reader", "/alice/priv/actions.atom", bearer(ts.tokens["carol:read"]), 200},
		{"private, reader, basic", "/alice/priv/actions.atom", basic("carol", ts.tokens["carol:read"]), 200},
		{"private, reader, token scheme", "/alice/priv/actions.atom", "token " + ts.tokens["carol"], 200},
		{"private, bad token", "/alice/priv/actions.atom", bearer("shithub_pat_nope"), 401},
		{"unknown repo", "/alice/none/actions.atom", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := ts.do(request{method: "GET", path: tt.path, auth: tt.auth}); res.code != tt.code {
				t.Errorf("GET %s: status = %d, want %d", tt.path, res.code, tt.code)
			}
		})
	}

	res := ts.want(request{method: "GET", path: "/alice/priv/actions.atom", auth: bearer(ts.tokens["carol"])}, 200, nil)
	etag, lastMod := res.header.Get("ETag"), res.header.Get("Last-Modified")
	if etag == "" || lastMod == "" {
		t.Fatalf("ETag %q, Last-Modified %q: want both", etag, lastMod)
	}
	cond := func(h map[string]string) int {
		return ts.do(request{method: "GET", path: "/alice/priv/actions.atom", auth: bearer(ts.tokens["carol"]), header: h}).code
	}
	if code := cond(map[string]string{"If-None-Match": etag}); code != http.StatusNotModified {
		t.Errorf("If-None-Match: status = %d, want 304", code)
	}
	if code := cond(map[string]string{"If-Modified-Since": lastMod}); code != http.StatusNotModified {
		t.Errorf("If-Modified-Since: status = %d, want 304", code)
	}
	if code := cond(map[string]string{"If-None-Match": `"other"`, "If-Modified-Since": lastMod}); code != http.StatusOK {
		t.Errorf("a stale If-None-Match wins over If-Modified-Since: status = %d, want 200", code)
	}
	// A change to a run changes the validators.
	ts.clock.Add(time.Minute)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/runs/%d/cancel", run.ID), auth: bearer(ts.tokens["bob"])}, 202, nil)
	if code := cond(map[string]string{"If-None-Match": etag}); code != http.StatusOK {
		t.Errorf("If-None-Match after a change: status = %d, want 200", code)
	}
	if code := cond(map[string]string{"If-Modified-Since": lastMod}); code != http.StatusOK {
		t.Errorf("If-Modified-Since after a change: status = %d, want 200", code)
	}
}

// TestFeedSize: the feed carries the 50 newest runs.
func TestFeedSize(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for range feedSize + 5 {
		ts.newRun(ts.pub)
	}
	var f atomFeed
	res := ts.want(request{method: "GET", path: "/alice/pub/actions.atom"}, 200, nil)
	if err := xml.Unmarshal(res.body, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Entries) != feedSize || f.Entries[0].Title.Body != "CI #55 queued" || f.Entries[49].Title.Body != "CI #6 queued" {
		t.Errorf("feed: %d entries from %q to %q; want 50 from #55 to #6", len(f.Entries), f.Entries[0].Title.Body, f.Entries[len(f.Entries)-1].Title.Body)
	}
}

// FuzzFeed writes feeds with arbitrary names: the output is always
// well-formed XML that reads back to the same safe text.
func FuzzFeed(f *testing.F) {
	f.Add("CI", "refs/heads/main", "alice")
	f.Add("<script>&\"'", "refs/heads/\x00\x01\uFFFE", "bad\xffutf8")
	f.Add("]]>", "refs/tags/\r\n", "\t")
	f.Fuzz(func(t *testing.T, name, ref, actor string) {
		repo := &store.Repo{ID: 1, Owner: actor, Name: "r", RunsUpdatedAt: time.Unix(1e9, 0)}
		run := &store.Run{UUID: "u", RunIndex: 1, WorkflowName: name, HeadRef: ref, Actor: actor, Status: "completed",
			Conclusion: "success", CreatedAt: time.Unix(1e9, 0), UpdatedAt: time.Unix(1e9, 0), Event: "push", HeadSHA: "abc"}
		var b strings.Builder
		if err := writeFeed(&b, buildFeed("http://x", repo, []*store.Run{run})); err != nil {
			t.Fatal(err)
		}
		var back atomFeed
		if err := xml.Unmarshal([]byte(b.String()), &back); err != nil {
			t.Fatalf("feed does not parse: %v\n%s", err, b.String())
		}
		if want := xmlSafe(runTitle(run)); back.Entries[0].Title.Body != want {
			t.Errorf("title read back = %q, want %q", back.Entries[0].Title.Body, want)
		}
		if back.Entries[0].Author.Name != xmlSafe(actor) {
			t.Errorf("author read back = %q, want %q", back.Entries[0].Author.Name, xmlSafe(actor))
		}
	})
}

// encodeFeed is the feed as encoding/xml writes it: the reference
// writeFeed must match.
func encodeFeed(t *testing.T, f *atomFeed) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(xml.Header)
	enc := xml.NewEncoder(&b)
	enc.Indent("", "  ")
	if err := enc.Encode(f); err != nil {
		t.Fatal(err)
	}
	b.WriteString("\n")
	return b.String()
}

// TestWriteFeedMatchesEncoder: the hand-written writer says byte for byte
// what encoding/xml says, for hostile names too.
func TestWriteFeedMatchesEncoder(t *testing.T) {
	hostile := []string{"plain", `<b>&amp; "q" 'a'`, "tab\there\nnew\r\nline", "bell\x07, nul\x00, del\x7f", "\xff\xfe bad utf8 \xc3",
		"emoji 😀 and \uFFFE \uFFFF \U0010FFFF", "]]> <![CDATA[", "ünïcödé"}
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 200 {
		pick := func() string {
			s := hostile[rng.IntN(len(hostile))]
			if i%2 == 0 { // raw, as if a caller had not run xmlSafe
				return s
			}
			return xmlSafe(s)
		}
		f := &atomFeed{ID: pick(), Title: atomText{Type: "text", Body: pick()}, Updated: pick(), Author: atomPerson{Name: pick()},
			Links: []atomLink{{Rel: "self", Type: pick(), Href: pick()}, {Rel: pick(), Href: pick()}}}
		if i%3 != 0 {
			f.Generator = pick()
		}
		for range rng.IntN(3) {
			f.Entries = append(f.Entries, atomEntry{ID: pick(), Title: atomText{Type: "text", Body: pick()},
				Links: []atomLink{{Rel: "alternate", Type: "text/html", Href: pick()}}, Published: pick(), Updated: pick(),
				Author: atomPerson{Name: pick()}, Summary: atomText{Type: "text", Body: pick()}})
		}
		var got strings.Builder
		if err := writeFeed(&got, f); err != nil {
			t.Fatal(err)
		}
		if want := encodeFeed(t, f); got.String() != want {
			t.Fatalf("writeFeed differs from encoding/xml:\ngot:  %q\nwant: %q", got.String(), want)
		}
	}
}
