package jobsvc

// The artifact service that actions/upload-artifact@v4 and
// actions/download-artifact@v4 (@actions/artifact v2) talk to.
//
// The toolkit speaks Twirp JSON to
//
//	<origin of ACTIONS_RESULTS_URL>/twirp/github.actions.results.api.v1.ArtifactService/<Method>
//
// with "Authorization: Bearer $ACTIONS_RUNTIME_TOKEN". It takes the
// workflow_run_backend_id and workflow_job_run_backend_id it sends from the
// token's JWT claim "scp" ("... Actions.Results:<run>:<job> ..."), decoding
// the middle part without checking the signature. The bytes themselves go
// to the signed URL CreateArtifact answers, through @azure/storage-blob's
// BlockBlobClient.uploadStream: "PUT <url>&comp=block&blockid=<b64>" per
// 8 MiB, then "PUT <url>&comp=blocklist" with an XML <BlockList>; both want
// 201. Downloads are a plain GET of the URL GetSignedArtifactURL answers.
//
// Storage: the artifacts table, and the bytes in artifact_blocks as parts of
// at most artifactPartSize. A staged block's parts have seq NULL; committing
// a block list numbers the listed blocks (seq) and drops the rest.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// artifactSchema is the DDL for artifacts; fold it into schema.sql (or run
// it as a migration). Times are unix seconds like the rest of the schema.
const ArtifactSchema = `
CREATE TABLE IF NOT EXISTS artifacts (
	id           INTEGER PRIMARY KEY,
	run_id       INTEGER NOT NULL,
	repo_id      INTEGER NOT NULL,
	job_id       INTEGER NOT NULL,
	name         TEXT NOT NULL,
	mime_type    TEXT NOT NULL DEFAULT '',
	size         INTEGER NOT NULL DEFAULT 0,
	digest       TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL DEFAULT 'uploading' CHECK (status IN ('uploading', 'finalized')),
	created_at   INTEGER NOT NULL,
	finalized_at INTEGER,
	expires_at   INTEGER NOT NULL,
	UNIQUE (run_id, name)
);
CREATE INDEX IF NOT EXISTS artifacts_expires ON artifacts (expires_at);
CREATE INDEX IF NOT EXISTS artifacts_repo ON artifacts (repo_id, id);

CREATE TABLE IF NOT EXISTS artifact_blocks (
	id          INTEGER PRIMARY KEY,
	artifact_id INTEGER NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
	block_id    TEXT NOT NULL,
	part        INTEGER NOT NULL,
	seq         INTEGER,
	size        INTEGER NOT NULL,
	data        BLOB NOT NULL,
	UNIQUE (artifact_id, block_id, part)
);
CREATE INDEX IF NOT EXISTS artifact_blocks_order ON artifact_blocks (artifact_id, seq, part);
`

const (
	// artifactTwirpPrefix must be mounted at the root of the host that
	// ACTIONS_RESULTS_URL names: the toolkit keeps only the URL's origin.
	ArtifactTwirpPrefix = "/twirp/github.actions.results.api.v1.ArtifactService/"
	// artifactBlobPrefix is where the signed upload/download URLs point.
	ArtifactBlobPrefix = "/_apis/artifactblob/"

	artifactPartSize       = 4 << 20
	artifactDefaultMaxSize = 2 << 30
	artifactStatusUpload   = "uploading"
	ArtifactStatusFinal    = "finalized"
)

// artifactJob is what a runtime token stands for.
type ArtifactJob struct{ RunID, RepoID, JobID int64 }

// artifactAuth maps the bearer token of a Twirp request to its job; an
// error answers 401.
type artifactAuth func(ctx context.Context, bearer string) (ArtifactJob, error)

type ArtifactConfig struct {
	DB     *sql.DB // writes, and reads when ReadDB is nil
	ReadDB *sql.DB // optional pool for reads (downloads, lists)
	Key    []byte  // secret for signed URLs; at least 32 random bytes
	Auth   artifactAuth
	// PublicURL, if set, is the scheme://host[:port] signed URLs use;
	// otherwise the Host the Twirp request came to, which the job reached.
	PublicURL       string
	MaxArtifactSize int64         // default 2 GiB
	MaxRunSize      int64         // default 2 GiB
	Retention       time.Duration // default 90 days, when retention-days is unset
	MaxRetention    time.Duration // default 90 days
	UploadTTL       time.Duration // default 1 h
	DownloadTTL     time.Duration // default 10 min
	Now             func() time.Time
	// JobRunning reports whether a job still runs: an artifact's signed
	// upload URL is refused once the job that created it is over. nil takes
	// every job as running.
	JobRunning func(ctx context.Context, jobID int64) bool
}

type ArtifactService struct {
	Cfg ArtifactConfig
	db  *sql.DB
	rdb *sql.DB
}

