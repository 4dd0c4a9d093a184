package jobsvc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// artifactTestEnv is an artifact service on a temp database, driven over
// HTTP the way @actions/artifact drives GitHub's.
type artifactTestEnv struct {
	t     *testing.T
	svc   *ArtifactService
	srv   *httptest.Server
	mu    sync.Mutex
	now   time.Time
	jobs  map[string]ArtifactJob // runtime token -> job
	token map[int64]string       // job id -> token
}

func artifactOpenTestDB(t *testing.T) *sql.DB {
	t.Helper()
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(NORMAL)", "foreign_keys(1)", "busy_timeout(10000)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "a.db")+"?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(ArtifactSchema); err != nil {
		t.Fatalf("artifactSchema: %v", err)
	}
	return db
}

func newArtifactTestEnv(t *testing.T, mod func(*ArtifactConfig)) *artifactTestEnv {
	t.Helper()
	e := &artifactTestEnv{t: t, now: time.Unix(1_700_000_000, 0), jobs: map[string]ArtifactJob{}, token: map[int64]string{}}
	cfg := ArtifactConfig{
		DB:  artifactOpenTestDB(t),
		Key: []byte("0123456789abcdef0123456789abcdef"),
		Auth: func(_ context.Context, tok string) (ArtifactJob, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			j, ok := e.jobs[tok]
			if !ok {
				return j, errors.New("no such token")
			}
			return j, nil
		},
		Now: e.clock,
	}
	if mod != nil {
		mod(&cfg)
	}
	svc, err := NewArtifactService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.svc = svc
	mux := http.NewServeMux()
	mux.Handle(ArtifactTwirpPrefix, svc)
	mux.Handle(ArtifactBlobPrefix, svc)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	// run 10 (repo 1) has jobs 100 and 101; run 20 has job 200.
	for _, j := range []ArtifactJob{{10, 1, 100}, {10, 1, 101}, {20, 1, 200}} {
		tok := ArtifactRuntimeToken(cfg.Key, j, e.now, time.Hour)
		e.jobs[tok] = j
		e.token[j.JobID] = tok
	}
	return e
}

func (e *artifactTestEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *artifactTestEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// artifactIDs is what the toolkit puts in every request: the backend ids
// it read from the token's scp claim.
func ArtifactIDs(tok string) (run, job string) {
	b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var c struct{ Scp string }
	json.Unmarshal(b, &c)
	for _, sc := range strings.Split(c.Scp, " ") {
		if p := strings.Split(sc, ":"); p[0] == "Actions.Results" && len(p) == 3 {
			return p[1], p[2]
		}
	}
	return "", ""
}

// twirp posts a Twirp JSON request as the toolkit does and decodes the body.
func ArtifactTwirp(t *testing.T, base, service, method, tok string, body map[string]any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", base+"/twirp/"+service+"/"+method, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", method, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("POST %s: body %q is not JSON", method, raw)
	}
	return resp.StatusCode, out
}

const ArtifactSvc = "github.actions.results.api.v1.ArtifactService"

func (e *artifactTestEnv) call(method string, job int64, body map[string]any, want int) map[string]any {
	e.t.Helper()
	tok := e.token[job]
	run, jb := ArtifactIDs(tok)
	if _, ok := body["workflow_run_backend_id"]; !ok {
		body["workflow_run_backend_id"] = run
	}
	if _, ok := body["workflow_job_run_backend_id"]; !ok {
		body["workflow_job_run_backend_id"] = jb
	}
	code, out := ArtifactTwirp(e.t, e.srv.URL, ArtifactSvc, method, tok, body)
	if code != want {
		e.t.Fatalf("POST %s: status = %d, want %d (%v)", method, code, want, out)
	}
	return out
}

