// ANSI escapes to HTML, for job logs on the run page.
//
// Log text is escaped; SGR colour and style sequences become spans with
// classes (or, for 256-colour and RGB, a style of computed hex colours);
// every other escape sequence and control character is dropped. GitHub's
// "##[error]" and friends at the start of a line style the line.
//
// "##[group]TITLE" starts a collapsible section, <details class="group">
// with the title as its <summary>, that "##[endgroup]" (or the next group)
// ends. A title is held back until its line is complete, so it is never
// cut. Each run of Write calls and End makes balanced markup, so a section
// a run leaves open is closed at its end; the next run (a live update)
// starts with <div class="gcont">, the section's continuation, which the
// run page's script moves into the section it continues.

package logtext

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	ansiBold = 1 << iota
	ansiDim
	ansiItalic
	ansiUnderline
)

// Line kinds, from a "##[kind]" prefix.
const (
	lineNone = iota
	lineError
	lineWarning
	lineNotice
	lineDebug
	lineGroup
	lineCommand
	lineHidden // ##[endgroup]: the line is not shown
)

var lineMarkers = []struct {
	marker string
	kind   int
	class  string
	prefix string
}{
	{"##[error]", lineError, "l-error", "Error: "},
	{"##[warning]", lineWarning, "l-warning", "Warning: "},
	{"##[notice]", lineNotice, "l-notice", "Notice: "},
	{"##[debug]", lineDebug, "l-debug", ""},
	{"##[group]", lineGroup, "l-group", ""},
	{"##[command]", lineCommand, "l-command", ""},
	{"##[endgroup]", lineHidden, "", ""},
}

// ansiPendingMax bounds an unfinished escape sequence carried to the next
// chunk; a longer one is garbage and its ESC is dropped.
const ansiPendingMax = 512

// ansiColor is no colour (kind 0), a palette index (1) or RGB (2).
type ansiColor struct {
	kind uint8
	v    uint32
}

// State is what rendering carries from one chunk of a step's log to
// the next: the style in force, the line's kind, whether a line is under
// way, and the bytes of an escape sequence, UTF-8 character or marker that
// the chunk cut.
type State struct {
	attrs   uint8
	fg, bg  ansiColor
	line    uint8
	mid     bool
	group   bool // inside a ##[group] section
	cont    bool // the line began at a lone CR: it shares its number with the line before
	lineNo  uint64
	pending []byte
}

