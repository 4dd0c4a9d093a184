//go:build docker

package dockertest

import (
	"fmt"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Fatal and Skip end the helper (by panic)
// and say which it was.
type recorder struct {
	testing.TB
	ended string
}

type endHelper struct{}

func (r *recorder) Helper()                      {}
func (r *recorder) Fatal(args ...any)            { r.ended = "fatal: " + fmt.Sprint(args...); panic(endHelper{}) }
func (r *recorder) Skip(args ...any)             { r.ended = "skip: " + fmt.Sprint(args...); panic(endHelper{}) }
func (r *recorder) Fatalf(f string, args ...any) { r.Fatal(fmt.Sprintf(f, args...)) }
func (r *recorder) Skipf(f string, args ...any)  { r.Skip(fmt.Sprintf(f, args...)) }

// TestDockerDebianImageMissing: a missing Debian image skips the test, and
// fails it when SHITHUB_REQUIRE_DEBIAN=1 (as in CI), naming how to build it.
// A suite nobody built stands for the missing image.
func TestDockerDebianImageMissing(t *testing.T) {
	RequireEngine(t)
	t.Setenv("DEBIAN_IMAGE_SUITE", "no-such-suite-for-this-test")
	for _, tc := range []struct{ require, want string }{{"", "skip: "}, {"1", "fatal: "}} {
		t.Setenv("SHITHUB_REQUIRE_DEBIAN", tc.require)
		r := &recorder{TB: t}
		func() {
			defer func() {
				if p := recover(); p != nil {
					if _, ok := p.(endHelper); !ok {
						panic(p)
					}
				}
			}()
			DebianImage(r)
		}()
		if !strings.HasPrefix(r.ended, tc.want) || !strings.Contains(r.ended, ".ci/debian-image") {
			t.Errorf("SHITHUB_REQUIRE_DEBIAN=%q: %q, want %q naming .ci/debian-image", tc.require, r.ended, tc.want)
		}
	}
}
