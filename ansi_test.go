package main

import (
	"regexp"
	"strings"
	"testing"
)

// ansiMarkup is every piece of markup the renderer writes: spans with its
// own classes and colour styles, and their ends. Text between them must be
// escaped, so no other '<' or '>' may appear.
var ansiMarkup = regexp.MustCompile(`<span(?: class="[a-z0-9 -]+")?(?: style="(?:color|background-color):#[0-9a-f]{6}(?:;(?:color|background-color):#[0-9a-f]{6})?")?>|</span>`)

// FuzzANSIHTML renders untrusted job output, cut into chunks at the fuzzer's
// choice and carried between them through the encoded state as the live
// page does, and checks that the result holds no markup the renderer did not
// write, that its spans balance, and that no attribute can be broken out of.
func FuzzANSIHTML(f *testing.F) {
	for _, s := range []string{
		"plain <b>&\"'\n", "\x1b[31mred\x1b[0m no", "\x1b[1;4;92mx\x1b[22my\x1b[mz",
		"##[error]bad <script>alert(1)</script>\n", "##[group]g\n##[endgroup]\n",
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
			out := webRenderLog(t, final, chunks...)
			rest := ansiMarkup.ReplaceAllString(out, "")
			if i := strings.IndexAny(rest, "<>"); i >= 0 {
				t.Fatalf("render(%q) has markup it did not write near %q:\n%s", data, rest[max(0, i-20):min(len(rest), i+20)], out)
			}
			opens := len(regexp.MustCompile(`<span[ >]`).FindAllString(out, -1))
			if closes := strings.Count(out, "</span>"); opens != closes {
				t.Fatalf("render(%q): %d spans opened, %d closed:\n%s", data, opens, closes, out)
			}
		}
	})
}
