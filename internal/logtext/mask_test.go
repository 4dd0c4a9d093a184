package logtext

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

// maskNaive is the definition the masker must agree with: every byte inside
// any occurrence of any value is covered, and each maximal run of covered
// bytes becomes "***". Quadratic; for tests only.
func maskNaive(values []string, s string) string {
	covered := make([]bool, len(s))
	for _, v := range values {
		if v == "" {
			continue
		}
		for i := 0; i+len(v) <= len(s); i++ {
			if s[i:i+len(v)] == v {
				for j := i; j < i+len(v); j++ {
					covered[j] = true
				}
			}
		}
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if !covered[i] {
			b.WriteByte(s[i])
			i++
			continue
		}
		b.WriteString(maskReplacement)
		for i < len(s) && covered[i] {
			i++
		}
	}
	return b.String()
}

// maskStream masks input written in pieces cut at the given offsets.
func maskStream(set *MaskSet, input string, cuts ...int) string {
	w := NewMaskWriter(set)
	var out []byte
	prev := 0
	for _, c := range cuts {
		out = append(out, w.Write([]byte(input[prev:c]))...)
		prev = c
	}
	out = append(out, w.Write([]byte(input[prev:]))...)
	out = append(out, w.Flush()...)
	return string(out)
}

// maskScanners are the two ways of scanning, as MaskSet.denseLimit values.
var maskScanners = []struct {
	name  string
	limit int
}{{"dense", 0}, {"sparse", -1}}

func maskTestSet(values ...string) *MaskSet {
	return maskTestSetLimit(0, values...)
}

func maskTestSetLimit(limit int, values ...string) *MaskSet {
	set := &MaskSet{denseLimit: limit}
	for _, v := range values {
		set.Add(v)
	}
	return set
}

func TestMaskSplitAtEveryOffset(t *testing.T) {
	set := maskTestSet("ghp_ABCDEFG123")
	input := "token=ghp_ABCDEFG123 and again ghp_ABCDEFG123\nghp_ABCDEFG12 is not it\n"
	want := "token=*** and again ***\nghp_ABCDEFG12 is not it\n"
	if got := set.Mask(input); got != want {
		t.Fatalf("whole: %q", got)
	}
	for i := 0; i <= len(input); i++ {
		if got := maskStream(set, input, i); got != want {
			t.Fatalf("split at %d: %q", i, got)
		}
		for j := i; j <= len(input); j++ {
			if got := maskStream(set, input, i, j); got != want {
				t.Fatalf("split at %d and %d: %q", i, j, got)
			}
		}
	}
	// One byte at a time.
	cuts := make([]int, len(input))
	for i := range cuts {
		cuts[i] = i
	}
	if got := maskStream(set, input, cuts...); got != want {
		t.Fatalf("byte by byte: %q", got)
	}
}

func TestMaskHoldsBackOnlyAPossibleStart(t *testing.T) {
	set := maskTestSet("SECRET")
	w := NewMaskWriter(set)
	if got := string(w.Write([]byte("hello world\n"))); got != "hello world\n" {
		t.Fatalf("ordinary output delayed: %q", got)
	}
	if got := string(w.Write([]byte("key: SEC"))); got != "key: " {
		t.Fatalf("got %q, want the start held back", got)
	}
	if got := string(w.Write([]byte("RE"))); got != "" {
		t.Fatalf("got %q", got)
	}
	if got := string(w.Write([]byte("T!\nSEX"))); got != "***!\nSEX" {
		t.Fatalf("got %q", got)
	}
	if got := string(w.Write([]byte("SSE"))); got != "S" {
		t.Fatalf("got %q, want only the second S released", got)
	}
	if got := string(w.Flush()); got != "SE" {
		t.Fatalf("flush: %q", got)
	}
	// A whole value is masked at once, not held back.
	if got := string(w.Write([]byte("x SECRET"))); got != "x ***" {
		t.Fatalf("got %q", got)
	}
	if got := string(w.Write([]byte("SECRET y"))); got != " y" { // touching: the same run
		t.Fatalf("got %q", got)
	}
	if got := string(w.Flush()); got != "" {
		t.Fatalf("flush: %q", got)
	}
	// The writer is reusable after flush.
	if got := string(w.Write([]byte("SECRET"))) + string(w.Flush()); got != "***" {
		t.Fatalf("after flush: %q", got)
	}
}

