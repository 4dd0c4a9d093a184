//go:build docker

// The runner command against a real engine. Without an engine it skips,
// unless CI=true, where it fails.

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"shithub-actions/internal/dockertest"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
)

// runnerServer is the least of the server side of the runner protocol that
// `shithub-actions runner` needs to run one job: it hands out job, records
// its logs and conclusion, and serves repo over git's smart HTTP. The
// executor's tests have the thorough one (protocolServer).
type runnerServer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	job  *protocol.Job
	logs map[int64]string // step id → its log
	done string           // the job's conclusion
}

func newRunnerServer(t *testing.T, token, repo string, job *protocol.Job) *runnerServer {
	s := &runnerServer{job: job, logs: map[int64]string{}}
	mux := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer "+token {
				http.Error(w, `{"message":"bad runner token"}`, http.StatusUnauthorized)
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			h(w, r)
		})
	}
	answer := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	handle("POST /api/v1/runners/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		if s.job == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		answer(w, s.job)
		s.job = nil
	})
	handle("POST /api/v1/jobs/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			StepID int64  `json:"step_id"`
			Data   []byte `json:"data"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		s.logs[b.StepID] += string(b.Data)
		w.WriteHeader(http.StatusAccepted)
	})
	handle("POST /api/v1/jobs/{id}/steps/{step}/status", func(w http.ResponseWriter, r *http.Request) { answer(w, struct{}{}) })
	handle("POST /api/v1/jobs/{id}/status", func(w http.ResponseWriter, r *http.Request) {
		var b struct {
			Conclusion string `json:"conclusion"`
		}
		json.NewDecoder(r.Body).Decode(&b)
		s.done = b.Conclusion
		answer(w, struct{}{})
	})
	handle("POST /api/v1/jobs/{id}/cancel-check", func(w http.ResponseWriter, r *http.Request) {
		answer(w, map[string]bool{"cancel_requested": false})
	})
	handle("/api/v1/jobs/{id}/git/", func(w http.ResponseWriter, r *http.Request) {
		git, _ := exec.LookPath("git")
		(&cgi.Handler{Path: git, Args: []string{"http-backend"}, Root: "/api/v1/jobs/" + r.PathValue("id") + "/git",
			Env: []string{"GIT_PROJECT_ROOT=" + filepath.Join(repo, ".git"), "GIT_HTTP_EXPORT_ALL=1"}}).ServeHTTP(w, r)
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// TestDockerRemoteRunner runs `shithub-actions runner` against an in-memory
// server: heartbeat, git checkout over smart HTTP, a real container, logs.
func TestDockerRemoteRunner(t *testing.T) {
	dockertest.BuildImage(t)
	repo, first := newGitRepo(t, map[string]string{"README": "first\n"})
	gitCmd(t, repo, "config", "uploadpack.allowAnySHA1InWant", "true")
	commitFiles(t, repo, map[string]string{"README": "second\n"}) // the job's commit is no branch's tip
	const id = 9500
	job := &protocol.Job{JobID: id, RunID: 7, RepoID: 3, Repo: "alice/demo", HeadSHA: first, JobName: "build",
		RunsOn: []string{"busybox"}, Env: map[string]string{"RUNNER_OS": "Linux"}, Steps: []protocol.Step{
			{ID: id * 100, Number: 1, Kind: "setup", Name: "Set up job"},
			{ID: id*100 + 1, Number: 2, Kind: "checkout", Name: "Checkout", Uses: "actions/checkout@v4"},
			{ID: id*100 + 2, Number: 3, Kind: "run", Name: "step", Run: "cat README\necho \"on $RUNNER_OS\""},
		}}
	s := newRunnerServer(t, "runner-token", repo, job)

	ctx, stop := context.WithCancel(context.Background())
	var stdout, stderr strings.Builder
	errc := make(chan error, 1)
	go func() {
		errc <- cmdRunner(ctx, []string{"--server", s.srv.URL, "--token", "runner-token", "--labels", "busybox",
			"--image", "busybox=" + dockertest.Image, "--pull", "never", "--memory", "256m", "--capacity", "1"}, &stdout, &stderr)
	}()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
		s.mu.Lock()
		done := s.done
		s.mu.Unlock()
		if done != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job has no conclusion\n%s", stderr.String())
		}
	}
	stop()
	if err := <-errc; err != nil {
		t.Fatalf("cmdRunner = %v\n%s", err, stderr.String())
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != "success" {
		t.Fatalf("job = %q, want success\n%s", s.done, stderr.String())
	}
	if got := s.logs[id*100+2]; got != "first\non Linux\n" {
		t.Errorf("step log = %q", got)
	}
	if !strings.Contains(stdout.String(), "runner runner-") {
		t.Errorf("stdout = %q", stdout.String())
	}
	filter := "label=" + executor.LabelInstance + "=" + runnerInstance(s.srv.URL, "runner-token")
	for _, ls := range [][]string{{"ps", "-a", "-q"}, {"network", "ls", "-q"}, {"volume", "ls", "-q"}} {
		if out, _ := exec.Command("docker", append(ls, "--filter", filter)...).Output(); len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("left on the engine (docker %s): %s", ls[0], out)
		}
	}
}
