package main

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/store"
)

// TestLeaveCheckpoints: with --checkpoint litestream nothing in this
// process checkpoints the WAL (Litestream must): not SQLite on commit, not
// retention, not the idle upkeep. With auto, each of them does.
func TestLeaveCheckpoints(t *testing.T) {
	const page = 4096
	for _, mode := range []string{"auto", "litestream"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			db := filepath.Join(t.TempDir(), "c.db")
			st, err := openStore(db, store.Options{LeaveCheckpoints: mode == "litestream"})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			walSize := func() int64 {
				fi, err := os.Stat(db + "-wal")
				if err != nil {
					return 0
				}
				return fi.Size()
			}
			// 2,500 pages in small commits: SQLite's own checkpoint comes
			// at 1,000 pages in the WAL, which then starts over.
			if _, err := st.WriteDBForTest().Exec("CREATE TABLE junk (b BLOB)"); err != nil {
				t.Fatal(err)
			}
			for range 2500 {
				if _, err := st.WriteDBForTest().Exec("INSERT INTO junk VALUES (randomblob(3000))"); err != nil {
					t.Fatal(err)
				}
			}
			grown := walSize() > 2000*page
			if grown != (mode == "litestream") {
				t.Fatalf("%s: the WAL holds %d pages after 2,500 written; SQLite checkpointed: %v", mode, walSize()/page, !grown)
			}

			// The idle upkeep truncates the WAL once writes pause, unless
			// it is left to Litestream.
			before := walSize()
			mctx, stop := context.WithCancel(ctx)
			done := make(chan struct{})
			m := &store.Maintainer{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Every: time.Hour, Idle: 10 * time.Millisecond}
			go func() { m.Run(mctx); close(done) }()
			deadline := time.Now().Add(5 * time.Second)
			if mode == "auto" {
				for walSize() != 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
			} else {
				time.Sleep(300 * time.Millisecond) // thirty idle ticks
			}
			stop()
			<-done
			if got := walSize(); (got == 0) != (mode == "auto") || (mode == "litestream" && got != before) {
				t.Fatalf("%s: the WAL is %d bytes after the idle upkeep (%d before)", mode, got, before)
			}
		})
	}
}

// TestPruneCheckpointFlag: prune --checkpoint litestream removes what it
// would, with no checkpoint among its writes.
func TestPruneCheckpointFlag(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		code  int
		check func(out string) bool
	}{
		{"auto", 0, func(out string) bool {
			return strings.Contains(out, "removed 300 runs") && !strings.Contains(out, " 0 checkpoints)")
		}},
		{"litestream", 0, func(out string) bool {
			return strings.Contains(out, "removed 300 runs") && strings.Contains(out, " 0 checkpoints)")
		}},
		{"sometimes", 2, func(out string) bool { return strings.Contains(out, "want auto or litestream") }},
	} {
		db := filepath.Join(t.TempDir(), "p.db")
		// The runs are made 400 days ago.
		st, err := openStore(db, store.Options{Now: func() time.Time { return time.Now().Add(-400 * 24 * time.Hour) }})
		if err != nil {
			t.Fatal(err)
		}
		alice, _ := st.CreateUser(context.Background(), "alice")
		repo, _ := st.CreateRepo(context.Background(), alice, "pub", "/x", false)
		insertTestRuns(t, st, repo, alice, 300, rand.New(rand.NewPCG(5, 6)), []string{".shithub/workflows/a.yml"}, []string{"main"})
		st.Close()
		code, stdout, stderr := cliRun(t, db, "", "prune", "--checkpoint", tc.mode, "--runs-older-than", "365d")
		if code != tc.code || !tc.check(stdout+stderr) {
			t.Errorf("prune --checkpoint %s: exit %d, %q %q", tc.mode, code, stdout, stderr)
		}
	}
}
