package logtext

// A small GitHub-flavoured Markdown renderer for step summaries
// ($GITHUB_STEP_SUMMARY), producing safe HTML.
//
// Blocks: ATX and setext headings, paragraphs, fenced and indented code,
// bullet and ordered lists (nested), block quotes, thematic breaks and GFM
// pipe tables. Inlines: code spans, backslash escapes, *em*/_em_,
// **strong**/__strong__, ~~strikethrough~~, links [text](url), images (shown
// as links to the image), <autolinks>, bare http(s):// and www. links, hard
// line breaks and <br>. Everything else, raw HTML included, is escaped text.
//
// The output only ever holds the tags in mdAllowedTags, with no attribute
// but href (http, https or mailto URLs) on <a> and class on <code> (the
// fence's language), <th> and <td> (alignment). The runner refuses a summary
// over 1 MiB; so does RenderMarkdown.

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

const mdMaxInput = 1 << 20

const mdMaxDepth = 16

var mdAllowedTags = map[string]bool{
	"h1": true, "h2": true, "h3": true, "h4": true, "h5": true, "h6": true,
	"p": true, "em": true, "strong": true, "del": true, "code": true, "pre": true,
	"ul": true, "ol": true, "li": true, "a": true, "blockquote": true, "hr": true, "br": true,
	"table": true, "thead": true, "tbody": true, "tr": true, "th": true, "td": true,
}

// RenderMarkdown renders Markdown to safe HTML.
func RenderMarkdown(src []byte) (string, error) {
	if len(src) > mdMaxInput {
		return "", fmt.Errorf("step summary is %d bytes, more than the %d-byte limit", len(src), mdMaxInput)
	}
	s := strings.ToValidUTF8(string(src), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = mdExpandTabs(l)
	}
	var b strings.Builder
	mdBlocks(&b, lines, 0, false)
	return b.String(), nil
}

// mdExpandTabs turns tabs in a line's indentation into spaces (stops of 4).
func mdExpandTabs(l string) string {
	if !strings.Contains(l, "\t") {
		return l
	}
	var b strings.Builder
	col := 0
	for i := 0; i < len(l); i++ {
		switch l[i] {
		case '\t':
			n := 4 - col%4
			b.WriteString(strings.Repeat(" ", n))
			col += n
		case ' ':
			b.WriteByte(' ')
			col++
		default:
			b.WriteString(l[i:])
			return b.String()
		}
	}
	return b.String()
}

func mdIndent(l string) int {
	n := 0
	for n < len(l) && l[n] == ' ' {
		n++
	}
	return n
}

func mdBlank(l string) bool { return strings.TrimSpace(l) == "" }

// mdBlocks renders lines as blocks. In a tight list item, paragraphs are
// written without <p>.
func mdBlocks(b *strings.Builder, lines []string, depth int, tight bool) {
	if depth > mdMaxDepth {
		mdParagraph(b, lines, false)
		return
	}
	for i := 0; i < len(lines); {
		l := lines[i]
		if mdBlank(l) {
			i++
			continue
		}
		ind := mdIndent(l)
		if ind >= 4 {
			i = mdIndentedCode(b, lines, i)
			continue
		}
		s := l[ind:]
		if c, n, ok := mdFenceOpen(s); ok {
			i = mdFenced(b, lines, i, ind, c, n)
			continue
		}
		if lvl, text, ok := mdATX(s); ok {
			fmt.Fprintf(b, "<h%d>", lvl)
			mdInline(b, text, false)
			fmt.Fprintf(b, "</h%d>\n", lvl)
			i++
			continue
		}
		if mdThematic(s) {
			b.WriteString("<hr>\n")
			i++
			continue
		}
		if strings.HasPrefix(s, ">") {
			i = mdQuote(b, lines, i, depth)
			continue
		}
		if _, ok := mdListMarker(s); ok {
			i = mdList(b, lines, i, depth)
			continue
		}
		if n := mdTable(b, lines, i); n > i {
			i = n
			continue
		}
		// Paragraph, possibly a setext heading.
		j := i + 1
		level := 0
		for ; j < len(lines); j++ {
			if lvl := mdSetext(lines[j]); lvl > 0 {
				level = lvl
				break
			}
			if mdBlank(lines[j]) || mdInterrupts(lines[j]) {
				break
			}
		}
		if level > 0 {
			fmt.Fprintf(b, "<h%d>", level)
			mdInline(b, mdJoinParagraph(lines[i:j]), false)
			fmt.Fprintf(b, "</h%d>\n", level)
			i = j + 1
			continue
		}
		mdParagraph(b, lines[i:j], tight)
		i = j
	}
}

