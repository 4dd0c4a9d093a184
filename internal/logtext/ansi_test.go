package logtext

import (
	"fmt"
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// ansiMarkup is every piece of markup the renderer writes: spans with its
// own classes and colour styles, a group's section, title and continuation,
// and their ends. Text between them must be escaped, so no other '<' or '>'
// may appear.
var ansiMarkup = regexp.MustCompile(`<span(?: class="[a-z0-9 -]+")?(?: style="(?:color|background-color):#[0-9a-f]{6}(?:;(?:color|background-color):#[0-9a-f]{6})?")?>|</span>|<details class="group">|</details>|<summary>|</summary>|<div class="gcont">|</div>|<a class="ln" id="L(\d+)" href="#L(\d+)" data-n="(\d+)"></a>`)

// ansiNesting checks that the renderer's tags nest: every end matches its
// start, nothing is left open, no section opens inside a span or a title,
// and a title is a section's first child.
func ansiNesting(out string) error {
	var stack []string
	for _, loc := range ansiMarkup.FindAllStringIndex(out, -1) {
		tag := out[loc[0]:loc[1]]
		if strings.HasPrefix(tag, "<a ") {
			continue // a line's number: whole in itself
		}
		name := strings.Trim(strings.Fields(tag)[0], "</>")
		top := ""
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch {
		case strings.HasPrefix(tag, "</"):
			if top != name {
				return fmt.Errorf("%s closes %q at %d", tag, top, loc[0])
			}
			stack = stack[:len(stack)-1]
			continue
		case name == "details" || name == "div":
			if slices.Contains(stack, "span") || slices.Contains(stack, "summary") {
				return fmt.Errorf("%s inside %v at %d", tag, stack, loc[0])
			}
		case name == "summary":
			if top != "details" || !strings.HasSuffix(out[:loc[0]], `<details class="group">`) {
				return fmt.Errorf("a title not first in its section at %d", loc[0])
			}
		}
		stack = append(stack, name)
	}
	if len(stack) > 0 {
		return fmt.Errorf("left open: %v", stack)
	}
	return nil
}

// FuzzANSIHTML renders untrusted job output, cut into chunks at the fuzzer's
// choice and carried between them through the encoded state as the live
// page does, and checks that the result holds no markup the renderer did not
// write, that its spans balance, and that no attribute can be broken out of.
func FuzzANSIHTML(f *testing.F) {
	for _, s := range []string{
		"plain <b>&\"'\n", "\x1b[31mred\x1b[0m no", "\x1b[1;4;92mx\x1b[22my\x1b[mz",
		"##[error]bad <script>alert(1)</script>\n", "##[group]g\n##[endgroup]\n",
		"##[group]a \x1b[31m<b>\nin\n##[group]b\r\n##[error]x\n##[endgroup]\nout\n##[group]unended",
		"\x1b[38;2;1;2;3m\x1b[48;5;200mrgb\n", "\x1b]8;;javascript:alert(1)\x07link\x1b]8;;\x07",
		"\xff\xfe<\x1b[", "a\rb\x00c\"onmouseover=x",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut uint8) {
		if len(data) > 1<<14 {
			return
		}
		var chunks []string
		step := int(cut%16) + 1
		for i := 0; i < len(data); i += step {
			chunks = append(chunks, string(data[i:min(i+step, len(data))]))
		}
		for _, final := range []bool{false, true} {
			out := renderLogLines(t, "L", final, chunks...)
			rest := ansiMarkup.ReplaceAllString(out, "")
			if i := strings.IndexAny(rest, "<>"); i >= 0 {
				t.Fatalf("render(%q) has markup it did not write near %q:\n%s", data, rest[max(0, i-20):min(len(rest), i+20)], out)
			}
			if err := ansiNesting(out); err != nil {
				t.Fatalf("render(%q): %v:\n%s", data, err, out)
			}
		}
	})
}

// renderLog renders log chunks as a page would, carrying the state
// between them through its encoded form.
func renderLog(t *testing.T, final bool, chunks ...string) string {
	t.Helper()
	return renderLogLines(t, "", final, chunks...)
}

