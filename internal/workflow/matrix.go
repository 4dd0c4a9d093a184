package workflow

// strategy.matrix expansion with GitHub's semantics.
//
// Sources: docs.github.com "Running variations of jobs in a workflow"
// (Expanding or adding matrix configurations, Excluding matrix configurations)
// and the behaviour of GitHub's workflow parser as published in actions/runner
// (src/Sdk/WorkflowParser/Conversion/MatrixBuilder.cs, JobNameBuilder.cs):
//
//   - The cross product runs over the keys other than include/exclude, in file
//     order; the first key varies slowest.
//   - exclude removes every combination it matches. A filter matches when each
//     of its leaves equals the value at the same path in the combination
//     (partial match, recursively into objects and, by index, arrays), using
//     the expression language's == (strings case-insensitively, mixed types
//     compared as numbers).
//   - include entries are split into "filter" keys (keys of the matrix) and
//     "extra" keys (all others). An entry is added to every remaining
//     combination its filter matches (so it never overwrites an original
//     value; extras of a later entry overwrite extras of an earlier one in
//     place). An entry that matched no combination becomes a combination of
//     its own: filter keys first, then extra keys.
//   - The leg name is "<job> (v1, v2, ...)": every non-empty string, number and
//     boolean found by a depth-first walk of the combination *before* include
//     extras were added (nulls and empty strings skipped, object keys
//     omitted), joined with ", ". Numbers print like .NET's "G15". A name over
//     100 characters is cut to 97 and suffixed "...". An include entry that
//     became its own combination contributes all its values.

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf16"

	"shithub-actions/internal/expr"
)

// matrixKV is one key/value pair of an ordered mapping. A value may itself be
// a []matrixKV (an ordered object); map[string]any is accepted too, walked in
// sorted key order because Go maps have none.
type matrixKV struct {
	Key   string
	Value any
}

// matrixDim is one matrix key and its values, in file order.
type matrixDim struct {
	Key    string
	Values []any
}

// matrixSpec is strategy.matrix in file order.
type matrixSpec struct {
	Dims    []matrixDim
	Include [][]matrixKV
	Exclude [][]matrixKV
}

// MatrixLeg is one resulting job configuration.
type MatrixLeg struct {
	// Values is the matrix context of the leg, ordered.
	Values []matrixKV
	// nameCount is how many leading entries of Values take part in the name.
	nameCount int
}

// matrixMax is GitHub's documented limit of jobs per matrix.
const matrixMax = 256

// matrixMaxProduct bounds the work done on a hostile cross product.
const matrixMaxProduct = 1 << 20

type matrixFilter struct {
	leaves []matrixLeaf
	filter []matrixKV // keys that are matrix keys
	extra  []matrixKV // all other keys
	hit    bool
}

type matrixLeaf struct {
	path  []any // string (object key) or int (array index)
	value any   // nil, bool, float64, string
}

