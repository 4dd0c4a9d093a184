// Job sources: where the executor gets jobs and reports to. localSource
// is the server's own Store; remoteSource is the runner protocol over HTTP.

package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/git"
	"shithub-actions/internal/protocol"
)

// jobSource is the runner protocol as the executor sees it. The server
// implements it in-process on the Store; a remote runner implements it over
// HTTP. Every method is idempotent where the protocol is (logs by seq).
type JobSource interface {
	// claim takes the oldest claimable job whose runs-on labels are all in
	// labels; it returns nil, nil when there is none.
	Claim(ctx context.Context, labels []string) (*protocol.Job, error)
	// appendLog stores one chunk of a step's log; a repeated seq is a no-op.
	AppendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error
	// setStepStatus moves a step to "running", or to "completed" with a
	// conclusion (success, failure, cancelled, skipped).
	SetStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error
	// setJobStatus completes a job (status "completed") with a conclusion
	// (success, failure, cancelled, timed_out), the job's outputs and its
	// environment's url when it was evaluated at the end ("" otherwise).
	SetJobStatus(ctx context.Context, jobID int64, status, conclusion string, outputs map[string]string, envURL string) error
	// addAnnotation records an ::error, ::warning or ::notice of a step.
	AddAnnotation(ctx context.Context, jobID int64, a protocol.Annotation) error
	// setStepSummary stores a step's $GITHUB_STEP_SUMMARY (Markdown).
	SetStepSummary(ctx context.Context, jobID, stepID int64, markdown string) error
	// cancelRequested reports whether a cancel was requested for the job.
	CancelRequested(ctx context.Context, jobID int64) (bool, error)
	// checkout makes dir (empty, or not there yet) a self-contained git
	// repository of what spec asks for (checkout.go): defaultCheckout is the
	// job's commit on its branch, with one commit of history.
	Checkout(ctx context.Context, job *protocol.Job, dir string, spec CheckoutSpec) error
}

// markPermanent marks a jobSource error that retrying cannot fix (a broken
// answer, a job with no commit) in the domain's vocabulary. Errors that
// already carry a code (the Store's refusals, a server's 4xx) need no mark.
func MarkPermanent(err error) error {
	if err == nil {
		return nil
	}
	return &apperr.Error{Code: apperr.Invalid, Msg: err.Error(), Err: err}
}

// isPermanent reports whether retrying err is pointless: its code says so
// (apperr.Permanent), or the call's context is over.
func isPermanent(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || apperr.Permanent(apperr.CodeOf(err))
}

// remoteSource is the runner protocol over HTTP: a runner process on another
// machine claims and reports jobs through a server's API with its runner
// token. 5xx answers and connection errors are retried with backoff until
// the call's ctx is done; other failures are returned as permanent.
type RemoteSource struct {
	server   string // base URL, without a trailing slash
	token    string
	capacity int // sent with every heartbeat: the jobs this runner runs at once
	client   *http.Client
	log      *slog.Logger
	git      string // the git binary

	MinBackoff, MaxBackoff time.Duration
}

func NewRemoteSource(server, token string, capacity int, logger *slog.Logger) *RemoteSource {
	if logger == nil {
		logger = slog.Default()
	}
	return &RemoteSource{
		server:     strings.TrimRight(server, "/"),
		token:      token,
		capacity:   capacity,
		client:     &http.Client{Timeout: time.Minute},
		log:        logger,
		git:        "git",
		MinBackoff: 200 * time.Millisecond,
		MaxBackoff: maxRetryDelay,
	}
}

// post sends body as JSON to the server and decodes a 200 answer into out
// (when out is not nil), retrying 5xx answers and connection errors. It
// returns the status of the answer.
func (r *RemoteSource) post(ctx context.Context, path string, body, out any) (int, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return 0, MarkPermanent(fmt.Errorf("encode %s: %w", path, err))
		}
	}
	var status int
	err := retryWithBackoff(ctx, r.MinBackoff, r.MaxBackoff, 0,
		func(attempt int, err error) {
			r.log.Warn("server unavailable; retrying", "path", path, "attempt", attempt, "err", err)
		},
		func() (err error) {
			status, err = r.postOnce(ctx, path, payload, out)
			return err
		})
	return status, err
}

// postOnce makes one request; a returned error not marked permanent is
// worth retrying.
func (r *RemoteSource) postOnce(ctx context.Context, path string, payload []byte, out any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.server+path, bytes.NewReader(payload))
	if err != nil {
		return 0, MarkPermanent(fmt.Errorf("POST %s: %w", path, err))
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("POST %s: read the answer: %w", path, err)
	}
	switch {
	case resp.StatusCode >= 300:
		// The server's answer, back in the domain's words: 5xx and 503 are
		// worth a retry, the rest are final (apperr.Permanent).
		return resp.StatusCode, &apperr.Error{Code: apperr.FromHTTPStatus(resp.StatusCode), Msg: fmt.Sprintf("POST %s: %d %s: %s",
			path, resp.StatusCode, http.StatusText(resp.StatusCode), remoteErrorMessage(data))}
	case resp.StatusCode == http.StatusOK && out != nil:
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, MarkPermanent(fmt.Errorf("POST %s: decode the answer: %w", path, err))
		}
	}
	return resp.StatusCode, nil
}

// errorMessage is the message of a {"message": ...} error body, or the body.
func remoteErrorMessage(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return e.Message
	}
	return strings.TrimSpace(string(body))
}

