package protocol

import (
	"strconv"
	"time"

	"shithub-actions/internal/workflow"
)

// claimedJob is what a heartbeat hands a runner: everything it needs to run
// one job, so that a remote runner never reads the database.
type Job struct {
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
	Steps          []Step            `json:"steps"`

	// The workflow's own text for the executor to evaluate (issue 9's
	// claim contract), built by the server when the job became ready. A
	// claim without Contexts is an old one: its steps run as written, with
	// no expressions evaluated.

	// Contexts holds every context known when the job became ready, as
	// plain JSON values keyed by name (github, inputs, matrix, strategy,
	// needs, vars, secrets, env); the executor adds job, runner and steps.
	Contexts map[string]any `json:"contexts,omitempty"`
	// Defaults is defaults.run, the job's over the workflow's, unevaluated.
	Defaults workflow.RunDefaults `json:"defaults"`
	// Container is the job's container, evaluated by the server; Image
	// stays equal to Container.Image for old runners.
	Container *workflow.ContainerSpec `json:"container,omitempty"`
	// Services are the job's service containers by id (evaluated).
	Services map[string]*workflow.ContainerSpec `json:"services,omitempty"`
	// Outputs are the job's outputs: unevaluated expressions, evaluated
	// after the last step and reported with the job's status.
	Outputs map[string]string `json:"outputs,omitempty"`
	// EnvironmentURL is the job's environment url when it reads the steps
	// context (`url: ${{ steps.deploy.outputs.url }}`): unevaluated,
	// evaluated after the last step and reported with the job's status.
	EnvironmentURL string `json:"environment_url,omitempty"`
	// RuntimeToken is ACTIONS_RUNTIME_TOKEN: the job's credential for the
	// artifact and cache services, good while the job runs.
	RuntimeToken string `json:"runtime_token,omitempty"`
	// Untrusted says the job runs code of a pull request's author
	// (isForkPullRequest): nothing it writes may reach a trusted job, so it
	// gets a throwaway copy of its repository's tool cache, and the action
	// images it builds are its own, removed when it ends.
	Untrusted bool `json:"untrusted"`
}

// claimedStep is one step of a claimedJob, in order. Steps[0] is always the
// "Set up job" step (kind "setup"): the executor writes what it prepares, and
// why preparing failed, into its log, so a failure is the first lines of the
// job's log as on GitHub.
type Step struct {
	ID               int64             `json:"id"`
	Number           int               `json:"number"`
	Kind             string            `json:"kind"` // setup, run, checkout or uses (any other action)
	Name             string            `json:"name"`
	Run              string            `json:"run"`
	Uses             string            `json:"uses"`
	Env              map[string]string `json:"env"`
	WorkingDirectory string            `json:"working_directory"`

	// The step's own text, unevaluated (the claim contract).
	StepKey         string            `json:"step_key,omitempty"` // the step's id:
	If              string            `json:"if,omitempty"`
	With            map[string]string `json:"with,omitempty"`
	Shell           string            `json:"shell,omitempty"`
	ContinueOnError string            `json:"continue_on_error,omitempty"` // "", "true", "false" or an expression
	TimeoutMinutes  string            `json:"timeout_minutes,omitempty"`

	// filesID, when not 0, names the step's file directory instead of ID:
	// the steps of a composite action log to their step but need files
	// of their own.
	FilesID int64 `json:"-"`
	// actionPath is the composite action's directory in the container for
	// its own steps: their run scripts see it as $GITHUB_ACTION_PATH.
	ActionPath string
}

// stateKey names the step's saved state ($GITHUB_STATE) for its post.
func (s *Step) StateKey() string {
	switch {
	case s.FilesID != 0:
		return "__f" + strconv.FormatInt(s.FilesID, 10)
	case s.StepKey != "":
		return s.StepKey
	}
	return "__" + strconv.FormatInt(s.ID, 10)
}

func (s *Step) FilesKey() int64 {
	if s.FilesID != 0 {
		return s.FilesID
	}
	return s.ID
}

const // containerWorkspace is where the job's workspace volume is mounted.
Workspace = "/workspace"

func DefaultJobTimeout(job *Job) time.Duration {
	m := job.TimeoutMinutes
	if m <= 0 {
		m = 360
	}
	return time.Duration(m) * time.Minute
}

// Status and conclusion values, as GitHub names them.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusCompleted = "completed"

	ConclusionSuccess   = "success"
	ConclusionFailure   = "failure"
	ConclusionCancelled = "cancelled"
	ConclusionSkipped   = "skipped"
	ConclusionTimedOut  = "timed_out"
)

// Annotation is one ::error, ::warning or ::notice of a job.
type Annotation struct {
	ID        int64  `json:"id"`
	StepID    int64  `json:"step_id"`
	Level     string `json:"level"`
	Message   string `json:"message"`
	File      string `json:"file"`
	Line      int    `json:"line"`
	Col       int    `json:"col"`
	EndLine   int    `json:"end_line"`
	EndColumn int    `json:"end_column"`
	Title     string `json:"title"`
}