func mdJoinParagraph(lines []string) string {
	parts := make([]string, len(lines))
	for i, l := range lines {
		parts[i] = strings.TrimLeft(l, " ")
	}
	return strings.TrimRight(strings.Join(parts, "\n"), " ")
}

func mdParagraph(b *strings.Builder, lines []string, tight bool) {
	text := mdJoinParagraph(lines)
	if strings.TrimSpace(text) == "" {
		return
	}
	if !tight {
		b.WriteString("<p>")
	}
	mdInline(b, text, false)
	if !tight {
		b.WriteString("</p>")
	}
	b.WriteString("\n")
}

// mdInterrupts reports whether a line starts a block that ends a paragraph.
func mdInterrupts(l string) bool {
	ind := mdIndent(l)
	if ind >= 4 {
		return false
	}
	s := l[ind:]
	if _, _, ok := mdFenceOpen(s); ok {
		return true
	}
	if _, _, ok := mdATX(s); ok {
		return true
	}
	if mdThematic(s) || strings.HasPrefix(s, ">") {
		return true
	}
	if m, ok := mdListMarker(s); ok {
		// An empty item, or an ordered one not starting at 1, cannot
		// interrupt a paragraph.
		return strings.TrimSpace(s[m.width:]) != "" && (!m.ordered || m.start == 1)
	}
	return false
}

func mdSetext(l string) int {
	if mdIndent(l) >= 4 {
		return 0
	}
	s := strings.TrimSpace(l)
	if s == "" {
		return 0
	}
	if strings.Trim(s, "=") == "" {
		return 1
	}
	if strings.Trim(s, "-") == "" {
		return 2
	}
	return 0
}

func mdFenceOpen(s string) (byte, int, bool) {
	if len(s) < 3 || (s[0] != '`' && s[0] != '~') {
		return 0, 0, false
	}
	c := s[0]
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	if n < 3 || (c == '`' && strings.Contains(s[n:], "`")) {
		return 0, 0, false
	}
	return c, n, true
}

func mdFenced(b *strings.Builder, lines []string, i, ind int, c byte, n int) int {
	s := lines[i][ind:]
	info := strings.TrimSpace(s[n:])
	lang := ""
	if f := strings.Fields(info); len(f) > 0 {
		lang = mdClassName(html.UnescapeString(f[0]))
	}
	if lang != "" {
		fmt.Fprintf(b, `<pre><code class="language-%s">`, lang)
	} else {
		b.WriteString("<pre><code>")
	}
	j := i + 1
	for ; j < len(lines); j++ {
		l := lines[j]
		li := mdIndent(l)
		if li < 4 {
			t := strings.TrimRight(l[li:], " ")
			if len(t) >= n && strings.Trim(t, string(c)) == "" {
				j++
				break
			}
		}
		strip := ind
		if li < strip {
			strip = li
		}
		b.WriteString(mdEscape(l[strip:]))
		b.WriteString("\n")
	}
	b.WriteString("</code></pre>\n")
	return j
}

// mdClassName keeps a fence language to characters safe in a class name.
func mdClassName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-_+.#", r)) {
			b.WriteRune(r)
		}
	}
	if b.Len() > 40 {
		return b.String()[:40]
	}
	return b.String()
}