func TestMaskOverlappingValues(t *testing.T) {
	cases := []struct {
		values      []string
		input, want string
	}{
		{[]string{"abc", "bcd"}, "xabcdy", "x***y"},
		{[]string{"ab", "cd"}, "xabcdy", "x***y"}, // touching: one run
		{[]string{"ab", "cd"}, "xab-cdy", "x***-***y"},
		{[]string{"pass", "password"}, "my password is pass.", "my *** is ***."},
		{[]string{"password", "pass"}, "my passwor", "my ***wor"},
		{[]string{"abcdefgh", "cd"}, "abcdefgh", "***"},       // the long one swallows the short one
		{[]string{"abcdefgh", "cd"}, "abcdefg!", "ab***efg!"}, // or not
		{[]string{"abcdefgh", "b", "ef"}, "abcdefgh", "***"},
		{[]string{"abcdefgh", "b", "ef"}, "abcdefgX", "a***cd***gX"},
		{[]string{"aa"}, "aaaaa", "***"},
		{[]string{"aba"}, "ababa", "***"},
		{[]string{"aba"}, "abab", "***b"},
		{[]string{"x"}, "axbxc", "a***b***c"},
		{[]string{"she", "he", "hers", "his"}, "ushers", "u***"},
	}
	for _, sc := range maskScanners {
		for _, c := range cases {
			set := maskTestSetLimit(sc.limit, c.values...)
			if set.automaton().delta == nil != (sc.limit < 0) {
				t.Fatalf("%s: wrong scanner", sc.name)
			}
			if want := maskNaive(set.maskValues(), c.input); want != c.want {
				t.Fatalf("test case %v %q: naive says %q", c.values, c.input, want)
			}
			for i := 0; i <= len(c.input); i++ {
				for j := i; j <= len(c.input); j++ {
					if got := maskStream(set, c.input, i, j); got != c.want {
						t.Fatalf("%s: %v in %q cut at %d,%d: %q, want %q", sc.name, c.values, c.input, i, j, got, c.want)
					}
				}
			}
		}
	}
}

func TestMaskManyOccurrencesInOneChunk(t *testing.T) {
	input := strings.Repeat("x-", 5000) + strings.Repeat("yx", 3000) + "zz"
	for _, sc := range maskScanners {
		set := maskTestSetLimit(sc.limit, "x", "zz", "x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-!")
		want := maskNaive(set.maskValues(), input)
		if got := maskStream(set, input); got != want {
			t.Fatalf("%s: got %.80q... want %.80q...", sc.name, got, want)
		}
		if got := maskStream(set, input, 9999, 10001, 10002); got != want {
			t.Fatalf("%s, cut: got %.80q... want %.80q...", sc.name, got, want)
		}
	}
}

func TestMaskMultiLineSecret(t *testing.T) {
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\r\nb3BlbnNzaC1rZXktdjEAAAAA\n  QyNTUxOQAAACBsZWFreQ==  \n\n-----END OPENSSH PRIVATE KEY-----\n"
	set := maskTestSet(key)
	vals := set.maskValues()
	want := []string{
		strings.TrimSpace(key),
		"-----BEGIN OPENSSH PRIVATE KEY-----",
		"b3BlbnNzaC1rZXktdjEAAAAA",
		"QyNTUxOQAAACBsZWFreQ==",
		"-----END OPENSSH PRIVATE KEY-----",
	}
	if fmt.Sprint(vals) != fmt.Sprint(want) {
		t.Fatalf("values %q\nwant %q", vals, want)
	}
	// Printed as is, line by line with other line endings, or one line alone.
	log := "$ cat key\n" + key + "$ echo one line\nQyNTUxOQAAACBsZWFreQ==\n"
	got := set.Mask(log)
	for _, line := range want[1:] {
		if strings.Contains(got, line) {
			t.Fatalf("line %q leaked: %q", line, got)
		}
	}
	if got != "$ cat key\n***\n$ echo one line\n***\n" {
		t.Fatalf("got %q", got)
	}
	crlf := strings.ReplaceAll(strings.TrimSpace(key), "\n", "\r\n")
	if got := set.Mask(crlf); strings.Contains(got, "QyNTUx") || strings.Contains(got, "b3Blbn") {
		t.Fatalf("CRLF copy leaked: %q", got)
	}
}

