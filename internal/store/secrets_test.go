package store

import (
	"strings"
	"testing"
)

// TestSecretsQueryPlans: the queries of every claim, log chunk and
// GITHUB_TOKEN request use indexes, never a scan of their table.
func TestSecretsQueryPlans(t *testing.T) {
	ts := newTestStore(t)
	for name, q := range map[string]string{
		"openSecrets": sqlOpenSecrets, "repoVars": sqlRepoVars,
		"jobToken": sqlJobToken, "jobCredentials": sqlJobCredentials,
	} {
		args := []any{int64(1), int64(1)}
		if strings.Count(q, "?") == 1 {
			args = args[:1]
		}
		p := ts.queryPlan(q, args...)
		if strings.Contains(p, "SCAN ") {
			t.Errorf("%s: plan %q scans a table", name, p)
		}
		t.Logf("%s: %s", name, p)
	}
}