func ArtifactDo(t *testing.T, method, u string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func ArtifactBlockID(i int) string {
	return base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%08d-block-id-prefix", i)))
}

// artifactUpload uploads data to a signed URL as BlockBlobClient.uploadStream
// does: blocks of size chunk (staged in reverse to prove the list orders
// them), then the block list.
func ArtifactUpload(t *testing.T, signed string, data []byte, chunk int) {
	t.Helper()
	var ids []string
	n := (len(data) + chunk - 1) / chunk
	for i := n - 1; i >= 0; i-- {
		end := min((i+1)*chunk, len(data))
		id := ArtifactBlockID(i)
		resp, b := ArtifactDo(t, "PUT", signed+"&comp=block&blockid="+url.QueryEscape(id), map[string]string{"x-ms-version": "2023-11-03"}, data[i*chunk:end])
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("PUT comp=block %d: status = %d, want 201 (%s)", i, resp.StatusCode, b)
		}
	}
	for i := 0; i < n; i++ {
		ids = append(ids, ArtifactBlockID(i))
	}
	resp, b := ArtifactDo(t, "PUT", signed+"&comp=blocklist", map[string]string{"Content-Type": "application/xml"}, artifactBlockListXML(ids))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT comp=blocklist: status = %d, want 201 (%s)", resp.StatusCode, b)
	}
}

