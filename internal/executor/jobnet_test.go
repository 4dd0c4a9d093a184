package executor

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestLocalhostResolve: libcurl's resolve list names the job URL's
// *.localhost host on its port at the address --add-host gives it, and
// nothing when libcurl needs no help.
func TestLocalhostResolve(t *testing.T) {
	for _, tc := range []struct {
		name     string
		addHosts []string
		url      string
		want     []string
	}{
		{"default", []string{"shithub.localhost:172.17.0.1"}, "http://shithub.localhost:8080", []string{"shithub.localhost:8080:172.17.0.1"}},
		{"no port", []string{"ci.localhost:10.0.0.5"}, "https://ci.localhost/sub", []string{"ci.localhost:443:10.0.0.5"}},
		{"case", []string{"Shithub.LOCALHOST:172.17.0.1"}, "http://shithub.localhost:1", []string{"shithub.localhost:1:172.17.0.1"}},
		{"ipv6", []string{"shithub.localhost:fd00::1"}, "http://shithub.localhost:8080", []string{"shithub.localhost:8080:[fd00::1]"}},
		{"host-gateway is no address", []string{"shithub.localhost:host-gateway"}, "http://shithub.localhost:8080", nil},
		{"another name", []string{"other.localhost:172.17.0.1"}, "http://shithub.localhost:8080", nil},
		{"not localhost", []string{"ci.example:172.17.0.1"}, "http://ci.example:8080", nil},
		{"no add-host", nil, "http://shithub.localhost:8080", nil},
		{"no url", []string{"shithub.localhost:172.17.0.1"}, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := localhostResolve(tc.addHosts, tc.url); !slices.Equal(got, tc.want) {
				t.Errorf("localhostResolve(%q, %q) = %q, want %q", tc.addHosts, tc.url, got, tc.want)
			}
		})
	}
}

// TestAddResolveEnv: git's settings come after the step's own, a step's
// CURL_HOME stays, and nothing is added without a resolve list.
func TestAddResolveEnv(t *testing.T) {
	r := []string{"shithub.localhost:8080:172.17.0.1"}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		resolve []string
		want    map[string]string
	}{
		{"plain", map[string]string{}, r, map[string]string{
			"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.curloptResolve", "GIT_CONFIG_VALUE_0": r[0], "CURL_HOME": containerNet}},
		{"after the step's", map[string]string{"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "me", "CURL_HOME": "/mine"}, r, map[string]string{
			"GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "user.name", "GIT_CONFIG_VALUE_0": "me",
			"GIT_CONFIG_KEY_1": "http.curloptResolve", "GIT_CONFIG_VALUE_1": r[0], "CURL_HOME": "/mine"}},
		{"bad count", map[string]string{"GIT_CONFIG_COUNT": "x"}, r, map[string]string{
			"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.curloptResolve", "GIT_CONFIG_VALUE_0": r[0], "CURL_HOME": containerNet}},
		{"none", map[string]string{"A": "b"}, nil, map[string]string{"A": "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addResolveEnv(tc.env, tc.resolve)
			if !maps.Equal(tc.env, tc.want) {
				t.Errorf("got %v, want %v", tc.env, tc.want)
			}
		})
	}
}

// TestCurlrc: one resolve line per entry, in curl's config syntax.
func TestCurlrc(t *testing.T) {
	got := curlrc([]string{"a.localhost:1:10.0.0.1", "a.localhost:1:[fd00::1]"})
	for _, want := range []string{"\nresolve = a.localhost:1:10.0.0.1\n", "\nresolve = a.localhost:1:[fd00::1]\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("curlrc lacks %q:\n%s", want, got)
		}
	}
}