// matrixExpand expands a matrix. Errors carry GitHub's wording where GitHub
// has one.
func matrixExpand(spec matrixSpec) ([]MatrixLeg, error) {
	seen := map[string]bool{}
	for _, d := range spec.Dims {
		k := strings.ToLower(d.Key)
		if k == "include" || k == "exclude" {
			return nil, fmt.Errorf("matrix key %q is reserved", d.Key)
		}
		if seen[k] {
			return nil, fmt.Errorf("matrix key %q is defined twice", d.Key)
		}
		seen[k] = true
		if len(d.Values) == 0 {
			return nil, fmt.Errorf("Matrix vector '%s' does not contain any values", d.Key)
		}
	}
	if len(spec.Dims) == 0 && len(spec.Include) == 0 {
		return nil, fmt.Errorf("Matrix must define at least one vector")
	}
	isDim := func(k string) bool { return seen[strings.ToLower(k)] }

	var excludes []*matrixFilter
	for _, e := range spec.Exclude {
		if len(e) == 0 {
			return nil, fmt.Errorf("Matrix exclude filter must not be empty")
		}
		for _, kv := range e {
			if !isDim(kv.Key) {
				return nil, fmt.Errorf("Matrix exclude key '%s' does not match any key within the matrix", kv.Key)
			}
		}
		f := &matrixFilter{}
		for _, kv := range e {
			if err := matrixLeaves([]any{kv.Key}, kv.Value, &f.leaves); err != nil {
				return nil, err
			}
		}
		excludes = append(excludes, f)
	}
	var includes []*matrixFilter
	for _, e := range spec.Include {
		if len(e) == 0 {
			return nil, fmt.Errorf("Matrix include mapping does not contain any values")
		}
		f := &matrixFilter{}
		for _, kv := range e {
			if isDim(kv.Key) {
				f.filter = append(f.filter, kv)
				if err := matrixLeaves([]any{kv.Key}, kv.Value, &f.leaves); err != nil {
					return nil, err
				}
			} else {
				f.extra = append(f.extra, kv)
			}
		}
		includes = append(includes, f)
	}

	product := 0
	if len(spec.Dims) > 0 {
		product = 1
		for _, d := range spec.Dims {
			product *= len(d.Values)
			if product > matrixMaxProduct {
				return nil, fmt.Errorf("matrix cross product has more than %d combinations; at most %d jobs are allowed", matrixMaxProduct, matrixMax)
			}
		}
	}

	var legs []MatrixLeg
	count := 0
	for i := 0; i < product; i++ {
		combo := make([]matrixKV, 0, len(spec.Dims))
		block := product
		for _, d := range spec.Dims {
			block /= len(d.Values)
			combo = append(combo, matrixKV{d.Key, d.Values[(i/block)%len(d.Values)]})
		}
		if matrixAnyMatch(excludes, combo) {
			continue
		}
		var extra []matrixKV
		for _, f := range includes {
			if !f.matches(combo) {
				continue
			}
			f.hit = true
			for _, kv := range f.extra {
				extra = matrixSet(extra, kv)
			}
		}
		count++
		if count <= matrixMax {
			legs = append(legs, MatrixLeg{Values: append(combo, extra...), nameCount: len(combo)})
		}
	}
	for _, f := range includes {
		if f.hit {
			continue
		}
		count++
		if count <= matrixMax {
			v := append(append([]matrixKV{}, f.filter...), f.extra...)
			legs = append(legs, MatrixLeg{Values: v, nameCount: len(v)})
		}
	}
	if count > matrixMax {
		return nil, fmt.Errorf("matrix produces %d jobs; at most %d are allowed", count, matrixMax)
	}
	return legs, nil
}

// matrixSet sets kv in an ordered list, in place when the key (compared
// case-insensitively, like GitHub's dictionaries) is already there.
func matrixSet(list []matrixKV, kv matrixKV) []matrixKV {
	for i := range list {
		if strings.EqualFold(list[i].Key, kv.Key) {
			list[i].Value = kv.Value
			return list
		}
	}
	return append(list, kv)
}

func matrixAnyMatch(fs []*matrixFilter, combo []matrixKV) bool {
	for _, f := range fs {
		if f.matches(combo) {
			return true
		}
	}
	return false
}

func (f *matrixFilter) matches(combo []matrixKV) bool {
	for _, l := range f.leaves {
		var cur any = combo
		for _, p := range l.path {
			cur = matrixIndex(cur, p)
		}
		if !matrixLooseEqual(cur, l.value) {
			return false
		}
	}
	return true
}

