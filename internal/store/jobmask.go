// Server-side masking: every log chunk the Store keeps passes through its
// job's masker first, whichever runner sent it (in-process or remote), so
// a job's secrets and GITHUB_TOKEN never reach the database, also when a
// value is split across two chunks.
//
// The maskers live in memory, one per running job with a logtext.MaskWriter per
// step (mask.go). A writer holds back the tail of a chunk that may be the
// start of a secret; the tail is stored when its step ends, or when the job
// does. After a restart a job's masker is built again from the database:
// the names of the secrets it was given and its token's nonce, with the
// server key. (A tail held back when the server stopped is lost: at most
// the length of the longest secret less one byte of that step's output.)

package store

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/logtext"
)

// jobMasks holds the maskers of the jobs whose logs are being written.
type jobMasks struct {
	mu   sync.Mutex // guards jobs
	Jobs map[int64]*jobMasker
}

// jobMasker masks one job's log.
//
// Lock order: the write connection (a transaction) first, then mu. Every
// user locks mu inside its transaction's function, so a chunk's masking
// and storing are one step, and the writer state is kept only once the
// chunk is committed.
type jobMasker struct {
	set *logtext.MaskSet

	mu    sync.Mutex                    // guards steps
	steps map[int64]*logtext.MaskWriter // per step; absent: nothing held back
}

// masker returns job jobID's masker, building it from the database when
// it is not in memory (the first chunk, or after a restart). A job never
// claimed (a workflow that did not parse) masks nothing.
func (s *Store) masker(ctx context.Context, jobID int64) (*jobMasker, error) {
	s.masks.mu.Lock()
	m := s.masks.Jobs[jobID]
	s.masks.mu.Unlock()
	if m != nil {
		return m, nil
	}
	m = &jobMasker{set: &logtext.MaskSet{}, steps: map[int64]*logtext.MaskWriter{}}
	d, err := s.JobDelivery(ctx, jobID)
	switch {
	case err == nil:
		for _, v := range d.maskValues() {
			m.set.Add(v)
		}
	case !errors.Is(err, apperr.ErrNotFound):
		return nil, err
	}
	s.masks.mu.Lock()
	defer s.masks.mu.Unlock()
	if s.masks.Jobs == nil {
		s.masks.Jobs = map[int64]*jobMasker{}
	}
	if old := s.masks.Jobs[jobID]; old != nil {
		return old, nil // built at the same time by another request
	}
	s.masks.Jobs[jobID] = m
	return m, nil
}

// loadedMasker is job jobID's masker if it is in memory, else nil.
func (s *Store) LoadedMasker(jobID int64) *jobMasker {
	s.masks.mu.Lock()
	defer s.masks.mu.Unlock()
	return s.masks.Jobs[jobID]
}

// dropMasker forgets a job's masker: the job has ended.
func (s *Store) dropMasker(jobID int64) {
	s.masks.mu.Lock()
	delete(s.masks.Jobs, jobID)
	s.masks.mu.Unlock()
}

// maskJobText masks a whole text of a job at once (a step summary, an
// annotation's message or title) with the job's values.
func (s *Store) MaskJobText(ctx context.Context, jobID int64, text string) (string, error) {
	m, err := s.masker(ctx, jobID)
	if err != nil {
		return "", err
	}
	return m.set.Mask(text), nil
}

// writer is the step's writer; m.mu is held.
func (m *jobMasker) writer(stepID int64) *logtext.MaskWriter {
	if w := m.steps[stepID]; w != nil {
		return w
	}
	return logtext.NewMaskWriter(m.set)
}

// flushStepTail stores, in tx, what the masker holds back of a step's log,
// as the step's next chunk. m.mu is held. It returns the bytes stored.
func flushStepTail(tx *sql.Tx, m *jobMasker, stepID int64) (int, error) {
	w := m.steps[stepID]
	if w == nil {
		return 0, nil
	}
	tail := w.Clone().Flush()
	if len(tail) == 0 {
		return 0, nil
	}
	var truncated bool
	if err := tx.QueryRow("SELECT log_truncated FROM steps WHERE id = ?", stepID).Scan(&truncated); err != nil {
		return 0, notFound(err)
	}
	if truncated {
		return 0, nil
	}
	if _, err := tx.Exec(`INSERT INTO log_chunks (step_id, seq, data)
		VALUES (?, COALESCE((SELECT MAX(seq) FROM log_chunks WHERE step_id = ?), 0) + 1, ?)`, stepID, stepID, tail); err != nil {
		return 0, err
	}
	_, err := tx.Exec("UPDATE steps SET log_size = log_size + ? WHERE id = ?", len(tail), stepID)
	return len(tail), err
}

// flushJobTails stores, in tx, what is held back of every step of a job
// that is ending, and forgets the job's masker.
func (s *Store) flushJobTails(tx *sql.Tx, jobID int64) error {
	m := s.LoadedMasker(jobID)
	if m == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range slices.Sorted(func(yield func(int64) bool) {
		for id := range m.steps {
			if !yield(id) {
				return
			}
		}
	}) {
		if _, err := flushStepTail(tx, m, id); err != nil {
			return err
		}
	}
	m.steps = map[int64]*logtext.MaskWriter{}
	s.dropMasker(jobID)
	return nil
}
