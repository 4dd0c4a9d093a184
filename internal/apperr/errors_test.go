package apperr

import (
	"errors"
	"fmt"
	"testing"
)

func TestIsSentinel(t *testing.T) {
	wrapped := fmt.Errorf("load: %w", NotFoundf("no run 7"))
	if !errors.Is(wrapped, ErrNotFound) {
		t.Errorf("errors.Is(%v, ErrNotFound) = false, want true", wrapped)
	}
	if errors.Is(Conflictf("x"), ErrNotFound) {
		t.Error("a conflict Is ErrNotFound")
	}
	// A message-carrying error is not a sentinel: nothing else Is it.
	if errors.Is(ErrNotFound, NotFoundf("no run 7")) {
		t.Error("ErrNotFound Is a particular not-found error")
	}
}
