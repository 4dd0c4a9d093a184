package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"shithub-actions/internal/store"
)

// TestJobTokenAPI: a GITHUB_TOKEN works as a PAT on its job's repository
// alone, with its permissions, and is refused (401) once its job ends.
func TestJobTokenAPI(t *testing.T) {
	ts := newTestServer(t)
	_, jobs := ts.newRun(ts.priv)
	tok := ts.claimToken(jobs[0].ID, store.TokenPerms{Contents: "read", Actions: "read"})
	auth := bearer(tok)
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: auth}, 200, nil)

	// Another private repository of the same owner is not found.
	if _, err := ts.store.CreateRepo(context.Background(), ts.users["alice"], "other", ts.priv.GitDir, true); err != nil {
		t.Fatal(err)
	}
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/other/actions/runs", auth: auth}, 404, nil)
	// actions: read cannot cancel.
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs[1].ID), auth: auth}, 403, nil)
	// A GITHUB_TOKEN is no runner token and no sign-in.
	ts.want(request{method: "POST", path: "/api/v1/runners/heartbeat", auth: auth, body: `{}`}, 401, nil)

	// The job ends: from that moment the token is refused.
	ts.jobStatus(jobs[0].ID, "success", 200)
	res := ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: auth}, 401, nil)
	if !strings.Contains(string(res.body), "job has ended") {
		t.Fatalf("after the job: %s", res.body)
	}
	// A made-up token of the right shape is just a bad one.
	ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: bearer(store.JobTokenPrefix + strings.Repeat("A", 32))}, 401, nil)

	// actions: write may cancel its own run's jobs, and nothing elsewhere.
	_, jobs2 := ts.newRun(ts.priv)
	tok2 := ts.claimToken(jobs2[0].ID, store.TokenPerms{Contents: "read", Actions: "write"})
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", jobs2[1].ID), auth: bearer(tok2)}, 202, nil)
	_, pubJobs := ts.newRun(ts.pub)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/cancel", pubJobs[1].ID), auth: bearer(tok2)}, 404, nil)
	// A push notification made with a GITHUB_TOKEN starts nothing.
	ts.want(request{method: "POST", path: "/api/v1/repos/alice/priv/actions/events/push", auth: bearer(tok2),
		body: `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"` + ts.sha + `"}`}, 403, nil)
}

// FuzzWorkflowJobRefs: any workflow text gives an answer, never a panic;
// the names are sorted secret names.
func FuzzWorkflowJobRefs(f *testing.F) {
	f.Add([]byte("on: push\npermissions: write-all\njobs:\n  a:\n    steps:\n      - run: ${{ secrets.X }}\n"), "a")
	f.Add([]byte("jobs:\n  a: &x\n    if: secrets[matrix.k]\n  b: *x\n"), "b")
	f.Add([]byte("::: ["), "a")
	f.Fuzz(func(t *testing.T, wf []byte, job string) {
		r := store.WorkflowJobRefs(wf, job)
		if !slices.IsSorted(r.Secrets) {
			t.Fatalf("secrets not sorted: %v", r.Secrets)
		}
		for _, n := range r.Secrets {
			if n != strings.ToUpper(n) {
				t.Fatalf("secret name %q not upper case", n)
			}
		}
	})
}

// TestJobTokenReadsOwnRepoMetadata: as GitHub's implicit `metadata: read`,
// a GITHUB_TOKEN reads its own repository's metadata whatever its
// `permissions:` say (contents: write alone, and {}), while the same token
// still reads no other private repository and no Actions data it was not
// given.
func TestJobTokenReadsOwnRepoMetadata(t *testing.T) {
	ts := newTestServer(t)
	if _, err := ts.store.CreateRepo(context.Background(), ts.users["alice"], "other", ts.priv.GitDir, true); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		perms store.TokenPerms
	}{
		{"contents: write", store.TokenPerms{Contents: "write", Actions: "none"}},
		{"{}", store.TokenPerms{Contents: "none", Actions: "none"}},
		{"actions: read", store.TokenPerms{Contents: "none", Actions: "read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, jobs := ts.newRun(ts.priv)
			auth := bearer(ts.claimToken(jobs[0].ID, tc.perms))
			var got struct {
				FullName string `json:"full_name"`
			}
			ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv", auth: auth}, 200, &got)
			if got.FullName != "alice/priv" {
				t.Fatalf("own repository: %+v", got)
			}
			// The attacker's side: the same token on another private
			// repository of the same owner.
			res := ts.do(request{method: "GET", path: "/api/v1/repos/alice/other", auth: auth})
			if res.code != 403 && res.code != 404 || strings.Contains(string(res.body), "alice/other") {
				t.Fatalf("other private repository: %d %s", res.code, res.body)
			}
			// Metadata is not the Actions API: without actions: read the
			// runs stay closed.
			if tc.perms.Actions == "none" {
				ts.want(request{method: "GET", path: "/api/v1/repos/alice/priv/actions/runs", auth: auth}, 403, nil)
			}
		})
	}
}
