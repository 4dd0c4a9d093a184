package jobsvc

// The cache service that actions/cache@v4 (and cache/restore, cache/save,
// setup-go/node/python's caching) talk to through @actions/cache, in both
// of its protocols:
//
//   - v2, when ACTIONS_CACHE_SERVICE_V2 is set (and GITHUB_SERVER_URL is not
//     "GHES"): Twirp JSON to <origin of ACTIONS_RESULTS_URL>/twirp/
//     github.actions.results.api.v1.CacheService/{CreateCacheEntry,
//     FinalizeCacheEntryUpload,GetCacheEntryDownloadURL}; the archive goes
//     through @azure/storage-blob's BlockBlobClient.uploadFile to the signed
//     URL (one "PUT" with x-ms-blob-type: BlockBlob up to 128 MiB, else
//     "PUT &comp=block" per 64 MiB and "PUT &comp=blocklist"), and comes
//     back with a plain GET.
//   - v1: REST under ${ACTIONS_CACHE_URL}_apis/artifactcache/: "GET
//     cache?keys=k1,k2&version=V" (200 + entry or 204), "POST caches"
//     {key,version,cacheSize} → {cacheId}, "PATCH caches/{id}" with
//     "Content-Range: bytes s-e/*" per chunk, "POST caches/{id}" {size}.
//
// Storage is a directory: one file per entry, written as <id>.part (v2
// blocks staged in <id>.blocks/) and renamed to <id> when finalized, plus
// index.json. The index is a JSON file rather than a table so the cache
// directory is self-contained: it can be wiped, moved or put on another
// disk without the database going out of step with it, and it needs no
// schema change. It is small (an entry is ~150 bytes; 10 GiB of caches is
// at most a few thousand entries), held in memory and rewritten (temp file
// + rename) on every change.

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"shithub-actions/internal/hostfile"
)

const (
	// cacheTwirpPrefix must be mounted at the root of ACTIONS_RESULTS_URL's host.
	CacheTwirpPrefix = "/twirp/github.actions.results.api.v1.CacheService/"
	// cacheV1Prefix is what ACTIONS_CACHE_URL (ending in "/") is followed by.
	CacheV1Prefix = "/_apis/artifactcache/"
	// cacheBlobPrefix is where the signed upload/download URLs point.
	CacheBlobPrefix = "/_apis/cacheblob/"

	cacheDefaultMaxTotal = 10 << 30
)

// cacheScope is what a runtime token may see: caches of its repository
// created on Ref or on DefaultRef (both full refs, "refs/heads/main").
// Saves go to Ref, and what they stage is charged to JobID.
type CacheScope struct {
	RepoID          int64
	Ref, DefaultRef string
	JobID           int64
}

// cacheAuth maps the bearer token to a scope; an error answers 401.
type cacheAuth func(ctx context.Context, bearer string) (CacheScope, error)

type CacheConfig struct {
	Dir       string
	Key       []byte // secret for signed URLs
	Auth      cacheAuth
	PublicURL string // as artifactConfig.PublicURL
	MaxTotal  int64  // default 10 GiB; least recently used entries go first
	// MaxIdle evicts entries not used for this long (GitHub: 7 days).
	MaxIdle     time.Duration
	UploadTTL   time.Duration // default 1 h; also how long a reservation holds
	DownloadTTL time.Duration // default 10 min
	Now         func() time.Time
	// StageLimit bounds what one job holds in uploads not yet finalized
	// (blocks, and parts being written or committed); default MaxTotal.
	StageLimit int64
	// JobRunning reports whether a job still runs. An upload is refused,
	// and its reservation dropped, once the job that made it is over, so a
	// signed upload URL dies with its job; nil takes every job as running.
	JobRunning func(ctx context.Context, jobID int64) bool
}

// cacheMaxPendingPerJob bounds the reservations one job holds at once:
// each costs an index entry and a file, whatever their sizes.
const cacheMaxPendingPerJob = 100

// cacheEntry is one entry of the index.
type cacheEntry struct {
	ID        int64     `json:"id"`
	RepoID    int64     `json:"repo_id"`
	Ref       string    `json:"ref"`
	Key       string    `json:"key"`
	Version   string    `json:"version"`
	Size      int64     `json:"size"`
	Final     bool      `json:"final"`
	CreatedAt time.Time `json:"created_at"`
	UsedAt    time.Time `json:"used_at"`
	JobID     int64     `json:"job_id,omitempty"` // the job that reserved it

	written []cacheRange // v1 chunks received, merged; not persisted
	// staged is what the entry's files (its part, its blocks) are charged
	// to its job, by path, until it is finalized or removed; removed is
	// set once it is out of the index. Both under cacheService.mu.
	staged  map[string]int64
	removed bool
}

