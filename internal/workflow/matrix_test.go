package workflow

import (
	"fmt"
	"strings"
	"testing"

	"shithub-actions/internal/expr"
)

// matrixShow renders legs as "{k: v, k: v}" lines, like GitHub's docs.
func matrixShow(legs []MatrixLeg) string {
	var b strings.Builder
	for _, l := range legs {
		b.WriteString("{")
		for i, kv := range l.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %s", kv.Key, matrixShowValue(kv.Value))
		}
		b.WriteString("}\n")
	}
	return b.String()
}

func matrixShowValue(v any) string {
	switch x := v.(type) {
	case float64:
		return expr.FormatNumber(x)
	case []matrixKV:
		var parts []string
		for _, kv := range x {
			parts = append(parts, kv.Key+": "+matrixShowValue(kv.Value))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

func matrixList(vs ...any) []any { return vs }

func TestMatrixExpandDocs(t *testing.T) {
	tests := []struct {
		name string
		spec matrixSpec
		want string
	}{
		{
			// "Adding a matrix strategy to your workflow job": the order of creation.
			name: "cross product order",
			spec: matrixSpec{Dims: []matrixDim{
				{"version", matrixList(10.0, 12.0, 14.0)},
				{"os", matrixList("ubuntu-latest", "windows-latest")},
			}},
			want: `{version: 10, os: ubuntu-latest}
{version: 10, os: windows-latest}
{version: 12, os: ubuntu-latest}
{version: 12, os: windows-latest}
{version: 14, os: ubuntu-latest}
{version: 14, os: windows-latest}
`,
		},
		{
			// "Expanding or adding matrix configurations": six jobs.
			name: "fruit animal include",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"fruit", matrixList("apple", "pear")},
					{"animal", matrixList("cat", "dog")},
				},
				Include: [][]matrixKV{
					{{"color", "green"}},
					{{"color", "pink"}, {"animal", "cat"}},
					{{"fruit", "apple"}, {"shape", "circle"}},
					{{"fruit", "banana"}},
					{{"fruit", "banana"}, {"animal", "cat"}},
				},
			},
			want: `{fruit: apple, animal: cat, color: pink, shape: circle}
{fruit: apple, animal: dog, color: green, shape: circle}
{fruit: pear, animal: cat, color: pink}
{fruit: pear, animal: dog, color: green}
{fruit: banana}
{fruit: banana, animal: cat}
`,
		},
		{
			// "Excluding matrix configurations": nine jobs out of twelve.
			name: "exclude",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"os", matrixList("macos-latest", "windows-latest")},
					{"version", matrixList(12.0, 14.0, 16.0)},
					{"environment", matrixList("staging", "production")},
				},
				Exclude: [][]matrixKV{
					{{"os", "macos-latest"}, {"version", 12.0}, {"environment", "production"}},
					{{"os", "windows-latest"}, {"version", 16.0}},
				},
			},
			want: `{os: macos-latest, version: 12, environment: staging}
{os: macos-latest, version: 14, environment: staging}
{os: macos-latest, version: 14, environment: production}
{os: macos-latest, version: 16, environment: staging}
{os: macos-latest, version: 16, environment: production}
{os: windows-latest, version: 12, environment: staging}
{os: windows-latest, version: 12, environment: production}
{os: windows-latest, version: 14, environment: staging}
{os: windows-latest, version: 14, environment: production}
`,
		},
		{
			// "Example: Expanding configurations": npm: 6 joins one job.
			name: "expand with include",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"os", matrixList("windows-latest", "ubuntu-latest")},
					{"node", matrixList(12.0, 14.0, 16.0)},
				},
				Include: [][]matrixKV{{{"os", "windows-latest"}, {"node", 16.0}, {"npm", 6.0}}},
			},
			want: `{os: windows-latest, node: 12}
{os: windows-latest, node: 14}
{os: windows-latest, node: 16, npm: 6}
{os: ubuntu-latest, node: 12}
{os: ubuntu-latest, node: 14}
{os: ubuntu-latest, node: 16}
`,
		},
		{
			// "Example: Adding configurations": 9 + 1 jobs.
			name: "add with include",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"os", matrixList("macos-latest", "windows-latest", "ubuntu-latest")},
					{"version", matrixList(12.0, 14.0, 16.0)},
				},
				Include: [][]matrixKV{{{"os", "windows-latest"}, {"version", 17.0}}},
			},
			want: `{os: macos-latest, version: 12}
{os: macos-latest, version: 14}
{os: macos-latest, version: 16}
{os: windows-latest, version: 12}
{os: windows-latest, version: 14}
{os: windows-latest, version: 16}
{os: ubuntu-latest, version: 12}
{os: ubuntu-latest, version: 14}
{os: ubuntu-latest, version: 16}
{os: windows-latest, version: 17}
`,
		},
		{
			// Include only: one job per entry.
			name: "include only",
			spec: matrixSpec{Include: [][]matrixKV{
				{{"site", "production"}, {"datacenter", "site-a"}},
				{{"site", "staging"}, {"datacenter", "site-b"}},
			}},
			want: `{site: production, datacenter: site-a}
{site: staging, datacenter: site-b}
`,
		},
		{
			// Perl example: seven jobs, five for ubuntu and two for macos.
			name: "perl",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"os", matrixList("ubuntu-latest")},
					{"perl", matrixList("5.16", "5.20", "5.26", "5.30", "latest")},
				},
				Include: [][]matrixKV{
					{{"os", "macos-latest"}, {"perl", "5.26"}},
					{{"os", "macos-latest"}, {"perl", "latest"}},
				},
			},
			want: `{os: ubuntu-latest, perl: 5.16}
{os: ubuntu-latest, perl: 5.20}
{os: ubuntu-latest, perl: 5.26}
{os: ubuntu-latest, perl: 5.30}
{os: ubuntu-latest, perl: latest}
{os: macos-latest, perl: 5.26}
{os: macos-latest, perl: latest}
`,
		},
		{
			// "Handling failures": four jobs.
			name: "fail-fast example",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"version", matrixList(6.0, 7.0, 8.0)},
					{"experimental", matrixList(false)},
				},
				Include: [][]matrixKV{{{"version", 9.0}, {"experimental", true}}},
			},
			want: `{version: 6, experimental: false}
{version: 7, experimental: false}
{version: 8, experimental: false}
{version: 9, experimental: true}
`,
		},
		{
			// Multi-dimension matrix with an array of objects: four jobs.
			name: "objects",
			spec: matrixSpec{Dims: []matrixDim{
				{"os", matrixList("ubuntu-latest", "macos-latest")},
				{"node", matrixList(
					[]matrixKV{{"version", 14.0}},
					[]matrixKV{{"version", 20.0}, {"env", "NODE_OPTIONS=--openssl-legacy-provider"}},
				)},
			}},
			want: `{os: ubuntu-latest, node: {version: 14}}
{os: ubuntu-latest, node: {version: 20, env: NODE_OPTIONS=--openssl-legacy-provider}}
{os: macos-latest, node: {version: 14}}
{os: macos-latest, node: {version: 20, env: NODE_OPTIONS=--openssl-legacy-provider}}
`,
		},
		{
			// Include applies after exclude and can add a combination back.
			name: "include restores excluded",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"arch", matrixList("x64", "x86")},
					{"os", matrixList("linux", "windows")},
				},
				Exclude: [][]matrixKV{{{"arch", "x86"}, {"os", "linux"}}},
				Include: [][]matrixKV{{{"arch", "x86"}, {"os", "linux"}}},
			},
			want: `{arch: x64, os: linux}
{arch: x64, os: windows}
{arch: x86, os: windows}
{arch: x86, os: linux}
`,
		},
		{
			// Partial match into objects, and the expression language's ==.
			name: "exclude nested and loose equality",
			spec: matrixSpec{
				Dims: []matrixDim{
					{"os", matrixList("Ubuntu", "windows")},
					{"cfg", matrixList(
						[]matrixKV{{"cc", "gcc"}, {"ver", 12.0}},
						[]matrixKV{{"cc", "clang"}, {"ver", 15.0}},
					)},
				},
				Exclude: [][]matrixKV{
					{{"os", "ubuntu"}, {"cfg", []matrixKV{{"ver", "15"}}}},
					{{"OS", "windows"}, {"cfg", map[string]any{"cc": "GCC"}}},
				},
			},
			want: `{os: Ubuntu, cfg: {cc: gcc, ver: 12}}
{os: windows, cfg: {cc: clang, ver: 15}}
`,
		},
	}
	for _, tt := range tests {
		legs, err := matrixExpand(tt.spec)
		if err != nil {
			t.Errorf("%s: matrixExpand = %v", tt.name, err)
			continue
		}
		if got := matrixShow(legs); got != tt.want {
			t.Errorf("%s: matrixExpand =\n%s\nwant\n%s", tt.name, got, tt.want)
		}
	}
}

