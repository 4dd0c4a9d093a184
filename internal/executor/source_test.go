package executor

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/protocol"
)

func (s *protocolServer) setRepo(repo string) {
	s.mu.Lock()
	s.repo = repo
	s.mu.Unlock()
}

// protocolServer is an in-memory server side of the runner protocol.
type protocolServer struct {
	t     *testing.T
	token string
	srv   *httptest.Server

	mu        sync.Mutex // guards everything below
	repo      string     // a git repository served at /api/v1/jobs/{id}/git/, if set
	queue     []*protocol.Job
	held      map[int64]bool
	heartbeat []string             // bodies of the heartbeats
	requests  map[string]int       // route → requests
	fail      map[string]int       // route → 503 answers left
	failed    map[string][]string  // route → bodies of the requests answered 503
	conflict  map[string]bool      // route → answer 409
	logs      map[int64][]gotChunk // step id → chunks as received
	steps     map[int64][]string
	jobs      map[int64]string
	cancel    map[int64]bool
}

func newProtocolServer(t *testing.T, token string, jobs ...*protocol.Job) *protocolServer {
	s := &protocolServer{
		t: t, token: token, queue: jobs, held: map[int64]bool{},
		requests: map[string]int{}, fail: map[string]int{}, failed: map[string][]string{}, conflict: map[string]bool{},
		logs: map[int64][]gotChunk{}, steps: map[int64][]string{}, jobs: map[int64]string{}, cancel: map[int64]bool{},
	}
	mux := http.NewServeMux()
	route := func(pattern string, h func(w http.ResponseWriter, r *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				writeTestJSON(w, http.StatusUnauthorized, map[string]string{"message": "bad runner token"})
				return
			}
			s.mu.Lock()
			s.requests[pattern]++
			fail := s.fail[pattern] > 0
			if fail {
				s.fail[pattern]--
			}
			conflict := s.conflict[pattern]
			s.mu.Unlock()
			switch {
			case fail:
				body, _ := io.ReadAll(r.Body)
				s.mu.Lock()
				s.failed[pattern] = append(s.failed[pattern], string(body))
				s.mu.Unlock()
				writeTestJSON(w, http.StatusServiceUnavailable, map[string]string{"message": "try later"})
			case conflict:
				writeTestJSON(w, http.StatusConflict, map[string]string{"message": "illegal transition"})
			default:
				h(w, r)
			}
		})
	}
	route("POST /api/v1/runners/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.heartbeat = append(s.heartbeat, string(body))
		if len(s.queue) == 0 {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		job := s.queue[0]
		s.queue = s.queue[1:]
		s.held[job.JobID] = true
		writeTestJSON(w, http.StatusOK, job)
	})
	route("POST /api/v1/jobs/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			StepID int64  `json:"step_id"`
			Seq    int64  `json:"seq"`
			Data   []byte `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			writeTestJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		s.mu.Lock()
		s.logs[b.StepID] = append(s.logs[b.StepID], gotChunk{b.Seq, string(b.Data)})
		s.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	})
	status := func(w http.ResponseWriter, r *http.Request, into map[int64][]string, id int64) {
		var b remoteStatusBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			writeTestJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		if b.Status == "completed" {
			b.Status = b.Conclusion
		}
		s.mu.Lock()
		into[id] = append(into[id], b.Status)
		s.mu.Unlock()
		writeTestJSON(w, http.StatusOK, map[string]string{})
	}
	route("POST /api/v1/jobs/{id}/steps/{step}/status", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("step"), 10, 64)
		status(w, r, s.steps, id)
	})
	route("POST /api/v1/jobs/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		var b remoteStatusBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			writeTestJSON(w, http.StatusBadRequest, map[string]string{"message": err.Error()})
			return
		}
		s.mu.Lock()
		s.jobs[id] = b.Conclusion
		s.mu.Unlock()
		writeTestJSON(w, http.StatusOK, map[string]string{})
	})
	route("POST /api/v1/jobs/{id}/cancel-check", func(w http.ResponseWriter, r *http.Request) {
		id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
		s.mu.Lock()
		held, cancel := s.held[id], s.cancel[id]
		s.mu.Unlock()
		if !held {
			writeTestJSON(w, http.StatusNotFound, map[string]string{"message": "this runner does not hold the job"})
			return
		}
		writeTestJSON(w, http.StatusOK, map[string]bool{"cancel_requested": cancel})
	})
	route("/api/v1/jobs/{id}/git/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		repo := s.repo
		s.mu.Unlock()
		if repo == "" {
			http.NotFound(w, r)
			return
		}
		gitFn, err := exec.LookPath("git")
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		h := &cgi.Handler{
			Path: gitFn,
			Args: []string{"http-backend"},
			Root: "/api/v1/jobs/" + r.PathValue("id") + "/git",
			Env:  []string{"GIT_PROJECT_ROOT=" + filepath.Join(repo, ".git"), "GIT_HTTP_EXPORT_ALL=1"},
		}
		h.ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

func writeTestJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (s *protocolServer) count(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[route]
}

func newTestRemote(s *protocolServer) *RemoteSource {
	r := NewRemoteSource(s.srv.URL+"/", s.token, 3, runnerTestLogger())
	r.MinBackoff, r.MaxBackoff = time.Millisecond, 5*time.Millisecond
	return r
}

func TestRemoteSourceHeartbeat(t *testing.T) {
	t.Parallel()
	job := testJob(70, "echo hi")
	job.Env = map[string]string{"CI": "true"}
	s := newProtocolServer(t, "tok")
	r := newTestRemote(s)
	ctx := context.Background()

	got, err := r.Claim(ctx, []string{"ubuntu-latest", "debian-latest"})
	if err != nil || got != nil {
		t.Fatalf("claim with nothing queued = %v, %v; want nil, nil", got, err)
	}
	s.mu.Lock()
	s.queue = append(s.queue, job)
	s.mu.Unlock()
	got, err = r.Claim(ctx, []string{"ubuntu-latest"})
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	if want, _ := json.Marshal(job); !bytes.Equal(gotJSON, want) {
		t.Errorf("claimed %+v, want %+v", got, job)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if want := []string{`{"labels":["ubuntu-latest","debian-latest"],"capacity":3}`, `{"labels":["ubuntu-latest"],"capacity":3}`}; !slices.Equal(s.heartbeat, want) {
		t.Errorf("heartbeat bodies = %q, want %q", s.heartbeat, want)
	}
}

func TestRemoteSourceRetries(t *testing.T) {
	t.Parallel()
	s := newProtocolServer(t, "tok")
	r := newTestRemote(s)
	ctx := context.Background()
	const stepRoute = "POST /api/v1/jobs/{id}/steps/{step}/status"

	s.fail[stepRoute] = 2
	if err := r.SetStepStatus(ctx, 1, 11, "running", ""); err != nil {
		t.Fatalf("setStepStatus after two 503s = %v", err)
	}
	if n := s.count(stepRoute); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	s.mu.Lock()
	if got := s.steps[11]; !slices.Equal(got, []string{"running"}) {
		t.Errorf("step statuses = %q", got)
	}
	s.conflict[stepRoute] = true
	s.fail["POST /api/v1/jobs/{id}/status"] = 1 << 30
	s.mu.Unlock()

	err := r.SetStepStatus(ctx, 1, 11, "completed", "success")
	if err == nil || !isPermanent(err) || !strings.Contains(err.Error(), "409 Conflict: illegal transition") {
		t.Errorf("setStepStatus answered 409 = %v, want a permanent error with the message", err)
	}
	if n := s.count(stepRoute); n != 4 {
		t.Errorf("%d requests, want 4: a 409 is final", n)
	}

	// The executor does not retry it either.
	ex := New(Config{}, r, runnerTestLogger())
	ex.call(ctx, "complete step", func(ctx context.Context) error { return r.SetStepStatus(ctx, 1, 11, "completed", "success") })
	if n := s.count(stepRoute); n != 5 {
		t.Errorf("%d requests, want 5: the executor retried a 409", n)
	}

	// A server that stays down: retried until ctx is done.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = r.SetJobStatus(short, 1, "completed", "success", nil, "")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "503") {
		t.Errorf("setJobStatus against a down server = %v", err)
	}
	if n := s.count("POST /api/v1/jobs/{id}/status"); n < 2 {
		t.Errorf("%d requests: not retried", n)
	}

	// A server that is not there at all: connection errors are retried too.
	gone := newProtocolServer(t, "tok")
	gone.srv.Close()
	short, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := newTestRemote(gone).Claim(short, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("claim against no server = %v, want the deadline", err)
	}

	bad := newTestRemote(s)
	bad.token = "wrong"
	if _, err := bad.Claim(ctx, nil); err == nil || !isPermanent(err) || !strings.Contains(err.Error(), "401") {
		t.Errorf("claim with a bad token = %v, want a permanent 401", err)
	}
}

func TestRemoteSourceLogResend(t *testing.T) {
	t.Parallel()
	s := newProtocolServer(t, "tok")
	r := newTestRemote(s)
	s.fail["POST /api/v1/jobs/{id}/logs"] = 1
	data := []byte("line one\n\x00binary\xff\n")
	if err := r.AppendLog(context.Background(), 1, 12, 4, data); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.logs[12]; len(got) != 1 || got[0].seq != 4 || got[0].data != string(data) {
		t.Errorf("logs = %+v", got)
	}
	// The resend is the same request: same step, seq and data.
	want := `{"step_id":12,"seq":4,"data":"` + base64.StdEncoding.EncodeToString(data) + `"}`
	if got := s.failed["POST /api/v1/jobs/{id}/logs"]; !slices.Equal(got, []string{want}) {
		t.Errorf("the request answered 503 = %q, want %q", got, want)
	}
}

func TestRemoteSourceCancelCheck(t *testing.T) {
	t.Parallel()
	s := newProtocolServer(t, "tok")
	r := newTestRemote(s)
	ctx := context.Background()
	s.held[5], s.cancel[5] = true, true
	s.held[6] = true
	if yes, err := r.CancelRequested(ctx, 5); err != nil || !yes {
		t.Errorf("cancelRequested(5) = %v, %v; want true", yes, err)
	}
	if yes, err := r.CancelRequested(ctx, 6); err != nil || yes {
		t.Errorf("cancelRequested(6) = %v, %v; want false", yes, err)
	}
	if _, err := r.CancelRequested(ctx, 7); err == nil || !isPermanent(err) || !strings.Contains(err.Error(), "404") {
		t.Errorf("cancelRequested of a job not held = %v, want a permanent 404", err)
	}
}

// gitRepo makes a repository with two commits and returns its directory and
// the first commit, which is no branch's tip.
func runnerGitRepo(t *testing.T) (dir, first string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir = t.TempDir()
	gitFn := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
			"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com", "GIT_CONFIG_NOSYSTEM=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %q: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	gitFn("init", "-q", "-b", "main")
	gitFn("config", "uploadpack.allowAnySHA1InWant", "true")
	os.WriteFile(filepath.Join(dir, "README"), []byte("first\n"), 0o644)
	gitFn("add", "README")
	gitFn("commit", "-q", "-m", "first")
	first = gitFn("rev-parse", "HEAD")
	os.WriteFile(filepath.Join(dir, "README"), []byte("second\n"), 0o644)
	gitFn("commit", "-q", "-am", "second")
	return dir, first
}

func TestRemoteCheckout(t *testing.T) {
	t.Parallel()
	repo, first := runnerGitRepo(t)
	s := newProtocolServer(t, "s3cr3t-token")
	s.setRepo(repo)
	r := newTestRemote(s)
	job := testJob(71)
	job.HeadSHA = first
	dir := t.TempDir()
	if err := r.Checkout(context.Background(), job, dir, DefaultCheckout); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "README")); string(got) != "first\n" {
		t.Errorf("README = %q, want the first commit's", got)
	}
	head, err := exec.Command("git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil || strings.TrimSpace(string(head)) != first {
		t.Errorf("HEAD = %s (%v), want %s", head, err, first)
	}
	// The token stays in git's environment: nothing of the checkout holds it.
	if out, err := exec.Command("grep", "-r", "-l", "s3cr3t-token", dir).CombinedOutput(); err == nil {
		t.Errorf("the runner token is in the checkout: %s", out)
	}

	r.token = "wrong"
	err = r.Checkout(context.Background(), job, t.TempDir(), DefaultCheckout)
	if err == nil || !isPermanent(err) {
		t.Errorf("checkout with a bad token = %v, want a permanent error", err)
	}
}

func TestRemoteRunnerEndToEnd(t *testing.T) {
	t.Parallel()
	repo, first := runnerGitRepo(t)
	job := testJob(72, "echo from the remote runner", "exit 1", "echo never")
	job.HeadSHA = first
	s := newProtocolServer(t, "tok", job)
	s.setRepo(repo)
	s.fail["POST /api/v1/jobs/{id}/logs"] = 2
	s.fail["POST /api/v1/jobs/{id}/status"] = 1

	ex, fe := newTestExecutor(t, newTestRemote(s))
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() {
		ex.Run(ctx)
		close(stopped)
	}()
	waitUntil(t, "the job's status", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.jobs[72] != ""
	})
	stop()
	<-stopped

	s.mu.Lock()
	defer s.mu.Unlock()
	if got := s.jobs[72]; got != "failure" {
		t.Errorf("job conclusion = %q, want failure", got)
	}
	want := [][]string{{"running", "success"}, {"running", "success"}, {"running", "success"}, {"running", "failure"}, {"skipped"}}
	for i, w := range want {
		if got := s.steps[stepID(job, i)]; !slices.Equal(got, w) {
			t.Errorf("step %d statuses = %q, want %q", i, got, w)
		}
	}
	var text strings.Builder
	for _, c := range s.logs[stepID(job, 2)] {
		text.WriteString(c.data)
	}
	if text.String() != "from the remote runner\n" {
		t.Errorf("step log = %q", text.String())
	}
	// A remote runner isolates its jobs as the server's pool does: its own
	// network and volume, no new privileges, few capabilities, and the
	// checkout copied into the volume, not mounted from the host.
	// The network and volume are the job's own: made for it, or by the pool
	// ahead of it.
	create := fe.commands(t, "create")[0].Args
	res := create[slices.Index(create, "--network")+1]
	if res != "shithub-actions-test-72" && !strings.HasPrefix(res, "shithub-actions-test-pool-") {
		t.Errorf("the job's network is %q", res)
	}
	for _, want := range [][]string{{"--label", "shithub-actions.job=72"}, {"--network", res},
		{"--security-opt", "no-new-privileges"}, {"--cap-drop", "ALL"}, {"-v", res + ":/workspace"}} {
		if i := slices.Index(create, want[0]); i < 0 || !slices.Contains(create[i:], want[1]) {
			t.Errorf("docker create = %q, want %q", create, want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(fe.dir, "cp-shithub-actions-test-72", "README")); err != nil || string(b) != "first\n" {
		t.Errorf("the volume got README %q, %v", b, err)
	}
}
