// The server side of the actions runtime: the artifact and cache services
// (artifacts.go, cache.go) mounted for jobs, the per-job runtime token,
// artifacts through GitHub's REST paths and the run page, and their sweep.

package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/jobsvc"
	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// runtimeConfig configures the services jobs call.
type runtimeConfig struct {
	DataDir         string // the cache lives in DataDir/cache
	PublicURL       string // scheme://host[:port] jobs reach the server at; "" means each request's Host
	MaxArtifactSize int64  // per artifact and per run; default 2 GiB
	CacheSize       int64  // all caches together; default 10 GiB
	SweepEvery      time.Duration
}

// actionsRuntime is what the server holds for the actions runtime.
type actionsRuntime struct {
	artifacts *jobsvc.ArtifactService
	caches    *jobsvc.CacheService
	sweep     time.Duration
	pace      uploadPace // how slowly an upload's bytes may arrive
}

// uploadPace is how long a request carrying artifact or cache bytes may
// take: grace (the listener's read timeout), plus a second for every rate
// bytes received so far. The listeners' read timeout bounds a whole
// request, which would cut a big blob off at a fair rate; a body that
// stalls, or trickles in slower than rate, is still cut off.
type uploadPace struct {
	grace time.Duration
	rate  int64 // bytes per second
}

// defaultUploadPace asks a blob upload for 1 MiB/s on average after the
// read timeout's minute: more lenient than the read timeout alone was
// (128 MiB, the largest single PUT of @actions/cache, in 60 s).
var defaultUploadPace = uploadPace{grace: httpReadTimeout, rate: 1 << 20}

// pacedBody is a request body that moves its connection's read (and
// write) deadline on as bytes arrive, by uploadPace.
type pacedBody struct {
	io.ReadCloser
	rc    *http.ResponseController
	pace  uploadPace
	start time.Time
	n     int64
}

func (b *pacedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.n += int64(n)
		d := b.start.Add(b.pace.grace + time.Duration(b.n)*time.Second/time.Duration(b.pace.rate))
		b.rc.SetReadDeadline(d)
		b.rc.SetWriteDeadline(d.Add(httpWriteTimeout))
	}
	return n, err
}

// enableRuntime starts the artifact and cache services.
func (s *server) enableRuntime(ctx context.Context, cfg runtimeConfig) error {
	secret, err := s.store.RuntimeSecret(ctx)
	if err != nil {
		return err
	}
	tokenKey, urlKey := store.RuntimeKeys(secret)
	verify := jobsvc.ArtifactTokenAuth(tokenKey, s.store.Now)
	rt := &actionsRuntime{sweep: cfg.SweepEvery, pace: defaultUploadPace}
	if rt.sweep <= 0 {
		rt.sweep = time.Hour
	}
	// A token is good while its job runs: from the moment the job
	// completes it is refused, like GITHUB_TOKEN.
	jobAuth := func(ctx context.Context, bearer string) (jobsvc.ArtifactJob, *store.Job, error) {
		aj, err := verify(ctx, bearer)
		if err != nil {
			return aj, nil, err
		}
		j, err := s.store.JobByID(ctx, aj.JobID)
		if err != nil {
			return aj, nil, err
		}
		if j.RunID != aj.RunID || j.Status == protocol.StatusCompleted {
			return aj, nil, errors.New("the job of this token is over")
		}
		return aj, j, nil
	}
	// A signed upload URL dies with the job it was made for.
	jobRunning := func(ctx context.Context, jobID int64) bool {
		j, err := s.store.JobByID(ctx, jobID)
		return err == nil && j.Status != protocol.StatusCompleted
	}
	rt.artifacts, err = s.store.NewArtifactService(jobsvc.ArtifactConfig{
		Key: urlKey, PublicURL: cfg.PublicURL,
		MaxArtifactSize: cfg.MaxArtifactSize, MaxRunSize: cfg.MaxArtifactSize, Now: s.store.Now, JobRunning: jobRunning,
		Auth: func(ctx context.Context, bearer string) (jobsvc.ArtifactJob, error) {
			aj, _, err := jobAuth(ctx, bearer)
			return aj, err
		},
	})
	if err != nil {
		return err
	}
	rt.caches, err = jobsvc.NewCacheService(jobsvc.CacheConfig{
		Dir: filepath.Join(cfg.DataDir, "cache"), Key: urlKey, PublicURL: cfg.PublicURL, MaxTotal: cfg.CacheSize, Now: s.store.Now,
		Auth: func(ctx context.Context, bearer string) (jobsvc.CacheScope, error) {
			aj, j, err := jobAuth(ctx, bearer)
			if err != nil {
				return jobsvc.CacheScope{}, err
			}
			run, err := s.store.RunByID(ctx, j.RunID)
			if err != nil {
				return jobsvc.CacheScope{}, err
			}
			return jobsvc.CacheScope{RepoID: aj.RepoID, Ref: run.HeadRef, DefaultRef: s.defaultBranch(ctx, aj.RepoID), JobID: aj.JobID}, nil
		},
		JobRunning: jobRunning,
	})
	if err != nil {
		return err
	}
	s.runtime = rt
	return nil
}