func TestMatrixLegName(t *testing.T) {
	long := strings.Repeat("x", 120)
	tests := []struct {
		name string
		job  string
		spec matrixSpec
		want []string
	}{
		{
			name: "values in key order",
			job:  "build",
			spec: matrixSpec{Dims: []matrixDim{{"go", matrixList("1.22")}, {"os", matrixList("ubuntu-latest")}}},
			want: []string{"build (1.22, ubuntu-latest)"},
		},
		{
			name: "include extras stay out of the name, new combinations show all",
			job:  "test",
			spec: matrixSpec{
				Dims:    []matrixDim{{"os", matrixList("windows-latest")}, {"node", matrixList(16.0)}},
				Include: [][]matrixKV{{{"os", "windows-latest"}, {"npm", 6.0}}, {{"os", "macos"}, {"node", 18.0}, {"npm", 9.0}}},
			},
			want: []string{"test (windows-latest, 16)", "test (macos, 18, 9)"},
		},
		{
			name: "include entry: filter keys first, then extras",
			job:  "j",
			spec: matrixSpec{
				Dims:    []matrixDim{{"a", matrixList("1")}},
				Include: [][]matrixKV{{{"x", "extra"}, {"a", "2"}}},
			},
			want: []string{"j (1)", "j (2, extra)"},
		},
		{
			name: "objects and arrays flatten depth-first; null, empty string skipped",
			job:  "j",
			spec: matrixSpec{Dims: []matrixDim{
				{"cfg", matrixList([]matrixKV{{"name", "Win MSVC"}, {"cc", "cl"}, {"flags", matrixList("-O2", "", nil, true)}})},
				{"e", matrixList("")},
			}},
			want: []string{"j (Win MSVC, cl, -O2, true)"},
		},
		{
			name: "numbers print as G15",
			job:  "py",
			spec: matrixSpec{Dims: []matrixDim{{"v", matrixList(3.10, 1e20, 0.00001, 100.0, 2.5)}}},
			want: []string{"py (3.1)", "py (1E+20)", "py (1E-05)", "py (100)", "py (2.5)"},
		},
		{
			name: "no segments: bare job name",
			job:  "j",
			spec: matrixSpec{Dims: []matrixDim{{"e", matrixList("", nil)}}},
			want: []string{"j", "j"},
		},
		{
			name: "longer than 100 characters",
			job:  "j",
			spec: matrixSpec{Dims: []matrixDim{{"v", matrixList(long)}}},
			want: []string{("j (" + long)[:97] + "..."},
		},
	}
	for _, tt := range tests {
		legs, err := matrixExpand(tt.spec)
		if err != nil {
			t.Errorf("%s: matrixExpand = %v", tt.name, err)
			continue
		}
		var got []string
		for _, l := range legs {
			got = append(got, l.Name(tt.job))
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s: names = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestMatrixErrors(t *testing.T) {
	var many []any
	for i := 0; i < 17; i++ {
		many = append(many, float64(i))
	}
	tests := []struct {
		name string
		spec matrixSpec
		want string
	}{
		{"nothing", matrixSpec{}, "Matrix must define at least one vector"},
		{"empty vector", matrixSpec{Dims: []matrixDim{{"os", nil}}}, "Matrix vector 'os' does not contain any values"},
		{"empty exclude", matrixSpec{Dims: []matrixDim{{"os", matrixList("a")}}, Exclude: [][]matrixKV{{}}}, "Matrix exclude filter must not be empty"},
		{"exclude unknown key", matrixSpec{Dims: []matrixDim{{"os", matrixList("a")}}, Exclude: [][]matrixKV{{{"arch", "x"}}}}, "Matrix exclude key 'arch' does not match any key within the matrix"},
		{"empty include", matrixSpec{Dims: []matrixDim{{"os", matrixList("a")}}, Include: [][]matrixKV{{}}}, "Matrix include mapping does not contain any values"},
		{"too many", matrixSpec{Dims: []matrixDim{{"a", many}, {"b", many}}}, "matrix produces 289 jobs; at most 256 are allowed"},
		{"reserved key", matrixSpec{Dims: []matrixDim{{"include", matrixList("a")}}}, `matrix key "include" is reserved`},
		{"bad type", matrixSpec{Dims: []matrixDim{{"a", matrixList("x")}}, Exclude: [][]matrixKV{{{"a", struct{}{}}}}}, "matrix value of unsupported type struct {}"},
	}
	for _, tt := range tests {
		_, err := matrixExpand(tt.spec)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: matrixExpand error = %v, want %q", tt.name, err, tt.want)
		}
	}
	// Exactly 256 is allowed; excluded combinations do not count.
	sixteen := many[:16]
	if legs, err := matrixExpand(matrixSpec{Dims: []matrixDim{{"a", sixteen}, {"b", sixteen}}}); err != nil || len(legs) != 256 {
		t.Errorf("matrixExpand(16x16) = %d legs, %v; want 256, nil", len(legs), err)
	}
	if legs, err := matrixExpand(matrixSpec{Dims: []matrixDim{{"a", many}, {"b", many}}, Exclude: [][]matrixKV{{{"a", 0.0}}, {{"a", 1.0}}}}); err != nil || len(legs) != 255 {
		t.Errorf("matrixExpand(17x17 minus 34) = %d legs, %v; want 255, nil", len(legs), err)
	}
}

func TestMatrixLooseEqual(t *testing.T) {
	tests := []struct {
		a, b any
		want bool
	}{
		{"abc", "ABC", true},
		{12.0, "12", true},
		{"0x10", 16.0, true},
		{nil, nil, true},
		{nil, "", true}, // null and '' both convert to 0
		{true, 1.0, true},
		{"abc", 0.0, false},
		{[]any{1.0}, 1.0, false},
		{"1.5", "1.50", false}, // strings compare as strings
	}
	for _, tt := range tests {
		if got := matrixLooseEqual(tt.a, tt.b); got != tt.want {
			t.Errorf("matrixLooseEqual(%#v, %#v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