func NewArtifactService(cfg ArtifactConfig) (*ArtifactService, error) {
	if cfg.DB == nil || cfg.Auth == nil {
		return nil, errors.New("artifacts: DB and Auth are required")
	}
	if len(cfg.Key) < 16 {
		return nil, errors.New("artifacts: signing key too short")
	}
	if cfg.MaxArtifactSize <= 0 {
		cfg.MaxArtifactSize = artifactDefaultMaxSize
	}
	if cfg.MaxRunSize <= 0 {
		cfg.MaxRunSize = artifactDefaultMaxSize
	}
	if cfg.MaxRetention <= 0 {
		cfg.MaxRetention = 90 * 24 * time.Hour
	}
	if cfg.Retention <= 0 || cfg.Retention > cfg.MaxRetention {
		cfg.Retention = cfg.MaxRetention
	}
	if cfg.UploadTTL <= 0 {
		cfg.UploadTTL = time.Hour
	}
	if cfg.DownloadTTL <= 0 {
		cfg.DownloadTTL = 10 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	s := &ArtifactService{Cfg: cfg, db: cfg.DB, rdb: cfg.ReadDB}
	if s.rdb == nil {
		s.rdb = cfg.DB
	}
	return s, nil
}

// artifactRecord is one row of artifacts.
type ArtifactRecord struct {
	ID, RunID, RepoID, JobID int64
	Name, MimeType, Digest   string
	Size                     int64
	Status                   string
	CreatedAt, ExpiresAt     time.Time
	FinalizedAt              time.Time
}

const artifactCols = `id, run_id, repo_id, job_id, name, mime_type, size, digest, status, created_at, COALESCE(finalized_at, 0), expires_at`

func artifactScan(sc interface{ Scan(...any) error }) (*ArtifactRecord, error) {
	var a ArtifactRecord
	var created, final, expires int64
	if err := sc.Scan(&a.ID, &a.RunID, &a.RepoID, &a.JobID, &a.Name, &a.MimeType, &a.Size, &a.Digest, &a.Status, &created, &final, &expires); err != nil {
		return nil, err
	}
	a.CreatedAt, a.ExpiresAt = time.Unix(created, 0).UTC(), time.Unix(expires, 0).UTC()
	if final != 0 {
		a.FinalizedAt = time.Unix(final, 0).UTC()
	}
	return &a, nil
}

func (s *ArtifactService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case strings.HasPrefix(r.URL.Path, ArtifactTwirpPrefix):
		s.serveTwirp(w, r, strings.TrimPrefix(r.URL.Path, ArtifactTwirpPrefix))
	case strings.HasPrefix(r.URL.Path, ArtifactBlobPrefix):
		s.serveBlob(w, r)
	default:
		http.NotFound(w, r)
	}
}

// ---- Twirp plumbing, shared with cache.go ----

// artifactTwirpErr is a Twirp error: code is one of Twirp's codes.
type artifactTwirpErr struct {
	code, msg string
}

func (e *artifactTwirpErr) Error() string { return e.code + ": " + e.msg }

func artifactTwirpf(code, format string, args ...any) error {
	return &artifactTwirpErr{code, fmt.Sprintf(format, args...)}
}

var artifactTwirpStatus = map[string]int{
	"invalid_argument":    http.StatusBadRequest,
	"malformed":           http.StatusBadRequest,
	"unauthenticated":     http.StatusUnauthorized,
	"permission_denied":   http.StatusForbidden,
	"not_found":           http.StatusNotFound,
	"bad_route":           http.StatusNotFound,
	"already_exists":      http.StatusConflict,
	"failed_precondition": http.StatusPreconditionFailed,
	"resource_exhausted":  http.StatusTooManyRequests,
	"internal":            http.StatusInternalServerError,
}

func artifactWriteTwirp(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		var te *artifactTwirpErr
		if !errors.As(err, &te) {
			te = &artifactTwirpErr{"internal", err.Error()}
		}
		code, ok := artifactTwirpStatus[te.code]
		if !ok {
			code = http.StatusInternalServerError
		}
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"code": te.code, "msg": te.msg})
		return
	}
	json.NewEncoder(w).Encode(v)
}

