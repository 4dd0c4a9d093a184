package jobsvc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type cacheTestEnv struct {
	t    *testing.T
	dir  string
	Cfg  CacheConfig
	svc  *CacheService
	srv  *httptest.Server
	mu   sync.Mutex
	now  time.Time
	toks map[string]CacheScope
	over map[int64]bool // jobs that are over
}

// Tokens: "main" and "feature" on repo 1 (default branch main), "other"
// on repo 1's branch other, "repo2" on repo 2's main; jobs 1 to 4.
func newCacheTestEnv(t *testing.T, mod func(*CacheConfig)) *cacheTestEnv {
	t.Helper()
	e := &cacheTestEnv{t: t, dir: t.TempDir(), now: time.Unix(1_700_000_000, 0), toks: map[string]CacheScope{
		"main":    {1, "refs/heads/main", "refs/heads/main", 1},
		"feature": {1, "refs/heads/feature", "refs/heads/main", 2},
		"other":   {1, "refs/heads/other", "refs/heads/main", 3},
		"repo2":   {2, "refs/heads/main", "refs/heads/main", 4},
	}, over: map[int64]bool{}}
	e.Cfg = CacheConfig{
		Dir: e.dir,
		Key: []byte("0123456789abcdef0123456789abcdef"),
		Auth: func(_ context.Context, tok string) (CacheScope, error) {
			sc, ok := e.toks[tok]
			if !ok {
				return sc, errors.New("no such token")
			}
			return sc, nil
		},
		Now: e.clock,
		JobRunning: func(_ context.Context, job int64) bool {
			e.mu.Lock()
			defer e.mu.Unlock()
			return !e.over[job]
		},
	}
	if mod != nil {
		mod(&e.Cfg)
	}
	e.open()
	return e
}

