// The job-facing address: how a job's container reaches the server back
// (GITHUB_SERVER_URL, GITHUB_API_URL, git over HTTP with GITHUB_TOKEN, the
// artifact and cache services).
//
// `serve --addr` is loopback by default, which no container can reach. So
// by default the server also listens on the Docker bridge's gateway
// address (docker network inspect bridge), on the same port, serving only
// what jobs need, and jobs see the server as http://shithub.localhost:PORT,
// a name their container maps to that address (--add-host). The name is a
// *.localhost one because the Actions toolkit (upload-artifact@v4,
// actions/cache) only speaks its current protocol to github.com, *.ghe.com
// and *.localhost hosts. libcurl (curl, git) answers *.localhost names
// with the loopback and never reads /etc/hosts for them, so the executor
// also gives every step git's and curl's own resolve list for the name
// (internal/executor/jobnet.go). --job-addr chooses the listener (or turns
// it off); --job-url sets the URL jobs see, for remote runners or a proxy.

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"shithub-actions/internal/apperr"
	"shithub-actions/internal/executor"
	"shithub-actions/internal/protocol"
)

// jobHostName is the host name jobs know the server by.
const jobHostName = "shithub.localhost"

// jobEndpoint is how the in-process pool's jobs reach the server.
type jobEndpoint struct {
	Listen   string   // the job listener's address; "" for none
	Warning  string   // why jobs may not reach the server, for the log; "" when all is well
	URL      string   // GITHUB_SERVER_URL for the pool's jobs; "" until the port is known
	AddHosts []string // docker run --add-host entries of the pool's job containers
	hostIP   string   // where jobHostName points
	explicit bool     // URL came from --job-url
}

// planJobEndpoint decides the job listener and the URL jobs see, from
// --addr, --job-addr ("auto", "off" or HOST:PORT) and --job-url. gateway
// finds the Docker bridge's gateway address; it is called only when needed.
// URL is completed by finish once the listeners' ports are known.
func planJobEndpoint(addr, jobAddr, jobURL string, gateway func() (string, error)) (*jobEndpoint, error) {
	if err := checkListenAddrs(addr, jobAddr); err != nil {
		return nil, err
	}
	mainHost, mainPort, _ := net.SplitHostPort(addr)
	e := &jobEndpoint{}
	if jobURL != "" {
		u, err := url.Parse(jobURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("bad --job-url %q: want http(s)://host[:port][/path]", jobURL)
		}
		e.URL, e.explicit = strings.TrimSuffix(jobURL, "/"), true
	}
	switch jobAddr {
	case "off":
	case "", "auto":
		if isLoopbackHost(mainHost) {
			if gw, err := gateway(); err == nil {
				e.Listen = net.JoinHostPort(gw, mainPort)
			} else if !e.explicit {
				e.Warning = fmt.Sprintf("job containers cannot reach %s, and the Docker bridge's address to listen on for them is unknown (%v): pass --job-addr HOST:PORT, or --job-url", addr, err)
			}
		}
	default:
		e.Listen = jobAddr
	}
	// Where jobHostName points: the job listener, else the main one; an
	// address that is every interface is reached through the gateway.
	host := mainHost
	if e.Listen != "" {
		host, _, _ = net.SplitHostPort(e.Listen)
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		if gw, err := gateway(); err == nil {
			host = gw
		} else {
			host = "host-gateway" // docker's name for the host, seen from a container
		}
	}
	e.hostIP = host
	return e, nil
}

// checkListenAddrs checks the form of --addr and --job-addr ("auto",
// "off" or HOST:PORT), which serve's configuration does before anything
// opens; planJobEndpoint decides what they mean.
func checkListenAddrs(addr, jobAddr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("bad --addr %q: %v", addr, err)
	}
	switch jobAddr {
	case "", "auto", "off":
		return nil
	}
	if _, _, err := net.SplitHostPort(jobAddr); err != nil {
		return fmt.Errorf("bad --job-addr %q: want auto, off or HOST:PORT", jobAddr)
	}
	return nil
}

// serveListeners are serve's sockets, and how the pool's jobs reach them.
type serveListeners struct {
	main net.Listener // --addr: the whole server
	job  net.Listener // the job listener; nil when there is none
	plan *jobEndpoint // finished: its URL has the port jobs reach
}