// matrixLeaves flattens a filter value into path/literal leaves.
func matrixLeaves(path []any, v any, out *[]matrixLeaf) error {
	sub := func(p any) []any { return append(append([]any{}, path...), p) }
	switch x := v.(type) {
	case nil, bool, float64, string:
		*out = append(*out, matrixLeaf{path: path, value: x})
	case int:
		*out = append(*out, matrixLeaf{path: path, value: float64(x)})
	case []matrixKV:
		for _, kv := range x {
			if err := matrixLeaves(sub(kv.Key), kv.Value, out); err != nil {
				return err
			}
		}
	case map[string]any:
		for _, k := range matrixSortedKeys(x) {
			if err := matrixLeaves(sub(k), x[k], out); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range x {
			if err := matrixLeaves(sub(i), e, out); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("matrix value of unsupported type %T", v)
	}
	return nil
}

func matrixSortedKeys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// matrixIndex is the expression language's index operator: object keys are
// case-insensitive, arrays take integer indexes, anything else is null.
func matrixIndex(v any, p any) any {
	switch k := p.(type) {
	case string:
		switch o := v.(type) {
		case []matrixKV:
			for _, kv := range o {
				if strings.EqualFold(kv.Key, k) {
					return kv.Value
				}
			}
		case map[string]any:
			if x, ok := o[k]; ok {
				return x
			}
			for _, mk := range matrixSortedKeys(o) {
				if strings.EqualFold(mk, k) {
					return o[mk]
				}
			}
		}
	case int:
		if a, ok := v.([]any); ok && k >= 0 && k < len(a) {
			return a[k]
		}
	}
	return nil
}

// matrixLooseEqual is the expression language's == for a matrix value and a
// filter literal: GitHub matches include and exclude entries with it.
func matrixLooseEqual(a, b any) bool { return expr.Equal(a, b) }

// matrixSegments collects the name segments of v depth-first.
func matrixSegments(v any, out *[]string) {
	switch x := v.(type) {
	case bool:
		if x {
			*out = append(*out, "true")
		} else {
			*out = append(*out, "false")
		}
	case float64:
		*out = append(*out, expr.FormatNumber(x))
	case int:
		*out = append(*out, expr.FormatNumber(float64(x)))
	case string:
		if x != "" {
			*out = append(*out, x)
		}
	case []matrixKV:
		for _, kv := range x {
			matrixSegments(kv.Value, out)
		}
	case map[string]any:
		for _, k := range matrixSortedKeys(x) {
			matrixSegments(x[k], out)
		}
	case []any:
		for _, e := range x {
			matrixSegments(e, out)
		}
	}
}

// Name is the leg's display name as GitHub forms it from the job's name.
func (l MatrixLeg) Name(job string) string {
	if job == "" {
		return ""
	}
	var segs []string
	for _, kv := range l.Values[:l.nameCount] {
		matrixSegments(kv.Value, &segs)
	}
	name := job
	if len(segs) > 0 {
		name = job + " (" + strings.Join(segs, ", ") + ")"
	}
	return matrixTruncate(name, 100)
}

// matrixTruncate cuts a name longer than max UTF-16 code units (.NET string
// length) to max-3 units plus "...", never splitting a surrogate pair.
func matrixTruncate(s string, max int) string {
	u := utf16.Encode([]rune(s))
	if len(u) <= max {
		return s
	}
	cut := max - 3
	if cut > 0 && utf16.IsSurrogate(rune(u[cut-1])) && u[cut-1] < 0xDC00 {
		cut--
	}
	return string(utf16.Decode(u[:cut])) + "..."
}

// Get returns the value of key k in the leg (case-insensitive, like matrix.k).
func (l MatrixLeg) Get(k string) (any, bool) {
	for _, kv := range l.Values {
		if strings.EqualFold(kv.Key, k) {
			return kv.Value, true
		}
	}
	return nil, false
}

// EvalMatrix evaluates strategy.matrix (an ordered value with expressions
// in it, or one expression) and expands it.
func EvalMatrix(raw any, env *expr.Env) ([]MatrixLeg, error) {
	v, err := evalTree(raw, env)
	if err != nil {
		return nil, err
	}
	var m []matrixKV
	switch t := v.(type) {
	case []matrixKV:
		m = t
	case map[string]any:
		for _, k := range matrixSortedKeys(t) {
			m = append(m, matrixKV{k, t[k]})
		}
	default:
		return nil, fmt.Errorf("matrix must be an object, not %s", expr.String(v))
	}
	spec, err := matrixSpecOf(m)
	if err != nil {
		return nil, err
	}
	return matrixExpand(spec)
}

// evalTree evaluates every string of an ordered value that holds ${{ }}.
func evalTree(v any, env *expr.Env) (any, error) {
	switch t := v.(type) {
	case string:
		if !strings.Contains(t, "${{") {
			return t, nil
		}
		r, err := expr.EvalValue(t, env)
		return expr.Normalize(r), err
	case []matrixKV:
		out := make([]matrixKV, len(t))
		for i, kv := range t {
			x, err := evalTree(kv.Value, env)
			if err != nil {
				return nil, err
			}
			out[i] = matrixKV{kv.Key, x}
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			y, err := evalTree(x, env)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	}
	return v, nil
}

// MatrixContext is a leg's `matrix` context as plain JSON values.
func MatrixContext(leg MatrixLeg) map[string]any {
	out := map[string]any{}
	for _, kv := range leg.Values {
		out[kv.Key] = plainValue(kv.Value)
	}
	return out
}

func plainValue(v any) any {
	switch t := v.(type) {
	case []matrixKV:
		m := map[string]any{}
		for _, kv := range t {
			m[kv.Key] = plainValue(kv.Value)
		}
		return m
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = plainValue(x)
		}
		return out
	}
	return v
}