func mdIndentedCode(b *strings.Builder, lines []string, i int) int {
	j := i
	last := i
	for ; j < len(lines); j++ {
		if mdBlank(lines[j]) {
			continue
		}
		if mdIndent(lines[j]) < 4 {
			break
		}
		last = j
	}
	b.WriteString("<pre><code>")
	for k := i; k <= last; k++ {
		l := lines[k]
		if len(l) >= 4 {
			l = l[4:]
		} else {
			l = ""
		}
		b.WriteString(mdEscape(l))
		b.WriteString("\n")
	}
	b.WriteString("</code></pre>\n")
	return last + 1
}

func mdATX(s string) (int, string, bool) {
	n := 0
	for n < len(s) && s[n] == '#' {
		n++
	}
	if n == 0 || n > 6 || (n < len(s) && s[n] != ' ') {
		return 0, "", false
	}
	text := strings.TrimSpace(s[n:])
	// Drop a closing sequence of #s preceded by a space (or alone).
	t := strings.TrimRight(text, "#")
	if t == "" || strings.HasSuffix(t, " ") {
		text = strings.TrimSpace(t)
	}
	return n, text, true
}

func mdThematic(s string) bool {
	t := strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if len(t) < 3 {
		return false
	}
	c := t[0]
	return (c == '*' || c == '-' || c == '_') && strings.Trim(t, string(c)) == ""
}

func mdQuote(b *strings.Builder, lines []string, i, depth int) int {
	var inner []string
	j := i
	for ; j < len(lines); j++ {
		l := lines[j]
		ind := mdIndent(l)
		if ind < 4 && strings.HasPrefix(l[ind:], ">") {
			s := l[ind+1:]
			if strings.HasPrefix(s, " ") {
				s = s[1:]
			}
			inner = append(inner, s)
			continue
		}
		// Lazy continuation of a paragraph inside the quote.
		if !mdBlank(l) && len(inner) > 0 && !mdBlank(inner[len(inner)-1]) && !mdInterrupts(l) && mdSetext(l) == 0 {
			inner = append(inner, l)
			continue
		}
		break
	}
	b.WriteString("<blockquote>\n")
	mdBlocks(b, inner, depth+1, false)
	b.WriteString("</blockquote>\n")
	return j
}

type mdMarker struct {
	ordered bool
	char    byte // bullet, or '.' / ')' for ordered
	start   int
	width   int // marker plus the spaces up to the content
}

func mdListMarker(s string) (mdMarker, bool) {
	var m mdMarker
	n := 0
	switch {
	case len(s) > 0 && (s[0] == '-' || s[0] == '*' || s[0] == '+'):
		m.char = s[0]
		n = 1
	default:
		for n < len(s) && n < 9 && s[n] >= '0' && s[n] <= '9' {
			m.start = m.start*10 + int(s[n]-'0')
			n++
		}
		if n == 0 || n >= len(s) || (s[n] != '.' && s[n] != ')') {
			return m, false
		}
		m.ordered = true
		m.char = s[n]
		n++
	}
	if n < len(s) && s[n] != ' ' {
		return m, false
	}
	sp := 0
	for n+sp < len(s) && s[n+sp] == ' ' {
		sp++
	}
	switch {
	case n+sp == len(s): // empty item
		sp = 1
	case sp > 4: // indented code inside the item
		sp = 1
	}
	m.width = n + sp
	if m.width > len(s) {
		m.width = len(s)
	}
	return m, true
}

