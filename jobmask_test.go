package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"shithub-actions/internal/store"
)

// maskWorkflow is a job that references one secret.
const maskWorkflow = "name: Deploy\non: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n" +
	"      - run: echo ${{ secrets.DEPLOY }}\n"

// TestMaskEveryChunkOffset posts, through the runner protocol, a secret
// (and the job's GITHUB_TOKEN) split across two log chunks at every offset,
// and across three, and checks that the stored log shows *** each time.
func TestMaskEveryChunkOffset(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	const secret = "correct-horse-battery-staple"
	if _, err := ts.store.SetSecret(ctx, store.SecretScope{RepoID: ts.pub.ID}, "DEPLOY", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	job := ts.claimWorkflow(ts.pub, maskWorkflow)
	d, err := ts.store.JobDelivery(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	step := job.Steps[1].ID
	seq := int64(0)
	post := func(s string) {
		seq++
		ts.postLog(job.JobID, step, seq, s)
	}
	var want strings.Builder
	for _, value := range []string{secret, d.Token} {
		for i := 1; i < len(value); i++ {
			post("<" + value[:i])
			post(value[i:] + ">\n")
			want.WriteString("<***>\n")
		}
		for i := 1; i < len(value)-1; i++ {
			j := i + (len(value)-i)/2
			post("[" + value[:i])
			post(value[i:j])
			post(value[j:] + "]\n")
			want.WriteString("[***]\n")
		}
	}
	// A resent chunk is neither stored nor masked twice.
	post("again " + secret[:5])
	ts.postLog(job.JobID, step, seq, "again "+secret[:5])
	post(secret[5:] + "\n")
	want.WriteString("again ***\n")
	// What is held back at the end of the step is stored when it ends.
	post("tail " + secret[:7])
	want.WriteString("tail " + secret[:7])
	ts.stepStatus(job.JobID, step, "completed", "success")

	log := ts.jobLog(ts.pub, job.JobID)
	// The second step's group: from after its ##[group] line to ##[endgroup].
	got := log[strings.LastIndex(log, "##[group]"):]
	got = got[strings.Index(got, "\n")+1:]
	got = strings.TrimSuffix(got, "\n##[endgroup]\n")
	if got != want.String() {
		t.Fatalf("stored log:\n%s\nwant:\n%s", got, want.String())
	}
	if strings.Contains(log, secret) || strings.Contains(log, d.Token) {
		t.Fatal("the stored log shows a value")
	}
}

// TestMaskStoredMultiLineSecret: each line of a multi-line secret is masked on
// its own, also when lines arrive in separate chunks.
func TestMaskStoredMultiLineSecret(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	secret := "-----BEGIN KEY-----\nline-one-of-the-key\nline-two-of-the-key\n-----END KEY-----\n"
	if _, err := ts.store.SetSecret(ctx, store.SecretScope{RepoID: ts.pub.ID}, "DEPLOY", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	job := ts.claimWorkflow(ts.pub, maskWorkflow)
	step := job.Steps[1].ID
	ts.postLog(job.JobID, step, 1, "key: line-one-of")
	ts.postLog(job.JobID, step, 2, "-the-key\nthen line-two-of-the-key alone\n")
	ts.postLog(job.JobID, step, 3, "whole:\n"+secret)
	ts.stepStatus(job.JobID, step, "completed", "success")
	log := ts.jobLog(ts.pub, job.JobID)
	for _, part := range []string{"line-one", "line-two", "BEGIN KEY"} {
		if strings.Contains(log, part) {
			t.Fatalf("log shows %q:\n%s", part, log)
		}
	}
	if !strings.Contains(log, "key: ***\nthen *** alone\nwhole:\n***\n") {
		t.Fatalf("log:\n%s", log)
	}
}

// TestMaskAfterRestart: a masker lost with the process (a remote runner's
// job goes on across a server restart) is built again from the database.
func TestMaskAfterRestart(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	const secret = "restart-proof-secret"
	if _, err := ts.store.SetSecret(ctx, store.SecretScope{OwnerID: ts.users["alice"].ID}, "DEPLOY", []byte(secret)); err != nil {
		t.Fatal(err)
	}
	job := ts.claimWorkflow(ts.pub, maskWorkflow)
	d, err := ts.store.JobDelivery(ctx, job.JobID)
	if err != nil {
		t.Fatal(err)
	}
	ts.postLog(job.JobID, job.Steps[1].ID, 1, "before "+secret+"\n")
	// A new Store on the same files: nothing in memory, the key read again.
	st2, err := openStore(ts.store.Path(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	if err := st2.AppendLog(ctx, ts.runner.ID, job.JobID, job.Steps[1].ID, 2, []byte("after "+secret+" "+d.Token+"\n")); err != nil {
		t.Fatal(err)
	}
	log := ts.jobLog(ts.pub, job.JobID)
	if !strings.Contains(log, "before ***\nafter *** ***\n") {
		t.Fatalf("log:\n%s", log)
	}
}

// TestMaskJobEnd: what is held back is stored when the job ends, by its
// runner or by the server (a lost runner, a restart).
func TestMaskJobEnd(t *testing.T) {
	for _, byServer := range []bool{false, true} {
		t.Run(fmt.Sprint("byServer=", byServer), func(t *testing.T) {
			ts := newTestServer(t)
			ctx := context.Background()
			if _, err := ts.store.SetSecret(ctx, store.SecretScope{RepoID: ts.pub.ID}, "DEPLOY", []byte("abcdefgh")); err != nil {
				t.Fatal(err)
			}
			job := ts.claimWorkflow(ts.pub, maskWorkflow)
			ts.postLog(job.JobID, job.Steps[1].ID, 1, "held: abcd")
			if byServer {
				if _, err := ts.store.FailRunnerJobs(ctx, ts.runner.ID, "interrupted"); err != nil {
					t.Fatal(err)
				}
			} else {
				ts.jobStatus(job.JobID, "failure", 200)
			}
			log := ts.jobLog(ts.pub, job.JobID)
			if !strings.Contains(log, "held: abcd") {
				t.Fatalf("log:\n%s", log)
			}
			if ts.store.LoadedMasker(job.JobID) != nil {
				t.Fatal("the masker of an ended job is still in memory")
			}
		})
	}
}

// TestMaskSummaryAndAnnotations: a step summary and an annotation that a
// runner posts with the job's secret or token in them are stored masked.
func TestMaskSummaryAndAnnotations(t *testing.T) {
	ts := newTestServer(t)
	ctx := context.Background()
	if _, err := ts.store.SetSecret(ctx, store.SecretScope{RepoID: ts.pub.ID}, "DEPLOY", []byte("annotated-secret")); err != nil {
		t.Fatal(err)
	}
	job := ts.claimWorkflow(ts.pub, maskWorkflow)
	tok := job.Contexts["github"].(map[string]any)["token"].(string)
	step := job.Steps[1].ID
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/steps/%d/summary", job.JobID, step), auth: bearer(ts.rtoken),
		body: `{"markdown":"## Deployed with annotated-secret and ` + tok + `"}`}, 200, nil)
	ts.want(request{method: "POST", path: fmt.Sprintf("/api/v1/jobs/%d/annotations", job.JobID), auth: bearer(ts.rtoken),
		body: fmt.Sprintf(`{"step_id":%d,"level":"error","message":"login failed for annotated-secret","title":"token %s"}`, step, tok)}, 202, nil)
	var summary string
	if err := ts.store.DBForTest().QueryRow("SELECT summary FROM steps WHERE id = ?", step).Scan(&summary); err != nil {
		t.Fatal(err)
	}
	if summary != "## Deployed with *** and ***" {
		t.Fatalf("stored summary %q", summary)
	}
	as, err := ts.store.JobAnnotations(ctx, job.JobID)
	if err != nil || len(as) != 1 || as[0].Message != "login failed for ***" || as[0].Title != "token ***" {
		t.Fatalf("stored annotations %+v, %v", as, err)
	}
}
