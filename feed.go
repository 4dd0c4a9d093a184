// The Atom feed of a repository's runs, with its cache.

package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"shithub-actions/internal/protocol"
	"shithub-actions/internal/store"
	"shithub-actions/internal/workflow"
)

// feedSize is how many runs the feed carries.
const feedSize = 50

// atomFeed is an Atom feed document (RFC 4287, section 4.1.1).
type atomFeed struct {
	XMLName   xml.Name    `xml:"http://www.w3.org/2005/Atom feed"`
	ID        string      `xml:"id"`
	Title     atomText    `xml:"title"`
	Updated   string      `xml:"updated"`
	Author    atomPerson  `xml:"author"`
	Links     []atomLink  `xml:"link"`
	Generator string      `xml:"generator,omitempty"`
	Entries   []atomEntry `xml:"entry"`
}

// atomEntry is an Atom entry (RFC 4287, section 4.1.2).
type atomEntry struct {
	ID        string     `xml:"id"`
	Title     atomText   `xml:"title"`
	Links     []atomLink `xml:"link"`
	Published string     `xml:"published"`
	Updated   string     `xml:"updated"`
	Author    atomPerson `xml:"author"`
	Summary   atomText   `xml:"summary"`
}

// atomText is a text construct (RFC 4287, section 3.1) of type "text".
type atomText struct {
	Type string `xml:"type,attr"`
	Body string `xml:",chardata"`
}

// atomPerson is a person construct (RFC 4287, section 3.2).
type atomPerson struct {
	Name string `xml:"name"`
}

// atomLink is atom:link (RFC 4287, section 4.2.7).
type atomLink struct {
	Rel  string `xml:"rel,attr"`
	Type string `xml:"type,attr,omitempty"`
	Href string `xml:"href,attr"`
}

// atomTime is an RFC 3339 date as Atom wants it (RFC 4287, section 3.3).
func atomTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// xmlSafe drops what XML 1.0 cannot carry (control characters other than
// tab and newlines, invalid UTF-8), which encoding/xml would otherwise
// write or mangle: a workflow name or branch must never break the feed.
// Line ends become \n, as an XML parser would read them anyway.
func xmlSafe(s string) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		clean = s[i] >= 0x20 && s[i] < 0x7f || s[i] == '\t' || s[i] == '\n'
	}
	if clean { // the usual case: printable ASCII needs no change
		return s
	}
	s = strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n':
			return r
		case r < 0x20, r == 0xFFFE, r == 0xFFFF, r == utf8.RuneError, r >= 0xD800 && r <= 0xDFFF:
			return -1
		}
		return r
	}, s)
}

func plain(s string) atomText { return atomText{Type: "text", Body: xmlSafe(s)} }

// runTitle is what a run is called in the feed: "CI #12 success".
func runTitle(run *store.Run) string {
	state := run.Status
	if run.Status == protocol.StatusCompleted {
		state = run.Conclusion
	}
	return run.WorkflowName + " #" + strconv.FormatInt(run.RunIndex, 10) + " " + state
}

// buildFeed makes the feed document of a repository's newest runs.
func buildFeed(base string, repo *store.Repo, runs []*store.Run) *atomFeed {
	tab := actionsTabURL(base, repo)
	f := &atomFeed{
		ID:        tab,
		Title:     plain(repo.FullName() + " workflow runs"),
		Author:    atomPerson{Name: xmlSafe(repo.Owner)},
		Updated:   atomTime(repo.RunsUpdatedAt),
		Generator: "shithub-actions",
		Links: []atomLink{
			{Rel: "self", Type: "application/atom+xml", Href: tab + ".atom"},
			{Rel: "alternate", Type: "text/html", Href: tab},
		},
	}
	if len(runs) > 0 {
		newest := runs[0].UpdatedAt
		for _, r := range runs {
			if r.UpdatedAt.After(newest) {
				newest = r.UpdatedAt
			}
		}
		f.Updated = atomTime(newest)
	}
	f.Entries = make([]atomEntry, 0, len(runs))
	for _, r := range runs {
		conclusion := r.Conclusion
		if conclusion == "" {
			conclusion = "none yet"
		}
		summary := "Workflow: " + r.WorkflowName + "\nEvent: " + r.Event + "\nBranch: " + workflow.RefName(r.HeadRef) +
			"\nCommit: " + r.HeadSHA + "\nStatus: " + r.Status + "\nConclusion: " + conclusion
		f.Entries = append(f.Entries, atomEntry{
			ID:        "urn:uuid:" + r.UUID,
			Title:     plain(runTitle(r)),
			Links:     []atomLink{{Rel: "alternate", Type: "text/html", Href: tab + "/runs/" + strconv.FormatInt(r.RunIndex, 10)}},
			Published: atomTime(r.CreatedAt),
			Updated:   atomTime(r.UpdatedAt),
			Author:    atomPerson{Name: xmlSafe(r.Actor)},
			Summary:   plain(summary),
		})
	}
	return f
}

