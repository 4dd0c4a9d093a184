package executor

import (
	"context"
	"slices"
	"testing"
)

// TestSweepOrphans removes the containers of jobs no worker runs, and
// leaves the running jobs' containers alone.
func TestSweepOrphans(t *testing.T) {
	ex, fe := newTestExecutor(t, newFakeSource())
	fe.set(t, "ps-output", "c0ffee01 5\nc0ffee02 7\nc0ffee03 9\n")
	ex.mu.Lock()
	ex.jobs[7] = &execJob{}
	ex.mu.Unlock()
	fe.set(t, "network-ls-output", "ne7001 5\nne7002 7\n")
	fe.set(t, "volume-ls-output", "shithub-vol-9 9\n")
	n, err := ex.sweepOrphans(context.Background())
	if err != nil || n != 4 {
		t.Fatalf("sweepOrphans = %d, %v; want 4 removed (2 containers, a network, a volume)", n, err)
	}
	var nets, vols []dockerCall
	for _, c := range fe.calls(t) {
		if len(c.Args) > 1 && c.Args[1] == "rm" {
			switch c.Args[0] {
			case "network":
				nets = append(nets, c)
			case "volume":
				vols = append(vols, c)
			}
		}
	}
	if len(nets) != 1 || !slices.Equal(nets[0].Args, []string{"network", "rm", "ne7001"}) ||
		len(vols) != 1 || !slices.Equal(vols[0].Args, []string{"volume", "rm", "-f", "shithub-vol-9"}) {
		t.Fatalf("network and volume removals = %v, %v", nets, vols)
	}
	rms := fe.commands(t, "rm")
	if len(rms) != 1 || !slices.Equal(rms[0].Args, []string{"rm", "-f", "c0ffee01", "c0ffee03"}) {
		t.Fatalf("docker rm calls = %v, want one removing c0ffee01 and c0ffee03", rms)
	}
	ps := fe.commands(t, "ps")
	if len(ps) != 2 || !slices.Contains(ps[0].Args, "label="+LabelInstance+"=test") || !slices.Contains(ps[1].Args, "label="+LabelInstance+"=test") {
		t.Fatalf("docker ps calls = %v, want two filtered by this instance (the pool's containers, and the jobs')", ps)
	}
	// Nothing to sweep: no rm.
	fe.set(t, "ps-output", "c0ffee02 7\n")
	fe.set(t, "network-ls-output", "ne7002 7\n")
	fe.set(t, "volume-ls-output", "")
	if n, err := ex.sweepOrphans(context.Background()); err != nil || n != 0 || len(fe.commands(t, "rm")) != 1 {
		t.Fatalf("a second sweep = %d, %v; want nothing removed", n, err)
	}
	// An engine that does not answer is an error, not a panic.
	fe.set(t, "no-engine", "")
	if _, err := ex.sweepOrphans(context.Background()); err == nil {
		t.Fatal("sweepOrphans with no engine: no error")
	}
}
