package executor

import (
	"fmt"
	"strings"
	"testing"
)

func TestEnvFileParse(t *testing.T) {
	tests := []struct {
		in      string
		want    []envFileKV
		wantErr string
	}{
		{"", nil, ""},
		{"A=1\nB=2\n", []envFileKV{{"A", "1"}, {"B", "2"}}, ""},
		{"A=1", []envFileKV{{"A", "1"}}, ""},
		{"\n\nA=1\n\n", []envFileKV{{"A", "1"}}, ""},
		{"A=\n", []envFileKV{{"A", ""}}, ""},
		{"A=b=c\n", []envFileKV{{"A", "b=c"}}, ""},
		{"A=b<<c\n", []envFileKV{{"A", "b<<c"}}, ""},
		{"A B=  x  \n", []envFileKV{{"A B", "  x  "}}, ""},
		// CR is not a line break on Linux: it stays in the value.
		{"A=1\r\nB=2\r\n", []envFileKV{{"A", "1\r"}, {"B", "2\r"}}, ""},
		// Docs example: multiline value.
		{"JSON_RESPONSE<<EOF\n{\n  \"a\": 1\n}\nEOF\n", []envFileKV{{"JSON_RESPONSE", "{\n  \"a\": 1\n}"}}, ""},
		{"A<<EOF\nEOF\n", []envFileKV{{"A", ""}}, ""},
		{"A<<EOF\n\nEOF\n", []envFileKV{{"A", ""}}, ""},
		{"A<<EOF\n\n\nEOF\n", []envFileKV{{"A", "\n"}}, ""},
		{"A<<EOF\nx\nEOF", []envFileKV{{"A", "x"}}, ""},
		{"A<<EOF\nB=1\n EOF\nEOF\nC=2\n", []envFileKV{{"A", "B=1\n EOF"}, {"C", "2"}}, ""},
		{"A<<B=c\nv\nB=c\n", []envFileKV{{"A", "v"}}, ""},
		{"A<<'EOF'\nv\n'EOF'\n", []envFileKV{{"A", "v"}}, ""},
		{"\ufeffA=1\n", []envFileKV{{"A", "1"}}, ""},
		{"A=\xff\n", []envFileKV{{"A", "\uFFFD"}}, ""},
		// Errors name the line and keep the pairs before it.
		{"A=1\nnovalue\n", []envFileKV{{"A", "1"}}, "line 2: Invalid format 'novalue'"},
		{"   \n", nil, "line 1: Invalid format '   '"},
		{"=x\n", nil, "line 1: Invalid format '=x'. Name must not be empty"},
		{"<<EOF\nx\nEOF\n", nil, "line 1: Invalid format '<<EOF'. Name must not be empty and delimiter must not be empty"},
		{"<<<0\n1\n0\n", nil, "line 1: Invalid format '<<<0'. Name must not be empty"}, // the first "<<" counts
		{"A<<\nx\n", nil, "Name must not be empty and delimiter must not be empty"},
		{"A=1\nB<<EOF\nx\n", []envFileKV{{"A", "1"}}, "line 2: Invalid value. Matching delimiter not found 'EOF'"},
		{"B<<EOF\n", nil, "line 1: Invalid value. Matching delimiter not found 'EOF'"},
		{"B<<EOF\nx", nil, "line 2: Invalid value. EOF marker missing new line."},
		// CR stays in lines: "EOF\r" and "EOF" are different delimiters.
		// A CRLF file: the delimiter is "EOF\r" and so is its closing line.
		{"B<<EOF\r\nx\r\nEOF\r\n", []envFileKV{{"B", "x\r"}}, ""},
		{"B<<EOF\r\nx\r\nEOF\n", nil, "Matching delimiter not found 'EOF\r'"},
		{"B<<EOF\nx\r\nEOF\n", []envFileKV{{"B", "x\r"}}, ""},
	}
	for _, tt := range tests {
		got, err := envFileParse([]byte(tt.in))
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("envFileParse(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("envFileParse(%q) error = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
	big := strings.Repeat("x", envFileMaxSize+1)
	if _, err := envFileParse([]byte(big)); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("envFileParse(1 MiB + 1) error = %v, want size limit", err)
	}
}

func TestEnvFilePath(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"/a\n/b\n", []string{"/a", "/b"}},
		{"/a\r\n\r\n/b\r/c", []string{"/a", "/b", "/c"}},
		{" /a \n", []string{" /a "}},
	}
	for _, tt := range tests {
		got, err := envFileParsePath([]byte(tt.in))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("envFileParsePath(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
		}
	}
	// Step 1 adds /a and /b, step 2 adds /c and /a again: later lines win.
	p := envFileAddPath(nil, []string{"/a", "/b"})
	if got, want := envFilePATH(p, "/usr/bin:/bin"), "/b:/a:/usr/bin:/bin"; got != want {
		t.Errorf("envFilePATH after step 1 = %q, want %q", got, want)
	}
	p = envFileAddPath(p, []string{"/c", "/a"})
	if got, want := envFilePATH(p, "/usr/bin"), "/a:/c:/b:/usr/bin"; got != want {
		t.Errorf("envFilePATH after step 2 = %q, want %q", got, want)
	}
	if got, want := envFilePATH(nil, "/usr/bin"), "/usr/bin"; got != want {
		t.Errorf("envFilePATH(nil) = %q, want %q", got, want)
	}
}

