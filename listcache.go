// The runs list's answer cache: whole answers of GET …/actions/runs, good
// until the repository's runs change.

package main

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// listCache keeps rendered runs-list answers, keyed by the request (path,
// query, base URL) and valid while the repository's runs_version, which
// every change to its runs bumps (as the feed's cache relies on), is the
// one they were made at. Clients polling an idle repository's list then
// cost a row read and a permission check instead of a query and the
// encoding of fifty GitHub-shaped runs, which is most of a list's CPU.
// An entry also expires after listCacheTTL, so a change that did not bump
// the version (none is known) shows within that time.
type listCache struct {
	mu      sync.Mutex // guards entries and size
	entries map[string]listEntry
	size    int // bytes of all bodies

	hits, misses atomic.Int64
}

type listEntry struct {
	version int64
	made    time.Time
	link    string // the Link header
	body    []byte
}

const (
	// listCacheBytes bounds the cache's memory; an answer of 50 runs is
	// about 180 KiB.
	listCacheBytes = 16 << 20
	// listCacheTTL bounds how long an entry is used at all.
	listCacheTTL = 2 * time.Second
)

// get returns the entry for key if it was made at version, recently.
func (c *listCache) get(key string, version int64, now time.Time) (listEntry, bool) {
	c.mu.Lock()
	e, ok := c.entries[key]
	c.mu.Unlock()
	if ok && e.version == version && now.Sub(e.made) < listCacheTTL && !now.Before(e.made) {
		c.hits.Add(1)
		return e, true
	}
	c.misses.Add(1)
	return listEntry{}, false
}

// put stores an entry, evicting entries at random past listCacheBytes. A
// slower render of an older version does not replace a newer one.
func (c *listCache) put(key string, e listEntry) {
	if len(e.body) > listCacheBytes/8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[string]listEntry{}
	}
	if cur, ok := c.entries[key]; ok {
		if cur.version > e.version {
			return
		}
		c.size -= len(cur.body)
		delete(c.entries, key)
	}
	for c.size+len(e.body) > listCacheBytes && len(c.entries) > 0 {
		n := rand.IntN(len(c.entries))
		for k, v := range c.entries {
			if n == 0 {
				c.size -= len(v.body)
				delete(c.entries, k)
				break
			}
			n--
		}
	}
	c.entries[key] = e
	c.size += len(e.body)
}
