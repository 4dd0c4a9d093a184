package logtext

// Masking secret values in job logs before anything is stored or shown.
//
// A MaskSet holds the values of one job: its secrets, GITHUB_TOKEN, and what
// steps add with ::add-mask::. Each log stream of the job (a step's stdout and
// stderr, the runner's own messages) gets a MaskWriter, which replaces every
// occurrence of every value with "***" as the bytes stream through, also when
// a value is split across writes.
//
// What is masked is what GitHub's runner masks: the union of all occurrences
// of all values, each maximal run of overlapping or touching occurrences
// becoming a single "***". Where values overlap ("abc" and "bcd" in "abcd")
// everything any of them covers is hidden, which contains what a
// longest-match-wins rule would hide; a value that is a prefix of another
// hides the longer one in full where the longer one occurs.
//
// The search is an Aho–Corasick automaton over bytes built from all values,
// so a log is read once whatever the number of values: O(len(log)) plus the
// matches, never a rescan per value.

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// maskReplacement is what every masked run of bytes becomes.
const maskReplacement = "***"

// MaskSet is the set of values to mask for one job. It is safe for concurrent
// use: a step's output streams mask with it while ::add-mask:: adds to it.
type MaskSet struct {
	// mu guards values and list, and serializes building the automaton.
	mu     sync.Mutex
	values map[string]bool // every value masked, for deduplication
	list   []string        // the same values in the order added

	// ac is the automaton for the current values, built lazily by automaton
	// and reset to nil by Add; it is read without mu (an atomic pointer to an
	// immutable automaton), so writers do not contend on the lock.
	ac atomic.Pointer[maskAutomaton]

	// denseLimit overrides maskDenseLimit when non-zero; negative means
	// never build the DFA table (tests use it to cover both scanners).
	denseLimit int
}

// Add registers a value to be masked from now on, the way GitHub's runner
// registers a secret: the value is trimmed of surrounding white space and, if
// nothing is left, ignored; a value of several lines is masked as a whole and
// also line by line (each line trimmed, blank lines ignored), since output
// usually reaches the log a line at a time. Like GitHub's runner there is no
// minimum length: a one-character secret masks that character everywhere,
// which is ugly but never leaks it.
func (m *MaskSet) Add(value string) {
	v := strings.TrimSpace(value)
	if v == "" {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]bool{}
	}
	changed := m.addLocked(v)
	if strings.ContainsAny(v, "\r\n") {
		for _, line := range strings.FieldsFunc(v, func(r rune) bool { return r == '\r' || r == '\n' }) {
			if line = strings.TrimSpace(line); line != "" {
				changed = m.addLocked(line) || changed
			}
		}
	}
	if changed {
		m.ac.Store(nil)
	}
}

func (m *MaskSet) addLocked(v string) bool {
	if m.values[v] {
		return false
	}
	m.values[v] = true
	m.list = append(m.list, v)
	return true
}

// maskValues returns the values masked, including the lines of multi-line
// values, in the order added.
func (m *MaskSet) maskValues() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.list)
}