func TestEnvFileRefused(t *testing.T) {
	tests := []struct {
		name    string
		refused bool
	}{
		{"NODE_OPTIONS", true},
		{"node_options", true},
		{"GITHUB_SHA", true},
		{"RUNNER_OS", true},
		{"CI", false},
		{"github_sha", false}, // Linux names are case-sensitive
		{"MY_VAR", false},
	}
	for _, tt := range tests {
		if got := envFileRefused(tt.name) != ""; got != tt.refused {
			t.Errorf("envFileRefused(%q) = %v, want %v", tt.name, got, tt.refused)
		}
	}
}

func FuzzEnvFile(f *testing.F) {
	f.Add([]byte("A=1\nB<<EOF\nx\nEOF\n"), "N", "v\nw", "EOF")
	f.Add([]byte("A<<EOF\r\nx\r\nEOF\r\n"), "N", "", "ghadelimiter_1")
	f.Add([]byte("\ufeff=\n<<\n"), "a=b", "x<<y", "d")
	f.Fuzz(func(t *testing.T, data []byte, name, value, delim string) {
		kvs, _ := envFileParse(data)
		for _, kv := range kvs {
			if kv.Name == "" || strings.Contains(kv.Name, "\n") {
				t.Fatalf("envFileParse(%q) gave bad name %q", data, kv.Name)
			}
		}
		if dirs, err := envFileParsePath(data); err == nil {
			for _, d := range dirs {
				if d == "" || strings.ContainsAny(d, "\r\n") {
					t.Fatalf("envFileParsePath(%q) gave %q", data, d)
				}
			}
		}
		// Round trip through the heredoc form, as actions/toolkit writes it.
		if name == "" || delim == "" || strings.ContainsAny(name+delim, "\n\r\xef") || strings.Contains(name, "=") || strings.Index(name+"<<"+delim, "<<") != len(name) ||
			strings.Contains(value, "\r") || !utf8Valid(name+value+delim) {
			return
		}
		for _, l := range strings.Split(value, "\n") {
			if l == delim {
				return
			}
		}
		file := name + "<<" + delim + "\n" + value + "\n" + delim + "\n"
		got, err := envFileParse([]byte(file))
		if err != nil || len(got) != 1 || got[0] != (envFileKV{name, value}) {
			if value == "" && err == nil && len(got) == 1 && got[0].Value == "" {
				return
			}
			t.Fatalf("envFileParse(%q) = %q, %v; want [{%q %q}]", file, got, err, name, value)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }
