// GET /healthz: whether the database answers a read and a write in time.

package main

import (
	"context"
	"database/sql"
	"net/http"
	"sync"
	"time"

	"shithub-actions/internal/apperr"
)

// healthTimeout is how long /healthz waits for the database's answers.
const healthTimeout = time.Second

// healthProbe shares one write probe among concurrent health checks, so
// a stuck database is not handed a queue of probes.
type healthProbe struct {
	mu       sync.Mutex    // guards inFlight
	inFlight chan struct{} // closed when the running write probe ends; nil when none runs
	err      error         // the running probe's result, set before inFlight closes
}

// write starts a write probe unless one is running and returns the
// channel its end closes, with a function reading its result.
func (h *healthProbe) write(st *Store) (<-chan struct{}, func() error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.inFlight == nil {
		done := make(chan struct{})
		h.inFlight = done
		go func() {
			err := st.withTx(context.Background(), func(tx *sql.Tx) error {
				_, err := tx.Exec(`INSERT INTO meta (key, value) VALUES ('health', ?)
					ON CONFLICT (key) DO UPDATE SET value = excluded.value`, time.Now().UTC().Format(time.RFC3339Nano))
				return err
			})
			h.mu.Lock()
			h.err = err
			h.inFlight = nil
			h.mu.Unlock()
			close(done)
		}()
	}
	done := h.inFlight
	return done, func() error {
		h.mu.Lock()
		defer h.mu.Unlock()
		return h.err
	}
}

// handleHealth serves GET /healthz: 200 "ok" when the database answers a
// read and a write within a second, else 503 with the reason. A write
// probe that outlives the request finishes on its own; it is never
// cancelled half-way.
func (s *server) handleHealth(w http.ResponseWriter, r *http.Request) {
	fail := func(reason string) {
		s.store.metrics.healthFailed.Add(1)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(reason + "\n"))
	}
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	var n int
	if err := s.store.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM meta").Scan(&n); err != nil {
		fail("database read failed: " + errText(err))
		return
	}
	done, result := s.health.write(s.store)
	select {
	case <-done:
		if err := result(); err != nil {
			fail("database write failed: " + errText(err))
			return
		}
	case <-ctx.Done():
		fail("database write did not finish within " + healthTimeout.String())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte("ok\n"))
}

// errText is an error's text for an operator: the domain's message when
// there is one, else the cause.
func errText(err error) string {
	if ae, ok := err.(*apperr.Error); ok && ae.Msg != "" {
		return ae.Msg
	}
	return err.Error()
}