// automaton returns the automaton for the current values, building it if a
// value was added since it was last built.
func (m *MaskSet) automaton() *maskAutomaton {
	if a := m.ac.Load(); a != nil {
		return a
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a := m.ac.Load(); a != nil {
		return a
	}
	limit := maskDenseLimit
	if m.denseLimit != 0 {
		limit = max(m.denseLimit, 0)
	}
	a := maskBuild(m.list, limit)
	m.ac.Store(a)
	return a
}

// Mask masks a whole string at once, e.g. an error message or a step name.
func (m *MaskSet) Mask(s string) string {
	w := NewMaskWriter(m)
	out := w.Write([]byte(s))
	return string(append(out, w.Flush()...))
}

// maskAutomaton is an Aho–Corasick automaton over the bytes of a set of
// values. Node 0 is the root. It is immutable once built.
type maskAutomaton struct {
	root      [256]int32 // the root's transitions; 0 stays at the root
	fail      []int32    // longest proper suffix of the node's string that is a node
	depth     []int32    // length of the node's string
	match     []int32    // length of the longest value that is a suffix of the node's string, or 0
	edgeStart []int32    // the node's children are edges edgeStart[n]:edgeStart[n+1]
	edgeByte  []byte     // sorted within each node
	edgeNext  []int32

	// The same automaton as a DFA, when it is small enough: one row of
	// nclass transitions per node, fail links folded in, bytes that behave
	// alike sharing a class (every byte in no value is one class). An entry
	// is the target's row offset (node*nclass), with maskDenseMatch set when
	// a value ends at the target. nil when nodes*nclass would pass
	// maskDenseLimit; then scan walks edges and fail links instead.
	delta  []uint32
	class  [256]uint32
	nclass int
}

const maskDenseMatch = 1 << 31

// maskDenseLimit bounds the DFA table, in entries of 4 bytes: 16 MiB.
// (It also keeps row offsets below maskDenseMatch.) A
// hundred 40-byte tokens need about a quarter of a million.
var maskDenseLimit = 4 << 20

// maskBuild builds the automaton for values (non-empty, distinct), with the
// DFA table if it has at most denseLimit entries.
func maskBuild(values []string, denseLimit int) *maskAutomaton {
	// A trie with children in first-child/next-sibling lists.
	type tnode struct {
		child, sib int32
		b          byte
		term       int32 // length of the value ending here, or 0
	}
	total := 1
	for _, v := range values {
		total += len(v)
	}
	trie := make([]tnode, 1, total)
	var rootChild [256]int32
	for _, v := range values {
		n := int32(0)
		for i := 0; i < len(v); i++ {
			c := v[i]
			var next int32
			if n == 0 {
				next = rootChild[c]
			} else {
				for k := trie[n].child; k != 0; k = trie[k].sib {
					if trie[k].b == c {
						next = k
						break
					}
				}
			}
			if next == 0 {
				next = int32(len(trie))
				trie = append(trie, tnode{b: c})
				if n == 0 {
					rootChild[c] = next
				} else {
					trie[next].sib = trie[n].child
					trie[n].child = next
				}
			}
			n = next
		}
		trie[n].term = int32(len(v))
	}
	for c := 255; c >= 0; c-- { // link the root's children too, in byte order
		if k := rootChild[c]; k != 0 {
			trie[k].sib = trie[0].child
			trie[0].child = k
		}
	}

	// Renumber breadth-first, laying each node's edges out contiguously and
	// sorted, so that a node's fail target is always numbered before it.
	nn := len(trie)
	a := &maskAutomaton{
		fail:      make([]int32, nn),
		depth:     make([]int32, nn),
		match:     make([]int32, nn),
		edgeStart: make([]int32, nn+1),
		edgeByte:  make([]byte, 0, nn-1),
		edgeNext:  make([]int32, 0, nn-1),
	}
	old := make([]int32, 1, nn) // new id -> trie id
	var kids []int32
	for id := 0; id < len(old); id++ {
		t := old[id]
		a.edgeStart[id] = int32(len(a.edgeByte))
		kids = kids[:0]
		for k := trie[t].child; k != 0; k = trie[k].sib {
			kids = append(kids, k)
		}
		slices.SortFunc(kids, func(x, y int32) int { return int(trie[x].b) - int(trie[y].b) })
		for _, k := range kids {
			nid := int32(len(old))
			old = append(old, k)
			a.edgeByte = append(a.edgeByte, trie[k].b)
			a.edgeNext = append(a.edgeNext, nid)
			a.depth[nid] = a.depth[id] + 1
			a.match[nid] = trie[k].term
			if id == 0 {
				a.root[trie[k].b] = nid
			}
		}
	}
	a.edgeStart[nn] = int32(len(a.edgeByte))

	// Fail links and longest-match lengths, breadth-first.
	for id := int32(0); id < int32(nn); id++ {
		for e := a.edgeStart[id]; e < a.edgeStart[id+1]; e++ {
			c, v := a.edgeByte[e], a.edgeNext[e]
			if id != 0 {
				f := a.fail[id]
				for {
					if t := a.step(f, c); t != 0 || f == 0 {
						a.fail[v] = t
						break
					}
					f = a.fail[f]
				}
			}
			if a.match[v] == 0 {
				a.match[v] = a.match[a.fail[v]]
			}
		}
	}
	a.buildDense(denseLimit)
	return a
}

// buildDense fills delta when it has at most limit entries.
func (a *maskAutomaton) buildDense(limit int) {
	var used [256]bool
	for _, b := range a.edgeByte {
		used[b] = true
	}
	nc := 0
	for _, u := range used {
		if !u {
			nc = 1 // class 0: bytes in no value
			break
		}
	}
	var rep []byte // a byte of each class
	if nc == 1 {
		rep = append(rep, 0)
		for b := range 256 {
			if !used[b] {
				rep[0] = byte(b)
				break
			}
		}
	}
	for b := range 256 {
		if used[b] {
			a.class[b] = uint32(nc)
			rep = append(rep, byte(b))
			nc++
		}
	}
	nn := len(a.fail)
	if nn*nc > limit {
		return
	}
	a.nclass = nc
	a.delta = make([]uint32, nn*nc)
	entry := func(t int32) uint32 {
		e := uint32(int(t) * nc)
		if a.match[t] != 0 {
			e |= maskDenseMatch
		}
		return e
	}
	for k, b := range rep {
		a.delta[k] = entry(a.root[b])
	}
	// Breadth-first, so a node's fail target's row is complete before it.
	for n := 1; n < nn; n++ {
		row, frow := a.delta[n*nc:(n+1)*nc], a.delta[int(a.fail[n])*nc:]
		for k, b := range rep {
			if t := a.child(int32(n), b); t != 0 {
				row[k] = entry(t)
			} else {
				row[k] = frow[k]
			}
		}
	}
}

// child is the node reached from n (not the root) by c, or 0.
func (a *maskAutomaton) child(n int32, c byte) int32 {
	lo, hi := a.edgeStart[n], a.edgeStart[n+1]
	if hi-lo <= 8 {
		for e := lo; e < hi; e++ {
			if a.edgeByte[e] == c {
				return a.edgeNext[e]
			}
		}
		return 0
	}
	for lo < hi {
		mid := int32(uint32(lo+hi) >> 1)
		switch b := a.edgeByte[mid]; {
		case b == c:
			return a.edgeNext[mid]
		case b < c:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0
}

// step is the trie edge from n by c, or 0: no fail links followed.
func (a *maskAutomaton) step(n int32, c byte) int32 {
	if n == 0 {
		return a.root[c]
	}
	return a.child(n, c)
}

// MaskWriter masks one log stream. It is not safe for concurrent use: give
// each stream its own, sharing the job's MaskSet.
//
// Holdback: Write returns every byte that can no longer become part of an
// occurrence of a value, and holds back only the longest tail of the stream
// that is still the beginning of some value (it may yet complete one; an
// occurrence already found inside that tail may yet be swallowed by a longer
// overlapping one). So ordinary output passes straight through, and the bytes
// held back are fewer than the longest value. Once a masked run's "***" has
// been written, the rest of the run is dropped as it arrives. Flush releases
// what is held back at the end of the stream.
//
// A value added to the set while the stream runs applies to every byte not
// yet returned, including the held-back tail.
type MaskWriter struct {
	set   *MaskSet
	ac    *maskAutomaton // the automaton scanning with; nil before the first write
	state int32          // automaton node after the last byte scanned

	// pend holds the stream's bytes from absolute offset off to pos that
	// are not returned yet; bytes before emit are decided (returned or
	// masked), those from emit on are held back.
	pend      []byte
	off, emit int64
	pos       int64

	// runs are the masked runs not yet finished, sorted and disjoint, from
	// runs[head] on. Only the first may be starred (its "***" written).
	runs []maskRun
	head int

	out []byte // output being built by the current call
}

// maskRun is a run of overlapping or touching occurrences: bytes [start, end).
type maskRun struct {
	start, end int64
	starred    bool
}

// maskMaxPendingRuns bounds the runs kept while scanning one write before the
// finished ones are released, so a value found millions of times in one huge
// chunk does not pile up a list.
const maskMaxPendingRuns = 64

// NewMaskWriter starts a stream masked with set.
func NewMaskWriter(set *MaskSet) *MaskWriter {
	return &MaskWriter{set: set}
}

// Write masks the next chunk of the stream and returns the bytes safe to
// store now (a new slice; chunk is not retained).
func (w *MaskWriter) Write(chunk []byte) []byte {
	a := w.set.automaton()
	if len(a.edgeByte) == 0 && len(w.pend) == 0 { // nothing to mask
		w.ac = a
		w.pos += int64(len(chunk))
		w.off, w.emit = w.pos, w.pos
		return append([]byte(nil), chunk...)
	}
	w.out = make([]byte, 0, len(chunk)+len(w.pend))
	if a != w.ac {
		w.rescan(a)
	}
	w.pend = append(w.pend, chunk...)
	w.scan(chunk)
	w.finish(w.pos - int64(a.depth[w.state]))
	return w.take()
}

// Flush ends the stream: it returns whatever was held back, masked, and
// resets the writer for a new stream.
func (w *MaskWriter) Flush() []byte {
	if w.ac == nil {
		return nil
	}
	w.out = make([]byte, 0, len(w.pend)+len(maskReplacement))
	if a := w.set.automaton(); a != w.ac {
		w.rescan(a)
	}
	w.finish(w.pos + 1) // no byte follows: every run is complete
	out := w.take()
	*w = MaskWriter{set: w.set}
	return out
}

// Clone copies a writer, so a chunk can be masked on the copy and the copy
// kept only if the chunk is stored.
func (w *MaskWriter) Clone() *MaskWriter {
	c := *w
	c.pend = slices.Clone(w.pend)
	c.runs = slices.Clone(w.runs)
	c.out = nil
	return &c
}

// rescan switches to a new automaton (values were added): the held-back bytes
// are scanned again from the root, so the new values apply to them too. A
// starred run stays; runs not yet starred are found again.
func (w *MaskWriter) rescan(a *maskAutomaton) {
	w.ac = a
	w.state = 0
	if w.head < len(w.runs) && w.runs[w.head].starred {
		w.runs = append(w.runs[:0], w.runs[w.head])
	} else {
		w.runs = w.runs[:0]
	}
	w.head = 0
	if len(w.pend) == 0 {
		return
	}
	held := w.pend[w.emit-w.off:]
	w.pos = w.emit
	w.scan(held)
}

// scan runs the automaton over data, the bytes from w.pos on, recording the
// longest occurrence ending at each byte.
func (w *MaskWriter) scan(data []byte) {
	if w.ac.delta != nil {
		w.scanDense(data)
		return
	}
	a := w.ac
	s := w.state
	base := w.pos
	for i := 0; i < len(data); i++ {
		if s == 0 {
			// At the root: skip bytes that start no value.
			for i < len(data) && a.root[data[i]] == 0 {
				i++
			}
			if i == len(data) {
				break
			}
			s = a.root[data[i]]
		} else {
			c := data[i]
			for {
				if t := a.child(s, c); t != 0 {
					s = t
					break
				}
				if s = a.fail[s]; s == 0 {
					s = a.root[c]
					break
				}
			}
		}
		if m := a.match[s]; m != 0 {
			end := base + int64(i) + 1
			w.found(end-int64(m), end)
			if len(w.runs)-w.head > maskMaxPendingRuns {
				w.pos = end
				w.finish(end - int64(a.depth[s]))
			}
		}
	}
	w.state = s
	w.pos = base + int64(len(data))
}

// scanDense is scan with the DFA table.
func (w *MaskWriter) scanDense(data []byte) {
	a := w.ac
	delta, class := a.delta, &a.class
	off := uint32(int(w.state) * a.nclass) // row offset of the current node
	base := w.pos
	for i := 0; i < len(data); i++ {
		if off == 0 {
			// At the root: skip bytes that start no value.
			for i < len(data) && a.root[data[i]] == 0 {
				i++
			}
			if i == len(data) {
				break
			}
		}
		e := delta[off+class[data[i]]]
		off = e &^ maskDenseMatch
		if e&maskDenseMatch != 0 {
			s := int32(int(off) / a.nclass)
			end := base + int64(i) + 1
			w.found(end-int64(a.match[s]), end)
			if len(w.runs)-w.head > maskMaxPendingRuns {
				w.pos = end
				w.finish(end - int64(a.depth[s]))
			}
		}
	}
	w.state = int32(int(off) / a.nclass)
	w.pos = base + int64(len(data))
}

// found records an occurrence [start, end); end is the furthest yet.
func (w *MaskWriter) found(start, end int64) {
	n := len(w.runs)
	if n > w.head && start <= w.runs[n-1].end {
		// Merge with every pending run it reaches back to.
		r := w.runs[n-1]
		for n > w.head && start <= w.runs[n-1].end {
			r = w.runs[n-1]
			n--
		}
		r.start = min(r.start, start)
		r.end = end
		w.runs = append(w.runs[:n], r)
		return
	}
	w.runs = append(w.runs, maskRun{start: start, end: end})
}

// finish writes to w.out what is decided given final, the smallest offset at
// which a later occurrence can start: plain bytes before final, and "***"
// for each run that starts at or before it (a later occurrence may still
// extend such a run to the right, but not to the left).
func (w *MaskWriter) finish(final int64) {
	for w.head < len(w.runs) {
		r := &w.runs[w.head]
		if r.start > final { // a later occurrence could still start before it
			break
		}
		if !r.starred {
			w.out = append(w.out, w.pend[w.emit-w.off:r.start-w.off]...)
			w.out = append(w.out, maskReplacement...)
			r.starred = true
		}
		w.emit = r.end
		if r.end < final { // nothing later can touch it
			w.head++
			continue
		}
		return // still open: later occurrences may extend it
	}
	if w.head == len(w.runs) {
		w.runs, w.head = w.runs[:0], 0
	}
	upto := min(final, w.pos)
	if w.head < len(w.runs) {
		upto = min(upto, w.runs[w.head].start)
	}
	if upto > w.emit {
		w.out = append(w.out, w.pend[w.emit-w.off:upto-w.off]...)
		w.emit = upto
	}
}

// take returns the output built and drops the decided bytes from pend.
func (w *MaskWriter) take() []byte {
	if drop := w.emit - w.off; drop > 0 {
		n := copy(w.pend, w.pend[drop:])
		w.pend = w.pend[:n]
		w.off = w.emit
	}
	out := w.out
	w.out = nil
	if out == nil {
		out = []byte{}
	}
	return out
}
