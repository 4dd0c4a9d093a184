package store

import (
	"strings"
	"testing"
)

// TestRollup checks how job conclusions fold into the run's.
func TestRollup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		jobs []string
		want string
	}{
		{[]string{"success"}, "success"},
		{[]string{"success", "success"}, "success"},
		{[]string{"success", "skipped"}, "success"},
		{[]string{"skipped", "skipped"}, "skipped"},
		{[]string{"success", "cancelled"}, "cancelled"},
		{[]string{"cancelled", "skipped"}, "cancelled"},
		{[]string{"cancelled", "failure"}, "failure"},
		{[]string{"timed_out", "cancelled"}, "timed_out"},
		{[]string{"timed_out", "failure"}, "failure"},
		{[]string{"success", "timed_out", "skipped"}, "timed_out"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.jobs, ","), func(t *testing.T) {
			if got := runConclusion(tt.jobs); got != tt.want {
				t.Errorf("runConclusion(%v) = %q, want %q", tt.jobs, got, tt.want)
			}
		})
	}
}