func TestMaskAddIgnoresBlankAndTrims(t *testing.T) {
	set := maskTestSet("", " ", "\t\n \r\n", "  tok3n\t")
	if vals := set.maskValues(); len(vals) != 1 || vals[0] != "tok3n" {
		t.Fatalf("values %q", vals)
	}
	if got := set.Mask("a tok3n b\n"); got != "a *** b\n" {
		t.Fatalf("got %q", got)
	}
	set.Add("tok3n") // duplicate: no change
	if len(set.maskValues()) != 1 {
		t.Fatal("duplicate added")
	}
	empty := &MaskSet{}
	if got := empty.Mask("nothing to hide"); got != "nothing to hide" {
		t.Fatalf("empty set: %q", got)
	}
}

func TestMaskAddMidStream(t *testing.T) {
	set := maskTestSet("FIRST")
	w := NewMaskWriter(set)
	var out []byte
	out = append(out, w.Write([]byte("FIRST then NEWSEC before\n"))...)
	set.Add("NEWSEC") // ::add-mask::NEWSEC
	out = append(out, w.Write([]byte("after NEWSEC and NEW"))...)
	out = append(out, w.Write([]byte("SEC FIRST\n"))...)
	out = append(out, w.Flush()...)
	if got, want := string(out), "*** then NEWSEC before\nafter *** and *** ***\n"; got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}

	// A value added while part of it is held back applies to that part.
	set = maskTestSet("ABCDEF")
	w = NewMaskWriter(set)
	out = w.Write([]byte("x ABC"))
	set.Add("ABCXYZ")
	out = append(out, w.Write([]byte("XYZ y"))...)
	out = append(out, w.Flush()...)
	if got := string(out); got != "x *** y" {
		t.Fatalf("got %q", got)
	}

	// ... and to what flush releases.
	set = maskTestSet("ABCDEF")
	w = NewMaskWriter(set)
	out = w.Write([]byte("x ABC"))
	set.Add("ABC")
	out = append(out, w.Flush()...)
	if got := string(out); got != "x ***" {
		t.Fatalf("got %q", got)
	}

	// The first value added mid-stream, to a set that was empty.
	set = &MaskSet{}
	w = NewMaskWriter(set)
	out = w.Write([]byte("early tok "))
	set.Add("tok")
	out = append(out, w.Write([]byte("late tok"))...)
	out = append(out, w.Flush()...)
	if got := string(out); got != "early tok late ***" {
		t.Fatalf("got %q", got)
	}
}

func TestMaskConcurrentStreams(t *testing.T) {
	set := maskTestSet("s3cret-0")
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := NewMaskWriter(set)
			var out []byte
			for i := 0; i < 200; i++ {
				out = append(out, w.Write([]byte(fmt.Sprintf("line %d s3cret-0 s3cr", i)))...)
				out = append(out, w.Write([]byte("et-0\n"))...)
			}
			out = append(out, w.Flush()...)
			if bytes.Contains(out, []byte("s3cret-0")) {
				t.Error("leaked under concurrency")
			}
		}()
	}
	for i := 1; i < 50; i++ {
		set.Add(fmt.Sprintf("s3cret-%d", i))
	}
	wg.Wait()
}