// writeFeed writes the feed document. It writes by hand what
// encoding/xml's Encoder (indented by two spaces) would, byte for byte
// (TestWriteFeedMatchesEncoder holds it to that), at a fraction of the
// cost: an uncached feed is rendered on the first request after every
// change to a repository's runs.
func writeFeed(w io.Writer, f *atomFeed) error {
	b := make([]byte, 0, 4096+len(f.Entries)*1024)
	b = append(b, xml.Header...)
	b = append(b, `<feed xmlns="http://www.w3.org/2005/Atom">`...)
	b = xmlElem(b, "\n  ", "id", f.ID)
	b = xmlText(b, "\n  ", "title", f.Title)
	b = xmlElem(b, "\n  ", "updated", f.Updated)
	b = xmlPerson(b, "\n  ", f.Author)
	for _, l := range f.Links {
		b = xmlLink(b, "\n  ", l)
	}
	if f.Generator != "" {
		b = xmlElem(b, "\n  ", "generator", f.Generator)
	}
	for _, e := range f.Entries {
		b = append(b, "\n  <entry>"...)
		b = xmlElem(b, "\n    ", "id", e.ID)
		b = xmlText(b, "\n    ", "title", e.Title)
		for _, l := range e.Links {
			b = xmlLink(b, "\n    ", l)
		}
		b = xmlElem(b, "\n    ", "published", e.Published)
		b = xmlElem(b, "\n    ", "updated", e.Updated)
		b = xmlPerson(b, "\n    ", e.Author)
		b = xmlText(b, "\n    ", "summary", e.Summary)
		b = append(b, "\n  </entry>"...)
	}
	b = append(b, "\n</feed>\n"...)
	_, err := w.Write(b)
	return err
}

// xmlEscape appends s escaped as encoding/xml escapes text and attribute
// values: the five markup characters and tab, newline and carriage return
// as character references, and anything XML cannot carry as U+FFFD.
func xmlEscape(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch r {
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '\t':
			esc = "&#x9;"
		case '\n':
			esc = "&#xA;"
		case '\r':
			esc = "&#xD;"
		default:
			if !xmlChar(r) || (r == utf8.RuneError && width == 1) {
				esc = "\uFFFD"
			}
		}
		if esc != "" {
			b = append(append(b, s[last:i]...), esc...)
			last = i + width
		}
		i += width
	}
	return append(b, s[last:]...)
}

// xmlChar is XML 1.0's Char production.
func xmlChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D || r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

func xmlElem(b []byte, indent, name, text string) []byte {
	b = append(append(append(append(b, indent...), '<'), name...), '>')
	b = xmlEscape(b, text)
	return append(append(append(b, "</"...), name...), '>')
}

func xmlText(b []byte, indent, name string, t atomText) []byte {
	b = append(append(append(append(b, indent...), '<'), name...), ` type="`...)
	b = append(xmlEscape(b, t.Type), `">`...)
	b = xmlEscape(b, t.Body)
	return append(append(append(b, "</"...), name...), '>')
}

func xmlPerson(b []byte, indent string, p atomPerson) []byte {
	b = append(append(b, indent...), "<author>"...)
	b = xmlElem(b, indent+"  ", "name", p.Name)
	return append(append(b, indent...), "</author>"...)
}

func xmlLink(b []byte, indent string, l atomLink) []byte {
	b = append(append(b, indent...), `<link rel="`...)
	b = xmlEscape(b, l.Rel)
	if l.Type != "" {
		b = append(b, `" type="`...)
		b = xmlEscape(b, l.Type)
	}
	b = append(b, `" href="`...)
	b = xmlEscape(b, l.Href)
	return append(b, `"></link>`...)
}

// handleFeed serves GET /{owner}/{repo}/actions.atom. Visibility is the
// Actions tab's: public repositories to anyone, private ones to a PAT with
// repo:read of a user who may read them, and 404 to everyone else. The
// validators come from a per-repository counter bumped with every change to
// its runs, so a 304 costs one row read.
func (s *server) handleFeed(w http.ResponseWriter, r *http.Request) error {
	user, tok, err := s.authUser(r)
	if err != nil {
		return err
	}
	if tok != nil && !tok.HasScope(store.ScopeRead) {
		user = nil // a token that may not read counts as no token
	}
	repo, err := s.repoFor(r, user, store.PermRead)
	if err != nil {
		return err
	}
	base := s.base(r)
	etag := fmt.Sprintf(`"%d-%d-%08x"`, repo.ID, repo.RunsVersion, crc32.ChecksumIEEE([]byte(base)))
	h := w.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache")
	if repo.Private {
		h.Set("Cache-Control", "private, no-cache")
	}
	h.Set("Vary", "Authorization")
	lastMod := repo.RunsUpdatedAt
	if !lastMod.IsZero() {
		h.Set("Last-Modified", lastMod.UTC().Format(http.TimeFormat))
	}
	if notModified(r, etag, lastMod) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	body, err := s.feeds.get(repo.ID, repo.RunsVersion, base, func() ([]byte, error) {
		runs, err := s.store.LatestRuns(r.Context(), repo.ID, feedSize)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		err = writeFeed(&b, buildFeed(base, repo, runs))
		return b.Bytes(), err
	})
	if err != nil {
		return err
	}
	h.Set("Content-Type", "application/atom+xml; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return nil
	}
	_, err = w.Write(body)
	return err
}

// feedCache keeps the last rendered feed of each repository. A feed is a
// function of the repository's runs_version and the base URL, so an entry
// is good until either changes; readers polling an idle repository cost a
// row read instead of a 50-row query and an XML rendering.
type feedCache struct {
	mu      sync.Mutex // guards entries
	entries map[int64]feedEntry

	hits, misses atomic.Int64 // for /metrics
}

type feedEntry struct {
	version int64
	base    string
	body    []byte
}

// maxCachedFeeds bounds the cache's memory (a feed is about 30 KiB).
const maxCachedFeeds = 512

func (c *feedCache) get(repoID, version int64, base string, render func() ([]byte, error)) ([]byte, error) {
	c.mu.Lock()
	e, ok := c.entries[repoID]
	c.mu.Unlock()
	if ok && e.version == version && e.base == base {
		c.hits.Add(1)
		return e.body, nil
	}
	c.misses.Add(1)
	body, err := render()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = map[int64]feedEntry{}
	}
	if len(c.entries) >= maxCachedFeeds {
		for id := range c.entries { // evict one at random
			delete(c.entries, id)
			break
		}
	}
	// A slower render of an older version must not replace a newer one.
	if cur, ok := c.entries[repoID]; !ok || cur.version <= version {
		c.entries[repoID] = feedEntry{version, base, body}
	}
	return body, nil
}

// notModified applies If-None-Match, or failing that If-Modified-Since
// (RFC 9110, section 13.2.2).
func notModified(r *http.Request, etag string, lastMod time.Time) bool {
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		for _, t := range strings.Split(inm, ",") {
			t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
			if t == etag || t == "*" {
				return true
			}
		}
		return false
	}
	if ims := r.Header.Get("If-Modified-Since"); ims != "" && !lastMod.IsZero() {
		t, err := http.ParseTime(ims)
		return err == nil && !lastMod.Truncate(time.Second).After(t)
	}
	return false
}