// artifactBearer is the token of "Authorization: Bearer <token>".
func artifactBearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// artifactDecodeTwirp reads a Twirp JSON body into v. Protobuf JSON allows
// both the proto names (which the toolkit sends) and lowerCamelCase ones,
// so keys are folded to snake_case first.
func artifactDecodeTwirp(r *http.Request, v any) error {
	if r.Method != http.MethodPost {
		return artifactTwirpf("bad_route", "unsupported method %s (only POST is allowed)", r.Method)
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return artifactTwirpf("bad_route", "unexpected Content-Type %q: only application/json is served", r.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
	if err != nil {
		return artifactTwirpf("malformed", "reading body: %v", err)
	}
	if len(body) > 1<<20 {
		return artifactTwirpf("malformed", "request body too large")
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		return artifactTwirpf("malformed", "the json request could not be decoded: %v", err)
	}
	n := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		n[artifactSnake(k)] = v
	}
	b, _ := json.Marshal(n)
	if err := json.Unmarshal(b, v); err != nil {
		return artifactTwirpf("malformed", "the json request could not be decoded: %v", err)
	}
	return nil
}

func artifactSnake(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

// artifactInt64 is a protobuf JSON int64: a string or a number.
type artifactInt64 int64

func (n *artifactInt64) UnmarshalJSON(b []byte) error {
	s := string(bytes.Trim(b, `"`))
	if s == "null" || s == "" {
		*n = 0
		return nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("invalid int64 %s", b)
	}
	*n = artifactInt64(v)
	return nil
}

// artifactTimestamp is the protobuf JSON Timestamp form the toolkit's
// Timestamp.fromJson accepts (RFC 3339, "Z", 0, 3, 6 or 9 fraction digits).
func artifactTimestamp(t time.Time) string {
	return t.UTC().Truncate(time.Second).Format("2006-01-02T15:04:05Z")
}

// ---- signed URLs, shared with cache.go ----

func artifactSig(key []byte, method, path string, exp int64) string {
	if method == http.MethodHead {
		method = http.MethodGet
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s\n%s\n%d", method, path, exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// artifactSignURL signs method+path until now+ttl: "<base><path>?se=..&sig=..".
func ArtifactSignURL(key []byte, base, method, path string, now time.Time, ttl time.Duration) string {
	exp := now.Add(ttl).Unix()
	q := url.Values{"se": {strconv.FormatInt(exp, 10)}, "sig": {artifactSig(key, method, path, exp)}}
	return base + path + "?" + q.Encode()
}

// artifactVerifyURL checks the se/sig of a request against its method and
// path in constant time.
func artifactVerifyURL(key []byte, r *http.Request, now time.Time) error {
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("se"), 10, 64)
	if err != nil {
		return errors.New("missing or malformed expiry (se)")
	}
	want := artifactSig(key, r.Method, r.URL.Path, exp)
	if !hmac.Equal([]byte(q.Get("sig")), []byte(want)) {
		return errors.New("signature mismatch")
	}
	if now.Unix() >= exp {
		return errors.New("signed URL expired")
	}
	return nil
}

// artifactBase is scheme://host for signed URLs.
func artifactBase(public string, r *http.Request) string {
	if public != "" {
		return public
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// artifactBlobError answers in Azure Blob Storage's shape, which the
// @azure/storage-blob client turns into its error message.
func artifactBlobError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Error><Code>%s</Code><Message>", code)
	xml.EscapeText(w, []byte(msg))
	io.WriteString(w, "</Message></Error>")
}

type artifactBlockList struct {
	XMLName xml.Name `xml:"BlockList"`
	Items   []struct {
		XMLName xml.Name
		ID      string `xml:",chardata"`
	} `xml:",any"`
}

// artifactParseBlockList parses Put Block List's body into block ids in
// order. Latest, Committed and Uncommitted all name a staged block here.
func artifactParseBlockList(b []byte) ([]string, error) {
	var bl artifactBlockList
	if err := xml.Unmarshal(b, &bl); err != nil {
		return nil, fmt.Errorf("invalid block list: %w", err)
	}
	ids := make([]string, 0, len(bl.Items))
	for _, it := range bl.Items {
		switch it.XMLName.Local {
		case "Latest", "Committed", "Uncommitted":
		default:
			return nil, fmt.Errorf("invalid block list: unexpected element <%s>", it.XMLName.Local)
		}
		id := strings.TrimSpace(it.ID)
		if err := artifactCheckBlockID(id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// artifactCheckBlockID: Azure block ids are base64 of at most 64 bytes.
func artifactCheckBlockID(id string) error {
	d, err := base64.StdEncoding.DecodeString(id)
	if err != nil || len(d) == 0 || len(d) > 64 {
		return fmt.Errorf("invalid block id %q", id)
	}
	return nil
}

// ---- Twirp ArtifactService ----

type artifactReq struct {
	RunBackendID string         `json:"workflow_run_backend_id"`
	JobBackendID string         `json:"workflow_job_run_backend_id"`
	Name         string         `json:"name"`
	ExpiresAt    *string        `json:"expires_at"`
	Version      int            `json:"version"`
	MimeType     *string        `json:"mime_type"`
	Size         artifactInt64  `json:"size"`
	Hash         *string        `json:"hash"`
	NameFilter   *string        `json:"name_filter"`
	IDFilter     *artifactInt64 `json:"id_filter"`
}

type artifactListed struct {
	RunBackendID string `json:"workflow_run_backend_id"`
	JobBackendID string `json:"workflow_job_run_backend_id"`
	DatabaseID   int64  `json:"database_id,string"`
	Name         string `json:"name"`
	Size         int64  `json:"size,string"`
	CreatedAt    string `json:"created_at"`
	Digest       string `json:"digest,omitempty"`
}

func (s *ArtifactService) serveTwirp(w http.ResponseWriter, r *http.Request, method string) {
	var req artifactReq
	if err := artifactDecodeTwirp(r, &req); err != nil {
		artifactWriteTwirp(w, nil, err)
		return
	}
	tok := artifactBearer(r)
	if tok == "" {
		artifactWriteTwirp(w, nil, artifactTwirpf("unauthenticated", "missing bearer token"))
		return
	}
	job, err := s.Cfg.Auth(r.Context(), tok)
	if err != nil {
		artifactWriteTwirp(w, nil, artifactTwirpf("unauthenticated", "invalid runtime token"))
		return
	}
	if req.RunBackendID != strconv.FormatInt(job.RunID, 10) {
		artifactWriteTwirp(w, nil, artifactTwirpf("permission_denied", "workflow_run_backend_id %q is not the run of this token", req.RunBackendID))
		return
	}
	writes := method == "CreateArtifact" || method == "FinalizeArtifact"
	if writes && req.JobBackendID != strconv.FormatInt(job.JobID, 10) {
		artifactWriteTwirp(w, nil, artifactTwirpf("permission_denied", "workflow_job_run_backend_id %q is not the job of this token", req.JobBackendID))
		return
	}
	var resp any
	switch method {
	case "CreateArtifact":
		resp, err = s.create(r, job, &req)
	case "FinalizeArtifact":
		resp, err = s.finalize(r.Context(), job, &req)
	case "ListArtifacts":
		resp, err = s.list(r.Context(), job, &req)
	case "GetSignedArtifactURL":
		resp, err = s.signedURL(r, job, &req)
	case "DeleteArtifact":
		resp, err = s.deleteByName(r.Context(), job, &req)
	default:
		err = artifactTwirpf("bad_route", "no handler for path %q", r.URL.Path)
	}
	artifactWriteTwirp(w, resp, err)
}

// artifactCheckName refuses what upload-artifact refuses too.
func artifactCheckName(name string) error {
	if name == "" {
		return artifactTwirpf("invalid_argument", "artifact name is required")
	}
	if len(name) > 256 {
		return artifactTwirpf("invalid_argument", "artifact name is longer than 256 characters")
	}
	if strings.ContainsAny(name, "\":<>|*?\r\n\\/") || strings.ContainsRune(name, 0) {
		return artifactTwirpf("invalid_argument", `artifact name %q contains one of the invalid characters " : < > | * ? \r \n \ /`, name)
	}
	return nil
}

func (s *ArtifactService) runUsage(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, runID int64) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT COALESCE(SUM(b.size), 0) FROM artifact_blocks b JOIN artifacts a ON a.id = b.artifact_id WHERE a.run_id = ?`, runID).Scan(&n)
	return n, err
}

func (s *ArtifactService) create(r *http.Request, job ArtifactJob, req *artifactReq) (any, error) {
	ctx := r.Context()
	if err := artifactCheckName(req.Name); err != nil {
		return nil, err
	}
	now := s.Cfg.Now()
	exp := now.Add(s.Cfg.Retention)
	if req.ExpiresAt != nil && *req.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, *req.ExpiresAt)
		if err != nil {
			return nil, artifactTwirpf("invalid_argument", "expires_at: %v", err)
		}
		exp = t
		if max := now.Add(s.Cfg.MaxRetention); exp.After(max) {
			exp = max
		}
		if min := now.Add(24 * time.Hour); exp.Before(min) {
			exp = min
		}
	}
	mt := "application/zip"
	if req.MimeType != nil && *req.MimeType != "" {
		mt = *req.MimeType
	}
	used, err := s.runUsage(ctx, s.db, job.RunID)
	if err != nil {
		return nil, err
	}
	if used >= s.Cfg.MaxRunSize {
		return nil, artifactTwirpf("resource_exhausted", "insufficient usage: the run's artifacts already use %d bytes of the %d allowed", used, s.Cfg.MaxRunSize)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	old, err := artifactScan(tx.QueryRowContext(ctx, `SELECT `+artifactCols+` FROM artifacts WHERE run_id = ? AND name = ?`, job.RunID, req.Name))
	var id int64
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := tx.ExecContext(ctx, `INSERT INTO artifacts (run_id, repo_id, job_id, name, mime_type, status, created_at, expires_at) VALUES (?, ?, ?, ?, ?, 'uploading', ?, ?)`,
			job.RunID, job.RepoID, job.JobID, req.Name, mt, now.Unix(), exp.Unix())
		if err != nil {
			return nil, err
		}
		id, _ = res.LastInsertId()
	case err != nil:
		return nil, err
	case old.Status == ArtifactStatusFinal:
		// GitHub: "Failed request: (409) Conflict: an artifact with this
		// name already exists on the workflow run".
		return nil, artifactTwirpf("already_exists", "an artifact with this name already exists on the workflow run")
	case old.JobID != job.JobID && now.Sub(old.CreatedAt) < s.Cfg.UploadTTL:
		return nil, artifactTwirpf("already_exists", "an artifact with this name is being uploaded by another job of the workflow run")
	default:
		// An abandoned upload (or this job retrying): start over.
		id = old.ID
		if _, err := tx.ExecContext(ctx, `DELETE FROM artifact_blocks WHERE artifact_id = ?`, id); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE artifacts SET job_id = ?, repo_id = ?, mime_type = ?, size = 0, digest = '', created_at = ?, expires_at = ? WHERE id = ?`,
			job.JobID, job.RepoID, mt, now.Unix(), exp.Unix(), id); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	u := ArtifactSignURL(s.Cfg.Key, artifactBase(s.Cfg.PublicURL, r), http.MethodPut, ArtifactBlobPrefix+strconv.FormatInt(id, 10), now, s.Cfg.UploadTTL)
	return map[string]any{"ok": true, "signed_upload_url": u}, nil
}

func (s *ArtifactService) finalize(ctx context.Context, job ArtifactJob, req *artifactReq) (any, error) {
	a, err := artifactScan(s.db.QueryRowContext(ctx, `SELECT `+artifactCols+` FROM artifacts WHERE run_id = ? AND name = ?`, job.RunID, req.Name))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, artifactTwirpf("not_found", "artifact %q not found: call CreateArtifact first", req.Name)
	}
	if err != nil {
		return nil, err
	}
	if a.JobID != job.JobID {
		return nil, artifactTwirpf("permission_denied", "artifact %q belongs to another job", req.Name)
	}
	if a.Digest == "" { // nothing committed: only an empty artifact
		a.Digest = "sha256:" + hex.EncodeToString(sha256.New().Sum(nil))
	}
	if int64(req.Size) != a.Size {
		return nil, artifactTwirpf("invalid_argument", "size %d does not match the %d bytes uploaded", req.Size, a.Size)
	}
	if req.Hash != nil && *req.Hash != "" && !strings.EqualFold(*req.Hash, a.Digest) {
		return nil, artifactTwirpf("invalid_argument", "hash %s does not match the uploaded content's %s", *req.Hash, a.Digest)
	}
	if a.Status != ArtifactStatusFinal {
		if _, err := s.db.ExecContext(ctx, `UPDATE artifacts SET status = 'finalized', digest = ?, finalized_at = ? WHERE id = ? AND status = 'uploading'`,
			a.Digest, s.Cfg.Now().Unix(), a.ID); err != nil {
			return nil, err
		}
	}
	return map[string]any{"ok": true, "artifact_id": strconv.FormatInt(a.ID, 10)}, nil
}

func (s *ArtifactService) list(ctx context.Context, job ArtifactJob, req *artifactReq) (any, error) {
	q := `SELECT ` + artifactCols + ` FROM artifacts WHERE run_id = ? AND status = 'finalized' AND expires_at > ?`
	args := []any{job.RunID, s.Cfg.Now().Unix()}
	if req.NameFilter != nil {
		q += ` AND name = ?`
		args = append(args, *req.NameFilter)
	}
	if req.IDFilter != nil {
		q += ` AND id = ?`
		args = append(args, int64(*req.IDFilter))
	}
	rows, err := s.rdb.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []artifactListed{}
	for rows.Next() {
		a, err := artifactScan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, artifactListed{
			RunBackendID: strconv.FormatInt(a.RunID, 10),
			JobBackendID: strconv.FormatInt(a.JobID, 10),
			DatabaseID:   a.ID, Name: a.Name, Size: a.Size,
			CreatedAt: artifactTimestamp(a.CreatedAt), Digest: a.Digest,
		})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return map[string]any{"artifacts": out}, nil
}

func (s *ArtifactService) finalizedByName(ctx context.Context, runID int64, name string) (*ArtifactRecord, error) {
	a, err := artifactScan(s.rdb.QueryRowContext(ctx, `SELECT `+artifactCols+` FROM artifacts WHERE run_id = ? AND name = ? AND status = 'finalized' AND expires_at > ?`, runID, name, s.Cfg.Now().Unix()))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, artifactTwirpf("not_found", "artifact %q not found in this workflow run", name)
	}
	return a, err
}

func (s *ArtifactService) signedURL(r *http.Request, job ArtifactJob, req *artifactReq) (any, error) {
	a, err := s.finalizedByName(r.Context(), job.RunID, req.Name)
	if err != nil {
		return nil, err
	}
	return map[string]any{"signed_url": s.DownloadURL(r, a.ID)}, nil
}

// DownloadURL is a short-lived signed GET URL of artifact id's bytes; the
// REST "GET …/artifacts/{id}/zip" can redirect (302) to it.
func (s *ArtifactService) DownloadURL(r *http.Request, id int64) string {
	return ArtifactSignURL(s.Cfg.Key, artifactBase(s.Cfg.PublicURL, r), http.MethodGet, ArtifactBlobPrefix+strconv.FormatInt(id, 10), s.Cfg.Now(), s.Cfg.DownloadTTL)
}

func (s *ArtifactService) deleteByName(ctx context.Context, job ArtifactJob, req *artifactReq) (any, error) {
	a, err := s.finalizedByName(ctx, job.RunID, req.Name)
	if err != nil {
		return nil, err
	}
	if err := s.Delete(ctx, a.ID); err != nil {
		return nil, err
	}
	return map[string]any{"ok": true, "artifact_id": strconv.FormatInt(a.ID, 10)}, nil
}

// Delete removes an artifact and its bytes.
func (s *ArtifactService) Delete(ctx context.Context, id int64) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM artifact_blocks WHERE artifact_id = ?`, id); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM artifacts WHERE id = ?`, id); err != nil {
		return err
	}
	return tx.Commit()
}

// Sweep deletes expired artifacts and uploads abandoned for a day; call it
// now and then. It answers how many artifacts it removed.
func (s *ArtifactService) Sweep(ctx context.Context) (int, error) {
	now := s.Cfg.Now()
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM artifacts WHERE expires_at <= ? OR (status = 'uploading' AND created_at <= ?)`,
		now.Unix(), now.Add(-24*time.Hour).Unix())
	if err != nil {
		return 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, id := range ids {
		if err := s.Delete(ctx, id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// Get answers one artifact (any status).
func (s *ArtifactService) Get(ctx context.Context, id int64) (*ArtifactRecord, error) {
	return artifactScan(s.rdb.QueryRowContext(ctx, `SELECT `+artifactCols+` FROM artifacts WHERE id = ?`, id))
}

// RunArtifacts lists a run's finalized, unexpired artifacts, oldest first,
// for the REST "GET …/actions/runs/{run_id}/artifacts".
func (s *ArtifactService) RunArtifacts(ctx context.Context, runID int64) ([]*ArtifactRecord, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+artifactCols+` FROM artifacts WHERE run_id = ? AND status = 'finalized' AND expires_at > ? ORDER BY id`, runID, s.Cfg.Now().Unix())
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ArtifactRecord
	for rows.Next() {
		a, err := artifactScan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// ServeZip streams a finalized artifact as stored (upload-artifact@v4
// uploads a zip already), with Range support: the body of the REST
// "GET …/actions/artifacts/{id}/zip" once the caller checked access.
func (s *ArtifactService) ServeZip(w http.ResponseWriter, r *http.Request, id int64) error {
	a, err := s.Get(r.Context(), id)
	if err != nil {
		return err
	}
	if a.Status != ArtifactStatusFinal || !a.ExpiresAt.After(s.Cfg.Now()) {
		return sql.ErrNoRows
	}
	return s.serveContent(w, r, a)
}

func (s *ArtifactService) serveContent(w http.ResponseWriter, r *http.Request, a *ArtifactRecord) error {
	rd, err := s.openBlob(r.Context(), a.ID)
	if err != nil {
		return err
	}
	name := a.Name
	mt := a.MimeType
	if mt == "" {
		mt = "application/zip"
	}
	if mt == "application/zip" && !strings.HasSuffix(strings.ToLower(name), ".zip") {
		name += ".zip"
	}
	w.Header().Set("Content-Type", mt)
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	if a.Digest != "" {
		w.Header().Set("x-ms-meta-sha256", a.Digest)
	}
	http.ServeContent(w, r, "", a.FinalizedAt, rd)
	return nil
}

// ---- blob endpoints ----

func (s *ArtifactService) serveBlob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, ArtifactBlobPrefix), 10, 64)
	if err != nil {
		artifactBlobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	if err := artifactVerifyURL(s.Cfg.Key, r, s.Cfg.Now()); err != nil {
		artifactBlobError(w, http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request: "+err.Error())
		return
	}
	a, err := s.Get(r.Context(), id)
	if errors.Is(err, sql.ErrNoRows) {
		artifactBlobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	if err != nil {
		artifactBlobError(w, http.StatusInternalServerError, "InternalError", err.Error())
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if a.Status != ArtifactStatusFinal {
			artifactBlobError(w, http.StatusNotFound, "BlobNotFound", "The artifact is not finalized.")
			return
		}
		if err := s.serveContent(w, r, a); err != nil {
			artifactBlobError(w, http.StatusInternalServerError, "InternalError", err.Error())
		}
		return
	case http.MethodPut:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		artifactBlobError(w, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.")
		return
	}
	if a.Status != artifactStatusUpload {
		artifactBlobError(w, http.StatusConflict, "BlobImmutable", "The artifact is finalized and can no longer be written.")
		return
	}
	if s.Cfg.JobRunning != nil && !s.Cfg.JobRunning(r.Context(), a.JobID) {
		artifactBlobError(w, http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request: the job this upload URL was made for is over.")
		return
	}
	q := r.URL.Query()
	switch comp := q.Get("comp"); comp {
	case "block":
		blockID := q.Get("blockid")
		if err := artifactCheckBlockID(blockID); err != nil {
			artifactBlobError(w, http.StatusBadRequest, "InvalidQueryParameterValue", err.Error())
			return
		}
		err = s.stage(r.Context(), a, blockID, r.Body)
	case "blocklist":
		var body []byte
		body, err = io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if err == nil {
			var ids []string
			if ids, err = artifactParseBlockList(body); err != nil {
				artifactBlobError(w, http.StatusBadRequest, "InvalidXmlDocument", err.Error())
				return
			}
			err = s.commit(r.Context(), a, ids)
		}
	case "":
		if bt := r.Header.Get("x-ms-blob-type"); bt != "" && bt != "BlockBlob" {
			artifactBlobError(w, http.StatusBadRequest, "InvalidBlobType", "only BlockBlob is supported")
			return
		}
		if err = s.stage(r.Context(), a, "", r.Body); err == nil {
			err = s.commit(r.Context(), a, []string{""})
		}
	default:
		artifactBlobError(w, http.StatusBadRequest, "InvalidQueryParameterValue", "unsupported comp="+comp)
		return
	}
	var be *artifactBlobErr
	switch {
	case errors.As(err, &be):
		artifactBlobError(w, be.status, be.code, be.msg)
	case err != nil:
		artifactBlobError(w, http.StatusInternalServerError, "InternalError", err.Error())
	default:
		w.Header().Set("x-ms-request-server-encrypted", "false")
		w.WriteHeader(http.StatusCreated)
	}
}

type artifactBlobErr struct {
	status    int
	code, msg string
}

func (e *artifactBlobErr) Error() string { return e.msg }

// stage stores a block's bytes under a pending id and swaps it in whole, so
// a retried block replaces the earlier try atomically.
func (s *ArtifactService) stage(ctx context.Context, a *ArtifactRecord, blockID string, body io.Reader) error {
	var rnd [8]byte
	rand.Read(rnd[:])
	pending := "~" + hex.EncodeToString(rnd[:])
	cleanup := func() {
		s.db.ExecContext(context.WithoutCancel(ctx), `DELETE FROM artifact_blocks WHERE artifact_id = ? AND block_id = ?`, a.ID, pending)
	}
	buf := make([]byte, artifactPartSize)
	for part := 0; ; part++ {
		n, rerr := io.ReadFull(body, buf)
		if n > 0 {
			var mine, run int64
			err := s.db.QueryRowContext(ctx, `SELECT COALESCE(SUM(CASE WHEN b.artifact_id = ? THEN b.size END), 0), COALESCE(SUM(b.size), 0)
				FROM artifact_blocks b JOIN artifacts a ON a.id = b.artifact_id WHERE a.run_id = ?`, a.ID, a.RunID).Scan(&mine, &run)
			if err != nil {
				cleanup()
				return err
			}
			if mine+int64(n) > s.Cfg.MaxArtifactSize {
				cleanup()
				return &artifactBlobErr{http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", fmt.Sprintf("artifact %q is larger than the %d bytes allowed per artifact", a.Name, s.Cfg.MaxArtifactSize)}
			}
			if run+int64(n) > s.Cfg.MaxRunSize {
				cleanup()
				return &artifactBlobErr{http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", fmt.Sprintf("insufficient usage: the run's artifacts are larger than the %d bytes allowed per run", s.Cfg.MaxRunSize)}
			}
			if _, err := s.db.ExecContext(ctx, `INSERT INTO artifact_blocks (artifact_id, block_id, part, size, data) VALUES (?, ?, ?, ?, ?)`,
				a.ID, pending, part, n, buf[:n]); err != nil {
				cleanup()
				return err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			cleanup()
			return &artifactBlobErr{http.StatusBadRequest, "InvalidInput", "reading body: " + rerr.Error()}
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		cleanup()
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM artifact_blocks WHERE artifact_id = ? AND block_id = ?`, a.ID, blockID); err != nil {
		cleanup()
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE artifact_blocks SET block_id = ? WHERE artifact_id = ? AND block_id = ?`, blockID, a.ID, pending); err != nil {
		cleanup()
		return err
	}
	return tx.Commit()
}

// commit makes ids, in order, the artifact's content, drops every other
// block, and records the size and sha256 of the result.
func (s *ArtifactService) commit(ctx context.Context, a *ArtifactRecord, ids []string) error {
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return &artifactBlobErr{http.StatusBadRequest, "InvalidBlockList", "block " + id + " is listed twice"}
		}
		seen[id] = true
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE artifact_blocks SET seq = NULL WHERE artifact_id = ?`, a.ID); err != nil {
		return err
	}
	for i, id := range ids {
		res, err := tx.ExecContext(ctx, `UPDATE artifact_blocks SET seq = ? WHERE artifact_id = ? AND block_id = ?`, i, a.ID, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return &artifactBlobErr{http.StatusBadRequest, "InvalidBlockList", "the block list names block " + id + ", which was not uploaded"}
		}
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM artifact_blocks WHERE artifact_id = ? AND seq IS NULL AND block_id NOT LIKE '~%'`, a.ID); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Hash outside the write transaction: it reads the whole artifact.
	rd, err := s.openBlob(ctx, a.ID)
	if err != nil {
		return err
	}
	h := sha256.New()
	size, err := io.Copy(h, rd)
	if err != nil {
		return err
	}
	_, err = s.db.ExecContext(ctx, `UPDATE artifacts SET size = ?, digest = ? WHERE id = ? AND status = 'uploading'`, size, "sha256:"+hex.EncodeToString(h.Sum(nil)), a.ID)
	return err
}

// artifactBlobReader is an io.ReadSeeker over an artifact's committed parts,
// loading one part at a time, so http.ServeContent can answer Range.
type artifactBlobReader struct {
	ctx   context.Context
	db    *sql.DB
	parts []artifactPart
	size  int64
	pos   int64
	cur   int // index of the loaded part, -1 for none
	data  []byte
}

type artifactPart struct{ rowid, off, size int64 }

func (s *ArtifactService) openBlob(ctx context.Context, id int64) (*artifactBlobReader, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT id, size FROM artifact_blocks WHERE artifact_id = ? AND seq IS NOT NULL ORDER BY seq, part`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rd := &artifactBlobReader{ctx: ctx, db: s.rdb, cur: -1}
	for rows.Next() {
		var p artifactPart
		if err := rows.Scan(&p.rowid, &p.size); err != nil {
			return nil, err
		}
		p.off = rd.size
		rd.size += p.size
		rd.parts = append(rd.parts, p)
	}
	return rd, rows.Err()
}

func (rd *artifactBlobReader) Read(p []byte) (int, error) {
	if rd.pos >= rd.size {
		return 0, io.EOF
	}
	i := sort.Search(len(rd.parts), func(i int) bool { return rd.parts[i].off+rd.parts[i].size > rd.pos })
	if i != rd.cur {
		rd.data = nil
		if err := rd.db.QueryRowContext(rd.ctx, `SELECT data FROM artifact_blocks WHERE id = ?`, rd.parts[i].rowid).Scan(&rd.data); err != nil {
			return 0, err
		}
		if int64(len(rd.data)) != rd.parts[i].size {
			return 0, errors.New("artifact part changed while reading")
		}
		rd.cur = i
	}
	n := copy(p, rd.data[rd.pos-rd.parts[i].off:])
	rd.pos += int64(n)
	return n, nil
}

func (rd *artifactBlobReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += rd.pos
	case io.SeekEnd:
		off += rd.size
	default:
		return 0, errors.New("bad whence")
	}
	if off < 0 {
		return 0, errors.New("negative position")
	}
	rd.pos = off
	return off, nil
}