func artifactBlockListXML(ids []string) []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><BlockList>`)
	for _, id := range ids {
		fmt.Fprintf(&b, "<Latest>%s</Latest>", id)
	}
	b.WriteString("</BlockList>")
	return b.Bytes()
}

func ArtifactPattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func ArtifactSHA(b []byte) string {
	h := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(h[:])
}

func TestArtifactRoundTrip(t *testing.T) {
	e := newArtifactTestEnv(t, nil)
	data := ArtifactPattern(artifactPartSize*2 + 12345) // several parts per block
	cr := e.call("CreateArtifact", 100, map[string]any{"name": "dist", "version": 7, "mime_type": "application/zip",
		"expires_at": artifactTimestamp(e.now.Add(5 * 24 * time.Hour))}, 200)
	if cr["ok"] != true {
		t.Fatalf("CreateArtifact: ok = %v", cr["ok"])
	}
	signed := cr["signed_upload_url"].(string)
	if !strings.HasPrefix(signed, e.srv.URL+ArtifactBlobPrefix) || !strings.Contains(signed, "sig=") {
		t.Fatalf("signed_upload_url = %q", signed)
	}
	ArtifactUpload(t, signed, data, 3<<20)
	fr := e.call("FinalizeArtifact", 100, map[string]any{"name": "dist", "size": fmt.Sprint(len(data)), "hash": ArtifactSHA(data)}, 200)
	if fr["ok"] != true || fr["artifact_id"] == "" {
		t.Fatalf("FinalizeArtifact = %v", fr)
	}
	id := fr["artifact_id"].(string)
	// A retried finalize is answered the same.
	e.call("FinalizeArtifact", 100, map[string]any{"name": "dist", "size": fmt.Sprint(len(data)), "hash": ArtifactSHA(data)}, 200)

	// download-artifact runs in another job of the run: list by id, sign, GET.
	lr := e.call("ListArtifacts", 101, map[string]any{"id_filter": id}, 200)
	arts := lr["artifacts"].([]any)
	if len(arts) != 1 {
		t.Fatalf("ListArtifacts: %d artifacts, want 1", len(arts))
	}
	a := arts[0].(map[string]any)
	for k, want := range map[string]any{"workflow_run_backend_id": "10", "workflow_job_run_backend_id": "100", "database_id": id,
		"name": "dist", "size": fmt.Sprint(len(data)), "created_at": "2023-11-14T22:13:20Z", "digest": ArtifactSHA(data)} {
		if a[k] != want {
			t.Errorf("ListArtifacts: %s = %v, want %v", k, a[k], want)
		}
	}
	lr = e.call("ListArtifacts", 101, map[string]any{"name_filter": "nope"}, 200)
	if n := len(lr["artifacts"].([]any)); n != 0 {
		t.Errorf("ListArtifacts name_filter=nope: %d artifacts, want 0", n)
	}
	// Another run sees nothing.
	if n := len(e.call("ListArtifacts", 200, map[string]any{}, 200)["artifacts"].([]any)); n != 0 {
		t.Errorf("ListArtifacts from run 20: %d artifacts, want 0", n)
	}
	sr := e.call("GetSignedArtifactURL", 101, map[string]any{"workflow_job_run_backend_id": a["workflow_job_run_backend_id"], "name": "dist"}, 200)
	dl := sr["signed_url"].(string)
	resp, got := ArtifactDo(t, "GET", dl, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET signed_url: status = %d, want 200", resp.StatusCode)
	}
	if !bytes.Equal(got, data) || ArtifactSHA(got) != ArtifactSHA(data) {
		t.Fatalf("GET signed_url: %d bytes, digest %s; want %d bytes, %s", len(got), ArtifactSHA(got), len(data), ArtifactSHA(data))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		t.Errorf("Content-Type = %q, want application/zip", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, `filename=dist.zip`) {
		t.Errorf("Content-Disposition = %q, want filename=dist.zip", cd)
	}
	// A range across a part boundary.
	lo, hi := artifactPartSize-10, artifactPartSize+9
	resp, got = ArtifactDo(t, "GET", dl, map[string]string{"Range": fmt.Sprintf("bytes=%d-%d", lo, hi)}, nil)
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[lo:hi+1]) {
		t.Fatalf("GET Range: status = %d (want 206), %d bytes match = %v", resp.StatusCode, len(got), bytes.Equal(got, data[lo:hi+1]))
	}
	// The REST side: list the run and stream the zip.
	recs, err := e.svc.RunArtifacts(context.Background(), 10)
	if err != nil || len(recs) != 1 || recs[0].Size != int64(len(data)) {
		t.Fatalf("RunArtifacts = %v, %v", recs, err)
	}
	if want := e.now.Add(5 * 24 * time.Hour); !recs[0].ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", recs[0].ExpiresAt, want)
	}
	rec := httptest.NewRecorder()
	if err := e.svc.ServeZip(rec, httptest.NewRequest("GET", "/zip", nil), recs[0].ID); err != nil || !bytes.Equal(rec.Body.Bytes(), data) {
		t.Fatalf("ServeZip: err %v, %d bytes", err, rec.Body.Len())
	}

	// Names are unique per run: GitHub answers 409.
	out := e.call("CreateArtifact", 101, map[string]any{"name": "dist", "version": 7}, 409)
	if out["code"] != "already_exists" || !strings.Contains(out["msg"].(string), "already exists") {
		t.Errorf("CreateArtifact duplicate = %v", out)
	}
	// The same name in another run is fine.
	e.call("CreateArtifact", 200, map[string]any{"name": "dist", "version": 7}, 200)
	// A finalized artifact can't be written through its old upload URL.
	resp, _ = ArtifactDo(t, "PUT", signed+"&comp=block&blockid="+url.QueryEscape(ArtifactBlockID(0)), nil, []byte("x"))
	if resp.StatusCode != http.StatusConflict {
		t.Errorf("PUT after finalize: status = %d, want 409", resp.StatusCode)
	}
	// overwrite: true deletes first (any job of the run may).
	dr := e.call("DeleteArtifact", 101, map[string]any{"workflow_job_run_backend_id": "100", "name": "dist"}, 200)
	if dr["artifact_id"] != id {
		t.Errorf("DeleteArtifact: artifact_id = %v, want %s", dr["artifact_id"], id)
	}
	if resp, _ := ArtifactDo(t, "GET", dl, nil, nil); resp.StatusCode != 404 {
		t.Errorf("GET deleted: status = %d, want 404", resp.StatusCode)
	}
	e.call("DeleteArtifact", 101, map[string]any{"name": "dist"}, 404)
	e.call("CreateArtifact", 101, map[string]any{"name": "dist", "version": 7}, 200)
	var n int
	e.svc.db.QueryRow(`SELECT COUNT(*) FROM artifact_blocks WHERE artifact_id = ?`, id).Scan(&n)
	if n != 0 {
		t.Errorf("%d blocks left of the deleted artifact", n)
	}
}

func TestArtifactSinglePutAndEmpty(t *testing.T) {
	e := newArtifactTestEnv(t, nil)
	data := []byte("just one put")
	cr := e.call("CreateArtifact", 100, map[string]any{"name": "report.txt", "version": 7, "mime_type": "text/plain"}, 200)
	resp, b := ArtifactDo(t, "PUT", cr["signed_upload_url"].(string), map[string]string{"x-ms-blob-type": "BlockBlob"}, data)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT BlockBlob: status = %d, want 201 (%s)", resp.StatusCode, b)
	}
	e.call("FinalizeArtifact", 100, map[string]any{"name": "report.txt", "size": fmt.Sprint(len(data)), "hash": ArtifactSHA(data)}, 200)
	sr := e.call("GetSignedArtifactURL", 100, map[string]any{"name": "report.txt"}, 200)
	resp, got := ArtifactDo(t, "GET", sr["signed_url"].(string), nil, nil)
	if !bytes.Equal(got, data) || resp.Header.Get("Content-Type") != "text/plain" || !strings.Contains(resp.Header.Get("Content-Disposition"), "report.txt") {
		t.Fatalf("GET raw artifact: %q %q %q", got, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
	}
	// Empty stream: no blocks, an empty block list.
	cr = e.call("CreateArtifact", 100, map[string]any{"name": "empty", "version": 7}, 200)
	ArtifactUpload(t, cr["signed_upload_url"].(string), nil, 1<<20)
	e.call("FinalizeArtifact", 100, map[string]any{"name": "empty", "hash": ArtifactSHA(nil)}, 200)
}

func TestArtifactFinalizeChecks(t *testing.T) {
	e := newArtifactTestEnv(t, nil)
	data := ArtifactPattern(1000)
	cr := e.call("CreateArtifact", 100, map[string]any{"name": "a", "version": 7}, 200)
	signed := cr["signed_upload_url"].(string)
	ArtifactUpload(t, signed, data, 300)
	for _, tc := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"wrong size", map[string]any{"name": "a", "size": "999", "hash": ArtifactSHA(data)}, 400},
		{"wrong hash", map[string]any{"name": "a", "size": "1000", "hash": ArtifactSHA(data[1:])}, 400},
		{"unknown name", map[string]any{"name": "b", "size": "1000"}, 404},
		{"other job", map[string]any{"workflow_job_run_backend_id": "100", "name": "a", "size": "1000"}, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			job := int64(100)
			if tc.name == "other job" {
				job = 101
			}
			e.call("FinalizeArtifact", job, tc.body, tc.want)
		})
	}
	// A block list naming a block never staged, or one twice.
	for _, ids := range [][]string{{ArtifactBlockID(77)}, {ArtifactBlockID(0), ArtifactBlockID(0)}} {
		resp, _ := ArtifactDo(t, "PUT", signed+"&comp=blocklist", nil, artifactBlockListXML(ids))
		if resp.StatusCode != 400 {
			t.Errorf("PUT comp=blocklist %v: status = %d, want 400", ids, resp.StatusCode)
		}
	}
	resp, _ := ArtifactDo(t, "PUT", signed+"&comp=blocklist", nil, []byte("<BlockList><Latest>"))
	if resp.StatusCode != 400 {
		t.Errorf("PUT comp=blocklist malformed: status = %d, want 400", resp.StatusCode)
	}
	resp, _ = ArtifactDo(t, "PUT", signed+"&comp=block&blockid=not*base64", nil, []byte("x"))
	if resp.StatusCode != 400 {
		t.Errorf("PUT comp=block bad id: status = %d, want 400", resp.StatusCode)
	}
	// Re-staging a block replaces it; the finalize then matches.
	ArtifactUpload(t, signed, data, 300)
	e.call("FinalizeArtifact", 100, map[string]any{"name": "a", "size": "1000", "hash": ArtifactSHA(data)}, 200)
}

func TestArtifactAuth(t *testing.T) {
	e := newArtifactTestEnv(t, nil)
	cr := e.call("CreateArtifact", 100, map[string]any{"name": "x", "version": 7}, 200)
	ArtifactUpload(t, cr["signed_upload_url"].(string), []byte("hi"), 10)
	e.call("FinalizeArtifact", 100, map[string]any{"name": "x", "size": "2"}, 200)

	tok100, tok200 := e.token[100], e.token[200]
	for _, tc := range []struct {
		name, method, tok, run, job string
		want                        int
	}{
		{"create as another job of the run", "CreateArtifact", tok100, "10", "101", 403},
		{"create in another run", "CreateArtifact", tok200, "10", "100", 403},
		{"finalize in another run", "FinalizeArtifact", tok200, "10", "200", 403},
		{"list another run", "ListArtifacts", tok200, "10", "200", 403},
		{"sign in another run", "GetSignedArtifactURL", tok200, "10", "100", 403},
		{"delete in another run", "DeleteArtifact", tok200, "10", "100", 403},
		{"no token", "ListArtifacts", "", "10", "100", 401},
		{"forged token", "ListArtifacts", tok100[:len(tok100)-2] + "xx", "10", "100", 401},
		{"sign own run, uploader's job id", "GetSignedArtifactURL", tok100, "10", "100", 200},
		{"list own run", "ListArtifacts", tok100, "10", "100", 200},
		{"unknown method", "UploadArtifact", tok100, "10", "100", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := ArtifactTwirp(t, e.srv.URL, ArtifactSvc, tc.method, tc.tok,
				map[string]any{"workflow_run_backend_id": tc.run, "workflow_job_run_backend_id": tc.job, "name": "x", "version": 7})
			if code != tc.want {
				t.Fatalf("POST %s: status = %d, want %d (%v)", tc.method, code, tc.want, out)
			}
		})
	}
	// Not JSON / not POST.
	resp, _ := ArtifactDo(t, "POST", e.srv.URL+ArtifactTwirpPrefix+"ListArtifacts", map[string]string{"Content-Type": "application/protobuf"}, nil)
	if resp.StatusCode != 404 {
		t.Errorf("POST protobuf: status = %d, want 404 (bad_route)", resp.StatusCode)
	}
}

func TestArtifactSignedURLs(t *testing.T) {
	e := newArtifactTestEnv(t, nil)
	cr := e.call("CreateArtifact", 100, map[string]any{"name": "x", "version": 7}, 200)
	up := cr["signed_upload_url"].(string)
	ArtifactUpload(t, up, []byte("hello"), 10)
	e.call("FinalizeArtifact", 100, map[string]any{"name": "x", "size": "5"}, 200)
	dl := e.call("GetSignedArtifactURL", 100, map[string]any{"name": "x"}, 200)["signed_url"].(string)

	u, _ := url.Parse(dl)
	q := u.Query()
	sig := q.Get("sig")
	tamper := func(f func(q url.Values, u *url.URL)) string {
		u2 := *u
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = append([]string(nil), v...)
		}
		f(q2, &u2)
		u2.RawQuery = q2.Encode()
		return u2.String()
	}
	for _, tc := range []struct {
		name, method, url string
		want              int
	}{
		{"good", "GET", dl, 200},
		{"head", "HEAD", dl, 200},
		{"flipped signature", "GET", tamper(func(q url.Values, _ *url.URL) {
			q.Set("sig", map[bool]string{true: "B", false: "A"}[sig[0] == 'A']+sig[1:])
		}), 403},
		{"no signature", "GET", tamper(func(q url.Values, _ *url.URL) { q.Del("sig") }), 403},
		{"later expiry", "GET", tamper(func(q url.Values, _ *url.URL) { q.Set("se", "99999999999") }), 403},
		{"other artifact", "GET", tamper(func(_ url.Values, u *url.URL) { u.Path = ArtifactBlobPrefix + "999" }), 403},
		{"download URL used to upload", "PUT", dl, 403},
		{"upload URL used to download", "GET", up, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := ArtifactDo(t, tc.method, tc.url, nil, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s %s: status = %d, want %d (%s)", tc.method, tc.url, resp.StatusCode, tc.want, b)
			}
			if tc.want == 403 && resp.Header.Get("x-ms-error-code") != "AuthenticationFailed" {
				t.Errorf("x-ms-error-code = %q", resp.Header.Get("x-ms-error-code"))
			}
		})
	}
	e.advance(11 * time.Minute)
	if resp, _ := ArtifactDo(t, "GET", dl, nil, nil); resp.StatusCode != 403 {
		t.Errorf("GET expired download URL: status = %d, want 403", resp.StatusCode)
	}
	e.advance(time.Hour)
	if resp, _ := ArtifactDo(t, "PUT", up+"&comp=block&blockid="+url.QueryEscape(ArtifactBlockID(1)), nil, []byte("x")); resp.StatusCode != 403 {
		t.Errorf("PUT expired upload URL: status = %d, want 403", resp.StatusCode)
	}
}

func TestArtifactSizeCaps(t *testing.T) {
	e := newArtifactTestEnv(t, func(c *ArtifactConfig) {
		c.MaxArtifactSize = 10 << 10
		c.MaxRunSize = 20 << 10
	})
	// Per artifact.
	cr := e.call("CreateArtifact", 100, map[string]any{"name": "big", "version": 7}, 200)
	resp, b := ArtifactDo(t, "PUT", cr["signed_upload_url"].(string)+"&comp=block&blockid="+url.QueryEscape(ArtifactBlockID(0)), nil, make([]byte, 11<<10))
	if resp.StatusCode != 413 || !strings.Contains(string(b), "per artifact") {
		t.Fatalf("PUT block over the artifact cap: status = %d, want 413 (%s)", resp.StatusCode, b)
	}
	// Per run (20 KiB): 8 + 8 fit, 8 more does not, 4 more does.
	for i, tc := range []struct{ size, want int }{{8 << 10, 201}, {8 << 10, 201}, {8 << 10, 413}, {4 << 10, 201}} {
		name := fmt.Sprintf("part%d", i)
		cr := e.call("CreateArtifact", 100, map[string]any{"name": name, "version": 7}, 200)
		resp, b := ArtifactDo(t, "PUT", cr["signed_upload_url"].(string), nil, make([]byte, tc.size))
		if resp.StatusCode != tc.want {
			t.Fatalf("PUT %s: status = %d, want %d (%s)", name, resp.StatusCode, tc.want, b)
		}
		if tc.want == 201 {
			e.call("FinalizeArtifact", 100, map[string]any{"name": name, "size": fmt.Sprint(tc.size)}, 200)
		}
	}
	// Once the run is full, CreateArtifact says so in the words the toolkit
	// turns into its UsageError.
	out := e.call("CreateArtifact", 101, map[string]any{"name": "more", "version": 7}, 429)
	if !strings.Contains(out["msg"].(string), "insufficient usage") {
		t.Errorf("CreateArtifact over the run cap: msg = %v", out["msg"])
	}
}

func TestArtifactRetentionAndSweep(t *testing.T) {
	e := newArtifactTestEnv(t, nil)
	e.call("CreateArtifact", 100, map[string]any{"name": "short", "version": 7, "expires_at": artifactTimestamp(e.now.Add(2 * 24 * time.Hour))}, 200)
	e.call("FinalizeArtifact", 100, map[string]any{"name": "short"}, 200)
	e.call("CreateArtifact", 100, map[string]any{"name": "forever", "version": 7, "expires_at": "2999-01-01T00:00:00.123Z"}, 200)
	e.call("FinalizeArtifact", 100, map[string]any{"name": "forever"}, 200)
	e.call("CreateArtifact", 100, map[string]any{"name": "default", "version": 7}, 200)
	e.call("FinalizeArtifact", 100, map[string]any{"name": "default"}, 200)
	e.call("CreateArtifact", 100, map[string]any{"name": "abandoned", "version": 7}, 200)
	recs, _ := e.svc.RunArtifacts(context.Background(), 10)
	for _, r := range recs {
		if r.Name != "short" && !r.ExpiresAt.Equal(e.now.Add(90*24*time.Hour)) {
			t.Errorf("%s expires %v, want 90 days", r.Name, r.ExpiresAt)
		}
	}
	e.advance(3 * 24 * time.Hour)
	if n := len(e.call("ListArtifacts", 100, map[string]any{}, 200)["artifacts"].([]any)); n != 2 {
		t.Errorf("ListArtifacts after 3 days: %d, want 2", n)
	}
	n, err := e.svc.Sweep(context.Background())
	if err != nil || n != 2 {
		t.Errorf("Sweep = %d, %v; want 2 (expired + abandoned)", n, err)
	}
}

func TestArtifactRuntimeToken(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	j := ArtifactJob{RunID: 7, RepoID: 3, JobID: 42}
	tok := ArtifactRuntimeToken(key, j, now, time.Hour)
	if run, job := ArtifactIDs(tok); run != "7" || job != "42" {
		t.Fatalf("scp backend ids = %q, %q; want 7, 42", run, job)
	}
	auth := func(at time.Time) artifactAuth { return ArtifactTokenAuth(key, func() time.Time { return at }) }
	if got, err := auth(now)(context.Background(), tok); err != nil || got != j {
		t.Fatalf("artifactTokenAuth = %v, %v; want %v", got, err, j)
	}
	p := strings.Split(tok, ".")
	forged := p[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"run_id":8,"job_id":42,"exp":9999999999}`)) + "." + p[2]
	for name, tc := range map[string]struct {
		tok string
		at  time.Time
	}{"expired": {tok, now.Add(2 * time.Hour)}, "forged claims": {forged, now}, "not a jwt": {"abc", now}, "other key": {ArtifactRuntimeToken([]byte("another key, 32 bytes long......"), j, now, time.Hour), now}} {
		if _, err := auth(tc.at)(context.Background(), tc.tok); err == nil {
			t.Errorf("%s: artifactTokenAuth accepted it", name)
		}
	}
}

func FuzzArtifactBlockList(f *testing.F) {
	f.Add(string(artifactBlockListXML([]string{ArtifactBlockID(0), ArtifactBlockID(1)})))
	f.Add(`<BlockList><Committed>AAAA</Committed><Uncommitted>QUJD</Uncommitted></BlockList>`)
	f.Add(`<BlockList><Latest>!!</Latest></BlockList>`)
	f.Add(`<BlockList><Other>AAAA</Other></BlockList>`)
	f.Add(`<?xml version="1.0"?><BlockList/>`)
	f.Fuzz(func(t *testing.T, s string) {
		ids, err := artifactParseBlockList([]byte(s))
		if err != nil {
			return
		}
		for _, id := range ids {
			if artifactCheckBlockID(id) != nil {
				t.Fatalf("accepted invalid id %q", id)
			}
		}
		again, err := artifactParseBlockList(artifactBlockListXML(ids))
		if err != nil || fmt.Sprint(again) != fmt.Sprint(ids) {
			t.Fatalf("round trip of %q: %q, %v", ids, again, err)
		}
	})
}
