package main

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"shithub-actions/internal/store"
)

// BenchmarkActionsTab renders the Actions tab in process (no network):
// all runs, one workflow's view (its chart of 50 runs and flaky jobs), and
// that view with filters. The database is SHITHUB_BENCH_DB when set (a
// copy of one bench/ filled, alice/pub: `cd bench && go run . -runs
// 1000000 -phases single -keep -dir D`, then D/bench.db), else 20,000 runs
// from `dev fill`. Goal: under 10 ms per page at 1,000,000 runs.
//
//	SHITHUB_BENCH_DB=D/bench.db go test -run '^$' -bench BenchmarkActionsTab -benchtime 200x .
func BenchmarkActionsTab(b *testing.B) {
	ctx := context.Background()
	path := os.Getenv("SHITHUB_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "tab.db")
		st, err := openStore(path, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		alice, _ := st.CreateUser(ctx, "alice")
		if _, err := st.CreateRepo(ctx, alice, "pub", b.TempDir(), false); err != nil {
			b.Fatal(err)
		}
		st.Close()
		var out, errOut strings.Builder
		if err := run(ctx, []string{"--db", path, "dev", "fill", "--repo", "alice/pub", "--runs", "20000", "--logs-for", "0"},
			strings.NewReader(""), &out, &errOut); err != nil {
			b.Fatalf("dev fill: %v %s", err, errOut.String())
		}
	}
	st, err := openStore(path, store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv := newServer(st, slog.New(slog.NewTextHandler(io.Discard, nil)), "")
	for _, c := range []struct{ name, target string }{
		{"all", "/alice/pub/actions"},
		{"workflow", "/alice/pub/actions?workflow=ci.yml"},
		{"workflow+branch", "/alice/pub/actions?workflow=ci.yml&branch=main"},
		{"workflow+status", "/alice/pub/actions?workflow=nightly.yml&status=failure"},
	} {
		b.Run(c.name, func(b *testing.B) {
			cpu0 := cpuTime()
			for range b.N {
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, httptest.NewRequest("GET", c.target, nil))
				if w.Code != 200 {
					b.Fatalf("GET %s: %d", c.target, w.Code)
				}
				if c.name != "all" && !strings.Contains(w.Body.String(), `<figure class="chart">`) {
					b.Fatalf("GET %s: no chart", c.target)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
	// The workflow view's own reads, alone.
	repo, err := st.RepoByName(ctx, "alice", "pub")
	if err != nil {
		b.Fatal(err)
	}
	wfs, err := st.WebWorkflows(ctx, repo.ID)
	if err != nil || len(wfs) == 0 {
		b.Fatal(err)
	}
	b.Run("history+flaky", func(b *testing.B) {
		cpu0 := cpuTime()
		for range b.N {
			if p, err := st.WorkflowHistory(ctx, repo.ID, wfs[0].ID, webChartRuns); err != nil || len(p) != webChartRuns {
				b.Fatal(err)
			}
			if _, err := st.FlakyJobs(ctx, repo.ID, wfs[0].ID, webFlakyJobs); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	})
}