// defaultBranch is the ref of a repository's default branch (repo create
// --default-branch).
func (s *server) defaultBranch(ctx context.Context, repoID int64) string {
	if repo, err := s.store.RepoByID(ctx, repoID); err == nil && repo.DefaultBranch != "" {
		return "refs/heads/" + repo.DefaultBranch
	}
	return "refs/heads/main"
}

// sweepRuntime deletes expired artifacts and evicts idle caches every
// rt.sweep until ctx is done.
func (s *server) sweepRuntime(ctx context.Context) {
	rt := s.runtime
	if rt == nil {
		return
	}
	t := time.NewTicker(rt.sweep)
	defer t.Stop()
	for {
		if n, err := rt.artifacts.Sweep(ctx); err != nil {
			s.log.Error("sweeping artifacts", "err", err)
		} else if n > 0 {
			s.log.Info("deleted expired artifacts", "count", n)
		}
		if err := rt.caches.Sweep(); err != nil {
			s.log.Error("sweeping caches", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// handleRuntime serves the artifact and cache services under
// /twirp/github.actions.results.api.v1.{ArtifactService,CacheService}/,
// /_apis/artifactcache/, /_apis/artifactblob/ and /_apis/cacheblob/: the
// calls of @actions/artifact and @actions/cache in jobs, with the job's
// runtime token or a signed URL.
func (s *server) handleRuntime(w http.ResponseWriter, r *http.Request) {
	rt := s.runtime
	if rt == nil {
		http.Error(w, "the actions runtime services are not enabled on this server", http.StatusNotFound)
		return
	}
	if (r.Method == http.MethodPut || r.Method == http.MethodPatch) && isRuntimeBlob(r.URL.Path) && rt.pace.rate > 0 {
		r.Body = &pacedBody{ReadCloser: r.Body, rc: http.NewResponseController(w), pace: rt.pace, start: time.Now()}
	}
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, jobsvc.ArtifactTwirpPrefix), strings.HasPrefix(p, jobsvc.ArtifactBlobPrefix):
		rt.artifacts.ServeHTTP(w, r)
	default:
		rt.caches.ServeHTTP(w, r)
	}
}

// isRuntimeBlob reports whether a request carries artifact or cache bytes,
// which the services cap themselves, above the API's body limit.
func isRuntimeBlob(p string) bool {
	return strings.HasPrefix(p, jobsvc.ArtifactBlobPrefix) || strings.HasPrefix(p, jobsvc.CacheBlobPrefix) || strings.HasPrefix(p, jobsvc.CacheV1Prefix)
}

// artifactJSON is an artifact as GitHub's REST API shows it
// (docs.github.com/en/rest/actions/artifacts).
type artifactJSON struct {
	ID                 int64      `json:"id"`
	NodeID             string     `json:"node_id"`
	Name               string     `json:"name"`
	SizeInBytes        int64      `json:"size_in_bytes"`
	URL                string     `json:"url"`
	ArchiveDownloadURL string     `json:"archive_download_url"`
	Expired            bool       `json:"expired"`
	Digest             *string    `json:"digest"`
	CreatedAt          *time.Time `json:"created_at"`
	UpdatedAt          *time.Time `json:"updated_at"`
	ExpiresAt          *time.Time `json:"expires_at"`
	WorkflowRun        struct {
		ID         int64  `json:"id"`
		RepoID     int64  `json:"repository_id"`
		HeadBranch string `json:"head_branch"`
		HeadSHA    string `json:"head_sha"`
	} `json:"workflow_run"`
}

func (s *server) artifactJSON(r *http.Request, repo *store.Repo, run *store.Run, a *jobsvc.ArtifactRecord) artifactJSON {
	api := s.apiBase(r) + "/repos/" + repo.Owner + "/" + repo.Name + "/actions/artifacts/" + fmt.Sprint(a.ID)
	out := artifactJSON{
		ID: a.ID, NodeID: fmt.Sprintf("artifact-%d", a.ID), Name: a.Name, SizeInBytes: a.Size,
		URL: api, ArchiveDownloadURL: api + "/zip", Expired: !a.ExpiresAt.After(s.store.Now()),
		CreatedAt: timePtr(a.CreatedAt), UpdatedAt: timePtr(a.FinalizedAt), ExpiresAt: timePtr(a.ExpiresAt),
	}
	if a.Digest != "" {
		d := a.Digest // "sha256:<hex>", as the toolkit sent it
		out.Digest = &d
	}
	out.WorkflowRun.ID, out.WorkflowRun.RepoID = run.ID, repo.ID
	out.WorkflowRun.HeadBranch, out.WorkflowRun.HeadSHA = workflow.RefName(run.HeadRef), run.HeadSHA
	return out
}

// handleRunArtifacts serves GET /api/v1/repos/{owner}/{repo}/actions/runs/{run_id}/artifacts:
// the run's artifacts, oldest first; `name` filters.
func (s *server) handleRunArtifacts(w http.ResponseWriter, r *http.Request) error {
	repo, run, err := s.runFromPath(r)
	if err != nil {
		return err
	}
	list, err := s.runArtifacts(r.Context(), run.ID)
	if err != nil {
		return err
	}
	out := struct {
		TotalCount int            `json:"total_count"`
		Artifacts  []artifactJSON `json:"artifacts"`
	}{Artifacts: []artifactJSON{}}
	name := r.URL.Query().Get("name")
	for _, a := range list {
		if name == "" || a.Name == name {
			out.Artifacts = append(out.Artifacts, s.artifactJSON(r, repo, run, a))
		}
	}
	out.TotalCount = len(out.Artifacts)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// runArtifacts lists a run's artifacts; none when the services are off.
func (s *server) runArtifacts(ctx context.Context, runID int64) ([]*jobsvc.ArtifactRecord, error) {
	if s.runtime == nil {
		return nil, nil
	}
	return s.runtime.artifacts.RunArtifacts(ctx, runID)
}

// repoArtifact loads an artifact of the path's repository, which the
// caller may read; anything else is not found.
func (s *server) repoArtifact(r *http.Request, repo *store.Repo, idName string) (*jobsvc.ArtifactRecord, *store.Run, error) {
	if s.runtime == nil {
		return nil, nil, apperr.ErrNotFound
	}
	id, err := pathID(r, idName)
	if err != nil {
		return nil, nil, err
	}
	a, err := s.runtime.artifacts.Get(r.Context(), id)
	if errors.Is(err, sql.ErrNoRows) || err == nil && (a.RepoID != repo.ID || a.Status != jobsvc.ArtifactStatusFinal) {
		return nil, nil, apperr.ErrNotFound
	}
	if err != nil {
		return nil, nil, err
	}
	run, err := s.store.RunByID(r.Context(), a.RunID)
	if err != nil {
		return nil, nil, err
	}
	return a, run, nil
}

// handleArtifactGet serves GET /api/v1/repos/{owner}/{repo}/actions/artifacts/{artifact_id}.
func (s *server) handleArtifactGet(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	a, run, err := s.repoArtifact(r, repo, "artifact_id")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.artifactJSON(r, repo, run, a))
	return nil
}

// handleArtifactZip serves GET /api/v1/repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip:
// the artifact's zip; 410 once it expired, as GitHub answers.
func (s *server) handleArtifactZip(w http.ResponseWriter, r *http.Request) error {
	repo, _, err := s.readableRepo(r)
	if err != nil {
		return err
	}
	a, _, err := s.repoArtifact(r, repo, "artifact_id")
	if err != nil {
		return err
	}
	if !a.ExpiresAt.After(s.store.Now()) {
		return &apperr.Error{Code: apperr.Gone, Msg: "artifact has expired"}
	}
	// As GitHub's: a 302 to a short-lived signed link that needs no token
	// (go-github's DownloadArtifact expects the redirect). The link is on
	// the address the client asked, not the one jobs use.
	cfg := s.runtime.artifacts.Cfg
	http.Redirect(w, r, jobsvc.ArtifactSignURL(cfg.Key, s.base(r), http.MethodGet, jobsvc.ArtifactBlobPrefix+strconv.FormatInt(a.ID, 10),
		cfg.Now(), cfg.DownloadTTL), http.StatusFound)
	return nil
}

func (s *server) serveArtifactZip(w http.ResponseWriter, r *http.Request, repo *store.Repo) error {
	a, _, err := s.repoArtifact(r, repo, "artifact_id")
	if err != nil {
		return err
	}
	if !a.ExpiresAt.After(s.store.Now()) {
		return &apperr.Error{Code: apperr.Gone, Msg: "artifact has expired"}
	}
	if err := s.runtime.artifacts.ServeZip(w, r, a.ID); errors.Is(err, sql.ErrNoRows) {
		return apperr.ErrNotFound
	} else if err != nil {
		return err
	}
	return nil
}

// handleWebArtifact serves GET /{owner}/{repo}/actions/runs/{run_index}/artifacts/{artifact_id}:
// the run page's download link, for whoever may read the repository.
func (s *server) handleWebArtifact(w http.ResponseWriter, r *http.Request) error {
	_, repo, _, run, err := s.webRunFromPath(w, r)
	if err != nil {
		return err
	}
	a, _, err := s.repoArtifact(r, repo, "artifact_id")
	if err != nil {
		return err
	}
	if a.RunID != run.ID {
		return apperr.ErrNotFound
	}
	return s.serveArtifactZip(w, r, repo)
}

// artifactView is an artifact on the run page.
type artifactView struct {
	Name, Size, URL string
	Expired         bool
}

// runArtifactViews lists a run's artifacts for its page; here is the
// run page's path.
func (s *server) runArtifactViews(ctx context.Context, runID int64, here string) ([]artifactView, error) {
	list, err := s.runArtifacts(ctx, runID)
	if err != nil {
		return nil, err
	}
	var out []artifactView
	for _, a := range list {
		out = append(out, artifactView{Name: a.Name, Size: byteSize(a.Size), URL: fmt.Sprintf("%s/artifacts/%d", here, a.ID)})
	}
	return out, nil
}

// byteSize is n bytes for people: 512 B, 1.5 KiB, 2.0 MiB.
func byteSize(n int64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	f, unit := float64(n)/1024, "KiB"
	for _, u := range []string{"MiB", "GiB", "TiB"} {
		if f < 1024 {
			break
		}
		f, unit = f/1024, u
	}
	return fmt.Sprintf("%.1f %s", f, unit)
}