func (e *cacheTestEnv) open() {
	e.t.Helper()
	svc, err := NewCacheService(e.Cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.svc = svc
	if e.srv != nil {
		e.srv.Close()
	}
	mux := http.NewServeMux()
	for _, p := range []string{CacheTwirpPrefix, CacheV1Prefix, CacheBlobPrefix} {
		mux.Handle(p, svc)
	}
	e.srv = httptest.NewServer(mux)
	e.t.Cleanup(e.srv.Close)
}

func (e *cacheTestEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *cacheTestEnv) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

// v1 is a request of @actions/cache's legacy client: ${ACTIONS_CACHE_URL}_apis/artifactcache/<resource>.
func (e *cacheTestEnv) v1(tok, method, resource string, hdr map[string]string, body []byte, want int) []byte {
	e.t.Helper()
	h := map[string]string{"Accept": "application/json;api-version=6.0-preview.1", "Authorization": "Bearer " + tok}
	for k, v := range hdr {
		h[k] = v
	}
	resp, b := ArtifactDo(e.t, method, e.srv.URL+"/_apis/artifactcache/"+resource, h, body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status = %d, want %d (%s)", method, resource, resp.StatusCode, want, b)
	}
	return b
}

// saveV1 is saveCacheV1: reserve, PATCH chunks (4 at a time, as the
// client's uploadConcurrency), commit.
func (e *cacheTestEnv) saveV1(tok, key, version string, data []byte, chunk int) int64 {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"key": key, "version": version, "cacheSize": len(data)})
	var res struct{ CacheID int64 }
	json.Unmarshal(e.v1(tok, "POST", "caches", map[string]string{"Content-Type": "application/json"}, body, 201), &res)
	if res.CacheID == 0 {
		e.t.Fatalf("POST caches: no cacheId")
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		wg.Add(1)
		sem <- struct{}{}
		go func(off, end int) {
			defer wg.Done()
			defer func() { <-sem }()
			h := map[string]string{"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("bytes %d-%d/*", off, end-1), "Authorization": "Bearer " + tok}
			resp, b := ArtifactDo(e.t, "PATCH", fmt.Sprintf("%s/_apis/artifactcache/caches/%d", e.srv.URL, res.CacheID), h, data[off:end])
			if resp.StatusCode != 204 {
				e.t.Errorf("PATCH caches/%d %d-%d: status = %d, want 204 (%s)", res.CacheID, off, end-1, resp.StatusCode, b)
			}
		}(off, end)
	}
	wg.Wait()
	body, _ = json.Marshal(map[string]any{"size": len(data)})
	e.v1(tok, "POST", fmt.Sprintf("caches/%d", res.CacheID), map[string]string{"Content-Type": "application/json"}, body, 204)
	return res.CacheID
}

// restoreV1 is getCacheEntry + downloadCache: the matched key and bytes, or "" on 204.
func (e *cacheTestEnv) restoreV1(tok, version string, keys ...string) (string, []byte) {
	e.t.Helper()
	resp, b := ArtifactDo(e.t, "GET", e.srv.URL+"/_apis/artifactcache/cache?keys="+url.QueryEscape(strings.Join(keys, ","))+"&version="+version,
		map[string]string{"Authorization": "Bearer " + tok}, nil)
	if resp.StatusCode == 204 {
		return "", nil
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET cache: status = %d, want 200 or 204 (%s)", resp.StatusCode, b)
	}
	var ent cacheV1Entry
	json.Unmarshal(b, &ent)
	resp, data := ArtifactDo(e.t, "GET", ent.ArchiveLocation, nil, nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != fmt.Sprint(len(data)) {
		e.t.Fatalf("GET archiveLocation: status = %d, Content-Length %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Length"), len(data))
	}
	return ent.CacheKey, data
}

const CacheSvc = "github.actions.results.api.v1.CacheService"

func (e *cacheTestEnv) twirp(tok, method string, body map[string]any, want int) map[string]any {
	e.t.Helper()
	code, out := ArtifactTwirp(e.t, e.srv.URL, CacheSvc, method, tok, body)
	if code != want {
		e.t.Fatalf("POST %s: status = %d, want %d (%v)", method, code, want, out)
	}
	return out
}

func TestCacheV1Flow(t *testing.T) {
	e := newCacheTestEnv(t, nil)
	data := ArtifactPattern(100_000)
	e.saveV1("main", "npm-linux-abc", "v1", data, 32<<10)
	if key, got := e.restoreV1("main", "v1", "npm-linux-abc", "npm-linux-"); key != "npm-linux-abc" || !bytes.Equal(got, data) {
		t.Fatalf("restore exact: key %q, %d bytes (want npm-linux-abc, %d)", key, len(got), len(data))
	}
	if key, _ := e.restoreV1("main", "v2", "npm-linux-abc"); key != "" {
		t.Errorf("restore with another version hit %q", key)
	}
	// Immutable: a second save of key+version is refused like GitHub's 409.
	body, _ := json.Marshal(map[string]any{"key": "npm-linux-abc", "version": "v1", "cacheSize": 10})
	if b := e.v1("main", "POST", "caches", nil, body, 409); !strings.Contains(string(b), "already exists") {
		t.Errorf("second reserve: %s", b)
	}
	// The same key under another version is another entry.
	e.saveV1("main", "npm-linux-abc", "v2", []byte("v2 data"), 3)
	// Too large to reserve: 400 with a message.
	body, _ = json.Marshal(map[string]any{"key": "huge", "version": "v1", "cacheSize": int64(11) << 30})
	e.v1("main", "POST", "caches", nil, body, 400)
	// A commit missing a chunk, or with the wrong size, is refused.
	body, _ = json.Marshal(map[string]any{"key": "holey", "version": "v1"})
	var res struct{ CacheID int64 }
	json.Unmarshal(e.v1("main", "POST", "caches", nil, body, 201), &res)
	id := fmt.Sprint(res.CacheID)
	e.v1("main", "PATCH", "caches/"+id, map[string]string{"Content-Range": "bytes 10-19/*"}, make([]byte, 10), 204)
	e.v1("main", "POST", "caches/"+id, nil, []byte(`{"size":20}`), 400)
	e.v1("main", "PATCH", "caches/"+id, map[string]string{"Content-Range": "bytes 0-9/*"}, make([]byte, 9), 400)
	e.v1("main", "PATCH", "caches/"+id, map[string]string{"Content-Range": "bytes 0-9"}, make([]byte, 10), 400)
	e.v1("main", "PATCH", "caches/"+id, map[string]string{"Content-Range": "bytes 0-9/*"}, make([]byte, 10), 204)
	e.v1("main", "POST", "caches/"+id, nil, []byte(`{"size":21}`), 400)
	e.v1("feature", "POST", "caches/"+id, nil, []byte(`{"size":20}`), 404) // another scope's upload
	e.v1("main", "POST", "caches/"+id, nil, []byte(`{"size":20}`), 204)
	e.v1("main", "PATCH", "caches/"+id, map[string]string{"Content-Range": "bytes 0-9/*"}, make([]byte, 10), 404)
	// The diagnostics list, and auth.
	var list struct{ TotalCount int }
	json.Unmarshal(e.v1("main", "GET", "caches?key=npm-", nil, nil, 200), &list)
	if list.TotalCount != 2 {
		t.Errorf("GET caches?key=npm-: totalCount = %d, want 2", list.TotalCount)
	}
	e.v1("nobody", "GET", "cache?keys=a&version=v1", nil, nil, 401)
	e.v1("main", "GET", "cache?keys=a,b,c,d,e,f,g,h,i,j,k&version=v1", nil, nil, 400)
}

func TestCacheMatching(t *testing.T) {
	e := newCacheTestEnv(t, nil)
	save := func(tok, key string) {
		e.saveV1(tok, key, "v", []byte(tok+":"+key), 4)
		e.advance(time.Minute)
	}
	save("main", "deps-linux-1")
	save("main", "deps-linux-2")
	save("feature", "deps-linux-3")
	save("main", "deps-linux-4-main")
	save("repo2", "deps-linux-9")
	for _, tc := range []struct {
		name, tok string
		keys      []string
		want      string // "tok:key" restored, "" for a miss
	}{
		{"exact key in own branch", "feature", []string{"deps-linux-3", "deps-"}, "feature:deps-linux-3"},
		{"exact key in default branch", "feature", []string{"deps-linux-1"}, "main:deps-linux-1"},
		{"own branch's restore key before default branch's exact key", "feature", []string{"deps-linux-1", "deps-"}, "feature:deps-linux-3"},
		{"primary key is not a prefix", "main", []string{"deps-linux"}, ""},
		{"restore key: own branch before default, though older", "feature", []string{"nope", "deps-linux-"}, "feature:deps-linux-3"},
		{"restore key: newest in branch", "main", []string{"nope", "deps-linux-"}, "main:deps-linux-4-main"},
		{"restore keys in order", "main", []string{"nope", "deps-linux-2", "deps-"}, "main:deps-linux-2"},
		{"exact match beats earlier restore key in default branch", "feature", []string{"deps-linux-3", "deps-linux-1"}, "feature:deps-linux-3"},
		{"sibling branch is invisible", "other", []string{"deps-linux-3"}, ""},
		{"sibling branch falls back to default", "other", []string{"x", "deps-linux-"}, "main:deps-linux-4-main"},
		{"another repository", "repo2", []string{"deps-linux-1", "deps-"}, "repo2:deps-linux-9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key, data := e.restoreV1(tc.tok, "v", tc.keys...)
			if got := string(data); got != tc.want || tc.want != "" && !strings.HasSuffix(tc.want, ":"+key) {
				t.Fatalf("restore %v as %s: %q (key %q), want %q", tc.keys, tc.tok, got, key, tc.want)
			}
		})
	}
	// A feature branch may save a key its default branch already has.
	e.saveV1("feature", "deps-linux-1", "v", []byte("feature:deps-linux-1"), 100)
	if _, data := e.restoreV1("feature", "v", "deps-linux-1"); string(data) != "feature:deps-linux-1" {
		t.Errorf("restore after branch save: %q", data)
	}
}

func TestCacheV2Flow(t *testing.T) {
	e := newCacheTestEnv(t, nil)
	small, big := []byte("small archive"), ArtifactPattern(300_000)
	// Small archives: one Put Blob; big ones: blocks then a block list.
	for _, tc := range []struct {
		key  string
		data []byte
	}{{"go-small", small}, {"go-big", big}} {
		cr := e.twirp("feature", "CreateCacheEntry", map[string]any{"key": tc.key, "version": "ver"}, 200)
		u := cr["signed_upload_url"].(string)
		if tc.key == "go-small" {
			resp, b := ArtifactDo(t, "PUT", u, map[string]string{"x-ms-blob-type": "BlockBlob"}, tc.data)
			if resp.StatusCode != 201 {
				t.Fatalf("PUT BlockBlob: status = %d, want 201 (%s)", resp.StatusCode, b)
			}
		} else {
			ArtifactUpload(t, u, tc.data, 64<<10)
		}
		fr := e.twirp("feature", "FinalizeCacheEntryUpload", map[string]any{"key": tc.key, "version": "ver", "size_bytes": fmt.Sprint(len(tc.data))}, 200)
		if fr["ok"] != true || fr["entry_id"] == "0" {
			t.Fatalf("FinalizeCacheEntryUpload = %v", fr)
		}
	}
	gr := e.twirp("feature", "GetCacheEntryDownloadURL", map[string]any{"key": "go-nope", "restore_keys": []string{"go-b"}, "version": "ver"}, 200)
	if gr["ok"] != true || gr["matched_key"] != "go-big" {
		t.Fatalf("GetCacheEntryDownloadURL = %v", gr)
	}
	resp, got := ArtifactDo(t, "GET", gr["signed_download_url"].(string), nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(got, big) {
		t.Fatalf("GET signed_download_url: status = %d, %d bytes, want 200 and %d", resp.StatusCode, len(got), len(big))
	}
	// The default branch does not see a feature branch's cache: ok false.
	if gr := e.twirp("main", "GetCacheEntryDownloadURL", map[string]any{"key": "go-small", "version": "ver"}, 200); gr["ok"] != false {
		t.Errorf("GetCacheEntryDownloadURL from main = %v, want ok false", gr)
	}
	// Immutable; a pending reservation also blocks; wrong size does not finalize.
	e.twirp("feature", "CreateCacheEntry", map[string]any{"key": "go-small", "version": "ver"}, 409)
	cr := e.twirp("feature", "CreateCacheEntry", map[string]any{"key": "go-pending", "version": "ver"}, 200)
	e.twirp("feature", "CreateCacheEntry", map[string]any{"key": "go-pending", "version": "ver"}, 409)
	ArtifactDo(t, "PUT", cr["signed_upload_url"].(string), nil, []byte("abc"))
	if fr := e.twirp("feature", "FinalizeCacheEntryUpload", map[string]any{"key": "go-pending", "version": "ver", "size_bytes": "4"}, 200); fr["ok"] != false {
		t.Errorf("FinalizeCacheEntryUpload with the wrong size = %v, want ok false", fr)
	}
	e.twirp("feature", "FinalizeCacheEntryUpload", map[string]any{"key": "go-never", "version": "ver", "size_bytes": "4"}, 404)
	// A reservation abandoned past the upload TTL frees the key.
	e.advance(2 * time.Hour)
	e.twirp("feature", "CreateCacheEntry", map[string]any{"key": "go-pending", "version": "ver"}, 200)
	// Bad requests.
	e.twirp("", "GetCacheEntryDownloadURL", map[string]any{"key": "k", "version": "v"}, 401)
	e.twirp("main", "GetCacheEntryDownloadURL", map[string]any{"key": "a,b", "version": "v"}, 400)
	e.twirp("main", "GetCacheEntryDownloadURL", map[string]any{"key": "k"}, 400)
	e.twirp("main", "DeleteCacheEntry", map[string]any{"key": "k", "version": "v"}, 404)
}

func TestCacheSignedURLs(t *testing.T) {
	e := newCacheTestEnv(t, nil)
	cr := e.twirp("main", "CreateCacheEntry", map[string]any{"key": "k", "version": "v"}, 200)
	up := cr["signed_upload_url"].(string)
	for _, tc := range []struct {
		name, url string
		want      int
	}{
		{"tampered", strings.Replace(up, "sig=", "sig=x", 1), 403},
		{"other entry", strings.Replace(up, CacheBlobPrefix+"1?", CacheBlobPrefix+"2?", 1), 403},
		{"good", up, 201},
	} {
		if resp, b := ArtifactDo(t, "PUT", tc.url, nil, []byte("data")); resp.StatusCode != tc.want {
			t.Errorf("%s: PUT: status = %d, want %d (%s)", tc.name, resp.StatusCode, tc.want, b)
		}
	}
	e.twirp("main", "FinalizeCacheEntryUpload", map[string]any{"key": "k", "version": "v", "size_bytes": "4"}, 200)
	if resp, _ := ArtifactDo(t, "PUT", up, nil, []byte("more")); resp.StatusCode != 409 {
		t.Errorf("PUT after finalize: status = %d, want 409", resp.StatusCode)
	}
	dl := e.twirp("main", "GetCacheEntryDownloadURL", map[string]any{"key": "k", "version": "v"}, 200)["signed_download_url"].(string)
	if resp, _ := ArtifactDo(t, "PUT", dl, nil, []byte("data")); resp.StatusCode != 403 {
		t.Errorf("PUT to the download URL: status = %d, want 403", resp.StatusCode)
	}
	e.advance(11 * time.Minute)
	if resp, _ := ArtifactDo(t, "GET", dl, nil, nil); resp.StatusCode != 403 {
		t.Errorf("GET expired: status = %d, want 403", resp.StatusCode)
	}
}

func TestCacheEviction(t *testing.T) {
	e := newCacheTestEnv(t, func(c *CacheConfig) { c.MaxTotal = 250 })
	for _, k := range []string{"a", "b", "c"} {
		e.saveV1("main", k, "v", make([]byte, 80), 40)
		e.advance(time.Minute)
	}
	e.restoreV1("main", "v", "a") // a is now the most recently used
	e.advance(time.Minute)
	e.saveV1("main", "d", "v", make([]byte, 80), 40)
	have := map[string]bool{}
	for _, ent := range e.svc.Entries(1) {
		have[ent.Key] = true
	}
	if fmt.Sprint(have) != "map[a:true c:true d:true]" {
		t.Fatalf("after eviction: %v, want a, c, d (b least recently used)", have)
	}
	// Bigger than the whole cache: refused while uploading.
	body, _ := json.Marshal(map[string]any{"key": "e", "version": "v"})
	var res struct{ CacheID int64 }
	json.Unmarshal(e.v1("main", "POST", "caches", nil, body, 201), &res)
	e.v1("main", "PATCH", fmt.Sprintf("caches/%d", res.CacheID), map[string]string{"Content-Range": "bytes 0-299/*"}, make([]byte, 300), 413)
	// v2 blob PUT over the cap.
	cr := e.twirp("main", "CreateCacheEntry", map[string]any{"key": "f", "version": "v"}, 200)
	if resp, _ := ArtifactDo(t, "PUT", cr["signed_upload_url"].(string), nil, make([]byte, 300)); resp.StatusCode != 413 {
		t.Errorf("PUT over the cap: status = %d, want 413", resp.StatusCode)
	}
	// The index survives a restart; the unfinished uploads do not.
	e.open()
	if key, data := e.restoreV1("main", "v", "c"); key != "c" || len(data) != 80 {
		t.Errorf("after reopen: restore c = %q, %d bytes", key, len(data))
	}
	files, _ := os.ReadDir(filepath.Join(e.dir, "entries"))
	if len(files) != 3 {
		t.Errorf("after reopen: %d files in entries, want 3", len(files))
	}
	// Unused for 7 days: gone.
	e.advance(8 * 24 * time.Hour)
	if err := e.svc.Sweep(); err != nil || len(e.svc.Entries(1)) != 0 {
		t.Errorf("Sweep after 8 idle days: %v, %d entries left", err, len(e.svc.Entries(1)))
	}
}

func FuzzCacheContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-199/*", "bytes 200-399/1000", "bytes 5-4/*", "bytes -1-3/*", "bytes 0-0/1", "bytes +1-+2/*", "bytes 0-9/9", "items 0-1/*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, end, err := cacheParseContentRange(s)
		if err != nil {
			return
		}
		if start < 0 || end < start {
			t.Fatalf("%q: accepted start %d end %d", s, start, end)
		}
		s2, e2, err := cacheParseContentRange(fmt.Sprintf("bytes %d-%d/*", start, end))
		if err != nil || s2 != start || e2 != end {
			t.Fatalf("%q: round trip %d-%d, %v", s, s2, e2, err)
		}
	})
}

// cacheDiskBytes is what the cache directory holds on disk, index aside.
func cacheDiskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(filepath.Join(dir, "entries"), func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// putBlock stages a block of an upload URL and answers the status.
func putBlock(t *testing.T, up string, i int, data []byte) int {
	t.Helper()
	resp, _ := ArtifactDo(t, "PUT", up+"&comp=block&blockid="+url.QueryEscape(ArtifactBlockID(i)), nil, data)
	return resp.StatusCode
}

func putBlockList(t *testing.T, up string, blocks ...int) (int, string) {
	t.Helper()
	var ids []string
	for _, i := range blocks {
		ids = append(ids, ArtifactBlockID(i))
	}
	resp, b := ArtifactDo(t, "PUT", up+"&comp=blocklist", nil, artifactBlockListXML(ids))
	return resp.StatusCode, string(b)
}

// The attack of issue 17 (M2), scaled down: one block named 30 times in a
// block list made a cache 30 times its staged bytes and the cap. A block
// list names each block once.
func TestCacheBlockListNamesABlockOnce(t *testing.T) {
	e := newCacheTestEnv(t, func(c *CacheConfig) { c.MaxTotal = 1000 })
	up := e.twirp("main", "CreateCacheEntry", map[string]any{"key": "k", "version": "v"}, 200)["signed_upload_url"].(string)
	if code := putBlock(t, up, 0, make([]byte, 100)); code != 201 {
		t.Fatalf("PUT block: %d", code)
	}
	thirty := make([]int, 30)
	if code, b := putBlockList(t, up, thirty...); code != 400 || !strings.Contains(b, "listed twice") {
		t.Errorf("a block list naming one block 30 times: %d %s, want 400", code, b)
	}
	if n := cacheDiskBytes(t, e.dir); n > 1000 {
		t.Errorf("the cache holds %d bytes on disk, over its 1000-byte cap", n)
	}
	if code, b := putBlockList(t, up, 0); code != 201 {
		t.Fatalf("the block once: %d %s", code, b)
	}
	if fr := e.twirp("main", "FinalizeCacheEntryUpload", map[string]any{"key": "k", "version": "v", "size_bytes": "100"}, 200); fr["ok"] != true {
		t.Errorf("finalize = %v", fr)
	}
}

// What a commit makes counts against the cap, even when the staging bound
// let its blocks in: a block list over MaxTotal is refused and leaves
// nothing behind.
func TestCacheCommitOverTheCap(t *testing.T) {
	e := newCacheTestEnv(t, func(c *CacheConfig) { c.MaxTotal, c.StageLimit = 250, 400 })
	up := e.twirp("main", "CreateCacheEntry", map[string]any{"key": "k", "version": "v"}, 200)["signed_upload_url"].(string)
	for i := range 2 {
		if code := putBlock(t, up, i, make([]byte, 150)); code != 201 {
			t.Fatalf("PUT block %d: %d", i, code)
		}
	}
	if code, b := putBlockList(t, up, 0, 1); code != 413 {
		t.Errorf("a block list of 300 bytes under a 250-byte cap: %d %s, want 413", code, b)
	}
	if fr := e.twirp("main", "FinalizeCacheEntryUpload", map[string]any{"key": "k", "version": "v", "size_bytes": "300"}, 200); fr["ok"] != false {
		t.Errorf("finalize of 300 bytes = %v, want ok false", fr)
	}
	if fi, err := os.Stat(e.svc.PartFile(1)); err != nil || fi.Size() != 0 {
		t.Errorf("the entry's part after the refused commit: %v, %v; want it empty", fi, err)
	}
	if code, b := putBlockList(t, up, 1); code != 201 {
		t.Fatalf("a block list of 150 bytes: %d %s", code, b)
	}
	if fr := e.twirp("main", "FinalizeCacheEntryUpload", map[string]any{"key": "k", "version": "v", "size_bytes": "150"}, 200); fr["ok"] != true {
		t.Errorf("finalize of 150 bytes = %v", fr)
	}
	if n := cacheDiskBytes(t, e.dir); n != 150 {
		t.Errorf("after the commit, the cache holds %d bytes on disk, want 150 (the blocks are gone)", n)
	}
}

// What one job stages (blocks, single PUTs, v1 chunks of entries not yet
// finalized) is bounded by StageLimit, across all its reservations; other
// jobs have their own, and finalizing frees it.
func TestCacheStagingBound(t *testing.T) {
	e := newCacheTestEnv(t, func(c *CacheConfig) { c.MaxTotal = 250 })
	create := func(tok, key string) string {
		return e.twirp(tok, "CreateCacheEntry", map[string]any{"key": key, "version": "v"}, 200)["signed_upload_url"].(string)
	}
	a, b, c := create("main", "a"), create("main", "b"), create("main", "c")
	if code := putBlock(t, a, 0, make([]byte, 200)); code != 201 {
		t.Fatalf("PUT 200 bytes: %d", code)
	}
	if code := putBlock(t, b, 0, make([]byte, 100)); code != 413 {
		t.Errorf("PUT 100 more bytes in another entry of the same job: %d, want 413", code)
	}
	if resp, _ := ArtifactDo(t, "PUT", c, nil, make([]byte, 100)); resp.StatusCode != 413 {
		t.Errorf("Put Blob of 100 more bytes: %d, want 413", resp.StatusCode)
	}
	// v1 chunks count too.
	body, _ := json.Marshal(map[string]any{"key": "v1", "version": "v"})
	var res struct{ CacheID int64 }
	json.Unmarshal(e.v1("main", "POST", "caches", nil, body, 201), &res)
	e.v1("main", "PATCH", fmt.Sprintf("caches/%d", res.CacheID), map[string]string{"Content-Range": "bytes 0-99/*"}, make([]byte, 100), 413)
	// A retried block replaces the first try and what it was charged
	// (while it arrives, both count).
	if code := putBlock(t, a, 0, make([]byte, 40)); code != 201 {
		t.Errorf("PUT the same block again, smaller: %d, want 201", code)
	}
	if code := putBlock(t, a, 1, make([]byte, 200)); code != 201 {
		t.Errorf("PUT 200 bytes once the retry freed 160: %d, want 201", code)
	}
	if code := putBlock(t, a, 0, make([]byte, 50)); code != 413 {
		t.Errorf("PUT block 0 again with 50 bytes while 240 are staged: %d, want 413", code)
	}
	// Another job stages on its own account.
	if code := putBlock(t, create("feature", "a"), 0, make([]byte, 200)); code != 201 {
		t.Errorf("another job's PUT: %d, want 201", code)
	}
	if n := cacheDiskBytes(t, e.dir); n != 440 {
		t.Errorf("%d bytes staged on disk, want 440 (240 and 200)", n)
	}
	// Committed and finalized, a's bytes are the cache's, not staged.
	if code, b := putBlockList(t, a, 0, 1); code != 201 {
		t.Fatalf("commit a: %d %s", code, b)
	}
	e.twirp("main", "FinalizeCacheEntryUpload", map[string]any{"key": "a", "version": "v", "size_bytes": "240"}, 200)
	if code := putBlock(t, b, 0, make([]byte, 200)); code != 201 {
		t.Errorf("PUT after finalize freed the job's staging: %d, want 201", code)
	}
	e.svc.mu.Lock()
	if staged := e.svc.staged[1]; staged != 200 {
		t.Errorf("job 1 has %d bytes staged, want 200", staged)
	}
	e.svc.mu.Unlock()
	// Reservations are bounded too.
	for i := range cacheMaxPendingPerJob {
		code, _ := ArtifactTwirp(t, e.srv.URL, CacheSvc, "CreateCacheEntry", "repo2", map[string]any{"key": fmt.Sprint("r", i), "version": "v"})
		if code != 200 {
			t.Fatalf("reservation %d: %d", i, code)
		}
	}
	if code, out := ArtifactTwirp(t, e.srv.URL, CacheSvc, "CreateCacheEntry", "repo2", map[string]any{"key": "one-more", "version": "v"}); code == 200 {
		t.Errorf("reservation %d of one job: %d %v, want a refusal", cacheMaxPendingPerJob+1, code, out)
	}
}

// A signed upload URL dies with its job: once the job is over a PUT is
// refused and the reservation goes; Sweep drops the unfinished uploads of
// jobs that are over.
func TestCacheUploadURLDiesWithItsJob(t *testing.T) {
	e := newCacheTestEnv(t, nil)
	up := e.twirp("main", "CreateCacheEntry", map[string]any{"key": "k", "version": "v"}, 200)["signed_upload_url"].(string)
	e.twirp("feature", "CreateCacheEntry", map[string]any{"key": "k", "version": "v"}, 200)
	if code := putBlock(t, up, 0, []byte("data")); code != 201 {
		t.Fatalf("PUT while the job runs: %d", code)
	}
	e.mu.Lock()
	e.over[1], e.over[2] = true, true
	e.mu.Unlock()
	for i, body := range [][]byte{[]byte("more"), nil} {
		if resp, b := ArtifactDo(t, "PUT", up, nil, body); resp.StatusCode != 403 && resp.StatusCode != 404 {
			t.Errorf("PUT %d after the job ended: %d %s, want 403 or 404", i, resp.StatusCode, b)
		}
	}
	if err := e.svc.Sweep(); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"main", "feature"} {
		if e.svc.pending(e.toks[tok], 0, "k", "v") != nil {
			t.Errorf("%s's reservation outlived its job", tok)
		}
	}
	if n := cacheDiskBytes(t, e.dir); n != 0 {
		t.Errorf("%d bytes left on disk by jobs that are over", n)
	}
	e.svc.mu.Lock()
	defer e.svc.mu.Unlock()
	if len(e.svc.staged) != 0 {
		t.Errorf("staged after the sweep = %v, want nothing", e.svc.staged)
	}
}