// renderLogLines is renderLog with line numbers whose ids start with prefix.
func renderLogLines(t *testing.T, prefix string, final bool, chunks ...string) string {
	t.Helper()
	var out strings.Builder
	state := ""
	for i, c := range chunks {
		st, err := DecodeState(state)
		if err != nil {
			t.Fatalf("state %q: %v", state, err)
		}
		a := HTML{State: st, LinePrefix: prefix}
		a.Write([]byte(c))
		a.End(final && i == len(chunks)-1)
		if err := ansiNesting(a.Out.String()); err != nil {
			t.Fatalf("chunk %d (%q): %v:\n%s", i, c, err, a.Out.String())
		}
		out.WriteString(a.Out.String())
		state = a.State.Encode()
	}
	return ansiMergeGroups(out.String())
}

// ansiMergeGroups does what the run page's script does with a live
// update: a section's continuation goes into the section it continues.
func ansiMergeGroups(s string) string {
	const seam = `</details><div class="gcont">`
	for {
		i := strings.Index(s, seam)
		if i < 0 {
			return s
		}
		j := i + len(seam) + strings.Index(s[i+len(seam):], "</div>")
		s = s[:i] + s[i+len(seam):j] + "</details>" + s[j+len("</div>"):]
	}
}

func TestANSIHTML(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain <b>&\"'\n", "plain &lt;b&gt;&amp;&#34;&#39;\n"},
		{"\x1b[31mred\x1b[0m no", `<span class="a-f1">red</span> no`},
		{"\x1b[1;4;92mx\x1b[22my\x1b[mz", `<span class="a-b a-u a-f10">x</span><span class="a-u a-f10">y</span>z`},
		{"\x1b[41;37mw\x1b[49mv\x1b[39mu", `<span class="a-f7 a-g1">w</span><span class="a-f7">v</span>u`},
		{"\x1b[38;5;208mo\x1b[48;2;1;2;255mb", `<span style="color:#ff8700">o</span><span style="color:#ff8700;background-color:#0102ff">b</span>`},
		{"\x1b[38;5;244mg\x1b[38;5;9mr", `<span style="color:#808080">g</span><span class="a-f9">r</span>`},
		{"\x1b[38;2;300;0;0mbad", "bad"},
		{"\x1b[2K\x1b[1Gline\x1b[?25l", "line"},
		{"\x1b]0;window title\x07after\x1b]8;;http://x\x1b\\link", "afterlink"},
		{"a\rb\r\nc\n", "a\nb\nc\n"},
		{"bell\x07nul\x00del\x7f\tb", "bellnuldel\tb"},
		{"bad \xff utf8 ✓", "bad \uFFFD utf8 ✓"},
		{"\x1b[31mred\nstill red", "<span class=\"a-f1\">red</span>\n<span class=\"a-f1\">still red</span>"},
		{"##[error]boom\nok", `<span class="l-error"><span class="l-tag">Error: </span>boom</span>` + "\nok"},
		{"##[warning]w \x1b[32mg\x1b[0m\n", `<span class="l-warning"><span class="l-tag">Warning: </span>w <span class="a-f2">g</span></span>` + "\n"},
		{"##[group]Run make\nx\n##[endgroup]\ny", `<details class="group"><summary><span class="l-group">Run make</span></summary>x` + "\n</details>y"},
		{"a\n##[group]one\n1\n##[group]two\r\n2\n##[endgroup] hidden\n##[endgroup]\nb",
			"a\n" + `<details class="group"><summary><span class="l-group">one</span></summary>1` + "\n</details>" +
				`<details class="group"><summary><span class="l-group">two</span></summary>2` + "\n</details>b"},
		{"##[group]<b>\x1b[32mgreen\x1b[0m\n##[error]in a group\n", `<details class="group"><summary><span class="l-group">&lt;b&gt;<span class="a-f2">green</span></span></summary>` +
			`<span class="l-error"><span class="l-tag">Error: </span>in a group</span>` + "\n</details>"},
		{"##[group]never ended", `<details class="group"><summary><span class="l-group">never ended</span></summary></details>`},
		{"##[group]", `<details class="group"><summary></summary></details>`},
		{"x ##[error] mid-line", "x ##[error] mid-line"},
		{"#!/bin/sh\n##notamarker", "#!/bin/sh\n##notamarker"},
		{"\x1b[5", ""}, // unfinished at the end of a complete log: dropped
		{"ends with \xe2\x9c", "ends with \uFFFD"},
		{"\x1b[31m<script>alert(1)</script>", `<span class="a-f1">&lt;script&gt;alert(1)&lt;/script&gt;</span>`},
	} {
		if got := renderLog(t, true, tc.in); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// styled reads rendered log HTML back as one entry per character: the
// character and the spans around it. Two renderings that read back the
// same look the same.
func styled(t *testing.T, h string) []string {
	t.Helper()
	var stack, out []string
	for i := 0; i < len(h); {
		switch {
		case strings.HasPrefix(h[i:], "</"):
			if len(stack) == 0 {
				t.Fatalf("unbalanced end tag in %q", h)
			}
			stack = stack[:len(stack)-1]
			i += strings.IndexByte(h[i:], '>') + 1
		case strings.HasPrefix(h[i:], `<a class="ln"`):
			// A line's number reads back as itself: the same numbers at
			// the same places.
			j := strings.Index(h[i:], "</a>") + len("</a>")
			out = append(out, h[i:i+j]+"|"+strings.Join(stack, ""))
			i += j
		case h[i] == '<':
			j := strings.IndexByte(h[i:], '>')
			stack = append(stack, h[i:i+j+1])
			if h[i:i+j+1] == "<summary>" {
				// Sections count per title: two sections in a row stay two.
				out = append(out, fmt.Sprintf("section %d|", len(out)))
			}
			i += j + 1
		case h[i] == '>' || h[i] == '"' || h[i] == '\'':
			t.Fatalf("unescaped %q in %q", h[i], h)
		case h[i] == '&':
			j := strings.IndexByte(h[i:], ';')
			out = append(out, html.UnescapeString(h[i:i+j+1])+"|"+strings.Join(stack, ""))
			i += j + 1
		default:
			r, n := utf8.DecodeRuneInString(h[i:])
			out = append(out, string(r)+"|"+strings.Join(stack, ""))
			i += n
		}
	}
	if len(stack) != 0 {
		t.Fatalf("unclosed spans in %q", h)
	}
	return out
}

// A log cut anywhere into two chunks renders as it does whole: what a
// live page appends continues exactly where the page was.
func TestANSISplitAnywhere(t *testing.T) {
	log := "plain\n\x1b[1;31mbold red\x1b[0m normal\r\nprogress 1\rprogress 2\n##[error]boom <x> \x1b[33my\x1b[0m\n" +
		"##[group]Group\n##[endgroup]\n##[group]Build \x1b[1mall\n in it \x1b[31mred\n\n##[error]inner\n##[group]next\r\nx\n##[endgroup]\nünïcødé ✓ 日本\n\x1b]0;title\x07after osc\n\x1b[38;5;208morange\x1b[48;2;1;2;3mbg\x1b[39;49m\n" +
		"\x1b[Kcleared\x1b[2Jx\n\ttab\x07bell\n#notmarker\n##[warning]warn\x1b[32mgreen\x1b[m\nlast \x1b[4mline"
	whole := strings.Join(styled(t, renderLogLines(t, "L", true, log)), "\n")
	for i := 0; i <= len(log); i++ {
		got := strings.Join(styled(t, renderLogLines(t, "L", true, log[:i], log[i:])), "\n")
		if got != whole {
			t.Fatalf("cut at %d (%q | %q) renders differently:\n%s\nwhole:\n%s", i, log[max(0, i-5):i], log[i:min(len(log), i+5)], got, whole)
		}
		for j := i; j <= len(log) && j < i+12; j++ {
			got := strings.Join(styled(t, renderLogLines(t, "L", true, log[:i], log[i:j], log[j:])), "\n")
			if got != whole {
				t.Fatalf("cuts at %d and %d render differently", i, j)
			}
		}
	}
	if strings.Contains(whole, "\x1b") || strings.Contains(whole, "[0m") {
		t.Errorf("escape garbage in %q", whole)
	}
}

func TestANSIStateCodec(t *testing.T) {
	for _, bad := range []string{"!", "AA", strings.Repeat("A", 2000), "_w8AAA"} {
		if _, err := DecodeState(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
	st := State{attrs: ansiBold | ansiItalic, fg: ansiColor{2, 0xabcdef}, bg: ansiColor{1, 200}, line: lineWarning, mid: true, pending: []byte("\x1b[3")}
	got, err := DecodeState(st.Encode())
	if err != nil || got.attrs != st.attrs || got.fg != st.fg || got.bg != st.bg || got.line != st.line || !got.mid || string(got.pending) != "\x1b[3" {
		t.Errorf("round trip: %+v, %v", got, err)
	}
	for _, st := range []State{{lineNo: 1 << 40}, StateAtLine(17, true), {cont: true, lineNo: 3}} {
		if got, err := DecodeState(st.Encode()); err != nil || got.lineNo != st.lineNo || got.mid != st.mid || got.cont != st.cont {
			t.Errorf("round trip of %+v: %+v, %v", st, got, err)
		}
	}
	if (State{}).Encode() != "" {
		t.Errorf("the fresh state is not empty")
	}
}

// TestANSILineNumbers: each shown line starts with its number, the nth
// LF-ended line of the log as in the raw log; a line a lone CR starts and
// the hidden ##[endgroup] get none; numbers go on across chunks and from
// a state that leaves lines out.
func TestANSILineNumbers(t *testing.T) {
	ln := func(n int) string { return fmt.Sprintf(`<a class="ln" id="L%d" href="#L%d" data-n="%d"></a>`, n, n, n) }
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"lines", []string{"a\nb\n"}, ln(1) + "a\n" + ln(2) + "b\n"},
		{"empty line", []string{"a\n\nc"}, ln(1) + "a\n" + ln(2) + "\n" + ln(3) + "c"},
		{"CRLF", []string{"a\r\nb\r\n"}, ln(1) + "a\n" + ln(2) + "b\n"},
		{"lone CR shares the number", []string{"p 1\rp 2\nnext\n"}, ln(1) + "p 1\np 2\n" + ln(2) + "next\n"},
		{"error line: number before its style", []string{"##[error]x\n"}, ln(1) + `<span class="l-error"><span class="l-tag">Error: </span>x</span>` + "\n"},
		{"group: title numbered, endgroup hidden", []string{"##[group]G\nin\n##[endgroup]\nout\n"},
			`<details class="group"><summary>` + ln(1) + `<span class="l-group">G</span></summary>` + ln(2) + "in\n</details>" + ln(4) + "out\n"},
		{"across chunks, mid-line", []string{"ab", "c\nd", "\n"}, ln(1) + "abc\n" + ln(2) + "d\n"},
		{"colour at the start of a line", []string{"\x1b[31mred\x1b[0m\n"}, ln(1) + `<span class="a-f1">red</span>` + "\n"},
	} {
		if got := renderLogLines(t, "L", true, tc.chunks...); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
	// Stamps: each numbered line carries the time of the chunk it began in.
	b := HTML{LinePrefix: "L", Stamp: "10:00:00"}
	b.Write([]byte("one\ntw"))
	b.Stamp = "10:00:05"
	b.Write([]byte("o\nthree\n"))
	b.End(true)
	if want := ln(1) + `<span class="ts">10:00:00</span>one` + "\n" + ln(2) + `<span class="ts">10:00:00</span>two` + "\n" +
		ln(3) + `<span class="ts">10:00:05</span>three` + "\n"; b.Out.String() != want {
		t.Errorf("stamps: %q, want %q", b.Out.String(), want)
	}
	// A page that leaves out the first 41 lines (and half of the 42nd).
	a := HTML{State: StateAtLine(41, true), LinePrefix: "L"}
	a.Write([]byte("rest of 42\nline 43\n"))
	a.End(true)
	if want := "rest of 42\n" + ln(43) + "line 43\n"; a.Out.String() != want {
		t.Errorf("after left-out lines: %q, want %q", a.Out.String(), want)
	}
}