func (r *RemoteSource) Claim(ctx context.Context, labels []string) (*protocol.Job, error) {
	body := struct {
		Labels   []string `json:"labels"`
		Capacity int      `json:"capacity"`
	}{labels, r.capacity}
	var job protocol.Job
	status, err := r.post(ctx, "/api/v1/runners/heartbeat", body, &job)
	if err != nil {
		return nil, fmt.Errorf("heartbeat: %w", err)
	}
	if status != http.StatusOK {
		return nil, nil // 204: nothing for us
	}
	return &job, nil
}

func (r *RemoteSource) AppendLog(ctx context.Context, jobID, stepID, seq int64, data []byte) error {
	body := struct {
		StepID int64  `json:"step_id"`
		Seq    int64  `json:"seq"`
		Data   []byte `json:"data"` // base64
	}{stepID, seq, data}
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/logs", jobID), body, nil)
	return err
}

type remoteStatusBody struct {
	Status     string `json:"status"`
	Conclusion string `json:"conclusion,omitempty"`
}

func (r *RemoteSource) SetStepStatus(ctx context.Context, jobID, stepID int64, status, conclusion string) error {
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/steps/%d/status", jobID, stepID), remoteStatusBody{status, conclusion}, nil)
	return err
}

// remoteJobStatusBody is the job status body: the step's, with outputs.
type remoteJobStatusBody struct {
	Status     string            `json:"status"`
	Conclusion string            `json:"conclusion,omitempty"`
	Outputs    map[string]string `json:"outputs,omitempty"`
	EnvURL     string            `json:"environment_url,omitempty"`
}

func (r *RemoteSource) SetJobStatus(ctx context.Context, jobID int64, status, conclusion string, outputs map[string]string, envURL string) error {
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/status", jobID), remoteJobStatusBody{status, conclusion, outputs, envURL}, nil)
	return err
}

func (r *RemoteSource) AddAnnotation(ctx context.Context, jobID int64, a protocol.Annotation) error {
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/annotations", jobID), a, nil)
	return err
}

func (r *RemoteSource) SetStepSummary(ctx context.Context, jobID, stepID int64, markdown string) error {
	body := struct {
		Markdown string `json:"markdown"`
	}{markdown}
	_, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/steps/%d/summary", jobID, stepID), body, nil)
	return err
}

func (r *RemoteSource) CancelRequested(ctx context.Context, jobID int64) (bool, error) {
	var out struct {
		CancelRequested bool `json:"cancel_requested"`
	}
	if _, err := r.post(ctx, fmt.Sprintf("/api/v1/jobs/%d/cancel-check", jobID), nil, &out); err != nil {
		return false, err
	}
	return out.CancelRequested, nil
}

// checkout fetches from the server's read-only git endpoint for the job:
// the job's repository, or another of the server's at OWNER/REPO/ under it,
// which the server lets the job reach or not (reach.go); spec's token goes
// with those requests as the checkoutTokenHeader. The tokens reach git
// through its environment (GIT_CONFIG_COUNT), never its command line, and
// are never written into the checkout.
func (r *RemoteSource) Checkout(ctx context.Context, job *protocol.Job, dir string, spec CheckoutSpec) error {
	base := fmt.Sprintf("%s/api/v1/jobs/%d/git/", r.server, job.JobID)
	resolve := func(ctx context.Context, repo string) (GitRemote, error) {
		if repo == "" || strings.EqualFold(repo, job.Repo) {
			return GitRemote{URL: base, env: r.gitEnv("")}, nil
		}
		owner, name, _ := strings.Cut(repo, "/")
		u := base + url.PathEscape(owner) + "/" + url.PathEscape(name) + "/"
		return GitRemote{URL: u, env: r.gitEnv(spec.Token)}, nil
	}
	server := JobServerURL(job, r.server)
	return GitCheckout(ctx, job, dir, spec, resolve, r.gitFailure,
		func(repo string) string { return CheckoutOrigin(server, repo) })
}

// checkoutTokenHeader carries checkout's token input to the runner's git
// endpoint, the Authorization header being the runner's.
const CheckoutTokenHeader = "X-Checkout-Token"

// gitEnv hands git the runner token, and the checkout's token when there is
// one, as headers through its environment.
func (r *RemoteSource) gitEnv(checkoutToken string) []string {
	env := []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=http.extraHeader",
		"GIT_CONFIG_VALUE_0=Authorization: Bearer " + r.token,
	}
	if checkoutToken != "" {
		env[0] = "GIT_CONFIG_COUNT=2"
		env = append(env, "GIT_CONFIG_KEY_1=http.extraHeader", "GIT_CONFIG_VALUE_1="+CheckoutTokenHeader+": "+checkoutToken)
	}
	return env
}

// gitFailure marks a git failure that retrying cannot fix as permanent.
func (r *RemoteSource) gitFailure(err error) error {
	var ge *git.Error
	if errors.As(err, &ge) && !gitTransient(ge.Stderr) {
		return MarkPermanent(err)
	}
	return err
}

// gitTransient reports whether git's stderr tells of a failure worth a retry:
// the server answering 5xx or not answering at all.
func gitTransient(stderr string) bool {
	for _, s := range []string{
		"returned error: 5", "Failed to connect", "Could not resolve host",
		"Connection refused", "Connection reset", "timed out",
		"Empty reply from server", "early EOF",
	} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
