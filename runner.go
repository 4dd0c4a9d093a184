package main

import "context"

// claimedJob is what a heartbeat hands a runner: everything it needs to run
// one job, so that a remote runner never reads the database.
type claimedJob struct {
	JobID          int64             `json:"job_id"`
	RunID          int64             `json:"run_id"`
	RepoID         int64             `json:"repo_id"`
	Repo           string            `json:"repo"` // owner/name
	HeadSHA        string            `json:"head_sha"`
	HeadRef        string            `json:"head_ref"`
	Event          string            `json:"event"`
	WorkflowName   string            `json:"workflow_name"`
	WorkflowFile   string            `json:"workflow_file"`
	JobKey         string            `json:"job_key"`
	JobName        string            `json:"job_name"`
	RunsOn         []string          `json:"runs_on"`
	Image          string            `json:"image"` // the job's container image; "" means map runs_on to an image
	Env            map[string]string `json:"env"`   // workflow env, job env and the CI variables, merged
	TimeoutMinutes int               `json:"timeout_minutes"`
	Steps          []claimedStep     `json:"steps"`
}

// claimedStep is one step of a claimedJob, in order. Steps[0] is always the
// "Set up job" step (kind "setup"): the executor writes what it prepares, and
// why preparing failed, into its log, so a failure is the first lines of the
// job's log as on GitHub.
type claimedStep struct {
	ID               int64             `json:"id"`
	Number           int               `json:"number"`
	Kind             string            `json:"kind"` // setup, run or checkout
	Name             string            `json:"name"`
	Run              string            `json:"run"`
	Uses             string            `json:"uses"`
	Env              map[string]string `json:"env"`
	WorkingDirectory string            `json:"working_directory"`
}

// jobSource is the runner protocol as the executor sees it. The server
// implements it in-process on the Store; a remote runner implements it over
// HTTP. Every method is idempotent where the protocol is (logs by seq).
type jobSource interface {
	// claim takes the oldest claimable job whose runs-on labels are all in
	// labels; it returns nil, nil when there is none.
	claim(ctx context.Context, labels []string) (*claimedJob, error)
	// appendLog stores one chunk of a step's log; a repeated seq is a no-op.
	appendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error
	// setStepStatus moves a step to "running", or to "completed" with a
	// conclusion (success, failure, cancelled, skipped).
	setStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error
	// setJobStatus completes a job (status "completed") with a conclusion
	// (success, failure, cancelled, timed_out).
	setJobStatus(ctx context.Context, jobID int64, status, conclusion string) error
	// cancelRequested reports whether a cancel was requested for the job.
	cancelRequested(ctx context.Context, jobID int64) (bool, error)
	// checkout makes dir (which exists and is empty) a git working tree of
	// the job's repository, detached at job.HeadSHA.
	checkout(ctx context.Context, job *claimedJob, dir string) error
}