func mdList(b *strings.Builder, lines []string, i, depth int) int {
	first, _ := mdListMarker(lines[i][mdIndent(lines[i]):])
	type item struct{ lines []string }
	var items []item
	loose := false
	j := i
	for j < len(lines) {
		l := lines[j]
		ind := mdIndent(l)
		if ind >= 4 {
			break
		}
		m, ok := mdListMarker(l[ind:])
		if !ok || m.ordered != first.ordered || m.char != first.char || mdThematic(l[ind:]) && !first.ordered {
			break
		}
		offset := ind + m.width
		it := item{lines: []string{l[offset:]}}
		j++
		for j < len(lines) {
			l := lines[j]
			if mdBlank(l) {
				it.lines = append(it.lines, "")
				j++
				continue
			}
			if mdIndent(l) >= offset {
				it.lines = append(it.lines, l[offset:])
				j++
				continue
			}
			prev := it.lines[len(it.lines)-1]
			if prev != "" && !mdInterrupts(l) && mdSetext(l) == 0 {
				if _, isItem := mdListMarker(l[mdIndent(l):]); !isItem {
					it.lines = append(it.lines, l) // lazy continuation
					j++
					continue
				}
			}
			break
		}
		// Trailing blank lines belong between items, not to the item.
		k := len(it.lines)
		for k > 1 && it.lines[k-1] == "" {
			k--
		}
		if k < len(it.lines) && j < len(lines) {
			if next := lines[j]; mdIndent(next) < 4 {
				if m2, ok := mdListMarker(next[mdIndent(next):]); ok && m2.ordered == first.ordered && m2.char == first.char {
					loose = true
				}
			}
		}
		for x := 1; x < k-1; x++ {
			if it.lines[x] == "" && !mdInFence(it.lines[:x]) {
				loose = true
			}
		}
		it.lines = it.lines[:k]
		items = append(items, it)
	}
	// Blank lines after the last item end the list, not the item.
	for j > i && j <= len(lines) && mdBlank(lines[j-1]) {
		j--
	}
	tag := "ul"
	if first.ordered {
		tag = "ol"
	}
	b.WriteString("<" + tag + ">\n")
	for _, it := range items {
		b.WriteString("<li>")
		var inner strings.Builder
		mdBlocks(&inner, it.lines, depth+1, !loose)
		b.WriteString(strings.TrimSuffix(inner.String(), "\n"))
		b.WriteString("</li>\n")
	}
	b.WriteString("</" + tag + ">\n")
	return j
}

// mdInFence reports whether a fence is open at the end of lines.
func mdInFence(lines []string) bool {
	open := false
	var c byte
	n := 0
	for _, l := range lines {
		s := strings.TrimLeft(l, " ")
		if !open {
			if fc, fn, ok := mdFenceOpen(s); ok {
				open, c, n = true, fc, fn
			}
			continue
		}
		t := strings.TrimRight(s, " ")
		if len(t) >= n && t[0] == c && strings.Trim(t, string(c)) == "" {
			open = false
		}
	}
	return open
}

