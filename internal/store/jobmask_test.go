package store

import (
	"context"
	"fmt"
	"shithub-actions/internal/workflow"
	"strings"
	"testing"
)

// maskWorkflow's one job echoes the secret DEPLOY.
const maskWorkflow = "name: Deploy\non: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n" +
	"      - run: echo ${{ secrets.DEPLOY }}\n"

// TestMaskJobText: step summaries and annotations are masked whole.
func TestMaskJobText(t *testing.T) {
	ts := newTestStore(t)
	ctx := context.Background()
	if _, err := ts.SetSecret(ctx, SecretScope{RepoID: ts.pub.ID}, "DEPLOY", []byte("summary-secret")); err != nil {
		t.Fatal(err)
	}
	job := ts.claimWorkflow(ts.pub, maskWorkflow)
	got, err := ts.MaskJobText(ctx, job.JobID, "## Deployed\nwith summary-secret!")
	if err != nil || got != "## Deployed\nwith ***!" {
		t.Fatalf("maskJobText = %q, %v", got, err)
	}
}

// BenchmarkAppendLogMasked stores 64 KiB log chunks (the executor's chunk
// size) of a job holding n secrets plus its GITHUB_TOKEN, through the
// masker: the cost of server-side masking on the log path.
func BenchmarkAppendLogMasked(b *testing.B) {
	for _, n := range []int{0, 20, 100} {
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			ts := newTestStoreWith(b, Options{LogCap: 1 << 62})
			st, repo, alice := ts.Store, ts.pub, ts.users["alice"]
			ctx := context.Background()
			wf := "name: W\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo '${{ toJSON(secrets) }}'\n"
			for i := range n {
				if _, err := st.SetSecret(ctx, SecretScope{RepoID: repo.ID}, fmt.Sprintf("S%d", i), []byte(fmt.Sprintf("secret-value-%d-%032x", i, i))); err != nil {
					b.Fatal(err)
				}
			}
			parsed, err := workflow.Parse("w.yml", []byte(wf))
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := st.CreateRuns(ctx, nil, []RunSpec{{RepoID: repo.ID, File: ".shithub/workflows/w.yml", Content: []byte(wf),
				Workflow: parsed, HeadSHA: strings.Repeat("a", 40), HeadRef: "refs/heads/main", Event: "push", ActorID: alice.ID}}); err != nil {
				b.Fatal(err)
			}
			rn, err := st.LocalRunner(ctx, []string{"ubuntu-latest"})
			if err != nil {
				b.Fatal(err)
			}
			job, err := st.ClaimJob(ctx, rn, []string{"ubuntu-latest"})
			if err != nil || job == nil {
				b.Fatal("no job", err)
			}
			line := "compiling package foo/bar/baz with flags -O2 secret-value-7 almost\n"
			chunk := []byte(strings.Repeat(line, 64<<10/len(line)))
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for i := range b.N {
				if err := st.AppendLog(ctx, rn.ID, job.JobID, job.Steps[1].ID, int64(i+1), chunk); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