// For random values and inputs over a small alphabet, so that values overlap
// and repeat, and random ways of cutting the input: the streamed output is
// what masking the whole input at once gives, and contains no value.
func TestMaskPropertyRandomChunking(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcab \n"
	word := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for iter := 0; iter < 4000; iter++ {
		set := &MaskSet{denseLimit: maskScanners[iter%2].limit}
		for n := rng.IntN(5); n >= 0; n-- {
			set.Add(word(1 + rng.IntN(7)))
		}
		input := word(rng.IntN(200))
		values := set.maskValues()
		want := maskNaive(values, input)
		for try := 0; try < 5; try++ {
			var cuts []int
			for p := 0; p < len(input); {
				p += rng.IntN(9)
				if p <= len(input) {
					cuts = append(cuts, p)
				}
			}
			got := maskStream(set, input, cuts...)
			if got != want {
				t.Fatalf("values %q input %q cuts %v:\n got %q\nwant %q", values, input, cuts, got, want)
			}
			for _, v := range values {
				if strings.Contains(got, v) {
					t.Fatalf("value %q in output %q", v, got)
				}
			}
		}
	}
}

func FuzzMaskWriter(f *testing.F) {
	f.Add("abc,bcd", []byte("xabcdy"), []byte{2, 1})
	f.Add("SECRET", []byte("key: SECRET!"), []byte{7})
	f.Add("pass,password", []byte("password pass"), []byte{3, 3, 3})
	f.Add("line1\nline2", []byte("line1\nline2\nline2"), []byte{0, 5})
	f.Fuzz(func(t *testing.T, spec string, input []byte, cuts []byte) {
		set := &MaskSet{}
		if len(cuts) > 0 && cuts[0]&1 == 1 {
			set.denseLimit = -1
		}
		for _, v := range strings.Split(spec, ",") {
			if !strings.Contains(v, "*") { // "***" itself could complete such a value
				set.Add(v)
			}
		}
		values := set.maskValues()
		want := maskNaive(values, string(input))

		w := NewMaskWriter(set)
		var out []byte
		rest := input
		for _, c := range cuts {
			n := min(int(c), len(rest))
			out = append(out, w.Write(rest[:n])...)
			rest = rest[n:]
		}
		out = append(out, w.Write(rest)...)
		out = append(out, w.Flush()...)
		if string(out) != want {
			t.Fatalf("values %q: got %q, want %q", values, out, want)
		}
		for _, v := range values {
			if bytes.Contains(out, []byte(v)) {
				t.Fatalf("value %q in output %q", v, out)
			}
		}
	})
}

// A 16 MiB log of ordinary lines with 100 token-like values, a few of which
// occur, written in 32 KiB chunks.
func BenchmarkMaskWriter16MiB(b *testing.B) {
	for _, sc := range maskScanners {
		b.Run(sc.name, func(b *testing.B) { maskBench16MiB(b, sc.limit) })
	}
}

func maskBench16MiB(b *testing.B, limit int) {
	rng := rand.New(rand.NewPCG(3, 4))
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	set := &MaskSet{denseLimit: limit}
	var values []string
	for i := 0; i < 100; i++ {
		v := make([]byte, 16+rng.IntN(32))
		for j := range v {
			v[j] = chars[rng.IntN(len(chars))]
		}
		values = append(values, string(v))
		set.Add(string(v))
	}
	var log bytes.Buffer
	for line := 0; log.Len() < 16<<20; line++ {
		fmt.Fprintf(&log, "2024-05-01T12:00:%02d.%06dZ step %d: compiling package github.com/example/project/internal/module%d (%d files)\n",
			line%60, line, line%7, line%113, line%29)
		if line%1000 == 0 {
			fmt.Fprintf(&log, "export TOKEN=%s\n", values[rng.IntN(len(values))])
		}
	}
	input := log.Bytes()[:16<<20]
	b.SetBytes(int64(len(input)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		w := NewMaskWriter(set)
		n := 0
		for p := 0; p < len(input); p += 32 << 10 {
			n += len(w.Write(input[p:min(p+32<<10, len(input))]))
		}
		n += len(w.Flush())
		if n >= len(input) {
			b.Fatal("nothing masked")
		}
	}
}