// mdSplitRow splits a table row at unescaped pipes; "\|" becomes "|".
func mdSplitRow(l string) []string {
	s := strings.TrimSpace(l)
	s = strings.TrimPrefix(s, "|")
	if strings.HasSuffix(s, "|") && !strings.HasSuffix(s, `\|`) {
		s = s[:len(s)-1]
	}
	var cells []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == '|':
			cur.WriteByte('|')
			i++
		case s[i] == '|':
			cells = append(cells, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(cells, strings.TrimSpace(cur.String()))
}

func mdDelimiterRow(l string) ([]string, bool) {
	if !strings.Contains(l, "-") || mdIndent(l) >= 4 {
		return nil, false
	}
	t := strings.TrimSpace(l)
	if !strings.Contains(t, "|") && !strings.Contains(t, ":") {
		// A bare "---" is a thematic break or setext underline; GFM still
		// reads it as a one-column delimiter row only with a pipe.
		return nil, false
	}
	cells := mdSplitRow(l)
	aligns := make([]string, len(cells))
	for i, c := range cells {
		if c == "" {
			return nil, false
		}
		left, right := strings.HasPrefix(c, ":"), strings.HasSuffix(c, ":")
		core := strings.Trim(c, ":")
		if core == "" || strings.Trim(core, "-") != "" {
			return nil, false
		}
		switch {
		case left && right:
			aligns[i] = "center"
		case left:
			aligns[i] = "left"
		case right:
			aligns[i] = "right"
		}
	}
	return aligns, true
}

// mdTable renders a GFM table starting at lines[i], returning the index after
// it, or i if there is none.
func mdTable(b *strings.Builder, lines []string, i int) int {
	if i+1 >= len(lines) || !strings.Contains(lines[i], "|") {
		return i
	}
	aligns, ok := mdDelimiterRow(lines[i+1])
	if !ok {
		return i
	}
	head := mdSplitRow(lines[i])
	if len(head) != len(aligns) {
		return i
	}
	row := func(cells []string, tag string) {
		b.WriteString("<tr>")
		for c := range aligns {
			if aligns[c] != "" {
				fmt.Fprintf(b, `<%s class="align-%s">`, tag, aligns[c])
			} else {
				b.WriteString("<" + tag + ">")
			}
			if c < len(cells) {
				mdInline(b, cells[c], false)
			}
			b.WriteString("</" + tag + ">")
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("<table>\n<thead>\n")
	row(head, "th")
	b.WriteString("</thead>\n")
	j := i + 2
	body := false
	for ; j < len(lines); j++ {
		l := lines[j]
		if mdBlank(l) || mdInterrupts(l) {
			break
		}
		if !body {
			b.WriteString("<tbody>\n")
			body = true
		}
		row(mdSplitRow(l), "td")
	}
	if body {
		b.WriteString("</tbody>\n")
	}
	b.WriteString("</table>\n")
	return j
}

// ---- inlines ----

func mdEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		case '"':
			b.WriteString("&quot;")
		case '\'':
			b.WriteString("&#39;")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// mdSafeURL returns the href for a link destination, or "" if its scheme is
// not http, https or mailto. The result is escaped for an attribute.
func mdSafeURL(dest string) string {
	u := html.UnescapeString(dest)
	u = strings.TrimSpace(u)
	lower := strings.ToLower(u)
	if !strings.HasPrefix(lower, "http://") && !strings.HasPrefix(lower, "https://") && !strings.HasPrefix(lower, "mailto:") {
		return ""
	}
	var b strings.Builder
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case c <= ' ' || c == 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '`':
			fmt.Fprintf(&b, "%%%02X", c)
		case c == '&':
			b.WriteString("&amp;")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func mdIsPunct(r rune) bool {
	return r < 128 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r) || unicode.IsPunct(r) || unicode.IsSymbol(r)
}

// mdNode is one inline piece: text, raw (already HTML), or a delimiter run.
type mdNode struct {
	text   string // escaped HTML for text and raw nodes; the run's characters for delimiters
	delim  byte
	count  int // characters left in the run
	orig   int
	open   bool
	close  bool
	before []string // closing tags written before the run's remaining characters
	after  []string // opening tags written after them
}

// mdInline renders inline Markdown. In link text, links are not recognised.
func mdInline(b *strings.Builder, s string, inLink bool) {
	nodes := mdTokenize(s, inLink)
	mdEmphasis(nodes)
	for _, n := range nodes {
		for _, t := range n.before {
			b.WriteString(t)
		}
		if n.delim != 0 {
			b.WriteString(strings.Repeat(string(n.delim), n.count))
		} else {
			b.WriteString(n.text)
		}
		for _, t := range n.after {
			b.WriteString(t)
		}
	}
}

func mdTokenize(s string, inLink bool) []*mdNode {
	var nodes []*mdNode
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			nodes = append(nodes, &mdNode{text: text.String()})
			text.Reset()
		}
	}
	raw := func(h string) {
		flush()
		nodes = append(nodes, &mdNode{text: h})
	}
	ticks := mdBacktickRuns(s)
	brackets := mdMatchBrackets(s, ticks)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && s[i+1] == '\n':
			raw("<br>\n")
			i += 2
			continue
		case c == '\\' && i+1 < len(s) && s[i+1] < 128 && mdIsPunct(rune(s[i+1])):
			text.WriteString(mdEscape(s[i+1 : i+2]))
			i += 2
			continue
		case c == '\n':
			// Two or more trailing spaces make a hard break.
			t := text.String()
			if strings.HasSuffix(t, "  ") {
				text.Reset()
				text.WriteString(strings.TrimRight(t, " "))
				raw("<br>\n")
			} else {
				text.Reset()
				text.WriteString(strings.TrimRight(t, " "))
				text.WriteByte('\n')
			}
			i++
			continue
		case c == '`':
			n := mdRunLen(s, i, '`')
			if end, ok := mdCloseTicks(ticks, i, n); ok {
				code := strings.ReplaceAll(s[i+n:end], "\n", " ")
				if len(code) >= 2 && code[0] == ' ' && code[len(code)-1] == ' ' && strings.Trim(code, " ") != "" {
					code = code[1 : len(code)-1]
				}
				raw("<code>" + mdEscape(code) + "</code>")
				i = end + n
				continue
			}
			text.WriteString(s[i : i+n])
			i += n
			continue
		case c == '*' || c == '_' || c == '~':
			n := mdRunLen(s, i, c)
			flush()
			before, _ := utf8.DecodeLastRuneInString(s[:i])
			after, _ := utf8.DecodeRuneInString(s[i+n:])
			if i == 0 {
				before = ' '
			}
			if i+n == len(s) {
				after = ' '
			}
			left := !unicode.IsSpace(after) && (!mdIsPunct(after) || unicode.IsSpace(before) || mdIsPunct(before))
			right := !unicode.IsSpace(before) && (!mdIsPunct(before) || unicode.IsSpace(after) || mdIsPunct(after))
			d := &mdNode{delim: c, count: n, orig: n, open: left, close: right}
			if c == '_' {
				d.open = left && (!right || mdIsPunct(before))
				d.close = right && (!left || mdIsPunct(after))
			}
			if c == '~' && n > 2 {
				d.open, d.close = false, false
			}
			nodes = append(nodes, d)
			i += n
			continue
		case (c == '[' || c == '!' && i+1 < len(s) && s[i+1] == '[') && !inLink:
			open := i
			if c == '!' {
				open = i + 1
			}
			if end, ok := brackets[open]; ok {
				if dest, next, ok := mdLinkDest(s, end+1); ok {
					label := s[open+1 : end]
					if href := mdSafeURL(dest); href != "" {
						var inner strings.Builder
						if c == '!' && label == "" {
							inner.WriteString(mdEscape(dest))
						} else {
							mdInline(&inner, label, true)
						}
						raw(`<a href="` + href + `">` + inner.String() + "</a>")
					} else {
						// Unsafe or relative destination: keep the text only.
						var inner strings.Builder
						mdInline(&inner, label, true)
						raw(inner.String())
					}
					i = next
					continue
				}
			}
			text.WriteString(mdEscape(s[i : open+1]))
			i = open + 1
			continue
		case c == '<':
			if end := strings.IndexByte(s[i:], '>'); end > 0 && end < 2048 {
				inner := s[i+1 : i+end]
				low := strings.ToLower(strings.ReplaceAll(inner, " ", ""))
				if low == "br" || low == "br/" {
					raw("<br>")
					i += end + 1
					continue
				}
				if !inLink && !strings.ContainsAny(inner, " <\n") {
					href := mdSafeURL(inner)
					if href == "" && mdIsEmail(inner) {
						href = mdSafeURL("mailto:" + inner)
					}
					if href != "" {
						raw(`<a href="` + href + `">` + mdEscape(inner) + "</a>")
						i += end + 1
						continue
					}
				}
			}
			text.WriteString("&lt;")
			i++
			continue
		case c == '&':
			if n := mdEntityLen(s[i:]); n > 0 {
				text.WriteString(s[i : i+n])
				i += n
				continue
			}
			text.WriteString("&amp;")
			i++
			continue
		case !inLink && (c == 'h' || c == 'w' || c == 'H' || c == 'W') && mdAutolinkBoundary(s, i):
			if n := mdBareURL(s[i:]); n > 0 {
				u := s[i : i+n]
				dest := u
				if strings.HasPrefix(strings.ToLower(u), "www.") {
					dest = "http://" + u
				}
				if href := mdSafeURL(dest); href != "" {
					raw(`<a href="` + href + `">` + mdEscape(u) + "</a>")
					i += n
					continue
				}
			}
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		text.WriteString(mdEscape(s[i : i+size]))
		i += size
	}
	flush()
	return nodes
}

