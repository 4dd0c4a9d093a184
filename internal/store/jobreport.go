// What a runner reports about a job besides its log and status: annotations
// (::error/::warning/::notice) and step summaries ($GITHUB_STEP_SUMMARY).

package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/protocol"
)

// Annotation caps, as GitHub's: at most 10 of each level per step and 50
// per job; the ones past a cap are dropped and one notice says so.
const (
	maxAnnotationsPerStepLevel = 10
	maxAnnotationsPerJob       = 50
	maxAnnotationMessage       = 64 << 10
	// maxStepSummary is GitHub's cap on one step's summary (1 MiB).
	MaxStepSummary = 1 << 20
)

// addAnnotation stores an annotation of a running job its runner holds. It
// reports whether it was kept: one past a cap is dropped, and the first
// drop of a job adds a notice saying so.
func (s *Store) AddAnnotation(ctx context.Context, runnerID, jobID int64, a protocol.Annotation) (bool, error) {
	switch {
	case !slices.Contains([]string{"error", "warning", "notice"}, a.Level):
		return false, apperr.Invalidf("level must be error, warning or notice")
	case a.Message == "":
		return false, apperr.Invalidf("message is required")
	case len(a.Message) > maxAnnotationMessage || len(a.Title) > 1024 || len(a.File) > 4096:
		return false, apperr.Invalidf("annotation too large")
	case a.Line < 0 || a.Col < 0 || a.EndLine < 0 || a.EndColumn < 0:
		return false, apperr.Invalidf("line and column must not be negative")
	}
	// Masked as the log is (jobmask.go): the job's secrets and token.
	m, err := s.masker(ctx, jobID)
	if err != nil {
		return false, err
	}
	a.Message, a.Title, a.File = m.set.Mask(a.Message), m.set.Mask(a.Title), m.set.Mask(a.File)
	kept := false
	err = s.WithTx(ctx, func(tx *sql.Tx) error {
		j, err := heldJob(ctx, tx, runnerID, jobID)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow("SELECT COUNT(*) FROM steps WHERE id = ? AND job_id = ?", a.StepID, j.ID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return apperr.NotFoundf("no step %d in job %d", a.StepID, j.ID)
		}
		if j.Status != protocol.StatusRunning {
			return apperr.Conflictf("job is %s", j.Status)
		}
		var perStep, perJob int
		if err := tx.QueryRow(`SELECT COUNT(*) FILTER (WHERE step_id = ? AND level = ?), COUNT(*) FROM annotations
			WHERE job_id = ? AND title != 'Annotations dropped'`, a.StepID, a.Level, j.ID).Scan(&perStep, &perJob); err != nil {
			return err
		}
		if perStep >= maxAnnotationsPerStepLevel || perJob >= maxAnnotationsPerJob {
			var dropped int
			if err := tx.QueryRow("SELECT COUNT(*) FROM annotations WHERE job_id = ? AND title = 'Annotations dropped'", j.ID).Scan(&dropped); err != nil {
				return err
			}
			if dropped == 0 {
				_, err := tx.Exec(`INSERT INTO annotations (job_id, step_id, level, message, title) VALUES (?, ?, 'notice', ?, 'Annotations dropped')`,
					j.ID, a.StepID, fmt.Sprintf("This job has more annotations than are kept (%d per step and level, %d per job); the rest were dropped.",
						maxAnnotationsPerStepLevel, maxAnnotationsPerJob))
				return err
			}
			return nil
		}
		kept = true
		_, err = tx.Exec(`INSERT INTO annotations (job_id, step_id, level, message, file, line, col, end_line, end_column, title)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, j.ID, a.StepID, a.Level, a.Message, a.File, a.Line, a.Col, a.EndLine, a.EndColumn, a.Title)
		if err != nil {
			return err
		}
		return s.bumpRepoOfRun(tx, j.RunID, s.NowMS())
	})
	return kept, err
}

// jobAnnotations lists a job's annotations in the order they came.
func (s *Store) JobAnnotations(ctx context.Context, jobID int64) ([]protocol.Annotation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, step_id, level, message, file, line, col, end_line, end_column, title
		FROM annotations WHERE job_id = ? ORDER BY id`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []protocol.Annotation{}
	for rows.Next() {
		var a protocol.Annotation
		if err := rows.Scan(&a.ID, &a.StepID, &a.Level, &a.Message, &a.File, &a.Line, &a.Col, &a.EndLine, &a.EndColumn, &a.Title); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// setStepSummary stores a step's summary (Markdown) for a running job its
// runner holds; a later call replaces it.
func (s *Store) SetStepSummary(ctx context.Context, runnerID, jobID, stepID int64, markdown string) error {
	if len(markdown) > MaxStepSummary {
		return apperr.Invalidf("a step summary may hold at most %d bytes", MaxStepSummary)
	}
	markdown, err := s.MaskJobText(ctx, jobID, markdown) // as the log is
	if err != nil {
		return err
	}
	return s.WithTx(ctx, func(tx *sql.Tx) error {
		j, err := heldJob(ctx, tx, runnerID, jobID)
		if err != nil {
			return err
		}
		res, err := tx.Exec("UPDATE steps SET summary = ? WHERE id = ? AND job_id = ?", markdown, stepID, j.ID)
		if err := mustAffectOne(res, err); err != nil {
			return err
		}
		if j.Status != protocol.StatusRunning {
			return apperr.Conflictf("job is %s", j.Status)
		}
		return s.bumpRepoOfRun(tx, j.RunID, s.NowMS())
	})
}