// ---- runtime token ----

// artifactRuntimeToken makes an ACTIONS_RUNTIME_TOKEN for a job: an HS256
// JWT whose "scp" claim carries "Actions.Results:<run id>:<job id>", the
// backend ids the toolkit sends back. artifactTokenAuth checks it.
func ArtifactRuntimeToken(key []byte, j ArtifactJob, now time.Time, ttl time.Duration) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{
		"scp":     fmt.Sprintf("Actions.GenericRead:00000000-0000-0000-0000-000000000000 Actions.Results:%d:%d", j.RunID, j.JobID),
		"run_id":  j.RunID,
		"repo_id": j.RepoID,
		"job_id":  j.JobID,
		"iat":     now.Unix(),
		"nbf":     now.Add(-time.Minute).Unix(),
		"exp":     now.Add(ttl).Unix(),
		"iss":     "shithub-actions",
		"aud":     "actions-runtime",
	})
	msg := head + "." + enc.EncodeToString(claims)
	m := hmac.New(sha256.New, key)
	io.WriteString(m, msg)
	return msg + "." + enc.EncodeToString(m.Sum(nil))
}

// artifactTokenAuth verifies tokens made by artifactRuntimeToken; it can be
// the artifactAuth callback as is.
func ArtifactTokenAuth(key []byte, now func() time.Time) artifactAuth {
	return func(_ context.Context, tok string) (ArtifactJob, error) {
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			return ArtifactJob{}, errors.New("not a JWT")
		}
		m := hmac.New(sha256.New, key)
		io.WriteString(m, parts[0]+"."+parts[1])
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || !hmac.Equal(sig, m.Sum(nil)) {
			return ArtifactJob{}, errors.New("bad token signature")
		}
		body, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			return ArtifactJob{}, errors.New("bad token claims")
		}
		var c struct {
			RunID  int64 `json:"run_id"`
			RepoID int64 `json:"repo_id"`
			JobID  int64 `json:"job_id"`
			Exp    int64 `json:"exp"`
		}
		if err := json.Unmarshal(body, &c); err != nil {
			return ArtifactJob{}, errors.New("bad token claims")
		}
		if now().Unix() >= c.Exp {
			return ArtifactJob{}, errors.New("token expired")
		}
		return ArtifactJob{RunID: c.RunID, RepoID: c.RepoID, JobID: c.JobID}, nil
	}
}
