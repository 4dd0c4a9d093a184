// The operator's commands: prune, backup, check.

package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/store"
)

// prune is `shithub-actions prune`: retention on demand, in the same short
// write transactions serve uses, so it may run while serve does.
func (c *cli) prune(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("prune", flag.ContinueOnError)
	logsAge := fs.String("logs-older-than", "0", "remove the logs of runs older than this (Nd or a duration)")
	runsAge := fs.String("runs-older-than", "0", "remove runs older than this, with their jobs and logs")
	dry := fs.Bool("dry-run", false, "say what would be removed, and remove nothing")
	vacuum := fs.Bool("vacuum", false, "afterwards, VACUUM: give all free space back to the filesystem")
	checkpoints := fs.String("checkpoint", "auto", "who checkpoints the WAL: auto (prune, as it goes) or litestream")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	if *checkpoints != "auto" && *checkpoints != "litestream" {
		return apperr.Usagef("prune: --checkpoint: want auto or litestream, got %q", *checkpoints)
	}
	var keep store.Retention
	var err error
	if keep.Logs, err = store.ParseAge(*logsAge); err != nil {
		return apperr.Usagef("prune: --logs-older-than: %v", err)
	}
	if keep.Runs, err = store.ParseAge(*runsAge); err != nil {
		return apperr.Usagef("prune: --runs-older-than: %v", err)
	}
	if keep.Logs == 0 && keep.Runs == 0 && !*vacuum {
		return apperr.Usagef("prune: give --logs-older-than, --runs-older-than or --vacuum")
	}
	if *dry && *vacuum {
		return apperr.Usagef("prune: --dry-run and --vacuum do not go together")
	}
	st, err := c.openWith(store.Options{LeaveCheckpoints: *checkpoints == "litestream"})
	if err != nil {
		return err
	}
	defer st.Close()
	now := st.Now()
	rep, err := st.Prune(ctx, keep, store.PruneOpts{Dry: *dry, Pause: store.PruneCLIPause, KeepPages: *vacuum})
	if err != nil {
		return err
	}
	verb := "removed"
	if *dry {
		verb = "would remove"
	}
	if keep.Logs > 0 {
		fmt.Fprintf(c.stdout, "%s the logs of %d runs created before %s: %d steps, %s\n", verb, rep.LogRuns,
			now.Add(-keep.Logs).UTC().Format(time.DateTime), rep.LogSteps, mib(rep.LogBytes))
	}
	if keep.Runs > 0 {
		fmt.Fprintf(c.stdout, "%s %d runs created before %s, with their jobs, steps and logs, and %d push records\n", verb, rep.Runs,
			now.Add(-keep.Runs).UTC().Format(time.DateTime), rep.Pushes)
	}
	if !*dry && !*vacuum {
		pageSize, _ := st.PageSize(ctx)
		fmt.Fprintf(c.stdout, "handed %s of free pages back to the filesystem\n", mib(rep.Pages*pageSize))
	}
	round := func(d time.Duration) time.Duration { return d.Round(10 * time.Microsecond) }
	switch {
	case *dry && rep.Batches > 0:
		fmt.Fprintf(c.stdout, "in %d reads; the longest took %s\n", rep.Batches, round(rep.Longest))
	case rep.Batches > 0:
		fmt.Fprintf(c.stdout, "in %d writes (%d incremental_vacuum steps, %d checkpoints): median %s, p99 %s, the longest %s; %d over %s\n",
			rep.Batches, rep.VacuumSteps, rep.Checkpoints, round(rep.Percentile(0.5)), round(rep.Percentile(0.99)), round(rep.Longest),
			rep.Slow, store.PruneTxSlow)
	}
	if *vacuum {
		before := fileSize(c.db)
		if err := st.Vacuum(ctx); err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
		if _, err := st.Checkpoint(ctx); err != nil {
			return fmt.Errorf("vacuum: checkpoint: %w", err)
		}
		fmt.Fprintf(c.stdout, "vacuumed %s: %s before, %s after\n", c.db, mib(before), mib(fileSize(c.db)))
	}
	return nil
}

// backup is `shithub-actions backup FILE`.
func (c *cli) backup(ctx context.Context, args []string) error {
	pos, err := c.parse(flag.NewFlagSet("backup", flag.ContinueOnError), args, "FILE")
	if err != nil {
		return err
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	start := time.Now()
	res, err := st.Backup(ctx, pos[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "backed up %s to %s: %s, %d runs, integrity_check ok, in %s\n", c.db, res.Path, mib(res.Bytes), res.Runs,
		time.Since(start).Round(time.Millisecond))
	return nil
}

// check is `shithub-actions check`: exit 0 when clean, 1 when it found
// something, 2 on bad input.
func (c *cli) check(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "quick_check instead of integrity_check: faster on a large file")
	if _, err := c.parse(fs, args); err != nil {
		return err
	}
	if _, err := os.Stat(c.db); err != nil {
		return apperr.Usagef("check: %v", err)
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := st.Check(ctx, *quick)
	if err != nil {
		return err
	}
	for i, p := range rep.Problems {
		if i == 100 {
			fmt.Fprintf(c.stdout, "... and %d more\n", len(rep.Problems)-i)
			break
		}
		fmt.Fprintln(c.stdout, p)
	}
	if len(rep.Problems) > 0 {
		return fmt.Errorf("check: %d problems in %s", len(rep.Problems), c.db)
	}
	fmt.Fprintf(c.stdout, "check: %s is ok: integrity, foreign keys; %d open runs and %d open jobs, none stuck\n", c.db, rep.OpenRuns, rep.OpenJobs)
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// repoAccess is `repo access OWNER/NAME [none|user|organization]`: it sets
// the repository's Actions access level, or prints it.
func (c *cli) repoAccess(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("repo access", flag.ContinueOnError)
	pos, err := c.parseAny(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 && len(pos) != 2 {
		return apperr.Usagef("usage: shithub-actions repo access OWNER/NAME [none|user]")
	}
	if _, _, err := splitRepo(pos[0]); err != nil {
		return err
	}
	level := ""
	if len(pos) == 2 {
		if level, err = store.ParseAccessLevel(pos[1]); err != nil {
			return apperr.Usagef("repo access: %v", err)
		}
	}
	st, err := c.open()
	if err != nil {
		return err
	}
	defer st.Close()
	r, err := findRepo(ctx, st, pos[0])
	if err != nil {
		return err
	}
	if level != "" {
		if err := st.SetActionsAccess(ctx, r.ID, level); err != nil {
			return err
		}
	}
	if level, err = st.ActionsAccess(ctx, r.ID); err != nil {
		return err
	}
	what := fmt.Sprintf("jobs of %s's other repositories reach it too (never a pull request's run)", r.Owner)
	if level == store.AccessNone {
		what = "another repository's job reaches it only with a token that may read it"
	}
	if !r.Private {
		what = "public: every job reaches it; the level counts while it is private"
	}
	fmt.Fprintf(c.stdout, "%s: access %s (%s)\n", r.FullName(), level, what)
	return nil
}
