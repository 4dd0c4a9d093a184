// How every client in a job reaches the server by its *.localhost name.
//
// Jobs see the server as http://shithub.localhost:PORT (jobaddr.go in the
// root says why the name is a *.localhost one), and each job container maps
// the name to the host in /etc/hosts (--add-host). Clients that ask the C
// library (wget, Python, Node, Go) read /etc/hosts; libcurl, and so curl
// and git, answers every *.localhost name with the loopback itself and
// never asks, unless the name is in its own resolve list (CURLOPT_RESOLVE),
// which it reads before that rule. So every step gets:
//
//   - for git (2.37 and later), http.curloptResolve HOST:PORT:IP through
//     GIT_CONFIG_COUNT/KEY/VALUE, added after any the step sets itself;
//   - for curl, CURL_HOME naming a read-only directory whose .curlrc says
//     `resolve = HOST:PORT:IP`, unless the step sets CURL_HOME itself.
//
// The directory is mounted into the job container, and so reaches its
// Docker actions too (--volumes-from).

package executor

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// containerNet is where the job's curl configuration is mounted.
const containerNet = "/__shithub/net"

// localhostResolve is libcurl's resolve list ("HOST:PORT:ADDR") for the
// server at jobURL: its host, when it is a *.localhost name that addHosts
// (docker run --add-host HOST:IP entries) maps to a literal address, on the
// URL's port. Empty when libcurl needs no help: another name resolves
// through DNS or /etc/hosts for libcurl as for everyone.
func localhostResolve(addHosts []string, jobURL string) []string {
	u, err := url.Parse(jobURL)
	if err != nil || u.Host == "" {
		return nil
	}
	host := strings.ToLower(u.Hostname())
	if host != "localhost" && !strings.HasSuffix(host, ".localhost") {
		return nil
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if port == "" {
		return nil
	}
	var out []string
	for _, h := range addHosts {
		name, addr, ok := strings.Cut(h, ":")
		ip := net.ParseIP(addr)
		if !ok || ip == nil || !strings.EqualFold(name, host) {
			continue // host-gateway and the like: docker's names, not addresses
		}
		if ip.To4() == nil {
			addr = "[" + ip.String() + "]"
		}
		out = append(out, host+":"+port+":"+addr)
	}
	return out
}

// curlrc is the .curlrc holding the resolve list.
func curlrc(resolve []string) string {
	var b strings.Builder
	b.WriteString("# shithub-actions: where this job's server is (libcurl answers *.localhost with the loopback otherwise)\n")
	for _, r := range resolve {
		fmt.Fprintf(&b, "resolve = %s\n", r)
	}
	return b.String()
}

// addResolveEnv adds to a step's environment what makes git and curl
// honour resolve: git's settings after any GIT_CONFIG_COUNT the step has
// (a step's own stay as they are), and CURL_HOME unless the step set one.
func addResolveEnv(full map[string]string, resolve []string) {
	if len(resolve) == 0 {
		return
	}
	n, err := strconv.Atoi(full["GIT_CONFIG_COUNT"])
	if err != nil || n < 0 {
		n = 0
	}
	for _, r := range resolve {
		full["GIT_CONFIG_KEY_"+strconv.Itoa(n)] = "http.curloptResolve"
		full["GIT_CONFIG_VALUE_"+strconv.Itoa(n)] = r
		n++
	}
	full["GIT_CONFIG_COUNT"] = strconv.Itoa(n)
	if _, ok := full["CURL_HOME"]; !ok {
		full["CURL_HOME"] = containerNet
	}
}

// jobResolve is the job's resolve list (localhostResolve).
func (j *execJob) jobResolve() []string {
	return localhostResolve(j.ex.cfg.AddHosts, j.ex.cfg.JobURL)
}

// netMountDir is the host directory mounted at containerNet in the job
// container, holding its .curlrc, written into the job's private
// directory, which goes with the job; "" when the job needs no resolve
// list. A failure to write it leaves curl as it was, with a warning in the
// executor's log.
func (j *execJob) netMountDir() string {
	resolve := j.jobResolve()
	if len(resolve) == 0 {
		return ""
	}
	if j.privDir == "" {
		dir, err := os.MkdirTemp(j.ex.cfg.WorkDir, j.name+"-files-")
		if err != nil {
			j.log.Warn("curl in this job will not reach the server by its *.localhost name", "err", err)
			return ""
		}
		j.privDir = dir
	}
	dir, err := writeNetDir(j.privDir, resolve)
	if err != nil {
		j.log.Warn("curl in this job will not reach the server by its *.localhost name", "err", err)
		return ""
	}
	return dir
}

// writeNetDir writes the .curlrc of resolve into a 0755 directory "net"
// inside priv (a 0700 directory of the job's, or of a container the pool
// makes ahead for one), readable by any user of the container.
func writeNetDir(priv string, resolve []string) (string, error) {
	dir := filepath.Join(priv, "net")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	f := filepath.Join(dir, ".curlrc")
	if err := os.WriteFile(f, []byte(curlrc(resolve)), 0o644); err != nil {
		return "", err
	}
	return dir, os.Chmod(f, 0o644)
}