// listenServe plans the job endpoint (planJobEndpoint), opens the main
// listener and the job listener, and finishes the plan with the port jobs
// reach: the job listener's, else the main one's. Both are plain TCP; the
// main one may carry TLS (servetls.go), the job one never. A bad address is a usage
// error, a port that cannot be had is not; on either, nothing is left open.
func listenServe(addr, jobAddr, jobURL string, gateway func() (string, error)) (*serveListeners, error) {
	plan, err := planJobEndpoint(addr, jobAddr, jobURL, gateway)
	if err != nil {
		return nil, apperr.Usagef("serve: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &serveListeners{main: ln, plan: plan}
	port := ln.Addr().(*net.TCPAddr).Port
	if plan.Listen != "" {
		if l.job, err = net.Listen("tcp", plan.Listen); err != nil {
			ln.Close()
			return nil, fmt.Errorf("the job listener (--job-addr): %w", err)
		}
		port = l.job.Addr().(*net.TCPAddr).Port
	}
	plan.finish(port)
	return l, nil
}

// Close closes both listeners.
func (l *serveListeners) Close() {
	if l.job != nil {
		l.job.Close()
	}
	l.main.Close()
}

// finish sets the URL (unless --job-url gave it) and the container host
// mapping, once port (the job listener's, else the main listener's) is
// known.
func (e *jobEndpoint) finish(port int) {
	if !e.explicit {
		e.URL = fmt.Sprintf("http://%s:%d", jobHostName, port)
	}
	u, err := url.Parse(e.URL)
	if err == nil && strings.HasSuffix(u.Hostname(), ".localhost") && !isLoopbackHost(e.hostIP) {
		e.AddHosts = []string{u.Hostname() + ":" + e.hostIP}
	}
}

// isLoopbackHost reports whether a listen host is reachable only from the
// machine itself.
func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// dockerBridgeGateway is the host's IPv4 address on Docker's default bridge
// network (docker0), which every job container can reach, whichever bridge
// network it is on: the network's gateway as docker reports it, else (newer
// engines leave the default bridge's gateway out) the address of its
// interface inside its subnet.
func dockerBridgeGateway(ctx context.Context, d executor.DockerCLI) (string, error) {
	out, _, err := d.Output(ctx, "network", "inspect", "bridge")
	if err != nil {
		return "", err
	}
	var nets []struct {
		IPAM struct {
			Config []struct{ Subnet, Gateway string }
		}
		Options map[string]string
	}
	if err := json.Unmarshal([]byte(out), &nets); err != nil || len(nets) != 1 {
		return "", fmt.Errorf("docker network inspect bridge: unexpected answer %.200q", out)
	}
	ifname := nets[0].Options["com.docker.network.bridge.name"]
	if ifname == "" {
		ifname = "docker0"
	}
	for _, c := range nets[0].IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway, nil
		}
		_, subnet, err := net.ParseCIDR(c.Subnet)
		if err != nil || subnet.IP.To4() == nil {
			continue
		}
		if ip := interfaceAddrIn(ifname, subnet); ip != "" {
			return ip, nil
		}
	}
	return "", fmt.Errorf("docker network inspect bridge shows no IPv4 gateway, and %s has no address in its subnet", ifname)
}

// interfaceAddrIn is an address of interface name inside subnet, or "".
func interfaceAddrIn(name string, subnet *net.IPNet) string {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return ""
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && subnet.Contains(ipn.IP) {
			return ipn.IP.String()
		}
	}
	return ""
}

// setJobURLs tells a claimed job where the server is: serverURL for
// GITHUB_SERVER_URL (and checkout), its /api/v1 for GITHUB_API_URL.
func setJobURLs(cj *protocol.Job, serverURL string) {
	if serverURL == "" {
		return
	}
	if cj.Env == nil {
		cj.Env = map[string]string{}
	}
	cj.Env["GITHUB_SERVER_URL"] = serverURL
	cj.Env["GITHUB_API_URL"] = serverURL + "/api/v1"
	if gh, ok := cj.Contexts["github"].(map[string]any); ok {
		gh["server_url"], gh["api_url"] = serverURL, serverURL+"/api/v1"
		gh["repositoryUrl"] = serverURL + "/" + cj.Repo + ".git"
	}
}

// remoteJobURL is the server URL a remote runner's jobs see: --job-url,
// else --base-url, else the URL the runner itself reached the server at.
func (s *server) remoteJobURL(r *http.Request) string {
	if s.jobURL != "" {
		return s.jobURL
	}
	return s.base(r)
}

// jobPaths reports whether the job listener serves path: the API, git
// over HTTP, and the artifact and cache services (/twirp/, /_apis/).
func jobPaths(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/twirp/") || strings.HasPrefix(p, "/_apis/") || isGitRequest(r)
}

// jobHandler is the job listener's handler: the server, for jobPaths only.
func (s *server) jobHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !jobPaths(r) {
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "not found: this address serves jobs (the API, git, artifacts and caches)"})
			return
		}
		s.ServeHTTP(w, r)
	})
}