// Encode packs the state for the page to send back: "" for a fresh line
// in the default style.
func (st State) Encode() string {
	if st.attrs == 0 && st.fg.kind == 0 && st.bg.kind == 0 && st.line == 0 && !st.mid && !st.group && !st.cont &&
		st.lineNo == 0 && len(st.pending) == 0 {
		return ""
	}
	b := []byte{st.attrs, st.line}
	if st.group {
		b[0] |= 0x10
	}
	if st.cont {
		b[0] |= 0x20
	}
	if st.mid {
		b[1] |= 0x80
	}
	for _, c := range []ansiColor{st.fg, st.bg} {
		b = append(b, c.kind)
		switch c.kind {
		case 1:
			b = append(b, byte(c.v))
		case 2:
			b = append(b, byte(c.v>>16), byte(c.v>>8), byte(c.v))
		}
	}
	b = binary.AppendUvarint(b, st.lineNo)
	b = append(b, st.pending...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// StateAtLine is the state to render a log from after lines complete
// lines that the page leaves out, mid-line when the part left out ended
// in one: the numbers of the lines shown go on from there.
func StateAtLine(lines uint64, mid bool) State {
	return State{lineNo: lines, mid: mid}
}

// DecodeState reads back what Encode packed; the text comes from a page,
// so anything malformed is an error.
func DecodeState(s string) (State, error) {
	var st State
	if s == "" {
		return st, nil
	}
	bad := errors.New("bad log state")
	if len(s) > 2*ansiPendingMax {
		return st, bad
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 4 {
		return st, bad
	}
	st.attrs, st.line, st.mid, st.group, st.cont = b[0]&0x0f, b[1]&0x7f, b[1]&0x80 != 0, b[0]&0x10 != 0, b[0]&0x20 != 0
	if st.line > lineHidden || b[0]&0xc0 != 0 {
		return st, bad
	}
	b = b[2:]
	for _, c := range []*ansiColor{&st.fg, &st.bg} {
		if len(b) == 0 {
			return st, bad
		}
		c.kind, b = b[0], b[1:]
		n := map[uint8]int{0: 0, 1: 1, 2: 3}
		k, ok := n[c.kind]
		if !ok || len(b) < k {
			return st, bad
		}
		for _, x := range b[:k] {
			c.v = c.v<<8 | uint32(x)
		}
		b = b[k:]
	}
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return st, bad
	}
	st.lineNo, b = n, b[k:]
	if len(b) > ansiPendingMax {
		return st, bad
	}
	st.pending = slices.Clone(b)
	return st, nil
}

// HTML renders log bytes as HTML. Each run of Write calls and End
// makes balanced markup; State carries on to the next.
//
// With LinePrefix set, each shown line starts with its number as a link
// to itself, <a class="ln" id="PREFIXn" href="#PREFIXn" data-n="n"></a>
// (the number is drawn by CSS, so that it is neither copied nor searched).
// Line n is the step log's nth LF-ended line, as in the raw log; a line a
// lone CR (progress output) starts is shown but shares its number. With
// Stamp set, the anchor is followed by <span class="ts">Stamp</span>, the
// time of the chunk the line began in.
type HTML struct {
	State       State
	LinePrefix  string
	Stamp       string
	Out         strings.Builder
	sgrOpen     bool
	lineOpen    bool
	groupOpen   string // the element of a section open in out: "details", "div" (a continuation) or ""
	summaryOpen bool   // a section's title is being written
	flush       bool   // End(true): render a held-back title as it is
}

func (a *HTML) Write(p []byte) {
	data := p
	if len(a.State.pending) > 0 {
		data = append(a.State.pending, p...)
		a.State.pending = nil
	}
	for i := 0; i < len(data); {
		if !a.State.mid {
			n, partial := a.marker(data[i:])
			if partial {
				a.State.pending = slices.Clone(data[i:])
				return
			}
			if n > 0 {
				i += n
				continue
			}
		}
		c := data[i]
		switch {
		case c == 0x1b:
			n, ok := a.escape(data[i:])
			if !ok {
				if len(data)-i <= ansiPendingMax {
					a.State.pending = slices.Clone(data[i:])
					return
				}
				n = 1 // unterminated and too long: drop the ESC, show the rest
			}
			i += n
		case c == '\n':
			a.newline(true)
			i++
		case c == '\r':
			if i+1 == len(data) {
				a.State.pending = []byte{'\r'}
				return
			}
			if data[i+1] != '\n' {
				a.newline(false) // a lone CR (progress output) starts a new line
			}
			i++
		case c == '\t':
			a.text("\t")
			i++
		case c < 0x20 || c == 0x7f:
			i++
		case c < 0x80:
			j := i + 1
			for j < len(data) && data[j] >= 0x20 && data[j] < 0x7f {
				j++
			}
			a.textBytes(data[i:j])
			i = j
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size <= 1 {
				if !utf8.FullRune(data[i:]) {
					a.State.pending = slices.Clone(data[i:])
					return
				}
				a.text("\uFFFD")
				i++
				continue
			}
			a.textBytes(data[i : i+size])
			i += size
		}
	}
}

// End closes the open spans. When final (the log is complete), what was
// held back is shown as it is, never as escape garbage.
func (a *HTML) End(final bool) {
	if final && len(a.State.pending) > 0 {
		p := a.State.pending
		a.State.pending = nil
		if bytes.HasPrefix(p, []byte("##[group]")) { // a title whose line never ended
			a.flush = true
			a.Write(p)
			p, a.State.pending = a.State.pending, nil
		}
		switch {
		case len(p) == 0, p[0] == 0x1b, p[0] == '\r':
		case p[0] == '#':
			a.State.mid = true
			a.text(string(p))
		default:
			a.text(strings.ToValidUTF8(string(p), "\uFFFD"))
		}
	}
	a.closeGroup()
}

// marker handles a "##[kind]" at the start of a line: n bytes consumed,
// or partial when data may be the start of one.
func (a *HTML) marker(data []byte) (n int, partial bool) {
	if len(data) == 0 || data[0] != '#' {
		return 0, false
	}
	for _, m := range lineMarkers {
		if bytes.HasPrefix(data, []byte(m.marker)) {
			switch m.kind {
			case lineGroup:
				// The title is held back until its line ends, up to a
				// bound: past it, the title is what there is.
				rest := data[len(m.marker):]
				eol := bytes.IndexAny(rest, "\r\n")
				if !a.flush && (eol < 0 || eol == len(rest)-1 && rest[eol] == '\r') && len(data) <= ansiPendingMax {
					return 0, true
				}
				a.closeGroup()
				a.State.group = true
				a.Out.WriteString(`<details class="group"><summary>`)
				a.groupOpen, a.summaryOpen = "details", true
				a.anchor()
			case lineHidden:
				a.closeGroup()
				a.State.group = false
			default:
				a.enterGroup()
				a.anchor()
			}
			a.State.line, a.State.mid = uint8(m.kind), true
			if m.prefix != "" {
				a.text("")
				a.Out.WriteString(`<span class="l-tag">` + m.prefix + `</span>`)
			}
			return len(m.marker), false
		}
		if len(data) < len(m.marker) && strings.HasPrefix(m.marker, string(data)) && !a.flush {
			return 0, true
		}
	}
	return 0, false
}

// escape consumes one escape sequence at data[0] (ESC); ok is false when
// data ends before it does.
func (a *HTML) escape(data []byte) (n int, ok bool) {
	if len(data) < 2 {
		return 0, false
	}
	switch c := data[1]; {
	case c == '[': // CSI: parameters, intermediates, a final byte
		j := 2
		for j < len(data) && data[j] >= 0x30 && data[j] <= 0x3f {
			j++
		}
		k := j
		for k < len(data) && data[k] >= 0x20 && data[k] <= 0x2f {
			k++
		}
		if k == len(data) {
			return 0, false
		}
		if data[k] < 0x40 || data[k] > 0x7e {
			return k, true // malformed: drop what was read
		}
		if data[k] == 'm' && k == j {
			a.sgr(string(data[2:j]))
		}
		return k + 1, true
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_': // strings ended by BEL or ESC \
		for j := 2; j < len(data); j++ {
			if data[j] == 0x07 {
				return j + 1, true
			}
			if data[j] == 0x1b {
				if j+1 == len(data) {
					return 0, false
				}
				if data[j+1] == '\\' {
					return j + 2, true
				}
			}
		}
		return 0, false
	case c >= 0x20 && c <= 0x2f: // ESC ( B and the like
		if len(data) < 3 {
			return 0, false
		}
		return 3, true
	}
	return 2, true
}

// sgr applies Select Graphic Rendition parameters.
func (a *HTML) sgr(params string) {
	var ps []int
	for _, f := range strings.FieldsFunc(params, func(r rune) bool { return r == ';' || r == ':' }) {
		n, err := strconv.Atoi(f)
		if err != nil || n > 0xffff {
			n = -1
		}
		ps = append(ps, n)
	}
	if len(ps) == 0 {
		ps = []int{0}
	}
	st := a.State
	for i := 0; i < len(ps); i++ {
		p := ps[i]
		switch {
		case p == 0:
			st.attrs, st.fg, st.bg = 0, ansiColor{}, ansiColor{}
		case p == 1:
			st.attrs |= ansiBold
		case p == 2:
			st.attrs |= ansiDim
		case p == 3:
			st.attrs |= ansiItalic
		case p == 4:
			st.attrs |= ansiUnderline
		case p == 22:
			st.attrs &^= ansiBold | ansiDim
		case p == 23:
			st.attrs &^= ansiItalic
		case p == 24:
			st.attrs &^= ansiUnderline
		case p >= 30 && p <= 37:
			st.fg = ansiColor{1, uint32(p - 30)}
		case p >= 90 && p <= 97:
			st.fg = ansiColor{1, uint32(p - 90 + 8)}
		case p == 39:
			st.fg = ansiColor{}
		case p >= 40 && p <= 47:
			st.bg = ansiColor{1, uint32(p - 40)}
		case p >= 100 && p <= 107:
			st.bg = ansiColor{1, uint32(p - 100 + 8)}
		case p == 49:
			st.bg = ansiColor{}
		case p == 38 || p == 48:
			var c ansiColor
			switch {
			case i+2 < len(ps) && ps[i+1] == 5 && ps[i+2] >= 0 && ps[i+2] <= 255:
				c, i = ansiColor{1, uint32(ps[i+2])}, i+2
			case i+4 < len(ps) && ps[i+1] == 2 && inByte(ps[i+2]) && inByte(ps[i+3]) && inByte(ps[i+4]):
				c, i = ansiColor{2, uint32(ps[i+2])<<16 | uint32(ps[i+3])<<8 | uint32(ps[i+4])}, i+4
			default:
				i = len(ps) // malformed: ignore the rest
				continue
			}
			if p == 38 {
				st.fg = c
			} else {
				st.bg = c
			}
		}
	}
	if st.attrs != a.State.attrs || st.fg != a.State.fg || st.bg != a.State.bg {
		a.closeSGR()
		a.State.attrs, a.State.fg, a.State.bg = st.attrs, st.fg, st.bg
	}
}

func inByte(n int) bool { return n >= 0 && n <= 255 }

// ansiRGB is a palette colour beyond the 16 the stylesheet names.
func ansiRGB(c ansiColor) string {
	v := c.v
	if c.kind == 1 {
		switch n := int(v); {
		case n >= 232:
			g := uint32(8 + 10*(n-232))
			v = g<<16 | g<<8 | g
		default:
			n -= 16
			level := func(x int) uint32 {
				if x == 0 {
					return 0
				}
				return uint32(55 + 40*x)
			}
			v = level(n/36)<<16 | level(n/6%6)<<8 | level(n%6)
		}
	}
	return fmt.Sprintf("#%06x", v)
}

func (a *HTML) text(s string) { a.textBytes([]byte(s)) }

// textBytes writes log text, escaped, in the style in force: text's body,
// taking the bytes as they are so that a page of lines allocates little.
func (a *HTML) textBytes(s []byte) {
	if a.State.line == lineHidden {
		return
	}
	a.enterGroup()
	if !a.State.mid {
		a.anchor()
	}
	a.State.mid = true
	if a.State.line != lineNone && !a.lineOpen {
		a.Out.WriteString(`<span class="` + lineMarkers[a.State.line-1].class + `">`)
		a.lineOpen = true
	}
	if len(s) == 0 {
		return
	}
	if !a.sgrOpen && (a.State.attrs != 0 || a.State.fg.kind != 0 || a.State.bg.kind != 0) {
		var classes, style []string
		for _, f := range []struct {
			bit   uint8
			class string
		}{{ansiBold, "a-b"}, {ansiDim, "a-d"}, {ansiItalic, "a-i"}, {ansiUnderline, "a-u"}} {
			if a.State.attrs&f.bit != 0 {
				classes = append(classes, f.class)
			}
		}
		for _, c := range []struct {
			c     ansiColor
			class string
			prop  string
		}{{a.State.fg, "a-f", "color"}, {a.State.bg, "a-g", "background-color"}} {
			switch {
			case c.c.kind == 1 && c.c.v < 16:
				classes = append(classes, c.class+strconv.Itoa(int(c.c.v)))
			case c.c.kind != 0:
				style = append(style, c.prop+":"+ansiRGB(c.c))
			}
		}
		a.Out.WriteString(`<span`)
		if len(classes) > 0 {
			a.Out.WriteString(` class="` + strings.Join(classes, " ") + `"`)
		}
		if len(style) > 0 {
			a.Out.WriteString(` style="` + strings.Join(style, ";") + `"`)
		}
		a.Out.WriteString(`>`)
		a.sgrOpen = true
	}
	template.HTMLEscape(&a.Out, s)
}

// newline ends a line: at an LF (lf), or at a lone CR, which starts a
// line that shares the number of the one it follows.
func (a *HTML) newline(lf bool) {
	hidden := a.State.line == lineHidden
	if !hidden && !a.State.mid { // an empty line still has its number
		a.enterGroup()
		a.anchor()
	}
	a.closeSGR()
	a.closeLine()
	a.State.line, a.State.mid = lineNone, false
	switch {
	case a.summaryOpen: // the title's line ends with the summary
		a.Out.WriteString("</summary>")
		a.summaryOpen = false
	case !hidden:
		a.enterGroup()
		a.Out.WriteByte('\n')
	}
	if lf {
		a.State.lineNo++
	}
	a.State.cont = !lf
}

// anchor starts a shown line with its number and time, unless it began at
// a lone CR.
func (a *HTML) anchor() {
	if a.State.cont {
		return
	}
	if a.LinePrefix != "" { // written piece by piece: this runs for every line of a page
		var nb [20]byte
		n := strconv.AppendUint(nb[:0], a.State.lineNo+1, 10)
		a.Out.WriteString(`<a class="ln" id="`)
		a.Out.WriteString(a.LinePrefix)
		a.Out.Write(n)
		a.Out.WriteString(`" href="#`)
		a.Out.WriteString(a.LinePrefix)
		a.Out.Write(n)
		a.Out.WriteString(`" data-n="`)
		a.Out.Write(n)
		a.Out.WriteString(`"></a>`)
	}
	if a.Stamp != "" {
		a.Out.WriteString(`<span class="ts">`)
		a.Out.WriteString(a.Stamp)
		a.Out.WriteString(`</span>`)
	}
}

// enterGroup opens the continuation of a section an earlier run left open,
// before the first thing this run shows in it.
func (a *HTML) enterGroup() {
	if a.State.group && a.groupOpen == "" {
		a.Out.WriteString(`<div class="gcont">`)
		a.groupOpen = "div"
	}
}

// closeGroup closes what this run has open of a section: its title, and
// the section or its continuation. a.State.group is the caller's to change.
func (a *HTML) closeGroup() {
	a.closeLine()
	if a.summaryOpen {
		a.Out.WriteString("</summary>")
		a.summaryOpen = false
	}
	if a.groupOpen != "" {
		a.Out.WriteString("</" + a.groupOpen + ">")
		a.groupOpen = ""
	}
}

func (a *HTML) closeSGR() {
	if a.sgrOpen {
		a.Out.WriteString("</span>")
		a.sgrOpen = false
	}
}

func (a *HTML) closeLine() {
	a.closeSGR()
	if a.lineOpen {
		a.Out.WriteString("</span>")
		a.lineOpen = false
	}
}