func mdRunLen(s string, i int, c byte) int {
	n := 0
	for i+n < len(s) && s[i+n] == c {
		n++
	}
	return n
}

// mdBacktickRuns maps each backtick run length to the sorted starts of the
// runs of that length, for linear-time code span matching.
func mdBacktickRuns(s string) map[int][]int {
	runs := map[int][]int{}
	for i := 0; i < len(s); {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == '`' {
			i += 2
			continue
		}
		if s[i] != '`' {
			i++
			continue
		}
		n := mdRunLen(s, i, '`')
		runs[n] = append(runs[n], i)
		i += n
	}
	return runs
}

// mdCloseTicks finds the start of the run closing the n-backtick run at i.
func mdCloseTicks(runs map[int][]int, i, n int) (int, bool) {
	starts := runs[n]
	k := sort.SearchInts(starts, i+1)
	if k < len(starts) {
		return starts[k], true
	}
	return 0, false
}

// mdMatchBrackets pairs [ with ] in one pass, skipping escapes and code spans.
func mdMatchBrackets(s string, ticks map[int][]int) map[int]int {
	m := map[int]int{}
	var stack []int
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '`':
			n := mdRunLen(s, i, '`')
			if end, ok := mdCloseTicks(ticks, i, n); ok {
				i = end + n - 1
			} else {
				i += n - 1
			}
		case '[':
			stack = append(stack, i)
		case ']':
			if len(stack) > 0 {
				m[stack[len(stack)-1]] = i
				stack = stack[:len(stack)-1]
			}
		}
	}
	return m
}

