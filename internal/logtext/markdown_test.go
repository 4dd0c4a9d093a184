package logtext

import (
	"strings"
	"testing"
)

func TestMdRender(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", ""},
		{"hello", "<p>hello</p>\n"},
		{"# Title", "<h1>Title</h1>\n"},
		{"### Build summary ###", "<h3>Build summary</h3>\n"},
		{"####### seven", "<p>####### seven</p>\n"},
		{"#nospace", "<p>#nospace</p>\n"},
		{"Title\n=====\nSub\n---", "<h1>Title</h1>\n<h2>Sub</h2>\n"},
		{"a\nb\n\nc", "<p>a\nb</p>\n<p>c</p>\n"},
		{"a  \nb\\\nc", "<p>a<br>\nb<br>\nc</p>\n"},
		{"*em* **strong** _em_ __strong__ ~~gone~~", "<p><em>em</em> <strong>strong</strong> <em>em</em> <strong>strong</strong> <del>gone</del></p>\n"},
		{"***both***", "<p><em><strong>both</strong></em></p>\n"},
		{"snake_case_name and 2*3*4", "<p>snake_case_name and 2<em>3</em>4</p>\n"},
		{"**unclosed", "<p>**unclosed</p>\n"},
		{"`code <b>` and ``a`b``", "<p><code>code &lt;b&gt;</code> and <code>a`b</code></p>\n"},
		{"\\*not em\\* \\<b>", "<p>*not em* &lt;b&gt;</p>\n"},
		{"```go\nfunc main() {}\n<script>\n```", "<pre><code class=\"language-go\">func main() {}\n&lt;script&gt;\n</code></pre>\n"},
		{"~~~\nunclosed", "<pre><code>unclosed\n</code></pre>\n"},
		{"```\"><script>x\n```", "<pre><code class=\"language-scriptx\"></code></pre>\n"},
		{"    indented\n    code", "<pre><code>indented\ncode\n</code></pre>\n"},
		{"- a\n- b\n  - c\n- d", "<ul>\n<li>a</li>\n<li>b\n<ul>\n<li>c</li>\n</ul></li>\n<li>d</li>\n</ul>\n"},
		{"1. one\n2. two", "<ol>\n<li>one</li>\n<li>two</li>\n</ol>\n"},
		{"- a\n\n- b", "<ul>\n<li><p>a</p></li>\n<li><p>b</p></li>\n</ul>\n"},
		{"* a\n+ b", "<ul>\n<li>a</li>\n</ul>\n<ul>\n<li>b</li>\n</ul>\n"},
		{"- item\nlazy", "<ul>\n<li>item\nlazy</li>\n</ul>\n"},
		{"> quote\n> more\nlazy\n\nafter", "<blockquote>\n<p>quote\nmore\nlazy</p>\n</blockquote>\n<p>after</p>\n"},
		{"> # h\n> - x", "<blockquote>\n<h1>h</h1>\n<ul>\n<li>x</li>\n</ul>\n</blockquote>\n"},
		{"---\n***\n_ _ _", "<hr>\n<hr>\n<hr>\n"},
		{"[GitHub](https://github.com \"t\")", "<p><a href=\"https://github.com\">GitHub</a></p>\n"},
		{"[mail](mailto:a@b.c) [bad](javascript:alert(1)) [rel](./x)", "<p><a href=\"mailto:a@b.c\">mail</a> bad rel</p>\n"},
		{"[x](JaVaScRiPt:alert(1)) [y](&#106;avascript:x) [z]( data:text/html,x)", "<p>x y z</p>\n"},
		{"[**bold** link](http://x.y/a_b?c=1&d=2)", "<p><a href=\"http://x.y/a_b?c=1&amp;d=2\"><strong>bold</strong> link</a></p>\n"},
		{"[a](http://x/\"onmouseover=\"y)", "<p><a href=\"http://x/%22onmouseover=%22y\">a</a></p>\n"},
		{"![img](https://x/i.png) ![](https://x/j.png)", "<p><a href=\"https://x/i.png\">img</a> <a href=\"https://x/j.png\">https://x/j.png</a></p>\n"},
		{"<https://example.com> <me@example.com> <javascript:x>", "<p><a href=\"https://example.com\">https://example.com</a> <a href=\"mailto:me@example.com\">me@example.com</a> &lt;javascript:x&gt;</p>\n"},
		{"see https://example.com/a). and www.x.org.", "<p>see <a href=\"https://example.com/a\">https://example.com/a</a>). and <a href=\"http://www.x.org\">www.x.org</a>.</p>\n"},
		{"<script>alert(1)</script> <img src=x onerror=y> a<br>b", "<p>&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=y&gt; a<br>b</p>\n"},
		{"&amp; &copy; &#60; &bogus; AT&T", "<p>&amp; &copy; &#60; &amp;bogus; AT&amp;T</p>\n"},
		{"| a | b |\n|:--|--:|\n| 1 | `x\\|y` |\n| 2 |", "<table>\n<thead>\n<tr><th class=\"align-left\">a</th><th class=\"align-right\">b</th></tr>\n</thead>\n<tbody>\n<tr><td class=\"align-left\">1</td><td class=\"align-right\"><code>x|y</code></td></tr>\n<tr><td class=\"align-left\">2</td><td class=\"align-right\"></td></tr>\n</tbody>\n</table>\n"},
		{"Name | Result\n--- | :---:\n*ok* | ✅", "<table>\n<thead>\n<tr><th>Name</th><th class=\"align-center\">Result</th></tr>\n</thead>\n<tbody>\n<tr><td><em>ok</em></td><td class=\"align-center\">✅</td></tr>\n</tbody>\n</table>\n"},
		{"| a | b |\n| --- |", "<p>| a | b |\n| --- |</p>\n"},
		{"a\r\nb\x00", "<p>a\nb\uFFFD</p>\n"},
	}
	for _, tt := range tests {
		got, err := RenderMarkdown([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("RenderMarkdown(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
		if bad := mdCheckSafe(got); bad != "" {
			t.Errorf("RenderMarkdown(%q) is unsafe: %s", tt.in, bad)
		}
	}
	if _, err := RenderMarkdown(make([]byte, mdMaxInput+1)); err == nil {
		t.Errorf("RenderMarkdown(1 MiB + 1) = nil error, want size limit")
	}
}

// mdHostile are inputs that make naive Markdown renderers quadratic or
// worse. TestMdHostile checks their output is safe; how long they take is
// BenchmarkMdHostile's to report (go test's -timeout catches a hang), not a
// timed assertion that a loaded machine would fail.
var mdHostile = []string{
	strings.Repeat("*a ", 100000),
	strings.Repeat("[", 200000) + strings.Repeat("]", 200000),
	strings.Repeat("`", 100000) + "x",
	strings.Repeat("` ``", 50000),
	strings.Repeat("> ", 100000) + "x",
	strings.Repeat("- ", 100000) + "x",
	strings.Repeat("**a_", 100000),
	strings.Repeat("<", 200000),
	strings.Repeat("https://a.b/(", 50000),
	strings.Repeat("|a", 100000) + "\n" + strings.Repeat("|-", 100000),
	strings.Repeat("  - x\n", 30000),
}

func TestMdHostile(t *testing.T) {
	for _, in := range mdHostile {
		out, err := RenderMarkdown([]byte(in))
		if err != nil {
			t.Errorf("RenderMarkdown(%.20q...) = %v", in, err)
		}
		if bad := mdCheckSafe(out); bad != "" {
			t.Errorf("RenderMarkdown(%.20q...) is unsafe: %s", in, bad)
		}
	}
}

func BenchmarkMdHostile(b *testing.B) {
	for i := 0; i < b.N; i++ {
		for _, in := range mdHostile {
			if _, err := RenderMarkdown([]byte(in)); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// mdCheckSafe returns a description of the first tag or attribute outside the
// allowlist in h, or "".
func mdCheckSafe(h string) string {
	for i := 0; i < len(h); i++ {
		if h[i] != '<' {
			continue
		}
		j := i + 1
		if j < len(h) && h[j] == '/' {
			j++
		}
		k := j
		for k < len(h) && (h[k] >= 'a' && h[k] <= 'z' || h[k] >= '0' && h[k] <= '9') {
			k++
		}
		name := h[j:k]
		if !mdAllowedTags[name] {
			return "tag " + h[i:min(len(h), i+20)]
		}
		// Attributes: ` name="value"` until '>'.
		for {
			if k >= len(h) {
				return "unterminated tag"
			}
			if h[k] == '>' {
				break
			}
			if h[k] != ' ' {
				return "junk in tag " + h[i:min(len(h), k+10)]
			}
			k++
			eq := strings.Index(h[k:], `="`)
			if eq < 0 {
				return "attribute without value"
			}
			attr := h[k : k+eq]
			end := strings.IndexByte(h[k+eq+2:], '"')
			if end < 0 {
				return "unterminated attribute"
			}
			val := h[k+eq+2 : k+eq+2+end]
			switch {
			case attr == "href" && name == "a":
				low := strings.ToLower(val)
				if !strings.HasPrefix(low, "http://") && !strings.HasPrefix(low, "https://") && !strings.HasPrefix(low, "mailto:") {
					return "href " + val
				}
			case attr == "class" && (name == "code" || name == "th" || name == "td"):
			default:
				return "attribute " + attr + " on " + name
			}
			if strings.ContainsAny(val, "<>'\x00") {
				return "bad attribute value " + val
			}
			k = k + eq + 2 + end + 1
		}
		i = k
	}
	return ""
}

func FuzzMd(f *testing.F) {
	for _, s := range []string{
		"# h\n\n*a* **b** `c` [d](https://e) <f> | g |\n|---|\n| h |",
		"> q\n- l\n  1. n\n```js\ncode\n```",
		"[x](javascript:alert(1)) <a href=x> &#106; ![i](data:x)",
		"***a*b**c* _a_b_ ~~x~~ ~y~",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := RenderMarkdown([]byte(s))
		if err != nil {
			return
		}
		if bad := mdCheckSafe(out); bad != "" {
			t.Fatalf("RenderMarkdown(%q) = %q: %s", s, out, bad)
		}
		if strings.Contains(strings.ToLower(out), "javascript:") && strings.Contains(out, "href=\"javascript") {
			t.Fatalf("RenderMarkdown(%q) = %q: javascript href", s, out)
		}
	})
}