type cacheRange struct{ start, end int64 } // [start, end)

type cacheIndex struct {
	NextID  int64         `json:"next_id"`
	Entries []*cacheEntry `json:"entries"`
}

type CacheService struct {
	Cfg CacheConfig
	mu  sync.Mutex
	idx cacheIndex
	// staged is the bytes each job holds in unfinished uploads, on disk or
	// arriving: the sum of its pending entries' staged maps, plus writes in
	// flight. At most cfg.StageLimit.
	staged map[int64]int64
}

func NewCacheService(cfg CacheConfig) (*CacheService, error) {
	if cfg.Dir == "" || cfg.Auth == nil {
		return nil, errors.New("cache: Dir and Auth are required")
	}
	if len(cfg.Key) < 16 {
		return nil, errors.New("cache: signing key too short")
	}
	if cfg.MaxTotal <= 0 {
		cfg.MaxTotal = cacheDefaultMaxTotal
	}
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 7 * 24 * time.Hour
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
	if cfg.StageLimit <= 0 {
		cfg.StageLimit = cfg.MaxTotal
	}
	cfg.PublicURL = strings.TrimRight(cfg.PublicURL, "/")
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, "entries")} {
		if err := hostfile.MkdirPrivate(d); err != nil {
			return nil, err
		}
	}
	s := &CacheService{Cfg: cfg, idx: cacheIndex{NextID: 1}, staged: map[int64]int64{}}
	b, err := os.ReadFile(filepath.Join(cfg.Dir, "index.json"))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s.idx); err != nil {
			return nil, fmt.Errorf("cache: %s: %w", filepath.Join(cfg.Dir, "index.json"), err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Uploads do not survive a restart; neither do files the index lost.
	keep := map[string]bool{}
	var entries []*cacheEntry
	for _, e := range s.idx.Entries {
		if fi, err := os.Stat(s.file(e.ID)); e.Final && err == nil && fi.Size() == e.Size {
			entries = append(entries, e)
			keep[strconv.FormatInt(e.ID, 10)] = true
		}
	}
	s.idx.Entries = entries
	names, _ := os.ReadDir(filepath.Join(cfg.Dir, "entries"))
	for _, n := range names {
		if !keep[n.Name()] {
			os.RemoveAll(filepath.Join(cfg.Dir, "entries", n.Name()))
		}
	}
	s.evictLocked(nil)
	return s, s.saveLocked()
}

func (s *CacheService) file(id int64) string {
	return filepath.Join(s.Cfg.Dir, "entries", strconv.FormatInt(id, 10))
}
func (s *CacheService) PartFile(id int64) string { return s.file(id) + ".part" }
func (s *CacheService) blockDir(id int64) string { return s.file(id) + ".blocks" }

func (s *CacheService) saveLocked() error {
	b, err := json.Marshal(&s.idx)
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.Cfg.Dir, "index.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.Cfg.Dir, "index.json"))
}

func (s *CacheService) removeLocked(e *cacheEntry) {
	for i, x := range s.idx.Entries {
		if x == e {
			s.idx.Entries = append(s.idx.Entries[:i], s.idx.Entries[i+1:]...)
			break
		}
	}
	s.unstageLocked(e, "")
	e.removed = true
	os.Remove(s.file(e.ID))
	os.Remove(s.PartFile(e.ID))
	os.RemoveAll(s.blockDir(e.ID))
}

// evictLocked drops idle entries, abandoned reservations, then least
// recently used finalized entries (never keep) while over MaxTotal.
func (s *CacheService) evictLocked(keep *cacheEntry) {
	now := s.Cfg.Now()
	var total int64
	for _, e := range append([]*cacheEntry(nil), s.idx.Entries...) {
		switch {
		case e == keep:
		case e.Final && now.Sub(e.UsedAt) > s.Cfg.MaxIdle:
			s.removeLocked(e)
		case !e.Final && now.Sub(e.CreatedAt) > s.Cfg.UploadTTL+time.Minute:
			s.removeLocked(e)
		}
	}
	for _, e := range s.idx.Entries {
		if e.Final {
			total += e.Size
		}
	}
	if total <= s.Cfg.MaxTotal {
		return
	}
	lru := make([]*cacheEntry, 0, len(s.idx.Entries))
	for _, e := range s.idx.Entries {
		if e.Final && e != keep {
			lru = append(lru, e)
		}
	}
	sort.Slice(lru, func(i, j int) bool { return lru[i].UsedAt.Before(lru[j].UsedAt) })
	for _, e := range lru {
		if total <= s.Cfg.MaxTotal {
			break
		}
		total -= e.Size
		s.removeLocked(e)
	}
}

// Sweep runs the idle and abandoned-upload eviction, and drops the
// unfinished uploads of jobs that are over; call it now and then.
func (s *CacheService) Sweep() error {
	var over map[int64]bool
	if s.Cfg.JobRunning != nil {
		s.mu.Lock()
		jobs := map[int64]bool{}
		for _, e := range s.idx.Entries {
			if !e.Final {
				jobs[e.JobID] = true
			}
		}
		s.mu.Unlock()
		over = map[int64]bool{}
		for j := range jobs {
			over[j] = !s.Cfg.JobRunning(context.Background(), j)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range append([]*cacheEntry(nil), s.idx.Entries...) {
		if !e.Final && over[e.JobID] {
			s.removeLocked(e)
		}
	}
	s.evictLocked(nil)
	return s.saveLocked()
}

// cacheStagingErr answers an upload that would take its job past
// StageLimit.
func (s *CacheService) stagingErr() error {
	return &artifactBlobErr{http.StatusRequestEntityTooLarge, "RequestBodyTooLarge",
		fmt.Sprintf("this job's unfinished cache uploads would hold more than %d bytes", s.Cfg.StageLimit)}
}

// chargeLocked adds n bytes to what job has staged, unless that passes
// StageLimit.
func (s *CacheService) chargeLocked(job, n int64) error {
	if s.staged[job]+n > s.Cfg.StageLimit {
		return s.stagingErr()
	}
	s.staged[job] += n
	return nil
}

func (s *CacheService) releaseLocked(job, n int64) {
	if s.staged[job] -= n; s.staged[job] <= 0 {
		delete(s.staged, job)
	}
}

// unstageLocked stops charging e's job for e's files under prefix (all
// of them for "").
func (s *CacheService) unstageLocked(e *cacheEntry, prefix string) {
	for name, n := range e.staged {
		if strings.HasPrefix(name, prefix) {
			s.releaseLocked(e.JobID, n)
			delete(e.staged, name)
		}
	}
}

// setStagedLocked records that e's file name now holds n bytes already
// charged to e's job, and releases what the file held before.
func (s *CacheService) setStagedLocked(e *cacheEntry, name string, n int64) {
	if e.staged == nil {
		e.staged = map[string]int64{}
	}
	s.releaseLocked(e.JobID, e.staged[name])
	e.staged[name] = n
}

// cacheStagingWriter charges each write to a job before it passes it on,
// so a job's staged bytes stay within StageLimit while they arrive.
type cacheStagingWriter struct {
	s   *CacheService
	job int64
	w   io.Writer
	n   int64 // charged so far
}

func (w *cacheStagingWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	err := w.s.chargeLocked(w.job, int64(len(p)))
	w.s.mu.Unlock()
	if err != nil {
		return 0, err
	}
	w.n += int64(len(p))
	return w.w.Write(p)
}

// Entries lists a repository's finalized caches, newest first, for a REST
// "GET /repos/{o}/{r}/actions/caches".
func (s *CacheService) Entries(repoID int64) []cacheEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []cacheEntry
	for _, e := range s.idx.Entries {
		if e.RepoID == repoID && e.Final {
			c := *e
			c.written = nil
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	return out
}

// Delete removes a repository's cache entry; false if there is none.
func (s *CacheService) Delete(repoID, id int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.idx.Entries {
		if e.ID == id && e.RepoID == repoID {
			s.removeLocked(e)
			return true, s.saveLocked()
		}
	}
	return false, nil
}

// cacheCheckKey is @actions/cache's checkKey, server side.
func cacheCheckKey(k string) error {
	if k == "" {
		return errors.New("key is required")
	}
	if len(k) > 512 {
		return fmt.Errorf("key %q is longer than 512 characters", k)
	}
	if strings.Contains(k, ",") {
		return fmt.Errorf("key %q contains a comma", k)
	}
	return nil
}

// lookup finds the entry to restore: in the job's ref, then in the default
// branch, the exact primary key first, then each restore key as a prefix,
// newest first; the version must match. GitHub's "Matching a cache key".
func (s *CacheService) lookup(sc CacheScope, keys []string, version string) *cacheEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := []string{sc.Ref}
	if sc.DefaultRef != "" && sc.DefaultRef != sc.Ref {
		refs = append(refs, sc.DefaultRef)
	}
	for _, ref := range refs {
		for i, k := range keys {
			var best *cacheEntry
			for _, e := range s.idx.Entries {
				if !e.Final || e.RepoID != sc.RepoID || e.Ref != ref || e.Version != version {
					continue
				}
				if i == 0 && e.Key != k || i > 0 && !strings.HasPrefix(e.Key, k) {
					continue
				}
				if best == nil || e.CreatedAt.After(best.CreatedAt) || e.CreatedAt.Equal(best.CreatedAt) && e.ID > best.ID {
					best = e
				}
			}
			if best != nil {
				best.UsedAt = s.Cfg.Now()
				s.saveLocked()
				c := *best
				return &c
			}
		}
	}
	return nil
}

var (
	cacheErrExists   = errors.New("cache entry already exists")
	cacheErrTooLarge = errors.New("cache too large")
)

// reserve starts an entry for key+version in the job's ref. A finalized
// entry is immutable, and a fresh reservation belongs to whoever made it.
func (s *CacheService) Reserve(sc CacheScope, key, version string, size int64) (*cacheEntry, error) {
	if size > s.Cfg.MaxTotal {
		return nil, fmt.Errorf("%w: cache size of %d bytes is over the %d bytes limit", cacheErrTooLarge, size, s.Cfg.MaxTotal)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictLocked(nil)
	pending := 0
	for _, e := range s.idx.Entries {
		if !e.Final && e.JobID == sc.JobID {
			pending++
		}
	}
	if pending >= cacheMaxPendingPerJob {
		return nil, fmt.Errorf("%w: this job has %d cache uploads unfinished, the most one job may have", cacheErrTooLarge, pending)
	}
	for _, e := range s.idx.Entries {
		if e.RepoID == sc.RepoID && e.Ref == sc.Ref && e.Key == key && e.Version == version {
			if e.Final {
				return nil, fmt.Errorf("%w: cache entry with key %q and version %s already exists", cacheErrExists, key, version)
			}
			return nil, fmt.Errorf("%w: cache entry with key %q and version %s is being uploaded by another job", cacheErrExists, key, version)
		}
	}
	now := s.Cfg.Now()
	e := &cacheEntry{ID: s.idx.NextID, RepoID: sc.RepoID, Ref: sc.Ref, Key: key, Version: version, CreatedAt: now, UsedAt: now, JobID: sc.JobID}
	s.idx.NextID++
	f, err := os.OpenFile(s.PartFile(e.ID), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	f.Close()
	s.idx.Entries = append(s.idx.Entries, e)
	return e, s.saveLocked()
}

// pending answers the unfinalized entry id (or by key+version if id is 0).
func (s *CacheService) pending(sc CacheScope, id int64, key, version string) *cacheEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.idx.Entries {
		if e.Final || e.RepoID != sc.RepoID || e.Ref != sc.Ref {
			continue
		}
		if id != 0 && e.ID == id || id == 0 && e.Key == key && e.Version == version {
			return e
		}
	}
	return nil
}

// entryByID is the entry id itself, not a copy: hold s.mu to read its
// fields that change (Final, written, staged).
func (s *CacheService) entryByID(id int64) *cacheEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.idx.Entries {
		if e.ID == id {
			return e
		}
	}
	return nil
}

// finalize checks the upload is size bytes, renames it into place and
// makes room.
func (s *CacheService) finalize(e *cacheEntry, size int64, checkRanges bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Final {
		return fmt.Errorf("%w: cache entry %d is already finalized", cacheErrExists, e.ID)
	}
	fi, err := os.Stat(s.PartFile(e.ID))
	if err != nil {
		return fmt.Errorf("cache entry %d has no upload", e.ID)
	}
	if fi.Size() != size {
		return fmt.Errorf("size %d does not match the %d bytes uploaded", size, fi.Size())
	}
	if checkRanges && size > 0 && (len(e.written) != 1 || e.written[0] != cacheRange{0, size}) {
		return fmt.Errorf("the uploaded chunks do not cover bytes 0-%d", size-1)
	}
	if size > s.Cfg.MaxTotal {
		return fmt.Errorf("%w: cache size of %d bytes is over the %d bytes limit", cacheErrTooLarge, size, s.Cfg.MaxTotal)
	}
	if err := os.Rename(s.PartFile(e.ID), s.file(e.ID)); err != nil {
		return err
	}
	os.RemoveAll(s.blockDir(e.ID))
	// From here the bytes count against MaxTotal, not the job's staging.
	s.unstageLocked(e, "")
	e.Final, e.Size, e.written = true, size, nil
	e.UsedAt = s.Cfg.Now()
	s.evictLocked(e)
	return s.saveLocked()
}

func (s *CacheService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, CacheTwirpPrefix):
		s.serveTwirp(w, r, strings.TrimPrefix(p, CacheTwirpPrefix))
	case strings.HasPrefix(p, CacheV1Prefix):
		s.serveV1(w, r, strings.TrimPrefix(p, CacheV1Prefix))
	case strings.HasPrefix(p, CacheBlobPrefix):
		s.serveBlob(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *CacheService) scope(r *http.Request) (CacheScope, error) {
	tok := artifactBearer(r)
	if tok == "" {
		return CacheScope{}, errors.New("missing bearer token")
	}
	sc, err := s.Cfg.Auth(r.Context(), tok)
	if err != nil {
		return CacheScope{}, errors.New("invalid runtime token")
	}
	return sc, nil
}

func (s *CacheService) uploadURL(r *http.Request, id int64) string {
	return ArtifactSignURL(s.Cfg.Key, artifactBase(s.Cfg.PublicURL, r), http.MethodPut, CacheBlobPrefix+strconv.FormatInt(id, 10), s.Cfg.Now(), s.Cfg.UploadTTL)
}

func (s *CacheService) downloadURL(r *http.Request, id int64) string {
	return ArtifactSignURL(s.Cfg.Key, artifactBase(s.Cfg.PublicURL, r), http.MethodGet, CacheBlobPrefix+strconv.FormatInt(id, 10), s.Cfg.Now(), s.Cfg.DownloadTTL)
}

// ---- v2 Twirp ----

type cacheTwirpReq struct {
	Key         string        `json:"key"`
	RestoreKeys []string      `json:"restore_keys"`
	Version     string        `json:"version"`
	SizeBytes   artifactInt64 `json:"size_bytes"`
}

func (s *CacheService) serveTwirp(w http.ResponseWriter, r *http.Request, method string) {
	var req cacheTwirpReq
	if err := artifactDecodeTwirp(r, &req); err != nil {
		artifactWriteTwirp(w, nil, err)
		return
	}
	sc, err := s.scope(r)
	if err != nil {
		artifactWriteTwirp(w, nil, artifactTwirpf("unauthenticated", "%v", err))
		return
	}
	if err := cacheCheckKey(req.Key); err != nil {
		artifactWriteTwirp(w, nil, artifactTwirpf("invalid_argument", "%v", err))
		return
	}
	if req.Version == "" {
		artifactWriteTwirp(w, nil, artifactTwirpf("invalid_argument", "version is required"))
		return
	}
	switch method {
	case "CreateCacheEntry":
		e, err := s.Reserve(sc, req.Key, req.Version, 0)
		switch {
		case errors.Is(err, cacheErrExists):
			artifactWriteTwirp(w, nil, artifactTwirpf("already_exists", "%v", err))
		case err != nil:
			artifactWriteTwirp(w, nil, err)
		default:
			artifactWriteTwirp(w, map[string]any{"ok": true, "signed_upload_url": s.uploadURL(r, e.ID)}, nil)
		}
	case "FinalizeCacheEntryUpload":
		e := s.pending(sc, 0, req.Key, req.Version)
		if e == nil {
			artifactWriteTwirp(w, nil, artifactTwirpf("not_found", "no cache upload for key %q and version %s", req.Key, req.Version))
			return
		}
		if err := s.finalize(e, int64(req.SizeBytes), false); err != nil {
			artifactWriteTwirp(w, map[string]any{"ok": false, "entry_id": "0", "message": err.Error()}, nil)
			return
		}
		artifactWriteTwirp(w, map[string]any{"ok": true, "entry_id": strconv.FormatInt(e.ID, 10)}, nil)
	case "GetCacheEntryDownloadURL":
		if len(req.RestoreKeys) > 9 {
			artifactWriteTwirp(w, nil, artifactTwirpf("invalid_argument", "keys are limited to a maximum of 10"))
			return
		}
		e := s.lookup(sc, append([]string{req.Key}, req.RestoreKeys...), req.Version)
		if e == nil {
			artifactWriteTwirp(w, map[string]any{"ok": false, "signed_download_url": "", "matched_key": ""}, nil)
			return
		}
		artifactWriteTwirp(w, map[string]any{"ok": true, "signed_download_url": s.downloadURL(r, e.ID), "matched_key": e.Key}, nil)
	default:
		artifactWriteTwirp(w, nil, artifactTwirpf("bad_route", "no handler for path %q", r.URL.Path))
	}
}

// ---- v1 REST ----

func cacheJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if v != nil {
		json.NewEncoder(w).Encode(v)
	}
}

func cacheV1Error(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	cacheJSON(w, code, map[string]any{"message": msg, "typeName": "", "errorCode": 0})
}

type cacheV1Entry struct {
	CacheKey        string `json:"cacheKey"`
	Scope           string `json:"scope"`
	CacheVersion    string `json:"cacheVersion"`
	CreationTime    string `json:"creationTime"`
	ArchiveLocation string `json:"archiveLocation,omitempty"`
}

func (s *CacheService) serveV1(w http.ResponseWriter, r *http.Request, rest string) {
	sc, err := s.scope(r)
	if err != nil {
		cacheV1Error(w, http.StatusUnauthorized, "%v", err)
		return
	}
	switch {
	case rest == "cache" && r.Method == http.MethodGet:
		keys := strings.Split(r.URL.Query().Get("keys"), ",")
		version := r.URL.Query().Get("version")
		if len(keys) > 10 {
			cacheV1Error(w, http.StatusBadRequest, "keys are limited to a maximum of 10")
			return
		}
		for _, k := range keys {
			if err := cacheCheckKey(k); err != nil {
				cacheV1Error(w, http.StatusBadRequest, "%v", err)
				return
			}
		}
		e := s.lookup(sc, keys, version)
		if e == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		cacheJSON(w, http.StatusOK, cacheV1Entry{e.Key, e.Ref, e.Version, e.CreatedAt.UTC().Format(time.RFC3339Nano), s.downloadURL(r, e.ID)})
	case rest == "caches" && r.Method == http.MethodGet:
		// printCachesListForDiagnostics: same-prefix entries in scope.
		key := r.URL.Query().Get("key")
		list := []cacheV1Entry{}
		for _, e := range s.Entries(sc.RepoID) {
			if strings.HasPrefix(e.Key, key) && (e.Ref == sc.Ref || e.Ref == sc.DefaultRef) {
				list = append(list, cacheV1Entry{e.Key, e.Ref, e.Version, e.CreatedAt.UTC().Format(time.RFC3339Nano), ""})
			}
		}
		cacheJSON(w, http.StatusOK, map[string]any{"totalCount": len(list), "artifactCaches": list})
	case rest == "caches" && r.Method == http.MethodPost:
		var req struct {
			Key       string `json:"key"`
			Version   string `json:"version"`
			CacheSize int64  `json:"cacheSize"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
			cacheV1Error(w, http.StatusBadRequest, "invalid JSON: %v", err)
			return
		}
		if err := cacheCheckKey(req.Key); err != nil {
			cacheV1Error(w, http.StatusBadRequest, "%v", err)
			return
		}
		if req.Version == "" {
			cacheV1Error(w, http.StatusBadRequest, "version is required")
			return
		}
		e, err := s.Reserve(sc, req.Key, req.Version, req.CacheSize)
		switch {
		case errors.Is(err, cacheErrTooLarge):
			cacheV1Error(w, http.StatusBadRequest, "%v", err)
		case errors.Is(err, cacheErrExists):
			cacheV1Error(w, http.StatusConflict, "%v", err)
		case err != nil:
			cacheV1Error(w, http.StatusInternalServerError, "%v", err)
		default:
			cacheJSON(w, http.StatusCreated, map[string]int64{"cacheId": e.ID})
		}
	case strings.HasPrefix(rest, "caches/"):
		id, err := strconv.ParseInt(strings.TrimPrefix(rest, "caches/"), 10, 64)
		if err != nil {
			cacheV1Error(w, http.StatusNotFound, "no such cache")
			return
		}
		e := s.pending(sc, id, "", "")
		if e == nil {
			cacheV1Error(w, http.StatusNotFound, "cache %d is not being uploaded in this scope", id)
			return
		}
		switch r.Method {
		case http.MethodPatch:
			s.v1Chunk(w, r, e)
		case http.MethodPost:
			var req struct {
				Size int64 `json:"size"`
			}
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
				cacheV1Error(w, http.StatusBadRequest, "invalid JSON: %v", err)
				return
			}
			if err := s.finalize(e, req.Size, true); err != nil {
				cacheV1Error(w, http.StatusBadRequest, "%v", err)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		default:
			cacheV1Error(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
		}
	default:
		cacheV1Error(w, http.StatusNotFound, "no route %s %s", r.Method, r.URL.Path)
	}
}

// cacheParseContentRange parses "bytes start-end/total-or-*" (end inclusive).
func cacheParseContentRange(h string) (start, end int64, err error) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, 0, fmt.Errorf("Content-Range %q: want \"bytes start-end/*\"", h)
	}
	rng, total, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, fmt.Errorf("Content-Range %q: no total", h)
	}
	a, b, ok := strings.Cut(rng, "-")
	if !ok {
		return 0, 0, fmt.Errorf("Content-Range %q: no range", h)
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || end < start || a[0] == '+' || b[0] == '+' {
		return 0, 0, fmt.Errorf("Content-Range %q: bad range", h)
	}
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil || total[0] == '+' || n <= end {
			return 0, 0, fmt.Errorf("Content-Range %q: bad total", h)
		}
	}
	return start, end, nil
}

func (s *CacheService) v1Chunk(w http.ResponseWriter, r *http.Request, e *cacheEntry) {
	start, end, err := cacheParseContentRange(r.Header.Get("Content-Range"))
	if err != nil {
		cacheV1Error(w, http.StatusBadRequest, "%v", err)
		return
	}
	if end+1 > s.Cfg.MaxTotal {
		cacheV1Error(w, http.StatusRequestEntityTooLarge, "cache is larger than the %d bytes limit", s.Cfg.MaxTotal)
		return
	}
	// The part file is charged for its length: a chunk past the end
	// charges the growth before it is written.
	s.mu.Lock()
	part := s.PartFile(e.ID)
	var err2 error
	if cur := e.staged[part]; !e.removed && end+1 > cur {
		if err2 = s.chargeLocked(e.JobID, end+1-cur); err2 == nil {
			if e.staged == nil {
				e.staged = map[string]int64{}
			}
			e.staged[part] = end + 1
		}
	}
	s.mu.Unlock()
	if err2 != nil {
		cacheV1Error(w, http.StatusRequestEntityTooLarge, "%v", err2)
		return
	}
	f, err := os.OpenFile(part, os.O_WRONLY, 0)
	if err != nil {
		cacheV1Error(w, http.StatusNotFound, "cache %d upload is gone", e.ID)
		return
	}
	defer f.Close()
	n, err := io.Copy(io.NewOffsetWriter(f, start), io.LimitReader(r.Body, end-start+2))
	if err != nil {
		cacheV1Error(w, http.StatusInternalServerError, "writing chunk: %v", err)
		return
	}
	if n != end-start+1 {
		cacheV1Error(w, http.StatusBadRequest, "chunk is %d bytes, Content-Range says %d", n, end-start+1)
		return
	}
	s.mu.Lock()
	e.written = cacheAddRange(e.written, cacheRange{start, end + 1})
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// cacheAddRange merges r into a sorted list of disjoint ranges.
func cacheAddRange(rs []cacheRange, r cacheRange) []cacheRange {
	rs = append(rs, r)
	sort.Slice(rs, func(i, j int) bool { return rs[i].start < rs[j].start })
	out := rs[:1]
	for _, x := range rs[1:] {
		last := &out[len(out)-1]
		if x.start <= last.end {
			last.end = max(last.end, x.end)
		} else {
			out = append(out, x)
		}
	}
	return out
}

// ---- blob endpoints ----

func (s *CacheService) serveBlob(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, CacheBlobPrefix), 10, 64)
	if err != nil {
		artifactBlobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	if err := artifactVerifyURL(s.Cfg.Key, r, s.Cfg.Now()); err != nil {
		artifactBlobError(w, http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request: "+err.Error())
		return
	}
	e := s.entryByID(id)
	if e == nil {
		artifactBlobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	s.mu.Lock()
	final, created := e.Final, e.CreatedAt
	s.mu.Unlock()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !final {
			artifactBlobError(w, http.StatusNotFound, "BlobNotFound", "The cache entry is not finalized.")
			return
		}
		f, err := os.Open(s.file(id))
		if err != nil {
			artifactBlobError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "", created, f)
		return
	case http.MethodPut:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		artifactBlobError(w, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support the specified HTTP verb.")
		return
	}
	if final {
		artifactBlobError(w, http.StatusConflict, "BlobImmutable", "The cache entry is finalized and can no longer be written.")
		return
	}
	// The URL was signed for the job that reserved the entry; once that
	// job is over nobody may write to it, and the reservation goes.
	if s.Cfg.JobRunning != nil && !s.Cfg.JobRunning(r.Context(), e.JobID) {
		s.drop(e)
		artifactBlobError(w, http.StatusForbidden, "AuthenticationFailed", "Server failed to authenticate the request: the job this upload URL was made for is over.")
		return
	}
	q := r.URL.Query()
	switch comp := q.Get("comp"); comp {
	case "block":
		bid := q.Get("blockid")
		if err := artifactCheckBlockID(bid); err != nil {
			artifactBlobError(w, http.StatusBadRequest, "InvalidQueryParameterValue", err.Error())
			return
		}
		if err = os.MkdirAll(s.blockDir(id), 0o700); err == nil {
			err = s.writeStaged(e, filepath.Join(s.blockDir(id), hex.EncodeToString([]byte(bid))), r.Body)
		}
	case "blocklist":
		body, rerr := io.ReadAll(io.LimitReader(r.Body, 8<<20))
		if rerr != nil {
			artifactBlobError(w, http.StatusBadRequest, "InvalidInput", rerr.Error())
			return
		}
		ids, perr := artifactParseBlockList(body)
		if perr != nil {
			artifactBlobError(w, http.StatusBadRequest, "InvalidXmlDocument", perr.Error())
			return
		}
		err = s.commitBlocks(e, ids)
	case "":
		if bt := r.Header.Get("x-ms-blob-type"); bt != "" && bt != "BlockBlob" {
			artifactBlobError(w, http.StatusBadRequest, "InvalidBlobType", "only BlockBlob is supported")
			return
		}
		err = s.writeStaged(e, s.PartFile(id), r.Body)
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
		w.WriteHeader(http.StatusCreated)
	}
}

// drop removes an unfinished entry whose job is over.
func (s *CacheService) drop(e *cacheEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !e.removed && !e.Final {
		s.removeLocked(e)
		s.saveLocked()
	}
}

var cacheErrGone = &artifactBlobErr{http.StatusNotFound, "BlobNotFound", "The cache upload is gone: it was finalized or dropped meanwhile."}

// writeStaged writes body to name (a block, or the part of a single-PUT
// upload) via a temporary file, charging its bytes to e's job as they
// come; one body may not pass MaxTotal. A rewrite of name replaces it,
// and what it was charged.
func (s *CacheService) writeStaged(e *cacheEntry, name string, body io.Reader) error {
	f, err := os.CreateTemp(filepath.Dir(name), filepath.Base(name)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	sw := &cacheStagingWriter{s: s, job: e.JobID, w: f}
	n, err := io.Copy(sw, io.LimitReader(body, s.Cfg.MaxTotal+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > s.Cfg.MaxTotal {
		err = &artifactBlobErr{http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", fmt.Sprintf("cache is larger than the %d bytes limit", s.Cfg.MaxTotal)}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && (e.removed || e.Final) {
		err = cacheErrGone
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		s.releaseLocked(e.JobID, sw.n)
		return err
	}
	s.setStagedLocked(e, name, sw.n)
	return nil
}

// commitBlocks makes the blocks ids, in order, the entry's part, and drops
// the staged blocks (listed or not), as Put Block List does. A block may
// be listed once, and the result may not pass MaxTotal: the bytes a
// commit makes are no more than the bytes staged.
func (s *CacheService) commitBlocks(e *cacheEntry, ids []string) error {
	seen := make(map[string]bool, len(ids))
	for _, bid := range ids {
		if seen[bid] {
			return &artifactBlobErr{http.StatusBadRequest, "InvalidBlockList", "block " + bid + " is listed twice"}
		}
		seen[bid] = true
	}
	f, err := os.CreateTemp(filepath.Dir(s.PartFile(e.ID)), filepath.Base(s.PartFile(e.ID))+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	var total int64
	for _, bid := range ids {
		b, err := os.Open(filepath.Join(s.blockDir(e.ID), hex.EncodeToString([]byte(bid))))
		if err != nil {
			f.Close()
			return &artifactBlobErr{http.StatusBadRequest, "InvalidBlockList", "the block list names block " + bid + ", which was not uploaded"}
		}
		n, err := io.Copy(f, io.LimitReader(b, s.Cfg.MaxTotal-total+1))
		b.Close()
		total += n
		if err == nil && total > s.Cfg.MaxTotal {
			err = &artifactBlobErr{http.StatusRequestEntityTooLarge, "RequestBodyTooLarge", fmt.Sprintf("the block list makes a cache larger than the %d bytes limit", s.Cfg.MaxTotal)}
		}
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.removed || e.Final {
		return cacheErrGone
	}
	if err := os.Rename(tmp, s.PartFile(e.ID)); err != nil {
		return err
	}
	// The part takes over the blocks' charge: it is no bigger than they.
	s.unstageLocked(e, s.blockDir(e.ID)+string(filepath.Separator))
	s.staged[e.JobID] += total
	s.setStagedLocked(e, s.PartFile(e.ID), total)
	os.RemoveAll(s.blockDir(e.ID))
	return nil
}