// mdLinkDest parses "(dest "title")" at i, returning the destination and the
// index after ")".
func mdLinkDest(s string, i int) (string, int, bool) {
	if i >= len(s) || s[i] != '(' {
		return "", 0, false
	}
	j := i + 1
	for j < len(s) && (s[j] == ' ' || s[j] == '\n') {
		j++
	}
	var dest string
	if j < len(s) && s[j] == '<' {
		end := strings.IndexAny(s[j+1:], ">\n")
		if end < 0 || s[j+1+end] != '>' {
			return "", 0, false
		}
		dest = s[j+1 : j+1+end]
		j += end + 2
	} else {
		depth := 0
		start := j
		for j < len(s) && s[j] > ' ' {
			if s[j] == '\\' && j+1 < len(s) {
				j += 2
				continue
			}
			if s[j] == '(' {
				depth++
			} else if s[j] == ')' {
				if depth == 0 {
					break
				}
				depth--
			}
			j++
		}
		if j > len(s) {
			j = len(s)
		}
		dest = s[start:j]
	}
	for j < len(s) && (s[j] == ' ' || s[j] == '\n') {
		j++
	}
	if j < len(s) && (s[j] == '"' || s[j] == '\'' || s[j] == '(') {
		closer := s[j]
		if closer == '(' {
			closer = ')'
		}
		end := strings.IndexByte(s[j+1:], closer)
		if end < 0 {
			return "", 0, false
		}
		j += end + 2 // the title is dropped: no title attribute is allowed
		for j < len(s) && (s[j] == ' ' || s[j] == '\n') {
			j++
		}
	}
	if j >= len(s) || s[j] != ')' {
		return "", 0, false
	}
	// Backslash escapes in the destination.
	var d strings.Builder
	for k := 0; k < len(dest); k++ {
		if dest[k] == '\\' && k+1 < len(dest) && mdIsPunct(rune(dest[k+1])) {
			k++
		}
		d.WriteByte(dest[k])
	}
	return d.String(), j + 1, true
}

func mdIsEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.Count(s, "@") != 1 {
		return false
	}
	for _, r := range s {
		if !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune(".!#$%&'*+/=?^_`{|}~-@", r))) {
			return false
		}
	}
	return strings.Contains(s[at:], ".")
}

