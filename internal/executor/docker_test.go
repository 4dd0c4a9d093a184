package executor

import (
	"strings"
	"testing"

	"shithub-actions/internal/protocol"
)

// TestRunArgsAddHost: the job container maps the server's name.
func TestRunArgsAddHost(t *testing.T) {
	ex := New(Config{AddHosts: []string{"shithub.localhost:172.17.0.1"}}, nil, runnerTestLogger())
	j := &execJob{ex: ex, job: &protocol.Job{JobID: 1, RunID: 1}, name: "c", network: "c"}
	args := strings.Join(j.createArgs("img", nil), " ")
	if !strings.Contains(args, "--add-host shithub.localhost:172.17.0.1") || !strings.HasSuffix(args, "-- img -f /dev/null") {
		t.Fatalf("docker run args: %s", args)
	}
}
