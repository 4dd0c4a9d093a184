package store

import (
	"context"
	"os"
	"sort"
	"strings"
	"time"

	"shithub-actions/internal/protocol"
)

// openJobCounts counts queued and running jobs by runs-on, from the open
// jobs' partial index.
func (s *Store) OpenJobCounts(ctx context.Context) ([]jobCount, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT status, runs_on, COUNT(*) FROM jobs WHERE status != 'completed' GROUP BY status, runs_on")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byKey := map[[2]string]int64{}
	for rows.Next() {
		var st, runsOn string
		var n int64
		if err := rows.Scan(&st, &runsOn, &n); err != nil {
			return nil, err
		}
		var l []string
		if err := decodeColumn("jobs.runs_on", runsOn, &l); err != nil {
			return nil, err
		}
		byKey[[2]string{st, strings.Join(l, ",")}] += n
	}
	out := []jobCount{}
	for _, st := range []string{protocol.StatusQueued, protocol.StatusRunning} {
		keys := []string{}
		for k := range byKey {
			if k[0] == st {
				keys = append(keys, k[1])
			}
		}
		sort.Strings(keys)
		for _, l := range keys {
			out = append(out, jobCount{st, l, byKey[[2]string{st, l}]})
		}
		if len(keys) == 0 { // a zero sample, so a dashboard sees the series
			out = append(out, jobCount{st, "", 0})
		}
	}
	return out, rows.Err()
}

func (s *Store) RunnerAges(ctx context.Context) ([]runnerAge, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, last_seen_at FROM runners ORDER BY name")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	now := s.NowMS()
	var out []runnerAge
	for rows.Next() {
		var r runnerAge
		var seen *int64
		if err := rows.Scan(&r.Name, &seen); err != nil {
			return nil, err
		}
		r.Age = -1
		if seen != nil {
			r.Age = float64(now-*seen) / 1000
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// fileStats sizes the database file, its WAL and its free pages.
func (s *Store) FileStats(ctx context.Context) ([]fileStat, error) {
	var pageSize, pages, free int64
	err := s.db.QueryRowContext(ctx, "SELECT page_size, page_count, freelist_count FROM pragma_page_size, pragma_page_count, pragma_freelist_count").
		Scan(&pageSize, &pages, &free)
	if err != nil {
		return nil, err
	}
	out := []fileStat{{"db", pageSize * pages}, {"free", pageSize * free}}
	if fi, err := os.Stat(s.path + "-wal"); err == nil {
		out = append(out, fileStat{"wal", fi.Size()})
	} else {
		out = append(out, fileStat{"wal", 0})
	}
	return out, nil
}

// jobEnded is finishJob's hook: a job completed.
func (s *Store) jobEnded(j *Job, conclusion string, now int64) {
	id, started := j.ID, j.StartedAt
	s.onCommit = append(s.onCommit, func() { s.metrics.JobDone(id, conclusion, started, time.UnixMilli(now)) })
}

// runEnded is rollup's hook: a run completed.
func (s *Store) runEnded(conclusion string, created, now int64) {
	s.onCommit = append(s.onCommit, func() { s.metrics.RunDone(conclusion, time.UnixMilli(created), time.UnixMilli(now)) })
}

// logStored is appendLog's hook: n bytes of log were stored.
func (s *Store) logStored(n int) {
	s.onCommit = append(s.onCommit, func() { s.metrics.LogBytes.Add(int64(n)) })
}

type jobCount struct {
	Status, Labels string
	N              int64
}

type runnerAge struct {
	Name string
	Age  float64
}

type fileStat struct {
	Name  string
	Bytes int64
}