// mdEntityLen returns the length of an HTML entity or character reference
// at the start of s, or 0.
func mdEntityLen(s string) int {
	end := strings.IndexByte(s, ';')
	if end < 2 || end > 33 {
		return 0
	}
	body := s[1:end]
	if body[0] == '#' {
		digits := body[1:]
		hex := false
		if len(digits) > 0 && (digits[0] == 'x' || digits[0] == 'X') {
			digits, hex = digits[1:], true
		}
		if len(digits) == 0 || len(digits) > 7 {
			return 0
		}
		for _, r := range digits {
			if !(r >= '0' && r <= '9' || hex && (r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F')) {
				return 0
			}
		}
		return end + 1
	}
	for _, r := range body {
		if !(r < 128 && (unicode.IsLetter(r) || unicode.IsDigit(r))) {
			return 0
		}
	}
	if html.UnescapeString(s[:end+1]) == s[:end+1] {
		return 0 // not a known entity
	}
	return end + 1
}

func mdAutolinkBoundary(s string, i int) bool {
	if i == 0 {
		return true
	}
	r, _ := utf8.DecodeLastRuneInString(s[:i])
	return unicode.IsSpace(r) || strings.ContainsRune("*_~(", r)
}

// mdBareURL returns the length of a GFM extended autolink at the start of s.
func mdBareURL(s string) int {
	low := strings.ToLower(s)
	var p int
	switch {
	case strings.HasPrefix(low, "https://"):
		p = 8
	case strings.HasPrefix(low, "http://"):
		p = 7
	case strings.HasPrefix(low, "www."):
		p = 4
	default:
		return 0
	}
	n := p
	for n < len(s) && s[n] > ' ' && s[n] != '<' {
		n++
	}
	if n == p {
		return 0
	}
	// Trailing punctuation is not part of the link; nor is an unmatched ")".
	for n > p {
		c := s[n-1]
		if strings.IndexByte("?!.,:*_~'\"", c) >= 0 {
			n--
			continue
		}
		if c == ')' && strings.Count(s[:n], ")") > strings.Count(s[:n], "(") {
			n--
			continue
		}
		break
	}
	if n == p {
		return 0
	}
	return n
}

// mdEmphasis matches delimiter runs (CommonMark's process_emphasis), with
// the delimiter stack as a doubly linked list so that each search only visits
// live openers above the bottom recorded for its kind.
func mdEmphasis(nodes []*mdNode) {
	var delims []int
	for i, n := range nodes {
		if n.delim != 0 {
			delims = append(delims, i)
		}
	}
	prev := make([]int, len(delims))
	next := make([]int, len(delims))
	for i := range delims {
		prev[i], next[i] = i-1, i+1
	}
	unlink := func(k int) {
		if prev[k] >= 0 {
			next[prev[k]] = next[k]
		}
		if next[k] < len(delims) {
			prev[next[k]] = prev[k]
		}
	}
	// bottom[char, closer orig%3, closer can open]: no opener at or below.
	bottom := map[[3]int]int{}
	for ci := 0; ci < len(delims); ci = next[ci] {
		c := nodes[delims[ci]]
		if !c.close {
			continue
		}
		for c.count > 0 {
			key := [3]int{int(c.delim), c.orig % 3, 0}
			if c.open {
				key[2] = 1
			}
			lo, ok := bottom[key]
			if !ok {
				lo = -1
			}
			found := -1
			for oi := prev[ci]; oi > lo; oi = prev[oi] {
				o := nodes[delims[oi]]
				if o.delim != c.delim || !o.open {
					continue
				}
				if c.delim == '~' {
					if o.count != c.count {
						continue
					}
				} else if (o.open && o.close || c.open && c.close) && (o.orig+c.orig)%3 == 0 && !(o.orig%3 == 0 && c.orig%3 == 0) {
					continue
				}
				found = oi
				break
			}
			if found < 0 {
				bottom[key] = prev[ci]
				if !c.open {
					unlink(ci)
				}
				break
			}
			o := nodes[delims[found]]
			use, tag := 1, "em"
			switch {
			case c.delim == '~':
				use, tag = c.count, "del"
			case o.count >= 2 && c.count >= 2:
				use, tag = 2, "strong"
			}
			o.count -= use
			c.count -= use
			o.after = append([]string{"<" + tag + ">"}, o.after...)
			c.before = append(c.before, "</"+tag+">")
			// Delimiters between the pair can no longer match.
			next[found], prev[ci] = ci, found
			if o.count == 0 {
				unlink(found)
			}
			if c.count == 0 {
				unlink(ci)
			}
		}
	}
}
