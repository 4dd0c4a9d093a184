package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"shithub-actions/internal/jobsvc"
)

// newRuntimeTestServer is newTestServer with the artifact and cache
// services on, behind a real listener (signed URLs are absolute).
func newRuntimeTestServer(t *testing.T) (*testServer, *httptest.Server) {
	t.Helper()
	ts := newTestServer(t)
	hs := httptest.NewServer(ts.srv)
	t.Cleanup(hs.Close)
	if err := ts.srv.enableRuntime(context.Background(), runtimeConfig{DataDir: t.TempDir(), PublicURL: hs.URL, MaxArtifactSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	return ts, hs
}

// The toolkit's artifact flow with a claimed job's runtime token, then the
// artifact through the REST paths and the run page; the token dies with
// its job.
func TestRuntimeArtifactsThroughTheServer(t *testing.T) {
	ts, hs := newRuntimeTestServer(t)
	run, _ := ts.newRun(ts.pub)
	job := ts.heartbeat()
	if job == nil || job.RuntimeToken == "" {
		t.Fatalf("claimed job %+v has no runtime token", job)
	}
	tok := job.RuntimeToken
	runID, jobID := artifactIDs(tok)
	if runID != fmt.Sprint(run.ID) || jobID != fmt.Sprint(job.JobID) {
		t.Fatalf("token's backend ids = %s, %s; want %d, %d", runID, jobID, run.ID, job.JobID)
	}
	ids := map[string]any{"workflow_run_backend_id": runID, "workflow_job_run_backend_id": jobID}
	call := func(method string, body map[string]any, want int) map[string]any {
		t.Helper()
		for k, v := range ids {
			body[k] = v
		}
		code, out := artifactTwirp(t, hs.URL, artifactSvc, method, tok, body)
		if code != want {
			t.Fatalf("POST %s: status = %d, want %d (%v)", method, code, want, out)
		}
		return out
	}
	data := artifactPattern(300 << 10)
	cr := call("CreateArtifact", map[string]any{"name": "dist", "version": 4}, 200)
	artifactUpload(t, cr["signed_upload_url"].(string), data, 100<<10)
	call("FinalizeArtifact", map[string]any{"name": "dist", "size": fmt.Sprint(len(data)), "hash": artifactSHA(data)}, 200)

	// Over --max-artifact-size: a clear refusal.
	big := call("CreateArtifact", map[string]any{"name": "big", "version": 4}, 200)
	resp, body := artifactDo(t, "PUT", big["signed_upload_url"].(string)+"&comp=block&blockid="+artifactBlockID(0), nil, make([]byte, 2<<20))
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("PUT 2 MiB over a 1 MiB cap: status = %d, want 413 (%s)", resp.StatusCode, body)
	}

	var list struct {
		TotalCount int `json:"total_count"`
		Artifacts  []struct {
			ID                 int64  `json:"id"`
			Name               string `json:"name"`
			Size               int64  `json:"size_in_bytes"`
			ArchiveDownloadURL string `json:"archive_download_url"`
			Digest             string `json:"digest"`
		} `json:"artifacts"`
	}
	base := "/api/v1/repos/alice/pub/actions"
	ts.want(request{method: "GET", path: fmt.Sprintf("%s/runs/%d/artifacts", base, run.ID)}, 200, &list)
	if list.TotalCount != 1 || list.Artifacts[0].Name != "dist" || list.Artifacts[0].Size != int64(len(data)) || list.Artifacts[0].Digest != artifactSHA(data) {
		t.Fatalf("GET runs/%d/artifacts = %+v", run.ID, list)
	}
	a := list.Artifacts[0]
	if want := fmt.Sprintf("https://ci.example%s/artifacts/%d/zip", base, a.ID); a.ArchiveDownloadURL != want {
		t.Errorf("archive_download_url = %q, want %q", a.ArchiveDownloadURL, want)
	}
	// As GitHub's: a redirect to a signed link that works without a token.
	zip := ts.follow(fmt.Sprintf("%s/artifacts/%d/zip", base, a.ID), "")
	if string(zip.body) != string(data) {
		t.Errorf("GET artifacts/%d/zip: %d bytes, not the uploaded ones", a.ID, len(zip.body))
	}
	// Another repository's path, and a private repository without a token.
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/priv/actions/artifacts/%d/zip", a.ID), auth: bearer(ts.tokens["alice"])}, 404, nil)

	// The run page lists it and its link downloads it.
	page := ts.want(request{method: "GET", path: fmt.Sprintf("/alice/pub/actions/runs/%d", run.RunIndex)}, 200, nil)
	link := fmt.Sprintf("/alice/pub/actions/runs/%d/artifacts/%d", run.RunIndex, a.ID)
	if !strings.Contains(string(page.body), `href="`+link+`"`) || !strings.Contains(string(page.body), "300.0 KiB") {
		t.Errorf("run page does not link %s with its size", link)
	}
	if got := ts.want(request{method: "GET", path: link}, 200, nil); string(got.body) != string(data) {
		t.Errorf("GET %s: not the artifact's bytes", link)
	}

	// The token is refused once its job completed, and so is an upload
	// URL it got.
	late := call("CreateArtifact", map[string]any{"name": "late", "version": 4}, 200)["signed_upload_url"].(string)
	ts.jobStatus(job.JobID, "success", 200)
	if resp, b := artifactDo(t, "PUT", late+"&comp=block&blockid="+artifactBlockID(0), nil, []byte("after the job")); resp.StatusCode != 403 {
		t.Errorf("PUT to an artifact's upload URL after its job ended: %d %s, want 403", resp.StatusCode, b)
	}
	if code, out := artifactTwirp(t, hs.URL, artifactSvc, "ListArtifacts", tok, map[string]any{"workflow_run_backend_id": runID, "workflow_job_run_backend_id": jobID}); code != 401 {
		t.Errorf("ListArtifacts after the job ended: status = %d, want 401 (%v)", code, out)
	}

	// Expired: 410, as GitHub.
	ts.clock.Add(91 * 24 * time.Hour)
	ts.want(request{method: "GET", path: fmt.Sprintf("%s/artifacts/%d/zip", base, a.ID)}, 410, nil)
	if n, err := ts.srv.runtime.artifacts.Sweep(context.Background()); err != nil || n != 3 {
		t.Errorf("Sweep after 91 days = %d, %v; want 3 (dist, and big and late never finalized)", n, err)
	}
	ts.want(request{method: "GET", path: fmt.Sprintf("%s/artifacts/%d/zip", base, a.ID)}, 404, nil)
}

// Caches are scoped by the token's repository and the run's branch.
func TestRuntimeCacheScope(t *testing.T) {
	ts, hs := newRuntimeTestServer(t)
	ts.newRun(ts.pub)
	job := ts.heartbeat()
	const svc = "github.actions.results.api.v1.CacheService"
	code, out := artifactTwirp(t, hs.URL, svc, "CreateCacheEntry", job.RuntimeToken, map[string]any{"key": "go-abc", "version": "v1"})
	if code != 200 || out["ok"] != true {
		t.Fatalf("CreateCacheEntry: %d %v", code, out)
	}
	resp, b := artifactDo(t, "PUT", out["signed_upload_url"].(string), map[string]string{"x-ms-blob-type": "BlockBlob"}, []byte("cached bytes"))
	if resp.StatusCode != 201 {
		t.Fatalf("PUT cache blob: %d %s", resp.StatusCode, b)
	}
	if code, out = artifactTwirp(t, hs.URL, svc, "FinalizeCacheEntryUpload", job.RuntimeToken, map[string]any{"key": "go-abc", "version": "v1", "size_bytes": "12"}); code != 200 {
		t.Fatalf("FinalizeCacheEntryUpload: %d %v", code, out)
	}
	e := ts.srv.runtime.caches.Entries(ts.pub.ID)
	if len(e) != 1 || e[0].Ref != "refs/heads/main" || e[0].Key != "go-abc" {
		t.Fatalf("cache entries = %+v", e)
	}
	if code, _ := artifactTwirp(t, hs.URL, svc, "GetCacheEntryDownloadURL", "not-a-token", map[string]any{"key": "go-abc", "version": "v1"}); code != 401 {
		t.Errorf("a bad token: status = %d, want 401", code)
	}
}

// A cache's signed upload URL dies with the job that reserved the entry
// (issue 17, M2): after the job completed, a PUT is refused.
func TestRuntimeCacheUploadURLDiesWithJob(t *testing.T) {
	ts, hs := newRuntimeTestServer(t)
	ts.newRun(ts.pub)
	job := ts.heartbeat()
	code, out := artifactTwirp(t, hs.URL, cacheSvc, "CreateCacheEntry", job.RuntimeToken, map[string]any{"key": "go-abc", "version": "v1"})
	if code != 200 || out["ok"] != true {
		t.Fatalf("CreateCacheEntry: %d %v", code, out)
	}
	up := out["signed_upload_url"].(string)
	if resp, b := artifactDo(t, "PUT", up+"&comp=block&blockid="+artifactBlockID(0), nil, []byte("while the job runs")); resp.StatusCode != 201 {
		t.Fatalf("PUT while the job runs: %d %s", resp.StatusCode, b)
	}
	ts.jobStatus(job.JobID, "success", 200)
	for _, u := range []string{up + "&comp=block&blockid=" + artifactBlockID(1), up} {
		if resp, b := artifactDo(t, "PUT", u, map[string]string{"x-ms-blob-type": "BlockBlob"}, make([]byte, 1<<10)); resp.StatusCode != 403 && resp.StatusCode != 404 {
			t.Errorf("PUT after the job completed: %d %s, want 403 or 404", resp.StatusCode, b)
		}
	}
}

func TestRuntimeServicesOff(t *testing.T) {
	ts := newTestServer(t)
	res := ts.do(request{method: "POST", path: jobsvc.ArtifactTwirpPrefix + "CreateArtifact", body: "{}"})
	if res.code != 404 || !strings.Contains(string(res.body), "not enabled") {
		t.Errorf("POST CreateArtifact without the services: %d %s", res.code, res.body)
	}
	run, _ := ts.newRun(ts.pub)
	var list struct {
		TotalCount int   `json:"total_count"`
		Artifacts  []any `json:"artifacts"`
	}
	ts.want(request{method: "GET", path: fmt.Sprintf("/api/v1/repos/alice/pub/actions/runs/%d/artifacts", run.ID)}, 200, &list)
	if list.TotalCount != 0 || list.Artifacts == nil {
		t.Errorf("artifacts without the services = %+v", list)
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
